"""Spend control from Python: ``tracker.budgets`` (limits), ``tracker.balances`` (prepaid credit) and the
alerts handed to ``Tracker(on_alert=...)``.

Glue only: every rule (what a limit counts, how a balance is summed, when an alert fires, what a bad
amount is) is core's (``llmledger._native.Spend`` over ``llmledger_core::spend``). Results cross as core's
JSON and are read here with money as ``decimal.Decimal`` and times as ``datetime``.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Mapping, NamedTuple, Optional, Sequence, Union

if TYPE_CHECKING:
    from ._tracker import Tracker

log = logging.getLogger("llmledger")

#: Money: a ``str`` (``"5.00"``), a ``Decimal`` or an ``int``; never a float.
Amount = Union[str, Decimal, int]
#: An account: a user id (``"u1"``), ``"workspace_id=w1"``, or ``{"workspace_id": "w1"}``.
AccountLike = Union[str, Mapping[str, str]]

_DECIMALS = frozenset(
    {"amount", "thresholds", "used", "reserved", "remaining", "total", "available", "low_alert", "threshold", "limit"}
)
_TIMES = frozenset({"created_at", "updated_at", "expires_at", "fired_at"})


def _typed(value: Any, key: Optional[str] = None) -> Any:
    """Core's JSON with decimal strings as ``Decimal`` and RFC 3339 times as aware ``datetime``."""
    if isinstance(value, dict):
        return {k: _typed(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_typed(v, key) for v in value]
    if isinstance(value, str):
        if key in _DECIMALS:
            return Decimal(value)
        if key in _TIMES:
            return datetime.fromisoformat(value.replace("Z", "+00:00"))
    return value


def from_json(text: str) -> Any:
    return _typed(json.loads(text))


class Balance(NamedTuple):
    # A NamedTuple, not a dataclass: `dataclasses` (and the `inspect` it imports) cost ~40 ms of
    # `import llmledger`.
    """An account's balance now: ``total`` is the exact sum of its entries, ``reserved`` what open
    reservations hold, ``available`` = ``total - reserved`` (what the next call may reserve). ``exists`` is
    False before the account's first credit (it is then not checked and every amount is 0)."""

    account: str
    exists: bool
    currency: str
    total: Decimal
    reserved: Decimal
    available: Decimal
    low_alert: Optional[Decimal]


class Budgets:
    """``tracker.budgets``: spend, request and token limits that refuse a call before it is sent."""

    def __init__(self, tracker: "Tracker") -> None:
        self._tracker = tracker

    def _spend(self) -> Any:
        return self._tracker._native.spend()

    def set_limit(
        self,
        scope: Optional[Mapping[str, str]] = None,
        per: str = "day",
        amount: Optional[Amount] = None,
        action: str = "block",
        *,
        requests: Optional[int] = None,
        tokens: Optional[int] = None,
        currency: Optional[str] = None,
        thresholds: Optional[Sequence[Amount]] = None,
        timezone: Optional[str] = None,
    ) -> Dict[str, Any]:
        """Creates or updates the limit of (``scope``, ``per``, metric) and returns it.

        ``scope``: ``user_id``, ``workspace_id``, ``project`` or ``tag:<name>`` keys (a call matches when its
        attribution has every one; ``{}`` matches every call). ``per``: ``minute``, ``day`` or ``month`` in the
        tracker's zone (or ``timezone``). Exactly one of ``amount`` (spend, in ``currency``, default the
        tracker's), ``requests`` or ``tokens``. ``action``: ``block`` refuses with :class:`BudgetExceeded`;
        ``warn`` / ``log`` let the call through and log when the limit is reached. ``thresholds``: fractions
        of the limit at which an alert fires (default 0.5, 0.8, 1).
        """
        spec = dict(
            scope=None if scope is None else {str(k): str(v) for k, v in scope.items()},
            per=per,
            amount=amount,
            requests=requests,
            tokens=tokens,
            currency=currency,
            action=action,
            thresholds=None if thresholds is None else list(thresholds),
            timezone=timezone,
        )
        return from_json(self._spend().set_limit(spec))

    def limits(self, scope: Optional[Mapping[str, str]] = None) -> List[Dict[str, Any]]:
        """Every limit, or those of exactly ``scope``."""
        return from_json(self._spend().limits(None if scope is None else dict(scope)))

    def remove(self, limit_id: str) -> bool:
        """Removes a limit by id; False when there was none."""
        return self._spend().remove_limit(limit_id)

    def status(self, scope: Optional[Mapping[str, str]] = None) -> List[Dict[str, Any]]:
        """Each limit (of ``scope``) with this period's ``used``, ``reserved`` and ``remaining``."""
        return from_json(self._spend().status(None if scope is None else dict(scope)))


class Balances:
    """``tracker.balances``: prepaid credit per user or workspace, an append-only ledger of exact entries."""

    def __init__(self, tracker: "Tracker") -> None:
        self._tracker = tracker

    def _spend(self) -> Any:
        return self._tracker._native.spend()

    def _credit(self, kind: str, account: AccountLike, amount: Amount, idempotency_key: Optional[str],
                expires_at: Optional[datetime], currency: Optional[str], note: Optional[str]) -> Dict[str, Any]:
        from ._tracker import _utc

        entry = dict(
            account=account,
            amount=amount,
            kind=kind,
            currency=currency,
            idempotency_key=idempotency_key,
            expires_at=_utc(expires_at, "expires_at"),
            note=note,
        )
        return from_json(self._spend().credit(entry))

    def top_up(
        self,
        account: AccountLike,
        amount: Amount,
        *,
        idempotency_key: Optional[str] = None,
        expires_at: Optional[datetime] = None,
        currency: Optional[str] = None,
        note: Optional[str] = None,
    ) -> Dict[str, Any]:
        """Adds bought credit (creating the account) and returns the entry. The same ``idempotency_key``
        again (a payment provider's event id) returns the first entry and writes nothing."""
        return self._credit("top_up", account, amount, idempotency_key, expires_at, currency, note)

    def grant(
        self,
        account: AccountLike,
        amount: Amount,
        *,
        idempotency_key: Optional[str] = None,
        expires_at: Optional[datetime] = None,
        currency: Optional[str] = None,
        note: Optional[str] = None,
    ) -> Dict[str, Any]:
        """Adds free credit (like :meth:`top_up`, recorded as a ``grant``)."""
        return self._credit("grant", account, amount, idempotency_key, expires_at, currency, note)

    def get(self, account: AccountLike) -> Balance:
        """The account's :class:`Balance` now (expired credits are written off first)."""
        return Balance(**from_json(self._spend().balance(account)))

    def history(self, account: AccountLike, limit: Optional[int] = None, before: Optional[int] = None) -> List[Dict[str, Any]]:
        """The account's entries, newest first (``limit``, default 100; older than entry id ``before``)."""
        return from_json(self._spend().history(account, limit, before))

    def set_alert(self, account: AccountLike, below: Optional[Amount]) -> None:
        """Fire a ``balance_low`` alert when a call takes the balance below ``below`` (None: off); once per
        credit (a top-up re-arms it). The account must exist."""
        self._spend().set_balance_alert(account, below)


def alert_callback(on_alert: Callable[[Dict[str, Any]], Any]) -> Callable[[str], None]:
    """What core's alert thread calls: the alert as a dict (money as ``Decimal``) to ``on_alert``, whose
    exceptions are logged, never raised into the pump."""

    def deliver(alert_json: str) -> None:
        try:
            on_alert(from_json(alert_json))
        except Exception:
            log.exception("llmledger: the on_alert callback raised")

    return deliver
