"""SQLModel tables: jobs, batches, assets, job events, notification deliveries and their attempts, uploads.

The job row is the truth. `next_at` is when the engine should next look at a job (submit,
poll, or re-drive a stuck step); `version` makes every transition a compare-and-swap.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, DateTime, Enum, Index, UniqueConstraint, text
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel

from models.status import DeliveryStatus, JobStatus, ProviderCancel, SubmitState


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend (SQLite keeps no offset, so we restore it on read)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _ts(**kw: Any) -> Any:
    return Field(sa_column=Column(UTCDateTime(), **kw))


def _status(kind: type[StrEnum], *, nullable: bool = False, index: bool = False, **default: Any) -> Any:
    """A column of one of models.status's enums, stored as before: the members' values in a
    VARCHAR(20), no native enum type and no CHECK (the migrations' schema). Reads give the member;
    writes take a member or its value, and refuse any other string."""
    kind_of = Enum(kind, native_enum=False, length=20, validate_strings=True, values_callable=lambda e: [m.value for m in e])
    return Field(sa_column=Column(kind_of, nullable=nullable, index=index), **default)


_IN_FLIGHT = "status IN ('queued', 'submitting', 'running')"


class Job(SQLModel, table=True):
    __tablename__ = "job"
    __table_args__ = (
        Index("ix_job_due", "status", "next_at"),
        # The tick's deadline check, in-flight jobs only (bench/inflight.py, migration 0005).
        Index("ix_job_deadline", "deadline_at", postgresql_where=text(_IN_FLIGHT), sqlite_where=text(_IN_FLIGHT)),
        Index("ix_job_provider_task", "provider", "provider_task_id"),
    )

    id: str = Field(primary_key=True, max_length=40)
    provider: str = Field(max_length=40, index=True)
    operation: str = Field(max_length=60)
    status: JobStatus = _status(JobStatus, index=True)
    version: int = 0
    progress: int = 0
    provider_task_id: str | None = Field(default=None, max_length=200)
    # What the provider family needs later to poll, fetch or cancel the task (adapter protocol v2).
    provider_handle: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    input: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    meta: dict[str, Any] = Field(default_factory=dict, sa_column=Column("metadata", JSON, nullable=False))
    result: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    batch_id: str | None = Field(default=None, max_length=64, index=True)
    callback_url: str | None = Field(default=None, max_length=2000)
    callback_token: str = Field(max_length=64)
    idempotency_key: str | None = Field(default=None, max_length=255, unique=True)
    request_hash: str | None = Field(default=None, max_length=64)
    error_code: str | None = Field(default=None, max_length=64)
    error_message: str | None = None
    error_retryable: bool | None = None
    submit_state: SubmitState = _status(SubmitState, default=SubmitState.NOT_SENT)
    submit_attempts: int = 0
    # Resends after an unknown outcome whose lookup proved the task absent (K4U_SUBMIT_MAX_ATTEMPTS).
    submit_resends: int = 0
    # 1 for the first run; POST /v1/jobs/{id}/retry starts attempt 2, 3, ... of a failed job.
    attempt: int = 1
    download_attempts: int = 0
    # The relay-side cancel of a cancelled job's task, and its tries.
    provider_cancel: ProviderCancel | None = _status(ProviderCancel, nullable=True, default=None)
    provider_cancel_attempts: int = 0
    poll_count: int = 0
    created_at: datetime = _ts(nullable=False)
    updated_at: datetime = _ts(nullable=False)
    submitted_at: datetime | None = _ts(nullable=True)
    finished_at: datetime | None = _ts(nullable=True)
    next_at: datetime | None = _ts(nullable=True)
    deadline_at: datetime | None = _ts(nullable=True)
    # Set by the first download attempt: until then a paid result's source and storage errors are retried.
    download_deadline_at: datetime | None = _ts(nullable=True)
    # When the result URLs stop working (the relay's expires_at, or success + the family's typical lifetime).
    result_expires_at: datetime | None = _ts(nullable=True)
    # The files the input references, as intake found them: [{field, ref, upload_id, sha256}] for an
    # upload, [{field, ref, job_id, index, sha256}] for another job's asset (sha256 once it succeeded).
    inputs: list[dict[str, Any]] | None = Field(default=None, sa_column=Column(JSON))


class JobDependency(SQLModel, table=True):
    """A waiting job (`job_id`) needs an asset of `parent_id`: one row per (child, parent), written in
    the child's insert. The parent's finish finds its children here (workers/services/pipelines.py)."""

    __tablename__ = "job_dependency"

    job_id: str = Field(foreign_key="job.id", primary_key=True, max_length=40)
    parent_id: str = Field(foreign_key="job.id", primary_key=True, max_length=40, index=True)


class Upload(SQLModel, table=True):
    """A file sent to POST /v1/uploads (or an inline file of a job's input, stored at intake).
    Rows with the same bytes share one stored object (`object_key`, the first such row's): it is
    removed with the last row that names it."""

    __tablename__ = "upload"

    id: str = Field(primary_key=True, max_length=40)
    object_key: str = Field(max_length=200, index=True)
    filename: str | None = Field(default=None, max_length=255)
    content_type: str = Field(max_length=200)
    size: int = Field(sa_column=Column(BigInteger(), nullable=False))
    sha256: str = Field(max_length=64, index=True)
    created_at: datetime = _ts(nullable=False)
    expires_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False, index=True))


class Asset(SQLModel, table=True):
    __tablename__ = "asset"
    __table_args__ = (UniqueConstraint("job_id", "attempt", "index", name="uq_asset_job_attempt_index"),)

    id: int | None = Field(default=None, primary_key=True)
    job_id: str = Field(foreign_key="job.id", index=True, max_length=40)
    # The job's attempt that produced it: a retry adds its own assets, and earlier attempts' stay (paid files).
    attempt: int = 1
    index: int
    kind: str = Field(max_length=20)
    source_url: str
    needs_auth: bool = False
    meta: dict[str, Any] = Field(default_factory=dict, sa_column=Column("metadata", JSON, nullable=False))
    storage_key: str | None = None
    content_type: str | None = Field(default=None, max_length=200)
    size: int | None = None
    sha256: str | None = Field(default=None, max_length=64)
    stored_at: datetime | None = _ts(nullable=True)


class JobEvent(SQLModel, table=True):
    __tablename__ = "job_event"

    id: int | None = Field(default=None, primary_key=True)
    job_id: str = Field(foreign_key="job.id", index=True, max_length=40)
    old_status: JobStatus | None = _status(JobStatus, nullable=True, default=None)
    new_status: JobStatus = _status(JobStatus)
    reason: str
    payload_sha256: str | None = Field(default=None, max_length=64)
    at: datetime = _ts(nullable=False)


class Batch(SQLModel, table=True):
    """Jobs created by one POST /v1/batches (their `batch_id`). Counts are read from the jobs;
    `finished_at` is set once, by compare-and-swap, when every job is terminal."""

    __tablename__ = "batch"

    id: str = Field(primary_key=True, max_length=40)
    total: int
    callback_url: str | None = Field(default=None, max_length=2000)
    meta: dict[str, Any] = Field(default_factory=dict, sa_column=Column("metadata", JSON, nullable=False))
    created_at: datetime = _ts(nullable=False)
    finished_at: datetime | None = _ts(nullable=True, index=True)


class Delivery(SQLModel, table=True):
    """One notification (job + event, or batch + batch.completed) to the caller's callback_url,
    retried until 2xx or given up. Exactly one of job_id and batch_id is set."""

    __tablename__ = "delivery"
    __table_args__ = (
        UniqueConstraint("job_id", "event", "job_attempt", name="uq_delivery_job_event_attempt"),
        Index("ix_delivery_due", "status", "next_at"),
    )

    id: str = Field(primary_key=True, max_length=80)  # the webhook-id: stable per job + event
    job_id: str | None = Field(default=None, foreign_key="job.id", index=True, max_length=40)
    batch_id: str | None = Field(default=None, foreign_key="batch.id", index=True, max_length=40)
    event: str = Field(max_length=40)
    job_attempt: int = 1  # the job's attempt this event belongs to (a retried job notifies again)
    url: str = Field(max_length=2000)
    payload: str  # the exact body, so every retry and replay signs the same bytes
    status: DeliveryStatus = _status(DeliveryStatus, default=DeliveryStatus.PENDING)
    version: int = 0
    attempts: int = 0
    next_at: datetime | None = _ts(nullable=True)
    created_at: datetime = _ts(nullable=False)
    delivered_at: datetime | None = _ts(nullable=True)
    last_error: str | None = None


class DeliveryAttempt(SQLModel, table=True):
    __tablename__ = "delivery_attempt"

    id: int | None = Field(default=None, primary_key=True)
    delivery_id: str = Field(foreign_key="delivery.id", index=True, max_length=80)
    attempt: int
    status_code: int | None = None
    error: str | None = None
    duration_ms: int
    at: datetime = _ts(nullable=False)


class WebhookReceipt(SQLModel, table=True):
    """A signed provider delivery we applied, by its id (Replicate's webhook-id): a second one with
    the same id is a replay. Kept an hour; older ones carry a stale timestamp and are refused anyway."""

    __tablename__ = "webhook_receipt"

    provider: str = Field(primary_key=True, max_length=40)
    delivery_id: str = Field(primary_key=True, max_length=200)
    job_id: str = Field(max_length=40)
    received_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False, index=True))
