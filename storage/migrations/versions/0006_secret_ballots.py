"""secret ballots (voter roll, ballot boxes, sealed outbox rows) and ranked polls

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06
"""
import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('proposals', schema=None) as batch_op:
        batch_op.add_column(sa.Column('secret', sa.Boolean(), server_default=sa.text('false'), nullable=False))
        batch_op.add_column(sa.Column('method', sqlmodel.sql.sqltypes.AutoString(length=8), server_default='plain',
                                      nullable=False))
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sealed', sa.Boolean(), server_default=sa.text('false'), nullable=False))
    op.create_table('voter_roll',
    sa.Column('proposal_id', sa.Integer(), nullable=False),
    sa.Column('member_id', sa.Integer(), nullable=False),
    sa.Column('voted', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], ),
    sa.ForeignKeyConstraint(['proposal_id'], ['proposals.id'], ),
    sa.PrimaryKeyConstraint('proposal_id', 'member_id'),
    )
    op.create_table('ballot_boxes',
    sa.Column('proposal_id', sa.Integer(), nullable=False),
    sa.Column('ballots', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['proposal_id'], ['proposals.id'], ),
    sa.PrimaryKeyConstraint('proposal_id'),
    )


def downgrade() -> None:
    op.drop_table('ballot_boxes')
    op.drop_table('voter_roll')
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_column('sealed')
    with op.batch_alter_table('proposals', schema=None) as batch_op:
        batch_op.drop_column('method')
        batch_op.drop_column('secret')
