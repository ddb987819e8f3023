"""Input schemas of the video families (providers.md §5 Sora, §6 Veo, §10.6 Grok).

Documented fields are typed and checked; the relays' own extras (watermark, private, style,
storyboard, character options...) pass through as given. Each schema's JSON shape is what
GET /v1/providers lists.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from models.datauri import parse_data_uri

MAX_REFERENCE_BYTES = 10 * 1024 * 1024
_SIZE = re.compile(r"\d{2,5}x\d{2,5}")


def decode_data_uri(value: str) -> tuple[str, bytes] | None:
    """(media type, bytes) of a base64 `data:` URI without parameters; None when the value is not one."""
    uri = parse_data_uri(value.strip())
    if uri is None or not uri.is_base64 or uri.params:
        return None
    return uri.media_type, uri.decode(strict=True)


def check_image_ref(value: str) -> str:
    """An image given as an http(s) URL or a base64 data: URI (uploaded as a file)."""
    value = value.strip()
    if value.lower().startswith(("http://", "https://")):
        return value
    decoded = decode_data_uri(value)
    if decoded is None:
        raise ValueError("must be an http(s) URL or a base64 data: URI (data:image/png;base64,...)")
    if len(decoded[1]) > MAX_REFERENCE_BYTES:
        raise ValueError(f"image is {len(decoded[1])} bytes, over {MAX_REFERENCE_BYTES}")
    return value


class _Passthrough(BaseModel):
    """Documented fields are checked; the relay's extras pass through unchanged."""

    model_config = ConfigDict(extra="allow")

    prompt: str = Field(..., min_length=1, max_length=10000)

    @model_validator(mode="after")
    def _extras_are_plain(self) -> _Passthrough:
        for key in self.model_extra or {}:
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,63}", key):
                raise ValueError(f"extra field name {key[:70]!r} is not a plain identifier")
        return self


class OpenAIVideoInput(_Passthrough):
    """`POST /v1/videos` (OpenAI format)."""

    model: str = Field("sora-2", min_length=1, max_length=100, description="sora-2, sora-2-pro (Veo: veo_3_1, veo_3_1-fast)")
    seconds: str | None = Field(None, description='clip length, e.g. "4", "8", "12" (relays differ)')
    size: str | None = Field(None, description="WIDTHxHEIGHT, e.g. 720x1280, 1280x720")
    input_reference: str | None = Field(None, description="reference image: an http(s) URL, or a base64 data: URI that is uploaded as a file")
    metadata: dict[str, Any] | str | None = Field(None, description="relay extension (object or JSON string)")

    @field_validator("seconds", mode="before")
    @classmethod
    def _seconds(cls, v: object) -> object:
        if isinstance(v, bool):
            raise ValueError("must be a number of seconds")
        if isinstance(v, int):
            v = str(v)
        if isinstance(v, str) and not re.fullmatch(r"[1-9]\d{0,2}", v.strip()):
            raise ValueError("must be a whole number of seconds, 1-999")
        return v.strip() if isinstance(v, str) else v

    @field_validator("size")
    @classmethod
    def _size(cls, v: str | None) -> str | None:
        if v is not None and not _SIZE.fullmatch(v):
            raise ValueError("must be WIDTHxHEIGHT, e.g. 1280x720")
        return v

    @field_validator("input_reference")
    @classmethod
    def _reference(cls, v: str | None) -> str | None:
        return check_image_ref(v) if v is not None else None


class VeoOpenAIInput(OpenAIVideoInput):
    model: str = Field("veo_3_1-fast", min_length=1, max_length=100, description="veo_3_1, veo_3_1-fast, component / 4K variants")


class UnifiedVideoInput(_Passthrough):
    """`POST /v1/video/create` (unified format)."""

    model: str = Field("sora-2", min_length=1, max_length=100)
    images: list[str] | None = Field(None, max_length=9, description="reference image URLs (or data: URIs)")
    orientation: str | None = Field(None, description="portrait or landscape")
    size: str | None = Field(None, description="small / large (Sora), 720x1280 / 1280x720 (Veo), 720P / 1080P (Grok)")
    duration: int | None = Field(None, ge=1, le=120, description="seconds")
    aspect_ratio: str | None = Field(None, description="16:9, 9:16 (Veo, Grok); 2:3, 3:2, 1:1 (Grok)")

    @field_validator("images")
    @classmethod
    def _images(cls, v: list[str] | None) -> list[str] | None:
        return [check_image_ref(i) for i in v] if v is not None else None


class VeoUnifiedInput(UnifiedVideoInput):
    model: str = Field(
        "veo3.1-fast", min_length=1, max_length=100, description="veo3, veo3-fast, veo3.1, veo3.1-fast, veo3.1-pro, *-frames, *-components, 4k..."
    )
    enhance_prompt: bool | None = None
    enable_upsample: bool | None = None


class GrokVideoInput(UnifiedVideoInput):
    model: str = Field("grok-video-3", min_length=1, max_length=100, description="grok-video-3 (relays also list -pro, -max)")


class RemixInput(BaseModel):
    """`POST /v1/videos/{id}/remix`: the parent is one of our jobs (`job_id`) or a relay `video_id`."""

    model_config = ConfigDict(extra="forbid")

    prompt: str = Field(..., min_length=1, max_length=10000)
    job_id: str | None = Field(None, max_length=40, description="our job that made the parent video (operation video or remix)")
    video_id: str | None = Field(None, min_length=1, max_length=200, description="the relay's id of a /v1/videos video")

    @model_validator(mode="after")
    def _one_parent(self) -> RemixInput:
        if (self.job_id is None) == (self.video_id is None):
            raise ValueError("give exactly one of job_id (our job) or video_id (the relay's video id)")
        if self.video_id is not None and ":" in self.video_id:
            raise ValueError("video_id looks like a unified-format id (model:task_...); remix works only for /v1/videos videos")
        return self
