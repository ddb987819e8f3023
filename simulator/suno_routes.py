"""Suno routes (Suno-API format, providers.md §7).

  POST /suno/submit/music    inspiration / custom / continuation
  POST /suno/submit/lyrics   {prompt}
  POST /suno/submit/{other}  HTTP 400 invalid_action (concat etc. unsupported)
  GET  /suno/fetch/{task_id} {code:"success", message:"", data:<task>}
  POST /suno/fetch           {ids, action?} -> {code:"success", data:[<task>...]}

Submit answers `{code:"success", message:"", data:"<task uuid>"}`; business
errors are `{code:"fail", message, data:null}` with HTTP 200.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from simulator import suno as s, suno_views as sv
from simulator.bodies import json_object
from simulator.mj_views import invalid_url
from simulator.timeline import QUEUED, SUBMITTED, HookCursor, Timeline, directive_seconds, directives

if TYPE_CHECKING:
    from simulator.core import Simulator

Endpoint = Callable[[Request], Awaitable[Response]]
Builder = Callable[["Simulator", dict[str, Any], str], "s.SunoTask | JSONResponse"]
_STRINGS = ("gpt_description_prompt", "prompt", "title", "tags", "negative_tags", "mv", "task_id", "continue_clip_id")
DEFAULT_TAGS = "pop, electronic"


def _timeline(sim: Simulator, found: dict[str, str]) -> Timeline:
    queue_s, run_s = directive_seconds(found, "queue"), directive_seconds(found, "run")
    return Timeline(
        created=sim.state.now(),
        queue_s=sim.config.queue_s if queue_s is None else queue_s,
        run_s=sim.config.run_s if run_s is None else run_s,
        will_fail="fail" in found,
        queue_phases=(SUBMITTED, QUEUED),
    )


def _hook(body: dict[str, Any]) -> HookCursor:
    hook = body.get("notify_hook")
    return HookCursor(hook if isinstance(hook, str) and hook else None)


def _continuation(sim: Simulator, body: dict[str, Any]) -> str | None:
    """Problem with the continuation fields, or None."""
    origin = sim.state.suno.tasks.get(body.get("task_id") or "")
    if origin is None:
        return "task_id not found"
    clip = next((c for c in origin.clips if c.id == body.get("continue_clip_id")), None)
    if clip is None:
        return "continue_clip_id not found in task"
    if origin.tl.finished(sim.state.now()) is None or clip.fails or origin.tl.will_fail:
        return "clip to continue is not complete"
    at = body.get("continue_at")
    if isinstance(at, bool) or not isinstance(at, (int, float)) or at < 0:
        return "continue_at must be a number >= 0"
    return None


def build_music(sim: Simulator, body: dict[str, Any], base: str) -> s.SunoTask | JSONResponse:
    for key in _STRINGS:
        if body.get(key) is not None and not isinstance(body[key], str):
            return sv.fail(f"{key} must be a string")
    gpt = str(body.get("gpt_description_prompt") or "")
    inspiration = bool(gpt.strip())
    if not inspiration and body.get("prompt") is None:
        return sv.fail("prompt is required")
    prompt = str(body.get("prompt") or "")
    continuing = body.get("task_id") is not None or body.get("continue_clip_id") is not None
    problem = _continuation(sim, body) if continuing else None
    if problem:
        return sv.fail(problem)
    found = directives(gpt, prompt, body.get("title"))
    if inspiration:
        title, tags = s.title_from(gpt), DEFAULT_TAGS
        lyrics = "" if body.get("make_instrumental") is True else s.lyrics_from(gpt)
    else:
        title, tags, lyrics = str(body.get("title") or s.title_from(prompt)), str(body.get("tags") or ""), prompt
    clips = [
        s.SunoClip(s.new_id(), title, tags, lyrics),
        s.SunoClip(s.new_id(), title, tags, lyrics, fails="clipfail" in found),
    ]
    return s.SunoTask(
        id=s.new_id(),
        action=s.MUSIC,
        tl=_timeline(sim, found),
        hook=_hook(body),
        public_base=base,
        mv=body.get("mv") or s.DEFAULT_MV,
        gpt_description_prompt=gpt if inspiration else None,
        negative_tags=body.get("negative_tags") or "",
        title=title,
        continue_clip_id=body.get("continue_clip_id") if continuing else None,
        continue_at=float(body["continue_at"]) if continuing else None,
        clips=clips,
    )


def build_lyrics(sim: Simulator, body: dict[str, Any], base: str) -> s.SunoTask | JSONResponse:
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        return sv.fail("prompt is required")
    task_id = s.new_id()
    return s.SunoTask(
        id=task_id,
        action=s.LYRICS,
        tl=_timeline(sim, directives(prompt)),
        hook=_hook(body),
        public_base=base,
        title=s.title_from(prompt),
        lyrics=s.lyrics_from(prompt),
    )


def _submit(sim: Simulator, action: str, build: Builder) -> Endpoint:
    route_key = f"POST /suno/submit/{action}"

    async def endpoint(request: Request) -> Response:
        blocked = await sim.guard(request, route_key, is_create=True, fail=sv.guard_error)
        if blocked is not None:
            return blocked
        store = sim.state.suno
        body = await json_object(request)
        if body is None:
            store.codes["invalid_request"] += 1
            return sv.fail("request body must be a JSON object", "invalid_request", 400)
        task = build(sim, body, sim.base_url(request))
        if isinstance(task, JSONResponse):
            store.codes["fail"] += 1
            return task
        (task.id,) = sim.state.task_ids(task.id)
        store.tasks[task.id] = task
        store.codes["success"] += 1
        prompt = str(body.get("gpt_description_prompt") or body.get("prompt") or "")
        sim.state.count_create("suno", task.id, task.action, prompt, task.tl.created)
        late = await sim.after_accept(sv.guard_error)
        return late if late is not None else JSONResponse(sv.ok(task.id))

    return endpoint


def _unsupported(sim: Simulator) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        blocked = await sim.guard(request, "POST /suno/submit/{action}", fail=sv.guard_error)
        if blocked is not None:
            return blocked
        return sv.fail(f"invalid_action: {request.path_params['action']}", "invalid_action", 400)

    return endpoint


def _fetch(sim: Simulator) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        blocked = await sim.guard(request, "GET /suno/fetch/{id}", fail=sv.guard_error)
        if blocked is not None:
            return blocked
        task = sim.state.suno.tasks.get(request.path_params["task_id"])
        if task is None:
            return sv.fail("task_not_exist", "task_not_exist", 400)
        return JSONResponse(sv.ok(sv.task_view(task, sim.state, sim.state.now(), sim.config)))

    return endpoint


def _batch(sim: Simulator) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        if not sim.config.suno_batch_enabled:
            sim.state.requests["POST /suno/fetch"] += 1
            return invalid_url("POST", "/suno/fetch")
        blocked = await sim.guard(request, "POST /suno/fetch", fail=sv.guard_error)
        if blocked is not None:
            return blocked
        body = await json_object(request) or {}
        ids, action = body.get("ids"), body.get("action")
        wanted = list(dict.fromkeys(i for i in ids if isinstance(i, str))) if isinstance(ids, list) else []
        now, tasks = sim.state.now(), sim.state.suno.tasks
        found = [tasks[i] for i in wanted if i in tasks and (not action or tasks[i].action == action)]
        return JSONResponse(sv.ok([sv.task_view(t, sim.state, now, sim.config) for t in found]))

    return endpoint


def suno_routes(sim: Simulator) -> list[Route]:
    return [
        Route("/suno/submit/music", _submit(sim, "music", build_music), methods=["POST"]),
        Route("/suno/submit/lyrics", _submit(sim, "lyrics", build_lyrics), methods=["POST"]),
        Route("/suno/submit/{action}", _unsupported(sim), methods=["POST"]),
        Route("/suno/fetch/{task_id}", _fetch(sim), methods=["GET"]),
        Route("/suno/fetch", _batch(sim), methods=["POST"]),
    ]
