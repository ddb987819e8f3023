"""The relay client's boundary: the key is added here, and a failed POST is classified as
not sent (retry) or unknown (never resend blindly)."""

from __future__ import annotations

import httpx
import pytest

from models.errors import ProviderUnavailable, SubmitOutcomeUnknown
from providers.base import HttpRequest
from workers.relay import Relay

KEY = "sk-unit-secret"


def relay(handler) -> Relay:  # type: ignore[no-untyped-def]
    return Relay("https://relay.example", KEY, transport=httpx.MockTransport(handler))


def test_key_is_added_by_the_client() -> None:
    seen = []
    r = relay(lambda req: seen.append(req.headers["authorization"]) or httpx.Response(200, json={}))
    assert r.send(HttpRequest("GET", "/x"), idempotent=True).status == 200
    assert seen == [f"Bearer {KEY}"]


def test_connect_error_on_post_is_not_sent() -> None:
    def boom(req: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=req)

    with pytest.raises(ProviderUnavailable) as exc:
        relay(boom).send(HttpRequest("POST", "/kling/v1/videos/text2video", json={}), idempotent=False)
    assert KEY not in str(exc.value)


@pytest.mark.parametrize("error", [httpx.ReadTimeout, httpx.RemoteProtocolError, httpx.WriteTimeout])
def test_error_after_sending_a_post_is_unknown_and_not_retried(error: type[httpx.TransportError]) -> None:
    calls = []

    def fail(req: httpx.Request) -> httpx.Response:
        calls.append(req)
        raise error("gone", request=req)

    with pytest.raises(SubmitOutcomeUnknown) as exc:
        relay(fail).send(HttpRequest("POST", "/p", json={}), idempotent=False)
    assert len(calls) == 1 and KEY not in str(exc.value)


def test_idempotent_get_is_retried_once() -> None:
    calls = []

    def flaky(req: httpx.Request) -> httpx.Response:
        calls.append(req)
        if len(calls) == 1:
            raise httpx.ReadTimeout("slow", request=req)
        return httpx.Response(200, json={"ok": True})

    assert relay(flaky).send(HttpRequest("GET", "/q"), idempotent=True).json() == {"ok": True}
    assert len(calls) == 2
