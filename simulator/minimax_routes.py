"""MiniMax routes (providers-next.md §4.6), under the documented prefix `/minimax/v1` and under a
bare `/v1` (relays differ: K4U_ROUTE_PREFIXES="minimax=/v1" points a client at the second).

  POST {p}/video_generation               {model, prompt, first_frame_image, duration, resolution, ...}
  POST {p}/t2a_async_v2                   {model, text | text_file_id, voice_setting, audio_setting, ...}
  GET  {p}/query/video_generation?task_id=
  GET  {p}/query/t2a_async_query_v2?task_id=
  GET  {p}/files/retrieve?file_id=        the file (a signed download URL) once its task succeeded
  GET  /_sim/media/minimax/{file_id}.mp4|.mp3?Expires=…   the bytes, no key; 403 once expired

MiniMax's own errors are HTTP 200 with a non-zero `base_resp` (a refused submit makes no task and
is not paid); relay-made errors (`Simulator.guard`: auth, 429, 5xx) use new-api's `{error: {...}}`.
Every taken submit is paid (ledger family `minimax`). Lifecycle and bodies: `simulator.minimax`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from simulator import minimax as mm
from simulator.bodies import json_object
from simulator.media import MP3_BYTES, MP4_BYTES
from simulator.ranged import RangeOptions, bytes_blob, ranged_response
from simulator.video_routes import oai_guard_error

if TYPE_CHECKING:
    from simulator.core import Simulator

Endpoint = Callable[[Request], Awaitable[Response]]
PREFIXES = ("/minimax/v1", "/v1")
BLOBS = {"mp4": bytes_blob(MP4_BYTES, "video/mp4"), "mp3": bytes_blob(MP3_BYTES, "audio/mpeg")}
EXPIRED = "<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>"


def _base(sim: Simulator, task: mm.MinimaxTask) -> str:
    return (sim.config.public_base or task.public_base).rstrip("/")


def _refused(code: int, message: str | None = None) -> JSONResponse:
    return JSONResponse({"task_id": "", "base_resp": mm.error(code, message)})


def _submit(sim: Simulator, kind: str) -> Endpoint:
    route = "POST /minimax/v1/" + ("video_generation" if kind == mm.VIDEO else "t2a_async_v2")

    async def endpoint(request: Request) -> Response:
        blocked = await sim.guard(request, route, is_create=True, fail=oai_guard_error)
        if blocked is not None:
            return blocked
        body = await json_object(request)
        if body is None:
            return _refused(2013, "invalid params, the body must be a JSON object")
        check = mm.check_video(body) if kind == mm.VIDEO else mm.check_tts(body)
        if check.problem:
            return _refused(2013, check.problem)
        store, plan = sim.state.minimax, mm.plan_of(check.text)
        if plan.code:
            return _refused(plan.code)
        if plan.busy and store.busy_seen[check.text] < plan.busy:
            store.busy_seen[check.text] += 1
            return _refused(1002)
        now = sim.state.now()
        task_id, file_id = store.new_ids()
        task = store.add(
            mm.MinimaxTask(
                id=task_id,
                kind=kind,
                model=check.model,
                text=check.text,
                created=now,
                queue_s=sim.config.queue_s if plan.queue_s is None else plan.queue_s,
                run_s=sim.config.run_s if plan.run_s is None else plan.run_s,
                plan=plan,
                public_base=sim.base_url(request),
                file_id=file_id,
            )
        )
        sim.state.count_create("minimax", task.id, kind, check.text, now)
        late = await sim.after_accept(oai_guard_error)
        if late is not None:
            return late
        answer: dict[str, Any] = {"task_id": task.id, "base_resp": mm.ok()}
        if kind == mm.TTS:
            answer |= {"task_token": f"tok-{task.id[-8:]}", "file_id": task.file_id, "usage_characters": len(check.text)}
        return JSONResponse(answer)

    return endpoint


def _query(sim: Simulator, kind: str) -> Endpoint:
    route = "GET /minimax/v1/query/" + ("video_generation" if kind == mm.VIDEO else "t2a_async_query_v2")

    async def endpoint(request: Request) -> Response:
        blocked = await sim.guard(request, route, fail=oai_guard_error)
        if blocked is not None:
            return blocked
        task = sim.state.minimax.tasks.get(request.query_params.get("task_id", ""))
        if task is None or task.kind != kind:
            return JSONResponse({"task_id": "", "status": "", "base_resp": mm.error(2013, "invalid params, task not found")})
        task.polls += 1
        if task.polls <= task.plan.query_busy:
            return JSONResponse({"base_resp": mm.error(1002)})
        now = sim.state.now()
        native = task.query(now)
        if sim.config.envelope != "newapi":
            return JSONResponse(native)
        done = task.phase_at(now) == mm.DONE and not task.plan.bare_dto
        if done:
            task.retrieves += 1
        return JSONResponse(task.dto(now, native, task.file(sim.state.wall_s(now), _base(sim, task)) if done else None))

    return endpoint


def _retrieve(sim: Simulator) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        blocked = await sim.guard(request, "GET /minimax/v1/files/retrieve", fail=oai_guard_error)
        if blocked is not None:
            return blocked
        raw = request.query_params.get("file_id", "")
        task = sim.state.minimax.by_file.get(int(raw)) if raw.isdigit() else None
        now = sim.state.now()
        if task is None or task.phase_at(now) != mm.DONE:  # resolvable only once the task succeeded
            return JSONResponse({"file": None, "base_resp": mm.error(2013, "invalid params, file not found")})
        task.retrieves += 1
        return JSONResponse({"file": task.file(sim.state.wall_s(now), _base(sim, task)), "base_resp": mm.ok()})

    return endpoint


def _media(sim: Simulator) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        stem, _, ext = request.path_params["name"].partition(".")
        task = sim.state.minimax.by_file.get(int(stem)) if stem.isdigit() else None
        now = sim.state.now()
        if task is None or ext != task.ext or task.phase_at(now) != mm.DONE:
            return JSONResponse({"error": "no such media"}, status_code=404)
        expires = request.query_params.get("Expires", "")
        if not expires.isdigit() or sim.state.wall_s(now) >= int(expires):
            return Response(EXPIRED, status_code=403, media_type="application/xml")
        if request.method == "GET":
            sim.state.media_downloads += 1
        return ranged_response(request, BLOBS[ext], RangeOptions(slow_s=sim.config.slow_media_s))

    return endpoint


def minimax_routes(sim: Simulator) -> list[Route]:
    routes = [Route("/_sim/media/minimax/{name}", _media(sim), methods=["GET"])]
    for p in PREFIXES:
        routes += [
            Route(f"{p}/video_generation", _submit(sim, mm.VIDEO), methods=["POST"]),
            Route(f"{p}/t2a_async_v2", _submit(sim, mm.TTS), methods=["POST"]),
            Route(f"{p}/query/video_generation", _query(sim, mm.VIDEO), methods=["GET"]),
            Route(f"{p}/query/t2a_async_query_v2", _query(sim, mm.TTS), methods=["GET"]),
            Route(f"{p}/files/retrieve", _retrieve(sim), methods=["GET"]),
        ]
    return routes
