"""statistics and the weekly early warning: when each case was accepted and first met, its
district, warning subscriptions and weekly runs

Revision ID: 0016_statistics
Revises: 0015_case_created_index
Create Date: 2026-12-07 16:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = '0016_statistics'

down_revision: str | None = '0015_case_created_index'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('case', schema=None) as batch_op:
        batch_op.add_column(sa.Column('district', sqlmodel.sql.sqltypes.AutoString(length=80),
                                      nullable=False, server_default=''))
        batch_op.add_column(sa.Column('accepted_at', sqlmodel.sql.sqltypes.UTCDateTime(),
                                      nullable=True))
        batch_op.add_column(sa.Column('first_session_at', sqlmodel.sql.sqltypes.UTCDateTime(),
                                      nullable=True))
    # Cases from before: the moments come from their timelines.
    for column, status in (('accepted_at', 'accepted'), ('first_session_at', 'in_session')):
        op.execute(sa.text(
            f'UPDATE "case" SET {column} = (SELECT min(e.at) FROM caseevent e '
            f"WHERE e.case_id = \"case\".id AND e.status = '{status}')"))
    op.create_table(
        'warningsubscription',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(['user_id'], ['user.id'], ),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('user_id'),
    )
    op.create_table(
        'warningrun',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('week', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column('ran_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column('flags', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('week'),
    )


def downgrade() -> None:
    op.drop_table('warningrun')
    op.drop_table('warningsubscription')
    with op.batch_alter_table('case', schema=None) as batch_op:
        batch_op.drop_column('first_session_at')
        batch_op.drop_column('accepted_at')
        batch_op.drop_column('district')
