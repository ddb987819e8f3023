"""Ideogram 3.0 through the relay, one-shot: `POST /ideogram/v1/ideogram-v3/{generate | edit | remix
| reframe | replace-background}`. Generate is JSON; the others are multipart, the image (and the
edit's mask) uploaded as files: a base64 data: URI, or a URL the engine fetches first (SSRF-guarded).
The answer `{created, data[{url, prompt, resolution, is_image_safe, seed, style_type}]}` is read like
the OpenAI images answer (providers.oneshot.answers): an image flagged unsafe comes without a URL
and is skipped; URLs live 24 h.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, Literal

from pydantic import Field, field_validator

from providers.base import FilePart, HttpRequest
from providers.oneshot.inputs import _Passthrough, check_image

BASE = "/ideogram/v1/ideogram-v3"
Speed = Literal["TURBO", "DEFAULT", "QUALITY"]
Magic = Literal["AUTO", "ON", "OFF"]
Style = Literal["AUTO", "GENERAL", "REALISTIC", "DESIGN", "FICTION"]


class _IdeogramCommon(_Passthrough):
    num_images: int | None = Field(None, ge=1, le=8)
    seed: int | None = Field(None, ge=0, le=2147483647)
    rendering_speed: Speed | None = Field(None, description="TURBO, DEFAULT, QUALITY")


class IdeogramGenerateInput(_IdeogramCommon):
    """`POST .../generate` (JSON)."""

    prompt: str = Field(..., min_length=1, max_length=10000)
    aspect_ratio: str | None = Field(None, max_length=10, description="1x1, 16x9, 9x16, 3x2, ... (x, not :)")
    resolution: str | None = Field(None, max_length=12, description="e.g. 1024x1024 (instead of aspect_ratio)")
    magic_prompt: Magic | None = None
    negative_prompt: str | None = Field(None, max_length=10000)
    style_type: Style | None = None

    @field_validator("aspect_ratio")
    @classmethod
    def _ratio(cls, v: str | None) -> str | None:
        if v is not None and (len(v.split("x")) != 2 or not all(p.isdigit() for p in v.split("x"))):
            raise ValueError("must be like 16x9 (x, not :)")
        return v


class _WithImage(_IdeogramCommon):
    image: str = Field(..., description="the image: an http(s) URL (fetched by us) or a base64 data: URI")

    @field_validator("image")
    @classmethod
    def _image(cls, v: str) -> str:
        return check_image(v)


class IdeogramEditInput(_WithImage):
    """`POST .../edit` (multipart): the masked areas (black) are redrawn."""

    prompt: str = Field(..., min_length=1, max_length=10000)
    mask: str = Field(..., description="black and white mask, same size as the image (URL or data: URI)")
    magic_prompt: Magic | None = None
    style_type: Style | None = None

    @field_validator("mask")
    @classmethod
    def _mask(cls, v: str) -> str:
        return check_image(v)


class IdeogramRemixInput(_WithImage):
    """`POST .../remix` (multipart)."""

    prompt: str = Field(..., min_length=1, max_length=10000)
    image_weight: int | None = Field(None, ge=1, le=100, description="how much the source image counts, 1-100")
    aspect_ratio: str | None = Field(None, max_length=10)
    magic_prompt: Magic | None = None
    style_type: Style | None = None


class IdeogramReframeInput(_WithImage):
    """`POST .../reframe` (multipart): the image extended to a new resolution."""

    resolution: str = Field(..., max_length=12, description="the target resolution, e.g. 1536x640")


class IdeogramReplaceBackgroundInput(_WithImage):
    """`POST .../replace-background` (multipart)."""

    prompt: str = Field(..., min_length=1, max_length=10000, description="the new background")
    magic_prompt: Magic | None = None


def build_ideogram(action: str, input: Mapping[str, Any], *, file_of: Callable[[str, str, str], FilePart]) -> HttpRequest:
    """`generate` as JSON; the others multipart with `image` (and `mask`) as files (`file_of(field, stem, ref) -> FilePart`)."""
    path = f"{BASE}/{action.replace('_', '-')}"
    if action == "generate":
        return HttpRequest("POST", path, json=dict(input))
    files: list[FilePart] = [file_of("image", "image", input["image"])]
    if input.get("mask"):
        files.append(file_of("mask", "mask", input["mask"]))
    form = {k: v if isinstance(v, str) else json.dumps(v, separators=(",", ":")) for k, v in input.items() if k not in ("image", "mask")}
    return HttpRequest("POST", path, form=form, files=files)
