"""Seedance (Doubao video) through the relay (providers-next.md §4.2): provider `seedance`, operation `video`.

Routes, under the family's route prefix (documented default `/volc/v1`; `/api/v3` on relays that
keep Ark's own paths: `K4U_ROUTE_PREFIXES="seedance=/api/v3"`):
- submit `POST {P}/contents/generations/tasks` `{model, content[], ratio, duration, ...}` ->
  `{id: "cgt-20250629201507-n6k56"}`, raw or in new-api's `{code, message, data}` envelope;
- poll by the **batch query** `GET {P}/contents/generations/tasks?page_num=1&page_size=N&filter.task_ids=a&filter.task_ids=b`
  (up to 500 ids, the key repeated) -> `{total, items}`; a task missing from the page is not an
  answer about it (the engine polls it again); a relay that does not route the list answers
  404/405/501, or one that ignores the filter lists tasks it was not asked about, and the engine
  falls back to `GET {P}/contents/generations/tasks/{id}`;
- cancel `DELETE {P}/contents/generations/tasks/{id}` (the relay cancels queued tasks only).
Money: the submit takes no client id and nothing can find a task by one of ours, so a submit whose
answer was lost fails `submit_outcome_unknown` (never sent twice). `callback_url` is forwarded when
the job has one; a callback only makes the job due for a poll (hint).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

from models.errors import BatchUnsupported, ProviderProtocolError
from providers.base import (
    AdapterDefaults,
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
from providers.rejections import submit_rejection
from providers.seedance.inputs import MODELS, SeedanceVideoInput, content_items
from providers.seedance.status import is_success_code, read_page, read_task, unwrap
from providers.wire import error_message, is_not_found, json_or_none, str_or_none

__all__ = ["MODELS", "PREFIX", "TASKS_PATH", "SeedanceAdapter", "SeedanceVideoInput", "read_task"]

PREFIX = "/volc/v1"
TASKS_PATH = f"{PREFIX}/contents/generations/tasks"
MAX_BATCH = 500
_FRIENDLY = ("prompt", "first_frame", "last_frame", "reference_images", "reference_videos", "reference_audios", "content")


def task_path(task_id: str) -> str:
    return f"{TASKS_PATH}/{quote(task_id, safe='')}"


class SeedanceAdapter(AdapterDefaults):
    name = "seedance"
    operations: Mapping[str, Operation] = {
        "video": Operation(
            "video",
            SeedanceVideoInput,
            "Text / first frame / first+last frame / reference images (2.0: reference video and audio) to video (/volc/v1/contents/generations/tasks)",
        ),
    }
    # 1-3 min typical; signed result URLs live 24 h (X-Tos-Expires=86400).
    capabilities = Capabilities(
        max_batch=MAX_BATCH,
        callback_trust="hint",
        result_ttl_s=86400,
        expected_s=90.0,
        deadline_s=3600.0,
        lost_submit=LostSubmit.NONE,
        cancels=True,
        route_prefix=PREFIX,
    )

    # -- submit -------------------------------------------------------------------------------
    def build_submit(self, operation: str, input: Mapping[str, Any], ctx: SubmitContext) -> HttpRequest:
        body: dict[str, Any] = {"model": input.get("model") or next(iter(MODELS)), "content": content_items(input)}
        body |= {k: v for k, v in input.items() if k not in _FRIENDLY and k != "model"}
        if ctx.callback_url:
            body["callback_url"] = ctx.callback_url
        return HttpRequest("POST", TASKS_PATH, json=body)

    def parse_submit(self, resp: HttpResponse) -> Submitted | Rejected:
        data = json_or_none(resp)
        message = error_message(data)
        if resp.status >= 300:
            rejected = submit_rejection(resp, message)
            err = data.get("error") if isinstance(data, Mapping) else None
            code = str_or_none(err.get("code")) if isinstance(err, Mapping) else None
            if code and rejected.code == "bad_request":  # a final no: keep Ark's own code (InputTextSensitiveContentDetected...)
                return Rejected(code, rejected.message, False)
            return rejected
        if not isinstance(data, Mapping):
            raise ProviderProtocolError("submit answer is not a JSON object")
        inner = data.get("data")
        if "id" in data:
            task_id = str_or_none(data.get("id"))
        elif isinstance(inner, Mapping):
            native, dto = unwrap(data)
            task_id = str_or_none(native.get("id")) or str_or_none(dto.get("task_id")) or str_or_none(inner.get("task_id")) or str_or_none(inner.get("id"))
        else:
            task_id = str_or_none(inner) if isinstance(inner, (str, int)) and not isinstance(inner, bool) else None
        if not task_id:
            code = data.get("code")
            if (message and not is_success_code(code)) or isinstance(data.get("error"), Mapping):
                err = data.get("error")
                relay_code = err.get("code") if isinstance(err, Mapping) and err.get("code") else code
                return Rejected(str(relay_code)[:60] if relay_code else "bad_request", message or str(relay_code), False)
            raise ProviderProtocolError("submit answer carries no task id")
        return Submitted(task_id)

    # -- poll ---------------------------------------------------------------------------------
    def build_poll(self, targets: Sequence[PollTarget], *, batch: bool = True) -> HttpRequest:
        if batch:
            if not 0 < len(targets) <= MAX_BATCH:
                raise ValueError(f"a Seedance batch query takes 1..{MAX_BATCH} ids")
            ids = [t.task_id for t in targets]
            return HttpRequest("GET", TASKS_PATH, query={"page_num": "1", "page_size": str(len(ids)), "filter.task_ids": ids})
        if len(targets) != 1:
            raise ValueError("the single-task query takes exactly one target")
        return HttpRequest("GET", task_path(targets[0].task_id))

    def poll(self, targets: Sequence[PollTarget], *, batch: bool = True) -> Flow[list[ProviderStatus]]:
        resp = yield self.build_poll(targets, batch=batch)
        data = json_or_none(resp)
        if batch:
            if resp.status in (404, 405, 501):
                raise BatchUnsupported(f"batch query answered HTTP {resp.status}")
            if resp.status >= 300:
                raise ProviderProtocolError(f"HTTP {resp.status} on the batch query: {error_message(data)[:200]}")
            statuses = read_page(data)
            asked = {t.task_id for t in targets}
            if any(st.task_id not in asked for st in statuses):  # a relay that ignores the filter lists the newest tasks
                raise BatchUnsupported("the batch query answered tasks it was not asked about (filter.task_ids ignored)")
            return statuses
        t = targets[0]
        if resp.status in (400, 404) and (resp.status == 404 or is_not_found(data)):
            return [ProviderStatus(t.task_id, State.UNKNOWN, error_message=error_message(data) or f"HTTP {resp.status}")]
        if resp.status >= 300:
            raise ProviderProtocolError(f"HTTP {resp.status} on query: {error_message(data)[:200]}")
        if isinstance(data, Mapping) and "code" in data and not is_success_code(data.get("code")) and not isinstance(data.get("data"), Mapping):
            return [ProviderStatus(t.task_id, State.UNKNOWN, error_message=error_message(data) or str(data.get("code")))]
        st = read_task(data)
        return [st if st.task_id else _with_id(st, t.task_id)]

    # -- cancel -------------------------------------------------------------------------------
    def cancel(self, target: PollTarget) -> Flow[CancelOutcome] | None:
        return self._cancel(target)

    def _cancel(self, target: PollTarget) -> Flow[CancelOutcome]:
        resp = yield HttpRequest("DELETE", task_path(target.task_id))
        data = json_or_none(resp)
        if resp.status >= 300 or (isinstance(data, Mapping) and not is_success_code(data.get("code")) and "error" not in data and data.get("code")):
            return CancelOutcome(False, f"Seedance cancel answered HTTP {resp.status}: {error_message(data)[:200] or 'no detail'}")
        if isinstance(data, Mapping) and isinstance(data.get("error"), Mapping):
            return CancelOutcome(False, f"Seedance cancel refused: {error_message(data)[:200]}")
        return CancelOutcome(True, "Seedance cancel: the queued task was cancelled")

    # -- callbacks ----------------------------------------------------------------------------
    def parse_callback(self, headers: Mapping[str, str], body: bytes) -> ProviderStatus:
        data = json_or_none(HttpResponse(200, headers, body))
        if not isinstance(data, Mapping):
            raise ProviderProtocolError("callback body is not a JSON object")
        return read_task(data)


def _with_id(st: ProviderStatus, task_id: str) -> ProviderStatus:
    return ProviderStatus(task_id, st.state, st.progress, st.outputs, st.result_data, st.error_code, st.error_message, st.external_id, st.expires_at, st.detail)
