"""documents: webhook deliveries scheduled in the database, re-filing after a rejection, signing
attempts counted

Revision ID: 0005_filings_retry
Revises: 0003_documents
Create Date: 2026-11-23 16:30:00
"""

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import sqlalchemy as sa
import sqlmodel
import sqlmodel.sql.sqltypes
from alembic import op
from alembic.operations import BatchOperations

revision: str = '0005_filings_retry'
down_revision: str | None = '0003_documents'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OPEN = sa.text("status != 'rejected'")
# 0003 left the (agreement, court) unique constraint unnamed: SQLite names it through this
# convention while batch mode copies the table; PostgreSQL gave it its default name.
SQLITE_NAMES = {"uq": "uq_%(table_name)s_%(column_0_name)s"}
POSTGRES_UNIQUE = "filing_agreement_id_court_id_key"


@contextmanager
def _filing_rebuilt() -> Iterator[BatchOperations]:
    """Change the filing table in SQLite, which copies the table and drops the old copy.

    Its foreign key check refuses that drop while deliveries point at filings, and the check
    cannot be switched off inside the migration's transaction: the deliveries wait aside.
    """
    op.execute("CREATE TEMP TABLE webhookdelivery_aside AS SELECT * FROM webhookdelivery")
    op.execute("DELETE FROM webhookdelivery")
    with op.batch_alter_table('filing', naming_convention=SQLITE_NAMES) as batch_op:
        yield batch_op
    op.execute("INSERT INTO webhookdelivery SELECT * FROM webhookdelivery_aside")
    op.execute("DROP TABLE webhookdelivery_aside")


def upgrade() -> None:
    op.create_table('signingfailure',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('agreement_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['agreement_id'], ['agreement.id'], ),
    sa.ForeignKeyConstraint(['user_id'], ['user.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('signingfailure', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_signingfailure_agreement_id'), ['agreement_id'], unique=False)

    with op.batch_alter_table('webhookdelivery', schema=None) as batch_op:
        batch_op.add_column(sa.Column('next_attempt_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('gave_up_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.create_index(batch_op.f('ix_webhookdelivery_next_attempt_at'), ['next_attempt_at'], unique=False)
    # Deliveries still waiting were retried only in memory: the worker takes them up now.
    op.execute("UPDATE webhookdelivery SET next_attempt_at = created_at "
               "WHERE delivered_at IS NULL")

    # A rejected filing no longer blocks filing the agreement with that court again.
    if op.get_bind().dialect.name == "sqlite":
        with _filing_rebuilt() as batch_op:
            batch_op.drop_constraint('uq_filing_agreement_id', type_='unique')
    else:
        op.drop_constraint(POSTGRES_UNIQUE, 'filing', type_='unique')
    op.create_index('uq_filing_open', 'filing', ['agreement_id', 'court_id'], unique=True,
                    sqlite_where=OPEN, postgresql_where=OPEN)


def downgrade() -> None:
    op.drop_index('uq_filing_open', table_name='filing')
    if op.get_bind().dialect.name == "sqlite":
        with _filing_rebuilt() as batch_op:
            batch_op.create_unique_constraint('uq_filing_agreement_id',
                                              ['agreement_id', 'court_id'])
    else:
        op.create_unique_constraint(POSTGRES_UNIQUE, 'filing', ['agreement_id', 'court_id'])
    with op.batch_alter_table('webhookdelivery', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_webhookdelivery_next_attempt_at'))
        batch_op.drop_column('gave_up_at')
        batch_op.drop_column('next_attempt_at')
    with op.batch_alter_table('signingfailure', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_signingfailure_agreement_id'))
    op.drop_table('signingfailure')
