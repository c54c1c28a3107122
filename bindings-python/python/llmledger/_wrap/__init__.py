"""SDK client wrappers. The SDK modules are imported only when a client of that SDK is wrapped."""

from __future__ import annotations

from typing import Any, Optional

from .._context import Attribution
from ._base import ClientWrapper


def wrap_client(native: Any, client: Any, attribution: Attribution, provider: Optional[str]) -> Any:
    """A tracked copy of ``client`` (same class, same connection pool); the original is left untouched."""
    module = type(client).__module__.split(".", 1)[0]
    if module == "openai":
        from . import openai as sdk
    elif module == "anthropic":
        from . import anthropic as sdk  # type: ignore[no-redef]
    else:
        raise TypeError(
            f"llmledger cannot wrap {type(client).__module__}.{type(client).__qualname__}: "
            "expected an openai or anthropic client"
        )
    wrapper = ClientWrapper(native, sdk.SPEC, provider or sdk.detect_provider(client), attribution)
    return _tracked_copy(client, wrapper, sdk.is_async(client))


def _tracked_copy(client: Any, wrapper: ClientWrapper, is_async: bool) -> Any:
    tracked = client.copy()
    wrapper.install(tracked, is_async)
    copy = tracked.copy

    def copy_tracked(*args: Any, **kwargs: Any) -> Any:
        # `with_options(...)` / `copy(...)` of a wrapped client stay wrapped, with the same attribution.
        return _tracked_copy(_Copied(copy(*args, **kwargs)), wrapper, is_async)

    tracked.copy = copy_tracked
    tracked.with_options = copy_tracked
    tracked._llmledger = wrapper
    return tracked


class _Copied:
    """An already-copied client, handed to `_tracked_copy` without copying it a second time."""

    __slots__ = ("client",)

    def __init__(self, client: Any) -> None:
        self.client = client

    def copy(self) -> Any:
        return self.client
