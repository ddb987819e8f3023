"""Video routes: the unified format (Sora, Veo, Grok) and new-api's OpenAI video format.

  POST /v1/video/create              JSON {model, prompt, images[], orientation, size, duration,
                                     aspect_ratio, enhance_prompt, enable_upsample, watermark, ...}
  GET  /v1/video/query?id=<id>       id URL-decoded (a colon may come encoded or not)
  POST /v1/videos                    JSON or multipart/form-data {prompt, model, seconds, size,
                                     input_reference (file / URL / data URI), metadata}; a model
                                     that is not Sora, Veo or Grok makes a generic new-api task
                                     (`simulator.newapi_video`)
  GET  /v1/videos/{id}               video object
  GET  /v1/videos/{id}/content       the MP4 (bearer key; 400 before completion; Range)
  POST /v1/videos/{id}/remix         {prompt} -> a new (paid) video object
  GET  /_sim/media/video/{key}.mp4   the same bytes without a key (`video_url`, redirects)

Every relay route goes through `Simulator.guard` (request counters, auth, faults, chaos) and
every created task is in the paid ledger (family `video`). Errors: unified routes
`{code, message, data}` (new-api task shape, §2.4), `/v1/videos*` `{error:{message, type}}`.
Bodies: `simulator.video_views`; lifecycle and directives: `simulator.video`.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from simulator import newapi_video as generic, suno_views, video as v, video_views as views
from simulator.bodies import json_object
from simulator.inputs import FetchFailed, fetch_inputs
from simulator.media import MP4_BYTES
from simulator.ranged import RangeOptions, big_blob, bytes_blob, ranged_response

if TYPE_CHECKING:
    from simulator.core import Simulator

Endpoint = Callable[[Request], Awaitable[Response]]
MP4_BLOB = bytes_blob(MP4_BYTES, "video/mp4")
CACHE = {"Cache-Control": "public, max-age=86400"}
_NOT_FOUND = "task not found"


def oai_error(message: str, status: int, kind: str = "invalid_request_error") -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": kind}}, status_code=status)


def unified_error(code: str, message: str, status: int) -> JSONResponse:
    return JSONResponse({"code": code, "message": message, "data": None}, status_code=status)


def oai_guard_error(name: str, message: str, status: int | None = None) -> JSONResponse:
    """Errors raised by `Simulator.guard` on `/v1/videos*` (OpenAI shape, §2.4)."""
    if name == "auth":
        return oai_error(message, 401)
    if name == "rate_limit":
        response = oai_error(message, 429, "rate_limit_error")
        response.headers["Retry-After"] = "1"
        return response
    return oai_error(message, status or 500, "server_error")


def _blob(task: v.VideoTask) -> Any:
    return MP4_BLOB if task.plan.size is None else big_blob(task.plan.size, "video/mp4")


def serve_video(sim: Simulator, request: Request, task: v.VideoTask, headers: dict[str, str]) -> Response:
    """The task's bytes with Range support and its `[sim:no_range]` / `[sim:cut_at=K]` quirks."""
    blob = _blob(task)
    cut_at = task.plan.cut_at
    if request.method == "GET":
        sim.state.media_downloads += 1
        if cut_at is None and sim.state.dice.roll(sim.config.media_cut_rate):
            sim.state.paid.fired["media_cut"] += 1
            cut_at = int(blob.size * sim.state.dice.fraction(0.1, 0.9))
    options = RangeOptions(ignore_range=task.plan.no_range, cut_at=cut_at, slow_s=sim.config.slow_media_s, headers=headers)
    return ranged_response(request, blob, options)


# -- unified ------------------------------------------------------------------------


def _unified_create(sim: Simulator) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        blocked = await sim.guard(request, "POST /v1/video/create", is_create=True, fail=suno_views.guard_error)
        if blocked is not None:
            return blocked
        body = await json_object(request)
        if body is None:
            return unified_error("invalid_request", "request body must be a JSON object", 400)
        prompt, model = body.get("prompt"), body.get("model")
        if not isinstance(prompt, str) or not prompt.strip():
            return unified_error("invalid_request", "prompt is required", 400)
        if not isinstance(model, str) or not model:
            return unified_error("invalid_request", "model is required", 400)
        if "images" in body and not isinstance(body["images"], list):
            return unified_error("invalid_request", "images must be an array", 400)
        family = v.family_of(model)
        if family is None:
            return unified_error("model_not_found", generic.no_channel(model), 503)
        plan = v.plan_of(prompt, family)
        if plan.reject:
            return unified_error("content_policy_violation", "prompt rejected by the safety system", 400)
        images = {f"images.{i}": u for i, u in enumerate(body.get("images") or [])}
        try:  # the relay fetches image URLs (simulator.inputs): one it cannot fetch refuses the create
            fetched = await fetch_inputs(images, images)
        except FetchFailed as exc:
            return unified_error("invalid_request", str(exc), 400)
        store, now = sim.state.video, sim.state.now()
        task = store.add(
            v.VideoTask(
                id=store.new_unified_id(family, model),
                api=v.UNIFIED,
                family=family,
                model=model,
                prompt=prompt,
                created=now,
                queue_s=sim.config.queue_s if plan.queue_s is None else plan.queue_s,
                run_s=sim.config.run_s if plan.run_s is None else plan.run_s,
                plan=plan,
                public_base=sim.base_url(request),
                params={k: val for k, val in body.items() if k not in ("prompt", "model")},
            )
        )
        task.inputs_sha256 = fetched
        sim.state.count_create("video", task.id, f"unified/{family}", prompt, now)
        late = await sim.after_accept(suno_views.guard_error)
        return late or JSONResponse(views.unified_submit(task, sim.state, now, _base(sim, task)))

    return endpoint


def _base(sim: Simulator, task: v.VideoTask) -> str:
    return (sim.config.public_base or task.public_base).rstrip("/")


def _unified_query(sim: Simulator) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        blocked = await sim.guard(request, "GET /v1/video/query", fail=suno_views.guard_error)
        if blocked is not None:
            return blocked
        task_id = request.query_params.get("id", "")  # Starlette has URL-decoded it (%3A -> :)
        if not task_id:
            return unified_error("invalid_request", "id is required", 400)
        task = sim.state.video.tasks.get(task_id)
        if task is None or task.api != v.UNIFIED:
            return unified_error("task_not_exist", "task_not_exist", 400)
        task.polls += 1
        return JSONResponse(views.unified_query(task, sim.state, sim.state.now(), _base(sim, task)))

    return endpoint


# -- OpenAI format ------------------------------------------------------------------


async def _openai_fields(request: Request) -> tuple[dict[str, Any], dict[str, Any] | None] | str:
    """(fields, input_reference record) of a JSON or multipart create, or an error message."""
    ctype = request.headers.get("content-type", "")
    reference: dict[str, Any] | None = None
    if ctype.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
        form = await request.form(max_part_size=16 * 1024 * 1024)
        try:
            fields: dict[str, Any] = {}
            for key, value in form.multi_items():
                if isinstance(value, UploadFile):
                    if key == "input_reference":
                        reference = v.upload_record(await value.read(), value.filename, value.content_type)
                else:
                    fields[key] = value
        finally:
            await form.close()
    else:
        body = await json_object(request)
        if body is None:
            return "request body must be a JSON object or multipart/form-data"
        fields = body
    ref = fields.pop("input_reference", None)
    if isinstance(ref, str) and ref:
        reference = v.reference_record(ref)
    elif isinstance(ref, dict):
        reference = {"kind": "object", **v.reference_record(json.dumps(ref, sort_keys=True)), "value": ref}
    elif ref not in (None, ""):
        return "input_reference must be a file, a URL, a data URI or an object"
    return fields, reference


def _check_openai(fields: dict[str, Any]) -> str | None:
    prompt = fields.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        return "prompt is required"
    seconds = fields.get("seconds")
    if seconds is not None and (isinstance(seconds, bool) or not str(seconds).isdigit() or int(seconds) <= 0):
        return 'seconds must be a positive whole number of seconds, e.g. "4", "8" or "12"'
    metadata = fields.get("metadata")
    if isinstance(metadata, str) and metadata:
        try:
            metadata = json.loads(metadata)
        except ValueError:
            return "metadata must be a JSON object"
    if metadata not in (None, "") and not isinstance(metadata, dict):
        return "metadata must be a JSON object"
    fields["metadata"] = metadata or None
    return None


def _openai_task(
    sim: Simulator, request: Request, model: str, family: str, prompt: str, params: dict[str, Any], remixed_from: str | None = None
) -> v.VideoTask:
    plan, store, now = v.plan_of(prompt, v.OPENAI), sim.state.video, sim.state.now()
    task = store.add(
        v.VideoTask(
            id=store.new_openai_id(),
            api=v.OPENAI,
            family=family,
            model=model,
            prompt=prompt,
            created=now,
            queue_s=sim.config.queue_s if plan.queue_s is None else plan.queue_s,
            run_s=sim.config.run_s if plan.run_s is None else plan.run_s,
            plan=plan,
            public_base=sim.base_url(request),
            params=params,
            remixed_from=remixed_from,
        )
    )
    sim.state.count_create("video", task.id, "openai/remix" if remixed_from else f"openai/{family}", prompt, now)
    return task


def _openai_create(sim: Simulator) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        blocked = await sim.guard(request, "POST /v1/videos", is_create=True, fail=oai_guard_error)
        if blocked is not None:
            return blocked
        parsed = await _openai_fields(request)
        if isinstance(parsed, str):
            return oai_error(parsed, 400)
        fields, reference = parsed
        problem = _check_openai(fields)
        if problem:
            return oai_error(problem, 400)
        model = str(fields.get("model") or "sora-2")
        family = v.family_of(model)
        if family is None:  # any other model: a generic new-api task (simulator.newapi_video)
            return await _generic_create(sim, request, model, fields, reference)
        prompt = str(fields["prompt"])
        if v.plan_of(prompt, v.OPENAI).reject:
            return oai_error("prompt rejected by the safety system", 400)
        params = {k: val for k, val in fields.items() if k not in ("prompt", "model")}
        if reference is not None and reference.get("kind") == "url":  # the relay fetches a URL reference (simulator.inputs)
            try:
                reference["fetched_sha256"] = (await fetch_inputs({"input_reference": reference["value"]}, ("input_reference",))).get("input_reference")
            except FetchFailed as exc:
                return oai_error(str(exc), 400)
        task = _openai_task(sim, request, model, family, prompt, params)
        task.input_reference = reference
        late = await sim.after_accept(oai_guard_error)
        return late or JSONResponse(views.openai_object(task, sim.state, task.created, _base(sim, task)))

    return endpoint


async def _generic_create(sim: Simulator, request: Request, model: str, fields: dict[str, Any], reference: dict[str, Any] | None) -> Response:
    prompt = str(fields["prompt"])
    if generic.unrouted(sim.config, model, prompt):
        return oai_error(generic.no_channel(model), 503, "new_api_error")
    if v.plan_of(prompt, v.OPENAI).reject:
        return oai_error("prompt rejected by the safety system", 400)
    params = {k: val for k, val in fields.items() if k not in ("prompt", "model")}
    task = generic.new_task(sim.state, sim.config, sim.base_url(request), generic.VIDEOS, model, prompt, params)
    task.input_reference = reference
    late = await sim.after_accept(oai_guard_error)
    return late or JSONResponse(generic.submit_body(task, sim.state))


def _openai_task_or_404(sim: Simulator, request: Request) -> v.VideoTask | JSONResponse:
    task = sim.state.video.tasks.get(request.path_params["video_id"])
    if task is None or task.api != v.OPENAI:
        return oai_error(_NOT_FOUND, 404)
    return task


def _openai_get(sim: Simulator) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        blocked = await sim.guard(request, "GET /v1/videos/{id}", fail=oai_guard_error)
        if blocked is not None:
            return blocked
        task = _openai_task_or_404(sim, request)
        if isinstance(task, JSONResponse):
            return task
        task.polls += 1
        if isinstance(task, generic.GenericTask):
            return JSONResponse(generic.query_body(task, sim.state, sim.state.now(), _base(sim, task), generic.VIDEOS))
        return JSONResponse(views.openai_object(task, sim.state, sim.state.now(), _base(sim, task)))

    return endpoint


def _openai_content(sim: Simulator) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        blocked = await sim.guard(request, "GET /v1/videos/{id}/content", fail=oai_guard_error)
        if blocked is not None:
            return blocked
        task = _openai_task_or_404(sim, request)
        if isinstance(task, JSONResponse):
            return task
        now = sim.state.now()
        phase = task.phase_at(now)
        if phase != v.DONE:
            status = {v.QUEUED: "queued", v.RUNNING: "in_progress"}.get(phase) or task.plan.fail_word or "failed"
            return oai_error(f"task is not completed yet, current status: {status}", 400)
        if task.plan.blocked:
            return oai_error("request to the video URL was blocked by the relay's URL filter", 403)
        if task.media_gone(now):
            return oai_error("video content has expired", 404)
        task.content_calls += 1
        if task.content_calls <= task.plan.content_502:
            return oai_error("failed to fetch video content from upstream", 502, "server_error")
        if task.plan.redirect:
            return RedirectResponse(views.media_url(task, _base(sim, task)), status_code=302)
        return serve_video(sim, request, task, dict(CACHE))

    return endpoint


def _openai_remix(sim: Simulator) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        blocked = await sim.guard(request, "POST /v1/videos/{id}/remix", is_create=True, fail=oai_guard_error)
        if blocked is not None:
            return blocked
        parent = _openai_task_or_404(sim, request)
        if isinstance(parent, JSONResponse):
            return parent
        body = await json_object(request)
        prompt = (body or {}).get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            return oai_error("prompt is required", 400)
        now = sim.state.now()
        if parent.phase_at(now) != v.DONE:
            return oai_error(f"video {parent.id} is not completed and cannot be remixed", 400)
        if v.plan_of(prompt, v.OPENAI).reject:
            return oai_error("prompt rejected by the safety system", 400)
        params = dict(parent.params.items()) | {"remix_prompt": prompt}
        task = _openai_task(sim, request, parent.model, parent.family, prompt, params, remixed_from=parent.id)
        late = await sim.after_accept(oai_guard_error)
        return late or JSONResponse(views.openai_object(task, sim.state, now, _base(sim, task)))

    return endpoint


def _media(sim: Simulator) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        name: str = request.path_params["name"]
        task = sim.state.video.by_media_key(name.removesuffix(".mp4")) if name.endswith(".mp4") else None
        now = sim.state.now()
        if task is None or task.phase_at(now) != v.DONE or task.media_gone(now):
            return JSONResponse({"error": "no such media"}, status_code=404)
        return serve_video(sim, request, task, {})

    return endpoint


def video_routes(sim: Simulator) -> list[Route]:
    return [
        Route("/v1/video/create", _unified_create(sim), methods=["POST"]),
        Route("/v1/video/query", _unified_query(sim), methods=["GET"]),
        Route("/v1/videos", _openai_create(sim), methods=["POST"]),
        Route("/v1/videos/{video_id}", _openai_get(sim), methods=["GET"]),
        Route("/v1/videos/{video_id}/content", _openai_content(sim), methods=["GET"]),
        Route("/v1/videos/{video_id}/remix", _openai_remix(sim), methods=["POST"]),
        Route("/_sim/media/video/{name}", _media(sim), methods=["GET"]),
    ]
