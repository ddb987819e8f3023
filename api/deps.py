"""Dependencies: the runtime, bearer-token auth, job-id and text checks, and the base URL for links."""

from __future__ import annotations

import hmac
import re
from typing import Annotated

from fastapi import Depends, HTTPException, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from api.openmode import trusted_host
from models.errors import JobNotFound
from models.tables import Job
from workers.context import Runtime
from workers.services.longpoll import load_job

_bearer = HTTPBearer(auto_error=False)

JOB_ID_PATTERN = r"^job_[0-9a-f]{1,36}$"  # workers.jobs.new_job_id: job_ + 28 hex digits
PLAIN_TEXT = r"^[^\x00-\x1f\x7f]*$"  # query and header values we filter on or store: no NUL or control chars
_JOB_ID = re.compile(JOB_ID_PATTERN)


# The dependencies are coroutines although nothing in them waits: FastAPI runs a plain function in
# the threadpool, one thread hop each per request (bench/submit_rate.py).
async def get_runtime(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime  # set by create_app
    return rt


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def token_accepted(rt: Runtime, given: str) -> bool:
    """One of K4U_API_TOKENS (compared in constant time), or any value when it is unset (open API, development)."""
    tokens = rt.settings.tokens
    return not tokens or any(hmac.compare_digest(given.encode(), t.encode()) for t in tokens)


async def require_token(rt: RuntimeDep, creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> None:
    if not token_accepted(rt, creds.credentials if creds else ""):
        raise HTTPException(status_code=401, detail="missing or invalid bearer token", headers={"WWW-Authenticate": "Bearer"})


async def require_metrics_token(rt: RuntimeDep, creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> None:
    """K4U_METRICS_TOKEN as a bearer token, when it is set (the API's own tokens do not open /metrics)."""
    expected = rt.settings.metrics_token
    if expected is not None and not (creds and hmac.compare_digest(creds.credentials.encode(), expected.get_secret_value().encode())):
        raise HTTPException(status_code=401, detail="missing or invalid bearer token (K4U_METRICS_TOKEN)", headers={"WWW-Authenticate": "Bearer"})


def link_base(request: Request) -> str:
    """Where the links we hand out (`status_url`, `Location`, the tools document's server) point:
    K4U_PUBLIC_URL; else the URL this request came to when its Host names this machine (localhost,
    127.x, [::1]); else the address the connection reached us at. Never another Host name, which
    anyone can send (a DNS-rebinding page, a poisoned cache) and would turn our links into theirs."""
    rt: Runtime = request.app.state.runtime
    if rt.settings.public_url:
        return rt.settings.public_url
    host = request.headers.get("host")
    if host is not None and not trusted_host(host):
        request = Request({**request.scope, "headers": []})  # without a Host, Starlette's URL is scope["server"]
    return str(request.base_url).rstrip("/")


async def base_url(request: Request) -> str:
    return link_base(request)


def _check_job_id(job_id: str) -> None:
    if not _JOB_ID.fullmatch(job_id):
        raise JobNotFound("no job with that id")


async def known_job_id(request: Request) -> None:
    """A {job_id} that no job of ours can have is a 404 without touching the database."""
    job_id = request.path_params.get("job_id")
    if job_id is not None:
        _check_job_id(job_id)


async def existing_job(job_id: Annotated[str, Path()], rt: RuntimeDep) -> Job:
    """The job of the path's {job_id}: the one "job or 404" of the API (JobNotFound, mapped by type).
    Routes whose service reads the job in its own transaction (cancel, retry) get JobNotFound from it."""
    _check_job_id(job_id)
    return await run_in_threadpool(load_job, rt, job_id)


Authed = Depends(require_token)
JobIdChecked = Depends(known_job_id)
JobDep = Annotated[Job, Depends(existing_job)]
BaseUrlDep = Annotated[str, Depends(base_url)]
