"""The one-shot families (images, speech, gemini_image, ideogram) end to end on the `k4u dev` stack
(API, the worker pools with the oneshot one, beat, real Redis and database) against the simulator:
every operation over HTTP,
and a slow (120 s) synchronous generation on the oneshot queue that holds none of Kling's submits,
polls or downloads: with a single engine process, 50 Kling jobs and every other one-shot operation
finish while it is still out."""

from __future__ import annotations

import base64
import hashlib
import time
from typing import Any

import pytest

from simulator.media import MP3_BYTES, PNG_BYTES
from tests.e2e.conftest import Stack

pytestmark = pytest.mark.e2e

PNG_URI = "data:image/png;base64," + base64.b64encode(PNG_BYTES).decode()
SLOW_S = 120  # gpt-image's worst case: the test does not wait for it (a finished one-shot is proved by the other jobs)


def post(stack: Stack, provider: str, operation: str, inp: dict[str, Any]) -> str:
    with stack.client() as c:
        r = c.post("/v1/jobs", json={"provider": provider, "operation": operation, "input": inp})
        assert r.status_code == 202, r.text
        return str(r.json()["id"])


def test_oneshot_families_and_a_slow_generation_beside_kling(stack_factory) -> None:  # type: ignore[no-untyped-def]
    stack = stack_factory(dev=True, K4U_WORKER_CONCURRENCY="1")
    slow = post(stack, "images", "generate", {"prompt": f"a slow masterpiece [sim:delay={SLOW_S}]", "model": "gpt-image-1"})
    started = time.monotonic()
    kling = [post(stack, "kling", "text2video", {"prompt": f"fox {i}"}) for i in range(50)]
    for job_id in kling:
        job = stack.wait_job(job_id, timeout_s=SLOW_S)
        assert job["status"] == "succeeded", job["error"]
    assert time.monotonic() - started < SLOW_S
    assert stack.wait_job(slow, timeout_s=1, until=lambda j: True)["status"] == "submitting", "the slow generation is still out"

    jobs = {
        "images.generate.url": post(stack, "images", "generate", {"prompt": "a lighthouse", "model": "dall-e-3"}),
        "images.edit": post(stack, "images", "edit", {"prompt": "add a hat", "image": [PNG_URI, PNG_URI]}),
        "speech.speech": post(stack, "speech", "speech", {"input": "Hello from the stack.", "voice": "coral"}),
        "gemini_image.generate": post(stack, "gemini_image", "generate", {"prompt": "a lighthouse", "images": [PNG_URI]}),
        "ideogram.generate": post(stack, "ideogram", "generate", {"prompt": "a poster", "num_images": 2}),
        "ideogram.edit": post(stack, "ideogram", "edit", {"prompt": "a hat", "image": PNG_URI, "mask": PNG_URI}),
        "ideogram.remix": post(stack, "ideogram", "remix", {"prompt": "in winter", "image": PNG_URI}),
        "ideogram.reframe": post(stack, "ideogram", "reframe", {"image": PNG_URI, "resolution": "1536x640"}),
        "ideogram.replace_background": post(stack, "ideogram", "replace_background", {"prompt": "a beach", "image": PNG_URI}),
    }
    for name, job_id in jobs.items():
        job = stack.wait_job(job_id, timeout_s=30)
        assert job["status"] == "succeeded", (name, job["error"])
        want = MP3_BYTES if name.startswith("speech") else PNG_BYTES
        assert all(a["sha256"] == hashlib.sha256(want).hexdigest() for a in job["assets"]), name
    assert time.monotonic() - started < SLOW_S, "everything above ran while the slow generation was out"
    assert stack.wait_job(slow, timeout_s=1, until=lambda j: True)["status"] == "submitting"
    assert stack.sim_admin("/_sim/paid")["count"] == 50 + len(jobs)  # the slow call is in the ledger once it answers
    with stack.client() as c:
        r = c.post("/v1/jobs", json={"provider": "images", "operation": "generate", "input": {"prompt": "x", "stream": True}})
    assert r.status_code == 422 and "input.stream" in r.text
