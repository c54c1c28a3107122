"""Pre-flight estimates: the result object, rendered as a table in Jupyter."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Dict, Optional, Tuple

if TYPE_CHECKING:
    from decimal import Decimal


def _default(value: Any) -> Any:
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return dump(mode="json", exclude_none=True)
    raise TypeError(f"cannot serialize {type(value).__name__} as a chat message")


def messages_json(messages: Any, tools: Any = None) -> Tuple[str, Optional[str]]:
    """The JSON text the native counter reads (``str`` input is taken as one user message)."""
    if isinstance(messages, str):
        messages = [{"role": "user", "content": messages}]
    return (
        json.dumps(messages, default=_default, separators=(",", ":")),
        None if tools is None else json.dumps(tools, default=_default, separators=(",", ":")),
    )


def estimate_input(
    model: str, messages: Any, tools: Any, max_output_tokens: Any, expected_cache_hit: Any
) -> Dict[str, Any]:
    """The one argument the native ``estimate`` reads (the chat request as JSON text)."""
    msgs, tls = messages_json(messages, tools)
    return {
        "model": model,
        "messages_json": msgs,
        "tools_json": tls,
        "max_output_tokens": max_output_tokens,
        "expected_cache_hit": None if expected_cache_hit is None else str(expected_cache_hit),
    }


class Estimate:
    """What a request will cost before it is sent.

    ``input_tokens`` (``exact`` False when the model has no public tokenizer and the count is approximate),
    ``input_cost``; ``min_cost`` (input only) and ``max_cost`` (input plus ``max_output_tokens`` of output),
    all ``decimal.Decimal`` in ``currency``.
    """

    __slots__ = ("model", "input_tokens", "exact", "input_cost", "max_output_tokens", "min_cost", "max_cost",
                 "currency")

    def __init__(self, fields: Dict[str, Any]) -> None:
        self.model: str = fields["model"]
        self.input_tokens: int = fields["input_tokens"]
        self.exact: bool = fields["exact"]
        self.input_cost: Decimal = fields["input_cost"]
        self.max_output_tokens: int = fields["max_output_tokens"]
        self.min_cost: Decimal = fields["min_cost"]
        self.max_cost: Decimal = fields["max_cost"]
        self.currency: str = fields["currency"]

    def as_dict(self) -> Dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}

    def _rows(self) -> Tuple[Tuple[str, str], ...]:
        approx = "" if self.exact else " (approximate)"
        return (
            ("model", self.model),
            ("input tokens", f"{self.input_tokens:,}{approx}"),
            ("input cost", f"{_money(self.input_cost)} {self.currency}"),
            ("max output tokens", f"{self.max_output_tokens:,}"),
            ("cost range", f"{_money(self.min_cost)} – {_money(self.max_cost)} {self.currency}"),
        )

    def __repr__(self) -> str:
        return (
            f"Estimate(model={self.model!r}, input_tokens={self.input_tokens}, exact={self.exact}, "
            f"min_cost=Decimal('{self.min_cost}'), max_cost=Decimal('{self.max_cost}'), currency={self.currency!r})"
        )

    def __str__(self) -> str:
        width = max(len(k) for k, _ in self._rows())
        return "\n".join(f"{k.ljust(width)}  {v}" for k, v in self._rows())

    def _repr_html_(self) -> str:
        import html

        rows = "".join(
            f"<tr><th style='text-align:left'>{html.escape(k)}</th><td style='text-align:right'>{html.escape(v)}</td></tr>"
            for k, v in self._rows()
        )
        return f"<table class='llmledger-estimate'>{rows}</table>"


def _money(value: Decimal) -> str:
    """Display rounding only: 6 decimals below one unit, else 4."""
    from decimal import Decimal

    q = Decimal("0.000001") if abs(value) < 1 else Decimal("0.0001")
    return f"{value.quantize(q):,}"
