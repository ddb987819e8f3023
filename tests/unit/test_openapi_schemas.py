"""Every JSON read route documents its answer with a public schema (response_model), so /openapi.json
and /docs describe the events, notifications and replay answers as well as the jobs."""

from __future__ import annotations

from typing import Any

import pytest

from api.main import create_app
from workers.dispatch import RecordingDispatcher
from workers.settings import Settings


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    app = create_app(Settings(database_url="sqlite:///:memory:", storage_url="memory://"), dispatcher=RecordingDispatcher())
    return app.openapi()


def _answer(spec: dict[str, Any], path: str, method: str, status: str) -> dict[str, Any]:
    schema: dict[str, Any] = spec["paths"][path][method]["responses"][status]["content"]["application/json"]["schema"]
    return schema


@pytest.mark.parametrize(
    ("path", "method", "status", "ref"),
    [
        ("/v1/jobs/{job_id}/events", "get", "200", "JobEventPublic"),
        ("/v1/jobs/{job_id}/notifications", "get", "200", "DeliveryPublic"),
        ("/v1/batches/{batch_id}/notifications", "get", "200", "DeliveryPublic"),
        ("/v1/jobs/{job_id}/notifications/replay", "post", "202", "ReplayedPublic"),
        ("/v1/batches/{batch_id}/notifications/replay", "post", "202", "ReplayedPublic"),
        ("/v1/jobs/{job_id}", "get", "200", "JobPublic"),
    ],
)
def test_read_routes_declare_their_schema(spec: dict[str, Any], path: str, method: str, status: str, ref: str) -> None:
    assert f"#/components/schemas/{ref}" in str(_answer(spec, path, method, status))


def test_event_and_delivery_fields(spec: dict[str, Any]) -> None:
    schemas = spec["components"]["schemas"]
    assert set(schemas["JobEventPublic"]["properties"]) == {"from", "to", "reason", "at"}
    assert set(schemas["DeliveryPublic"]["properties"]) == {
        "webhook_id",
        "event",
        "url",
        "status",
        "attempts",
        "last_error",
        "delivered_at",
        "next_attempt_at",
        "history",
    }
    assert set(schemas["DeliveryAttemptPublic"]["properties"]) == {"attempt", "status_code", "error", "duration_ms", "at"}
