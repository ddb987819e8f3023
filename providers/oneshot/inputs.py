"""Input schemas of the one-shot families: OpenAI-format images (`images`) and speech (`speech`).

Documented fields are typed and checked; a relay's own extras (Seedream's `watermark`, qwen's
`prompt_extend`...) pass through as given. Per-model limits are published in the schema
(`x-models`, shown by GET /v1/providers) and checked before anything is paid for, by validators of
the field after `model`: a bad value is a 422 naming `input.<field>`.
"""

from __future__ import annotations

import re
from typing import Any, Literal, cast

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator
from pydantic.config import JsonDict

from models.datauri import parse_data_uri

MAX_IMAGE_BYTES = 20 * 1024 * 1024  # per input image (a data: URI is within K4U_MAX_INPUT_BYTES first; a URL is fetched up to this)
MAX_EDIT_IMAGES = 16
_SIZE = re.compile(r"\d{2,5}x\d{2,5}|auto|[1-4]K", re.IGNORECASE)
_EXTRA = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")

# What the documented models accept (OpenAI's image API; Key4U's Seedream and qwen pages). A model
# not listed is passed through unchecked: the relay serves many more (flux-*, z-image-turbo...).
IMAGE_MODELS: dict[str, dict[str, Any]] = {
    "dall-e-3": {"sizes": ["1024x1024", "1792x1024", "1024x1792"], "max_n": 1},
    "dall-e-2": {"sizes": ["256x256", "512x512", "1024x1024"], "max_n": 10},
    "gpt-image-1": {"sizes": ["auto", "1024x1024", "1536x1024", "1024x1536"], "max_n": 10},
    "gpt-image-1.5": {"sizes": ["auto", "1024x1024", "1536x1024", "1024x1536"], "max_n": 10},
    "qwen-image-max": {"sizes": ["1328x1328", "1664x928", "928x1664", "1472x1140", "1140x1472"], "max_n": 1},
}
SPEECH_MODELS: dict[str, dict[str, Any]] = {
    "tts-1": {"instructions": False},
    "tts-1-hd": {"instructions": False},
    "gpt-4o-mini-tts": {"instructions": True},
}


def is_url(value: str) -> bool:
    return value.strip().lower().startswith(("http://", "https://"))


def check_image(value: str) -> str:
    """An input image: an http(s) URL (fetched by us before the request is sent) or a base64 data: URI."""
    if is_url(value):
        if len(value) > 4000 or any(c.isspace() for c in value.strip()):
            raise ValueError("must be an http(s) URL of at most 4000 characters, without spaces")
        return value.strip()
    image_bytes(value)
    return value


def image_bytes(value: str) -> tuple[str, bytes]:
    """(media type, bytes) of an input image given as a base64 data: URI; ValueError otherwise."""
    value = value.strip()
    uri = parse_data_uri(value)
    if uri is None or not uri.is_base64 or uri.params or not uri.media_type.startswith("image/"):
        raise ValueError("must be a base64 data: URI of an image (data:image/png;base64,...)")
    data = uri.decode(strict=True)
    if not data or len(data) > MAX_IMAGE_BYTES:
        raise ValueError(f"image is {len(data)} bytes; it must be 1 to {MAX_IMAGE_BYTES}")
    return uri.media_type, data


class _Passthrough(BaseModel):
    """Documented fields are checked; the relay's extras pass through unchanged."""

    model_config = ConfigDict(extra="allow")

    @model_validator(mode="after")
    def _extras_are_plain(self) -> _Passthrough:
        for key in self.model_extra or {}:
            if not _EXTRA.fullmatch(key):
                raise ValueError(f"extra field name {key[:70]!r} is not a plain identifier")
        return self


class _ImageInput(_Passthrough):
    model: str = Field("gpt-image-1", min_length=1, max_length=100, description="gpt-image-1, gpt-image-1.5, dall-e-3, flux-*, doubao-seedream-*, ...")
    prompt: str = Field(..., min_length=1, max_length=32000)
    n: int | None = Field(None, ge=1, le=10, description="images to make (one asset each)")
    size: str | None = Field(None, max_length=20, description="WIDTHxHEIGHT, auto, or 1K/2K/4K (Seedream)")
    quality: str | None = Field(None, max_length=20, description="auto, high, medium, low (gpt-image); hd, standard (dall-e-3)")
    response_format: Literal["url", "b64_json"] | None = Field(None, description="url or b64_json: either way the image is stored")
    stream: bool | None = Field(None, description="not supported: a job stores the final images (only false is accepted)")

    # Field validators, after `model` (declared first): a 422 names `input.size` / `input.n` itself.
    @field_validator("size")
    @classmethod
    def _size(cls, v: str | None, info: ValidationInfo) -> str | None:
        if v is not None and not _SIZE.fullmatch(v):
            raise ValueError("must be WIDTHxHEIGHT (1024x1024), auto, or 1K/2K/4K")
        limits = IMAGE_MODELS.get(info.data.get("model", ""))
        if v is not None and limits is not None and v not in limits["sizes"]:
            raise ValueError(f"{info.data['model']} takes {', '.join(limits['sizes'])}, not {v}")
        return v

    @field_validator("n")
    @classmethod
    def _n(cls, v: int | None, info: ValidationInfo) -> int | None:
        limits = IMAGE_MODELS.get(info.data.get("model", ""))
        if v is not None and limits is not None and v > limits["max_n"]:
            raise ValueError(f"{info.data['model']} makes at most {limits['max_n']} image(s) per request")
        return v

    @field_validator("stream")
    @classmethod
    def _no_stream(cls, v: bool | None) -> bool | None:
        if v:
            raise ValueError("streamed (partial) images are not supported: a job stores the final images; leave stream out or false")
        return None


class ImageGenerateInput(_ImageInput):
    """`POST /v1/images/generations` (JSON)."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"x-models": cast(JsonDict, IMAGE_MODELS)})

    image: str | list[str] | None = Field(None, description="reference image URL(s) or data: URI(s), passed through (Seedream, Flux kontext)")
    sequential_image_generation: Literal["auto", "disabled"] | None = Field(None, description="Seedream: a series of related images")
    sequential_image_generation_options: dict[str, Any] | None = Field(None, description="Seedream: {max_images}")
    watermark: bool | None = None
    seed: int | None = None


class ImageEditInput(_ImageInput):
    """`POST /v1/images/edits` (multipart): the images and the mask are uploaded as files."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"x-models": cast(JsonDict, IMAGE_MODELS)})

    image: str | list[str] = Field(..., description="the image(s) to edit, 1 to 16: http(s) URLs (fetched by us, 20 MiB at most each) or base64 data: URIs")
    mask: str | None = Field(None, description="a PNG mask (URL or base64 data: URI): its transparent areas are edited")

    @field_validator("image")
    @classmethod
    def _images(cls, v: str | list[str]) -> str | list[str]:
        items = [v] if isinstance(v, str) else v
        if not 1 <= len(items) <= MAX_EDIT_IMAGES:
            raise ValueError(f"give 1 to {MAX_EDIT_IMAGES} images")
        checked = [check_image(item) for item in items]
        return checked[0] if isinstance(v, str) else checked

    @field_validator("mask")
    @classmethod
    def _mask(cls, v: str | None) -> str | None:
        return check_image(v) if v is not None else None


class SpeechInput(BaseModel):
    """`POST /v1/audio/speech`: the answer's body is the audio file."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"x-models": cast(JsonDict, SPEECH_MODELS)})

    model: str = Field("gpt-4o-mini-tts", min_length=1, max_length=100, description="tts-1, tts-1-hd, gpt-4o-mini-tts, ...")
    input: str = Field(..., min_length=1, max_length=4096, description="the text to speak")
    voice: str = Field("alloy", min_length=1, max_length=100, description="alloy, ash, ballad, coral, echo, fable, onyx, nova, sage, shimmer, verse, ...")
    response_format: Literal["mp3", "opus", "aac", "flac", "wav", "pcm"] | None = Field(None, description="the audio format (mp3 by default)")
    speed: float | None = Field(None, ge=0.25, le=4.0, description="0.25 to 4.0")
    instructions: str | None = Field(None, max_length=4096, description="how to speak (gpt-4o-mini-tts; not tts-1 / tts-1-hd)")

    @field_validator("instructions")
    @classmethod
    def _instructions(cls, v: str | None, info: ValidationInfo) -> str | None:
        limits = SPEECH_MODELS.get(info.data.get("model", ""))
        if v and limits is not None and not limits["instructions"]:
            raise ValueError(f"{info.data['model']} takes no instructions (gpt-4o-mini-tts does)")
        return v
