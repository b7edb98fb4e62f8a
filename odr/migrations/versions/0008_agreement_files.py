"""the agreement's PDF revisions and the local signing authority kept in the database (every
host reads the same files)

Revision ID: 0008_agreement_files
Revises: 0007_password_resets
Create Date: 2026-12-07 05:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = '0008_agreement_files'

down_revision: str | None = '0007_password_resets'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'agreementfile',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('agreement_id', sa.Integer(), nullable=False),
        sa.Column('revision', sa.Integer(), nullable=False),
        sa.Column('data', sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(['agreement_id'], ['agreement.id'], ),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('agreement_id', 'revision'),
    )
    with op.batch_alter_table('agreementfile', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_agreementfile_agreement_id'), ['agreement_id'],
                              unique=False)
    op.create_table(
        'authorityfile',
        sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column('data', sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint('name'),
    )


def downgrade() -> None:
    op.drop_table('authorityfile')
    with op.batch_alter_table('agreementfile', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_agreementfile_agreement_id'))
    op.drop_table('agreementfile')
