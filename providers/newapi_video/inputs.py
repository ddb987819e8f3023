"""Input schemas of the generic new-api video family (providers.md "Generic new-api video tasks").

The relay routes any `model` to whichever vendor serves it (Wan, Hailuo, Jimeng, Seedance, Kling,
Vidu, Veo...), and each vendor has its own limits, so values are checked for type and sanity only
(a `size` of `1280*720`, `720P`, `1080p` or `1280x720` is legal; a duration is a whole number of
seconds, 1-120); the vendor enforces the rest and its refusal fails the job with its message.
Vendor fields go in `metadata` (new-api hands them to the vendor's adaptor); other extras pass
through as given. Each schema's JSON shape is what GET /v1/providers lists.
"""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from providers.video.inputs import check_image_ref

MAX_IMAGES = 9
MAX_IMAGE_CHARS = 14 * 1024 * 1024  # a 10 MiB image as base64, with room
MAX_SECONDS = 120
_SIZE = re.compile(r"[0-9A-Za-z][0-9A-Za-z*:._-]{0,31}")
_BASE64 = re.compile(r"[A-Za-z0-9+/=\s]{16,}")
_EXTRA_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
# Where an input image can be: the declared fields, and the metadata keys the vendors' adaptors read
# (Wan img_url / first_frame_url, Hailuo first_frame_image, Vidu / Seedance image_url...).
IMAGE_FIELDS = ("image", "images", "input_reference")
METADATA_IMAGE_KEYS = ("img_url", "image_url", "image", "images", "first_frame_url", "first_frame_image", "reference_images")


def check_image(value: str) -> str:
    """An image as an http(s) URL, a base64 data: URI, or bare base64 (Kling and Jimeng take that)."""
    value = value.strip()
    if len(value) > MAX_IMAGE_CHARS:
        raise ValueError(f"image is {len(value)} characters, over {MAX_IMAGE_CHARS}")
    if value[:5].lower() == "data:" or value.lower().startswith(("http://", "https://")):
        return check_image_ref(value)
    if not _BASE64.fullmatch(value):
        raise ValueError("must be an http(s) URL, a base64 data: URI (data:image/png;base64,...) or bare base64")
    return value


def whole_seconds(v: object) -> object:
    """A duration as an int or a string of digits, 1-120 (new-api reads both)."""
    if isinstance(v, bool) or (v is not None and not isinstance(v, (int, str))):
        raise ValueError("must be a whole number of seconds")
    if isinstance(v, str):
        if not re.fullmatch(r"\d{1,3}", v.strip()):
            raise ValueError(f"must be a whole number of seconds, 1-{MAX_SECONDS}")
        v = int(v.strip())
    if isinstance(v, int) and not 1 <= v <= MAX_SECONDS:
        raise ValueError(f"must be between 1 and {MAX_SECONDS} seconds")
    return v


def has_image(data: dict[str, Any], metadata: object) -> bool:
    if any(data.get(name) for name in IMAGE_FIELDS):
        return True
    return isinstance(metadata, dict) and any(metadata.get(key) for key in METADATA_IMAGE_KEYS)


class _NewApiInput(BaseModel):
    """The fields both routes share. Declared before `prompt`, so its check sees them."""

    model_config = ConfigDict(extra="allow")

    model: str = Field(
        ...,
        min_length=1,
        max_length=100,
        description="any model the relay routes: wan2.5-t2v-preview, MiniMax-Hailuo-02, jimeng_vgfm_t2v_l20, doubao-seedance-1-0-pro...",
    )
    size: str | None = Field(None, description="resolution as the vendor spells it: 1280*720 (Wan), 720P / 1080P (Hailuo), 1280x720; checked for sanity only")
    images: list[str] | None = Field(None, max_length=MAX_IMAGES, description="reference / frame images: http(s) URLs, data: URIs or bare base64")
    input_reference: str | None = Field(None, description="reference image: an http(s) URL, or a base64 data: URI")
    metadata: dict[str, Any] | None = Field(
        None, description="the vendor's own fields, passed through (Wan: img_url, audio, prompt_extend, watermark, seed; an object or a JSON string)"
    )

    @field_validator("size")
    @classmethod
    def _size(cls, v: str | None) -> str | None:
        if v is not None and not _SIZE.fullmatch(v.strip()):
            raise ValueError("must be a resolution such as 1280*720, 1280x720, 720P or 1080p (letters, digits, * x : . _ -; at most 32)")
        return v.strip() if v is not None else None

    @field_validator("images")
    @classmethod
    def _images(cls, v: list[str] | None) -> list[str] | None:
        return [check_image(i) for i in v] if v is not None else None

    @field_validator("input_reference")
    @classmethod
    def _reference(cls, v: str | None) -> str | None:
        return check_image_ref(v) if v is not None else None

    @field_validator("metadata", mode="before")
    @classmethod
    def _metadata(cls, v: object) -> object:
        if isinstance(v, str):
            try:
                v = json.loads(v) if v.strip() else None
            except ValueError:
                raise ValueError("must be an object or a JSON object string") from None
            if v is not None and not isinstance(v, dict):
                raise ValueError("must be an object or a JSON object string")
        return v

    @model_validator(mode="after")
    def _extras_are_plain(self) -> _NewApiInput:
        for key in self.model_extra or {}:
            if not _EXTRA_NAME.fullmatch(key):
                raise ValueError(f"extra field name {key[:70]!r} is not a plain identifier")
        return self


class GenerationsInput(_NewApiInput):
    """`POST /v1/video/generations` (new-api's generic task route, JSON)."""

    image: str | None = Field(None, description="first-frame / reference image: an http(s) URL, a data: URI or bare base64")
    duration: int | None = Field(None, description=f"seconds, 1-{MAX_SECONDS} (an int or a string of digits)")
    seconds: str | None = Field(None, description=f"seconds as a string, 1-{MAX_SECONDS} (some adaptors read this instead of duration)")
    mode: str | None = Field(None, max_length=32, description="vendor mode, e.g. std / pro (Kling)")
    prompt: str | None = Field(None, max_length=10000, validate_default=True, description="required unless an image is given")

    @field_validator("image")
    @classmethod
    def _image(cls, v: str | None) -> str | None:
        return check_image(v) if v is not None else None

    @field_validator("duration", mode="before")
    @classmethod
    def _duration(cls, v: object) -> object:
        return whole_seconds(v)

    @field_validator("seconds", mode="before")
    @classmethod
    def _seconds(cls, v: object) -> object:
        v = whole_seconds(v)
        return str(v) if isinstance(v, int) else v

    @field_validator("prompt")
    @classmethod
    def _prompt(cls, v: str | None, info: ValidationInfo) -> str | None:
        if v is not None and not v.strip():
            v = None
        if v is None and not has_image(info.data, info.data.get("metadata")):
            raise ValueError("is required unless an image is given (image, images, input_reference or a metadata image field)")
        return v


class VideosInput(_NewApiInput):
    """`POST /v1/videos` (the OpenAI video format): JSON, or multipart when `input_reference` is a data: URI."""

    seconds: str | None = Field(None, description=f'clip length in seconds, "1"-"{MAX_SECONDS}" (an int is accepted)')
    prompt: str = Field(..., min_length=1, max_length=10000)

    @field_validator("seconds", mode="before")
    @classmethod
    def _seconds(cls, v: object) -> object:
        v = whole_seconds(v)
        return str(v) if isinstance(v, int) else v
