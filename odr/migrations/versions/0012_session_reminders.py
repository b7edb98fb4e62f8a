"""session reminders (at booking, a day and an hour before), and calendar files with mail

Revision ID: 0012_session_reminders
Revises: 0011_neutrality
Create Date: 2026-12-07 12:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = '0012_session_reminders'

down_revision: str | None = '0011_neutrality'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'sessionreminder',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('session_id', sa.Integer(), nullable=False),
        sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column('due_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column('sent_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(['session_id'], ['scheduledsession.id'], ),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('session_id', 'kind'),
    )
    with op.batch_alter_table('sessionreminder', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sessionreminder_due_at'), ['due_at'], unique=False)
    with op.batch_alter_table('outboxmail', schema=None) as batch_op:
        batch_op.add_column(sa.Column('calendar', sa.Text(), server_default='', nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('outboxmail', schema=None) as batch_op:
        batch_op.drop_column('calendar')
    with op.batch_alter_table('sessionreminder', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sessionreminder_due_at'))
    op.drop_table('sessionreminder')
