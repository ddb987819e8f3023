"""The synchronous generations' fake (OpenAI-format images and speech): the answer *is* the result.

A call's life is one request: the simulator waits `oneshot_s` (or the prompt's `[sim:delay=N]`),
records the paid call (family `oneshot`), then answers. Prompt directives (the image `prompt`, the
speech `input`): `[sim:reject]` (400 with a content-policy message, nothing paid), `[sim:drop]`
(paid, then the connection drops mid-answer), `[sim:expire]` (url items that answer 403),
`[sim:bytes=N]` (speech: N deterministic bytes instead of the MP3), `[sim:empty]` (an answer
without any image), `[sim:error200]` (HTTP 200 carrying an error object).
`OneShotStore` keeps each call (its uploads' sha256, the bytes' sha256) for `GET /_sim/oneshot`.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

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
