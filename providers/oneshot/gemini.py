"""Gemini image generation ("nano banana") through the relay's native Gemini route, one-shot.

`POST /v1beta/models/{model}:generateContent` with the prompt (and reference images as inline
parts); the answer's `candidates[].content.parts[]` carry text and `inlineData {mimeType, data}`
(base64): every inline part is an asset (stored from its `data:` URI, no URL to fetch), the text
goes to `result.text`, `usageMetadata` to `result.cost`. Both the REST casing (`inlineData`,
`mimeType`) and the snake_case some relays answer with (`inline_data`, `mime_type`) are read.
No image with a `finishReason` such as SAFETY or IMAGE_SAFETY, or a `promptFeedback.blockReason`,
fails the job with that reason.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal, cast

from pydantic import ConfigDict, Field, ValidationInfo, field_validator
from pydantic.config import JsonDict

from models.errors import ProviderProtocolError
from providers.base import HttpRequest, HttpResponse, OutputRef, ProviderStatus, Rejected, State, Submitted
from providers.oneshot.answers import MAX_ITEMS, bounded_usage
from providers.oneshot.inputs import _Passthrough, image_bytes
from providers.rejections import submit_rejection
from providers.wire import error_message, json_or_none, object_at

_MODEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
GEMINI_MODELS: dict[str, dict[str, Any]] = {
    "gemini-2.5-flash-image": {"image_sizes": []},
    "gemini-2.5-flash-image-preview": {"image_sizes": []},
    "gemini-3-pro-image-preview": {"image_sizes": ["1K", "2K", "4K"]},
}
_ASPECTS = ("1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9")


class GeminiImageInput(_Passthrough):
    """`generateContent` for an image model: the prompt, optional reference images, the image config."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"x-models": cast(JsonDict, GEMINI_MODELS)})

    model: str = Field("gemini-2.5-flash-image", description="gemini-2.5-flash-image (nano banana), gemini-3-pro-image-preview, ...")
    prompt: str = Field(..., min_length=1, max_length=32000)
    images: list[str] | None = Field(None, max_length=14, description="reference images as base64 data: URIs, sent inline")
    aspect_ratio: Literal["1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9"] | None = Field(None, description=", ".join(_ASPECTS))
    image_size: Literal["1K", "2K", "4K"] | None = Field(None, description="gemini-3-pro-image-preview only")
    text_too: bool = Field(True, description="also ask for text (responseModalities TEXT and IMAGE); false: IMAGE only")

    @field_validator("model")
    @classmethod
    def _model(cls, v: str) -> str:
        if not _MODEL.fullmatch(v):
            raise ValueError("must be a model name (letters, digits, . _ -), e.g. gemini-2.5-flash-image")
        return v

    @field_validator("images")
    @classmethod
    def _images(cls, v: list[str] | None) -> list[str] | None:
        for item in v or []:
            image_bytes(item)
        return v

    @field_validator("image_size")
    @classmethod
    def _size(cls, v: str | None, info: ValidationInfo) -> str | None:
        limits = GEMINI_MODELS.get(info.data.get("model", ""))
        if v is not None and limits is not None and v not in limits["image_sizes"]:
            raise ValueError(f"{info.data['model']} takes no image_size (gemini-3-pro-image-preview takes 1K, 2K, 4K)")
        return v


def build_gemini(input: Mapping[str, Any]) -> HttpRequest:
    parts: list[dict[str, Any]] = [{"text": input["prompt"]}]
    for ref in input.get("images") or []:
        mime, _ = image_bytes(ref)
        parts.append({"inlineData": {"mimeType": mime, "data": ref.split(",", 1)[1].strip()}})
    image_config = {k: v for k, v in (("aspectRatio", input.get("aspect_ratio")), ("imageSize", input.get("image_size"))) if v}
    config: dict[str, Any] = {"responseModalities": ["TEXT", "IMAGE"] if input.get("text_too", True) else ["IMAGE"]}
    if image_config:
        config["imageConfig"] = image_config
    body = {"contents": [{"role": "user", "parts": parts}], "generationConfig": config}
    return HttpRequest("POST", f"/v1beta/models/{input['model']}:generateContent", json=body)


def parse_gemini(resp: HttpResponse) -> Submitted | Rejected:
    data = json_or_none(resp)
    if resp.status >= 300:
        return submit_rejection(resp, error_message(data))
    if not isinstance(data, Mapping):
        raise ProviderProtocolError("generateContent answer is not a JSON object")
    candidates = data.get("candidates")
    feedback = object_at(data, "promptFeedback")
    outputs: list[OutputRef] = []
    texts: list[str] = []
    reasons: list[str] = []
    for cand in candidates[:MAX_ITEMS] if isinstance(candidates, list) else []:
        if not isinstance(cand, Mapping):
            continue
        if isinstance(cand.get("finishReason"), str):
            reasons.append(cand["finishReason"][:60])
        content = object_at(cand, "content")
        parts = content.get("parts")
        for part in parts if isinstance(parts, list) else []:
            if not isinstance(part, Mapping):
                continue
            inline = part.get("inlineData") or part.get("inline_data")
            if isinstance(inline, Mapping) and isinstance(inline.get("data"), str) and inline["data"]:
                mime = str(inline.get("mimeType") or inline.get("mime_type") or "image/png")[:100]
                kind = "image" if mime.startswith("image/") else "audio" if mime.startswith("audio/") else "file"
                outputs.append(OutputRef(f"data:{mime};base64,{inline['data']}", kind, meta={"part": len(outputs)}))
            elif isinstance(part.get("text"), str) and not part.get("thought"):
                texts.append(part["text"][:4000])
    result: dict[str, Any] = {"images": len(outputs)}
    if texts:
        result["text"] = "\n".join(texts)[:8000]
    if isinstance(data.get("modelVersion"), str):
        result["model_version"] = data["modelVersion"][:100]
    cost = bounded_usage(data.get("usageMetadata"))
    if cost:
        result["cost"] = cost
    if outputs:
        return Submitted(None, ProviderStatus(None, State.SUCCEEDED, progress=100, outputs=outputs, result_data=result))
    why = str(feedback.get("blockReason") or "") or ", ".join(r for r in reasons if r != "STOP") or "no inline image in the answer"
    code = "content_blocked" if feedback.get("blockReason") or any("SAFETY" in r or "PROHIBITED" in r for r in reasons) else "provider_failed"
    message = f"no image: {why}" + (f" ({result['text'][:300]})" if texts else "")
    return Submitted(None, ProviderStatus(None, State.FAILED, result_data=result, error_code=code, error_message=message))
