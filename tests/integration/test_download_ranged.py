"""Big results through the real download step (store_outputs) into the local store and into
S3 (moto on loopback): a dropped body is resumed and the stored sha256 covers the whole file;
a source that cannot resume starts over without leaving the partial bytes behind; the relay
key reaches the first hop of a relay route only; out of reconnects, the step's retry takes
over. The result server is tests/ranged_server.py, which counts bytes on its side."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from sqlmodel import select

from models.schemas import JobCreate
from models.tables import Asset
from providers.base import OutputRef, ProviderStatus, State
from tests.conftest import SIM_KEY, Driver
from tests.ranged_server import RangedServer, blob, ranged_server, sha256
from tests.s3server import moto_server
from workers.db import session_scope
from workers.jobs import get_job
from workers.relay import Fetcher
from workers.services.apply import apply_status
from workers.services.create import create_job
from workers.services.download import store_outputs
from workers.storage import ObjectStore
from workers.storage.s3 import S3Store

MiB = 1024 * 1024


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    with moto_server() as endpoint_url:
        yield endpoint_url


@pytest.fixture(params=["local", "s3"])
def store_kind(request: pytest.FixtureRequest) -> str:
    return request.param  # type: ignore[no-any-return]


def use_store(d: Driver, kind: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    """Point the driver at the store under test; returns a function listing what it holds (objects,
    temp files, multipart uploads) so a test can see that a restart left nothing behind."""
    if kind == "local":
        root = tmp_path / "objects"
        return lambda: sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
    endpoint = request.getfixturevalue("s3_endpoint")
    for var, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
    }.items():
        monkeypatch.setenv(var, value)
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    client.create_bucket(Bucket=(bucket := f"k4u-{uuid.uuid4().hex[:16]}"))
    d.rt.store = S3Store(bucket, "", endpoint_url=endpoint)

    def held() -> list[str]:
        objects = [o["Key"] for o in client.list_objects_v2(Bucket=bucket).get("Contents", [])]
        uploads = [f"multipart:{u['Key']}" for u in client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])]
        return sorted(objects + uploads)

    return held


def download(d: Driver, srv: RangedServer, outputs: list[OutputRef]) -> str:
    """A Kling job whose relay is `srv` for its results: the provider reported these outputs, and
    the first download attempt has run."""
    job, _ = create_job(d.rt, JobCreate(provider="kling", operation="text2video", input={"prompt": "a fox"}))
    d.drain()
    d.rt.fetcher.close()
    d.rt.fetcher = Fetcher(allow_private=True, timeout_s=120, relay_base_url=srv.url, api_key=SIM_KEY, max_resumes=d.rt.settings.download_resumes)
    relay_is_srv = d.rt.settings.model_copy(update={"base_url": srv.url})
    with session_scope(d.rt.engine) as s:
        row = get_job(s, job.id)
        assert row is not None and row.status == "running"
        apply_status(s, row, ProviderStatus(row.provider_task_id, State.SUCCEEDED, outputs=outputs), settings=relay_is_srv, now=d.clock.now(), source="test")
    store_outputs(d.rt, job.id, d.job(job.id).version)
    return job.id


def stored(d: Driver, store: ObjectStore, job_id: str) -> tuple[Asset, str]:
    """The job's one asset and the sha256 of the bytes actually in the store."""
    with session_scope(d.rt.engine) as s:
        (asset,) = s.exec(select(Asset).where(Asset.job_id == job_id)).all()
    assert asset.storage_key is not None
    digest = hashlib.sha256()
    for chunk in store.open(asset.storage_key):
        digest.update(chunk)
    return asset, digest.hexdigest()


def test_a_64_mib_result_cut_midway_is_resumed_into_the_store(engine_factory, store_kind, request, monkeypatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    d = engine_factory()
    held = use_store(d, store_kind, request, monkeypatch, tmp_path)
    data = blob(64 * MiB)
    with ranged_server(data, cuts=[29 * MiB + 4321]) as srv:
        job_id = download(d, srv, [OutputRef(f"{srv.url}/file/clip.mp4", "video")])
    job = d.job(job_id)
    assert job.status == "succeeded", (job.error_code, job.error_message)
    asset, in_store = stored(d, d.rt.store, job_id)
    assert asset.sha256 == in_store == sha256(data) and asset.size == len(data)
    assert [s.status for s in srv.seen] == [200, 206] and srv.sent_total <= 1.05 * len(data)
    assert held() == [asset.storage_key]


@pytest.mark.parametrize("fault", ["ignores_range", "new_version"])
def test_a_source_that_cannot_resume_restarts_cleanly(engine_factory, store_kind, request, monkeypatch, tmp_path, fault) -> None:  # type: ignore[no-untyped-def]
    """20 MiB cut at 17 MiB: S3 has uploaded two 8 MiB parts when the body starts over; they
    must be dropped (multipart aborted), and the local temp file removed."""
    d = engine_factory()
    held = use_store(d, store_kind, request, monkeypatch, tmp_path)
    old, new = blob(20 * MiB, seed=1), blob(20 * MiB, seed=2)
    options: dict[str, Any] = {"ignore_range": True} if fault == "ignores_range" else {"next_version": (new, '"v2"')}
    want = old if fault == "ignores_range" else new
    with ranged_server(old, cuts=[17 * MiB], **options) as srv:
        job_id = download(d, srv, [OutputRef(f"{srv.url}/file/clip.mp4", "video")])
    job = d.job(job_id)
    assert job.status == "succeeded", (job.error_code, job.error_message)
    asset, in_store = stored(d, d.rt.store, job_id)
    assert asset.sha256 == in_store == sha256(want) and asset.size == len(want)
    assert [(s.range, s.status) for s in srv.seen] == [(None, 200), (f"bytes={17 * MiB}-", 200)]
    assert held() == [asset.storage_key], "nothing of the abandoned pass is left"


def test_a_relay_route_sends_the_key_on_its_first_hop_only(engine_factory) -> None:  # type: ignore[no-untyped-def]
    d = engine_factory()
    data = blob(3 * MiB)
    with ranged_server(data, cuts=[2 * MiB]) as srv:
        job_id = download(d, srv, [OutputRef("/go/content.mp4", "video")])
    assert d.job(job_id).status == "succeeded"
    asset, _ = stored(d, d.rt.store, job_id)
    assert asset.needs_auth and asset.source_url == f"{srv.url}/go/content.mp4" and asset.sha256 == sha256(data)
    assert [(s.path, s.authorization) for s in srv.seen] == [
        ("/go/content.mp4", f"Bearer {SIM_KEY}"),
        ("/file/content.mp4", None),
        ("/go/content.mp4", f"Bearer {SIM_KEY}"),
        ("/file/content.mp4", None),
    ]


def test_a_url_on_the_relay_host_that_is_not_a_relay_route_gets_no_key(engine_factory) -> None:  # type: ignore[no-untyped-def]
    d = engine_factory()
    with ranged_server(blob(MiB)) as srv:
        job_id = download(d, srv, [OutputRef(f"{srv.url}/go/video_url.mp4", "video")])
    assert d.job(job_id).status == "succeeded"
    assert [(s.path, s.authorization) for s in srv.seen] == [("/go/video_url.mp4", None), ("/file/video_url.mp4", None)]


def test_out_of_reconnects_the_download_step_retries_later(engine_factory) -> None:  # type: ignore[no-untyped-def]
    d = engine_factory(download_resumes=1)
    data = blob(4 * MiB)
    with ranged_server(data, cuts=[MiB, 2 * MiB, 3 * MiB]) as srv:
        job_id = download(d, srv, [OutputRef(f"{srv.url}/file/clip.mp4", "video")])
        job = d.job(job_id)
        assert job.status == "downloading" and job.error_retryable and job.error_code == "download_failed"
        assert "K4U_DOWNLOAD_RESUMES" in (job.error_message or "") and len(srv.seen) == 2
        d.run_for(60, step=5)  # the next attempt is a new fetch from byte 0 with its own budget; one cut is left
        job = d.job(job_id)
    assert job.status == "succeeded", (job.error_code, job.error_message)
    asset, _ = stored(d, d.rt.store, job_id)
    assert asset.sha256 == sha256(data)
