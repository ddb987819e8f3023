"""webhook receipts: ids of signed provider deliveries already applied (replay protection)

Revision ID: 0008_webhook_receipts
Revises: 0007_provider_cancel
Create Date: 2026-12-03 14:00:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = '0008_webhook_receipts'
down_revision: Union[str, Sequence[str], None] = '0007_provider_cancel'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        'webhook_receipt',
        sa.Column('provider', sa.String(length=40), nullable=False),
        sa.Column('delivery_id', sa.String(length=200), nullable=False),
        sa.Column('job_id', sa.String(length=40), nullable=False),
        sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('provider', 'delivery_id'),
    )
    op.create_index('ix_webhook_receipt_received_at', 'webhook_receipt', ['received_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_webhook_receipt_received_at', table_name='webhook_receipt')
    op.drop_table('webhook_receipt')
