"""Input schemas of the MiniMax family (providers-next.md §4.6): Hailuo video and async TTS.

The video model matrix (which durations and resolutions each model takes, which need a first frame
or a subject) is data, `VIDEO_MODELS`: published in the schema as `x-models`, so GET /v1/providers
shows it, and enforced before anything is sent (a 1080P clip of 10 s is a 422 naming
`input.resolution`, not a paid call the relay refuses).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Literal, cast

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from providers.fields import check_image, field_error

if TYPE_CHECKING:
    from pydantic.config import JsonDict

MAX_IMAGE_BYTES = 20 * 1024 * 1024  # MiniMax's own limit on a first / last frame or subject image
_EXTRA_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")

# model -> what it takes. `durations_at` narrows the durations for one resolution (1080P: 6 s only);
# `requires` are fields the model cannot do without, `allows` the optional image fields it reads.
VIDEO_MODELS: dict[str, dict[str, Any]] = {
    "MiniMax-Hailuo-2.3": {
        "durations": [6, 10],
        "resolutions": ["768P", "1080P"],
        "durations_at": {"1080P": [6]},
        "requires": [],
        "allows": ["first_frame_image"],
    },
    "MiniMax-Hailuo-2.3-Fast": {
        "durations": [6, 10],
        "resolutions": ["768P", "1080P"],
        "durations_at": {"1080P": [6]},
        "requires": ["first_frame_image"],
        "allows": ["first_frame_image"],
    },
    "MiniMax-Hailuo-02": {
        "durations": [6, 10],
        "resolutions": ["512P", "768P", "1080P"],
        "durations_at": {"1080P": [6]},
        "requires": [],
        "allows": ["first_frame_image", "last_frame_image"],
    },
    "T2V-01-Director": {"durations": [6], "resolutions": ["720P"], "durations_at": {}, "requires": [], "allows": []},
    "I2V-01-Director": {"durations": [6], "resolutions": ["720P"], "durations_at": {}, "requires": ["first_frame_image"], "allows": ["first_frame_image"]},
    "I2V-01-live": {"durations": [6], "resolutions": ["720P"], "durations_at": {}, "requires": ["first_frame_image"], "allows": ["first_frame_image"]},
    "S2V-01": {"durations": [6], "resolutions": ["720P"], "durations_at": {}, "requires": ["subject_reference"], "allows": ["subject_reference"]},
}
VideoModel = Literal["MiniMax-Hailuo-2.3", "MiniMax-Hailuo-2.3-Fast", "MiniMax-Hailuo-02", "T2V-01-Director", "I2V-01-Director", "I2V-01-live", "S2V-01"]
_IMAGE_FIELDS = ("first_frame_image", "last_frame_image", "subject_reference")


class SubjectReference(BaseModel):
    """One subject for S2V-01: a character and the image(s) that show it."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["character"] = "character"
    image: list[str] = Field(..., min_length=1, max_length=1, description="one image of the character: an http(s) URL or a base64 data: URI")

    @field_validator("image")
    @classmethod
    def _images(cls, v: list[str]) -> list[str]:
        return [check_image(i, MAX_IMAGE_BYTES) for i in v]


class VideoInput(BaseModel):
    """`POST /minimax/v1/video_generation` (Hailuo)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"x-models": cast("JsonDict", VIDEO_MODELS)})

    model: VideoModel = Field("MiniMax-Hailuo-2.3", description="the model; x-models lists what each takes")
    prompt: str | None = Field(None, max_length=2000, description="what to show, with camera commands such as [Push in] (required without a first frame)")
    first_frame_image: str | None = Field(None, description="the first frame: an http(s) URL or a base64 data:image/... URI")
    last_frame_image: str | None = Field(None, description="the last frame (MiniMax-Hailuo-02)")
    subject_reference: list[SubjectReference] | None = Field(None, min_length=1, max_length=1, description="the character to keep (S2V-01)")
    duration: Literal[6, 10] | None = Field(None, description="seconds: 6 or 10 (1080P: 6 only; the 01 models: 6)")
    resolution: Literal["512P", "720P", "768P", "1080P"] | None = Field(None, description="per model, see x-models")
    prompt_optimizer: bool | None = Field(None, description="let MiniMax rewrite the prompt (default true)")
    fast_pretreatment: bool | None = Field(None, description="shorter prompt optimisation (Hailuo 2.3 / 02)")

    @field_validator("first_frame_image", "last_frame_image")
    @classmethod
    def _image(cls, v: str | None) -> str | None:
        return check_image(v, MAX_IMAGE_BYTES) if v is not None else None

    @model_validator(mode="after")
    def _fits_the_model(self) -> VideoInput:
        spec = VIDEO_MODELS[self.model]
        if self.resolution is not None and self.resolution not in spec["resolutions"]:
            raise field_error("resolution", f"{self.model} makes {', '.join(spec['resolutions'])}, not {self.resolution}", self.resolution)
        durations = spec["durations_at"].get(self.resolution, spec["durations"])
        duration = self.duration if self.duration is not None else 6
        if duration not in durations:
            if self.resolution in spec["durations_at"]:
                raise field_error("resolution", f"{self.model} makes {self.resolution} clips of {durations[0]} s only, not {duration} s", self.resolution)
            raise field_error("duration", f"{self.model} makes clips of {', '.join(map(str, durations))} s, not {duration}", self.duration)
        for name in spec["requires"]:
            if getattr(self, name) is None:
                raise field_error(name, f"{self.model} needs {name}", None)
        for name in _IMAGE_FIELDS:
            if getattr(self, name) is not None and name not in spec["allows"]:
                takers = [m for m, s in VIDEO_MODELS.items() if name in s["allows"]]
                raise field_error(name, f"{self.model} does not take {name} (only {', '.join(takers)})", "…")
        if not (self.prompt or "").strip() and self.first_frame_image is None:
            raise field_error("prompt", "a prompt is required without a first_frame_image", self.prompt)
        return self


class _Open(BaseModel):
    """A settings object: documented fields checked, MiniMax's newer ones passed through."""

    model_config = ConfigDict(extra="allow")

    @model_validator(mode="after")
    def _plain_extras(self) -> _Open:
        for key in self.model_extra or {}:
            if not _EXTRA_KEY.fullmatch(key):
                raise ValueError(f"field name {key[:70]!r} is not a plain identifier")
        return self


class VoiceSetting(_Open):
    voice_id: str = Field(..., min_length=1, max_length=200, description="a system voice (male-qn-qingse, English_Graceful_Lady, ...) or a cloned voice id")
    speed: float | None = Field(None, ge=0.5, le=2.0)
    vol: float | None = Field(None, gt=0, le=10)
    pitch: int | None = Field(None, ge=-12, le=12)
    emotion: str | None = Field(None, max_length=32, description="happy, sad, angry, fearful, disgusted, surprised, calm, ...")


class AudioSetting(_Open):
    audio_sample_rate: Literal[8000, 16000, 22050, 24000, 32000, 44100] | None = None
    bitrate: Literal[32000, 64000, 128000, 256000] | None = None
    format: Literal["mp3", "pcm", "flac", "wav"] | None = None
    channel: Literal[1, 2] | None = None


class VoiceModify(_Open):
    pitch: int | None = Field(None, ge=-100, le=100)
    intensity: int | None = Field(None, ge=-100, le=100)
    timbre: int | None = Field(None, ge=-100, le=100)
    sound_effects: str | None = Field(None, max_length=64)


class PronunciationDict(_Open):
    tone: list[str] = Field(default_factory=list, max_length=1000, description='e.g. ["omg/oh my god", "处理/(chu3)(li3)"]')


class TtsInput(BaseModel):
    """`POST /minimax/v1/t2a_async_v2`: long text to speech, asynchronously."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(
        "speech-2.6-hd", pattern=r"^speech-[A-Za-z0-9.-]{1,40}$", description="speech-2.6-hd, speech-2.6-turbo, speech-02-hd, speech-02-turbo, ..."
    )
    text: str | None = Field(None, min_length=1, max_length=50000, description="the text (at most 50,000 characters); or text_file_id")
    text_file_id: int | str | None = Field(None, description="a file uploaded to MiniMax holding the text; or text")
    voice_setting: VoiceSetting
    audio_setting: AudioSetting | None = None
    language_boost: str | None = Field(None, max_length=40, description="auto, Chinese, English, ...")
    pronunciation_dict: PronunciationDict | None = None
    voice_modify: VoiceModify | None = None

    @field_validator("text_file_id")
    @classmethod
    def _file_id(cls, v: int | str | None) -> int | str | None:
        if isinstance(v, str) and not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", v):
            raise ValueError("must be a MiniMax file id (digits)")
        return v

    @model_validator(mode="after")
    def _one_text(self) -> TtsInput:
        if (self.text is None) == (self.text_file_id is None):
            raise field_error("text", "give exactly one of text or text_file_id", None)
        return self
