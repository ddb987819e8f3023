"""new-api's generic video task route, for any model (bodies and directives: `simulator.newapi_video`).

  POST /v1/video/generations          JSON {model, prompt, image, images[], duration | seconds, size,
                                      mode, input_reference, metadata{...vendor fields}, ...}
  GET  /v1/video/generations/{id}     the task DTO in `{code, message, data}` (or `[sim:vocab=...]`)

`POST /v1/videos` with such a model, `GET /v1/videos/{id}` and the bytes are served by
`simulator.video_routes`. Every route goes through `Simulator.guard` (counters, auth, faults, chaos);
errors are new-api task errors `{code, message, data}` (HTTP 400 / 503), "no available channel"
included, which makes nothing and bills nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from simulator import newapi_video as generic, suno_views, video as v
from simulator.bodies import json_object
from simulator.video_routes import Endpoint, unified_error

if TYPE_CHECKING:
    from simulator.core import Simulator


def _seconds_ok(value: object) -> bool:
    if isinstance(value, bool):
        return False
    return (isinstance(value, int) and value > 0) or (isinstance(value, str) and value.strip().isdigit() and int(value) > 0)


def check_generations(body: dict[str, Any]) -> str | None:
    """What new-api's task route refuses with a 400, or None."""
    model, prompt = body.get("model"), body.get("prompt")
    if not isinstance(model, str) or not model.strip():
        return "model is required"
    if prompt is not None and not isinstance(prompt, str):
        return "prompt must be a string"
    if not (prompt or "").strip() and generic.input_image(body) is None:
        return "prompt is required"
    if "images" in body and not isinstance(body["images"], list):
        return "images must be an array"
    for name in ("duration", "seconds"):
        if body.get(name) is not None and not _seconds_ok(body[name]):
            return f"{name} must be a positive whole number of seconds"
    if body.get("metadata") is not None and not isinstance(body["metadata"], dict):
        return "metadata must be a JSON object"
    return None


def _create(sim: Simulator) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        blocked = await sim.guard(request, "POST /v1/video/generations", is_create=True, fail=suno_views.guard_error)
        if blocked is not None:
            return blocked
        body = await json_object(request)
        if body is None:
            return unified_error("invalid_request", "request body must be a JSON object", 400)
        problem = check_generations(body)
        if problem:
            return unified_error("invalid_request", problem, 400)
        model, prompt = str(body["model"]), str(body.get("prompt") or "")
        if generic.unrouted(sim.config, model, prompt):
            return unified_error("model_not_found", generic.no_channel(model), 503)
        if v.plan_of(prompt, v.OPENAI).reject:
            return unified_error("content_policy_violation", "prompt rejected by the safety system", 400)
        params = {k: val for k, val in body.items() if k not in ("prompt", "model")}
        task = generic.new_task(sim.state, sim.config, sim.base_url(request), generic.GENERATIONS, model, prompt, params)
        late = await sim.after_accept(suno_views.guard_error)
        return late or JSONResponse(generic.submit_body(task, sim.state))

    return endpoint


def _query(sim: Simulator) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        blocked = await sim.guard(request, "GET /v1/video/generations/{id}", fail=suno_views.guard_error)
        if blocked is not None:
            return blocked
        task = sim.state.video.tasks.get(request.path_params["task_id"])
        if not isinstance(task, generic.GenericTask):
            return unified_error("task_not_exist", "task_not_exist", 400)
        task.polls += 1
        base = (sim.config.public_base or task.public_base).rstrip("/")
        return JSONResponse(generic.query_body(task, sim.state, sim.state.now(), base, generic.GENERATIONS))

    return endpoint


def newapi_routes(sim: Simulator) -> list[Route]:
    return [
        Route("/v1/video/generations", _create(sim), methods=["POST"]),
        Route("/v1/video/generations/{task_id}", _query(sim), methods=["GET"]),
    ]
