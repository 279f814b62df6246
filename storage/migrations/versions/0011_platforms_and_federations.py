"""platforms and federations: a group's further chats (linked across platforms), one person's
linked accounts, the codes that link them, and federations of groups with their shared questions,
shared needs and delegates; members say which platform their id belongs to

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07
"""
import sqlalchemy as sa
import sqlmodel
from alembic import op

import storage.types

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('federations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
    sa.Column('created_at', storage.types.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('linked_accounts',
    sa.Column('platform', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('user_id', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
    sa.Column('person', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('linked_at', storage.types.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('platform', 'user_id')
    )
    with op.batch_alter_table('linked_accounts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_linked_accounts_person'), ['person'], unique=False)

    op.create_table('federation_groups',
    sa.Column('group_id', sa.Integer(), nullable=False),
    sa.Column('federation_id', sa.Integer(), nullable=False),
    sa.Column('joined_at', storage.types.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['federation_id'], ['federations.id'], ),
    sa.ForeignKeyConstraint(['group_id'], ['groups.id'], ),
    sa.PrimaryKeyConstraint('group_id')
    )
    with op.batch_alter_table('federation_groups', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_federation_groups_federation_id'), ['federation_id'], unique=False)

    op.create_table('federation_questions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('federation_id', sa.Integer(), nullable=False),
    sa.Column('origin_group_id', sa.Integer(), nullable=False),
    sa.Column('title', sa.Text(), nullable=False),
    sa.Column('rule', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('opened_at', storage.types.UTCDateTime(), nullable=False),
    sa.Column('decided_at', storage.types.UTCDateTime(), nullable=True),
    sa.Column('outcome', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.Column('groups_for', sa.Integer(), nullable=True),
    sa.Column('groups_total', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['federation_id'], ['federations.id'], ),
    sa.ForeignKeyConstraint(['origin_group_id'], ['groups.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('federation_questions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_federation_questions_federation_id'), ['federation_id'], unique=False)

    op.create_table('group_chats',
    sa.Column('platform', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('chat_id', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
    sa.Column('group_id', sa.Integer(), nullable=False),
    sa.Column('linked_at', storage.types.UTCDateTime(), nullable=False),
    sa.Column('reported_member_count', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['group_id'], ['groups.id'], ),
    sa.PrimaryKeyConstraint('platform', 'chat_id')
    )
    with op.batch_alter_table('group_chats', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_group_chats_group_id'), ['group_id'], unique=False)

    op.create_table('link_codes',
    sa.Column('code_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('purpose', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('platform', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('user_id', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
    sa.Column('group_id', sa.Integer(), nullable=True),
    sa.Column('federation_id', sa.Integer(), nullable=True),
    sa.Column('created_at', storage.types.UTCDateTime(), nullable=False),
    sa.Column('expires_at', storage.types.UTCDateTime(), nullable=False),
    sa.Column('used_at', storage.types.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['federation_id'], ['federations.id'], ),
    sa.ForeignKeyConstraint(['group_id'], ['groups.id'], ),
    sa.PrimaryKeyConstraint('code_hash')
    )
    # Plain ADD COLUMNs on SQLite: a batch copy of members, needs, proposals or roles would drop a
    # table others point at.
    sqlite = op.get_bind().dialect.name == 'sqlite'
    op.add_column('members', sa.Column('platform', sqlmodel.sql.sqltypes.AutoString(length=32), server_default='',
                                       nullable=False))
    # Until now every member came from their group's own chat.
    op.execute("UPDATE members SET platform = (SELECT platform FROM groups WHERE groups.id = members.group_id)")
    if sqlite:
        op.execute('ALTER TABLE needs ADD COLUMN shared_of INTEGER REFERENCES needs (id)')
        op.execute('ALTER TABLE proposals ADD COLUMN question_id INTEGER REFERENCES federation_questions (id)')
        op.execute('ALTER TABLE proposals ADD COLUMN federation_id INTEGER REFERENCES federations (id)')
        op.execute('ALTER TABLE roles ADD COLUMN delegate BOOLEAN DEFAULT false NOT NULL')
    else:
        op.add_column('needs', sa.Column('shared_of', sa.Integer(), nullable=True))
        op.create_foreign_key('fk_needs_shared_of', 'needs', 'needs', ['shared_of'], ['id'])
        op.add_column('proposals', sa.Column('question_id', sa.Integer(), nullable=True))
        op.add_column('proposals', sa.Column('federation_id', sa.Integer(), nullable=True))
        op.create_foreign_key('fk_proposals_question_id', 'proposals', 'federation_questions', ['question_id'],
                              ['id'])
        op.create_foreign_key('fk_proposals_federation_id', 'proposals', 'federations', ['federation_id'], ['id'])
        op.add_column('roles', sa.Column('delegate', sa.Boolean(), server_default=sa.text('false'), nullable=False))
    op.add_column('roles', sa.Column('mandate', sa.Text(), nullable=True))
    op.create_index('ix_needs_shared_of', 'needs', ['shared_of'], unique=False)
    op.create_index('ix_proposals_question_id', 'proposals', ['question_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_proposals_question_id', table_name='proposals')
    op.drop_index('ix_needs_shared_of', table_name='needs')
    if op.get_bind().dialect.name != 'sqlite':
        op.drop_constraint('fk_proposals_federation_id', 'proposals', type_='foreignkey')
        op.drop_constraint('fk_proposals_question_id', 'proposals', type_='foreignkey')
        op.drop_constraint('fk_needs_shared_of', 'needs', type_='foreignkey')
    for table, column in (('roles', 'mandate'), ('roles', 'delegate'), ('proposals', 'federation_id'),
                          ('proposals', 'question_id'), ('needs', 'shared_of'), ('members', 'platform')):
        op.drop_column(table, column)

    op.drop_table('link_codes')
    with op.batch_alter_table('group_chats', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_group_chats_group_id'))

    op.drop_table('group_chats')
    with op.batch_alter_table('federation_questions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_federation_questions_federation_id'))

    op.drop_table('federation_questions')
    with op.batch_alter_table('federation_groups', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_federation_groups_federation_id'))

    op.drop_table('federation_groups')
    with op.batch_alter_table('linked_accounts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_linked_accounts_person'))

    op.drop_table('linked_accounts')
    op.drop_table('federations')
