"""Wire types and the adapter protocol every provider family implements."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from pydantic import BaseModel

from models.errors import ProviderProtocolError


@dataclass(frozen=True)
class HttpRequest:
    method: str
    path: str
    query: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    json: Any = None


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
        low = name.lower()
        for k, v in self.headers.items():
            if k.lower() == low:
                return v
        return None


class State(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    UNKNOWN = "unknown"  # not found yet or unreadable: keep polling until the deadline


@dataclass(frozen=True)
class OutputRef:
    url: str
    kind: str  # video | image | audio | file
    needs_auth: bool = False
    meta: Mapping[str, Any] = field(default_factory=dict)


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


@dataclass(frozen=True)
class Submitted:
    task_id: str
    status: ProviderStatus | None = None


@dataclass(frozen=True)
class Rejected:
    code: str
    message: str
    retryable: bool
    retry_after_s: float | None = None


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
    job_id: str
    task_id: str
    operation: str


@dataclass(frozen=True)
class Operation:
    name: str
    schema: type[BaseModel]
    description: str


@dataclass(frozen=True)
class Capabilities:
    max_batch: int = 1
    # token: our per-job URL token authenticates the notice, which is applied like a poll;
    # hint: the notice only makes the job due for a poll now (polling stays the truth).
    callback_trust: str = "token"
    result_ttl_s: int | None = None
    expected_s: float = 60.0  # typical submit -> done time, centre of the dense polling window
    deadline_s: float = 3600.0
    can_lookup_by_external_id: bool = False
    # The family's callbacks carry the task id and echo our external id (Midjourney `state`), so a
    # submission whose answer was lost may wait a little for a callback to reveal its task.
    callback_reveals_task: bool = False


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
    def build_poll(self, targets: Sequence[PollTarget], *, batch: bool = True) -> HttpRequest:
        """One request for the targets: the batch query when batch is True and the family has one
        (len(targets) <= capabilities.max_batch), else the single-task query (one target)."""
        ...

    def parse_poll(self, resp: HttpResponse) -> list[ProviderStatus]: ...
    def build_lookup(self, operation: str, external_id: str) -> HttpRequest | None: ...
    def parse_lookup(self, resp: HttpResponse) -> Submitted | None: ...
    def parse_callback(self, headers: Mapping[str, str], body: bytes) -> ProviderStatus: ...

    def build_result_extra(self, operation: str, task_id: str) -> HttpRequest | None:
        """An optional read made once a task has succeeded, for result data its status lacks
        (the Midjourney seed); None when the family has nothing to add."""
        ...

    def parse_result_extra(self, resp: HttpResponse) -> Mapping[str, Any]:
        """What that read adds to job.result; {} when the relay has nothing (never an error)."""
        ...


class AdapterDefaults:
    """No-op answers to the adapter protocol's optional hooks; a family overrides what it has."""

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


def reject_for_http(resp: HttpResponse, message: str) -> Rejected | None:
    """The HTTP-level part of submit classification shared by every family.

    429 and 503 mean the relay did not take the task (retry later); other 4xx are a final no.
    Returns None for 2xx and for 500/502/504, which the relay client treats as an unknown outcome.
    """
    retry_after = retry_after_s(resp)
    if resp.status == 429:
        return Rejected("rate_limited", message or "relay rate limit", True, retry_after)
    if resp.status == 503:
        return Rejected("unavailable", message or "relay unavailable", True, retry_after)
    if resp.status in (401, 403):
        return Rejected("unauthorized", message or "relay refused the key", False)
    if 400 <= resp.status < 500:
        return Rejected("bad_request", message or f"HTTP {resp.status}", False)
    return None


def retry_after_s(resp: HttpResponse) -> float | None:
    """The Retry-After header in seconds (the delta form), or None."""
    raw = resp.header("retry-after")
    if raw is None:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        return None


def parse_progress(raw: object) -> int | None:
    """Progress as an int percent from 55, 0.55, "55%" or "55"."""
    if raw is None or raw == "":
        return None
    try:
        if isinstance(raw, str):
            value = float(raw.strip().rstrip("%"))
        elif isinstance(raw, (int, float)):
            value = float(raw)
        else:
            return None
    except ValueError:
        return None
    if isinstance(raw, float) and 0 < value <= 1 and not isinstance(raw, bool):
        value *= 100
    return max(0, min(100, int(round(value))))
