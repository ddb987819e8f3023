"""API schemas (pydantic): JobCreate in, JobPublic out, and the notification envelope."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from models.status import JobStatus
from models.tables import Asset, Job


class JobCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    provider: str = Field(..., min_length=1, max_length=40, examples=["kling"])
    operation: str | None = Field(None, max_length=60, examples=["text2video"])
    input: dict[str, Any] = Field(..., examples=[{"prompt": "a red fox running through snow", "duration": "5"}])
    callback_url: str | None = Field(None, max_length=2000, description="Where the completion notification is POSTed")
    idempotency_key: str | None = Field(None, min_length=1, max_length=255)
    metadata: dict[str, Any] = Field(default_factory=dict, description="Yours; echoed back untouched")
    batch_id: str | None = Field(None, max_length=64)


class ErrorPublic(BaseModel):
    code: str
    message: str
    retryable: bool


class AssetPublic(BaseModel):
    index: int
    kind: str
    content_type: str | None
    size: int | None
    sha256: str | None
    url: str | None
    source_url: str
    metadata: dict[str, Any] = Field(default_factory=dict, description="Provider details: clip id and title, grid or split image...")


class JobPublic(BaseModel):
    id: str
    provider: str
    operation: str
    status: JobStatus
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
    status_url: str

    @classmethod
    def from_rows(cls, job: Job, assets: list[Asset], base_url: str) -> JobPublic:
        job_url = f"{base_url}/v1/jobs/{job.id}"
        error = None
        if job.error_code:
            error = ErrorPublic(code=job.error_code, message=job.error_message or "", retryable=bool(job.error_retryable))
        return cls(
            id=job.id, provider=job.provider, operation=job.operation, status=JobStatus(job.status),
            progress=job.progress, provider_task_id=job.provider_task_id, input=job.input, metadata=job.meta,
            batch_id=job.batch_id, error=error,
            assets=[
                AssetPublic(
                    index=a.index, kind=a.kind, content_type=a.content_type, size=a.size, sha256=a.sha256,
                    url=f"{job_url}/assets/{a.index}" if a.stored_at else None, source_url=a.source_url,
                    metadata=dict(a.meta),
                )
                for a in sorted(assets, key=lambda a: a.index)
            ],
            result=job.result, created_at=job.created_at, updated_at=job.updated_at,
            submitted_at=job.submitted_at, finished_at=job.finished_at, status_url=job_url,
        )


class JobsPublic(BaseModel):
    items: list[JobPublic]
    next_cursor: str | None


class Notification(BaseModel):
    type: Literal["job.succeeded", "job.failed", "job.cancelled"]
    timestamp: datetime
    data: JobPublic


class OperationPublic(BaseModel):
    name: str
    description: str
    input_schema: dict[str, Any]


class ProviderPublic(BaseModel):
    name: str
    operations: list[OperationPublic]
    max_batch: int
    expected_s: float
    deadline_s: float


class ProvidersPublic(BaseModel):
    providers: list[ProviderPublic]
