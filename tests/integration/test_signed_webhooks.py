"""Signed provider webhooks through handle_callback on a real database: Replicate's Standard
Webhooks (K4U_REPLICATE_WEBHOOK_SECRET) and fal's Ed25519 + JWKS (K4U_FAL_JWKS). Forged, stale and
replayed deliveries are refused and change nothing, even after the job finished; a delivery we
failed to apply is accepted when retried; a flood signed by an unknown key causes at most one key
set fetch a minute; without a secret or key set a delivery is only a hint to poll."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from models.errors import CallbackInvalid
from models.status import JobStatus
from models.tables import Job, WebhookReceipt
from providers.webhooks import fal_message, sign
from tests.conftest import Sim
from workers.db import session_scope
from workers.keysets import KeySet
from workers.services import callbacks
from workers.services.callbacks import handle_callback

SECRET = "whsec_" + base64.b64encode(b"replicate-test-secret-24b").decode()


def running_job(d: Any, provider: str, task_id: str, operation: str) -> Job:
    now = d.rt.clock()
    job = Job(id=f"job_{provider}_{task_id}", provider=provider, operation=operation, status=JobStatus.RUNNING.value, input={"model": "fal-ai/flux/dev"},
              callback_token="tok", provider_task_id=task_id, created_at=now, updated_at=now, submitted_at=now, next_at=now + timedelta(seconds=60))
    with session_scope(d.rt.engine) as s:
        s.add(job)
    return job


def status_of(d: Any, job_id: str) -> str:
    return d.job(job_id).status


def prediction(pid: str, status: str) -> bytes:
    return json.dumps({"id": pid, "status": status, "output": ["https://replicate.delivery/x/out.png"] if status == "succeeded" else None,
                       "logs": "", "error": None, "metrics": {"predict_time": 1.25}}).encode()


def signed(body: bytes, msg_id: str, ts: int, secret: str = SECRET) -> dict[str, str]:
    return {"webhook-id": msg_id, "webhook-timestamp": str(ts), "webhook-signature": sign(secret, msg_id, ts, body)}


def test_replicate_signed_forged_stale_replayed(engine_factory, sim: Sim) -> None:  # type: ignore[no-untyped-def]
    d = engine_factory(replicate_webhook_secret=SECRET)
    job = running_job(d, "replicate", "p1", "prediction")
    ts = int(d.rt.clock().timestamp())
    start = prediction("p1", "processing")
    assert handle_callback(d.rt, "replicate", job.id, "tok", signed(start, "msg_start", ts), start) == "applied"
    assert status_of(d, job.id) == "running", "a start/output/logs delivery never finishes a job"
    done = prediction("p1", "succeeded")
    forged = signed(done, "msg_done", ts, "whsec_" + base64.b64encode(b"another-secret-entirely!").decode())
    stale = signed(done, "msg_done", ts - 301)
    for headers, why in ((forged, "bad webhook signature"), (stale, "300 s"), ({}, "missing")):
        with pytest.raises(CallbackInvalid) as exc:
            handle_callback(d.rt, "replicate", job.id, "tok", headers, done)
        assert exc.value.code == "callback_refused" and why in exc.value.message
        assert status_of(d, job.id) == "running"
    # a delivery whose handling failed (answered 5xx) is accepted when retried with the same id
    real_apply = callbacks.apply_status
    callbacks.apply_status = lambda *a, **k: (_ for _ in ()).throw(RuntimeError("db hiccup"))  # type: ignore[assignment]
    try:
        with pytest.raises(RuntimeError):
            handle_callback(d.rt, "replicate", job.id, "tok", signed(done, "msg_done", ts), done)
    finally:
        callbacks.apply_status = real_apply  # type: ignore[assignment]
    assert status_of(d, job.id) == "running"
    assert handle_callback(d.rt, "replicate", job.id, "tok", signed(done, "msg_done", ts), done) == "applied"
    assert status_of(d, job.id) == "downloading"
    d.drain()
    finished = d.job(job.id)
    # replayed after the job moved on: still a 401 and nothing changes
    with pytest.raises(CallbackInvalid) as exc:
        handle_callback(d.rt, "replicate", job.id, "tok", signed(done, "msg_done", ts), done)
    assert exc.value.code == "callback_refused" and "replay" in exc.value.message
    after = d.job(job.id)
    assert (after.status, after.version) == (finished.status, finished.version)


def test_replicate_without_secret_is_a_hint(engine_factory, sim: Sim) -> None:  # type: ignore[no-untyped-def]
    d = engine_factory()
    job = running_job(d, "replicate", "p2", "prediction")
    body = prediction("p2", "succeeded")
    assert handle_callback(d.rt, "replicate", job.id, "tok", {}, body) == "hint"
    after = d.job(job.id)
    assert after.status == "running" and after.next_at is not None and after.next_at <= d.rt.clock()


def test_receipts_are_pruned_by_the_sweep(engine_factory, sim: Sim) -> None:  # type: ignore[no-untyped-def]
    d = engine_factory(replicate_webhook_secret=SECRET)
    job = running_job(d, "replicate", "p3", "prediction")
    body = prediction("p3", "processing")
    handle_callback(d.rt, "replicate", job.id, "tok", signed(body, "msg_p3", int(d.rt.clock().timestamp())), body)
    with session_scope(d.rt.engine) as s:
        assert s.get(WebhookReceipt, ("replicate", "msg_p3")) is not None
    d.clock.advance(3601)
    d.tick()
    with session_scope(d.rt.engine) as s:
        assert s.get(WebhookReceipt, ("replicate", "msg_p3")) is None


@pytest.fixture
def fal_keys(tmp_path: Path) -> tuple[Ed25519PrivateKey, Path]:
    key = Ed25519PrivateKey.generate()
    raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [{"kty": "OKP", "crv": "Ed25519", "kid": "k1", "x": base64.urlsafe_b64encode(raw).rstrip(b"=").decode()}]}))
    return key, path


def fal_delivery(key: Ed25519PrivateKey, request_id: str, ts: int, status: str = "OK") -> tuple[dict[str, str], bytes]:
    body = json.dumps({"request_id": request_id, "gateway_request_id": "gw-" + request_id, "status": status,
                       "payload": {"images": [{"url": "https://v3.fal.media/files/x.png", "content_type": "image/png"}]} if status == "OK" else {"detail": "boom"},
                       "error": None if status == "OK" else "Invalid status code: 500"}).encode()
    sig = key.sign(fal_message(request_id, "user-1", str(ts), body)).hex()
    return {"X-Fal-Webhook-Request-Id": request_id, "X-Fal-Webhook-User-Id": "user-1", "X-Fal-Webhook-Timestamp": str(ts),
            "X-Fal-Webhook-Signature": sig}, body


def test_fal_verified_idempotent_and_unknown_key_flood(engine_factory, sim: Sim, fal_keys: tuple[Ed25519PrivateKey, Path]) -> None:  # type: ignore[no-untyped-def]
    key, path = fal_keys
    d = engine_factory(fal_jwks=str(path))
    t = [0.0]
    clock: Callable[[], float] = lambda: t[0]  # noqa: E731
    d.rt.fal_keys = KeySet(str(path), allow_private=True, clock=clock)
    job = running_job(d, "fal", "r-1", "queue")
    ts = int(d.rt.clock().timestamp())
    stranger = Ed25519PrivateKey.generate()
    for _ in range(50):
        headers, body = fal_delivery(stranger, "r-1", ts)
        with pytest.raises(CallbackInvalid) as exc:
            handle_callback(d.rt, "fal", job.id, "tok", headers, body)
        assert exc.value.code == "callback_refused"
    assert d.rt.fal_keys.fetches == 1, "a flood signed by an unknown key must not refetch the key set"
    t[0] += 61
    with pytest.raises(CallbackInvalid):
        handle_callback(d.rt, "fal", job.id, "tok", *fal_delivery(stranger, "r-1", ts))
    assert d.rt.fal_keys.fetches == 2, "at most one refetch a minute"
    assert status_of(d, job.id) == "running"
    headers, body = fal_delivery(key, "r-1", ts)
    assert handle_callback(d.rt, "fal", job.id, "tok", headers, body) == "applied"
    assert status_of(d, job.id) == "downloading"
    version = d.job(job.id).version
    # fal retries a delivery up to 10 times: applying it again changes nothing
    assert handle_callback(d.rt, "fal", job.id, "tok", headers, body) == "ignored"
    assert d.job(job.id).version == version


def test_fal_matches_request_id_and_hint_without_keys(engine_factory, sim: Sim, fal_keys: tuple[Ed25519PrivateKey, Path]) -> None:  # type: ignore[no-untyped-def]
    key, _ = fal_keys
    d = engine_factory()
    job = running_job(d, "fal", "r-2", "queue")
    headers, body = fal_delivery(key, "r-2", int(d.rt.clock().timestamp()))
    assert handle_callback(d.rt, "fal", job.id, "tok", headers, body) == "hint"
    assert status_of(d, job.id) == "running"
