"""handle_callback: a provider's notice to /v1/webhooks/{provider}/{job_id}/{token}.

The per-job token (unguessable, compared in constant time) authenticates the URL. Families that
sign their deliveries are verified too when a secret or key set is configured (Replicate:
K4U_REPLICATE_WEBHOOK_SECRET; fal: K4U_FAL_JWKS): a bad signature, a stale timestamp or a replayed
webhook-id is refused (401) and changes nothing, whatever state the job is in. A delivery's
webhook-id is recorded in the same transaction that applies it, so one we answered with an error
is accepted when retried. A signed notice whose task id or external_task_id matches the job goes
through the same apply_status as a poll (so duplicates and out-of-order notices change nothing).

A notice nothing signs (trust "token": whoever holds the URL can say anything in it) never writes
the relay's facts itself: its progress alone is recorded; a terminal state or result URLs only
make the job due for a poll now, and the relay's answer to that poll is what is applied. Any other
notice is only a hint that makes the job due for a poll now.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from models.errors import CallbackInvalid, ProviderProtocolError
from models.status import JobStatus
from models.tables import Job, WebhookReceipt
from providers.base import Adapter, CallbackVerdict, ProviderStatus, State
from providers.registry import UnknownProvider, get_adapter
from workers import jobs
from workers.context import Runtime
from workers.db import rowcount, session_scope
from workers.dispatch import send_all
from workers.outcomes import Outcome
from workers.services.apply import apply_status, reschedule
from workers.services.submit import adopt_task

log = logging.getLogger("k4u.callbacks")
RECEIPT_TTL_S = 3600.0


def handle_callback(rt: Runtime, provider: str, job_id: str, token: str, headers: Mapping[str, str], body: bytes) -> Outcome:
    try:
        adapter = get_adapter(provider)
    except UnknownProvider:
        raise CallbackInvalid("unknown provider") from None
    now = rt.clock()
    with session_scope(rt.engine) as session:
        job = jobs.get_job(session, job_id)
        if job is None or job.provider != provider or not hmac.compare_digest(token.encode(), job.callback_token.encode()):
            raise CallbackInvalid("unknown callback URL")
    verdict = _verdict(rt, adapter, provider, headers, body, now, job.provider_task_id, dict(job.provider_handle or {}))  # may fetch a key set: outside any transaction
    st = verdict.status or ProviderStatus(None, State.UNKNOWN)
    signed = verdict.trust == "signed"
    with session_scope(rt.engine) as session:
        job = jobs.get_job(session, job_id)
        assert job is not None  # jobs are never deleted
        if verdict.delivery_id is not None and not _first_receipt(session, provider, verdict.delivery_id, job_id, now):
            raise CallbackInvalid(f"webhook-id {verdict.delivery_id[:80]} was already received (a replay)", code="callback_refused")
        matches = verdict.status is not None and verdict.trust != "hint" and (
            st.external_id == jobs.external_id(job) or (st.task_id is not None and st.task_id == job.provider_task_id))
        fu, outcome = [], Outcome.IGNORED
        if job.status == JobStatus.SUBMITTING and adapter.capabilities.callback_reveals_task and _reveals_lost_task(job, st, True):
            # The submission's answer was lost (or has not come back yet): the callback names the task.
            fu = adopt_task(session, job, st.task_id, st, settings=rt.settings, now=now, reason="recovered from the provider's callback",
                            source="callback", payload=body, expect_version=None) or []
            outcome = Outcome.ADOPTED
        elif job.status == JobStatus.RUNNING and matches and signed:
            fu = apply_status(session, job, st, settings=rt.settings, now=now, source="callback", payload=body)
            outcome = Outcome.APPLIED
        elif job.status == JobStatus.RUNNING and matches and _progress_only(st):
            # Unsigned progress: recorded (never lowered), the next poll left where it was.
            progress = reschedule(job, st, rt.settings, now).progress
            if progress != job.progress:
                jobs.set_fields(session, job.id, JobStatus.RUNNING, progress=progress)
            outcome = Outcome.APPLIED
        elif job.status == JobStatus.RUNNING:
            # A hint, or an unsigned notice of an end (or result URLs): the relay's answer to a poll now decides.
            jobs.set_fields(session, job.id, JobStatus.RUNNING, next_at=now)
            outcome = Outcome.HINT
        elif job.status == JobStatus.FAILED and job.error_code == "submit_outcome_unknown" and _reveals_lost_task(job, st):
            # The submission's answer was lost and the job failed rather than risk a second charge;
            # the relay now shows that it did create the task. Record it for whoever decides on a retry.
            jobs.set_fields(session, job.id, JobStatus.FAILED, provider_task_id=st.task_id)
            jobs.append_event(session, job, JobStatus.FAILED, JobStatus.FAILED, now=now, payload=body,
                              reason=f"callback: the relay did create task {st.task_id} for this job (it was charged)")
            outcome = Outcome.RECORDED
    send_all(rt.dispatcher, fu)
    return outcome


def _verdict(rt: Runtime, adapter: Adapter, provider: str, headers: Mapping[str, str], body: bytes, now: datetime,
             task_id: str | None, handle: dict[str, Any]) -> CallbackVerdict:
    """The adapter's reading of the delivery, verified where the family signs. When no cached key
    verifies it, the key set is fetched again (at most once a minute) and the check repeated."""
    try:
        verdict = adapter.read_callback(headers, body, rt.callback_inputs(provider, now, task_id, handle))
        if verdict.refused is not None and verdict.unknown_key and rt.fal_keys is not None and rt.fal_keys.refresh():
            verdict = adapter.read_callback(headers, body, rt.callback_inputs(provider, now, task_id, handle))
    except ProviderProtocolError as exc:
        raise CallbackInvalid(exc.message) from None
    if verdict.refused is not None:
        log.warning("refused a %s webhook for job %s: %s", provider, task_id or "?", verdict.refused)
        raise CallbackInvalid(verdict.refused, code="callback_refused")
    return verdict


def _first_receipt(session: Session, provider: str, delivery_id: str, job_id: str, now: datetime) -> bool:
    """Record the delivery's id; False when it was recorded before (a replay)."""
    if session.get(WebhookReceipt, (provider, delivery_id)) is not None:
        return False
    session.add(WebhookReceipt(provider=provider, delivery_id=delivery_id, job_id=job_id, received_at=now))
    try:
        session.flush()
    except IntegrityError:  # the same delivery, arriving twice at once
        return False
    return True


def prune_receipts(session: Session, now: datetime) -> int:
    """For the sweep: receipts older than RECEIPT_TTL_S can go; a replay that old carries a stale
    timestamp and is refused for that."""
    res = session.execute(delete(WebhookReceipt).where(col(WebhookReceipt.received_at) < now - timedelta(seconds=RECEIPT_TTL_S)))
    return rowcount(res)


def _progress_only(st: ProviderStatus) -> bool:
    """An unsigned notice whose word may be recorded as it is: no end, no result URLs."""
    return st.state in (State.QUEUED, State.RUNNING, State.UNKNOWN) and not st.outputs


def _reveals_lost_task(job: Job, st: ProviderStatus, echo_required: bool = False) -> bool:
    """The notice names a task for a job that has none recorded; to adopt it (not just note it) the
    notice must echo this attempt's external id."""
    if job.provider_task_id is not None or st.task_id is None:
        return False
    if echo_required:
        return st.external_id == jobs.external_id(job)
    return st.external_id in (None, jobs.external_id(job))
