"""Bounds on what we read from third parties: the capped answer read, header values clamped
before they reach the database, result URLs no client can use."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from models.errors import DownloadFailed
from workers.outbound import read_capped
from workers.relay import Fetcher, safe_content_type


def test_read_capped_stops_reading_an_endless_answer() -> None:
    pulled = 0

    def endless() -> Iterator[bytes]:
        nonlocal pulled
        while True:
            pulled += 4096
            yield b"x" * 4096

    transport = httpx.MockTransport(lambda request: httpx.Response(200, content=endless()))
    with httpx.Client(transport=transport) as client, client.stream("POST", "http://hook.test/") as r:
        got = read_capped(r, 64 * 1024)
    assert 64 * 1024 <= got < 64 * 1024 + 4096
    assert pulled < 64 * 1024 + 2 * 4096


@pytest.mark.parametrize(
    ("header", "want"),
    [
        ("video/mp4", "video/mp4"),
        ("Video/MP4; codecs=avc1", "video/mp4"),
        ("image/svg+xml", "image/svg+xml"),
        ("video/" + "x" * 300, "application/octet-stream"),
        ("x" * 250, "application/octet-stream"),
        ("text/html\r\nx-evil: 1", "application/octet-stream"),
        ("", "application/octet-stream"),
        (None, "application/octet-stream"),
    ],
)
def test_content_type_is_clamped_to_a_short_media_type(header: str | None, want: str) -> None:
    got = safe_content_type(header)
    assert got == want and len(got) <= 200


@pytest.mark.parametrize("url", ["http://cdn.example:99999/x.mp4", "http://cdn.example:0/x.mp4", "http:///x.mp4", "http://[::1/x"])
def test_a_result_url_no_client_can_use_fails_at_once_with_its_own_code(url: str) -> None:
    requests: list[httpx.Request] = []
    transport = httpx.MockTransport(lambda request: requests.append(request) or httpx.Response(200))  # type: ignore[func-returns-value]
    fetcher = Fetcher(allow_private=True, timeout_s=10, relay_base_url="http://relay.test", api_key=None, transport=transport)
    with pytest.raises(DownloadFailed) as err, fetcher.open(url):
        pass
    assert err.value.code == "invalid_result_url" and not err.value.retryable and requests == []
