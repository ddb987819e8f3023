"""Status columns read as their models.status enums and are stored as the same strings as before."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import StatementError
from sqlmodel import Session, SQLModel, select

from models.status import DeliveryStatus, JobStatus, SubmitState
from models.tables import Delivery, Job, JobEvent
from workers import jobs
from workers.db import get_engine

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _job(job_id: str) -> Job:
    return Job(id=job_id, provider="kling", operation="text2video", status=JobStatus.QUEUED, callback_token="t", created_at=NOW, updated_at=NOW, next_at=NOW)


def test_reads_give_members_and_the_rows_keep_plain_strings(tmp_path: Path) -> None:
    engine = get_engine(f"sqlite:///{tmp_path}/status.db")
    SQLModel.metadata.create_all(engine)
    jobs.insert_new(engine, _job("job_a"))
    with Session(engine) as session:
        job = session.get(Job, "job_a")
        assert job is not None and job.status is JobStatus.QUEUED and job.submit_state is SubmitState.NOT_SENT
        # The CAS's UPDATE ... RETURNING loads the enum too, as the ORM does.
        moved = jobs.transition_by_id(
            session, "job_a", JobStatus.QUEUED, JobStatus.SUBMITTING, expect_version=0, now=NOW, reason="r", submit_state=SubmitState.SENDING
        )
        assert moved is not None and moved.status is JobStatus.SUBMITTING and moved.submit_state is SubmitState.SENDING
        events = session.exec(select(JobEvent).where(JobEvent.job_id == "job_a").order_by(JobEvent.id)).all()  # type: ignore[arg-type]
        assert [(e.old_status, e.new_status) for e in events] == [(None, JobStatus.QUEUED), (JobStatus.QUEUED, JobStatus.SUBMITTING)]
        assert all(type(e.new_status) is JobStatus for e in events)
        session.add(Delivery(id="d", job_id="job_a", event="job.failed", url="https://x", payload="{}", created_at=NOW))
        session.commit()
        assert session.get(Delivery, "d").status is DeliveryStatus.PENDING  # type: ignore[union-attr]
        row = session.execute(text("SELECT status, submit_state, provider_cancel FROM job")).one()
        assert tuple(row) == ("submitting", "sending", None) and type(row[0]) is str
        with pytest.raises(StatementError):  # not a value of the enum: refused before it reaches the row
            jobs.set_fields(session, "job_a", JobStatus.SUBMITTING, submit_state="lost")
