"""store_outputs: stream every result URL of a job into object storage, then finish the job.

Keys are deterministic (`<job_id>/<index><ext>`), so a re-run after a crash overwrites the
same objects: a job is stored exactly once whatever happens to the worker. The job becomes
`succeeded` only when every asset has its sha256 and size. Retryable failures wait in next_at
(the sweep re-drives them); after `download_max_attempts` the job fails with the error's code.
"""

from __future__ import annotations

import logging
import mimetypes
from collections.abc import Mapping
from typing import Any
from datetime import timedelta
from urllib.parse import urlsplit

from sqlmodel import select

from models.errors import DownloadFailed, ProviderProtocolError, ProviderUnavailable, StorageError
from models.status import JobStatus
from models.tables import Asset, Job
from providers.registry import get_adapter
from workers import jobs
from workers.context import Runtime
from workers.db import session_scope
from workers.dispatch import send_all
from workers.services.apply import finish
from workers.services.schedule import backoff

log = logging.getLogger("k4u.download")

_EXT = {"video/mp4": ".mp4", "image/png": ".png", "image/jpeg": ".jpg", "image/webp": ".webp", "audio/mpeg": ".mp3", "video/webm": ".webm"}


def store_outputs(rt: Runtime, job_id: str, version: int) -> str:
    s = rt.settings
    with session_scope(rt.engine) as session:
        job = jobs.get_job(session, job_id)
        if job is None or job.status != JobStatus.DOWNLOADING or job.version != version:
            return "stale"
        if not jobs.take_lease(session, job, version, lease_s=max(s.lease_s, s.download_timeout_s), now=rt.clock(),
                               download_attempts=job.download_attempts + 1):
            return "lost"
        lease = job.version
        pending = list(session.exec(select(Asset).where(Asset.job_id == job_id, Asset.stored_at.is_(None)).order_by(Asset.index)).all())  # type: ignore[union-attr]
    try:
        for asset in pending:
            _store_one(rt, asset)
    except (DownloadFailed, StorageError) as exc:
        return _failed(rt, job_id, lease, exc)
    extra = _result_extra(rt, job)
    now = rt.clock()
    with session_scope(rt.engine) as session:
        job = jobs.get_job(session, job_id)
        if job is None:
            return "stale"
        if extra:
            jobs.set_fields(session, job_id, JobStatus.DOWNLOADING, result=dict(job.result or {}) | dict(extra))
        n = len(session.exec(select(Asset.id).where(Asset.job_id == job_id)).all())
        fu = finish(session, job, JobStatus.SUCCEEDED, settings=s, now=now, reason=f"stored {n} asset(s)", expect_version=lease)
        won = job.status == JobStatus.SUCCEEDED
    send_all(rt.dispatcher, fu)
    return "succeeded" if won else "lost"


def _result_extra(rt: Runtime, job: Job) -> Mapping[str, Any]:
    """One optional read for result data the final status lacks (the Midjourney seed). A relay
    that cannot answer it costs the job nothing: the data is simply left out."""
    adapter = get_adapter(job.provider)
    req = adapter.build_result_extra(job.operation, job.provider_task_id) if job.provider_task_id else None
    if req is None:
        return {}
    try:
        return adapter.parse_result_extra(rt.relay.send(req, idempotent=True, label=f"{job.provider}.result_extra"))
    except (ProviderUnavailable, ProviderProtocolError) as exc:
        log.info("no extra result data for %s: %s", job.id, exc.message)
        return {}


def _store_one(rt: Runtime, asset: Asset) -> None:
    with rt.fetcher.open(asset.source_url, needs_auth=asset.needs_auth) as dl:
        content_type = dl.content_type if dl.content_type != "application/octet-stream" else _guess_type(asset.source_url)
        if dl.length is not None and dl.length > rt.settings.download_max_bytes:
            raise DownloadFailed(f"result is {dl.length} bytes, over the {rt.settings.download_max_bytes} cap", code="too_large", retryable=False)
        key = f"{asset.job_id}/{asset.index}{_ext(content_type, asset.source_url)}"
        obj = rt.store.put_stream(key, dl.chunks, content_type, rt.settings.download_max_bytes)
    with session_scope(rt.engine) as session:
        row = session.get(Asset, asset.id)
        if row is not None:
            row.storage_key, row.size, row.sha256 = obj.key, obj.size, obj.sha256
            row.content_type, row.stored_at = obj.content_type, rt.clock()
            session.add(row)
    log.info("stored %s (%d bytes)", obj.key, obj.size)


def _failed(rt: Runtime, job_id: str, lease: int, exc: DownloadFailed | StorageError) -> str:
    s, now = rt.settings, rt.clock()
    with session_scope(rt.engine) as session:
        job = jobs.get_job(session, job_id)
        if job is None or job.version != lease:
            return "lost"
        if exc.retryable and job.download_attempts < s.download_max_attempts:
            delay = backoff(job.download_attempts, 2.0, 600.0)
            jobs.set_fields(session, job_id, JobStatus.DOWNLOADING, next_at=now + timedelta(seconds=delay),
                            error_code=exc.code, error_message=exc.message, error_retryable=True)
            log.warning("download of %s failed (attempt %d), retrying in %.0fs: %s", job_id, job.download_attempts, delay, exc.message)
            return "retry"
        fu = finish(session, job, JobStatus.FAILED, settings=s, now=now, reason=f"download failed: {exc.code}",
                    error=(exc.code, exc.message, False), expect_version=lease)
    send_all(rt.dispatcher, fu)
    return "failed"


def _guess_type(url: str) -> str:
    return mimetypes.guess_type(urlsplit(url).path)[0] or "application/octet-stream"


def _ext(content_type: str, url: str) -> str:
    if content_type in _EXT:
        return _EXT[content_type]
    suffix = urlsplit(url).path.rsplit("/", 1)[-1]
    return "." + suffix.rsplit(".", 1)[1][:8] if "." in suffix else ""
