"""The simulator as an in-process ASGI app behind an httpx client, on the shared fake clock."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from simulator import SimConfig, create_app
from tests.conftest import FakeClock

SIM_BASE = "http://sim.test"
Factory = Callable[..., Any]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def sim_defaults() -> dict[str, Any]:
    """SimConfig values a test module wants by default (override the fixture to change them)."""
    return {}


@pytest.fixture
async def make(clock: FakeClock, sim_defaults: dict[str, Any]) -> AsyncIterator[Factory]:
    """make(**config) -> (client, app.state.sim) for a fresh simulator."""
    clients: list[httpx.AsyncClient] = []

    def factory(**overrides: Any) -> tuple[httpx.AsyncClient, Any]:
        app = create_app(SimConfig(clock=clock.monotonic, **(sim_defaults | overrides)))
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=SIM_BASE)
        clients.append(client)
        return client, app.state.sim

    yield factory
    for client in clients:
        await client.aclose()


def callback_recorder() -> tuple[list[dict[str, Any]], httpx.MockTransport]:
    """A transport for the simulator's callbacks that keeps each one (its URL and JSON body)."""
    received: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        received.append({"url": str(request.url), **json.loads(request.content)})
        return httpx.Response(200)

    return received, httpx.MockTransport(handler)
