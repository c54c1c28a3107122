"""llmledger: exact accounting of LLM API usage and cost.

Wrap the official ``openai`` / ``anthropic`` clients with :meth:`Tracker.wrap` and every call is priced,
attributed and written to a ledger; results carry ``_token_usage`` (:class:`Usage`). The accounting runs
in Rust (``llmledger._native``); this package holds the SDK wrappers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional, Union

if TYPE_CHECKING:
    from decimal import Decimal

from . import _native
from ._context import attribute
from ._estimate import Estimate, estimate_input, messages_json
from ._native import Cost, Usage, cost
from ._spend import Balance
from ._tracker import Tracker
from .errors import (
    BudgetExceeded,
    ClosedError,
    ConfigError,
    InvalidInputError,
    LlmledgerError,
    MissingPriceError,
    StoreError,
    UnknownCurrencyError,
    UnknownModelError,
)

__version__: str = _native.__version__

__all__ = [
    "Tracker",
    "Usage",
    "Cost",
    "Estimate",
    "attribute",
    "usage_of",
    "count_tokens",
    "estimate",
    "cost",
    "LlmledgerError",
    "InvalidInputError",
    "ConfigError",
    "UnknownModelError",
    "MissingPriceError",
    "UnknownCurrencyError",
    "StoreError",
    "ClosedError",
    "BudgetExceeded",
    "Balance",
]


def usage_of(obj: Any) -> Optional[Usage]:
    """The :class:`Usage` recorded for a result, a finished stream (also the SDKs' ``stream()`` helpers), a
    raw response, or a provider exception; None when nothing was recorded (yet)."""
    for candidate in (obj, getattr(obj, "_raw_stream", None), getattr(obj, "_Stream__stream", None)):
        if candidate is None:
            continue
        try:
            usage = object.__getattribute__(candidate, "_token_usage")
        except AttributeError:
            continue
        if usage is not None:
            return usage
    return None


def count_tokens(text: Any, model: str = "gpt-4o", tools: Any = None) -> int:
    """Tokens of ``text`` for ``model``. A list of chat messages is counted with the chat format's
    overhead (and ``tools``). Approximate for models without a public tokenizer (Claude, Gemini)."""
    if isinstance(text, str) and tools is None:
        return _native.count_tokens(text, model)
    msgs, tls = messages_json(text, tools)
    return _native.count_chat(msgs, model, tls)


def estimate(
    model: str,
    messages: Any,
    tools: Any = None,
    max_output_tokens: Optional[int] = None,
    expected_cache_hit: Union[str, "Decimal", None] = None,
) -> Estimate:
    """Pre-flight cost estimate in USD with the embedded prices (``Tracker.estimate`` uses the tracker's
    currency and price data). Renders as a table in Jupyter."""
    return Estimate(_native.estimate(estimate_input(model, messages, tools, max_output_tokens, expected_cache_hit)))
