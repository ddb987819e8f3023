"""Uploads: input files stored in our object store, for jobs to reference (`k4u://uploads/<id>`).

    store_upload(rt, chunks, filename=, content_type=) -> Upload    streamed: sha256 and size on the way, capped
    get_upload(rt, upload_id) -> Upload | None
    find_uploads(rt, sha256) -> list[Upload]                       the same bytes' uploads, not expired
    delete_upload(rt, upload_id) -> bool
    expire_uploads(rt) -> int                                      the beat's part (maintenance.clean_store)

Each upload is a row; its bytes are an object under `uploads/`. The same bytes sent twice share one
object (dedupe by sha256 and size): the second row names the first row's `object_key` and the
copy just written is removed. An object goes with the last row that names it. A row pointing at an
object whose other rows are deleted at that very moment could lose the race; after its commit the
new row checks the shared object still exists and keeps its own copy if not.

Uploads expire K4U_UPLOAD_TTL_S after they were sent, except those a job still needs: one that is
waiting (for its parents), queued (not yet submitted, or waiting to be sent again) or submitting references them.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlmodel import col, func, select

from models.status import JobStatus
from models.tables import Job, Upload
from workers.context import Runtime
from workers.db import session_scope

log = logging.getLogger("k4u.uploads")

KEY_PREFIX = "uploads/"
_EXPIRE_CHUNK = 500


def new_upload_id() -> str:
    return "upl_" + secrets.token_hex(12)


def store_upload(rt: Runtime, chunks: Iterable[bytes], *, filename: str | None, content_type: str, max_bytes: int | None = None) -> Upload:
    """Stream the chunks into the store and record the upload. TooLarge past K4U_MAX_UPLOAD_BYTES
    (or `max_bytes`) and StorageError leave nothing behind."""
    upload_id, now = new_upload_id(), rt.clock()
    key = f"{KEY_PREFIX}{upload_id}"
    obj = rt.store.put_stream(key, chunks, content_type, max_bytes or rt.settings.max_upload_bytes)
    row = Upload(
        id=upload_id,
        object_key=key,
        filename=filename,
        content_type=content_type,
        size=obj.size,
        sha256=obj.sha256,
        created_at=now,
        expires_at=now + timedelta(seconds=rt.settings.upload_ttl_s),
    )
    try:
        with session_scope(rt.engine) as session:
            twin = session.exec(
                select(Upload.object_key).where(Upload.sha256 == obj.sha256, Upload.size == obj.size).order_by(col(Upload.created_at)).limit(1)
            ).first()
            row.object_key = twin or key
            session.add(row)
    except BaseException:
        rt.store.delete(key)  # no row names it
        raise
    if row.object_key != key:
        if rt.store.exists(row.object_key):
            rt.store.delete(key)
        else:  # the shared object went meanwhile: keep this copy
            with session_scope(rt.engine) as session:
                session.get_one(Upload, upload_id).object_key = key
            row.object_key = key
    return row


def get_upload(rt: Runtime, upload_id: str) -> Upload | None:
    with session_scope(rt.engine) as session:
        return session.get(Upload, upload_id)


def find_uploads(rt: Runtime, sha256: str, limit: int = 20) -> list[Upload]:
    """The uploads of these bytes that have not expired, newest first."""
    with session_scope(rt.engine) as session:
        rows = session.exec(
            select(Upload).where(Upload.sha256 == sha256, col(Upload.expires_at) > rt.clock()).order_by(col(Upload.created_at).desc()).limit(limit)
        )
        return list(rows)


def delete_upload(rt: Runtime, upload_id: str) -> bool:
    """Remove the upload (and its object once no other upload names it); False when there is none."""
    with session_scope(rt.engine) as session:
        row = session.get(Upload, upload_id)
        if row is None:
            return False
        key = row.object_key
        session.delete(row)
    _drop_unnamed(rt, [key])
    return True


def needed_uploads(rt: Runtime) -> set[str]:
    """The uploads that jobs not yet submitted (queued or submitting) reference."""
    with session_scope(rt.engine) as session:
        rows = session.exec(
            select(Job.inputs).where(col(Job.status).in_([JobStatus.WAITING, JobStatus.QUEUED, JobStatus.SUBMITTING]), col(Job.inputs).is_not(None))
        )
        return {str(i.get("upload_id")) for inputs in rows for i in inputs or () if isinstance(i, dict)}


def expire_uploads(rt: Runtime, now: datetime | None = None) -> int:
    """Remove the uploads past their expiry that no waiting job needs; how many."""
    now = now or rt.clock()
    needed = sorted(needed_uploads(rt))
    with session_scope(rt.engine) as session:
        query = select(Upload).where(col(Upload.expires_at) <= now)
        if needed:  # few: the uploads of the jobs waiting to be sent
            query = query.where(col(Upload.id).not_in(needed))
        gone = list(session.exec(query.order_by(col(Upload.expires_at)).limit(_EXPIRE_CHUNK)).all())
    if not gone:
        return 0
    with session_scope(rt.engine) as session:
        for u in gone:
            row = session.get(Upload, u.id)
            if row is not None:
                session.delete(row)
    _drop_unnamed(rt, sorted({u.object_key for u in gone}))
    log.info("removed %d expired upload(s)", len(gone))
    return len(gone)


def _drop_unnamed(rt: Runtime, keys: list[str]) -> None:
    """Delete the objects among `keys` that no upload row names any more."""
    with session_scope(rt.engine) as session:
        named = set(session.exec(select(Upload.object_key).where(col(Upload.object_key).in_(keys)).group_by(Upload.object_key).having(func.count() > 0)))
    for key in keys:
        if key not in named:
            rt.store.delete(key)
