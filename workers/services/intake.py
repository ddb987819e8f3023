"""Intake: a job request made ready to insert, once, however it comes in.

POST /v1/jobs and the tools' submit (create.create_job), each item of POST /v1/batches
(batches.create_batch), and the CLI's local mode (which calls those two) all take a request in
here; a retried job (retry.retry_job) was taken in already and only gets its new attempt's
deadline from here. The stages, in order:

    draft(body, settings, at=..., key=..., urls=...) -> Draft      no database
        the adapter resolved once; the operation (the provider's first by default) and the input
        validated against its schema, `k4u://` references parsed (workers.references);
        the callback_url's SSRF check; the parent the input names (not looked up yet); the
        idempotency digest.
    check_stored(rt, drafts)                                        one session, one query per kind
        the uploads the inputs reference (and their inline files stored as uploads), the parents (one of ours, of the same provider, in a status that allows the input, and
        what the adapter checks), and a job's own batch_id label (not a batch of POST /v1/batches).
    Draft.values(job_id, batch_id=..., deadline=...) -> dict        the new job's own column values
    batch_job_ids(n)                                                a batch's job ids (a job's: workers.jobs.new_job_id)
    deadline(adapter, settings, now)                                a job's (or a new attempt's) deadline

Every refusal is an IntakeInvalid naming the bad value as FastAPI does (without "body"):
("input", "prompt") for a job, ("jobs", 3, "input", "prompt") for item 3 of a batch (`at` is the
item's place in the request body).
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from pydantic import ValidationError
from sqlmodel import col, select

from models.errors import RequestInvalid, UnsafeURL
from models.refs import is_inline_file, strings
from models.schemas import JobCreate
from models.tables import Batch, Job
from providers.base import Adapter, ParentRef, ParentSpec
from providers.registry import UnknownProvider, clean_input, resolve
from workers import jobs, references
from workers.context import Runtime
from workers.db import session_scope
from workers.netguard import check_url
from workers.settings import Settings

Loc = tuple[str | int, ...]
IN_CHUNK = 500  # ids per IN (...) list: far below SQLite's and PostgreSQL's bound-parameter limits


class IntakeInvalid(RequestInvalid):
    """A refused request: `loc` is the path of the bad value in the request body, `reason` what is
    wrong with it, the message both ("input.prompt: Field required")."""

    def __init__(self, loc: Loc, reason: str, *, message: str | None = None) -> None:
        field = ".".join(str(p) for p in loc)
        super().__init__(field, message or f"{field}: {reason}")
        self.loc, self.reason = loc, reason


@dataclass(frozen=True, slots=True)
class Draft:
    """A job request taken in: valid, digested, its parent named; not yet checked against the database."""

    body: JobCreate
    adapter: Adapter
    operation: str
    input: dict[str, Any]
    key: str | None  # the idempotency key (the Idempotency-Key header's or the body's)
    digest: str
    parent: ParentSpec | None
    at: Loc  # the request's place in the body: () for a job, ("jobs", i) for a batch item
    files: bool = False  # the input references uploads or holds inline files to store as uploads
    inputs: list[dict[str, Any]] = field(default_factory=list)  # job.inputs, filled by check_stored
    items: list[tuple[Loc, int, int]] = field(default_factory=list)  # a batch item's k4u://items refs: (place, item, index)

    def values(self, job_id: str, *, batch_id: str | None, deadline: datetime) -> dict[str, Any]:
        """The new job's own values (by Job attribute: `meta` is the `metadata` column); status,
        clock and schedule columns are the caller's."""
        b = self.body
        return {
            "id": job_id,
            "provider": b.provider,
            "operation": self.operation,
            "input": self.input,
            "meta": b.metadata,
            "batch_id": batch_id,
            "callback_url": b.callback_url,
            "callback_token": secrets.token_urlsafe(24),
            "idempotency_key": self.key,
            "request_hash": self.digest,
            "deadline_at": deadline,
            "inputs": self.inputs or None,
        }


class UrlChecks:
    """The callback URLs' SSRF check, once per scheme, host and port (a batch: 10,000 items, a few hosts)."""

    def __init__(self, settings: Settings) -> None:
        self.allow_private = settings.allow_private_urls
        self.seen: dict[tuple[str, str | None, int | None], str | None] = {}

    def problem(self, url: str) -> str | None:
        parts = urlsplit(url)
        try:
            where = (parts.scheme, parts.hostname, parts.port)
        except ValueError:
            where = (parts.scheme, parts.hostname, -1)
        if where not in self.seen:
            try:
                check_url(url, allow_private=self.allow_private)
                self.seen[where] = None
            except UnsafeURL as exc:
                self.seen[where] = exc.message
        return self.seen[where]


def draft(body: JobCreate, settings: Settings, *, at: Loc = (), key: str | None = None, urls: UrlChecks | None = None) -> Draft:
    """Take a request in, without the database. `key` overrides the body's idempotency_key (the
    Idempotency-Key header); `urls` shares the SSRF checks among a batch's items."""
    try:
        adapter, operation = resolve(body.provider, body.operation)
        raw, refs = references.for_validation(body.input, adapter.capabilities.inline_fields, settings.inline_input_max_bytes)
        clean = references.restore(clean_input(adapter, operation, raw), refs)
    except references.RefProblem as exc:
        raise IntakeInvalid((*at, "input", *exc.loc), exc.reason) from None
    except UnknownProvider as exc:
        # A job's answer is the registry's sentence alone (as POST /v1/jobs always gave it).
        raise IntakeInvalid((*at, exc.field), exc.message, message=None if at else exc.message) from None
    except ValidationError as exc:
        err = exc.errors()[0]
        raise IntakeInvalid((*at, "input", *err["loc"]), err["msg"]) from None
    # References to uploads are checked (and large inline files stored as uploads) by check_stored;
    # job references (the pipeline issue) are parsed here too, as another kind of models.refs.
    if body.callback_url and (problem := (urls or UrlChecks(settings)).problem(body.callback_url)):
        raise IntakeInvalid((*at, "callback_url"), problem)
    return Draft(
        body=body,
        adapter=adapter,
        operation=operation,
        input=clean,
        key=key or body.idempotency_key,
        digest=request_digest(body, operation),
        parent=adapter.parent_of(operation, clean),
        at=at,
        files=bool(refs) or any(is_inline_file(v, settings.inline_input_max_bytes) for _, v in strings(clean)),
    )


def request_digest(body: JobCreate, operation: str) -> str:
    """The idempotency digest: the same key with the same request is a replay, whichever way it came in."""
    canonical = body.model_dump(mode="json", exclude={"idempotency_key"}) | {"operation": operation}
    return hashlib.sha256(json.dumps(canonical, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def check_stored(rt: Runtime, drafts: Sequence[Draft]) -> None:
    """What needs the database, for all the drafts at once (nothing at all for most requests): the
    uploads their inputs reference (inline files over K4U_INLINE_INPUT_MAX_BYTES stored as uploads
    first, their references put in their place), the parents their inputs build on (a Midjourney button, a Suno continuation), one query for all,
    and a job's batch_id label, which may not name a batch of POST /v1/batches (its total, counts
    and batch.completed are about the jobs it created)."""
    for d in drafts:
        if d.files:
            try:
                d.inputs.extend(references.take_in(rt, d.input))
            except references.RefProblem as exc:
                raise IntakeInvalid((*d.at, "input", *exc.loc), exc.reason) from None
    parents = sorted({d.parent.job_id for d in drafts if d.parent is not None})
    labels = sorted({d.body.batch_id for d in drafts if d.body.batch_id is not None})
    if not parents and not labels:
        return
    found: dict[str, Job] = {}
    with session_scope(rt.engine) as session:
        for chunk in chunks(parents):
            found |= {j.id: j for j in session.scalars(select(Job).where(col(Job.id).in_(chunk)))}
        taken = {b for chunk in chunks(labels) for b in session.scalars(select(Batch.id).where(col(Batch.id).in_(chunk)))}
    for d in drafts:
        if d.parent is not None:
            _check_parent(d, d.parent, found.get(d.parent.job_id))
        if d.body.batch_id in taken:
            raise IntakeInvalid(
                (*d.at, "batch_id"),
                f"{d.body.batch_id} is a batch of POST /v1/batches, which alone adds jobs to it; leave batch_id out or use a label of your own",
            )


def _check_parent(d: Draft, spec: ParentSpec, parent: Job | None) -> None:
    loc: Loc = (*d.at, "input", *spec.field.split("."))
    provider = d.body.provider
    if parent is None or parent.provider != provider:
        raise IntakeInvalid(loc, f"no {provider} job {spec.job_id}")
    if parent.status not in spec.statuses:
        raise IntakeInvalid(loc, f"job {spec.job_id} is {parent.status}; needs {' or '.join(sorted(spec.statuses))}")
    ref = ParentRef(job_id=parent.id, task_id=parent.provider_task_id, operation=parent.operation, status=parent.status, result=dict(parent.result or {}))
    try:
        d.adapter.check_parent(d.operation, d.input, ref)
    except ValueError as exc:
        raise IntakeInvalid(loc, str(exc)) from None


def deadline(adapter: Adapter, settings: Settings, now: datetime) -> datetime:
    """When a job (or a new attempt of one) started now must be finished: K4U_JOB_DEADLINE_S or the provider's."""
    return now + timedelta(seconds=settings.job_deadline_s or adapter.capabilities.deadline_s)


def batch_job_ids(n: int) -> list[str]:
    """Ids like workers.jobs.new_job_id() for a batch's n jobs: its time and the first half of its
    random part, shared by the batch, then the item index in place of the other half, so they sort
    in item order and a batch's jobs list pages in the order they were sent."""
    prefix = jobs.new_job_id()[:-8]
    return [f"{prefix}{i:08x}" for i in range(n)]


def chunks(values: Sequence[str]) -> list[Sequence[str]]:
    return [values[i : i + IN_CHUNK] for i in range(0, len(values), IN_CHUNK)]
