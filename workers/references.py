"""`k4u://` references in jobs' inputs: checked at intake, resolved at submit (every kind, here).

At intake (`workers.services.intake`):
    for_validation(input) -> (input, refs)     refs as a fetchable-looking URL, so the family's schema
                                               (which may ask for an http(s) URL) judges the rest
    restore(clean, refs) -> clean              the references back in the validated input
    take_in(rt, input, at) -> inputs           in the database: every upload named exists and has not
                                               expired, and can be served as the deployment is set up;
                                               inline files over K4U_INLINE_INPUT_MAX_BYTES stored as
                                               uploads, their references put in their place; the
                                               [{field, ref, upload_id, sha256}] the job keeps
At submit (`workers.services.submit`, right before build_submit):
    resolve(rt, job) -> input                  every reference as what the relay can fetch: a presigned
                                               URL of our S3 store, else a signed K4U_PUBLIC_URL link
                                               (`/v1/files/<token>`), else a data: URI when the file is
                                               within K4U_INLINE_INPUT_MAX_BYTES. StorageError (retry
                                               later) or InputGone (the job cannot be sent). The job
                                               row keeps the reference; only the request carries a link.

Kinds: `uploads` (POST /v1/uploads) and `jobs` (another job's stored asset: its stored object, linked
as an upload is; a parent still running is judged when it succeeds, workers/services/pipelines.py).
`items` (a batch's) never reaches submit: the batch's intake rewrites them to `jobs` references.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar
from typing import Any

from sqlmodel import col, select

from models.datauri import parse_data_uri
from models.errors import StorageError, TooLarge
from models.refs import SCHEME, Loc, Ref, is_inline_file, parse_ref, replace_strings, strings, upload_ref
from models.status import JobStatus
from models.tables import Asset, Job, Upload
from workers import filelinks
from workers.context import Runtime
from workers.db import session_scope
from workers.uploads import store_upload

PLACEHOLDER = "https://k4u-upload.invalid/"  # what a reference looks like to a family's schema
_INLINE: ContextVar[bool] = ContextVar("k4u_inline_ref", default=False)  # resolving for a field that takes inline data only


class InputGone(ValueError):
    """A reference that can no longer be served (its upload deleted): the job cannot be sent."""


class RefProblem(ValueError):
    """A reference or inline file intake refuses: `loc` is its place in the input."""

    def __init__(self, loc: Loc, reason: str) -> None:
        super().__init__(reason)
        self.loc, self.reason = loc, reason


def for_validation(value: dict[str, Any], inline: frozenset[str] = frozenset(), cap: int | None = None) -> tuple[dict[str, Any], dict[str, str]]:
    """The input with each reference as a placeholder URL (for the family's schema), and placeholder ->
    reference; in the family's `inline` fields a placeholder data: URI instead. An inline file over
    `cap` (stored as an upload at intake) stands as a small one of the same media type, so the
    family's schema judges the field, not a size the upload makes moot. RefProblem for a malformed one."""
    refs: dict[str, str] = {}

    def swap(loc: Loc, s: str) -> str:
        try:
            ref = parse_ref(s)
        except ValueError as exc:
            raise RefProblem(loc, str(exc)) from None
        if ref is None:
            if cap is None or not is_inline_file(s, cap):
                return s
            stand_in = _small_inline(s, f"{PLACEHOLDER}inline/{len(refs)}")
            refs[stand_in] = s
            return stand_in
        url = f"{PLACEHOLDER}{ref.kind}/{ref.id}"
        if loc and loc[0] in inline:
            url = "data:application/octet-stream;base64," + base64.b64encode(url.encode()).decode()
        refs[url] = ref.text
        return url

    swapped = replace_strings(value, swap)
    return (swapped, refs) if refs else (value, refs)


def _small_inline(value: str, key: str) -> str:
    """A short inline value shaped like `value` (a data: URI keeps its header), unique by `key`."""
    encoded = base64.b64encode(key.encode()).decode()
    if value[:5].lower() != "data:":
        return encoded
    header = value[: value.find(",")] if "," in value else "data:application/octet-stream;base64"
    return f"{header},{encoded}"


def restore(clean: dict[str, Any], refs: dict[str, str]) -> dict[str, Any]:
    if not refs:
        return clean
    out: dict[str, Any] = replace_strings(clean, lambda _, s: refs.get(s, s))
    return out


def _field(loc: Loc) -> str:
    return ".".join(str(p) for p in loc)


def servable(rt: Runtime, size: int) -> str | None:
    """Why a file of `size` bytes could not be sent to the relay as this deployment is set up, or None."""
    s = rt.settings
    if s.storage_url.startswith("s3://") or (s.public_url and filelinks.link_key(s) is not None) or size <= s.inline_input_max_bytes:
        return None
    return (
        f"is a file of {size} bytes that the relay could not be sent: it is over K4U_INLINE_INPUT_MAX_BYTES "
        f"({s.inline_input_max_bytes}) for a data: URI, and there is no link to give it (set K4U_PUBLIC_URL so the relay "
        "fetches it from /v1/files/, or store files on S3 with K4U_STORAGE_URL=s3://...)"
    )


def take_in(rt: Runtime, value: dict[str, Any]) -> list[dict[str, Any]]:
    """Check the references in `value` (changed in place: inline files become references) and
    return what the job keeps about them. RefProblem names the bad one. `k4u://items/...` (a batch's)
    are left to the batch's intake."""
    found = [(loc, ref) for loc, ref in _refs(value) if ref.kind != "items"]
    cap = rt.settings.inline_input_max_bytes
    inline = [(loc, s) for loc, s in strings(value) if is_inline_file(s, cap)]
    uploads: dict[str, Upload] = {}
    parents: dict[str, tuple[Job, list[Asset]]] = {}
    if found:
        with session_scope(rt.engine) as session:
            for _, ref in found:
                if ref.kind == "uploads" and (row := session.get(Upload, ref.id)) is not None:
                    uploads[ref.id] = row
                elif ref.kind == "jobs" and (parent := session.get(Job, ref.asset()[0])) is not None:
                    stored = list(session.scalars(select(Asset).where(col(Asset.job_id) == parent.id))) if parent.status == JobStatus.SUCCEEDED else []
                    parents[parent.id] = (parent, stored_assets(stored))
    now = rt.clock()
    entries: list[tuple[Loc, dict[str, Any]]] = []
    for loc, ref in found:
        if ref.kind == "jobs":
            entries.append((loc, _job_input(rt, loc, ref, parents)))
            continue
        row = uploads.get(ref.id)
        if row is None:
            raise RefProblem(loc, f"names no upload: {ref.text} does not exist (or was deleted)")
        if row.expires_at <= now:
            raise RefProblem(loc, f"names an expired upload: {ref.text} expired at {row.expires_at.isoformat()} (K4U_UPLOAD_TTL_S)")
        if problem := servable(rt, row.size):
            raise RefProblem(loc, problem)
        entries.append((loc, {"ref": ref.text, "upload_id": ref.id, "sha256": row.sha256}))
    for loc, s in inline:
        data, media_type = _decode_inline(loc, s)
        if problem := servable(rt, len(data)):
            raise RefProblem(loc, problem)
        try:
            row = store_upload(rt, [data], filename=None, content_type=media_type)
        except TooLarge:
            raise RefProblem(loc, f"is an inline file of {len(data)} bytes, over K4U_MAX_UPLOAD_BYTES ({rt.settings.max_upload_bytes})") from None
        _set(value, loc, upload_ref(row.id))
        entries.append((loc, {"ref": upload_ref(row.id), "upload_id": row.id, "sha256": row.sha256}))
    return [{"field": _field(loc)} | e for loc, e in sorted(entries, key=lambda f: _field(f[0]))]


def _job_input(rt: Runtime, loc: Loc, ref: Ref, parents: dict[str, tuple[Job, list[Asset]]]) -> dict[str, Any]:
    """The `inputs` entry of a reference to another job's asset; RefProblem for an unknown job, or an
    index past a finished parent's stored assets (a parent still running is judged when it succeeds)."""
    job_id, index = ref.asset()
    if job_id not in parents:
        raise RefProblem(loc, f"names no job: {job_id} does not exist")
    parent, stored = parents[job_id]
    sha256 = None
    if parent.status == JobStatus.SUCCEEDED:
        if index >= len(stored):
            raise RefProblem(loc, f"names asset {index} of job {job_id}, which stored {len(stored)} asset(s) (indexes from 0)")
        asset = stored[index]
        if problem := servable(rt, asset.size or 0):
            raise RefProblem(loc, problem)
        sha256 = asset.sha256
    return {"ref": ref.text, "job_id": job_id, "index": index, "sha256": sha256}


def stored_assets(assets: Iterable[Asset]) -> list[Asset]:
    """A job's stored assets in the order GET /v1/jobs/{id} lists them (what a reference's index counts)."""
    return sorted((a for a in assets if a.stored_at is not None and a.storage_key), key=lambda a: (-a.attempt, a.index))


def _refs(value: Any) -> Iterator[tuple[Loc, Ref]]:
    for loc, s in strings(value):
        ref = parse_ref(s)  # intake parsed them all before (for_validation): no ValueError here
        if ref is not None:
            yield loc, ref


def _decode_inline(loc: Loc, s: str) -> tuple[bytes, str]:
    uri = parse_data_uri(s)
    try:
        if uri is not None:
            return uri.decode(strict=True), uri.media_type
        data = base64.b64decode("".join(s.split()), validate=True)
        return data, sniff(data)
    except (ValueError, binascii.Error):
        raise RefProblem(loc, "is an inline file whose base64 does not decode") from None


_MAGIC = ((b"\x89PNG\r\n\x1a\n", "image/png"), (b"\xff\xd8\xff", "image/jpeg"), (b"GIF8", "image/gif"), (b"ID3", "audio/mpeg"), (b"fLaC", "audio/flac"))


def sniff(data: bytes) -> str:
    """The media type of a bare base64 file, from its first bytes (a data: URI says its own)."""
    for magic, media in _MAGIC:
        if data.startswith(magic):
            return media
    if data[:4] == b"RIFF" and data[8:12] in (b"WEBP", b"WAVE"):
        return "image/webp" if data[8:12] == b"WEBP" else "audio/wav"
    if data[4:8] == b"ftyp":
        return "video/mp4"
    return "application/octet-stream"


def _set(value: Any, loc: Loc, new: str) -> None:
    target = value
    for part in loc[:-1]:
        target = target[part]
    target[loc[-1]] = new


# -- submit time ---------------------------------------------------------------------------


def resolve(rt: Runtime, job: Job, inline: frozenset[str] = frozenset()) -> dict[str, Any]:
    """The job's input with every reference resolved (job.input itself when it has none); in the
    family's `inline` fields as a data: URI, whatever links the deployment could give."""
    found = list(_refs(job.input))
    if not found:
        return job.input
    links: dict[tuple[str, bool], str] = {}
    for loc, ref in found:
        key = (ref.text, bool(loc) and loc[0] in inline)
        if key not in links:
            token = _INLINE.set(key[1])
            try:
                links[key] = _RESOLVERS[ref.kind](rt, ref)
            finally:
                _INLINE.reset(token)

    def put(loc: Loc, s: str) -> str:
        return links.get((s, bool(loc) and loc[0] in inline), s)

    out: dict[str, Any] = replace_strings(job.input, put)
    left = [loc for loc, s in strings(out) if s[: len(SCHEME)].lower() == SCHEME]
    if left:  # never a k4u:// string to the relay
        raise InputGone(f"input.{_field(left[0])} still holds an unresolved reference")
    return out


def _upload_link(rt: Runtime, ref: Ref) -> str:
    with session_scope(rt.engine) as session:
        row = session.get(Upload, ref.id)
    if row is None:
        raise InputGone(f"{ref.text} was deleted before the job was sent; upload the file again and submit a new job")
    return _link(rt, ref, row.id, row.object_key, row.content_type, row.size)


def _asset_link(rt: Runtime, ref: Ref) -> str:
    """The parent's stored asset (never the relay's URL, which may have expired)."""
    job_id, index = ref.asset()
    with session_scope(rt.engine) as session:
        stored = stored_assets(session.scalars(select(Asset).where(col(Asset.job_id) == job_id)))
    if index >= len(stored):
        raise InputGone(f"{ref.text}: job {job_id} has {len(stored)} stored asset(s)")
    a = stored[index]
    return _link(rt, ref, asset_link_id(a), a.storage_key or "", a.content_type or "application/octet-stream", a.size or 0)


def _item_link(rt: Runtime, ref: Ref) -> str:
    raise InputGone(f"{ref.text} is a batch item reference, which intake rewrites to its job's: it cannot be sent")


def asset_link_id(asset: Asset) -> str:
    """The id a signed file link (`/v1/files/<token>`) names a stored asset by."""
    return f"ast_{asset.id}"


def linked_file(rt: Runtime, ident: str) -> tuple[str, str, int] | None:
    """(object key, content type, size) of what a file link names: an upload, or a stored asset."""
    with session_scope(rt.engine) as session:
        if ident.startswith("ast_"):
            a = session.get(Asset, int(ident[4:]))
            if a is None or a.storage_key is None:
                return None
            return a.storage_key, a.content_type or "application/octet-stream", a.size or 0
        row = session.get(Upload, ident)
        return None if row is None else (row.object_key, row.content_type, row.size)


def _link(rt: Runtime, ref: Ref, ident: str, object_key: str, content_type: str, size: int) -> str:
    s, now = rt.settings, rt.clock()
    inline = _INLINE.get()
    url = None if inline else rt.store.presign(object_key, s.input_url_ttl_s)  # StorageError: the job waits and is retried
    if url is None and not inline:
        url = filelinks.file_url(s, ident, now)
    if url is None:
        if size > (s.max_job_body_bytes if inline else s.inline_input_max_bytes):  # a field taking inline data only: up to a job body's cap
            raise InputGone(servable(rt, size) or f"{ref.text} cannot be served")
        try:
            data = b"".join(rt.store.open(object_key))
        except StorageError as exc:
            if exc.retryable:
                raise  # the store cannot tell now: the job waits and is retried
            raise InputGone(f"the stored file of {ref.text} is missing from the store; upload the file again and submit a new job") from None
        url = f"data:{content_type};base64," + base64.b64encode(data).decode()
    elif not rt.store.exists(object_key):  # StorageError when the store cannot tell: retried
        raise InputGone(f"the stored file of {ref.text} is missing from the store; upload the file again and submit a new job")
    return url


_RESOLVERS: dict[str, Callable[[Runtime, Ref], str]] = {"uploads": _upload_link, "jobs": _asset_link, "items": _item_link}
