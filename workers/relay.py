"""The one HTTP client to the relay, and the streaming fetcher for result URLs.

`Relay.send` adds the key (adapters never see it), maps httpx errors at this boundary and
classifies a failed non-idempotent POST: a connect failure was *not sent* (ProviderUnavailable,
safe to retry); a timeout or dropped connection after sending is *unknown*
(SubmitOutcomeUnknown: never resent blindly). Idempotent requests are retried once.
Messages never contain the key or request headers.
"""

from __future__ import annotations

import binascii
import re
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urljoin

import httpx

from models.errors import DownloadFailed, ErrorCode, ProviderProtocolError, ProviderUnavailable, SubmitOutcomeUnknown, UnsafeURL
from providers.base import HttpRequest, HttpResponse
from providers.outputs import decode_data_uri
from providers.registry import with_prefix
from workers.netguard import GuardedTransport, check_url
from workers.outbound import CallDeadline
from workers.resumable import StartOver, Transfer, why

Observer = Callable[[str, str, int, float], None]  # (method, path template, status or 0, seconds)

T = TypeVar("T")

_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)


class Relay:
    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        *,
        transport: httpx.BaseTransport | None = None,
        timeout_s: float = 30.0,
        connect_timeout_s: float = 5.0,
        observe: Observer | None = None,
        max_body_bytes: int = 64 * 1024**2,
        route_prefixes: Mapping[str, str] | None = None,
    ) -> None:
        headers = {"user-agent": "key4u-jobs/0.1"}
        if api_key:
            headers["authorization"] = f"Bearer {api_key}"
        self._client = httpx.Client(
            base_url=base_url,
            headers=headers,
            transport=transport,
            timeout=httpx.Timeout(timeout_s, connect=connect_timeout_s),
        )
        self._observe = observe
        self._max_body = max_body_bytes
        self._prefixes = dict(route_prefixes or {})
        self.base_url = base_url

    def close(self) -> None:
        self._client.close()

    def send(
        self, req: HttpRequest, *, idempotent: bool, label: str = "", timeout_s: float | None = None, sink: Callable[[Download], T] | None = None
    ) -> HttpResponse:
        """The answer. `timeout_s` replaces the client's read timeout for this request (a family's
        long synchronous call). `sink`: a 2xx answer's body is streamed into it instead of being read
        (the answer then has an empty body; `sunk` holds what the sink returned): a drop mid-body
        of a POST is an unknown outcome like any other."""
        attempts = 2 if idempotent else 1
        for attempt in range(attempts):
            started = time.perf_counter()
            sunk: Any = None
            try:
                timeout = httpx.Timeout(timeout_s, connect=self._client.timeout.connect) if timeout_s else httpx.USE_CLIENT_DEFAULT
                request = self._client.build_request(
                    req.method,
                    with_prefix(req.path, self._prefixes),
                    params=dict(req.query) or None,
                    headers=dict(req.headers),
                    timeout=timeout,
                    **_body(req),
                )
                r = self._client.send(request, stream=True)
                try:
                    if sink is not None and r.is_success:
                        sunk = sink(Download(safe_content_type(r.headers.get("content-type")), _length(r.headers), r.iter_bytes()))
                        body: bytes | None = b""
                    else:
                        body = _read_capped(r, self._max_body)
                finally:
                    r.close()
            except _NOT_SENT as exc:
                self._record(req, label, 0, started)
                if attempt + 1 < attempts:
                    continue
                raise ProviderUnavailable(f"relay not reachable ({type(exc).__name__})") from None
            except httpx.TransportError as exc:
                self._record(req, label, 0, started)
                if idempotent:
                    if attempt + 1 < attempts:
                        continue
                    raise ProviderUnavailable(f"relay request failed ({type(exc).__name__})") from None
                raise SubmitOutcomeUnknown(f"no answer after sending ({type(exc).__name__})") from None
            self._record(req, label, r.status_code, started)
            if body is None:
                raise ProviderProtocolError(f"the relay's answer is larger than K4U_RELAY_MAX_BODY_BYTES ({self._max_body})")
            return SunkResponse(r.status_code, dict(r.headers), body, sunk) if sink is not None else HttpResponse(r.status_code, dict(r.headers), body)
        raise AssertionError("unreachable")

    def _record(self, req: HttpRequest, label: str, status: int, started: float) -> None:
        if self._observe is not None:
            self._observe(req.method, label or req.path, status, time.perf_counter() - started)


@dataclass(frozen=True)
class SunkResponse(HttpResponse):
    """An answer whose 2xx body went to a sink (Relay.send): `sunk` is what the sink returned (None otherwise)."""

    sunk: Any = None


def _length(headers: httpx.Headers) -> int | None:
    raw = headers.get("content-length", "")
    return int(raw) if raw.isdigit() else None


def _read_capped(r: httpx.Response, limit: int) -> bytes | None:
    """The (decoded) body, or None once it passes `limit` bytes: a huge answer is not held in memory."""
    parts: list[bytes] = []
    n = 0
    for chunk in r.iter_bytes():
        n += len(chunk)
        if n > limit:
            return None
        parts.append(chunk)
    return b"".join(parts)


def _body(req: HttpRequest) -> dict[str, Any]:
    """httpx keyword arguments for the request's one body: JSON, a multipart form, or bytes."""
    if req.files or req.form is not None:
        files = [(f.field, (f.filename, f.data, f.content_type)) for f in req.files]
        return {"data": dict(req.form or {}), "files": files or None}
    if req.content is not None:
        return {"content": req.content}
    return {"json": req.json} if req.json is not None else {}


@dataclass(frozen=True)
class Download:
    content_type: str
    length: int | None
    chunks: Iterator[bytes]


# RFC 6838: type and subtype are restricted names (127 characters at most; we keep it shorter,
# well inside the 200-character asset column).
_MEDIA_TYPE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]{0,63}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}")


def safe_content_type(header: str | None) -> str:
    """The media type of a third party's Content-Type, lower-cased; application/octet-stream when
    it is missing, malformed or too long. Nothing else from their headers reaches the database."""
    value = (header or "").split(";", 1)[0].strip().lower()
    return value if _MEDIA_TYPE.fullmatch(value) else "application/octet-stream"


class Fetcher:
    """Streams result URLs. Redirects are followed by hand so every hop passes the SSRF check.

    The relay key goes on the first request of a fetch only, and only for a relay route
    (needs_auth: the engine stored relay base URL + a relay-relative path) whose scheme, host and
    port are the relay's; a redirect never carries it, even to the relay's own host, and a URL
    that was not a relay route (a CDN, a `video_url` on the relay's host) never does. A body cut
    short is resumed (workers.resumable). A resume is a new first hop to the *original* URL, not
    to the last redirect target: a relay route gets the key again there and nowhere else, and a
    signed CDN URL that expired meanwhile is minted afresh by walking the redirects again.
    A whole fetch, redirects, resumes and body included, is cut at `timeout_s` however slowly the
    peer answers. Without K4U_ALLOW_PRIVATE_URLS, connections go through the netguard transport."""

    def __init__(
        self,
        *,
        allow_private: bool,
        timeout_s: float,
        relay_base_url: str,
        api_key: str | None,
        transport: httpx.BaseTransport | None = None,
        max_redirects: int = 5,
        max_resumes: int = 5,
        route_prefixes: Mapping[str, str] | None = None,
    ) -> None:
        if transport is None and not allow_private:
            transport = GuardedTransport()
        # identity: byte offsets (Range) must be the file's, and raw bytes need no decoding per chunk
        self._client = httpx.Client(
            timeout=httpx.Timeout(min(timeout_s, 60.0), connect=10.0), transport=transport, follow_redirects=False, headers={"accept-encoding": "identity"}
        )
        self._total_s = timeout_s
        self._allow_private = allow_private
        self._relay_base = relay_base_url
        self._relay = httpx.URL(relay_base_url)
        self._key = api_key
        self._max_redirects = max_redirects
        self._max_resumes = max_resumes
        self._prefixes = dict(route_prefixes or {})

    def close(self) -> None:
        self._client.close()

    def resolve_relay_path(self, path: str) -> str:
        """The absolute URL of a relay-relative route; see `resolve_relay_path`."""
        return resolve_relay_path(self._relay_base, with_prefix(path, self._prefixes))

    def fetch(self, url: str, consume: Callable[[Download], T], *, needs_auth: bool = False) -> T:
        """Stream `url` into `consume` and return what it returns. When the source sends the body
        from byte 0 again after a drop, `consume` is called again with the new pass: the chunk
        iterator it was reading raised `StartOver`, which the stores pass through after discarding
        what they held (a failed put leaves nothing behind). A `data:` URI (a result given inline)
        is decoded here: no network request."""
        if url[:5].lower() == "data:":
            return consume(_inline(url))
        with CallDeadline(self._total_s) as cut:
            transfer = Transfer(lambda extra: self._walk(url, needs_auth, cut, extra), cut=cut, max_resumes=self._max_resumes)
            try:
                transfer.start()
                while True:
                    try:
                        return consume(_download(transfer))
                    except StartOver:
                        continue
            finally:
                transfer.close()

    @contextmanager
    def open(self, url: str, *, needs_auth: bool = False) -> Iterator[Download]:
        """One pass for a consumer that cannot start over: drops are resumed, but a source that
        sends the body from byte 0 again fails it (retryable). `fetch` handles both."""
        with CallDeadline(self._total_s) as cut:
            transfer = Transfer(lambda extra: self._walk(url, needs_auth, cut, extra), cut=cut, max_resumes=self._max_resumes)
            try:
                transfer.start()
                dl = _download(transfer)
                yield Download(dl.content_type, dl.length, _one_pass(dl.chunks))
            finally:
                transfer.close()

    def _walk(self, url: str, needs_auth: bool, cut: CallDeadline, extra: Mapping[str, str]) -> httpx.Response:
        """GET url with the extra headers on every hop, following redirects by hand; the open
        response of the last hop (the caller closes it). The key only ever goes on hop 0."""
        for hop in range(self._max_redirects + 1):
            target = _result_url(url)
            check_url(url, allow_private=self._allow_private, resolve=False)  # the transport resolves and checks
            headers = dict(extra)
            if hop == 0 and needs_auth and self._key and _same_origin(target, self._relay):
                headers["authorization"] = f"Bearer {self._key}"
            try:
                r = self._client.send(self._client.build_request("GET", target, headers=headers, extensions=cut.extensions), stream=True)
            except httpx.TransportError as exc:
                raise DownloadFailed(why(exc, cut, "download failed")) from None
            if r.is_redirect:
                r.close()
                url = urljoin(url, r.headers["location"])
                continue
            if hop == 0 and needs_auth:
                _relay_route_answer(r)
            if r.status_code in (403, 404, 410):
                r.close()
                raise DownloadFailed(f"result URL answered HTTP {r.status_code} (expired or gone)", code=ErrorCode.RESULT_EXPIRED, retryable=False)
            if r.status_code >= 400 and not (r.status_code == 416 and "range" in headers):
                r.close()
                raise DownloadFailed(f"result URL answered HTTP {r.status_code}")
            return r
        raise UnsafeURL("too many redirects")


def _relay_route_answer(r: httpx.Response) -> None:
    """What the relay's own content route means by an error (providers.md §5.2, new-api's video
    proxy): 400 = the task has not succeeded yet and 5xx = relay trouble (both retried within the
    download window), 403 = the relay's own filter blocks the fetch (not an expiry)."""
    if r.status_code == 400:
        r.close()
        raise DownloadFailed("the relay's content route answered HTTP 400: the result is not ready yet", code=ErrorCode.RESULT_NOT_READY)
    if r.status_code == 403:
        r.close()
        raise DownloadFailed(
            "the relay's content route answered HTTP 403: the relay's own filter blocks this result (it did not expire); ask the relay's operator",
            code=ErrorCode.RESULT_BLOCKED,
            retryable=False,
        )


def resolve_relay_path(base_url: str, path: str) -> str:
    """The absolute URL of a relay-relative route (`/v1/videos/{id}/content`): the relay base URL
    plus the path, keeping any path prefix of the base (urljoin would drop it). ValueError for
    anything that is not a relay-relative path (an absolute or protocol-relative URL, a backslash,
    a space or control character), so a provider's answer cannot steer the key elsewhere."""
    if not path.startswith("/") or path.startswith("//") or "\\" in path or any(ord(c) <= 0x20 or ord(c) == 0x7F for c in path):
        raise ValueError(f"not a relay-relative path: {path[:100]!r}")
    return base_url.rstrip("/") + path


def _same_origin(a: httpx.URL, b: httpx.URL) -> bool:
    default = {"http": 80, "https": 443}
    return (a.scheme, a.host, a.port or default.get(a.scheme)) == (b.scheme, b.host, b.port or default.get(b.scheme))


def _inline(url: str) -> Download:
    try:
        mime, data = decode_data_uri(url)
    except (ValueError, binascii.Error):
        raise DownloadFailed("the result's data: URI does not decode", code=ErrorCode.INVALID_RESULT_URL, retryable=False) from None
    return Download(content_type=safe_content_type(mime), length=len(data), chunks=iter((data,)))


def _download(transfer: Transfer) -> Download:
    return Download(content_type=safe_content_type(transfer.headers.get("content-type")), length=transfer.length, chunks=transfer.chunks())


def _one_pass(chunks: Iterator[bytes]) -> Iterator[bytes]:
    try:
        yield from chunks
    except StartOver:
        raise DownloadFailed("the source sent the body from the start again; this reader cannot start over") from None


def _result_url(url: str) -> httpx.URL:
    """The URL parsed, or a non-retryable DownloadFailed: a malformed URL will not heal by itself."""
    try:
        target = httpx.URL(url)
        port = target.port
    except (httpx.InvalidURL, ValueError, TypeError):
        raise DownloadFailed("result URL is not a valid URL", code=ErrorCode.INVALID_RESULT_URL, retryable=False) from None
    if port is not None and not 0 < port < 65536:
        raise DownloadFailed(f"result URL has an invalid port ({port})", code=ErrorCode.INVALID_RESULT_URL, retryable=False)
    if not target.host:
        raise DownloadFailed("result URL has no host", code=ErrorCode.INVALID_RESULT_URL, retryable=False)
    return target
