"""Dependencies: the runtime, bearer-token auth, and the base URL for links."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from workers.context import Runtime

_bearer = HTTPBearer(auto_error=False)


def get_runtime(request: Request) -> Runtime:
    return request.app.state.runtime  # type: ignore[no-any-return]


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def require_token(rt: RuntimeDep, creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> None:
    tokens = rt.settings.tokens
    if not tokens:
        return  # K4U_API_TOKENS unset: open API (development)
    given = creds.credentials.encode() if creds else b""
    if not any(hmac.compare_digest(given, t.encode()) for t in tokens):
        raise HTTPException(status_code=401, detail="missing or invalid bearer token", headers={"WWW-Authenticate": "Bearer"})


def base_url(request: Request) -> str:
    rt: Runtime = request.app.state.runtime
    return rt.settings.public_url or str(request.base_url).rstrip("/")


Authed = Depends(require_token)
BaseUrlDep = Annotated[str, Depends(base_url)]
