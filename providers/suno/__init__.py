"""Suno through the relay, Suno-API "Plato" format (providers.md §7): `music` and `lyrics`.

Quirks handled here:
- Submit answers `{code: "success", message, data: "<task id>"}`; any other `code` is a refusal even
  with HTTP 200 (§7.1, §12). new-api errors come as `{code, message, data: null}` or
  `{error: {message, type}}` (§2.4). The id is whatever `data` holds: new-api mints `task_…`,
  passthrough relays return the upstream uuid (§2.2).
- `POST /suno/fetch {ids}` answers every known task at once and omits unknown ids; the single
  `GET /suno/fetch/{id}` answers HTTP 400 `task_not_exist` for an unknown id (§7.2, §2.4, §12).
  Tasks arrive native or as the new-api DTO (§2.5); both keep the upstream result in `data`.
  Task enum as §2.7 / §7.2, plus the `FAIL` new-api docs mention.
- Clip status is not the task status (§7.2): a `streaming` clip's `audio_url` is a temporary
  stream (`audiopipe.suno.ai`, §7.4), so only `complete` clips are downloaded and a SUCCESS task
  with a clip still streaming is polled again. Suno-API derives the task status from its clips
  and reports FAILURE when one of two clips errors: a task with a complete clip succeeds with
  that clip's assets and lists the others under `failed_clips`.
- `notify_hook` is sent when we have a public URL, but new-api drops it (§7.3): notices are hints.
- No client-supplied id and no lookup (§12): an unknown submit outcome cannot be reconciled.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

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
from providers.rejections import submit_rejection
from providers.suno.inputs import LyricsInput, MusicInput, infer_mode
from providers.suno.parse import CLIP_ERROR, LATER, code_of, parse_task, unknown
from providers.wire import error_message, is_not_found, json_or_none

__all__ = ["FETCH_PATH", "SUBMIT_PATHS", "LyricsInput", "MusicInput", "SunoAdapter", "parse_task"]

SUBMIT_PATHS = {"music": "/suno/submit/music", "lyrics": "/suno/submit/lyrics"}
FETCH_PATH = "/suno/fetch"


class SunoAdapter(AdapterDefaults):
    name = "suno"
    operations: Mapping[str, Operation] = {
        "music": Operation("music", MusicInput, "Songs (normally 2 clips) in inspiration, custom or continuation mode (/suno/submit/music)"),
        "lyrics": Operation("lyrics", LyricsInput, "Lyrics from a prompt (/suno/submit/lyrics)"),
    }
    # ~96 s submit → finish (§7.4); relay-side result lifetime undocumented.
    capabilities = Capabilities(
        max_batch=100,
        callback_trust="hint",
        result_ttl_s=None,
        expected_s=100.0,
        deadline_s=1800.0,
        lost_submit=LostSubmit.NONE,
    )

    def parent_of(self, operation: str, input: Mapping[str, Any]) -> ParentSpec | None:
        if operation == "music" and infer_mode(input) == "continuation" and input.get("job_id"):
            return ParentSpec(field="job_id", job_id=str(input["job_id"]), statuses=frozenset({"succeeded"}))
        return None

    def check_parent(self, operation: str, input: Mapping[str, Any], parent: ParentRef) -> None:
        if operation != "music":
            return
        if parent.operation != "music":
            raise ValueError(f"job {parent.job_id} is a {parent.operation} job; continuation needs a music job")
        if not parent.task_id:
            raise ValueError(f"job {parent.job_id} has no relay task id")
        clips = (parent.result or {}).get("clips")
        ok = [str(c["id"]) for c in clips or [] if isinstance(c, Mapping) and c.get("id") and c.get("status") not in CLIP_ERROR]
        want = input.get("continue_clip_id")
        if want not in ok:
            raise ValueError(f"job {parent.job_id} has no usable clip {want!r}; available clip ids: {', '.join(ok) or 'none'}")

    def build_submit(self, operation: str, input: Mapping[str, Any], ctx: SubmitContext) -> HttpRequest:
        body = {k: v for k, v in input.items() if k not in ("mode", "job_id")}
        if operation == "music" and input.get("job_id"):
            if ctx.parent is None or not ctx.parent.task_id:
                raise ValueError(f"continuation of job {input['job_id']} needs that job's relay task id")
            body["task_id"] = ctx.parent.task_id
        if ctx.callback_url:
            body["notify_hook"] = ctx.callback_url
        return HttpRequest("POST", SUBMIT_PATHS[operation], json=body)

    def parse_submit(self, resp: HttpResponse) -> Submitted | Rejected:
        data = json_or_none(resp)
        code, message = code_of(data), error_message(data)
        if resp.status >= 300:
            return submit_rejection(resp, message or code)
        if not isinstance(data, dict):
            raise ProviderProtocolError("submit answer is not a JSON object")
        if code != "success":
            if not code:
                raise ProviderProtocolError("submit answer carries neither a code nor an error")
            return Rejected(f"suno_{code}", message or code, bool(LATER.search(f"{code} {message}")))
        inner = data.get("data")
        task_id = (inner.get("task_id") or inner.get("id")) if isinstance(inner, dict) else inner
        if isinstance(task_id, bool) or not isinstance(task_id, (str, int)) or task_id == "":
            raise ProviderProtocolError("submit answer carries no task id")
        return Submitted(str(task_id))

    def build_poll(self, targets: Sequence[PollTarget], *, batch: bool = True) -> HttpRequest:
        if batch:
            if not 0 < len(targets) <= self.capabilities.max_batch:
                raise ValueError(f"a Suno batch query takes 1..{self.capabilities.max_batch} ids")
            return HttpRequest("POST", FETCH_PATH, json={"ids": [t.task_id for t in targets]})
        if len(targets) != 1:
            raise ValueError("the single-task query takes exactly one target")
        return HttpRequest("GET", f"{FETCH_PATH}/{quote(targets[0].task_id, safe='')}")

    def parse_poll(self, resp: HttpResponse) -> list[ProviderStatus]:
        data = json_or_none(resp)
        if resp.status == 404 or (resp.status == 400 and is_not_found(data)):
            return [unknown(error_message(data) or f"HTTP {resp.status}")]
        if resp.status >= 300:
            raise ProviderProtocolError(f"HTTP {resp.status} on fetch: {error_message(data)[:200]}")
        if isinstance(data, dict) and ("code" in data or "error" in data):
            if code_of(data) != "success":
                return [unknown(error_message(data) or code_of(data))]
            data = data.get("data")
        if isinstance(data, list):
            return [parse_task(t) for t in data if isinstance(t, Mapping)]
        if isinstance(data, dict):
            return [parse_task(data)]
        if data is None:
            return [unknown("the relay returned no task")]
        raise ProviderProtocolError("fetch answer is neither a task nor a list of tasks")

    def parse_callback(self, headers: Mapping[str, str], body: bytes) -> ProviderStatus:
        data = json_or_none(HttpResponse(200, headers, body))
        if not isinstance(data, dict):
            raise ProviderProtocolError("callback body is not a JSON object")
        inner = data.get("data")
        if "code" in data and isinstance(inner, list) and inner and isinstance(inner[0], Mapping):
            inner = inner[0]
        return parse_task(inner if "code" in data and isinstance(inner, Mapping) else data)
