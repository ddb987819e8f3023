"""/v1/webhooks/{provider}/{job_id}/{token}: provider callbacks (no bearer: the token is the key)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from api.deps import JobIdChecked, RuntimeDep
from workers.services.callbacks import handle_callback

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"], dependencies=[JobIdChecked])


@router.post("/{provider}/{job_id}/{token}", responses={400: {}, 404: {}, 413: {}})
async def provider_callback(provider: str, job_id: str, token: str, request: Request, rt: RuntimeDep) -> dict[str, str]:
    body = await request.body()  # already read and capped by api.limits.BodyLimits
    outcome = await run_in_threadpool(handle_callback, rt, provider, job_id, token, dict(request.headers), body)
    return {"outcome": outcome}
