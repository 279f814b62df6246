"""assemblies and mediation: scheduled assemblies with their agenda items and the members
backing them, volunteers for facilitation, minutes and mediation, private mediations, and the
link from a lottery to the assembly whose facilitator or note-taker it draws

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06
"""
import sqlalchemy as sa
import sqlmodel
from alembic import op

import storage.types

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('assemblies',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('group_id', sa.Integer(), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('starts_at', storage.types.UTCDateTime(), nullable=False),
    sa.Column('place', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=True),
    sa.Column('title', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('created_by', sa.Integer(), nullable=True),
    sa.Column('created_at', storage.types.UTCDateTime(), nullable=False),
    sa.Column('next_due_at', storage.types.UTCDateTime(), nullable=True),
    sa.Column('reminded_through', storage.types.UTCDateTime(), nullable=True),
    sa.Column('drawn_at', storage.types.UTCDateTime(), nullable=True),
    sa.Column('frozen_at', storage.types.UTCDateTime(), nullable=True),
    sa.Column('started_at', storage.types.UTCDateTime(), nullable=True),
    sa.Column('cancelled_at', storage.types.UTCDateTime(), nullable=True),
    sa.Column('facilitator_id', sa.Integer(), nullable=True),
    sa.Column('note_taker_id', sa.Integer(), nullable=True),
    sa.Column('facilitator_notes', sa.Text(), nullable=True),
    sa.Column('note_taker_notes', sa.Text(), nullable=True),
    sa.Column('minutes', sa.Text(), nullable=True),
    sa.Column('minutes_done_at', storage.types.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['created_by'], ['members.id'], ),
    sa.ForeignKeyConstraint(['facilitator_id'], ['members.id'], ),
    sa.ForeignKeyConstraint(['group_id'], ['groups.id'], ),
    sa.ForeignKeyConstraint(['note_taker_id'], ['members.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('group_id', 'number', name='uq_assembly_number')
    )
    with op.batch_alter_table('assemblies', schema=None) as batch_op:
        batch_op.create_index('ix_assemblies_due', ['next_due_at', 'id'], unique=False, sqlite_where=sa.text('next_due_at IS NOT NULL'), postgresql_where=sa.text('next_due_at IS NOT NULL'))
        batch_op.create_index('ix_assemblies_group_start', ['group_id', 'starts_at'], unique=False)

    op.create_table('mediations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('group_id', sa.Integer(), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('requester_id', sa.Integer(), nullable=False),
    sa.Column('other_party_id', sa.Integer(), nullable=True),
    sa.Column('about', sa.Text(), nullable=True),
    sa.Column('first_mediator_id', sa.Integer(), nullable=False),
    sa.Column('second_mediator_id', sa.Integer(), nullable=True),
    sa.Column('seed', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('opened_at', storage.types.UTCDateTime(), nullable=False),
    sa.Column('closed_at', storage.types.UTCDateTime(), nullable=True),
    sa.Column('closed_by', sa.Integer(), nullable=True),
    sa.Column('note', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['closed_by'], ['members.id'], ),
    sa.ForeignKeyConstraint(['first_mediator_id'], ['members.id'], ),
    sa.ForeignKeyConstraint(['group_id'], ['groups.id'], ),
    sa.ForeignKeyConstraint(['other_party_id'], ['members.id'], ),
    sa.ForeignKeyConstraint(['requester_id'], ['members.id'], ),
    sa.ForeignKeyConstraint(['second_mediator_id'], ['members.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('group_id', 'number', name='uq_mediation_number')
    )
    with op.batch_alter_table('mediations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_mediations_group_id'), ['group_id'], unique=False)

    op.create_table('task_volunteers',
    sa.Column('group_id', sa.Integer(), nullable=False),
    sa.Column('task', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('member_id', sa.Integer(), nullable=False),
    sa.Column('since', storage.types.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['group_id'], ['groups.id'], ),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], ),
    sa.PrimaryKeyConstraint('group_id', 'task', 'member_id')
    )
    op.create_table('agenda_items',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('group_id', sa.Integer(), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('author_id', sa.Integer(), nullable=False),
    sa.Column('created_at', storage.types.UTCDateTime(), nullable=False),
    sa.Column('support', sa.Integer(), nullable=False),
    sa.Column('assembly_id', sa.Integer(), nullable=True),
    sa.Column('position', sa.Integer(), nullable=True),
    sa.Column('withdrawn_at', storage.types.UTCDateTime(), nullable=True),
    sa.Column('proposal_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['assembly_id'], ['assemblies.id'], ),
    sa.ForeignKeyConstraint(['author_id'], ['members.id'], ),
    sa.ForeignKeyConstraint(['group_id'], ['groups.id'], ),
    sa.ForeignKeyConstraint(['proposal_id'], ['proposals.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('group_id', 'number', name='uq_agenda_number')
    )
    with op.batch_alter_table('agenda_items', schema=None) as batch_op:
        batch_op.create_index('ix_agenda_pending', ['group_id', 'assembly_id', 'withdrawn_at'], unique=False)

    op.create_table('agenda_supports',
    sa.Column('item_id', sa.Integer(), nullable=False),
    sa.Column('member_id', sa.Integer(), nullable=False),
    sa.Column('supported_at', storage.types.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['item_id'], ['agenda_items.id'], ),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], ),
    sa.PrimaryKeyConstraint('item_id', 'member_id')
    )
    if op.get_bind().dialect.name == 'sqlite':
        # A plain ADD COLUMN: a batch copy of lotteries would drop a table ledger_checks points at.
        op.execute('ALTER TABLE lotteries ADD COLUMN assembly_id INTEGER REFERENCES assemblies (id)')
    else:
        op.add_column('lotteries', sa.Column('assembly_id', sa.Integer(), nullable=True))
        op.create_foreign_key('lotteries_assembly_id_fkey', 'lotteries', 'assemblies', ['assembly_id'], ['id'])


def downgrade() -> None:
    if op.get_bind().dialect.name == 'sqlite':
        with op.batch_alter_table('lotteries', schema=None) as batch_op:
            batch_op.drop_column('assembly_id')
    else:
        op.drop_constraint('lotteries_assembly_id_fkey', 'lotteries', type_='foreignkey')
        op.drop_column('lotteries', 'assembly_id')

    op.drop_table('agenda_supports')
    with op.batch_alter_table('agenda_items', schema=None) as batch_op:
        batch_op.drop_index('ix_agenda_pending')

    op.drop_table('agenda_items')
    op.drop_table('task_volunteers')
    with op.batch_alter_table('mediations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_mediations_group_id'))

    op.drop_table('mediations')
    with op.batch_alter_table('assemblies', schema=None) as batch_op:
        batch_op.drop_index('ix_assemblies_group_start')
        batch_op.drop_index('ix_assemblies_due', sqlite_where=sa.text('next_due_at IS NOT NULL'), postgresql_where=sa.text('next_due_at IS NOT NULL'))

    op.drop_table('assemblies')
