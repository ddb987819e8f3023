"""Callback tokens never reach the access log, nor the simulator's."""

from __future__ import annotations

import logging

import httpx
import pytest

from api.logs import RedactTokens, redact
from tests.conftest import FakeClock
from tests.unit.conftest import Factory
from tests.unit.test_simulator import AUTH, T2V


def test_redact_webhook_token() -> None:
    assert redact("POST /v1/webhooks/kling/job_1/s3cr3t-Tok_en HTTP/1.1") == "POST /v1/webhooks/kling/job_1/*** HTTP/1.1"
    assert redact("GET /v1/jobs/job_1") == "GET /v1/jobs/job_1"


def test_filter_rewrites_uvicorn_access_args() -> None:
    rec = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5", "POST", "/v1/webhooks/midjourney/job_9/abcDEF123", "1.1", 200),
        None,
    )
    RedactTokens().filter(rec)
    assert "abcDEF123" not in rec.getMessage() and "/v1/webhooks/midjourney/job_9/***" in rec.getMessage()


@pytest.mark.anyio
async def test_the_simulator_names_a_failed_callback_by_its_host(make: Factory, clock: FakeClock, caplog: pytest.LogCaptureFixture) -> None:
    """Our callback URLs carry a token in their path (and a receiver's may in its query): the
    simulator's warning about a delivery that failed names the host only."""

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    client, sim = make(callback_transport=httpx.MockTransport(refuse))
    body = {"prompt": "a", "callback_url": "http://hook.test:8000/v1/webhooks/kling/job_1/s3cr3t-Tok_en?sig=abc"}
    await client.post(T2V, json=body, headers=AUTH)
    clock.advance(10)
    with caplog.at_level(logging.WARNING, logger="simulator"):
        await sim.callbacks.dispatch_once()
    assert "callback to hook.test:8000 for task" in caplog.text
    assert "s3cr3t" not in caplog.text and "sig=" not in caplog.text and "/v1/webhooks" not in caplog.text
