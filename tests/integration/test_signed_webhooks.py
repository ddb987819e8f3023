"""Signed provider webhooks through handle_callback on a real database: Replicate's Standard
Webhooks (K4U_REPLICATE_WEBHOOK_SECRET) and fal's Ed25519 + JWKS (K4U_FAL_JWKS). Forged, stale and
replayed deliveries are refused and change nothing, even after the job finished; a delivery we
failed to apply is accepted when retried; a flood signed by an unknown key causes at most one key
set fetch a minute; a key set served gzipped is decoded (and a gzip bomb refused without inflating
it); a key set URL is https (http only to loopback with K4U_ALLOW_PRIVATE_URLS); without a secret
or key set a delivery is only a hint to poll."""

from __future__ import annotations

import base64
import gzip
import json
import tracemalloc
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from models.errors import CallbackInvalid
from models.status import JobStatus
from models.tables import Job, WebhookReceipt
from providers.webhooks import fal_message, sign
from tests.conftest import Sim
from tests.servers import serve
from workers.db import session_scope
from workers.keysets import KeySet
from workers.services import callbacks
from workers.services.callbacks import handle_callback
from workers.settings import Settings, describe_errors

SECRET = "whsec_" + base64.b64encode(b"replicate-test-secret-24b").decode()


def running_job(d: Any, provider: str, task_id: str, operation: str) -> Job:
    now = d.rt.clock()
    job = Job(
        id=f"job_{provider}_{task_id}",
        provider=provider,
        operation=operation,
        status=JobStatus.RUNNING.value,
        input={"model": "fal-ai/flux/dev"},
        callback_token="tok",
        provider_task_id=task_id,
        created_at=now,
        updated_at=now,
        submitted_at=now,
        next_at=now + timedelta(seconds=60),
    )
    with session_scope(d.rt.engine) as s:
        s.add(job)
    return job


def status_of(d: Any, job_id: str) -> str:
    return d.job(job_id).status


def prediction(pid: str, status: str) -> bytes:
    return json.dumps(
        {
            "id": pid,
            "status": status,
            "output": ["https://replicate.delivery/x/out.png"] if status == "succeeded" else None,
            "logs": "",
            "error": None,
            "metrics": {"predict_time": 1.25},
        }
    ).encode()


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


def key_set_host(body: bytes, headers: dict[str, str] | None = None, *, gzips: bool = False) -> Starlette:
    """A host serving `body` at /jwks.json, compressing what it sends when `gzips` (as CDNs do)."""

    def jwks(request: Request) -> Response:
        return Response(body, media_type="application/json", headers=headers)

    app = Starlette(routes=[Route("/jwks.json", jwks)])
    if gzips:
        app.add_middleware(GZipMiddleware, minimum_size=0)
    return app


def fal_delivery(key: Ed25519PrivateKey, request_id: str, ts: int, status: str = "OK") -> tuple[dict[str, str], bytes]:
    body = json.dumps(
        {
            "request_id": request_id,
            "gateway_request_id": "gw-" + request_id,
            "status": status,
            "payload": {"images": [{"url": "https://v3.fal.media/files/x.png", "content_type": "image/png"}]} if status == "OK" else {"detail": "boom"},
            "error": None if status == "OK" else "Invalid status code: 500",
        }
    ).encode()
    sig = key.sign(fal_message(request_id, "user-1", str(ts), body)).hex()
    return {"X-Fal-Webhook-Request-Id": request_id, "X-Fal-Webhook-User-Id": "user-1", "X-Fal-Webhook-Timestamp": str(ts), "X-Fal-Webhook-Signature": sig}, body


def test_fal_verified_idempotent_and_unknown_key_flood(engine_factory, sim: Sim, fal_keys: tuple[Ed25519PrivateKey, Path]) -> None:  # type: ignore[no-untyped-def]
    key, path = fal_keys
    d = engine_factory(fal_jwks=str(path))
    t = [0.0]
    clock: Callable[[], float] = lambda: t[0]  # noqa: E731
    d.rt.key_sets["fal_jwks"] = KeySet(str(path), allow_private=True, clock=clock)
    job = running_job(d, "fal", "r-1", "queue")
    ts = int(d.rt.clock().timestamp())
    stranger = Ed25519PrivateKey.generate()
    for _ in range(50):
        headers, body = fal_delivery(stranger, "r-1", ts)
        with pytest.raises(CallbackInvalid) as exc:
            handle_callback(d.rt, "fal", job.id, "tok", headers, body)
        assert exc.value.code == "callback_refused"
    assert d.rt.key_sets["fal_jwks"].fetches == 1, "a flood signed by an unknown key must not refetch the key set"
    t[0] += 61
    with pytest.raises(CallbackInvalid):
        handle_callback(d.rt, "fal", job.id, "tok", *fal_delivery(stranger, "r-1", ts))
    assert d.rt.key_sets["fal_jwks"].fetches == 2, "at most one refetch a minute"
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


def test_fal_key_set_from_a_gzipping_host_verifies_webhooks(engine_factory, sim: Sim, fal_keys: tuple[Ed25519PrivateKey, Path]) -> None:  # type: ignore[no-untyped-def]
    key, path = fal_keys
    with serve(key_set_host(path.read_bytes(), gzips=True)) as host:
        url = f"{host}/jwks.json"
        assert httpx.get(url, headers={"accept-encoding": "gzip"}).headers.get("content-encoding") == "gzip"
        d = engine_factory(fal_jwks=url)
        job = running_job(d, "fal", "r-gz", "queue")
        headers, body = fal_delivery(key, "r-gz", int(d.rt.clock().timestamp()))
        assert handle_callback(d.rt, "fal", job.id, "tok", headers, body) == "applied"
    assert status_of(d, job.id) == "downloading"
    assert d.rt.key_sets.get("fal_jwks") is not None and len(d.rt.key_sets["fal_jwks"].keys()) == 1


def test_a_gzip_bomb_key_set_is_refused_without_being_inflated(fal_keys: tuple[Ed25519PrivateKey, Path]) -> None:
    _, path = fal_keys
    padded = json.loads(path.read_text()) | {"padding": " " * (32 * 1024**2)}  # valid JSON, 32 MiB; about 32 KiB gzipped
    bomb = gzip.compress(json.dumps(padded).encode())
    with serve(key_set_host(bomb, {"content-encoding": "gzip"})) as host:
        keys = KeySet(f"{host}/jwks.json", allow_private=True)
        tracemalloc.start()
        try:
            assert keys.keys() == [], "a key set over 64 KiB decoded is refused"
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert peak < 4 * 1024**2, f"reading the bomb took {peak} bytes"


def test_a_key_set_url_is_https_unless_loopback_and_private_urls_allowed() -> None:
    for value, allow_private in (
        ("http://keys.example.com/jwks.json", False),
        ("http://keys.example.com/jwks.json", True),
        ("http://127.0.0.1:9/jwks.json", False),
    ):
        with pytest.raises(ValidationError) as exc:
            Settings(fal_jwks=value, allow_private_urls=allow_private)
        assert "K4U_FAL_JWKS" in describe_errors(exc.value) and "https" in describe_errors(exc.value)
        with pytest.raises(ValueError, match="https"):
            KeySet(value, allow_private=allow_private)
    assert Settings(fal_jwks="https://keys.example.com/jwks.json").fal_jwks
    assert Settings(fal_jwks="http://127.0.0.1:9/jwks.json", allow_private_urls=True).fal_jwks
    assert Settings(fal_jwks="/etc/k4u/fal-jwks.json").fal_jwks
