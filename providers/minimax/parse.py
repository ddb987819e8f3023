"""Reading MiniMax answers (providers-next.md §4.6) in both shapes the relays use.

- Native: `{task_id, status, file_id, video_width, video_height, base_resp: {status_code,
  status_msg}}`; errors arrive as HTTP 200 with a non-zero `base_resp.status_code`.
- new-api's task DTO: `{code, message, data: {task_id, status: SUCCESS|IN_PROGRESS|..., fail_reason,
  result_url?, data: <the native answer, where a file may already sit: data.data.file...>}}`.

Fields are read by presence, never by one enum: a status word nobody documents is UNKNOWN (keep
polling, logged once per process). What a base_resp code means depends on the request: on a submit
it is the relay's no (1002 "later" is retryable), on a query it is the *query's* failure, not the
task's (1002: ask again later; others: the answer is unreadable, the job is polled again until
its deadline), except beside a `Fail` status, where it is the task's reason.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

from models.errors import ErrorCode, ProviderProtocolError, ProviderUnavailable
from providers.base import TASK_ID_MAX, HttpResponse, OutputRef, ProviderStatus, State
from providers.wire import error_message, json_or_none, object_at, str_or_none

log = logging.getLogger("k4u.providers.minimax")

LATER = 1002  # rate limit: nothing was done, ask again later
_STATES: dict[str, State] = {
    # native video: Queueing -> Preparing -> Processing -> Success | Fail; TTS: Processing -> Success | Failed | Expired
    "queueing": State.QUEUED,
    "preparing": State.QUEUED,
    "processing": State.RUNNING,
    "success": State.SUCCEEDED,
    "fail": State.FAILED,
    "failed": State.FAILED,
    "expired": State.FAILED,
    # new-api's task enum (the DTO's own status)
    "not_start": State.QUEUED,
    "submitted": State.QUEUED,
    "queued": State.QUEUED,
    "in_progress": State.RUNNING,
    "failure": State.FAILED,
    "unknown": State.UNKNOWN,
}
_logged_unknown: set[str] = set()
_ARCHIVES = (".tar", ".tar.gz", ".tgz", ".zip")


def normalize_status(raw: object) -> State:
    """The state of a status word; UNKNOWN (keep polling) for one nobody documents."""
    value = str(raw if raw is not None else "").strip().lower()
    state = _STATES.get(value)
    if state is None:
        if value not in _logged_unknown and len(_logged_unknown) < 1000:
            _logged_unknown.add(value)
            log.warning("unknown MiniMax status %r: polling on", value[:80])
        return State.UNKNOWN
    return state


def base_resp(d: Mapping[str, Any]) -> tuple[int, str]:
    """(status_code, status_msg) of `base_resp`; (0, "") when absent or unreadable."""
    br = object_at(d, "base_resp")
    code = br.get("status_code")
    if isinstance(code, str) and code.strip().lstrip("-").isdigit():
        code = int(code)
    if isinstance(code, bool) or not isinstance(code, int):
        code = 0
    return code, str(br.get("status_msg") or "")


def relay_code(code: int) -> str:
    return f"minimax_{code}"


def body_of(resp: HttpResponse, what: str) -> Mapping[str, Any]:
    """The answer as a JSON object; ProviderProtocolError for anything else."""
    data = json_or_none(resp)
    if not isinstance(data, Mapping):
        raise ProviderProtocolError(f"HTTP {resp.status}: the {what} answer is not a JSON object")
    return data


def split_envelope(data: Mapping[str, Any]) -> tuple[Mapping[str, Any], Mapping[str, Any] | None]:
    """(native answer, new-api DTO or None). The DTO is `data` when the top level has no status of its own."""
    inner = data.get("data")
    if isinstance(inner, Mapping) and "status" not in data and "base_resp" not in data and ("status" in inner or "task_id" in inner):
        native = inner.get("data")
        return (native if isinstance(native, Mapping) else {}), inner
    return data, None


def envelope_failure(data: Mapping[str, Any]) -> str | None:
    """The message of a new-api error envelope (`{code: "task_not_exist", message}`), or None."""
    code = data.get("code")
    if code in (None, 0, "0", "success", "") or ("data" in data and isinstance(data.get("data"), Mapping)):
        return None
    return f"{code}: {error_message(data)}"[:300]


def check_query(code: int, message: str, what: str) -> None:
    """A non-zero base_resp on a read: the read failed, not the task (1002: later)."""
    if code == LATER:
        raise ProviderUnavailable(f"MiniMax {what}: {code} {message[:200]}")
    if code != 0:
        raise ProviderProtocolError(f"MiniMax {what} answered {code}: {message[:200]}")


def file_of(native: Mapping[str, Any]) -> Mapping[str, Any]:
    """The file object of a files/retrieve answer (or one a DTO carries along)."""
    return object_at(native, "file")


def expiry_of(file: Mapping[str, Any], url: str) -> datetime | None:
    """The file's explicit expiry: an `expires_at` field, else the `Expires` of a signed URL (OSS)."""
    raw: object = file.get("expires_at")
    if raw is None:
        query = parse_qs(urlsplit(url).query)
        values = query.get("Expires") or query.get("expires")
        raw = values[0] if values else None
    if isinstance(raw, str) and raw.isdigit():
        raw = int(raw)
    if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not 1e9 < raw < 1e11:
        return None
    return datetime.fromtimestamp(raw, UTC)


def output_of(file: Mapping[str, Any], url: str, kind: str) -> OutputRef:
    name = str_or_none(file.get("filename")) or ""
    meta = {"filename": name[:200]} if name else {}
    if isinstance(file.get("bytes"), int) and not isinstance(file.get("bytes"), bool):
        meta["bytes"] = file["bytes"]
    if file_id := file_id_of(file):
        meta["file_id"] = file_id
    if kind == "audio" and name.lower().endswith(_ARCHIVES):  # an archive of audio + subtitles
        kind = "file"
    return OutputRef(url, kind, meta=meta)


def file_id_of(d: Mapping[str, Any]) -> str | None:
    """`file_id` (a JSON number or string) as a string, whole: an id is never cut, so one longer
    than TASK_ID_MAX is not an id we can use (ProviderProtocolError: the job is polled again)."""
    file_id = str_or_none(d.get("file_id"))
    if file_id is not None and len(file_id) > TASK_ID_MAX:
        raise ProviderProtocolError(f"file_id of {len(file_id)} characters: {file_id[:80]}...")
    return file_id


def download_url(file: Mapping[str, Any]) -> str | None:
    url = file.get("download_url")
    return url.strip() if isinstance(url, str) and url.strip().lower().startswith(("http://", "https://")) else None


def failed(task_id: str, raw_status: object, code: int, message: str, dto: Mapping[str, Any] | None) -> ProviderStatus:
    """A task that ended badly, with the relay's reason. TTS `Expired`: the result is gone."""
    message = message if code else ""  # beside code 0 the status_msg is "success", no reason
    if str(raw_status).strip().lower() == "expired":
        why = message or "its result is no longer kept"
        return ProviderStatus(task_id, State.FAILED, error_code=ErrorCode.RESULT_EXPIRED, error_message=f"MiniMax reports the task Expired: {why}")
    reason = message or (str(dto.get("fail_reason") or "") if dto else "") or f"MiniMax reported {str(raw_status)[:40]!r}"
    return ProviderStatus(task_id, State.FAILED, error_code=relay_code(code) if code else "provider_failed", error_message=reason)


def result_fields(native: Mapping[str, Any]) -> dict[str, Any]:
    out = {k: native[k] for k in ("video_width", "video_height") if isinstance(native.get(k), int) and not isinstance(native.get(k), bool)}
    if file_id := file_id_of(native):
        out["file_id"] = file_id
    return out
