"""Kling's catalogue (providers-next.md §4.1): each operation's schema, the submit it builds, its
poll and lookup paths, parents, and the bounded walk of task_result (recorded answers of every
shape are in tests/payloads/kling, read by tests/unit/test_kling_adapter.py)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from api.routes.providers import list_providers
from providers.base import TASK_ID_MAX, HttpResponse, ParentRef, PollTarget, State, SubmitContext
from providers.kling import PATHS, KlingAdapter
from providers.kling.parse import MAX_OUTPUTS, outputs_of, parse_task
from providers.registry import validate_input

kling = KlingAdapter()
IMG, VID, SND = "https://x.example/a.png", "https://x.example/a.mp4", "https://x.example/a.mp3"
FACE = {"face_id": "0", "audio_id": "aud", "sound_start_time": 0, "sound_end_time": 3000, "sound_insert_time": 0}

VALID: dict[str, dict[str, Any]] = {
    "omni_video": {
        "prompt": "<<<image_1>>> runs",
        "image_list": [{"image_url": IMG, "type": "first_frame"}],
        "video_list": [{"video_url": VID, "refer_type": "feature"}],
    },
    "multi_image2video": {"prompt": "p", "image_list": [{"image": IMG}] * 4, "duration": 10},
    "video_extend": {"video_id": "vid-1", "prompt": "more"},
    "effects": {"effect_scene": "squish", "input": {"image": IMG, "duration": "5"}},
    "motion_control": {"image_url": IMG, "video_url": VID, "character_orientation": "video", "mode": "pro", "video_duration": 25},
    "avatar": {"image": IMG, "audio_id": "aud-1"},
    "identify_face": {"video_url": VID},
    "lip_sync": {"session_id": "sess", "face_choose": [FACE]},
    "video_to_audio": {"video_id": "vid-1", "asmr_mode": True},
    "sound_effect": {"prompt": "thunder", "duration": 3.0},
    "multi_image2image": {"prompt": "p", "subject_image_list": [{"subject_image": IMG}], "scene_image": IMG, "n": 3},
    "virtual_try_on": {"human_image": IMG, "cloth_image": IMG, "model": "kolors-virtual-try-on-v1-5"},
}
ROUTES = {
    "omni_video": "videos/omni-video",
    "multi_image2video": "videos/multi-image2video",
    "video_extend": "videos/video-extend",
    "effects": "videos/effects",
    "motion_control": "videos/motion-control",
    "avatar": "videos/avatar/image2video",
    "identify_face": "videos/identify-face",
    "lip_sync": "videos/advanced-lip-sync",
    "video_to_audio": "audio/video-to-audio",
    "sound_effect": "audio/text-to-audio",
    "multi_image2image": "images/multi-image2image",
    "virtual_try_on": "images/kolors-virtual-try-on",
}


def ctx(parent: ParentRef | None = None) -> SubmitContext:
    return SubmitContext(job_id="job_1", external_id="job_1", callback_url="https://us/v1/webhooks/kling/job_1/tok", now=datetime.now(UTC), parent=parent)


@pytest.mark.parametrize("operation", sorted(VALID))
def test_submit_path_body_external_id_and_callback(operation: str) -> None:
    clean = validate_input("kling", operation, VALID[operation])
    req = kling.build_submit(operation, clean, ctx())
    assert (req.method, req.path) == ("POST", f"/kling/v1/{ROUTES[operation]}") and PATHS[operation] == req.path
    assert req.json is not None and req.json["external_task_id"] == "job_1"
    assert ("callback_url" in req.json) == (operation != "identify_face"), "identify-face answers at once"
    assert "job_id" not in req.json and "video_duration" not in req.json, "our own fields are never sent"
    assert {k: v for k, v in req.json.items() if k not in ("external_task_id", "callback_url")} == {k: v for k, v in clean.items() if k != "video_duration"}
    assert not any(k.lower() == "authorization" for k in req.headers)


@pytest.mark.parametrize("operation", sorted(set(VALID) - {"identify_face"}))
def test_poll_and_lookup_at_the_same_path(operation: str) -> None:
    assert kling.build_poll([PollTarget("job_1", "T9", operation)]).path == f"/kling/v1/{ROUTES[operation]}/T9"
    req = kling.build_lookup(operation, "job_1")
    assert req is not None and req.path == f"/kling/v1/{ROUTES[operation]}/job_1"
    assert kling.lookup(operation, "job_1") is not None


def test_identify_face_has_no_task_to_look_up() -> None:
    assert kling.build_lookup("identify_face", "job_1") is None and kling.lookup("identify_face", "job_1") is None


def test_numbers_become_the_strings_the_relay_wants_and_model_aliases() -> None:
    got = validate_input("kling", "omni_video", {"prompt": "p", "duration": 7, "model": "kling-v3-omni"})
    assert got == {"prompt": "p", "duration": "7", "model_name": "kling-v3-omni"}
    assert validate_input("kling", "multi_image2video", VALID["multi_image2video"])["duration"] == "10"
    assert validate_input("kling", "effects", VALID["effects"])["input"]["duration"] == "5"


@pytest.mark.parametrize(
    "operation, raw, loc, words",
    [
        ("omni_video", {}, ("prompt",), "unless multi_shot"),
        ("omni_video", {"multi_shot": True, "shot_type": "customize"}, ("multi_prompt",), "customize"),
        ("omni_video", {"prompt": "p", "image_list": [{"image_url": IMG}] * 4, "element_list": [{"element_id": 1}] * 4}, ("image_list",), "at most 7"),
        ("omni_video", {"prompt": "p", "element_list": [{"element_id": 1}] * 5, "video_list": [{"video_url": VID}]}, ("element_list",), "at most 4"),
        ("omni_video", {"prompt": "p", "video_list": [{"video_url": VID, "refer_type": "style"}]}, ("video_list", 0, "refer_type"), ""),
        ("omni_video", {"prompt": "p", "duration": 2}, ("duration",), "3-10"),
        ("omni_video", {"prompt": "p", "mode": "max"}, ("mode",), ""),
        ("multi_image2video", {"prompt": "p", "image_list": [{"image": IMG}] * 5}, ("image_list",), ""),
        ("multi_image2video", {"prompt": "p", "image_list": []}, ("image_list",), ""),
        ("video_extend", {"job_id": "j", "video_id": "v"}, ("job_id",), "exactly one"),
        ("video_extend", {"video_id": "v", "cfg_scale": 1.5}, ("cfg_scale",), ""),
        ("effects", {"effect_scene": "Hug!", "input": {"image": IMG}}, ("effect_scene",), ""),
        ("effects", {"effect_scene": "hug", "input": {"image": IMG, "images": [IMG, IMG]}}, ("input", "image"), "exactly one"),
        ("effects", {"effect_scene": "hug", "input": {"images": [IMG, IMG, IMG]}}, ("input", "images"), "exactly 2"),
        (
            "motion_control",
            {"image_url": IMG, "video_url": VID, "character_orientation": "video", "mode": "std", "video_duration": 31},
            ("video_duration",),
            "3-30",
        ),
        ("motion_control", {"image_url": IMG, "video_url": VID, "character_orientation": "video", "mode": "std", "video_duration": 2}, ("video_duration",), ""),
        ("motion_control", {"image_url": IMG, "video_url": VID, "mode": "std"}, ("character_orientation",), ""),
        ("avatar", {"image": IMG}, ("audio_id",), "exactly one"),
        ("avatar", {"image": IMG, "audio_id": "a", "sound_file": SND}, ("audio_id",), "exactly one"),
        ("identify_face", {}, ("video_id",), "exactly one"),
        ("lip_sync", {"face_choose": [FACE]}, ("session_id",), "exactly one"),
        ("lip_sync", {"session_id": "s", "face_choose": []}, ("face_choose",), ""),
        ("lip_sync", {"session_id": "s", "face_choose": [FACE | {"sound_file": SND}]}, ("face_choose", 0, "audio_id"), "exactly one"),
        ("lip_sync", {"session_id": "s", "face_choose": [FACE, FACE | {"sound_end_time": 61000}]}, ("face_choose", 1, "sound_end_time"), "2000-60000"),
        ("lip_sync", {"session_id": "s", "face_choose": [FACE | {"sound_volume": 3}]}, ("face_choose", 0, "sound_volume"), ""),
        ("video_to_audio", {"video_id": "v", "video_url": VID}, ("video_id",), "exactly one"),
        ("video_to_audio", {"video_id": "v", "bgm_prompt": "x" * 201}, ("bgm_prompt",), ""),
        ("sound_effect", {"prompt": "p", "duration": 2.5}, ("duration",), ""),
        ("sound_effect", {"prompt": "p", "duration": 10.5}, ("duration",), ""),
        ("sound_effect", {"prompt": "x" * 201, "duration": 5}, ("prompt",), ""),
        ("multi_image2image", {"prompt": "p", "subject_image_list": [{"subject_image": IMG}] * 5}, ("subject_image_list",), ""),
        ("multi_image2image", {"prompt": "p", "subject_image_list": [{"subject_image": IMG}], "n": 10}, ("n",), ""),
        ("virtual_try_on", {"human_image": IMG, "cloth_image": IMG, "model": "kolors-v9"}, ("model",), ""),
        ("virtual_try_on", {"human_image": IMG, "cloth_image": IMG, "extra": 1}, ("extra",), ""),
    ],
)
def test_bad_input_names_the_field(operation: str, raw: dict[str, Any], loc: tuple[Any, ...], words: str) -> None:
    with pytest.raises(ValidationError) as exc:
        validate_input("kling", operation, raw)
    err = exc.value.errors()[0]
    assert err["loc"] == loc and words in err["msg"], err


def test_per_model_limits_are_published_and_enforced() -> None:
    published = {p.name: p for p in list_providers().providers}["kling"].operations
    omni = next(op for op in published if op.name == "omni_video").input_schema
    assert omni["x-models"]["kling-video-o1"]["durations"] == [str(s) for s in range(3, 11)]
    multi = next(op for op in published if op.name == "multi_image2video").input_schema
    assert multi["x-models"]["kling-v1-6"]["durations"] == ["5", "10"]
    with pytest.raises(ValidationError) as exc:
        validate_input("kling", "motion_control", VALID["motion_control"] | {"model": "kling-v2-6", "mode": "turbo"})
    assert exc.value.errors()[0]["loc"] == ("mode",)
    assert validate_input("kling", "omni_video", {"prompt": "p", "model": "kling-v9-omni", "duration": 4})["model_name"] == "kling-v9-omni", (
        "an unknown model passes"
    )


def parent(operation: str, result: dict[str, Any], job_id: str = "job_p") -> ParentRef:
    return ParentRef(job_id=job_id, task_id="T1", operation=operation, status="succeeded", result=result)


def test_video_extend_takes_the_parent_video_id() -> None:
    inp = validate_input("kling", "video_extend", {"job_id": "job_p", "prompt": "on"})
    spec = kling.parent_of("video_extend", inp)
    assert spec is not None and (spec.field, spec.job_id) == ("job_id", "job_p") and "succeeded" in spec.statuses
    ref = parent("text2video", {"video_id": "vid-9", "cost": {"units": 1.0}})
    kling.check_parent("video_extend", inp, ref)
    req = kling.build_submit("video_extend", inp, ctx(ref))
    assert req.json is not None and req.json["video_id"] == "vid-9" and "job_id" not in req.json
    assert kling.parent_of("video_extend", {"video_id": "v"}) is None


@pytest.mark.parametrize(
    "operation, ref, words",
    [
        ("video_extend", parent("image", {"cost": {"units": 1.0}}), "extends a Kling video"),
        ("video_extend", parent("identify_face", {"session_id": "s"}), "extends a Kling video"),
        ("video_extend", parent("text2video", {}), "no Kling video id"),
        ("lip_sync", parent("text2video", {"video_id": "v"}), "identify_face"),
        ("lip_sync", parent("identify_face", {}), "no session_id"),
    ],
)
def test_parents_that_cannot_serve_are_refused(operation: str, ref: ParentRef, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        kling.check_parent(operation, {"job_id": ref.job_id}, ref)


def test_lip_sync_takes_the_identify_face_session() -> None:
    inp = validate_input("kling", "lip_sync", {"job_id": "job_p", "face_choose": [FACE]})
    ref = parent("identify_face", {"session_id": "sess-1", "face_data": [{"face_id": "0"}]})
    kling.check_parent("lip_sync", inp, ref)
    req = kling.build_submit("lip_sync", inp, ctx(ref))
    assert req.json is not None and req.json["session_id"] == "sess-1" and req.json["face_choose"] == [FACE]


def test_the_walk_of_task_result_is_bounded_and_kinds_come_from_lists_keys_or_extensions() -> None:
    many = {"videos": [{"id": str(i), "url": f"https://c.example/{i}.mp4"} for i in range(100)]}
    assert len(outputs_of(many)) == MAX_OUTPUTS
    deep: dict[str, Any] = {"url": "https://c.example/deep.mp4"}
    for _ in range(20):
        deep = {"nested": deep}
    assert outputs_of({"videos": [deep]}) == []
    mixed = {
        "audios": [{"url_mp3": "https://c.example/a", "url_wav": "https://c.example/a", "note": "not a url", "n": 3}],
        "extra": {"cover_image_url": "https://c.example/c", "clip": "https://c.example/x.mov", "voice": "https://c.example/v.m4a?sig=1"},
        "videos": "https://c.example/not-a-list.mp4",
        "images": [None, 7, "ftp://c.example/x.png", {"index": 2, "url": "https://c.example/2.png"}],
    }
    got = [(o.url, o.kind) for o in outputs_of(mixed)]
    assert got == [
        ("https://c.example/a", "audio"),
        ("https://c.example/c", "image"),
        ("https://c.example/x.mov", "video"),
        ("https://c.example/v.m4a?sig=1", "audio"),
        ("https://c.example/not-a-list.mp4", "video"),
        ("https://c.example/2.png", "image"),
    ]
    assert outputs_of("https://c.example/x.mp4") == [] and outputs_of(None) == []


@pytest.mark.parametrize("raw, cost", [("1", {"units": 1.0}), (0.5, {"units": 0.5}), ("abc", None), ("-1", None), (True, None), ([1], None), ("1e400", None)])
def test_final_unit_deduction_becomes_result_cost(raw: object, cost: dict[str, float] | None) -> None:
    st = parse_task({"task_id": "1", "task_status": "succeed", "final_unit_deduction": raw, "task_result": {"images": [{"url": "https://c.example/1.png"}]}})
    assert st.result_data.get("cost") == cost and "final_unit_deduction" not in st.result_data


def test_unknown_status_words_and_long_ids_are_kept_not_broken() -> None:
    long_id = "9" * (TASK_ID_MAX + 50)
    st = parse_task({"task_id": long_id, "task_status": {"weird": 1}})
    assert st.state is State.UNKNOWN and st.task_id == long_id, "an id is never cut"


def test_identify_face_answer_is_bounded() -> None:
    faces = [{"face_id": str(i), "face_image": "https://c.example/" + "f" * 5000, "nested": {"x": 1}} for i in range(50)]
    body = {"code": 0, "message": "SUCCEED", "data": {"session_id": "s-1", "face_data": faces}}
    got = kling.parse_submit(HttpResponse(200, {}, json.dumps(body).encode()))
    assert got.task_id == "s-1" and got.status is not None and got.status.state is State.SUCCEEDED  # type: ignore[union-attr]
    kept = got.status.result_data["face_data"]  # type: ignore[union-attr]
    assert len(kept) == 20 and all(len(f["face_image"]) == 2000 and "nested" not in f for f in kept)
