"""Vidu routes, under both prefixes relays use (`/ent/v2`, `/vidu/ent/v2`; `vidu_prefixes` in the
config says which are served, the others answer 404 like a relay without the route):

  POST {prefix}/text2video | img2video | start-end2video | reference2video | reference2image
       JSON {model, prompt, images[], duration, seed, aspect_ratio, resolution, movement_amplitude,
       bgm, audio, style, watermark, payload, callback_url} -> {task_id, state: "created", ...}
  GET  {prefix}/tasks/{id}/creations  -> {id, state, err_code, credits, payload, creations[]}
  GET  /_sim/media/vidu/{id}.mp4 | {id}_cover.jpeg | {id}_0.png   (no key; 403 once expired)

Every relay route goes through `Simulator.guard` (counters, auth, faults, chaos); every created
task is in the paid ledger (family `vidu`, its `payload` as the external id). Callbacks are sent
by `simulator.callbacks`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from simulator import media, vidu as v
from simulator.bodies import json_object

if TYPE_CHECKING:
    from simulator.core import Simulator

Endpoint = Callable[[Request], Awaitable[Response]]


def error(status: int, reason: str, message: str) -> JSONResponse:
    return JSONResponse(v.error_body(status, reason, message), status_code=status)


def guard_error(name: str, message: str, status: int | None = None) -> JSONResponse:
    """Errors of `Simulator.guard` in Vidu's shape."""
    if name == "auth":
        return error(401, "Unauthorized", message)
    if name == "rate_limit":
        response = error(429, "TooManyRequests", message)
        response.headers["Retry-After"] = "1"
        return response
    return error(status or 500, "InternalServerError", message)


def _served(sim: Simulator, prefix: str) -> bool:
    return prefix in {p.strip().rstrip("/") for p in sim.config.vidu_prefixes.split(",")}


def _not_routed(request: Request) -> JSONResponse:
    return JSONResponse({"error": {"message": f"Invalid URL ({request.method} {request.url.path})", "type": "invalid_request_error"}}, status_code=404)


def _base(sim: Simulator, task: v.ViduTask) -> str:
    return (sim.config.public_base or task.public_base).rstrip("/")


def _create(sim: Simulator, prefix: str, route: str) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        if not _served(sim, prefix):
            return _not_routed(request)
        blocked = await sim.guard(request, f"POST {prefix}/{route}", is_create=True, fail=guard_error)
        if blocked is not None:
            return blocked
        body = await json_object(request)
        if body is None:
            return error(400, "BadRequest", "request body must be a JSON object")
        problem = v.check_body(route, body)
        if problem:
            return error(400, "BadRequest", problem)
        prompt = str(body.get("prompt") or "")
        plan = v.plan_of(prompt)
        if plan.reject:
            return error(400, "AuditSubmitIllegal", "the prompt did not pass the content review (simulated)")
        store, now = sim.state.vidu, sim.state.now()
        task = store.add(
            v.ViduTask(
                id=store.new_id(),
                route=route,
                prefix=prefix,
                model=str(body["model"]),
                prompt=prompt,
                body=body,
                created=now,
                queue_s=sim.config.queue_s if plan.queue_s is None else plan.queue_s,
                run_s=sim.config.run_s if plan.run_s is None else plan.run_s,
                plan=plan,
                public_base=sim.base_url(request),
                callback_url=str(body["callback_url"]) if body.get("callback_url") else None,
            )
        )
        sim.state.count_create("vidu", task.id, route, prompt, now, external_id=task.payload)
        late = await sim.after_accept(guard_error)
        return late or JSONResponse(v.submit_view(task, sim.state.wall_s(now)))

    return endpoint


def _query(sim: Simulator, prefix: str) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        if not _served(sim, prefix):
            return _not_routed(request)
        blocked = await sim.guard(request, f"GET {prefix}/tasks/{{id}}/creations", fail=guard_error)
        if blocked is not None:
            return blocked
        task = sim.state.vidu.tasks.get(request.path_params["task_id"])
        if task is None:
            return error(404, "NotFound", "task not found")
        task.polls += 1
        return JSONResponse(v.query_body(task, sim.state.now(), _base(sim, task), sim.state.wall_s(task.expires_at())))

    return endpoint


def _media(sim: Simulator) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        name: str = request.path_params["name"]
        stem, _, ext = name.rpartition(".")
        task_id, _, part = stem.partition("_")
        task = sim.state.vidu.tasks.get(task_id)
        files = {("mp4", ""): (media.MP4_BYTES, "video/mp4"), ("jpeg", "cover"): (media.JPEG_BYTES, "image/jpeg"), ("png", "0"): (media.PNG_BYTES, "image/png")}
        found = files.get((ext, part))
        now = sim.state.now()
        if task is None or found is None or task.state_at(now) != v.SUCCESS or (ext == "png") != task.image_result:
            return JSONResponse({"error": "no such media"}, status_code=404)
        if task.media_gone(now):
            return Response("<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>", status_code=403, media_type="application/xml")
        sim.state.media_downloads += 1
        data, ctype = found
        return Response(data, media_type=ctype)

    return endpoint


def vidu_routes(sim: Simulator) -> list[Route]:
    routes = [Route("/_sim/media/vidu/{name}", _media(sim), methods=["GET"])]
    for prefix in v.PREFIXES:
        routes.extend(Route(f"{prefix}/{route}", _create(sim, prefix, route), methods=["POST"]) for route in v.ROUTES)
        routes.append(Route(f"{prefix}/tasks/{{task_id}}/creations", _query(sim, prefix), methods=["GET"]))
    return routes
