"""API schemas (pydantic): JobCreate / BatchCreate in; JobPublic, BatchPublic, JobEventPublic, DeliveryPublic... out;
the notification envelopes."""

from __future__ import annotations

import json
import math
import re
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, WithJsonSchema, field_validator

from models.datauri import data_uri_label
from models.refs import stored_size, upload_ref
from models.status import DeliveryStatus, JobStatus, ProviderCancel
from models.tables import Asset, Delivery, DeliveryAttempt, Job, JobEvent, Upload

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_URL_BAD = re.compile(r"[\x00-\x20\x7f]")


@dataclass(frozen=True)
class SizeLimits:
    """Caps on the serialized `input` and `metadata` of a job (K4U_MAX_INPUT_BYTES, K4U_MAX_METADATA_BYTES)."""

    input_bytes: int = 256 * 1024
    metadata_bytes: int = 16 * 1024
    inline_bytes: int = 256 * 1024  # K4U_INLINE_INPUT_MAX_BYTES: a larger inline file is stored as an upload, not in the input


# The API sets this per request from its settings; anything else validates against the defaults.
# SizeLimits is a frozen dataclass, so sharing one default instance across contexts is safe.
size_limits: ContextVar[SizeLimits] = ContextVar("k4u_size_limits", default=SizeLimits())  # noqa: B039


def text_problem(value: str, *, controls: bool = True) -> str | None:
    """Why a string cannot be stored as is (NUL, control characters, lone surrogates), or None."""
    if "\x00" in value:
        return "must not contain NUL bytes"
    if controls and _CONTROL.search(value):
        return "must not contain control characters"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "must be valid Unicode (no lone surrogates)"
    return None


def _json_problem(value: Any) -> str | None:
    """First value in a JSON document that no database column takes (NUL, lone surrogates, NaN)."""
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            if problem := text_problem(v, controls=False):
                return f"strings {problem}"
        elif isinstance(v, float):
            if not math.isfinite(v):
                return "numbers must be finite (no NaN or Infinity)"
        elif isinstance(v, dict):
            for k, item in v.items():
                if not isinstance(k, str) or (problem := text_problem(k, controls=False)):
                    return f"keys {problem or 'must be strings'}"
                stack.append(item)
        elif isinstance(v, list | tuple):
            stack.extend(v)
    return None


def _check_document(v: dict[str, Any], cap: int, inline_cap: int | None = None) -> dict[str, Any]:
    """`inline_cap`: inline files over it count as the reference they are stored as (intake stores them)."""
    if problem := _json_problem(v):
        raise ValueError(problem)
    size = len(json.dumps(v, separators=(",", ":"), ensure_ascii=False).encode())
    if size > cap and inline_cap is not None:  # only then can inline files make a difference
        size = len(json.dumps(stored_size(v, inline_cap), separators=(",", ":"), ensure_ascii=False).encode())
    if size > cap:
        raise ValueError(f"is {size} bytes as JSON; the limit is {cap}")
    return v


def check_callback_url(v: str) -> str:
    """An absolute http(s) URL with a host and a port in 1-65535 (the SSRF guard runs later)."""
    if _URL_BAD.search(v) or text_problem(v):
        raise ValueError("must not contain spaces or control characters")
    try:
        parts = urlsplit(v)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"is not a valid URL ({exc})") from None
    if parts.scheme not in ("http", "https"):
        raise ValueError("must be an absolute http:// or https:// URL")
    if not parts.hostname:
        raise ValueError("has no host")
    if not parts.netloc.endswith("]") and ":" not in parts.hostname:
        try:
            parts.hostname.encode("idna")
        except UnicodeError:
            raise ValueError("host is not a valid host name") from None
    if port is not None and not 1 <= port <= 65535:
        raise ValueError("port must be between 1 and 65535")
    return v


class JobCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    provider: str = Field(..., min_length=1, max_length=40, examples=["kling"])
    operation: str | None = Field(None, max_length=60, examples=["text2video"])
    input: dict[str, Any] = Field(..., examples=[{"prompt": "a red fox running through snow", "duration": "5"}])
    callback_url: str | None = Field(None, max_length=2000, description="Where the completion notification is POSTed")
    idempotency_key: str | None = Field(None, min_length=1, max_length=255)
    metadata: dict[str, Any] = Field(default_factory=dict, description="Yours; echoed back untouched")
    batch_id: str | None = Field(
        None,
        max_length=64,
        description=(
            "A label of yours, to list jobs by (GET /v1/jobs?batch_id=); not the id of a batch made by POST /v1/batches "
            "(422): jobs join a batch only through that route"
        ),
    )

    @field_validator("provider", "operation", "idempotency_key", "batch_id")
    @classmethod
    def _plain_text(cls, v: str | None) -> str | None:
        if v is not None and (problem := text_problem(v)):
            raise ValueError(problem)
        return v

    @field_validator("callback_url")
    @classmethod
    def _callback_url(cls, v: str | None) -> str | None:
        return None if v is None else check_callback_url(v)

    @field_validator("input")
    @classmethod
    def _input(cls, v: dict[str, Any]) -> dict[str, Any]:
        limits = size_limits.get()
        return _check_document(v, limits.input_bytes, limits.inline_bytes)

    @field_validator("metadata")
    @classmethod
    def _metadata(cls, v: dict[str, Any]) -> dict[str, Any]:
        return _check_document(v, size_limits.get().metadata_bytes)


class ErrorPublic(BaseModel):
    code: str
    message: str
    retryable: bool


class AssetPublic(BaseModel):
    index: int
    attempt: int = Field(
        1,
        description="The job's attempt that produced it: after a retry the current attempt's assets "
        "come first, then the earlier attempts' (newest first), whose stored files are kept",
    )
    kind: str
    content_type: str | None
    size: int | None
    sha256: str | None
    url: str | None
    source_url: str
    metadata: dict[str, Any] = Field(default_factory=dict, description="Provider details: clip id and title, grid or split image...")


class InputPublic(BaseModel):
    """A file a job's input references: an upload (`k4u://uploads/<id>`), as it was when the job was taken
    in, or another job's asset (`k4u://jobs/<id>/assets/<n>`), its sha256 known once that job succeeded."""

    field: str = Field(description="Where in `input` the reference is: `image`, `images.0`")
    ref: str = Field(description="The reference, as the input holds it")
    upload_id: str | None = Field(None, description="The upload referenced (`k4u://uploads/...`)")
    job_id: str | None = Field(None, description="The parent job whose asset is referenced (`k4u://jobs/...`)")
    index: int | None = Field(None, description="The parent's asset index (0-based, in the order its assets are listed)")
    sha256: str | None = Field(description="The stored bytes' sha256: what the relay is sent a link to (null while the parent has not succeeded)")


class UploadPublic(BaseModel):
    """A stored input file (POST /v1/uploads): put `ref` in any string of a job's input."""

    id: str
    ref: str = Field(description="`k4u://uploads/<id>`: resolved when the job is submitted to a link the relay can fetch")
    filename: str | None
    content_type: str
    size: int
    sha256: str
    created_at: datetime
    expires_at: datetime = Field(description="Removed after this (K4U_UPLOAD_TTL_S), unless a job not yet submitted still references it")

    @classmethod
    def from_row(cls, row: Upload) -> UploadPublic:
        return cls(
            id=row.id,
            ref=upload_ref(row.id),
            filename=row.filename,
            content_type=row.content_type,
            size=row.size,
            sha256=row.sha256,
            created_at=row.created_at,
            expires_at=row.expires_at,
        )


class UploadsPublic(BaseModel):
    items: list[UploadPublic]


class JobPublic(BaseModel):
    id: str
    provider: str
    operation: str
    status: JobStatus
    attempt: int = 1  # 2, 3, ... after POST /v1/jobs/{id}/retry
    progress: int
    provider_task_id: str | None
    input: dict[str, Any]
    metadata: dict[str, Any]
    batch_id: str | None
    error: ErrorPublic | None
    assets: list[AssetPublic]
    result: dict[str, Any] | None
    created_at: datetime
    updated_at: datetime
    submitted_at: datetime | None
    finished_at: datetime | None
    # When the provider's result URLs stop working (its expires_at, or the family's typical lifetime).
    result_expires_at: datetime | None = None
    # A cancelled job's task at the relay: pending | done | failed (the events say what the relay
    # answered); null when there was nothing to cancel there or the family has no cancel.
    provider_cancel: ProviderCancel | None = None
    status_url: str
    inputs: list[InputPublic] = Field(default_factory=list, description="The uploaded files and other jobs' assets the input references, one per reference")
    depends_on: list[str] = Field(default_factory=list, description="The jobs whose assets the input names: it waits (`waiting`) until all have succeeded")

    @classmethod
    def from_rows(cls, job: Job, assets: list[Asset], base_url: str) -> JobPublic:
        job_url = f"{base_url}/v1/jobs/{job.id}"
        error = None
        if job.error_code:
            error = ErrorPublic(code=job.error_code, message=job.error_message or "", retryable=bool(job.error_retryable))
        return cls(
            id=job.id,
            provider=job.provider,
            operation=job.operation,
            status=job.status,
            attempt=job.attempt,
            progress=job.progress,
            provider_task_id=job.provider_task_id,
            input=job.input,
            metadata=job.meta,
            batch_id=job.batch_id,
            error=error,
            assets=[
                AssetPublic(
                    index=a.index,
                    attempt=a.attempt,
                    kind=a.kind,
                    content_type=a.content_type,
                    size=a.size,
                    sha256=a.sha256,
                    url=_asset_url(job_url, job, a),
                    source_url=data_uri_label(a.source_url) if a.source_url[:5].lower() == "data:" else a.source_url,
                    metadata=dict(a.meta),
                )
                for a in sorted(assets, key=lambda a: (-a.attempt, a.index))
            ],
            result=job.result,
            created_at=job.created_at,
            updated_at=job.updated_at,
            submitted_at=job.submitted_at,
            finished_at=job.finished_at,
            result_expires_at=job.result_expires_at,
            provider_cancel=job.provider_cancel,
            status_url=job_url,
            inputs=[InputPublic.model_validate(i) for i in job.inputs or ()],
            depends_on=list(dict.fromkeys(i["job_id"] for i in job.inputs or () if i.get("job_id"))),
        )


def _asset_url(job_url: str, job: Job, asset: Asset) -> str | None:
    """The asset route of a stored asset; an earlier attempt's names its attempt."""
    if asset.stored_at is None:
        return None
    return f"{job_url}/assets/{asset.index}" + ("" if asset.attempt == job.attempt else f"?attempt={asset.attempt}")


class JobsPublic(BaseModel):
    items: list[JobPublic]
    next_cursor: str | None
    cost: dict[str, int | float] | None = Field(
        None,
        description=(
            "With batch_id only: what the relay reported in the jobs' result.cost, summed per key over the whole "
            "batch (every job, whatever the page and the other filters), plus jobs_with_cost: how many jobs "
            "reported one. Also in the X-K4U-Batch-Cost header, as compact JSON"
        ),
    )


def _isoformat(v: datetime) -> str:
    return v.isoformat()


# An instant written by datetime.isoformat() (`+00:00`), as the events and notifications lists always
# have been; JobPublic's and BatchPublic's instants are pydantic's own (`Z`).
IsoDatetime = Annotated[
    datetime, PlainSerializer(_isoformat, return_type=str, when_used="json"), WithJsonSchema({"type": "string", "format": "date-time"}, mode="serialization")
]


class JobEventPublic(BaseModel):
    """One transition in a job's history (GET /v1/jobs/{id}/events)."""

    model_config = ConfigDict(populate_by_name=True)

    from_: JobStatus | None = Field(alias="from", description="null for the job's creation")
    to: JobStatus
    reason: str
    at: IsoDatetime

    @classmethod
    def from_row(cls, event: JobEvent) -> JobEventPublic:
        return cls(from_=JobStatus(event.old_status) if event.old_status else None, to=JobStatus(event.new_status), reason=event.reason, at=event.at)


class DeliveryAttemptPublic(BaseModel):
    attempt: int
    status_code: int | None = Field(description="The receiver's HTTP status; null when it could not be reached")
    error: str | None
    duration_ms: int
    at: IsoDatetime


class DeliveryPublic(BaseModel):
    """One notification to a callback_url with every delivery attempt (GET .../notifications)."""

    webhook_id: str = Field(description="The webhook-id header: the same on every attempt and replay")
    event: str = Field(description="job.succeeded, job.failed, job.cancelled or batch.completed")
    url: str
    status: DeliveryStatus
    attempts: int
    last_error: str | None
    delivered_at: IsoDatetime | None
    next_attempt_at: IsoDatetime | None = Field(description="When a pending notification is tried next")
    history: list[DeliveryAttemptPublic]

    @classmethod
    def from_rows(cls, delivery: Delivery, attempts: list[DeliveryAttempt]) -> DeliveryPublic:
        """The delivery with its attempts (those of other deliveries are skipped), in the order given."""
        d = delivery
        pending = DeliveryStatus(d.status) == DeliveryStatus.PENDING
        return cls(
            webhook_id=d.id,
            event=d.event,
            url=d.url,
            status=DeliveryStatus(d.status),
            attempts=d.attempts,
            last_error=d.last_error,
            delivered_at=d.delivered_at,
            next_attempt_at=d.next_at if pending else None,
            history=[
                DeliveryAttemptPublic(attempt=a.attempt, status_code=a.status_code, error=a.error, duration_ms=a.duration_ms, at=a.at)
                for a in attempts
                if a.delivery_id == d.id
            ],
        )


class ReplayedPublic(BaseModel):
    replayed: list[str] = Field(description="The webhook-ids queued again")


class Notification(BaseModel):
    type: Literal["job.succeeded", "job.failed", "job.cancelled"]
    timestamp: datetime
    data: JobPublic


class BatchCreate(BaseModel):
    """Many jobs in one request: validated together (one bad item rejects the batch), created together."""

    model_config = ConfigDict(extra="forbid")

    jobs: list[JobCreate] = Field(
        ...,
        min_length=1,
        description="Job requests, as for POST /v1/jobs (without batch_id); an idempotency_key per item makes a re-sent batch create nothing twice",
    )
    callback_url: str | None = Field(None, max_length=2000, description="Where batch.completed is POSTed once every job is terminal")
    metadata: dict[str, Any] = Field(default_factory=dict, description="Yours; echoed back untouched")

    @field_validator("callback_url")
    @classmethod
    def _callback_url(cls, v: str | None) -> str | None:
        return None if v is None else check_callback_url(v)

    @field_validator("metadata")
    @classmethod
    def _metadata(cls, v: dict[str, Any]) -> dict[str, Any]:
        return _check_document(v, size_limits.get().metadata_bytes)


class BatchPublic(BaseModel):
    id: str
    total: int = Field(description="Jobs created by the batch")
    counts: dict[str, int] = Field(description="Jobs per status (every status, zeros included)")
    status: Literal["running", "completed"] = Field(description="running while any job is not terminal")
    metadata: dict[str, Any]
    created_at: datetime
    finished_at: datetime | None = Field(description="When every job had become terminal (set once)")


class BatchCreated(BatchPublic):
    job_ids: list[str] = Field(
        description="The job of each item, in item order (an item whose idempotency_key was used before with the same body maps to that job)"
    )


class BatchNotification(BaseModel):
    type: Literal["batch.completed"]
    timestamp: datetime
    data: BatchPublic


class OperationPublic(BaseModel):
    name: str
    description: str
    input_schema: dict[str, Any]


class ProviderPublic(BaseModel):
    """A family as its adapter's capabilities describe it."""

    name: str
    operations: list[OperationPublic]
    max_batch: int = Field(description="Ids per batch status query; 1: the family has none")
    expected_s: float
    deadline_s: float
    result_ttl_s: int | None = Field(None, description="How long the relay keeps result URLs working, where known")
    cancels: bool = Field(False, description="A cancelled job's task is cancelled at the relay too")
    oneshot: bool = Field(False, description="The submit's answer is the result: nothing to poll; a lost answer fails submit_outcome_unknown")
    request_timeout_s: float | None = Field(None, description="How long a submit waits for the relay's answer, where the family sets it")
    route_prefix: str | None = Field(
        None, description="The documented default prefix of the family's routes; K4U_ROUTE_PREFIXES replaces it where a relay differs"
    )
    lost_submit: str = Field(
        "none",
        description="How a submission whose answer was lost is found: lookup (by our "
        "external id), callback_echo (a callback naming it) or none (the job fails submit_outcome_unknown)",
    )
    callback_auth: str = Field(
        "url_token",
        description="What proves a callback is the provider's: url_token (the per-job URL "
        "only), standard_webhooks or jwks (a signature, when its setting is configured)",
    )


class ProvidersPublic(BaseModel):
    providers: list[ProviderPublic]
