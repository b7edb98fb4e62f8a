"""the neutrality record: the mediator's time per session in joint and separate meetings

Revision ID: 0011_neutrality
Revises: 0010_closing_feedback
Create Date: 2026-12-07 12:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = '0011_neutrality'

down_revision: str | None = '0010_closing_feedback'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'neutralityrecord',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('case_id', sa.Integer(), nullable=False),
        sa.Column('started_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column('ended_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column('joint_seconds', sa.Integer(), nullable=False),
        sa.Column('side_a_seconds', sa.Integer(), nullable=False),
        sa.Column('side_b_seconds', sa.Integer(), nullable=False),
        sa.Column('other_seconds', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['case_id'], ['case.id'], ),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('neutralityrecord', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_neutralityrecord_case_id'), ['case_id'],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table('neutralityrecord', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_neutralityrecord_case_id'))
    op.drop_table('neutralityrecord')
