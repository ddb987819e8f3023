"""ASGI app faking the Key4U relay's Kling (style A), Midjourney, Suno, video, Replicate, fal, MiniMax, Vidu, Seedance, image and speech endpoints.

`create_app(config)` returns a Starlette app serving:
  POST /kling/v1/videos/text2video | videos/image2video | images/generations and the other
       operations of providers-next.md §4.1 (`simulator.kling_extras`; identify-face answers at once)
  GET  the same paths + /{id}   (id = task id, relay id or external_task_id)
  GET  the same paths (list, native envelope only)
the Midjourney routes of `simulator.mj_routes` (`/mj/...`, `/{mode}/mj/...`),
the Suno routes of `simulator.suno_routes` (`/suno/...`),
the Sora / Veo / Grok routes of `simulator.video_routes` (`/v1/video/...`, `/v1/videos...`),
the Vidu routes of `simulator.vidu_routes` (`/ent/v2/...`, `/vidu/ent/v2/...`),
the generic new-api video routes of `simulator.newapi_routes` (`/v1/video/generations...`; any model
on `/v1/videos` that is not Sora, Veo or Grok),
the Replicate routes of `simulator.replicate_routes` (`/replicate/v1/...`),
the fal queue routes of `simulator.fal_routes` (`/fal-ai/...`),
the synchronous image and speech routes of `simulator.oneshot_routes` (`/v1/images/...`, `/v1/audio/speech`),
the Seedance routes of `simulator.seedance_routes` (`/volc/v1/contents/...`, `/api/v3/contents/...`),
the MiniMax routes of `simulator.minimax_routes` (`/minimax/v1/...`, also under `/v1/...`),
plus the admin and media routes of `simulator.admin`; any other path (and the paths under
`SimConfig.unrouted`) is answered as new-api answers a route it does not have (`simulator.unrouted`). The simulator object (`simulator.core`)
is reachable as `app.state.sim` (config, state, callback dispatcher). Every request is counted
with or without its Authorization header (`simulator.auth_seen`, `GET /_sim/auth-seen`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from simulator import kling_extras, views
from simulator.admin import admin_routes
from simulator.auth_seen import AuthSeenMiddleware
from simulator.config import SimConfig
from simulator.core import Simulator
from simulator.fal_routes import fal_routes
from simulator.inputs import FetchFailed, fetch_inputs
from simulator.minimax_routes import minimax_routes
from simulator.mj_routes import mj_routes
from simulator.newapi_routes import newapi_routes
from simulator.oneshot_routes import oneshot_routes
from simulator.replicate_routes import replicate_routes
from simulator.seedance_routes import seedance_routes
from simulator.state import KINDS, parse_directives
from simulator.suno_routes import suno_routes
from simulator.unrouted import UnroutedMiddleware, not_found_handler
from simulator.video_routes import video_routes
from simulator.vidu_routes import vidu_routes

MAX_PROMPT = 2500
INPUT_FIELDS = {"videos/image2video": ("image", "image_tail"), "images/generations": ("image",), "audio/video-to-audio": ("video_url",)}  # fetched at create
MAX_IMAGES = 9


def _validate(kind: str, body: dict[str, Any]) -> str | None:
    """Error message for an invalid create body, or None."""
    prompt = body.get("prompt")
    if prompt is not None and not isinstance(prompt, str):
        return "prompt must be a string"
    if kind in ("videos/text2video", "images/generations") and not (prompt or "").strip():
        return "prompt is required"
    if prompt and len(prompt) > MAX_PROMPT:
        return f"prompt must be at most {MAX_PROMPT} characters"
    if kind == "videos/image2video" and not (body.get("image") or body.get("image_tail")):
        return "image is required"
    if kind == "images/generations":
        n = body.get("n", 1)
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_IMAGES:
            return f"n must be an integer between 1 and {MAX_IMAGES}"
    for name in ("external_task_id", "callback_url"):
        if body.get(name) is not None and not isinstance(body[name], str):
            return f"{name} must be a string"
    return None


def _create_endpoint(sim: Simulator, kind: str) -> Any:
    route_key = f"POST /kling/v1/{kind}"

    async def create(request: Request) -> Response:
        blocked = await sim.guard(request, route_key, is_create=True)
        if blocked is not None:
            return blocked
        try:
            body = await request.json()
        except ValueError:
            return sim.error("invalid", "invalid request body: not JSON")
        if not isinstance(body, dict):
            return sim.error("invalid", "invalid request body: expected an object")
        problem = _validate(kind, body) or kling_extras.problem(kind, body, sim.state)
        if problem:
            return sim.error("invalid", problem)
        directives = parse_directives(body.get("prompt") or "")
        if directives.reject:
            return sim.error("reject", "content safety check failed")
        later = kling_extras.busy(sim, body) if sim.config.envelope == "native" else None
        if later is not None:
            return later
        ext = body.get("external_task_id") or ""
        if ext and sim.config.reject_duplicate_external_id and sim.state.find(ext):
            return sim.error("duplicate", "external_task_id already exists")
        try:  # the relay fetches input images before it takes the task
            fetched = await fetch_inputs(body, INPUT_FIELDS.get(kind, ()))
        except FetchFailed as exc:
            return sim.error("invalid", str(exc))
        task = sim.state.create_task(kind, body, directives, sim.base_url(request))
        task.inputs_sha256 = fetched
        late = await sim.after_accept(sim.error)
        if late is not None:
            return late
        if sim.config.envelope == "native":
            return JSONResponse(views.native_create(task, sim.state))
        return JSONResponse(views.newapi_create(task, sim.state))

    return create


def _query_endpoint(sim: Simulator, kind: str) -> Any:
    route_key = f"GET /kling/v1/{kind}/{{id}}"

    async def query(request: Request) -> Response:
        blocked = await sim.guard(request, route_key)
        if blocked is not None:
            return blocked
        task = sim.state.find(request.path_params["task_id"], kind)
        if task is None:
            return sim.error("not_found", "task not found")
        base = sim.base_url(request)
        if sim.config.envelope == "native":
            return JSONResponse(views.native_ok(views.native_task(task, sim.state, sim.state.now(), base)))
        return JSONResponse(views.newapi_dto(task, sim.state, sim.config, base))

    return query


def _list_endpoint(sim: Simulator, kind: str) -> Any:
    route_key = f"GET /kling/v1/{kind}"

    async def list_tasks(request: Request) -> Response:
        blocked = await sim.guard(request, route_key)
        if blocked is not None:
            return blocked
        if sim.config.envelope != "native":
            return JSONResponse({"error": {"message": "Invalid URL", "type": "invalid_request_error"}}, 404)
        try:
            page = max(1, int(request.query_params.get("pageNum", "1")))
            size = min(500, max(1, int(request.query_params.get("pageSize", "30"))))
        except ValueError:
            return sim.error("invalid", "pageNum and pageSize must be integers")
        now, base = sim.state.now(), sim.base_url(request)
        tasks = [t for t in reversed(sim.state.tasks.values()) if t.kind == kind]
        chunk = tasks[(page - 1) * size : page * size]
        return JSONResponse(views.native_ok([views.native_task(t, sim.state, now, base) for t in chunk]))

    return list_tasks


def create_app(config: SimConfig | None = None) -> Starlette:
    """Build the simulator ASGI app. The callback loop runs during the lifespan."""
    sim = Simulator(config or SimConfig())
    routes: list[Route] = []
    for kind in KINDS:
        path = f"/kling/v1/{kind}"
        routes.append(Route(path, _create_endpoint(sim, kind), methods=["POST"]))
        routes.append(Route(path, _list_endpoint(sim, kind), methods=["GET"]))
        routes.append(Route(path + "/{task_id}", _query_endpoint(sim, kind), methods=["GET"]))
    routes.append(kling_extras.identify_face_route(sim))
    routes.extend(mj_routes(sim))
    routes.extend(suno_routes(sim))
    routes.extend(video_routes(sim))
    routes.extend(vidu_routes(sim))
    routes.extend(newapi_routes(sim))
    routes.extend(replicate_routes(sim))
    routes.extend(fal_routes(sim))
    routes.extend(minimax_routes(sim))
    routes.extend(seedance_routes(sim))
    routes.extend(oneshot_routes(sim))
    routes.extend(admin_routes(sim))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        loop_task = asyncio.create_task(sim.callbacks.run())
        try:
            yield
        finally:
            loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await loop_task
            await sim.callbacks.aclose()

    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        middleware=[Middleware(AuthSeenMiddleware, state=sim.state), Middleware(UnroutedMiddleware, config=sim.config)],
        exception_handlers={404: not_found_handler, 405: not_found_handler},
    )
    app.state.sim = sim
    return app
