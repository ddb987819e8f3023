"""Kling through the relay (providers.md §4, providers-next.md §4.1): fifteen operations, one envelope.

Every operation is `POST /kling/v1/<group>/<action>` with a JSON body that also carries our
`external_task_id` and `callback_url`; its task is read at `GET` the same path `/<task_id>` or
`/<external_task_id>`, so a submit whose answer was lost is looked up by our id and resent only
when proven absent. Two response families reach us and both are parsed, once (`providers.kling.parse`):
the Kling-official envelope `{code: 0, message, request_id, data: {task_id, task_status, ...}}`
and new-api's shapes (the OpenAI-video-like submit answer, the generic task DTO, the video object).
HTTP 200 with a non-zero Kling `code` is a rejection (1302/1303/5000-5002 "later"), not an
acceptance. identify-face answers at once (a session and the faces, nothing to download);
video-extend and advanced-lip-sync may name their parent by our job id.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from models.errors import ProviderProtocolError
from providers.base import (
    AdapterDefaults,
    Capabilities,
    HttpRequest,
    HttpResponse,
    LostSubmit,
    Operation,
    ParentRef,
    ParentSpec,
    PollTarget,
    ProviderStatus,
    Rejected,
    SubmitContext,
    Submitted,
)
from providers.kling.inputs import (
    EffectsInput,
    Image2VideoInput,
    ImageInput,
    MotionControlInput,
    MultiImage2VideoInput,
    OmniVideoInput,
    Text2VideoInput,
    VideoExtendInput,
)
from providers.kling.inputs_av import (
    AvatarInput,
    IdentifyFaceInput,
    LipSyncInput,
    MultiImage2ImageInput,
    SoundEffectInput,
    VideoToAudioInput,
    VirtualTryOnInput,
)
from providers.kling.parse import identified_faces, parse_task
from providers.rejections import submit_rejection
from providers.wire import error_message, is_not_found, json_or_none, query_failure

__all__ = ["PATHS", "KlingAdapter", "parse_task"]

_OPS: list[tuple[str, str, type[Any], str]] = [
    ("text2video", "videos/text2video", Text2VideoInput, "Text to video"),
    ("image2video", "videos/image2video", Image2VideoInput, "Image (first / last frame) to video"),
    ("image", "images/generations", ImageInput, "Image generation"),
    ("omni_video", "videos/omni-video", OmniVideoInput, "Omni video (kling-video-o1, kling-v3-omni): text, reference images, elements, a video"),
    ("multi_image2video", "videos/multi-image2video", MultiImage2VideoInput, "1-4 subject images to video"),
    ("video_extend", "videos/video-extend", VideoExtendInput, "Extend a Kling video by 4-5 s; parent by our job_id or video_id"),
    ("effects", "videos/effects", EffectsInput, "A preset effect scene on one or two photos"),
    ("motion_control", "videos/motion-control", MotionControlInput, "A character image moved like a reference video"),
    ("avatar", "videos/avatar/image2video", AvatarInput, "A portrait speaking a sound"),
    ("identify_face", "videos/identify-face", IdentifyFaceInput, "Find the faces of a video for lip_sync: answered at once with session_id and face_data"),
    ("lip_sync", "videos/advanced-lip-sync", LipSyncInput, "Faces of an identify_face session speak sounds; session by session_id or our job_id"),
    ("video_to_audio", "audio/video-to-audio", VideoToAudioInput, "Sound effects and music for a video (video + audio results)"),
    ("sound_effect", "audio/text-to-audio", SoundEffectInput, "A 3-10 s sound from a text (audio result)"),
    ("multi_image2image", "images/multi-image2image", MultiImage2ImageInput, "Up to 4 subject images (+ scene, style) to images"),
    ("virtual_try_on", "images/kolors-virtual-try-on", VirtualTryOnInput, "A person wearing a garment (Kolors virtual try-on)"),
]
PATHS: dict[str, str] = {name: f"/kling/v1/{route}" for name, route, _, _ in _OPS}

# Operations whose result is a Kling video another operation can take by its video id.
VIDEO_OPS = frozenset(
    {"text2video", "image2video", "omni_video", "multi_image2video", "video_extend", "effects", "motion_control", "avatar", "lip_sync", "video_to_audio"}
)
# Our own fields, checked and used here, never sent to the relay.
_LOCAL_FIELDS = ("job_id", "video_duration")
_DONE = frozenset({"succeeded", "downloading"})

# Kling business codes (official error table): 1302/1303 are rate and concurrency limits,
# 5000-5002 server trouble; the rest (auth 100x, account 110x, params 120x, policy 130x) are final.
_RETRYABLE_CODES = {1302, 1303, 5000, 5001, 5002}


class KlingAdapter(AdapterDefaults):
    name = "kling"
    operations: Mapping[str, Operation] = {name: Operation(name, schema, f"{text} ({PATHS[name]})") for name, _, schema, text in _OPS}
    # Kling keeps results 30 days (§4.6); a 5 s video takes 60-120 s.
    capabilities = Capabilities(
        max_batch=1,
        callback_trust="token",
        result_ttl_s=30 * 86400,
        expected_s=90.0,
        deadline_s=3600.0,
        lost_submit=LostSubmit.LOOKUP,
    )

    # -- parents: video_extend of a Kling video, lip_sync of an identify_face session ---------
    def parent_of(self, operation: str, input: Mapping[str, Any]) -> ParentSpec | None:
        if operation in ("video_extend", "lip_sync") and input.get("job_id"):
            return ParentSpec("job_id", str(input["job_id"]), _DONE)
        return None

    def check_parent(self, operation: str, input: Mapping[str, Any], parent: ParentRef) -> None:
        if operation == "video_extend":
            if parent.operation not in VIDEO_OPS:
                raise ValueError(f"video_extend extends a Kling video ({', '.join(sorted(VIDEO_OPS))}); job {parent.job_id} is {parent.operation}")
            if not isinstance(parent.result.get("video_id"), str):
                raise ValueError(f"job {parent.job_id} has no Kling video id in its result")
        elif operation == "lip_sync":
            if parent.operation != "identify_face":
                raise ValueError(f"lip_sync takes the session of an identify_face job; job {parent.job_id} is {parent.operation}")
            if not isinstance(parent.result.get("session_id"), str):
                raise ValueError(f"job {parent.job_id} has no session_id in its result")

    # -- submit -------------------------------------------------------------------------------
    def build_submit(self, operation: str, input: Mapping[str, Any], ctx: SubmitContext) -> HttpRequest:
        body = {k: v for k, v in input.items() if k not in _LOCAL_FIELDS}
        if operation == "video_extend" and "video_id" not in body:
            body["video_id"] = _from_parent(ctx, "video_id")
        if operation == "lip_sync" and "session_id" not in body:
            body["session_id"] = _from_parent(ctx, "session_id")
        body["external_task_id"] = ctx.external_id
        if ctx.callback_url and operation != "identify_face":  # answered at once: nothing to call back
            body["callback_url"] = ctx.callback_url
        return HttpRequest("POST", PATHS[operation], json=body)

    def parse_submit(self, resp: HttpResponse) -> Submitted | Rejected:
        data = json_or_none(resp)
        message = error_message(data)
        if resp.status >= 300:
            return submit_rejection(resp, message)
        if not isinstance(data, dict):
            raise ProviderProtocolError("submit answer is not a JSON object")
        code = data.get("code")
        inner: Mapping[str, Any]
        if isinstance(code, int) and not isinstance(code, bool):
            if code != 0:
                return Rejected(f"kling_{code}", message or f"Kling code {code}", code in _RETRYABLE_CODES)
            nested = data.get("data")
            inner = nested if isinstance(nested, dict) else {}
            task_id = inner.get("task_id")
        elif isinstance(code, str) and code not in ("success", "0", ""):
            return Rejected(code, message or code, False)
        else:
            nested = data.get("data")
            inner = nested if isinstance(nested, dict) else data
            task_id = inner.get("id") or inner.get("task_id")
        if not task_id and "session_id" in inner and "task_status" not in inner:
            return identified_faces(inner)
        if not task_id:
            raise ProviderProtocolError("submit answer carries no task id")
        return Submitted(str(task_id))

    # -- poll, lookup, callback ---------------------------------------------------------------
    def build_poll(self, targets: Sequence[PollTarget], *, batch: bool = True) -> HttpRequest:
        if len(targets) != 1:
            raise ValueError("Kling has no batch query; poll one task at a time")
        t = targets[0]
        if t.operation == "identify_face":  # answered at once: the relay has no route to ask about it
            raise ValueError("identify_face makes no task to poll")
        return HttpRequest("GET", f"{PATHS[t.operation]}/{t.task_id}")

    def parse_poll(self, resp: HttpResponse) -> list[ProviderStatus]:
        data = json_or_none(resp)
        if (failure := query_failure(resp, data, None, error_message(data))) is not None:
            return [failure]
        if not isinstance(data, dict):
            raise ProviderProtocolError("query answer is not a JSON object")
        code = data.get("code")
        if isinstance(code, int) and not isinstance(code, bool) and code != 0:
            raise ProviderProtocolError(f"Kling code {code}: {error_message(data)[:200]}")
        return [parse_task(data)]

    def build_lookup(self, operation: str, external_id: str) -> HttpRequest | None:
        # The single-task query accepts the external_task_id in place of the task id (§4.4).
        # identify-face makes no task to ask about: a lost answer fails submit_outcome_unknown.
        if operation == "identify_face":
            return None
        return HttpRequest("GET", f"{PATHS[operation]}/{external_id}")

    def parse_lookup(self, resp: HttpResponse) -> Submitted | None:
        data = json_or_none(resp)
        if resp.status in (400, 404) and is_not_found(data):
            return None
        statuses = self.parse_poll(resp)
        st = statuses[0]
        if st.task_id is None:
            return None
        return Submitted(st.task_id, st)

    def parse_callback(self, headers: Mapping[str, str], body: bytes) -> ProviderStatus:
        data = json_or_none(HttpResponse(200, headers, body))
        if not isinstance(data, dict):
            raise ProviderProtocolError("callback body is not a JSON object")
        return parse_task(data)


def _from_parent(ctx: SubmitContext, key: str) -> str:
    value = ctx.parent.result.get(key) if ctx.parent else None
    if not isinstance(value, str) or not value:
        raise ValueError(f"the parent job's {key} is unknown")
    return value
