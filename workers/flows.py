"""run_flow: carry out an adapter's flow (providers.base.Flow) over the relay client.

Flows are reads (polls, lookups, result reads) or a cancel: each request is sent as idempotent,
so a connect error or dropped answer is retried once by the relay client. A 429 or 5xx answer
ends the flow with ProviderUnavailable (Retry-After honoured by the caller); every other answer,
errors included, goes back to the adapter, which knows what a 400 or 404 means in its family.
"""

from __future__ import annotations

from typing import TypeVar

from models.errors import ProviderUnavailable
from providers.base import Flow
from providers.rejections import retry_after_s
from workers.relay import Relay

T = TypeVar("T")
MAX_STEPS = 8  # a flow is a short conversation; a loop in an adapter must not become a request storm


def run_flow(relay: Relay, flow: Flow[T], label: str, bodies: list[bytes] | None = None) -> T:
    """The flow's outcome; `bodies` (when given) collects each answer's body, for event digests."""
    req = next(flow)
    for step in range(MAX_STEPS):
        resp = relay.send(req, idempotent=True, label=label if step == 0 else f"{label}.follow")
        if bodies is not None:
            bodies.append(resp.body)
        if (resp.status == 429 or resp.status >= 500) and not req.accept_errors:
            flow.close()
            raise ProviderUnavailable(f"HTTP {resp.status}", retry_after_s=retry_after_s(resp))
        try:
            req = flow.send(resp)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]
    flow.close()
    raise ProviderUnavailable(f"{label}: the adapter's flow did not finish within {MAX_STEPS} requests")
