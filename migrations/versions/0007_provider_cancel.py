"""provider cancel: the relay-side cancel of a cancelled job's task (pending | done | failed) and its
tries, so the sweep can resend a lost k4u.cancel and give up after K4U_PROVIDER_CANCEL_MAX_ATTEMPTS

Revision ID: 0007_provider_cancel
Revises: 0006_provider_handle
Create Date: 2026-12-03 13:00:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
import sqlmodel


revision: str = '0007_provider_cancel'
down_revision: Union[str, Sequence[str], None] = '0006_provider_handle'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table('job', schema=None) as batch_op:
        batch_op.add_column(sa.Column('provider_cancel', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True))
        batch_op.add_column(sa.Column('provider_cancel_attempts', sa.Integer(), nullable=False, server_default='0'))
    with op.batch_alter_table('job', schema=None) as batch_op:
        batch_op.alter_column('provider_cancel_attempts', server_default=None)


def downgrade() -> None:
    with op.batch_alter_table('job', schema=None) as batch_op:
        batch_op.drop_column('provider_cancel_attempts')
        batch_op.drop_column('provider_cancel')
