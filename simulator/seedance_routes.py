"""Seedance routes, served under every prefix of `seedance_prefixes` (default `/volc/v1,/api/v3`):

  POST   {P}/contents/generations/tasks        {model, content[], ratio, duration, ...} -> {id}
  GET    {P}/contents/generations/tasks        batch query: filter.task_ids (repeated), filter.status,
                                               filter.model, page_num, page_size (<= 500) -> {total, items}
  GET    {P}/contents/generations/tasks/{id}   one task
  DELETE {P}/contents/generations/tasks/{id}   cancel a queued task / delete a finished one's record
  GET    /_sim/media/seedance/{id}.mp4 | {id}_last.png   result media (no key), 404 once expired

A prefix not in `seedance_prefixes` answers 404 like a relay without the route;
`seedance_batch_enabled=false` makes the batch query 404 too. Every relay route goes through
`Simulator.guard` (counters, auth, faults, chaos); every created task is in the paid ledger
(family `seedance`). Errors are Ark's `{error:{code, message}}`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from simulator import seedance as s
from simulator.bodies import json_object
from simulator.media import MP4_BYTES, PNG_BYTES
from simulator.ranged import RangeOptions, bytes_blob, ranged_response

if TYPE_CHECKING:
    from simulator.core import Simulator

Endpoint = Callable[[Request], Awaitable[Response]]
PREFIXES = ("/volc/v1", "/api/v3")
TASKS = "/contents/generations/tasks"
MAX_PAGE = 500
_MP4 = bytes_blob(MP4_BYTES, "video/mp4")
_PNG = bytes_blob(PNG_BYTES, "image/png")
_ITEM_TYPES = ("text", "image_url", "video_url", "audio_url")


def ark_error(code: str, message: str, status: int) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message, "param": "", "type": "BadRequest" if status < 500 else "ServerError"}}, status_code=status)


def guard_error(name: str, message: str, status: int | None = None) -> JSONResponse:
    if name == "auth":
        return ark_error("AuthenticationError", message, 401)
    if name == "rate_limit":
        response = ark_error("RateLimitExceeded.EndpointRPMExceeded", message, 429)
        response.headers["Retry-After"] = "1"
        return response
    return ark_error("InternalServiceError", message, status or 500)


def _served(sim: Simulator, prefix: str) -> bool:
    return prefix in [p.strip().rstrip("/") for p in sim.config.seedance_prefixes.split(",")]


def _no_route(request: Request) -> JSONResponse:
    return JSONResponse({"error": {"message": f"Invalid URL ({request.method} {request.url.path})", "type": "invalid_request_error"}}, status_code=404)


def _base(sim: Simulator, task: s.SeedanceTask) -> str:
    return (sim.config.public_base or task.public_base).rstrip("/")


def _answer(sim: Simulator, task: s.SeedanceTask) -> JSONResponse:
    now = sim.state.now()
    if sim.config.seedance_envelope or task.plan.envelope:
        return JSONResponse(s.envelope(task, now, _base(sim, task), sim.state.wall_s))
    return JSONResponse(s.native(task, now, _base(sim, task), sim.state.wall_s))


def _check(body: dict[str, object]) -> str | None:
    model, content = body.get("model"), body.get("content")
    if not isinstance(model, str) or not model:
        return "model is required"
    if not isinstance(content, list) or not content:
        return "content is required"
    for item in content:
        if not isinstance(item, dict) or item.get("type") not in _ITEM_TYPES:
            return f"content items are objects of type {', '.join(_ITEM_TYPES)}"
    return None


def _create(sim: Simulator, prefix: str) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        if not _served(sim, prefix):
            return _no_route(request)
        blocked = await sim.guard(request, f"POST {prefix}{TASKS}", is_create=True, fail=guard_error)
        if blocked is not None:
            return blocked
        body = await json_object(request)
        if body is None:
            return ark_error("InvalidParameter", "the request body must be a JSON object", 400)
        problem = _check(body)
        if problem:
            return ark_error("MissingParameter" if "required" in problem else "InvalidParameter", problem, 400)
        model = str(body["model"])
        if model not in s.MODELS:
            return ark_error("InvalidEndpointOrModel.NotFound", f"The model or endpoint {model} does not exist or you do not have access to it.", 404)
        content = body["content"]
        assert isinstance(content, list)
        prompt = " ".join(str(i.get("text") or "") for i in content if i.get("type") == "text")
        plan = s.plan_of(prompt)
        if plan.reject:
            return ark_error("InputTextSensitiveContentDetected", "The request failed because the input text may contain sensitive information.", 400)
        store, now = sim.state.seedance, sim.state.now()
        task = s.SeedanceTask(
            id=store.new_id(sim.state.wall_s(now)),
            model=model,
            prompt=prompt,
            created=now,
            queue_s=sim.config.queue_s if plan.queue_s is None else plan.queue_s,
            run_s=sim.config.run_s if plan.run_s is None else plan.run_s,
            plan=plan,
            body=body,
            public_base=sim.base_url(request),
            callback_url=body["callback_url"] if isinstance(body.get("callback_url"), str) else None,
        )
        store.tasks[task.id] = task
        sim.state.count_create("seedance", task.id, f"seedance/{model}", prompt, now)
        late = await sim.after_accept(guard_error)
        if late is not None:
            return late
        if sim.config.seedance_envelope or plan.envelope:
            return JSONResponse({"code": "success", "message": "", "data": {"task_id": task.id, "status": "SUBMITTED", "data": {"id": task.id}}})
        return JSONResponse({"id": task.id})

    return endpoint


def _list(sim: Simulator, prefix: str) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        if not _served(sim, prefix) or not sim.config.seedance_batch_enabled:
            return _no_route(request)
        blocked = await sim.guard(request, f"GET {prefix}{TASKS}", fail=guard_error)
        if blocked is not None:
            return blocked
        q = request.query_params
        try:
            page = max(1, int(q.get("page_num", "1")))
            size = int(q.get("page_size", "10"))
        except ValueError:
            return ark_error("InvalidParameter", "page_num and page_size must be integers", 400)
        if not 1 <= size <= MAX_PAGE:
            return ark_error("InvalidParameter", f"page_size must be between 1 and {MAX_PAGE}", 400)
        now = sim.state.now()
        found = sim.state.seedance.listed(now, q.getlist("filter.task_ids"), q.get("filter.status"), q.get("filter.model"))
        chunk = found[(page - 1) * size : page * size]
        for task in chunk:
            task.polls += 1
        items = [s.native(t, now, _base(sim, t), sim.state.wall_s) for t in chunk]
        if sim.config.seedance_envelope:
            return JSONResponse({"code": "success", "message": "", "data": {"total": len(found), "items": items}})
        return JSONResponse({"total": len(found), "items": items})

    return endpoint


def _task_or_404(sim: Simulator, request: Request) -> s.SeedanceTask | JSONResponse:
    task = sim.state.seedance.tasks.get(request.path_params["task_id"])
    if task is None or task.deleted:
        return ark_error("ResourceNotFound", "The specified task is not found.", 404)
    return task


def _get(sim: Simulator, prefix: str) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        if not _served(sim, prefix):
            return _no_route(request)
        blocked = await sim.guard(request, f"GET {prefix}{TASKS}/{{id}}", fail=guard_error)
        if blocked is not None:
            return blocked
        task = _task_or_404(sim, request)
        if isinstance(task, JSONResponse):
            return task
        task.polls += 1
        return _answer(sim, task)

    return endpoint


def _delete(sim: Simulator, prefix: str) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        if not _served(sim, prefix):
            return _no_route(request)
        blocked = await sim.guard(request, f"DELETE {prefix}{TASKS}/{{id}}", fail=guard_error)
        if blocked is not None:
            return blocked
        task = _task_or_404(sim, request)
        if isinstance(task, JSONResponse):
            return task
        now = sim.state.now()
        phase = task.phase_at(now)
        if phase == s.QUEUED:
            task.cancelled_at = now
        elif phase == s.RUNNING:
            return ark_error("InvalidAction.TaskRunning", f"the task {task.id} is running and cannot be cancelled", 400)
        else:
            task.deleted = True
        return JSONResponse({})

    return endpoint


def _media(sim: Simulator) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        name: str = request.path_params["name"]
        key, blob = (name.removesuffix("_last.png"), _PNG) if name.endswith("_last.png") else (name.removesuffix(".mp4"), _MP4)
        task = sim.state.seedance.tasks.get(key)
        now = sim.state.now()
        if task is None or task.phase_at(now) != s.SUCCEEDED or task.media_gone(now):
            return JSONResponse({"error": "AccessDenied: the signed URL has expired"}, status_code=404)
        if request.method == "GET":
            sim.state.media_downloads += 1
        return ranged_response(request, blob, RangeOptions(headers={"Cache-Control": "public, max-age=86400"}))

    return endpoint


def seedance_routes(sim: Simulator) -> list[Route]:
    routes: list[Route] = []
    for prefix in PREFIXES:
        routes += [
            Route(prefix + TASKS, _create(sim, prefix), methods=["POST"]),
            Route(prefix + TASKS, _list(sim, prefix), methods=["GET"]),
            Route(prefix + TASKS + "/{task_id}", _get(sim, prefix), methods=["GET"]),
            Route(prefix + TASKS + "/{task_id}", _delete(sim, prefix), methods=["DELETE"]),
        ]
    return [*routes, Route("/_sim/media/seedance/{name}", _media(sim), methods=["GET", "HEAD"])]
