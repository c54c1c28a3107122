#!/usr/bin/env python3
"""A local mock of the OpenAI, Azure OpenAI, xAI and Anthropic HTTP APIs, for the binding test suites.

Stdlib only (Python >= 3.9). Serves JSON and `text/event-stream` responses that the official SDKs parse as
if they came from the real APIs, including error statuses and SSE error events. See README.md for the CLI,
the routes and how a request selects a case.

    python3 tests/mock_provider/server.py --port 0      # first stdout line: "PORT <n>"
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple
from urllib.parse import urlsplit

HERE = Path(__file__).resolve().parent
VECTORS_DIR = HERE.parent / "vectors"

# Route suffixes, longest first so that `/messages/count_tokens` wins over `/messages`.
ROUTES = [
    ("/messages/count_tokens", "anthropic_count_tokens"),
    ("/chat/completions", "chat"),
    ("/responses", "responses"),
    ("/embeddings", "embeddings"),
    ("/images/generations", "images"),
    ("/audio/transcriptions", "transcriptions"),
    ("/audio/speech", "speech"),
    ("/messages", "anthropic_messages"),
]

TEXT = ["Hello", " from", " the", " mock", "."]

_ids = itertools.count(1)
_RUN = uuid.uuid4().hex[:8]


def new_id(prefix: str) -> str:
    """A fresh response id, unique across server runs too: real providers never repeat one, and the ledger
    uses it as the idempotency key (a persistent PostgreSQL ledger outlives one server process)."""
    return f"{prefix}{_RUN}{next(_ids):06d}"


# ---------------------------------------------------------------------------------------------------------------
# Default bodies. Usage numbers are fixed so tests can compute exact expected costs.
# ---------------------------------------------------------------------------------------------------------------


def chat_usage(model: str) -> Dict[str, Any]:
    return {
        "prompt_tokens": 120,
        "completion_tokens": 45,
        "total_tokens": 165,
        "prompt_tokens_details": {"cached_tokens": 20, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def chat_body(model: str, req: Dict[str, Any]) -> Dict[str, Any]:
    return {
        "id": new_id("chatcmpl-mock-"),
        "object": "chat.completion",
        "created": 1_760_000_000,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "".join(TEXT), "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": chat_usage(model),
        "service_tier": "default",
        "system_fingerprint": "fp_mock",
    }


def chat_stream(
    model: str, req: Dict[str, Any], with_usage: bool, pieces: List[str] = TEXT
) -> Iterator[Tuple[Optional[str], str]]:
    base = {"id": new_id("chatcmpl-mock-"), "object": "chat.completion.chunk", "created": 1_760_000_000, "model": model}
    base["service_tier"] = "default"
    base["system_fingerprint"] = "fp_mock"
    extra = {"usage": None} if with_usage else {}
    first = {"index": 0, "delta": {"role": "assistant", "content": ""}, "logprobs": None, "finish_reason": None}
    yield None, json.dumps({**base, "choices": [first], **extra})
    for piece in pieces:
        choice = {"index": 0, "delta": {"content": piece}, "logprobs": None, "finish_reason": None}
        yield None, json.dumps({**base, "choices": [choice], **extra})
    yield None, json.dumps({**base, "choices": [{"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}], **extra})
    if with_usage:
        yield None, json.dumps({**base, "choices": [], "usage": chat_usage(model)})
    yield None, "[DONE]"


def responses_usage() -> Dict[str, Any]:
    return {
        "input_tokens": 200,
        "input_tokens_details": {"cached_tokens": 50},
        "output_tokens": 80,
        "output_tokens_details": {"reasoning_tokens": 30},
        "total_tokens": 280,
    }


def responses_body(model: str, req: Dict[str, Any], status: str = "completed") -> Dict[str, Any]:
    return {
        "id": new_id("resp_mock_"),
        "object": "response",
        "created_at": 1_760_000_000,
        "status": status,
        "model": model,
        "output": [
            {
                "type": "message",
                "id": "msg_mock_1",
                "status": "completed",
                "role": "assistant",
                "content": [{"type": "output_text", "text": "".join(TEXT), "annotations": []}],
            }
        ],
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
        "usage": responses_usage() if status == "completed" else None,
        "service_tier": "default",
    }


def responses_stream(model: str, req: Dict[str, Any], with_usage: bool) -> Iterator[Tuple[Optional[str], str]]:
    seq = 0

    def ev(kind: str, payload: Dict[str, Any]) -> Tuple[str, str]:
        nonlocal seq
        seq += 1
        return kind, json.dumps({"type": kind, "sequence_number": seq, **payload})

    created = responses_body(model, req, status="in_progress")
    created["output"] = []
    response_id = created["id"]
    yield ev("response.created", {"response": created})
    item = {"type": "message", "id": "msg_mock_1", "status": "in_progress", "role": "assistant", "content": []}
    yield ev("response.output_item.added", {"output_index": 0, "item": item})
    where = {"item_id": "msg_mock_1", "output_index": 0, "content_index": 0}
    part = {"type": "output_text", "text": "", "annotations": []}
    yield ev("response.content_part.added", {**where, "part": part})
    for piece in TEXT:
        yield ev("response.output_text.delta", {**where, "delta": piece, "logprobs": []})
    text = "".join(TEXT)
    yield ev("response.output_text.done", {**where, "text": text, "logprobs": []})
    yield ev("response.content_part.done", {**where, "part": {**part, "text": text}})
    done = dict(responses_body(model, req), id=response_id)
    yield ev("response.output_item.done", {"output_index": 0, "item": done["output"][0]})
    if not with_usage:
        done["usage"] = None
    yield ev("response.completed", {"response": done})


def anthropic_usage() -> Dict[str, Any]:
    return {
        "input_tokens": 300,
        "cache_creation_input_tokens": 100,
        "cache_read_input_tokens": 1000,
        "output_tokens": 60,
        "service_tier": "standard",
    }


def anthropic_body(model: str, req: Dict[str, Any]) -> Dict[str, Any]:
    return {
        "id": new_id("msg_mock_"),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": "".join(TEXT)}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": anthropic_usage(),
    }


def anthropic_stream(model: str, req: Dict[str, Any], with_usage: bool) -> Iterator[Tuple[Optional[str], str]]:
    start_usage = dict(anthropic_usage(), output_tokens=1)
    msg = dict(anthropic_body(model, req), content=[], stop_reason=None, usage=start_usage)
    yield "message_start", json.dumps({"type": "message_start", "message": msg})
    yield "content_block_start", json.dumps(
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}
    )
    yield "ping", json.dumps({"type": "ping"})
    for piece in TEXT:
        yield "content_block_delta", json.dumps(
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}}
        )
    yield "content_block_stop", json.dumps({"type": "content_block_stop", "index": 0})
    delta_usage = {"output_tokens": anthropic_usage()["output_tokens"]}
    yield "message_delta", json.dumps(
        {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None}, "usage": delta_usage}
    )
    yield "message_stop", json.dumps({"type": "message_stop"})


def embeddings_body(model: str, req: Dict[str, Any]) -> Dict[str, Any]:
    inputs = req.get("input")
    n = len(inputs) if isinstance(inputs, list) and inputs and not isinstance(inputs[0], int) else 1
    data = [{"object": "embedding", "index": i, "embedding": [0.0, 0.5, -0.25]} for i in range(n)]
    return {"object": "list", "data": data, "model": model, "usage": {"prompt_tokens": 8 * n, "total_tokens": 8 * n}}


def images_body(model: str, req: Dict[str, Any]) -> Dict[str, Any]:
    n = int(req.get("n") or 1)
    body: Dict[str, Any] = {"created": 1_760_000_000, "data": [{"b64_json": "AAAA"} for _ in range(n)]}
    if model.startswith("gpt-image"):
        body["usage"] = {
            "input_tokens": 50,
            "input_tokens_details": {"text_tokens": 50, "image_tokens": 0},
            "output_tokens": 4160 * n,
            "total_tokens": 50 + 4160 * n,
        }
    return body


def transcription_body(model: str, req: Dict[str, Any]) -> Dict[str, Any]:
    body: Dict[str, Any] = {"text": "hello from the mock"}
    if not model.startswith("whisper"):
        body["usage"] = {
            "type": "tokens",
            "input_tokens": 70,
            "input_token_details": {"text_tokens": 0, "audio_tokens": 70},
            "output_tokens": 9,
            "total_tokens": 79,
        }
    else:
        body["usage"] = {"type": "duration", "seconds": 12}
    return body


def anthropic_count_tokens_body(model: str, req: Dict[str, Any]) -> Dict[str, Any]:
    return {"input_tokens": 42}


# ---------------------------------------------------------------------------------------------------------------
# Errors in each provider's shape
# ---------------------------------------------------------------------------------------------------------------

ERROR_TYPES = {
    400: ("invalid_request_error", "invalid_request_error"),
    401: ("invalid_request_error", "authentication_error"),
    404: ("invalid_request_error", "not_found_error"),
    429: ("rate_limit_exceeded", "rate_limit_error"),
    500: ("server_error", "api_error"),
    503: ("server_error", "overloaded_error"),
    529: ("server_error", "overloaded_error"),
}


def error_body(route: str, status: int) -> Dict[str, Any]:
    openai_type, anthropic_type = ERROR_TYPES.get(status, ("server_error", "api_error"))
    message = f"mock error {status}"
    if route.startswith("anthropic"):
        return {"type": "error", "error": {"type": anthropic_type, "message": message}}
    return {"error": {"message": message, "type": openai_type, "param": None, "code": openai_type}}


def sse_error_event(route: str) -> Tuple[Optional[str], str]:
    if route.startswith("anthropic"):
        return "error", json.dumps({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
    if route == "responses":
        return "error", json.dumps({"type": "error", "code": "server_error", "message": "mock stream error"})
    return None, json.dumps({"error": {"message": "mock stream error", "type": "server_error", "code": "server_error"}})


# ---------------------------------------------------------------------------------------------------------------
# Shared vectors (tests/vectors/): a vector that carries a recorded response can be served by name.
# ---------------------------------------------------------------------------------------------------------------


def load_vectors(directory: Path) -> Dict[str, Dict[str, Any]]:
    """Every case of every `*.json` file in `directory` (see tests/vectors/README.md), keyed by `name`."""
    vectors: Dict[str, Dict[str, Any]] = {}
    if not directory.is_dir():
        return vectors
    for path in sorted(directory.glob("*.json")):
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        for case in doc if isinstance(doc, list) else []:
            if isinstance(case, dict) and isinstance(case.get("name"), str):
                case["_dir"] = str(directory)
                vectors[case["name"]] = case
    return vectors


def vector_reply(vector: Dict[str, Any]) -> Optional[Tuple[str, Any]]:
    """How to serve a case: `("json", body)`, `("raw", text)`, `("sse", [(event, data), ...])` or
    `("sse_raw", transcript)`; None for a case with nothing to serve (speech cases read only the request)."""
    if isinstance(vector.get("response"), (dict, list)):
        return "json", vector["response"]
    if isinstance(vector.get("response_raw"), str):
        return "raw", vector["response_raw"]
    if isinstance(vector.get("stream"), list):
        events: List[Tuple[Optional[str], str]] = []
        for ev in vector["stream"]:
            if isinstance(ev, dict):
                data = ev.get("data")
                events.append((ev.get("event"), data if isinstance(data, str) else json.dumps(data)))
        return "sse", events
    if isinstance(vector.get("stream_file"), str):
        path = Path(vector.get("_dir", str(VECTORS_DIR))) / vector["stream_file"]
        return "sse_raw", path.read_text(encoding="utf-8")
    return None


# ---------------------------------------------------------------------------------------------------------------
# The server
# ---------------------------------------------------------------------------------------------------------------


class MockState:
    def __init__(self, vectors_dir: Path) -> None:
        self.vectors_dir = vectors_dir
        self._vectors: Optional[Dict[str, Dict[str, Any]]] = None
        self.lock = threading.Lock()
        self.requests: List[Dict[str, Any]] = []

    @property
    def vectors(self) -> Dict[str, Dict[str, Any]]:
        with self.lock:
            if self._vectors is None:
                self._vectors = load_vectors(self.vectors_dir)
            return self._vectors


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "llmledger-mock/1"
    # Headers and body go out as separate writes: without TCP_NODELAY, Nagle plus delayed ACKs stall each
    # keep-alive response by ~40 ms.
    disable_nagle_algorithm = True
    state: MockState  # set on the subclass made by `make_server`

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        if os.environ.get("MOCK_PROVIDER_VERBOSE"):
            sys.stderr.write("mock: " + (format % args) + "\n")

    # -- helpers ------------------------------------------------------------------------------------------------

    def _send_json(self, status: int, body: Any, headers: Optional[Dict[str, str]] = None) -> None:
        raw = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(raw)))
        self.send_header("x-request-id", "req_mock_1")
        self.send_header("request-id", "req_mock_1")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(raw)

    def _send_raw(self, raw: bytes, content_type: str) -> None:
        self.send_response(200)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(raw)))
        self.send_header("x-request-id", "req_mock_1")
        self.send_header("request-id", "req_mock_1")
        self.end_headers()
        self.wfile.write(raw)

    def _send_sse(self, events: Iterator[Tuple[Optional[str], str]], *, cut_after: Optional[int] = None) -> None:
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("cache-control", "no-cache")
        self.send_header("x-request-id", "req_mock_1")
        self.send_header("request-id", "req_mock_1")
        self.send_header("connection", "close")
        self.end_headers()
        self.close_connection = True
        delay = float(self.headers.get("x-mock-chunk-delay", "0") or 0)
        try:
            for i, (event, data) in enumerate(events):
                if cut_after is not None and i >= cut_after:
                    return  # drop the connection mid-stream
                frame = (f"event: {event}\n" if event else "") + f"data: {data}\n\n"
                self.wfile.write(frame.encode())
                self.wfile.flush()
                if delay:
                    time.sleep(delay)
        except (BrokenPipeError, ConnectionResetError):
            return

    def _read_body(self) -> Tuple[bytes, Dict[str, Any]]:
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        ctype = self.headers.get("content-type", "")
        if "application/json" in ctype and raw:
            try:
                parsed = json.loads(raw)
                return raw, parsed if isinstance(parsed, dict) else {}
            except ValueError:
                return raw, {}
        if "multipart/form-data" in ctype:
            return raw, parse_multipart_fields(raw, ctype)
        return raw, {}

    # -- verbs --------------------------------------------------------------------------------------------------

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        path = urlsplit(self.path).path
        if path == "/_mock/requests":
            with self.state.lock:
                self._send_json(200, self.state.requests)
        elif path == "/_mock/health":
            self._send_json(200, {"ok": True})
        elif admin_get(self, path, urlsplit(self.path).query):  # the admin cost APIs' own section below
            pass
        else:
            self._send_json(404, error_body("openai", 404))

    def do_DELETE(self) -> None:  # noqa: N802
        if urlsplit(self.path).path == "/_mock/requests":
            with self.state.lock:
                self.state.requests.clear()
            self._send_json(200, {"ok": True})
        else:
            self._send_json(404, error_body("openai", 404))

    def do_POST(self) -> None:  # noqa: N802
        split = urlsplit(self.path)
        _, req = self._read_body()
        route = next((name for suffix, name in ROUTES if split.path.rstrip("/").endswith(suffix)), None)
        with self.state.lock:
            self.state.requests.append(
                {"path": split.path, "query": split.query, "headers": {k.lower(): v for k, v in self.headers.items()},
                 "body": req}
            )
        if route is None:
            self._send_json(404, error_body("openai", 404))
            return
        model = str(req.get("model") or deployment_of(split.path) or "mock-model")
        case = self.headers.get("x-mock-case") or ""
        stream = bool(req.get("stream"))

        status = self.headers.get("x-mock-status") or (case[len("status_"):] if case.startswith("status_") else "")
        if status:
            code = int(status)
            headers = {"retry-after-ms": "1"} if code in (429, 500, 503, 529) else {}
            self._send_json(code, error_body(route, code), headers)
            return

        vector = self.state.vectors.get(case) or self.state.vectors.get(model)
        reply = vector_reply(vector) if vector else None
        if reply is not None:
            kind, payload = reply
            if kind == "json":
                self._send_json(200, payload)
            elif kind == "raw":
                self._send_raw(payload.encode(), "application/json")
            elif kind == "sse":
                self._send_sse(iter(payload))
            else:
                self._send_raw(payload.encode(), "text/event-stream")
            return
        if case and case not in CASES and vector is None:
            self._send_json(400, {"error": {"message": f"unknown x-mock-case {case!r}", "type": "mock"}})
            return

        if stream:
            self._stream_reply(route, model, req, case)
        else:
            self._json_reply(route, model, req, case)

    def _json_reply(self, route: str, model: str, req: Dict[str, Any], case: str) -> None:
        builders = {
            "chat": chat_body,
            "responses": responses_body,
            "embeddings": embeddings_body,
            "images": images_body,
            "transcriptions": transcription_body,
            "anthropic_messages": anthropic_body,
            "anthropic_count_tokens": anthropic_count_tokens_body,
        }
        if route == "speech":
            raw = b"\x00" * 64
            self.send_response(200)
            self.send_header("content-type", "audio/mpeg")
            self.send_header("content-length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)
            return
        body = builders[route](model, req)
        if case == "no_usage":
            body.pop("usage", None)
        self._send_json(200, body)

    def _stream_reply(self, route: str, model: str, req: Dict[str, Any], case: str) -> None:
        include_usage = bool((req.get("stream_options") or {}).get("include_usage"))
        if case == "no_usage":
            include_usage = False
        if route == "chat":
            chunks = int(self.headers.get("x-mock-chunks", "0") or 0)
            pieces = [f" w{i}" for i in range(chunks)] if chunks > 0 else TEXT
            events = list(chat_stream(model, req, include_usage, pieces))
        elif route == "responses":
            events = list(responses_stream(model, req, case != "no_usage"))
        elif route == "anthropic_messages":
            events = list(anthropic_stream(model, req, True))
        else:
            self._send_json(400, error_body(route, 400))
            return
        if case == "sse_error":
            # A few content events, then the provider's error event (no final usage).
            self._send_sse(iter(events[:3] + [sse_error_event(route)]))
            return
        cut = 3 if case == "disconnect" else None
        self._send_sse(iter(events), cut_after=cut)


CASES = {"no_usage", "sse_error", "disconnect"}


def deployment_of(path: str) -> Optional[str]:
    parts = path.split("/")
    if "deployments" in parts:
        i = parts.index("deployments")
        if i + 1 < len(parts):
            return parts[i + 1]
    return None


def parse_multipart_fields(raw: bytes, ctype: str) -> Dict[str, Any]:
    """Plain text fields of a multipart/form-data body (enough for `model`, `stream`)."""
    boundary = ctype.split("boundary=", 1)[-1].strip().strip('"').encode()
    fields: Dict[str, Any] = {}
    for part in raw.split(b"--" + boundary):
        head, _, value = part.partition(b"\r\n\r\n")
        if b'name="' not in head or b"filename=" in head:
            continue
        name = head.split(b'name="', 1)[1].split(b'"', 1)[0].decode()
        text = value.rstrip(b"\r\n").decode(errors="replace")
        fields[name] = {"true": True, "false": False}.get(text, text)
    return fields


# ======================================================================================================================
# Admin cost APIs (issue 11: `llmledger pull openai|anthropic`). Self-contained: GET routes only, hooked from do_GET by
# one line. Fixed figures for 2026-11-01 .. 2026-11-03, one daily bucket per page (cursor `page_<n>`), so tests can
# check pagination and hand sums:
#   OpenAI /v1/organization/costs (amount.value in USD): 11-01 proj_a gpt-4o input 1.25 + output 2.5; 11-02 proj_b
#     gpt-4o-mini input 0.0375; 11-03 proj_a gpt-4o input 0.1 and 0.2 (two results of one key) -> total 4.0875.
#   Anthropic /v1/organizations/cost_report (amount in cents, a decimal string): 11-01 wrk_1 Sonnet 4 input "1234.5";
#     11-02 wrk_1 Sonnet 4 output "250"; 11-03 default workspace (null) Haiku 4.5 input "0.375" -> 14.84875 USD.
# Behaviour is chosen by the key (Authorization: Bearer / x-api-key):
#   not an admin key (sk-admin-… / sk-ant-admin…) or containing `revoked` -> 401 with the provider's error JSON;
#   containing `rate429` -> the first request for page_1 answers 429 with only `retry-after: 1`;
#   containing `fail2` -> the first 3 requests for page_2 answer 500 (a pull with 1 retry fails there, the next resumes).
# Usage APIs (billed usage per bucket; the bucket starts at the day's midnight whatever bucket_width asks, and
# `end_time`/`ending_at` adds the width). Pages as above, one bucket each; an endpoint not listed has one empty page:
#   OpenAI /v1/organization/usage/completions: 11-01 proj_a gpt-4o key_1 batch false in 1000 out 500 cached 200
#     requests 3, and batch true in 4000 out 100 cached 0 requests 1; 11-02 proj_b gpt-4o-mini key_2 batch false in 250
#     out 50 cached 0 requests 2 (audio tokens 0 throughout) -> input 5250, output 650, cached 200, requests 6.
#     embeddings 11-01 proj_a text-embedding-3-small key_1 input 7000 requests 4; images 11-02 proj_b gpt-image-1 key_2
#     1024x1024 image.generation images 2 requests 2; audio_speeches 11-03 proj_a tts-1 characters 1200 requests 1;
#     audio_transcriptions 11-03 proj_a whisper-1 seconds 95 requests 1; moderations none; vector_stores 11-01 proj_a
#     usage_bytes 1048576; code_interpreter_sessions 11-01 proj_a num_sessions 3 -> 28 metric rows over 9 pages.
#   Anthropic /v1/organizations/usage_report/messages: 11-01 wrk_1 Sonnet 4 apikey_1 standard 0-200k uncached 1500,
#     cache 1h 1000 / 5m 300, read 5000, output 700, web search 2; 11-02 default workspace Haiku 4.5 apikey_2 batch
#     0-200k uncached 800, output 90, the rest 0; 11-03 wrk_1 Sonnet 4 apikey_1 priority 200k-1m uncached 10, 5m 20,
#     output 5, web search 1, the rest 0 -> uncached 2310, 1h 1000, 5m 320, read 5000, output 795, web 3; 18 rows.
# GET /_mock/admin_requests lists [{key_tag, path, page, status, bucket_width}] (key_tag: the key's last 8 characters).
# ======================================================================================================================

ADMIN_DAYS = ["2026-11-01", "2026-11-02", "2026-11-03"]
ADMIN_OPENAI = [
    [(1.25, "gpt-4o-2024-08-06, input", "proj_a"), (2.5, "gpt-4o-2024-08-06, output", "proj_a")],
    [(0.0375, "gpt-4o-mini-2024-07-18, input", "proj_b")],
    [(0.1, "gpt-4o-2024-08-06, input", "proj_a"), (0.2, "gpt-4o-2024-08-06, input", "proj_a")],
]
ADMIN_ANTHROPIC = [
    [("1234.5", "wrk_1", "Claude Sonnet 4 Usage - Input Tokens", "claude-sonnet-4-20250514")],
    [("250", "wrk_1", "Claude Sonnet 4 Usage - Output Tokens", "claude-sonnet-4-20250514")],
    [("0.375", None, "Claude Haiku 4.5 Usage - Input Tokens", "claude-haiku-4-5-20251001")],
]

def _oa_completion(proj: str, model: str, key: str, batch: bool, inp: int, out: int, cached: int, n: int) -> Dict[str, Any]:
    return {"object": "organization.usage.completions.result", "input_tokens": inp, "output_tokens": out,
            "input_cached_tokens": cached, "input_audio_tokens": 0, "output_audio_tokens": 0, "num_model_requests": n,
            "project_id": proj, "user_id": None, "api_key_id": key, "model": model, "batch": batch}


def _an_messages(wrk: Optional[str], model: str, key: str, tier: str, window: str, uncached: int, c1h: int, c5m: int,
                 read: int, out: int, web: int) -> Dict[str, Any]:
    return {"uncached_input_tokens": uncached,
            "cache_creation": {"ephemeral_1h_input_tokens": c1h, "ephemeral_5m_input_tokens": c5m},
            "cache_read_input_tokens": read, "output_tokens": out, "server_tool_use": {"web_search_requests": web},
            "api_key_id": key, "workspace_id": wrk, "model": model, "service_tier": tier, "context_window": window}


# endpoint -> [(day index, [results])], one page per entry.
ADMIN_USAGE: Dict[str, List[Tuple[int, List[Dict[str, Any]]]]] = {
    "completions": [
        (0, [_oa_completion("proj_a", "gpt-4o-2024-08-06", "key_1", False, 1000, 500, 200, 3),
             _oa_completion("proj_a", "gpt-4o-2024-08-06", "key_1", True, 4000, 100, 0, 1)]),
        (1, [_oa_completion("proj_b", "gpt-4o-mini-2024-07-18", "key_2", False, 250, 50, 0, 2)]),
    ],
    "embeddings": [(0, [{"object": "organization.usage.embeddings.result", "input_tokens": 7000,
                         "num_model_requests": 4, "project_id": "proj_a", "user_id": None, "api_key_id": "key_1",
                         "model": "text-embedding-3-small"}])],
    "images": [(1, [{"object": "organization.usage.images.result", "images": 2, "num_model_requests": 2,
                     "size": "1024x1024", "source": "image.generation", "project_id": "proj_b", "user_id": None,
                     "api_key_id": "key_2", "model": "gpt-image-1"}])],
    "audio_speeches": [(2, [{"object": "organization.usage.audio_speeches.result", "characters": 1200,
                             "num_model_requests": 1, "project_id": "proj_a", "user_id": None, "api_key_id": None,
                             "model": "tts-1"}])],
    "audio_transcriptions": [(2, [{"object": "organization.usage.audio_transcriptions.result", "seconds": 95,
                                   "num_model_requests": 1, "project_id": "proj_a", "user_id": None,
                                   "api_key_id": None, "model": "whisper-1"}])],
    "vector_stores": [(0, [{"object": "organization.usage.vector_stores.result", "usage_bytes": 1048576,
                            "project_id": "proj_a"}])],
    "code_interpreter_sessions": [(0, [{"object": "organization.usage.code_interpreter_sessions.result",
                                        "num_sessions": 3, "project_id": "proj_a"}])],
    "messages": [
        (0, [_an_messages("wrk_1", "claude-sonnet-4-20250514", "apikey_1", "standard", "0-200k",
                          1500, 1000, 300, 5000, 700, 2)]),
        (1, [_an_messages(None, "claude-haiku-4-5-20251001", "apikey_2", "batch", "0-200k", 800, 0, 0, 0, 90, 0)]),
        (2, [_an_messages("wrk_1", "claude-sonnet-4-20250514", "apikey_1", "priority", "200k-1m", 10, 0, 20, 0, 5, 1)]),
    ],
}
ADMIN_WIDTHS = {"1m": 60, "1h": 3600, "1d": 86400}
ADMIN_LOCK = threading.Lock()
ADMIN_LOG: List[Dict[str, Any]] = []
ADMIN_COUNTS: Dict[Tuple[str, str, str], int] = {}


def admin_get(handler: "Handler", path: str, query: str) -> bool:
    """Answers an admin cost API route; False when `path` is not one."""
    from datetime import datetime, timezone
    from urllib.parse import parse_qs

    if path == "/_mock/admin_requests":
        with ADMIN_LOCK:
            handler._send_json(200, list(ADMIN_LOG))
        return True
    if path.endswith("/v1/organization/costs"):
        provider, key = "openai", (handler.headers.get("authorization") or "").removeprefix("Bearer ")
        admin = key.startswith("sk-admin-")
    elif path.endswith("/v1/organizations/cost_report") or path.endswith("/v1/organizations/usage_report/messages"):
        provider, key = "anthropic", handler.headers.get("x-api-key") or ""
        admin = key.startswith("sk-ant-admin")
    elif "/v1/organization/usage/" in path:
        provider, key = "openai", (handler.headers.get("authorization") or "").removeprefix("Bearer ")
        admin = key.startswith("sk-admin-")
    else:
        return False
    q = parse_qs(query)
    page = (q.get("page") or [""])[0]
    index = int(page.removeprefix("page_")) if page.startswith("page_") else 0
    with ADMIN_LOCK:
        n = ADMIN_COUNTS.get((key, path, page), 0)
        ADMIN_COUNTS[(key, path, page)] = n + 1
    width = (q.get("bucket_width") or ["1d"])[0]

    def log(status: int) -> None:
        with ADMIN_LOCK:
            ADMIN_LOG.append({"key_tag": key[-8:], "path": path, "page": page, "status": status,
                              "bucket_width": width})

    if not admin or "revoked" in key:
        log(401)
        kind = "authentication_error" if provider == "anthropic" else "invalid_request_error"
        handler._send_json(401, {"type": "error", "error": {"type": kind, "message": "invalid admin key"}})
        return True
    if "rate429" in key and page == "page_1" and n == 0:
        log(429)
        handler._send_json(429, error_body(provider, 429), {"retry-after": "1"})
        return True
    if "fail2" in key and page == "page_2" and n < 3:
        log(500)
        handler._send_json(500, error_body(provider, 500))
        return True
    log(200)
    if "/usage" in path:
        pages = ADMIN_USAGE.get(path.rsplit("/", 1)[1], [])
        more = index + 1 < len(pages)
        data = []
        if pages:
            day_index, results = pages[index]
            day = ADMIN_DAYS[day_index]
            start = int(datetime.fromisoformat(day).replace(tzinfo=timezone.utc).timestamp())
            if provider == "openai":
                data = [{"object": "bucket", "start_time": start, "end_time": start + ADMIN_WIDTHS[width],
                         "results": results}]
            else:
                end = datetime.fromtimestamp(start + ADMIN_WIDTHS[width], timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
                data = [{"starting_at": f"{day}T00:00:00Z", "ending_at": end, "results": results}]
        body = {"data": data, "has_more": more, "next_page": f"page_{index + 1}" if more else None}
        if provider == "openai":
            body["object"] = "page"
        handler._send_json(200, body)
        return True
    day = ADMIN_DAYS[index]
    start = int(datetime.fromisoformat(day).replace(tzinfo=timezone.utc).timestamp())
    more = index + 1 < len(ADMIN_DAYS)
    if provider == "openai":
        results = [
            {"object": "organization.costs.result", "amount": {"value": v, "currency": "usd"}, "line_item": li,
             "project_id": pid}
            for v, li, pid in ADMIN_OPENAI[index]
        ]
        bucket = {"object": "bucket", "start_time": start, "end_time": start + 86400, "results": results}
        body = {"object": "page", "data": [bucket], "has_more": more, "next_page": f"page_{index + 1}" if more else None}
    else:
        results = [
            {"currency": "USD", "amount": a, "workspace_id": w, "description": d, "cost_type": "tokens",
             "model": m, "service_tier": "standard", "token_type": "uncached_input_tokens"}
            for a, w, d, m in ADMIN_ANTHROPIC[index]
        ]
        bucket = {"starting_at": f"{day}T00:00:00Z", "ending_at": f"{day}T23:59:59Z", "results": results}
        body = {"data": [bucket], "has_more": more, "next_page": f"page_{index + 1}" if more else None}
    handler._send_json(200, body)
    return True


class Server(ThreadingHTTPServer):
    # The socketserver default backlog (5) drops connections when many callers start at once (the
    # bindings' 64-caller spend tests): the SDKs then see a connection error the provider never would.
    request_queue_size = 128


def make_server(host: str, port: int, vectors_dir: Path = VECTORS_DIR) -> ThreadingHTTPServer:
    state = MockState(vectors_dir)
    handler = type("BoundHandler", (Handler,), {"state": state})
    server = Server((host, port), handler)
    server.daemon_threads = True
    return server


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (printed as 'PORT <n>')")
    parser.add_argument("--vectors", type=Path, default=VECTORS_DIR, help="shared vectors directory")
    args = parser.parse_args(argv)
    server = make_server(args.host, args.port, args.vectors)
    print(f"PORT {server.server_address[1]}", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
