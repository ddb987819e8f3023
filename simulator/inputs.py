"""Input files the relay fetches: like the real relay, a create whose image fields hold a URL fetches
it (a `data:` URI or bare base64 is decoded), and one it cannot fetch is refused with the relay's
error. The sha256 of the bytes received per field is kept on the task (`GET /_sim/tasks`,
`inputs_sha256`), so tests can prove the relay got the bytes we stored.

Only loopback URLs are fetched (the simulator never leaves the machine): another host's URL is
taken as it is, unfetched, as before.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import unquote_to_bytes, urlsplit

import httpx

MAX_BYTES = 600 * 1024 * 1024
_LOOPBACK = ("127.0.0.1", "localhost", "::1")


class FetchFailed(Exception):
    pass


async def fetch_inputs(body: Mapping[str, Any], fields: Iterable[str], timeout_s: float = 30.0) -> dict[str, str]:
    """field -> sha256 of the bytes each input field stood for; FetchFailed names the first that failed."""
    out: dict[str, str] = {}
    for name in fields:
        value = body.get(name)
        if not isinstance(value, str) or not value:
            continue
        digest = await _sha256_of(name, value, timeout_s)
        if digest is not None:
            out[name] = digest
    return out


async def _sha256_of(name: str, value: str, timeout_s: float) -> str | None:
    if value[:5].lower() == "data:":
        head, sep, payload = value.partition(",")
        if not sep:
            raise FetchFailed(f"{name}: invalid data URI")
        try:
            data = base64.b64decode(payload, validate=True) if head.lower().endswith(";base64") else unquote_to_bytes(payload)
        except (binascii.Error, ValueError):
            raise FetchFailed(f"{name}: invalid base64 in data URI") from None
        return hashlib.sha256(data).hexdigest()
    if value.startswith(("http://", "https://")):
        if urlsplit(value).hostname not in _LOOPBACK:
            return None
        return await _download(name, value, timeout_s)
    if value[:6].lower() == "k4u://":
        raise FetchFailed(f"{name}: unsupported URL scheme: {value[:40]}")
    try:
        return hashlib.sha256(base64.b64decode(value, validate=True)).hexdigest()
    except (binascii.Error, ValueError):
        raise FetchFailed(f"{name}: not a URL nor base64") from None


async def _download(name: str, url: str, timeout_s: float) -> str:
    digest, size = hashlib.sha256(), 0
    try:
        async with httpx.AsyncClient(timeout=timeout_s, follow_redirects=True) as client, client.stream("GET", url) as resp:
            if resp.status_code != 200:
                raise FetchFailed(f"{name}: image fetch failed: HTTP {resp.status_code}")
            async for chunk in resp.aiter_bytes():
                size += len(chunk)
                if size > MAX_BYTES:
                    raise FetchFailed(f"{name}: image too large")
                digest.update(chunk)
    except httpx.HTTPError as exc:
        raise FetchFailed(f"{name}: image fetch failed: {type(exc).__name__}") from None
    return digest.hexdigest()
