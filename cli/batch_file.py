"""`k4u batch` files: read JSONL or CSV into job requests with their line numbers, check them all,
derive each line's idempotency key, and write the results file atomically.

JSONL: one job request a line, `{provider, operation, input, callback_url?, metadata?}`.
CSV: a header row, then `provider`, `operation`, either `input` (JSON) or `input.<field>` columns,
optional `callback_url` and `metadata.<field>` columns. A cell of an `input.`/`metadata.` column
holding a JSON list or object is read as JSON; anything else stays text (the operation's schema
turns "5" into a number where it wants one); an empty cell is left out.

An input value `@path/to/file` (no spaces; relative to the batch file) names a file that `k4u batch`
uploads first (once per distinct file) and replaces by its `k4u://uploads/<id>` reference. A value
`k4u://lines/<line number>/assets/<index>` names an earlier line's output (cli/line_refs.py).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from cli import line_refs
from cli.upload_command import file_values, is_file_value
from models.refs import replace_strings
from models.schemas import JobCreate
from providers.registry import UnknownProvider, resolve_operation, validate_input
from workers.references import PLACEHOLDER, RefProblem, for_validation

JSONL_KEYS = {"provider", "operation", "input", "callback_url", "metadata"}
CSV_PLAIN = {"provider", "operation", "input", "callback_url"}


@dataclass(frozen=True)
class Line:
    number: int  # 1-based line of the file (the header of a CSV is line 1)
    body: dict[str, Any]  # the job request, idempotency_key included


@dataclass(frozen=True)
class LineError:
    number: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"line {self.number}: {self.field}: {self.message}" if self.field else f"line {self.number}: {self.message}"


class BatchFileError(Exception):
    def __init__(self, errors: list[LineError]) -> None:
        super().__init__("; ".join(map(str, errors)))
        self.errors = errors


def batch_key(digest: str, number: int) -> str:
    return f"k4u-batch-{digest[:16]}-{number}"


def read_batch(path: Path) -> tuple[str, list[Line]]:
    """(sha256 of the file, its job requests); BatchFileError listing every bad line."""
    raw = path.read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BatchFileError([LineError(raw[: exc.start].count(b"\n") + 1, "", "not valid UTF-8")]) from None
    rows, errors = (_csv_rows if path.suffix.lower() == ".csv" else _jsonl_rows)(text)
    lines = []
    jobs = {number for number, _ in rows}
    for number, body in rows:
        problem = line_refs.problem(body, number, jobs) or check(body) or _missing_file(body, path.parent)
        if problem:
            errors.append(LineError(number, *problem))
        else:
            lines.append(Line(number, body | {"idempotency_key": batch_key(digest, number)}))
    if errors:
        raise BatchFileError(sorted(errors, key=lambda e: e.number))
    if not lines:
        raise BatchFileError([LineError(1, "", "the file holds no job")])
    return digest, lines


def _jsonl_rows(text: str) -> tuple[list[tuple[int, dict[str, Any]]], list[LineError]]:
    rows, errors = [], []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            body = json.loads(line)
        except ValueError as exc:
            errors.append(LineError(number, "", f"not valid JSON ({exc})"))
            continue
        if not isinstance(body, dict):
            errors.append(LineError(number, "", "must be a JSON object"))
            continue
        extra = sorted(set(body) - JSONL_KEYS)
        if extra:
            errors.append(LineError(number, extra[0], f"unknown field; a line holds {', '.join(sorted(JSONL_KEYS))}"))
            continue
        rows.append((number, body))
    return rows, errors


def _cell(value: str) -> Any:
    if value[:1] in ("[", "{"):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _csv_rows(text: str) -> tuple[list[tuple[int, dict[str, Any]]], list[LineError]]:
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if not header:
        return [], [LineError(1, "", "the CSV has no header row")]
    header = [h.strip() for h in header]
    bad = [h for h in header if h not in CSV_PLAIN and not h.startswith(("input.", "metadata."))]
    if bad or not {"provider", "operation"} <= set(header):
        field = bad[0] if bad else "provider" if "provider" not in header else "operation"
        return [], [LineError(1, field, "unknown column" if bad else "missing column (needed: provider, operation, and input or input.<field> columns)")]
    if "input" in header and any(h.startswith("input.") for h in header):
        return [], [LineError(1, "input", "use either an input column (JSON) or input.<field> columns, not both")]
    clash = _clashing(header)
    if clash:
        return [], [clash]
    rows, errors = [], []
    start = reader.line_num + 1
    for row in reader:
        number, start = start, reader.line_num + 1
        if not any(c.strip() for c in row):
            continue
        if len(row) != len(header):
            errors.append(LineError(number, "", f"has {len(row)} cells; the header has {len(header)}"))
            continue
        body: dict[str, Any] = {"input": {}}
        for name, value in zip(header, row, strict=True):
            if name == "input":
                try:
                    body["input"] = json.loads(value) if value.strip() else {}
                except ValueError as exc:
                    errors.append(LineError(number, "input", f"not valid JSON ({exc})"))
                    break
            elif "." in name:
                if value == "":
                    continue
                top, *path = name.split(".")
                node = body.setdefault(top, {})
                for part in path[:-1]:
                    node = node.setdefault(part, {})
                node[path[-1]] = _cell(value)
            elif value != "":
                body[name] = value
        else:
            rows.append((number, body))
    return rows, errors


def _clashing(header: list[str]) -> LineError | None:
    """A column given twice, or one naming a field inside another's (input.x and input.x.y): the
    field would be both a value and an object."""
    columns = set()
    for h in header:
        if h in columns:
            return LineError(1, h, "the column appears twice in the header")
        columns.add(h)
    for h in header:
        parts = h.split(".")
        for outer in (".".join(parts[:i]) for i in range(2, len(parts))):
            if outer in columns:
                return LineError(1, h, f"conflicts with the column {outer}: {outer} cannot be both a value and an object; keep one of them")
    return None


def _missing_file(body: dict[str, Any], base: Path) -> tuple[str, str] | None:
    """(field, message) of the first `@path` value whose file is not there (relative to the batch file)."""
    for field, name in file_values(body):
        if not (base / name).is_file():
            return field, f"no such file: {name} (an @path value is a file uploaded first, relative to the batch file)"
    return None


def check(body: dict[str, Any]) -> tuple[str, str] | None:
    """(field, message) of the first problem the API would answer 422 for, or None. An `@path` value
    (a file uploaded before the jobs are sent), a line reference (an earlier line's output) and a
    `k4u://` reference count as the link they become."""
    if isinstance(body.get("input"), dict):

        def as_link(_: object, v: str) -> str:
            return f"{PLACEHOLDER}file" if is_file_value(v) else f"{PLACEHOLDER}line" if line_refs.is_line_ref(v) else v

        try:
            linked, _ = for_validation(replace_strings(body["input"], as_link))
        except RefProblem as exc:
            return ".".join(str(p) for p in ("input", *exc.loc)), exc.reason
        body = body | {"input": linked}
    try:
        JobCreate.model_validate(body)
    except ValidationError as exc:
        e = exc.errors()[0]
        return ".".join(str(p) for p in e["loc"]), e["msg"]
    try:
        operation = resolve_operation(body["provider"], body.get("operation"))
        validate_input(body["provider"], operation, body["input"])
    except UnknownProvider as exc:
        return exc.field, exc.message
    except ValidationError as exc:
        e = exc.errors()[0]
        return ".".join(str(p) for p in ("input", *e["loc"])), e["msg"]
    return None


RESULT_FIELDS = ("line", "job_id", "status", "files", "sha256", "downloaded", "error_code", "error_message")
# A spreadsheet runs a cell starting with one of these as a formula (OWASP, CSV injection).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _csv_cell(value: Any) -> Any:
    """A results value as a CSV cell: lists joined by spaces, None empty, and text a spreadsheet
    would run as a formula (relay error text is anyone's) prefixed with a single quote."""
    value = " ".join(value) if isinstance(value, list) else "" if value is None else value
    return "'" + value if isinstance(value, str) and value.startswith(FORMULA_START) else value


def write_results(path: Path, rows: list[dict[str, Any]]) -> None:
    """JSONL, or CSV when path ends in .csv (cells by _csv_cell); temp file + rename, so a reader
    (or a Ctrl-C) never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", newline="") as f:
            if path.suffix.lower() == ".csv":
                w = csv.DictWriter(f, fieldnames=RESULT_FIELDS)
                w.writeheader()
                for r in rows:
                    w.writerow({k: _csv_cell(v) for k, v in r.items()})
            else:
                for r in rows:
                    f.write(json.dumps(r, ensure_ascii=False) + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
