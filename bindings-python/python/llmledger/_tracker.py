"""``llmledger.Tracker``: configuration, ``wrap``, attribution, reports, flush/close and process hooks."""

from __future__ import annotations

import atexit
import json
import logging
import os
import threading
import weakref
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Mapping, Optional, Sequence, Union

from . import _context, _native
from ._native import Attribution
from ._estimate import Estimate, estimate_input
from ._spend import Balances, Budgets, alert_callback
from .errors import InvalidInputError

log = logging.getLogger("llmledger")

if TYPE_CHECKING:
    import contextlib
    from datetime import date, datetime

PathLike = Union[str, "os.PathLike[str]"]
When = Union["datetime", "date", str, None]


def _utc(value: When, field: str, end: bool = False) -> Optional["datetime"]:
    """A timezone-aware datetime in UTC. Naive datetimes are taken as UTC; a date means its start
    (``since``) or the start of the next day (``until`` is exclusive)."""
    if value is None:
        return None
    from datetime import date, datetime, time, timezone as _tz

    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00")) if "T" in value else date.fromisoformat(value)
        except ValueError as exc:
            raise InvalidInputError(
                f"{field} = {value!r}: expected an ISO 8601 date or datetime", "invalid_value", field, value
            ) from exc
    if isinstance(value, datetime):
        return value.replace(tzinfo=_tz.utc) if value.tzinfo is None else value.astimezone(_tz.utc)
    if isinstance(value, date):
        day = date.fromordinal(value.toordinal() + 1) if end else value
        return datetime.combine(day, time(0), tzinfo=_tz.utc)
    raise InvalidInputError(
        f"{field} = {value!r}: expected a datetime, date or ISO 8601 string", "invalid_value", field, repr(value)
    )


class Tracker:
    """Prices, attributes and records every call made through the clients it wraps.

    ``store``: ``sqlite:///abs/path.db`` (default ``sqlite://./llmledger.db``), ``postgres://…``, or a
    ``jsonl:`` path; ``currency`` with ``rates`` (units per USD, decimal strings) for reports and
    ``_token_usage.cost``; ``timezone`` (IANA) for day/month groups; ``unknown_model``: ``"flag"`` records
    the call unpriced and flagged, ``"error"`` also logs an error; ``prices``: a price file in llmledger's
    format extending the embedded data; ``durability``: ``"batch"`` (buffered, flushed in the background
    and at exit) or ``"sync"`` (written before the call returns); ``spill_dir``: where events wait while the
    store is down (default: beside a SQLite file, else ``$LLMLEDGER_SPILL_DIR`` or the per-user state
    directory ``~/.local/state/llmledger``; in a container, mount a volume there).

    Store trouble is logged on the ``llmledger`` logger: one WARNING when the store starts failing (or
    cannot be reached at start), at most one reminder a minute while it stays down, one INFO once it is
    back and the spilled events are replayed. :meth:`health` shows the same state on demand.

    Spend control (:attr:`budgets`, :attr:`balances`): ``spend`` takes core's ``SpendConfig`` keys
    (``reservation_ttl_secs``, ``default_max_output_tokens``, ``unpriced`` = ``"fail_closed"`` or
    ``"reserve:<amount>"``, ``spike_factor``, ``disabled``). ``webhooks``: ``[{"url": ..., "secret": ...}]``,
    where spend alerts are sent signed (see the README's Webhooks section); ``on_alert``: a callable given
    each alert as a dict (``alert_id``, ``kind``, ``scope``, ``period``, ``threshold``, ``amount``, ``limit``,
    ``currency``, ``fired_at``), on llmledger's alert thread, at least once (see :meth:`deliver_alerts`).
    """

    def __init__(
        self,
        store: Optional[str] = None,
        currency: str = "USD",
        rates: Optional[Mapping[str, Any]] = None,
        timezone: str = "UTC",
        unknown_model: str = "flag",
        prices: Optional[PathLike] = None,
        durability: str = "batch",
        *,
        litellm_prices: Optional[PathLike] = None,
        azure_deployments: Optional[Mapping[str, str]] = None,
        spill_dir: Optional[PathLike] = None,
        spend: Optional[Mapping[str, Any]] = None,
        webhooks: Optional[Sequence[Mapping[str, str]]] = None,
        on_alert: Optional[Callable[[Dict[str, Any]], Any]] = None,
    ) -> None:
        self._config: Dict[str, Any] = dict(
            store=None if store is None else str(store),
            currency=currency,
            rates={str(k): str(v) for k, v in (rates or {}).items()},
            timezone=timezone,
            unknown_model=unknown_model,
            durability=durability,
            prices_path=None if prices is None else os.fspath(prices),
            litellm_prices_path=None if litellm_prices is None else os.fspath(litellm_prices),
            azure_deployments=dict(azure_deployments or {}),
            spill_dir=None if spill_dir is None else os.fspath(spill_dir),
        )
        # Kept apart from `_config` (shown in reprs): webhook secrets are never displayed.
        self._options = json.dumps(
            dict(spend=dict(spend or {}), webhooks=[dict(w) for w in webhooks or []]), default=str
        )
        self._on_alert = None if on_alert is None else alert_callback(on_alert)
        self._native = self._open_native()
        self._closed = False
        self._lock = threading.Lock()
        self.budgets = Budgets(self)
        self.balances = Balances(self)
        _live.add(self)
        self._start_notice_logger()

    def _open_native(self) -> Any:
        native = _native.Tracker(self._config, self._options)
        if self._on_alert is not None:
            native.set_alert_sink(self._on_alert)
        return native

    # -- wrapping and attribution ------------------------------------------------------------------------------

    def wrap(
        self,
        client: Any,
        *,
        user_id: Optional[str] = None,
        workspace_id: Optional[str] = None,
        project: Optional[str] = None,
        session_id: Optional[str] = None,
        conversation_id: Optional[str] = None,
        tags: Optional[Mapping[str, Any]] = None,
        provider: Optional[str] = None,
    ) -> Any:
        """A tracked copy of an ``openai`` or ``anthropic`` client (same class; the original is untouched).

        The attribution given here applies to every call; ``attribute`` blocks override it per request.
        ``provider`` overrides detection (``openai``, ``azure``, ``xai``, ``anthropic``, …); an unknown
        name is an :class:`InvalidInputError` naming ``provider``.
        """
        from ._wrap import wrap_client

        base = _context.make(user_id, workspace_id, project, session_id, conversation_id, tags)
        return wrap_client(_NativeRef(self), client, base, provider)

    def attribute(
        self,
        user_id: Optional[str] = None,
        workspace_id: Optional[str] = None,
        project: Optional[str] = None,
        session_id: Optional[str] = None,
        conversation_id: Optional[str] = None,
        tags: Optional[Mapping[str, Any]] = None,
    ) -> "contextlib.AbstractContextManager[Attribution]":
        """Context manager attributing the wrapped calls made inside it (contextvars: per thread and asyncio
        task, nesting). Same as :func:`llmledger.attribute`."""
        return _context.attribute(user_id, workspace_id, project, session_id, conversation_id, tags)

    # -- reports and pre-flight --------------------------------------------------------------------------------

    def usage(
        self,
        *,
        user_id: Optional[str] = None,
        workspace_id: Optional[str] = None,
        project: Optional[str] = None,
        provider: Optional[str] = None,
        model: Optional[str] = None,
        session_id: Optional[str] = None,
        since: When = None,
        until: When = None,
        group_by: Union[str, Sequence[str], None] = None,
        timezone: Optional[str] = None,
        p95: bool = False,
        timeframe: Optional[str] = None,
    ) -> List[Dict[str, Any]]:
        """Report rows from the ledger (events written so far are flushed first).

        ``timeframe``: ``today``, ``week`` (from Monday) or ``month``: the current period in the report's
        zone, within ``since`` / ``until`` when those are given too.

        ``group_by``: any of ``user``, ``workspace``, ``project``, ``provider``, ``model``, ``session``,
        ``day``, ``month`` (``user_id`` / ``workspace_id`` / ``session_id`` are accepted too). Each row is
        core's one row shape (the same keys as Node's): the group keys, ``requests``, ``successful``,
        ``failed``, ``unpriced``, token totals, ``cost`` (in the tracker's currency) and ``cost_usd`` as
        ``decimal.Decimal``, ``currency``, ``avg_latency_ms`` and ``p95_latency_ms``.
        ``timezone``: the zone of the ``day`` / ``month`` groups; default the tracker's ``timezone``.
        """
        groups = [group_by] if isinstance(group_by, str) else list(group_by or [])
        groups = [_GROUP_ALIASES.get(g, g) for g in groups]
        self._native.flush()
        return self._native.usage(
            dict(
                user_id=user_id,
                workspace_id=workspace_id,
                project=project,
                provider=provider,
                model=model,
                session_id=session_id,
                since=_utc(since, "since"),
                until=_utc(until, "until", end=True),
                group_by=groups,
                timezone=timezone,
                p95=p95,
                timeframe=timeframe,
            )
        )

    def reconcile(
        self,
        since: Any,
        until: Any = None,
        *,
        by: Union[str, Sequence[str]] = ("day", "provider", "model"),
        threshold_pct: Any = 5,
    ) -> List[Dict[str, Any]]:
        """What the ledger tracked against what the providers billed (cost reports pulled into the same
        store with ``llmledger pull``), per group: ``by`` any of ``day``, ``provider``, ``model``,
        ``workspace``; days ``since`` through ``until`` (inclusive, UTC dates or ISO strings; ``until``
        defaults to today). Each row: the group keys, ``tracked_usd``, ``billed_usd``, ``diff_usd``,
        ``diff_pct`` (``Decimal``; ``diff_pct`` None when nothing was billed), ``flagged`` (apart by more
        than ``threshold_pct`` per cent) and ``cause`` (the likely cause of a flagged row)."""
        query = {
            "since": str(since),
            "until": None if until is None else str(until),
            "by": [by] if isinstance(by, str) else list(by),
            "threshold_pct": str(threshold_pct),
        }
        return self._native.reconcile(json.dumps(query))

    def estimate(
        self,
        model: str,
        messages: Any,
        tools: Any = None,
        max_output_tokens: Optional[int] = None,
        expected_cache_hit: Any = None,
    ) -> Estimate:
        """Pre-flight estimate in the tracker's currency and price data (see :func:`llmledger.estimate`)."""
        return Estimate(
            self._native.estimate(estimate_input(model, messages, tools, max_output_tokens, expected_cache_hit))
        )

    @property
    def currency(self) -> str:
        return self._native.currency

    # -- operations --------------------------------------------------------------------------------------------

    def health(self) -> Dict[str, Any]:
        """The ledger's state, cheap enough for a ``/health`` endpoint: ``store`` (URL, password redacted),
        ``store_state`` (``unknown``/``up``/``down``), ``queued_events``, ``spilled_events``,
        ``oldest_spilled_at`` / ``oldest_spilled_age_secs``, ``last_error`` / ``last_error_at``,
        ``down_since``, ``recorded_events``, ``written_events`` and ``spill_dir``."""
        return json.loads(self._native.health_json())

    def _start_notice_logger(self) -> None:
        # Core decides when the operator hears something; this thread only hands notices to `logging`.
        # It waits in Rust with the GIL released and holds the native tracker, not `self`.
        native, me = self._native, weakref.ref(self)

        def stopped() -> bool:
            tracker = me()
            return tracker is None or tracker._closed or tracker._native is not native

        threading.Thread(target=_log_notices, args=(native, stopped), name="llmledger-notices", daemon=True).start()

    # -- lifecycle ---------------------------------------------------------------------------------------------

    def flush(self) -> None:
        """Writes every buffered event to the store and hands every pending spend alert to the webhook
        outbox and ``on_alert`` (the GIL is released meanwhile)."""
        self._native.flush()
        self._native.deliver_alerts()

    def deliver_alerts(self) -> int:
        """Hands every pending spend alert to the webhook outbox and ``on_alert`` now, on this thread, and
        returns how many. (Core's alert thread does this on its own as soon as a call fires an alert;
        alerts fired by other processes sharing the store are picked up within 5 s.) Delivery to
        ``on_alert`` is at least once: a process that dies before marking an alert handed on leaves it
        for the next tracker with a callback on the same store."""
        return self._native.deliver_alerts()

    def close(self) -> None:
        """Flushes and closes the ledger. Later calls through wrapped clients still work; they are logged as
        not recorded."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        _live.discard(self)
        try:
            self._native.close()
        finally:
            _emit_notices(json.loads(self._native.take_notices_json()))

    def __enter__(self) -> "Tracker":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        store = _native.redact_credentials(self._config["store"] or "sqlite://./llmledger.db")
        return f"<llmledger.Tracker store={store!r} currency={self._config['currency']!r}>"

    def _after_fork_in_child(self) -> None:
        # The parent's writer thread does not exist in the child: start a fresh ledger writer there. The old
        # native tracker is kept (not dropped), as its locks may be held by a thread that no longer exists.
        _orphans.append(self._native)
        self._native = self._open_native()
        self._start_notice_logger()


class _NativeRef:
    """Lets wrapped clients follow ``Tracker._native`` when it is replaced after ``os.fork()``."""

    __slots__ = ("tracker",)

    def __init__(self, tracker: Tracker) -> None:
        self.tracker = tracker

    def begin(self, *args: Any) -> Any:
        return self.tracker._native.begin(*args)

    def check(self, usage: Any) -> Any:
        """Reports an unpriced call: an error under ``unknown_model="error"``, else at debug level."""
        if usage is not None and usage.pricing_error is not None:
            level = logging.ERROR if self.tracker._config["unknown_model"] == "error" else logging.DEBUG
            log.log(level, "llmledger: %s call to %r recorded unpriced: %s", usage.provider, usage.model,
                    usage.pricing_error)
        return usage


def _emit_notices(notices: List[Dict[str, Any]]) -> None:
    for notice in notices:
        level = logging.WARNING if notice["level"] == "warning" else logging.INFO
        log.log(level, "%s", notice["message"], extra={"llmledger_notice": notice})


def _log_notices(native: Any, stopped: Any) -> None:
    while not stopped():
        try:
            _emit_notices(json.loads(native.take_notices_json(1.0)))
        except Exception:  # the interpreter is shutting down, or logging itself failed
            return


_GROUP_ALIASES = {"user_id": "user", "workspace_id": "workspace", "session_id": "session"}

_live: "weakref.WeakSet[Tracker]" = weakref.WeakSet()
_orphans: List[Any] = []


def _flush_all_at_exit() -> None:
    for tracker in list(_live):
        try:
            tracker.close()
        except Exception:
            log.warning("llmledger: could not flush the ledger at exit", exc_info=True)


def _after_fork_in_child() -> None:
    for tracker in list(_live):
        try:
            tracker._after_fork_in_child()
        except Exception:
            log.warning("llmledger: could not restart the ledger writer after fork", exc_info=True)


atexit.register(_flush_all_at_exit)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
