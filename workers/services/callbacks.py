"""handle_callback: a provider's notice to /v1/webhooks/{provider}/{job_id}/{token}.

The per-job token (unguessable, compared in constant time) authenticates the URL. Families that
sign their deliveries (capabilities.callback_auth: a Standard Webhooks secret, a JWKS key set) are
verified too when the setting their capabilities name is configured (Replicate:
K4U_REPLICATE_WEBHOOK_SECRET; fal: K4U_FAL_JWKS): a bad signature, a stale timestamp or a replayed
webhook-id is refused (401) and changes nothing, whatever state the job is in. A delivery's
webhook-id is recorded in the same transaction that applies it, so one we answered with an error
is accepted when retried. A signed notice whose task id or external_task_id matches the job goes
through the same apply_status as a poll (so duplicates and out-of-order notices change nothing).

A notice nothing signs (trust "token": whoever holds the URL can say anything in it) never writes
the relay's facts itself: its progress alone is recorded; a terminal state or result URLs only
make the job due for a poll now, and the relay's answer to that poll is what is applied. A notice
naming the task of a job that has none (a lost submit answer) is checked with the relay, through
the adapter's poll of that task, before the task is adopted or recorded. Any other notice is
only a hint that makes the job due for a poll now.
"""

from __future__ import annotations

import hmac
import logging
import re
from collections.abc import Mapping
from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from models.errors import CallbackInvalid, CallbackRefused, CallbackUnknown, ErrorCode, ProviderProtocolError, ProviderUnavailable
from models.status import JobStatus
from models.tables import Job, WebhookReceipt
from providers.base import TASK_ID_MAX, Adapter, CallbackVerdict, LostSubmit, PollTarget, ProviderStatus, State
from providers.registry import UnknownProvider, get_adapter
from workers import jobs
from workers.context import Runtime
from workers.db import rowcount, session_scope
from workers.dispatch import send_all
from workers.flows import run_flow
from workers.outcomes import Outcome
from workers.services.apply import apply_status, reschedule
from workers.services.submit import adopt_task

log = logging.getLogger("k4u.callbacks")
RECEIPT_TTL_S = 3600.0
# A task id a notice names is asked about (in a relay path) and stored (the column's size) only if it looks like one.
_TASK_ID = re.compile(rf"[A-Za-z0-9][A-Za-z0-9_.:-]{{0,{TASK_ID_MAX - 1}}}")


def handle_callback(rt: Runtime, provider: str, job_id: str, token: str, headers: Mapping[str, str], body: bytes) -> Outcome:
    try:
        adapter = get_adapter(provider)
    except UnknownProvider:
        raise CallbackInvalid("unknown provider") from None
    now = rt.clock()
    with session_scope(rt.engine) as session:
        job = jobs.get_job(session, job_id)
        if job is None or job.provider != provider or not hmac.compare_digest(token.encode(), job.callback_token.encode()):
            raise CallbackUnknown("unknown callback URL")
    verdict = _verdict(rt, adapter, provider, headers, body, now, job.provider_task_id)  # may fetch a key set: outside any transaction
    st = verdict.status or ProviderStatus(None, State.UNKNOWN)
    signed = verdict.trust == "signed"
    # An unsigned notice naming the task of a job that has none is only a reason to ask the relay about that task.
    checked = _ask_relay(rt, adapter, job, st) if not signed and _names_lost_task(adapter, job, st) else None
    with session_scope(rt.engine) as session:
        job = jobs.get_job(session, job_id)
        assert job is not None  # jobs are never deleted
        if verdict.delivery_id is not None and not _first_receipt(session, provider, verdict.delivery_id, job_id, now):
            raise CallbackRefused(f"webhook-id {verdict.delivery_id[:80]} was already received (a replay)")
        matches = (
            verdict.status is not None
            and verdict.trust != "hint"
            and (st.external_id == jobs.external_id(job) or (st.task_id is not None and st.task_id == job.provider_task_id))
        )
        fu, outcome = [], Outcome.IGNORED
        if _names_lost_task(adapter, job, st):
            # The submission's answer was lost: the notice names the task the relay made for it.
            confirmed, payload = (st, body) if signed else checked or (None, body)
            if confirmed is None:
                named = st.task_id if _TASK_ID.fullmatch(st.task_id or "") else "with a malformed id"
                jobs.append_event(
                    session,
                    job,
                    job.status,
                    job.status,
                    now=now,
                    payload=body,
                    reason=f"callback: ignored an unverified hint naming task {named}: the relay did not confirm it as this job's task",
                )
            elif job.status == JobStatus.SUBMITTING:  # its task is adopted, with the status the relay gave
                fu = (
                    adopt_task(
                        session,
                        job,
                        confirmed.task_id,
                        confirmed,
                        settings=rt.settings,
                        now=now,
                        payload=payload,
                        expect_version=None,
                        reason="recovered from the provider's callback" + ("" if signed else " (confirmed by the relay)"),
                        source="callback" if signed else "poll",
                    )
                    or []
                )
                outcome = Outcome.ADOPTED
            else:  # it failed rather than risk a second charge: record the task for whoever decides on a retry
                jobs.set_fields(session, job.id, JobStatus.FAILED, provider_task_id=confirmed.task_id)
                jobs.append_event(
                    session,
                    job,
                    JobStatus.FAILED,
                    JobStatus.FAILED,
                    now=now,
                    payload=payload,
                    reason=f"callback: the relay did create task {confirmed.task_id} for this job (it was charged)",
                )
                outcome = Outcome.RECORDED
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
    send_all(rt.dispatcher, fu)
    return outcome


def _verdict(rt: Runtime, adapter: Adapter, provider: str, headers: Mapping[str, str], body: bytes, now: datetime, task_id: str | None) -> CallbackVerdict:
    """The adapter's reading of the delivery, verified where the family signs. When no cached key
    verifies it, the key set is fetched again (at most once a minute) and the check repeated."""
    caps = adapter.capabilities
    try:
        verdict = adapter.read_callback(headers, body, rt.callback_inputs(caps, now))
        if verdict.refused is not None and verdict.unknown_key and (keys := rt.key_set(caps)) is not None and keys.refresh():
            verdict = adapter.read_callback(headers, body, rt.callback_inputs(caps, now))
    except ProviderProtocolError as exc:
        raise CallbackInvalid(exc.message) from None
    if verdict.refused is not None:
        log.warning("refused a %s webhook for job %s: %s", provider, task_id or "?", verdict.refused)
        raise CallbackRefused(verdict.refused)
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


def _names_lost_task(adapter: Adapter, job: Job, st: ProviderStatus) -> bool:
    """The notice names a task for a job whose submit answer was lost: one waiting for its callback
    to reveal it (the notice must echo this attempt's external id), or one that failed
    submit_outcome_unknown (the echo, if any, must be this attempt's)."""
    if job.provider_task_id is not None or st.task_id is None:
        return False
    if job.status == JobStatus.SUBMITTING and adapter.capabilities.lost_submit is LostSubmit.CALLBACK_ECHO:
        return st.external_id == jobs.external_id(job)
    if job.status == JobStatus.FAILED and job.error_code == ErrorCode.SUBMIT_OUTCOME_UNKNOWN:
        return st.external_id in (None, jobs.external_id(job))
    return False


def _ask_relay(rt: Runtime, adapter: Adapter, job: Job, st: ProviderStatus) -> tuple[ProviderStatus, bytes] | None:
    """The relay's status of the task an unsigned notice names (the adapter's poll of that task id)
    and its answer's body, when the relay knows it as this job's task; None when it does not, or
    cannot be asked now."""
    if st.task_id is None or not _TASK_ID.fullmatch(st.task_id):
        return None
    target = PollTarget(job.id, st.task_id, job.operation, job.provider_handle or {}, job.input)
    bodies: list[bytes] = []
    try:
        statuses = run_flow(rt.relay, adapter.poll([target], batch=False), f"{job.provider}.poll", bodies)
    except (ProviderUnavailable, ProviderProtocolError, ValueError) as exc:
        log.warning("could not check task %s named by a callback for job %s: %s", st.task_id, job.id, exc)
        return None
    found = next((s for s in statuses if s.task_id == st.task_id and _names_lost_task(adapter, job, s)), None)
    return (found, bodies[-1]) if found is not None else None
