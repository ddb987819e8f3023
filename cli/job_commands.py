"""Commands on one job: `k4u retry ID`.

Against a running API when `--api` (or K4U_API_URL) is given, with `--token` (K4U_API_TOKEN);
otherwise straight on the local database (K4U_DATABASE_URL), like `k4u dev`: the beat of the
running stack then submits the job (its next_at is now)."""

from __future__ import annotations

from typing import Annotated, Any

import httpx
import typer
from rich.console import Console

out = Console()
err = Console(stderr=True)

ApiOpt = Annotated[str | None, typer.Option("--api", help="Base URL of a running Key4U Jobs API (default K4U_API_URL; unset = local database)")]
TokenOpt = Annotated[str | None, typer.Option("--token", help="Bearer token for --api (default K4U_API_TOKEN)")]


def register(app: typer.Typer) -> None:
    app.command()(retry)


def retry(job_id: Annotated[str, typer.Argument(help="The failed job's id")], api: ApiOpt = None, token: TokenOpt = None) -> None:
    """Submit a failed job again as a new attempt (same input; the old relay task id stays in its events).

    The answer to error code submit_outcome_unknown: the first attempt may have been charged,
    so retry only if you accept a second charge."""
    from cli.main import load_settings

    settings = load_settings()
    api = api or settings.api_url
    if api:
        token = token or (settings.api_token.get_secret_value() if settings.api_token else None)
        job = _post(f"{api.rstrip('/')}/v1/jobs/{job_id}/retry", token)
    else:
        job = _retry_local(settings, job_id)
    out.print(f"job {job['id']} is {job['status']} (attempt {job['attempt']})")


def _post(url: str, token: str | None) -> dict[str, Any]:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    try:
        r = httpx.post(url, headers=headers, timeout=30.0)
    except httpx.HTTPError as exc:
        err.print(f"[red]cannot reach {url}[/red]: {type(exc).__name__}")
        raise typer.Exit(1) from None
    if r.status_code >= 400:
        try:
            detail = r.json().get("detail")
        except ValueError:
            detail = r.text[:200]
        err.print(f"[red]HTTP {r.status_code}[/red]: {detail}")
        raise typer.Exit(1)
    return r.json()  # type: ignore[no-any-return]


def _retry_local(settings: Any, job_id: str) -> dict[str, Any]:
    from models.errors import JobNotFound, JobStateConflict
    from workers.context import build_runtime
    from workers.db import migrate
    from workers.dispatch import CeleryDispatcher, Dispatcher, RecordingDispatcher
    from workers.services.retry import retry_job

    dispatcher: Dispatcher = RecordingDispatcher()  # no broker: the running stack's tick submits it
    if settings.redis_url:
        from workers.celery_app import app as celery_app, configure

        dispatcher = CeleryDispatcher(configure(celery_app, settings))
    migrate(settings.database_url)
    rt = build_runtime(settings, dispatcher)
    try:
        job = retry_job(rt, job_id)
    except (JobNotFound, JobStateConflict) as exc:
        err.print(f"[red]{exc.message}[/red]")
        raise typer.Exit(1) from None
    finally:
        rt.close()
    return {"id": job.id, "status": job.status, "attempt": job.attempt}
