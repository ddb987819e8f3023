"""Midjourney routes (midjourney-proxy format, providers.md §3) under `/mj` and `/{mode}/mj`.

Submit (handlers in `simulator.mj_submit`): imagine, action, blend, describe,
modal, video, upload-discord-images. Query: `GET task/{id}/fetch`,
`GET task/{id}/image-seed`, `POST task/list-by-condition`. Every prefix
(`/mj`, `/mj-fast/mj`, `/relax/mj`, ...) has its own routes, so the request
counters in `/_sim/stats` show which one a client used.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from simulator import mj_views as v
from simulator.bodies import json_object
from simulator.mj import MODES
from simulator.mj_submit import SUBMITS, Ctx
from simulator.timeline import SUCCESS

if TYPE_CHECKING:
    from simulator.core import Simulator

CREATES = ("imagine", "action", "blend", "describe", "video")
Endpoint = Callable[[Request], Awaitable[Response]]


def mj_routes(sim: Simulator) -> list[Route]:
    """All Midjourney routes for every prefix."""
    routes: list[Route] = []
    for prefix in ("", *(f"/{m}" for m in MODES)):
        base, mode = f"{prefix}/mj", (prefix.strip("/").removeprefix("mj-") or "fast")
        for name, handler in SUBMITS.items():
            path = f"{base}/submit/{name}"
            routes.append(Route(path, _submit(sim, path, mode, name, handler), methods=["POST"]))
        task = f"{base}/task"
        routes += [
            Route(f"{task}/{{task_id}}/fetch", _fetch(sim, f"{task}/{{id}}/fetch"), methods=["GET"]),
            Route(f"{task}/{{task_id}}/image-seed", _seed(sim, f"{task}/{{id}}/image-seed"), methods=["GET"]),
            Route(f"{task}/list-by-condition", _list(sim, f"{task}/list-by-condition"), methods=["POST"]),
        ]
    return routes


Handler = Callable[[Ctx, dict[str, Any]], JSONResponse]


def _submit(sim: Simulator, path: str, mode: str, name: str, handler: Handler) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        blocked = await sim.guard(request, f"POST {path}", is_create=name in CREATES, fail=v.guard_error)
        if blocked is not None:
            return blocked
        body = await json_object(request)
        if body is None:
            return v.relay_error("invalid_request: body must be a JSON object")
        before = len(sim.state.mj.tasks)
        response = handler(Ctx(sim, sim.base_url(request), mode, sim.state.now()), body)
        if len(sim.state.mj.tasks) > before:
            late = await sim.after_accept(v.guard_error)
            if late is not None:
                return late
        return response

    return endpoint


def _fetch(sim: Simulator, path: str) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        blocked = await sim.guard(request, f"GET {path}", fail=v.guard_error)
        if blocked is not None:
            return blocked
        task = sim.state.mj.tasks.get(request.path_params["task_id"])
        if task is None:
            return v.relay_error("task_no_found")
        return JSONResponse(v.task_view(task, sim.state, sim.state.now(), sim.config))

    return endpoint


def _seed(sim: Simulator, path: str) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        blocked = await sim.guard(request, f"GET {path}", fail=v.guard_error)
        if blocked is not None:
            return blocked
        task = sim.state.mj.tasks.get(request.path_params["task_id"])
        if task is None:
            return v.relay_error("task_no_found")
        if task.tl.at(sim.state.now()).status != SUCCESS:
            return v.relay_error("task_status_not_success")
        return JSONResponse({"code": 1, "description": "success", "result": str(task.seed)})

    return endpoint


def _list(sim: Simulator, path: str) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        if not sim.config.mj_list_enabled:
            sim.state.requests[f"POST {path}"] += 1
            return v.invalid_url("POST", path)
        blocked = await sim.guard(request, f"POST {path}", fail=v.guard_error)
        if blocked is not None:
            return blocked
        body = await json_object(request) or {}
        ids = body.get("ids")
        wanted = list(dict.fromkeys(i for i in ids if isinstance(i, str))) if isinstance(ids, list) else []
        now, tasks = sim.state.now(), sim.state.mj.tasks
        return JSONResponse([v.task_view(tasks[i], sim.state, now, sim.config) for i in wanted if i in tasks])

    return endpoint
