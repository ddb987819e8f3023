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
from providers.registry import UnknownProvider, get_adapter
from workers import jobs
from workers.context import Runtime
from workers.db import session_scope
from workers.dispatch import send_all
from workers.services.apply import apply_status


def handle_callback(rt: Runtime, provider: str, job_id: str, token: str, headers: Mapping[str, str], body: bytes) -> str:
    try:
        adapter = get_adapter(provider)
    except UnknownProvider:
        raise CallbackInvalid("unknown provider") from None
    now = rt.clock()
    with session_scope(rt.engine) as session:
        job = jobs.get_job(session, job_id)
        if job is None or job.provider != provider or not hmac.compare_digest(token.encode(), job.callback_token.encode()):
            raise CallbackInvalid("unknown callback URL")
        try:
            st = adapter.parse_callback(headers, body)
        except ProviderProtocolError as exc:
            raise CallbackInvalid(exc.message) from None
        matches = st.external_id == job.id or (st.task_id is not None and st.task_id == job.provider_task_id)
        if adapter.capabilities.callback_trust == "hint":
            matches = False  # the family's notices are only hints: poll now, polling stays the truth
        if job.status == JobStatus.RUNNING and matches:
            fu = apply_status(session, job, st, settings=rt.settings, now=now, source="callback", payload=body)
            outcome = "applied"
        elif job.status == JobStatus.RUNNING:
            jobs.set_fields(session, job.id, JobStatus.RUNNING, next_at=now)
            fu, outcome = [], "hint"
        else:
            fu, outcome = [], "ignored"
    send_all(rt.dispatcher, fu)
    return outcome
