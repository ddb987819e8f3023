"""The SSRF guard for result downloads and callback URLs."""

from __future__ import annotations

import ipaddress
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from models.errors import UnsafeURL
from workers.netguard import GuardedTransport, check_url, is_public


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/x",
        "http://localhost:8080/",
        "http://10.0.0.5/a.mp4",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://100.64.1.1/",
        "http://192.168.1.1/",
        "file:///etc/passwd",
        "gopher://x",
        "http://8.8.8.8:6379/",
        "http://printer.local/",
    ],
)
def test_private_and_odd_urls_are_refused(url: str) -> None:
    with pytest.raises(UnsafeURL):
        check_url(url, allow_private=False)


def test_public_ip_is_allowed_and_private_allowed_in_dev() -> None:
    check_url("https://8.8.8.8/video.mp4", allow_private=False)
    check_url("http://127.0.0.1:9100/_sim/media/x.mp4", allow_private=True)
    with pytest.raises(UnsafeURL):
        check_url("ftp://127.0.0.1/", allow_private=True)


# -- address rules: IPv6 forms that embed an IPv4 address are judged by that address ---------


@pytest.mark.parametrize(
    "addr",
    [
        "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
        "64:ff9b::a00:5",  # NAT64 of 10.0.0.5
        "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254 (cloud metadata)
        "64:ff9b:1::a00:5",  # local-use NAT64 (RFC 8215)
        "2002:7f00:1::",  # 6to4 of 127.0.0.1
        "2002:c0a8:101::1",  # 6to4 of 192.168.1.1
        "::7f00:1",  # IPv4-compatible 127.0.0.1
        "::a00:5",  # IPv4-compatible 10.0.0.5
        "::ffff:10.0.0.5",
        "::ffff:127.0.0.1",
        "::",
        "::1",
        "fe80::1",
        "fc00::1",
        "ff02::1",
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.0.1",
        "100.64.0.1",
        "169.254.1.1",
        "0.0.0.0",
        "224.0.0.1",
    ],
)
def test_private_addresses_are_not_public(addr: str) -> None:
    assert not is_public(ipaddress.ip_address(addr))


@pytest.mark.parametrize("addr", ["8.8.8.8", "64:ff9b::808:808", "2002:808:808::1", "::ffff:8.8.8.8", "2606:4700::1111"])
def test_public_addresses_are_public(addr: str) -> None:
    assert is_public(ipaddress.ip_address(addr))


@pytest.mark.parametrize("url", ["http://[64:ff9b::7f00:1]/x", "http://[2002:7f00:1::]/x", "http://[::7f00:1]/x"])
def test_urls_with_embedded_loopback_are_refused(url: str) -> None:
    with pytest.raises(UnsafeURL):
        check_url(url, allow_private=False)


@pytest.mark.parametrize("allow_private", [False, True])
def test_an_out_of_range_port_is_refused_even_in_dev(allow_private: bool) -> None:
    with pytest.raises(UnsafeURL, match="invalid port"):
        check_url("http://cdn.example:99999/x.mp4", allow_private=allow_private)


# -- the transport: resolve once, check every address, connect to a checked one ------------


def _client(resolver, **kw) -> httpx.Client:  # type: ignore[no-untyped-def]
    return httpx.Client(transport=GuardedTransport(resolver=resolver, **kw), timeout=5)


@pytest.mark.parametrize("answer", [["127.0.0.1"], ["10.0.0.7"], ["8.8.8.8", "192.168.1.20"], ["64:ff9b::7f00:1"], ["::1"]])
def test_a_host_resolving_to_a_private_address_is_refused_at_connect_time(answer: list[str]) -> None:
    """No check_url in front: the transport alone refuses, before any connection is made."""
    asked: list[tuple[str, int]] = []

    def resolver(host: str, port: int) -> list[str]:
        asked.append((host, port))
        return answer

    with _client(resolver) as client, pytest.raises(UnsafeURL, match="non-public"):
        client.get("https://cdn.rebind.example/video.mp4")
    assert asked == [("cdn.rebind.example", 443)]


def test_the_transport_refuses_ports_other_than_80_and_443() -> None:
    with _client(lambda h, p: ["8.8.8.8"]) as client, pytest.raises(UnsafeURL, match="port 6379"):
        client.get("http://cdn.example:6379/")


def test_a_dns_failure_is_a_network_error_not_an_unsafe_url() -> None:
    def resolver(host: str, port: int) -> list[str]:
        raise socket.gaierror(socket.EAI_AGAIN, "temporary failure")

    with _client(resolver) as client, pytest.raises(httpx.ConnectError):
        client.get("http://cdn.example/x")


def test_the_transport_connects_to_the_address_it_checked_and_keeps_the_host_name() -> None:
    """A rebinding resolver answers a checked address first and a forbidden one afterwards:
    the connection is made to the first answer, and the host is resolved only once."""
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.headers["host"])
            self.send_response(200)
            self.send_header("content-length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *_: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    port = server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    answers = [["127.0.0.1"], ["10.9.9.9"]]
    asked: list[str] = []

    def rebinding(host: str, port: int) -> list[str]:
        asked.append(host)
        return answers[min(len(asked), 2) - 1]

    loopback_only = {ipaddress.ip_address("127.0.0.1")}
    try:
        with _client(rebinding, is_allowed=loopback_only.__contains__, ports={port}) as client:
            r = client.get(f"http://media.rebind.example:{port}/x")
            assert r.status_code == 200 and r.content == b"ok"
        assert asked == ["media.rebind.example"] and seen == [f"media.rebind.example:{port}"]
        with _client(rebinding, is_allowed=loopback_only.__contains__, ports={port}) as client, pytest.raises(UnsafeURL):
            client.get(f"http://media.rebind.example:{port}/x")  # the second answer (10.9.9.9) is refused
        assert len(seen) == 1, "nothing reached the server after the refusal"
    finally:
        server.shutdown()
        server.server_close()


def test_the_fetcher_connects_through_the_guard_when_private_urls_are_not_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    from workers import netguard
    from workers.relay import Fetcher

    asked: list[str] = []

    def resolver(host: str, port: int) -> list[str]:
        asked.append(host)
        return ["169.254.169.254"]

    monkeypatch.setattr(netguard, "system_resolver", resolver)
    fetcher = Fetcher(allow_private=False, timeout_s=10, relay_base_url="https://relay.example", api_key=None)
    try:
        with pytest.raises(UnsafeURL, match="non-public"), fetcher.open("https://cdn.rebind.example/video.mp4"):
            pass
    finally:
        fetcher.close()
    assert asked == ["cdn.rebind.example"]
