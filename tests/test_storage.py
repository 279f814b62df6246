"""The schema protects the vote on both backends; migrations match the models."""

import time
from datetime import datetime, timezone
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, make_url, text
from sqlalchemy.exc import IntegrityError
from sqlmodel import SQLModel

from bot import outbox
from storage.db import Database, alembic_config
from storage.models import Ballot, Group, Member, OutboxItem, ProcessedEvent, Proposal

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)


@pytest.fixture
def db(database_url):
    database = Database(database_url)
    yield database
    database.dispose()


def seed(db):
    with db.transaction() as session:
        group = Group(platform="matrix", chat_id="!room:example.org", created_at=NOW)
        session.add(group)
        session.flush()
        member = Member(group_id=group.id, user_id="@bob:example.org", display_name="Bob", joined_at=NOW)
        session.add(member)
        session.flush()
        proposal = Proposal(group_id=group.id, number=1, title="t", author_id=member.id, rule="majority",
                            quorum="0", opened_at=NOW, closes_at=NOW)
        session.add(proposal)
        session.flush()
        return group.id, member.id, proposal.id


def test_one_ballot_per_member_per_proposal_is_enforced_by_the_schema(db):
    _, member_id, proposal_id = seed(db)
    with db.transaction() as session:
        session.add(Ballot(proposal_id=proposal_id, member_id=member_id, choice="yes", cast_at=NOW, changed_at=NOW))
    with pytest.raises(IntegrityError):
        with db.transaction() as session:
            session.add(Ballot(proposal_id=proposal_id, member_id=member_id, choice="no", cast_at=NOW,
                               changed_at=NOW))


def test_one_processed_row_per_platform_event(db):
    with db.transaction() as session:
        session.add(ProcessedEvent(platform="telegram", event_id="update-7", processed_at=NOW))
    with pytest.raises(IntegrityError):
        with db.transaction() as session:
            session.add(ProcessedEvent(platform="telegram", event_id="update-7", processed_at=NOW))
    with db.transaction() as session:  # the same id on another platform is another event
        session.add(ProcessedEvent(platform="matrix", event_id="update-7", processed_at=NOW))


def test_proposal_numbers_and_announcement_keys_are_unique(db):
    group_id, member_id, _ = seed(db)
    with pytest.raises(IntegrityError):
        with db.transaction() as session:
            session.add(Proposal(group_id=group_id, number=1, title="again", author_id=member_id, rule="majority",
                                 quorum="0", opened_at=NOW, closes_at=NOW))
    with db.transaction() as session:
        session.add(OutboxItem(dedupe_key="proposal:1:outcome", platform="console", kind="send", action="{}",
                               created_at=NOW))
    with pytest.raises(IntegrityError):
        with db.transaction() as session:
            session.add(OutboxItem(dedupe_key="proposal:1:outcome", platform="console", kind="send", action="{}",
                               created_at=NOW))


def test_times_come_back_aware_and_in_utc(db):
    seed(db)
    with db.transaction() as session:
        proposal = session.get(Proposal, 1)
        assert proposal.closes_at == NOW and proposal.closes_at.tzinfo is not None


def test_migrations_produce_exactly_the_models_schema(db):
    with db.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), SQLModel.metadata)
    assert differences == []
    assert "alembic_version" in inspect(db.engine).get_table_names()


def test_upgrade_is_idempotent(db):
    db.upgrade()
    db.upgrade()


def test_sqlite_runs_in_wal_mode(sqlite_url):
    database = Database(sqlite_url)
    with database.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    database.dispose()


def test_announcements_queued_before_the_outbox_migration_are_kept_once(database_url):
    """0005 moves the old announcements table into the outbox: an unsent announcement is still
    delivered after the upgrade, a sent one is never sent again, and keys stay unique."""
    database = Database(database_url)
    try:
        with database.engine.begin() as connection:
            config = alembic_config(database_url)
            config.attributes["connection"] = connection
            command.downgrade(config, "0004")  # back to before the outbox (its downgrade works too)
            connection.execute(text("INSERT INTO groups (platform, chat_id, created_at, reported_member_count) "
                                    "VALUES ('telegram', '-100', :now, 0)"), {"now": NOW.replace(tzinfo=None)})
            action = ('{"kind": "send", "chat": {"platform": "telegram", "chat_id": "-100"}, '
                      '"text": {"html": "<b>#1 Rent</b>: passed", "mentions": []}}')
            for key, sent in (("proposal:1:outcome", None), ("proposal:0:outcome", NOW.replace(tzinfo=None))):
                connection.execute(text(
                    "INSERT INTO announcements (group_id, dedupe_key, action, created_at, sent_at, attempts) "
                    "VALUES (1, :key, :action, :now, :sent, 0)"), {"key": key, "action": action,
                                                                   "now": NOW.replace(tzinfo=None), "sent": sent})
        database.upgrade()
        with database.transaction() as session:
            [pending] = outbox.pending(session, ["telegram"])
            assert pending.action.text.plain() == "#1 Rent: passed"
            assert not outbox.record(session, key="proposal:0:outcome", action=pending.action, group_id=1, now=NOW)
    finally:
        database.dispose()


def test_sqlite_checkpoints_its_log_in_the_background_not_inside_commits(sqlite_url):
    database = Database(sqlite_url)
    try:
        database.upgrade()
        path = Path(make_url(sqlite_url).database)
        with database.engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 0
        before = path.stat().st_size
        with database.transaction() as session:
            for number in range(2000):
                session.add(ProcessedEvent(platform="test", event_id=f"e{number}", processed_at=NOW))
        for _ in range(50):  # the checkpointer copies the log into the database file by itself
            if path.stat().st_size > before:
                break
            time.sleep(0.1)
        assert path.stat().st_size > before
    finally:
        database.dispose()
