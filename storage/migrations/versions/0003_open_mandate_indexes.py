"""partial indexes on open mandates for the scheduler's due queries

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21
"""
import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

OPEN = sa.text("ended_at IS NULL")


def upgrade() -> None:
    with op.batch_alter_table('mandates', schema=None) as batch_op:
        batch_op.drop_index('ix_mandates_due')
        batch_op.drop_index('ix_mandates_warning')
        batch_op.create_index('ix_mandates_open_ends', ['ends_at', 'id'], unique=False,
                              sqlite_where=OPEN, postgresql_where=OPEN)
        batch_op.create_index('ix_mandates_open_warning', ['next_warning_at', 'id'], unique=False,
                              sqlite_where=OPEN, postgresql_where=OPEN)


def downgrade() -> None:
    with op.batch_alter_table('mandates', schema=None) as batch_op:
        batch_op.drop_index('ix_mandates_open_warning', sqlite_where=OPEN, postgresql_where=OPEN)
        batch_op.drop_index('ix_mandates_open_ends', sqlite_where=OPEN, postgresql_where=OPEN)
        batch_op.create_index('ix_mandates_warning', ['ended_at', 'next_warning_at'], unique=False)
        batch_op.create_index('ix_mandates_due', ['ended_at', 'ends_at'], unique=False)
