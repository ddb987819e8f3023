"""Pipelines through the engine, the real database and the simulator over loopback: a job whose input
names another job's asset (`k4u://jobs/<id>/assets/<n>`, `k4u://items/<i>/assets/<n>` in a batch)
waits, is queued in the transaction that marks its parent succeeded (or by the next tick after a
crash), sends the relay the parent's stored bytes, and fails without any relay request when its
parent fails or is cancelled or did not produce the asset it names."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from api.main import create_app
from cli.procs import free_port
from models.schemas import BatchCreate
from tests.conftest import Driver, Sim
from tests.servers import serve
from workers.services import pipelines
from workers.services.batches import create_batch
from workers.services.create import cancel_job
from workers.services.intake import IntakeInvalid
from workers.services.retry import retry_job

PROMPT = "a lighthouse at dawn"


@contextmanager
def public_api(engine_factory: Callable[..., Driver], **extra: Any) -> Iterator[Driver]:
    """A driver whose K4U_PUBLIC_URL is an API on loopback (the /v1/files links the relay fetches)."""
    port = free_port()
    d = engine_factory(public_url=f"http://127.0.0.1:{port}", poll_expected_s=4.0, poll_min_interval_s=1.0, **extra)
    with serve(create_app(d.rt.settings, runtime=d.rt), port=port):
        yield d


@pytest.fixture
def d(engine_factory: Callable[..., Driver], sim: Sim) -> Iterator[Driver]:
    sim.admin("/_sim/config", {"queue_s": 1.0, "run_s": 3.0})
    with public_api(engine_factory) as drv:
        yield drv


def task_of(sim: Sim, d: Driver, job_id: str) -> dict[str, Any]:
    task_id = d.job(job_id).provider_task_id
    (row,) = [t for t in sim.admin("/_sim/tasks")["tasks"] if t.get("task_id") == task_id]
    return row  # type: ignore[no-any-return]


def paid(sim: Sim) -> int:
    return int(sim.admin("/_sim/paid")["count"])


def i2v(d: Driver, image: str) -> str:
    return d.create("kling", "image2video", {"prompt": "the light turns", "image": image})


def test_child_waits_then_gets_the_parents_stored_bytes(d: Driver, sim: Sim) -> None:
    grid = d.create("midjourney", "imagine", {"prompt": PROMPT})
    child = i2v(d, f"k4u://jobs/{grid}/assets/0")
    job = d.public(child)
    assert job["status"] == "waiting" and job["depends_on"] == [grid]
    assert job["inputs"] == [{"field": "image", "ref": f"k4u://jobs/{grid}/assets/0", "upload_id": None, "job_id": grid, "index": 0, "sha256": None}]
    d.run_for(20)
    parent, job = d.public(grid), d.public(child)
    assert parent["status"] == "succeeded" and job["status"] == "succeeded", job["error"]
    asset = parent["assets"][0]
    assert job["inputs"][0]["sha256"] == asset["sha256"]
    assert task_of(sim, d, child)["inputs_sha256"] == {"image": asset["sha256"]}  # the relay fetched our stored bytes
    assert job["input"]["image"] == f"k4u://jobs/{grid}/assets/0"  # the row keeps the reference
    reasons = [e.reason for e in _events(d, child)]
    assert reasons[:2] == ["created", f"parents succeeded: {grid}"]


def test_a_jobs_children_are_listed_by_depends_on(d: Driver, sim: Sim) -> None:
    import httpx

    grid = d.create("midjourney", "imagine", {"prompt": PROMPT})
    first, second = i2v(d, f"k4u://jobs/{grid}/assets/0"), i2v(d, f"k4u://jobs/{grid}/assets/1")
    unrelated = d.create("kling", "text2video", {"prompt": "no parent"})
    base = d.rt.settings.public_url
    children = httpx.get(f"{base}/v1/jobs", params={"depends_on": grid}).json()["items"]
    assert sorted(j["id"] for j in children) == sorted([first, second]) and unrelated not in {j["id"] for j in children}
    assert httpx.get(f"{base}/v1/jobs", params={"depends_on": first}).json()["items"] == []
    assert httpx.get(f"{base}/v1/jobs", params={"depends_on": "not-a-job-id"}).status_code == 422


def _events(d: Driver, job_id: str) -> list[Any]:
    from sqlmodel import col, select

    from models.tables import JobEvent
    from workers.db import session_scope

    with session_scope(d.rt.engine) as s:
        return list(s.scalars(select(JobEvent).where(col(JobEvent.job_id) == job_id).order_by(col(JobEvent.id))))


def test_a_parent_already_succeeded_queues_the_child_at_once(d: Driver, sim: Sim) -> None:
    grid = d.create("midjourney", "imagine", {"prompt": PROMPT})
    d.run_for(12)
    assert d.job(grid).status == "succeeded"
    child = i2v(d, f"k4u://jobs/{grid}/assets/1")
    assert d.job(child).status in ("running", "submitting", "queued")  # submitted by create's drain
    d.run_for(12)
    assert d.job(child).status == "succeeded"
    assert task_of(sim, d, child)["inputs_sha256"]["image"] == d.public(grid)["assets"][1]["sha256"]


def test_failed_parent_fails_the_child_without_a_relay_request(d: Driver, sim: Sim) -> None:
    bad = d.create("midjourney", "imagine", {"prompt": "[sim:banned=gore] a scene"})
    assert d.job(bad).status == "failed"
    child = i2v(d, f"k4u://jobs/{bad}/assets/0")  # a parent failed at intake: failed at once
    job = d.public(child)
    assert job["status"] == "failed" and job["error"]["code"] == "dependency_failed" and bad in job["error"]["message"]

    slow = d.create("kling", "text2video", {"prompt": "[sim:fail] the sea"})
    waiting = d.create("kling", "video_to_audio", {"video_url": f"k4u://jobs/{slow}/assets/0", "sound_effect_prompt": "waves"})
    grandchild = d.create("kling", "video_to_audio", {"video_url": f"k4u://jobs/{waiting}/assets/0"})
    assert d.job(waiting).status == "waiting" and d.job(grandchild).status == "waiting"
    before = paid(sim)
    d.run_for(15)
    assert d.job(slow).status == "failed"
    for kid in (waiting, grandchild):
        j = d.job(kid)
        assert j.status == "failed" and j.error_code == "dependency_failed" and j.provider_task_id is None
    assert paid(sim) == before  # nothing more was paid: the children never reached the relay
    # A retry re-checks the parents: still failed, so it fails again (and the parent is not revived).
    assert retry_job(d.rt, waiting).status == "failed" and d.job(waiting).error_code == "dependency_failed"
    assert d.job(slow).status == "failed"


def test_asset_index_past_the_parents_output_fails_invalid_reference(d: Driver, sim: Sim) -> None:
    video = d.create("kling", "text2video", {"prompt": "the sea"})
    child = d.create("kling", "video_to_audio", {"video_url": f"k4u://jobs/{video}/assets/7"})
    assert d.job(child).status == "waiting"
    before = paid(sim)
    d.run_for(15)
    job = d.job(child)
    assert d.job(video).status == "succeeded"
    assert job.status == "failed" and job.error_code == "invalid_reference" and "asset 7" in (job.error_message or "")
    assert paid(sim) == before
    with pytest.raises(IntakeInvalid) as exc:  # the parent has finished: intake knows at once
        d.create("kling", "video_to_audio", {"video_url": f"k4u://jobs/{video}/assets/3"})
    assert exc.value.field == "input.video_url" and "stored 1 asset" in exc.value.message


def test_bad_references_are_422_naming_the_field(d: Driver) -> None:
    cases = {
        "k4u://jobs/job_0123456789ab0123456789abcdef/assets/0": "names no job",
        "k4u://jobs/job_01/assets/x": "not a valid reference",
        "k4u://jobs/nope": "not a valid reference",
        "k4u://items/0/assets/0": "only inside POST /v1/batches",
    }
    for image, reason in cases.items():
        with pytest.raises(IntakeInvalid) as exc:
            i2v(d, image)
        assert exc.value.field == "input.image" and reason in exc.value.message, (image, exc.value.message)
    grid = {"provider": "midjourney", "operation": "imagine", "input": {"prompt": PROMPT}}
    for at, ref, reason in [(1, "k4u://items/1/assets/0", "names itself"), (1, "k4u://items/2/assets/0", "a later item")]:
        body = BatchCreate.model_validate({"jobs": [grid, {"provider": "kling", "operation": "image2video", "input": {"prompt": "p", "image": ref}}, grid]})
        with pytest.raises(IntakeInvalid) as exc:
            create_batch(d.rt, body)
        assert exc.value.field == f"jobs.{at}.input.image" and reason in exc.value.message


def test_cancelling_a_waiting_child_leaves_the_parent_running(d: Driver) -> None:
    grid = d.create("midjourney", "imagine", {"prompt": PROMPT})
    child = i2v(d, f"k4u://jobs/{grid}/assets/0")
    assert cancel_job(d.rt, child).status == "cancelled"
    assert d.job(grid).status in ("submitting", "running")
    d.run_for(12)
    assert d.job(grid).status == "succeeded" and d.job(child).status == "cancelled"


def test_a_crash_between_the_parents_success_and_the_childs_step_loses_no_child(d: Driver, monkeypatch: pytest.MonkeyPatch) -> None:
    grid = d.create("midjourney", "imagine", {"prompt": PROMPT})
    child = i2v(d, f"k4u://jobs/{grid}/assets/0")
    monkeypatch.setattr(pipelines, "children", lambda session, parent_id: [])  # the parent's commit skips its children
    for _ in range(20):
        d.run_for(1)
        if d.job(grid).status == "succeeded":
            break
    assert d.job(grid).status == "succeeded" and d.job(child).status == "waiting"
    counts = d.tick()  # the beat finds it
    assert counts["waiting_settled"] == 1 and d.job(child).status != "waiting"
    d.run_for(12)
    assert d.job(child).status == "succeeded"


def test_three_step_batch_pipeline(d: Driver, sim: Sim) -> None:
    body = BatchCreate.model_validate(
        {
            "jobs": [
                {"provider": "midjourney", "operation": "imagine", "input": {"prompt": PROMPT}},
                {"provider": "kling", "operation": "image2video", "input": {"prompt": "p", "image": "k4u://items/0/assets/0"}},
                {"provider": "kling", "operation": "video_to_audio", "input": {"video_url": "k4u://items/1/assets/0", "bgm_prompt": "calm"}},
            ]
        }
    )
    _, made, created = create_batch(d.rt, body)
    assert created and [j.status for j in made] == ["queued", "waiting", "waiting"]
    ids = [j.id for j in made]
    assert d.public(ids[2])["input"]["video_url"] == f"k4u://jobs/{ids[1]}/assets/0" and d.public(ids[2])["depends_on"] == [ids[1]]
    d.run_for(40)
    jobs = [d.public(i) for i in ids]
    assert [j["status"] for j in jobs] == ["succeeded"] * 3, [j["error"] for j in jobs]
    assert task_of(sim, d, ids[1])["inputs_sha256"] == {"image": jobs[0]["assets"][0]["sha256"]}
    assert task_of(sim, d, ids[2])["inputs_sha256"] == {"video_url": jobs[1]["assets"][0]["sha256"]}


def test_on_s3_storage_the_relay_fetches_the_parents_asset_by_a_presigned_url(
    engine_factory: Callable[..., Driver], sim: Sim, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    import boto3

    from tests.s3server import moto_server
    from workers.context import build_runtime
    from workers.dispatch import RecordingDispatcher

    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
    env |= {"AWS_CONFIG_FILE": str(tmp_path / "none"), "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none")}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    sim.admin("/_sim/config", {"queue_s": 1.0, "run_s": 3.0})
    with moto_server() as endpoint:
        boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="assets")
        base = engine_factory(poll_expected_s=4.0, poll_min_interval_s=1.0)  # no K4U_PUBLIC_URL: the presigned URL serves
        settings = base.rt.settings.model_copy(update={"storage_url": "s3://assets/k4u", "s3_endpoint_url": endpoint})
        rt = build_runtime(settings, RecordingDispatcher())
        rt.clock = base.clock.now
        try:
            d = Driver(rt, rt.dispatcher, base.clock)  # type: ignore[arg-type]
            grid = d.create("midjourney", "imagine", {"prompt": PROMPT})
            child = i2v(d, f"k4u://jobs/{grid}/assets/0")
            d.run_for(20)
            assert d.job(child).status == "succeeded", d.job(child).error_message
            assert task_of(sim, d, child)["inputs_sha256"] == {"image": d.public(grid)["assets"][0]["sha256"]}
        finally:
            rt.close()


def test_midjourney_blend_of_two_jobs_outputs_is_sent_inline(d: Driver, sim: Sim) -> None:
    """Midjourney's base64Array takes data URIs only (Capabilities.inline_fields): the parents' stored
    images go inline, whatever links the deployment could give, and the relay decodes our bytes."""
    a = d.create("midjourney", "imagine", {"prompt": PROMPT})
    b = d.create("midjourney", "imagine", {"prompt": "a fox in snow"})
    blend = d.create("midjourney", "blend", {"base64Array": [f"k4u://jobs/{a}/assets/0", f"k4u://jobs/{b}/assets/2"]})
    assert d.public(blend)["depends_on"] == [a, b]
    d.run_for(20)
    job = d.public(blend)
    assert job["status"] == "succeeded", job["error"]
    (row,) = [t for t in sim.admin("/_sim/tasks")["tasks"] if t.get("task_id") == job["provider_task_id"]]
    assert row["inputs_sha256"] == {"base64Array.0": d.public(a)["assets"][0]["sha256"], "base64Array.1": d.public(b)["assets"][2]["sha256"]}
