"""K4U_ROUTE_PREFIXES: a family's documented route prefix replaced where a relay differs."""

from __future__ import annotations

from dataclasses import replace

import httpx
import pytest
from pydantic import ValidationError

from providers.base import Capabilities, HttpRequest
from providers.registry import ADAPTERS, with_prefix
from workers.relay import Fetcher, Relay
from workers.settings import Settings


def test_with_prefix_replaces_only_a_whole_leading_segment() -> None:
    m = {"/volc/v1": "/api/v3", "/ent/v2": "/vidu/ent/v2"}
    assert with_prefix("/volc/v1/contents/generations/tasks", m) == "/api/v3/contents/generations/tasks"
    assert with_prefix("/volc/v1?x=1", m) == "/api/v3?x=1"
    assert with_prefix("/volc/v10/tasks", m) == "/volc/v10/tasks"
    assert with_prefix("/v1/videos", m) == "/v1/videos"
    assert with_prefix("/ent/v2/tasks/1/creations", m) == "/vidu/ent/v2/tasks/1/creations"


def test_a_capability_prefix_must_be_a_plain_path() -> None:
    for bad in ("volc/v1", "/volc/v1/", "/volc v1", "https://x/v1", "/a//b"):
        with pytest.raises(ValueError, match="route_prefix"):
            Capabilities(route_prefix=bad)
    assert Capabilities(route_prefix="/volc/v1").route_prefix == "/volc/v1"


@pytest.fixture
def prefixed_family(monkeypatch: pytest.MonkeyPatch) -> str:
    name = next(iter(ADAPTERS))
    adapter = ADAPTERS[name]
    monkeypatch.setattr(adapter, "capabilities", replace(adapter.capabilities, route_prefix="/doc/v1"))
    return name


def test_settings_map_a_named_family_from_its_default_prefix(prefixed_family: str) -> None:
    s = Settings(route_prefixes=f" {prefixed_family}=/other/v3/ ")
    assert s.route_prefix_map() == {"/doc/v1": "/other/v3"}
    assert Settings().route_prefix_map() == {}


@pytest.mark.parametrize(
    ("value", "named"),
    [("nosuch=/x/v1", "'nosuch' is not a family"), ("{f}", "is not a family"), ("{f}=volc", "is not a path"), ("{f}=/a b", "is not a path")],
)
def test_a_bad_prefix_setting_names_the_problem(prefixed_family: str, value: str, named: str) -> None:
    with pytest.raises(ValidationError, match=named):
        Settings(route_prefixes=value.format(f=prefixed_family))


def test_the_relay_client_and_the_fetcher_send_under_the_configured_prefix() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.raw_path.decode())
        return httpx.Response(200, json={})

    relay = Relay("http://relay.test/base", "k", transport=httpx.MockTransport(handler), route_prefixes={"/volc/v1": "/api/v3"})
    relay.send(HttpRequest("GET", "/volc/v1/contents/generations/tasks", query={"filter.task_ids": "a"}), idempotent=True)
    relay.send(HttpRequest("GET", "/v1/videos/x"), idempotent=True)
    assert seen == ["/base/api/v3/contents/generations/tasks?filter.task_ids=a", "/base/v1/videos/x"]
    fetcher = Fetcher(allow_private=True, timeout_s=5, relay_base_url="http://relay.test", api_key=None, route_prefixes={"/volc/v1": "/api/v3"})
    assert fetcher.resolve_relay_path("/volc/v1/files/1") == "http://relay.test/api/v3/files/1"
