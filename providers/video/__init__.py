"""Sora, Veo and Grok through the relay: two API formats, three families (providers.md §5, §6, §10.6).

- OpenAI format (`POST /v1/videos`, `GET /v1/videos/{id}`, bytes from the relay route
  `GET /v1/videos/{id}/content`, which needs the key: the engine adds it on that first request
  only). JSON, or multipart when a reference image is given as bytes (a data: URI).
- Unified format (`POST /v1/video/create`, `GET /v1/video/query?id=`): ids may contain a colon
  (`sora-2:task_…`) and travel URL-encoded in the query; success is a non-null `video_url`.
- Remix (`POST /v1/videos/{id}/remix`) works only for OpenAI-format parents, pinned to the
  original channel: any other parent is refused before anything is sent.
None of these routes takes a client id or sends callbacks through the relay (§12), so a submit
whose answer was lost cannot be looked up: the job fails `submit_outcome_unknown` rather than
risk a second charge.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import quote

from models.errors import ProviderProtocolError
from providers.base import (
    AdapterDefaults,
    Capabilities,
    FilePart,
    Flow,
    HttpRequest,
    HttpResponse,
    LostSubmit,
    Operation,
    ParentRef,
    ParentSpec,
    PollTarget,
    ProviderStatus,
    Rejected,
    State,
    SubmitContext,
    Submitted,
)
from providers.rejections import no_task_id, submit_rejection
from providers.video.inputs import (
    GrokVideoInput,
    OpenAIVideoInput,
    RemixInput,
    UnifiedVideoInput,
    VeoOpenAIInput,
    VeoUnifiedInput,
    decode_data_uri,
)
from providers.video.status import read_status, task_id_of, unwrap
from providers.wire import error_message, json_or_none, query_failure

OPENAI, UNIFIED = "openai", "unified"
_EXT = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp", "image/gif": "gif"}


@dataclass(frozen=True)
class VideoOp:
    name: str
    api: str  # OPENAI | UNIFIED
    schema: type[Any]
    description: str
    remix: bool = False


def content_path(task_id: str) -> str:
    return f"/v1/videos/{quote(task_id, safe='')}/content"


class VideoAdapter(AdapterDefaults):
    """One family (Sora, Veo or Grok): its operations say which format each uses."""

    def __init__(self, name: str, ops: Sequence[VideoOp], capabilities: Capabilities) -> None:
        self.name = name
        self._ops = {op.name: op for op in ops}
        self.operations: Mapping[str, Operation] = {op.name: Operation(op.name, op.schema, op.description) for op in ops}
        self.capabilities = capabilities

    def api_of(self, operation: str) -> str:
        return self._ops[operation].api

    # -- parents (remix) ----------------------------------------------------------------------
    def parent_of(self, operation: str, input: Mapping[str, Any]) -> ParentSpec | None:
        if self._ops[operation].remix and input.get("job_id"):
            return ParentSpec("job_id", str(input["job_id"]), frozenset({"succeeded", "downloading"}))
        return None

    def check_parent(self, operation: str, input: Mapping[str, Any], parent: ParentRef) -> None:
        if parent.operation not in self._ops or self._ops[parent.operation].api != OPENAI:
            raise ValueError(
                f"remix works only for videos made with the OpenAI format ({', '.join(self._openai_ops())}); job {parent.job_id} used {parent.operation}"
            )
        if not parent.task_id:
            raise ValueError(f"job {parent.job_id} has no relay video id")

    def _openai_ops(self) -> list[str]:
        return [name for name, op in self._ops.items() if op.api == OPENAI]

    # -- submit -------------------------------------------------------------------------------
    def build_submit(self, operation: str, input: Mapping[str, Any], ctx: SubmitContext) -> HttpRequest:
        op = self._ops[operation]
        if op.remix:
            parent = input.get("video_id") or (ctx.parent.task_id if ctx.parent else None)
            if not parent:
                raise ValueError("the remix's parent video is unknown (its job has no relay video id)")
            return HttpRequest("POST", f"/v1/videos/{quote(str(parent), safe='')}/remix", json={"prompt": input["prompt"]})
        if op.api == UNIFIED:
            return HttpRequest("POST", "/v1/video/create", json=dict(input))
        return openai_create(input)

    def parse_submit(self, resp: HttpResponse) -> Submitted | Rejected:
        data = json_or_none(resp)
        message = error_message(data)
        if resp.status >= 300:
            return submit_rejection(resp, message)
        if not isinstance(data, Mapping):
            raise ProviderProtocolError("submit answer is not a JSON object")
        d = unwrap(data)
        task_id = task_id_of(d)
        if not task_id:
            return no_task_id(data, message)
        st = read_status(data, content_path=content_path(task_id)) if "status" in d else None
        return Submitted(task_id, st if st is not None and st.state is not State.UNKNOWN else None)

    # -- poll ---------------------------------------------------------------------------------
    def build_poll(self, targets: Sequence[PollTarget], *, batch: bool = True) -> HttpRequest:
        if len(targets) != 1:
            raise ValueError("video formats have no batch query; poll one task at a time")
        t = targets[0]
        if self._ops[t.operation].api == UNIFIED:
            return HttpRequest("GET", "/v1/video/query", query={"id": t.task_id})  # the client URL-encodes the colon
        return HttpRequest("GET", f"/v1/videos/{quote(t.task_id, safe='')}")

    def poll(self, targets: Sequence[PollTarget], *, batch: bool = True) -> Flow[list[ProviderStatus]]:
        t = targets[0]
        resp = yield self.build_poll(targets, batch=False)
        return [self._read_poll(resp, t)]

    def _read_poll(self, resp: HttpResponse, t: PollTarget) -> ProviderStatus:
        data = json_or_none(resp)
        if (failure := query_failure(resp, data, t.task_id, error_message(data))) is not None:
            return failure
        unified = self._ops[t.operation].api == UNIFIED
        st = read_status(data, content_path=None if unified else content_path(t.task_id))
        return (
            st
            if st.task_id
            else ProviderStatus(t.task_id, st.state, st.progress, st.outputs, st.result_data, st.error_code, st.error_message, None, st.expires_at, st.detail)
        )


def openai_create(input: Mapping[str, Any]) -> HttpRequest:
    """JSON, or multipart with the reference image as a file when it was given as bytes."""
    body = dict(input)
    ref = body.get("input_reference")
    decoded = decode_data_uri(ref) if isinstance(ref, str) else None
    if decoded is None:
        return HttpRequest("POST", "/v1/videos", json=body)
    mime, data = decoded
    del body["input_reference"]
    form = {k: v if isinstance(v, str) else json.dumps(v, separators=(",", ":")) for k, v in body.items()}
    part = FilePart("input_reference", f"reference.{_EXT.get(mime, 'bin')}", mime, data)
    return HttpRequest("POST", "/v1/videos", form=form, files=[part])


# Typical times and URL lifetimes (providers.md §5.2: 3-5 min, poll ~30 s, give up ~10 min on one
# relay; §6.1: Veo URLs live about 24 h, 2-5 min per video). Sora relay link lifetime is unknown:
# the OpenAI object's expires_at is used where given, else a conservative day.
_VIDEO_CAPS = Capabilities(max_batch=1, callback_trust="hint", result_ttl_s=86400, deadline_s=3600.0, lost_submit=LostSubmit.NONE)

SORA = VideoAdapter(
    "sora",
    [
        VideoOp("video", OPENAI, OpenAIVideoInput, "Text (+ reference image) to video, OpenAI format (/v1/videos; bytes from /v1/videos/{id}/content)"),
        VideoOp("video_unified", UNIFIED, UnifiedVideoInput, "Text (+ reference images) to video, unified format (/v1/video/create + /v1/video/query)"),
        VideoOp("remix", OPENAI, RemixInput, "Remix a video made with the OpenAI format (/v1/videos/{id}/remix); parent by job_id or video_id", remix=True),
    ],
    replace(_VIDEO_CAPS, expected_s=240.0),
)

VEO = VideoAdapter(
    "veo",
    [
        VideoOp("video", UNIFIED, VeoUnifiedInput, "Text (+ frames / components) to video, unified format (/v1/video/create)"),
        VideoOp("video_openai", OPENAI, VeoOpenAIInput, "Text (+ reference image) to video, OpenAI format (/v1/videos)"),
    ],
    replace(_VIDEO_CAPS, expected_s=210.0),
)

GROK = VideoAdapter(
    "grok",
    [
        VideoOp("video", UNIFIED, GrokVideoInput, "Text (+ images) to video, unified format (/v1/video/create, model grok-video-3)"),
    ],
    replace(_VIDEO_CAPS, expected_s=120.0),
)
