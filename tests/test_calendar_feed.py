"""Calendar feeds (bot/calendar_feed.py, served by adapters/web), on SQLite and PostgreSQL, read back
with the icalendar package: the group's feed holds terms, vote deadlines, the audit window, the next
digest, assemblies and review dates, with UIDs that stay put when a deadline moves or a mandate is
renewed, and every time in UTC (a group in Europe/Lisbon across its summer-time change); a member's
own feed holds only their terms and the deadlines of their groups; a wrong or replaced token opens
nothing."""

from __future__ import annotations

import asyncio
import re
from datetime import datetime, timedelta, timezone

import aiohttp
from icalendar import Calendar
from sqlalchemy import select

from bot.events import ChatRef, CommandMessage, UserRef
from storage.models import Decision, FeedToken, Mandate, Member, OutboxItem, Proposal
from tests.browser import serving
from tests.harness import START, Room, private_to

UTC = timezone.utc
CONTENT_TYPE = "text/calendar; charset=utf-8"


async def fetch(url: str) -> tuple[int, str, str]:
    async with aiohttp.ClientSession() as client, client.get(url) as answer:
        return answer.status, answer.headers.get("Content-Type", ""), await answer.text()


def events(text: str) -> dict[str, dict]:
    """UID → {summary, start, end, location, description} of every event in a feed."""
    found = {}
    for event in Calendar.from_ical(text).walk("VEVENT"):
        uid = str(event["UID"])
        assert uid not in found, f"two events with the UID {uid}"
        found[uid] = {"summary": str(event["SUMMARY"]), "start": event.decoded("DTSTART"),
                      "end": event.decoded("DTEND") if "DTEND" in event else None,
                      "location": str(event.get("LOCATION", "")), "description": str(event.get("DESCRIPTION", ""))}
    return found


def assert_utc(text: str) -> None:
    """Every time is a UTC date-time written with Z: no floating times, no TZID."""
    stamps = [line for line in text.splitlines() if line.startswith(("DTSTART", "DTEND", "DTSTAMP"))]
    assert stamps
    for line in stamps:
        assert re.fullmatch(r"(DTSTART|DTEND|DTSTAMP):\d{8}T\d{6}Z", line), line
    assert "TZID" not in text


def feed_address(reply: str, kind: str = "g") -> str:
    return re.search(rf"http://127\.0\.0\.1:\d+/{kind}/[A-Za-z0-9_-]+/calendar\.ics", reply)[0]


def mandate_id(room, member: str) -> int:
    with room.core.db.transaction() as session:
        return session.scalar(select(Mandate.id).join(Member, Member.id == Mandate.member_id)
                              .where(Member.user_id == member))


async def test_the_group_feed_has_every_date_in_utc_and_keeps_its_uids_across_changes(database_url):
    async with Room(database_url) as room, serving(room.core):
        for name in ("alice", "bob", "carol"):
            await room.say("!help", as_=name)
        await room.say("!set timezone Europe/Lisbon", as_="alice")
        await room.say("!set audit_draw off", as_="alice")
        await room.say("!role add treasurer term=30d fill=volunteer max_terms=3", as_="alice")
        await room.say("!volunteer treasurer", as_="bob")  # #1: bob is appointed unless someone blocks
        await room.say("!propose Buy a freezer closes=2d review=6mo", as_="alice")  # #2
        for name in ("alice", "bob", "carol"):
            await room.say("!vote 2 yes", as_=name)
        await room.say("!propose Paint the hall closes=10d", as_="carol")  # #3
        # 19:00 in Lisbon on 10 April is summer time (UTC+1): 18:00 UTC.
        scheduled = await room.say("!assembly 2026-04-10 19:00 community hall | Budget night", as_="alice")
        assert "Fri 10 Apr 19:00" in scheduled
        linked = await room.say("!link", as_="alice")
        address = feed_address(linked)
        assert f"webcal://{address[len('http://'):]}" in linked

        status, content_type, text = await fetch(address)
        assert status == 200 and content_type == CONTENT_TYPE
        assert_utc(text)
        calendar = Calendar.from_ical(text)
        assert str(calendar["X-WR-CALNAME"]) == "Console room" and str(calendar["X-WR-TIMEZONE"]) == "Europe/Lisbon"
        found = events(text)
        assert found["proposal-1-1-closes@commons"]["start"] == START + timedelta(days=3)
        assert found["proposal-1-2-closes@commons"]["summary"] == "Vote closes: #2 Buy a freezer"
        deadline = found["proposal-1-3-closes@commons"]["start"]
        assert deadline == START + timedelta(days=10) and "TZID" not in text
        assembly = found["assembly-1-1@commons"]
        assert assembly["start"] == datetime(2026, 4, 10, 18, 0, tzinfo=UTC)
        assert "DTSTART:20260410T180000Z" in text
        assert assembly["summary"] == "Assembly #1 — Budget night" and assembly["location"] == "community hall"
        assert "Facilitator: not drawn yet" in assembly["description"]
        # The digest: Monday 09:00 in Lisbon, which is 09:00 UTC in winter.
        assert found["digest-1@commons"]["start"] == datetime(2026, 3, 9, 9, 0, tzinfo=UTC)
        audit = found["audit-1-1@commons"]  # the next audit, as scheduled: it will be #1
        assert audit["start"] == START + timedelta(days=90) and audit["end"] == audit["start"] + timedelta(days=7)
        assert found["renewal-review-1@commons"]["start"] == START + timedelta(days=365)
        assert not any(uid.startswith("mandate-") for uid in found)

        await room.wait("4d")  # #1 and #2 passed: bob holds treasurer; #2 comes back for review in 6 months
        status, _, text = await fetch(address)
        assert_utc(text)
        found = events(text)
        mandate = f"mandate-{mandate_id(room, 'bob')}@commons"
        assert found[mandate]["summary"] == "treasurer: bob"
        first_term = (found[mandate]["start"], found[mandate]["end"])
        assert first_term == (START + timedelta(days=3), START + timedelta(days=33))
        with room.core.db.transaction() as session:
            review_at = session.scalar(select(Decision.review_at).join(Proposal).where(Proposal.number == 2))
        assert found["review-1-2@commons"]["start"] == review_at and found["review-1-2@commons"]["summary"] == (
            "Review of #2 Buy a freezer")
        assert "proposal-1-1-closes@commons" not in found and "proposal-1-2-closes@commons" not in found

        # A deadline moves (as an extension would): the same event, at its new time.
        with room.core.db.transaction() as session:
            proposal = session.scalars(select(Proposal).where(Proposal.number == 3)).one()
            proposal.closes_at = proposal.closes_at + timedelta(days=2)
        found = events((await fetch(address))[2])
        assert found["proposal-1-3-closes@commons"]["start"] == deadline + timedelta(days=2)

        # The mandate is renewed: the same event, now the second term.
        await room.say("!renew treasurer", as_="bob")  # #4
        for name in ("alice", "bob", "carol"):
            await room.say("!vote 4 yes", as_=name)
        renewed = await room.wait("4d")
        assert "passed" in renewed
        found = events((await fetch(address))[2])
        assert (found[mandate]["start"], found[mandate]["end"]) == (first_term[1], first_term[1] + timedelta(days=30))
        assert found[mandate]["description"] == "Term 2."

        # The scheduled audit opens early: the same event, its window now.
        await room.say("!audit", as_="carol")
        found = events((await fetch(address))[2])
        now = room.clock.now()
        audit = found["audit-1-1@commons"]
        assert (audit["start"], audit["end"]) == (now, now + timedelta(days=7))


async def test_a_members_own_feed_has_their_terms_and_their_groups_deadlines_only(database_url):
    async with Room(database_url) as room, serving(room.core) as server:
        core = room.core

        def say(chat_id: str, user: str, text: str):
            return core.handle(CommandMessage(
                chat=ChatRef(platform="console", chat_id=chat_id), sender=UserRef(platform="console", user_id=user),
                sender_name=user, text=text, event_id=f"{chat_id}-{user}-{room.clock.now()}-{text}",
                chat_title=chat_id.title()))

        for name in ("alice", "bob"):
            await room.say("!help", as_=name)
        await room.say("!role add treasurer term=60d fill=volunteer", as_="alice")
        await room.say("!role add secretary term=60d fill=volunteer", as_="alice")
        await room.say("!volunteer treasurer", as_="bob")
        await room.say("!volunteer secretary", as_="alice")
        say("garden", "carol", "!propose Plant tomatoes closes=10d")
        say("garden", "bob", "!assembly 2026-03-20 18:00 the shed | Seed swap")
        say("kitchen", "dan", "!propose Repaint the kitchen closes=10d")  # bob is not in the kitchen group
        await room.wait("4d")  # bob holds treasurer, alice secretary
        await room.say("!propose Buy a freezer closes=2d", as_="alice")

        asked = await room.say(":dm calendar", as_="bob")
        [told] = private_to(asked, "bob")
        address = feed_address(told, "me")
        assert f"webcal://{address[len('http://'):]}" in told and "Keep it to yourself" in told
        with room.core.db.transaction() as session:
            token = session.get(FeedToken, ("console", "bob")).token
        assert token in address
        for _ in range(50):  # the reply is sealed: blanked from the outbox once its delivery is recorded
            with room.core.db.transaction() as session:
                kept = [row for row in session.scalars(select(OutboxItem)) if token in row.action]
            if not kept:
                break
            assert all(row.sealed for row in kept)
            await asyncio.sleep(0.05)
        assert not kept

        status, content_type, text = await fetch(address)
        assert status == 200 and content_type == CONTENT_TYPE
        assert_utc(text)
        summaries = sorted(event["summary"] for event in events(text).values())
        assert summaries == ["Console room · Vote closes: #3 Buy a freezer", "Console room · treasurer: bob",
                             "Garden · Assembly #1 — Seed swap", "Garden · Vote closes: #1 Plant tomatoes"]
        found = events(text)
        assert found[f"mandate-{mandate_id(room, 'bob')}@commons"]["end"] == START + timedelta(days=63)
        assert found["assembly-2-1@commons"]["start"] == datetime(2026, 3, 20, 18, 0, tzinfo=UTC)

        # Asked again: the same address. Reset: a new one, and the old one opens nothing.
        assert feed_address(private_to(await room.say(":dm calendar", as_="bob"), "bob")[0], "me") == address
        reset = await room.say(":dm calendar reset", as_="bob")
        fresh = feed_address(private_to(reset, "bob")[0], "me")
        assert fresh != address and "new address" in reset
        assert (await fetch(address))[0] == 404
        assert (await fetch(fresh))[0] == 200
        base = f"http://127.0.0.1:{server.port}"
        for wrong in ("nothing", fresh.split("/")[-2][:-1] + "x", "a" * 300):
            assert (await fetch(f"{base}/me/{wrong}/calendar.ics"))[0] == 404
            assert (await fetch(f"{base}/g/{wrong}/calendar.ics"))[0] == 404
        # A member's token opens no group page or feed.
        assert (await fetch(fresh.replace("/me/", "/g/")))[0] == 404


async def test_calendar_in_the_group_and_in_private(database_url):
    async with Room(database_url) as room, serving(room.core):
        refused = await room.say("!calendar", as_="alice")
        assert "no members' page yet" in refused and "!link" in refused
        assert "send it to me in a private chat" in await room.say("!calendar reset", as_="alice")
        assert "I don't know you from any group yet" in await room.say(":dm calendar", as_="zoe")
        with room.core.db.transaction() as session:
            assert session.scalars(select(FeedToken)).all() == []
        page = feed_address(await room.say("!link", as_="alice"))
        shown = await room.say("!calendar", as_="bob")
        assert page in shown and f"webcal://{page[len('http://'):]}" in shown
        assert "send me calendar in a private chat" in shown
        assert (await fetch(page))[0] == 200
