"""fal queue requests through the relay (providers.md §9): store, lifecycle and the signing key.

Routes are in `simulator.fal_routes`, bodies in `simulator.fal_views`, webhook delivery in
`simulator.signed_hooks`. Lifecycle, a pure function of the injected clock: `IN_QUEUE` for
`queue_s` (the `queue_position` counts down from `QUEUE_START` to 0 over that time),
`IN_PROGRESS` for `run_s`, then `COMPLETED`. A COMPLETED request may still have failed: the
failure shows only when the result is read (§9.2), which is why fal's status has no error:

* `[sim:fail]`: the result GET answers HTTP 500 `{detail: "..."}` (the model runner's own error
  status, which fal's queue keeps); the webhook says `status: "ERROR"`.
* `[sim:result_error]`: the result GET answers HTTP 422 `{detail: [{loc, msg, type}]}` (an input
  validation error found by the model: COMPLETED-with-error); webhook `ERROR` likewise.
* cancelled (a cancel while `IN_QUEUE`; the doc says cancel only works before processing
  starts): the status turns `COMPLETED` at once, the result GET answers HTTP 400
  `{detail: "Request was cancelled"}`, and no webhook is sent (the client asked for it).
  A cancel while `IN_PROGRESS` answers 400 `{status: "ALREADY_STARTED"}` (the request runs on),
  after COMPLETED 400 `{status: "ALREADY_COMPLETED"}`.

Other directives: `[sim:run=S]`, `[sim:queue=S]`, `[sim:output=data]` (image `url` is a `data:`
URI), `[sim:sync]` (the submit answers the final result itself, HTTP 200, or its error, no request
id and no webhook: some Key4U fal routes are synchronous), `[sim:gateway_retry]` (`gateway_request_id` differs from
`request_id`, as after fal's internal retries), `[sim:webhook_dupe]` (the webhook is delivered twice).

The request id is a UUID4, as fal's are. The Ed25519 key pair that signs webhooks is made when
the simulator starts (`FalSigningKey`) and published as a JWKS by `GET /_sim/fal/jwks.json`.
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from simulator.timeline import directive_seconds, directives

IN_QUEUE, IN_PROGRESS, COMPLETED = "IN_QUEUE", "IN_PROGRESS", "COMPLETED"
OK, FAIL, RESULT_ERROR, CANCELLED = "ok", "fail", "result_error", "cancelled"
OWNER = "fal-ai"
QUEUE_HOST = "https://queue.fal.run"
QUEUE_START = 3  # queue_position at submit; 0 just before the run starts
USER_ID = "sim-fal-user-0001"
FAIL_DETAIL = "Internal error: the model runner crashed while generating (simulated)"
CANCELLED_DETAIL = "Request was cancelled"


def base_model(path: str) -> str:
    """The app id of a model path: its first two segments (§9.2's sub-path rule)."""
    return "/".join(path.strip("/").split("/")[:2])


@dataclass
class Plan:
    fail: bool = False
    result_error: bool = False
    queue_s: float | None = None
    run_s: float | None = None
    data_output: bool = False
    sync: bool = False
    gateway_retry: bool = False
    webhook_dupe: bool = False


def plan_of(prompt: str) -> Plan:
    found = directives(prompt)
    return Plan(
        fail="fail" in found,
        result_error="result_error" in found,
        queue_s=directive_seconds(found, "queue"),
        run_s=directive_seconds(found, "run"),
        data_output=found.get("output") == "data",
        sync="sync" in found,
        gateway_retry="gateway_retry" in found,
        webhook_dupe="webhook_dupe" in found,
    )


@dataclass
class FalRequest:
    """One simulated fal queue request (times on the monotonic clock)."""

    id: str
    model: str  # full submit path without the leading slash, e.g. "fal-ai/flux/dev"
    input: dict[str, Any]
    created: float
    queue_s: float
    run_s: float
    plan: Plan
    public_base: str
    gateway_request_id: str
    webhook: str | None = None
    cancelled_at: float | None = None
    cancel_calls: int = 0
    polls: int = 0
    hooks_sent: int = 0  # completion deliveries already handed to the dispatcher

    @property
    def base(self) -> str:
        return base_model(self.model)

    @property
    def prompt(self) -> str:
        value = self.input.get("prompt")
        return value if isinstance(value, str) else ""

    @property
    def is_video(self) -> bool:
        return "video" in self.model.lower()

    @property
    def started(self) -> float:
        return self.created + self.queue_s

    @property
    def end(self) -> float:
        return self.cancelled_at if self.cancelled_at is not None else self.started + self.run_s

    @property
    def outcome(self) -> str:
        if self.cancelled_at is not None:
            return CANCELLED
        if self.plan.result_error:
            return RESULT_ERROR
        return FAIL if self.plan.fail else OK

    def status_at(self, now: float) -> str:
        if now >= self.end:
            return COMPLETED
        return IN_QUEUE if now < self.started else IN_PROGRESS

    def queue_position(self, now: float) -> int:
        if not self.queue_s:
            return 0
        left = max(0.0, self.started - now) / self.queue_s
        return min(QUEUE_START, int(QUEUE_START * left))

    def run_fraction(self, now: float) -> float:
        if not self.run_s:
            return 1.0
        return max(0.0, min(1.0, (now - self.started) / self.run_s))

    def inference_time(self) -> float:
        return round(max(0.0, self.end - self.started), 3)

    def n_images(self) -> int:
        n = self.input.get("num_images", 1)
        return max(1, min(4, n)) if isinstance(n, int) and not isinstance(n, bool) else 1

    def media_ok(self, now: float) -> bool:
        return self.status_at(now) == COMPLETED and self.outcome == OK


class FalSigningKey:
    """The Ed25519 key pair that signs fal webhooks, and its public JWKS entry."""

    def __init__(self) -> None:
        self._private = Ed25519PrivateKey.generate()
        raw = self._private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.x = base64.urlsafe_b64encode(raw).decode().rstrip("=")
        self.kid = "sim-" + hashlib.sha256(raw).hexdigest()[:16]

    def sign_hex(self, message: bytes) -> str:
        return self._private.sign(message).hex()

    def jwks(self) -> dict[str, Any]:
        return {"keys": [{"kty": "OKP", "crv": "Ed25519", "x": self.x, "kid": self.kid, "use": "sig", "alg": "EdDSA"}]}


def signed_message(request_id: str, user_id: str, timestamp: str, body: bytes) -> bytes:
    """What fal signs: `request_id \\n user_id \\n timestamp \\n hex(sha256(body))`."""
    return "\n".join((request_id, user_id, timestamp, hashlib.sha256(body).hexdigest())).encode()


@dataclass
class FalStore:
    """All fal requests by id."""

    requests: dict[str, FalRequest] = field(default_factory=dict)

    @staticmethod
    def new_id() -> str:
        return str(uuid.uuid4())

    def add(self, request: FalRequest) -> FalRequest:
        self.requests[request.id] = request
        return request

    def rows(self, now: float, wall_ms: Callable[[float], int]) -> list[dict[str, Any]]:
        """`/_sim/tasks` rows."""
        return [
            {
                "family": "fal",
                "task_id": r.id,
                "model": r.model,
                "base_model": r.base,
                "status": r.status_at(now),
                "outcome": r.outcome if r.status_at(now) == COMPLETED else None,
                "sync": r.plan.sync,
                "gateway_request_id": r.gateway_request_id,
                "cancel_calls": r.cancel_calls,
                "polls": r.polls,
                "created_at": wall_ms(r.created),
                "callback_url": r.webhook,
                "callbacks_notified": r.hooks_sent,
            }
            for r in self.requests.values()
        ]
