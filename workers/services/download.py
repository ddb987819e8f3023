"""store_outputs: stream every result URL of a job into object storage, then finish the job.

Keys are deterministic (`<job_id>/<index><ext>`, `<job_id>/<attempt>/<index><ext>` from a retry's
second attempt on: storage_key), so a re-run after a crash overwrites the same objects: a job is
stored exactly once whatever happens to the worker, and a retry never overwrites an earlier
attempt's paid files. The job becomes
`succeeded` only when every asset has its sha256 and size.

The results are paid for, so retries are bounded by time, not by a handful of attempts: the
first attempt sets `download_deadline_at` (K4U_DOWNLOAD_WINDOW_S, or sooner when the provider's
URLs expire sooner). Until then our own storage's errors and the source's transient ones wait
in next_at with backoff (the sweep re-drives them); past it the job fails `download_timeout`
naming the last error. A source that says the result is gone (403/404/410) gets one second chance
per attempt: the relay is asked about the task again for fresh URLs (signed URLs expire), and the
download goes on from those; gone again, or no fresh URL, fails `result_expired`. Too
large fails `too_large`, a malformed URL `invalid_result_url`, and an error that is none of ours (a
bug, bad data) `download_error` rather than a re-drive loop.
"""

from __future__ import annotations

import logging
import mimetypes
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from sqlalchemy import Select, bindparam, exc as sa_exc, select as core_select, update
from sqlmodel import Session, select

from models.errors import DownloadFailed, ErrorCode, JobError, ProviderError, ProviderUnavailable, StorageError
from models.status import JobStatus
from models.tables import Asset, Job
from providers.base import OutputRef, State
from providers.registry import ADAPTERS, get_adapter, with_prefix
from workers import jobs
from workers.context import Runtime
from workers.db import autocommit_scope, rowcount, session_scope, table_of
from workers.dispatch import Followups, send_all
from workers.flows import run_flow
from workers.outcomes import Outcome, run_each
from workers.relay import Download, resolve_relay_path, safe_content_type
from workers.services.lifecycle import finish
from workers.services.schedule import backoff
from workers.settings import Settings
from workers.storage import StoredObject

log = logging.getLogger("k4u.download")

# The database itself is unreachable or busy: nothing to decide now; the sweep re-drives the step.
_DB_UNAVAILABLE = (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.TimeoutError, sa_exc.DisconnectionError)
BACKOFF_BASE_S, BACKOFF_CAP_S = 2.0, 600.0
GONE = ErrorCode.RESULT_EXPIRED  # the source's 403/404/410 (workers.relay)

_EXT = {
    "video/mp4": ".mp4",
    "image/png": ".png",
    "image/jpeg": ".jpg",
    "image/webp": ".webp",
    "audio/mpeg": ".mp3",
    "video/webm": ".webm",
    "audio/wav": ".wav",
    "audio/flac": ".flac",
    "audio/aac": ".aac",
    "audio/opus": ".opus",
}


def store_many(rt: Runtime, items: Sequence[tuple[str, int]]) -> list[Outcome]:
    """The download steps of one message's jobs ((job_id, version) each), side by side on the
    runtime's download threads: a slow or huge source holds up only its own job. Every step runs
    to its end; an error a step raises (the database unreachable) is raised once all have ended,
    and the sweep re-drives what that step left, as it does for a message of one job."""
    if len(items) == 1:
        return [store_outputs(rt, *items[0])]
    futures = [rt.download_threads().submit(store_outputs, rt, job_id, version) for job_id, version in items]
    return run_each(future.result for future in futures)


def store_outputs(rt: Runtime, job_id: str, version: int) -> Outcome:
    s, now = rt.settings, rt.clock()
    # The lease first, as one UPDATE (no SELECT before it), then the assets: two statements, each
    # in autocommit on PostgreSQL. A short lease kept alive while bytes flow (_Heartbeat): a worker
    # killed mid-download delays the job by about K4U_LEASE_S, not by the whole K4U_DOWNLOAD_TIMEOUT_S.
    with autocommit_scope(rt.engine) as session:
        job = jobs.take_download_lease(
            session, job_id, version, now=now, lease_s=s.lease_s, window_ends=_window_ends(s, now), default_end=now + timedelta(seconds=s.download_window_s)
        )
        if job is not None:
            assets = [_Pending(*r) for r in session.execute(_ASSETS, {"job_id": job_id, "attempt": job.attempt})]
    if job is None:
        return _not_leased(rt, job_id, version, now)
    lease = job.version
    pending = [a for a in assets if not a.stored]
    beat = _Heartbeat(rt, job_id, lease)
    stored = 0
    last: tuple[_Pending, StoredObject] | None = None
    fresh: dict[int, _Pending] = {}  # the assets with the relay's fresh URLs, once it was asked again
    try:
        for i, asset in enumerate(pending):
            asset = fresh.get(asset.number, asset)
            try:
                obj = _store_one(rt, asset, beat)
            except DownloadFailed as exc:
                if exc.code != GONE or fresh:
                    raise
                fresh = _repoll(rt, job, pending[i:], exc)
                asset = fresh[asset.number]
                obj = _store_one(rt, asset, beat)
            if i + 1 < len(pending):  # recorded at once: a later attempt skips it
                with session_scope(rt.engine) as session:
                    _record_stored(session, asset, obj, rt.clock())
            else:  # the last one is recorded with the job's success, in one transaction
                last = (asset, obj)
            stored += 1
    except _LeaseLost:
        return Outcome.LOST  # the sweep gave the step to another worker, or the job ended meanwhile
    except (DownloadFailed, StorageError) as exc:
        if fresh and exc.code == GONE:
            exc = DownloadFailed(f"{exc.message}, also at the URL the relay gave when asked again", code=GONE, retryable=False)
        return _failed(rt, job_id, lease, exc, progressed=stored > 0)
    except _DB_UNAVAILABLE:
        raise
    except Exception as exc:  # not one of ours: re-driving would only repeat it, so the job fails, saying what
        log.exception("unexpected error while storing the results of %s", job_id)
        return _failed(rt, job_id, lease, DownloadFailed(f"unexpected error: {_describe(exc)}", code=ErrorCode.DOWNLOAD_ERROR, retryable=False))
    extra = _result_extra(rt, job)
    now = rt.clock()
    with session_scope(rt.engine) as session:
        if last is not None:  # committed even if the CAS below is lost: the object is stored either way
            _record_stored(session, last[0], last[1], now)
        if extra:  # merged into the result as it is now
            current = jobs.get_job(session, job_id)
            if current is None:
                return Outcome.STALE
            job = current
            jobs.set_fields(session, job_id, JobStatus.DOWNLOADING, result=dict(job.result or {}) | dict(extra))
        # `job` is as this attempt's lease left it: the CAS on that version finds it unchanged or loses.
        fu = finish(session, job, JobStatus.SUCCEEDED, settings=s, now=now, reason=f"stored {len(assets)} asset(s)", expect_version=lease)
        won = job.status == JobStatus.SUCCEEDED
    send_all(rt.dispatcher, fu)
    return Outcome.SUCCEEDED if won else Outcome.LOST


def _repoll(rt: Runtime, job: Job, assets: list[_Pending], gone: DownloadFailed) -> dict[int, _Pending]:
    """A result URL answered 403/404/410: ask the relay about the task once more (one poll) and take
    its fresh URLs for these assets (not stored yet), with an event. DownloadFailed result_expired,
    saying so, where the task cannot be asked or the answer has no URL for them; retryable when the
    relay could not answer (the attempt is tried again within the download window)."""
    if not job.provider_task_id or get_adapter(job.provider).capabilities.oneshot:  # a one-shot answer cannot be asked again
        raise gone
    try:
        statuses = run_flow(rt.relay, get_adapter(job.provider).poll([jobs.target(job)], batch=False), f"{job.provider}.repoll")
    except ProviderUnavailable as exc:
        raise DownloadFailed(
            f"{gone.message}; asking the relay for fresh URLs failed: {exc.message}", code=ErrorCode.RESULT_REFRESH_FAILED, retryable=True
        ) from None
    except ProviderError as exc:
        raise DownloadFailed(f"{gone.message}; asked again, the relay answered: {exc.message}", code=GONE, retryable=False) from None
    st = next((st for st in statuses if st.task_id == job.provider_task_id), statuses[0] if len(statuses) == 1 else None)
    outputs = st.outputs if st is not None and st.state == State.SUCCEEDED else []
    if len(outputs) <= max(a.number for a in assets):
        raise DownloadFailed(
            f"{gone.message}; asked again, the relay gave no fresh URL for it (task {st.state if st else 'not in the answer'})", code=GONE, retryable=False
        )
    fresh = {a.number: a._replace(source_url=output_source(outputs[a.number], rt.settings), needs_auth=outputs[a.number].relay_route) for a in assets}
    with session_scope(rt.engine) as session:
        session.execute(_NEW_SOURCE, [{"a_id": a.id, "source_url": a.source_url, "needs_auth": a.needs_auth} for a in fresh.values()])
        jobs.append_event(
            session,
            job,
            JobStatus.DOWNLOADING,
            JobStatus.DOWNLOADING,
            f"{gone.message}: asked the relay again for fresh result URLs; downloading {len(fresh)} from them",
            rt.clock(),
        )
    return fresh


def output_source(out: OutputRef, settings: Settings) -> str:
    """Where an output is fetched from: a relay route (/v1/videos/{id}/content) as its absolute URL
    (under the family's configured route prefix), fetched with the key on that first request only;
    any other URL as given, never with the key."""
    if not out.relay_route:
        return out.url
    return resolve_relay_path(settings.base_url, with_prefix(out.url, settings.route_prefix_map()))


class _Pending(NamedTuple):
    """An asset of the job as the download step reads it."""

    id: int
    job_id: str
    attempt: int
    number: int  # Asset.index
    source_url: str
    needs_auth: bool
    stored: bool


def _assets_stmt() -> Select[Any]:
    at = table_of(Asset)
    return (
        core_select(at.c.id, at.c.job_id, at.c.attempt, at.c.index, at.c.source_url, at.c.needs_auth, at.c.stored_at.is_not(None))
        .where(at.c.job_id == bindparam("job_id"), at.c.attempt == bindparam("attempt"))
        .order_by(at.c.index)
    )


_ASSETS = _assets_stmt()


def _window_ends(settings: Settings, now: datetime) -> dict[str, datetime]:
    """Where a provider's result URLs expire sooner than K4U_DOWNLOAD_WINDOW_S: its window's end."""
    return {name: now + timedelta(seconds=ttl) for name, a in ADAPTERS.items() if (ttl := a.capabilities.result_ttl_s) and ttl < settings.download_window_s}


def _not_leased(rt: Runtime, job_id: str, version: int, now: datetime) -> Outcome:
    """The lease's UPDATE matched nothing: the message is stale, or the download window has closed
    (then the job fails naming the last error), or another worker moved the job on meanwhile."""
    with session_scope(rt.engine) as session:
        job = jobs.get_job(session, job_id)
        if job is None or job.status != JobStatus.DOWNLOADING or job.version != version:
            return Outcome.STALE
        deadline = job.download_deadline_at
        if job.download_attempts == 0 or deadline is None or now < deadline:
            return Outcome.LOST
        fu = _fail_past_deadline(session, job, settings=rt.settings, now=now)
    send_all(rt.dispatcher, fu)
    return Outcome.FAILED


def _result_extra(rt: Runtime, job: Job) -> Mapping[str, Any]:
    """One optional read for result data the final status lacks (the Midjourney seed). A relay
    that cannot answer it costs the job nothing: the data is simply left out."""
    flow = get_adapter(job.provider).fetch_extra(jobs.target(job))
    if flow is None:
        return {}
    try:
        return run_flow(rt.relay, flow, f"{job.provider}.result_extra")
    except ProviderError as exc:
        log.info("no extra result data for %s: %s", job.id, exc.message)
        return {}
    except Exception:  # optional data: a bug reading it must not throw away the stored, paid results
        log.exception("no extra result data for %s: unexpected error", job.id)
        return {}


def timeout_error(last_code: str | None, last_message: str | None) -> JobError:
    last = f"{last_code}: {last_message}" if last_code else "none recorded"
    return JobError(ErrorCode.DOWNLOAD_TIMEOUT, f"the results were not stored before the download deadline (K4U_DOWNLOAD_WINDOW_S); last error: {last}")


def fail_expired_downloads(session: Session, *, settings: Settings, now: datetime, limit: int) -> Followups:
    """For the sweep: fail downloading jobs past their download deadline whose step is not running
    (next_at, the lease of a running attempt, has passed too), naming the last error."""
    expired = session.exec(
        select(Job)
        .where(
            Job.status == JobStatus.DOWNLOADING,
            Job.download_attempts > 0,
            Job.download_deadline_at <= now,  # type: ignore[operator]
            Job.next_at <= now,  # type: ignore[operator]
        )
        .limit(limit)
    ).all()
    fu: Followups = []
    for job in expired:
        fu += _fail_past_deadline(session, job, settings=settings, now=now)
    return fu


def _fail_past_deadline(session: Session, job: Job, *, settings: Settings, now: datetime) -> Followups:
    """Fail a downloading job whose download window has closed, naming its last error (CAS on its version)."""
    return finish(
        session,
        job,
        JobStatus.FAILED,
        settings=settings,
        now=now,
        reason="download deadline passed",
        error=timeout_error(job.error_code, job.error_message),
        expect_version=job.version,
    )


class _LeaseLost(Exception):
    """The job is no longer this attempt's (its version moved on): stop streaming."""


class _Heartbeat:
    """Pushes the download's lease (next_at) out while it streams, about every third of
    K4U_LEASE_S, fenced on the attempt's version."""

    def __init__(self, rt: Runtime, job_id: str, lease: int) -> None:
        self._rt, self._job_id, self._lease = rt, job_id, lease
        self._every = max(1.0, rt.settings.lease_s / 3)
        self._next = time.monotonic() + self._every

    def chunks(self, source: Iterable[bytes]) -> Iterator[bytes]:
        for chunk in source:
            self.beat_if_due()
            yield chunk

    def beat_if_due(self) -> None:
        if time.monotonic() >= self._next:
            self.beat()

    def beat(self) -> None:
        self._next = time.monotonic() + self._every
        now = self._rt.clock()
        with session_scope(self._rt.engine) as session:
            jt = table_of(Job)
            res = session.execute(
                update(jt)
                .where(jt.c.id == self._job_id, jt.c.version == self._lease, jt.c.status == JobStatus.DOWNLOADING)
                .values(next_at=now + timedelta(seconds=self._rt.settings.lease_s))
            )
            if rowcount(res) != 1:
                raise _LeaseLost()


def _store_one(rt: Runtime, asset: _Pending, beat: _Heartbeat) -> StoredObject:
    def put(dl: Download) -> StoredObject:
        """One pass of the body into the store; called again if the source starts over after a drop
        (the failed put has left nothing behind, so the new pass replaces it cleanly)."""
        content_type = safe_content_type(dl.content_type if dl.content_type != "application/octet-stream" else _guess_type(asset.source_url))
        if dl.length is not None and dl.length > rt.settings.download_max_bytes:
            raise DownloadFailed(f"result is {dl.length} bytes, over the {rt.settings.download_max_bytes} cap", code=ErrorCode.TOO_LARGE, retryable=False)
        key = storage_key(asset.job_id, asset.attempt, asset.number, _ext(content_type, asset.source_url))
        return rt.store.put_stream(key, beat.chunks(dl.chunks), content_type, rt.settings.download_max_bytes)

    obj = rt.fetcher.fetch(asset.source_url, put, needs_auth=asset.needs_auth)
    log.info("stored %s (%d bytes)", obj.key, obj.size)
    beat.beat_if_due()
    return obj


def store_body(rt: Runtime, job_id: str, attempt: int, dl: Download) -> StoredObject:
    """A result that came as an answer's body (a one-shot submit marked stream_body_as_asset),
    streamed into the store as the attempt's first asset: sha256 and size on the way, never whole in memory."""
    if dl.length is not None and dl.length > rt.settings.download_max_bytes:
        raise DownloadFailed(f"result is {dl.length} bytes, over the {rt.settings.download_max_bytes} cap", code=ErrorCode.TOO_LARGE, retryable=False)
    key = storage_key(job_id, attempt, 0, _ext(dl.content_type, ""))
    obj = rt.store.put_stream(key, dl.chunks, dl.content_type, rt.settings.download_max_bytes)
    log.info("stored %s (%d bytes) from the submit's answer", obj.key, obj.size)
    return obj


def record_body(session: Session, job_id: str, attempt: int, obj: StoredObject, now: datetime) -> None:
    """The attempt's first asset (inserted by apply_status) is the stored answer body: nothing to fetch."""
    at = table_of(Asset)
    session.execute(
        update(at)
        .where(at.c.job_id == job_id, at.c.attempt == attempt, at.c.index == 0)
        .values(storage_key=obj.key, size=obj.size, sha256=obj.sha256, content_type=obj.content_type, stored_at=now)
    )


def storage_key(job_id: str, attempt: int, index: int, ext: str) -> str:
    """Where an asset's bytes go: `<job>/<index><ext>` for a job's first attempt (the layout of every
    object stored before retries kept their files), `<job>/<attempt>/<index><ext>` for a retry's."""
    return f"{job_id}/{index}{ext}" if attempt == 1 else f"{job_id}/{attempt}/{index}{ext}"


def _record_stored(session: Session, asset: _Pending, obj: StoredObject, now: datetime) -> None:
    session.execute(
        _RECORD_STORED, {"a_id": asset.id, "storage_key": obj.key, "size": obj.size, "sha256": obj.sha256, "content_type": obj.content_type, "stored_at": now}
    )


def _record_stored_stmt() -> Any:
    """UPDATE asset SET what was stored WHERE id: built once (building it cost more than running it)."""
    at = table_of(Asset)
    return (
        update(at)
        .where(at.c.id == bindparam("a_id"))
        .values({c: bindparam(c, type_=at.c[c].type) for c in ("storage_key", "size", "sha256", "content_type", "stored_at")})
    )


_RECORD_STORED = _record_stored_stmt()
_NEW_SOURCE = (
    update(table_of(Asset)).where(table_of(Asset).c.id == bindparam("a_id")).values(source_url=bindparam("source_url"), needs_auth=bindparam("needs_auth"))
)


def _failed(rt: Runtime, job_id: str, lease: int, exc: DownloadFailed | StorageError, *, progressed: bool = False) -> Outcome:
    """Retry within the download window, or finish the job failed. Our own storage's errors are
    always retried: they say nothing about the paid result, which is still at its source. An
    attempt that stored some assets before failing retries soon (the backoff starts again)."""
    s, now = rt.settings, rt.clock()
    retry = isinstance(exc, StorageError) or exc.retryable
    with session_scope(rt.engine) as session:
        job = jobs.get_job(session, job_id)
        if job is None or job.version != lease:
            return Outcome.LOST
        deadline = job.download_deadline_at
        error = JobError.of(exc, retryable=False)
        if retry and job.download_attempts >= s.download_max_attempts:
            error = JobError(
                ErrorCode.DOWNLOAD_ATTEMPTS_EXHAUSTED,
                f"gave up after {job.download_attempts} download attempts (K4U_DOWNLOAD_MAX_ATTEMPTS); last error: {exc.code}: {exc.message}",
            )
        elif retry and deadline is not None and now >= deadline:
            error = timeout_error(exc.code, exc.message)
        elif retry:
            at = now + timedelta(seconds=backoff(1 if progressed else job.download_attempts, BACKOFF_BASE_S, BACKOFF_CAP_S))
            at = min(at, deadline) if deadline is not None else at
            jobs.set_fields(session, job_id, JobStatus.DOWNLOADING, next_at=at, **JobError.of(exc, retryable=True).columns())
            log.warning(
                "download of %s failed (attempt %d), retrying in %.0fs: %s: %s",
                job_id,
                job.download_attempts,
                (at - now).total_seconds(),
                exc.code,
                exc.message,
            )
            return Outcome.RETRY
        fu = finish(session, job, JobStatus.FAILED, settings=s, now=now, reason=f"download failed: {error.code}", error=error, expect_version=lease)
    send_all(rt.dispatcher, fu)
    return Outcome.FAILED


def _describe(exc: BaseException) -> str:
    """Type and first line of an unexpected error (SQL and its parameters stay out)."""
    first = (str(exc).strip().splitlines() or [""])[0][:300]
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def _guess_type(url: str) -> str:
    if url[:5].lower() == "data:":  # its media type is the one it declares
        return "application/octet-stream"
    return mimetypes.guess_type(urlsplit(url).path)[0] or "application/octet-stream"


def _ext(content_type: str, url: str) -> str:
    if content_type in _EXT:
        return _EXT[content_type]
    if url[:5].lower() == "data:":
        return ""
    suffix = urlsplit(url).path.rsplit("/", 1)[-1]
    return "." + suffix.rsplit(".", 1)[1][:8] if "." in suffix else ""
