"""Signed, retried webhooks of the Replicate and fal fakes (providers.md §8.3, §9.3).

`collect_due(state)` (called by `simulator.callbacks` on every loop turn) turns events that have
happened into `SignedDelivery`s, one ordered list per task; `post` sends one with its retries.
Unlike the unsigned Kling / Midjourney / Suno callbacks, these are signed and retried:

* Replicate: Standard Webhooks. `webhook-id` (`msg_...`, the same on every retry of one
  delivery), `webhook-timestamp` (unix s, the time of the attempt) and `webhook-signature` =
  `"v1,<stale> v1,<valid>"`: base64 HMAC-SHA256 of `"{id}.{timestamp}.{body}"`, the first with a
  key that is not the account's (as during a secret rotation), so a verifier must try each
  entry. Key = base64-decoded part of `SimConfig.replicate_webhook_secret` after `whsec_`.
  An answer of 5xx (or no answer) is retried; 2xx-4xx ends the delivery.
* fal: `X-Fal-Webhook-Request-Id`, `-User-Id`, `-Timestamp`, `-Signature` = hex Ed25519 signature
  of `request_id \\n user_id \\n timestamp \\n hex(sha256(body))` with `SimState.fal_key` (JWKS at
  `/_sim/fal/jwks.json`). Any non-2xx answer (or none) is retried.

Up to `webhook_retries` extra attempts, `webhook_retry_delay_s` apart. Every attempt is a row of
`/_sim/callbacks`: `{family, task_id, status (= event), event, url, webhook_id, delivery_id,
attempt, http_status, ok}`. `callbacks_enabled: false` drops them like the other callbacks.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import json
import logging
import secrets
import string
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx

from simulator import fal, fal_views, replicate_views
from simulator.fal import CANCELLED, USER_ID

if TYPE_CHECKING:
    from simulator.state import SimState

log = logging.getLogger("simulator.signed_hooks")
_LOG_LIMIT = 1000
_ALNUM = string.ascii_letters + string.digits

Signer = Callable[[bytes, int], dict[str, str]]  # (body, timestamp) -> signature headers


@dataclass
class SignedDelivery:
    family: str  # "replicate" | "fal"
    task_id: str
    event: str
    url: str
    body: dict[str, Any]
    delivery_id: str  # the same on every retry
    sign: Signer
    retry_on: Callable[[int], bool]  # whether an answer with this HTTP status is tried again


def host_of(url: str) -> str:
    """host[:port] of a callback URL, for a log line: its path and query carry the receiver's token."""
    try:
        return urlsplit(url).netloc.rpartition("@")[2] or "?"
    except ValueError:
        return "?"


def _hmac_key(secret: str) -> bytes:
    raw = secret.removeprefix("whsec_")
    try:
        return base64.b64decode(raw, validate=True)
    except (ValueError, binascii.Error):
        return raw.encode()


def standard_signature(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def _replicate_signer(secret: str, msg_id: str) -> Signer:
    key = _hmac_key(secret)
    stale = hashlib.sha256(key + b"rotated-out").digest()

    def sign(body: bytes, timestamp: int) -> dict[str, str]:
        both = f"{standard_signature(stale, msg_id, timestamp, body)} {standard_signature(key, msg_id, timestamp, body)}"
        return {"webhook-id": msg_id, "webhook-timestamp": str(timestamp), "webhook-signature": both}

    return sign


def _fal_signer(key: fal.FalSigningKey, request_id: str) -> Signer:
    def sign(body: bytes, timestamp: int) -> dict[str, str]:
        stamp = str(timestamp)
        return {
            "X-Fal-Webhook-Request-Id": request_id,
            "X-Fal-Webhook-User-Id": USER_ID,
            "X-Fal-Webhook-Timestamp": stamp,
            "X-Fal-Webhook-Signature": key.sign_hex(fal.signed_message(request_id, USER_ID, stamp, body)),
        }

    return sign


def _replicate_due(state: SimState, now: float) -> list[list[SignedDelivery]]:
    config, batches = state.config, []
    for p in state.replicate.predictions.values():
        if not p.webhook:
            continue
        happened = [e for e in p.hook_events() if e.at <= now]
        new = happened[len(p.hooks_sent) :]
        p.hooks_sent += [e.event for e in new]
        if not config.callbacks_enabled:
            state.callbacks_dropped += len(new)
            continue
        base = (config.public_base or p.public_base).rstrip("/")
        batch = []
        for e in new:
            msg_id = "msg_" + "".join(secrets.choice(_ALNUM) for _ in range(27))
            batch.append(
                SignedDelivery(
                    "replicate",
                    p.id,
                    e.event,
                    p.webhook,
                    replicate_views.prediction(p, state, e.at, base),
                    msg_id,
                    _replicate_signer(config.replicate_webhook_secret, msg_id),
                    lambda code: code >= 500,
                )
            )
        if batch:
            batches.append(batch)
    return batches


def _fal_due(state: SimState, now: float) -> list[list[SignedDelivery]]:
    config, batches = state.config, []
    for r in state.fal.requests.values():
        if not r.webhook or r.hooks_sent or r.plan.sync or now < r.end or r.outcome == CANCELLED:
            continue
        copies = 2 if r.plan.webhook_dupe else 1
        r.hooks_sent = copies
        if not config.callbacks_enabled:
            state.callbacks_dropped += copies
            continue
        body = fal_views.webhook(r, (config.public_base or r.public_base).rstrip("/"))
        event = "completed:" + body["status"]
        batches.append(
            [
                SignedDelivery("fal", r.id, event, r.webhook, body, f"{r.id}/{k}", _fal_signer(state.fal_key, r.id), lambda code: not 200 <= code < 300)
                for k in range(1, copies + 1)
            ]
        )
    return batches


def collect_due(state: SimState) -> list[list[SignedDelivery]]:
    """Due Replicate and fal webhooks, one ordered list per task; marks them as handed over."""
    now = state.now()
    return _replicate_due(state, now) + _fal_due(state, now)


async def post(client: httpx.AsyncClient, d: SignedDelivery, state: SimState) -> None:
    """Send one delivery: sign each attempt afresh (new timestamp, same id), retry as configured."""
    config = state.config
    content = json.dumps(d.body, separators=(",", ":")).encode()
    attempts = 1 + max(0, config.webhook_retries)
    for attempt in range(1, attempts + 1):
        signature = d.sign(content, int(config.webhook_clock()))
        entry: dict[str, Any] = {
            "family": d.family,
            "task_id": d.task_id,
            "status": d.event,
            "event": d.event,
            "url": d.url,
            "webhook_id": signature.get("webhook-id"),
            "delivery_id": d.delivery_id,
            "attempt": attempt,
        }
        try:
            response = await client.post(d.url, content=content, headers={"Content-Type": "application/json", **signature})
            entry["http_status"], entry["ok"] = response.status_code, response.is_success
            again = d.retry_on(response.status_code)
        except Exception as exc:  # the receiver's problem; retried like a 5xx
            entry["ok"], entry["error"] = False, f"{type(exc).__name__}: {exc}"
            log.warning("%s webhook to %s for %s failed: %s", d.family, host_of(d.url), d.task_id, exc)
            again = True
        state.callbacks_sent += 1
        if not entry["ok"]:
            state.callbacks_failed += 1
        state.callback_log.append(entry)
        del state.callback_log[:-_LOG_LIMIT]
        if not again or attempt == attempts:
            return
        await asyncio.sleep(config.webhook_retry_delay_s)
