"""pipelines: a waiting job's parents (job_dependency); the `waiting` status needs no change (the
status column is a VARCHAR(20) of the enum's values, no native enum and no CHECK)

Revision ID: 0011_job_dependencies
Revises: 0010_uploads
Create Date: 2026-12-07 22:30:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = '0011_job_dependencies'
down_revision: Union[str, Sequence[str], None] = '0010_uploads'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        'job_dependency',
        sa.Column('job_id', sa.String(length=40), nullable=False),
        sa.Column('parent_id', sa.String(length=40), nullable=False),
        sa.ForeignKeyConstraint(['job_id'], ['job.id']),
        sa.ForeignKeyConstraint(['parent_id'], ['job.id']),
        sa.PrimaryKeyConstraint('job_id', 'parent_id'),
    )
    with op.batch_alter_table('job_dependency', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_job_dependency_parent_id'), ['parent_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('job_dependency', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_job_dependency_parent_id'))
    op.drop_table('job_dependency')
