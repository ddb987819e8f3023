"""Kling's catalogue (providers-next.md §4.1) through the engine: real database, the simulator over
loopback, every operation, audio results, result.cost, parents by our job id (video_extend of a
Kling video, identify_face -> lip_sync), refusals before anything is sent, the relay's failures and
rejections, code 1303 "later", an expired result, and lost submit answers (looked up by our
external_task_id; identify-face, which makes no task, fails submit_outcome_unknown)."""

from __future__ import annotations

from typing import Any

import pytest

from models.errors import RequestInvalid
from models.schemas import JobCreate
from tests.conftest import Sim
from workers.services.create import create_job

IMG = "https://x.example/a.png"
VID = "https://x.example/a.mp4"
SND = "https://x.example/a.mp3"
EXT = {"video": "mp4", "image": "png", "audio": "mp3"}


def new(d, operation: str, inp: dict[str, Any]) -> str:  # type: ignore[no-untyped-def]
    return str(d.create("kling", operation, inp))


def public(d, job_id: str) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    return dict(d.public(job_id))


def refused(d, operation: str, inp: dict[str, Any], provider: str = "kling") -> RequestInvalid:  # type: ignore[no-untyped-def]
    with pytest.raises(RequestInvalid) as exc:
        create_job(d.rt, JobCreate(provider=provider, operation=operation, input=inp))
    return exc.value


def assert_stored(sim: Sim, job: dict[str, Any], kinds: list[str]) -> None:
    assert job["status"] == "succeeded", job["error"]
    assert sorted(a["kind"] for a in job["assets"]) == sorted(kinds)
    want = sim.sha256()
    assert all(a["sha256"] == want[EXT[a["kind"]]] for a in job["assets"]), job["assets"]


@pytest.fixture
def d(engine_factory, sim: Sim):  # type: ignore[no-untyped-def]
    sim.admin("/_sim/config", {"queue_s": 1.0, "run_s": 3.0})
    return engine_factory(poll_expected_s=4.0, poll_min_interval_s=1.0)


OPERATIONS = [
    ("omni_video", {"prompt": "a fox like <<<image_1>>>", "image_list": [{"image_url": IMG}], "duration": 5}, ["video"]),
    ("multi_image2video", {"prompt": "two friends wave", "image_list": [{"image": IMG}, {"image": IMG}], "duration": "5"}, ["video"]),
    ("effects", {"effect_scene": "hug", "input": {"images": [IMG, IMG], "duration": 5}}, ["video"]),
    ("motion_control", {"image_url": IMG, "video_url": VID, "character_orientation": "image", "mode": "std", "video_duration": 6}, ["video"]),
    ("avatar", {"image": IMG, "sound_file": SND, "mode": "std"}, ["video"]),
    ("video_to_audio", {"video_url": VID, "bgm_prompt": "calm piano"}, ["video", "audio"]),
    ("sound_effect", {"prompt": "rain on a tin roof", "duration": 5}, ["audio"]),
    ("multi_image2image", {"prompt": "the two in a park", "subject_image_list": [{"subject_image": IMG}], "n": 2}, ["image", "image"]),
    ("virtual_try_on", {"human_image": IMG, "cloth_image": IMG}, ["image"]),
]


@pytest.mark.parametrize("operation, inp, kinds", OPERATIONS, ids=[o[0] for o in OPERATIONS])
def test_every_operation_end_to_end(d, sim: Sim, operation: str, inp: dict[str, Any], kinds: list[str]) -> None:  # type: ignore[no-untyped-def]
    job_id = new(d, operation, inp)
    d.run_for(20)
    job = public(d, job_id)
    assert_stored(sim, job, kinds)
    assert job["result"]["cost"] == {"units": 1.0}
    paid = sim.admin("/_sim/paid")
    assert paid["count"] == 1
    sent = sim.admin("/_sim/tasks")["tasks"]
    assert [t["external_task_id"] for t in sent if t["task_id"] == job["provider_task_id"]] == [job_id]
    if "video" in kinds:
        assert job["result"]["video_id"], "a video's id is kept for video_extend"


def test_video_extend_by_our_job_id_and_by_video_id(d, sim: Sim) -> None:  # type: ignore[no-untyped-def]
    parent = new(d, "text2video", {"prompt": "a city"})
    d.run_for(20)
    video_id = public(d, parent)["result"]["video_id"]
    by_job = new(d, "video_extend", {"job_id": parent, "prompt": "the camera rises"})
    by_id = new(d, "video_extend", {"video_id": video_id})
    d.run_for(20)
    for job_id in (by_job, by_id):
        assert_stored(sim, public(d, job_id), ["video"])
    assert sim.admin("/_sim/paid")["count"] == 3


def test_identify_face_then_lip_sync_by_our_job_id(d, sim: Sim) -> None:  # type: ignore[no-untyped-def]
    parent = new(d, "text2video", {"prompt": "a speaker"})
    d.run_for(20)
    faces = new(d, "identify_face", {"video_id": public(d, parent)["result"]["video_id"]})
    d.run_for(3)
    job = public(d, faces)
    assert job["status"] == "succeeded", job["error"]
    assert job["assets"] == [] and job["result"]["session_id"] and [f["face_id"] for f in job["result"]["face_data"]] == ["0", "1"]
    choice = {"face_id": "0", "sound_file": SND, "sound_start_time": 0, "sound_end_time": 3000, "sound_insert_time": 500}
    lip = new(d, "lip_sync", {"job_id": faces, "face_choose": [choice]})
    d.run_for(20)
    assert_stored(sim, public(d, lip), ["video"])
    by_session = new(d, "lip_sync", {"session_id": job["result"]["session_id"], "face_choose": [choice | {"face_id": "1"}]})
    d.run_for(20)
    assert_stored(sim, public(d, by_session), ["video"])


def test_refusals_name_the_field_and_send_nothing(d, sim: Sim) -> None:  # type: ignore[no-untyped-def]
    image = new(d, "image", {"prompt": "a cat"})
    other = str(d.create("sora", "video", {"prompt": "a dog"}))
    d.run_for(20)
    paid = sim.admin("/_sim/paid")["count"]
    refs = [{"image_url": IMG}] * 5
    cases = [
        ("omni_video", {"prompt": "p", "image_list": refs, "video_list": [{"video_url": VID}]}, "input.image_list", "at most 4"),
        ("omni_video", {"prompt": "p", "duration": 12}, "input.duration", "3-10"),
        ("sound_effect", {"prompt": "p", "duration": 2.5}, "input.duration", "3"),
        ("video_extend", {"job_id": other}, "input.job_id", "no kling job"),
        ("video_extend", {"job_id": image}, "input.job_id", "extends a Kling video"),
        ("video_extend", {}, "input.job_id", "exactly one"),
        (
            "lip_sync",
            {"job_id": image, "face_choose": [{"face_id": "0", "audio_id": "a", "sound_start_time": 0, "sound_end_time": 3000, "sound_insert_time": 0}]},
            "input.job_id",
            "identify_face",
        ),
        (
            "lip_sync",
            {"session_id": "s", "face_choose": [{"face_id": "0", "audio_id": "a", "sound_start_time": 0, "sound_end_time": 1500, "sound_insert_time": 0}]},
            "input.face_choose.0.sound_end_time",
            "2000-60000",
        ),
        ("effects", {"effect_scene": "hug", "input": {"images": [IMG]}}, "input.input.images", "exactly 2"),
        (
            "motion_control",
            {"image_url": IMG, "video_url": VID, "character_orientation": "image", "mode": "pro", "video_duration": 20},
            "input.video_duration",
            "3-10",
        ),
        ("virtual_try_on", {"human_image": IMG}, "input.cloth_image", ""),
    ]
    for operation, inp, field, words in cases:
        err = refused(d, operation, inp)
        assert err.field == field and words in str(err), (operation, err.field, str(err))
    assert sim.admin("/_sim/paid")["count"] == paid


@pytest.mark.parametrize(
    "operation, inp",
    [
        ("omni_video", {"prompt": "x [sim:fail]"}),
        ("sound_effect", {"prompt": "x [sim:fail]", "duration": 3}),
        ("multi_image2image", {"prompt": "x [sim:fail]", "subject_image_list": [{"subject_image": IMG}]}),
    ],
)
def test_failures_and_rejections_carry_the_relay_reason(d, operation: str, inp: dict[str, Any]) -> None:  # type: ignore[no-untyped-def]
    failed = new(d, operation, inp)
    rejected = new(d, operation, inp | {"prompt": "x [sim:reject]"})
    d.run_for(20)
    job = public(d, failed)
    assert job["status"] == "failed" and job["error"]["code"] == "provider_failed" and "risk control" in job["error"]["message"], job["error"]
    job = public(d, rejected)
    assert job["status"] == "failed" and "content safety check failed" in job["error"]["message"], job["error"]


def test_code_1303_is_later_the_job_waits_and_is_sent_again(d, sim: Sim) -> None:  # type: ignore[no-untyped-def]
    job_id = new(d, "omni_video", {"prompt": "busy [sim:busy=1]"})
    job = d.job(job_id)
    assert job.status == "queued" and job.error_code == "kling_1303", (job.status, job.error_code)  # waits, the reason recorded
    d.run_for(40)
    assert_stored(sim, public(d, job_id), ["video"])
    assert sim.stats()["requests"]["POST /kling/v1/videos/omni-video"] == 2 and sim.admin("/_sim/paid")["count"] == 1


def test_expired_result_fails_result_expired(d) -> None:  # type: ignore[no-untyped-def]
    job_id = new(d, "sound_effect", {"prompt": "x [sim:expire]", "duration": 4})
    d.run_for(30)
    job = public(d, job_id)
    assert job["status"] == "failed" and job["error"]["code"] == "result_expired", job["error"]


def test_lost_omni_video_answer_is_looked_up_not_resent(d, sim: Sim) -> None:  # type: ignore[no-untyped-def]
    sim.admin("/_sim/faults", {"error_5xx_next": 1, "status": 502, "after_accept": True})
    job_id = new(d, "omni_video", {"prompt": "lost answer"})
    assert d.job(job_id).submit_state == "unknown"
    d.run_for(40)
    assert_stored(sim, public(d, job_id), ["video"])
    assert sim.admin("/_sim/paid")["count"] == 1
    assert sim.stats()["requests"]["POST /kling/v1/videos/omni-video"] == 1
    assert sim.stats()["requests"]["GET /kling/v1/videos/omni-video/{id}"] >= 1


def test_lost_identify_face_answer_fails_without_a_second_charge(d, sim: Sim) -> None:  # type: ignore[no-untyped-def]
    """identify-face makes no task to look up: the job fails submit_outcome_unknown."""
    sim.admin("/_sim/faults", {"error_5xx_next": 1, "status": 502, "after_accept": True})
    job_id = new(d, "identify_face", {"video_url": VID})
    d.run_for(60)
    job = public(d, job_id)
    assert job["status"] == "failed" and job["error"]["code"] == "submit_outcome_unknown", job["error"]
    assert sim.admin("/_sim/paid")["count"] == 1


@pytest.mark.parametrize(
    "operation, inp, kinds", [o for o in OPERATIONS if o[0] in ("video_to_audio", "sound_effect", "effects")], ids=["effects", "video_to_audio", "sound_effect"]
)
def test_new_api_envelope_too(d, sim: Sim, operation: str, inp: dict[str, Any], kinds: list[str]) -> None:  # type: ignore[no-untyped-def]
    """new-api answers with its own ids and task DTO (the raw Kling task under data.data)."""
    sim.admin("/_sim/config", {"envelope": "newapi"})
    job_id = new(d, operation, inp)
    d.run_for(20)
    job = public(d, job_id)
    assert job["provider_task_id"].startswith("task_")
    assert_stored(sim, job, kinds)
    assert job["result"]["cost"] == {"units": 1.0}
