"""Input schemas of Kling's video operations (providers.md §4, providers-next.md §4.1).

Every schema refuses unknown fields (`extra="forbid"`); a bad value is a 422 naming
`input.<field>` before anything is sent. Checks that involve several fields raise
`field_error(...)`, a ValueError that carries the field's location. Per-model limits are data in
`x-models` (published by GET /v1/providers) and enforced by the same table.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from providers.fields import field_error as field_error

MAX_PROMPT = 2500
MAX_REF = 200_000  # an image or sound given inline (URL or base64) may be long, not unbounded


def as_seconds_string(v: object) -> object:
    """5 -> "5" (the relay wants strings); other values as given, for the enum to judge."""
    return str(v) if isinstance(v, int) and not isinstance(v, bool) else v


def check_model_limits(schema: type[BaseModel], model: str, **values: object) -> None:
    """Refuse a value the schema's `x-models` entry for `model` does not list (unknown models pass:
    relays add models before any table knows them)."""
    extra = schema.model_config.get("json_schema_extra")
    table = extra.get("x-models", {}) if isinstance(extra, Mapping) else {}
    limits = table.get(model) if isinstance(table, Mapping) else None
    if not isinstance(limits, Mapping):
        return
    for name, value in values.items():
        allowed = limits.get(name + "s")
        if value is not None and isinstance(allowed, list) and value not in allowed:
            raise field_error(name, f"{model} takes {name} {' | '.join(map(str, allowed))}, not {value}", value)


def one_of(model: BaseModel, first: str, second: str, *, loc: Sequence[str | int] = ()) -> None:
    """Exactly one of two fields is given."""
    a, b = getattr(model, first), getattr(model, second)
    if (a in (None, "")) == (b in (None, "")):
        raise field_error((*loc, first), f"give exactly one of {first} or {second}")


class KlingInput(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    model_name: str = Field("kling-v1", alias="model", max_length=100, description="kling-v1, kling-v1-6, kling-v2-1-master, kling-v2-6, ...")


class _Base(KlingInput):
    negative_prompt: str | None = Field(None, max_length=MAX_PROMPT)


class _VideoInput(_Base):
    cfg_scale: float | None = Field(None, ge=0, le=1)
    mode: Literal["std", "pro"] | None = None
    aspect_ratio: Literal["16:9", "9:16", "1:1"] | None = None
    duration: Literal["5", "10"] | None = None
    sound: Literal["on", "off"] | None = None
    camera_control: dict[str, Any] | None = None
    watermark_info: dict[str, Any] | None = None
    multi_shot: bool | None = None
    shot_type: str | None = None
    multi_prompt: list[Any] | None = None

    _duration = field_validator("duration", mode="before")(as_seconds_string)


class Text2VideoInput(_VideoInput):
    prompt: str = Field(..., min_length=1, max_length=MAX_PROMPT)


class Image2VideoInput(_VideoInput):
    prompt: str | None = Field(None, max_length=MAX_PROMPT)
    image: str | None = Field(None, max_length=MAX_REF, description="URL or base64 of the first frame")
    image_tail: str | None = Field(None, max_length=MAX_REF, description="URL or base64 of the last frame")
    static_mask: str | None = None
    dynamic_masks: list[dict[str, Any]] | None = None

    @model_validator(mode="after")
    def _needs_an_image(self) -> Image2VideoInput:
        if not self.image and not self.image_tail:
            raise ValueError("image or image_tail is required")
        return self


class ImageInput(_Base):
    prompt: str = Field(..., min_length=1, max_length=MAX_PROMPT)
    image: str | None = Field(None, max_length=MAX_REF)
    image_reference: Literal["subject", "face"] | None = None
    image_fidelity: float | None = Field(None, ge=0, le=1)
    n: int | None = Field(None, ge=1, le=9)
    aspect_ratio: Literal["16:9", "9:16", "1:1", "4:3", "3:4", "3:2", "2:3", "21:9"] | None = None


# -- omni-video --------------------------------------------------------------------------------
class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OmniImage(_Strict):
    image_url: str = Field(..., min_length=1, max_length=MAX_REF, description="URL or base64; referenced in the prompt as <<<image_N>>>")
    type: Literal["first_frame", "end_frame"] | None = None


class OmniElement(_Strict):
    element_id: str | int = Field(..., description="an element of the Kling element library; <<<element_N>>> in the prompt")


class OmniVideo(_Strict):
    video_url: str = Field(..., min_length=1, max_length=2000, description="<<<video_1>>> in the prompt")
    refer_type: Literal["base", "feature"] = Field("base", description="base: edit this video; feature: take its style or camera")
    keep_original_sound: Literal["yes", "no"] | None = None


class ShotPrompt(_Strict):
    index: int = Field(..., ge=1, le=6)
    prompt: str = Field(..., min_length=1, max_length=MAX_PROMPT)
    duration: str = Field(..., description="seconds of this shot")

    _duration = field_validator("duration", mode="before")(as_seconds_string)


_OMNI_DURATIONS: list[Any] = [str(s) for s in range(3, 11)]
MAX_OMNI_REFS, MAX_OMNI_REFS_WITH_VIDEO = 7, 4


class OmniVideoInput(KlingInput):
    """`POST /kling/v1/videos/omni-video`: text, reference images, library elements and one video."""

    model_config = ConfigDict(
        extra="forbid",
        populate_by_name=True,
        json_schema_extra={
            "x-models": {
                "kling-video-o1": {"durations": _OMNI_DURATIONS, "modes": ["std", "pro"], "max_references": 7, "max_references_with_video": 4},
                "kling-v3-omni": {"durations": _OMNI_DURATIONS, "modes": ["std", "pro"], "max_references": 7, "max_references_with_video": 4},
            }
        },
    )

    model_name: str = Field("kling-video-o1", alias="model", max_length=100, description="kling-video-o1, kling-v3-omni")
    prompt: str | None = Field(None, max_length=MAX_PROMPT, description="refer to inputs as <<<image_1>>>, <<<element_1>>>, <<<video_1>>>")
    image_list: list[OmniImage] | None = Field(None, max_length=MAX_OMNI_REFS)
    element_list: list[OmniElement] | None = Field(None, max_length=MAX_OMNI_REFS)
    video_list: list[OmniVideo] | None = Field(None, max_length=1)
    mode: Literal["std", "pro"] | None = None
    aspect_ratio: Literal["16:9", "9:16", "1:1"] | None = None
    duration: str | None = Field(None, description="seconds, 3-10")
    multi_shot: bool | None = None
    shot_type: Literal["customize", "intelligence"] | None = None
    multi_prompt: list[ShotPrompt] | None = Field(None, max_length=6)
    sound: Literal["on", "off"] | None = None
    watermark_info: dict[str, Any] | None = None

    _duration = field_validator("duration", mode="before")(as_seconds_string)

    @model_validator(mode="after")
    def _check(self) -> OmniVideoInput:
        if not self.multi_shot and not (self.prompt or "").strip():
            raise field_error("prompt", "prompt is required unless multi_shot is true")
        if self.multi_shot and self.shot_type == "customize" and not self.multi_prompt:
            raise field_error("multi_prompt", "shot_type customize needs multi_prompt (one entry per shot)")
        if self.duration is not None and self.duration not in _OMNI_DURATIONS:
            raise field_error("duration", f"duration must be 3-10 seconds, not {self.duration}", self.duration)
        refs = len(self.image_list or ()) + len(self.element_list or ())
        cap = MAX_OMNI_REFS_WITH_VIDEO if self.video_list else MAX_OMNI_REFS
        if refs > cap:
            where = "image_list" if self.image_list else "element_list"
            with_video = " with a reference video" if self.video_list else ""
            raise field_error(where, f"at most {cap} reference images and elements together{with_video}, not {refs}", refs)
        check_model_limits(OmniVideoInput, self.model_name, duration=self.duration, mode=self.mode)
        return self


# -- multi-image2video, video-extend, effects, motion-control ----------------------------------
class SubjectImage(_Strict):
    image: str = Field(..., min_length=1, max_length=MAX_REF, description="URL or base64")


class MultiImage2VideoInput(_Base):
    """`POST /kling/v1/videos/multi-image2video`: 1-4 subject images and a prompt."""

    model_config = ConfigDict(
        extra="forbid",
        populate_by_name=True,
        json_schema_extra={"x-models": {"kling-v1-6": {"durations": ["5", "10"], "modes": ["std", "pro"]}}},
    )

    model_name: str = Field("kling-v1-6", alias="model", max_length=100, description="kling-v1-6")
    image_list: list[SubjectImage] = Field(..., min_length=1, max_length=4)
    prompt: str = Field(..., min_length=1, max_length=MAX_PROMPT)
    mode: Literal["std", "pro"] | None = None
    duration: Literal["5", "10"] | None = None
    aspect_ratio: Literal["16:9", "9:16", "1:1"] | None = None

    _duration = field_validator("duration", mode="before")(as_seconds_string)

    @model_validator(mode="after")
    def _limits(self) -> MultiImage2VideoInput:
        check_model_limits(MultiImage2VideoInput, self.model_name, duration=self.duration, mode=self.mode)
        return self


class VideoExtendInput(_Strict):
    """`POST /kling/v1/videos/video-extend`: 4-5 s more of a Kling video (v1.0/1.5/1.6 sources, ≤ 3 min in all)."""

    job_id: str | None = Field(None, max_length=40, description="our Kling job that made the video (its video id is sent)")
    video_id: str | None = Field(None, min_length=1, max_length=200, description="a Kling video id (task_result.videos[].id), at most 30 days old")
    prompt: str | None = Field(None, max_length=MAX_PROMPT)
    negative_prompt: str | None = Field(None, max_length=MAX_PROMPT)
    cfg_scale: float | None = Field(None, ge=0, le=1)

    @model_validator(mode="after")
    def _one_parent(self) -> VideoExtendInput:
        one_of(self, "job_id", "video_id")
        return self


class EffectInner(_Strict):
    model_name: str | None = Field(None, max_length=100)
    mode: Literal["std", "pro"] | None = None
    image: str | None = Field(None, max_length=MAX_REF, description="one-person scenes")
    images: list[str] | None = Field(None, description="two-person scenes (hug, kiss, heart_gesture): exactly 2")
    duration: Literal["5", "10"] | None = None

    _duration = field_validator("duration", mode="before")(as_seconds_string)


class EffectsInput(_Strict):
    """`POST /kling/v1/videos/effects`: a preset scene on one or two photos."""

    effect_scene: str = Field(..., pattern=r"^[a-z0-9_]{1,64}$", description="hug, kiss, heart_gesture, squish, expansion, ...")
    input: EffectInner

    @model_validator(mode="after")
    def _images(self) -> EffectsInput:
        one_of(self.input, "image", "images", loc=("input",))
        if self.input.images is not None and len(self.input.images) != 2:
            raise field_error("input.images", f"a two-person scene takes exactly 2 images, not {len(self.input.images)}")
        if any(not i or len(i) > MAX_REF for i in self.input.images or ()):
            raise field_error("input.images", "each image is a URL or base64, not empty")
        return self


_MOTION_MAX_S = {"image": 10.0, "video": 30.0}


class MotionControlInput(KlingInput):
    """`POST /kling/v1/videos/motion-control`: a character image moved like a reference video."""

    model_config = ConfigDict(
        extra="forbid",
        populate_by_name=True,
        json_schema_extra={"x-models": {"kling-v2-6": {"modes": ["std", "pro"]}, "kling-v3": {"modes": ["std", "pro"]}}},
    )

    model_name: str = Field("kling-v2-6", alias="model", max_length=100, description="kling-v2-6, kling-v3")
    image_url: str = Field(..., min_length=1, max_length=MAX_REF)
    video_url: str = Field(..., min_length=1, max_length=2000, description="mp4/mov, ≤ 100 MB, ≥ 3 s")
    character_orientation: Literal["image", "video"] = Field(..., description="image: reference video ≤ 10 s; video: ≤ 30 s")
    mode: Literal["std", "pro"]
    prompt: str | None = Field(None, max_length=MAX_PROMPT)
    keep_original_sound: Literal["yes", "no"] | None = None
    element_list: list[OmniElement] | None = Field(None, max_length=MAX_OMNI_REFS)
    watermark_info: dict[str, Any] | None = None
    video_duration: float | None = Field(None, gt=0, description="seconds of the reference video, where known: checked, not sent")

    @model_validator(mode="after")
    def _reference_length(self) -> MotionControlInput:
        limit = _MOTION_MAX_S[self.character_orientation]
        if self.video_duration is not None and not 3.0 <= self.video_duration <= limit:
            raise field_error(
                "video_duration", f"with character_orientation {self.character_orientation} the reference video is 3-{limit:g} s, not {self.video_duration:g}"
            )
        return self
