"""Kling's catalogue end to end on the `k4u dev` stack (API, worker pools, beat, real Redis and
database) against the simulator: a few of its operations over HTTP (omni video, a sound effect
with its audio result, a try-on image), identify_face -> lip_sync chained by our job id, a
refusal naming the field, and the stored bytes checked against the simulator's."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.conftest import Stack

pytestmark = pytest.mark.e2e

IMG, SND = "https://x.example/a.png", "https://x.example/a.mp3"
EXT = {"video": "mp4", "image": "png", "audio": "mp3"}


def post(stack: Stack, operation: str, inp: dict[str, Any]) -> str:
    with stack.client() as c:
        r = c.post("/v1/jobs", json={"provider": "kling", "operation": operation, "input": inp})
        assert r.status_code == 202, r.text
        return str(r.json()["id"])


def succeeded(stack: Stack, job_id: str, kinds: list[str]) -> dict[str, Any]:
    try:
        job = stack.wait_job(job_id, timeout_s=90)
    except AssertionError:  # still not finished: say why, with the job's error and events
        with stack.client() as c:
            job, events = c.get(f"/v1/jobs/{job_id}").json(), c.get(f"/v1/jobs/{job_id}/events").json()
        raise AssertionError((job["operation"], job["status"], job["error"], events)) from None
    assert job["status"] == "succeeded", (job["operation"], job["error"])
    assert sorted(a["kind"] for a in job["assets"]) == sorted(kinds), job["assets"]
    want = stack.sim_admin("/_sim/media-sha256")
    assert all(a["sha256"] == want[EXT[a["kind"]]] for a in job["assets"]), job["assets"]
    return job


def test_kling_catalogue_operations_and_the_lip_sync_chain(stack_factory) -> None:  # type: ignore[no-untyped-def]
    stack = stack_factory(dev=True)
    stack.sim_admin("/_sim/config", {"queue_s": 0.5, "run_s": 2.0})
    omni = post(stack, "omni_video", {"prompt": "a fox like <<<image_1>>>", "image_list": [{"image_url": IMG}], "duration": 5})
    sound = post(stack, "sound_effect", {"prompt": "rain on a tin roof", "duration": 4})
    try_on = post(stack, "virtual_try_on", {"human_image": IMG, "cloth_image": IMG})
    video = succeeded(stack, omni, ["video"])
    assert video["result"]["cost"] == {"units": 1.0} and video["result"]["video_id"]
    assert succeeded(stack, sound, ["audio"])["result"]["cost"] == {"units": 1.0}
    succeeded(stack, try_on, ["image"])

    faces = succeeded(stack, post(stack, "identify_face", {"video_id": video["result"]["video_id"]}), [])
    face_id = faces["result"]["face_data"][0]["face_id"]
    choice = {"face_id": face_id, "sound_file": SND, "sound_start_time": 0, "sound_end_time": 3000, "sound_insert_time": 0}
    succeeded(stack, post(stack, "lip_sync", {"job_id": faces["id"], "face_choose": [choice]}), ["video"])

    with stack.client() as c:
        r = c.post("/v1/jobs", json={"provider": "kling", "operation": "lip_sync", "input": {"job_id": omni, "face_choose": [choice]}})
        assert r.status_code == 422 and "input.job_id" in r.text, r.text
        r = c.post("/v1/jobs", json={"provider": "kling", "operation": "sound_effect", "input": {"prompt": "p", "duration": 2.5}})
        assert r.status_code == 422 and "input.duration" in r.text, r.text
    assert stack.sim_admin("/_sim/paid")["count"] == 5
