"""Bodies of the fal routes: pure functions of (request, time, base URL).

* submit: `{request_id, response_url, status_url, cancel_url, status: "IN_QUEUE", queue_position,
  logs: null, metrics: {}}` (+ `gateway_request_id` when a webhook was asked for). The three URLs
  are on `https://queue.fal.run` and use the *base* model id (sub-path rule, §9.2).
* status: `{status, request_id, response_url, queue_position?, logs, metrics?}`; `logs` is a list
  of `{message, level, source, timestamp}` with `?logs=1`, else null.
* result: images models `{images: [{url, width, height, content_type}], timings: {inference},
  seed, has_nsfw_concepts: [false...], prompt}`; video models (path contains "video")
  `{video: {url, content_type, file_size}}`. Error bodies are `{detail: ...}` (`simulator.fal`).
* webhook: `{request_id, gateway_request_id, status: "OK"|"ERROR", payload, error}`.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from simulator.fal import (
    CANCELLED,
    CANCELLED_DETAIL,
    COMPLETED,
    FAIL,
    FAIL_DETAIL,
    IN_QUEUE,
    OK,
    QUEUE_HOST,
    RESULT_ERROR,
    FalRequest,
)
from simulator.media import MP4_BYTES, PNG_BYTES, PNG_SIZE
from simulator.timeline import strip_directives

if TYPE_CHECKING:
    from simulator.state import SimState

SEED = 1234567
LOG_MARKS = ((0.0, "Loading the model"), (0.25, "Generating: 25%"), (0.5, "Generating: 50%"), (0.75, "Generating: 75%"))
VALIDATION_DETAIL = [{"loc": ["body", "prompt"], "msg": "The prompt was flagged by the content checker (simulated)", "type": "content_policy_violation"}]


def queue_urls(r: FalRequest) -> dict[str, str]:
    base = f"{QUEUE_HOST}/{r.base}/requests/{r.id}"
    return {"response_url": base, "status_url": f"{base}/status", "cancel_url": f"{base}/cancel"}


def submit(r: FalRequest) -> dict[str, Any]:
    body: dict[str, Any] = {"request_id": r.id, **queue_urls(r), "status": IN_QUEUE, "queue_position": r.queue_position(r.created), "logs": None, "metrics": {}}
    if r.webhook:
        body["gateway_request_id"] = r.gateway_request_id
    return body


def _logs(r: FalRequest, state: SimState, now: float) -> list[dict[str, Any]]:
    out = []
    for fraction, message in LOG_MARKS:
        at = r.started + r.run_s * fraction
        if at <= now and at < r.end:
            stamp = datetime.fromtimestamp(state.wall_ms(at) / 1000, tz=UTC).isoformat()
            out.append({"message": message, "level": "INFO", "source": "user", "timestamp": stamp})
    return out


def status(r: FalRequest, state: SimState, now: float, with_logs: bool) -> dict[str, Any]:
    word = r.status_at(now)
    body: dict[str, Any] = {"status": word, "request_id": r.id, "response_url": queue_urls(r)["response_url"]}
    if word == IN_QUEUE:
        body["queue_position"] = r.queue_position(now)
    body["logs"] = _logs(r, state, now) if with_logs else None
    if word == COMPLETED:
        body["metrics"] = {"inference_time": r.inference_time()} if r.outcome != CANCELLED else {}
    return body


def media_url(r: FalRequest, base: str, i: int = 0) -> str:
    return f"{base}/_sim/media/fal/{r.id}.mp4" if r.is_video else f"{base}/_sim/media/fal/{r.id}_{i}.png"


def result(r: FalRequest, base: str) -> dict[str, Any]:
    """The successful result JSON."""
    if r.is_video:
        return {"video": {"url": media_url(r, base), "content_type": "video/mp4", "file_size": len(MP4_BYTES)}}
    data_uri = "data:image/png;base64," + base64.b64encode(PNG_BYTES).decode()
    images = [
        {"url": data_uri if r.plan.data_output else media_url(r, base, i), "width": PNG_SIZE, "height": PNG_SIZE, "content_type": "image/png"}
        for i in range(r.n_images())
    ]
    return {
        "images": images,
        "timings": {"inference": r.inference_time()},
        "seed": SEED,
        "has_nsfw_concepts": [False] * len(images),
        "prompt": strip_directives(r.prompt),
    }


def outcome_answer(r: FalRequest, base: str) -> tuple[int, dict[str, Any] | list[Any]]:
    """(HTTP status, body) of the result GET of a COMPLETED request (also the sync answer)."""
    kind = r.outcome
    if kind == OK:
        return 200, result(r, base)
    if kind == RESULT_ERROR:
        return 422, {"detail": VALIDATION_DETAIL}
    if kind == FAIL:
        return 500, {"detail": FAIL_DETAIL}
    return 400, {"detail": CANCELLED_DETAIL}


def webhook(r: FalRequest, base: str) -> dict[str, Any]:
    """The completion webhook body: OK with the result, or ERROR with the error body as payload."""
    code, body = outcome_answer(r, base)
    ok = code == 200
    return {
        "request_id": r.id,
        "gateway_request_id": r.gateway_request_id,
        "status": "OK" if ok else "ERROR",
        "payload": body,
        "error": None if ok else f"Invalid status code: {code}",
    }
