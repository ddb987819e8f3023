"""job deadline index: deadline_at of in-flight jobs only (partial), for the tick's deadline check

Without it `expired_deadlines` (status IN (queued, submitting, running) AND deadline_at <= now)
walks every in-flight job through ix_job_status each tick: about 20-30 ms per tick at 100k
running jobs (bench/inflight.py), growing with the jobs in flight. PostgreSQL picks this index
once the query orders by deadline_at (its statistics cannot tell that finished jobs hold all
the past deadlines, so without the ORDER BY it keeps the status index).

Revision ID: 0005_job_deadline_index
Revises: 0004_batches
Create Date: 2026-12-02 12:00:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = '0005_job_deadline_index'
down_revision: Union[str, Sequence[str], None] = '0004_batches'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

IN_FLIGHT = sa.text("status IN ('queued', 'submitting', 'running')")


def upgrade() -> None:
    with op.batch_alter_table('job', schema=None) as batch_op:
        batch_op.create_index('ix_job_deadline', ['deadline_at'], unique=False,
                              postgresql_where=IN_FLIGHT, sqlite_where=IN_FLIGHT)


def downgrade() -> None:
    with op.batch_alter_table('job', schema=None) as batch_op:
        batch_op.drop_index('ix_job_deadline')
