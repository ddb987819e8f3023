"""The `k4u` Typer app and what every command module shares: the console for errors and the
settings loader. It imports no command module; cli.main registers them all on `app`."""

from __future__ import annotations

import typer
from pydantic import ValidationError
from rich.console import Console

from workers.settings import Settings, describe_errors, get_settings

app = typer.Typer(help="Key4U Jobs: durable jobs for the Key4U relay.", no_args_is_help=True, add_completion=False)
db_app = typer.Typer(help="Database commands.", no_args_is_help=True)
app.add_typer(db_app, name="db")
err = Console(stderr=True)


def load_settings() -> Settings:
    """Settings from the environment; a bad value stops here with the variable named."""
    try:
        return get_settings()
    except ValidationError as exc:
        err.print(f"[red]bad setting[/red]\n{describe_errors(exc)}")
        raise typer.Exit(2) from None
