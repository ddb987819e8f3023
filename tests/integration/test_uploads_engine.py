"""`k4u://uploads` references through the engine, the real database and the simulator over loopback:
the relay (the simulator's Kling image2video, which fetches its input images like the real relay)
receives the very bytes we stored, by a signed K4U_PUBLIC_URL link (local store), a presigned S3 URL
or a data: URI; intake refuses what cannot be served; a store that is down at submit time keeps the
job queued, unsent, until it is back; a large inline data: URI is stored as an upload."""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from api.main import create_app
from cli.procs import free_port
from models.errors import StorageError
from models.schemas import JobCreate
from tests.conftest import Driver, FakeClock, Sim, make_settings
from tests.servers import serve
from workers.context import build_runtime
from workers.dispatch import RecordingDispatcher
from workers.services.create import create_job
from workers.services.intake import IntakeInvalid
from workers.storage import ObjectStore
from workers.storage.local import LocalStore
from workers.uploads import delete_upload, store_upload

PNG = b"\x89PNG\r\n\x1a\n" + os.urandom(300_000)


class FlakyStore(LocalStore):
    """A local store that can be taken down (every read and check fails, as a store that is unreachable)."""

    down = False

    def exists(self, key: str) -> bool:
        if self.down:
            raise StorageError("local store unavailable (test)")
        return super().exists(key)


@pytest.fixture
def make(db_url: str, sim: Sim, clock: FakeClock, tmp_path: Path) -> Iterator[Callable[..., Driver]]:
    made: list[Any] = []

    def build(store: ObjectStore | None = None, **extra: Any) -> Driver:
        settings = make_settings(db_url, sim.url, tmp_path, **extra)
        recorder = RecordingDispatcher()
        rt = build_runtime(settings, recorder, store=store or (None if settings.storage_url.startswith("s3://") else LocalStore(str(tmp_path / "objects"))))
        rt.clock = clock.now
        made.append(rt)
        return Driver(rt, recorder, clock)

    yield build
    for rt in made:
        rt.close()


@contextmanager
def public_api(make: Callable[..., Driver], **extra: Any) -> Iterator[Driver]:
    """A driver whose K4U_PUBLIC_URL is an API on loopback serving the same database and store."""
    port = free_port()
    d = make(public_url=f"http://127.0.0.1:{port}", **extra)
    with serve(create_app(d.rt.settings, runtime=d.rt), port=port):
        yield d


def fetched(sim: Sim, d: Driver, job_id: str) -> dict[str, str]:
    """The sha256 of the bytes the relay fetched for the job's task, per input field."""
    task_id = d.job(job_id).provider_task_id
    (row,) = [t for t in sim.admin("/_sim/tasks")["tasks"] if t.get("task_id") == task_id]
    return row["inputs_sha256"]  # type: ignore[no-any-return]


def image2video(d: Driver, image: str) -> str:
    return d.create("kling", "image2video", {"prompt": "a cat turns its head", "image": image})


def test_local_store_link_serves_the_relay_the_stored_bytes(make, sim: Sim) -> None:  # type: ignore[no-untyped-def]
    with public_api(make) as d:
        up = store_upload(d.rt, [PNG[:100_000], PNG[100_000:]], filename="cat.png", content_type="image/png")
        ref = f"k4u://uploads/{up.id}"
        job_id = image2video(d, ref)
        d.run_for(12)
        job = d.job(job_id)
        assert job.status == "succeeded", (job.error_code, job.error_message)
        assert job.input["image"] == ref  # the row keeps the reference, never the link
        assert fetched(sim, d, job_id) == {"image": hashlib.sha256(PNG).hexdigest()} and up.sha256 == hashlib.sha256(PNG).hexdigest()
        assert d.public(job_id)["inputs"] == [{"field": "image", "ref": ref, "upload_id": up.id, "job_id": None, "index": None, "sha256": up.sha256}]
        assert sim.admin("/_sim/paid")["count"] == 1


def test_s3_store_presigned_url_serves_the_relay_the_stored_bytes(make, sim: Sim, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import boto3

    from tests.s3server import moto_server

    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
    env |= {"AWS_CONFIG_FILE": str(tmp_path / "none"), "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none")}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    with moto_server() as endpoint:
        boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="inputs")
        d = make(storage_url="s3://inputs/k4u", s3_endpoint_url=endpoint)  # no K4U_PUBLIC_URL: the presigned URL serves
        up = store_upload(d.rt, [PNG], filename="cat.png", content_type="image/png")
        job_id = image2video(d, f"k4u://uploads/{up.id}")
        d.run_for(12)
        assert d.job(job_id).status == "succeeded"
        assert fetched(sim, d, job_id) == {"image": up.sha256}


def test_data_uri_when_there_is_no_link_and_422_when_too_big_for_one(make, sim: Sim) -> None:  # type: ignore[no-untyped-def]
    d = make(inline_input_max_bytes=400_000)  # no S3, no K4U_PUBLIC_URL
    up = store_upload(d.rt, [PNG], filename=None, content_type="image/png")
    job_id = image2video(d, f"k4u://uploads/{up.id}")
    d.run_for(12)
    assert d.job(job_id).status == "succeeded"
    assert fetched(sim, d, job_id) == {"image": up.sha256}

    small = make(inline_input_max_bytes=100_000)
    with pytest.raises(IntakeInvalid) as exc:
        image2video(small, f"k4u://uploads/{up.id}")
    assert exc.value.field == "input.image"
    assert "K4U_PUBLIC_URL" in exc.value.message and "K4U_INLINE_INPUT_MAX_BYTES" in exc.value.message and "s3://" in exc.value.message


def test_bad_references_are_422_naming_the_field(make, sim: Sim) -> None:  # type: ignore[no-untyped-def]
    d = make()
    up = store_upload(d.rt, [b"tiny"], filename=None, content_type="image/png")
    cases = {
        "k4u://uploads/upl_" + "0" * 24: "names no upload",
        "k4u://uploads/nope": "not a valid reference",
        "k4u://elsewhere/x": "names no kind",
    }
    for image, reason in cases.items():
        with pytest.raises(IntakeInvalid) as exc:
            image2video(d, image)
        assert exc.value.field == "input.image" and reason in exc.value.message, exc.value.message
    with pytest.raises(IntakeInvalid) as exc:
        d.create("kling", "image2video", {"prompt": "p", "image": "https://x.example/a.png", "dynamic_masks": [{"mask": "k4u://uploads/bad"}]})
    assert exc.value.field == "input.dynamic_masks.0.mask"
    d.clock.advance(d.rt.settings.upload_ttl_s + 1)
    with pytest.raises(IntakeInvalid) as exc:
        image2video(d, f"k4u://uploads/{up.id}")
    assert "expired" in exc.value.message
    assert sim.admin("/_sim/paid")["count"] == 0


def test_storage_down_at_submit_keeps_the_job_queued_then_it_succeeds(make, sim: Sim, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    store = FlakyStore(str(tmp_path / "objects"))
    with public_api(make, store=store) as d:
        up = store_upload(d.rt, [PNG], filename="cat.png", content_type="image/png")
        store.down = True
        job_id = image2video(d, f"k4u://uploads/{up.id}")
        d.run_for(5)
        job = d.job(job_id)
        assert job.status == "queued" and job.error_code == "not_sent" and "input file unavailable" in (job.error_message or "")
        assert sim.admin("/_sim/paid")["count"] == 0  # nothing sent with a broken input
        store.down = False
        d.run_for(20)
        assert d.job(job_id).status == "succeeded"
        assert fetched(sim, d, job_id) == {"image": up.sha256} and sim.admin("/_sim/paid")["count"] == 1


def test_upload_deleted_before_submit_fails_the_job_unsent(make, sim: Sim) -> None:  # type: ignore[no-untyped-def]
    with public_api(make) as d:
        up = store_upload(d.rt, [PNG], filename="cat.png", content_type="image/png")
        job, _ = create_job(d.rt, JobCreate(provider="kling", operation="image2video", input={"image": f"k4u://uploads/{up.id}"}))
        d.recorder.sent.clear()  # its submit message is lost: the sweep sends it after the lease
        assert delete_upload(d.rt, up.id)
        d.run_for(d.rt.settings.lease_s + 5, step=5)
        failed = d.job(job.id)
        assert failed.status == "failed" and failed.error_code == "invalid_input" and up.id in (failed.error_message or "")
        assert sim.admin("/_sim/paid")["count"] == 0


def test_large_inline_data_uri_is_stored_as_an_upload(make, sim: Sim) -> None:  # type: ignore[no-untyped-def]
    data = b"\x89PNG\r\n\x1a\n" + os.urandom(1_000_000)
    with public_api(make) as d:
        job_id = image2video(d, "data:image/png;base64," + base64.b64encode(data).decode())
        job = d.job(job_id)
        assert job.input["image"].startswith("k4u://uploads/upl_")  # the row stays small
        (inp,) = d.public(job_id)["inputs"]
        assert inp["field"] == "image" and inp["sha256"] == hashlib.sha256(data).hexdigest()
        d.run_for(12)
        assert d.job(job_id).status == "succeeded"
        assert fetched(sim, d, job_id) == {"image": hashlib.sha256(data).hexdigest()}


def test_sora_input_reference_link_is_fetched_by_the_relay(make, sim: Sim) -> None:  # type: ignore[no-untyped-def]
    with public_api(make) as d:
        up = store_upload(d.rt, [PNG], filename="ref.png", content_type="image/png")
        job_id = d.create("sora", "video", {"prompt": "a fox in snow", "input_reference": f"k4u://uploads/{up.id}"})
        job = d.job(job_id)
        assert job.status == "running", (job.error_code, job.error_message)
        (row,) = [t for t in sim.admin("/_sim/tasks")["tasks"] if t.get("task_id") == job.provider_task_id]
        assert row["input_reference"]["kind"] == "url" and row["input_reference"]["fetched_sha256"] == up.sha256


def test_veo_unified_images_are_fetched_by_the_relay(make, sim: Sim) -> None:  # type: ignore[no-untyped-def]
    with public_api(make) as d:
        up = store_upload(d.rt, [PNG], filename="frame.png", content_type="image/png")
        job_id = d.create("veo", "video", {"prompt": "waves", "images": [f"k4u://uploads/{up.id}"]})
        job = d.job(job_id)
        assert job.status == "running", (job.error_code, job.error_message)
        (row,) = [t for t in sim.admin("/_sim/tasks")["tasks"] if t.get("task_id") == job.provider_task_id]
        assert row["inputs_sha256"] == {"images.0": up.sha256}


def test_an_image_the_relay_cannot_fetch_fails_the_job_with_its_message(make, sim: Sim) -> None:  # type: ignore[no-untyped-def]
    d = make()
    job_id = image2video(d, f"{sim.url}/_sim/no-such-image.png")
    job = d.job(job_id)
    assert job.status == "failed" and "image fetch failed: HTTP 404" in (job.error_message or ""), (job.error_code, job.error_message)
    assert sim.admin("/_sim/paid")["count"] == 0


def test_lost_submit_answer_with_a_reference_charges_once(make, sim: Sim) -> None:  # type: ignore[no-untyped-def]
    """The relay took the job but its answer was lost: Kling's lookup finds the task (resolving the
    reference again changes nothing), so there is exactly one paid task and the job succeeds."""
    with public_api(make) as d:
        up = store_upload(d.rt, [PNG], filename="cat.png", content_type="image/png")
        sim.admin("/_sim/faults", {"error_5xx_next": 1, "status": 502, "after_accept": True})
        job_id = image2video(d, f"k4u://uploads/{up.id}")
        d.run_for(30)
        assert d.job(job_id).status == "succeeded"
        assert sim.admin("/_sim/paid")["count"] == 1 and fetched(sim, d, job_id) == {"image": up.sha256}
