"""`k4u demo`: the quick-start job. Starts the simulator and the dev stack on free ports,
submits Kling jobs (text2video, image2video, image), waits, and prints what was stored,
checking each file's sha256 against the bytes the simulator served."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from cli.procs import Supervisor, free_port, k4u_cmd, wait_http
from workers.settings import get_settings

console = Console(width=max(Console().width, 170))
TERMINAL = {"succeeded", "failed", "cancelled"}

REQUESTS = [
    {"provider": "kling", "operation": "text2video", "input": {"prompt": "a red fox running through fresh snow, golden hour", "duration": "5"}},
    {"provider": "kling", "operation": "image2video", "input": {"image": "https://example.com/first-frame.png", "prompt": "slow zoom in"}},
    {"provider": "kling", "operation": "image", "input": {"prompt": "a lighthouse at dawn, watercolor", "n": 2}},
]


def run_demo(*, extra: int, timeout_s: float) -> int:
    settings = get_settings()
    sim_port, api_port = free_port(), free_port()
    sim_url, api_url = f"http://127.0.0.1:{sim_port}", f"http://127.0.0.1:{api_port}"
    env = dict(os.environ)
    env.update(
        {
            "K4U_BASE_URL": sim_url,
            "K4U_API_KEY": env.get("K4U_DEMO_KEY", "sk-demo-simulator"),
            "K4U_ALLOW_PRIVATE_URLS": "true",
            "K4U_PUBLIC_URL": api_url,
            "K4U_POLL_EXPECTED_S": "3",
            "K4U_POLL_MIN_INTERVAL_S": "1",
        }
    )
    sup = Supervisor()
    sup.install_signals()
    started = time.monotonic()
    try:
        sim = sup.start("simulator", k4u_cmd("simulator", "--port", str(sim_port)), env, quiet=True)
        wait_http(f"{sim_url}/_sim/stats", 30, sim)
        dev = sup.start("dev", k4u_cmd("dev", "--port", str(api_port), "--concurrency", "2"), env, quiet=True)
        console.print(f"simulator {sim_url}, stack {api_url} (starting...)")
        wait_http(f"{api_url}/healthz", 90, dev)
        bodies = REQUESTS + [{"provider": "kling", "operation": "text2video", "input": {"prompt": f"demo clip {i}"}} for i in range(extra)]
        with httpx.Client(base_url=api_url, timeout=10) as client:
            ids = [client.post("/v1/jobs", json=b).raise_for_status().json()["id"] for b in bodies]
            console.print(f"submitted {len(ids)} jobs; waiting for results...")
            jobs = _wait(client, ids, timeout_s)
        expected = httpx.get(f"{sim_url}/_sim/media-sha256", timeout=5).json()
    except KeyboardInterrupt:
        return 130
    except (RuntimeError, httpx.HTTPError) as exc:
        console.print(f"[red]demo failed: {exc}[/red]")
        return 1
    finally:
        sup.stop()
    wall = time.monotonic() - started
    return _report(jobs, expected, settings.storage_url, wall)


def _wait(client: httpx.Client, ids: list[str], timeout_s: float) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout_s
    while True:
        jobs = [client.get(f"/v1/jobs/{i}").raise_for_status().json() for i in ids]
        if all(j["status"] in TERMINAL for j in jobs) or time.monotonic() > deadline:
            return jobs
        time.sleep(0.5)


def _report(jobs: list[dict[str, Any]], expected: dict[str, str], storage_url: str, wall_s: float) -> int:
    table = Table(title="Key4U Jobs demo: Kling through the built-in simulator")
    for col in ("job id", "operation", "status", "seconds", "stored file", "size", "sha256", "match"):
        table.add_column(col, no_wrap=True)
    root = Path(storage_url.removeprefix("file://")).resolve() if storage_url.startswith("file://") else None
    all_ok = True
    for j in jobs:
        secs = _seconds(j)
        if not j["assets"]:
            all_ok = False
            table.add_row(j["id"], j["operation"], _status(j), secs, "-", "-", "-", "-")
        for a in j["assets"]:
            want = expected.get("mp4" if a["kind"] == "video" else "png")
            ok = a["sha256"] is not None and a["sha256"] == want
            all_ok &= ok and j["status"] == "succeeded"
            stored = f"{j['id']}/{a['index']}{'.mp4' if a['kind'] == 'video' else '.png'}" if root else str(a["url"])
            table.add_row(j["id"], j["operation"], _status(j), secs, stored, str(a["size"]), (a["sha256"] or "-")[:12], "yes" if ok else "NO")
    console.print(table)
    console.print(f"stored files are under {root or storage_url}; sha256 checked against the bytes the simulator served")
    console.print(f"wall time {wall_s:.1f}s")
    if not all_ok:
        console.print("[red]some jobs did not succeed with matching files[/red]")
    return 0 if all_ok else 1


def _status(j: dict[str, Any]) -> str:
    return j["status"] if not j.get("error") else f"{j['status']} ({j['error']['code']})"


def _seconds(j: dict[str, Any]) -> str:
    from datetime import datetime

    if not j.get("finished_at"):
        return "-"
    return f"{(datetime.fromisoformat(j['finished_at']) - datetime.fromisoformat(j['created_at'])).total_seconds():.1f}"
