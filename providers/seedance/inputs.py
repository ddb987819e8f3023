"""The input schema of Seedance (Doubao video) `video` (providers-next.md §4.2).

The relay takes `model` and `content[]`: a text item, images with a role (`first_frame`,
`last_frame`, `reference_image`) and, for Seedance 2.0 only, a reference video and audio. A caller
may give the friendly fields (`prompt`, `first_frame`, `last_frame`, `reference_images`,
`reference_videos`, `reference_audios`), native `content[]` items, or both: the adapter sends them
as one `content[]` (text first). What each documented model accepts is published in the schema
(`x-models`) and checked here, before anything is paid, each refusal naming its field; an unknown
model passes through and the relay decides. The relay's other fields (`watermark`, `frames`,
`draft`...) pass through as given.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal, cast

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from models.datauri import parse_data_uri

RATIOS = ("16:9", "4:3", "1:1", "3:4", "9:16", "21:9", "adaptive")
RESOLUTIONS = ("480p", "720p", "1080p")
IMAGE_ROLES = ("first_frame", "last_frame", "reference_image")
ITEM_TYPES = {"text": None, "image_url": IMAGE_ROLES, "video_url": ("reference_video",), "audio_url": ("reference_audio",)}
MAX_REFERENCE_IMAGES = 4
MAX_ITEMS = 20

_1X = list(range(2, 13))  # 2-12 s
# The documented models (§4.2): durations in seconds, resolutions, which image roles they take,
# whether they take reference video / audio (2.0) and generate sound (1.5 pro, 2.0).
MODELS: dict[str, dict[str, Any]] = {
    "doubao-seedance-1-0-pro-250528": {"durations": _1X, "resolutions": list(RESOLUTIONS), "image_roles": ["first_frame", "last_frame"]},
    "doubao-seedance-1-0-pro-fast-251015": {"durations": _1X, "resolutions": list(RESOLUTIONS), "image_roles": ["first_frame", "last_frame"]},
    "doubao-seedance-1-0-lite-t2v-250428": {"durations": _1X, "resolutions": list(RESOLUTIONS), "image_roles": []},
    "doubao-seedance-1-0-lite-i2v-250428": {
        "durations": _1X,
        "resolutions": list(RESOLUTIONS),
        "image_roles": list(IMAGE_ROLES),
        "max_reference_images": MAX_REFERENCE_IMAGES,
    },
    "doubao-seedance-1-5-pro-251215": {
        "durations": list(range(4, 13)),
        "resolutions": list(RESOLUTIONS),
        "image_roles": ["first_frame", "last_frame"],
        "audio": True,
    },
    "doubao-seedance-2-0-260128": {
        "durations": list(range(4, 16)),
        "resolutions": list(RESOLUTIONS),
        "image_roles": list(IMAGE_ROLES),
        "reference_media": True,
        "audio": True,
    },
    "doubao-seedance-2-0-fast-260128": {
        "durations": list(range(4, 16)),
        "resolutions": list(RESOLUTIONS),
        "image_roles": list(IMAGE_ROLES),
        "reference_media": True,
        "audio": True,
    },
}
DEFAULT_MODEL = "doubao-seedance-1-0-pro-250528"


def check_media_ref(value: str, *, images: bool) -> str:
    """A media reference: an http(s) URL, or (images only) a base64 data: URI; the relay's own
    `asset://` ids pass too."""
    value = value.strip()
    if value.lower().startswith(("http://", "https://", "asset://")):
        return value
    if images:
        uri = parse_data_uri(value)
        if uri is not None and uri.is_base64:
            return value
        raise ValueError("must be an http(s) URL or a base64 data: URI (data:image/png;base64,...)")
    raise ValueError("must be an http(s) URL")


def _spec(info: ValidationInfo) -> dict[str, Any] | None:
    model = info.data.get("model")
    return MODELS.get(model) if isinstance(model, str) else None


def _item_media(item: Mapping[str, Any]) -> tuple[str, str | None]:
    """(type, role) of a content item; the role of an image without one is first_frame."""
    kind = str(item.get("type") or "")
    role = item.get("role")
    if kind == "image_url" and role is None:
        role = "first_frame"
    return kind, str(role) if role is not None else None


def content_items(input: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The `content[]` the relay gets: the prompt as the text item, the friendly media fields, then
    the caller's own items, in that order."""
    items: list[dict[str, Any]] = []
    if input.get("prompt"):
        items.append({"type": "text", "text": input["prompt"]})
    for name, role in (("first_frame", "first_frame"), ("last_frame", "last_frame")):
        if input.get(name):
            items.append({"type": "image_url", "image_url": {"url": input[name]}, "role": role})
    for url in input.get("reference_images") or ():
        items.append({"type": "image_url", "image_url": {"url": url}, "role": "reference_image"})
    for url in input.get("reference_videos") or ():
        items.append({"type": "video_url", "video_url": {"url": url}, "role": "reference_video"})
    for url in input.get("reference_audios") or ():
        items.append({"type": "audio_url", "audio_url": {"url": url}, "role": "reference_audio"})
    return items + [dict(i) for i in input.get("content") or ()]


def check_combination(model: str, items: list[dict[str, Any]]) -> str | None:
    """Why this model cannot take these content items, or None (unknown models: only the shape)."""
    roles = [_item_media(i) for i in items]
    images = [r for k, r in roles if k == "image_url"]
    if not any(k == "text" for k, _ in roles) and not images and not any(k in ("video_url", "audio_url") for k, _ in roles):
        return "give a prompt, an image or content[] items"
    if images.count("first_frame") > 1 or images.count("last_frame") > 1:
        return "at most one first_frame and one last_frame"
    if "last_frame" in images and "first_frame" not in images:
        return "a last_frame needs a first_frame"
    if "reference_image" in images and ("first_frame" in images or "last_frame" in images):
        return "reference images cannot be combined with a first or last frame"
    spec = MODELS.get(model)
    if spec is None:
        return None
    for role in images:
        if role not in spec["image_roles"]:
            takes = ", ".join(spec["image_roles"]) or "no images (text to video only)"
            return f"{model} takes {takes}; not {role}"
    most = spec.get("max_reference_images")
    if most is not None and images.count("reference_image") > most:
        return f"{model} takes 1-{most} reference images"
    if not spec.get("reference_media") and any(k in ("video_url", "audio_url") for k, _ in roles):
        return f"reference video and audio need Seedance 2.0 ({', '.join(m for m, s in MODELS.items() if s.get('reference_media'))}); not {model}"
    return None


class SeedanceVideoInput(BaseModel):
    """`POST {prefix}/contents/generations/tasks` (Seedance / Doubao video)."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"x-models": cast(Any, MODELS)})

    model: str = Field(DEFAULT_MODEL, min_length=1, max_length=100, description=f"a Seedance model: {', '.join(MODELS)} (others pass to the relay)")
    prompt: str | None = Field(None, min_length=1, max_length=10000, description="the text item of content[] (old-style flags like --ratio 16:9 pass through)")
    first_frame: str | None = Field(None, description="image URL (or base64 data: URI) of the first frame")
    last_frame: str | None = Field(None, description="image URL (or data: URI) of the last frame; needs first_frame")
    reference_images: list[str] | None = Field(None, min_length=1, max_length=9, description="reference images (role reference_image)")
    reference_videos: list[str] | None = Field(None, min_length=1, max_length=3, description="Seedance 2.0: reference video URLs")
    reference_audios: list[str] | None = Field(None, min_length=1, max_length=3, description="Seedance 2.0: reference audio URLs")
    content: list[dict[str, Any]] | None = Field(
        None, max_length=MAX_ITEMS, description="native content[] items, sent after the ones the fields above make", validate_default=True
    )
    ratio: Literal["16:9", "4:3", "1:1", "3:4", "9:16", "21:9", "adaptive"] | None = None
    duration: int | None = Field(None, ge=1, le=60, description="seconds (see x-models per model; Seedance 2.0: 4-15)")
    resolution: Literal["480p", "720p", "1080p"] | None = None
    generate_audio: bool | None = Field(None, description="Seedance 1.5 pro and 2.0: generate sound")
    seed: int | None = Field(None, ge=-1, le=2**32 - 1)
    camera_fixed: bool | None = None
    return_last_frame: bool | None = Field(None, description="also return the last frame as an image")
    watermark: bool | None = None
    service_tier: Literal["default", "flex"] | None = None
    execution_expires_after: int | None = Field(None, ge=1, le=7 * 86400, description="seconds before the relay expires the task")

    @field_validator("first_frame", "last_frame")
    @classmethod
    def _frame(cls, v: str | None, info: ValidationInfo) -> str | None:
        if v is None:
            return None
        v = check_media_ref(v, images=True)
        spec = _spec(info)
        if spec is not None and info.field_name not in spec["image_roles"]:
            raise ValueError(f"{info.data['model']} takes {', '.join(spec['image_roles']) or 'no images (text to video only)'}")
        if info.field_name == "last_frame" and not info.data.get("first_frame"):
            raise ValueError("a last_frame needs a first_frame")
        return v

    @field_validator("reference_images")
    @classmethod
    def _reference_images(cls, v: list[str] | None, info: ValidationInfo) -> list[str] | None:
        if v is None:
            return None
        v = [check_media_ref(u, images=True) for u in v]
        spec = _spec(info)
        if spec is not None and "reference_image" not in spec["image_roles"]:
            raise ValueError(f"{info.data['model']} takes no reference images")
        if spec is not None and len(v) > spec.get("max_reference_images", len(v)):
            raise ValueError(f"{info.data['model']} takes 1-{spec['max_reference_images']} reference images")
        if info.data.get("first_frame") or info.data.get("last_frame"):
            raise ValueError("reference images cannot be combined with a first or last frame")
        return v

    @field_validator("reference_videos", "reference_audios")
    @classmethod
    def _reference_media(cls, v: list[str] | None, info: ValidationInfo) -> list[str] | None:
        if v is None:
            return None
        spec = _spec(info)
        if spec is not None and not spec.get("reference_media"):
            raise ValueError(f"reference video and audio need Seedance 2.0; not {info.data['model']}")
        return [check_media_ref(u, images=False) for u in v]

    @field_validator("content")
    @classmethod
    def _content(cls, v: list[dict[str, Any]] | None, info: ValidationInfo) -> list[dict[str, Any]] | None:
        for i, item in enumerate(v or ()):
            kind, role = _item_media(item)
            if kind not in ITEM_TYPES:
                raise ValueError(f"item {i}: type must be one of {', '.join(ITEM_TYPES)}")
            if kind == "text":
                if not isinstance(item.get("text"), str) or not item["text"].strip():
                    raise ValueError(f"item {i}: a text item needs its text")
                continue
            roles = ITEM_TYPES[kind] or ()
            if role not in roles:
                raise ValueError(f"item {i}: the role of a {kind} item is one of {', '.join(roles)}")
            url = (item.get(kind) or {}).get("url") if isinstance(item.get(kind), Mapping) else None
            if not isinstance(url, str):
                raise ValueError(f"item {i}: {kind}.url is required")
            check_media_ref(url, images=kind == "image_url")
        model = info.data.get("model")
        if not isinstance(model, str):
            return v
        problem = check_combination(model, content_items({**info.data, "content": v}))
        if problem:
            raise ValueError(problem)
        return v

    @field_validator("duration")
    @classmethod
    def _duration(cls, v: int | None, info: ValidationInfo) -> int | None:
        spec = _spec(info)
        if v is not None and spec is not None and v not in spec["durations"]:
            lo, hi = spec["durations"][0], spec["durations"][-1]
            raise ValueError(f"{info.data['model']} makes {lo}-{hi} s videos, not {v}")
        return v

    @field_validator("resolution")
    @classmethod
    def _resolution(cls, v: str | None, info: ValidationInfo) -> str | None:
        spec = _spec(info)
        if v is not None and spec is not None and v not in spec["resolutions"]:
            raise ValueError(f"{info.data['model']} makes {', '.join(spec['resolutions'])}, not {v}")
        return v

    @field_validator("generate_audio")
    @classmethod
    def _audio(cls, v: bool | None, info: ValidationInfo) -> bool | None:
        spec = _spec(info)
        if v and spec is not None and not spec.get("audio"):
            raise ValueError(f"{info.data['model']} makes no sound (Seedance 1.5 pro and 2.0 do)")
        return v

    @model_validator(mode="after")
    def _extras_are_plain(self) -> SeedanceVideoInput:
        for key in self.model_extra or {}:
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,63}", key):
                raise ValueError(f"extra field name {key[:70]!r} is not a plain identifier")
            if key == "callback_url":
                raise ValueError("callback_url is the job's own (give it beside input, not in it)")
        return self
