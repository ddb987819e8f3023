"""Open mode (no K4U_API_TOKENS): the API serves this machine only, whatever it listens on.

Without tokens anyone who reaches the API can create paid jobs and read every result. `k4u api`
refuses a non-loopback bind, but a web page the operator visits reaches 127.0.0.1 from the
browser, and through DNS rebinding (its own name resolving to 127.0.0.1) reads the answers too.
So while the API is open and K4U_ALLOW_OPEN_API is not set, `LoopbackOnly` answers 403 unless the
client is a loopback address and the Host header, when sent, names a loopback host (localhost,
127.x.x.x, [::1], any port). Provider webhooks and signed input-file links (`/v1/files/`) are not
held to it: each URL carries its own token, and the relay calls them from outside by design.

`trusted_host` (built on `workers.netguard.is_loopback`, which the CLI and the fal key-set check
use too) also decides whether a request's Host may go into the links we hand out
(`api.deps.link_base`).
"""

from __future__ import annotations

import re

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from api.limits import FILES, WEBHOOKS, answer
from workers.netguard import is_loopback

_HOST = re.compile(r"(?P<name>\[[0-9a-fA-F:.]+\]|[^:\[\]]+)(?::[0-9]*)?")  # name, then an optional port


def trusted_host(host: str) -> bool:
    """A Host header value that names this machine: localhost, 127.x.x.x or [::1], with or without a port."""
    m = _HOST.fullmatch(host)
    return m is not None and is_loopback(m["name"])


class LoopbackOnly:
    """403 for a request from elsewhere, or under another Host name, before anything is read."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope.get("path", "").startswith((WEBHOOKS, FILES)):
            client = scope.get("client")
            host = Headers(scope=scope).get("host")
            if client is None or not is_loopback(client[0]):
                await answer(
                    send,
                    403,
                    {
                        "detail": "this API has no K4U_API_TOKENS, so it serves loopback clients only "
                        "(set K4U_API_TOKENS, or K4U_ALLOW_OPEN_API behind a gateway that authenticates)"
                    },
                )
                return
            if host is not None and not trusted_host(host):
                await answer(
                    send,
                    403,
                    {
                        "detail": "this API has no K4U_API_TOKENS, so it answers only under a loopback Host name "
                        "(localhost, 127.0.0.1, [::1]); set K4U_API_TOKENS to serve it under another"
                    },
                )
                return
        await self.app(scope, receive, send)
