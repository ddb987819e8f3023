"""Verifying signed provider deliveries (pure: the caller hands in secrets, keys and the clock).

- Standard Webhooks (Replicate, and our own notifications): `webhook-signature` is a
  space-separated list of `v1,<base64 HMAC-SHA256 of "{webhook-id}.{webhook-timestamp}.{body}">`
  with the key = base64 of the `whsec_` secret; a timestamp more than 300 s off is refused.
- fal: Ed25519 over `request_id \\n user_id \\n timestamp \\n hex(sha256(body))`, hex signature in
  `X-Fal-Webhook-Signature`, checked against each public key of fal's JWKS.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from providers.base import header_value

TOLERANCE_S = 300


def _key(secret: str) -> bytes:
    raw = secret.removeprefix("whsec_")
    try:
        return base64.b64decode(raw, validate=True)
    except (ValueError, binascii.Error):
        return raw.encode()


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(_key(secret), f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def verify(secret: str, msg_id: str, timestamp: int, body: bytes, signature_header: str, *, now: int, tolerance_s: int = TOLERANCE_S) -> bool:
    """True when one of the space-separated v1 signatures matches and the timestamp is fresh."""
    if abs(now - timestamp) > tolerance_s:
        return False
    expected = sign(secret, msg_id, timestamp, body)
    return any(hmac.compare_digest(expected, part) for part in signature_header.split())


def verify_standard_webhook(secret: str, headers: Mapping[str, str], body: bytes, *, now: datetime) -> tuple[str | None, str | None]:
    """(why it is refused, or None; the delivery's webhook-id)."""
    msg_id, stamp, signature = header_value(headers, "webhook-id"), header_value(headers, "webhook-timestamp"), header_value(headers, "webhook-signature")
    if not msg_id or not stamp or not signature:
        return "missing webhook-id, webhook-timestamp or webhook-signature", msg_id
    if len(msg_id) > 200:
        return "webhook-id is too long", None
    try:
        timestamp = int(stamp)
    except ValueError:
        return "webhook-timestamp is not a number", msg_id
    if abs(int(now.timestamp()) - timestamp) > TOLERANCE_S:
        return f"webhook-timestamp is more than {TOLERANCE_S} s away from now", msg_id
    if not verify(secret, msg_id, timestamp, body, signature, now=int(now.timestamp())):
        return "bad webhook signature", msg_id
    return None, msg_id


def fal_message(request_id: str, user_id: str, timestamp: str, body: bytes) -> bytes:
    return "\n".join((request_id, user_id, timestamp, hashlib.sha256(body).hexdigest())).encode()


@dataclass(frozen=True)
class KeyRefusal:
    """Why a delivery signed against a key set fails verification; `unknown_key` when it is well
    formed and fresh but no key of the set verifies it (a fresher set may: keys rotate)."""

    reason: str
    unknown_key: bool = False


def verify_fal(keys: Iterable[bytes], headers: Mapping[str, str], body: bytes, *, now: datetime) -> KeyRefusal | None:
    """Why a fal delivery fails verification against these raw Ed25519 public keys, or None."""
    request_id = header_value(headers, "x-fal-webhook-request-id")
    user_id = header_value(headers, "x-fal-webhook-user-id")
    stamp = header_value(headers, "x-fal-webhook-timestamp")
    signature = header_value(headers, "x-fal-webhook-signature")
    if not (request_id and user_id and stamp and signature):
        return KeyRefusal("missing X-Fal-Webhook-* signature headers")
    try:
        if abs(int(now.timestamp()) - int(stamp)) > TOLERANCE_S:
            return KeyRefusal(f"X-Fal-Webhook-Timestamp is more than {TOLERANCE_S} s away from now")
        sig = bytes.fromhex(signature)
    except ValueError:
        return KeyRefusal("malformed X-Fal-Webhook-Timestamp or -Signature")
    message = fal_message(request_id, user_id, stamp, body)
    for raw in keys:
        try:
            Ed25519PublicKey.from_public_bytes(raw).verify(sig, message)
            return None
        except (InvalidSignature, ValueError):
            continue
    return KeyRefusal("bad fal webhook signature (no known key verifies it)", unknown_key=True)


def jwks_ed25519_keys(jwks: object) -> list[bytes]:
    """The raw Ed25519 public keys of a JWKS document (`{keys: [{kty: OKP, crv: Ed25519, x}]}`)."""
    keys = jwks.get("keys") if isinstance(jwks, Mapping) else None
    out: list[bytes] = []
    for k in keys if isinstance(keys, list) else []:
        if isinstance(k, Mapping) and k.get("kty") == "OKP" and k.get("crv") == "Ed25519" and isinstance(k.get("x"), str):
            x = k["x"]
            try:
                raw = base64.urlsafe_b64decode(x + "=" * (-len(x) % 4))
            except (ValueError, binascii.Error):
                continue
            if len(raw) == 32:
                out.append(raw)
    return out
