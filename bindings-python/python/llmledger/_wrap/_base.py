"""Interception shared by the openai and anthropic SDK wrappers.

Both SDKs are generated from the same template: every API call goes through ``client.request(cast_to,
options, stream=..., stream_cls=...)``, which retries, raises the SDK's ``APIStatusError`` on 4xx/5xx, and
hands the final HTTP response to ``client._process_response(...)``. ``wrap`` therefore works on a copy of
the caller's client (same class, same HTTP connection pool) whose ``request`` and ``_process_response``
are instance-level wrappers. Every resource (``chat.completions``, ``with_raw_response``, the ``stream``
helpers, ``beta.messages``, …) is reached through them, results stay the SDK's own objects, and arguments
pass through untouched (except ``stream_options.include_usage``, added to OpenAI chat streams).

Usage reaches Rust as raw bytes: the response body of a non-streaming call, and each raw Server-Sent Event
of a stream (``_iter_events`` of the SDK's ``Stream`` is replaced on the instance before iteration starts).
Tracking never raises into the caller: failures are logged on the ``llmledger`` logger.
"""

from __future__ import annotations

import copy
import json
import logging
import weakref
from contextvars import ContextVar
from time import perf_counter_ns
from typing import Any, Callable, Mapping, Optional, Tuple

from .. import _context
from .._context import Attribution

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


class Spec:
    """What differs between SDKs; see ``_wrap/openai.py`` and ``_wrap/anthropic.py``."""

    stream_types: Tuple[type, ...] = ()
    async_stream_types: Tuple[type, ...] = ()
    raw_types: Tuple[type, ...] = ()
    api_error: type = Exception

    def classify(self, options: Any) -> Optional[str]:
        """The core ``Api`` name of the call, or None to pass it through untracked."""
        raise NotImplementedError

    def needs_request_json(self, api: str, stream: bool, data: Mapping[str, Any]) -> bool:
        # Streams: the prompt is estimated when no usage comes. Tools: a web search's context size is priced.
        return stream or api in ("images", "audio_speech") or "tools" in data or "web_search_options" in data

    def inject_usage(self, api: str, options: Any, stream: bool) -> Tuple[Any, bool]:
        """Options to send (maybe asking for stream usage) and whether the extra usage chunk must be hidden."""
        return options, False


class Call:
    """One tracked API call, from ``request`` to the recorded event."""

    __slots__ = ("wrapper", "api", "model", "attribution", "request_json", "start", "http", "hide", "service_tier")

    def __init__(self, wrapper: "ClientWrapper", api: str, options: Any, stream: bool, hide: bool) -> None:
        self.wrapper = wrapper
        self.api = api
        data = options.json_data if isinstance(options.json_data, dict) else {}
        model = data.get("model")
        if model is None and isinstance(getattr(options, "extra_json", None), dict):
            model = options.extra_json.get("model")
        self.model = str(model) if model is not None else ""
        tier = data.get("service_tier")
        self.service_tier = tier if isinstance(tier, str) else None
        self.attribution = _context.resolve(wrapper.attribution)
        self.request_json = dump_request(data) if wrapper.spec.needs_request_json(api, stream, data) else None
        self.hide = hide
        self.http: Any = None
        self.start = perf_counter_ns()

    def elapsed_ms(self) -> int:
        return (perf_counter_ns() - self.start) // 1_000_000

    # -- recording (never raises) ----------------------------------------------------------------------------

    def body(self) -> Any:
        """The response body Rust parses. Text-to-speech is priced from the request; its body is audio."""
        return b"{}" if self.api == "audio_speech" else self.http.content

    def record_body(self, body: Any) -> Any:
        try:
            return self.wrapper.native.record_response(
                self.wrapper.provider,
                self.api,
                self.model,
                self.attribution,
                self.request_json,
                body,
                self.elapsed_ms(),
                self.service_tier,
            )
        except Exception:
            log.warning("llmledger: could not record a %s %s call", self.wrapper.provider, self.api, exc_info=True)
            return None

    def record_failure(self, err: BaseException) -> None:
        try:
            usage = self.wrapper.native.record_failure(
                self.wrapper.provider, self.api, self.model, self.attribution, type(err).__name__, self.elapsed_ms()
            )
            set_token_usage(err, usage)
        except Exception:
            log.warning("llmledger: could not record a failed %s call", self.wrapper.provider, exc_info=True)

    def start_stream(self) -> Any:
        try:
            return self.wrapper.native.start_stream(
                self.wrapper.provider, self.api, self.model, self.attribution, self.request_json, self.hide,
                self.service_tier,
            )
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
                set_token_usage(result, self.record_body(self.body()))
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
                state["usage"] = call.record_body(call.body())
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
    """Records one stream exactly once: at its end, when it breaks, or when it is closed or dropped."""

    __slots__ = ("native", "call", "finished", "target", "warned", "__weakref__")

    def __init__(self, native: Any, call: Call, target: Any) -> None:
        self.native = native
        self.call = call
        self.finished = False
        self.warned = False
        self.target = weakref.ref(target)
        # A stream dropped without ever being iterated or closed is still recorded (as abandoned).
        weakref.finalize(target, self.finish, True)

    def push_failed(self) -> None:
        if not self.warned:
            self.warned = True
            log.warning("llmledger: could not read a %s stream event", self.call.wrapper.provider, exc_info=True)

    def finish(self, aborted: bool) -> None:
        if self.finished:
            return
        self.finished = True
        try:
            usage = self.call.wrapper.native.check(self.native.finish(self.call.elapsed_ms(), aborted))
        except Exception:
            log.warning("llmledger: could not record a %s stream", self.call.wrapper.provider, exc_info=True)
            return
        target = self.target()
        if target is not None:
            set_token_usage(target, usage)


def _events_source(stream: Any) -> Any:
    """A copy of ``stream`` to run the SDK's own ``__stream__`` on, without the iterator the SDK made.

    Our iterator lives on the caller's stream and the SDK's generator on the copy, so nothing refers back
    to the caller's stream: dropping it closes both generators at once (no reference cycle to wait for)."""
    source = copy.copy(stream)
    source.__dict__.pop("_iterator", None)
    return source


def attach_stream(stream: Any, call: Call) -> None:
    native = call.start_stream()
    if native is None:
        return
    state = _StreamState(native, call, stream)
    source = _events_source(stream)
    events = type(stream)._iter_events
    push = native.push  # the per-event path: one native call, no attribute lookups

    def _iter_events() -> Any:
        for sse in events(source):
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
    events = type(stream)._iter_events
    push = native.push

    async def _iter_events() -> Any:
        async for sse in events(source):
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
    """Installs the tracking ``request`` / ``_process_response`` on one client instance."""

    def __init__(self, native: Any, spec: Spec, provider: str, attribution: Attribution) -> None:
        self.native = native
        self.spec = spec
        self.provider = provider
        self.attribution = attribution

    def install(self, client: Any, is_async: bool) -> None:
        request = client.request
        process = client._process_response
        spec = self.spec
        wrapper = self

        def begin(options: Any, stream: bool) -> Tuple[Any, Optional[Call]]:
            try:
                api = spec.classify(options)
                if api is None:
                    return options, None
                options, hide = spec.inject_usage(api, options, stream)
                return options, Call(wrapper, api, options, stream, hide)
            except Exception:
                log.warning("llmledger: could not start tracking a %s call", wrapper.provider, exc_info=True)
                return options, None

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

            async def arequest(cast_to: Any, options: Any, *, stream: bool = False, stream_cls: Any = None) -> Any:
                options, call = begin(options, stream)
                if call is None:
                    return await request(cast_to, options, stream=stream, stream_cls=stream_cls)
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
