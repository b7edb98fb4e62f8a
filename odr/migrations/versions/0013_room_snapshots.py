"""the live rooms' state in the database when one process serves (a restart keeps caucuses,
countdowns and places)

Revision ID: 0013_room_snapshots
Revises: 0012_session_reminders
Create Date: 2026-12-07 12:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = '0013_room_snapshots'

down_revision: str | None = '0012_session_reminders'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'roomsnapshot',
        sa.Column('case_id', sa.Integer(), nullable=False),
        sa.Column('data', sa.Text(), nullable=False),
        sa.Column('saved_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(['case_id'], ['case.id'], ),
        sa.PrimaryKeyConstraint('case_id'),
    )


def downgrade() -> None:
    op.drop_table('roomsnapshot')
