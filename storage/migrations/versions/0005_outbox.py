"""one way out: every outbound action goes through the outbox (replaces announcements)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04
"""
import json
import secrets

import sqlalchemy as sa
import sqlmodel
from alembic import op

import storage.types

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

PENDING = sa.text("sent_at IS NULL AND failed_at IS NULL")
PENDING_EDIT = sa.text("kind = 'edit' AND sent_at IS NULL AND failed_at IS NULL")
PENDING_TRACKED = sa.text("kind <> 'edit' AND target IS NOT NULL AND sent_at IS NULL AND failed_at IS NULL")
KEYED = sa.text("dedupe_key IS NOT NULL")


def upgrade() -> None:
    op.create_table('outbox',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('group_id', sa.Integer(), nullable=True),
    sa.Column('platform', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
    sa.Column('target', sqlmodel.sql.sqltypes.AutoString(length=400), nullable=True),
    sa.Column('dedupe_key', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True),
    sa.Column('action', sa.Text(), nullable=False),
    sa.Column('created_at', storage.types.UTCDateTime(), nullable=False),
    sa.Column('sent_at', storage.types.UTCDateTime(), nullable=True),
    sa.Column('failed_at', storage.types.UTCDateTime(), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('token', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.ForeignKeyConstraint(['group_id'], ['groups.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sqlite_autoincrement=True,
    )
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.create_index('ix_outbox_pending', ['platform', 'id'], unique=False,
                              sqlite_where=PENDING, postgresql_where=PENDING)
        batch_op.create_index('ux_outbox_pending_edit', ['target'], unique=True,
                              sqlite_where=PENDING_EDIT, postgresql_where=PENDING_EDIT)
        batch_op.create_index('ix_outbox_pending_tracked', ['target'], unique=False,
                              sqlite_where=PENDING_TRACKED, postgresql_where=PENDING_TRACKED)
        batch_op.create_index('ux_outbox_dedupe_key', ['dedupe_key'], unique=True,
                              sqlite_where=KEYED, postgresql_where=KEYED)
    _copy_announcements()
    op.drop_table('announcements')


def _copy_announcements() -> None:
    """Announcements already recorded (sent or not) move over with their dedupe keys,
    so none is sent twice and none queued before the upgrade is lost."""
    connection = op.get_bind()
    rows = connection.execute(sa.text(
        "SELECT a.id, a.group_id, a.dedupe_key, a.action, a.created_at, a.sent_at, a.attempts, g.platform "
        "FROM announcements a LEFT JOIN groups g ON g.id = a.group_id ORDER BY a.id")).all()
    outbox = sa.table('outbox', *(sa.column(name) for name in (
        'id', 'group_id', 'platform', 'kind', 'dedupe_key', 'action', 'created_at', 'sent_at', 'attempts',
        'token')))
    for row in rows:
        action = json.loads(row.action) if row.action.startswith("{") else {}
        chat = action.get("chat") or action.get("user") or {}
        connection.execute(outbox.insert().values(
            id=row.id, group_id=row.group_id, platform=row.platform or chat.get("platform", ""),
            kind=action.get("kind", "send"), dedupe_key=row.dedupe_key, action=row.action,
            created_at=row.created_at, sent_at=row.sent_at, attempts=row.attempts, token=secrets.token_hex(6)))
    if rows and connection.dialect.name == "postgresql":
        connection.execute(sa.text("SELECT setval(pg_get_serial_sequence('outbox', 'id'), "
                                   "(SELECT max(id) FROM outbox))"))


def downgrade() -> None:
    op.create_table('announcements',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('group_id', sa.Integer(), nullable=True),
    sa.Column('dedupe_key', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
    sa.Column('action', sa.Text(), nullable=False),
    sa.Column('created_at', storage.types.UTCDateTime(), nullable=False),
    sa.Column('sent_at', storage.types.UTCDateTime(), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['group_id'], ['groups.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('dedupe_key')
    )
    op.execute("INSERT INTO announcements (id, group_id, dedupe_key, action, created_at, sent_at, attempts) "
               "SELECT id, group_id, dedupe_key, action, created_at, sent_at, attempts FROM outbox "
               "WHERE dedupe_key IS NOT NULL")
    op.drop_table('outbox')
