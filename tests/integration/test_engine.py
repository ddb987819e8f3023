"""The engine end to end without a broker: real database (SQLite and PostgreSQL), the
simulator over real HTTP on loopback, local storage, and the services run by tests.conftest.Driver."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from sqlmodel import select

from models.schemas import JobCreate
from models.tables import Asset, Delivery, DeliveryAttempt, JobEvent
from tests.conftest import SIM_KEY, Sim
from tests.servers import webhook_receiver
from workers import dispatch, signing
from workers.db import session_scope
from workers.services.create import create_job
from workers.services.sweep import tick


def submit(driver, prompt: str = "a fox", operation: str = "text2video", **body) -> str:  # type: ignore[no-untyped-def]
    inp = {"prompt": prompt} if operation != "image2video" else {"image": "https://x.example/a.png", "prompt": prompt}
    job, created = create_job(driver.rt, JobCreate(provider="kling", operation=operation, input=inp, **body))
    assert created
    driver.drain()
    return job.id


def events(driver, job_id: str) -> list[tuple[str | None, str]]:  # type: ignore[no-untyped-def]
    with session_scope(driver.rt.engine) as s:
        return [(e.old_status, e.new_status) for e in s.exec(select(JobEvent).where(JobEvent.job_id == job_id).order_by(JobEvent.id)).all()]


def assets(driver, job_id: str) -> list[Asset]:  # type: ignore[no-untyped-def]
    with session_scope(driver.rt.engine) as s:
        return list(s.exec(select(Asset).where(Asset.job_id == job_id).order_by(Asset.index)).all())


@pytest.mark.parametrize("operation", ["text2video", "image2video", "image"])
def test_job_runs_to_succeeded_with_stored_files(engine_factory, sim: Sim, envelope: str, operation: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    sim.admin("/_sim/config", {"envelope": envelope})
    d = engine_factory()
    job_id = submit(d, operation=operation)
    job = d.job(job_id)
    assert job.status == "running" and job.provider_task_id
    d.run_for(10)
    job = d.job(job_id)
    assert job.status == "succeeded", (job.error_code, job.error_message)
    stored = assets(d, job_id)
    want = sim.sha256()["png" if operation == "image" else "mp4"]
    assert stored and all(a.sha256 == want for a in stored)
    for a in stored:
        data = (tmp_path / "objects" / a.storage_key).read_bytes()
        assert hashlib.sha256(data).hexdigest() == want and len(data) == a.size
    assert events(d, job_id) == [
        (None, "queued"),
        ("queued", "submitting"),
        ("submitting", "running"),
        ("running", "downloading"),
        ("downloading", "succeeded"),
    ]
    assert sim.stats()["creates"] == 1


def test_progress_is_tracked_and_never_goes_back(engine_factory, sim: Sim) -> None:  # type: ignore[no-untyped-def]
    sim.admin("/_sim/config", {"envelope": "newapi"})
    d = engine_factory()
    job_id = submit(d, "[sim:run=20]")
    seen = []
    for _ in range(12):
        d.run_for(1)
        seen.append(d.job(job_id).progress)
    assert seen == sorted(seen) and seen[-1] > 0


def test_provider_failure_fails_the_job_and_notifies(engine_factory, sim: Sim) -> None:  # type: ignore[no-untyped-def]
    with webhook_receiver() as hook:
        d = engine_factory()
        job_id = submit(d, "[sim:fail] something", callback_url=hook.url)
        d.run_for(8)
        job = d.job(job_id)
        assert job.status == "failed" and job.error_code == "provider_failed"
        assert "risk control" in (job.error_message or "")
        (got,) = hook.wait(1)
        body = json.loads(got.body)
        assert body["type"] == "job.failed" and body["data"]["error"]["code"] == "provider_failed"


def test_http_200_with_error_code_is_a_rejection(engine_factory, sim: Sim) -> None:  # type: ignore[no-untyped-def]
    d = engine_factory()
    job_id = submit(d, "[sim:reject] bad words")
    job = d.job(job_id)
    assert job.status == "failed" and job.error_code == "kling_1301" and job.error_retryable is False
    assert sim.stats()["tasks"] == 0


def test_rate_limited_submit_waits_and_retries(engine_factory, sim: Sim) -> None:  # type: ignore[no-untyped-def]
    sim.admin("/_sim/faults", {"rate_limit_next": 2})
    d = engine_factory()
    job_id = submit(d)
    assert d.job(job_id).status == "queued"
    d.run_for(30)
    job = d.job(job_id)
    assert job.status == "succeeded" and job.submit_attempts == 3
    assert sim.stats()["tasks"] == 1


def test_429_storm_while_polling_never_fails_a_job(engine_factory, sim: Sim) -> None:  # type: ignore[no-untyped-def]
    d = engine_factory()
    ids = [submit(d, f"clip {i}") for i in range(3)]
    sim.admin("/_sim/faults", {"rate_limit_next": 15})
    d.run_for(40)
    assert [d.job(i).status for i in ids] == ["succeeded"] * 3


def test_timeout_after_accept_is_recovered_by_lookup_not_resubmitted(engine_factory, sim: Sim) -> None:  # type: ignore[no-untyped-def]
    sim.admin("/_sim/faults", {"timeout_after_accept_next": 1, "delay_s": 3.0})
    d = engine_factory(relay_timeout_s=0.5)
    job_id = submit(d)
    job = d.job(job_id)
    assert job.status == "submitting" and job.submit_state == "unknown"
    d.run_for(40, step=2)
    job = d.job(job_id)
    assert job.status == "succeeded", job.error_message
    assert sim.stats()["creates"] == 1, "a submission whose outcome was unknown must not be sent twice"
    assert any("lookup" in r for r in _reasons(d, job_id))


@pytest.mark.parametrize(("accepted", "posts"), [(True, 1), (False, 2)])
def test_5xx_on_submit_is_an_unknown_outcome(engine_factory, sim: Sim, accepted: bool, posts: int) -> None:  # type: ignore[no-untyped-def]
    """A 502 may hide an accepted task: look it up by external_task_id; resend only if absent."""
    sim.admin("/_sim/faults", {"error_5xx_next": 1, "status": 502, "after_accept": accepted})
    d = engine_factory()
    job_id = submit(d)
    assert d.job(job_id).submit_state == "unknown"
    d.run_for(40, step=2)
    assert d.job(job_id).status == "succeeded"
    stats = sim.stats()
    assert stats["tasks"] == 1
    assert stats["requests"]["POST /kling/v1/videos/text2video"] == posts


def test_deadline_fails_with_timeout(engine_factory, sim: Sim) -> None:  # type: ignore[no-untyped-def]
    d = engine_factory(job_deadline_s=20)
    job_id = submit(d, "[sim:run=600]")
    d.run_for(30, step=5)
    job = d.job(job_id)
    assert job.status == "failed" and job.error_code == "timeout"


def test_expired_result_url_fails_with_its_own_code(engine_factory, sim: Sim) -> None:  # type: ignore[no-untyped-def]
    from providers.base import OutputRef, ProviderStatus, State
    from workers.services.apply import apply_status

    d = engine_factory()
    job_id = submit(d)
    with session_scope(d.rt.engine) as s:
        from workers.jobs import get_job

        job = get_job(s, job_id)
        fu = apply_status(
            s,
            job,
            ProviderStatus(job.provider_task_id, State.SUCCEEDED, outputs=[OutputRef(f"{sim.url}/_sim/media/expired/x.mp4", "video")]),
            settings=d.rt.settings,
            now=d.clock.now(),
            source="test",
        )
    d.recorder.sent.extend(fu)
    d.drain()
    job = d.job(job_id)
    assert job.status == "failed" and job.error_code == "result_expired"


def test_notification_is_signed_retried_and_recorded(engine_factory, sim: Sim) -> None:  # type: ignore[no-untyped-def]
    with webhook_receiver() as hook:
        hook.script = [500, 503]
        d = engine_factory(notify_backoff_s=1.0)
        job_id = submit(d, callback_url=hook.url, metadata={"row": 7})
        d.run_for(30)
        got = hook.wait(3)
        assert len({r.headers["webhook-id"] for r in got}) == 1, "webhook-id is stable across retries"
        assert len({r.body for r in got}) == 1
        last = got[-1]
        secret = d.rt.settings.webhook_secret.get_secret_value()
        ts = int(last.headers["webhook-timestamp"])
        assert signing.verify(secret, last.headers["webhook-id"], ts, last.body, last.headers["webhook-signature"], now=ts)
        body = json.loads(last.body)
        assert body["type"] == "job.succeeded" and body["data"]["id"] == job_id and body["data"]["metadata"] == {"row": 7}
        assert body["data"]["assets"][0]["sha256"] == sim.sha256()["mp4"]
        with session_scope(d.rt.engine) as s:
            delivery = s.exec(select(Delivery)).one()
            tries = s.exec(select(DeliveryAttempt).order_by(DeliveryAttempt.attempt)).all()
        assert delivery.status == "delivered" and [t.status_code for t in tries] == [500, 503, 200]


def test_no_secret_in_messages_or_job_rows(engine_factory, sim: Sim) -> None:  # type: ignore[no-untyped-def]
    d = engine_factory()
    sent: list = []
    original = d.recorder.send

    def spy(task, *args, **options):  # type: ignore[no-untyped-def]
        sent.append((task, args))
        original(task, *args, **options)

    d.recorder.send = spy  # type: ignore[method-assign]
    job_id = submit(d)
    d.run_for(10)
    assert all(isinstance(a, (str, int, list)) for _, args in sent for a in args)
    assert SIM_KEY not in json.dumps([(t, a) for t, a in sent])
    with session_scope(d.rt.engine) as s:
        from models.tables import Job

        assert SIM_KEY not in json.dumps(s.get(Job, job_id).model_dump(mode="json"))
    assert {t for t, _ in sent} >= {dispatch.SUBMIT, dispatch.POLL, dispatch.DOWNLOAD}


def _reasons(d, job_id: str) -> list[str]:  # type: ignore[no-untyped-def]
    with session_scope(d.rt.engine) as s:
        return [e.reason for e in s.exec(select(JobEvent).where(JobEvent.job_id == job_id)).all()]


def test_s3_store_and_presigned_asset_redirect(db_url: str, sim: Sim, clock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """A job stored into an S3 server on loopback; the API answers the asset with a 307 to a
    presigned URL that serves the same bytes."""
    import boto3
    import httpx

    from api.main import create_app
    from tests.conftest import Driver, make_settings
    from tests.s3server import moto_server
    from tests.servers import serve
    from workers.context import build_runtime
    from workers.dispatch import RecordingDispatcher

    for k, v in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(k, v)
    with moto_server() as endpoint:
        boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="results")
        settings = make_settings(db_url, sim.url, tmp_path, storage_url="s3://results/k4u", s3_endpoint_url=endpoint)
        recorder = RecordingDispatcher()
        rt = build_runtime(settings, recorder)
        rt.clock = clock.now
        d = Driver(rt, recorder, clock)
        job_id = submit(d)
        d.run_for(10)
        assert d.job(job_id).status == "succeeded"
        (asset,) = assets(d, job_id)
        assert asset.storage_key == f"{job_id}/0.mp4"
        head = boto3.client("s3", endpoint_url=endpoint).head_object(Bucket="results", Key=f"k4u/{job_id}/0.mp4")
        assert head["ContentLength"] == asset.size and head["ContentType"] == "video/mp4"
        with serve(create_app(settings, dispatcher=RecordingDispatcher())) as url:
            r = httpx.get(f"{url}/v1/jobs/{job_id}/assets/0")
            assert r.status_code == 307
            body = httpx.get(r.headers["location"]).content
            # the gallery keeps every request on our origin: the same bytes streamed through the API
            streamed = httpx.get(f"{url}/v1/jobs/{job_id}/assets/0", params={"redirect": "false"})
        assert hashlib.sha256(body).hexdigest() == sim.sha256()["mp4"]
        assert streamed.status_code == 200 and hashlib.sha256(streamed.content).hexdigest() == sim.sha256()["mp4"]
        rt.close()


def test_job_created_while_the_broker_is_down_is_submitted_by_the_sweep(engine_factory, sim: Sim) -> None:  # type: ignore[no-untyped-def]
    d = engine_factory()
    real_send = d.recorder.send

    def broker_down(task, *args):  # type: ignore[no-untyped-def]
        raise ConnectionError("redis is down")

    d.recorder.send = broker_down  # type: ignore[method-assign]
    job, created = create_job(d.rt, JobCreate(provider="kling", operation="text2video", input={"prompt": "x"}))
    assert created and d.job(job.id).status == "queued"
    d.recorder.send = real_send  # type: ignore[method-assign]
    assert d.job(job.id).next_at <= d.clock.now()  # the send failed: due at once, not after a lease
    d.tick()
    assert d.job(job.id).status != "queued", "the next tick submits it"
    d.run_for(20)
    assert d.job(job.id).status == "succeeded" and sim.stats()["creates"] == 1


def test_a_backlog_of_submit_messages_gets_no_duplicates_from_the_sweep(engine_factory, sim: Sim) -> None:  # type: ignore[no-untyped-def]
    """A job whose submit message waits behind others in the broker is not sent again by the sweep
    until its lease (K4U_LEASE_S) has run out: a backlog must not double the messages."""
    d = engine_factory(lease_s=120.0)
    ids = [create_job(d.rt, JobCreate(provider="kling", operation="text2video", input={"prompt": f"x{i}"}))[0].id for i in range(5)]
    waiting = list(d.recorder.sent)  # the submit messages, still in the "broker"
    d.recorder.sent.clear()
    for _ in range(100):  # 100 s of ticks while the worker is busy elsewhere
        d.clock.advance(1)
        tick(d.rt)
    assert d.recorder.of("k4u.submit") == [], "no second submit message within the lease"
    d.recorder.sent = waiting
    d.drain()
    assert all(d.job(i).status == "running" for i in ids) and sim.stats()["creates"] == 5


def test_failed_notification_can_be_replayed_through_the_api(engine_factory, sim: Sim) -> None:  # type: ignore[no-untyped-def]
    import httpx

    from api.main import create_app
    from tests.servers import serve

    with webhook_receiver() as hook:
        hook.script = [500, 500, 500]  # then 200
        d = engine_factory(notify_max_attempts=2, notify_backoff_s=1.0)
        job_id = submit(d, callback_url=hook.url)
        d.run_for(20)
        assert len(hook.wait(2)) == 2
        with serve(create_app(d.rt.settings, runtime=d.rt)) as url:
            (note,) = httpx.get(f"{url}/v1/jobs/{job_id}/notifications").json()
            assert note["status"] == "failed" and [h["status_code"] for h in note["history"]] == [500, 500]
            r = httpx.post(f"{url}/v1/jobs/{job_id}/notifications/replay")
            assert r.status_code == 202 and r.json()["replayed"] == [note["webhook_id"]]
        d.drain()
        d.run_for(5)
        got = hook.wait(4)
        assert len({g.headers["webhook-id"] for g in got}) == 1 and got[-1].body == got[0].body
        with serve(create_app(d.rt.settings, runtime=d.rt)) as url:
            (note,) = httpx.get(f"{url}/v1/jobs/{job_id}/notifications").json()
        assert note["status"] == "delivered"
        assert [h["status_code"] for h in note["history"]] == [500, 500, 500, 200]
