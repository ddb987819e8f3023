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

Kinds: `uploads` (POST /v1/uploads). Job outputs (`k4u://jobs/...`) come as another entry of
`_RESOLVERS` and of `models.refs.KINDS`.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Iterator
from typing import Any

from models.datauri import parse_data_uri
from models.errors import StorageError, TooLarge
from models.refs import SCHEME, Loc, Ref, is_inline_file, parse_ref, replace_strings, strings, upload_ref
from models.tables import Job, Upload
from workers import filelinks
from workers.context import Runtime
from workers.db import session_scope
from workers.uploads import store_upload

PLACEHOLDER = "https://k4u-upload.invalid/"  # what a reference looks like to a family's schema


class InputGone(ValueError):
    """A reference that can no longer be served (its upload deleted): the job cannot be sent."""


class RefProblem(ValueError):
    """A reference or inline file intake refuses: `loc` is its place in the input."""

    def __init__(self, loc: Loc, reason: str) -> None:
        super().__init__(reason)
        self.loc, self.reason = loc, reason


def for_validation(value: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """The input with each reference as a placeholder URL (for the family's schema), and placeholder ->
    reference. RefProblem for a malformed one."""
    refs: dict[str, str] = {}

    def swap(loc: Loc, s: str) -> str:
        try:
            ref = parse_ref(s)
        except ValueError as exc:
            raise RefProblem(loc, str(exc)) from None
        if ref is None:
            return s
        url = f"{PLACEHOLDER}{ref.kind}/{ref.id}"
        refs[url] = ref.text
        return url

    swapped = replace_strings(value, swap)
    return (swapped, refs) if refs else (value, refs)


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
    return what the job keeps about them. RefProblem names the bad one."""
    found = [(loc, ref) for loc, ref in _refs(value)]
    cap = rt.settings.inline_input_max_bytes
    inline = [(loc, s) for loc, s in strings(value) if is_inline_file(s, cap)]
    uploads: dict[str, Upload] = {}
    if found:
        with session_scope(rt.engine) as session:
            for _, ref in found:
                row = session.get(Upload, ref.id) if ref.kind == "uploads" else None
                if row is not None:
                    uploads[ref.id] = row
    now = rt.clock()
    for loc, ref in found:
        row = uploads.get(ref.id)
        if row is None:
            raise RefProblem(loc, f"names no upload: {ref.text} does not exist (or was deleted)")
        if row.expires_at <= now:
            raise RefProblem(loc, f"names an expired upload: {ref.text} expired at {row.expires_at.isoformat()} (K4U_UPLOAD_TTL_S)")
        if problem := servable(rt, row.size):
            raise RefProblem(loc, problem)
    for loc, s in inline:
        data, media_type = _decode_inline(loc, s)
        if problem := servable(rt, len(data)):
            raise RefProblem(loc, problem)
        try:
            row = store_upload(rt, [data], filename=None, content_type=media_type)
        except TooLarge:
            raise RefProblem(loc, f"is an inline file of {len(data)} bytes, over K4U_MAX_UPLOAD_BYTES ({rt.settings.max_upload_bytes})") from None
        _set(value, loc, upload_ref(row.id))
        uploads[row.id] = row
        found.append((loc, Ref("uploads", row.id)))
    return [
        {"field": _field(loc), "ref": ref.text, "upload_id": ref.id, "sha256": uploads[ref.id].sha256} for loc, ref in sorted(found, key=lambda f: _field(f[0]))
    ]


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


def resolve(rt: Runtime, job: Job) -> dict[str, Any]:
    """The job's input with every reference resolved (job.input itself when it has none)."""
    refs = [ref for _, ref in _refs(job.input)]
    if not refs:
        return job.input
    links: dict[str, str] = {}
    for ref in refs:
        if ref.text not in links:
            links[ref.text] = _RESOLVERS[ref.kind](rt, ref)
    out: dict[str, Any] = replace_strings(job.input, lambda _, s: links.get(s, s))
    left = [loc for loc, s in strings(out) if s[: len(SCHEME)].lower() == SCHEME]
    if left:  # never a k4u:// string to the relay
        raise InputGone(f"input.{_field(left[0])} still holds an unresolved reference")
    return out


def _upload_link(rt: Runtime, ref: Ref) -> str:
    with session_scope(rt.engine) as session:
        row = session.get(Upload, ref.id)
    if row is None:
        raise InputGone(f"{ref.text} was deleted before the job was sent; upload the file again and submit a new job")
    s, now = rt.settings, rt.clock()
    url = rt.store.presign(row.object_key, s.input_url_ttl_s)  # StorageError: the job waits and is retried
    if url is None:
        url = filelinks.file_url(s, row.id, now)
    if url is None:
        if row.size > s.inline_input_max_bytes:
            raise InputGone(servable(rt, row.size) or f"{ref.text} cannot be served")
        try:
            data = b"".join(rt.store.open(row.object_key))
        except StorageError as exc:
            if exc.retryable:
                raise  # the store cannot tell now: the job waits and is retried
            raise InputGone(f"the stored file of {ref.text} is missing from the store; upload the file again and submit a new job") from None
        url = f"data:{row.content_type};base64," + base64.b64encode(data).decode()
    elif not rt.store.exists(row.object_key):  # StorageError when the store cannot tell: retried
        raise InputGone(f"the stored file of {ref.text} is missing from the store; upload the file again and submit a new job")
    return url


_RESOLVERS: dict[str, Callable[[Runtime, Ref], str]] = {"uploads": _upload_link}
