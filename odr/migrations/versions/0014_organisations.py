"""organisations of mediators, their coordinators, and requests addressed to them

Revision ID: 0014_organisations
Revises: 0013_room_snapshots
Create Date: 2026-12-07 12:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = '0014_organisations'

down_revision: str | None = '0013_room_snapshots'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'organisation',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
        sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=30), nullable=False),
        sa.Column('region', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column('active', sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_table(
        'organisationmember',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('organisation_id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('role', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.ForeignKeyConstraint(['organisation_id'], ['organisation.id'], ),
        sa.ForeignKeyConstraint(['user_id'], ['user.id'], ),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('organisation_id', 'user_id', 'role'),
    )
    with op.batch_alter_table('organisationmember', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_organisationmember_organisation_id'),
                              ['organisation_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_organisationmember_user_id'), ['user_id'],
                              unique=False)
    with op.batch_alter_table('case', schema=None) as batch_op:
        batch_op.add_column(sa.Column('organisation_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_case_organisation_id'), ['organisation_id'],
                              unique=False)
        batch_op.create_foreign_key('fk_case_organisation_id', 'organisation',
                                    ['organisation_id'], ['id'])


def downgrade() -> None:
    with op.batch_alter_table('case', schema=None) as batch_op:
        batch_op.drop_constraint('fk_case_organisation_id', type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_case_organisation_id'))
        batch_op.drop_column('organisation_id')
    with op.batch_alter_table('organisationmember', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_organisationmember_user_id'))
        batch_op.drop_index(batch_op.f('ix_organisationmember_organisation_id'))
    op.drop_table('organisationmember')
    op.drop_table('organisation')
