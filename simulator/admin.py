"""Admin (`/_sim/...`, no auth) and media routes of the simulator.

Admin: health, config, faults, reset, advance, stats, tasks, paid (every created,
billed task with its prompt), callbacks, media-sha256, auth-seen (requests per route template
with / without an Authorization header, `simulator.auth_seen`).
Media: `/_sim/media/{task}.mp4`, `/_sim/media/{task}_{i}.png`,
`/_sim/media/{clip}.mp3`, `/_sim/media/{clip}.jpeg` (or .jpg),
`/_sim/media/stream/{clip}.mp3` (partial MP3 of a streaming Suno clip),
`/_sim/media/preview/{task}_{n}.png` (Midjourney in-progress preview),
`/_sim/media/big/{n}.bin` (n deterministic bytes with Range / If-Range / ETag support,
`simulator.ranged`; `?ignore_range=1` always answers 200 in full, `?cut_at=K` drops the
connection at absolute offset K for every request starting before K),
`/_sim/media/expired/{anything}` (403). Video media (`/_sim/media/video/...`) is served by
`simulator.video_routes`, Replicate media (`/_sim/media/rep/...`) by `simulator.replicate_routes`,
fal media (`/_sim/media/fal/...`) and the fal webhook key set (`/_sim/fal/jwks.json`) by
`simulator.fal_routes`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from simulator import media
from simulator.auth_seen import auth_seen_view
from simulator.chaos import RATE_FIELDS, CutResponse
from simulator.config import update_config, update_faults
from simulator.ranged import RangeOptions, big_blob, ranged_response
from simulator.timeline import directive_seconds, directives

if TYPE_CHECKING:
    from simulator.core import Simulator

Endpoint = Callable[[Request], Awaitable[Response]]
_NAME = r"^[A-Za-z0-9_.-]+"
# (file name pattern, bytes, content type) per media folder.
_MEDIA: dict[str, list[tuple[re.Pattern[str], bytes, str]]] = {
    "": [
        (re.compile(_NAME + r"\.mp4$"), media.MP4_BYTES, "video/mp4"),
        (re.compile(_NAME + r"_\d+\.png$"), media.PNG_BYTES, "image/png"),
        (re.compile(_NAME + r"\.mp3$"), media.MP3_BYTES, "audio/mpeg"),
        (re.compile(_NAME + r"\.jpe?g$"), media.JPEG_BYTES, "image/jpeg"),
    ],
    "stream": [(re.compile(_NAME + r"\.mp3$"), media.MP3_STREAM_BYTES, "audio/mpeg")],
    "preview": [(re.compile(_NAME + r"_\d+\.png$"), media.PNG_PREVIEW_BYTES, "image/png")],
}
MAX_BIG = 20 * 1024**3


async def _json_object(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    payload = json.loads(raw)
    if not isinstance(payload, dict):
        raise ValueError("expected a JSON object")
    return payload


def _bad(exc: Exception) -> JSONResponse:
    return JSONResponse({"error": str(exc)}, status_code=400)


def _task_slow_media_s(sim: Simulator, name: str) -> float | None:
    """`[sim:slow_media=N]` in a Kling task's prompt: that task's media trickle over about N s."""
    task = sim.state.tasks.get(re.split(r"[._]", name, maxsplit=1)[0])
    return directive_seconds(directives(task.prompt), "slow_media") if task is not None else None


def admin_routes(sim: Simulator) -> list[Route]:
    state = sim.state

    async def health(request: Request) -> Response:
        return JSONResponse({"ok": True, "envelope": sim.config.envelope})

    def set_config(payload: dict[str, Any]) -> None:
        update_config(sim.config, payload)
        if "fault_seed" in payload:
            state.dice.reseed(sim.config.fault_seed)

    async def config(request: Request) -> Response:
        if request.method == "POST":
            try:
                set_config(await _json_object(request))
            except ValueError as exc:
                return _bad(exc)
        return JSONResponse(sim.config.public_view())

    async def faults(request: Request) -> Response:
        if request.method == "POST":
            try:
                payload = await _json_object(request)
                rates = {k: payload.pop(k) for k in (*RATE_FIELDS, "fault_seed") if k in payload}
                update_config(replace(sim.config), rates)  # validate before changing anything
                update_faults(state.faults, payload)
                set_config(rates)
            except ValueError as exc:
                return _bad(exc)
        return JSONResponse(state.faults.view() | {k: getattr(sim.config, k) for k in (*RATE_FIELDS, "fault_seed")})

    async def reset(request: Request) -> Response:
        state.reset()
        return JSONResponse({"ok": True})

    async def advance(request: Request) -> Response:
        try:
            seconds = float((await _json_object(request)).get("seconds", 0))
        except (ValueError, TypeError) as exc:
            return _bad(exc)
        if seconds < 0:
            return _bad(ValueError("seconds must be >= 0"))
        state.time_offset += seconds
        return JSONResponse({"ok": True, "time_offset": state.time_offset})

    async def stats(request: Request) -> Response:
        return JSONResponse(state.stats())

    async def tasks(request: Request) -> Response:
        return JSONResponse({"tasks": state.task_rows()})

    async def paid(request: Request) -> Response:
        return JSONResponse({"count": len(state.paid.rows), "paid": state.paid.rows})

    async def callbacks(request: Request) -> Response:
        return JSONResponse({"callbacks": list(state.callback_log)})

    async def media_sha256(request: Request) -> Response:
        return JSONResponse(dict(media.MEDIA_SHA256))

    async def media_file(request: Request) -> Response:
        name = request.path_params["name"]
        folder = request.path_params.get("folder", "")
        found = next(((d, t) for pattern, d, t in _MEDIA.get(folder, []) if pattern.match(name)), None)
        if found is None:
            return JSONResponse({"error": "no such media"}, status_code=404)
        data, ctype = found
        if request.method == "HEAD":
            return Response(headers={"Content-Length": str(len(data))}, media_type=ctype)
        state.media_downloads += 1
        if state.dice.roll(sim.config.media_cut_rate):
            state.paid.fired["media_cut"] += 1
            return CutResponse(data, int(len(data) * state.dice.fraction(0.1, 0.9)), ctype)
        slow_s = _task_slow_media_s(sim, name) or sim.config.slow_media_s
        if slow_s > 0:
            return StreamingResponse(
                media.trickle(data, slow_s),
                media_type=ctype,
                headers={"Content-Length": str(len(data))},
            )
        return Response(data, media_type=ctype)

    async def media_big(request: Request) -> Response:
        try:
            n_bytes = int(request.path_params["n"])
        except ValueError:
            return JSONResponse({"error": "size must be an integer"}, status_code=404)
        if not 0 <= n_bytes <= MAX_BIG:
            return JSONResponse({"error": f"size must be 0..{MAX_BIG}"}, status_code=400)
        query = request.query_params
        try:
            cut_at = int(query["cut_at"]) if query.get("cut_at") else None
        except ValueError:
            return JSONResponse({"error": "cut_at must be an integer"}, status_code=400)
        if request.method == "GET":
            state.media_downloads += 1
        options = RangeOptions(ignore_range=query.get("ignore_range") in ("1", "true"), cut_at=cut_at, slow_s=sim.config.slow_media_s)
        return ranged_response(request, big_blob(n_bytes), options)

    async def auth_seen(request: Request) -> Response:
        return JSONResponse(auth_seen_view(state))

    async def media_expired(request: Request) -> Response:
        return Response(
            "<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>",
            status_code=403,
            media_type="application/xml",
        )

    get = ["GET"]
    return [
        Route("/_sim/health", health, methods=get),
        Route("/_sim/config", config, methods=["GET", "POST"]),
        Route("/_sim/faults", faults, methods=["GET", "POST"]),
        Route("/_sim/reset", reset, methods=["POST"]),
        Route("/_sim/advance", advance, methods=["POST"]),
        Route("/_sim/stats", stats, methods=get),
        Route("/_sim/tasks", tasks, methods=get),
        Route("/_sim/paid", paid, methods=get),
        Route("/_sim/callbacks", callbacks, methods=get),
        Route("/_sim/media-sha256", media_sha256, methods=get),
        Route("/_sim/auth-seen", auth_seen, methods=get),
        Route("/_sim/media/big/{n}.bin", media_big, methods=get),
        Route("/_sim/media/expired/{rest:path}", media_expired, methods=get),
        Route("/_sim/media/{folder:str}/{name}", media_file, methods=get),
        Route("/_sim/media/{name}", media_file, methods=get),
    ]
