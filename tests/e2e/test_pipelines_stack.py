"""Pipelines end to end on the `k4u dev` stack (API, worker pools, beat, real Redis and database)
against the simulator: Midjourney imagine -> Kling image2video on `k4u://jobs/<mj job>/assets/0` (the
relay fetches the MJ asset's stored bytes from a signed K4U_PUBLIC_URL link); a three-step batch
pipeline (imagine -> image2video -> video_to_audio by `k4u://items/...`); a failed parent failing its
child with no relay task for the child."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.conftest import Stack

pytestmark = pytest.mark.e2e


def _task(stack: Stack, job: dict[str, Any]) -> dict[str, Any]:
    return {t["task_id"]: t for t in stack.sim_admin("/_sim/tasks")["tasks"]}[job["provider_task_id"]]  # type: ignore[no-any-return]


def test_pipelines_on_the_dev_stack(stack_factory) -> None:  # type: ignore[no-untyped-def]
    stack: Stack = stack_factory(dev=True, public=True)
    with stack.client() as c:
        mj = c.post("/v1/jobs", json={"provider": "midjourney", "operation": "imagine", "input": {"prompt": "a lighthouse at dawn"}}).json()
        ref = f"k4u://jobs/{mj['id']}/assets/0"
        r = c.post("/v1/jobs", json={"provider": "kling", "operation": "image2video", "input": {"prompt": "the light turns", "image": ref}})
        assert r.status_code == 202, r.text
        child = r.json()
        assert child["status"] == "waiting" and child["depends_on"] == [mj["id"]]
        batch = c.post(
            "/v1/batches",
            json={
                "jobs": [
                    {"provider": "midjourney", "operation": "imagine", "input": {"prompt": "a fox in snow"}},
                    {"provider": "kling", "operation": "image2video", "input": {"prompt": "p", "image": "k4u://items/0/assets/0"}},
                    {"provider": "kling", "operation": "video_to_audio", "input": {"video_url": "k4u://items/1/assets/0", "bgm_prompt": "calm"}},
                ]
            },
        )
        assert batch.status_code == 202, batch.text
        steps = batch.json()["job_ids"]
        bad = c.post("/v1/jobs", json={"provider": "midjourney", "operation": "imagine", "input": {"prompt": "[sim:banned=gore] a scene"}}).json()
        orphan = c.post(
            "/v1/jobs", json={"provider": "kling", "operation": "image2video", "input": {"prompt": "p", "image": f"k4u://jobs/{bad['id']}/assets/0"}}
        )
        assert orphan.status_code == 202, orphan.text

    done = stack.wait_job(child["id"], timeout_s=90)
    parent = stack.wait_job(mj["id"])
    assert done["status"] == "succeeded", done["error"]
    assert _task(stack, done)["inputs_sha256"] == {"image": parent["assets"][0]["sha256"]} == {"image": done["inputs"][0]["sha256"]}

    jobs = [stack.wait_job(i, timeout_s=120) for i in steps]
    assert [j["status"] for j in jobs] == ["succeeded"] * 3, [j["error"] for j in jobs]
    assert jobs[2]["depends_on"] == [steps[1]] and jobs[2]["input"]["video_url"] == f"k4u://jobs/{steps[1]}/assets/0"
    assert _task(stack, jobs[1])["inputs_sha256"] == {"image": jobs[0]["assets"][0]["sha256"]}
    assert _task(stack, jobs[2])["inputs_sha256"] == {"video_url": jobs[1]["assets"][0]["sha256"]}

    failed = stack.wait_job(orphan.json()["id"], timeout_s=60)
    assert failed["status"] == "failed" and failed["error"]["code"] == "dependency_failed" and bad["id"] in failed["error"]["message"]
    assert failed["provider_task_id"] is None
    kling = [t for t in stack.sim_admin("/_sim/tasks")["tasks"] if t.get("family") == "kling"]
    assert sorted(t["kind"] for t in kling) == ["audio/video-to-audio", "videos/image2video", "videos/image2video"]  # none for the orphan
