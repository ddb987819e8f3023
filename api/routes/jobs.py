"""/v1/jobs: create, read, list, cancel, assets, events."""

from __future__ import annotations

import json
import math
from pathlib import PurePosixPath
from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Path, Query, Request, Response
from fastapi.responses import RedirectResponse, StreamingResponse
from sqlmodel import col, select
from starlette.concurrency import run_in_threadpool

from api.deps import JOB_ID_PATTERN, PLAIN_TEXT, Authed, BaseUrlDep, JobIdChecked, RuntimeDep
from models.schemas import JobCreate, JobPublic, JobsPublic
from models.status import JobStatus
from models.tables import Asset, Delivery, DeliveryAttempt, Job, JobEvent
from workers.db import session_scope
from workers.services.create import cancel_job, create_job
from workers.services.longpoll import MAX_WAIT_S, load_job, wait_for_job_async
from workers.services.notify import replay_notifications
from workers.services.retry import retry_job

router = APIRouter(prefix="/v1/jobs", tags=["jobs"], dependencies=[Authed, JobIdChecked])
MAX_ASSET_INDEX = 9999
MAX_ATTEMPT = 2**31 - 1  # the column's range: a larger number is a 422, not a database error


def _public(rt: RuntimeDep, job: Job, base: str) -> JobPublic:
    with session_scope(rt.engine) as session:
        assets = list(session.exec(select(Asset).where(Asset.job_id == job.id)).all())
    return JobPublic.from_rows(job, assets, base)


@router.post("", status_code=202, response_model=JobPublic, responses={200: {"description": "Replay of an earlier request with the same Idempotency-Key"}, 409: {}, 422: {}})
def post_job(body: JobCreate, rt: RuntimeDep, base: BaseUrlDep, response: Response,
             idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", min_length=1, max_length=255, pattern=PLAIN_TEXT)] = None) -> JobPublic:
    """Create a durable job; answers at once with its id and status_url."""
    job, created = create_job(rt, body, idempotency_key)
    response.status_code = 202 if created else 200
    response.headers["Location"] = f"{base}/v1/jobs/{job.id}"
    # A job created just now has no assets: no second session to read them (bench/submit_rate.py).
    return JobPublic.from_rows(job, [], base) if created else _public(rt, job, base)


@router.get("/{job_id}", response_model=JobPublic)
async def get_job(job_id: str, rt: RuntimeDep, base: BaseUrlDep, request: Request,
                  wait: Annotated[float, Query(ge=0, le=MAX_WAIT_S, allow_inf_nan=False, description=(
                      "Long-poll: answer once the job is terminal or after this many seconds (at most 60), "
                      "whichever comes first; the job as it is then, 200 either way"))] = 0) -> JobPublic:
    """The job. With `wait`, for tools that cannot take a callback: holds the request (no thread)
    until the job is succeeded, failed or cancelled, or the wait is over."""
    job = await wait_for_job_async(rt, job_id, wait, gone=request.is_disconnected)
    return await run_in_threadpool(_public, rt, job, base)


@router.get("", response_model=JobsPublic)
def list_jobs(rt: RuntimeDep, base: BaseUrlDep, response: Response, status: JobStatus | None = None,
              provider: Annotated[str | None, Query(max_length=40, pattern=PLAIN_TEXT)] = None,
              batch_id: Annotated[str | None, Query(max_length=64, pattern=PLAIN_TEXT)] = None,
              limit: Annotated[int, Query(ge=1, le=500)] = 50,
              cursor: Annotated[str | None, Query(pattern=JOB_ID_PATTERN, description="next_cursor of the previous page")] = None) -> JobsPublic:
    """Newest first; pass next_cursor back as cursor for the next page.

    With `batch_id`, the answer also carries `cost`: the relay-reported cost numbers of the jobs'
    `result.cost` (Replicate `predict_time_s`, fal `inference_s`...) summed per key over the whole
    batch, whatever the page and the other filters, plus `jobs_with_cost`; the same totals are in the
    `X-K4U-Batch-Cost` header as compact JSON. Summed from `result.cost` alone, streamed in chunks."""
    q = select(Job)
    if status is not None:
        q = q.where(Job.status == status.value)
    if provider is not None:
        q = q.where(Job.provider == provider)
    if batch_id is not None:
        q = q.where(Job.batch_id == batch_id)
    if cursor is not None:
        q = q.where(col(Job.id) < cursor)
    with session_scope(rt.engine) as session:
        rows = list(session.exec(q.order_by(col(Job.id).desc()).limit(limit + 1)).all())
        page = rows[:limit]
        ids = [j.id for j in page]
        assets = list(session.exec(select(Asset).where(col(Asset.job_id).in_(ids))).all()) if ids else []
    by_job: dict[str, list[Asset]] = {}
    for a in assets:
        by_job.setdefault(a.job_id, []).append(a)
    items = [JobPublic.from_rows(j, by_job.get(j.id, []), base) for j in page]
    cost = None
    if batch_id is not None:
        cost = batch_cost(rt, batch_id)
        response.headers["X-K4U-Batch-Cost"] = json.dumps(cost, separators=(",", ":"))
    return JobsPublic(items=items, next_cursor=page[-1].id if len(rows) > limit else None, cost=cost)


COST_CHUNK = 1000


def batch_cost(rt: RuntimeDep, batch_id: str) -> dict[str, int | float]:
    """Per-key totals of the numbers in the batch's `result.cost` objects, and `jobs_with_cost`.

    The keys differ per family and are not known in advance, so no fixed SQL aggregate covers
    them; the database sends only each job's `result -> 'cost'` sub-object (not the job rows),
    in chunks of COST_CHUNK (a server-side cursor on PostgreSQL), and they are summed here in
    constant memory. Booleans and non-numbers are ignored; floats are rounded to 6 places."""
    totals: dict[str, int | float] = {}
    with_cost = 0
    query = (select(col(Job.result)["cost"]).where(col(Job.batch_id) == batch_id, col(Job.result).is_not(None))
             .execution_options(yield_per=COST_CHUNK))
    with session_scope(rt.engine) as session:
        for cost in session.exec(query):
            if not isinstance(cost, dict):
                continue
            numbers = [(k, v) for k, v in cost.items() if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)]
            if numbers:
                with_cost += 1
            for k, v in numbers:
                totals[k] = totals.get(k, 0) + v
    out: dict[str, int | float] = {k: round(v, 6) if isinstance(v, float) else v for k, v in sorted(totals.items())}
    out["jobs_with_cost"] = with_cost  # reserved: the count wins over a cost key of that name
    return out


@router.post("/{job_id}/cancel", response_model=JobPublic, responses={404: {}, 409: {"description": "already finished, or downloading a paid result (kept)"}})
def post_cancel(job_id: str, rt: RuntimeDep, base: BaseUrlDep) -> JobPublic:
    """Stop tracking the job. Where the family can cancel at the relay (Replicate, fal) and the job
    has a task there, that task is cancelled too, in the background: `provider_cancel` pending, then
    done (the events say what the relay answered) or failed after K4U_PROVIDER_CANCEL_MAX_ATTEMPTS.
    409 for a finished job, and for a downloading one: its result is finished and paid for, so it
    is kept (the request is recorded in its events) and the job ends as its download does."""
    return _public(rt, cancel_job(rt, job_id), base)


@router.post("/{job_id}/retry", status_code=202, response_model=JobPublic,
             responses={404: {}, 409: {"description": "the job has not failed"}})
def post_retry(job_id: str, rt: RuntimeDep, base: BaseUrlDep) -> JobPublic:
    """Submit a failed job again: same input, a new attempt (the old relay task id stays in the
    events). The answer to `submit_outcome_unknown`, where the first attempt may have been charged:
    retry only if you accept a second charge. 409 unless the job failed."""
    return _public(rt, retry_job(rt, job_id), base)


@router.get("/{job_id}/assets/{index}", responses={200: {"content": {"application/octet-stream": {}}}, 307: {}, 404: {}, 410: {}})
def get_asset(job_id: str, index: Annotated[int, Path(ge=0, le=MAX_ASSET_INDEX)], rt: RuntimeDep,
              redirect: Annotated[bool, Query(description="false: stream the bytes through the API even when the store "
                                                          "is S3 (for a browser page whose policy keeps it on our origin)")] = True,
              attempt: Annotated[int | None, Query(ge=1, le=MAX_ATTEMPT, description=(
                  "An earlier attempt's asset (after a retry; its `url` in the job names it); default: the job's current attempt"))] = None) -> Response:
    """The stored bytes, or a redirect to a presigned URL when the store is S3 (unless redirect=false)."""
    current = select(col(Job.attempt)).where(col(Job.id) == job_id).scalar_subquery()
    with session_scope(rt.engine) as session:
        asset = session.exec(select(Asset).where(Asset.job_id == job_id, Asset.attempt == (attempt or current), Asset.index == index)).first()
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


@router.get("/{job_id}/events")
def get_events(job_id: str, rt: RuntimeDep) -> list[dict[str, object]]:
    """The job's history: every transition with its reason."""
    load_job(rt, job_id)
    with session_scope(rt.engine) as session:
        rows = session.exec(select(JobEvent).where(JobEvent.job_id == job_id).order_by(col(JobEvent.id))).all()
    return [{"from": e.old_status, "to": e.new_status, "reason": e.reason, "at": e.at.isoformat()} for e in rows]


@router.get("/{job_id}/notifications")
def get_notifications(job_id: str, rt: RuntimeDep) -> list[dict[str, object]]:
    """The job's notifications to its callback_url, with every delivery attempt."""
    load_job(rt, job_id)
    with session_scope(rt.engine) as session:
        deliveries = session.exec(select(Delivery).where(Delivery.job_id == job_id)).all()
        attempts = session.exec(select(DeliveryAttempt).where(col(DeliveryAttempt.delivery_id).in_([d.id for d in deliveries]))
                                .order_by(col(DeliveryAttempt.id))).all() if deliveries else []
    return [
        {"webhook_id": d.id, "event": d.event, "url": d.url, "status": d.status, "attempts": d.attempts,
         "last_error": d.last_error, "delivered_at": d.delivered_at.isoformat() if d.delivered_at else None,
         "next_attempt_at": d.next_at.isoformat() if d.next_at and d.status == "pending" else None,
         "history": [{"attempt": a.attempt, "status_code": a.status_code, "error": a.error, "duration_ms": a.duration_ms,
                      "at": a.at.isoformat()} for a in attempts if a.delivery_id == d.id]}
        for d in deliveries
    ]


@router.post("/{job_id}/notifications/replay", status_code=202)
def post_replay(job_id: str, rt: RuntimeDep) -> dict[str, list[str]]:
    """Send the job's notifications again (same webhook-id and body), e.g. after fixing a receiver."""
    load_job(rt, job_id)
    return {"replayed": replay_notifications(rt, job_id)}
