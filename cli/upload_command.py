"""`k4u upload FILE`: store an input file (POST /v1/uploads, or the local database and store) and print
its reference, `k4u://uploads/<id>`, to put in a job's input. And the batch files' `@path` values:
each distinct file uploaded once (by sha256; an upload of the same bytes that has not expired is
reused, so a batch run again sends the same requests) and replaced by its reference."""

from __future__ import annotations

import hashlib
import json
import mimetypes
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer

from cli.job_commands import ApiOpt, JsonOpt, TokenOpt, client
from models.refs import replace_strings, strings

_FILE_VALUE = re.compile(r"@[^\s@][^\s]*")  # `@path/to/file`: no spaces (a prompt starting with @ has some)
REUSE_MARGIN = timedelta(days=1)  # an upload that expires sooner than this is not reused


def register(app: typer.Typer) -> None:
    app.command()(upload)


def upload(
    file: Annotated[Path, typer.Argument(help="The file to store (an image, a video, audio...)", exists=True, dir_okay=False)],
    content_type: Annotated[str | None, typer.Option("--content-type", help="Its media type (default: guessed from the name)")] = None,
    api: ApiOpt = None,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Store an input file and print its reference (k4u://uploads/<id>) for a job's input.

    Against --api / K4U_API_URL it is streamed to POST /v1/uploads; otherwise stored in the local
    store and database. The reference is resolved when the job is submitted into a link the relay
    can fetch. Uploads expire after K4U_UPLOAD_TTL_S (7 days) unless a waiting job needs them."""
    with client(api, token) as c:
        answer = c.upload(file, content_type or guess_type(file))
    typer.echo(json.dumps(answer, indent=2) if as_json else answer["ref"])


def guess_type(path: Path) -> str:
    return mimetypes.guess_type(path.name)[0] or "application/octet-stream"


def file_values(body: dict[str, Any]) -> list[tuple[str, str]]:
    """(field, path) of each `@path` value in a request's input."""
    return [(".".join(map(str, loc)), s[1:]) for loc, s in strings(body.get("input", {}), ("input",)) if _FILE_VALUE.fullmatch(s)]


def is_file_value(value: str) -> bool:
    return _FILE_VALUE.fullmatch(value) is not None


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


def upload_files(c: Any, bodies: list[dict[str, Any]], base: Path) -> tuple[list[dict[str, Any]], int]:
    """The bodies with every `@path` (relative to `base`) replaced by its upload's reference; how many files were sent."""
    refs: dict[Path, str] = {}
    by_sha: dict[str, str] = {}
    sent = 0
    for body in bodies:
        for _, name in file_values(body):
            path = (base / name).resolve()
            if path in refs:
                continue
            sha = sha256_of(path)
            if sha not in by_sha:
                fresh = [u for u in c.find_uploads(sha) if datetime.fromisoformat(u["expires_at"]) > datetime.now(UTC) + REUSE_MARGIN]
                if fresh:
                    by_sha[sha] = fresh[0]["ref"]
                else:
                    by_sha[sha] = c.upload(path, guess_type(path))["ref"]
                    sent += 1
            refs[path] = by_sha[sha]

    def swap(_: Any, s: str) -> str:
        return refs[(base / s[1:]).resolve()] if is_file_value(s) else s

    return [body | {"input": replace_strings(body["input"], swap)} if file_values(body) else body for body in bodies], sent
