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
    with op.batch_alter_table('members', schema=None) as batch_op:
        batch_op.add_column(sa.Column('platform', sqlmodel.sql.sqltypes.AutoString(length=32), server_default='',
                                      nullable=False))
    # Until now every member came from their group's own chat.
    op.execute("UPDATE members SET platform = (SELECT platform FROM groups WHERE groups.id = members.group_id)")

    with op.batch_alter_table('needs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('shared_of', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_needs_shared_of'), ['shared_of'], unique=False)
        batch_op.create_foreign_key('fk_needs_shared_of', 'needs', ['shared_of'], ['id'])

    with op.batch_alter_table('proposals', schema=None) as batch_op:
        batch_op.add_column(sa.Column('question_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('federation_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_proposals_question_id'), ['question_id'], unique=False)
        batch_op.create_foreign_key('fk_proposals_question_id', 'federation_questions', ['question_id'], ['id'])
        batch_op.create_foreign_key('fk_proposals_federation_id', 'federations', ['federation_id'], ['id'])

    with op.batch_alter_table('roles', schema=None) as batch_op:
        batch_op.add_column(sa.Column('delegate', sa.Boolean(), server_default=sa.text('false'), nullable=False))
        batch_op.add_column(sa.Column('mandate', sa.Text(), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('roles', schema=None) as batch_op:
        batch_op.drop_column('mandate')
        batch_op.drop_column('delegate')

    with op.batch_alter_table('proposals', schema=None) as batch_op:
        batch_op.drop_constraint('fk_proposals_federation_id', type_='foreignkey')
        batch_op.drop_constraint('fk_proposals_question_id', type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_proposals_question_id'))
        batch_op.drop_column('federation_id')
        batch_op.drop_column('question_id')

    with op.batch_alter_table('needs', schema=None) as batch_op:
        batch_op.drop_constraint('fk_needs_shared_of', type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_needs_shared_of'))
        batch_op.drop_column('shared_of')

    with op.batch_alter_table('members', schema=None) as batch_op:
        batch_op.drop_column('platform')

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
