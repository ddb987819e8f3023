"""Input schemas of Kling's avatar, lip-sync, audio and multi-image operations (providers-next.md §4.1)."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field, model_validator

from providers.kling.inputs import MAX_PROMPT, MAX_REF, KlingInput, _Strict, field_error, one_of

MAX_SOUND_REF = 7_000_000  # a ≤ 5 MB sound file as base64, or a URL


class AvatarInput(_Strict):
    """`POST /kling/v1/videos/avatar/image2video`: a portrait speaking a sound."""

    image: str = Field(..., min_length=1, max_length=MAX_REF, description="URL or base64, ≥ 300 px, aspect 1:2.5 to 2.5:1")
    audio_id: str | None = Field(None, min_length=1, max_length=200, description="a Kling audio id")
    sound_file: str | None = Field(None, min_length=1, max_length=MAX_SOUND_REF, description="mp3/wav/m4a/aac URL or base64, ≤ 5 MB, 2-300 s")
    prompt: str | None = Field(None, max_length=MAX_PROMPT)
    mode: Literal["std", "pro"] | None = None

    @model_validator(mode="after")
    def _one_sound(self) -> AvatarInput:
        one_of(self, "audio_id", "sound_file")
        return self


class IdentifyFaceInput(_Strict):
    """`POST /kling/v1/videos/identify-face`: answered at once with a session (valid 24 h) and the faces."""

    video_id: str | None = Field(None, min_length=1, max_length=200, description="a Kling video id")
    video_url: str | None = Field(None, min_length=1, max_length=2000)

    @model_validator(mode="after")
    def _one_video(self) -> IdentifyFaceInput:
        one_of(self, "video_id", "video_url")
        return self


LIP_SYNC_MIN_MS, LIP_SYNC_MAX_MS = 2_000, 60_000


class FaceChoice(_Strict):
    face_id: str = Field(..., min_length=1, max_length=200, description="a face_id from identify_face's face_data")
    audio_id: str | None = Field(None, min_length=1, max_length=200)
    sound_file: str | None = Field(None, min_length=1, max_length=MAX_SOUND_REF, description="URL or base64, ≤ 5 MB")
    sound_start_time: int = Field(..., ge=0, description="ms into the sound where the clip starts")
    sound_end_time: int = Field(..., ge=0, description="ms into the sound where the clip ends; the clip is 2-60 s")
    sound_insert_time: int = Field(..., ge=0, description="ms into the video where the clip goes")
    sound_volume: float | None = Field(None, ge=0, le=2)
    original_audio_volume: float | None = Field(None, ge=0, le=2)


class LipSyncInput(_Strict):
    """`POST /kling/v1/videos/advanced-lip-sync`: faces of an identify_face session speak sounds."""

    session_id: str | None = Field(None, min_length=1, max_length=200, description="from identify_face (valid 24 h)")
    job_id: str | None = Field(None, max_length=40, description="our identify_face job: its session_id is sent")
    face_choose: list[FaceChoice] = Field(..., min_length=1, max_length=10)

    @model_validator(mode="after")
    def _check(self) -> LipSyncInput:
        one_of(self, "session_id", "job_id")
        for i, face in enumerate(self.face_choose):
            one_of(face, "audio_id", "sound_file", loc=("face_choose", i))
            span = face.sound_end_time - face.sound_start_time
            if not LIP_SYNC_MIN_MS <= span <= LIP_SYNC_MAX_MS:
                raise field_error(
                    ("face_choose", i, "sound_end_time"),
                    f"the sound clip (sound_end_time - sound_start_time) is 2000-60000 ms, not {span}",
                    face.sound_end_time,
                )
        return self


class VideoToAudioInput(_Strict):
    """`POST /kling/v1/audio/video-to-audio`: sound effects and music for a 3-20 s video."""

    video_id: str | None = Field(None, min_length=1, max_length=200, description="a Kling video id")
    video_url: str | None = Field(None, min_length=1, max_length=2000, description="3-20 s, ≤ 100 MB")
    sound_effect_prompt: str | None = Field(None, max_length=200)
    bgm_prompt: str | None = Field(None, max_length=200)
    asmr_mode: bool | None = None

    @model_validator(mode="after")
    def _one_video(self) -> VideoToAudioInput:
        one_of(self, "video_id", "video_url")
        return self


class SoundEffectInput(_Strict):
    """`POST /kling/v1/audio/text-to-audio`: a 3-10 s sound from a text."""

    prompt: str = Field(..., min_length=1, max_length=200)
    duration: float = Field(..., ge=3.0, le=10.0, description="seconds, 3.0-10.0")


class SubjectRef(_Strict):
    subject_image: str = Field(..., min_length=1, max_length=MAX_REF, description="URL or base64")


class MultiImage2ImageInput(KlingInput):
    """`POST /kling/v1/images/multi-image2image`: up to 4 subjects, an optional scene and style."""

    model_name: str = Field("kling-v2", alias="model", max_length=100, description="kling-v2")
    subject_image_list: list[SubjectRef] = Field(..., min_length=1, max_length=4)
    prompt: str = Field(..., min_length=1, max_length=MAX_PROMPT)
    scene_image: str | None = Field(None, max_length=MAX_REF)
    style_image: str | None = Field(None, max_length=MAX_REF)
    n: int | None = Field(None, ge=1, le=9)
    aspect_ratio: Literal["16:9", "9:16", "1:1", "4:3", "3:4", "3:2", "2:3", "21:9"] | None = None


class VirtualTryOnInput(KlingInput):
    """`POST /kling/v1/images/kolors-virtual-try-on`: a person wearing a garment."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    model_name: Literal["kolors-virtual-try-on-v1", "kolors-virtual-try-on-v1-5"] = Field("kolors-virtual-try-on-v1", alias="model")
    human_image: str = Field(..., min_length=1, max_length=MAX_REF, description="URL or base64 of the person")
    cloth_image: str = Field(..., min_length=1, max_length=MAX_REF, description="URL or base64 of the garment")
