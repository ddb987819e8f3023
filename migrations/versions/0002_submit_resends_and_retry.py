"""submit resends, job attempts (retry), deliveries per attempt

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 14:40:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = '0002'
down_revision: Union[str, Sequence[str], None] = '0001'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table('job', schema=None) as batch_op:
        batch_op.add_column(sa.Column('submit_resends', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('attempt', sa.Integer(), nullable=False, server_default='1'))
    with op.batch_alter_table('job', schema=None) as batch_op:
        batch_op.alter_column('submit_resends', server_default=None)
        batch_op.alter_column('attempt', server_default=None)
    with op.batch_alter_table('delivery', schema=None) as batch_op:
        batch_op.add_column(sa.Column('job_attempt', sa.Integer(), nullable=False, server_default='1'))
        batch_op.drop_constraint('uq_delivery_job_event', type_='unique')
        batch_op.create_unique_constraint('uq_delivery_job_event_attempt', ['job_id', 'event', 'job_attempt'])
    with op.batch_alter_table('delivery', schema=None) as batch_op:
        batch_op.alter_column('job_attempt', server_default=None)


def downgrade() -> None:
    with op.batch_alter_table('delivery', schema=None) as batch_op:
        batch_op.drop_constraint('uq_delivery_job_event_attempt', type_='unique')
        batch_op.create_unique_constraint('uq_delivery_job_event', ['job_id', 'event'])
        batch_op.drop_column('job_attempt')
    with op.batch_alter_table('job', schema=None) as batch_op:
        batch_op.drop_column('attempt')
        batch_op.drop_column('submit_resends')
