"""Bounds for HTTP calls to third parties (callback receivers, result CDNs): a total wall-clock
deadline and a cap on what is read.

httpx only has per-operation timeouts, so a peer that trickles one byte every few seconds never
trips them. `CallDeadline` collects the sockets its calls open (httpcore's `trace` extension) and
shuts them down when the deadline passes, which ends any read or write in progress at once;
the caller then sees an httpx.TransportError and `expired` tells why. No HTTP logic lives here.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from types import TracebackType
from typing import Any

import httpx


class CallDeadline:
    """`with CallDeadline(15) as cut: client.post(..., extensions=cut.extensions)`: cut after 15 s."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.expired = False
        self._socks: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None
        self._ends_at = 0.0

    def __enter__(self) -> CallDeadline:
        self._ends_at = time.monotonic() + self.seconds
        self._timer = threading.Timer(self.seconds, self._cut)
        self._timer.daemon = True
        self._timer.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
        with self._lock:
            socks, self._socks = self._socks, []
        for sock in socks:
            sock.close()

    @property
    def extensions(self) -> dict[str, Any]:
        """Request extensions that register the call's connections with this deadline."""
        return {"trace": self._trace}

    def remaining(self) -> float:
        return max(0.0, self._ends_at - time.monotonic())

    def _trace(self, event: str, info: dict[str, Any]) -> None:
        if not event.endswith(".connect_tcp.complete"):
            return
        stream = info.get("return_value")
        sock = stream.get_extra_info("socket") if stream is not None else None
        if not isinstance(sock, socket.socket):
            return
        dup = sock.dup()  # survives TLS wrapping (which detaches the original object); same connection
        with self._lock:
            self._socks.append(dup)
            if self.expired:
                _shutdown(dup)

    def _cut(self) -> None:
        with self._lock:
            self.expired = True
            for sock in self._socks:
                _shutdown(sock)


def _shutdown(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # already closed by its owner
        sock.shutdown(socket.SHUT_RDWR)


def read_capped(response: httpx.Response, limit: int) -> int:
    """Read at most about `limit` bytes of a streamed body (undecoded: no decompression bomb),
    then stop. Returns the number of bytes read."""
    n = 0
    for chunk in response.iter_raw():
        n += len(chunk)
        if n >= limit:
            break
    return n
