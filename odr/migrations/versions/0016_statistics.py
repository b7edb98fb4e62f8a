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

# As odr.models.STATISTICS_COLUMNS was when this was written (a migration does not follow the
# models later on).
STATISTICS_COLUMNS = (
    'created_at', 'category', 'region', 'district', 'language', 'status', 'outcome',
    'accepted_at', 'first_session_at', 'closed_at', 'chosen_mediator_id', 'organisation_id',
    'sessions_held', 'side_a_seconds', 'side_b_seconds', 'feedback_answers', 'feedback_neutral',
    'feedback_clear')


def upgrade() -> None:
    with op.batch_alter_table('case', schema=None) as batch_op:
        batch_op.add_column(sa.Column('district', sqlmodel.sql.sqltypes.AutoString(length=80),
                                      nullable=False, server_default=''))
        batch_op.add_column(sa.Column('accepted_at', sqlmodel.sql.sqltypes.UTCDateTime(),
                                      nullable=True))
        batch_op.add_column(sa.Column('first_session_at', sqlmodel.sql.sqltypes.UTCDateTime(),
                                      nullable=True))
        for column in ('sessions_held', 'side_a_seconds', 'side_b_seconds',
                       'feedback_answers', 'feedback_neutral', 'feedback_clear'):
            batch_op.add_column(sa.Column(column, sa.Integer(), nullable=False,
                                          server_default='0'))
    # Cases from before: the moments come from their timelines, the sums from their rows.
    for columns, source in (
            ('sessions_held = count(*), side_a_seconds = sum(side_a_seconds), '
             'side_b_seconds = sum(side_b_seconds)', 'neutralityrecord'),
            ('feedback_answers = count(*), feedback_neutral = sum(neutral), '
             'feedback_clear = sum(clear)', 'feedback')):
        for assignment in columns.split(', '):
            column, value = assignment.split(' = ')
            op.execute(sa.text(
                f'UPDATE "case" SET {column} = (SELECT coalesce({value}, 0) FROM {source} x '
                f'WHERE x.case_id = "case".id)'))
    for column, status in (('accepted_at', 'accepted'), ('first_session_at', 'in_session')):
        op.execute(sa.text(
            f'UPDATE "case" SET {column} = (SELECT min(e.at) FROM caseevent e '
            f"WHERE e.case_id = \"case\".id AND e.status = '{status}')"))
    with op.batch_alter_table('case', schema=None) as batch_op:
        batch_op.create_index('ix_case_statistics', list(STATISTICS_COLUMNS), unique=False)
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
        batch_op.drop_index('ix_case_statistics')
        for column in ('feedback_clear', 'feedback_neutral', 'feedback_answers',
                       'side_b_seconds', 'side_a_seconds', 'sessions_held'):
            batch_op.drop_column(column)
        batch_op.drop_column('first_session_at')
        batch_op.drop_column('accepted_at')
        batch_op.drop_column('district')
