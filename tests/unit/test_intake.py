"""The intake's database-free stage: one adapter lookup, refusals named where the API names them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from models.schemas import JobCreate
from providers.registry import get_adapter
from workers import jobs
from workers.services import intake
from workers.services.intake import IntakeInvalid
from workers.settings import Settings


@pytest.fixture
def settings() -> Settings:
    return Settings(allow_private_urls=False, job_deadline_s=None)


def _refusal(settings: Settings, at: intake.Loc = (), **body: Any) -> IntakeInvalid:
    with pytest.raises(IntakeInvalid) as exc:
        intake.draft(JobCreate.model_validate({"provider": "kling", "input": {"prompt": "a fox"}} | body), settings, at=at)
    return exc.value


def test_a_draft_holds_the_default_operation_the_clean_input_and_the_digest(settings: Settings) -> None:
    body = JobCreate(provider="kling", input={"prompt": "a fox"}, idempotency_key="k1")
    d = intake.draft(body, settings)
    assert (d.operation, d.input, d.key, d.parent) == ("text2video", {"prompt": "a fox", "model_name": "kling-v1"}, "k1", None)
    assert d.adapter is get_adapter("kling")
    # a batch item with the same request has the same digest, whatever its key; the header's key wins
    same = intake.draft(body.model_copy(update={"idempotency_key": "k2"}), settings, at=("jobs", 4), key="h")
    assert same.digest == d.digest == intake.request_digest(body, "text2video") and same.key == "h"
    values = d.values("job_1", batch_id="mine", deadline=datetime(2026, 1, 1, tzinfo=UTC))
    assert {k: values[k] for k in ("id", "operation", "batch_id", "idempotency_key", "request_hash")} == {
        "id": "job_1",
        "operation": "text2video",
        "batch_id": "mine",
        "idempotency_key": "k1",
        "request_hash": d.digest,
    }


@pytest.mark.parametrize(
    ("at", "body", "loc", "message"),
    [
        ((), {"provider": "nope"}, ("provider",), "unknown provider 'nope'; known: "),
        (("jobs", 3), {"provider": "nope"}, ("jobs", 3, "provider"), "jobs.3.provider: unknown provider 'nope'; known: "),
        ((), {"operation": "lipsync2"}, ("operation",), "unknown operation 'lipsync2' for kling"),
        ((), {"input": {}}, ("input", "prompt"), "input.prompt: Field required"),
        (("jobs", 0), {"input": {}}, ("jobs", 0, "input", "prompt"), "jobs.0.input.prompt: Field required"),
        ((), {"callback_url": "http://127.0.0.1/hook"}, ("callback_url",), "callback_url: 127.0.0.1 resolves to a non-public address"),
    ],
)
def test_refusals_name_the_value_for_a_job_and_for_a_batch_item(
    settings: Settings, at: intake.Loc, body: dict[str, Any], loc: intake.Loc, message: str
) -> None:
    exc = _refusal(settings, at, **body)
    assert exc.loc == loc and exc.field == ".".join(str(p) for p in loc) and exc.message.startswith(message)


def test_the_deadline_is_the_providers_unless_set_and_batch_ids_sort_in_item_order(settings: Settings) -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    kling = get_adapter("kling")
    assert intake.deadline(kling, settings, now) == now + timedelta(seconds=kling.capabilities.deadline_s)
    assert intake.deadline(kling, Settings(job_deadline_s=60), now) == now + timedelta(seconds=60)
    ids = intake.batch_job_ids(3)
    assert ids == sorted(ids) and len(set(ids)) == 3 and all(len(i) == len(jobs.new_job_id()) for i in ids)
