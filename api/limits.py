"""Request bounds enforced before routing, auth and parsing: body size, JSON nesting depth and type.

`BodyLimits` is a pure ASGI middleware. It refuses a declared `Content-Length` over the cap with
413 before reading anything, and counts the bytes of a streamed (chunked) body, answering 413 as
soon as the count passes the cap without reading further. A body within the cap is handed on
whole; one that looks like JSON (read as `json.loads` reads it: a UTF-8 BOM, UTF-16 and UTF-32
too) is scanned first (brackets outside strings) and refused with 422 when nested deeper than
`MAX_JSON_DEPTH`, before any `json.loads` can recurse that deep. A request that changes state
(POST, PUT, PATCH, DELETE) with a body must then declare it JSON (`application/json` or
`application/*+json`), else 415: a web page can send a text/plain or typeless body cross-site
without a CORS preflight, a JSON one it cannot. Provider webhooks (`WEBHOOKS`) come with the
providers' own types and are exempt. `POST /v1/uploads` is not read here at all: its body (a file
of any type, up to K4U_MAX_UPLOAD_BYTES) streams on to the route, counted, and a read past the cap
raises BodyTooLarge (a declared Content-Length past it is a 413 at once). It also sets the per-request size caps that `JobCreate`
checks `input` and `metadata` against.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Mapping
from typing import Any

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from models.schemas import SizeLimits, size_limits
from workers.settings import Settings

MAX_JSON_DEPTH = 64

WEBHOOKS = "/v1/webhooks/"  # called by the providers, with their own content types
FILES = "/v1/files/"  # signed input-file links the relay fetches (GET, no bearer: the token is the key)
UPLOADS = "/v1/uploads"  # POST streams the file itself (any content type), up to K4U_MAX_UPLOAD_BYTES
MULTIPART_SLACK = 64 * 1024  # a multipart body's boundaries and part headers around the file
_CHANGES_STATE = frozenset({"POST", "PUT", "PATCH", "DELETE"})

_TOKEN = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]', re.DOTALL)


def body_caps(settings: Settings) -> dict[str, int]:
    """Per-path-prefix caps (longest prefix wins); every other path gets K4U_MAX_BODY_BYTES.
    A route that needs its own cap (e.g. a batch submit) adds its prefix here."""
    return {
        "/v1/jobs": settings.max_job_body_bytes,  # POST /v1/jobs: room for one inline file (stored as an upload)
        "/v1/jobs/": settings.max_body_bytes,
        WEBHOOKS: settings.max_body_bytes,
        "/v1/batches": settings.max_batch_body_bytes,
    }


# The setting behind a prefix's own cap, named in its 413 (every other cap is K4U_MAX_BODY_BYTES).
CAP_SETTINGS = {
    "/v1/batches": "K4U_MAX_BATCH_BODY_BYTES",
    "/v1/jobs": "K4U_MAX_JOB_BODY_BYTES",
    "/v1/jobs/": "K4U_MAX_BODY_BYTES",
    UPLOADS: "K4U_MAX_UPLOAD_BYTES",
}


class BodyTooLarge(Exception):
    """A streamed body (POST /v1/uploads) passed its cap while the route read it: answered 413."""

    def __init__(self, cap: int) -> None:
        super().__init__(f"request body is larger than the limit of {cap} bytes")
        self.cap = cap


def json_text(body: bytes) -> bytes:
    """The body as the UTF-8 text json.loads reads from it. The parser also takes a UTF-8 BOM, UTF-16
    and UTF-32 (`json.detect_encoding`), and the depth scan must see the brackets it will see."""
    encoding = json.detect_encoding(body)
    if encoding == "utf-8":
        return body  # the common case: no copy
    if encoding == "utf-8-sig":
        return body.removeprefix(codecs.BOM_UTF8)
    try:
        return body.decode(encoding, "surrogatepass").encode("utf-8", "surrogatepass")
    except UnicodeError:
        return body  # not text in that encoding: the parser refuses it as well


def too_deep(body: bytes, limit: int = MAX_JSON_DEPTH) -> str | None:
    """None when the JSON text nests at most `limit` arrays/objects; else the top-level key under
    which it goes too deep ("body" when that cannot be told). Brackets inside strings do not count."""
    if body.count(b"[") + body.count(b"{") <= limit:
        return None  # the common case, at C speed
    depth, key = 0, None
    in_object = body.lstrip()[:1] == b"{"
    for m in _TOKEN.finditer(body):
        tok = m.group()
        if tok[0] == 0x22:  # a string: in the top-level object the latest one before a nested value is its key
            if depth == 1 and in_object:
                key = tok
            continue
        if tok in (b"[", b"{"):
            depth += 1
            if depth > limit:
                return _field_name(key)
        else:
            depth -= 1
            if depth == 1:
                key = None
    return None


def is_json(content_type: str) -> bool:
    """application/json or a JSON-based type (application/*+json), parameters such as charset aside."""
    media = content_type.partition(";")[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


def _field_name(key: bytes | None) -> str:
    if key is None:
        return "body"
    try:
        name = json.loads(key)
    except ValueError:
        return "body"
    return name if isinstance(name, str) and name.isidentifier() and len(name) <= 40 else "body"


class BodyLimits:
    def __init__(
        self,
        app: ASGIApp,
        *,
        default_cap: int,
        caps: Mapping[str, int] | None = None,
        sizes: SizeLimits | None = None,
        max_depth: int = MAX_JSON_DEPTH,
        upload_cap: int | None = None,
    ) -> None:
        self.app = app
        self.default_cap = default_cap
        self.caps = sorted((caps or {}).items(), key=lambda kv: -len(kv[0]))
        self.sizes = sizes or SizeLimits()
        self.max_depth = max_depth
        self.upload_cap = upload_cap

    async def _stream(self, scope: Scope, receive: Receive, send: Send, cap: int) -> None:
        """Hand the body on as it comes (the upload route streams it into storage), counting: past
        `cap` (plus a multipart envelope's slack) the next read raises BodyTooLarge."""
        declared = [v for k, v in scope.get("headers", []) if k.lower() == b"content-length"]
        if declared and (len(declared) > 1 or not declared[0].strip().isdigit()):
            await answer(send, 400, {"detail": "invalid Content-Length header"})
            return
        if declared and int(declared[0]) > cap + MULTIPART_SLACK:
            await answer(send, 413, _too_large(cap, UPLOADS))
            return
        total = 0

        async def counted() -> Message:
            nonlocal total
            message = await receive()
            total += len(message.get("body", b""))
            if total > cap + MULTIPART_SLACK:
                raise BodyTooLarge(cap)
            return message

        await self.app(scope, counted, send)

    def cap_for(self, path: str) -> int:
        for prefix, cap in self.caps:
            if path.startswith(prefix):
                return cap
        return self.default_cap

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope.get("path") == UPLOADS and scope.get("method") == "POST" and self.upload_cap is not None:
            await self._stream(scope, receive, send, self.upload_cap)
            return
        cap = self.cap_for(scope.get("path", ""))
        declared = [v for k, v in scope.get("headers", []) if k.lower() == b"content-length"]
        if declared:
            if len(declared) > 1 or not declared[0].strip().isdigit():
                await answer(send, 400, {"detail": "invalid Content-Length header"})
                return
            if int(declared[0]) > cap:
                await answer(send, 413, _too_large(cap, scope.get("path", "")))
                return
        chunks: list[bytes] = []
        total, more = 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the client left; nobody to answer
            chunk = message.get("body", b"")
            total += len(chunk)
            if total > cap:
                await answer(send, 413, _too_large(cap, scope.get("path", "")))
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        text = json_text(body)
        if text.lstrip()[:1] in (b"{", b"["):
            field = too_deep(text, self.max_depth)
            if field is not None:
                await answer(
                    send, 422, {"detail": [{"loc": ["body", field], "type": "value_error", "msg": f"JSON nested deeper than {self.max_depth} levels"}]}
                )
                return
        if (
            body
            and scope.get("method") in _CHANGES_STATE
            and not scope.get("path", "").startswith(WEBHOOKS)
            and not is_json(Headers(scope=scope).get("content-type", ""))
        ):
            await answer(send, 415, {"detail": "the request body must be JSON, sent with Content-Type: application/json"})
            return

        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        token = size_limits.set(self.sizes)
        try:
            await self.app(scope, replay, send)
        finally:
            size_limits.reset(token)


def _too_large(cap: int, path: str) -> dict[str, Any]:
    name = max(((k, v) for k, v in CAP_SETTINGS.items() if path.startswith(k)), key=lambda kv: len(kv[0]), default=("", "K4U_MAX_BODY_BYTES"))[1]
    return {"detail": f"request body is larger than the limit of {cap} bytes ({name})", "limit_bytes": cap}


async def answer(send: Send, status: int, content: dict[str, Any]) -> None:
    body = json.dumps(content).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if status == 413:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
