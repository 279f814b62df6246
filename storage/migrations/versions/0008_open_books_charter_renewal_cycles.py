"""open books, charter, renewal cycles: the ledger and its monthly checks, charter clauses with
their versions and open amendments, renewal review items, role sunset dates, and the group's
statement and renewal dates

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06
"""
from datetime import datetime, timedelta, timezone

import sqlalchemy as sa
import sqlmodel
from alembic import op

import storage.types

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('charter_clauses',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('group_id', sa.Integer(), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('setting_key', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('added_version', sa.Integer(), nullable=False),
    sa.Column('removed_version', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['group_id'], ['groups.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('group_id', 'number', name='uq_charter_clause')
    )
    with op.batch_alter_table('charter_clauses', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_charter_clauses_group_id'), ['group_id'], unique=False)

    op.create_table('charter_amendments',
    sa.Column('proposal_id', sa.Integer(), nullable=False),
    sa.Column('group_id', sa.Integer(), nullable=False),
    sa.Column('action', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('target', sqlmodel.sql.sqltypes.AutoString(length=80), nullable=True),
    sa.Column('clause', sa.Integer(), nullable=True),
    sa.Column('text', sa.Text(), nullable=True),
    sa.Column('setting_key', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('setting_value', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True),
    sa.Column('is_open', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['group_id'], ['groups.id'], ),
    sa.ForeignKeyConstraint(['proposal_id'], ['proposals.id'], ),
    sa.PrimaryKeyConstraint('proposal_id')
    )
    with op.batch_alter_table('charter_amendments', schema=None) as batch_op:
        batch_op.create_index('ux_charter_open_target', ['group_id', 'target'], unique=True, sqlite_where=sa.text('is_open AND target IS NOT NULL'), postgresql_where=sa.text('is_open AND target IS NOT NULL'))

    op.create_table('charter_versions',
    sa.Column('group_id', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('proposal_id', sa.Integer(), nullable=True),
    sa.Column('change', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('clauses', sa.Text(), nullable=False),
    sa.Column('summary', sa.Text(), nullable=False),
    sa.Column('changed_at', storage.types.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['group_id'], ['groups.id'], ),
    sa.ForeignKeyConstraint(['proposal_id'], ['proposals.id'], ),
    sa.PrimaryKeyConstraint('group_id', 'version')
    )
    op.create_table('ledger_entries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('group_id', sa.Integer(), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('amount_cents', sa.BigInteger(), nullable=False),
    sa.Column('currency', sqlmodel.sql.sqltypes.AutoString(length=3), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('category', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.Column('proposal_id', sa.Integer(), nullable=True),
    sa.Column('need_id', sa.Integer(), nullable=True),
    sa.Column('reverses_id', sa.Integer(), nullable=True),
    sa.Column('member_id', sa.Integer(), nullable=False),
    sa.Column('recorded_at', storage.types.UTCDateTime(), nullable=False),
    sa.Column('balance_cents', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['group_id'], ['groups.id'], ),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], ),
    sa.ForeignKeyConstraint(['need_id'], ['needs.id'], ),
    sa.ForeignKeyConstraint(['proposal_id'], ['proposals.id'], ),
    sa.ForeignKeyConstraint(['reverses_id'], ['ledger_entries.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('group_id', 'number', name='uq_ledger_number')
    )
    with op.batch_alter_table('ledger_entries', schema=None) as batch_op:
        batch_op.create_index('ix_ledger_time', ['group_id', 'recorded_at', 'number'], unique=False)
        batch_op.create_index('ux_ledger_reversal', ['reverses_id'], unique=True, sqlite_where=sa.text('reverses_id IS NOT NULL'), postgresql_where=sa.text('reverses_id IS NOT NULL'))

    op.create_table('renewal_items',
    sa.Column('proposal_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('role_id', sa.Integer(), nullable=True),
    sa.Column('clause', sa.Integer(), nullable=True),
    sa.Column('label', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
    sa.Column('kept', sa.Boolean(), nullable=True),
    sa.ForeignKeyConstraint(['proposal_id'], ['proposals.id'], ),
    sa.ForeignKeyConstraint(['role_id'], ['roles.id'], ),
    sa.PrimaryKeyConstraint('proposal_id', 'position')
    )
    op.create_table('ledger_checks',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('group_id', sa.Integer(), nullable=False),
    sa.Column('month', sqlmodel.sql.sqltypes.AutoString(length=7), nullable=False),
    sa.Column('lottery_id', sa.Integer(), nullable=True),
    sa.Column('auditor_id', sa.Integer(), nullable=True),
    sa.Column('opened_at', storage.types.UTCDateTime(), nullable=False),
    sa.Column('remind_at', storage.types.UTCDateTime(), nullable=True),
    sa.Column('answered_at', storage.types.UTCDateTime(), nullable=True),
    sa.Column('verdict', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
    sa.Column('note', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['auditor_id'], ['members.id'], ),
    sa.ForeignKeyConstraint(['group_id'], ['groups.id'], ),
    sa.ForeignKeyConstraint(['lottery_id'], ['lotteries.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('group_id', 'month', name='uq_ledger_check_month')
    )
    with op.batch_alter_table('ledger_checks', schema=None) as batch_op:
        batch_op.create_index('ix_ledger_checks_remind', ['remind_at', 'id'], unique=False, sqlite_where=sa.text('remind_at IS NOT NULL'), postgresql_where=sa.text('remind_at IS NOT NULL'))

    with op.batch_alter_table('groups', schema=None) as batch_op:
        batch_op.add_column(sa.Column('next_statement_at', storage.types.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('next_renewal_at', storage.types.UTCDateTime(), nullable=True))
        batch_op.create_index(batch_op.f('ix_groups_next_renewal_at'), ['next_renewal_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_groups_next_statement_at'), ['next_statement_at'], unique=False)

    with op.batch_alter_table('roles', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sunset_at', storage.types.UTCDateTime(), nullable=True))
        batch_op.create_index(batch_op.f('ix_roles_sunset_at'), ['sunset_at'], unique=False)

    # Groups that already rotate roles get their first renewal review a year from the upgrade (the
    # default renewal_every; a group that set it off is skipped when the date comes).
    first_review = datetime.now(timezone.utc).replace(tzinfo=None) + timedelta(days=365)
    op.execute(sa.text("UPDATE groups SET next_renewal_at = :at WHERE id IN "
                       "(SELECT group_id FROM roles WHERE retired_at IS NULL)").bindparams(at=first_review))



def downgrade() -> None:
    with op.batch_alter_table('ledger_checks', schema=None) as batch_op:
        batch_op.drop_index('ix_ledger_checks_remind', sqlite_where=sa.text('remind_at IS NOT NULL'), postgresql_where=sa.text('remind_at IS NOT NULL'))

    op.drop_table('ledger_checks')
    op.drop_table('renewal_items')
    with op.batch_alter_table('ledger_entries', schema=None) as batch_op:
        batch_op.drop_index('ux_ledger_reversal', sqlite_where=sa.text('reverses_id IS NOT NULL'), postgresql_where=sa.text('reverses_id IS NOT NULL'))
        batch_op.drop_index('ix_ledger_time')

    op.drop_table('ledger_entries')
    op.drop_table('charter_versions')
    with op.batch_alter_table('charter_amendments', schema=None) as batch_op:
        batch_op.drop_index('ux_charter_open_target', sqlite_where=sa.text('is_open AND target IS NOT NULL'), postgresql_where=sa.text('is_open AND target IS NOT NULL'))

    op.drop_table('charter_amendments')
    with op.batch_alter_table('charter_clauses', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_charter_clauses_group_id'))

    op.drop_table('charter_clauses')
    # Plain ALTER TABLE … DROP COLUMN (SQLite 3.35+): a batch copy of groups or roles would drop a table
    # every other table points at, which SQLite refuses while those rows exist.
    for table, column in (('roles', 'sunset_at'), ('groups', 'next_renewal_at'), ('groups', 'next_statement_at')):
        op.drop_index(f'ix_{table}_{column}', table_name=table)
        op.execute(f'ALTER TABLE {table} DROP COLUMN {column}')
