"""Deterministic media answered with HTTP Range support, in constant memory.

A `Blob` is a size, a strong ETag and a reader of any byte slice, so a 1 GiB+ body is produced
chunk by chunk (`media.iter_big_range`) and a resumed download starts at its offset without
generating the bytes before it. `ranged_response` honours:

* `Range: bytes=a-`, `bytes=a-b`, `bytes=-n` (one range; several ranges or a malformed header
  are ignored and the whole body is sent, as RFC 9110 allows) -> 206 with `Content-Range` and
  `Content-Length`; a start at or past the end -> 416 with `Content-Range: bytes */size`.
* `If-Range`: only a validator equal to the strong ETag keeps the Range; anything else (an
  older ETag, a weak one, a date: the blob has no Last-Modified) gets the full 200 body.
* `ETag` and `Accept-Ranges: bytes` on every answer.

Options (`RangeOptions`) make the relay misbehave the way downloaders must survive:
`ignore_range` (always 200 with the full body, no `Accept-Ranges`), `cut_at=K` (the connection
is dropped once the body reaches absolute offset K: the headers promised more, as
`chaos.CutResponse` does; a request whose range starts at or after K, or ends at or before K,
is not cut) and `slow_s` (the body spread over about that many seconds).
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from simulator.media import CHUNK, iter_big_range

_RANGE = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class Blob:
    """Content of a download: its size, strong ETag (quoted), type and a reader of [a, b)."""

    size: int
    etag: str
    media_type: str
    read: Callable[[int, int], Iterator[bytes]]


def bytes_blob(data: bytes, media_type: str) -> Blob:
    """A small in-memory body; the ETag is derived from its sha256 (stable per content)."""

    def read(start: int, stop: int) -> Iterator[bytes]:
        for pos in range(start, stop, CHUNK):
            yield data[pos : min(stop, pos + CHUNK)]

    return Blob(len(data), f'"sha256-{hashlib.sha256(data).hexdigest()[:32]}"', media_type, read)


def big_blob(n_bytes: int, media_type: str = "application/octet-stream") -> Blob:
    """The `n_bytes` deterministic bytes of `media.iter_big`; the ETag names the generator and size."""
    return Blob(n_bytes, f'"big-v1-{n_bytes}"', media_type, iter_big_range)


@dataclass
class RangeOptions:
    ignore_range: bool = False
    cut_at: int | None = None  # absolute offset at which the connection is dropped
    slow_s: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)  # extra headers (e.g. Cache-Control)


class Unsatisfiable(Exception):
    """The Range starts past the end of the body (answer 416)."""


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """[start, stop) asked for by a single-range `Range` header; None = send everything.

    Raises `Unsatisfiable` when the range lies outside the body."""
    if not header:
        return None
    match = _RANGE.match(header)
    if match is None:
        return None  # malformed or several ranges: ignored
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:  # suffix range: the last n bytes
        n = int(last)
        if n == 0:
            raise Unsatisfiable
        return max(0, size - n), size
    start = int(first)
    if last and int(last) < start:
        return None  # invalid range spec: ignored
    if start >= size:
        raise Unsatisfiable
    stop = size if not last else min(size, int(last) + 1)
    return start, stop


def ranged_response(request: Request, blob: Blob, options: RangeOptions | None = None) -> Response:
    """The answer to GET/HEAD of `blob` for this request (200, 206 or 416)."""
    opts = options or RangeOptions()
    headers = {"ETag": blob.etag, **opts.headers}
    if not opts.ignore_range:
        headers["Accept-Ranges"] = "bytes"
    span: tuple[int, int] | None = None
    if not opts.ignore_range and request.method == "GET":
        if_range = request.headers.get("if-range")
        if if_range is None or if_range.strip() == blob.etag:
            try:
                span = parse_range(request.headers.get("range"), blob.size)
            except Unsatisfiable:
                headers["Content-Range"] = f"bytes */{blob.size}"
                return Response(status_code=416, headers=headers)
    start, stop = span or (0, blob.size)
    headers["Content-Length"] = str(stop - start)
    if span is not None:
        headers["Content-Range"] = f"bytes {start}-{stop - 1}/{blob.size}"
    if request.method == "HEAD":
        return Response(status_code=200, headers=headers, media_type=blob.media_type)
    cut = opts.cut_at if opts.cut_at is not None and start < opts.cut_at < stop else None
    return BlobStream(blob, start, stop, cut, opts.slow_s, 206 if span else 200, headers)


class BlobStream(Response):
    """Streams [start, stop) of a blob; with `cut` set, stops at that offset and drops the
    connection without finishing the body (the Content-Length promise is not kept)."""

    def __init__(self, blob: Blob, start: int, stop: int, cut: int | None, slow_s: float, status: int, headers: dict[str, str]) -> None:
        super().__init__(status_code=status, headers=headers, media_type=blob.media_type)
        self.blob, self.start, self.stop, self.cut, self.slow_s = blob, start, stop, cut, slow_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        end = self.cut if self.cut is not None else self.stop
        pause = self.slow_s / max(1, -(-(end - self.start) // CHUNK))
        for piece in self.blob.read(self.start, end):
            await asyncio.sleep(pause if self.slow_s > 0 else 0)
            await send({"type": "http.response.body", "body": piece, "more_body": True})
        if self.cut is not None:
            return  # no final body message: the server closes the connection mid-body
        await send({"type": "http.response.body", "body": b"", "more_body": False})
