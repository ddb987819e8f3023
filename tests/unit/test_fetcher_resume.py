"""The Fetcher on big, flaky result files: a dropped body resumes with Range/If-Range and
costs barely more than the file; a source that cannot resume starts over cleanly; reconnects
are bounded; the relay key goes on the first hop of a relay route only. Against a real
server on loopback (tests/ranged_server.py), counting bytes on the server's side."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import httpx
import pytest

from models.errors import DownloadFailed
from tests.ranged_server import blob, ranged_server, sha256
from workers.relay import Download, Fetcher, resolve_relay_path

KEY = "sk-unit-secret"
MiB = 1024 * 1024


class Sink:
    """A consumer like a store's put_stream: hashes and counts one pass; exceptions pass through."""

    def __init__(self) -> None:
        self.passes = 0

    def __call__(self, dl: Download) -> tuple[str, int]:
        self.passes += 1
        digest, size = hashlib.sha256(), 0
        for chunk in dl.chunks:
            digest.update(chunk)
            size += len(chunk)
        return digest.hexdigest(), size


def fetcher(relay_url: str, *, max_resumes: int = 5, transport: httpx.BaseTransport | None = None) -> Fetcher:
    return Fetcher(allow_private=True, timeout_s=60, relay_base_url=relay_url, api_key=KEY, max_resumes=max_resumes, transport=transport)


def test_a_64_mib_body_cut_midway_is_resumed_and_costs_at_most_5_percent_more() -> None:
    data = blob(64 * MiB)
    cut = 26 * MiB + 12345
    with ranged_server(data, cuts=[cut]) as srv:
        sink = Sink()
        got = fetcher(srv.url).fetch(f"{srv.url}/file/big.mp4", sink)
    assert got == (sha256(data), len(data)) and sink.passes == 1
    assert [(s.range, s.if_range, s.status) for s in srv.seen] == [(None, None, 200), (f"bytes={cut}-", '"v1"', 206)]
    assert srv.sent_total <= 1.05 * len(data)


def test_several_drops_are_resumed_in_one_pass() -> None:
    data = blob(8 * MiB)
    with ranged_server(data, cuts=[1 * MiB, 4 * MiB + 7, 8 * MiB - 1]) as srv:
        sink = Sink()
        assert fetcher(srv.url).fetch(f"{srv.url}/file/x.mp4", sink) == (sha256(data), len(data))
    assert sink.passes == 1 and [s.status for s in srv.seen] == [200, 206, 206, 206]
    assert srv.sent_total == len(data)


def test_last_modified_is_the_validator_when_the_etag_is_weak() -> None:
    data = blob(2 * MiB)
    with ranged_server(data, etag='W/"weak"', cuts=[MiB]) as srv:
        assert fetcher(srv.url).fetch(f"{srv.url}/file/x.mp4", Sink()) == (sha256(data), len(data))
    assert srv.seen[1].if_range == srv.last_modified and srv.seen[1].status == 206


def test_without_a_validator_the_download_starts_over_from_zero() -> None:
    data = blob(2 * MiB)
    with ranged_server(data, etag=None, last_modified=None, cuts=[MiB]) as srv:
        sink = Sink()
        assert fetcher(srv.url).fetch(f"{srv.url}/file/x.mp4", sink) == (sha256(data), len(data))
    assert sink.passes == 2, "the consumer was told to start over"
    assert [(s.range, s.status) for s in srv.seen] == [(None, 200), (None, 200)]


def test_a_server_that_ignores_range_makes_a_clean_restart() -> None:
    data = blob(4 * MiB)
    with ranged_server(data, ignore_range=True, cuts=[3 * MiB]) as srv:
        sink = Sink()
        assert fetcher(srv.url).fetch(f"{srv.url}/file/x.mp4", sink) == (sha256(data), len(data))
    assert sink.passes == 2
    assert [(s.range, s.status) for s in srv.seen] == [(None, 200), (f"bytes={3 * MiB}-", 200)]


def test_a_changed_validator_restarts_with_the_new_version() -> None:
    old, new = blob(4 * MiB, seed=1), blob(4 * MiB, seed=2)
    with ranged_server(old, cuts=[2 * MiB], next_version=(new, '"v2"')) as srv:
        sink = Sink()
        assert fetcher(srv.url).fetch(f"{srv.url}/file/x.mp4", sink) == (sha256(new), len(new))
    assert sink.passes == 2 and srv.seen[1].if_range == '"v1"' and srv.seen[1].status == 200


def test_reconnects_are_bounded_and_then_fail_retryable() -> None:
    data = blob(4 * MiB)
    with ranged_server(data, cuts=[MiB, 2 * MiB, 3 * MiB, 4 * MiB - 10]) as srv, pytest.raises(DownloadFailed) as err:
        fetcher(srv.url, max_resumes=2).fetch(f"{srv.url}/file/x.mp4", Sink())
    assert err.value.retryable and "K4U_DOWNLOAD_RESUMES" in err.value.message
    assert len(srv.seen) == 3, "the first request and two reconnects"


def test_the_key_goes_on_the_first_hop_of_a_relay_route_only_even_when_resumed() -> None:
    data = blob(2 * MiB)
    with ranged_server(data, cuts=[MiB]) as srv:
        f = fetcher(srv.url)
        assert f.fetch(f.resolve_relay_path("/go/x.mp4"), Sink(), needs_auth=True) == (sha256(data), len(data))
    assert [(s.path, s.authorization, s.status) for s in srv.seen] == [
        ("/go/x.mp4", f"Bearer {KEY}", 302),
        ("/file/x.mp4", None, 200),  # same host, redirected: no key
        ("/go/x.mp4", f"Bearer {KEY}", 302),
        ("/file/x.mp4", None, 206),  # the resume starts at the original URL again
    ]


def test_a_url_that_is_not_a_relay_route_never_gets_the_key_even_on_the_relay_host() -> None:
    data = blob(1024)
    with ranged_server(data) as srv:
        assert fetcher(srv.url).fetch(f"{srv.url}/file/v.mp4", Sink(), needs_auth=False)[0] == sha256(data)
    assert [s.authorization for s in srv.seen] == [None]


def test_a_relay_route_on_another_origin_does_not_get_the_key() -> None:
    data = blob(1024)
    with ranged_server(data) as srv:
        other_port = fetcher("http://127.0.0.1:1")  # same host, another port: not the relay
        assert other_port.fetch(f"{srv.url}/file/v.mp4", Sink(), needs_auth=True)[0] == sha256(data)
    assert [s.authorization for s in srv.seen] == [None]


def test_resolve_relay_path_keeps_the_base_path_and_refuses_anything_but_a_relay_path() -> None:
    assert resolve_relay_path("https://api.key4u.shop", "/v1/videos/v_1/content") == "https://api.key4u.shop/v1/videos/v_1/content"
    assert resolve_relay_path("https://relay.example/api/", "/v1/videos/a/content?x=1") == "https://relay.example/api/v1/videos/a/content?x=1"
    for bad in ("https://evil.example/x", "//evil.example/x", "v1/videos", "/a\\b", "/a b", "/a\r\nx: y", ""):
        with pytest.raises(ValueError):
            resolve_relay_path("https://api.key4u.shop", bad)


def test_a_single_pass_reader_fails_retryable_when_the_source_starts_over() -> None:
    data = blob(2 * MiB)
    with ranged_server(data, ignore_range=True, cuts=[MiB]) as srv:
        f = fetcher(srv.url)
        with pytest.raises(DownloadFailed) as err, f.open(f"{srv.url}/file/x.mp4") as dl:
            for _ in dl.chunks:
                pass
    assert err.value.retryable and "start" in err.value.message


class _Body(httpx.SyncByteStream):
    """A streamed body (as from the network) that may end in a dropped connection."""

    def __init__(self, data: bytes, *, drops: bool = False) -> None:
        self.data, self.drops = data, drops

    def __iter__(self) -> Iterator[bytes]:
        yield self.data
        if self.drops:
            raise httpx.ReadError("connection reset")


def test_a_206_for_another_range_is_not_spliced_in() -> None:
    """A 206 must continue exactly where the pass stopped; anything else asks for the whole body."""
    data = blob(100_000)
    asked: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        asked.append(request.headers.get("range"))
        headers = {"etag": '"v1"', "content-length": str(len(data))}
        if len(asked) == 1:
            return httpx.Response(200, headers=headers, stream=_Body(data[:40_000], drops=True))
        if len(asked) == 2:  # claims to be bytes 30000- : would duplicate 10,000 bytes if spliced
            return httpx.Response(
                206, headers=headers | {"content-range": f"bytes 30000-99999/{len(data)}", "content-length": "70000"}, stream=_Body(data[30_000:])
            )
        return httpx.Response(200, headers=headers, stream=_Body(data))

    sink = Sink()
    assert fetcher("http://relay.test", transport=httpx.MockTransport(handler)).fetch("http://cdn.test/x.mp4", sink) == (sha256(data), len(data))
    assert asked == [None, "bytes=40000-", None] and sink.passes == 2
