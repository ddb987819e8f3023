"""/ui: the job gallery, static files shipped in the package (api/ui), served without auth.

The page holds no data of its own: everything it shows comes from the authenticated /v1 routes,
called with the bearer token the person types in. So the files themselves need no token, and a
strict Content-Security-Policy (same origin only, `blob:` for the media the page fetches with the
token and hands to <img>/<video>/<audio>) keeps any text that comes back from the API from ever
running as script or loading something from elsewhere.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

UI_DIR = Path(__file__).resolve().parent.parent / "ui"

CSP = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' blob:",
        "media-src 'self' blob:",
        "connect-src 'self' blob:",  # blob: lets the page (and its test) re-read bytes it fetched
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)

SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    # Small files that change with each release: always revalidate (ETag / Last-Modified).
    "Cache-Control": "no-cache",
}


class UIFiles(StaticFiles):
    """StaticFiles with the security headers on every file it answers (304s included)."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers.update(SECURITY_HEADERS)
        return response


def install(app: FastAPI) -> None:
    """Mount the gallery at /ui/ (Starlette redirects a bare /ui to /ui/)."""
    app.mount("/ui", UIFiles(directory=UI_DIR, html=True), name="ui")
