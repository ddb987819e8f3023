"""Standard Webhooks signatures of our notifications (the algorithm lives in providers.webhooks,
which also verifies providers' deliveries)."""

from __future__ import annotations

from providers.webhooks import sign, verify

__all__ = ["headers", "sign", "verify"]


def headers(secret: str | None, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    out = {"webhook-id": msg_id, "webhook-timestamp": str(timestamp), "content-type": "application/json"}
    if secret:
        out["webhook-signature"] = sign(secret, msg_id, timestamp, body)
    return out
