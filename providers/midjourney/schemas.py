"""Midjourney operation inputs (midjourney-proxy field names, providers.md §3.1, §10.10).

Field names are the proxy's own (camelCase) so a validated input maps 1:1 onto the submit
body; our additions are `mode` (path prefix, §2.1), `job_id` and `button` (a parent job of
ours, resolved by the engine into ctx.parent). Pydantic models only: no I/O here.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

BotType = Literal["MID_JOURNEY", "NIJI_JOURNEY"]


def _data_uri(v: str, field: str) -> str:
    if not (v.startswith("data:") and ";base64," in v[:100]):
        raise ValueError(f"{field} items must be data URIs (data:image/png;base64,...)")
    return v


class _MjInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mode: Literal["fast", "relax", "turbo"] | None = Field(
        None, description="speed tier: sent as the path prefix /mj-{mode}/mj/... (priced differently by the relay)"
    )


class _TaskInput(_MjInput):
    state: str | None = Field(None, max_length=1000, description="free text echoed back; defaults to our job id")


class ImagineInput(_TaskInput):
    prompt: str = Field(..., min_length=1, max_length=8192)
    base64Array: list[str] | None = Field(None, max_length=5, description="reference images as data URIs")
    botType: BotType | None = None
    accountFilter: dict[str, Any] | None = None

    @field_validator("prompt")
    @classmethod
    def _not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("prompt must not be empty")
        return v

    @field_validator("base64Array")
    @classmethod
    def _uris(cls, v: list[str] | None) -> list[str] | None:
        return [_data_uri(x, "base64Array") for x in v] if v else v


class ActionInput(_TaskInput):
    """A button of a finished task: `job_id` + `button` (our parent job), or `taskId` + `customId`."""

    job_id: str | None = Field(None, min_length=1, description="our job id of the parent task")
    button: str | None = Field(None, min_length=1, max_length=100, description="U1..U4, V1..V4, reroll, zoom_out_2x, Vary (Region), pan_left, ...")
    taskId: str | None = Field(None, min_length=1, description="the proxy's id of the parent task")
    customId: str | None = Field(None, min_length=1, description="buttons[].customId of the parent task")
    chooseSameChannel: bool | None = None
    accountFilter: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _one_form(self) -> ActionInput:
        ours, raw = (self.job_id, self.button), (self.taskId, self.customId)
        if any(ours) and any(raw):
            raise ValueError("give either job_id + button or taskId + customId, not both")
        if any(ours) and not all(ours):
            raise ValueError("job_id and button go together")
        if any(raw) and not all(raw):
            raise ValueError("taskId and customId go together")
        if not any(ours) and not any(raw):
            raise ValueError("job_id + button (a job of ours) or taskId + customId is required")
        return self


class BlendInput(_TaskInput):
    base64Array: list[str] = Field(..., min_length=2, max_length=5, description="2 to 5 images as data URIs")
    dimensions: Literal["PORTRAIT", "SQUARE", "LANDSCAPE"] | None = None
    botType: BotType | None = None

    @field_validator("base64Array")
    @classmethod
    def _uris(cls, v: list[str]) -> list[str]:
        return [_data_uri(x, "base64Array") for x in v]


class DescribeInput(_TaskInput):
    base64: str = Field(..., min_length=1, description="the image as a data URI")
    botType: BotType | None = None

    @field_validator("base64")
    @classmethod
    def _uri(cls, v: str) -> str:
        return _data_uri(v, "base64")


class ModalInput(_TaskInput):
    """Finishes a task parked in MODAL (inpaint region, custom zoom, remix)."""

    job_id: str | None = Field(None, min_length=1, description="our job whose task awaits input")
    taskId: str | None = Field(None, min_length=1)
    prompt: str | None = Field(None, max_length=8192)
    maskBase64: str | None = None

    @model_validator(mode="after")
    def _one_parent(self) -> ModalInput:
        if bool(self.job_id) == bool(self.taskId):
            raise ValueError("exactly one of job_id or taskId is required")
        return self


class VideoInput(_TaskInput):
    """Image to 4 videos; or `action: "extend"` + `index` of a finished video task (§10.10)."""

    image: str | None = Field(None, min_length=1, description="first frame: URL or base64")
    motion: Literal["low", "high"] | None = None
    prompt: str | None = Field(None, max_length=8192)
    action: Literal["extend"] | None = None
    index: int | None = Field(None, ge=0, le=3, description="which video of the parent to extend")
    job_id: str | None = Field(None, min_length=1, description="our job of the parent video task (extend)")
    taskId: str | None = Field(None, min_length=1, description="the proxy's id of the parent video task (extend)")

    @model_validator(mode="after")
    def _form(self) -> VideoInput:
        if self.action == "extend":
            if self.index is None:
                raise ValueError("extend needs index (0-3)")
            if bool(self.job_id) == bool(self.taskId):
                raise ValueError("extend needs exactly one of job_id or taskId")
        else:
            if not self.image:
                raise ValueError("image is required (or action: extend with index and job_id/taskId)")
            if self.index is not None or self.job_id or self.taskId:
                raise ValueError("index, job_id and taskId are only for action: extend")
        return self


class UploadInput(_MjInput):
    base64Array: list[str] = Field(..., min_length=1, max_length=10, description="images as data URIs")
    filter: dict[str, Any] | None = Field(None, description="{channelId, instanceId, remark}")

    @field_validator("base64Array")
    @classmethod
    def _uris(cls, v: list[str]) -> list[str]:
        return [_data_uri(x, "base64Array") for x in v]
