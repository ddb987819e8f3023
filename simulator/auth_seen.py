"""Which routes were called with an Authorization header, and which without.

`AuthSeenMiddleware` wraps the whole app, so it sees every request (relay routes, admin routes,
`/_sim/media/*`), and after routing reads the matched route's path template from the scope
(Starlette puts the route in `scope["route"]`). Counts go to `SimState.auth_by_route`, keyed
`"METHOD /template"` (unmatched paths: `"METHOD (no route)"`), so a test can prove the relay key
is sent to relay routes only and never to the media links. Served by `GET /_sim/auth-seen`.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

from starlette.types import ASGIApp, Receive, Scope, Send

if TYPE_CHECKING:
    from simulator.state import SimState


class AuthSeenMiddleware:
    def __init__(self, app: ASGIApp, state: SimState) -> None:
        self.app, self.state = app, state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            await self.app(scope, receive, send)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "(no route)"
            has_auth = any(name.lower() == b"authorization" for name, _ in scope.get("headers", []))
            key = f"{scope['method']} {template}"
            counts = self.state.auth_by_route.setdefault(key, Counter())
            counts["with_auth" if has_auth else "without_auth"] += 1


def auth_seen_view(state: SimState) -> dict[str, Any]:
    """`{routes: {"GET /v1/video/query": {"with_auth": 2, "without_auth": 0}, ...}}`."""
    return {"routes": {key: {"with_auth": c["with_auth"], "without_auth": c["without_auth"]} for key, c in sorted(state.auth_by_route.items())}}
