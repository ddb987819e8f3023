"""fal's queue through the relay (providers.md §9): any model by its path.

- Submit `POST /{model}` (e.g. `/fal-ai/flux/dev`), `input` passed through, `?fal_webhook=` when
  callbacks are on. The answer's `status_url` / `response_url` / `cancel_url` point at
  queue.fal.run: only their path is kept (the handle) and sent to the relay.
- Sub-path rule (§9.2): status, result and cancel use the *base* model id, its first two
  segments (`fal-ai/flux/requests/{id}`, not `fal-ai/flux/dev/requests/{id}`).
- Status `IN_QUEUE` (HTTP 202, with `queue_position`, shown as the job's progress detail),
  `IN_PROGRESS`, `COMPLETED`: then the result is read in the same poll (a flow); a result that
  answers an error (422) fails the job with its message, "still in progress" (400) polls on.
- A submit that answers with the result itself (some Key4U routes are synchronous) completes at
  once: no task id, no status or result read.
- Outputs: every file in the result JSON; `data:` URIs are stored without a network request.
- Webhooks: Ed25519-signed (K4U_FAL_JWKS: the key set) and matched on `request_id`, never on
  `gateway_request_id`; fal retries up to 10 times, and applying a delivery twice changes nothing.
  Without a key set a delivery is only a hint to poll now.
- No lookup by a client id (§12): a lost submit answer fails `submit_outcome_unknown`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field, field_validator

from models.errors import ProviderProtocolError, ProviderUnavailable
from providers.base import (
    AdapterDefaults,
    CallbackAuth,
    CallbackInputs,
    CallbackVerdict,
    CancelOutcome,
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
from providers.outputs import shorten_data_uris, walk_outputs
from providers.rejections import retry_after_s, submit_rejection
from providers.webhooks import verify_fal
from providers.wire import json_or_none, object_at, str_or_none, upstream_path

PROBE_MODEL = "fal-ai/flux/dev"  # the model `k4u doctor` asks about (providers.md §9.2's example)
_SEGMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
_RESULT_KEYS = ("images", "image", "video", "videos", "audio", "audio_file", "audio_url", "file", "files", "output", "mesh", "model_mesh")


class QueueInput(BaseModel):
    """Any fal model by path; `input` is the model's own request body."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(..., max_length=300, description="a fal model path, e.g. fal-ai/flux/dev or fal-ai/kling-video/v2.5-turbo/pro/text-to-video")
    input: dict[str, Any] = Field(default_factory=dict, description="the model's inputs, passed through")

    @field_validator("model")
    @classmethod
    def _path(cls, v: str) -> str:
        v = v.strip().strip("/")
        if "://" in v or ":" in v:
            raise ValueError("must be a model path, not a URL (no scheme)")
        parts = v.split("/")
        if len(parts) < 2:
            raise ValueError("must be owner/app[/sub/path], e.g. fal-ai/flux/dev")
        if any(p == "" for p in parts):
            raise ValueError("must not contain an empty segment")
        if any(".." in p for p in parts):
            raise ValueError("must not contain '..'")
        if not all(_SEGMENT.fullmatch(p) for p in parts):
            raise ValueError("segments are letters, digits, - _ . and start with a letter or digit")
        return v


def base_model(model: str) -> str:
    """The app id status/result/cancel use: the first two segments (§9.2's sub-path rule)."""
    return "/".join(model.strip("/").split("/")[:2])


def _detail(data: Any) -> str:
    """fal's error detail: a string, or FastAPI's list of {loc, msg}."""
    if not isinstance(data, Mapping):
        return ""
    detail = data.get("detail")
    if isinstance(detail, str):
        return detail
    if isinstance(detail, list):
        msgs = []
        for item in detail[:5]:
            if isinstance(item, Mapping):
                loc = ".".join(str(x) for x in item.get("loc") or [] if x != "body")
                msgs.append(f"{loc}: {item.get('msg')}" if loc else str(item.get("msg")))
        return "; ".join(msgs)
    for key in ("error", "message"):
        if isinstance(data.get(key), str) and data[key]:
            return str(data[key])
    return ""


def finished(task_id: str | None, result: Any) -> ProviderStatus:
    """The status of a request whose result JSON we hold."""
    outputs = walk_outputs(result)
    data: dict[str, Any] = {"output": shorten_data_uris(result)}
    if isinstance(result, Mapping):
        timings = object_at(result, "timings")
        if isinstance(timings.get("inference"), (int, float)):
            data["cost"] = {"inference_s": float(timings["inference"])}
    if not outputs:
        return ProviderStatus(
            task_id, State.FAILED, result_data=data, error_code="provider_failed", error_message="the request completed without any file in its result"
        )
    return ProviderStatus(task_id, State.SUCCEEDED, progress=100, outputs=outputs, result_data=data)


def _looks_like_result(data: Mapping[str, Any]) -> bool:
    return "request_id" not in data and any(k in data for k in _RESULT_KEYS)


class FalAdapter(AdapterDefaults):
    name = "fal"
    operations: Mapping[str, Operation] = {
        "queue": Operation("queue", QueueInput, "Any fal model by path, through fal's queue (/fal-ai/...)"),
    }
    capabilities = Capabilities(
        max_batch=1,
        callback_trust="hint",
        callback_auth=CallbackAuth.JWKS,
        callback_setting="fal_jwks",
        lost_submit=LostSubmit.NONE,
        cancels=True,
        result_ttl_s=None,
        expected_s=20.0,
        deadline_s=3600.0,
    )

    def build_submit(self, operation: str, input: Mapping[str, Any], ctx: SubmitContext) -> HttpRequest:
        path = "/" + "/".join(quote(p, safe="") for p in str(input["model"]).split("/"))
        query = {"fal_webhook": ctx.callback_url} if ctx.callback_url else {}
        return HttpRequest("POST", path, query=query, json=dict(input.get("input") or {}))

    def parse_submit(self, resp: HttpResponse) -> Submitted | Rejected:
        data = json_or_none(resp)
        if resp.status >= 300:
            return submit_rejection(resp, _detail(data))
        if not isinstance(data, Mapping):
            raise ProviderProtocolError("submit answer is not a JSON object")
        request_id = str_or_none(data.get("request_id"))
        if request_id is None:
            if _looks_like_result(data):  # a synchronous route answered with the result itself
                return Submitted(None, finished(None, data))
            raise ProviderProtocolError("submit answer carries no request_id")
        return Submitted(request_id, _queue_status(request_id, data), handle=self._handle(data, request_id))

    def _handle(self, data: Mapping[str, Any], request_id: str) -> dict[str, str]:
        """The relay paths of this request, from the answer's URLs (host dropped); a missing URL is
        derived at poll time from the model path by the sub-path rule."""
        handle = {}
        for key, field in (("status", "status_url"), ("result", "response_url"), ("cancel", "cancel_url")):
            path = upstream_path(data.get(field))
            if path:
                handle[key] = path
        return handle

    @staticmethod
    def paths(target: PollTarget) -> dict[str, str]:
        base = "/" + "/".join(quote(p, safe="") for p in base_model(str(target.input.get("model") or "")).split("/"))
        rid = quote(target.task_id, safe="")
        derived = {"status": f"{base}/requests/{rid}/status", "result": f"{base}/requests/{rid}", "cancel": f"{base}/requests/{rid}/cancel"}
        return derived | {k: str(v) for k, v in target.handle.items() if k in derived and v}

    def probe_input(self, operation: str) -> Mapping[str, Any]:
        """Status routes are per model: a probe reads a made-up request of the documented example model."""
        return {"model": PROBE_MODEL}

    def poll(self, targets: Sequence[PollTarget], *, batch: bool = True) -> Flow[list[ProviderStatus]]:
        t = targets[0]
        paths = self.paths(t)
        resp = yield HttpRequest("GET", paths["status"], query={"logs": "1"})
        data = json_or_none(resp)
        if resp.status == 404:
            return [ProviderStatus(t.task_id, State.UNKNOWN, error_message=_detail(data))]
        if resp.status >= 300 or not isinstance(data, Mapping):
            raise ProviderProtocolError(f"HTTP {resp.status} on status: {_detail(data)[:200]}")
        st = _queue_status(t.task_id, data)
        if st is not None:
            return [st]
        # COMPLETED: read the result in the same poll (it may still be an error)
        result = yield HttpRequest("GET", paths["result"], accept_errors=True)
        body = json_or_none(result)
        if result.status >= 500 and not (result.status == 500 and isinstance(body, Mapping) and "detail" in body):
            # the relay's own trouble (its errors are {error: {...}}): read the result again later
            raise ProviderUnavailable(f"HTTP {result.status} on the result", retry_after_s=retry_after_s(result))
        if result.status == 400 and "progress" in _detail(body).lower():
            return [ProviderStatus(t.task_id, State.RUNNING)]
        if result.status == 404:
            return [ProviderStatus(t.task_id, State.UNKNOWN, error_message=_detail(body))]
        if result.status >= 300:
            return [
                ProviderStatus(
                    t.task_id,
                    State.FAILED,
                    error_code="provider_failed",
                    error_message=f"fal answered HTTP {result.status} for the result: {_detail(body)[:500] or 'no detail'}",
                )
            ]
        return [finished(t.task_id, body)]

    def cancel(self, target: PollTarget) -> Flow[CancelOutcome] | None:
        return self._cancel(target)

    def _cancel(self, target: PollTarget) -> Flow[CancelOutcome]:
        resp = yield HttpRequest("PUT", self.paths(target)["cancel"])
        data = json_or_none(resp)
        status = str(data.get("status") or "") if isinstance(data, Mapping) else ""
        if resp.status < 300:
            return CancelOutcome(True, f"fal cancel: {status or 'requested'}")
        return CancelOutcome(False, f"fal cancel answered HTTP {resp.status}: {status or _detail(data)[:200] or 'no detail'}")

    def read_callback(self, headers: Mapping[str, str], body: bytes, inputs: CallbackInputs) -> CallbackVerdict:
        data = json_or_none(HttpResponse(200, headers, body))
        if not isinstance(data, Mapping):
            raise ProviderProtocolError("webhook body is not a JSON object")
        request_id = str_or_none(data.get("request_id"))
        status = str(data.get("status") or "").upper()
        if status == "OK":
            st = finished(request_id, data.get("payload"))
        elif status == "ERROR":
            detail = data.get("error") if isinstance(data.get("error"), str) else _detail(data.get("payload"))
            st = ProviderStatus(request_id, State.FAILED, error_code="provider_failed", error_message=detail or "fal reported an error")
        else:
            st = ProviderStatus(request_id, State.UNKNOWN)
        if inputs.keys is None:  # no key set configured (K4U_FAL_JWKS)
            return CallbackVerdict(st, trust="hint")
        refused = verify_fal(inputs.keys, headers, body, now=inputs.now)
        if refused:
            return CallbackVerdict(None, refused=refused.reason, unknown_key=refused.unknown_key)
        return CallbackVerdict(st, trust="signed")


def _queue_status(task_id: str, data: Mapping[str, Any]) -> ProviderStatus | None:
    """IN_QUEUE / IN_PROGRESS as a status; None for COMPLETED (the result must be read)."""
    status = str(data.get("status") or "").upper()
    if status == "IN_QUEUE":
        pos = data.get("queue_position")
        detail = f"queue position {pos}" if isinstance(pos, int) and not isinstance(pos, bool) else "in queue"
        return ProviderStatus(task_id, State.QUEUED, detail=detail)
    if status == "IN_PROGRESS":
        return ProviderStatus(task_id, State.RUNNING, detail="in progress")
    if status == "COMPLETED":
        if isinstance(data.get("error"), str) and data["error"]:
            return ProviderStatus(task_id, State.FAILED, error_code="provider_failed", error_message=str(data["error"]))
        return None
    return ProviderStatus(task_id, State.UNKNOWN)
