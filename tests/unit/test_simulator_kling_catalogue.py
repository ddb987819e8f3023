"""The simulator's Kling catalogue (simulator/kling_extras.py): bodies the relay would refuse,
identify-face answered at once, audio results, code 1303 by directive, lookup by external id,
expired links, and parents it did not make refused."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import FakeClock
from tests.unit.conftest import Factory

KEY = "sk-test-secret-key-123"
AUTH = {"Authorization": f"Bearer {KEY}"}
K = "/kling/v1"

pytestmark = pytest.mark.anyio


async def finished(client: Any, clock: FakeClock, path: str, key: str) -> dict[str, Any]:
    clock.advance(10)
    r = await client.get(f"{path}/{key}", headers=AUTH)
    assert r.status_code == 200, r.text
    return r.json()["data"]  # type: ignore[no-any-return]


async def test_audio_kinds_return_audios_and_cost(make: Factory, clock: FakeClock) -> None:
    client, _ = make(queue_s=1.0, run_s=2.0)
    r = await client.post(f"{K}/audio/text-to-audio", json={"prompt": "rain", "duration": 4.5, "external_task_id": "ext-a"}, headers=AUTH)
    assert r.status_code == 200 and r.json()["code"] == 0
    data = await finished(client, clock, f"{K}/audio/text-to-audio", "ext-a")  # by our external id
    assert data["task_status"] == "succeed" and data["final_unit_deduction"] == "1"
    assert list(data["task_result"]) == ["audios"] and data["task_result"]["audios"][0]["url_mp3"].endswith("_audio.mp3")
    r = await client.post(f"{K}/audio/video-to-audio", json={"video_url": "https://x.example/a.mp4", "external_task_id": "ext-b"}, headers=AUTH)
    data = await finished(client, clock, f"{K}/audio/video-to-audio", r.json()["data"]["task_id"])
    assert sorted(data["task_result"]) == ["audios", "videos"]


@pytest.mark.parametrize(
    "route, body, words",
    [
        ("videos/omni-video", {}, "prompt or multi_shot"),
        ("videos/multi-image2video", {"prompt": "p"}, "image_list"),
        ("videos/video-extend", {"video_id": "made-up"}, "not a video of this account"),
        ("videos/effects", {"effect_scene": "hug"}, "input"),
        ("videos/motion-control", {"image_url": "u", "video_url": "v", "mode": "std"}, "character_orientation"),
        ("videos/avatar/image2video", {"image": "u"}, "audio_id or sound_file"),
        ("videos/advanced-lip-sync", {"session_id": "nope", "face_choose": [{"face_id": "0"}]}, "session_id is unknown"),
        ("audio/text-to-audio", {"prompt": "p", "duration": "4"}, "duration must be a number"),
        ("images/multi-image2image", {"prompt": "p"}, "subject_image_list"),
        ("images/kolors-virtual-try-on", {"human_image": "u"}, "cloth_image"),
        ("videos/identify-face", {"video_id": "made-up"}, "not a video of this account"),
    ],
)
async def test_bodies_the_relay_refuses(make: Factory, route: str, body: dict[str, Any], words: str) -> None:
    client, _ = make()
    r = await client.post(f"{K}/{route}", json=body, headers=AUTH)
    assert r.status_code == 400 and words in r.json()["message"], r.text


async def test_identify_face_at_once_then_lip_sync_of_its_session(make: Factory, clock: FakeClock) -> None:
    client, _ = make(queue_s=1.0, run_s=2.0)
    r = await client.post(f"{K}/videos/text2video", json={"prompt": "a speaker"}, headers=AUTH)
    video = await finished(client, clock, f"{K}/videos/text2video", r.json()["data"]["task_id"])
    video_id = video["task_result"]["videos"][0]["id"]
    r = await client.post(f"{K}/videos/identify-face", json={"video_id": video_id}, headers=AUTH)
    data = r.json()["data"]
    assert r.status_code == 200 and data["session_id"] and [f["face_id"] for f in data["face_data"]] == ["0", "1"]
    choice = {"face_id": "7", "audio_id": "a", "sound_start_time": 0, "sound_end_time": 3000, "sound_insert_time": 0}
    r = await client.post(f"{K}/videos/advanced-lip-sync", json={"session_id": data["session_id"], "face_choose": [choice]}, headers=AUTH)
    assert r.status_code == 400 and "face_id" in r.json()["message"]
    r = await client.post(f"{K}/videos/advanced-lip-sync", json={"session_id": data["session_id"], "face_choose": [choice | {"face_id": "1"}]}, headers=AUTH)
    assert r.status_code == 200 and r.json()["data"]["task_status"] == "submitted"
    r = await client.post(f"{K}/videos/video-extend", json={"video_id": video_id}, headers=AUTH)
    assert r.status_code == 200


async def test_busy_directive_answers_1303_then_accepts(make: Factory) -> None:
    client, _ = make()
    body = {"prompt": "x [sim:busy=2]"}
    codes = [(await client.post(f"{K}/videos/omni-video", json=body, headers=AUTH)).json()["code"] for _ in range(3)]
    assert codes == [1303, 1303, 0]


async def test_expire_directive_gives_links_that_answer_403(make: Factory, clock: FakeClock) -> None:
    client, _ = make(queue_s=0.0, run_s=1.0)
    r = await client.post(
        f"{K}/images/multi-image2image", json={"prompt": "x [sim:expire]", "subject_image_list": [{"subject_image": "u"}], "n": 2}, headers=AUTH
    )
    data = await finished(client, clock, f"{K}/images/multi-image2image", r.json()["data"]["task_id"])
    urls = [i["url"] for i in data["task_result"]["images"]]
    assert len(urls) == 2 and all("/_sim/media/expired/" in u for u in urls)
    assert (await client.get(urls[0])).status_code == 403
