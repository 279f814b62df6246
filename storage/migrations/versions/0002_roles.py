"""roles, mandates, volunteers, trainees, draws; role matters on proposals

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21 05:57:17.846125
"""
import sqlalchemy as sa
import sqlmodel
from alembic import op

import storage.types

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table('roles',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('group_id', sa.Integer(), nullable=False),
    sa.Column('key', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('term_seconds', sa.Integer(), nullable=False),
    sa.Column('seats', sa.Integer(), nullable=False),
    sa.Column('max_terms', sa.Integer(), nullable=False),
    sa.Column('fill', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('handover', sa.Text(), nullable=True),
    sa.Column('trainees_required', sa.Integer(), nullable=False),
    sa.Column('created_at', storage.types.UTCDateTime(), nullable=False),
    sa.Column('retired_at', storage.types.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['group_id'], ['groups.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('group_id', 'key', name='uq_role_name')
    )
    with op.batch_alter_table('roles', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_roles_group_id'), ['group_id'], unique=False)

    op.create_table('draws',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('group_id', sa.Integer(), nullable=False),
    sa.Column('role_id', sa.Integer(), nullable=False),
    sa.Column('seed', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('candidates', sa.Text(), nullable=False),
    sa.Column('picked', sa.Text(), nullable=False),
    sa.Column('drawn_at', storage.types.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['group_id'], ['groups.id'], ),
    sa.ForeignKeyConstraint(['role_id'], ['roles.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('draws', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_draws_group_id'), ['group_id'], unique=False)

    op.create_table('mandates',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('group_id', sa.Integer(), nullable=False),
    sa.Column('role_id', sa.Integer(), nullable=False),
    sa.Column('member_id', sa.Integer(), nullable=False),
    sa.Column('seat', sa.Integer(), nullable=False),
    sa.Column('filled_by', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('term_number', sa.Integer(), nullable=False),
    sa.Column('renewals', sa.Integer(), nullable=False),
    sa.Column('started_at', storage.types.UTCDateTime(), nullable=False),
    sa.Column('term_started_at', storage.types.UTCDateTime(), nullable=False),
    sa.Column('ends_at', storage.types.UTCDateTime(), nullable=False),
    sa.Column('next_warning_at', storage.types.UTCDateTime(), nullable=True),
    sa.Column('ended_at', storage.types.UTCDateTime(), nullable=True),
    sa.Column('end_reason', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
    sa.ForeignKeyConstraint(['group_id'], ['groups.id'], ),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], ),
    sa.ForeignKeyConstraint(['role_id'], ['roles.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('mandates', schema=None) as batch_op:
        batch_op.create_index('ix_mandates_due', ['ended_at', 'ends_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_mandates_group_id'), ['group_id'], unique=False)
        batch_op.create_index('ix_mandates_warning', ['ended_at', 'next_warning_at'], unique=False)
        batch_op.create_index('uq_open_seat', ['role_id', 'seat'], unique=True, sqlite_where=sa.text('ended_at IS NULL'), postgresql_where=sa.text('ended_at IS NULL'))

    op.create_table('role_changes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('group_id', sa.Integer(), nullable=False),
    sa.Column('role_id', sa.Integer(), nullable=False),
    sa.Column('member_id', sa.Integer(), nullable=True),
    sa.Column('action', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('summary', sa.Text(), nullable=False),
    sa.Column('changed_at', storage.types.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['group_id'], ['groups.id'], ),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], ),
    sa.ForeignKeyConstraint(['role_id'], ['roles.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('role_changes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_role_changes_group_id'), ['group_id'], unique=False)

    op.create_table('trainees',
    sa.Column('role_id', sa.Integer(), nullable=False),
    sa.Column('member_id', sa.Integer(), nullable=False),
    sa.Column('since', storage.types.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], ),
    sa.ForeignKeyConstraint(['role_id'], ['roles.id'], ),
    sa.PrimaryKeyConstraint('role_id', 'member_id')
    )
    op.create_table('volunteers',
    sa.Column('role_id', sa.Integer(), nullable=False),
    sa.Column('member_id', sa.Integer(), nullable=False),
    sa.Column('since', storage.types.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], ),
    sa.ForeignKeyConstraint(['role_id'], ['roles.id'], ),
    sa.PrimaryKeyConstraint('role_id', 'member_id')
    )
    with op.batch_alter_table('proposals', schema=None) as batch_op:
        # Existing proposals are plain decisions.
        batch_op.add_column(sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False,
                                      server_default='decision'))
        batch_op.add_column(sa.Column('role_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('subject_member_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('candidates', sa.Text(), nullable=True))
        batch_op.create_foreign_key('fk_proposals_role_id_roles', 'roles', ['role_id'], ['id'])
        batch_op.create_foreign_key('fk_proposals_subject_member_id_members', 'members', ['subject_member_id'], ['id'])


def downgrade() -> None:

    with op.batch_alter_table('proposals', schema=None) as batch_op:
        batch_op.drop_constraint('fk_proposals_subject_member_id_members', type_='foreignkey')
        batch_op.drop_constraint('fk_proposals_role_id_roles', type_='foreignkey')
        batch_op.drop_column('candidates')
        batch_op.drop_column('subject_member_id')
        batch_op.drop_column('role_id')
        batch_op.drop_column('kind')

    op.drop_table('volunteers')
    op.drop_table('trainees')
    with op.batch_alter_table('role_changes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_role_changes_group_id'))

    op.drop_table('role_changes')
    with op.batch_alter_table('mandates', schema=None) as batch_op:
        batch_op.drop_index('uq_open_seat', sqlite_where=sa.text('ended_at IS NULL'), postgresql_where=sa.text('ended_at IS NULL'))
        batch_op.drop_index('ix_mandates_warning')
        batch_op.drop_index(batch_op.f('ix_mandates_group_id'))
        batch_op.drop_index('ix_mandates_due')

    op.drop_table('mandates')
    with op.batch_alter_table('draws', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_draws_group_id'))

    op.drop_table('draws')
    with op.batch_alter_table('roles', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_roles_group_id'))

    op.drop_table('roles')

