"""The simulator answers as the relay does where `k4u doctor` asks: a read of a task that does not
exist on every family's poll route (providers.md: new-api's 400 `task_not_exist` §2.4, the video
object's 404 §2.4/§5.2, Kling's 404 §4.4, midjourney-proxy's 400, Replicate's and fal's 404 §8/§9),
a path it does not route (new-api's `Invalid URL` 404, or its console page), and the routes that
`unrouted` takes away."""

from __future__ import annotations

import pytest

from cli.doctor import Verdict, classify
from providers.base import HttpResponse
from providers.registry import ADAPTERS
from simulator.config import SimConfig, update_config
from tests.unit.conftest import Factory

KEY = "sk-test-secret-key-123"
AUTH = {"Authorization": f"Bearer {KEY}"}

pytestmark = pytest.mark.anyio

# family -> (native envelope status, newapi envelope status) of a read of a task that does not exist
ABSENT = {
    "kling": (404, 400),
    "midjourney": (400, 400),
    "suno": (400, 400),
    "sora": (404, 404),  # /v1/videos/{id}; /v1/video/query answers 400 task_not_exist (checked below)
    "veo": (400, 400),  # its first probe is /v1/video/query
    "grok": (400, 400),
    "replicate": (404, 404),
    "fal": (404, 404),
}


async def _ask(client, req):  # type: ignore[no-untyped-def]
    r = await client.request(req.method, req.path, params=dict(req.query), headers=AUTH)
    return HttpResponse(r.status_code, dict(r.headers), r.content)


@pytest.mark.parametrize("envelope", ["native", "newapi"])
@pytest.mark.parametrize("family", sorted(ADAPTERS))
async def test_a_task_that_does_not_exist_is_answered_on_every_poll_route(make: Factory, family: str, envelope: str) -> None:
    """Every registered family, so a new one is checked too: its probes must read as `ok`."""
    client, sim = make(envelope=envelope, api_key=KEY)
    probes = ADAPTERS[family].probes()
    answers = [await _ask(client, p.request) for p in probes]
    if family in ABSENT:
        assert answers[0].status == ABSENT[family][envelope == "newapi"], answers[0].body
    for p, resp in zip(probes, answers, strict=True):
        assert classify(resp).verdict is Verdict.OK, (p.request.path, resp.status, resp.body)
    assert sim.state.paid.rows == [] and sim.state.creates == 0


async def test_a_path_it_does_not_route_is_answered_as_new_api_does(make: Factory) -> None:
    client, sim = make(api_key=KEY)
    for method, path in (("GET", "/v1/nope/x"), ("GET", "/nowhere/v1/contents/generations/tasks/x"), ("DELETE", "/v1/videos/x"), ("GET", "/suno/fetch")):
        r = await client.request(method, path)  # no key: an unknown route is answered before any key check
        assert r.status_code == 404, (method, path)
        assert r.json() == {"error": {"message": f"Invalid URL ({method} {path})", "type": "invalid_request_error", "param": "", "code": ""}}
        assert classify(HttpResponse(r.status_code, dict(r.headers), r.content)).verdict is Verdict.ROUTE_MISSING
    assert sim.state.auth_failures == 0


async def test_with_the_console_fallback_only_relay_paths_keep_the_json_404(make: Factory) -> None:
    client, _ = make(api_key=KEY, web_ui_fallback=True)
    page = await client.get("/nowhere/v1/contents/generations/tasks/x", headers=AUTH)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html") and b'<div id="root">' in page.content
    assert classify(HttpResponse(200, dict(page.headers), page.content)).verdict is Verdict.ROUTE_MISSING
    for path in ("/v1/nope", "/api/nope", "/assets/x.js"):
        assert (await client.get(path)).status_code == 404, path


async def test_unrouted_families_answer_as_routes_the_relay_does_not_have(make: Factory) -> None:
    client, sim = make(api_key=KEY)
    r = await client.post("/_sim/config", json={"unrouted": "/replicate, /fal-ai/"})
    assert r.status_code == 200 and r.json()["unrouted"] == "/replicate, /fal-ai/"
    gone = await client.get("/replicate/v1/predictions/x", headers=AUTH)
    assert gone.status_code == 404 and gone.json()["error"]["message"] == "Invalid URL (GET /replicate/v1/predictions/x)"
    assert (await client.post("/fal-ai/flux/dev", json={"prompt": "x"}, headers=AUTH)).status_code == 404
    assert (await client.get("/fal-aix/flux/requests/x/status", headers=AUTH)).status_code == 404  # not its route either, but not by `unrouted`
    assert (await client.get("/suno/fetch/x", headers=AUTH)).status_code == 400  # other families keep their routes
    assert sim.state.paid.rows == []
    await client.post("/_sim/config", json={"unrouted": ""})
    assert (await client.get("/replicate/v1/predictions/x", headers=AUTH)).json()["detail"] == "Not found."


def test_unrouted_takes_path_prefixes_and_never_the_admin_routes() -> None:
    config = SimConfig()
    for bad in ("/_sim", "replicate", "/replicate,_sim/paid", "/x, /_sim/config"):
        with pytest.raises(ValueError, match="unrouted"):
            update_config(config, {"unrouted": bad})
    update_config(config, {"unrouted": "/replicate,/fal-ai", "web_ui_fallback": True})
    assert config.unrouted == "/replicate,/fal-ai" and config.web_ui_fallback
