"""Maps our error tree to HTTP, once. 422 bodies use FastAPI's own shape so clients parse one.

Error bodies never echo what was sent (`input` is dropped from validation errors) nor an
exception's text, which could hold SQL; they are rendered ASCII-only so no value can break them.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, OperationalError

from models.errors import (
    CallbackInvalid,
    CallbackRefused,
    CallbackUnknown,
    IdempotencyConflict,
    JobNotFound,
    JobStateConflict,
    K4UError,
    RequestInvalid,
    StorageError,
)

log = logging.getLogger("k4u.api")

# The HTTP status of each error class; a subclass takes its nearest listed ancestor's, and a class
# with none here (a provider, download or storage error reaching a request) is a 500.
# RequestInvalid is a 422 in FastAPI's validation shape (see install).
HTTP_STATUS: dict[type[K4UError], int] = {
    IdempotencyConflict: 409,
    JobStateConflict: 409,
    JobNotFound: 404,
    CallbackUnknown: 404,
    CallbackRefused: 401,
    CallbackInvalid: 400,
    StorageError: 503,  # our store is down (an upload, an inline file stored at intake): try again later
}


def http_status(exc: K4UError) -> int:
    """The status HTTP_STATUS gives the exception's class or its nearest ancestor; 500 without one."""
    return next((HTTP_STATUS[cls] for cls in type(exc).__mro__ if cls in HTTP_STATUS), 500)


class SafeJSONResponse(JSONResponse):
    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=True, allow_nan=False, separators=(",", ":")).encode()


def _detail(err: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "loc": [p if isinstance(p, int) else str(p) for p in err.get("loc", ())],
        "msg": str(err.get("msg", "")),
        "type": str(err.get("type", "value_error")),
    }
    ctx = err.get("ctx")
    if isinstance(ctx, dict):
        out["ctx"] = {str(k): v if isinstance(v, int | str) else str(v) for k, v in ctx.items()}
    return out


def install(app: FastAPI) -> None:
    @app.exception_handler(K4UError)
    async def _k4u(_: Request, exc: K4UError) -> JSONResponse:
        if isinstance(exc, RequestInvalid):
            loc = ["body", *exc.field.split(".")]
            return SafeJSONResponse(status_code=422, content={"detail": [{"loc": loc, "msg": exc.message, "type": "value_error"}]})
        status = http_status(exc)
        if status == 500:
            log.error("unhandled %s on a request (code %s)", type(exc).__name__, exc.code)
            return SafeJSONResponse(status_code=500, content={"detail": "internal error", "code": exc.code})
        return SafeJSONResponse(status_code=status, content={"detail": exc.message, "code": exc.code})

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return SafeJSONResponse(status_code=422, content={"detail": jsonable_encoder([_detail(e) for e in exc.errors()])})

    @app.exception_handler(OperationalError)
    async def _db_down(_: Request, exc: OperationalError) -> JSONResponse:
        # The database is unreachable (or timed out): a service outage, not a bug; clients retry.
        if not exc.connection_invalidated and not _is_connection_error(exc):
            return await _unexpected(_, exc)
        log.error("database unavailable while answering a request (%s)", type(exc.orig).__name__)
        return SafeJSONResponse(status_code=503, content={"detail": "database unavailable; retry later", "code": "unavailable"}, headers={"Retry-After": "5"})

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        # Last resort: the goal is that nothing reaches here. The type is logged, never the text.
        log.error("unexpected %s while answering a request", type(exc).__name__)
        return SafeJSONResponse(status_code=500, content={"detail": "internal error", "code": "internal"})


def _is_connection_error(exc: DBAPIError) -> bool:
    """psycopg's OperationalError on connect/lost connection, SQLite's "database is locked"."""
    text = str(exc.orig).lower()
    return any(s in text for s in ("connection", "could not connect", "server closed", "database is locked", "timeout"))
