"""Public key sets that verify providers' signed deliveries: fal's JWKS (K4U_FAL_JWKS).

The set comes from a file or an https URL (http:// only to a loopback host, and only with
K4U_ALLOW_PRIVATE_URLS: `check_source`), is loaded on first use and cached. A delivery that no
cached key verifies may be signed with a key fal rotated in, so the set is fetched again, but at
most once a minute however many such deliveries arrive (a flood of forgeries cannot turn into a
flood of fetches). The fetch is bounded: 5 s, 64 KiB once decoded (a gzip or deflate answer is
inflated at most that far, so a small compressed bomb never expands in memory), SSRF-guarded like
every outbound call.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from providers.webhooks import jwks_ed25519_keys
from workers.netguard import GuardedTransport, check_url, is_loopback
from workers.outbound import CallDeadline

log = logging.getLogger("k4u.keysets")
REFRESH_EVERY_S = 60.0
MAX_JWKS_BYTES = 64 * 1024
ENCODINGS = ("gzip", "deflate")  # asked for, and inflated here within MAX_JWKS_BYTES


def check_source(source: str, *, allow_private: bool) -> None:
    """ValueError unless the key set source is a file path or an https URL; http:// is allowed only to a
    loopback host with K4U_ALLOW_PRIVATE_URLS (a key set read in clear could be swapped on the way)."""
    parts = urlsplit(source)
    if parts.scheme.lower() != "http":
        return
    if not (is_loopback(parts.hostname or "") and allow_private):
        raise ValueError("K4U_FAL_JWKS must be an https URL or a file path (http:// only to a loopback host, with K4U_ALLOW_PRIVATE_URLS=true)")


class KeySet:
    def __init__(
        self, source: str, *, allow_private: bool = False, clock: Callable[[], float] = time.monotonic, transport: httpx.BaseTransport | None = None
    ) -> None:
        check_source(source, allow_private=allow_private)
        self.source = source
        self._allow_private = allow_private
        self._clock = clock
        self._transport = transport
        self._keys: list[bytes] | None = None
        self._fetched_at: float | None = None
        self._lock = threading.Lock()
        self.fetches = 0

    def keys(self) -> list[bytes]:
        """The cached keys, loading them on first use ([] when the source cannot be read)."""
        with self._lock:
            if self._keys is None:
                self._load()
            return list(self._keys or [])

    def refresh(self) -> bool:
        """Load the set again unless that happened less than a minute ago; True when it did."""
        with self._lock:
            if self._fetched_at is not None and self._clock() - self._fetched_at < REFRESH_EVERY_S:
                return False
            self._load()
            return True

    def _load(self) -> None:
        self._fetched_at = self._clock()
        self.fetches += 1
        try:
            raw = self._read()
            keys = jwks_ed25519_keys(json.loads(raw))
        except (OSError, ValueError, httpx.HTTPError) as exc:
            log.warning("could not load the key set from K4U_FAL_JWKS (%s); keeping %d cached key(s)", type(exc).__name__, len(self._keys or []))
            self._keys = self._keys or []
            return
        if not keys:
            log.warning("K4U_FAL_JWKS holds no Ed25519 key")
        self._keys = keys

    def _read(self) -> bytes:
        if not self.source.lower().startswith(("http://", "https://")):
            with Path(self.source).open("rb") as f:
                return f.read(MAX_JWKS_BYTES + 1)[:MAX_JWKS_BYTES]
        check_url(self.source, allow_private=self._allow_private, resolve=False)
        transport = self._transport or (None if self._allow_private else GuardedTransport())
        headers = {"accept-encoding": ", ".join(ENCODINGS)}
        with (
            httpx.Client(transport=transport, timeout=5.0, follow_redirects=False, headers=headers) as client,
            CallDeadline(5.0) as cut,
            client.stream("GET", self.source, extensions=cut.extensions) as r,
        ):
            r.raise_for_status()
            return _decoded(r, MAX_JWKS_BYTES)


def _decoded(r: httpx.Response, limit: int) -> bytes:
    """The body decoded per its Content-Encoding (none, gzip or deflate); ValueError past `limit`
    decoded bytes. zlib stops inflating at the limit (max_length), and nothing after the end of
    the compressed stream is kept."""
    encoding = r.headers.get("content-encoding", "").strip().lower()
    if encoding not in ("", "identity", *ENCODINGS):
        raise ValueError(f"unsupported Content-Encoding {encoding[:40]!r}")
    inflate = zlib.decompressobj(zlib.MAX_WBITS | 32) if encoding in ENCODINGS else None  # +32: a gzip or zlib header
    body = b""
    for chunk in r.iter_raw():
        body += inflate.decompress(chunk, limit + 1 - len(body)) if inflate is not None else chunk
        if len(body) > limit:
            raise ValueError(f"key set larger than {limit // 1024} KiB")
        if inflate is not None and inflate.unused_data:
            raise ValueError("data after the end of the compressed key set")
    if inflate is not None and not inflate.eof:
        raise ValueError("compressed key set cut short")
    return body
