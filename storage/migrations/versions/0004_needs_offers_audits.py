"""needs and offers, their event log, sovereignty audits, and the groups' digest/audit due dates

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-21
"""
import sqlalchemy as sa
import sqlmodel
from alembic import op

import storage.types

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('audits',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('group_id', sa.Integer(), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('period_start', storage.types.UTCDateTime(), nullable=False),
    sa.Column('started_at', storage.types.UTCDateTime(), nullable=False),
    sa.Column('closes_at', storage.types.UTCDateTime(), nullable=False),
    sa.Column('remind_at', storage.types.UTCDateTime(), nullable=True),
    sa.Column('closed_at', storage.types.UTCDateTime(), nullable=True),
    sa.Column('areas', sa.Text(), nullable=False),
    sa.Column('started_by', sa.Integer(), nullable=True),
    sa.Column('auditor_id', sa.Integer(), nullable=True),
    sa.Column('draw_seed', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('draw_candidates', sa.Text(), nullable=True),
    sa.Column('figures', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['auditor_id'], ['members.id'], ),
    sa.ForeignKeyConstraint(['group_id'], ['groups.id'], ),
    sa.ForeignKeyConstraint(['started_by'], ['members.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('group_id', 'number', name='uq_audit_number')
    )
    with op.batch_alter_table('audits', schema=None) as batch_op:
        batch_op.create_index('ix_audits_open_closes', ['closes_at', 'id'], unique=False, sqlite_where=sa.text('closed_at IS NULL'), postgresql_where=sa.text('closed_at IS NULL'))
        batch_op.create_index('ix_audits_open_reminder', ['remind_at', 'id'], unique=False, sqlite_where=sa.text('closed_at IS NULL'), postgresql_where=sa.text('closed_at IS NULL'))

    op.create_table('needs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('group_id', sa.Integer(), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('category', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('urgent', sa.Boolean(), nullable=False),
    sa.Column('author_id', sa.Integer(), nullable=False),
    sa.Column('anonymous', sa.Boolean(), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('claimer_id', sa.Integer(), nullable=True),
    sa.Column('offer_id', sa.Integer(), nullable=True),
    sa.Column('created_at', storage.types.UTCDateTime(), nullable=False),
    sa.Column('claimed_at', storage.types.UTCDateTime(), nullable=True),
    sa.Column('met_at', storage.types.UTCDateTime(), nullable=True),
    sa.Column('cancelled_at', storage.types.UTCDateTime(), nullable=True),
    sa.Column('nudge_at', storage.types.UTCDateTime(), nullable=True),
    sa.Column('nudged_at', storage.types.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['author_id'], ['members.id'], ),
    sa.ForeignKeyConstraint(['claimer_id'], ['members.id'], ),
    sa.ForeignKeyConstraint(['group_id'], ['groups.id'], ),
    sa.ForeignKeyConstraint(['offer_id'], ['needs.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('group_id', 'number', name='uq_need_number')
    )
    with op.batch_alter_table('needs', schema=None) as batch_op:
        batch_op.create_index('ix_needs_listing', ['group_id', 'status', 'urgent', 'created_at'], unique=False)
        batch_op.create_index('ix_needs_met', ['group_id', 'met_at'], unique=False)
        batch_op.create_index('ix_needs_nudge', ['nudge_at', 'id'], unique=False, sqlite_where=sa.text('nudge_at IS NOT NULL'), postgresql_where=sa.text('nudge_at IS NOT NULL'))

    op.create_table('audit_entries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('audit_id', sa.Integer(), nullable=False),
    sa.Column('member_id', sa.Integer(), nullable=False),
    sa.Column('area', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('reported_at', storage.types.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['audit_id'], ['audits.id'], ),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('audit_id', 'member_id', 'area', name='uq_audit_entry')
    )
    with op.batch_alter_table('audit_entries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_entries_audit_id'), ['audit_id'], unique=False)

    op.create_table('need_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('need_id', sa.Integer(), nullable=False),
    sa.Column('action', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('member_id', sa.Integer(), nullable=True),
    sa.Column('offer_id', sa.Integer(), nullable=True),
    sa.Column('at', storage.types.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], ),
    sa.ForeignKeyConstraint(['need_id'], ['needs.id'], ),
    sa.ForeignKeyConstraint(['offer_id'], ['needs.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('need_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_need_events_need_id'), ['need_id'], unique=False)

    with op.batch_alter_table('groups', schema=None) as batch_op:
        batch_op.add_column(sa.Column('next_digest_at', storage.types.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('next_audit_at', storage.types.UTCDateTime(), nullable=True))
        batch_op.create_index(batch_op.f('ix_groups_next_audit_at'), ['next_audit_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_groups_next_digest_at'), ['next_digest_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('groups', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_groups_next_digest_at'))
        batch_op.drop_index(batch_op.f('ix_groups_next_audit_at'))
        batch_op.drop_column('next_audit_at')
        batch_op.drop_column('next_digest_at')

    with op.batch_alter_table('need_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_need_events_need_id'))

    op.drop_table('need_events')
    with op.batch_alter_table('audit_entries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audit_entries_audit_id'))

    op.drop_table('audit_entries')
    with op.batch_alter_table('needs', schema=None) as batch_op:
        batch_op.drop_index('ix_needs_nudge', sqlite_where=sa.text('nudge_at IS NOT NULL'), postgresql_where=sa.text('nudge_at IS NOT NULL'))
        batch_op.drop_index('ix_needs_met')
        batch_op.drop_index('ix_needs_listing')

    op.drop_table('needs')
    with op.batch_alter_table('audits', schema=None) as batch_op:
        batch_op.drop_index('ix_audits_open_reminder', sqlite_where=sa.text('closed_at IS NULL'), postgresql_where=sa.text('closed_at IS NULL'))
        batch_op.drop_index('ix_audits_open_closes', sqlite_where=sa.text('closed_at IS NULL'), postgresql_where=sa.text('closed_at IS NULL'))

    op.drop_table('audits')
