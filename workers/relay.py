"""The one HTTP client to the relay, and the streaming fetcher for result URLs.

`Relay.send` adds the key (adapters never see it), maps httpx errors at this boundary and
classifies a failed non-idempotent POST: a connect failure was *not sent* (ProviderUnavailable,
safe to retry); a timeout or dropped connection after sending is *unknown*
(SubmitOutcomeUnknown: never resent blindly). Idempotent requests are retried once.
Messages never contain the key or request headers.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import urljoin

import httpx

from models.errors import DownloadFailed, ProviderUnavailable, SubmitOutcomeUnknown, UnsafeURL
from providers.base import HttpRequest, HttpResponse
from workers.netguard import GuardedTransport, check_url
from workers.outbound import CallDeadline

Observer = Callable[[str, str, int, float], None]  # (method, path template, status or 0, seconds)

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
    ) -> None:
        headers = {"user-agent": "key4u-jobs/0.1"}
        if api_key:
            headers["authorization"] = f"Bearer {api_key}"
        self._client = httpx.Client(
            base_url=base_url, headers=headers, transport=transport,
            timeout=httpx.Timeout(timeout_s, connect=connect_timeout_s),
        )
        self._observe = observe
        self.base_url = base_url

    def close(self) -> None:
        self._client.close()

    def send(self, req: HttpRequest, *, idempotent: bool, label: str = "") -> HttpResponse:
        attempts = 2 if idempotent else 1
        for attempt in range(attempts):
            started = time.perf_counter()
            try:
                r = self._client.request(req.method, req.path, params=dict(req.query) or None, headers=dict(req.headers), json=req.json)
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
            return HttpResponse(r.status_code, dict(r.headers), r.content)
        raise AssertionError("unreachable")

    def _record(self, req: HttpRequest, label: str, status: int, started: float) -> None:
        if self._observe is not None:
            self._observe(req.method, label or req.path, status, time.perf_counter() - started)


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
    """Streams result URLs. Redirects are followed by hand so every hop passes the SSRF check;
    the relay key is attached only to URLs on the relay's own host when asked (needs_auth).
    A whole fetch, redirects and body included, is cut at `timeout_s` however slowly the peer
    answers. Without K4U_ALLOW_PRIVATE_URLS, connections go through the netguard transport."""

    def __init__(self, *, allow_private: bool, timeout_s: float, relay_base_url: str, api_key: str | None,
                 transport: httpx.BaseTransport | None = None, max_redirects: int = 5) -> None:
        if transport is None and not allow_private:
            transport = GuardedTransport()
        self._client = httpx.Client(timeout=httpx.Timeout(min(timeout_s, 60.0), connect=10.0), transport=transport, follow_redirects=False)
        self._total_s = timeout_s
        self._allow_private = allow_private
        self._relay = httpx.URL(relay_base_url)
        self._key = api_key
        self._max_redirects = max_redirects

    def close(self) -> None:
        self._client.close()

    @contextmanager
    def open(self, url: str, *, needs_auth: bool = False) -> Iterator[Download]:
        with CallDeadline(self._total_s) as cut:
            for _hop in range(self._max_redirects + 1):
                target = _result_url(url)
                check_url(url, allow_private=self._allow_private, resolve=False)  # the transport resolves and checks
                headers = {}
                if needs_auth and self._key and target.host == self._relay.host:
                    headers["authorization"] = f"Bearer {self._key}"
                try:
                    with self._client.stream("GET", target, headers=headers, extensions=cut.extensions) as r:
                        if r.is_redirect and "location" in r.headers:
                            url = urljoin(url, r.headers["location"])
                            continue
                        if r.status_code in (403, 404, 410):
                            raise DownloadFailed(f"result URL answered HTTP {r.status_code} (expired or gone)", code="result_expired", retryable=False)
                        if r.status_code >= 400:
                            raise DownloadFailed(f"result URL answered HTTP {r.status_code}")
                        yield Download(content_type=safe_content_type(r.headers.get("content-type")),
                                       length=_length(r.headers.get("content-length")), chunks=_chunks(r, cut))
                        return
                except httpx.TransportError as exc:
                    raise DownloadFailed(_why(exc, cut, "download failed")) from None
            raise UnsafeURL("too many redirects")


def _result_url(url: str) -> httpx.URL:
    """The URL parsed, or a non-retryable DownloadFailed: a malformed URL will not heal by itself."""
    try:
        target = httpx.URL(url)
        port = target.port
    except (httpx.InvalidURL, ValueError, TypeError):
        raise DownloadFailed("result URL is not a valid URL", code="invalid_result_url", retryable=False) from None
    if port is not None and not 0 < port < 65536:
        raise DownloadFailed(f"result URL has an invalid port ({port})", code="invalid_result_url", retryable=False)
    if not target.host:
        raise DownloadFailed("result URL has no host", code="invalid_result_url", retryable=False)
    return target


def _length(header: str | None) -> int | None:
    return int(header) if header and header.isdigit() and len(header) <= 18 else None


def _why(exc: httpx.TransportError, cut: CallDeadline, what: str) -> str:
    if cut.expired:
        return f"{what}: not finished within K4U_DOWNLOAD_TIMEOUT_S ({cut.seconds:.0f} s)"
    return f"{what} ({type(exc).__name__})"


def _chunks(r: httpx.Response, cut: CallDeadline) -> Iterator[bytes]:
    """The body in chunks, failing once the whole download outlives its time budget."""
    try:
        for chunk in r.iter_bytes():
            if cut.expired or cut.remaining() <= 0:
                raise DownloadFailed(f"download took longer than K4U_DOWNLOAD_TIMEOUT_S ({cut.seconds:.0f} s)")
            yield chunk
    except httpx.TransportError as exc:
        raise DownloadFailed(_why(exc, cut, "download interrupted")) from None
