"""Callback tokens never reach the access log."""

from __future__ import annotations

import logging

from api.logs import RedactTokens, redact


def test_redact_webhook_token() -> None:
    assert redact("POST /v1/webhooks/kling/job_1/s3cr3t-Tok_en HTTP/1.1") == "POST /v1/webhooks/kling/job_1/*** HTTP/1.1"
    assert redact("GET /v1/jobs/job_1") == "GET /v1/jobs/job_1"


def test_filter_rewrites_uvicorn_access_args() -> None:
    rec = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
                            ("127.0.0.1:5", "POST", "/v1/webhooks/midjourney/job_9/abcDEF123", "1.1", 200), None)
    RedactTokens().filter(rec)
    assert "abcDEF123" not in rec.getMessage() and "/v1/webhooks/midjourney/job_9/***" in rec.getMessage()
