"""Maps our error tree to HTTP, once. 422 bodies use FastAPI's own shape so clients parse one."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from models.errors import CallbackInvalid, IdempotencyConflict, JobNotFound, JobStateConflict, K4UError, RequestInvalid


def install(app: FastAPI) -> None:
    @app.exception_handler(K4UError)
    async def _k4u(_: Request, exc: K4UError) -> JSONResponse:
        if isinstance(exc, RequestInvalid):
            loc = ["body", *exc.field.split(".")]
            return JSONResponse(status_code=422, content={"detail": [{"loc": loc, "msg": exc.message, "type": "value_error"}]})
        status = {IdempotencyConflict: 409, JobStateConflict: 409, JobNotFound: 404, CallbackInvalid: 404}.get(type(exc), 500)
        if isinstance(exc, CallbackInvalid) and exc.message != "unknown callback URL":
            status = 400
        return JSONResponse(status_code=status, content={"detail": exc.message, "code": exc.code})
