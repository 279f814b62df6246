"""Review dates (sunset clauses): `propose … review=6mo` brings a decision back as "Keep #1 …?"
at its date, once — also across restarts — and a review that does not carry marks it lapsed.
On SQLite and PostgreSQL."""

import json
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from bot.clock import ManualClock
from bot.governance import reviews
from storage.models import Decision, LogEntry, Proposal
from tests.harness import START, Room


@pytest.fixture
async def room(database_url):
    async with Room(database_url) as room:
        yield room


def log_kinds(room) -> list[str]:
    with room.core.db.transaction() as session:
        return list(session.scalars(select(LogEntry.kind).order_by(LogEntry.seq)))


def log_bodies(room, kind: str) -> list[dict]:
    with room.core.db.transaction() as session:
        return [json.loads(body) for body in session.scalars(
            select(LogEntry.body).where(LogEntry.kind == kind).order_by(LogEntry.seq))]


def proposals(room) -> list[Proposal]:
    with room.core.db.transaction() as session:
        found = list(session.scalars(select(Proposal).order_by(Proposal.number)))
        session.expunge_all()
        return found


def decision_of(room, number: int) -> Decision:
    with room.core.db.transaction() as session:
        decision = session.scalars(select(Decision).join(Proposal, Proposal.id == Decision.proposal_id)
                                   .where(Proposal.number == number)).one()
        session.expunge(decision)
        return decision


async def test_a_review_brings_the_decision_back_once_and_a_failed_review_lapses_it(room):
    opened = await room.say("!propose Rent the hall review=6mo closes=1d", as_="alice")
    assert "#1 Rent the hall" in opened
    assert proposals(room)[0].review_seconds == 180 * 86400
    assert log_bodies(room, "proposal.opened")[0]["review"] == 180 * 86400
    await room.say("!vote 1 yes", as_="bob")
    assert "#1 Rent the hall: passed" in await room.wait("1d")  # decided Tue 3 Mar 09:00
    log = await room.say("!decisions")
    assert "Coming reviews" in log
    assert "🔁 Review of #1 Rent the hall on Sun 30 Aug 09:00 UTC (in 180 days)" in log

    assert "Keep" not in await room.wait("179d")
    brought_back = await room.wait("1d")
    assert brought_back.count("#2 Keep #1 Rent the hall?") == 1
    assert "Review of #1, decided Tue 3 Mar 09:00 UTC (passed, 1 of 2 voted)" in brought_back
    assert "[Yes] [No] [Abstain] [Block]" in brought_back and "by alice" in brought_back
    assert "Keep" not in await room.wait("1h")  # once
    assert "Coming reviews" not in await room.say("!decisions")
    review = proposals(room)[1]
    original = proposals(room)[0]
    assert (review.kind, review.review_of, review.rule, review.author_id) == (
        "review", original.id, original.rule, original.author_id)
    assert review.closes_at - review.opened_at == timedelta(days=3)  # the group's vote duration
    assert review.review_seconds is None  # a review is not itself reviewed: the original comes back

    await room.say("!vote 2 no", as_="bob")
    closed = await room.wait("3d")
    assert "#2 Keep #1 Rent the hall?: rejected" in closed
    assert "⌛ #1 Rent the hall has lapsed: the group did not keep it." in closed
    lapsed = decision_of(room, 1)
    assert lapsed.lapsed_at == review.closes_at and lapsed.review_at is None
    assert "#1 Rent the hall: passed — 1 yes · 0 no · 0 abstain · 0 block · ⌛ lapsed 2026-09-02" in (
        await room.say("!decisions"))
    kinds = log_kinds(room)
    assert kinds[-2:] == ["proposal.closed", "decision.lapsed"] and "decision.kept" not in kinds
    [entry] = log_bodies(room, "decision.lapsed")
    assert (entry["proposal"], entry["review"]) == (1, 2)
    assert "Keep" not in await room.wait("1y")  # a lapsed decision never comes back
    assert len(proposals(room)) == 2


async def test_a_review_that_passes_keeps_the_decision_and_it_comes_back_again(room):
    await room.say("!propose Share the van review=30d closes=1d", as_="alice")
    await room.say("!vote 1 yes", as_="bob")
    await room.wait("1d")
    assert "#2 Keep #1 Share the van?" in await room.wait("30d")
    await room.say("!vote 2 yes", as_="bob")
    closed = await room.wait("3d")
    assert "#2 Keep #1 Share the van?: passed" in closed
    assert "🔁 #1 Share the van stays in force; it comes back for review Tue 5 May 09:00 UTC." in closed
    kept = decision_of(room, 1)
    assert kept.lapsed_at is None and kept.review_at is not None
    assert "decision.kept" in log_kinds(room) and "decision.lapsed" not in log_kinds(room)
    assert "Review of #1 Share the van on Tue 5 May" in await room.say("!decisions")
    assert "lapsed" not in await room.say("!decisions")
    assert "#3 Keep #1 Share the van?" in await room.wait("30d")  # the clause keeps coming back


async def test_closing_a_review_early_settles_it_at_once(room):
    await room.say("!propose Open on Sundays review=1d closes=1h", as_="alice")
    await room.say("!vote 1 yes", as_="bob")
    await room.wait("1h")
    assert "#2 Keep #1 Open on Sundays?" in await room.wait("1d")
    closed = await room.say("!close 2", as_="alice")  # the original's author is the review's author
    assert "#2 Keep #1 Open on Sundays?: rejected" in closed and "has lapsed" in closed
    assert decision_of(room, 1).lapsed_at is not None
    assert "has lapsed" not in await room.wait("4d")  # not settled a second time at the deadline


async def test_review_dates_survive_a_restart_and_fire_once(database_url):
    clock = ManualClock(START)
    async with Room(database_url, clock) as room:
        await room.say("!propose Rent the hall review=2d closes=1h", as_="alice")
        await room.say("!vote 1 yes", as_="bob")
    clock.advance(timedelta(days=5))  # down while the vote closes and its review date passes
    second = Room(database_url, clock)
    started = "\n".join(await second.start())
    await second.stop()
    assert started.count("#1 Rent the hall: passed") == 1
    assert started.count("#2 Keep #1 Rent the hall?") == 1
    third = Room(database_url, clock)
    assert "Keep" not in "\n".join(await third.start())
    await third.stop()
    clock.advance(timedelta(hours=1))
    async with Room(database_url, clock) as fourth:
        assert "Keep" not in await fourth.wait("1h")
        assert [p.kind for p in proposals(fourth)] == ["decision", "review"]
        assert log_kinds(fourth).count("proposal.opened") == 2


async def test_a_review_that_fell_due_while_down_opens_once_at_start(database_url):
    clock = ManualClock(START)
    async with Room(database_url, clock) as room:
        await room.say("!propose Rent the hall review=1w closes=1d", as_="alice")
        await room.say("!vote 1 yes", as_="bob")
        assert "passed" in await room.wait("1d")
    clock.advance(timedelta(days=10))  # the review date (Tue 10 Mar) passes while the bot is down
    second = Room(database_url, clock)
    started = "\n".join(await second.start())
    await second.stop()
    assert started.count("#2 Keep #1 Rent the hall?") == 1
    assert "Closes Mon 16 Mar 09:00 UTC (in 3 days)" in started  # the full vote from when it opens, not the date
    third = Room(database_url, clock)
    assert "Keep" not in "\n".join(await third.start())
    await third.stop()
    with third.core.db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(Proposal).where(Proposal.kind == "review")) == 1


async def test_reviews_under_a_day_are_refused_and_a_failed_proposal_never_comes_back(room):
    refused = await room.say("!propose Rent the hall review=5m", as_="alice")
    assert "at least a day" in refused and "5m is too soon" in refused and "write months as mo" in refused
    assert "at least a day" in await room.say("!propose Rent the hall review=12h", as_="alice")
    assert "not a duration" in await room.say("!propose Rent the hall review=soon", as_="alice")
    assert "at most ten years" in await room.say("!propose Rent the hall review=11y", as_="alice")
    assert proposals(room) == []
    await room.say("!propose Rent the hall review=1d closes=1h", as_="alice")
    await room.say("!vote 1 no", as_="bob")
    assert "rejected" in await room.wait("1h")
    assert decision_of(room, 1).review_at is None
    assert "Coming reviews" not in await room.say("!decisions")
    assert "Keep" not in await room.wait("30d")


async def test_a_secret_ballot_is_reviewed_by_secret_ballot_under_its_rule(room):
    await room.say("!propose Join the federation secret=yes rule=two-thirds review=1y closes=1d", as_="alice")
    await room.say(":dm !vote 1 yes")
    await room.say(":as bob")
    await room.say(":dm !vote 1 yes")
    assert "passed" in await room.wait("1d")
    brought_back = await room.wait("1y")
    assert "#2 Keep #1 Join the federation?" in brought_back and "Secret ballot: 0 voted so far" in brought_back
    review = proposals(room)[1]
    assert review.secret and review.rule == "two-thirds"


async def test_review_job_finds_the_earliest_due_decision_by_its_index(room):
    await room.say("!propose A review=2d closes=1h", as_="alice")
    await room.say("!propose B review=1d closes=1h", as_="alice")
    await room.say("!vote 1 yes", as_="bob")
    await room.say("!vote 2 yes", as_="bob")
    await room.wait("1h")
    with room.core.db.transaction() as session:
        due = reviews.next_review(session)
        assert due == START + timedelta(hours=1, days=1)
        look = session.connection().execute
        assert look(reviews.reviews_due(), {"now": due - timedelta(seconds=1)}).first() is None
        decision_id, at = look(reviews.reviews_due(), {"now": due}).first()
        assert at == due and session.get(Decision, decision_id).proposal_id == proposals(room)[1].id


async def test_a_review_that_cannot_open_now_is_tried_again_the_next_day(room, monkeypatch):
    from bot.governance import proposals as rules

    await room.say("!propose Rent the hall review=1d closes=1h", as_="alice")
    await room.say("!vote 1 yes", as_="bob")
    await room.wait("1h")
    await room.say("!propose Paint the door closes=30d", as_="alice")
    monkeypatch.setattr(rules, "MAX_OPEN_PER_GROUP", 1)  # the group is at its limit of open proposals
    assert "Keep" not in await room.wait("1d")
    assert decision_of(room, 1).review_at == START + timedelta(days=2, hours=1)
    monkeypatch.setattr(rules, "MAX_OPEN_PER_GROUP", 200)
    assert "#3 Keep #1 Rent the hall?" in await room.wait("1d")
