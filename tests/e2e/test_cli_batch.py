"""End to end: `k4u batch` against `k4u dev` + the simulator, interrupted halfway (SIGINT, then
SIGKILL) and run again: no job created twice (the simulator's paid creates and the API's job
count), a complete results file, and the stored files copied out under readable names."""

from __future__ import annotations

import csv
import hashlib
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import TOKEN, Stack

pytestmark = pytest.mark.e2e
N = 20


def start(stack: Stack, *args: str, name: str) -> tuple[subprocess.Popen[bytes], Path]:
    log = stack.tmp / f"cli-{name}.log"
    with log.open("ab") as f:
        # Ctrl-C as a terminal delivers it: a test run started in the background (`cmd &` in a
        # script) ignores SIGINT, the child would inherit that, and Python would keep ignoring it.
        proc = subprocess.Popen(
            [sys.executable, "-m", "cli", "batch", *args],
            env=stack.env,
            stdout=f,
            stderr=subprocess.STDOUT,
            cwd=stack.tmp,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
    return proc, log


def run(stack: Stack, *args: str, name: str, timeout_s: float = 120) -> tuple[int, str]:
    proc, log = start(stack, *args, name=name)
    return proc.wait(timeout_s), log.read_text()


def jobs_in_api(stack: Stack) -> list[dict]:  # type: ignore[type-arg]
    with stack.client() as c:
        return c.get("/v1/jobs", params={"limit": 500}).raise_for_status().json()["items"]  # type: ignore[no-any-return]


def wait_for(cond, timeout_s: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while not cond():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def check_results(rows: list[dict], stack: Stack, download: Path, *, local: bool) -> None:  # type: ignore[type-arg]
    mp4 = stack.sim_admin("/_sim/media-sha256")["mp4"]
    assert [r["line"] for r in rows] == list(range(1 + local, N + 1 + local))
    assert len({r["job_id"] for r in rows}) == N
    for r in rows:
        assert r["status"] == "succeeded" and r["sha256"] == [mp4], r
        (where,) = r["files"]
        if local:
            assert Path(where).is_file() and sha256(Path(where)) == mp4
        else:
            assert where.startswith(stack.api) and where.endswith(f"/v1/jobs/{r['job_id']}/assets/0")
        (copied,) = r["downloaded"]
        assert Path(copied) == download / f"{r['line']}-kling-text2video-0.mp4" and sha256(Path(copied)) == mp4


def test_jsonl_batch_interrupted_with_ctrl_c_resumes_without_duplicates(stack_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    stack = stack_factory(dev=True)
    stack.sim_admin("/_sim/config", {"queue_s": 0.5, "run_s": 6.0})
    file = tmp_path / "jobs.jsonl"
    file.write_text(
        "".join(
            json.dumps({"provider": "kling", "operation": "text2video", "input": {"prompt": f"fox {i}"}, "metadata": {"row": i}}) + "\n"
            for i in range(1, N + 1)
        )
    )
    results, download = tmp_path / "out" / "results.jsonl", tmp_path / "files"
    api = ("--api", stack.api, "--token", TOKEN, "--results", str(results), "--download", str(download))

    bad = tmp_path / "bad.jsonl"
    bad.write_text(file.read_text() + '{"provider": "kling", "operation": "text2video", "input": {"prompt": "x", "duration": "7"}}\n')
    code, out = run(stack, str(bad), *api, name="bad")
    assert code == 1 and f"line {N + 1}: input.duration" in out and "nothing was created" in out, out
    assert jobs_in_api(stack) == []

    proc, log = start(stack, str(file), *api, name="first")
    wait_for(lambda: len(jobs_in_api(stack)) == N, 60, "the batch's jobs were not created")
    assert any(j["status"] not in ("succeeded", "failed") for j in jobs_in_api(stack)), "too late to interrupt"
    proc.send_signal(signal.SIGINT)
    assert proc.wait(30) == 130, log.read_text()
    assert "run `k4u batch" in log.read_text() and "Traceback" not in log.read_text()
    rows = [json.loads(line) for line in results.read_text().splitlines()]  # whole and readable after Ctrl-C
    assert len(rows) == N and all(r["job_id"] for r in rows)
    assert not list(results.parent.glob(".results.jsonl.*")), "no temp file left behind"

    code, out = run(stack, str(file), *api, name="second")
    assert code == 0, out
    rows = [json.loads(line) for line in results.read_text().splitlines()]
    check_results(rows, stack, download, local=False)
    assert len(jobs_in_api(stack)) == N and stack.sim_admin("/_sim/stats")["creates"] == N
    code, out = run(stack, str(file), *api, name="third")  # all done: nothing new, same results
    assert code == 0 and len(jobs_in_api(stack)) == N and stack.sim_admin("/_sim/stats")["creates"] == N, out
    assert [json.loads(line)["job_id"] for line in results.read_text().splitlines()] == [r["job_id"] for r in rows]


def test_csv_batch_on_the_local_database_killed_and_resumed(stack_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    stack = stack_factory(dev=True)
    stack.sim_admin("/_sim/config", {"queue_s": 0.5, "run_s": 4.0})
    file = tmp_path / "jobs.csv"
    with file.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["provider", "operation", "input.prompt", "input.duration", "metadata.sheet_row"])
        w.writerows([["kling", "text2video", f"fox, number {i}", "5", str(i)] for i in range(1, N + 1)])
    results, download = tmp_path / "results.csv", tmp_path / "files"
    args = (str(file), "--results", str(results), "--download", str(download))  # no --api: the database of `k4u dev`

    proc, log = start(stack, *args, name="first")
    wait_for(lambda: "batch(es)" in log.read_text() or proc.poll() is not None, 60, "no batch created")
    proc.kill()  # SIGKILL: no chance to clean up
    proc.wait(10)
    code, out = run(stack, *args, name="second")
    assert code == 0, out
    with results.open(newline="") as f:
        rows = [dict(r) for r in csv.DictReader(f)]
    for r in rows:
        r["line"] = int(r["line"])  # type: ignore[assignment]
        for key in ("files", "sha256", "downloaded"):
            r[key] = r[key].split(" ") if r[key] else []  # type: ignore[assignment]
    check_results(rows, stack, download, local=True)
    jobs = jobs_in_api(stack)
    assert len(jobs) == N and stack.sim_admin("/_sim/stats")["creates"] == N
    assert sorted(j["metadata"]["sheet_row"] for j in jobs) == sorted(str(i) for i in range(1, N + 1))
    assert {j["input"]["prompt"] for j in jobs} == {f"fox, number {i}" for i in range(1, N + 1)}
