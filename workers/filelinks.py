"""Signed, expiring links to a stored object (`GET /v1/files/<token>`): an upload, or another job's
stored asset (`ast_<asset row id>`) that a pipeline's job sends on, for a relay that must fetch an
input file from a local store (S3 presigns its own).

The token is `<upload or asset id>.<expiry, Unix seconds>.<HMAC-SHA256 of both, base64url>`. Its key is derived
(HMAC with a fixed label, so one way) from this deployment's secrets: the relay key, K4U_API_TOKENS and
K4U_WEBHOOK_SECRET, those that are set. None of them goes on a link, and a link names one upload
until its expiry; rotating any of those secrets invalidates the links handed out before.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import datetime

from models.refs import UPLOAD_ID
from workers.settings import Settings

_LABEL = b"k4u input file links v1"
LINKED_ID = re.compile(rf"{UPLOAD_ID.pattern}|ast_[0-9]{{1,18}}")  # what a token may name


@dataclass(frozen=True, slots=True)
class FileToken:
    upload_id: str  # an upload's id, or ast_<asset id>
    expires: int  # Unix seconds


class BadToken(ValueError):
    """A token that is malformed or not ours (404)."""


class ExpiredToken(ValueError):
    """A token of ours whose time is over (410)."""


def link_key(settings: Settings) -> bytes | None:
    """The signing key, or None when the deployment has no secret to derive it from."""
    parts = [s.get_secret_value() for s in (settings.api_key, settings.api_tokens, settings.webhook_secret) if s is not None and s.get_secret_value()]
    if not parts:
        return None
    return hmac.new("\0".join(parts).encode(), _LABEL, hashlib.sha256).digest()


def _mac(key: bytes, upload_id: str, expires: int) -> str:
    digest = hmac.new(key, f"{upload_id}.{expires}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def sign(key: bytes, upload_id: str, expires: int) -> str:
    return f"{upload_id}.{expires}.{_mac(key, upload_id, expires)}"


def verify(key: bytes | None, token: str, now: datetime) -> FileToken:
    """The token's upload and expiry; BadToken (not ours) or ExpiredToken (ours, past its time)."""
    upload_id, _, rest = token.partition(".")
    expires_text, _, mac = rest.partition(".")
    if key is None or not LINKED_ID.fullmatch(upload_id) or not expires_text.isdigit() or len(expires_text) > 12:
        raise BadToken("not a file link of ours")
    expires = int(expires_text)
    if not hmac.compare_digest(mac.encode(), _mac(key, upload_id, expires).encode()):
        raise BadToken("not a file link of ours")
    if expires <= now.timestamp():
        raise ExpiredToken("this file link has expired")
    return FileToken(upload_id, expires)


def file_url(settings: Settings, upload_id: str, now: datetime) -> str | None:
    """A link under K4U_PUBLIC_URL valid K4U_INPUT_URL_TTL_S, or None without a public URL or a key."""
    key = link_key(settings)
    if not settings.public_url or key is None:
        return None
    return f"{settings.public_url}/v1/files/{sign(key, upload_id, int(now.timestamp()) + settings.input_url_ttl_s)}"
