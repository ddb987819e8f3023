"""Reading relay bodies the same way in every family: JSON or nothing, the error message in any of
the shapes the relays use, "task not found" in any of their spellings."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from models.errors import ProviderProtocolError
from providers.base import HttpResponse, ProviderStatus, State

_NOT_FOUND = ("task_no_found", "task_not_exist", "not_found", "not found", "not_exist", "not exist", "不存在")


def json_or_none(resp: HttpResponse) -> Any:
    try:
        return resp.json()
    except ProviderProtocolError:
        return None


def error_message(data: Any) -> str:
    """`{error: {message}}` (OpenAI style), `description` (midjourney-proxy), `message` / `msg`,
    else a plain-string `error` (the unified video relays)."""
    if not isinstance(data, Mapping):
        return ""
    if isinstance(data.get("error"), Mapping):
        return str(data["error"].get("message") or "")
    found = data.get("description") or data.get("message") or data.get("msg")
    if not found and isinstance(data.get("error"), str):
        found = data["error"]
    return str(found or "")


def is_not_found(data: Any) -> bool:
    code = data.get("code", "") if isinstance(data, Mapping) else ""
    text = f"{code} {error_message(data)}".lower()
    return any(s in text for s in _NOT_FOUND)


def object_at(d: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    """d[key] if it is a JSON object, else an empty one: relays omit nested objects, send null or
    another type; callers read it with .get() either way."""
    v = d.get(key)
    return v if isinstance(v, Mapping) else {}


def str_or_none(v: object) -> str | None:
    return None if v in (None, "") or isinstance(v, (list, dict)) else str(v)


def upstream_path(url: object) -> str | None:
    """The path of a link a relay passes on from its upstream (Replicate's `urls.get`, fal's
    `status_url`), which points at the upstream's host: only the path is sent to the relay. None
    when there is no link or its path is not a plain absolute one (no `..`, no `//`)."""
    if not isinstance(url, str) or not url:
        return None
    path = urlsplit(url).path
    if not path.startswith("/") or ".." in path or "//" in path:
        return None
    return path


def parse_progress(raw: object) -> int | None:
    """Progress as an int percent from 55, 0.55, "55%" or "55"."""
    if raw is None or raw == "":
        return None
    try:
        if isinstance(raw, str):
            value = float(raw.strip().rstrip("%"))
        elif isinstance(raw, (int, float)):
            value = float(raw)
        else:
            return None
    except ValueError:
        return None
    if isinstance(raw, float) and 0 < value <= 1 and not isinstance(raw, bool):
        value *= 100
    return max(0, min(100, round(value)))


def query_failure(resp: HttpResponse, data: Any, task_id: str | None, message: str, what: str = "query") -> ProviderStatus | None:
    """What a status read's answer says when it is not the task's status: "not found" (400/404 in
    any spelling) is UNKNOWN with the relay's `message` (the task is polled again); any other HTTP
    error raises ProviderProtocolError naming `what`; None for an answer to read on."""
    if resp.status in (400, 404) and is_not_found(data):
        return ProviderStatus(task_id, State.UNKNOWN, error_message=message)
    if resp.status >= 300:
        raise ProviderProtocolError(f"HTTP {resp.status} on {what}: {message[:200]}")
    return None
