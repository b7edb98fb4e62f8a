"""cases: participants removed by the mediator (kept, marked), invitations revoked

Revision ID: 0006_participant_removal
Revises: 0005_filings_retry
Create Date: 2026-12-01 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = '0006_participant_removal'
down_revision: str | None = '0005_filings_retry'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ADD COLUMN on both engines (nullable, or with a default for the rows there are):
    # no table is rebuilt, so no foreign key pointing at these tables is in the way.
    op.add_column('participant', sa.Column('removed_at', sqlmodel.sql.sqltypes.UTCDateTime(),
                                           nullable=True))
    op.add_column('participant', sa.Column('removed_reason',
                                           sqlmodel.sql.sqltypes.AutoString(length=500),
                                           nullable=False, server_default=''))
    op.add_column('invitation', sa.Column('revoked_at', sqlmodel.sql.sqltypes.UTCDateTime(),
                                          nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('invitation', schema=None) as batch_op:
        batch_op.drop_column('revoked_at')
    with op.batch_alter_table('participant', schema=None) as batch_op:
        batch_op.drop_column('removed_reason')
        batch_op.drop_column('removed_at')
