"""a verifiable record: the hash-chained group log, committed lotteries (replacing draws), review dates

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06
"""
import json

import sqlalchemy as sa
import sqlmodel
from alembic import op

import storage.types

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

NOT_DRAWN = sa.text("drawn_at IS NULL")


def upgrade() -> None:
    op.create_table('log_entries',
    sa.Column('group_id', sa.Integer(), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('prev_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.ForeignKeyConstraint(['group_id'], ['groups.id'], ),
    sa.PrimaryKeyConstraint('group_id', 'seq'),
    sqlite_with_rowid=False,
    )
    op.create_table('lotteries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('group_id', sa.Integer(), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('purpose', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('role_id', sa.Integer(), nullable=True),
    sa.Column('audit_id', sa.Integer(), nullable=True),
    sa.Column('proposal_id', sa.Integer(), nullable=True),
    sa.Column('seats', sa.Integer(), nullable=False),
    sa.Column('candidates', sa.Text(), nullable=False),
    sa.Column('commitment', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('secret', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('contributions', sa.Text(), nullable=False),
    sa.Column('opened_at', storage.types.UTCDateTime(), nullable=False),
    sa.Column('draws_at', storage.types.UTCDateTime(), nullable=False),
    sa.Column('drawn_at', storage.types.UTCDateTime(), nullable=True),
    sa.Column('seed', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('picks', sa.Text(), nullable=True),
    sa.Column('skipped_window', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['audit_id'], ['audits.id'], ),
    sa.ForeignKeyConstraint(['group_id'], ['groups.id'], ),
    sa.ForeignKeyConstraint(['proposal_id'], ['proposals.id'], ),
    sa.ForeignKeyConstraint(['role_id'], ['roles.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('group_id', 'number', name='uq_lottery_number'),
    )
    with op.batch_alter_table('lotteries', schema=None) as batch_op:
        batch_op.create_index('ix_lotteries_due', ['draws_at', 'id'], unique=False,
                              sqlite_where=NOT_DRAWN, postgresql_where=NOT_DRAWN)
    _copy_draws()
    op.drop_table('draws')
    with op.batch_alter_table('proposals', schema=None) as batch_op:
        batch_op.add_column(sa.Column('review_seconds', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('review_of', sa.Integer(), nullable=True))
        batch_op.create_foreign_key('fk_proposals_review_of', 'proposals', ['review_of'], ['id'])
    with op.batch_alter_table('decisions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('review_at', storage.types.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('lapsed_at', storage.types.UTCDateTime(), nullable=True))
        batch_op.create_index(batch_op.f('ix_decisions_review_at'), ['review_at'], unique=False)


_DRAWS = sa.table('draws', *(sa.column(name) for name in (
    'id', 'group_id', 'role_id', 'seed', 'candidates', 'picked', 'drawn_at')))
_LOTTERIES = sa.table('lotteries', *(sa.column(name) for name in (
    'group_id', 'number', 'purpose', 'role_id', 'seats', 'candidates', 'commitment', 'secret', 'contributions',
    'opened_at', 'draws_at', 'drawn_at', 'seed', 'picks', 'skipped_window')))


def _copy_draws() -> None:
    """The draws made before lotteries had a commitment become drawn lotteries, numbered per group in
    the order they were drawn: no commitment, no secret, no window (the seed rested on the bot alone)."""
    connection = op.get_bind()
    rows = connection.execute(sa.select(_DRAWS).order_by(_DRAWS.c.group_id, _DRAWS.c.drawn_at, _DRAWS.c.id)).all()
    numbers: dict[int, int] = {}
    for row in rows:
        numbers[row.group_id] = numbers.get(row.group_id, 0) + 1
        connection.execute(_LOTTERIES.insert().values(
            group_id=row.group_id, number=numbers[row.group_id], purpose='role', role_id=row.role_id,
            seats=max(1, len(json.loads(row.picked))), candidates=row.candidates, commitment='', secret='',
            contributions='[]', opened_at=row.drawn_at, draws_at=row.drawn_at, drawn_at=row.drawn_at,
            seed=row.seed, picks=row.picked, skipped_window=True))


def _restore_draws() -> None:
    """Back to the draws table: the role lotteries that were drawn keep their seed, candidates and picks."""
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
    op.execute("INSERT INTO draws (group_id, role_id, seed, candidates, picked, drawn_at) "
               "SELECT group_id, role_id, seed, candidates, picks, drawn_at FROM lotteries "
               "WHERE purpose = 'role' AND role_id IS NOT NULL AND drawn_at IS NOT NULL ORDER BY id")


def downgrade() -> None:
    with op.batch_alter_table('decisions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_decisions_review_at'))
        batch_op.drop_column('lapsed_at')
        batch_op.drop_column('review_at')
    with op.batch_alter_table('proposals', schema=None) as batch_op:
        batch_op.drop_constraint('fk_proposals_review_of', type_='foreignkey')
        batch_op.drop_column('review_of')
        batch_op.drop_column('review_seconds')
    _restore_draws()
    with op.batch_alter_table('lotteries', schema=None) as batch_op:
        batch_op.drop_index('ix_lotteries_due', sqlite_where=NOT_DRAWN, postgresql_where=NOT_DRAWN)
    op.drop_table('lotteries')
    op.drop_table('log_entries')
