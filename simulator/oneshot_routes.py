"""Synchronous generation routes (OpenAI format): the answer carries the result.

  POST /v1/images/generations   JSON {model, prompt, n, size, response_format, stream, ...}
                                -> {created, data[{url | b64_json, revised_prompt?}], usage?}
  POST /v1/images/edits         multipart: image (one file) or image[] (several), mask?, prompt,
                                model, n, size, ... -> the same answer
  POST /v1/audio/speech         JSON {model, input, voice, response_format, speed, instructions}
                                -> the audio bytes (audio/mpeg by default)
  POST /v1beta/models/{model}:generateContent   Gemini native: {contents[{parts[text | inlineData]}],
                                generationConfig} -> {candidates[{content{parts[text, inlineData]}}], usageMetadata}
  POST /ideogram/v1/ideogram-v3/{generate (JSON) | edit | remix | reframe | replace-background (multipart)}
                                -> {created, data[{url, prompt, resolution, is_image_safe, seed, style_type}]}
  GET  /_sim/oneshot            every call: route, model, prompt, uploads (sha256), answer sha256

Every route goes through `Simulator.guard` (counters, auth, injected faults: a 5xx after accept
is a paid call answered 502), waits the configured generation delay, and every call that gets
that far is in the paid ledger (family `oneshot`). Errors have OpenAI's `{error:{message, type}}`
shape; `stream: true` is refused with 400. Directives: `simulator.oneshot`.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from simulator import oneshot as o
from simulator.bodies import json_object
from simulator.chaos import CutResponse
from simulator.video_routes import oai_error, oai_guard_error

if TYPE_CHECKING:
    from simulator.core import Simulator

Endpoint = Callable[[Request], Awaitable[Response]]


def _check_image_body(body: dict[str, Any]) -> str | None:
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        return "prompt is required"
    if body.get("stream") in (True, "true"):
        return "stream is not supported on this channel"
    n = body.get("n", 1)
    if isinstance(n, str) and n.isdigit():
        n = int(n)
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= 10:
        return "n must be an integer between 1 and 10"
    body["n"] = n
    return None


async def _generate(sim: Simulator, request: Request, route: str, body: dict[str, Any], uploads: list[dict[str, Any]]) -> Response:
    """The shared part of generations and edits once the body is read: delay, pay, answer."""
    problem = _check_image_body(body)
    if problem:
        return oai_error(problem, 400)
    model = str(body.get("model") or "dall-e-2")
    plan = o.plan_of(body["prompt"])
    if plan.reject:
        return oai_error("Your request was rejected as a result of our safety system.", 400)
    return await _pay_and_answer(
        sim, route, model, body, uploads, plan, lambda call_id: o.image_answer(call_id, model, body, sim.base_url(request), plan, _now(sim))
    )


async def _pay_and_answer(
    sim: Simulator, route: str, model: str, body: dict[str, Any], uploads: list[dict[str, Any]], plan: o.Plan, answer: Callable[[str], dict[str, Any]]
) -> Response:
    """Generate (wait the delay), record the paid call, then answer: its JSON, or a fault."""
    await asyncio.sleep(sim.config.oneshot_s if plan.delay_s is None else plan.delay_s)
    prompt = str(body.get("prompt") or "")
    call = sim.state.oneshot.add({"route": route, "model": model, "prompt": prompt, "uploads": uploads, "params": _params(body)})
    sim.state.count_create("oneshot", call["id"], route, prompt, sim.state.now())
    late = await sim.after_accept(oai_guard_error)
    if late is not None:
        return late
    raw = json.dumps(answer(call["id"])).encode()
    call["answer_sha256"] = hashlib.sha256(raw).hexdigest()
    if plan.drop:
        sim.state.paid.mark_last("dropped")
        return CutResponse(raw, len(raw) // 2, "application/json")
    return Response(raw, media_type="application/json")


def _now(sim: Simulator) -> int:
    return int(sim.config.webhook_clock())


async def _form(request: Request) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
    """(fields, uploaded files) of a multipart body, or None when it is not one."""
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        return None
    form = await request.form(max_part_size=32 * 1024 * 1024)
    body: dict[str, Any] = {}
    uploads: list[dict[str, Any]] = []
    try:
        for key, value in form.multi_items():
            if isinstance(value, UploadFile):
                uploads.append({"field": key} | o.upload_record(await value.read(), value.filename, value.content_type))
            else:
                body[key] = value
    finally:
        await form.close()
    return body, uploads


def _params(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k not in ("prompt", "image", "mask") and isinstance(v, (str, int, float, bool))}


def _images_generations(sim: Simulator) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        blocked = await sim.guard(request, "POST /v1/images/generations", is_create=True, fail=oai_guard_error)
        if blocked is not None:
            return blocked
        body = await json_object(request)
        if body is None:
            return oai_error("request body must be a JSON object", 400)
        return await _generate(sim, request, "images/generations", body, [])

    return endpoint


def _images_edits(sim: Simulator) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        blocked = await sim.guard(request, "POST /v1/images/edits", is_create=True, fail=oai_guard_error)
        if blocked is not None:
            return blocked
        parsed = await _form(request)
        if parsed is None:
            return oai_error("this route takes multipart/form-data", 400)
        body, uploads = parsed
        if not any(u["field"] in ("image", "image[]") for u in uploads):
            return oai_error("image is required", 400)
        return await _generate(sim, request, "images/edits", body, uploads)

    return endpoint


def _gemini(sim: Simulator) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        blocked = await sim.guard(request, "POST /v1beta/models/{model}:generateContent", is_create=True, fail=oai_guard_error)
        if blocked is not None:
            return blocked
        model, _, action = request.path_params["name"].partition(":")
        body = await json_object(request)
        if action != "generateContent" or body is None:
            return o.gemini_error("unknown action or a body that is not a JSON object", 404 if action != "generateContent" else 400)
        texts, uploads = o.gemini_parts(body)
        if not texts:
            return o.gemini_error("contents must have a text part", 400)
        plan = o.plan_of(" ".join(texts))
        if plan.reject:
            return o.gemini_error("The prompt was rejected by the safety filter.", 400)
        prompt = {"prompt": " ".join(texts)} | {k: json.dumps(v) for k, v in body.items() if k == "generationConfig"}
        return await _pay_and_answer(sim, "gemini/generateContent", model, prompt, uploads, plan, lambda _call: o.gemini_answer(model, plan))

    return endpoint


def _ideogram(sim: Simulator) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        action = request.path_params["action"]
        blocked = await sim.guard(request, f"POST /ideogram/v1/ideogram-v3/{action}", is_create=True, fail=oai_guard_error)
        if blocked is not None:
            return blocked
        if action not in o.IDEOGRAM_ACTIONS:
            return oai_error(f"unknown action {action}", 404)
        uploads: list[dict[str, Any]] = []
        if action == "generate":
            json_body = await json_object(request)
            if json_body is None:
                return oai_error("request body must be a JSON object", 400)
            body = json_body
        else:
            parsed = await _form(request)
            if parsed is None:
                return oai_error("this route takes multipart/form-data", 400)
            body, uploads = parsed
            if not any(u["field"] == "image" for u in uploads) or (action == "edit" and not any(u["field"] == "mask" for u in uploads)):
                return oai_error("image (and for edit, mask) are required files", 400)
        if action != "reframe" and not str(body.get("prompt") or "").strip():
            return oai_error("prompt is required", 400)
        plan = o.plan_of(body.get("prompt") or body.get("resolution"))
        if plan.reject:
            return oai_error("Prompt failed the safety check.", 422)
        base = sim.base_url(request)
        return await _pay_and_answer(
            sim, f"ideogram/{action}", "ideogram-v3", body, uploads, plan, lambda call_id: o.ideogram_answer(call_id, body, base, plan)
        )

    return endpoint


def _speech(sim: Simulator) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        blocked = await sim.guard(request, "POST /v1/audio/speech", is_create=True, fail=oai_guard_error)
        if blocked is not None:
            return blocked
        body = await json_object(request)
        if body is None:
            return oai_error("request body must be a JSON object", 400)
        text, voice = body.get("input"), body.get("voice")
        if not isinstance(text, str) or not text.strip():
            return oai_error("input is required", 400)
        if not isinstance(voice, str) or not voice:
            return oai_error("voice is required", 400)
        fmt = body.get("response_format") or "mp3"
        if fmt not in o.SPEECH_TYPES:
            return oai_error(f"response_format must be one of {', '.join(o.SPEECH_TYPES)}", 400)
        plan = o.plan_of(text)
        if plan.reject:
            return oai_error("Your request was rejected as a result of our safety system.", 400)
        await asyncio.sleep(sim.config.oneshot_s if plan.delay_s is None else plan.delay_s)
        call = sim.state.oneshot.add({"route": "audio/speech", "model": str(body.get("model")), "prompt": text, "uploads": [], "params": _params(body)})
        sim.state.count_create("oneshot", call["id"], "audio/speech", text, sim.state.now())
        late = await sim.after_accept(oai_guard_error)
        if late is not None:
            return late
        length, chunks, digest = o.speech_bytes(plan)
        call |= {"content_sha256": digest, "content_size": length}
        ctype = o.SPEECH_TYPES[fmt]
        if plan.drop:
            sim.state.paid.mark_last("dropped")
            head = next(chunks)
            return CutResponse(head + b"\0" * max(0, length - len(head)), len(head) // 2, ctype)
        return StreamingResponse(chunks, media_type=ctype, headers={"Content-Length": str(length)})

    return endpoint


def oneshot_routes(sim: Simulator) -> list[Route]:
    async def calls(request: Request) -> Response:
        return JSONResponse({"calls": sim.state.oneshot.calls})

    async def models(request: Request) -> Response:  # new-api's model list for the key: free
        blocked = await sim.guard(request, "GET /v1/models", fail=oai_guard_error)
        if blocked is not None:
            return blocked
        names = ("gpt-image-1", "dall-e-3", "tts-1", "gemini-2.5-flash-image", "ideogram-v3")
        return JSONResponse({"object": "list", "data": [{"id": n, "object": "model", "owned_by": "custom"} for n in names]})

    return [
        Route("/v1/images/generations", _images_generations(sim), methods=["POST"]),
        Route("/v1/images/edits", _images_edits(sim), methods=["POST"]),
        Route("/v1/audio/speech", _speech(sim), methods=["POST"]),
        Route("/v1beta/models/{name}", _gemini(sim), methods=["POST"]),
        Route("/ideogram/v1/ideogram-v3/{action}", _ideogram(sim), methods=["POST"]),
        Route("/v1/models", models, methods=["GET"]),
        Route("/_sim/oneshot", calls, methods=["GET"]),
    ]
