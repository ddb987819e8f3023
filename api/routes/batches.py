"""/v1/batches: many jobs in one request, their counts and jobs, cancel, and batch notifications.

Business logic lives in workers/services/batches.py; this module maps it to HTTP.
"""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.exceptions import RequestValidationError

from api.deps import JOB_ID_PATTERN, Authed, BaseUrlDep, RuntimeDep
from models.errors import JobNotFound
from models.schemas import BatchCreate, BatchCreated, BatchPublic, DeliveryPublic, JobsPublic, ReplayedPublic
from models.status import JobStatus
from workers.services import reads
from workers.services.batches import BATCH_ID_PATTERN, cancel_batch, create_batch, get_batch
from workers.services.intake import IntakeInvalid
from workers.services.notify import replay_batch_notifications

_BATCH_ID = re.compile(BATCH_ID_PATTERN)


async def known_batch_id(request: Request) -> None:
    """A {batch_id} that no batch of ours can have is a 404 without touching the database."""
    batch_id = request.path_params.get("batch_id")
    if batch_id is not None and not _BATCH_ID.fullmatch(batch_id):
        raise JobNotFound("no batch with that id")


router = APIRouter(prefix="/v1/batches", tags=["batches"], dependencies=[Authed, Depends(known_batch_id)])


@router.post(
    "",
    status_code=202,
    response_model=BatchCreated,
    responses={
        200: {"description": "Every item was an existing job of this batch (same idempotency_key and body): a re-sent batch"},
        409: {"description": "An item's idempotency_key was used with a different body (the detail names the index)"},
        413: {"description": "Body over K4U_MAX_BATCH_BODY_BYTES"},
        422: {"description": 'An invalid item: `detail[].loc` is ["body", "jobs", index, ...field]; nothing is created'},
    },
)
def post_batch(body: BatchCreate, rt: RuntimeDep, base: BaseUrlDep, response: Response) -> BatchCreated:
    """Create many jobs at once (up to K4U_MAX_BATCH_JOBS, 10,000 by default). All items are
    validated first; one invalid item rejects the whole batch. The jobs start `queued` and are
    submitted by the engine as the provider limits allow. `job_ids` lists the job of each item in
    item order. Give each item an `idempotency_key` so that sending the batch again (after a
    timeout, say) creates nothing twice. With `callback_url`, a signed `batch.completed`
    notification is POSTed once every job is terminal."""
    try:
        batch, jobs, created = create_batch(rt, body)
    except IntakeInvalid as exc:
        raise RequestValidationError([{"loc": ("body", *exc.loc), "msg": exc.reason, "type": "value_error"}]) from None
    response.status_code = 202 if created else 200
    response.headers["Location"] = f"{base}/v1/batches/{batch.id}"
    return BatchCreated(**get_batch(rt, batch.id).model_dump(), job_ids=[j.id for j in jobs])


@router.get("/{batch_id}", response_model=BatchPublic, responses={404: {}})
def read_batch(batch_id: str, rt: RuntimeDep) -> BatchPublic:
    """The batch: `counts` of its jobs per status; `status` is `running` while any job is not
    terminal, then `completed` (with `finished_at`)."""
    return get_batch(rt, batch_id)


@router.get("/{batch_id}/jobs", response_model=JobsPublic, responses={404: {}})
def read_batch_jobs(
    batch_id: str,
    rt: RuntimeDep,
    base: BaseUrlDep,
    status: JobStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(pattern=JOB_ID_PATTERN, description="next_cursor of the previous page")] = None,
) -> JobsPublic:
    """The batch's jobs in item order, paged like GET /v1/jobs (`{items, next_cursor}`)."""
    return reads.batch_jobs(rt, batch_id, status=status, limit=limit, cursor=cursor, base=base)


@router.post("/{batch_id}/cancel", status_code=202, response_model=BatchPublic, responses={404: {}})
def post_cancel(batch_id: str, rt: RuntimeDep) -> BatchPublic:
    """Cancel every job of the batch that is not finished yet (finished ones keep their outcome).
    Answers even while the broker is down: the notifications are stored and the sweep sends them."""
    return cancel_batch(rt, batch_id)


@router.get("/{batch_id}/notifications", response_model=list[DeliveryPublic], responses={404: {}})
def get_notifications(batch_id: str, rt: RuntimeDep) -> list[DeliveryPublic]:
    """The batch's own notification (batch.completed) to its callback_url, with every delivery attempt."""
    return reads.batch_notifications(rt, batch_id)


@router.post("/{batch_id}/notifications/replay", status_code=202, response_model=ReplayedPublic, responses={404: {}})
def post_replay(batch_id: str, rt: RuntimeDep) -> ReplayedPublic:
    """Send the batch's notification again (same webhook-id and body)."""
    get_batch(rt, batch_id)  # 404 for an unknown batch
    return ReplayedPublic(replayed=replay_batch_notifications(rt, batch_id))
