"""fal queue routes (providers.md §9): at the relay root, model paths under `fal-ai/`.

  POST /fal-ai/{model path}[?fal_webhook=<url>]      submit; the body is the model's input
  GET  /fal-ai/{app}/requests/{id}/status[?logs=1]   202 while IN_QUEUE, else 200
  GET  /fal-ai/{app}/requests/{id}                   400 "still in progress" before COMPLETED,
                                                     then the result (or its error, 422 / 500 / 400)
  PUT  /fal-ai/{app}/requests/{id}/cancel            202 CANCELLATION_REQUESTED while queued,
                                                     400 ALREADY_STARTED / ALREADY_COMPLETED after
  GET  /_sim/fal/jwks.json                           the webhook signing key set (no auth)
  GET  /_sim/media/fal/{id}_{i}.png | {id}.mp4       result files, no key

`{app}` is the *base* model id's second segment: status, result and cancel on the full submit
path (`/fal-ai/flux/dev/requests/...`) answer 404, as fal's sub-path rule says (§9.2), so a
client that ignores the rule fails here too. A request looked up under another app is 404 as well.
Every submit is paid (ledger family `fal`). Relay-made errors (`Simulator.guard`) use new-api's
`{error: {message, type}}`; fal's own errors are `{detail: ...}`.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from simulator import fal, fal_views as views
from simulator.bodies import json_object
from simulator.media import MP4_BYTES, PNG_BYTES
from simulator.ranged import bytes_blob, ranged_response
from simulator.video_routes import oai_guard_error

if TYPE_CHECKING:
    from simulator.core import Simulator

Endpoint = Callable[[Request], Awaitable[Response]]
_SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_MEDIA = re.compile(r"^([0-9a-f-]{36})(?:_(\d+))?\.(png|mp4)$")
BLOBS = {"png": bytes_blob(PNG_BYTES, "image/png"), "mp4": bytes_blob(MP4_BYTES, "video/mp4")}


def _base(sim: Simulator, r: fal.FalRequest) -> str:
    return (sim.config.public_base or r.public_base).rstrip("/")


def _detail(message: str, status: int) -> JSONResponse:
    return JSONResponse({"detail": message}, status_code=status)


def _validation(loc: list[str], msg: str) -> JSONResponse:
    return JSONResponse({"detail": [{"loc": loc, "msg": msg, "type": "value_error"}]}, status_code=422)


def _submit(sim: Simulator) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        blocked = await sim.guard(request, "POST /fal-ai/{path}", is_create=True, fail=oai_guard_error)
        if blocked is not None:
            return blocked
        segments = request.path_params["path"].strip("/").split("/")
        if not segments or not all(_SEGMENT.match(s) for s in segments):
            return _detail("Not Found", 404)
        if len(segments) > 2 and segments[1] == "requests":  # e.g. a cancel sent as POST: not a submit
            return _detail("Method Not Allowed", 405)
        body = await json_object(request)
        if body is None:
            return _validation(["body"], "the request body must be a JSON object (the model's input)")
        webhook = request.query_params.get("fal_webhook")
        if webhook is not None and not webhook.startswith(("http://", "https://")):
            return _validation(["query", "fal_webhook"], "fal_webhook must be an http(s) URL")
        prompt = body.get("prompt")
        plan, store, now = fal.plan_of(prompt if isinstance(prompt, str) else ""), sim.state.fal, sim.state.now()
        request_id = store.new_id()
        r = store.add(
            fal.FalRequest(
                id=request_id,
                model="/".join([fal.OWNER, *segments]),
                input=body,
                created=now,
                queue_s=0.0 if plan.sync else sim.config.queue_s if plan.queue_s is None else plan.queue_s,
                run_s=0.0 if plan.sync else sim.config.run_s if plan.run_s is None else plan.run_s,
                plan=plan,
                public_base=sim.base_url(request),
                gateway_request_id=store.new_id() if plan.gateway_retry else request_id,
                webhook=webhook or None,
            )
        )
        sim.state.count_create("fal", r.id, r.model, r.prompt, now)
        late = await sim.after_accept(oai_guard_error)
        if late is not None:
            return late
        if plan.sync:
            code, answer = views.outcome_answer(r, _base(sim, r))
            return JSONResponse(answer, status_code=code)
        return JSONResponse(views.submit(r))

    return endpoint


async def _find(sim: Simulator, request: Request, route_key: str) -> fal.FalRequest | Response:
    blocked = await sim.guard(request, route_key, fail=oai_guard_error)
    if blocked is not None:
        return blocked
    r = sim.state.fal.requests.get(request.path_params["request_id"])
    if r is None or r.base != f"{fal.OWNER}/{request.path_params['app']}":
        return _detail("Request not found", 404)
    return r


def _status(sim: Simulator) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        r = await _find(sim, request, "GET /fal-ai/{app}/requests/{id}/status")
        if isinstance(r, Response):
            return r
        r.polls += 1
        now = sim.state.now()
        with_logs = request.query_params.get("logs", "").lower() in ("1", "true")
        body = views.status(r, sim.state, now, with_logs)
        return JSONResponse(body, status_code=202 if body["status"] == fal.IN_QUEUE else 200)

    return endpoint


def _result(sim: Simulator) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        r = await _find(sim, request, "GET /fal-ai/{app}/requests/{id}")
        if isinstance(r, Response):
            return r
        if r.status_at(sim.state.now()) != fal.COMPLETED:
            return _detail("Request is still in progress", 400)
        code, body = views.outcome_answer(r, _base(sim, r))
        return JSONResponse(body, status_code=code)

    return endpoint


def _cancel(sim: Simulator) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        r = await _find(sim, request, "PUT /fal-ai/{app}/requests/{id}/cancel")
        if isinstance(r, Response):
            return r
        r.cancel_calls += 1
        now = sim.state.now()
        status = r.status_at(now)
        if status == fal.IN_QUEUE:
            r.cancelled_at = now
            return JSONResponse({"status": "CANCELLATION_REQUESTED"}, status_code=202)
        word = "ALREADY_STARTED" if status == fal.IN_PROGRESS else "ALREADY_COMPLETED"
        return JSONResponse({"status": word}, status_code=400)

    return endpoint


def _unrouted(sim: Simulator) -> Endpoint:
    """Any other GET / PUT under /fal-ai/: e.g. status on the full model path (sub-path rule)."""

    async def endpoint(request: Request) -> Response:
        blocked = await sim.guard(request, f"{request.method} /fal-ai/{{path}}", fail=oai_guard_error)
        return blocked or _detail("Not Found", 404)

    return endpoint


def _jwks(sim: Simulator) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        return JSONResponse(sim.state.fal_key.jwks())

    return endpoint


def _media(sim: Simulator) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        match = _MEDIA.match(request.path_params["name"])
        r = sim.state.fal.requests.get(match.group(1)) if match else None
        if match is None or r is None or not r.media_ok(sim.state.now()) or (r.plan.data_output and not r.is_video):
            return JSONResponse({"error": "no such media"}, status_code=404)
        index, ext = match.group(2), match.group(3)
        wanted = "mp4" if r.is_video else "png"
        if ext != wanted or (ext == "mp4") != (index is None) or (index is not None and int(index) >= r.n_images()):
            return JSONResponse({"error": "no such media"}, status_code=404)
        if request.method == "GET":
            sim.state.media_downloads += 1
        return ranged_response(request, BLOBS[ext])

    return endpoint


def fal_routes(sim: Simulator) -> list[Route]:
    requests = "/fal-ai/{app}/requests/{request_id}"
    return [
        Route("/_sim/fal/jwks.json", _jwks(sim), methods=["GET"]),
        Route("/_sim/media/fal/{name}", _media(sim), methods=["GET", "HEAD"]),
        Route(requests + "/status", _status(sim), methods=["GET"]),
        Route(requests, _result(sim), methods=["GET"]),
        Route(requests + "/cancel", _cancel(sim), methods=["PUT"]),
        Route("/fal-ai/{path:path}", _submit(sim), methods=["POST"]),
        Route("/fal-ai/{path:path}", _unrouted(sim), methods=["GET", "PUT"]),
    ]
