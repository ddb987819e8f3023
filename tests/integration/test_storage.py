"""Object store contract tests: local directory, memory and S3 (moto's server on loopback)."""

from __future__ import annotations

import hashlib
import os
import sys
import tracemalloc
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import httpx
import pytest

from models.errors import ConfigError, StorageError, TooLarge
from workers.context import build_runtime
from workers.dispatch import RecordingDispatcher
from workers.settings import Settings
from workers.storage import ObjectStore, open_store
from workers.storage.local import LocalStore
from workers.storage.memory import MemoryStore
from workers.storage.s3 import S3Store

try:
    from tests.s3server import moto_server
except ModuleNotFoundError:  # plain `pytest` without the repo root on sys.path
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from tests.s3server import moto_server

MiB = 1024 * 1024
CHUNK = 64 * 1024


@dataclass
class Backend:
    name: str
    store: ObjectStore
    leftovers: Callable[[], list[str]]  # every object/temp file/upload the backend holds
    calls: list[str] = field(default_factory=list)  # S3 operations the store made


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    with moto_server() as endpoint_url:
        yield endpoint_url


@pytest.fixture
def s3_client(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
    env |= {"AWS_CONFIG_FILE": str(tmp_path / "none"), "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none")}
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    for var in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(var, raising=False)
    return boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")


@pytest.fixture
def bucket(s3_client: Any) -> str:
    s3_client.create_bucket(Bucket=(name := f"k4u-{uuid.uuid4().hex[:16]}"))
    return name


def s3_leftovers(client: Any, bucket: str) -> list[str]:
    objects = client.list_objects_v2(Bucket=bucket).get("Contents", [])
    uploads = client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    return sorted([o["Key"] for o in objects] + [f"multipart:{u['Key']}" for u in uploads])


@pytest.fixture(params=["local", "memory", "s3"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "local":
        root = tmp_path / "objects"
        return Backend("local", LocalStore(str(root)), lambda: sorted(p.name for p in root.rglob("*")))
    if request.param == "memory":
        return Backend("memory", (mem := MemoryStore()), mem.keys)
    client, name = request.getfixturevalue("s3_client"), request.getfixturevalue("bucket")
    store = S3Store(name, "", endpoint_url=request.getfixturevalue("s3_endpoint"))
    backend = Backend("s3", store, lambda: s3_leftovers(client, name))
    store._client.meta.events.register("before-call.s3", lambda model, **_: backend.calls.append(model.name))
    return backend


def chunked(data: bytes, size: int = CHUNK) -> Iterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


class Source:
    """A generator of `total` pseudo-random bytes in 64 KiB chunks, hashed as it goes."""

    def __init__(self, total: int, fail_after: int | None = None) -> None:
        self.total, self.fail_after, self.sent, self.digest = total, fail_after, 0, hashlib.sha256()
        self.error = ConnectionError("connection reset mid-download")

    def __iter__(self) -> Iterator[bytes]:
        for i in range(0, self.total, CHUNK):
            if self.fail_after is not None and self.sent >= self.fail_after:
                raise self.error
            chunk = (hashlib.sha256(i.to_bytes(8, "big")).digest() * (CHUNK // 32))[: self.total - i]
            self.sent += len(chunk)
            self.digest.update(chunk)
            yield chunk


def test_round_trip_and_lifecycle(backend: Backend) -> None:
    store, data, key = backend.store, os.urandom(300_001), "jobs/j1/out.png"
    obj = store.put_stream(key, chunked(data, 7_000), "image/png", max_bytes=len(data))
    digest = hashlib.sha256(data).hexdigest()
    assert (obj.key, obj.size, obj.content_type, obj.sha256) == (key, len(data), "image/png", digest)
    assert b"".join(store.open(key)) == data
    assert store.exists(key) and key in store.describe(key)
    store.delete(key)
    store.delete(key)  # missing is fine
    assert not store.exists(key)
    with pytest.raises(StorageError, match=f"object not found: {key}"):
        store.open(key)
    empty = store.put_stream("empty", iter([]), "text/plain", max_bytes=0)
    assert (empty.size, empty.sha256, b"".join(store.open("empty"))) == (0, hashlib.sha256(b"").hexdigest(), b"")


def test_open_streams_in_chunks(backend: Backend) -> None:
    data = os.urandom(3 * MiB)
    backend.store.put_stream("big", chunked(data), "application/octet-stream", max_bytes=len(data))
    it = backend.store.open("big")
    first = next(it)
    assert 0 < len(first) < len(data) and first + b"".join(it) == data


def test_replace_same_key(backend: Backend) -> None:
    backend.store.put_stream("k", [b"old"], "text/plain", max_bytes=10)
    obj = backend.store.put_stream("k", [b"new", b"er"], "text/csv", max_bytes=10)
    assert (obj.size, obj.sha256, obj.content_type) == (5, hashlib.sha256(b"newer").hexdigest(), "text/csv")
    assert b"".join(backend.store.open("k")) == b"newer" and backend.leftovers() == ["k"]


@pytest.mark.parametrize("at", [100_000, 9 * MiB], ids=["small", "multipart"])
@pytest.mark.parametrize("failure", ["too_large", "source_error"])
def test_failed_put_leaves_nothing(backend: Backend, failure: str, at: int) -> None:
    """TooLarge, or a ConnectionError from the source (propagated as is), `at` bytes in."""
    source = Source(12 * MiB, fail_after=at if failure == "source_error" else None)
    limit = at if failure == "too_large" else 100 * MiB
    with pytest.raises(TooLarge if failure == "too_large" else ConnectionError) as excinfo:
        backend.store.put_stream("dir/partial", source, "video/mp4", max_bytes=limit)
    assert failure == "too_large" or excinfo.value is source.error
    assert source.sent <= at + CHUNK  # stopped as soon as the limit was crossed / the source failed
    if backend.name == "s3" and at > 8 * MiB:
        assert "CreateMultipartUpload" in backend.calls and "AbortMultipartUpload" in backend.calls
    assert not backend.store.exists("dir/partial")
    assert backend.leftovers() == []


def test_failed_replace_keeps_previous_object(backend: Backend) -> None:
    backend.store.put_stream("k", [b"previous"], "text/plain", max_bytes=100)
    with pytest.raises(TooLarge):
        backend.store.put_stream("k", Source(10_000), "text/plain", max_bytes=100)
    with pytest.raises(ConnectionError):
        backend.store.put_stream("k", Source(200_000, fail_after=1), "text/plain", max_bytes=1_000_000)
    assert b"".join(backend.store.open("k")) == b"previous" and backend.leftovers() == ["k"]


def test_presign(backend: Backend) -> None:
    data = os.urandom(50_000)
    backend.store.put_stream("p/q.bin", chunked(data), "application/octet-stream", max_bytes=len(data))
    url = backend.store.presign("p/q.bin", 300)
    assert (url is None) == (backend.name != "s3")
    if url is not None:
        response = httpx.get(url)
        assert url.startswith("http://127.0.0.1:") and response.status_code == 200 and response.content == data


def test_s3_presigns_against_the_public_endpoint_as_an_attachment(bucket: str, s3_client: Any, s3_endpoint: str) -> None:
    """K4U_S3_PUBLIC_ENDPOINT_URL: the store talks to the internal endpoint, the URL it hands out names
    (and is signed for) the public one; the response is an attachment, so provider HTML/SVG never renders."""
    public = s3_endpoint.replace("127.0.0.1", "localhost")  # another host name for the same server
    store = open_store(f"s3://{bucket}/pre", s3_endpoint_url=s3_endpoint, s3_public_endpoint_url=public)
    data = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
    store.put_stream("j/0.svg", [data], "image/svg+xml", max_bytes=len(data))
    url = store.presign("j/0.svg", 300)
    assert url is not None
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}" == public and parts.path == f"/{bucket}/pre/j/0.svg"
    assert parse_qs(parts.query)["response-content-disposition"] == ["attachment"]
    response = httpx.get(url)
    assert response.status_code == 200 and response.content == data
    assert response.headers["content-disposition"] == "attachment"
    internal = S3Store(bucket, "pre", endpoint_url=s3_endpoint).presign("j/0.svg", 300)  # no public endpoint: the internal one
    assert internal is not None and internal.startswith(f"{s3_endpoint}/") and "response-content-disposition=attachment" in internal


def test_the_runtime_store_presigns_for_k4u_s3_public_endpoint_url(bucket: str, s3_client: Any, s3_endpoint: str, tmp_path: Path) -> None:
    public = s3_endpoint.replace("127.0.0.1", "localhost")
    settings = Settings(
        database_url=f"sqlite:///{tmp_path}/k4u.db", storage_url=f"s3://{bucket}/pre", s3_endpoint_url=s3_endpoint, s3_public_endpoint_url=public
    )
    rt = build_runtime(settings, RecordingDispatcher())
    try:
        rt.store.put_stream("j/0.mp4", [b"video"], "video/mp4", max_bytes=10)
        url = rt.store.presign("j/0.mp4", 300)
    finally:
        rt.close()
    assert url is not None and url.startswith(f"{public}/{bucket}/pre/j/0.mp4?") and httpx.get(url).content == b"video"


def test_s3_20mib_goes_multipart_with_bounded_memory(bucket: str, s3_client: Any, s3_endpoint: str) -> None:
    store = S3Store(bucket, "media", endpoint_url=s3_endpoint)
    peaks: list[int] = []  # traced peak when the parts are up; moto then assembles the object in-process
    store._client.meta.events.register("before-call.s3.CompleteMultipartUpload", lambda **_: peaks.append(tracemalloc.get_traced_memory()[1]))
    source = Source(20 * MiB)
    tracemalloc.start()
    try:
        obj = store.put_stream("video.mp4", source, "video/mp4", max_bytes=25 * MiB)
    finally:
        tracemalloc.stop()
    assert (obj.size, obj.sha256) == (20 * MiB, source.digest.hexdigest())
    head = s3_client.head_object(Bucket=bucket, Key="media/video.mp4")
    assert head["ETag"].strip('"').endswith("-3") and head["ContentType"] == "video/mp4"
    streamed = hashlib.sha256()
    for chunk in store.open("video.mp4"):
        streamed.update(chunk)
    assert streamed.hexdigest() == obj.sha256
    # Memory: moto serves from this process, so the traced peak (taken before moto assembles
    # the object) also counts its copies of each part: ~60-70 MiB here, of which the store's
    # side is ~26 MiB. Buffering the whole source first measured ~96 MiB. No timing asserted.
    assert len(peaks) == 1 and peaks[0] < 4 * obj.size


def test_s3_errors_are_storage_errors_without_secrets(s3_client: Any, s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "Sup3rS3cretValue")
    store = S3Store("k4u-no-such-bucket", "pre", endpoint_url=s3_endpoint)
    for call in (lambda: store.put_stream("k", [b"x"], "text/plain", 10), lambda: store.open("k")):
        with pytest.raises(StorageError) as excinfo:
            call()
        message = str(excinfo.value)
        assert "NoSuchBucket" in message and "s3://k4u-no-such-bucket/pre/k" in message
        assert "Sup3rS3cretValue" not in message and "testing" not in message
        assert not excinfo.value.retryable


def test_local_removes_temp_files_older_than_the_cutoff_and_nothing_else(tmp_path: Path) -> None:
    """What a worker killed mid-write leaves: `.k4u-tmp-*` files last written before the cutoff go;
    a temp file still being written (fresh), objects, other files, directories and symlinks stay."""
    root, outside = tmp_path / "objects", tmp_path / "outside"
    store = LocalStore(str(root))
    store.put_stream("job_a/0.mp4", [b"object"], "video/mp4", max_bytes=10)
    cutoff = datetime.now(UTC) - timedelta(hours=3)
    hours_ago = (datetime.now(UTC) - timedelta(hours=4)).timestamp()
    (root / "deep" / "er").mkdir(parents=True)
    outside.mkdir()
    files = {
        "job_a/.k4u-tmp-0123456789abcdef": hours_ago,
        "deep/er/.k4u-tmp-00aa11bb": hours_ago,  # left by crashes
        "job_a/.k4u-tmp-fedcba9876543210": None,  # a download in progress
        "job_a/k4u-tmp-not-ours": hours_ago,
        "job_a/notes.k4u-tmp-x": hours_ago,
        "job_a/0.mp4": hours_ago,
    }
    for name, mtime in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        if name != "job_a/0.mp4":
            (root / name).write_bytes(b"partial")
        if mtime is not None:
            os.utime(root / name, (mtime, mtime))
    (outside / "old").write_bytes(b"not ours")
    os.utime(outside / "old", (hours_ago, hours_ago))
    (root / "job_a" / ".k4u-tmp-link").symlink_to(outside / "old")
    (root / "job_b" / ".k4u-tmp-dir").mkdir(parents=True)
    os.utime(root / "job_b" / ".k4u-tmp-dir", (hours_ago, hours_ago))
    (root / "out").symlink_to(outside, target_is_directory=True)
    (outside / ".k4u-tmp-beyond-the-link").write_bytes(b"not ours")
    os.utime(outside / ".k4u-tmp-beyond-the-link", (hours_ago, hours_ago))

    assert store.remove_leftovers(cutoff) == 2
    assert sorted(str(p.relative_to(root)) for p in root.rglob("*") if not p.is_dir() or p.is_symlink()) == [
        "job_a/.k4u-tmp-fedcba9876543210",
        "job_a/.k4u-tmp-link",
        "job_a/0.mp4",
        "job_a/k4u-tmp-not-ours",
        "job_a/notes.k4u-tmp-x",
        "out",
    ]
    assert (root / "job_b" / ".k4u-tmp-dir").is_dir() and sorted(p.name for p in outside.iterdir()) == [".k4u-tmp-beyond-the-link", "old"]
    assert b"".join(store.open("job_a/0.mp4")) == b"object"
    assert LocalStore(str(tmp_path / "never-written")).remove_leftovers(cutoff) == 0


def test_s3_aborts_unfinished_uploads_under_its_prefix_started_before_the_cutoff(bucket: str, s3_client: Any, s3_endpoint: str) -> None:
    """A multipart upload a killed worker never completed nor aborted: aborted once it started before
    the cutoff, and only under the store's prefix (another application's uploads in the bucket stay)."""
    store = S3Store(bucket, "pre", endpoint_url=s3_endpoint)
    store.put_stream("job_a/1.png", [b"object"], "image/png", max_bytes=10)
    for key in ("pre/job_a/0.mp4", "other/x.mp4", "prelude/y.mp4"):
        upload = s3_client.create_multipart_upload(Bucket=bucket, Key=key)
        s3_client.upload_part(Bucket=bucket, Key=key, UploadId=upload["UploadId"], PartNumber=1, Body=b"part")
    (started,) = {u["Initiated"] for u in s3_client.list_multipart_uploads(Bucket=bucket)["Uploads"] if u["Key"] == "pre/job_a/0.mp4"}
    everything = ["multipart:other/x.mp4", "multipart:pre/job_a/0.mp4", "multipart:prelude/y.mp4", "pre/job_a/1.png"]
    assert store.remove_leftovers(started) == 0  # not older than the cutoff: an upload that may still be going on
    assert s3_leftovers(s3_client, bucket) == everything
    assert store.remove_leftovers(started + timedelta(seconds=1)) == 1
    assert s3_leftovers(s3_client, bucket) == [e for e in everything if e != "multipart:pre/job_a/0.mp4"]
    assert b"".join(store.open("job_a/1.png")) == b"object"
    assert MemoryStore().remove_leftovers(started) == 0  # nothing is ever left behind in memory


@pytest.mark.parametrize("key", ["../x", "a/../../x", "/etc/passwd", "", "a\\..\\x", "link/x"])
def test_local_rejects_escaping_keys(tmp_path: Path, key: str) -> None:
    (tmp_path / "root").mkdir()
    (tmp_path / "outside").mkdir()
    (tmp_path / "root" / "link").symlink_to(tmp_path / "outside")
    store = LocalStore(str(tmp_path / "root"))
    with pytest.raises(StorageError):
        store.put_stream(key, [b"x"], "text/plain", 10)
    with pytest.raises(StorageError):
        store.open(key)
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["link", "outside", "root"]


def test_open_store_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tmp_path = tmp_path.resolve()
    store = open_store(f"file://{tmp_path}/objects")
    assert isinstance(store, LocalStore)
    store.put_stream("a/b.txt", [b"hi"], "text/plain", 10)
    assert store.describe("a/b.txt") == str(tmp_path / "objects" / "a" / "b.txt")
    assert (tmp_path / "objects" / "a" / "b.txt").read_bytes() == b"hi"
    monkeypatch.chdir(tmp_path)
    relative = open_store("file://./data/objects")
    monkeypatch.chdir("/")  # resolved at construction, not at use
    relative.put_stream("x", [b"1"], "text/plain", 10)
    assert relative.describe("x") == str(tmp_path / "data" / "objects" / "x")


def test_open_store_s3_and_others(bucket: str, s3_client: Any, s3_endpoint: str) -> None:
    store = open_store(f"s3://{bucket}/pre", s3_endpoint_url=s3_endpoint)
    assert isinstance(store, S3Store)
    store.put_stream("k.txt", [b"hello"], "text/plain", 10)
    assert store.describe("k.txt") == f"s3://{bucket}/pre/k.txt"
    assert s3_client.get_object(Bucket=bucket, Key="pre/k.txt")["Body"].read() == b"hello"
    assert isinstance(open_store("memory://"), MemoryStore)
    for url in ("ftp://x", "s3:///nobucket"):
        with pytest.raises(ConfigError):
            open_store(url)
