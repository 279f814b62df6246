"""The group log through the console room, on SQLite and PostgreSQL: what goes in, in order and
chained; the checkpoint members are shown; the export; and the offline verifier recounting what
the bot announced."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from bot.governance import record
from bot.verify import verify
from storage.models import LogEntry
from tests.harness import Room, gather, recorded


@pytest.fixture
async def room(database_url):
    async with Room(database_url) as room:
        yield room


def kinds(room) -> list[str]:
    with room.core.db.transaction() as session:
        return list(session.scalars(select(LogEntry.kind).order_by(LogEntry.seq)))


def exported(room) -> list[str]:
    return recorded(room, "file")[-1].data.decode().splitlines()


async def test_every_governance_event_is_logged_in_order_and_the_export_verifies(room):
    await gather(room, ["alice", "bob", "carol", "dan"])
    await room.say("!propose Buy a freezer closes=1d", as_="alice")
    await room.say("!vote 1 yes", as_="bob")
    await room.say("!vote 1 no", as_="carol")
    await room.say("!vote 1 yes changed my mind", as_="carol")
    await room.say('!propose Meeting night options="Mon; Tue; Wed" method=ranked closes=1d', as_="bob")
    for name, ranking in (("alice", "1 2"), ("bob", "2 3"), ("carol", "3 2"), ("dan", "2")):
        await room.say(f"!vote 2 {ranking}", as_=name)
    await room.say("!propose Rent strike secret=yes closes=1d", as_="carol")
    for name, choice in (("alice", "yes"), ("bob", "no"), ("dan", "yes")):
        await room.say(f":dm vote 3 {choice}", as_=name)
    await room.say("!set quorum 2", as_="alice")
    await room.say("!role add facilitator term=30d", as_="alice")
    await room.say("!volunteer facilitator", as_="dan")
    await room.say("!elect facilitator", as_="alice")
    await room.say("!vote 4 1", as_="bob")
    await room.say("!vote 4 1", as_="alice")
    closed = await room.wait("1d")
    assert "#1 Buy a freezer: passed" in closed and "chose Tue" in closed and "#3 Rent strike: passed" in closed
    elected = await room.wait("3d")
    assert "dan now holds facilitator" in elected

    logged = kinds(room)
    assert logged[:4] == ["proposal.opened", "ballot.cast", "ballot.cast", "ballot.cast"]
    assert logged.count("ballot.cast") == 3 + 4 + 2  # open ballots only; the secret ones never one by one
    assert logged.count("proposal.closed") == 4 and "setting.changed" in logged and "mandate.started" in logged
    with room.core.db.transaction() as session:
        head = record.head(session, 1)
        [secret_close] = [json.loads(e.body) for e in session.scalars(select(LogEntry).where(
            LogEntry.kind == "proposal.closed")) if json.loads(e.body)["secret"]]
    assert len(secret_close["ballots"]) == 3 and secret_close["voter_names"] == ["alice", "bob", "dan"]
    assert f"Record checkpoint {head.short()}" in elected  # the last announcement carries the head

    shown = await room.say("!log 5")
    assert f"{head.seq} entries" in shown and head.short() in shown
    await room.say("!log export", as_="bob")
    lines = exported(room)
    assert len(lines) == head.seq
    report = verify(lines, head=head.short())
    assert report.ok, report.problem
    assert report.recounted == 4  # every closed vote, the secret and the ranked one included


async def test_a_changed_entry_in_the_database_is_caught_by_the_next_export(room):
    await gather(room, ["alice", "bob"])
    await room.say("!propose Paint the door closes=1d", as_="alice")
    await room.say("!vote 1 yes", as_="bob")
    await room.wait("1d")
    with room.core.db.transaction() as session:
        checkpoint = record.head(session, 1).short()
        entry = session.scalars(select(LogEntry).where(LogEntry.kind == "ballot.cast")).one()
        entry.body = entry.body.replace('"yes"', '"no"')  # someone edits the record afterwards
    await room.say("!log export", as_="bob")
    report = verify(exported(room), head=checkpoint)
    assert not report.ok and "entry 2" in report.problem


async def test_an_empty_log_says_so(room):
    assert "The log is empty" in await room.say("!log", as_="alice")
