"""closing a case with an outcome, and the parties' anonymous feedback

Revision ID: 0010_closing_feedback
Revises: 0009_mediation_contract
Create Date: 2026-12-07 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = '0010_closing_feedback'

down_revision: str | None = '0009_mediation_contract'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OUTCOMES = ('full_agreement', 'partial_agreement', 'no_agreement', 'withdrawn', 'term_expired')
REASONS = ('settled', 'settled_in_part', 'positions_apart', 'party_stopped', 'not_suitable',
           'referred_to_court', 'party_withdrew', 'term_ran_out', 'other')


def upgrade() -> None:
    # A new column does not make its enum type on PostgreSQL (a new table would): made here.
    for values, name in ((OUTCOMES, 'outcome'), (REASONS, 'closereason')):
        sa.Enum(*values, name=name).create(op.get_bind(), checkfirst=True)
    with op.batch_alter_table('case', schema=None) as batch_op:
        batch_op.add_column(sa.Column('outcome', sa.Enum(*OUTCOMES, name='outcome'),
                                      nullable=True))
        batch_op.add_column(sa.Column('close_reason', sa.Enum(*REASONS, name='closereason'),
                                      nullable=True))
        batch_op.add_column(sa.Column('closed_at', sqlmodel.sql.sqltypes.UTCDateTime(),
                                      nullable=True))
        batch_op.create_index(batch_op.f('ix_case_outcome'), ['outcome'], unique=False)
    op.create_table(
        'feedbackrequest',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('case_id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('answered', sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(['case_id'], ['case.id'], ),
        sa.ForeignKeyConstraint(['user_id'], ['user.id'], ),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('case_id', 'user_id'),
    )
    with op.batch_alter_table('feedbackrequest', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_feedbackrequest_case_id'), ['case_id'],
                              unique=False)
        batch_op.create_index(batch_op.f('ix_feedbackrequest_user_id'), ['user_id'],
                              unique=False)
    op.create_table(
        'feedback',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('case_id', sa.Integer(), nullable=False),
        sa.Column('mediator_id', sa.Integer(), nullable=False),
        sa.Column('neutral', sa.Integer(), nullable=False),
        sa.Column('clear', sa.Integer(), nullable=False),
        sa.Column('again', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column('comment', sa.Text(), server_default='', nullable=False),
        sa.Column('on', sa.Date(), nullable=False),
        sa.ForeignKeyConstraint(['case_id'], ['case.id'], ),
        sa.ForeignKeyConstraint(['mediator_id'], ['user.id'], ),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('feedback', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_feedback_case_id'), ['case_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_feedback_mediator_id'), ['mediator_id'],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table('feedback', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_feedback_mediator_id'))
        batch_op.drop_index(batch_op.f('ix_feedback_case_id'))
    op.drop_table('feedback')
    with op.batch_alter_table('feedbackrequest', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_feedbackrequest_user_id'))
        batch_op.drop_index(batch_op.f('ix_feedbackrequest_case_id'))
    op.drop_table('feedbackrequest')
    with op.batch_alter_table('case', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_case_outcome'))
        batch_op.drop_column('closed_at')
        batch_op.drop_column('close_reason')
        batch_op.drop_column('outcome')
    sa.Enum(name='closereason').drop(op.get_bind(), checkfirst=True)
    sa.Enum(name='outcome').drop(op.get_bind(), checkfirst=True)
