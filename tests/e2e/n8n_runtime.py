"""A real n8n for the end-to-end test of the community node (integrations/n8n): installed from npm
once into a cache directory outside the repository, our package built and packed with npm, and
n8n started on loopback in its own process group so that it and its children die with the test."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import subprocess
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cli.procs import free_port, wait_http

ROOT = Path(__file__).resolve().parents[2]
PACKAGE_DIR = ROOT / "integrations" / "n8n"
# The newest n8n 1.123.x whose dependencies install on Node 20: from 1.123.66 on, n8n depends on
# @n8n/expression-runtime, which needs isolated-vm 6 (Node >= 22) and fails to compile here.
N8N_VERSION = os.environ.get("K4U_N8N_VERSION", "1.123.50")
CACHE = Path(os.environ.get("K4U_N8N_CACHE", Path.home() / ".cache" / "k4u-n8n"))
# n8n-nodes-base asks for xlsx as a tarball on cdn.sheetjs.com; hosts that reach only the npm
# registry cannot fetch it, so the registry's xlsx stands in (only the Spreadsheet node uses it).
RUNTIME_PACKAGE = {"name": "k4u-n8n-runtime", "private": True, "overrides": {"xlsx": "0.18.5"}}


def tools_missing() -> str | None:
    missing = [t for t in ("node", "npm") if shutil.which(t) is None]
    return f"{' and '.join(missing)} not on PATH: the n8n end-to-end test needs Node.js 20+ and npm" if missing else None


def run(cmd: list[str], cwd: Path, log: Path, env: dict[str, str] | None = None, timeout_s: float = 300) -> str:
    """Run a command, its output appended to `log`; a failure shows the output's tail."""
    started = time.monotonic()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout_s, check=False)
    with log.open("a") as f:
        f.write(f"$ {' '.join(cmd)}  ({time.monotonic() - started:.1f}s, exit {proc.returncode})\n{proc.stdout}{proc.stderr}\n")
    if proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{(proc.stdout + proc.stderr)[-4000:]}")
    return proc.stdout


def ensure_n8n(log: Path) -> Path:
    """The n8n binary of N8N_VERSION, installed into the cache on first use (several minutes)."""
    home = CACHE / f"n8n-{N8N_VERSION}"
    binary = home / "node_modules" / ".bin" / "n8n"
    if binary.exists():
        return binary
    CACHE.mkdir(parents=True, exist_ok=True)
    # One installer at a time (another test run may be installing into the same cache), into a
    # fresh directory renamed into place when complete: a killed or failed install leaves no half tree.
    with open(CACHE / ".install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if binary.exists():
            return binary
        staging = CACHE / f".n8n-{N8N_VERSION}.{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        (staging / "package.json").write_text(json.dumps(RUNTIME_PACKAGE))
        run(["npm", "install", "--no-audit", "--no-fund", "--loglevel=error", f"n8n@{N8N_VERSION}"], staging, log, timeout_s=1800)
        shutil.rmtree(home, ignore_errors=True)
        staging.rename(home)
    return binary


def packed_node(dest: Path, log: Path) -> Path:
    """Build our package (npm ci the first time) and unpack the `npm pack` tarball, i.e. exactly
    the files an npm install of n8n-nodes-key4u-jobs would bring, into n8n's community-package
    folder `<user folder>/.n8n/nodes/node_modules/n8n-nodes-key4u-jobs`."""
    if not (PACKAGE_DIR / "node_modules" / ".bin" / "n8n-node").exists():
        run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], PACKAGE_DIR, log, timeout_s=900)
    run(["npm", "run", "build"], PACKAGE_DIR, log)
    tarballs = dest / "tarballs"
    tarballs.mkdir(parents=True, exist_ok=True)
    name = run(["npm", "pack", "--silent", "--pack-destination", str(tarballs)], PACKAGE_DIR, log).strip().splitlines()[-1]
    target = dest / ".n8n" / "nodes" / "node_modules" / "n8n-nodes-key4u-jobs"
    with tarfile.open(tarballs / name) as tar:
        tar.extractall(tarballs / "unpacked", filter="data")
    shutil.copytree(tarballs / "unpacked" / "package", target)
    return target


@dataclass
class N8n:
    binary: Path
    folder: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return self.folder / "n8n.log"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("N8N_", "K4U_", "DB_", "EXECUTIONS_"))}
        env.update(
            {
                "N8N_USER_FOLDER": str(self.folder),
                "N8N_PORT": str(self.port),
                "N8N_LISTEN_ADDRESS": "127.0.0.1",
                "N8N_HOST": "127.0.0.1",
                "N8N_PROTOCOL": "http",
                "WEBHOOK_URL": f"{self.url}/",
                "N8N_DIAGNOSTICS_ENABLED": "false",
                "N8N_VERSION_NOTIFICATIONS_ENABLED": "false",
                "N8N_TEMPLATES_ENABLED": "false",
                "N8N_PERSONALIZATION_ENABLED": "false",
                "N8N_SECURE_COOKIE": "false",
                "N8N_ENFORCE_SETTINGS_FILE_PERMISSIONS": "false",
                "N8N_RUNNERS_ENABLED": "false",
                "EXECUTIONS_DATA_SAVE_ON_SUCCESS": "all",
                "N8N_LOG_OUTPUT": "console",
                "N8N_LOG_LEVEL": "info",
            }
        )
        return env

    def cli(self, *args: str) -> str:
        return run([str(self.binary), *args], self.folder, self.log, env=self.env(), timeout_s=300)

    def import_json(self, kind: str, name: str, document: Any) -> None:
        path = self.folder / name
        path.write_text(json.dumps(document))
        self.cli(f"import:{kind}", f"--input={path}")

    def start(self) -> None:
        ready_line = "Editor is now accessible"
        starts = self.log.read_text().count(ready_line) if self.log.exists() else 0
        log = self.log.open("ab")
        self.proc = subprocess.Popen([str(self.binary), "start"], cwd=self.folder, env=self.env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            wait_http(f"{self.url}/healthz", 180, self.proc)
        except RuntimeError as exc:
            raise AssertionError(f"{exc}\n{self.log.read_text()[-4000:]}") from None
        # /healthz answers before the active workflows' webhooks are registered; this line follows them.
        deadline = time.monotonic() + 120
        while self.log.read_text().count(ready_line) <= starts:
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise AssertionError(f"n8n did not finish starting\n{self.log.read_text()[-4000:]}")
            time.sleep(0.2)

    def stop(self) -> None:
        """SIGTERM to n8n's process group, then SIGKILL to whatever of it is left (task runners)."""
        if self.proc is None:
            return
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                break
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(20)
        self.proc = None
