"""Public key sets that verify providers' signed deliveries: fal's JWKS (K4U_FAL_JWKS).

The set comes from a file or an https URL, is loaded on first use and cached. A delivery that no
cached key verifies may be signed with a key fal rotated in, so the set is fetched again, but at
most once a minute however many such deliveries arrive (a flood of forgeries cannot turn into a
flood of fetches). The fetch is bounded: 5 s, 64 KiB, SSRF-guarded like every outbound call.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from providers.webhooks import jwks_ed25519_keys
from workers.netguard import GuardedTransport, check_url
from workers.outbound import CallDeadline

log = logging.getLogger("k4u.keysets")
REFRESH_EVERY_S = 60.0
MAX_JWKS_BYTES = 64 * 1024


class KeySet:
    def __init__(self, source: str, *, allow_private: bool = False, clock: Callable[[], float] = time.monotonic,
                 transport: httpx.BaseTransport | None = None) -> None:
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
        with httpx.Client(transport=transport, timeout=5.0, follow_redirects=False) as client, CallDeadline(5.0) as cut:
            with client.stream("GET", self.source, extensions=cut.extensions) as r:
                r.raise_for_status()
                body = b""
                for chunk in r.iter_raw():
                    body += chunk
                    if len(body) > MAX_JWKS_BYTES:
                        raise ValueError("key set larger than 64 KiB")
                return body
