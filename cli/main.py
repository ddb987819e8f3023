"""k4u: run the Key4U Jobs stack, its parts, the simulator and the demo."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from cli import batch_command, doctor, job_commands, upload_command
from cli.app import app, db_app, err, load_settings
from models.errors import ConfigError
from workers.logs import quiet_http_clients
from workers.settings import Settings

QUEUES = "submit,poll,download,notify,sweep,oneshot"
# role -> (queues, pool). Downloads and notifications wait on other people's servers, so each has
# its own queue and thread pool: a slow CDN or a tarpit callback_url never holds submit and poll.
# So do one-shot submits (a synchronous generation answers after a minute or two).
ROLES: dict[str, tuple[str, str]] = {
    "engine": ("submit,poll,sweep", "prefork"),
    "download": ("download", "threads"),
    "notify": ("notify", "threads"),
    "oneshot": ("oneshot", "threads"),
    "all": (QUEUES, "prefork"),
}


def _logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    quiet_http_clients()  # httpx logs full URLs, query strings included, at INFO


def _need_redis(settings: Settings) -> None:
    if not settings.redis_url:
        err.print("[red]K4U_REDIS_URL is not set[/red] (or use `k4u dev`, which starts a bundled Redis)")
        raise typer.Exit(2)


def _refuse_open_api(host: str, settings: Settings) -> None:
    from workers.netguard import is_loopback  # the rule the open API itself enforces on each request

    if settings.tokens or settings.allow_open_api or is_loopback(host):
        return
    err.print(
        f"[red]refusing to serve the API on {host} without K4U_API_TOKENS[/red]: anyone who reaches it could "
        "create paid jobs. Set K4U_API_TOKENS, listen on 127.0.0.1, or set K4U_ALLOW_OPEN_API=true "
        "(only behind a gateway that authenticates)."
    )
    raise typer.Exit(2)


def _refuse_open_flower(address: str, settings: Settings) -> None:
    from workers.netguard import is_loopback

    if settings.flower_basic_auth or is_loopback(address):
        return
    err.print(
        f"[red]refusing to serve Flower on {address} without FLOWER_BASIC_AUTH[/red]: anyone who reaches it could "
        "read every task and revoke or kill them. Set FLOWER_BASIC_AUTH=user:password, or listen on 127.0.0.1."
    )
    raise typer.Exit(2)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply the Alembic migrations to K4U_DATABASE_URL."""
    from workers.db import migrate

    settings = load_settings()
    migrate(settings.database_url)
    typer.echo("database is up to date")


@app.command()
def api(host: str = "127.0.0.1", port: int = 8000, migrate_db: Annotated[bool, typer.Option("--migrate/--no-migrate")] = True) -> None:
    """Serve the HTTP API (OpenAPI at /docs)."""
    import uvicorn

    from api.main import create_app
    from workers.db import migrate

    settings = load_settings()
    _refuse_open_api(host, settings)
    _need_redis(settings)
    _logging()
    if migrate_db:
        migrate(settings.database_url)
    uvicorn.run(create_app(settings), host=host, port=port, log_level="info")


@app.command()
def worker(
    role: Annotated[
        str,
        typer.Option(
            help="engine (submit,poll,sweep; prefork, K4U_WORKER_CONCURRENCY), download (threads, "
            "K4U_DOWNLOAD_CONCURRENCY), notify (threads, K4U_NOTIFY_CONCURRENCY), oneshot (synchronous "
            "generations' submits; threads, K4U_ONESHOT_CONCURRENCY) or all"
        ),
    ] = "all",
    queues: Annotated[str | None, typer.Option(help="Comma-separated queues (default: the role's)")] = None,
    concurrency: Annotated[int | None, typer.Option(help="Processes or threads (default: the role's setting)")] = None,
    pool: Annotated[str | None, typer.Option(help="prefork, threads or solo (default: the role's)")] = None,
    name: Annotated[str | None, typer.Option(help="Node name (default k4u-<role>@%h)")] = None,
) -> None:
    """Run a Celery worker (sends task events for Flower). Run one per role in production:
    `--role engine`, `--role download`, `--role notify` and `--role oneshot` each have their own queue and pool."""
    from workers.celery_app import app as celery_app, configure

    if role not in ROLES:
        err.print(f"[red]--role must be one of {', '.join(ROLES)}, not {role!r}[/red]")
        raise typer.Exit(2)
    settings = load_settings()
    _need_redis(settings)
    configure(celery_app, settings)
    role_queues, role_pool = ROLES[role]
    default_n = {"download": settings.download_concurrency, "notify": settings.notify_concurrency, "oneshot": settings.oneshot_concurrency}.get(
        role, settings.worker_concurrency
    )
    n = concurrency or default_n
    celery_app.worker_main(
        [
            "worker",
            "-Q",
            queues or role_queues,
            "-c",
            str(n),
            "-P",
            pool or role_pool,
            "-E",
            "-n",
            name or f"k4u-{role}@%h",
            "--loglevel=INFO",
            "--without-gossip",
            "--without-mingle",
        ]
    )


@app.command()
def beat() -> None:
    """Run the scheduler (exactly one per deployment): the tick that polls and re-drives work."""
    from workers.celery_app import app as celery_app, configure

    settings = load_settings()
    _need_redis(settings)
    configure(celery_app, settings)
    schedule = Path(settings.data_dir) / "celerybeat-schedule"
    schedule.parent.mkdir(parents=True, exist_ok=True)
    celery_app.start(["beat", "-s", str(schedule), "--loglevel=INFO"])


@app.command()
def flower(port: int = 5555, address: str = "127.0.0.1") -> None:
    """Run Flower, the Celery monitor, on the same broker. A non-loopback --address needs
    FLOWER_BASIC_AUTH=user:password (Flower's own variable)."""
    from workers.celery_app import app as celery_app, configure

    settings = load_settings()
    _refuse_open_flower(address, settings)
    _need_redis(settings)
    configure(celery_app, settings)
    if settings.flower_basic_auth:  # Flower reads its variable from the environment only, not from our .env
        os.environ["FLOWER_BASIC_AUTH"] = settings.flower_basic_auth.get_secret_value()
    celery_app.start(["flower", f"--port={port}", f"--address={address}"])


@app.command()
def simulator(port: int = 9100, host: str = "127.0.0.1", envelope: Annotated[str, typer.Option(help="native (Kling official) or newapi")] = "native") -> None:
    """Run the built-in Key4U relay simulator (no network, no credits)."""
    import uvicorn

    from simulator.app import create_app as create_sim
    from simulator.config import SimConfig

    if envelope not in ("native", "newapi"):
        err.print("[red]--envelope must be native or newapi[/red]")
        raise typer.Exit(2)
    uvicorn.run(create_sim(SimConfig(envelope=envelope)), host=host, port=port, log_level="warning")


@app.command()
def dev(
    host: str = "127.0.0.1",
    port: int = 8000,
    concurrency: Annotated[int | None, typer.Option(help="Engine worker processes (default K4U_WORKER_CONCURRENCY)")] = None,
) -> None:
    """API, beat and four workers in one foreground command: the engine (submit, poll, sweep;
    K4U_WORKER_CONCURRENCY processes), downloads (K4U_DOWNLOAD_CONCURRENCY threads),
    notifications (K4U_NOTIFY_CONCURRENCY threads) and one-shot submits (K4U_ONESHOT_CONCURRENCY
    threads), each on its own queue, so slow CDNs, callback receivers or synchronous generations
    never hold submits and polls. Bundles Redis when K4U_REDIS_URL is unset. A child that
    dies is started again (at most 5 times a minute); Ctrl-C stops everything; if `k4u dev` is
    killed, its children die with it."""
    from cli.procs import Supervisor, k4u_cmd, start_bundled_redis, wait_http
    from workers.db import migrate

    settings = load_settings()
    _refuse_open_api(host, settings)
    sup = Supervisor()
    sup.install_signals()
    env = dict(os.environ)
    code = 0
    try:
        if not settings.redis_url:
            proc, url = start_bundled_redis(Path(settings.data_dir))
            sup.adopt("redis", proc)
            env["K4U_REDIS_URL"] = url
            err.print(f"bundled Redis at {url}")
        migrate(settings.database_url)
        engine_args = ["--concurrency", str(concurrency)] if concurrency else []
        sup.start("worker", k4u_cmd("worker", "--role", "engine", "--name", f"engine-{port}@%h", *engine_args), env)
        sup.start("worker-download", k4u_cmd("worker", "--role", "download", "--name", f"download-{port}@%h"), env)
        sup.start("worker-notify", k4u_cmd("worker", "--role", "notify", "--name", f"notify-{port}@%h"), env)
        sup.start("worker-oneshot", k4u_cmd("worker", "--role", "oneshot", "--name", f"oneshot-{port}@%h"), env)
        sup.start("beat", k4u_cmd("beat"), env)
        api_proc = sup.start("api", k4u_cmd("api", "--host", host, "--port", str(port), "--no-migrate"), env)
        wait_http(f"http://{host}:{port}/healthz", 60, api_proc)
        err.print(f"[green]Key4U Jobs is up[/green]: http://{host}:{port}/docs  (Ctrl-C stops everything)")
        while True:  # a dead worker, beat or API comes back (the database holds all the work)
            name = sup.wait_any()
            if name == "redis" or not sup.restart(name):
                break
            err.print(f"[yellow]{name} exited; restarted it[/yellow]")
        err.print(f"[red]{name} exited; stopping[/red]")
        code = 1
    except KeyboardInterrupt:
        err.print("stopping...")
    except (RuntimeError, ConfigError) as exc:
        err.print(f"[red]{escape(str(exc))}[/red]")
        code = 1
    finally:
        sup.stop()
    raise typer.Exit(code)


@app.command()
def demo(
    jobs: Annotated[int, typer.Option(help="Extra text2video jobs beyond the three kinds")] = 0,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the jobs")] = 120.0,
) -> None:
    """Start the simulator and the dev stack, run Kling jobs end to end, print what was stored."""
    from cli.demo import run_demo

    raise typer.Exit(run_demo(extra=jobs, timeout_s=timeout))


job_commands.register(app)  # after the commands above, so `k4u --help` lists them first
batch_command.register(app)
doctor.register(app)
upload_command.register(app)


def main() -> None:
    try:
        app()
    except ConfigError as exc:
        err.print(f"[red]{exc.message}[/red]")
        sys.exit(2)


if __name__ == "__main__":
    main()
