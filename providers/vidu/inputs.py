"""Input schemas of the Vidu operations (providers-next.md §4.7), one per route.

What Vidu documents as impossible is refused here, before anything is paid for, with a 422 naming
the field (`input.duration`): a duration the model cannot make (q3 1-16 s, q2 1-10 s, q1 only 5 s),
`audio` on a model before q3, the wrong number of images for the route. A model not in the matrix
(a newer one) is passed on unchecked: the relay decides. The per-model matrix is published with the schema (`x-models`), so
GET /v1/providers tells a caller what each model takes.

`payload` and `callback_url` are ours: `payload` carries this job's external id, which the relay
echoes in its queries and callbacks (that is how the task of a submit whose answer was lost is
recognised), and `callback_url` is this job's own callback URL. A caller's value for either is
refused (the job's own `callback_url`, outside `input`, is where a caller is notified).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.config import JsonDict

from providers.fields import check_image, field_error

MODELS = ("viduq3-pro", "viduq3-turbo", "viduq2", "viduq1", "vidu2.0")
Model = str
Resolution = Literal["540p", "720p", "1080p"]
AspectRatio = Literal["16:9", "9:16", "1:1", "3:4", "4:3"]
MAX_PROMPT = 2000
MAX_IMAGE_BYTES = 50 * 1024 * 1024  # one image (decoded)
MAX_IMAGES_TEXT = 20 * 1024 * 1024  # all inline images together: the relay takes a body of at most 20 MB

# What each model takes (Vidu's documentation): published as `x-models`, enforced below.
MATRIX: dict[str, dict[str, Any]] = {
    "viduq3-pro": {"durations": list(range(1, 17)), "resolutions": ["540p", "720p", "1080p"], "audio": True},
    "viduq3-turbo": {"durations": list(range(1, 17)), "resolutions": ["540p", "720p", "1080p"], "audio": True},
    "viduq2": {"durations": list(range(1, 11)), "resolutions": ["540p", "720p", "1080p"], "audio": False},
    "viduq1": {"durations": [5], "resolutions": ["540p", "720p", "1080p"], "audio": False},
    # vidu2.0's limits are not in the documentation we hold: the relay decides (no check here)
    "vidu2.0": {"durations": None, "resolutions": ["540p", "720p", "1080p"], "audio": False},
}
_SCHEMA_EXTRA: JsonDict = {"x-models": MATRIX}  # type: ignore[dict-item]


class _ViduInput(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra=_SCHEMA_EXTRA)

    model: Model = Field(
        ..., min_length=1, max_length=100, description="viduq3-pro, viduq3-turbo, viduq2, viduq1, vidu2.0 or a newer model (what each takes: x-models)"
    )
    prompt: str | None = Field(None, min_length=1, max_length=MAX_PROMPT)
    seed: int | None = Field(None, ge=0, le=2**31 - 1, description="0 or absent: random")
    watermark: bool | None = None
    payload: str | None = Field(None, description="not accepted: Key4U Jobs puts this job's id in payload (the relay echoes it)")
    callback_url: str | None = Field(None, description="not accepted here: the job's own callback_url (outside input) is notified")

    @field_validator("payload")
    @classmethod
    def _no_payload(cls, v: str | None) -> None:
        if v is not None:
            raise ValueError(
                "payload is set by Key4U Jobs: it carries this job's id, which the relay echoes so that a submit whose answer was lost "
                "is recognised and never paid twice; keep your own data in the job (e.g. its idempotency_key or your records)"
            )
        return None

    @field_validator("callback_url")
    @classmethod
    def _no_callback(cls, v: str | None) -> None:
        if v is not None:
            raise ValueError("the relay calls back this job's own URL; put callback_url beside input (not in it) to be notified")
        return None


class _ImagesMixin(BaseModel):
    images: list[str] = Field(..., description="http(s) URLs or base64 data:image/... URIs")

    @field_validator("images")
    @classmethod
    def _images(cls, v: list[str]) -> list[str]:
        checked = [check_image(i, MAX_IMAGE_BYTES) for i in v]
        inline = sum(len(i) for i in checked if i.startswith("data:"))
        if inline > MAX_IMAGES_TEXT:
            raise ValueError(f"the inline (data:) images add up to {inline} characters, over the relay's 20 MB body")
        return checked


class _VideoInput(_ViduInput):
    duration: int | None = Field(None, ge=1, le=16, description="seconds: q3 1-16, q2 1-10, q1 5")
    resolution: Resolution | None = None
    movement_amplitude: Literal["auto", "small", "medium", "large"] | None = None
    bgm: bool | None = Field(None, description="add background music")
    audio: bool | None = Field(None, description="audio-video generation (q3 models only)")

    @model_validator(mode="after")
    def _model_matrix(self) -> _VideoInput:
        caps = MATRIX.get(self.model)
        if caps is None:
            return self
        if self.duration is not None and caps["durations"] is not None and self.duration not in caps["durations"]:
            allowed = caps["durations"]
            what = f"{allowed[0]}-{allowed[-1]}" if len(allowed) > 2 else " or ".join(map(str, allowed))
            raise field_error("duration", f"{self.model} makes {what} s videos, not {self.duration} s", self.duration)
        if self.resolution is not None and self.resolution not in caps["resolutions"]:
            raise field_error("resolution", f"{self.model} makes {', '.join(caps['resolutions'])}, not {self.resolution}", self.resolution)
        if self.audio and not caps["audio"]:
            raise field_error("audio", f"only the q3 models (viduq3-pro, viduq3-turbo) make audio, not {self.model}", self.audio)
        return self


class Text2VideoInput(_VideoInput):
    """`POST /ent/v2/text2video`."""

    prompt: str = Field(..., min_length=1, max_length=MAX_PROMPT)
    style: Literal["general", "anime"] | None = None
    aspect_ratio: AspectRatio | None = None


class Img2VideoInput(_ImagesMixin, _VideoInput):
    """`POST /ent/v2/img2video`: one image, the first frame."""

    images: list[str] = Field(..., min_length=1, max_length=1, description="one image: the first frame (URL or data:image/... URI)")


class StartEnd2VideoInput(_ImagesMixin, _VideoInput):
    """`POST /ent/v2/start-end2video`: the first and the last frame."""

    images: list[str] = Field(..., min_length=2, max_length=2, description="two images: the first and the last frame")


class Reference2VideoInput(_ImagesMixin, _VideoInput):
    """`POST /ent/v2/reference2video`: 1-7 reference images (subjects kept consistent)."""

    prompt: str = Field(..., min_length=1, max_length=MAX_PROMPT)
    images: list[str] = Field(..., min_length=1, max_length=7, description="1-7 reference images")
    aspect_ratio: AspectRatio | None = None


class Reference2ImageInput(_ImagesMixin, _ViduInput):
    """`POST /ent/v2/reference2image`: an image from 1-7 reference images."""

    prompt: str = Field(..., min_length=1, max_length=MAX_PROMPT)
    images: list[str] = Field(..., min_length=1, max_length=7, description="1-7 reference images")
    aspect_ratio: AspectRatio | None = None
    resolution: Resolution | None = None
