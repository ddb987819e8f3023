"""Synchronous generation routes (OpenAI format): the answer carries the result.

  POST /v1/images/generations   JSON {model, prompt, n, size, response_format, stream, ...}
                                -> {created, data[{url | b64_json, revised_prompt?}], usage?}
  POST /v1/images/edits         multipart: image (one file) or image[] (several), mask?, prompt,
                                model, n, size, ... -> the same answer
  POST /v1/audio/speech         JSON {model, input, voice, response_format, speed, instructions}
                                -> the audio bytes (audio/mpeg by default)
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
    await asyncio.sleep(sim.config.oneshot_s if plan.delay_s is None else plan.delay_s)
    now = sim.state.now()
    call = sim.state.oneshot.add({"route": route, "model": model, "prompt": body["prompt"], "uploads": uploads, "params": _params(body)})
    sim.state.count_create("oneshot", call["id"], route, body["prompt"], now)
    late = await sim.after_accept(oai_guard_error)
    if late is not None:
        return late
    answer = o.image_answer(call["id"], model, body, sim.base_url(request), plan, int(sim.config.webhook_clock()))
    raw = json.dumps(answer).encode()
    call["answer_sha256"] = hashlib.sha256(raw).hexdigest()
    if plan.drop:
        sim.state.paid.mark_last("dropped")
        return CutResponse(raw, len(raw) // 2, "application/json")
    return Response(raw, media_type="application/json")


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
        if not request.headers.get("content-type", "").startswith("multipart/form-data"):
            return oai_error("this route takes multipart/form-data", 400)
        form = await request.form(max_part_size=32 * 1024 * 1024)
        body: dict[str, Any] = {}
        uploads: list[dict[str, Any]] = []
        try:
            for key, value in form.multi_items():
                if isinstance(value, UploadFile):
                    if key in ("image", "image[]", "mask"):
                        uploads.append({"field": key} | o.upload_record(await value.read(), value.filename, value.content_type))
                else:
                    body[key] = value
        finally:
            await form.close()
        if not any(u["field"] in ("image", "image[]") for u in uploads):
            return oai_error("image is required", 400)
        return await _generate(sim, request, "images/edits", body, uploads)

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

    return [
        Route("/v1/images/generations", _images_generations(sim), methods=["POST"]),
        Route("/v1/images/edits", _images_edits(sim), methods=["POST"]),
        Route("/v1/audio/speech", _speech(sim), methods=["POST"]),
        Route("/_sim/oneshot", calls, methods=["GET"]),
    ]
