"""batches: the batch table; deliveries for a batch (batch_id) as well as for a job

Revision ID: 0004_batches
Revises: 0003_download_deadline
Create Date: 2026-12-02 10:00:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
import sqlmodel


revision: str = '0004_batches'
down_revision: Union[str, Sequence[str], None] = '0003_download_deadline'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table('batch',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('total', sa.Integer(), nullable=False),
    sa.Column('callback_url', sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True),
    sa.Column('metadata', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('batch', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_batch_finished_at'), ['finished_at'], unique=False)
    with op.batch_alter_table('delivery', schema=None) as batch_op:
        batch_op.add_column(sa.Column('batch_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True))
        batch_op.alter_column('job_id', existing_type=sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True)
        batch_op.create_index(batch_op.f('ix_delivery_batch_id'), ['batch_id'], unique=False)
        batch_op.create_foreign_key('fk_delivery_batch_id_batch', 'batch', ['batch_id'], ['id'])


def downgrade() -> None:
    op.execute("DELETE FROM delivery_attempt WHERE delivery_id IN (SELECT id FROM delivery WHERE job_id IS NULL)")
    op.execute("DELETE FROM delivery WHERE job_id IS NULL")
    with op.batch_alter_table('delivery', schema=None) as batch_op:
        batch_op.drop_constraint('fk_delivery_batch_id_batch', type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_delivery_batch_id'))
        batch_op.alter_column('job_id', existing_type=sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False)
        batch_op.drop_column('batch_id')
    with op.batch_alter_table('batch', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_batch_finished_at'))
    op.drop_table('batch')
