"""Reading a generic new-api video task in any of the shapes stock new-api and its forks answer with
(providers.md "Generic new-api video tasks").

Shapes are told apart by the fields present, never by the route that was asked:
- the task DTO in new-api's envelope `{code: "success", data: {id: <row number>, task_id, status:
  NOT_START|SUBMITTED|QUEUED|IN_PROGRESS|SUCCESS|FAILURE, progress: "45%", fail_reason, result_url,
  data: <the vendor's own answer>}}` (`GET /v1/video/generations/{id}`). Its `id` is the relay's
  database row number, never the task: the task id is `task_id`;
- the OpenAI video object `{id, task_id, object: "video", model, status: queued|in_progress|
  completed|failed, progress: 45, metadata: {url}, error: {message}}` (`GET /v1/videos/{id}`);
- the flat answer of new-api's docs `{task_id, status: processing|succeeded|failed, url, metadata, error}`.
Status words go through the video families' synonym table (`providers.video.status`); a word nobody
documents keeps the job polling (State.UNKNOWN) and is logged once per process.

The result URL, first found: `result_url`, `metadata.url`, `video_url`, `url`, on success an http(s)
URL in `fail_reason` (older new-api rows kept it there), then an http(s) URL inside the vendor's
`data` (breadth first, at most `DATA_DEPTH` levels and `DATA_VALUES` values; keys that name the
input, an image, a frame, a cover, a thumbnail or audio are skipped, and a URL whose key or file
name says video wins over any other).
- A URL whose path ends in the relay's own content route of this task (`…/v1/videos/{task_id}/content`,
  what new-api writes when the vendor gave none, and for white-label channels) is fetched as that
  relay route: from K4U_BASE_URL with the key on the first request, never from the host it names.
- A completed OpenAI video object without any URL falls back to the content route
  `/v1/videos/{id}/content` (the OpenAI format serves the bytes there, as for Sora).
- A DTO or flat success without any URL fails the job, naming the places looked at: new-api writes
  the URL together with the status, so no later poll would bring one.
"""

from __future__ import annotations

import json
import re
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import islice
from typing import Any
from urllib.parse import unquote, urlsplit

from models.errors import ProviderProtocolError
from providers.base import OutputRef, ProviderStatus, State
from providers.outputs import kind_of
from providers.video import content_path
from providers.video.status import failure_reason, metadata_of, normalize_status, percent, unwrap
from providers.wire import str_or_none

DATA_DEPTH = 6  # levels of the vendor's `data` searched for a result URL
DATA_VALUES = 200  # values of it looked at, at most
URL_MAX = 4000
_SKIP_KEY = re.compile(r"input|request|param|prompt|image|img|frame|cover|thumb|poster|avatar|logo|mask|audio", re.I)
_CONTENT_ROUTE = re.compile(r"/v1/videos/([^/]+)/content$")
_RESULT_FIELDS = ("model", "action", "seconds", "size", "duration", "usage")
NO_URL = "the relay reported success but gave no result URL (looked at result_url, metadata.url, video_url, url and the vendor's data)"


@dataclass(frozen=True)
class Found:
    url: str
    source: str  # where it was: result_url, metadata.url, video_url, url, fail_reason, data.<path>


def task_id_of(d: Mapping[str, Any]) -> str | None:
    """`task_id`, else a string `id`: the DTO's numeric `id` is a database row, not the task."""
    return str_or_none(d.get("task_id")) or (d["id"] if isinstance(d.get("id"), str) and d["id"] else None)


def content_route_of(url: str, task_id: str | None) -> str | None:
    """The relay route `/v1/videos/{task_id}/content[?query]` when `url` is this task's content
    route on any host (new-api's proxy URL); None otherwise (another task's is not ours to fetch)."""
    parts = urlsplit(url)
    m = _CONTENT_ROUTE.search(parts.path)
    if task_id is None or m is None or unquote(m.group(1)) != task_id:
        return None
    return content_path(task_id) + (f"?{parts.query}" if parts.query else "")


def _usable(value: object, task_id: str | None) -> str | None:
    """The URL to fetch for a value the answer offers: an http(s) URL, or this task's content route."""
    if not isinstance(value, str) or not value.strip() or len(value) > URL_MAX:
        return None
    value = value.strip()
    route = content_route_of(value, task_id)
    if route is not None:
        return route
    return value if value[:8].lower().startswith(("http://", "https://")) else None


def _data_of(d: Mapping[str, Any]) -> Any:
    raw = d.get("data")
    if isinstance(raw, str) and raw.lstrip()[:1] in ("{", "[") and len(raw) <= 1_000_000:
        try:
            return json.loads(raw)
        except ValueError:
            return None
    return raw


def url_in_data(node: Any, task_id: str | None) -> Found | None:
    """A result URL inside the vendor's answer, breadth first and bounded (see the module's doc)."""
    queue: deque[tuple[Any, str, int]] = deque([(node, "data", 0)])
    looked, first = 0, None
    while queue and looked < DATA_VALUES:
        value, path, depth = queue.popleft()
        looked += 1
        if isinstance(value, str):
            url = _usable(value, task_id)
            if url is not None:
                if "video" in path.rsplit(".", 1)[-1].lower() or kind_of(url) == "video":
                    return Found(url, path)
                first = first or Found(url, path)
        elif depth < DATA_DEPTH and isinstance(value, Mapping):
            kids = ((v, f"{path}.{k}") for k, v in value.items() if not (isinstance(k, str) and _SKIP_KEY.search(k)))
            queue.extend((v, p, depth + 1) for v, p in islice(kids, DATA_VALUES))
        elif depth < DATA_DEPTH and isinstance(value, list):
            queue.extend((v, f"{path}[{i}]", depth + 1) for i, v in islice(enumerate(value), DATA_VALUES))
    return first


def find_result(d: Mapping[str, Any], meta: Mapping[str, Any], task_id: str | None, succeeded: bool) -> Found | None:
    for source, value in (("result_url", d.get("result_url")), ("metadata.url", meta.get("url")), ("video_url", d.get("video_url")), ("url", d.get("url"))):
        url = _usable(value, task_id)
        if url is not None:
            return Found(url, source)
    if succeeded:
        url = _usable(d.get("fail_reason"), task_id)
        if url is not None:
            return Found(url, "fail_reason")
    return url_in_data(_data_of(d), task_id)


def _expires(d: Mapping[str, Any]) -> datetime | None:
    raw = d.get("expires_at")
    if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not 0 < raw < 1e11:
        return None
    return datetime.fromtimestamp(raw, UTC)


def read_task(data: Any, *, task_id: str | None = None, video_api: bool = False) -> ProviderStatus:
    """One task in any of the shapes. `task_id`: the task asked about (when the answer names none);
    `video_api`: the answer came from the OpenAI video route, so a completed object without a URL
    means the content route."""
    if not isinstance(data, Mapping):
        raise ProviderProtocolError("video answer is not a JSON object")
    d = unwrap(data)
    enveloped = d is not data
    tid = task_id_of(d) or task_id
    raw = d.get("status")
    state = normalize_status(raw)
    meta = metadata_of(d)
    result: dict[str, Any] = {k: d[k] for k in _RESULT_FIELDS if d.get(k) not in (None, "", [], {})}
    if meta:
        result["metadata"] = meta
    outputs: list[OutputRef] = []
    error: str | None = None
    if state is State.SUCCEEDED:
        found = find_result(d, meta, tid, True)
        if found is None and tid and not enveloped and (d.get("object") == "video" or video_api):
            found = Found(content_path(tid), "content")
        if found is None:
            state, error = State.FAILED, NO_URL
        else:
            outputs = [OutputRef(found.url, "video", meta={"source": found.source})]
    elif state in (State.FAILED, State.CANCELLED):
        error = failure_reason(d) or f"the relay reported {str(raw)[:60]!r}"
    return ProviderStatus(
        task_id=tid,
        state=state,
        progress=100 if state is State.SUCCEEDED else percent(d.get("progress")),
        outputs=outputs,
        result_data=result,
        error_code="provider_failed" if state is State.FAILED else None,
        error_message=error,
        expires_at=_expires(d),
    )
