"""SDK client wrappers. The SDK modules are imported only when a client of that SDK is wrapped."""

from __future__ import annotations

import json
from typing import Any, Optional

from .._native import Attribution, Client
from ._base import ClientWrapper


def wrap_client(tracker: Any, client: Any, attribution: Attribution, provider: Optional[str]) -> Any:
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
    spec = {"sdk": sdk.SPEC.sdk, "base_url": str(getattr(client, "base_url", "") or ""), "provider": provider}
    native = Client(json.dumps({**spec, **sdk.SPEC.describe(client)}), attribution)
    return _install(client.copy(), ClientWrapper(tracker, sdk.SPEC, native), sdk.is_async(client))


def _install(fresh: Any, wrapper: ClientWrapper, is_async: bool) -> Any:
    """Makes ``fresh`` (a new client instance) tracked; its own copies (``with_options``) stay tracked."""
    wrapper.install(fresh, is_async)
    copy = fresh.copy  # the SDK's: builds a new, untracked instance of the same class

    def copy_tracked(*args: Any, **kwargs: Any) -> Any:
        return _install(copy(*args, **kwargs), wrapper, is_async)

    fresh.copy = copy_tracked
    fresh.with_options = copy_tracked
    fresh._llmledger = wrapper
    return fresh
