"""Midjourney and Suno through the engine: real database, the simulator over loopback, every
operation, chained actions by our job id, codes 21/22/23/24, MODAL, batch polling and its
fallback, multi-asset results and a Suno clip that fails beside a good one."""

from __future__ import annotations

from typing import Any

import pytest

from models.errors import RequestInvalid
from models.schemas import JobCreate
from tests.conftest import Sim
from workers.services.create import create_job


def new(d, provider: str, operation: str, inp: dict[str, Any], **body: Any) -> str:  # type: ignore[no-untyped-def]
    return str(d.create(provider, operation, inp, **body))


def public(d, job_id: str) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    return dict(d.public(job_id))


@pytest.fixture
def d(engine_factory, sim: Sim):  # type: ignore[no-untyped-def]
    sim.admin("/_sim/config", {"queue_s": 1.0, "run_s": 4.0})
    return engine_factory(poll_expected_s=4.0, poll_min_interval_s=1.0)


def test_imagine_then_actions_chained_by_job_id(d, sim: Sim) -> None:  # type: ignore[no-untyped-def]
    sha = sim.sha256()
    grid = new(d, "midjourney", "imagine", {"prompt": "a lighthouse at dawn"})
    d.run_for(10)
    job = public(d, grid)
    assert job["status"] == "succeeded", job["error"]
    roles = [a["metadata"].get("role") for a in job["assets"]]
    assert roles.count("grid") == 1 and roles.count("split") == 4
    assert all(a["sha256"] == sha["png"] for a in job["assets"])
    labels = {b["label"] for b in job["result"]["buttons"]}
    assert {"U1", "V3"} <= labels
    assert job["result"]["seed"], "the seed comes from /mj/task/{id}/image-seed"
    up = new(d, "midjourney", "action", {"job_id": grid, "button": "U1"})
    var = new(d, "midjourney", "action", {"job_id": grid, "button": "v3"})
    d.run_for(10)
    upscaled = public(d, up)
    assert upscaled["status"] == "succeeded" and len(upscaled["assets"]) == 1
    assert public(d, var)["status"] == "succeeded"
    zoom = new(d, "midjourney", "action", {"job_id": up, "button": "zoom_out_2x"})
    d.run_for(10)
    assert public(d, zoom)["status"] == "succeeded"
    with pytest.raises(RequestInvalid) as exc:
        create_job(d.rt, JobCreate(provider="midjourney", operation="action", input={"job_id": grid, "button": "U9"}))
    assert exc.value.field == "input.job_id" and "U1" in exc.value.message


def test_action_on_unfinished_or_foreign_parent_is_refused(d) -> None:  # type: ignore[no-untyped-def]
    running = new(d, "midjourney", "imagine", {"prompt": "slow one [sim:run=60]"})
    kling = new(d, "kling", "text2video", {"prompt": "x"})
    for parent in (running, kling, "job_missing"):
        with pytest.raises(RequestInvalid) as exc:
            create_job(d.rt, JobCreate(provider="midjourney", operation="action", input={"job_id": parent, "button": "U1"}))
        assert exc.value.field == "input.job_id"


def test_banned_prompt_fails_with_the_word(d) -> None:  # type: ignore[no-untyped-def]
    job = public(d, new(d, "midjourney", "imagine", {"prompt": "[sim:banned=gore] a scene"}))
    assert job["status"] == "failed" and job["error"]["code"] == "mj_banned_prompt" and "gore" in job["error"]["message"]


def test_queue_full_waits_and_retries(d, sim: Sim) -> None:  # type: ignore[no-untyped-def]
    sim.admin("/_sim/faults", {"mj_queue_full_next": 2})
    job_id = new(d, "midjourney", "imagine", {"prompt": "busy day"})
    assert public(d, job_id)["status"] == "queued"
    d.run_for(30)
    job = public(d, job_id)
    assert job["status"] == "succeeded" and sim.stats()["creates_by_family"]["mj"] == 1


def test_code_22_and_code_21_are_acceptances(d, sim: Sim) -> None:  # type: ignore[no-untyped-def]
    queued = new(d, "midjourney", "imagine", {"prompt": "[sim:queued] crowded"})
    first = new(d, "midjourney", "imagine", {"prompt": "same prompt twice"})
    d.run_for(10)
    again = new(d, "midjourney", "imagine", {"prompt": "same prompt twice"})
    d.run_for(4)
    assert public(d, queued)["status"] == "succeeded"
    a, b = public(d, first), public(d, again)
    assert b["status"] == "succeeded" and b["provider_task_id"] == a["provider_task_id"] and b["result"]["buttons"]


def test_modal_flow(d) -> None:  # type: ignore[no-untyped-def]
    parked = new(d, "midjourney", "imagine", {"prompt": "[sim:modal] needs a region"})
    d.run_for(8)
    job = public(d, parked)
    assert job["status"] == "running" and job["result"]["awaiting_input"] is True
    modal = new(d, "midjourney", "modal", {"job_id": parked, "prompt": "make it red"})
    d.run_for(10)
    assert public(d, modal)["status"] == "succeeded"
    assert public(d, parked)["status"] == "succeeded"


def test_blend_describe_video_upload(d, sim: Sim) -> None:  # type: ignore[no-untyped-def]
    img = "data:image/png;base64,iVBORw0KGgo="
    blend = new(
        d,
        "midjourney",
        "blend",
        {"base64Array": [img, img], "dimensions": "SQUARE"},
    )
    describe = new(d, "midjourney", "describe", {"base64": img})
    video = new(d, "midjourney", "video", {"image": "https://x.example/frame.png", "motion": "low", "mode": "fast"})
    upload = new(d, "midjourney", "upload", {"base64Array": [img]})
    d.run_for(10)
    assert public(d, blend)["status"] == "succeeded"
    desc = public(d, describe)
    assert desc["status"] == "succeeded" and len(desc["result"]["prompts"]) == 4
    vid = public(d, video)
    assert vid["status"] == "succeeded" and [a["kind"] for a in vid["assets"]].count("video") == 4
    assert any(k.startswith("POST /mj-fast/mj/submit/video") for k in sim.stats()["requests"])
    up = public(d, upload)
    assert up["status"] == "succeeded" and up["assets"][0]["sha256"] == sim.sha256()["png"]


def test_batch_polling_and_fallback_to_fetch(d, sim: Sim) -> None:  # type: ignore[no-untyped-def]
    ids = [new(d, "midjourney", "imagine", {"prompt": f"batch {i}"}) for i in range(12)]
    ids += [new(d, "suno", "music", {"gpt_description_prompt": f"song {i}"}) for i in range(8)]
    d.run_for(12)
    assert all(public(d, i)["status"] == "succeeded" for i in ids)
    polls = sim.stats()["polls"]
    assert polls.get("mj_single", 0) == 0 and polls.get("suno_single", 0) == 0
    assert 0 < polls["mj_batch"] <= 14 and 0 < polls["suno_batch"] <= 14
    sim.admin("/_sim/config", {"mj_list_enabled": False})
    late = new(d, "midjourney", "imagine", {"prompt": "after the list route went away"})
    d.run_for(10)
    assert public(d, late)["status"] == "succeeded" and sim.stats()["polls"].get("mj_single", 0) > 0


def test_suno_music_modes_assets_and_lyrics(d, sim: Sim) -> None:  # type: ignore[no-untyped-def]
    sha = sim.sha256()
    insp = new(d, "suno", "music", {"gpt_description_prompt": "lofi beat for studying"})
    custom = new(d, "suno", "music", {"prompt": "[Verse]\nhello", "title": "Hello", "tags": "pop, upbeat"})
    lyrics = new(d, "suno", "lyrics", {"prompt": "a song about the sea"})
    d.run_for(12)
    job = public(d, insp)
    assert job["status"] == "succeeded", job["error"]
    audio = [a for a in job["assets"] if a["kind"] == "audio"]
    assert len(audio) == 2 and all(a["sha256"] == sha["mp3"] for a in audio), "only complete clips, never the stream"
    assert {a["metadata"]["clip_id"] for a in job["assets"]} == {c["id"] for c in job["result"]["clips"]}
    assert all(a["metadata"].get("title") for a in audio)
    assert public(d, custom)["status"] == "succeeded"
    lyr = public(d, lyrics)
    assert lyr["status"] == "succeeded" and lyr["assets"] == [] and lyr["result"]["text"] and lyr["result"]["title"]
    clip = job["result"]["clips"][0]["id"]
    cont = new(d, "suno", "music", {"job_id": insp, "continue_clip_id": clip, "continue_at": 12.5, "prompt": "[Bridge]", "title": "More", "tags": "pop"})
    d.run_for(12)
    assert public(d, cont)["status"] == "succeeded"


def test_suno_clip_fails_beside_a_good_one(d) -> None:  # type: ignore[no-untyped-def]
    job = public(d, new(d, "suno", "music", {"gpt_description_prompt": "[sim:clipfail] two takes"}))
    d.run_for(12)
    job = public(d, job["id"])
    assert job["status"] == "succeeded"
    clips = {c["id"]: c for c in job["result"]["clips"]}
    (bad,) = job["result"]["failed_clips"]
    assert clips[bad]["status"] == "error" and clips[bad]["error_message"]
    assert {a["metadata"]["clip_id"] for a in job["assets"]} == set(clips) - {bad}
