"""Paths the simulator does not route, answered as new-api's router answers them (its NoRoute
handler): `/v1`, `/api` and `/assets` paths get HTTP 404 `{"error": {"message": "Invalid URL
(GET /x)", "type": "invalid_request_error"}}`, before any key check; every other path gets the
same 404, or, with `web_ui_fallback`, HTTP 200 and the web console's HTML page, as a stock new-api
serves its console there. A wrong method on a routed path is answered the same way (gin does not
answer 405 unless told to).

`unrouted` (a SimConfig field: comma-separated path prefixes such as `/replicate,/fal-ai`) makes
routes the simulator has answer as if it had none: a relay that does not carry a family. The
prefixes are whole segments (`/fal-ai` covers `/fal-ai/flux/...`, not `/fal-aix`); admin and media
routes (`/_sim/...`) are never unrouted.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from simulator.config import SimConfig

RELAY_PREFIXES = ("/v1", "/api", "/assets")  # new-api answers these with JSON, never the console page
INDEX_PAGE = b'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>New API</title></head><body><div id="root"></div></body></html>'


def not_routed(config: SimConfig, method: str, path: str) -> Response:
    if config.web_ui_fallback and not path.startswith(RELAY_PREFIXES):
        return Response(INDEX_PAGE, 200, media_type="text/html; charset=utf-8", headers={"Cache-Control": "no-cache"})
    message = f"Invalid URL ({method} {path})"
    return JSONResponse({"error": {"message": message, "type": "invalid_request_error", "param": "", "code": ""}}, 404)


def is_unrouted(prefixes: str, path: str) -> bool:
    wanted = filter(None, (p.strip().rstrip("/") for p in prefixes.split(",")))
    return any(path == prefix or path.startswith(prefix + "/") for prefix in wanted)


async def not_found_handler(request: Request, exc: Exception) -> Response:
    """Starlette's 404 (no route) and 405 (another method's route), as new-api answers them."""
    return not_routed(request.app.state.sim.config, request.method, request.url.path)


class UnroutedMiddleware:
    """Answers the paths under `config.unrouted` as unknown routes, before routing and auth."""

    def __init__(self, app: ASGIApp, config: SimConfig) -> None:
        self.app, self.config = app, config

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.config.unrouted and is_unrouted(self.config.unrouted, scope["path"]):
            await not_routed(self.config, scope["method"], scope["path"])(scope, receive, send)
            return
        await self.app(scope, receive, send)
