"""`k4u dev` SIGKILLed (an OOM kill): every process it started, grandchildren included, dies with it,
and a new `k4u dev` on the same port and data directory starts and finishes the jobs left in flight."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import wait_http

pytestmark = pytest.mark.e2e


def _stat(pid: int) -> tuple[int, str, int] | None:
    """(parent pid, state, start time) from /proc/<pid>/stat, or None once the process is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = raw.rsplit(")", 1)[1].split()  # the command name may hold spaces and parentheses
    return int(fields[1]), fields[0], int(fields[19])


def descendants(root: int) -> dict[int, int]:
    """Every live process below `root`, as pid -> start time (so a reused pid is not mistaken)."""
    parents: dict[int, list[int]] = {}
    starts: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (st := _stat(int(entry))) is not None and st[1] != "Z":
            parents.setdefault(st[0], []).append(int(entry))
            starts[int(entry)] = st[2]
    found: dict[int, int] = {}
    todo = [root]
    while todo:
        for child in parents.get(todo.pop(), []):
            found[child] = starts[child]
            todo.append(child)
    return found


def still_alive(procs: dict[int, int]) -> list[int]:
    return [pid for pid, start in procs.items() if (st := _stat(pid)) is not None and st[1] != "Z" and st[2] == start]


def test_sigkilled_dev_leaves_nothing_and_a_new_one_finishes_its_jobs(stack_factory) -> None:  # type: ignore[no-untyped-def]
    # K4U_REDIS_URL empty: `k4u dev` bundles its own redis-server, which must die too (and with it
    # every queued message: the new stack re-derives all work from the database).
    stack = stack_factory(dev=True, K4U_REDIS_URL="", K4U_LEASE_S="3", K4U_DOWNLOAD_TIMEOUT_S="10")
    port = int(stack.api.rsplit(":", 1)[1])
    stack.sim_admin("/_sim/config", {"run_s": 3.0})
    with stack.client() as c:
        ids = [
            c.post("/v1/jobs", json={"provider": "kling", "operation": "text2video", "input": {"prompt": f"in flight {i} [sim:run={1 + i % 4}]"}})
            .raise_for_status()
            .json()["id"]
            for i in range(8)
        ]
    deadline = time.monotonic() + 30
    while not any(stack.wait_job(i, 1, until=lambda j: True)["status"] == "running" for i in ids):
        assert time.monotonic() < deadline, stack.logs()[-5000:]
        time.sleep(0.2)

    with stack.client() as c:
        before = [c.get(f"/v1/jobs/{i}").json()["status"] for i in ids]
    assert before.count("succeeded") < len(ids), before  # some are still in flight
    dev = stack.procs.pop("dev")
    tree = descendants(dev.pid)
    # bundled redis, three workers (the engine with its 2 prefork children), beat, API
    assert len(tree) >= 8, tree
    os.kill(dev.pid, signal.SIGKILL)  # the supervisor only, as the OOM killer would
    dev.wait(10)

    deadline = time.monotonic() + 15
    while alive := still_alive(tree):
        assert time.monotonic() < deadline, f"outlived k4u dev: {alive}\n" + "\n".join(
            Path(f"/proc/{p}/cmdline").read_text().replace("\0", " ") for p in alive if Path(f"/proc/{p}").exists()
        )
        time.sleep(0.2)
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{stack.api}/healthz")

    new_dev = stack.start("dev-again", "dev", "--port", str(port))
    wait_http(f"{stack.api}/healthz", new_dev, stack.tmp, timeout_s=90)
    jobs = [stack.wait_job(i, 120) for i in ids]
    assert [j["status"] for j in jobs] == ["succeeded"] * len(ids), [(j["id"], j["status"], j["error"]) for j in jobs]
    # Nothing was paid twice: each job's task was found again by its external id, not resent.
    assert stack.sim_admin("/_sim/stats")["creates"] == len(ids)


def test_a_killed_worker_of_dev_is_started_again_and_jobs_finish(stack_factory) -> None:  # type: ignore[no-untyped-def]
    stack = stack_factory(dev=True, K4U_LEASE_S="3")
    dev = stack.procs["dev"]

    def engine_worker() -> int:
        for pid in descendants(dev.pid):
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0") if Path(f"/proc/{pid}").exists() else []
            if b"--role" in cmd and b"engine" in cmd and _stat(pid) is not None and _stat(pid)[0] == dev.pid:  # type: ignore[index]
                return pid
        raise AssertionError("no engine worker under k4u dev")

    first = engine_worker()
    os.kill(first, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while True:
        try:
            if engine_worker() != first:
                break
        except AssertionError:
            pass
        assert time.monotonic() < deadline, stack.logs()[-3000:]
        time.sleep(0.2)
    assert dev.poll() is None, "k4u dev must keep running"
    with stack.client() as c:
        job_id = (
            c.post("/v1/jobs", json={"provider": "kling", "operation": "text2video", "input": {"prompt": "after a worker crash"}})
            .raise_for_status()
            .json()["id"]
        )
    assert stack.wait_job(job_id, 90)["status"] == "succeeded"
