"""A result server on loopback for download tests: N deterministic bytes with Range, ETag,
Last-Modified and If-Range, and the faults a CDN or the relay shows on big files.

It can cut the connection at given offsets (the response promised the full Content-Length,
so the client sees a body that stopped short), ignore Range, switch to a new version of the
file after the first cut, and redirect. It counts what it sent per path (body bytes) and
records every request's Authorization, Range and If-Range, so a test can assert on the
server's side of the wire, not on what the client believes it did.

Paths: `/file/<name>` serves the file; `/go/<name>` answers 302 to `/file/<name>` (same host).
"""

from __future__ import annotations

import hashlib
import random
import re
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_RANGE = re.compile(r"bytes=(\d+)-$")
_WRITE = 256 * 1024


def blob(n: int, seed: int = 1) -> bytes:
    return random.Random(seed).randbytes(n)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class Seen:
    path: str
    authorization: str | None
    range: str | None
    if_range: str | None
    status: int = 0


@dataclass
class RangedServer:
    data: bytes
    etag: str | None = '"v1"'
    last_modified: str | None = "Tue, 24 Nov 2026 12:00:00 GMT"
    content_type: str = "video/mp4"
    cuts: list[int] = field(default_factory=list)  # absolute offsets; each cuts one response that crosses it
    ignore_range: bool = False
    next_version: tuple[bytes, str] | None = None  # (data, etag) served from the first cut on
    url: str = ""
    sent: Counter[str] = field(default_factory=Counter)  # body bytes written per path
    seen: list[Seen] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def sent_total(self) -> int:
        return sum(self.sent.values())

    def validators(self) -> set[str]:
        return {v for v in (self.etag, self.last_modified) if v}


def _handler(srv: RangedServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            seen = Seen(self.path, self.headers.get("authorization"), self.headers.get("range"), self.headers.get("if-range"))
            with srv.lock:
                srv.seen.append(seen)
            if self.path.startswith("/go/"):
                seen.status = 302
                self.send_response(302)
                self.send_header("location", "/file/" + self.path.removeprefix("/go/"))
                self.send_header("content-length", "0")
                self.end_headers()
                return
            with srv.lock:
                data, etag = srv.data, srv.etag
            start = 0
            m = _RANGE.match(seen.range or "")
            if m and not srv.ignore_range and (seen.if_range is None or seen.if_range in srv.validators()):
                start = int(m.group(1))
                if start >= len(data):
                    seen.status = 416
                    self.send_response(416)
                    self.send_header("content-range", f"bytes */{len(data)}")
                    self.send_header("content-length", "0")
                    self.end_headers()
                    return
            seen.status = 206 if start else 200
            self.send_response(seen.status)
            self.send_header("content-type", srv.content_type)
            self.send_header("content-length", str(len(data) - start))
            self.send_header("accept-ranges", "bytes")
            if etag:
                self.send_header("etag", etag)
            if srv.last_modified:
                self.send_header("last-modified", srv.last_modified)
            if start:
                self.send_header("content-range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            self.end_headers()
            with srv.lock:
                cut = next((c for c in srv.cuts if start < c < len(data)), None)
                if cut is not None:
                    srv.cuts.remove(cut)
            stop = cut if cut is not None else len(data)
            pos = start
            try:
                while pos < stop:
                    piece = data[pos : min(pos + _WRITE, stop)]
                    self.wfile.write(piece)
                    pos += len(piece)
                    with srv.lock:
                        srv.sent[self.path] += len(piece)
                self.wfile.flush()
            except OSError:
                pass
            if cut is not None:
                self.close_connection = True
                with srv.lock:
                    if srv.next_version is not None:
                        srv.data, srv.etag = srv.next_version
                        srv.next_version = None

        def log_message(self, *_: object) -> None:
            pass

    return Handler


@contextmanager
def ranged_server(data: bytes, **options: object) -> Iterator[RangedServer]:
    """`with ranged_server(blob(n), cuts=[n // 2]) as srv:` — srv.url is http://127.0.0.1:<port>."""
    srv = RangedServer(data, **options)  # type: ignore[arg-type]
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(srv))
    server.daemon_threads = True
    srv.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        server.shutdown()
        server.server_close()
