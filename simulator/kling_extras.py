"""Kling's other operations in the simulator (providers-next.md §4.1).

Each is one more kind of the generic Kling task (`simulator.state.KINDS`): the same lifecycle,
callbacks, lookup by task id or external_task_id, and result views (`simulator.views`: audio
kinds return `audios[]`, video-to-audio `videos[]` and `audios[]`). This module holds what
differs: the required fields of each body (`problem`), video-extend and identify-face taking only
a video id this simulator produced, advanced-lip-sync only a session it issued, the `[sim:busy=N]`
directive (Kling code 1303, "later", for the first N creates of that prompt) and identify-face,
which answers at once with a session and the faces instead of a task.
"""

from __future__ import annotations

import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from simulator import views
from simulator.core import Simulator
from simulator.state import SimState, parse_directives

IDENTIFY_FACE = "/kling/v1/videos/identify-face"
BUSY_MESSAGE = "parallel task over resource pack limit"

# kind -> groups of fields of which at least one must be given (a group of one: required)
_REQUIRED: dict[str, list[tuple[str, ...]]] = {
    "videos/omni-video": [("prompt", "multi_shot")],
    "videos/multi-image2video": [("image_list",), ("prompt",)],
    "videos/video-extend": [("video_id",)],
    "videos/effects": [("effect_scene",), ("input",)],
    "videos/motion-control": [("image_url",), ("video_url",), ("character_orientation",), ("mode",)],
    "videos/avatar/image2video": [("image",), ("audio_id", "sound_file")],
    "videos/advanced-lip-sync": [("session_id",), ("face_choose",)],
    "audio/video-to-audio": [("video_id", "video_url")],
    "audio/text-to-audio": [("prompt",), ("duration",)],
    "images/multi-image2image": [("subject_image_list",), ("prompt",)],
    "images/kolors-virtual-try-on": [("human_image",), ("cloth_image",)],
}


def problem(kind: str, body: dict[str, Any], state: SimState) -> str | None:
    """Why the relay would refuse this create body of an extra kind, or None."""
    for group in _REQUIRED.get(kind, []):
        if not any(body.get(name) not in (None, "", []) for name in group):
            return f"{' or '.join(group)} is required"
    video_id = body.get("video_id")
    if kind in ("videos/video-extend", "audio/video-to-audio") and video_id and state.video_task(str(video_id)) is None:
        return f"video_id {video_id} is not a video of this account"
    if kind == "videos/advanced-lip-sync":
        session = state.face_sessions.get(str(body.get("session_id")))
        if session is None:
            return "session_id is unknown or expired"
        faces = {f["face_id"] for f in session["face_data"]}
        chosen = body["face_choose"] if isinstance(body["face_choose"], list) else []
        if any(not isinstance(c, dict) or c.get("face_id") not in faces for c in chosen):
            return "face_id is not a face of this session"
    if kind == "audio/text-to-audio" and not isinstance(body.get("duration"), int | float):
        return "duration must be a number of seconds"
    return None


def busy(sim: Simulator, body: dict[str, Any]) -> Response | None:
    """`[sim:busy=N]`: Kling code 1303 with HTTP 200 for the first N creates of this prompt."""
    prompt = str(body.get("prompt") or "")
    wanted = parse_directives(prompt).busy
    if wanted and sim.state.busy_seen[prompt] < wanted:
        sim.state.busy_seen[prompt] += 1
        return JSONResponse({"code": 1303, "message": BUSY_MESSAGE, "request_id": views.request_id()})
    return None


def identify_face_route(sim: Simulator) -> Route:
    route_key = f"POST {IDENTIFY_FACE}"

    async def identify(request: Request) -> Response:
        blocked = await sim.guard(request, route_key, is_create=True)
        if blocked is not None:
            return blocked
        try:
            body = await request.json()
        except ValueError:
            return sim.error("invalid", "invalid request body: not JSON")
        if not isinstance(body, dict):
            return sim.error("invalid", "invalid request body: expected an object")
        video_id, video_url = body.get("video_id"), body.get("video_url")
        if not video_id and not video_url:
            return sim.error("invalid", "video_id or video_url is required")
        if video_id and sim.state.video_task(str(video_id)) is None:
            return sim.error("invalid", f"video_id {video_id} is not a video of this account")
        state = sim.state
        session_id = str(uuid.uuid4())
        base = sim.base_url(request)
        faces = [{"face_id": str(i), "face_image": f"{base}/_sim/media/{session_id}_{i}.png", "start_time": 0, "end_time": 5000 - 1000 * i} for i in range(2)]
        state.face_sessions[session_id] = {"face_data": faces, "video_id": video_id, "video_url": video_url, "created": state.now()}
        state.count_create("kling", session_id, "videos/identify-face", "", state.now(), external_id=str(body.get("external_task_id") or "") or None)
        late = await sim.after_accept(sim.error)
        if late is not None:
            return late
        return JSONResponse(views.native_ok({"session_id": session_id, "final_unit_deduction": "0", "face_data": faces}))

    return Route(IDENTIFY_FACE, identify, methods=["POST"])
