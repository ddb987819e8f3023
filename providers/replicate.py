"""Replicate through the relay (providers.md §8): any model by `owner/name` or by version.

- Create by model `POST /replicate/v1/models/{owner}/{name}/predictions` or by version
  `POST /replicate/v1/predictions {version}`; `input` passes through. Create may answer 201.
- Poll `GET /replicate/v1/predictions/{id}`. The prediction's `urls.get` / `urls.cancel` point at
  the upstream host (api.replicate.com): only their path is kept (the handle), sent to the relay.
- Status: starting → queued, processing → running, succeeded, failed, canceled / aborted → cancelled.
- Output: a URL, a list of URLs or model JSON; every file in it is an asset and the JSON stays in
  job.result. Files are deleted about an hour after completion (`data_removed`): a success
  whose data was removed fails `result_expired`.
- Webhooks: with a secret (K4U_REPLICATE_WEBHOOK_SECRET) a delivery must carry a valid Standard
  Webhooks signature (`webhook-signature` is a space-separated list of `v1,<base64>`) no older
  than 300 s, else it is refused; without one it is only a hint to poll now. `start`, `output` and
  `logs` deliveries carry a running prediction and never finish a job.
- No lookup by a client id (§12): a lost create answer fails `submit_outcome_unknown`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from models.errors import ProviderProtocolError
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
from providers.rejections import submit_rejection
from providers.webhooks import verify_standard_webhook
from providers.wire import json_or_none, object_at, str_or_none, upstream_path

_NAME = r"[a-z0-9](?:[a-z0-9_.-]{0,98}[a-z0-9_])?"
MODEL = re.compile(rf"(?P<owner>{_NAME})/(?P<name>{_NAME})", re.I)
VERSION = re.compile(rf"(?:(?P<model>{_NAME}/{_NAME}):)?(?P<id>[0-9a-f]{{64}})", re.I)
STATES = {
    "starting": State.QUEUED,
    "processing": State.RUNNING,
    "succeeded": State.SUCCEEDED,
    "failed": State.FAILED,
    "canceled": State.CANCELLED,
    "cancelled": State.CANCELLED,
    "aborted": State.CANCELLED,
}
_PERCENT = re.compile(r"(\d{1,3})%")
EVENTS = ["start", "output", "logs", "completed"]


class PredictionInput(BaseModel):
    """A prediction of any Replicate model: by `model` (owner/name) or by `version`."""

    model_config = ConfigDict(extra="forbid")

    model: str | None = Field(None, description="owner/name, e.g. black-forest-labs/flux-schnell")
    version: str | None = Field(None, description="a 64-hex version id, or owner/name:<64-hex>")
    input: dict[str, Any] = Field(default_factory=dict, description="the model's inputs, passed through")

    @field_validator("model")
    @classmethod
    def _model(cls, v: str | None) -> str | None:
        if v is not None and not MODEL.fullmatch(v):
            raise ValueError("must be owner/name (letters, digits, - _ .), e.g. black-forest-labs/flux-schnell")
        return v

    @field_validator("version")
    @classmethod
    def _version(cls, v: str | None) -> str | None:
        if v is not None and not VERSION.fullmatch(v):
            raise ValueError("must be a 64-hex version id or owner/name:<64-hex>")
        return v

    @model_validator(mode="after")
    def _one(self) -> PredictionInput:
        if (self.model is None) == (self.version is None):
            raise ValueError("give exactly one of model (owner/name) or version")
        return self


def _path_of(url: object, fallback: str) -> str:
    """The path of a `urls.*` link (upstream host dropped), under the relay's /replicate prefix."""
    path = upstream_path(url)
    if path is None:
        return fallback
    return path if path.startswith("/replicate/") else "/replicate" + path


def read_prediction(d: Mapping[str, Any]) -> ProviderStatus:
    task_id = str_or_none(d.get("id"))
    raw = str(d.get("status") or "").lower()
    state = STATES.get(raw, State.UNKNOWN)
    output = d.get("output")
    metrics = object_at(d, "metrics")
    result: dict[str, Any] = {}
    if output is not None:
        result["output"] = shorten_data_uris(output)
    if isinstance(metrics.get("predict_time"), (int, float)):
        result["cost"] = {"predict_time_s": float(metrics["predict_time"])}
    if d.get("model"):
        result["model"] = str(d["model"])[:200]
    error = d.get("error")
    message = error if isinstance(error, str) else str(error.get("message") or error.get("detail") or "") if isinstance(error, Mapping) else ""
    outputs = walk_outputs(output) if state is State.SUCCEEDED else []
    code = None
    if state is State.SUCCEEDED and (d.get("data_removed") is True or not outputs):
        removed = d.get("data_removed") is True or output is None
        state, code = State.FAILED, "result_expired" if removed else "provider_failed"
        message = (
            "Replicate deleted the prediction's files (data_removed): API outputs live about an hour"
            if removed
            else "the prediction succeeded without any file in its output"
        )
    elif state is State.FAILED:
        code = "provider_failed"
        message = message or "the prediction failed"
    elif state is State.CANCELLED:
        message = message or f"the prediction was {raw}"
    progress = None
    logs = d.get("logs")
    if state in (State.QUEUED, State.RUNNING) and isinstance(logs, str):
        found = _PERCENT.findall(logs[-2000:])
        progress = min(99, int(found[-1])) if found else None
    return ProviderStatus(task_id, state, progress=progress, outputs=outputs, result_data=result, error_code=code, error_message=message or None)


def _message(data: Any) -> str:
    """`{detail, status, title}` (Replicate's problem shape) or `{error}`."""
    if not isinstance(data, Mapping):
        return ""
    for key in ("detail", "error", "title", "message"):
        value = data.get(key)
        if isinstance(value, str) and value:
            return value
        if isinstance(value, Mapping) and value.get("message"):
            return str(value["message"])
    return ""


class ReplicateAdapter(AdapterDefaults):
    name = "replicate"
    operations: Mapping[str, Operation] = {
        "prediction": Operation("prediction", PredictionInput, "Any Replicate model by owner/name or version (/replicate/v1/...)"),
    }
    # Outputs live about an hour (§8.4); predictions time out after 30 min of running (§8.2),
    # plus a few minutes to boot: that is the deadline.
    capabilities = Capabilities(
        max_batch=1,
        callback_trust="hint",
        callback_auth=CallbackAuth.STANDARD_WEBHOOKS,
        callback_setting="replicate_webhook_secret",
        lost_submit=LostSubmit.NONE,
        cancels=True,
        result_ttl_s=3600,
        expected_s=30.0,
        deadline_s=35 * 60.0,
    )

    def build_submit(self, operation: str, input: Mapping[str, Any], ctx: SubmitContext) -> HttpRequest:
        body: dict[str, Any] = {"input": dict(input.get("input") or {})}
        if ctx.callback_url:
            body |= {"webhook": ctx.callback_url, "webhook_events_filter": EVENTS}
        if input.get("model"):
            m = MODEL.fullmatch(str(input["model"]))
            assert m is not None
            path = f"/replicate/v1/models/{quote(m['owner'], safe='')}/{quote(m['name'], safe='')}/predictions"
            return HttpRequest("POST", path, json=body)
        v = VERSION.fullmatch(str(input["version"]))
        assert v is not None
        return HttpRequest("POST", "/replicate/v1/predictions", json={"version": v["id"].lower(), **body})

    def parse_submit(self, resp: HttpResponse) -> Submitted | Rejected:
        data = json_or_none(resp)
        if resp.status >= 300:
            return submit_rejection(resp, _message(data))
        if not isinstance(data, Mapping) or not str_or_none(data.get("id")):
            raise ProviderProtocolError("create answer carries no prediction id")
        st = read_prediction(data)
        task_id = str(data["id"])
        urls = object_at(data, "urls")
        handle = {
            "get": _path_of(urls.get("get"), f"/replicate/v1/predictions/{quote(task_id, safe='')}"),
            "cancel": _path_of(urls.get("cancel"), f"/replicate/v1/predictions/{quote(task_id, safe='')}/cancel"),
        }
        return Submitted(task_id, st if st.state is not State.UNKNOWN else None, handle=handle)

    def build_poll(self, targets: Sequence[PollTarget], *, batch: bool = True) -> HttpRequest:
        if len(targets) != 1:
            raise ValueError("Replicate has no batch query; poll one prediction at a time")
        t = targets[0]
        return HttpRequest("GET", str(t.handle.get("get") or f"/replicate/v1/predictions/{quote(t.task_id, safe='')}"))

    def parse_poll(self, resp: HttpResponse) -> list[ProviderStatus]:
        data = json_or_none(resp)
        if resp.status == 404:
            return [ProviderStatus(None, State.UNKNOWN, error_message=_message(data))]
        if resp.status >= 300 or not isinstance(data, Mapping):
            raise ProviderProtocolError(f"HTTP {resp.status} on prediction: {_message(data)[:200]}")
        return [read_prediction(data)]

    def poll(self, targets: Sequence[PollTarget], *, batch: bool = True) -> Flow[list[ProviderStatus]]:
        resp = yield self.build_poll(targets, batch=False)
        statuses = self.parse_poll(resp)
        return [st if st.task_id else ProviderStatus(targets[0].task_id, st.state, error_message=st.error_message) for st in statuses]

    def cancel(self, target: PollTarget) -> Flow[CancelOutcome] | None:
        return self._cancel(target)

    def _cancel(self, target: PollTarget) -> Flow[CancelOutcome]:
        path = str(target.handle.get("cancel") or f"/replicate/v1/predictions/{quote(target.task_id, safe='')}/cancel")
        resp = yield HttpRequest("POST", path)
        data = json_or_none(resp)
        if resp.status >= 300:
            return CancelOutcome(False, f"Replicate cancel answered HTTP {resp.status}: {_message(data)[:200]}")
        status = str(data.get("status") or "") if isinstance(data, Mapping) else ""
        return CancelOutcome(status in ("canceled", "cancelled"), f"Replicate cancel: prediction is {status or 'unknown'}")

    def read_callback(self, headers: Mapping[str, str], body: bytes, inputs: CallbackInputs) -> CallbackVerdict:
        data = json_or_none(HttpResponse(200, headers, body))
        if not isinstance(data, Mapping):
            raise ProviderProtocolError("webhook body is not a JSON object")
        if not inputs.secret:
            return CallbackVerdict(read_prediction(data), trust="hint")
        refused, delivery_id = verify_standard_webhook(inputs.secret, headers, body, now=inputs.now)
        if refused:
            return CallbackVerdict(None, refused=refused)
        return CallbackVerdict(read_prediction(data), trust="signed", delivery_id=delivery_id)
