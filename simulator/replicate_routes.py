"""Replicate routes (providers.md §8): the relay prefix `/replicate` in front of Replicate's API.

  POST /replicate/v1/models/{owner}/{name}/predictions   {input, webhook?, webhook_events_filter?}
  POST /replicate/v1/predictions                         {version, input, webhook?, ...}; version
                                                         = 64 hex, or "owner/name:<64 hex>"
  GET  /replicate/v1/predictions/{id}                    the prediction (404 problem if unknown)
  POST /replicate/v1/predictions/{id}/cancel             canceled if not final yet, else unchanged
  GET  /replicate/v1/webhooks/default/secret             {key: "whsec_..."} (official route; the
                                                         doc does not know if relays pass it)
  GET  /_sim/media/rep/{id}_{i}.png|.mp4                 output files, no key; 404 once expired

Creates answer 201 with the prediction and are paid (ledger family `replicate`). Upstream errors
use Replicate's `{title, detail, status}` (404 unknown id, 422 bad version / input / webhook
fields); errors made by the relay itself before any passthrough (`Simulator.guard`: auth, 429,
5xx) use new-api's `{error: {message, type}}`, as they would on the real relay.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from simulator import replicate as rep, replicate_views as views
from simulator.bodies import json_object
from simulator.media import MP4_BYTES, PNG_BYTES
from simulator.ranged import bytes_blob, ranged_response
from simulator.video_routes import oai_guard_error

if TYPE_CHECKING:
    from simulator.core import Simulator

Endpoint = Callable[[Request], Awaitable[Response]]
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_MODEL = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,99}/[a-z0-9][a-z0-9_.-]{0,99}$", re.IGNORECASE)
_MEDIA = re.compile(r"^([a-z0-9]+)_(\d+)\.(png|mp4)$")
BLOBS = {"png": bytes_blob(PNG_BYTES, "image/png"), "mp4": bytes_blob(MP4_BYTES, "video/mp4")}


def _base(sim: Simulator, p: rep.Prediction) -> str:
    return (sim.config.public_base or p.public_base).rstrip("/")


def _invalid(detail: str) -> JSONResponse:
    return views.problem(422, "Input validation failed", detail)


def _hook_fields(body: dict[str, Any]) -> tuple[str | None, tuple[str, ...]] | JSONResponse:
    webhook = body.get("webhook")
    if webhook is not None and (not isinstance(webhook, str) or not webhook.startswith(("http://", "https://"))):
        return _invalid("- webhook: Does not match format 'uri'")
    chosen = body.get("webhook_events_filter")
    if chosen is None:
        return webhook or None, rep.EVENTS
    if not isinstance(chosen, list) or not chosen or any(e not in rep.EVENTS for e in chosen):
        return _invalid(f"- webhook_events_filter: each item must be one of {', '.join(rep.EVENTS)}")
    return webhook or None, tuple(e for e in rep.EVENTS if e in chosen)


async def _create(sim: Simulator, request: Request, route_key: str, model: str | None) -> Response:
    blocked = await sim.guard(request, route_key, is_create=True, fail=oai_guard_error)
    if blocked is not None:
        return blocked
    body = await json_object(request)
    if body is None:
        return views.problem(400, "Invalid JSON", "The request body must be a JSON object.")
    version = "hidden"
    if model is not None and not _MODEL.match(model):
        return views.not_found()
    if model is None:  # create by version
        raw = body.get("version")
        owner_name, _, digest = raw.rpartition(":") if isinstance(raw, str) else ("", "", "")
        if not _HEX64.match(digest) or (owner_name and not _MODEL.match(owner_name)):
            return views.problem(
                422, "Invalid version or not permitted", "The specified version does not exist (or perhaps you don't have permission to use it?)"
            )
        version, model = digest, owner_name or f"sim-owner/model-{digest[:12]}"
    if not isinstance(body.get("input"), dict):
        return _invalid("- input: Invalid type. Expected: object, given: " + type(body.get("input")).__name__)
    hooks = _hook_fields(body)
    if isinstance(hooks, JSONResponse):
        return hooks
    plan, store, now = rep.plan_of(str(body["input"].get("prompt") or "")), sim.state.replicate, sim.state.now()
    p = store.add(
        rep.Prediction(
            id=store.new_id(),
            model=model,
            version=version,
            input=body["input"],
            created=now,
            queue_s=sim.config.queue_s if plan.queue_s is None else plan.queue_s,
            run_s=sim.config.run_s if plan.run_s is None else plan.run_s,
            plan=plan,
            public_base=sim.base_url(request),
            webhook=hooks[0],
            events_filter=hooks[1],
        )
    )
    sim.state.count_create("replicate", p.id, f"replicate/{model}", p.prompt, now)
    late = await sim.after_accept(oai_guard_error)
    return late or JSONResponse(views.prediction(p, sim.state, now, _base(sim, p)), status_code=201)


def _create_by_model(sim: Simulator) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        model = f"{request.path_params['owner']}/{request.path_params['name']}"
        return await _create(sim, request, "POST /replicate/v1/models/{owner}/{name}/predictions", model)

    return endpoint


def _create_by_version(sim: Simulator) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        return await _create(sim, request, "POST /replicate/v1/predictions", None)

    return endpoint


def _get(sim: Simulator) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        blocked = await sim.guard(request, "GET /replicate/v1/predictions/{id}", fail=oai_guard_error)
        if blocked is not None:
            return blocked
        p = sim.state.replicate.predictions.get(request.path_params["prediction_id"])
        if p is None:
            return views.not_found()
        p.polls += 1
        return JSONResponse(views.prediction(p, sim.state, sim.state.now(), _base(sim, p)))

    return endpoint


def _cancel(sim: Simulator) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        blocked = await sim.guard(request, "POST /replicate/v1/predictions/{id}/cancel", fail=oai_guard_error)
        if blocked is not None:
            return blocked
        p = sim.state.replicate.predictions.get(request.path_params["prediction_id"])
        if p is None:
            return views.not_found()
        now = sim.state.now()
        p.cancel(now)
        return JSONResponse(views.prediction(p, sim.state, now, _base(sim, p)))

    return endpoint


def _secret(sim: Simulator) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        blocked = await sim.guard(request, "GET /replicate/v1/webhooks/default/secret", fail=oai_guard_error)
        return blocked or JSONResponse({"key": sim.config.replicate_webhook_secret})

    return endpoint


def _media(sim: Simulator) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        match = _MEDIA.match(request.path_params["name"])
        p = sim.state.replicate.predictions.get(match.group(1)) if match else None
        now = sim.state.now()
        if match is None or p is None or p.media_ext != match.group(3) or int(match.group(2)) >= p.visible_outputs(now):
            return JSONResponse({"error": "no such media"}, status_code=404)
        if request.method == "GET":
            sim.state.media_downloads += 1
        return ranged_response(request, BLOBS[p.media_ext])

    return endpoint


def replicate_routes(sim: Simulator) -> list[Route]:
    prefix = "/replicate/v1"
    return [
        Route(prefix + "/models/{owner}/{name}/predictions", _create_by_model(sim), methods=["POST"]),
        Route(prefix + "/predictions", _create_by_version(sim), methods=["POST"]),
        Route(prefix + "/predictions/{prediction_id}", _get(sim), methods=["GET"]),
        Route(prefix + "/predictions/{prediction_id}/cancel", _cancel(sim), methods=["POST"]),
        Route(prefix + "/webhooks/default/secret", _secret(sim), methods=["GET"]),
        Route("/_sim/media/rep/{name}", _media(sim), methods=["GET", "HEAD"]),
    ]
