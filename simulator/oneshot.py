"""The synchronous generations' fake (OpenAI-format images and speech): the answer *is* the result.

A call's life is one request: the simulator waits `oneshot_s` (or the prompt's `[sim:delay=N]`),
records the paid call (family `oneshot`), then answers. Prompt directives (the image `prompt`, the
speech `input`): `[sim:reject]` (400 with a content-policy message, nothing paid), `[sim:drop]`
(paid, then the connection drops mid-answer), `[sim:expire]` (url items that answer 403),
`[sim:bytes=N]` (speech: N deterministic bytes instead of the MP3), `[sim:empty]` (an answer
without any image), `[sim:error200]` (HTTP 200 carrying an error object), `[sim:blocked]` (Gemini:
no candidate, `promptFeedback.blockReason`; Ideogram: every image flagged unsafe, without a URL),
`[sim:snake]` (Gemini: `inline_data` / `mime_type`).
`OneShotStore` keeps each call (its uploads' sha256, the bytes' sha256) for `GET /_sim/oneshot`.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from starlette.responses import JSONResponse

from simulator.media import MP3_BYTES, PNG_BYTES, iter_big
from simulator.timeline import directive_seconds, directives

PNG_B64 = base64.b64encode(PNG_BYTES).decode()
# gpt-image models answer b64_json whatever response_format says (OpenAI); the others url by default.
B64_MODELS = ("gpt-image-",)
SPEECH_TYPES = {"mp3": "audio/mpeg", "opus": "audio/ogg", "aac": "audio/aac", "flac": "audio/flac", "wav": "audio/wav", "pcm": "audio/pcm"}


@dataclass
class OneShotStore:
    calls: list[dict[str, Any]] = field(default_factory=list)

    def add(self, row: dict[str, Any]) -> dict[str, Any]:
        row = {"id": f"os_{len(self.calls) + 1}"} | row
        self.calls.append(row)
        return row


@dataclass(frozen=True)
class Plan:
    delay_s: float | None
    reject: bool
    drop: bool
    expire: bool
    empty: bool
    error200: bool
    size: int | None
    blocked: bool = False
    snake: bool = False


def plan_of(text: object) -> Plan:
    found = directives(text)
    size = directive_seconds(found, "bytes")
    return Plan(
        delay_s=directive_seconds(found, "delay"),
        reject="reject" in found,
        drop="drop" in found,
        expire="expire" in found,
        empty="empty" in found,
        error200="error200" in found,
        size=int(size) if size is not None else None,
        blocked="blocked" in found,
        snake="snake" in found,
    )


def image_answer(call_id: str, model: str, body: dict[str, Any], base: str, plan: Plan, created: int) -> dict[str, Any]:
    """`{created, data[{url | b64_json, revised_prompt?}], usage?}` as OpenAI / new-api answer it."""
    if plan.error200:
        return {"error": {"message": "upstream error: quota exceeded", "type": "upstream_error", "code": "quota_exceeded"}}
    raw = body.get("n")
    n = raw if isinstance(raw, int) and not isinstance(raw, bool) else 1
    b64 = model.startswith(B64_MODELS) or body.get("response_format") == "b64_json"
    items: list[dict[str, Any]] = []
    for i in range(0 if plan.empty else max(1, min(10, n))):
        if b64:
            items.append({"b64_json": PNG_B64})
        elif plan.expire:
            items.append({"url": f"{base}/_sim/media/expired/{call_id}_{i}.png"})
        else:
            items.append({"url": f"{base}/_sim/media/{call_id}_{i}.png"})
        if model.startswith("dall-e-3"):
            items[-1]["revised_prompt"] = f"A detailed picture: {body.get('prompt')}"
    answer: dict[str, Any] = {"created": created, "data": items}
    if model.startswith(B64_MODELS):
        answer["usage"] = {
            "total_tokens": 100 + 4160 * len(items),
            "input_tokens": 100,
            "output_tokens": 4160 * len(items),
            "input_tokens_details": {"text_tokens": 100, "image_tokens": 0},
        }
    return answer


def speech_bytes(plan: Plan) -> tuple[int, Iterator[bytes], str]:
    """(length, chunks, sha256) of a speech answer: the MP3 fixture, or `[sim:bytes=N]` big bytes."""
    if plan.size is None:
        return len(MP3_BYTES), iter((MP3_BYTES,)), hashlib.sha256(MP3_BYTES).hexdigest()
    digest = hashlib.sha256()
    for chunk in iter_big(plan.size):
        digest.update(chunk)
    return plan.size, iter_big(plan.size), digest.hexdigest()


def upload_record(data: bytes, filename: str | None, content_type: str | None) -> dict[str, Any]:
    return {"filename": filename, "content_type": content_type, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}


IDEOGRAM_ACTIONS = ("generate", "edit", "remix", "reframe", "replace-background")


def gemini_error(message: str, status: int) -> JSONResponse:
    names = {400: "INVALID_ARGUMENT", 404: "NOT_FOUND"}
    return JSONResponse({"error": {"code": status, "message": message, "status": names.get(status, "INTERNAL")}}, status_code=status)


def gemini_parts(body: dict[str, Any]) -> tuple[list[str], list[dict[str, Any]]]:
    """The text parts and the inline images (as upload records) of a generateContent body."""
    texts: list[str] = []
    uploads: list[dict[str, Any]] = []
    contents = body.get("contents")
    for content in contents if isinstance(contents, list) else []:
        parts = content.get("parts") if isinstance(content, dict) else None
        for part in parts if isinstance(parts, list) else []:
            if not isinstance(part, dict):
                continue
            inline = part.get("inlineData") or part.get("inline_data")
            if isinstance(part.get("text"), str):
                texts.append(part["text"])
            elif isinstance(inline, dict) and isinstance(inline.get("data"), str):
                data = base64.b64decode(inline["data"])
                uploads.append({"field": "inlineData"} | upload_record(data, None, inline.get("mimeType") or inline.get("mime_type")))
    return texts, uploads


def gemini_answer(model: str, plan: Plan) -> dict[str, Any]:
    usage = {"promptTokenCount": 12, "candidatesTokenCount": 1290, "totalTokenCount": 1302}
    if plan.blocked:
        return {"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}, "usageMetadata": usage, "modelVersion": model}
    inline = {"inline_data": {"mime_type": "image/png", "data": PNG_B64}} if plan.snake else {"inlineData": {"mimeType": "image/png", "data": PNG_B64}}
    parts: list[dict[str, Any]] = [] if plan.empty else [{"text": "Here is the picture you asked for."}, inline]
    return {
        "candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": "STOP" if parts else "IMAGE_SAFETY", "index": 0}],
        "usageMetadata": usage,
        "modelVersion": model,
    }


def ideogram_answer(call_id: str, body: dict[str, Any], base: str, plan: Plan) -> dict[str, Any]:
    try:
        n = max(1, min(8, int(body.get("num_images") or 1)))
    except (TypeError, ValueError):
        n = 1
    items = []
    for i in range(n):
        url = None if plan.blocked else f"{base}/_sim/media/{'expired/' if plan.expire else ''}{call_id}_{i}.png"
        items.append(
            {
                "url": url,
                "prompt": body.get("prompt") or "",
                "resolution": body.get("resolution") or "1024x1024",
                "is_image_safe": not plan.blocked,
                "seed": 12345 + i,
                "style_type": "GENERAL",
            }
        )
    return {"created": "2026-12-07T21:00:00.000000+00:00", "data": items}
