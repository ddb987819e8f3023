"""asset attempts: a retried job keeps the assets (and stored files) of its earlier attempts

Revision ID: 0009_asset_attempt
Revises: 0008_webhook_receipts
Create Date: 2026-12-07 18:30:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = '0009_asset_attempt'
down_revision: Union[str, Sequence[str], None] = '0008_webhook_receipts'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table('asset', schema=None) as batch_op:
        batch_op.add_column(sa.Column('attempt', sa.Integer(), nullable=False, server_default='1'))
        batch_op.drop_constraint('uq_asset_job_index', type_='unique')
        batch_op.create_unique_constraint('uq_asset_job_attempt_index', ['job_id', 'attempt', 'index'])
    with op.batch_alter_table('asset', schema=None) as batch_op:
        batch_op.alter_column('attempt', server_default=None)


def downgrade() -> None:
    # Only the latest attempt's assets fit the old constraint; earlier ones' rows go (their files stay in storage).
    op.execute("DELETE FROM asset WHERE attempt < (SELECT job.attempt FROM job WHERE job.id = asset.job_id)")
    with op.batch_alter_table('asset', schema=None) as batch_op:
        batch_op.drop_constraint('uq_asset_job_attempt_index', type_='unique')
        batch_op.create_unique_constraint('uq_asset_job_index', ['job_id', 'index'])
        batch_op.drop_column('attempt')
