"""Reading the one-shot families' answers: OpenAI-format image results and speech answers.

`{created, data: [{url | b64_json, revised_prompt?, size?}], usage?, output_format?}` (OpenAI,
new-api; Seedream and qwen through Key4U) -> one output per item: an http(s) URL is downloaded as
usual, a `b64_json` becomes a `data:` URI that the engine stores without a network request.
Everything here is the relay's word: unknown shapes fail the job with the reason, never raise
past ProviderProtocolError, and what reaches job.result is bounded.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from models.errors import ProviderProtocolError
from providers.base import HttpResponse, OutputRef, ProviderStatus, Rejected, State, Submitted, header_value
from providers.rejections import submit_rejection
from providers.wire import error_message, json_or_none

MAX_ITEMS = 100
_FORMATS = {"png": "image/png", "jpeg": "image/jpeg", "jpg": "image/jpeg", "webp": "image/webp", "gif": "image/gif"}
# The first base64 characters of each format's magic bytes.
_SNIFF = (("iVBORw0KGgo", "image/png"), ("/9j/", "image/jpeg"), ("UklGR", "image/webp"), ("R0lGOD", "image/gif"))


def parse_images(resp: HttpResponse) -> Submitted | Rejected:
    """The answer of /v1/images/generations or /v1/images/edits: the final status, or the relay's no."""
    data = json_or_none(resp)
    if resp.status >= 300:
        return submit_rejection(resp, error_message(data))
    if not isinstance(data, Mapping):
        raise ProviderProtocolError("image answer is not a JSON object")
    err = data.get("error")
    if err and not data.get("data"):  # HTTP 200 carrying an error (some relays)
        code = err.get("code") or err.get("type") if isinstance(err, Mapping) else None
        return Rejected(str(code or "bad_request"), error_message(data) or "the relay refused the request", False)
    items = data.get("data")
    if not isinstance(items, list):
        raise ProviderProtocolError("image answer has no data list")
    fmt = _FORMATS.get(str(data.get("output_format") or "").lower())
    outputs, revised, seeds, unsafe = [], [], [], 0
    for i, item in enumerate(items[:MAX_ITEMS]):
        if not isinstance(item, Mapping):
            continue
        if isinstance(item.get("seed"), int) and not isinstance(item["seed"], bool):
            seeds.append(item["seed"])
        if item.get("is_image_safe") is False:  # Ideogram: flagged, and served without a URL
            unsafe += 1
            continue
        ref = _image_ref(item, fmt)
        if ref is not None:
            outputs.append(OutputRef(ref, "image", meta={"index": i} | ({"size": item["size"]} if isinstance(item.get("size"), str) else {})))
        if isinstance(item.get("revised_prompt"), str):
            revised.append(item["revised_prompt"][:4000])
    result: dict[str, Any] = {"images": len(outputs)}
    if isinstance(data.get("created"), int):
        result["created"] = data["created"]
    if revised:
        result["revised_prompts"] = revised
    if seeds:
        result["seeds"] = seeds
    if unsafe:
        result["unsafe"] = unsafe
    cost = bounded_usage(data.get("usage"))
    if cost:
        result["cost"] = cost
    if not outputs:
        why = f"{unsafe} image(s) flagged unsafe by the provider" if unsafe else "no url or b64_json"
        status = ProviderStatus(None, State.FAILED, result_data=result, error_code="provider_failed", error_message=f"the answer carries no image ({why})")
        return Submitted(None, status)
    return Submitted(None, ProviderStatus(None, State.SUCCEEDED, progress=100, outputs=outputs, result_data=result))


def _image_ref(item: Mapping[str, Any], fmt: str | None) -> str | None:
    """An item's URL, or its b64_json as a data: URI (its format declared by the answer, else sniffed)."""
    b64 = item.get("b64_json")
    if isinstance(b64, str) and b64.strip():
        b64 = b64.strip()
        mime = fmt or next((m for magic, m in _SNIFF if b64.startswith(magic)), "image/png")
        return f"data:{mime};base64,{b64}"
    url = item.get("url")
    if isinstance(url, str) and url[:8].lower().startswith(("http://", "https://")) and len(url) <= 4000:
        return url.strip()
    if isinstance(url, str) and url[:5].lower() == "data:":  # a relay that inlines the file as a URL
        return url
    return None


def bounded_usage(usage: object) -> dict[str, Any]:
    """The answer's usage (tokens, or a relay's credits) for job.result.cost: numbers and short
    strings, one level of nesting (input_tokens_details), at most 20 keys a level."""
    if not isinstance(usage, Mapping):
        return {}
    out: dict[str, Any] = {}
    for key, value in list(usage.items())[:20]:
        if isinstance(value, bool):
            continue
        if isinstance(value, (int, float)):
            out[str(key)[:64]] = value
        elif isinstance(value, str):
            out[str(key)[:64]] = value[:100]
        elif isinstance(value, Mapping):
            inner = {str(k)[:64]: v for k, v in list(value.items())[:20] if isinstance(v, (int, float)) and not isinstance(v, bool)}
            if inner:
                out[str(key)[:64]] = inner
    return out


def parse_speech(resp: HttpResponse) -> Submitted | Rejected:
    """The answer of /v1/audio/speech. Its 2xx body is the audio, which the engine has streamed into
    the store already (the request is stream_body_as_asset): only the headers are read here."""
    if resp.status >= 300:
        return submit_rejection(resp, error_message(json_or_none(resp)))
    ctype = (header_value(resp.headers, "content-type") or "").split(";", 1)[0].strip().lower()
    if ctype in ("application/json", "text/html", "text/plain"):  # an error page or message with HTTP 200, not audio
        status = ProviderStatus(None, State.FAILED, error_code="provider_failed", error_message=f"the relay answered {ctype} instead of audio")
        return Submitted(None, status)
    return Submitted(None, ProviderStatus(None, State.SUCCEEDED, progress=100, result_data={"content_type": ctype or "application/octet-stream"}))
