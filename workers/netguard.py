"""Refuse URLs that point into our own network (SSRF guard for downloads and callback URLs).

Every address a host resolves to must be public; each redirect hop is checked again by the
caller. `allow_private=True` (K4U_ALLOW_PRIVATE_URLS, dev and tests only) lifts the check.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from models.errors import UnsafeURL


def check_url(url: str, *, allow_private: bool, resolve: bool = True) -> None:
    """Raise UnsafeURL unless url is http(s) to a public address (or private ones are allowed)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise UnsafeURL(f"only http and https URLs are allowed, not {parts.scheme or 'none'}")
    host = parts.hostname
    if not host:
        raise UnsafeURL("URL has no host")
    if allow_private:
        return
    if parts.port not in (None, 80, 443):
        raise UnsafeURL(f"port {parts.port} is not allowed (80 and 443 only)")
    for addr in _addresses(host, resolve):
        if not _is_public(addr):
            raise UnsafeURL(f"{host} resolves to a non-public address")


def _addresses(host: str, resolve: bool) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
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


def _is_public(addr: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return addr.is_global and not addr.is_multicast
