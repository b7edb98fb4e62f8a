"""mails with one-time links sent on anonymous requests: password resets, sign-up confirmations

Revision ID: 0007_password_resets
Revises: 0006_participant_removal
Create Date: 2026-12-06 13:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = '0007_password_resets'

down_revision: str | None = '0006_participant_removal'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PURPOSES = ('password_reset', 'signup', 'signup_notice')


def upgrade() -> None:
    op.create_table('emaillink',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('purpose', sa.Enum(*PURPOSES, name='linkpurpose'), nullable=False),
    sa.Column('email', sqlmodel.sql.sqltypes.AutoString(length=254), nullable=False),
    sa.Column('ip', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('token_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('expires_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('used_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('password_hash', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=True),
    sa.Column('language', sqlmodel.sql.sqltypes.AutoString(length=5), nullable=True),
    sa.Column('timezone', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['user.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('emaillink', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_emaillink_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_emaillink_email'), ['email'], unique=False)
        batch_op.create_index(batch_op.f('ix_emaillink_ip'), ['ip'], unique=False)
        batch_op.create_index(batch_op.f('ix_emaillink_token_hash'), ['token_hash'], unique=True)


def downgrade() -> None:
    with op.batch_alter_table('emaillink', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_emaillink_token_hash'))
        batch_op.drop_index(batch_op.f('ix_emaillink_ip'))
        batch_op.drop_index(batch_op.f('ix_emaillink_email'))
        batch_op.drop_index(batch_op.f('ix_emaillink_created_at'))
    op.drop_table('emaillink')
    sa.Enum(name='linkpurpose').drop(op.get_bind(), checkfirst=True)
