"""/v1/jobs: create, read, list, cancel, assets, events."""

from __future__ import annotations

import json
from pathlib import PurePosixPath
from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Path, Query, Request, Response
from fastapi.responses import RedirectResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from api.deps import JOB_ID_PATTERN, PLAIN_TEXT, Authed, BaseUrlDep, JobDep, JobIdChecked, RuntimeDep
from models.schemas import DeliveryPublic, JobCreate, JobEventPublic, JobPublic, JobsPublic, ReplayedPublic
from models.status import TERMINAL, JobStatus
from workers.services import reads
from workers.services.create import cancel_job, create_job
from workers.services.longpoll import MAX_WAIT_S, wait_for_job_async
from workers.services.notify import replay_notifications
from workers.services.retry import retry_job

router = APIRouter(prefix="/v1/jobs", tags=["jobs"], dependencies=[Authed, JobIdChecked])
MAX_ASSET_INDEX = 9999
MAX_ATTEMPT = 2**31 - 1  # the column's range: a larger number is a 422, not a database error


@router.post(
    "",
    status_code=202,
    response_model=JobPublic,
    responses={200: {"description": "Replay of an earlier request with the same Idempotency-Key"}, 409: {}, 422: {}},
)
def post_job(
    body: JobCreate,
    rt: RuntimeDep,
    base: BaseUrlDep,
    response: Response,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", min_length=1, max_length=255, pattern=PLAIN_TEXT)] = None,
) -> JobPublic:
    """Create a durable job; answers at once with its id and status_url."""
    job, created = create_job(rt, body, idempotency_key)
    response.status_code = 202 if created else 200
    response.headers["Location"] = f"{base}/v1/jobs/{job.id}"
    # A job created just now has no assets: no second session to read them (bench/submit_rate.py).
    return JobPublic.from_rows(job, [], base) if created else reads.job_public(rt, job, base)


@router.get("/{job_id}", response_model=JobPublic)
async def get_job(
    job: JobDep,
    rt: RuntimeDep,
    base: BaseUrlDep,
    request: Request,
    wait: Annotated[
        float,
        Query(
            ge=0,
            le=MAX_WAIT_S,
            allow_inf_nan=False,
            description=(
                "Long-poll: answer once the job is terminal or after this many seconds (at most 60), "
                "whichever comes first; the job as it is then, 200 either way"
            ),
        ),
    ] = 0,
) -> JobPublic:
    """The job. With `wait`, for tools that cannot take a callback: holds the request (no thread)
    until the job is succeeded, failed or cancelled, or the wait is over."""
    if wait > 0 and JobStatus(job.status) not in TERMINAL:
        job = await wait_for_job_async(rt, job.id, wait, gone=request.is_disconnected)
    return await run_in_threadpool(reads.job_public, rt, job, base)


@router.get("", response_model=JobsPublic)
def list_jobs(
    rt: RuntimeDep,
    base: BaseUrlDep,
    response: Response,
    status: JobStatus | None = None,
    provider: Annotated[str | None, Query(max_length=40, pattern=PLAIN_TEXT)] = None,
    batch_id: Annotated[str | None, Query(max_length=64, pattern=PLAIN_TEXT)] = None,
    depends_on: Annotated[str | None, Query(pattern=JOB_ID_PATTERN, description="only the children of this job (its pipeline's next steps)")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(pattern=JOB_ID_PATTERN, description="next_cursor of the previous page")] = None,
) -> JobsPublic:
    """Newest first; pass next_cursor back as cursor for the next page.

    With `batch_id`, the answer also carries `cost`: the relay-reported cost numbers of the jobs'
    `result.cost` (Replicate `predict_time_s`, fal `inference_s`...) summed per key over the whole
    batch, whatever the page and the other filters, plus `jobs_with_cost`; the same totals are in the
    `X-K4U-Batch-Cost` header as compact JSON. Summed from `result.cost` alone, streamed in chunks."""
    page = reads.list_jobs(rt, status=status, provider=provider, batch_id=batch_id, limit=limit, cursor=cursor, base=base, depends_on=depends_on)
    if page.cost is not None:
        response.headers["X-K4U-Batch-Cost"] = json.dumps(page.cost, separators=(",", ":"))
    return page


@router.post("/{job_id}/cancel", response_model=JobPublic, responses={404: {}, 409: {"description": "already finished, or downloading a paid result (kept)"}})
def post_cancel(job_id: str, rt: RuntimeDep, base: BaseUrlDep) -> JobPublic:
    """Stop tracking the job. Where the family can cancel at the relay (Replicate, fal) and the job
    has a task there, that task is cancelled too, in the background: `provider_cancel` pending, then
    done (the events say what the relay answered) or failed after K4U_PROVIDER_CANCEL_MAX_ATTEMPTS.
    409 for a finished job, and for a downloading one: its result is finished and paid for, so it
    is kept (the request is recorded in its events) and the job ends as its download does."""
    return reads.job_public(rt, cancel_job(rt, job_id), base)


@router.post("/{job_id}/retry", status_code=202, response_model=JobPublic, responses={404: {}, 409: {"description": "the job has not failed"}})
def post_retry(job_id: str, rt: RuntimeDep, base: BaseUrlDep) -> JobPublic:
    """Submit a failed job again: same input, a new attempt (the old relay task id stays in the
    events). The answer to `submit_outcome_unknown`, where the first attempt may have been charged:
    retry only if you accept a second charge. 409 unless the job failed."""
    return reads.job_public(rt, retry_job(rt, job_id), base)


@router.get("/{job_id}/assets/{index}", responses={200: {"content": {"application/octet-stream": {}}}, 307: {}, 404: {}, 410: {}})
def get_asset(
    job_id: str,
    index: Annotated[int, Path(ge=0, le=MAX_ASSET_INDEX)],
    rt: RuntimeDep,
    redirect: Annotated[
        bool, Query(description="false: stream the bytes through the API even when the store is S3 (for a browser page whose policy keeps it on our origin)")
    ] = True,
    attempt: Annotated[
        int | None,
        Query(
            ge=1, le=MAX_ATTEMPT, description=("An earlier attempt's asset (after a retry; its `url` in the job names it); default: the job's current attempt")
        ),
    ] = None,
) -> Response:
    """The stored bytes, or a redirect to a presigned URL when the store is S3 (unless redirect=false)."""
    asset = reads.stored_asset(rt, job_id, index, attempt)
    if asset is None or asset.storage_key is None:
        raise HTTPException(status_code=404, detail="no stored asset with that index")
    url = rt.store.presign(asset.storage_key, rt.settings.presign_expires_s) if redirect else None
    if url is not None:
        return RedirectResponse(url, status_code=307)
    if not rt.store.exists(asset.storage_key):  # removed from the store behind our back
        raise HTTPException(status_code=410, detail="the stored file of this asset is gone from storage")
    headers = {"Content-Length": str(asset.size), "ETag": f'"{asset.sha256}"'} if asset.size is not None else {}
    # Served from our origin: never let a browser sniff or render it (RFC 6266 attachment, ASCII name).
    ext = "".join(c for c in PurePosixPath(asset.storage_key).suffix if c.isascii() and (c.isalnum() or c == "."))[:10]
    headers |= {"X-Content-Type-Options": "nosniff", "Content-Disposition": f'attachment; filename="{job_id}-{index}{ext}"'}
    return StreamingResponse(rt.store.open(asset.storage_key), media_type=asset.content_type, headers=headers)


@router.get("/{job_id}/events", response_model=list[JobEventPublic], responses={404: {}})
def get_events(job: JobDep, rt: RuntimeDep) -> list[JobEventPublic]:
    """The job's history: every transition with its reason."""
    return reads.job_events(rt, job)


@router.get("/{job_id}/notifications", response_model=list[DeliveryPublic], responses={404: {}})
def get_notifications(job: JobDep, rt: RuntimeDep) -> list[DeliveryPublic]:
    """The job's notifications to its callback_url, with every delivery attempt."""
    return reads.job_notifications(rt, job)


@router.post("/{job_id}/notifications/replay", status_code=202, response_model=ReplayedPublic, responses={404: {}})
def post_replay(job: JobDep, rt: RuntimeDep) -> ReplayedPublic:
    """Send the job's notifications again (same webhook-id and body), e.g. after fixing a receiver."""
    return ReplayedPublic(replayed=replay_notifications(rt, job.id))
