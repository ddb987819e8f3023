"""handle_callback: a provider's notice to /v1/webhooks/{provider}/{job_id}/{token}.

The per-job token (unguessable, compared in constant time) authenticates the URL; relays sign
nothing. A notice whose task id or external_task_id matches the job goes through the same
apply_status as a poll (so duplicates and out-of-order notices change nothing); any other
notice is only a hint that makes the job due for a poll now.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping

from models.errors import CallbackInvalid, ProviderProtocolError
from models.status import JobStatus
from models.tables import Job
from providers.base import CallbackInputs, ProviderStatus, State
from providers.registry import UnknownProvider, get_adapter
from workers import jobs
from workers.context import Runtime
from workers.db import session_scope
from workers.dispatch import send_all
from workers.outcomes import Outcome
from workers.services.apply import apply_status
from workers.services.submit import adopt_task


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
        # No family of this release signs its callbacks, so there is no secret to hand over yet.
        inputs = CallbackInputs(secret=None, now=now, task_id=job.provider_task_id, handle=job.provider_handle or {})
        try:
            verdict = adapter.read_callback(headers, body, inputs)
        except ProviderProtocolError as exc:
            raise CallbackInvalid(exc.message) from None
        if verdict.refused is not None:
            raise CallbackInvalid(verdict.refused, code="callback_refused")
        st = verdict.status or ProviderStatus(None, State.UNKNOWN)
        matches = st.external_id == jobs.external_id(job) or (st.task_id is not None and st.task_id == job.provider_task_id)
        if verdict.trust == "hint" or verdict.status is None:
            matches = False  # only a hint: poll now, polling stays the truth
        if job.status == JobStatus.SUBMITTING and adapter.capabilities.callback_reveals_task and _reveals_lost_task(job, st, True):
            # The submission's answer was lost (or has not come back yet): the callback names the task.
            fu = adopt_task(session, job, st.task_id, st, settings=rt.settings, now=now, reason="recovered from the provider's callback",
                            source="callback", payload=body, expect_version=None) or []
            outcome = Outcome.ADOPTED
        elif job.status == JobStatus.RUNNING and matches:
            fu = apply_status(session, job, st, settings=rt.settings, now=now, source="callback", payload=body)
            outcome = Outcome.APPLIED
        elif job.status == JobStatus.RUNNING:
            jobs.set_fields(session, job.id, JobStatus.RUNNING, next_at=now)
            fu, outcome = [], Outcome.HINT
        elif job.status == JobStatus.FAILED and job.error_code == "submit_outcome_unknown" and _reveals_lost_task(job, st):
            # The submission's answer was lost and the job failed rather than risk a second charge;
            # the relay now shows that it did create the task. Record it for whoever decides on a retry.
            jobs.set_fields(session, job.id, JobStatus.FAILED, provider_task_id=st.task_id)
            jobs.append_event(session, job, JobStatus.FAILED, JobStatus.FAILED, now=now, payload=body,
                              reason=f"callback: the relay did create task {st.task_id} for this job (it was charged)")
            fu, outcome = [], Outcome.RECORDED
        else:
            fu, outcome = [], Outcome.IGNORED
    send_all(rt.dispatcher, fu)
    return outcome


def _reveals_lost_task(job: Job, st: ProviderStatus, echo_required: bool = False) -> bool:
    """The notice names a task for a job that has none recorded; to adopt it (not just note it) the
    notice must echo this attempt's external id."""
    if job.provider_task_id is not None or st.task_id is None:
        return False
    if echo_required:
        return st.external_id == jobs.external_id(job)
    return st.external_id in (None, jobs.external_id(job))
