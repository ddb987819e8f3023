"""Generic new-api video tasks (`newapi_video`): any model the relay routes through stock new-api's
task routes (Wan, Hailuo, Jimeng, Seedance, Kling, Vidu, Veo...), providers.md "Generic new-api
video tasks".

- `generations`: `POST /v1/video/generations` (JSON) + `GET /v1/video/generations/{id}` (the task
  DTO in new-api's `{code, data}` envelope).
- `videos`: `POST /v1/videos` (JSON, or multipart when `input_reference` is a data: URI, as for
  Sora) + `GET /v1/videos/{id}` (the OpenAI video object; bytes at `/v1/videos/{id}/content` when
  the object gives no URL).
Answers are read by the fields they carry (`status.read_task`), whichever route gave them.

Money: the relay mints the task id (`task_…`) and these routes take no client id and send no
callback, so a submit whose answer was lost cannot be found: the job fails `submit_outcome_unknown`
(`LostSubmit.NONE`) rather than risk a second charge. new-api's "no available channel for model X
under group Y" (HTTP 503) means nothing was taken: the job waits in `queued` (code
`model_unavailable`) and is sent again, until the relay routes the model or the deadline passes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

from models.errors import ProviderProtocolError
from providers.base import (
    AdapterDefaults,
    Capabilities,
    Flow,
    HttpRequest,
    HttpResponse,
    LostSubmit,
    Operation,
    PollTarget,
    ProviderStatus,
    Rejected,
    State,
    SubmitContext,
    Submitted,
)
from providers.newapi_video.inputs import GenerationsInput, VideosInput
from providers.newapi_video.status import read_task, task_id_of
from providers.rejections import no_task_id, submit_rejection
from providers.video import openai_create
from providers.video.status import unwrap
from providers.wire import error_message, json_or_none, query_failure

GENERATIONS, VIDEOS = "generations", "videos"
# new-api's answer when no channel of the key's group serves the model (English and older Chinese
# wording, code model_not_found): nothing was taken.
_NO_CHANNEL = ("no available channel", "无可用渠道")


def poll_path(operation: str, task_id: str) -> str:
    base = "/v1/videos" if operation == VIDEOS else "/v1/video/generations"
    return f"{base}/{quote(task_id, safe='')}"


def _bare_id(data: Mapping[str, Any]) -> str | None:
    """Older new-api task routes answer `{code: "success", data: "<task id>"}`."""
    inner = data.get("data")
    return inner.strip() if data.get("code") == "success" and isinstance(inner, str) and inner.strip() else None


def no_channel(data: Any, message: str) -> bool:
    """new-api's "no available channel for model X under group Y" (`code: model_not_found`, at the
    top or in an OpenAI-style `error`)."""
    err = data.get("error") if isinstance(data, Mapping) else None
    codes = {data.get("code") if isinstance(data, Mapping) else None, err.get("code") if isinstance(err, Mapping) else None}
    return "model_not_found" in codes or any(s in message.lower() for s in _NO_CHANNEL)


class NewApiVideoAdapter(AdapterDefaults):
    name = "newapi_video"
    operations: Mapping[str, Operation] = {
        GENERATIONS: Operation(
            GENERATIONS, GenerationsInput, "Any video model the relay routes, new-api's task route (/v1/video/generations); vendor fields in metadata"
        ),
        VIDEOS: Operation(
            VIDEOS, VideosInput, "Any video model the relay routes, OpenAI video format (/v1/videos, JSON or multipart); vendor fields in metadata"
        ),
    }
    # A few minutes per clip on every routed vendor; their URLs live about a day (Wan, Seedance,
    # Vidu: 24 h), and an answer's own expires_at wins.
    capabilities = Capabilities(max_batch=1, callback_trust="hint", result_ttl_s=86400, expected_s=180.0, deadline_s=3600.0, lost_submit=LostSubmit.NONE)

    def build_submit(self, operation: str, input: Mapping[str, Any], ctx: SubmitContext) -> HttpRequest:
        if operation == VIDEOS:
            return openai_create(input)
        return HttpRequest("POST", "/v1/video/generations", json=dict(input))

    def parse_submit(self, resp: HttpResponse) -> Submitted | Rejected:
        data = json_or_none(resp)
        message = error_message(data)
        if resp.status == 503 and no_channel(data, message):
            rejected = submit_rejection(resp, message)
            return Rejected("model_unavailable", message or "no available channel for this model", True, rejected.retry_after_s)
        if resp.status >= 300:
            return submit_rejection(resp, message)
        if not isinstance(data, Mapping):
            raise ProviderProtocolError("submit answer is not a JSON object")
        d = unwrap(data)
        task_id = task_id_of(d) or _bare_id(data)
        if not task_id:
            return no_task_id(data, message)
        st = read_task(data, task_id=task_id) if "status" in d else None
        # Only a task under way is taken from the submit answer; anything else is read by the first poll.
        return Submitted(task_id, st if st is not None and st.state in (State.QUEUED, State.RUNNING) else None)

    def build_poll(self, targets: Sequence[PollTarget], *, batch: bool = True) -> HttpRequest:
        if len(targets) != 1:
            raise ValueError("new-api video tasks have no batch query; poll one task at a time")
        t = targets[0]
        return HttpRequest("GET", poll_path(t.operation, t.task_id))

    def poll(self, targets: Sequence[PollTarget], *, batch: bool = True) -> Flow[list[ProviderStatus]]:
        t = targets[0]
        resp = yield self.build_poll(targets, batch=False)
        return [self.read_poll(resp, t)]

    def read_poll(self, resp: HttpResponse, t: PollTarget) -> ProviderStatus:
        data = json_or_none(resp)
        if (failure := query_failure(resp, data, t.task_id, error_message(data))) is not None:
            return failure
        if (
            isinstance(data, Mapping)
            and "status" not in data
            and not isinstance(data.get("data"), Mapping)
            and data.get("code") not in (None, 0, "0", "success")
        ):
            # new-api's task error with HTTP 200 (`{code: "get_task_failed", message, data: null}`): no news, poll again
            return ProviderStatus(t.task_id, State.UNKNOWN, error_message=error_message(data) or str(data.get("code")))
        return read_task(data, task_id=t.task_id, video_api=t.operation == VIDEOS)


NEWAPI_VIDEO = NewApiVideoAdapter()
