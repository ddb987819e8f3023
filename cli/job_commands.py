"""Commands on one job: `k4u submit`, `status`, `wait`, `retry`, `cancel`.

Against a running API when `--api` (or K4U_API_URL) is given, with `--token` (K4U_API_TOKEN);
otherwise straight on the local database (K4U_DATABASE_URL), like `k4u dev`: the beat of the
running stack then does the work (every change carries its next_at). Problems (unknown job, a 409
state conflict, a 422 naming the field, an unreachable API) are one line on stderr and exit 1.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from cli.api_client import TERMINAL, ApiClient, CliError
from cli.app import load_settings

ApiOpt = Annotated[str | None, typer.Option("--api", help="Base URL of a running Key4U Jobs API (default K4U_API_URL; unset = local database)")]
TokenOpt = Annotated[str | None, typer.Option("--token", help="Bearer token for --api (default K4U_API_TOKEN)")]
JobId = Annotated[str, typer.Argument(help="The job's id (job_...)")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the job as JSON (the API's JobPublic)")]
EXIT_TIMEOUT = 3


def register(app: typer.Typer) -> None:
    for command in (submit, status, wait, retry, cancel):
        app.command()(command)


def fail(message: str, code: int = 1) -> typer.Exit:
    typer.secho(message, err=True, fg="red")
    return typer.Exit(code)


@contextmanager
def client(api: str | None, token: str | None) -> Iterator[Any]:
    """ApiClient for --api / K4U_API_URL, else LocalClient; a CliError inside exits 1 with its message."""
    settings = load_settings()
    api = api or settings.api_url
    try:
        if api:
            token = token or (settings.api_token.get_secret_value() if settings.api_token else None)
            c: Any = ApiClient(api, token)
        else:
            from cli.local_client import LocalClient

            c = LocalClient(settings)
        try:
            yield c
        finally:
            c.close()
    except CliError as exc:
        raise fail(exc.message) from None


def show(job: dict[str, Any], as_json: bool = False) -> None:
    """A job for people (or as JSON): status line, error, stored files with size and sha256."""
    if as_json:
        typer.echo(json.dumps(job, indent=2))
        return
    line = f"job {job['id']} is {job['status']}: {job['provider']}/{job['operation']}, attempt {job.get('attempt', 1)}"
    if job["status"] not in TERMINAL:
        line += f", progress {job.get('progress', 0)}%"
    typer.echo(line)
    if job.get("error"):
        typer.echo(f"  error {job['error']['code']}: {job['error']['message']}")
    for a in job.get("assets", []):
        where = a.get("path") or a.get("url") or f"not stored (source {a.get('source_url')})"
        earlier = f" (attempt {a['attempt']})" if a.get("attempt", 1) != job.get("attempt", 1) else ""
        typer.echo(f"  asset {a['index']}{earlier} {a.get('content_type') or a.get('kind')} {a.get('size')} bytes sha256 {a.get('sha256')}: {where}")


def _finish(job: dict[str, Any], as_json: bool, timeout: float) -> None:
    show(job, as_json)
    if job["status"] not in TERMINAL:
        raise fail(f"job {job['id']} is still {job['status']} after {timeout:g} s", EXIT_TIMEOUT)
    if job["status"] != "succeeded":
        raise typer.Exit(1)


def parse_input(raw: str) -> dict[str, Any]:
    """--input: a JSON object, or @path to a file holding one."""
    if raw.startswith("@"):
        try:
            raw = Path(raw[1:]).read_text()
        except OSError as exc:
            raise fail(f"--input: cannot read {raw[1:]}: {exc.strerror}", 2) from None
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise fail(f"--input is not valid JSON: {exc}", 2) from None
    if not isinstance(value, dict):
        raise fail("--input must be a JSON object", 2)
    return value


def submit(
    provider: Annotated[str, typer.Argument(help="Provider family: kling, midjourney, suno (GET /v1/providers lists them)")],
    operation: Annotated[str, typer.Argument(help="Operation, e.g. text2video, imagine, music")],
    input_: Annotated[str, typer.Option("--input", help="The operation's input as a JSON object, or @file.json")] = "{}",
    callback_url: Annotated[str | None, typer.Option("--callback-url", help="Where the completion notification is POSTed")] = None,
    idempotency_key: Annotated[str | None, typer.Option("--idempotency-key", help="Same key + same request = the same job, never a second one")] = None,
    wait_: Annotated[bool, typer.Option("--wait", help="Wait until the job finishes (exit 0 only if it succeeded)")] = False,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds --wait waits (exit 3 when it runs out)")] = 600.0,
    api: ApiOpt = None,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a job and print its id.

    A bad input exits 1 naming the field (HTTP 422); a key reused
    with another request exits 1 (409). With --wait: exit 0 if it succeeded, 1 if it failed or was
    cancelled, 3 if still running after --timeout."""
    body: dict[str, Any] = {"provider": provider, "operation": operation, "input": parse_input(input_)}
    if callback_url:
        body["callback_url"] = callback_url
    if idempotency_key:
        body["idempotency_key"] = idempotency_key
    with client(api, token) as c:
        job = c.create_job(body)
        if not wait_:
            show(job, as_json)
            return
        job = c.wait_job(job["id"], timeout)
    _finish(job, as_json, timeout)


def status(job_id: JobId, api: ApiOpt = None, token: TokenOpt = None, as_json: JsonOpt = False) -> None:
    """Print a job: status, progress, error, and each stored file with its size, sha256 and path or URL.

    Exit 1 for an unknown job."""
    with client(api, token) as c:
        job = c.get_job(job_id)
    show(job, as_json)


def wait(
    job_id: JobId,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds to wait (exit 3 when it runs out)")] = 600.0,
    api: ApiOpt = None,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Wait until a job finishes, then print it.

    Exit 0 if it succeeded, 1 if it failed or was
    cancelled (or the job is unknown), 3 if it is still running after --timeout."""
    if timeout < 0:
        raise fail("--timeout must be >= 0", 2)
    with client(api, token) as c:
        job = c.wait_job(job_id, timeout)
    _finish(job, as_json, timeout)


def retry(job_id: Annotated[str, typer.Argument(help="The failed job's id")], api: ApiOpt = None, token: TokenOpt = None) -> None:
    """Submit a failed job again as a new attempt (same input; the old relay task id stays in its events).

    The answer to error code submit_outcome_unknown: the first attempt may have been charged,
    so retry only if you accept a second charge. Exit 1 (409) unless the job failed."""
    with client(api, token) as c:
        job = c.retry_job(job_id)
    typer.echo(f"job {job['id']} is {job['status']} (attempt {job['attempt']})")


def cancel(job_id: JobId, api: ApiOpt = None, token: TokenOpt = None) -> None:
    """Stop tracking a job (the relay has no cancel for most families).

    Exit 1 (409) if it had
    already finished, 1 for an unknown job."""
    with client(api, token) as c:
        job = c.cancel_job(job_id)
    typer.echo(f"job {job['id']} is {job['status']}")
