"""Input files end to end on the `k4u dev` stack (API, worker pools, beat, real Redis and database)
against the simulator: a 10 MB PNG stored with `k4u upload` (streamed to POST /v1/uploads), used by
Kling image2video by its reference; the relay fetches it from the signed K4U_PUBLIC_URL link, and the
bytes it received are the bytes we stored."""

from __future__ import annotations

import hashlib
import os
import struct
import zlib
from pathlib import Path

import pytest

from tests.e2e.conftest import TOKEN, Stack
from tests.integration.test_cli import k4u

pytestmark = pytest.mark.e2e


def noise_png(path: Path, side: int = 1830) -> bytes:
    """A valid RGB PNG of random pixels, about 10 MB (noise does not compress)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + os.urandom(side * 3) for _ in range(side))
    data = (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)) + chunk(b"IDAT", zlib.compress(rows, 1)) + chunk(b"IEND", b"")
    )
    path.write_bytes(data)
    return data


def test_uploaded_png_reaches_the_relay_byte_for_byte(stack_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    stack: Stack = stack_factory(dev=True, public=True)
    png = noise_png(tmp_path / "frame.png")
    assert len(png) > 10_000_000
    r = k4u("upload", "frame.png", env={"K4U_API_URL": stack.api, "K4U_API_TOKEN": TOKEN}, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    ref = r.stdout.strip()
    assert ref.startswith("k4u://uploads/upl_")
    with stack.client() as c:
        upload = c.get(f"/v1/uploads/{ref.rsplit('/', 1)[1]}").json()
        assert upload["sha256"] == hashlib.sha256(png).hexdigest() and upload["size"] == len(png)
        created = c.post("/v1/jobs", json={"provider": "kling", "operation": "image2video", "input": {"prompt": "the frame comes alive", "image": ref}})
        assert created.status_code == 202, created.text
    job = stack.wait_job(created.json()["id"], timeout_s=90)
    assert job["status"] == "succeeded", job["error"]
    assert job["input"]["image"] == ref and job["inputs"] == [
        {"field": "image", "ref": ref, "upload_id": upload["id"], "job_id": None, "index": None, "sha256": upload["sha256"]}
    ]
    task = {t["task_id"]: t for t in stack.sim_admin("/_sim/tasks")["tasks"]}[job["provider_task_id"]]
    assert task["inputs_sha256"] == {"image": upload["sha256"]}
