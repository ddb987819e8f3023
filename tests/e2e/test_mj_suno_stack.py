"""Midjourney and Suno end to end on the `k4u dev` stack with real Redis and a real database:
every operation, an action chained from a finished imagine by our job id, a banned prompt, a
queue-full retry, MODAL, notifyHook callbacks, and a Suno clip that fails beside a good one."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.conftest import Stack

pytestmark = pytest.mark.e2e
IMG = "data:image/png;base64,iVBORw0KGgo="


def post(stack: Stack, provider: str, operation: str, inp: dict[str, Any]) -> str:
    with stack.client() as c:
        r = c.post("/v1/jobs", json={"provider": provider, "operation": operation, "input": inp})
        assert r.status_code == 202, r.text
        return str(r.json()["id"])


def done(stack: Stack, job_id: str, status: str = "succeeded") -> dict[str, Any]:
    job = stack.wait_job(job_id, timeout_s=60)
    assert job["status"] == status, (job["status"], job["error"])
    return job


def test_midjourney_every_operation(stack_factory) -> None:  # type: ignore[no-untyped-def]
    stack = stack_factory(dev=True, public=True)
    stack.sim_admin("/_sim/faults", {"mj_queue_full_next": 1})
    busy = post(stack, "midjourney", "imagine", {"prompt": "first in a full queue"})
    # The relay said "queue full": the job waits in queued with the reason, it does not fail.
    stack.wait_job(busy, until=lambda j: (j["error"] or {}).get("code") == "mj_queue_full" or j["status"] != "queued")
    grid = post(stack, "midjourney", "imagine", {"prompt": "a lighthouse at dawn", "mode": "relax"})
    banned = post(stack, "midjourney", "imagine", {"prompt": "[sim:banned=gore] a scene"})
    blend = post(stack, "midjourney", "blend", {"base64Array": [IMG, IMG, IMG], "dimensions": "LANDSCAPE"})
    describe = post(stack, "midjourney", "describe", {"base64": IMG})
    video = post(stack, "midjourney", "video", {"image": "https://x.example/frame.png", "motion": "high"})
    upload = post(stack, "midjourney", "upload", {"base64Array": [IMG, IMG]})
    parked = post(stack, "midjourney", "imagine", {"prompt": "[sim:modal] region edit"})

    g = done(stack, grid)
    assert len(g["assets"]) == 5 and {b["label"] for b in g["result"]["buttons"]} >= {"U1", "U2", "V1"}
    up = post(stack, "midjourney", "action", {"job_id": grid, "button": "U2"})
    reroll = post(stack, "midjourney", "action", {"job_id": grid, "button": "reroll"})
    u = done(stack, up)
    assert len(u["assets"]) == 1 and u["result"]["buttons"]
    done(stack, reroll)
    zoom = done(stack, post(stack, "midjourney", "action", {"job_id": up, "button": "Zoom Out 2x"}))
    assert zoom["assets"]

    b = done(stack, banned, "failed")
    assert b["error"]["code"] == "mj_banned_prompt" and "gore" in b["error"]["message"]
    q = done(stack, busy)
    with stack.client() as c:
        reasons = [e["reason"] for e in c.get(f"/v1/jobs/{busy}/events").json()]
    assert any("mj_queue_full" in r for r in reasons)
    done(stack, blend)
    assert len(done(stack, describe)["result"]["prompts"]) == 4
    assert [a["kind"] for a in done(stack, video)["assets"]].count("video") == 4
    assert len(done(stack, upload)["assets"]) == 2
    stack.wait_job(parked, until=lambda j: bool((j["result"] or {}).get("awaiting_input")))
    modal = post(stack, "midjourney", "modal", {"job_id": parked, "prompt": "paint it red"})
    done(stack, modal)
    done(stack, parked)

    stats = stack.sim_admin("/_sim/stats")
    assert stats["callbacks_sent"] > 0, "notifyHook was set to our per-job callback URL"
    assert any(k.startswith("POST /mj-relax/mj/submit/imagine") for k in stats["requests"])
    assert stats["polls"].get("mj_batch", 0) > 0 and stats["polls"].get("mj_single", 0) == 0
    assert q["provider_task_id"]


def test_suno_modes_lyrics_and_a_failed_clip(stack_factory) -> None:  # type: ignore[no-untyped-def]
    stack = stack_factory(dev=True)
    sha = stack.sim_admin("/_sim/media-sha256")
    insp = post(stack, "suno", "music", {"gpt_description_prompt": "lofi beat for rain", "make_instrumental": True})
    custom = post(stack, "suno", "music", {"prompt": "[Verse]\nsalt and spray", "title": "Sea", "tags": "folk"})
    lyrics = post(stack, "suno", "lyrics", {"prompt": "a song about lighthouses"})
    half = post(stack, "suno", "music", {"gpt_description_prompt": "[sim:clipfail] two takes"})

    job = done(stack, insp)
    audio = [a for a in job["assets"] if a["kind"] == "audio"]
    assert len(audio) == 2 and all(a["sha256"] == sha["mp3"] and a["metadata"]["title"] for a in audio)
    assert {a["kind"] for a in job["assets"]} == {"audio", "image", "video"}
    done(stack, custom)
    lyr = done(stack, lyrics)
    assert lyr["result"]["title"] and lyr["result"]["text"] and lyr["assets"] == []
    h = done(stack, half)
    (bad,) = h["result"]["failed_clips"]
    assert bad not in {a["metadata"]["clip_id"] for a in h["assets"]} and len({a["metadata"]["clip_id"] for a in h["assets"]}) == 1
    clip = job["result"]["clips"][1]["id"]
    cont = post(stack, "suno", "music", {"job_id": insp, "continue_clip_id": clip, "continue_at": 30, "prompt": "", "title": "More", "tags": "lofi"})
    done(stack, cont)
    with stack.client() as c:
        r = c.post(
            "/v1/jobs",
            json={
                "provider": "suno",
                "operation": "music",
                "input": {"job_id": insp, "continue_clip_id": "nope", "continue_at": 1, "prompt": "", "title": "x", "tags": "y"},
            },
        )
    assert r.status_code == 422 and "job_id" in r.text
    polls = stack.sim_admin("/_sim/stats")["polls"]
    assert polls.get("suno_batch", 0) > 0 and polls.get("suno_single", 0) == 0
