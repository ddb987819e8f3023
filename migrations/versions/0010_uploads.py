"""uploads: input files sent to POST /v1/uploads, and the uploads a job's input references

Revision ID: 0010_uploads
Revises: 0009_asset_attempt
Create Date: 2026-12-07 21:45:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = '0010_uploads'
down_revision: Union[str, Sequence[str], None] = '0009_asset_attempt'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        'upload',
        sa.Column('id', sa.String(length=40), nullable=False),
        sa.Column('object_key', sa.String(length=200), nullable=False),
        sa.Column('filename', sa.String(length=255), nullable=True),
        sa.Column('content_type', sa.String(length=200), nullable=False),
        sa.Column('size', sa.BigInteger(), nullable=False),
        sa.Column('sha256', sa.String(length=64), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('upload', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_upload_object_key'), ['object_key'], unique=False)
        batch_op.create_index(batch_op.f('ix_upload_sha256'), ['sha256'], unique=False)
        batch_op.create_index(batch_op.f('ix_upload_expires_at'), ['expires_at'], unique=False)
    with op.batch_alter_table('job', schema=None) as batch_op:
        batch_op.add_column(sa.Column('inputs', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('job', schema=None) as batch_op:
        batch_op.drop_column('inputs')
    with op.batch_alter_table('upload', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_upload_expires_at'))
        batch_op.drop_index(batch_op.f('ix_upload_sha256'))
        batch_op.drop_index(batch_op.f('ix_upload_object_key'))
    op.drop_table('upload')
