"""Type stubs of the native module (Rust, PyO3). Private: use the `llmledger` package API."""

from datetime import date, datetime
from decimal import Decimal
from typing import Any, Dict, List, Mapping, Optional, Union

__version__: str

class Usage:
    """One recorded call (`result._token_usage`): every key of core's record is an attribute (the typed ones
    below and the rest of the record's keys, through `__getattr__`)."""

    event_id: str
    timestamp: datetime
    provider: str
    api: str
    model: str
    resolved_model: Optional[str]
    input_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    cache_write_1h_tokens: int
    output_tokens: int
    reasoning_tokens: int
    prompt_tokens: int
    total_tokens: int
    web_search_requests: int
    usage_source: str
    estimated: bool
    flags: List[str]
    service_tier: Optional[str]
    cost: Optional[Cost]
    breakdown: Optional[Dict[str, Decimal]]
    currency: str
    pricing_error: Optional[Exception]
    request_id: Optional[str]
    user_id: Optional[str]
    workspace_id: Optional[str]
    project: Optional[str]
    session_id: Optional[str]
    conversation_id: Optional[str]
    tags: Dict[str, str]
    latency_ms: int
    success: bool
    error_class: Optional[str]
    def __getattr__(self, name: str) -> Any: ...
    def to_json(self) -> str: ...
    def to_dict(self) -> Dict[str, Any]: ...

class Cost:
    @property
    def total(self) -> Decimal: ...
    @property
    def total_usd(self) -> Decimal: ...
    @property
    def currency(self) -> str: ...
    @property
    def rate(self) -> Decimal: ...
    @property
    def provider(self) -> str: ...
    @property
    def model(self) -> str: ...
    @property
    def price_version(self) -> date: ...
    @property
    def breakdown(self) -> Dict[str, Decimal]: ...
    @property
    def breakdown_usd(self) -> Dict[str, Decimal]: ...
    @property
    def price_data(self) -> str: ...
    @property
    def tier_above(self) -> Optional[int]: ...
    @property
    def uncertain(self) -> bool: ...

class Attribution:
    """Who a call is for; `overlay` is core's layering rule (`top` wins per set field, tags merged)."""

    def __init__(
        self,
        user_id: Optional[str] = None,
        workspace_id: Optional[str] = None,
        project: Optional[str] = None,
        session_id: Optional[str] = None,
        conversation_id: Optional[str] = None,
        tags: Optional[Mapping[str, str]] = None,
    ) -> None: ...
    def overlay(self, top: Attribution) -> Attribution: ...
    @property
    def user_id(self) -> Optional[str]: ...
    @property
    def workspace_id(self) -> Optional[str]: ...
    @property
    def project(self) -> Optional[str]: ...
    @property
    def session_id(self) -> Optional[str]: ...
    @property
    def conversation_id(self) -> Optional[str]: ...
    @property
    def tags(self) -> Dict[str, str]: ...

class Client:
    """A wrapped SDK client as core sees it (`spec_json`: core's `ClientSpec`)."""

    def __init__(self, spec_json: str, attribution: Attribution) -> None: ...
    @property
    def provider(self) -> str: ...
    def classify(self, method: str, path: str) -> Optional[str]: ...

class Call:
    @property
    def api(self) -> Optional[str]: ...
    @property
    def inject_include_usage(self) -> bool: ...
    @property
    def wants_request_body(self) -> bool: ...
    def set_request_body(self, json: str) -> None: ...
    def finish(self, body: Union[bytes, str]) -> Usage: ...
    def fail(self, error_class: str) -> Usage: ...
    def into_stream(self) -> Stream: ...

class Stream:
    def push(self, event: Optional[str], data: str) -> bool: ...
    def finish(self, aborted: bool) -> Optional[Usage]: ...

class Tracker:
    def __init__(self, config: Mapping[str, Any]) -> None: ...
    def health_json(self) -> str: ...
    def take_notices_json(self, wait_secs: Optional[float] = None) -> str: ...
    def begin(
        self,
        client: Client,
        api: str,
        path: str,
        json_data: Optional[Mapping[str, Any]],
        extra_json: Optional[Mapping[str, Any]],
        stream: bool,
        context: Optional[Attribution],
    ) -> Call: ...
    def usage(self, query: Mapping[str, Any]) -> List[Dict[str, Any]]: ...
    def estimate(self, input: Mapping[str, Any]) -> Dict[str, Any]: ...
    def flush(self) -> None: ...
    def close(self) -> None: ...
    @property
    def currency(self) -> str: ...

def redact_credentials(text: str) -> str: ...
def count_tokens(text: str, model: str) -> int: ...
def count_chat(messages_json: str, model: str, tools_json: Optional[str] = None) -> int: ...
def estimate(input: Mapping[str, Any]) -> Dict[str, Any]: ...
def cost(
    model: str,
    input_tokens: int = 0,
    output_tokens: int = 0,
    cache_read_tokens: int = 0,
    cache_write_tokens: int = 0,
    cache_write_1h_tokens: int = 0,
    reasoning_tokens: int = 0,
    audio_input_tokens: int = 0,
    audio_output_tokens: int = 0,
    image_input_tokens: int = 0,
    image_output_tokens: int = 0,
    web_search_requests: int = 0,
    *,
    provider: Optional[str] = None,
    currency: str = "USD",
    rates: Optional[Mapping[str, Any]] = None,
    at: Optional[datetime] = None,
    batch: bool = False,
    service_tier: Optional[str] = None,
) -> Cost: ...
