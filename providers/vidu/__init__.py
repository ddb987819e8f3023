"""Vidu through the relay (providers-next.md §4.7, providers.md §10.5): text2video, img2video,
start_end2video, reference2video, reference2image.

- Submit `POST {prefix}/{text2video | img2video | start-end2video | reference2video | reference2image}`,
  poll `GET {prefix}/tasks/{id}/creations`; the documented prefix is `/ent/v2`, and relays differ
  (`/vidu/ent/v2`...): `K4U_ROUTE_PREFIXES="vidu=/vidu/ent/v2"` names another.
- Money: Vidu takes no idempotency key and has no list to look a task up in, but it echoes
  `payload` in its queries and callbacks. We put our external id there, so a callback that names a
  task and echoes it reveals the task of a submit whose answer was lost
  (`lost_submit=LostSubmit.CALLBACK_ECHO`, as Midjourney's `state`); without a callback (no
  K4U_PUBLIC_URL, or none within K4U_SUBMIT_CALLBACK_GRACE_S) the job fails `submit_outcome_unknown`.
- Callbacks are unsigned: our per-job URL token is their only proof (`callback_trust="token"`).
- Result URLs live about an hour (vendor docs say 1 h or 24 h): `result_ttl_s=3600`, downloaded first.
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
from providers.rejections import no_task_id, submit_rejection
from providers.vidu.inputs import (
    MATRIX,
    MODELS,
    Img2VideoInput,
    Reference2ImageInput,
    Reference2VideoInput,
    StartEnd2VideoInput,
    Text2VideoInput,
)
from providers.vidu.status import STATES, read_task, relay_message, task_id_of, unwrap
from providers.wire import json_or_none, query_failure

__all__ = ["MATRIX", "MODELS", "PATHS", "PREFIX", "STATES", "ViduAdapter", "read_task"]

PREFIX = "/ent/v2"
PATHS = {
    "text2video": f"{PREFIX}/text2video",
    "img2video": f"{PREFIX}/img2video",
    "start_end2video": f"{PREFIX}/start-end2video",
    "reference2video": f"{PREFIX}/reference2video",
    "reference2image": f"{PREFIX}/reference2image",
}
IMAGE_OPERATIONS = frozenset({"reference2image"})


def query_path(task_id: str) -> str:
    return f"{PREFIX}/tasks/{quote(task_id, safe='')}/creations"


class ViduAdapter(AdapterDefaults):
    name = "vidu"
    operations: Mapping[str, Operation] = {
        "text2video": Operation("text2video", Text2VideoInput, "Text to video (/ent/v2/text2video)"),
        "img2video": Operation("img2video", Img2VideoInput, "One image (the first frame) to video (/ent/v2/img2video)"),
        "start_end2video": Operation("start_end2video", StartEnd2VideoInput, "First and last frame to video (/ent/v2/start-end2video)"),
        "reference2video": Operation("reference2video", Reference2VideoInput, "1-7 reference images + text to video (/ent/v2/reference2video)"),
        "reference2image": Operation("reference2image", Reference2ImageInput, "1-7 reference images + text to an image (/ent/v2/reference2image)"),
    }
    # A 5 s clip takes one to two minutes; result URLs live about an hour.
    capabilities = Capabilities(
        max_batch=1,
        callback_trust="token",
        result_ttl_s=3600,
        expected_s=90.0,
        deadline_s=3600.0,
        lost_submit=LostSubmit.CALLBACK_ECHO,
        route_prefix=PREFIX,
    )

    def build_submit(self, operation: str, input: Mapping[str, Any], ctx: SubmitContext) -> HttpRequest:
        body = {k: v for k, v in input.items() if k not in ("payload", "callback_url")}
        body["payload"] = ctx.external_id  # echoed in queries and callbacks: how a lost submit's task is recognised
        if ctx.callback_url:
            body["callback_url"] = ctx.callback_url
        return HttpRequest("POST", PATHS[operation], json=body)

    def parse_submit(self, resp: HttpResponse) -> Submitted | Rejected:
        data = json_or_none(resp)
        message = relay_message(data)
        if resp.status >= 300:
            return submit_rejection(resp, message)
        if not isinstance(data, Mapping):
            raise ProviderProtocolError("submit answer is not a JSON object")
        d = unwrap(data)
        task_id = task_id_of(d)
        if not task_id:
            return no_task_id(data, message, "vidu_")
        st = read_task(d, task_id=task_id) if "state" in d else None
        return Submitted(task_id, st if st is not None and st.state is not State.UNKNOWN else None)

    def build_poll(self, targets: Sequence[PollTarget], *, batch: bool = True) -> HttpRequest:
        if len(targets) != 1:
            raise ValueError("Vidu has no batch query; poll one task at a time")
        return HttpRequest("GET", query_path(targets[0].task_id))

    def poll(self, targets: Sequence[PollTarget], *, batch: bool = True) -> Flow[list[ProviderStatus]]:
        t = targets[0]
        resp = yield self.build_poll(targets, batch=False)
        return [self.read_poll(resp, t)]

    def read_poll(self, resp: HttpResponse, t: PollTarget) -> ProviderStatus:
        data = json_or_none(resp)
        if (failure := query_failure(resp, data, t.task_id, relay_message(data))) is not None:
            return failure
        return read_task(data, task_id=t.task_id, image_result=t.operation in IMAGE_OPERATIONS)

    def parse_callback(self, headers: Mapping[str, str], body: bytes) -> ProviderStatus:
        return read_task(json_or_none(HttpResponse(200, headers, body)))
