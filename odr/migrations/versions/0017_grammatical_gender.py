"""how Russian texts speak of each person (the timeline's past tense: подал, подала)

Revision ID: 0017_grammatical_gender
Revises: 0016_statistics
Create Date: 2026-12-07 20:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0017_grammatical_gender'

down_revision: str | None = '0016_statistics'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

GENDER = sa.Enum('masculine', 'feminine', 'unspecified', name='grammaticalgender')


def upgrade() -> None:
    # PostgreSQL's add_column does not create the enum's type itself (a table's creation does).
    GENDER.create(op.get_bind(), checkfirst=True)
    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.add_column(sa.Column('grammatical_gender', GENDER, nullable=False,
                                      server_default='unspecified'))


def downgrade() -> None:
    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.drop_column('grammatical_gender')
    GENDER.drop(op.get_bind(), checkfirst=True)
