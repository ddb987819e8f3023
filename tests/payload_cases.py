"""Recorded relay answers (tests/payloads/<family>/<case>/: response.json = status + headers,
body = raw bytes, expected.json = what the adapter must make of it) and the checks every
family's tests share: protocol errors and submit answers."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from models.errors import ProviderProtocolError
from providers.base import Adapter, HttpResponse, ProviderStatus, Rejected, Submitted

PAYLOADS = Path(__file__).parent / "payloads"


def cases(family: str) -> list[Path]:
    return sorted(p for p in (PAYLOADS / family).iterdir() if p.is_dir())


def load(case: Path) -> tuple[HttpResponse, dict[str, Any]]:
    meta = json.loads((case / "response.json").read_text())
    return HttpResponse(meta["status"], meta["headers"], (case / "body").read_bytes()), json.loads((case / "expected.json").read_text())


def check_submit_or_protocol_error(
    adapter: Adapter, resp: HttpResponse, want: dict[str, Any], check_status: Callable[[ProviderStatus, dict[str, Any]], None] | None = None
) -> bool:
    """Check a protocol-error or submit case; False when the case is a poll or callback one."""
    if want.get("result") == "protocol_error":
        with pytest.raises(ProviderProtocolError):
            (adapter.parse_submit if want["kind"] == "submit" else adapter.parse_poll)(resp)
        return True
    if want["kind"] != "submit":
        return False
    got = adapter.parse_submit(resp)
    if want["result"] == "submitted":
        assert isinstance(got, Submitted)
        if "task_id" in want:
            assert got.task_id == want["task_id"]
        else:
            assert got.task_id.startswith(want["task_id_prefix"])
        if "status" in want:
            assert got.status is not None and check_status is not None
            check_status(got.status, {"task_id": got.task_id} | want["status"])
        else:
            assert got.status is None
        return True
    assert isinstance(got, Rejected)
    assert (got.code, got.retryable) == (want["code"], want["retryable"])
    assert got.message and want.get("message_contains", "") in got.message
    if "retry_after_s" in want:
        assert got.retry_after_s == want["retry_after_s"]
    return True
