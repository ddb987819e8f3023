"""Input schemas of the Suno operations (providers.md §7.1).

`music` has three modes with different required fields; the mode is explicit or inferred, and a
field that belongs to another mode is refused with its name rather than silently dropped.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

Mode = Literal["inspiration", "custom", "continuation"]
_SONG = ("custom", "continuation")
# Which modes each mode-specific field belongs to (mv and make_instrumental fit every mode).
FIELD_MODES: dict[str, tuple[str, ...]] = {
    "gpt_description_prompt": ("inspiration",),
    "prompt": _SONG,
    "title": _SONG,
    "tags": _SONG,
    "negative_tags": _SONG,
    "continue_clip_id": ("continuation",),
    "continue_at": ("continuation",),
    "task_id": ("continuation",),
    "job_id": ("continuation",),
}
REQUIRED: dict[str, tuple[str, ...]] = {
    "inspiration": ("gpt_description_prompt",),
    "custom": ("prompt", "title", "tags"),
    "continuation": ("prompt", "title", "tags", "continue_clip_id", "continue_at"),
}


def infer_mode(data: Mapping[str, Any]) -> str:
    """The explicit mode, else gpt_description_prompt → inspiration, continue_clip_id → continuation, else custom."""
    if data.get("mode"):
        return str(data["mode"])
    if data.get("gpt_description_prompt") is not None:
        return "inspiration"
    if data.get("continue_clip_id") is not None:
        return "continuation"
    return "custom"


class MusicInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mode: Mode | None = Field(None, description="inferred when omitted: gpt_description_prompt → inspiration, continue_clip_id → continuation, else custom")
    mv: str | None = Field(
        None, min_length=1, description="model: chirp-v3-5, chirp-v4, chirp-auk, chirp-bluejay, chirp-crow, chirp-fenix, ... (relay default when omitted)"
    )
    make_instrumental: bool | None = None
    gpt_description_prompt: str | None = Field(None, min_length=1, description="inspiration: what the song is about")
    prompt: str | None = Field(None, description="custom/continuation: the lyrics; an empty string makes an instrumental")
    title: str | None = Field(None, min_length=1)
    tags: str | None = Field(None, min_length=1, description="comma-separated styles")
    negative_tags: str | None = None
    continue_clip_id: str | None = Field(None, min_length=1, description="continuation: the clip to extend")
    continue_at: float | None = Field(None, ge=0, description="continuation: seconds into that clip")
    task_id: str | None = Field(None, min_length=1, description="continuation: the relay task id of the original song")
    job_id: str | None = Field(None, min_length=1, description="continuation: our job id of the original music job")

    @model_validator(mode="before")
    @classmethod
    def _infer_mode(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("mode") is None:
            return {**data, "mode": infer_mode(data)}
        return data

    @field_validator(*FIELD_MODES)
    @classmethod
    def _belongs_to_mode(cls, v: Any, info: ValidationInfo) -> Any:
        mode, modes = info.data.get("mode"), FIELD_MODES[str(info.field_name)]
        if v is not None and mode is not None and mode not in modes:
            raise ValueError(f"{info.field_name} is not allowed in {mode} mode (only in {' or '.join(modes)} mode)")
        return v

    @model_validator(mode="after")
    def _mode_requirements(self) -> MusicInput:
        mode = self.mode or "custom"
        missing = [f for f in REQUIRED[mode] if getattr(self, f) is None]
        if missing:
            raise ValueError(f"{mode} mode requires {', '.join(missing)}")
        if mode == "continuation" and (self.task_id is None) == (self.job_id is None):
            raise ValueError("continuation mode needs exactly one of task_id (relay task id) or job_id (our music job)")
        return self


class LyricsInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prompt: str = Field(..., min_length=1, description="what the lyrics are about")
