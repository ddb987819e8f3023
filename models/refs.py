"""`k4u://` references in a job's input, parsed in one place (no I/O: workers/references.py resolves them).

A reference is a whole string value of the input: `k4u://uploads/<upload id>` names a file sent to
`POST /v1/uploads`; `k4u://jobs/<job id>/assets/<index>` a stored output of another job (0-based, in
the order GET /v1/jobs/{id} lists its assets); `k4u://items/<i>/assets/<index>`, inside
POST /v1/batches only, the output of the batch's item i (an earlier one), rewritten at intake to
the `k4u://jobs/...` reference of that item's job. The kind after `k4u://` says what is referenced. A string that starts
with `k4u://` and is not a valid reference is refused, never sent to the relay as it is.

Large inline files (a `data:` URI, or a bare base64 value, over K4U_INLINE_INPUT_MAX_BYTES) are
found here too: intake stores them as uploads and puts their reference in their place.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

SCHEME = "k4u://"
UPLOAD_ID = re.compile(r"upl_[0-9a-f]{24}")
JOB_ID = re.compile(r"job_[0-9a-f]{12,40}")
_INDEX = r"(?:0|[1-9][0-9]{0,5})"
JOB_ASSET = re.compile(rf"(job_[0-9a-f]{{12,40}})/assets/({_INDEX})")
ITEM_ASSET = re.compile(rf"({_INDEX})/assets/({_INDEX})")
# kind -> the id grammar of that kind, and an example of it
KINDS: dict[str, re.Pattern[str]] = {"uploads": UPLOAD_ID, "jobs": JOB_ASSET, "items": ITEM_ASSET}
_EXAMPLES = {"uploads": "k4u://uploads/upl_" + "0" * 24, "jobs": "k4u://jobs/<job id>/assets/0", "items": "k4u://items/0/assets/0"}
REF_LENGTH = len(SCHEME) + len("uploads/") + 28  # a reference's length: what an inline file weighs once stored
_BASE64 = re.compile(r"[A-Za-z0-9+/\r\n]+={0,2}")

Loc = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class Ref:
    kind: str
    id: str

    @property
    def text(self) -> str:
        return f"{SCHEME}{self.kind}/{self.id}"

    def asset(self) -> tuple[str, int]:
        """A `jobs` or `items` reference's (job id or item number, asset index)."""
        m = KINDS[self.kind].fullmatch(self.id)
        if m is None or self.kind == "uploads":
            raise ValueError(f"{self.text} names no asset")
        return m.group(1), int(m.group(2))


def upload_ref(upload_id: str) -> str:
    return Ref("uploads", upload_id).text


def job_asset_ref(job_id: str, index: int) -> str:
    return Ref("jobs", f"{job_id}/assets/{index}").text


def parse_ref(value: str) -> Ref | None:
    """The reference a string is; None when it is no reference at all; ValueError (saying what is
    wrong) when it starts with k4u:// but is not a valid one."""
    if value[: len(SCHEME)].lower() != SCHEME:
        return None
    kind, _, ident = value[len(SCHEME) :].partition("/")
    pattern = KINDS.get(kind)
    if pattern is None:
        raise ValueError(f"is not a valid reference: k4u://{kind[:20]}/... names no kind of ours (known: {', '.join(_EXAMPLES.values())})")
    if not pattern.fullmatch(ident):
        raise ValueError(f"is not a valid reference: k4u://{kind}/ takes an id like {_EXAMPLES[kind]}")
    return Ref(kind, ident)


def strings(value: Any, loc: Loc = ()) -> Iterator[tuple[Loc, str]]:
    """Every string in a JSON document, with its path (keys and list indexes)."""
    if isinstance(value, str):
        yield loc, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from strings(v, (*loc, k))
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            yield from strings(v, (*loc, i))


def replace_strings(value: Any, fn: Callable[[Loc, str], str], loc: Loc = ()) -> Any:
    """A copy of the document with every string s at path p replaced by fn(p, s)."""
    if isinstance(value, str):
        return fn(loc, value)
    if isinstance(value, dict):
        return {k: replace_strings(v, fn, (*loc, k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [replace_strings(v, fn, (*loc, i)) for i, v in enumerate(value)]
    return value


def is_inline_file(value: str, cap: int) -> bool:
    """A `data:` URI or a bare base64 value longer than `cap` characters: stored as an upload at intake."""
    if len(value) <= cap:
        return False
    if value[:5].lower() == "data:":
        return True
    # Bare base64: its alphabet only, and (as any file's encoding of that size has) capitals, small letters and digits.
    return _BASE64.fullmatch(value) is not None and all(re.search(c, value) for c in ("[A-Z]", "[a-z]", "[0-9]"))


def stored_size(value: Any, cap: int) -> Any:
    """The document as it will be stored: every inline file over `cap` stands as a reference's length."""
    return replace_strings(value, lambda _, s: "r" * REF_LENGTH if is_inline_file(s, cap) else s)
