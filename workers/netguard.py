"""Refuse URLs that point into our own network (SSRF guard for downloads and callback URLs).

`check_url` is the early, readable refusal (scheme, port, literal addresses, local names).
`GuardedTransport` is the one that holds: its network backend resolves the host once, checks
every address it got and connects to one of those checked addresses, so a DNS-rebinding host has
no window between check and connect (TLS SNI and the Host header keep the original name).
Addresses embedding IPv4 (IPv4-mapped, IPv4-compatible, NAT64, 6to4) are judged by the IPv4
address inside. `allow_private=True` (K4U_ALLOW_PRIVATE_URLS, dev and tests only) lifts both.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Collection, Iterable, Sequence
from urllib.parse import urlsplit

import httpcore
import httpx

from models.errors import UnsafeURL

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Sequence[str]]  # (host, port) -> addresses, as strings

ALLOWED_PORTS = frozenset({80, 443})
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")  # RFC 8215 local-use translation: never public


def check_url(url: str, *, allow_private: bool, resolve: bool = True) -> None:
    """Raise UnsafeURL unless url is http(s) to a public address (or private ones are allowed)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise UnsafeURL(f"only http and https URLs are allowed, not {parts.scheme or 'none'}")
    host = parts.hostname
    if not host:
        raise UnsafeURL("URL has no host")
    try:
        port = parts.port
    except ValueError:
        raise UnsafeURL("URL has an invalid port (1-65535)") from None
    if port == 0:
        raise UnsafeURL("URL has an invalid port (1-65535)")
    if allow_private:
        return
    if port not in (None, *ALLOWED_PORTS):
        raise UnsafeURL(f"port {port} is not allowed (80 and 443 only)")
    for addr in _addresses(host, resolve):
        if not is_public(addr):
            raise UnsafeURL(f"{host} resolves to a non-public address")


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 (IPv4-mapped forms too) and localhost; anything else (0.0.0.0 included) is reachable from outside."""
    name = host.strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        addr = ipaddress.ip_address(name)
    except ValueError:
        return False
    mapped = addr.ipv4_mapped if isinstance(addr, ipaddress.IPv6Address) else None
    return (mapped or addr).is_loopback


def is_public(addr: IPAddress) -> bool:
    """A globally routable unicast address, judged by the IPv4 address an IPv6 one embeds."""
    if isinstance(addr, ipaddress.IPv6Address):
        if addr in _NAT64_LOCAL:
            return False
        inner = embedded_ipv4(addr)
        if inner is not None:
            addr = inner
    return addr.is_global and not addr.is_multicast


def embedded_ipv4(addr: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address inside an IPv4-mapped, IPv4-compatible, NAT64 or 6to4 address."""
    if addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    if addr.sixtofour is not None:
        return addr.sixtofour
    if addr in _NAT64 or int(addr) >> 32 == 0:  # 64:ff9b::a.b.c.d, or ::a.b.c.d (also :: and ::1)
        return ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF)
    return None


def system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


class GuardedBackend(httpcore.SyncBackend):
    """A network backend that resolves once, refuses if any address is not public, and connects
    to a checked address. `is_allowed` and `ports` exist so tests can stand in for the Internet."""

    def __init__(
        self, *, resolver: Resolver | None = None, is_allowed: Callable[[IPAddress], bool] = is_public, ports: Collection[int] = ALLOWED_PORTS
    ) -> None:
        self._resolve = resolver or system_resolver
        self._is_allowed = is_allowed
        self._ports = frozenset(ports)

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        if port not in self._ports:
            raise UnsafeURL(f"port {port} is not allowed ({', '.join(map(str, sorted(self._ports)))} only)")
        addrs = self.checked_addresses(host, port)
        last: Exception | None = None
        for addr in addrs:
            try:
                return super().connect_tcp(str(addr), port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        assert last is not None
        raise last

    def checked_addresses(self, host: str, port: int) -> list[IPAddress]:
        """Every address of host, each one allowed; UnsafeURL if any is not."""
        try:
            addrs = [ipaddress.ip_address(host.strip("[]"))]
        except ValueError:
            try:
                raw = self._resolve(host, port)
            except OSError as exc:  # a DNS failure is a network error (retryable), not an unsafe URL
                raise httpcore.ConnectError(f"cannot resolve {host}") from exc
            addrs = list(dict.fromkeys(ipaddress.ip_address(a.split("%", 1)[0]) for a in raw))
        if not addrs:
            raise httpcore.ConnectError(f"{host} has no address")
        for addr in addrs:
            if not self._is_allowed(addr):
                raise UnsafeURL(f"{host} resolves to a non-public address")
        return addrs


class GuardedTransport(httpx.HTTPTransport):
    """httpx transport whose connections only ever reach checked public addresses (no env proxy)."""

    def __init__(
        self,
        *,
        resolver: Resolver | None = None,
        is_allowed: Callable[[IPAddress], bool] = is_public,
        ports: Collection[int] = ALLOWED_PORTS,
        verify: bool = True,
    ) -> None:
        super().__init__(verify=verify)
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(verify=verify),
            max_connections=100,
            max_keepalive_connections=20,
            keepalive_expiry=5.0,
            network_backend=GuardedBackend(resolver=resolver, is_allowed=is_allowed, ports=ports),
        )


def _addresses(host: str, resolve: bool) -> list[IPAddress]:
    try:
        return [ipaddress.ip_address(host.strip("[]"))]
    except ValueError:
        pass
    if host.lower() in ("localhost",) or host.lower().endswith((".localhost", ".local", ".internal")):
        raise UnsafeURL(f"{host} is a local name")
    if not resolve:
        return []
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except OSError as exc:
        raise UnsafeURL(f"cannot resolve {host}") from exc
    return [ipaddress.ip_address(info[4][0]) for info in infos]
