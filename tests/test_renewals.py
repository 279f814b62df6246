"""Renewal cycles: every `renewal_every` the group keeps or drops each role and charter clause;
what is not kept ends. Also a role's own sunset date, a review across a restart, and the
refusals. On SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import select

from bot.clock import ManualClock
from bot.verify import verify
from storage.models import Group, LogEntry, Proposal, Role
from tests.harness import START, Room, gather, recorded


def log_bodies(room, kind: str) -> list[dict]:
    with room.core.db.transaction() as session:
        return [json.loads(body) for body in session.scalars(
            select(LogEntry.body).where(LogEntry.kind == kind).order_by(LogEntry.seq))]


async def prepare(room) -> None:
    """Two roles (alice holds the treasurer's seat) and the six-clause starting charter."""
    await gather(room, ["alice", "bob", "carol"])
    await room.say("!role add facilitator term=90d", as_="alice")
    await room.say("!role add treasurer term=90d fill=volunteer", as_="alice")
    await room.say("!volunteer treasurer", as_="alice")
    await room.say("!charter adopt", as_="bob")
    for name in ("alice", "bob", "carol"):
        await room.say("!vote 2 yes", as_=name)
    settled = await room.wait("3d")
    assert "alice now holds treasurer" in settled and "The charter is now at version 1." in settled
    await room.say("!set renewal_every 30d", as_="carol")


async def test_what_the_group_does_not_renew_ends_and_the_review_survives_a_restart(database_url):
    clock = ManualClock(START)
    async with Room(database_url, clock) as room:
        await prepare(room)
        assert "Renewal review" not in await room.wait("29d")
        opened = await room.wait("1d")
        assert opened.count("#3 Renewal review: what do we keep?") == 1
        assert "1. Role facilitator — 0 keep · 0 drop" in opened and "2. Role treasurer" in opened
        assert "3. Clause 1: Purpose" in opened and "8. Clause 6: Transparency" in opened
        assert "[✓ keep 1] [✗ drop 1]" in opened
        assert "Closes" in opened and "(in 7 days)" in opened  # at least a week, whatever vote_duration says
        ack = await room.say("!renew keep 1 3 4 5 drop 2", as_="alice")
        assert "alice on #3: keep 1, 3, 4, 5; drop 2; 3 items not answered yet." in ack
        await room.say("!renew keep 1,3 drop 2", as_="bob")
        await room.say("!renew drop 2", as_="carol")
    async with Room(database_url, clock) as room:  # a restart in the middle changes nothing
        assert "Renewal review" not in await room.wait("1d")
        merged = await room.say("!renew keep 4", as_="carol")  # adds to carol's earlier answer
        assert "carol on #3: keep 4; drop 2" in merged
        closed = await room.wait("6d")
    assert "#3 Renewal review: what do we keep?: passed" in closed
    assert "✅ kept: Role facilitator (2 keep · 0 drop)" in closed
    assert "🌅 ends: Role treasurer (0 keep · 3 drop)" in closed
    assert "🌅 The role treasurer is retired. Thank you, alice, for holding it." in closed
    assert "✅ kept: Clause 2: Voluntary association" in closed  # alice, bob (via 4) and carol
    assert "🌅 ends: Clause 4: Open books" in closed  # nobody re-affirmed it
    assert "The charter is now at version 2" in closed
    async with Room(database_url, clock) as room:
        roles = await room.say("!roles")
        assert "facilitator" in roles and "treasurer" not in roles
        shown = await room.say("!charter")
        assert "Our charter (version 2)" in shown
        assert "1. Purpose" in shown and "3. Rotation" in shown and "Open books" not in shown
        assert "Transparency by default" not in shown
        history = await room.say("!charter history")
        assert "v2" in history and "not renewed: clauses 4, 5, 6 — decision #3" in history
        decisions = await room.say("!decisions")
        assert decisions.count("Renewal review") == 1  # the whole review is one decision
        settled = log_bodies(room, "renewal.settled")
        assert [label.split(":")[0] for label in settled[0]["ended"]] == [
            "Role treasurer", "Clause 4", "Clause 5", "Clause 6"]
        await room.say("!log export", as_="bob")
        report = verify(recorded(room, "file")[-1].data.decode().splitlines())
        assert report.ok, report
        with room.core.db.transaction() as session:
            group = session.get(Group, 1)
            review = session.scalars(select(Proposal).where(Proposal.number == 3)).one()
            assert group.next_renewal_at == review.opened_at + timedelta(days=30)
        assert "Renewal review" not in await room.wait("20d")
        again = await room.wait("3d")  # 30 days after the last review opened
        assert "#4 Renewal review: what do we keep?" in again  # what is left: facilitator, clauses 1-3
        assert "2. Clause 1: Purpose" in again and "4. Clause 3: Rotation" in again and "5." not in again


async def test_a_role_with_a_sunset_date_is_kept_or_retired_then(database_url):
    async with Room(database_url) as room:
        await gather(room, ["alice", "bob"])
        added = await room.say("!role add gardener term=30d sunset=60d", as_="alice")
        assert "🌅 Sunset Fri 1 May 09:00 UTC: the group keeps it then, or it is retired." in added
        assert "🌅 sunset Fri 1 May 09:00 UTC (in 60 days)" in await room.say("!roles")
        await room.say("!role add cook term=30d sunset=60d", as_="alice")
        due = await room.wait("60d")
        assert "#1 Sunset: keep the role gardener?" in due and "#2 Sunset: keep the role cook?" in due
        assert "!renew keep 1" in due and "!renew drop 1" in due
        assert "Several renewal reviews are open: #1, #2" in await room.say("!renew keep 1", as_="bob")
        await room.say("!renew keep 1 review=#1", as_="alice")
        await room.say("!renew keep 1 review=#1", as_="bob")
        await room.say("!renew drop 1 review=#2", as_="bob")
        closed = await room.wait("7d")
        assert "#2 Sunset: keep the role cook?: rejected" in closed and "The role cook is retired." in closed
        assert "#1 Sunset: keep the role gardener?: passed" in closed
        roles = await room.say("!roles")
        assert "gardener" in roles and "cook" not in roles and "sunset" not in roles
        with room.core.db.transaction() as session:
            gardener = session.scalars(select(Role).where(Role.key == "gardener")).one()
            assert gardener.sunset_at is None and gardener.retired_at is None
        assert "Sunset" not in await room.wait("90d")


@pytest.fixture
async def reviewing(database_url):
    async with Room(database_url) as room:
        await prepare(room)
        assert "#3 Renewal review" in await room.wait("30d")
        yield room


async def test_renewal_answers_that_make_no_sense_are_refused(reviewing):
    room = reviewing
    assert "“99” is not an item: give item numbers from 1 to 8" in await room.say("!renew keep 99", as_="bob")
    assert "“x” is not an item" in await room.say("!renew keep 1 x", as_="bob")
    assert "The answer is missing" in await room.say("!renew keep", as_="bob")
    assert "#3 is a renewal review: answer with renew keep" in await room.say("!vote 3 yes", as_="bob")
    assert "it cannot be withdrawn" in await room.say("!withdraw 3", as_="alice")
    assert "it closes at its deadline" in await room.say("!close 3", as_="alice")
    assert "#2 is not a renewal review" in await room.say("!renew keep 1 review=#2", as_="bob")
    with room.core.db.transaction() as session:
        review = session.scalars(select(Proposal).where(Proposal.number == 3)).one()
        assert review.status == "open"
    assert "0 answered" in await room.say("!proposal 3")


async def test_renewal_every_off_opens_nothing_and_too_often_is_refused(database_url):
    async with Room(database_url) as room:
        await gather(room, ["alice", "bob"])
        assert "at most once a week" in await room.say("!set renewal_every 1d", as_="bob")
        await room.say("!set renewal_every off", as_="bob")
        await room.say("!role add cook term=30d", as_="alice")
        assert "Renewal" not in await room.wait("400d")
        await room.say("!set renewal_every 6mo", as_="bob")
        assert "Renewal" not in await room.wait("179d")
        assert "#1 Renewal review: what do we keep?" in await room.wait("1d")
