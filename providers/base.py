"""Wire types and the adapter protocol (version 2) every provider family implements.

An adapter is sans-I/O: it builds `HttpRequest`s and reads `HttpResponse`s; the engine sends them
through the one relay client, which adds the key. Conversations longer than one request (a
lookup, a status then a result read, a cancel) are *flows*: generators that yield the next
request and receive its response, in the spirit of httpx's `auth_flow`, returning their outcome
(`Flow[T]`). The engine runs them (`workers.flows.run_flow`), so a family needs no change in
`workers/`. `AdapterDefaults` turns the simple one-request hooks (`build_poll`/`parse_poll`,
`build_lookup`/`parse_lookup`, `build_result_extra`/`parse_result_extra`, `parse_callback`) into
flows for families that need nothing more. See docs/adding-a-provider.md.
"""

from __future__ import annotations

import json
import re
from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel
from sqlalchemy import inspect

from models.errors import BatchUnsupported, ProviderProtocolError
from models.tables import Job
from providers.headers import RETRY_AFTER_MAX_S as RETRY_AFTER_MAX_S, header_value as header_value, parse_retry_after as parse_retry_after

T = TypeVar("T")


def _column_size(name: str) -> int:
    size = getattr(inspect(Job).columns[name].type, "length", None)
    assert isinstance(size, int), f"job.{name} has no size"
    return size


# What a relay's answer may put in a job row is bounded where it becomes a typed value below
# (ProviderStatus, Rejected): every text is cut to its column's size (or, where the column has
# none, to a size that keeps rows and notifications small). A task id is not cut (cut, it names
# another task): one longer than TASK_ID_MAX cannot be stored and the engine fails its job instead.
TASK_ID_MAX = _column_size("provider_task_id")
ERROR_CODE_MAX = _column_size("error_code")
ERROR_MESSAGE_MAX = 2000
DETAIL_MAX = 500


def _cut(value: object, limit: int) -> Any:
    return value[:limit] if isinstance(value, str) else value


@dataclass(frozen=True)
class FilePart:
    """One file of a multipart body (an uploaded reference image). Given a `source_url` instead of data,
    the engine fetches it (SSRF-guarded, without the key, at most `max_bytes`) before the request is sent."""

    field: str
    filename: str
    content_type: str
    data: bytes
    source_url: str | None = None
    max_bytes: int = 20 * 1024 * 1024


@dataclass(frozen=True)
class HttpRequest:
    """A request to the relay. `path` is relative to the relay's base URL. The body is one of:
    `json`; a multipart form (`form` fields and `files`); raw `content` bytes; or none. A query
    value that is a sequence of strings repeats its key (`filter.task_ids=a&filter.task_ids=b`)."""

    method: str
    path: str
    query: Mapping[str, str | Sequence[str]] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    json: Any = None
    form: Mapping[str, str] | None = None
    files: Sequence[FilePart] = ()
    content: bytes | None = None
    # In a flow, a 429 or 5xx answer normally ends it as "relay unavailable, try later". True hands
    # this request's 429/5xx answers to the adapter instead: for a read whose 5xx can be the task's
    # own outcome (a model that crashed, reported with its detail) rather than the relay's trouble.
    accept_errors: bool = False
    # A one-shot submit whose 2xx answer body *is* the result file (binary audio): the engine streams
    # it into the object store (sha256, size) as the job's first asset instead of reading it into
    # memory, and parse_submit sees that answer's status and headers with an empty body.
    stream_body_as_asset: bool = False

    def __post_init__(self) -> None:
        bodies = sum(x for x in (self.json is not None, self.form is not None or bool(self.files), self.content is not None))
        if bodies > 1:
            raise ValueError("a request has one body: json, a multipart form, or raw content")

    def key(self) -> tuple[str, str, tuple[tuple[str, str], ...]]:  # the same read: method, path, query
        return self.method, self.path, tuple(sorted((k, v if isinstance(v, str) else "\x00".join(v)) for k, v in self.query.items()))


@dataclass(frozen=True)
class HttpResponse:
    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        """The body as JSON; a body that is not JSON is a protocol error."""
        try:
            return json.loads(self.body or b"null")
        except ValueError as exc:
            raise ProviderProtocolError(f"HTTP {self.status}: body is not JSON") from exc

    def header(self, name: str) -> str | None:
        return header_value(self.headers, name)


class State(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    UNKNOWN = "unknown"  # not found yet or unreadable: keep polling until the deadline


@dataclass(frozen=True)
class OutputRef:
    """A result to store. `url` is absolute (a CDN, a `video_url`: fetched without the relay key)
    or relay-relative (`/v1/videos/{id}/content`: the engine resolves it against the relay and
    sends the key on that first request only, never on a redirect)."""

    url: str
    kind: str  # video | image | audio | file
    meta: Mapping[str, Any] = field(default_factory=dict)

    @property
    def relay_route(self) -> bool:
        return self.url.startswith("/") and not self.url.startswith("//")


@dataclass(frozen=True)
class ProviderStatus:
    task_id: str | None
    state: State
    progress: int | None = None
    outputs: Sequence[OutputRef] = ()
    result_data: Mapping[str, Any] = field(default_factory=dict)
    error_code: str | None = None
    error_message: str | None = None
    external_id: str | None = None
    expires_at: datetime | None = None  # when the result URLs stop working, where the relay says
    detail: str | None = None  # what the provider is doing now (a queue position), for people

    def __post_init__(self) -> None:  # the relay's values, bounded (see TASK_ID_MAX)
        object.__setattr__(self, "error_code", _cut(self.error_code, ERROR_CODE_MAX))
        object.__setattr__(self, "error_message", _cut(self.error_message, ERROR_MESSAGE_MAX))
        object.__setattr__(self, "detail", _cut(self.detail, DETAIL_MAX))
        if self.progress is not None:
            object.__setattr__(self, "progress", max(0, min(100, self.progress)))


@dataclass(frozen=True)
class Submitted:
    """The relay took the job. `handle` is what the family needs later to poll, fetch or cancel
    (a status URL, the API format...): persisted with the job and handed back in every PollTarget."""

    task_id: str | None
    status: ProviderStatus | None = None
    handle: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Rejected:
    code: str
    message: str
    retryable: bool
    retry_after_s: float | None = None

    def __post_init__(self) -> None:  # the relay's values, bounded (see TASK_ID_MAX)
        object.__setattr__(self, "code", _cut(self.code, ERROR_CODE_MAX))
        object.__setattr__(self, "message", _cut(self.message, ERROR_MESSAGE_MAX))


@dataclass(frozen=True)
class ParentRef:
    """An earlier job of ours that a submission builds on (a Midjourney button, a Suno continuation)."""

    job_id: str
    task_id: str | None
    operation: str
    status: str
    result: Mapping[str, Any]


@dataclass(frozen=True)
class ParentSpec:
    """What an input refers to: `field` names it in errors; `statuses` are the job statuses it may be in."""

    field: str
    job_id: str
    statuses: frozenset[str]


@dataclass(frozen=True)
class SubmitContext:
    job_id: str
    external_id: str
    callback_url: str | None
    now: datetime
    parent: ParentRef | None = None


@dataclass(frozen=True)
class PollTarget:
    """A task the engine asks about (poll, result read, cancel), with its persisted handle."""

    job_id: str
    task_id: str
    operation: str
    handle: Mapping[str, Any] = field(default_factory=dict)
    input: Mapping[str, Any] = field(default_factory=dict)  # the job's validated input


Flow = Generator[HttpRequest, HttpResponse, T]

# The made-up task a probe asks about (`k4u doctor`): reading a task that does not exist tells
# whether the relay routes a family's poll route and accepts the key, and creates nothing.
PROBE_TASK_ID = "k4u-doctor-0000"
PROBE_METHODS = frozenset({"GET", "HEAD"})


@dataclass(frozen=True)
class Probe:
    """One free question to the relay: `request` reads PROBE_TASK_ID on the route that
    `operations` poll; never a request that creates (or pays for) anything."""

    request: HttpRequest
    operations: tuple[str, ...]


@dataclass(frozen=True)
class CallbackInputs:
    """What a family may need to judge a callback, as its capabilities' `callback_auth` asks: the
    webhook secret (standard_webhooks) or the key set's public keys (jwks), and the clock. None
    where the family's setting is not configured: its callbacks are then unsigned."""

    secret: str | None
    now: datetime
    keys: Sequence[bytes] | None = None


@dataclass(frozen=True)
class CallbackVerdict:
    """A callback read. `trust`: "signed" (its signature verified: applied like a poll), "token" (our
    per-job URL token is its only proof: its progress is recorded, an end or result URLs only make
    the job due for a poll), "hint" (only makes the job due for a poll); `refused` names why it
    must be answered 401 and change nothing (bad or stale signature)."""

    status: ProviderStatus | None
    trust: str = "token"
    refused: str | None = None
    delivery_id: str | None = None  # for replay protection where the family signs deliveries
    # Refused because no key of the set verifies the signature (jwks): the engine fetches the set
    # again (at most once a minute) and asks once more, as a provider may have rotated its keys.
    unknown_key: bool = False


@dataclass(frozen=True)
class CancelOutcome:
    """What a provider-side cancel achieved, for the job's events."""

    cancelled: bool
    note: str


@dataclass(frozen=True)
class Operation:
    name: str
    schema: type[BaseModel]
    description: str


class LostSubmit(StrEnum):
    """How the task of a submission whose answer was lost (a timeout, a 5xx, an unreadable body, a
    worker killed mid-POST) is found, so that the job is never sent, and charged, twice."""

    LOOKUP = "lookup"  # the adapter's lookup flow, by our external id; only a proven absence allows a resend
    CALLBACK_ECHO = "callback_echo"  # a callback naming the task and echoing our external id, within K4U_SUBMIT_CALLBACK_GRACE_S
    NONE = "none"  # not at all: the job fails submit_outcome_unknown and a person decides on a retry


class CallbackAuth(StrEnum):
    """What proves a callback comes from the provider, besides our per-job URL token."""

    URL_TOKEN = "url_token"  # nothing else: the token is the only proof (callback_trust says what it may do)
    STANDARD_WEBHOOKS = "standard_webhooks"  # an HMAC signature by a whsec_ secret (CallbackInputs.secret)
    JWKS = "jwks"  # an Ed25519 signature by a key of a JWKS key set (CallbackInputs.keys), fetched again for an unknown key


@dataclass(frozen=True)
class Capabilities:
    """What a family can do, as data: the engine, the API, GET /v1/providers and the tools
    document read only this, never a family's name (docs/adding-a-provider.md)."""

    # The batch status query's page size (ids per request); 1: the family has none.
    max_batch: int = 1
    # What an unsigned callback may do. token: our per-job URL token is the notice's only proof: its
    # progress is recorded, an end or result URLs only make the job due for a poll now (the relay's
    # answer is applied); hint: the notice only makes the job due for a poll now (polling stays the truth).
    callback_trust: str = "token"
    # How a callback is signed, and the Settings field that holds the secret (standard_webhooks) or
    # the key set's source (jwks); unset, the family's callbacks count as unsigned.
    callback_auth: CallbackAuth = CallbackAuth.URL_TOKEN
    callback_setting: str | None = None
    lost_submit: LostSubmit = LostSubmit.NONE
    cancels: bool = False  # the adapter's cancel flow stops a task at the relay
    result_ttl_s: int | None = None  # how long the relay keeps result URLs working, where known
    expected_s: float = 60.0  # typical submit -> done time, centre of the dense polling window
    deadline_s: float = 3600.0  # a job's deadline unless K4U_JOB_DEADLINE_S says otherwise
    # The path prefix every route of the family starts with on a relay that follows the documented
    # default (`/volc/v1`); relays differ, so K4U_ROUTE_PREFIXES may name another one per family and
    # the relay client rewrites the start of each request's path. None: the family's paths are fixed.
    route_prefix: str | None = None
    # A synchronous family: the submit's answer is the result (parse_submit returns a final status), nothing
    # is polled; its submits run on their own queue and pool (`oneshot`), a lost answer is never resent.
    oneshot: bool = False
    request_timeout_s: float | None = None  # the submit's read timeout where the relay's default is too short
    # Input fields (top-level names) the relay takes only as inline data, a `data:` URI (Midjourney's
    # base64Array): a `k4u://` reference there is validated as a data: URI and sent as one, never a link.
    inline_fields: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if (self.callback_auth is CallbackAuth.URL_TOKEN) != (self.callback_setting is None):
            raise ValueError("a signed callback_auth names its callback_setting, url_token names none")
        if self.max_batch < 1:
            raise ValueError("max_batch is at least 1")
        if self.oneshot and (self.lost_submit is not LostSubmit.NONE or self.max_batch != 1 or self.cancels):
            raise ValueError("a oneshot family has nothing to look up, poll or cancel: lost_submit none, max_batch 1, no cancels")
        if self.request_timeout_s is not None and self.request_timeout_s <= 0:
            raise ValueError("request_timeout_s is positive")
        if self.route_prefix is not None and not ROUTE_PREFIX.fullmatch(self.route_prefix):
            raise ValueError(f"route_prefix must be a path like /volc/v1, not {self.route_prefix!r}")

    @property
    def batch_query(self) -> bool:
        """The family can ask about several tasks in one request."""
        return self.max_batch > 1

    @property
    def settings(self) -> tuple[str, ...]:
        """The Settings fields the family reads (none for a poll-only family)."""
        return (self.callback_setting,) if self.callback_setting else ()


ROUTE_PREFIX = re.compile(r"(/[A-Za-z0-9._~-]+)+")


class Adapter(Protocol):
    name: str
    operations: Mapping[str, Operation]
    capabilities: Capabilities

    def parent_of(self, operation: str, input: Mapping[str, Any]) -> ParentSpec | None:
        """The earlier job this input builds on, if any (resolved by the engine into ctx.parent)."""
        ...

    def check_parent(self, operation: str, input: Mapping[str, Any], parent: ParentRef) -> None:
        """Raise ValueError with a message for the caller when the parent cannot serve this input."""
        ...

    def build_submit(self, operation: str, input: Mapping[str, Any], ctx: SubmitContext) -> HttpRequest: ...
    def parse_submit(self, resp: HttpResponse) -> Submitted | Rejected: ...

    def poll(self, targets: Sequence[PollTarget], *, batch: bool = True) -> Flow[list[ProviderStatus]]:
        """Ask about the targets: one batch request when batch is True and the family has one
        (len(targets) <= capabilities.max_batch), else one target; follow-up reads as needed.
        Raises BatchUnsupported when the relay does not route the batch query."""
        ...

    def lookup(self, operation: str, external_id: str) -> Flow[Submitted | None] | None:
        """Find the task an earlier POST of this job may have created, by our external id (asked
        only of a family whose lost_submit is lookup): None when this operation has no lookup; the
        flow returns None only when the task is proven absent."""
        ...

    def fetch_extra(self, target: PollTarget) -> Flow[Mapping[str, Any]] | None:
        """Optional reads once a task succeeded, for result data its status lacks (the Midjourney
        seed); returns what to add to job.result, {} when the relay has nothing."""
        ...

    def cancel(self, target: PollTarget) -> Flow[CancelOutcome] | None:
        """Cancel the task at the provider (asked only of a family whose capabilities say `cancels`);
        None when this task cannot be."""
        ...

    def read_callback(self, headers: Mapping[str, str], body: bytes, inputs: CallbackInputs) -> CallbackVerdict:
        """Read (and where the family signs, verify) a callback; ProviderProtocolError when unreadable."""
        ...

    def probes(self) -> Sequence[Probe]:
        """The free reads (a task that does not exist, on each poll route) that tell whether the
        relay routes this family and accepts the key: `k4u doctor` sends them and nothing else."""
        ...


class AdapterDefaults:
    """The protocol's flows built from one-request hooks, and no-op answers to the optional
    ones; a family overrides what it has (a hook, or a whole flow)."""

    capabilities: Capabilities
    operations: Mapping[str, Operation]

    def build_poll(self, targets: Sequence[PollTarget], *, batch: bool = True) -> HttpRequest:
        raise NotImplementedError

    def parse_poll(self, resp: HttpResponse) -> list[ProviderStatus]:
        raise NotImplementedError

    def parse_callback(self, headers: Mapping[str, str], body: bytes) -> ProviderStatus:
        raise ProviderProtocolError("this provider sends no callbacks")

    def poll(self, targets: Sequence[PollTarget], *, batch: bool = True) -> Flow[list[ProviderStatus]]:
        resp = yield self.build_poll(targets, batch=batch)
        if batch and resp.status in (404, 405, 501):
            raise BatchUnsupported(f"batch query answered HTTP {resp.status}")
        return self.parse_poll(resp)

    def lookup(self, operation: str, external_id: str) -> Flow[Submitted | None] | None:
        req = self.build_lookup(operation, external_id) if self.capabilities.lost_submit is LostSubmit.LOOKUP else None
        return None if req is None else self._one(req, self.parse_lookup)

    def fetch_extra(self, target: PollTarget) -> Flow[Mapping[str, Any]] | None:
        req = self.build_result_extra(target.operation, target.task_id) if target.task_id else None
        return None if req is None else self._one(req, self.parse_result_extra)

    def cancel(self, target: PollTarget) -> Flow[CancelOutcome] | None:
        return None

    def read_callback(self, headers: Mapping[str, str], body: bytes, inputs: CallbackInputs) -> CallbackVerdict:
        return CallbackVerdict(self.parse_callback(headers, body), trust=self.capabilities.callback_trust)

    def probe_input(self, operation: str) -> Mapping[str, Any]:
        return {}  # the input a probe's made-up task is polled with: fal derives its route from it

    def probes(self) -> Sequence[Probe]:
        """Per operation, the first request of its poll flow for PROBE_TASK_ID; one probe per
        distinct request. An operation whose flow cannot start without a real task (or starts
        with anything but a read of a relay path) has none."""
        found: dict[tuple[str, str, tuple[tuple[str, str], ...]], Probe] = {}
        for op in self.operations:
            flow = self.poll([PollTarget("k4u-doctor", PROBE_TASK_ID, op, input=self.probe_input(op))], batch=False)
            try:
                req = next(flow)
            except Exception:  # a flow that needs a real task's handle or input: no free probe
                continue
            finally:
                flow.close()
            if req.method not in PROBE_METHODS or not req.path.startswith("/") or req.path.startswith("//"):
                continue
            earlier = found.get(req.key())
            found[req.key()] = Probe(req, (*earlier.operations, op) if earlier else (op,))
        return list(found.values())

    @staticmethod
    def _one(req: HttpRequest, parse: Any) -> Flow[Any]:
        resp = yield req
        result = parse(resp)
        return result

    def parent_of(self, operation: str, input: Mapping[str, Any]) -> ParentSpec | None:
        return None

    def check_parent(self, operation: str, input: Mapping[str, Any], parent: ParentRef) -> None:
        return None

    def build_lookup(self, operation: str, external_id: str) -> HttpRequest | None:
        return None

    def parse_lookup(self, resp: HttpResponse) -> Submitted | None:
        return None

    def build_result_extra(self, operation: str, task_id: str) -> HttpRequest | None:
        return None

    def parse_result_extra(self, resp: HttpResponse) -> Mapping[str, Any]:
        return {}
