"""provider handle and result expiry: what a family needs to poll, fetch and cancel a task later
(adapter protocol v2), and when the task's result URLs stop working (downloads go soonest first)

Revision ID: 0006_provider_handle
Revises: 0005_job_deadline_index
Create Date: 2026-12-03 12:00:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = '0006_provider_handle'
down_revision: Union[str, Sequence[str], None] = '0005_job_deadline_index'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table('job', schema=None) as batch_op:
        batch_op.add_column(sa.Column('provider_handle', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('result_expires_at', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('job', schema=None) as batch_op:
        batch_op.drop_column('result_expires_at')
        batch_op.drop_column('provider_handle')
