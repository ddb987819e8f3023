"""`k4u batch FILE`: create one job per line (resumable), watch them with a progress display, write
the results file, and copy the stored files out under readable names.

Resuming needs no state of its own: each line's idempotency key is derived from the file's sha256
and the line number, so a second run re-sends the same chunks (creating nothing twice) and gets the
same jobs back, then watches them. The results file is rewritten atomically as jobs finish.
"""

from __future__ import annotations

import hashlib
import mimetypes
import os
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from pathlib import Path, PurePosixPath
from typing import Annotated, Any

import typer
from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn
from rich.text import Text

from cli.api_client import TERMINAL, CliError
from cli.batch_file import BatchFileError, Line, read_batch, write_results
from cli.job_commands import ApiOpt, TokenOpt, client, fail
from cli.line_refs import line_refs, translate
from cli.upload_command import upload_files

CHUNK = 1000  # POST /v1/batches takes at most this many jobs
CONCURRENCY = 8
RESULTS_EVERY_S = 5.0
PRINT_EVERY_S = 10.0
err = Console(stderr=True)


def register(app: typer.Typer) -> None:
    app.command()(batch)


def batch(
    file: Annotated[
        Path,
        typer.Argument(
            help="JSONL (one job request a line) or .csv (provider, operation, input or input.<field>, callback_url, metadata.<field> columns)",
            exists=True,
            dir_okay=False,
        ),
    ],
    results: Annotated[Path | None, typer.Option("--results", help="Results file, JSONL or .csv (default FILE.results.jsonl)")] = None,
    download: Annotated[Path | None, typer.Option("--download", help="Copy stored files into DIR as <line>-<provider>-<operation>-<index><ext>")] = None,
    no_wait: Annotated[bool, typer.Option("--no-wait", help="Create the jobs, write the results file as they stand, and exit")] = False,
    timeout: Annotated[float | None, typer.Option("--timeout", help="Stop watching after this many seconds (exit 3; run again to resume)")] = None,
    api: ApiOpt = None,
    token: TokenOpt = None,
) -> None:
    """Run one job per line of FILE (JSONL or CSV), resumably, and wait for them all.

    A live display counts submitted, running, succeeded and failed jobs, with the rate and an ETA.

    The whole file is checked first: a bad line is reported with its line number and field, and
    nothing is created. Running it again on the same file creates nothing twice (each line's
    idempotency key is k4u-batch-<file sha256, 16 hex>-<line>) and picks up where it stopped;
    Ctrl-C leaves the jobs running and the results file whole. An input value `@path/to/file`
    (relative to FILE) is uploaded first, once per distinct file, and replaced by its reference. The results file has, per line:
    the job id, status, stored paths (local database) or asset URLs (--api), sha256, downloaded
    files, error code and message. Exit 0 when every job succeeded, 1 when one failed or was
    cancelled (or on an error), 3 on --timeout, 130 on Ctrl-C."""
    results = results or file.with_name(file.name + ".results.jsonl")
    try:
        digest, lines = read_batch(file)
    except BatchFileError as exc:
        for e in exc.errors[:20]:
            typer.secho(str(e), err=True, fg="red")
        more = f" ({len(exc.errors) - 20} more)" if len(exc.errors) > 20 else ""
        raise fail(f"{file}: {len(exc.errors)} bad line(s){more}; nothing was created") from None
    except OSError as exc:
        raise fail(f"cannot read {file}: {exc.strerror}") from None
    with client(api, token) as c:
        bodies, sent = upload_files(c, [ln.body for ln in lines], file.parent)  # `@path` values: uploaded once each
        if sent:
            typer.echo(f"uploaded {sent} file(s)", err=True)
        run = Run([Line(ln.number, body) for ln, body in zip(lines, bodies, strict=True)], results, download)
        try:
            run.create(c)
            if no_wait:
                run.refresh(c)
                code = 0
            else:
                code = run.watch(c, timeout)
        except KeyboardInterrupt:
            run.save(c, final=True)
            typer.echo(
                f"interrupted: {len(run.ids)} of {len(lines)} jobs exist and keep running; run `k4u batch {file}` again to resume; results so far in {results}",
                err=True,
            )
            raise typer.Exit(130) from None
        except CliError:
            run.save(c, final=True)
            raise
        run.save(c, final=True)
    s = run.summary()
    typer.echo(f"{len(lines)} jobs from {file.name} (sha256 {digest[:16]}): {s}; results in {results}")
    raise typer.Exit(code)


class Run:
    """One pass over a batch file: line -> job id, the latest job JSON, results and downloads."""

    def __init__(self, lines: list[Line], results: Path, download: Path | None) -> None:
        self.lines = lines
        self.results, self.download = results, download
        self.ids: dict[int, str] = {}  # line -> job id
        self.jobs: dict[int, dict[str, Any]] = {}  # line -> latest job JSON
        self.batch_ids: list[str] = []
        self.batch_of: dict[int, str] = {}  # line -> the batch its chunk was sent as
        self.downloaded: dict[int, list[str]] = {}
        self._saved_at = 0.0

    def create(self, c: Any) -> None:
        """Send the lines in chunks of CHUNK (each a no-op when sent before); map lines to jobs."""
        for start in range(0, len(self.lines), CHUNK):
            self._send(c, self.lines[start : start + CHUNK])
        typer.echo(f"{len(self.ids)} jobs in {len(self.batch_ids)} batch(es): {', '.join(self.batch_ids)}", err=True)

    def batch_body(self, chunk: list[Line]) -> dict[str, Any]:
        """The POST /v1/batches body of a chunk: line references as batch item references (a line
        of this chunk) or job references (a line sent before)."""
        try:
            return {"jobs": translate([(ln.number, ln.body) for ln in chunk], self.ids)}
        except KeyError as exc:
            raise CliError(str(exc.args[0])) from None

    def _send(self, c: Any, chunk: list[Line]) -> None:
        try:
            answer = c.create_batch(self.batch_body(chunk))
        except CliError as exc:
            if exc.status == 413 and len(chunk) > 1:  # over the API's body cap: halves, keys unchanged
                half = len(chunk) // 2
                self._send(c, chunk[:half])
                self._send(c, chunk[half:])
                return
            if exc.status == 409 and "not one batch" in exc.message:
                self._one_by_one(c, chunk)  # all exist, split over batches by an earlier run: replay each
                return
            raise CliError(_line_message(exc, chunk)) from None
        self.batch_ids.append(answer["id"])
        for ln, job_id in zip(chunk, answer["job_ids"], strict=True):
            self.ids[ln.number] = job_id
            self.batch_of[ln.number] = answer["id"]

    def _one_by_one(self, c: Any, chunk: list[Line]) -> None:
        """POST /v1/jobs per line with its key: every one answers with the existing job. Lines using
        an earlier line's output go one by one, in order, their references as job references."""
        if any(line_refs(ln.body) for ln in chunk):
            for ln in chunk:
                self._known(ln, c.create_job(self.batch_body([ln])["jobs"][0]))
        else:
            with ThreadPoolExecutor(CONCURRENCY) as ex:
                for ln, job in zip(chunk, ex.map(c.create_job, [ln.body for ln in chunk]), strict=True):
                    self._known(ln, job)
        self.batch_ids += [b for b in dict.fromkeys(self.batch_of[ln.number] for ln in chunk if ln.number in self.batch_of) if b not in self.batch_ids]

    def _known(self, ln: Line, job: dict[str, Any]) -> None:
        self.ids[ln.number] = job["id"]
        self.jobs[ln.number] = job
        if job.get("batch_id"):
            self.batch_of[ln.number] = job["batch_id"]

    def refresh(self, c: Any) -> None:
        """Read the jobs not yet seen terminal: a page listing per batch that has any, then one GET
        per line whose job its batch did not list (a job an earlier run created in another batch)."""
        open_lines = [n for n in self.ids if self.jobs.get(n, {}).get("status") not in TERMINAL]
        by_id = {self.ids[n]: n for n in open_lines}
        for batch_id in dict.fromkeys(self.batch_of[n] for n in open_lines if n in self.batch_of):
            for job in c.batch_jobs(batch_id):
                number = by_id.pop(job["id"], None)
                if number is not None:
                    self.jobs[number] = job
        if by_id:
            with ThreadPoolExecutor(CONCURRENCY) as ex:
                for job in ex.map(c.get_job, list(by_id)):
                    self.jobs[by_id[job["id"]]] = job

    def counts(self) -> dict[str, int]:
        out = {"submitted": len(self.ids), "waiting": 0, "running": 0, "succeeded": 0, "failed": 0, "cancelled": 0}
        for job in self.jobs.values():
            s = job["status"]
            key = "waiting" if s in ("queued", "submitting") else "running" if s in ("running", "downloading") else s
            out[key] += 1
        return out

    def watch(self, c: Any, timeout: float | None) -> int:
        """Refresh every second until every job is terminal: a live bar on a terminal, otherwise a
        status line every PRINT_EVERY_S. Returns the exit code."""
        started, done0, printed = time.monotonic(), None, 0.0
        bar = Progress(BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=err)
        task = bar.add_task("batch", total=len(self.lines))
        with Live(console=err, refresh_per_second=4, transient=False) if err.is_terminal else nullcontext() as live:
            while True:
                self.refresh(c)
                self.fetch_files(c)
                n = self.counts()
                done = n["succeeded"] + n["failed"] + n["cancelled"]
                done0 = done if done0 is None else done0  # the rate counts what finishes during this run
                elapsed = time.monotonic() - started
                rate = (done - done0) / elapsed if elapsed > 0 else 0.0
                eta = f"{(len(self.lines) - done) / rate:.0f}s" if rate > 0 else "?"
                info = (
                    f"submitted {n['submitted']} | waiting {n['waiting']} | running {n['running']} | "
                    f"succeeded {n['succeeded']} | failed {n['failed'] + n['cancelled']} | {rate * 60:.1f}/min | ETA {eta}"
                )
                bar.update(task, completed=done)
                if live is not None:
                    live.update(Group(bar.get_renderable(), Text(info)))
                finished = done == len(self.lines)
                if not err.is_terminal and (finished or time.monotonic() - printed >= PRINT_EVERY_S):
                    typer.echo(f"{done}/{len(self.lines)} done | {info}", err=True)
                    printed = time.monotonic()
                self.save(c)
                if finished:
                    return 0 if n["succeeded"] == done else 1
                if timeout is not None and elapsed >= timeout:
                    typer.echo(f"still {len(self.lines) - done} jobs unfinished after {timeout:g}s; run again to resume", err=True)
                    return 3
                time.sleep(1.0 if len(self.lines) <= CHUNK else 5.0)  # big batches: fewer full listings

    def fetch_files(self, c: Any) -> None:
        """Copy each stored file of a succeeded job into --download (once; sha256 checked)."""
        if self.download is None:
            return
        self.download.mkdir(parents=True, exist_ok=True)
        for number, job in sorted(self.jobs.items()):
            if job["status"] != "succeeded" or number in self.downloaded:
                continue
            names = []
            for a in current_assets(job):
                if not (a.get("url") or a.get("path")):
                    continue
                dest = self.download / f"{number}-{job['provider']}-{job['operation']}-{a['index']}{_ext(a)}"
                if not (dest.exists() and _sha256(dest) == a.get("sha256")):
                    tmp = dest.with_name(f".{dest.name}.part")
                    c.fetch_asset(job, a, tmp)
                    if a.get("sha256") and _sha256(tmp) != a["sha256"]:
                        tmp.unlink(missing_ok=True)
                        raise CliError(f"line {number}: asset {a['index']} of {job['id']} does not match its sha256")
                    os.replace(tmp, dest)
                names.append(str(dest))
            self.downloaded[number] = names

    def rows(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for ln in self.lines:
            job = self.jobs.get(ln.number)
            if job is None:  # not created yet (interrupted first), or created but not read yet
                known = self.ids.get(ln.number)
                out.append(
                    {
                        "line": ln.number,
                        "job_id": known,
                        "status": "created" if known else "not_created",
                        "files": [],
                        "sha256": [],
                        "downloaded": [],
                        "error_code": None,
                        "error_message": None,
                    }
                )
                continue
            assets = current_assets(job)
            error = job.get("error") or {}
            out.append(
                {
                    "line": ln.number,
                    "job_id": job["id"],
                    "status": job["status"],
                    "files": [a.get("path") or a.get("url") for a in assets if a.get("path") or a.get("url")],
                    "sha256": [a["sha256"] for a in assets if a.get("sha256")],
                    "downloaded": self.downloaded.get(ln.number, []),
                    "error_code": error.get("code"),
                    "error_message": error.get("message"),
                }
            )
        return out

    def save(self, c: Any, final: bool = False) -> None:
        if final or time.monotonic() - self._saved_at >= RESULTS_EVERY_S:
            write_results(self.results, self.rows())
            self._saved_at = time.monotonic()

    def summary(self) -> str:
        n = self.counts()
        return ", ".join(f"{v} {k}" for k, v in n.items() if v and k != "submitted") or "nothing created"


def _line_message(exc: CliError, chunk: list[Line]) -> str:
    """A 422 names jobs.<index>.<field> (or jobs[<index>]); say which line of the file that is."""
    parts = []
    for loc, msg in exc.fields:
        bits = loc.replace("[", ".").replace("]", "").split(".")
        if len(bits) >= 2 and bits[0] == "jobs" and bits[1].isdigit() and int(bits[1]) < len(chunk):
            field = ".".join(bits[2:])
            parts.append(f"line {chunk[int(bits[1])].number}: {field + ': ' if field else ''}{msg}")
        else:
            parts.append(f"{loc}: {msg}" if loc else msg)
    return ("; ".join(parts) + "; nothing was created for this part of the file") if parts else exc.message


def current_assets(job: dict[str, Any]) -> list[dict[str, Any]]:
    """The job's assets of its current attempt (a retried job also lists its earlier attempts' files)."""
    return [a for a in job.get("assets", []) if a.get("attempt", 1) == job.get("attempt", 1)]


def _ext(asset: dict[str, Any]) -> str:
    for ref in (asset.get("path"), asset.get("source_url")):
        suffix = PurePosixPath(str(ref or "").split("?")[0]).suffix
        if suffix and len(suffix) <= 6 and suffix[1:].isalnum():
            return suffix.lower()
    return mimetypes.guess_extension(asset.get("content_type") or "") or ""


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
