"""One download's body across dropped connections: resume it with Range/If-Range, or start over.

A video of a few hundred MiB takes long enough that a CDN or the relay dropping the connection
midway is routine, and fetching from byte 0 every time can keep a download from ever finishing
inside its deadline. `Transfer` keeps what the first answer said (length, validator) and, when
the body stops short (an httpx transport error such as RemoteProtocolError, ReadError or
ReadTimeout, or fewer bytes than Content-Length), asks again with `Range: bytes=<n>-` and
`If-Range: <validator>`:

* 206 whose Content-Range starts at n: the same pass goes on. The consumer (a store's
  put_stream, hashing as it writes) never notices, so its sha256 and size cover the whole file.
* 200 (Range ignored, or If-Range saw another version): the body starts over. The pass raises
  `StartOver`; the stores drop what they hold when their chunk iterator raises, and the caller
  (`Fetcher.fetch`) gives the consumer a new pass that begins with this answer.
* Without a strong ETag or a Last-Modified there is nothing to resume against safely: the
  reconnect asks for the whole body, which starts over.
* A 206 for another range, or a 416: the next reconnect asks for the whole body.

Every reconnect, whatever its answer, counts against `max_resumes` (K4U_DOWNLOAD_RESUMES), so
restarts are bounded too; past it the pass fails with a retryable DownloadFailed and the
download step's own retry and window take over. All of it runs inside the caller's
CallDeadline. Bytes are passed on raw (`iter_raw`, no per-chunk decoding): the Fetcher asks for
`Accept-Encoding: identity`, so offsets are the file's. A source that encodes anyway is decoded
and, since offsets in an encoded stream say nothing about the file, never resumed: it starts over.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping

import httpx

from models.errors import DownloadFailed
from workers.outbound import CallDeadline

# Extra request headers (Range, If-Range) -> the open response of the last hop (redirects
# followed, errors mapped); a 416 comes back only when a Range was asked for.
Opener = Callable[[Mapping[str, str]], httpx.Response]

_CONTENT_RANGE = re.compile(r"bytes\s+(\d{1,18})-(\d{1,18})/(\d{1,18}|\*)", re.IGNORECASE)


class StartOver(Exception):
    """The source is sending the body from byte 0 again: whatever the consumer stored of this
    pass must be discarded (not a DownloadFailed: the stores let it through untouched)."""


class Transfer:
    """The state of one fetch: the current answer, the position in the current pass, what the
    first answer promised, and how many reconnects are left."""

    def __init__(self, open_response: Opener, *, cut: CallDeadline, max_resumes: int) -> None:
        self._open = open_response
        self._cut = cut
        self._max_resumes = max_resumes
        self._response: httpx.Response | None = None
        self._pos = 0
        self._identity = True
        self.length: int | None = None
        self.validator: str | None = None
        self.headers = httpx.Headers()
        self.reconnects = 0
        self.restarts = 0

    def start(self) -> None:
        self._adopt(self._open({}))

    def close(self) -> None:
        if self._response is not None:
            self._response.close()
            self._response = None

    def chunks(self) -> Iterator[bytes]:
        """The current pass, from byte 0 of the full answer last adopted; resumes within it."""
        while True:
            r = self._response
            if r is None:
                raise DownloadFailed("download pass read after the transfer closed")
            try:
                for chunk in r.iter_raw() if self._identity else r.iter_bytes():
                    if self._cut.expired or self._cut.remaining() <= 0:
                        raise DownloadFailed(f"download took longer than K4U_DOWNLOAD_TIMEOUT_S ({self._cut.seconds:.0f} s)")
                    self._pos += len(chunk)
                    yield chunk
            except httpx.TransportError as exc:
                if self._cut.expired:
                    raise DownloadFailed(why(exc, self._cut, "download interrupted")) from None
                reason = type(exc).__name__
            else:
                if not self._identity or self.length is None or self._pos >= self.length:
                    return
                reason = f"{self._pos} of {self.length} bytes"
            self._reconnect(reason)

    def _adopt(self, r: httpx.Response) -> None:
        """Take a full answer as the start of a pass."""
        self.close()
        self._response, self._pos, self.headers = r, 0, r.headers
        self.length = length_of(r.headers.get("content-length"))
        self.validator = _validator(r.headers)
        self._identity = r.headers.get("content-encoding", "identity").strip().lower() in ("", "identity")

    def _reconnect(self, reason: str) -> None:
        """Go on from self._pos (206), or adopt a full answer; raise StartOver when the
        consumer already holds bytes of this pass."""
        self.close()
        while True:
            if self._cut.expired or self._cut.remaining() <= 0:
                raise DownloadFailed(f"download interrupted ({reason}) and out of time: K4U_DOWNLOAD_TIMEOUT_S ({self._cut.seconds:.0f} s)")
            if self.reconnects >= self._max_resumes:
                raise DownloadFailed(f"download interrupted ({reason}); gave up after {self.reconnects} reconnect(s) (K4U_DOWNLOAD_RESUMES)")
            self.reconnects += 1
            ranged = self._identity and self.validator is not None and self._pos > 0
            asked = {"range": f"bytes={self._pos}-", "if-range": self.validator or ""} if ranged else {}
            try:
                r = self._open(asked)
            except DownloadFailed as exc:
                if not exc.retryable or self._cut.expired:
                    raise
                reason = exc.message
                continue
            if r.status_code == 206 or r.status_code == 416:
                if ranged and r.status_code == 206 and self._continues(r):
                    self._response = r
                    return
                r.close()
                self.validator = None  # not the range asked for: ask for the whole body next time
                reason = f"HTTP {r.status_code} {r.headers.get('content-range', '')}".strip()
                continue
            started = self._pos > 0
            self._adopt(r)
            if started:
                self.restarts += 1
                raise StartOver()
            return

    def _continues(self, r: httpx.Response) -> bool:
        """A 206 that carries on where the pass stopped, for the same object."""
        m = _CONTENT_RANGE.fullmatch((r.headers.get("content-range") or "").strip())
        if m is None or int(m.group(1)) != self._pos:
            return False
        total = None if m.group(3) == "*" else int(m.group(3))
        if total is not None and self.length is not None and total != self.length:
            return False
        etag = r.headers.get("etag")
        if etag and self.validator and self.validator.startswith('"') and etag != self.validator:
            return False  # If-Range was ignored and the object changed
        if self.length is None:
            self.length = total
        return True


def _validator(headers: httpx.Headers) -> str | None:
    """A strong ETag, else Last-Modified: what If-Range may carry (a weak ETag may not)."""
    etag = (headers.get("etag") or "").strip()
    if etag.startswith('"') and etag.endswith('"') and len(etag) >= 2:
        return etag
    return (headers.get("last-modified") or "").strip() or None


def length_of(header: str | None) -> int | None:
    return int(header) if header and header.isdigit() and len(header) <= 18 else None


def why(exc: httpx.TransportError, cut: CallDeadline, what: str) -> str:
    if cut.expired:
        return f"{what}: not finished within K4U_DOWNLOAD_TIMEOUT_S ({cut.seconds:.0f} s)"
    return f"{what} ({type(exc).__name__})"
