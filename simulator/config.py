"""Simulator configuration (`SimConfig`) and fault-injection counters (`Faults`).

Both are plain dataclasses. They can be changed at runtime through the admin
endpoints (`POST /_sim/config`, `POST /_sim/faults`); `update_config` and
`update_faults` validate those JSON payloads.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

import httpx

from simulator.chaos import RATE_FIELDS

ENVELOPES = ("native", "newapi")

# Fields of SimConfig that may be changed through `POST /_sim/config`.
_RUNTIME_FIELDS: dict[str, type] = {
    "envelope": str,
    "queue_s": float,
    "run_s": float,
    "legacy_result_in_fail_reason": bool,
    "callbacks_enabled": bool,
    "callback_duplicates": int,
    "callback_reorder": bool,
    "callback_interval_s": float,
    "callback_timeout_s": float,
    "slow_media_s": float,
    "public_base": str,
    "api_key": str,
    "reject_duplicate_external_id": bool,
    "mj_dedupe_code21": bool,
    "mj_list_enabled": bool,
    "mj_image_urls": bool,
    "mj_newapi_codes": bool,
    "suno_notify_enabled": bool,
    "suno_batch_enabled": bool,
    "seedance_prefixes": str,
    "seedance_envelope": bool,
    "seedance_batch_enabled": bool,
    "fault_seed": int,
    "error_5xx_rate": float,
    "rate_limit_rate": float,
    "accept_502_rate": float,
    "media_cut_rate": float,
    "long_task_id_rate": float,
    "retry_after": str,
    "replicate_webhook_secret": str,
    "webhook_retries": int,
    "webhook_retry_delay_s": float,
    "unrouted": str,
    "web_ui_fallback": bool,
    "vidu_prefixes": str,
    "unrouted_models": str,
    "oneshot_s": float,
}
# Test secret of the simulated Replicate account (Standard Webhooks `whsec_<base64 key>`).
REPLICATE_WEBHOOK_SECRET = "whsec_a2V5NHUtc2ltLXJlcGxpY2F0ZS1ob29r"


@dataclass
class SimConfig:
    """Behaviour of the fake Key4U relay (Kling, Midjourney, Suno, video, Replicate, fal).

    envelope: "native" (Kling official bodies) or "newapi" (new-api DTOs).
    queue_s / run_s: default time a task spends `submitted` / `processing`.
    clock: monotonic clock driving the task lifecycle (inject a fake in tests).
    legacy_result_in_fail_reason: newapi quirk - result URL in `fail_reason`.
    callbacks_enabled / callback_duplicates / callback_reorder: callback delivery.
    callback_interval_s: how often the background loop looks for due callbacks.
    callback_transport: optional httpx transport for callbacks (tests).
    slow_media_s: spread every media download over roughly this many seconds.
    public_base: override for the base URL put into result links (default:
        the base URL of the incoming request).
    api_key: if set, only this bearer key is accepted (else any non-empty key).
    reject_duplicate_external_id: refuse a create whose external_task_id exists.
    mj_dedupe_code21: an imagine whose prompt equals a finished imagine's (and a
        repeated button press) answers code 21 with the existing task.
    mj_list_enabled: serve `POST /mj/task/list-by-condition` (else HTTP 404).
    mj_image_urls: finished grid tasks also carry `imageUrls` (4 split images).
    mj_newapi_codes: rewrite submit codes like new-api (22 -> 1, and 21 -> 1
        except for modal actions); default off = raw proxy codes.
    suno_notify_enabled: POST Suno task objects to `notify_hook` (new-api drops it).
    suno_batch_enabled: serve `POST /suno/fetch` (else HTTP 404).
    seedance_prefixes: the route prefixes Seedance is served under, comma-separated (of
        `/volc/v1`, `/api/v3`); the others answer 404 like a relay without the route.
    seedance_envelope: Seedance answers in new-api's `{code, message, data}` envelope (else raw Ark bodies).
    seedance_batch_enabled: serve the Seedance batch query `GET {P}/contents/generations/tasks` (else HTTP 404).
    fault_seed: seed of the RNG behind the *_rate faults (`simulator.chaos`).
    error_5xx_rate: share of relay requests answered 500/502/503/504, not processed.
    rate_limit_rate: share of relay requests answered 429 with Retry-After, not processed.
    accept_502_rate: share of creates (Kling, Midjourney, Suno) that make the task, which
        will run and is paid, and are then answered 502.
    media_cut_rate: share of media downloads cut mid-stream (full Content-Length announced).
    long_task_id_rate: share of creates (Kling, Midjourney, Suno) whose task, made and paid, gets
        an id of `simulator.chaos.LONG_TASK_ID` (300) characters.
    retry_after: the `Retry-After` header of the 429s that `rate_limit_next` / `rate_limit_rate`
        inject, as sent ("1"; a day: "86400"; "inf"; an HTTP-date).
    replicate_webhook_secret: `whsec_<base64>` key that signs Replicate webhooks (Standard Webhooks).
    webhook_retries / webhook_retry_delay_s: extra attempts of a signed Replicate / fal webhook
        answered 5xx (Replicate) or non-2xx (fal), and the pause between attempts.
    unrouted: comma-separated path prefixes answered as routes the relay does not have
        (`/replicate,/fal-ai`: a relay without those families; `simulator.unrouted`).
    web_ui_fallback: answer unknown paths outside /v1, /api and /assets with HTTP 200 and an HTML
        page, as a stock new-api serves its web console there (default: new-api's 404 JSON).
    unrouted_models: models the generic new-api video routes answer 503 "no available channel"
        for (comma-separated; `*`: every model they serve), as new-api does for a model no
        channel of the key's group serves (`simulator.newapi_video`).
    webhook_clock: wall clock (unix seconds) of the `webhook-timestamp` / `X-Fal-Webhook-Timestamp`
        headers; the time a delivery is *sent*, so it ignores `/_sim/advance` (inject in tests).
    vidu_prefixes: the Vidu route prefixes served (comma-separated, of `/ent/v2` and `/vidu/ent/v2`);
        the others answer 404 like a relay that routes Vidu elsewhere.
    oneshot_s: how long a synchronous generation (`/v1/images/*`, `/v1/audio/speech`) holds its
        request before answering, in real seconds (`[sim:delay=N]` in a prompt overrides it).
    """

    envelope: str = "native"
    queue_s: float = 0.5
    run_s: float = 2.0
    clock: Callable[[], float] = time.monotonic
    legacy_result_in_fail_reason: bool = False
    callbacks_enabled: bool = True
    callback_duplicates: int = 0
    callback_reorder: bool = False
    callback_interval_s: float = 0.1
    callback_timeout_s: float = 5.0
    callback_transport: httpx.AsyncBaseTransport | None = None
    slow_media_s: float = 0.0
    public_base: str | None = None
    api_key: str | None = None
    reject_duplicate_external_id: bool = False
    mj_dedupe_code21: bool = True
    mj_list_enabled: bool = True
    mj_image_urls: bool = True
    mj_newapi_codes: bool = False
    suno_notify_enabled: bool = False
    suno_batch_enabled: bool = True
    seedance_prefixes: str = "/volc/v1,/api/v3"
    seedance_envelope: bool = False
    seedance_batch_enabled: bool = True
    fault_seed: int = 0
    error_5xx_rate: float = 0.0
    rate_limit_rate: float = 0.0
    accept_502_rate: float = 0.0
    media_cut_rate: float = 0.0
    long_task_id_rate: float = 0.0
    retry_after: str = "1"
    replicate_webhook_secret: str = REPLICATE_WEBHOOK_SECRET
    webhook_retries: int = 3
    webhook_retry_delay_s: float = 0.2
    webhook_clock: Callable[[], float] = time.time
    unrouted: str = ""
    web_ui_fallback: bool = False
    vidu_prefixes: str = "/ent/v2,/vidu/ent/v2"
    unrouted_models: str = ""
    oneshot_s: float = 0.0

    def __post_init__(self) -> None:
        if self.envelope not in ENVELOPES:
            raise ValueError(f"envelope must be one of {ENVELOPES}, got {self.envelope!r}")
        for name in RATE_FIELDS:
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")

    def public_view(self) -> dict[str, Any]:
        """JSON-safe view of the runtime-changeable fields (never the api key)."""
        out: dict[str, Any] = {k: getattr(self, k) for k in _RUNTIME_FIELDS if k != "api_key"}
        out["api_key_required"] = self.api_key is not None
        return out


def update_config(config: SimConfig, payload: dict[str, Any]) -> None:
    """Apply a JSON patch to `config`; raises ValueError on bad keys/values."""
    for key, value in payload.items():
        kind = _RUNTIME_FIELDS.get(key)
        if kind is None:
            raise ValueError(f"unknown or read-only config field: {key}")
        if value is None and key in ("public_base", "api_key"):
            setattr(config, key, None)
            continue
        if kind is bool and not isinstance(value, bool):
            raise ValueError(f"{key} must be a boolean")
        if kind in (int, float) and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise ValueError(f"{key} must be a number")
        if kind is str and not isinstance(value, str):
            raise ValueError(f"{key} must be a string")
        if key == "envelope" and value not in ENVELOPES:
            raise ValueError(f"envelope must be one of {ENVELOPES}")
        if kind in (int, float) and value < 0:
            raise ValueError(f"{key} must be >= 0")
        if key in RATE_FIELDS and value > 1:
            raise ValueError(f"{key} must be between 0 and 1")
        if key in ("fault_seed", "webhook_retries") and value != int(value):
            raise ValueError(f"{key} must be an integer")
        if key == "unrouted" and any(p.strip().startswith("/_sim") or not p.strip().startswith("/") for p in value.split(",") if p.strip()):
            raise ValueError("unrouted is a comma-separated list of path prefixes like /replicate, never /_sim")
        if key == "vidu_prefixes" and not {p.strip().rstrip("/") for p in value.split(",")} <= {"/ent/v2", "/vidu/ent/v2"}:
            raise ValueError("vidu_prefixes names /ent/v2 and /vidu/ent/v2 only")
        if key == "replicate_webhook_secret" and not value.startswith("whsec_"):
            raise ValueError("replicate_webhook_secret must start with whsec_")
        setattr(config, key, kind(value))


@dataclass
class Faults:
    """Pending one-shot faults, each a countdown of requests still to affect."""

    rate_limit_next: int = 0
    error_5xx_next: int = 0
    error_5xx_status: int = 500
    error_5xx_after_accept: bool = False
    slow_next: int = 0
    slow_delay_s: float = 2.0
    timeout_after_accept_next: int = 0
    timeout_delay_s: float = 30.0
    mj_queue_full_next: int = 0  # Midjourney submits answered with code 23

    def view(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


_COUNT_KEYS = ("rate_limit_next", "error_5xx_next", "slow_next", "timeout_after_accept_next", "mj_queue_full_next")


def update_faults(faults: Faults, payload: dict[str, Any]) -> None:
    """Apply `POST /_sim/faults` JSON.

    Accepted keys: rate_limit_next, error_5xx_next (+ status, after_accept),
    slow_next (+ delay_s), timeout_after_accept_next (+ delay_s),
    mj_queue_full_next.
    `delay_s` applies to whichever of slow_next / timeout_after_accept_next is
    in the same payload.
    The probabilistic faults (`simulator.chaos.RATE_FIELDS` and `fault_seed`) are SimConfig
    fields: the admin endpoint passes them to `update_config`.
    """
    known = set(_COUNT_KEYS) | {"status", "delay_s", "after_accept"}
    unknown = set(payload) - known
    if unknown:
        raise ValueError(f"unknown fault keys: {sorted(unknown)}")
    for key in _COUNT_KEYS:
        if key in payload:
            value = payload[key]
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{key} must be a non-negative integer")
            setattr(faults, key, value)
    if "status" in payload:
        status = payload["status"]
        if isinstance(status, bool) or not isinstance(status, int) or not 500 <= status <= 599:
            raise ValueError("status must be an integer 500..599")
        faults.error_5xx_status = status
    if "after_accept" in payload:
        if not isinstance(payload["after_accept"], bool):
            raise ValueError("after_accept must be a boolean")
        faults.error_5xx_after_accept = payload["after_accept"]
    if "delay_s" in payload:
        delay = payload["delay_s"]
        if isinstance(delay, bool) or not isinstance(delay, (int, float)) or delay < 0:
            raise ValueError("delay_s must be a non-negative number")
        if "slow_next" in payload:
            faults.slow_delay_s = float(delay)
        if "timeout_after_accept_next" in payload:
            faults.timeout_delay_s = float(delay)
        if "slow_next" not in payload and "timeout_after_accept_next" not in payload:
            faults.slow_delay_s = faults.timeout_delay_s = float(delay)
