"""The exceptions llmledger raises, rooted at :class:`LlmledgerError`.

Each carries the stable ``code`` of the Rust core (``"unknown_model"``, ``"config"``, …), and where it
applies the offending ``field`` and ``value``; match on ``code``, never on the message. Subclasses also
derive from the built-in exception a caller would expect (``ValueError`` for bad input or configuration,
``KeyError`` for an unknown model or currency), so existing ``except ValueError`` code keeps working.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Dict, List, Mapping, Optional, Tuple, Type

__all__ = [
    "LlmledgerError",
    "InvalidInputError",
    "ConfigError",
    "UnknownModelError",
    "MissingPriceError",
    "UnknownCurrencyError",
    "StoreError",
    "ClosedError",
    "BudgetExceeded",
]


class LlmledgerError(Exception):
    """Base of every llmledger error."""

    code: str
    field: Optional[str]
    value: Optional[str]
    suggestions: List[str]

    def __init__(
        self,
        message: str,
        code: str = "error",
        field: Optional[str] = None,
        value: Optional[str] = None,
        suggestions: Tuple[str, ...] = (),
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.field = field
        self.value = value
        self.suggestions = list(suggestions)

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return self.message

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (type(self), (self.message, self.code, self.field, self.value, tuple(self.suggestions)))


class InvalidInputError(LlmledgerError, ValueError):
    """Input is not the JSON, field or value expected (codes ``invalid_json``, ``missing_field``,
    ``invalid_value``, ``unknown_event_type``, ``invalid_price_data``)."""


class ConfigError(LlmledgerError, ValueError):
    """Bad configuration: store URL, time zone, rates, option values (code ``config``)."""


class UnknownModelError(LlmledgerError, KeyError):
    """No price entry matches the model (code ``unknown_model``); ``suggestions`` holds close names."""


class MissingPriceError(LlmledgerError, KeyError):
    """The model is known but lacks a price the usage needs (code ``missing_price``)."""


class UnknownCurrencyError(LlmledgerError, KeyError):
    """A currency was asked for without a rate (code ``unknown_currency``)."""


class StoreError(LlmledgerError, OSError):
    """The ledger store or a local file failed (codes ``store``, ``io``)."""


class ClosedError(LlmledgerError):
    """The tracker was closed (code ``closed``)."""


class BudgetExceeded(LlmledgerError):
    """Spend control refused the call *before* it was sent (code ``budget_exceeded``; the
    ``insufficient_quota`` habit: same meaning, but no request reached the provider).

    ``rule``: ``limit`` (a block limit), ``balance`` (an account's available credit) or ``unpriced`` (a
    model without a price under ``fail_closed``); ``rule_id``: the limit's id or the account
    (``user_id=u1``); ``scope``: its scope as a dict; ``per`` / ``period`` for limits; ``metric``:
    ``spend``, ``requests`` or ``tokens``; ``limit``, ``spent``, ``reserved``, ``requested``: exact
    ``Decimal`` amounts in ``currency`` (None for request and token limits). For a balance, ``limit`` is
    the balance and ``spent`` 0.
    """

    rule: str
    rule_id: str
    scope: Dict[str, str]
    per: Optional[str]
    metric: str
    period: Optional[str]
    limit: Decimal
    spent: Decimal
    reserved: Decimal
    requested: Decimal
    currency: Optional[str]

    def __init__(
        self,
        message: str,
        code: str = "budget_exceeded",
        field: Optional[str] = None,
        value: Optional[str] = None,
        suggestions: Tuple[str, ...] = (),
        budget: Optional[Mapping[str, Any]] = None,
    ) -> None:
        super().__init__(message, code, field, value, suggestions)
        detail = dict(budget or {})
        self.budget = detail
        self.rule = detail.get("rule", "")
        self.rule_id = detail.get("rule_id", "")
        self.scope = dict(detail.get("scope") or {})
        self.per = detail.get("per")
        self.metric = detail.get("metric", "spend")
        self.period = detail.get("period")
        zero = Decimal(0)
        self.limit = detail.get("limit", zero)
        self.spent = detail.get("spent", zero)
        self.reserved = detail.get("reserved", zero)
        self.requested = detail.get("requested", zero)
        self.currency = detail.get("currency")

    def __reduce__(self):  # type: ignore[no-untyped-def]
        args = (self.message, self.code, self.field, self.value, tuple(self.suggestions), self.budget)
        return (type(self), args)


#: Exception class per core error code; the native module raises through this table.
BY_CODE: Dict[str, Type[LlmledgerError]] = {
    "invalid_json": InvalidInputError,
    "missing_field": InvalidInputError,
    "invalid_value": InvalidInputError,
    "unknown_event_type": InvalidInputError,
    "invalid_price_data": InvalidInputError,
    "config": ConfigError,
    "unknown_model": UnknownModelError,
    "missing_price": MissingPriceError,
    "unknown_currency": UnknownCurrencyError,
    "store": StoreError,
    "io": StoreError,
    "closed": ClosedError,
    "unsupported": StoreError,
    "budget_exceeded": BudgetExceeded,
}
