"""Line references in `k4u batch` files: `k4u://lines/<line number>/assets/<index>` names asset
`index` of the job an earlier line of the same file creates (line numbers as the CLI reports them:
the file's own line, a CSV's header being line 1).

Checked with the file (`problem`): the line must be an earlier line that is a job. Translated when a
chunk of the file is sent (`translate`): a line in the same `POST /v1/batches` becomes the batch item
reference `k4u://items/<i>/assets/<index>` (i: 0-based place in that request); a line sent before,
in an earlier chunk, is a job that exists by then and becomes `k4u://jobs/<job id>/assets/<index>`.
"""

from __future__ import annotations

import re
from typing import Any

from models.refs import Loc, replace_strings, strings

PREFIX = "k4u://lines/"
_LINE_REF = re.compile(r"k4u://lines/([1-9][0-9]{0,8})/assets/([0-9]{1,6})", re.IGNORECASE)
FORM = "k4u://lines/<line number>/assets/<index>"


def is_line_ref(value: str) -> bool:
    return value[: len(PREFIX)].lower() == PREFIX


def _parse(value: str) -> tuple[int, int]:
    """(line, index) of a line reference; ValueError when it is malformed."""
    m = _LINE_REF.fullmatch(value)
    if m is None:
        raise ValueError(f"is not a valid line reference: write {FORM} (an earlier line of this file)")
    return int(m.group(1)), int(m.group(2))


def _field(loc: Loc) -> str:
    return ".".join(str(p) for p in loc)


def line_refs(body: dict[str, Any]) -> list[tuple[str, str]]:
    """(field, value) of every line reference in a request's input."""
    return [(_field(loc), s) for loc, s in strings(body.get("input", {}), ("input",)) if is_line_ref(s)]


def problem(body: dict[str, Any], number: int, jobs: set[int]) -> tuple[str, str] | None:
    """(field, message) of the first line reference of line `number` that is malformed or names no
    earlier job line (`jobs`: the line numbers of the file that are jobs)."""
    for field, value in line_refs(body):
        try:
            line, _ = _parse(value)
        except ValueError as exc:
            return field, str(exc)
        if line != number and line not in jobs:
            return field, f"{value} names line {line}, which is not a job (a header, a blank line or no line of this file)"
        if line >= number:
            which = "this line" if line == number else f"line {line}, a later line"
            return field, f"{value} names {which}: a line can only use the output of an earlier line"
    return None


def translate(lines: list[tuple[int, dict[str, Any]]], ids: dict[int, str]) -> list[dict[str, Any]]:
    """The request bodies of `lines` (sent together, in this order) with every line reference
    translated: a line among them -> `k4u://items/<its place>/assets/<index>`; a line sent before
    (its job id in `ids`) -> `k4u://jobs/<job id>/assets/<index>`. KeyError (naming the line) when
    the line is neither, which `problem` rules out for a checked file sent in order."""
    place = {number: i for i, (number, _) in enumerate(lines)}
    out = []
    for number, body in lines:
        if not line_refs(body):
            out.append(body)
            continue

        def swap(_: Loc, s: str, number: int = number) -> str:
            if not is_line_ref(s):
                return s
            line, index = _parse(s)
            if line in place and place[line] < place[number]:
                return f"k4u://items/{place[line]}/assets/{index}"
            if line in ids:
                return f"k4u://jobs/{ids[line]}/assets/{index}"
            raise KeyError(f"line {number}: {s} names line {line}, which has no job yet")

        out.append(body | {"input": replace_strings(body["input"], swap)})
    return out
