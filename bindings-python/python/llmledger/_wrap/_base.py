"""Interception shared by the openai and anthropic SDK wrappers.

Both SDKs are generated from the same template: every API call goes through ``client.request(cast_to,
options, stream=..., stream_cls=...)``, which retries, raises the SDK's ``APIStatusError`` on 4xx/5xx, and
hands the final HTTP response to ``client._process_response(...)``. ``wrap`` therefore works on a copy of
the caller's client (same class, same HTTP connection pool) whose ``request`` and ``_process_response``
are instance-level wrappers. Every resource (``chat.completions``, ``with_raw_response``, the ``stream``
helpers, ``beta.messages``, …) is reached through them, results stay the SDK's own objects, and arguments
pass through untouched (except ``stream_options.include_usage``, when core asks for it).

Every decision is core's (``llmledger._native``): which requests are tracked (``Client.classify``), what to
change in the request and whether it needs the body (``Tracker.begin`` → ``Call``), and the record. This
module hands it the SDK's request dict, the response bytes, and each Server-Sent Event of a stream
(``_iter_events`` of the SDK's ``Stream`` is replaced on the instance before iteration starts). Tracking
never raises into the caller: failures are logged on the ``llmledger`` logger. The one exception is spend
control: with a limit or balance in place, ``request`` calls core's ``admit`` after handing it the request
body and before the SDK sends anything, and a refusal raises :class:`llmledger.BudgetExceeded` there — no
HTTP request is made (async clients run the reservation in the default executor, off the event loop).
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import weakref
from contextvars import ContextVar
from typing import Any, Callable, Dict, Optional, Tuple

from .. import _context
from ..errors import BudgetExceeded

log = logging.getLogger("llmledger")

# The call being made by `request`, for `_process_response` (same thread / same asyncio task).
_CALL: ContextVar[Optional["Call"]] = ContextVar("llmledger_call", default=None)


def set_token_usage(obj: Any, usage: Any) -> None:
    """Attaches ``usage`` as ``obj._token_usage`` (works on the SDKs' pydantic models too)."""
    try:
        object.__setattr__(obj, "_token_usage", usage)
    except (AttributeError, TypeError):
        log.debug("llmledger: cannot attach _token_usage to %s", type(obj).__name__)


def _json_default(value: Any) -> Any:
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return dump(mode="json")
    if isinstance(value, (bytes, bytearray)):
        return None  # file contents never leave the process and never reach the ledger
    return str(value)


def dump_request(json_data: Any) -> Optional[str]:
    if not isinstance(json_data, dict):
        return None
    try:
        return json.dumps(json_data, default=_json_default, separators=(",", ":"))
    except (TypeError, ValueError):
        return None


def with_include_usage(options: Any, data: Optional[Dict[str, Any]]) -> Any:
    """``options`` with ``stream_options.include_usage = True`` in its body (a copy; the caller's is kept)."""
    stream_options = (data or {}).get("stream_options")
    stream_options = {**stream_options, "include_usage": True} if isinstance(stream_options, dict) else {"include_usage": True}
    return options.model_copy(update={"json_data": {**(data or {}), "stream_options": stream_options}})


class Spec:
    """What differs between SDKs; see ``_wrap/openai.py`` and ``_wrap/anthropic.py``."""

    sdk: str = ""
    stream_types: Tuple[type, ...] = ()
    async_stream_types: Tuple[type, ...] = ()
    raw_types: Tuple[type, ...] = ()
    api_error: type = Exception

    def describe(self, client: Any) -> Dict[str, Any]:
        """The client-class facts of core's ``ClientSpec`` (``azure``, ``bedrock``, ``azure_deployment``)."""
        return {}


class Call:
    """One tracked API call, from ``request`` to the recorded event (``native``: core's call)."""

    __slots__ = ("wrapper", "native", "http")

    def __init__(self, wrapper: "ClientWrapper", native: Any) -> None:
        self.wrapper = wrapper
        self.native = native
        self.http: Any = None

    # -- recording (never raises) ----------------------------------------------------------------------------

    def record_body(self) -> Any:
        try:
            return self.wrapper.tracker.check(self.native.finish(self.http.content))
        except Exception:
            log.warning("llmledger: could not record a %s call", self.wrapper.provider, exc_info=True)
            return None

    def record_failure(self, err: BaseException) -> None:
        try:
            set_token_usage(err, self.native.fail(type(err).__name__))
        except Exception:
            log.warning("llmledger: could not record a failed %s call", self.wrapper.provider, exc_info=True)

    def start_stream(self) -> Any:
        try:
            return self.native.into_stream()
        except Exception:
            log.warning("llmledger: could not start tracking a %s stream", self.wrapper.provider, exc_info=True)
            return None

    # -- results ---------------------------------------------------------------------------------------------

    def done(self, result: Any, stream: bool) -> Any:
        """Attaches tracking to ``result`` (the SDK's return value) and returns it unchanged."""
        spec = self.wrapper.spec
        try:
            if isinstance(result, spec.stream_types):
                attach_stream(result, self)
            elif isinstance(result, spec.async_stream_types):
                attach_async_stream(result, self)
            elif isinstance(result, spec.raw_types):
                self._done_raw(result, stream)
            elif not stream and self.http is not None:
                set_token_usage(result, self.record_body())
        except Exception:
            log.warning("llmledger: could not track a %s call", self.wrapper.provider, exc_info=True)
        return result

    def _done_raw(self, raw: Any, stream: bool) -> None:
        """``with_raw_response`` / ``with_streaming_response``: track what ``parse()`` returns."""
        http = self.http = raw.http_response
        state: dict = {"recorded": False, "usage": None, "streams": []}
        call = self

        def record() -> None:
            if not state["recorded"] and _is_read(http):
                state["recorded"] = True
                state["usage"] = call.record_body()
                set_token_usage(raw, state["usage"])

        if not stream:
            record()
        parse = raw.parse

        def tracked(obj: Any) -> Any:
            try:
                spec = call.wrapper.spec
                if isinstance(obj, spec.stream_types + spec.async_stream_types):
                    if not any(obj is seen for seen in state["streams"]):  # parse() caches: attach once
                        state["streams"].append(obj)
                        (attach_stream if isinstance(obj, spec.stream_types) else attach_async_stream)(obj, call)
                else:
                    record()
                    if state["usage"] is not None:
                        set_token_usage(obj, state["usage"])
            except Exception:
                log.warning("llmledger: could not track a raw %s response", call.wrapper.provider, exc_info=True)
            return obj

        if _is_coroutine_function(parse):

            async def aparse(*args: Any, **kwargs: Any) -> Any:
                return tracked(await parse(*args, **kwargs))

            object.__setattr__(raw, "parse", aparse)
        else:

            def sparse(*args: Any, **kwargs: Any) -> Any:
                return tracked(parse(*args, **kwargs))

            object.__setattr__(raw, "parse", sparse)


def _is_read(http: Any) -> bool:
    try:
        http.content  # noqa: B018 - raises ResponseNotRead when the body was not read
        return True
    except Exception:
        return False


def _is_coroutine_function(fn: Callable[..., Any]) -> bool:
    import inspect

    return inspect.iscoroutinefunction(fn)


# ---------------------------------------------------------------------------------------------------------------
# Streams
# ---------------------------------------------------------------------------------------------------------------


class _StreamState:
    """Hands one stream's end to core (which records it once: later finishes are no-ops) and attaches the
    record to the caller's stream. A stream dropped without ever ending is recorded by core when its
    native object is dropped with it: nothing here holds the caller's stream (``target`` is weak)."""

    __slots__ = ("native", "wrapper", "target", "warned")

    def __init__(self, native: Any, call: Call, target: Any) -> None:
        self.native = native
        self.wrapper = call.wrapper
        self.warned = False
        self.target = weakref.ref(target)

    def push_failed(self) -> None:
        if not self.warned:
            self.warned = True
            log.warning("llmledger: could not read a %s stream event", self.wrapper.provider, exc_info=True)

    def finish(self, aborted: bool) -> None:
        try:
            usage = self.native.finish(aborted)
        except Exception:
            log.warning("llmledger: could not record a %s stream", self.wrapper.provider, exc_info=True)
            return
        if usage is None:
            return  # recorded already: a later end (close after the last chunk) is a no-op in core
        usage = self.wrapper.tracker.check(usage)
        target = self.target()
        if target is not None:
            set_token_usage(target, usage)


def _events_source(stream: Any) -> Any:
    """A copy of ``stream`` to run the SDK's own ``__stream__`` on, without the iterator the SDK made.

    Our iterator lives on the caller's stream and the SDK's generator on the copy, so nothing refers back
    to the caller's stream: dropping it closes both generators at once and drops the native stream, which
    core then records (no reference cycle to wait for; the copy's ``_iter_events`` holds it weakly)."""
    source = copy.copy(stream)
    source.__dict__.pop("_iterator", None)
    return source


def attach_stream(stream: Any, call: Call) -> None:
    native = call.start_stream()
    if native is None:
        return
    state = _StreamState(native, call, stream)
    source = _events_source(stream)
    source_ref = weakref.ref(source)  # alive while the SDK's generator below runs on it
    events = type(stream)._iter_events
    push = native.push  # the per-event path: one native call, no attribute lookups

    def _iter_events() -> Any:
        for sse in events(source_ref()):
            try:
                if push(sse.event, sse.data):
                    continue  # the usage-only chunk we asked for: the SDK never turns it into a chunk
            except Exception:
                state.push_failed()
            yield sse

    source._iter_events = _iter_events  # read lazily by the SDK's `__stream__` at its first step
    inner = type(stream).__stream__(source)

    def _iterator() -> Any:
        try:
            yield from inner
        except BaseException:  # provider error event, lost connection, GeneratorExit from close/GC
            state.finish(aborted=True)
            raise
        state.finish(aborted=False)

    stream._iterator = _iterator()
    ref, close = weakref.ref(stream), type(stream).close  # no strong reference back to the stream

    def _close() -> None:
        try:
            target = ref()
            if target is not None:
                close(target)
        finally:
            state.finish(aborted=True)

    stream.close = _close


def attach_async_stream(stream: Any, call: Call) -> None:
    native = call.start_stream()
    if native is None:
        return
    state = _StreamState(native, call, stream)
    source = _events_source(stream)
    source_ref = weakref.ref(source)  # alive while the SDK's generator below runs on it
    events = type(stream)._iter_events
    push = native.push

    async def _iter_events() -> Any:
        async for sse in events(source_ref()):
            try:
                if push(sse.event, sse.data):
                    continue
            except Exception:
                state.push_failed()
            yield sse

    source._iter_events = _iter_events
    inner = type(stream).__stream__(source)

    async def _iterator() -> Any:
        try:
            async for item in inner:
                yield item
        except BaseException:
            state.finish(aborted=True)
            raise
        state.finish(aborted=False)

    stream._iterator = _iterator()
    ref, close = weakref.ref(stream), type(stream).close

    async def _close() -> None:
        try:
            target = ref()
            if target is not None:
                await close(target)
        finally:
            state.finish(aborted=True)

    stream.close = _close


# ---------------------------------------------------------------------------------------------------------------
# The client
# ---------------------------------------------------------------------------------------------------------------


class ClientWrapper:
    """Installs the tracking ``request`` / ``_process_response`` on one client instance.

    ``tracker``: the tracker's native side (``_tracker._NativeRef``); ``client``: core's ``Client`` (provider
    decided once, requests classified, the ``wrap`` attribution)."""

    def __init__(self, tracker: Any, spec: Spec, client: Any) -> None:
        self.tracker = tracker
        self.spec = spec
        self.client = client
        self.provider: str = client.provider

    def install(self, client: Any, is_async: bool) -> None:
        request = client.request
        process = client._process_response
        spec = self.spec
        wrapper = self
        native_client = self.client
        classify = native_client.classify
        context = _context.current

        def begin(options: Any, stream: bool) -> Tuple[Any, Optional[Call]]:
            try:
                api = classify(options.method, options.url)
                if api is None:
                    return options, None
                data = options.json_data if isinstance(options.json_data, dict) else None
                extra = options.extra_json if isinstance(options.extra_json, dict) else None
                call = wrapper.tracker.begin(native_client, api, options.url, data, extra, stream, context())
                if call.inject_include_usage:
                    options = with_include_usage(options, data)
                if call.wants_request_body:
                    body = dump_request(data)
                    if body is not None:
                        call.set_request_body(body)
                return options, Call(wrapper, call)
            except Exception:
                log.warning("llmledger: could not start tracking a %s call", wrapper.provider, exc_info=True)
                return options, None

        def admit(call: Call) -> None:
            """Spend control, before anything is sent: raises ``BudgetExceeded`` (the one error tracking
            lets through to the caller); any other failure is logged and the call goes ahead."""
            try:
                call.native.admit()
            except BudgetExceeded:
                raise
            except Exception:
                log.warning("llmledger: could not check a %s call's budget", wrapper.provider, exc_info=True)

        def _process_response(*args: Any, **kwargs: Any) -> Any:
            call = _CALL.get()
            if call is not None:
                call.http = kwargs.get("response")
            return process(*args, **kwargs)

        if is_async:

            async def _process_response_async(*args: Any, **kwargs: Any) -> Any:
                call = _CALL.get()
                if call is not None:
                    call.http = kwargs.get("response")
                return await process(*args, **kwargs)

            async def aadmit(call: Call) -> None:
                # A reservation is a store transaction: run it off the event loop (only when there is one).
                if call.native.checks_spend:
                    await asyncio.get_running_loop().run_in_executor(None, admit, call)

            async def arequest(cast_to: Any, options: Any, *, stream: bool = False, stream_cls: Any = None) -> Any:
                options, call = begin(options, stream)
                if call is None:
                    return await request(cast_to, options, stream=stream, stream_cls=stream_cls)
                await aadmit(call)
                token = _CALL.set(call)
                try:
                    result = await request(cast_to, options, stream=stream, stream_cls=stream_cls)
                except spec.api_error as err:
                    call.record_failure(err)
                    raise
                finally:
                    _CALL.reset(token)
                return call.done(result, stream)

            client.request = arequest
            client._process_response = _process_response_async
        else:

            def srequest(cast_to: Any, options: Any, *, stream: bool = False, stream_cls: Any = None) -> Any:
                options, call = begin(options, stream)
                if call is None:
                    return request(cast_to, options, stream=stream, stream_cls=stream_cls)
                admit(call)
                token = _CALL.set(call)
                try:
                    result = request(cast_to, options, stream=stream, stream_cls=stream_cls)
                except spec.api_error as err:
                    call.record_failure(err)
                    raise
                finally:
                    _CALL.reset(token)
                return call.done(result, stream)

            client.request = srequest
            client._process_response = _process_response
