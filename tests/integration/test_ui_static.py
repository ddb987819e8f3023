"""The /ui gallery's static files: served without a token, with a strict CSP, shipped in the
package, and free of HTML injection sinks; the data routes keep requiring the token."""

from __future__ import annotations

import fnmatch
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from api.main import create_app
from api.routes.ui import UI_DIR
from tests.conftest import Sim, make_settings
from tests.servers import serve
from workers.dispatch import RecordingDispatcher

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "tok-ui-1"


@pytest.fixture
def base(db_url: str, sim: Sim, tmp_path: Path) -> Iterator[str]:
    settings = make_settings(db_url, sim.url, tmp_path, api_tokens=TOKEN)
    with serve(create_app(settings, dispatcher=RecordingDispatcher())) as url:
        yield url


def test_ui_is_served_without_a_token_with_a_strict_csp(base: str) -> None:
    page = httpx.get(f"{base}/ui/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert '<script type="module" src="app.js">' in page.text
    csp = dict(d.strip().split(" ", 1) for d in page.headers["content-security-policy"].split(";"))
    assert csp["default-src"] == "'none'" and csp["script-src"] == "'self'" and csp["connect-src"] == "'self' blob:"
    assert csp["img-src"] == "'self' blob:" and csp["media-src"] == "'self' blob:" and csp["frame-ancestors"] == "'none'"
    assert page.headers["x-content-type-options"] == "nosniff"
    js = httpx.get(f"{base}/ui/app.js")
    assert js.status_code == 200 and "javascript" in js.headers["content-type"] and "content-security-policy" in js.headers
    bare = httpx.get(f"{base}/ui", follow_redirects=False)
    assert bare.status_code in (307, 308) and bare.headers["location"].endswith("/ui/")
    assert httpx.get(f"{base}/ui/nope.js").status_code == 404
    assert httpx.get(f"{base}/ui/..%2fdeps.py").status_code == 404, "no way out of the ui folder"
    # ...while every data call still needs the token.
    assert httpx.get(f"{base}/v1/jobs").status_code == 401
    assert httpx.get(f"{base}/v1/jobs", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200


def test_ui_files_are_package_data_and_never_build_html_from_strings() -> None:
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["api"]
    files = sorted(p.relative_to(UI_DIR.parent).as_posix() for p in UI_DIR.iterdir())
    assert {"ui/index.html", "ui/app.js", "ui/style.css"} <= set(files)
    assert all(any(fnmatch.fnmatch(f, pat) for pat in patterns) for f in files), (files, patterns)
    sinks = re.compile(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function|javascript:")
    for path in UI_DIR.glob("*.js"):
        code = re.sub(r"^\s*//.*$", "", path.read_text(), flags=re.M)  # comments may name the sinks
        assert not sinks.search(code), f"{path.name} uses an HTML/script sink"
    for path in UI_DIR.glob("*.html"):
        html = path.read_text()
        # The CSP allows no inline code or style: none is written.
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html) and not re.search(r"\s(on[a-z]+|style)=", html)
        assert not re.search(r"(src|href)=\"(https?:)?//", html), "no CDN: every file is served from /ui"
