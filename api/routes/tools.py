"""/v1/tools: the same jobs, shaped for LLM tool platforms (Coze plugins, Dify custom tools).

Those platforms treat any status but 200 as a failure (Coze), cut a call at about 60 s (Dify) or
3 minutes (Coze), and take only scalar query and header parameters. So every answer here is HTTP
200 with one flat JSON object, `{ok, job, error}`, business errors included; `input` may be a JSON
object or a string holding one (bounded to the body's nesting depth); `wait` long-polls at most
50 s. A body not declared JSON is refused 415 before it gets here (`api.limits`): the platforms
send JSON, and a cross-site page cannot without a CORS preflight. The tools' own OpenAPI 3.0.3
document, with every output field declared and descriptions written for a model choosing a tool,
is `GET /v1/tools/openapi.json` (`api.tools_openapi`).
"""

from __future__ import annotations

import json
import logging
import re
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from sqlalchemy.exc import OperationalError
from starlette.concurrency import run_in_threadpool

from api.deps import JOB_ID_PATTERN, RuntimeDep, link_base, token_accepted
from api.limits import MAX_JSON_DEPTH, too_deep
from api.tools_openapi import WAIT_MAX_S, tools_document
from models.errors import IdempotencyConflict, JobNotFound, RequestInvalid
from models.schemas import JobCreate
from models.status import TERMINAL
from models.tables import Asset, Job
from workers.context import Runtime
from workers.services import reads
from workers.services.create import create_job
from workers.services.longpoll import load_job, wait_for_job_async

router = APIRouter(prefix="/v1/tools", tags=["tools"])
log = logging.getLogger("k4u.api.tools")
_JOB_ID = re.compile(JOB_ID_PATTERN)


def _answer(job: dict[str, Any] | None = None, error: dict[str, Any] | None = None) -> JSONResponse:
    return JSONResponse({"ok": error is None, "job": job, "error": error}, status_code=200)


def _error(code: str, message: str, field: str | None = None, retryable: bool = False) -> JSONResponse:
    return _answer(error={"code": code, "message": message, "field": field, "retryable": retryable})


def _authorized(rt: Runtime, authorization: str | None, api_key: str | None) -> bool:
    """The API's bearer tokens, also accepted as X-API-Key (some plugin platforms can only set a key header)."""
    given = authorization.removeprefix("Bearer ").strip() if authorization else (api_key or "").strip()
    return token_accepted(rt, given)


def flat_job(job: Job, assets: list[Asset], base: str) -> dict[str, Any]:
    """One job as flat fields, every one always present (tool platforms drop undeclared fields)."""
    stored = sorted((a for a in assets if a.stored_at is not None and a.attempt == job.attempt), key=lambda a: a.index)
    urls = [f"{base}/v1/jobs/{job.id}/assets/{a.index}" for a in stored]
    return {
        "job_id": job.id,
        "provider": job.provider,
        "operation": job.operation,
        "status": job.status,
        "done": job.status in TERMINAL,
        "progress": job.progress,
        "result_url": urls[0] if urls else None,
        "result_urls": urls,
        "result_kinds": [a.kind for a in stored],
        "result_sha256": [a.sha256 or "" for a in stored],
        "error_code": job.error_code,
        "error_message": job.error_message,
        "status_url": f"{base}/v1/jobs/{job.id}",
        "created_at": job.created_at.isoformat(),
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
    }


def _flat(rt: Runtime, job: Job, base: str) -> dict[str, Any]:
    return flat_job(job, reads.job_assets(rt, job.id), base)


def _parse_submit(raw: bytes) -> JobCreate | JSONResponse:
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        return _error("invalid_request", "the body is not JSON", "body")
    if not isinstance(body, dict):
        return _error("invalid_request", "the body must be a JSON object", "body")
    for key in ("input", "metadata"):  # Coze and Dify users often hold only strings: JSON in a string is read
        if isinstance(body.get(key), str):
            # nested under its key, it may go as deep as the body's own cap allows: one level less
            if too_deep(body[key].encode("utf-8", "surrogatepass"), MAX_JSON_DEPTH - 1) is not None:
                return _error("invalid_request", f"{key} is JSON nested deeper than {MAX_JSON_DEPTH} levels", key)
            try:
                body[key] = json.loads(body[key]) if body[key].strip() else {}
            except ValueError:
                return _error("invalid_request", f"{key} is a string that is not JSON", key)
    try:
        return JobCreate.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "body"
        return _error("invalid_request", f"{field}: {first['msg']}", field)


@router.post("/submit", include_in_schema=False)
async def tool_submit(
    request: Request, rt: RuntimeDep, authorization: Annotated[str | None, Header()] = None, x_api_key: Annotated[str | None, Header()] = None
) -> JSONResponse:
    if not _authorized(rt, authorization, x_api_key):
        return _error("unauthorized", "missing or invalid API token (Authorization: Bearer <token>)")
    parsed = _parse_submit(await request.body())
    if isinstance(parsed, JSONResponse):
        return parsed
    base = link_base(request)
    try:
        job, _created = await run_in_threadpool(create_job, rt, parsed, parsed.idempotency_key)
        return _answer(await run_in_threadpool(_flat, rt, job, base))
    except RequestInvalid as exc:
        return _error("invalid_request", exc.message, exc.field)
    except IdempotencyConflict as exc:
        return _error("idempotency_conflict", exc.message, "idempotency_key")
    except OperationalError:
        return _error("unavailable", "the job store is unavailable; try again shortly", retryable=True)


async def _read(request: Request, rt: Runtime, job_id: str, wait_s: float) -> JSONResponse:
    if not _JOB_ID.fullmatch(job_id):
        return _error("not_found", f"no job {job_id[:60]!r}", "job_id")
    try:
        job = await wait_for_job_async(rt, job_id, wait_s, gone=request.is_disconnected) if wait_s > 0 else await run_in_threadpool(load_job, rt, job_id)
        return _answer(await run_in_threadpool(_flat, rt, job, link_base(request)))
    except JobNotFound:
        return _error("not_found", f"no job {job_id}", "job_id")
    except OperationalError:
        return _error("unavailable", "the job store is unavailable; try again shortly", retryable=True)


@router.get("/status", include_in_schema=False)
async def tool_status(
    request: Request,
    rt: RuntimeDep,
    job_id: Annotated[str, Query()] = "",
    authorization: Annotated[str | None, Header()] = None,
    x_api_key: Annotated[str | None, Header()] = None,
) -> JSONResponse:
    if not _authorized(rt, authorization, x_api_key):
        return _error("unauthorized", "missing or invalid API token (Authorization: Bearer <token>)")
    return await _read(request, rt, job_id, 0.0)


@router.get("/wait", include_in_schema=False)
async def tool_wait(
    request: Request,
    rt: RuntimeDep,
    job_id: Annotated[str, Query()] = "",
    seconds: Annotated[str, Query()] = str(int(WAIT_MAX_S)),
    authorization: Annotated[str | None, Header()] = None,
    x_api_key: Annotated[str | None, Header()] = None,
) -> JSONResponse:
    if not _authorized(rt, authorization, x_api_key):
        return _error("unauthorized", "missing or invalid API token (Authorization: Bearer <token>)")
    try:
        wait_s = float(seconds[:20])
    except ValueError:
        return _error("invalid_request", "seconds must be a number from 0 to 50", "seconds")
    if not 0 <= wait_s <= WAIT_MAX_S:  # NaN fails too
        return _error("invalid_request", "seconds must be a number from 0 to 50", "seconds")
    return await _read(request, rt, job_id, wait_s)


@router.get("/openapi.json", include_in_schema=False)
def tool_openapi(request: Request) -> JSONResponse:
    """The tools' own OpenAPI 3.0.3 document (no auth: plugin platforms import it by URL)."""
    return JSONResponse(tools_document(link_base(request)))
