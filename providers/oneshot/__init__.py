"""One-shot (synchronous) families: the relay answers the submit with the result itself.

- `images`: `generate` (`POST /v1/images/generations`, JSON, any model: gpt-image-1/1.5,
  dall-e-3, flux-*, doubao-seedream-*, qwen-image-max, z-image-turbo; extras passed through;
  `stream` refused) and `edit` (`POST /v1/images/edits`, multipart: `image` one file or
  `image[]` several, `mask`, the other fields as form fields; an image given by URL is fetched by
  the engine, SSRF-guarded and bounded, before the POST). The answer's items become assets:
  a `url` is downloaded, a `b64_json` is stored from its `data:` URI; `usage` is `result.cost`.
- `speech`: `POST /v1/audio/speech`; the answer's body *is* the audio: the request is marked
  `stream_body_as_asset`, so the engine streams it into the store (sha256, size) instead of
  reading it into memory.
- `gemini_image`: `generate` (`POST /v1beta/models/{model}:generateContent`; every inline base64
  part of the answer is an asset: `providers.oneshot.gemini`).
- `ideogram`: Ideogram 3.0's `generate` (JSON), `edit`, `remix`, `reframe`, `replace_background`
  (multipart) under `/ideogram/v1/ideogram-v3/` (`providers.oneshot.ideogram`), answered like images.
There is no task id, nothing to poll, no lookup and no callback (capabilities.oneshot): the engine
sends these submits on their own queue and pool, waiting up to `request_timeout_s` (gpt-image
takes 60-120 s), and a lost answer (a timeout, a 5xx after sending, a dropped connection, a worker
killed mid-call) fails the job `submit_outcome_unknown`: it may have been charged, so it is never
resent by itself (POST /v1/jobs/{id}/retry decides).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from functools import partial
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel

from providers.base import AdapterDefaults, Capabilities, FilePart, HttpRequest, HttpResponse, LostSubmit, Operation, Probe, Rejected, SubmitContext, Submitted
from providers.oneshot.answers import parse_images, parse_speech
from providers.oneshot.gemini import GeminiImageInput, build_gemini, parse_gemini
from providers.oneshot.ideogram import (
    IdeogramEditInput,
    IdeogramGenerateInput,
    IdeogramReframeInput,
    IdeogramRemixInput,
    IdeogramReplaceBackgroundInput,
    build_ideogram,
)
from providers.oneshot.inputs import MAX_IMAGE_BYTES, ImageEditInput, ImageGenerateInput, SpeechInput, image_bytes, is_url

_EXT = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp", "image/gif": "gif"}

# Synchronous: nothing to poll, look up or cancel. A generation can take minutes (gpt-image 60-120 s),
# so the submit waits up to 300 s; URLs of Seedream/Ideogram live a day, DALL-E's about an hour.
ONESHOT_CAPS = Capabilities(oneshot=True, request_timeout_s=300.0, lost_submit=LostSubmit.NONE, callback_trust="hint", expected_s=60.0, result_ttl_s=3600)


class OneShotAdapter(AdapterDefaults):
    """A synchronous family: its operations' requests, and how its answers are read."""

    def __init__(
        self,
        name: str,
        ops: Mapping[str, tuple[Operation, Callable[[Mapping[str, Any]], HttpRequest]]],
        parse: Callable[[HttpResponse], Submitted | Rejected],
        capabilities: Capabilities = ONESHOT_CAPS,
    ) -> None:
        self.name = name
        self.operations: Mapping[str, Operation] = {k: op for k, (op, _) in ops.items()}
        self._build = {k: build for k, (_, build) in ops.items()}
        self._parse = parse
        self.capabilities = capabilities

    def probes(self) -> Sequence[Probe]:
        """A one-shot route's only call is the paid POST, so no free read of it exists: the probe is
        new-api's model list, which proves the relay answers and accepts the key, not that it routes
        this family (`k4u doctor` says so)."""
        return [Probe(HttpRequest("GET", "/v1/models"), tuple(self.operations))]

    def build_submit(self, operation: str, input: Mapping[str, Any], ctx: SubmitContext) -> HttpRequest:
        return self._build[operation](input)

    def parse_submit(self, resp: HttpResponse) -> Submitted | Rejected:
        return self._parse(resp)


def build_generate(input: Mapping[str, Any]) -> HttpRequest:
    body = {k: v for k, v in input.items() if k != "stream"}
    return HttpRequest("POST", "/v1/images/generations", json=body)


def build_edit(input: Mapping[str, Any]) -> HttpRequest:
    """Multipart: each image a file (`image`, or `image[]` for several, as OpenAI's API takes them), the mask a file."""
    images = input["image"] if isinstance(input["image"], list) else [input["image"]]
    field = "image" if len(images) == 1 else "image[]"
    files = [_file(field, f"image_{i}", uri) for i, uri in enumerate(images)]
    if input.get("mask"):
        files.append(_file("mask", "mask", input["mask"]))
    form = {k: v if isinstance(v, str) else json.dumps(v, separators=(",", ":")) for k, v in input.items() if k not in ("image", "mask", "stream")}
    return HttpRequest("POST", "/v1/images/edits", form=form, files=files)


def _file(field: str, stem: str, ref: str) -> FilePart:
    """A data: URI's bytes, or a URL the engine fetches (SSRF-guarded, MAX_IMAGE_BYTES at most) before sending."""
    if is_url(ref):
        name = urlsplit(ref).path.rsplit("/", 1)[-1]
        ext = name.rsplit(".", 1)[-1].lower() if "." in name else ""
        return FilePart(field, f"{stem}.{ext if ext in _EXT.values() else 'png'}", "image/png", b"", source_url=ref, max_bytes=MAX_IMAGE_BYTES)
    mime, data = image_bytes(ref)
    return FilePart(field, f"{stem}.{_EXT.get(mime, 'png')}", mime, data)


def build_speech(input: Mapping[str, Any]) -> HttpRequest:
    return HttpRequest("POST", "/v1/audio/speech", json=dict(input), stream_body_as_asset=True)


IMAGES = OneShotAdapter(
    "images",
    {
        "generate": (
            Operation("generate", ImageGenerateInput, "Text (+ reference images) to images, OpenAI format (POST /v1/images/generations; answered at once)"),
            build_generate,
        ),
        "edit": (Operation("edit", ImageEditInput, "Edit images with a prompt and an optional mask (POST /v1/images/edits, multipart)"), build_edit),
    },
    parse_images,
)

GEMINI_IMAGE = OneShotAdapter(
    "gemini_image",
    {
        "generate": (
            Operation(
                "generate", GeminiImageInput, "Text (+ reference images) to images with a Gemini image model (POST /v1beta/models/{model}:generateContent)"
            ),
            build_gemini,
        )
    },
    parse_gemini,
)

_IDEOGRAM_OPS: dict[str, tuple[type[BaseModel], str]] = {
    "generate": (IdeogramGenerateInput, "Text to images, Ideogram 3.0 (JSON)"),
    "edit": (IdeogramEditInput, "Redraw the masked areas of an image (multipart)"),
    "remix": (IdeogramRemixInput, "A new image from an image and a prompt (multipart)"),
    "reframe": (IdeogramReframeInput, "Extend an image to a new resolution (multipart)"),
    "replace_background": (IdeogramReplaceBackgroundInput, "Keep the subject, replace the background (multipart)"),
}
IDEOGRAM = OneShotAdapter(
    "ideogram",
    {
        name: (Operation(name, schema, f"{text}: POST /ideogram/v1/ideogram-v3/{name.replace('_', '-')}"), partial(build_ideogram, name, file_of=_file))
        for name, (schema, text) in _IDEOGRAM_OPS.items()
    },
    parse_images,
    replace(ONESHOT_CAPS, result_ttl_s=86400),  # "URLs valid 24 h"
)

SPEECH = OneShotAdapter(
    "speech",
    {"speech": (Operation("speech", SpeechInput, "Text to speech (POST /v1/audio/speech); the audio answer is streamed into storage"), build_speech)},
    parse_speech,
    ONESHOT_CAPS,
)
