"""the mediation contract and the term of mediation

Revision ID: 0009_mediation_contract
Revises: 0008_agreement_files
Create Date: 2026-12-07 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = '0009_mediation_contract'

down_revision: str | None = '0008_agreement_files'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'mediationcontract',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('case_id', sa.Integer(), nullable=False),
        sa.Column('draft_id', sa.Integer(), nullable=False),
        sa.Column('signatories', sqlmodel.sql.sqltypes.AutoString(length=400), nullable=False),
        sa.Column('term_days', sa.Integer(), nullable=False),
        sa.Column('fee', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column('concluded_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column('void_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(['case_id'], ['case.id'], ),
        sa.ForeignKeyConstraint(['draft_id'], ['draft.id'], ),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('draft_id'),
    )
    with op.batch_alter_table('mediationcontract', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_mediationcontract_case_id'), ['case_id'],
                              unique=False)
    with op.batch_alter_table('case', schema=None) as batch_op:
        batch_op.add_column(sa.Column('term_ends_at', sqlmodel.sql.sqltypes.UTCDateTime(),
                                      nullable=True))
        batch_op.add_column(sa.Column('term_extended_days', sa.Integer(), nullable=False,
                                      server_default='0'))
        batch_op.add_column(sa.Column('term_reminded_at', sqlmodel.sql.sqltypes.UTCDateTime(),
                                      nullable=True))
        batch_op.add_column(sa.Column('term_expired_at', sqlmodel.sql.sqltypes.UTCDateTime(),
                                      nullable=True))
        batch_op.create_index(batch_op.f('ix_case_term_ends_at'), ['term_ends_at'],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table('case', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_case_term_ends_at'))
        batch_op.drop_column('term_expired_at')
        batch_op.drop_column('term_reminded_at')
        batch_op.drop_column('term_extended_days')
        batch_op.drop_column('term_ends_at')
    with op.batch_alter_table('mediationcontract', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_mediationcontract_case_id'))
    op.drop_table('mediationcontract')
