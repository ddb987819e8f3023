"""Bodies of the Replicate routes: pure functions of (prediction, time, base URL).

The prediction object is §8.2's: `{id, model, version, input, logs, output, data_removed, error,
source, status, created_at, started_at, completed_at, urls{get, cancel, stream, web}, metrics}`.
`urls.get` / `urls.cancel` / `urls.stream` point at the upstream host `https://api.replicate.com`
(the relay passes Replicate's body through untouched: a client must keep the path and put the
relay in front); `urls.web` is the replicate.com page. Times are ISO 8601 with microseconds and
`Z`. Errors are Replicate's problem-details shape `{title, detail, status}`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from starlette.responses import JSONResponse

from simulator.replicate import FAIL_ERROR, FAILED, SUCCEEDED, Prediction, output_at

if TYPE_CHECKING:
    from simulator.state import SimState

UPSTREAM = "https://api.replicate.com"


def problem(status: int, title: str, detail: str) -> JSONResponse:
    return JSONResponse({"title": title, "detail": detail, "status": status}, status_code=status)


def not_found() -> JSONResponse:
    return problem(404, "Not found", "Not found.")


def iso(state: SimState, mono: float) -> str:
    return datetime.fromtimestamp(state.wall_ms(mono) / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def prediction(p: Prediction, state: SimState, now: float, base: str) -> dict[str, Any]:
    """The prediction object as it was at monotonic time `now` (also every webhook body)."""
    status = p.status_at(now)
    final = now >= p.end
    metrics: dict[str, Any] = {}
    if final and p.ran(p.end):
        metrics["predict_time"] = p.predict_time()
        metrics["total_time"] = round(p.end - p.created, 3)
        if status == SUCCEEDED and p.media_ext == "png":
            metrics["image_count"] = p.n_outputs
    upstream = f"{UPSTREAM}/v1/predictions/{p.id}"
    return {
        "id": p.id,
        "model": p.model,
        "version": p.version,
        "input": p.input,
        "logs": p.logs_at(now),
        "output": output_at(p, now, base),
        "data_removed": p.expired(now),
        "error": FAIL_ERROR if status == FAILED else None,
        "source": "api",
        "status": status,
        "created_at": iso(state, p.created),
        "started_at": iso(state, p.started) if p.ran(now) else None,
        "completed_at": iso(state, p.end) if final else None,
        "urls": {
            "get": upstream,
            "cancel": f"{upstream}/cancel",
            "stream": f"{upstream}/stream",
            "web": f"https://replicate.com/p/{p.id}",
        },
        "metrics": metrics,
    }
