"""Start moto's S3-compatible server on loopback for integration tests.

The server runs in a daemon thread on 127.0.0.1 and a free port chosen by the OS. Nothing
global is touched: callers pass the endpoint URL to their clients and set credentials
themselves (tests use monkeypatch). Moto keeps its state per process, so tests should use
fresh bucket names rather than rely on an empty server.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from moto.server import ThreadedMotoServer


def start_moto_server() -> tuple[str, Callable[[], None]]:
    """Start the server; return its endpoint URL and a function that stops it."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    return f"http://{host}:{port}", server.stop


@contextmanager
def moto_server() -> Iterator[str]:
    """`with moto_server() as endpoint_url:` — the server stops when the block ends."""
    endpoint_url, stop = start_moto_server()
    try:
        yield endpoint_url
    finally:
        stop()
