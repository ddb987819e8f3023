"""Download throughput and memory of the worker's download path, against curl, on loopback.

Starts `k4u simulator` and moto's S3 server as child processes on free loopback ports; the
simulator serves a deterministic blob (`/_sim/media/big/{n}.bin`, 1 GiB by default). In the
same run, `--repeat` times each:

  (a) curl -sS -o <tmpfile> URL                                          MB/s
  (a') curl -sS URL | tee <tmpfile> | sha256sum: curl doing what a store must do (hash as it writes)
  (b) the worker's download code into local storage                      MB/s, peak RSS growth
  (c) the same into S3 (moto)                                            MB/s, peak RSS growth
  (d) with the blob cut at its middle (`?cut_at=`), into local storage   MB/s (resumed, so about (b))

(b)-(d) run `workers.services.download._store_one` (Fetcher.fetch + the store's put_stream,
the heartbeat wrapper included) in a child process built like a worker (`build_runtime`), so
the RSS growth is that process's alone: VmHWM after the download minus VmRSS before it, with
the high-water mark reset through /proc/self/clear_refs first. Every stored object's sha256
(computed by the store as it writes) is checked against the simulator's bytes.

    .venv/bin/python bench/download.py                    # 1 GiB, 3 runs each
    .venv/bin/python bench/download.py --size 256M --repeat 1

Targets reported: worker >= 70 % of curl's MB/s into local storage; RSS growth < 100 MB. It
prints figures; it asserts nothing about speed (exit 1 only on a wrong sha256 or a failed run).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cli.procs import Supervisor, free_port, k4u_cmd, wait_http  # noqa: E402

MB = 1_000_000
UNITS = {"K": 1024, "M": 1024**2, "G": 1024**3}


def size_arg(text: str) -> int:
    text = text.strip().upper().removesuffix("IB").removesuffix("B")
    return int(float(text[:-1]) * UNITS[text[-1]]) if text and text[-1] in UNITS else int(text)


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", type=size_arg, default=1024**3, help="blob size: bytes, or 512M, 1G... (default 1G)")
    p.add_argument("--repeat", type=int, default=3, help="runs of each variant; the table shows the median (default 3)")
    p.add_argument("--no-s3", action="store_true", help="skip (c)")
    p.add_argument("--no-cut", action="store_true", help="skip (d)")
    p.add_argument("--child", choices=["local", "s3"], help=argparse.SUPPRESS)
    p.add_argument("--url", help=argparse.SUPPRESS)
    p.add_argument("--work", help=argparse.SUPPRESS)
    p.add_argument("--endpoint", help=argparse.SUPPRESS)
    return p.parse_args()


# -- the child: one download through the worker's code --------------------------------------------


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def child(args: argparse.Namespace) -> int:
    from models.tables import Asset
    from workers.context import build_runtime
    from workers.db import migrate, session_scope
    from workers.dispatch import RecordingDispatcher
    from workers.services.download import _Heartbeat, _store_one
    from workers.settings import Settings
    from workers.storage import StoredObject

    work = Path(args.work)
    db = f"sqlite:///{work}/k4u.db"
    migrate(db)
    storage = f"file://{work}/objects" if args.child == "local" else "s3://k4u-bench/media"
    # lease_s long enough that the heartbeat (a DB update every lease_s/3) is never due: there is no job row
    settings = Settings(
        database_url=db,
        base_url=args.url.split("/_sim/")[0],
        api_key="sk-bench",
        storage_url=storage,
        s3_endpoint_url=args.endpoint,
        allow_private_urls=True,
        download_max_bytes=2**40,
        download_timeout_s=3600,
        lease_s=3600 * 3,
    )
    rt = build_runtime(settings, RecordingDispatcher())
    store, seen = rt.store, []

    class Recording:  # the store's own result (size, sha256): no asset row exists to receive it
        def put_stream(self, *a: Any, **k: Any) -> StoredObject:
            seen.append(obj := store.put_stream(*a, **k))
            return obj

        def __getattr__(self, name: str) -> Any:
            return getattr(store, name)

    rt.store = Recording()  # type: ignore[assignment]
    asset = Asset(id=1, job_id="bench", index=0, kind="video", source_url=args.url, needs_auth=False)
    with session_scope(rt.engine) as session:  # a worker's pool is warm: keep SQLite's per-connection PRAGMAs out of the timing
        session.get(Asset, 0)
    beat = _Heartbeat(rt, "bench", 0)
    before = _status_kib("VmRSS")
    reset = True
    try:
        Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS
    except OSError:
        reset = False
    t0, cpu0 = time.perf_counter(), os.times()
    _store_one(rt, asset, beat)
    seconds, cpu1 = time.perf_counter() - t0, os.times()
    hwm = _status_kib("VmHWM")
    obj = seen[-1]
    store.delete(obj.key)
    rt.close()
    print(
        json.dumps(
            {
                "seconds": seconds,
                "size": obj.size,
                "sha256": obj.sha256,
                "rss_before_kib": before,
                "hwm_kib": hwm,
                "hwm_reset": reset,
                "puts": len(seen),
                "cpu_s": (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system),
            }
        )
    )
    return 0


# -- the parent ---------------------------------------------------------------------------------------


@contextmanager
def servers(tmp: Path, with_s3: bool) -> Iterator[tuple[str, str | None]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("K4U_")}
    sup = Supervisor()
    sup.install_signals()
    sim_port = free_port()
    try:
        with open(tmp / "simulator.log", "ab") as log:
            sim = subprocess.Popen(
                k4u_cmd("simulator", "--port", str(sim_port)), env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
            sup.adopt("simulator", sim)
            endpoint = None
            if with_s3:
                s3_port = free_port()
                moto = subprocess.Popen(
                    [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(s3_port)],
                    env=env,
                    cwd=ROOT,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
                sup.adopt("moto", moto)
                endpoint = f"http://127.0.0.1:{s3_port}"
        wait_http(f"http://127.0.0.1:{sim_port}/_sim/health", 30, sim)
        if endpoint:
            wait_http(endpoint, 30, moto)
        yield f"http://127.0.0.1:{sim_port}", endpoint
    finally:
        sup.stop()


def s3_env(tmp: Path) -> dict[str, str]:
    return {
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(tmp / "none"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp / "none"),
    }


def run_curl(url: str, tmp: Path) -> dict[str, Any]:
    out = tmp / "curl.bin"
    t0 = time.perf_counter()
    subprocess.run(["curl", "-sS", "-o", str(out), url], check=True)
    seconds = time.perf_counter() - t0
    digest = hashlib.sha256()
    with out.open("rb") as f:
        while block := f.read(4 * 1024 * 1024):
            digest.update(block)
    size = out.stat().st_size
    out.unlink()
    return {"seconds": seconds, "size": size, "sha256": digest.hexdigest()}


def run_curl_hashing(url: str, tmp: Path) -> dict[str, Any]:
    out = tmp / "curl-tee.bin"
    t0 = time.perf_counter()
    done = subprocess.run(f"curl -sS {shlex.quote(url)} | tee {shlex.quote(str(out))} | sha256sum", shell=True, check=True, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    size = out.stat().st_size
    out.unlink()
    return {"seconds": seconds, "size": size, "sha256": done.stdout.split()[0]}


def run_worker(kind: str, url: str, tmp: Path, endpoint: str | None) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix=f"worker-{kind}-", dir=tmp))
    env = {k: v for k, v in os.environ.items() if not k.startswith("K4U_")} | (s3_env(tmp) if kind == "s3" else {})
    cmd = [sys.executable, __file__, "--child", kind, "--url", url, "--work", str(work)] + (["--endpoint", endpoint] if endpoint else [])
    done = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, check=False)
    shutil.rmtree(work, ignore_errors=True)
    if done.returncode != 0:
        raise RuntimeError(f"worker child ({kind}) failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def create_bucket(endpoint: str, tmp: Path) -> None:
    import boto3

    os.environ.update(s3_env(tmp))
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(Bucket="k4u-bench")


def main() -> int:
    args = parse_args()
    if args.child:
        return child(args)
    from simulator.media import big_sha256

    want = big_sha256(args.size)
    tmp = Path(tempfile.mkdtemp(prefix="k4u-bench-download-"))
    rows: dict[str, list[dict[str, Any]]] = {}
    ok = True
    with ExitStack() as stack:
        sim_url, endpoint = stack.enter_context(servers(tmp, with_s3=not args.no_s3))
        url = f"{sim_url}/_sim/media/big/{args.size}.bin"
        if endpoint:
            create_bucket(endpoint, tmp)
        ranged = httpx.get(url, headers={"range": "bytes=0-0"}, timeout=30).status_code == 206
        variants: list[tuple[str, Any]] = [
            ("curl", lambda: run_curl(url, tmp)),
            ("curl | tee | sha256sum", lambda: run_curl_hashing(url, tmp)),
            ("worker -> local", lambda: run_worker("local", url, tmp, None)),
        ]
        if endpoint:
            variants.append(("worker -> S3 (moto)", lambda: run_worker("s3", url, tmp, endpoint)))
        if ranged and not args.no_cut:
            cut_url = f"{url}?cut_at={args.size // 2}"
            variants.append(("worker -> local, cut at 1/2", lambda: run_worker("local", cut_url, tmp, None)))
        for i in range(args.repeat):
            for name, run in variants:
                r = run()
                rows.setdefault(name, []).append(r)
                good = r["sha256"] == want and r["size"] == args.size
                ok &= good
                growth = (r["hwm_kib"] - r["rss_before_kib"]) / 1024 if "hwm_kib" in r else None
                print(
                    f"run {i + 1}: {name:<28} {args.size / MB / r['seconds']:8.1f} MB/s"
                    + (f"  RSS +{growth:.1f} MiB" if growth is not None else "")
                    + ("" if good else "  SHA256 MISMATCH"),
                    flush=True,
                )
    shutil.rmtree(tmp, ignore_errors=True)
    print(f"\nblob {args.size} bytes ({args.size / 1024**2:.0f} MiB) from the simulator on loopback; median of {args.repeat} run(s)")
    print(f"{'variant':<30}{'MB/s':>9}{'best MB/s':>11}{'x curl':>8}{'RSS growth MiB':>16}{'CPU s/GiB':>11}{'puts':>6}")
    med = {name: args.size / MB / statistics.median(r["seconds"] for r in rs) for name, rs in rows.items()}
    for name, rs in rows.items():
        best = args.size / MB / min(r["seconds"] for r in rs)
        growth = max((r["hwm_kib"] - r["rss_before_kib"]) / 1024 for r in rs) if "hwm_kib" in rs[0] else None
        puts = max(r.get("puts", 1) for r in rs)
        cpu = statistics.median(r["cpu_s"] for r in rs) / (args.size / 1024**3) if "cpu_s" in rs[0] else None
        print(
            f"{name:<30}{med[name]:>9.1f}{best:>11.1f}{med[name] / med['curl']:>8.2f}"
            + (f"{growth:>16.1f}" if growth is not None else f"{'-':>16}")
            + (f"{cpu:>11.2f}" if cpu is not None else f"{'-':>11}")
            + f"{puts:>6}"
        )
    local_ratio = med["worker -> local"] / med["curl"]
    growths = [(r["hwm_kib"] - r["rss_before_kib"]) / 1024 for rs in rows.values() for r in rs if "hwm_kib" in r]
    print(
        f"target worker -> local >= 70% of curl: {local_ratio:.0%} {'met' if local_ratio >= 0.7 else 'MISSED'} "
        f"({med['worker -> local'] / med['curl | tee | sha256sum']:.0%} of curl | tee | sha256sum)"
    )
    print(f"target RSS growth < 100 MB: max {max(growths):.1f} MiB {'met' if max(growths) * 1024**2 < 100 * MB else 'MISSED'}")
    print("sha256 of every stored object matches the simulator's bytes:", "yes" if ok else "NO")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
