"""The one HTTP client to the relay, and the streaming fetcher for result URLs.

`Relay.send` adds the key (adapters never see it), maps httpx errors at this boundary and
classifies a failed non-idempotent POST: a connect failure was *not sent* (ProviderUnavailable,
safe to retry); a timeout or dropped connection after sending is *unknown*
(SubmitOutcomeUnknown: never resent blindly). Idempotent requests are retried once.
Messages never contain the key or request headers.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import urljoin

import httpx

from models.errors import DownloadFailed, ProviderUnavailable, SubmitOutcomeUnknown, UnsafeURL
from providers.base import HttpRequest, HttpResponse
from workers.netguard import check_url

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


class Fetcher:
    """Streams result URLs. Redirects are followed by hand so every hop passes the SSRF check;
    the relay key is attached only to URLs on the relay's own host when asked (needs_auth)."""

    def __init__(self, *, allow_private: bool, timeout_s: float, relay_base_url: str, api_key: str | None,
                 transport: httpx.BaseTransport | None = None, max_redirects: int = 5) -> None:
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
        for _hop in range(self._max_redirects + 1):
            check_url(url, allow_private=self._allow_private)
            headers = {}
            if needs_auth and self._key and httpx.URL(url).host == self._relay.host:
                headers["authorization"] = f"Bearer {self._key}"
            try:
                with self._client.stream("GET", url, headers=headers) as r:
                    if r.is_redirect and "location" in r.headers:
                        url = urljoin(url, r.headers["location"])
                        continue
                    if r.status_code in (403, 404, 410):
                        raise DownloadFailed(f"result URL answered HTTP {r.status_code} (expired or gone)", code="result_expired", retryable=False)
                    if r.status_code >= 400:
                        raise DownloadFailed(f"result URL answered HTTP {r.status_code}")
                    length = r.headers.get("content-length")
                    yield Download(
                        content_type=r.headers.get("content-type", "application/octet-stream").split(";")[0].strip(),
                        length=int(length) if length and length.isdigit() else None,
                        chunks=_chunks(r, time.monotonic() + self._total_s),
                    )
                    return
            except httpx.TransportError as exc:
                raise DownloadFailed(f"download failed ({type(exc).__name__})") from None
        raise UnsafeURL("too many redirects")


def _chunks(r: httpx.Response, deadline: float) -> Iterator[bytes]:
    """The body in chunks, failing once the whole download outlives its time budget."""
    try:
        for chunk in r.iter_bytes(chunk_size=256 * 1024):
            if time.monotonic() > deadline:
                raise DownloadFailed("download took longer than K4U_DOWNLOAD_TIMEOUT_S")
            yield chunk
    except httpx.TransportError as exc:
        raise DownloadFailed(f"download interrupted ({type(exc).__name__})") from None
