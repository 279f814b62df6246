"""Assemblies through the console room with a moved clock, on SQLite and PostgreSQL: the full cycle
over restarts (scheduled, reminded once each, agenda gathered and ordered, facilitator and
note-taker drawn, started, a proposal from an agenda item, minutes into the group log), the
rotation of both jobs across a rhythm, a rhythm across a daylight-saving change, and bad input
that is refused and changes nothing."""

import json
import re
from datetime import datetime, timedelta, timezone

from sqlalchemy import func, select

from bot.actions import DirectMessage, SendMessage
from bot.clock import ManualClock
from bot.verify import verify
from storage.models import AgendaItem, Assembly, LogEntry, Lottery, Proposal
from tests.harness import START, Room, group_messages, private_to, recorded

MEMBERS = ("alice", "bob", "carol", "dan", "erin")


async def join_all(room, names=MEMBERS):
    for name in names:
        await room.say("!help", as_=name)


def assemblies(room) -> list[Assembly]:
    with room.core.db.transaction() as session:
        found = list(session.scalars(select(Assembly).order_by(Assembly.number)))
        for row in found:
            session.expunge(row)
        return found


def log_bodies(room, kind):
    with room.core.db.transaction() as session:
        return [json.loads(body) for body in session.scalars(
            select(LogEntry.body).where(LogEntry.kind == kind).order_by(LogEntry.seq))]


def agenda_order(message: str) -> list[int]:
    """Item numbers of a listed agenda, in the order shown."""
    return [int(n) for n in re.findall(r"^\s+\d+\. .* #(\d+)", message, re.M)]


def count(room, model) -> int:
    with room.core.db.transaction() as session:
        return session.scalar(select(func.count()).select_from(model))


async def test_an_assemblys_full_cycle_over_restarts(database_url):
    clock = ManualClock(START)  # Monday 2 March 2026, 09:00 UTC
    said: list[str] = []
    room = Room(database_url, clock)
    await room.start()
    await join_all(room)
    scheduled = await room.say("!assembly fri 19:00 community hall | Budget night", as_="alice")
    assert "Assembly #1 — Budget night: Fri 6 Mar 19:00 UTC (in 4 days) · 📍 community hall" in scheduled
    for name, job in (("bob", "facilitation"), ("carol", "facilitation"), ("dan", "minutes"), ("bob", "minutes")):
        assert "stands for" in await room.say(f"!volunteer {job}", as_=name)
    await room.say("!agenda add repaint the kitchen", as_="erin")  # #1
    await room.say("!agenda add a rota for the pantry", as_="dan")  # #2
    await room.say("!agenda add the <b>garden</b> shed", as_="bob")  # #3
    for name in ("alice", "carol"):
        await room.say("!agenda +2", as_=name)
    await room.say("!agenda +1", as_="erin")
    assert "You back item #2 already" in await room.say("!agenda +2", as_="alice")
    shown = await room.say("!agenda", as_="carol")
    assert agenda_order(shown) == [2, 1, 3]  # by support (2, 1, 0), then age
    assert "a rota for the pantry #2 — dan · 👍 2" in shown
    await room.stop()

    async def run_for(duration: str) -> None:
        """Start the bot again, let time pass, stop it: what it said goes into `said`."""
        nonlocal room
        room = Room(database_url, clock)
        said.extend(await room.start())
        said.append(await room.wait(duration))
        await room.stop()

    await run_for("2d")  # to Wed 09:00: nothing due yet
    assert "⏰" not in "\n".join(said)
    clock.advance(timedelta(hours=10, minutes=5))  # down across the 2-day reminder (Wed 19:00)
    await run_for("1m")  # back at 19:05: the reminder, with the two lotteries opened, once
    joined = "\n".join(said)
    assert joined.count("⏰ Assembly #1") == 1
    assert "draws the facilitator of Assembly #1" in joined and "draws the note-taker" not in joined
    await run_for("20m")  # the facilitator's lottery (drawn at 19:15), then the note-taker's opens
    await run_for("15m")  # … and is drawn
    joined = "\n".join(said)
    assert joined.count("Budget night: the facilitator is @") == 1
    assert joined.count("Budget night: the note-taker is @") == 1
    [first] = assemblies(room)
    assert first.facilitator_id is not None and first.note_taker_id is not None
    assert first.facilitator_id != first.note_taker_id  # the note-taker was drawn among the others
    facilitator = re.search(r"the facilitator is @(\w+)", joined)[1]
    note_taker = re.search(r"the note-taker is @(\w+)", joined)[1]
    assert facilitator in ("bob", "carol") and note_taker in ("bob", "dan") and facilitator != note_taker
    assert len(private_to(joined, facilitator)) == 1 and len(private_to(joined, note_taker)) == 1
    assert "You are the facilitator of Assembly #1" in private_to(joined, facilitator)[0]
    assert "a rota for the pantry" in private_to(joined, note_taker)[0]
    # the agenda is open until an hour before
    room = Room(database_url, clock)
    await room.start()
    assert "Item #4 is on the agenda" in await room.say("!agenda add cake", as_="alice")
    assert "Only the facilitator of assembly #1 closes its agenda" in await room.say(
        "!agenda close", as_="erin")
    await room.stop()
    await run_for("1d22h")  # to Fri 17:41; the one-hour reminder is at 18:00
    await run_for("50m")
    joined = "\n".join(said)
    assert joined.count("⏰ Assembly #1") == 2
    room = Room(database_url, clock)
    await room.start()
    assert "The agenda of assembly #1 is closed and no later assembly is scheduled" in await room.say(
        "!agenda add too late", as_="alice")
    assert "The agenda of assembly #1 is closed; its order is set" in await room.say("!agenda +3", as_="erin")
    await room.stop()
    await run_for("1h")  # the start, once
    joined = "\n".join(said)
    [start] = [m for m in group_messages(joined) if "Starting now" in m]
    assert agenda_order(start) == [2, 1, 3, 4]  # by support, then age
    await run_for("10m")
    assert "\n".join(said).count("Starting now") == 1
    assert "\n".join(said).count("⏰ Assembly #1") == 2

    async with Room(database_url, clock) as room:
        opened = await room.say("!agenda propose 2", as_="alice")
        assert "#1 a rota for the pantry" in opened and "From agenda item #2 of assembly #1" in opened
        assert "is proposal #1 already" in await room.say("!agenda propose 2", as_="bob")
        other = "erin"
        assert f"Only the note-taker of assembly #1, {note_taker}, records its minutes" in await room.say(
            "!minutes we agreed nothing", as_=other)
        await room.say("!minutes Kitchen: repaint in March.", as_=note_taker)
        added = await room.say(":dm minutes Pantry: Dan drafts a rota. group=#1", as_=note_taker)
        assert "Added to the minutes of Assembly #1" in added
        assert "Only the note-taker publishes" in await room.say("!minutes done", as_=other)
        published = await room.say("!minutes done", as_=note_taker)
        assert "📜 Minutes of Assembly #1 — Budget night" in published
        assert "Kitchen: repaint in March." in published and "Pantry: Dan drafts a rota." in published
        assert "Proposals opened from its agenda: #1" in published
        assert "No assembly is waiting for minutes" in await room.say("!minutes more", as_=note_taker)
        assert "Pantry: Dan drafts a rota." in await room.say("!minutes 1", as_="erin")
        [entry] = log_bodies(room, "assembly.minutes")
        assert entry["assembly"] == 1 and entry["proposals"] == [1] and entry["agenda"] == [2, 1, 3, 4]
        assert entry["minutes"] == "Kitchen: repaint in March.\nPantry: Dan drafts a rota."
        assert [body["assembly"] for body in log_bodies(room, "assembly.started")] == [1]
        left = await room.say("!assembly notes the keys are with the caretaker", as_=facilitator)
        assert "gets these notes when they are drawn" in left
        assert "the keys are with the caretaker" in await room.say("!handover facilitation", as_="alice")
    # every message of the cycle went out once: the outbox has each step's key once
    dms = [a for a in recorded(room, "dm") if isinstance(a, DirectMessage)]
    assert len(dms) == 2


async def test_facilitation_and_minutes_rotate_on_a_rhythm(database_url):
    async with Room(database_url) as room:
        await join_all(room)
        await room.say("!set assembly_every 1w", as_="alice")
        for name in ("bob", "carol", "dan"):
            await room.say("!volunteer facilitation", as_=name)
        for name in ("alice", "bob", "erin"):
            await room.say("!volunteer minutes", as_=name)
        await room.say("!assembly wed 18:00", as_="alice")
        for _ in range(62):  # a month, twelve hours at a time: Wed 4, 11, 18, 25 March and 1 April
            await room.wait("12h")
        rows = [a for a in assemblies(room) if a.started_at is not None]
        assert [a.starts_at.day for a in rows] == [4, 11, 18, 25, 1]
        facilitators = [a.facilitator_id for a in rows]
        takers = [a.note_taker_id for a in rows]
        assert None not in facilitators and None not in takers
        assert all(before != after for before, after in zip(facilitators, facilitators[1:], strict=False))
        assert all(before != after for before, after in zip(takers, takers[1:], strict=False))
        assert all(row.facilitator_id != row.note_taker_id for row in rows)
        assert len(set(facilitators[:3])) == 3  # newcomers first: every volunteer once before anyone twice
        assert len(set(takers[:2])) == 2
        with room.core.db.transaction() as session:
            purposes = dict(session.execute(select(Lottery.purpose, func.count()).group_by(Lottery.purpose)).all())
        drawn = len([a for a in assemblies(room) if a.drawn_at is not None])
        assert purposes == {"facilitation": drawn, "minutes": drawn}
        await room.say("!log export", as_="bob")  # every draw can be recomputed from the log
        report = verify(recorded(room, "file")[-1].data.decode().splitlines())
        assert report.ok, report.problem
        assert report.lotteries == 2 * drawn


async def test_a_recurring_assembly_keeps_its_local_time_across_daylight_saving(database_url):
    async with Room(database_url) as room:
        await join_all(room, ("alice", "bob"))
        await room.say("!set timezone Europe/Lisbon", as_="alice")
        await room.say("!set assembly_every 1w", as_="alice")
        scheduled = await room.say("!assembly 2026-03-20 19:00 the hall", as_="alice")
        assert "Fri 20 Mar 19:00 WET" in scheduled
        assert "Next: assembly #2, Fri 27 Mar 19:00 WET" in await room.wait("19d")  # to Sat 21 March
        # Clocks go forward on Sunday 29 March: the next one is still at 19:00 in the hall.
        assert "Next: assembly #3, Fri 3 Apr 19:00 WEST" in await room.wait("7d")
        rows = assemblies(room)
        assert [a.starts_at for a in rows] == [
            datetime(2026, 3, 20, 19, 0, tzinfo=timezone.utc),  # WET is UTC
            datetime(2026, 3, 27, 19, 0, tzinfo=timezone.utc),
            datetime(2026, 4, 3, 18, 0, tzinfo=timezone.utc),  # WEST is UTC+1
        ]
        room.clock.advance(datetime(2026, 4, 1, 17, 59, tzinfo=timezone.utc) - room.clock.now())
        assert "⏰ Assembly #3" not in await room.wait("59s")
        two_days = await room.wait("1s")  # 18:00 UTC on Wednesday: 19:00 WEST, two days before
        assert "⏰ Assembly #3" in two_days and "Fri 3 Apr 19:00 WEST (in 2 days)" in two_days
        hour_before = await room.wait("1d23h")
        assert "⏰ Assembly #3" in hour_before and "(in 1 hour)" in hour_before
        started = await room.wait("1h")
        assert "Starting now" in started and "Next: assembly #4, Fri 10 Apr 19:00 WEST" in started


async def test_bad_input_is_refused_and_changes_nothing(database_url):
    async with Room(database_url) as room:
        await join_all(room)
        refusals = {
            "!assembly": "The time is missing",
            "!assembly 2020-01-01 10:00": "is in the past",
            "!assembly today 08:00": "is in the past",
            "!assembly 2026-02-30 10:00": "is not a date",
            "!assembly fri 25:00": "Give a day and a time",
            "!assembly soon": "I can't read “soon” as a day or a time",
            "!assembly 2028-01-01 10:00": "more than a year away",
            "!agenda add repaint the kitchen": "No assembly is scheduled, so there is no agenda to add to",
            "!minutes we agreed to paint": "No assembly is waiting for minutes",
            "!minutes done": "No assembly is waiting for minutes",
            "!agenda close": "No assembly is scheduled",
            "!agenda +x": "Write +3 to back item #3",
            "!agenda +99": "There is no agenda item #99",
            "!agenda propose 99": "There is no agenda item #99",
            "!assembly cancel 5": "There is no assembly #5",
            "!role add facilitation term=30d": "is the name of a task members stand for",
            "!unvolunteer minutes": "You were not standing for minutes",
            "!assembly notes hello": "you have not done either yet",
        }
        for line, reply in refusals.items():
            assert reply in await room.say(line, as_="bob"), line
        assert count(room, Assembly) == 0 and count(room, AgendaItem) == 0
        title = "fri 19:00 <b>hall</b> & co | <i>Budget</i>"
        await room.say(f"!assembly {title}", as_="alice")
        [posted] = [a.text.html for a in recorded(room, "send") if isinstance(a, SendMessage) and "📅" in a.text.html]
        assert "&lt;b&gt;hall&lt;/b&gt; &amp; co" in posted and "&lt;i&gt;Budget&lt;/i&gt;" in posted
        assert "already at" in await room.say("!assembly fri 19:00", as_="bob")
        assert "keep it under 200" in await room.say("!agenda add " + "x" * 201, as_="bob")
        await room.say("!agenda add paint", as_="bob")
        assert "Only whoever added item #1 can withdraw it" in await room.say("!agenda withdraw 1", as_="carol")
        assert "Only whoever scheduled assembly #1 or its facilitator can cancel it" in await room.say(
            "!assembly cancel 1", as_="carol")
        assert count(room, Assembly) == 1 and count(room, AgendaItem) == 1
        assert "cancelled Assembly #1" in await room.say("!assembly cancel 1", as_="alice")
        assert "Nothing" not in await room.wait("5d")  # no reminder, no start for a cancelled assembly
        assert "⏰" not in "\n".join(room.output) and "Starting now" not in "\n".join(room.output)
        with room.core.db.transaction() as session:
            assert session.scalar(select(func.count()).select_from(Proposal)) == 0


async def test_a_job_nobody_could_be_drawn_for_goes_to_the_first_who_stands(database_url):
    async with Room(database_url) as room:
        await join_all(room)
        await room.say("!assembly thu 19:00", as_="alice")
        await room.say("!volunteer minutes", as_="dan")
        opened = await room.wait("1d10h")  # Tue 19:00: two days before
        assert "Nobody can be drawn as facilitator of Assembly #1: nobody stands for it" in opened
        await room.wait("10m")
        taken = await room.say("!volunteer facilitation", as_="erin")
        assert "erin is the facilitator of Assembly #1" in taken.replace("@", "")
        assert "You are the facilitator of Assembly #1" in private_to(taken, "erin")[0]
        [row] = assemblies(room)
        assert row.facilitator_id is not None and row.note_taker_id is not None
        assert "facilitator: @erin" in await room.say("!assemblies", as_="bob")


async def test_turning_the_rhythm_on_continues_from_the_latest_assembly(database_url):
    async with Room(database_url) as room:
        await join_all(room, ("alice",))
        assert "Schedule the first one with !assembly" in await room.say("!set assembly_every 1w", as_="alice")
        await room.say("!set assembly_every off", as_="alice")
        await room.say("!assembly tue 18:00", as_="alice")
        started = await room.wait("2d")
        assert "Starting now" in started and "Next:" not in started  # no rhythm: nothing follows
        turned_on = await room.say("!set assembly_every 1w", as_="alice")
        assert "Next assembly: #2, Tue 10 Mar 18:00 UTC." in turned_on
        assert [a.starts_at.day for a in assemblies(room)] == [3, 10]


def test_the_ways_to_say_when():
    from zoneinfo import ZoneInfo

    from bot.governance.assemblies import parse_when

    zone = ZoneInfo("America/Bogota")  # UTC-5
    now = datetime(2026, 3, 6, 20, 0, tzinfo=timezone.utc)  # Friday 15:00 in Bogotá
    cases = {
        "fri 19:00 the hall": (datetime(2026, 3, 7, 0, 0, tzinfo=timezone.utc), "the hall"),  # today, later
        "friday 14:00": (datetime(2026, 3, 13, 19, 0, tzinfo=timezone.utc), ""),  # today's has passed: next week
        "tomorrow 7pm https://meet.example/x": (datetime(2026, 3, 8, 0, 0, tzinfo=timezone.utc),
                                                 "https://meet.example/x"),
        "19h | Budget": (datetime(2026, 3, 7, 0, 0, tzinfo=timezone.utc), "| Budget"),
        "14:30": (datetime(2026, 3, 7, 19, 30, tzinfo=timezone.utc), ""),  # a time alone: the next one
        "2027-01-15 18:30 community hall": (datetime(2027, 1, 15, 23, 30, tzinfo=timezone.utc), "community hall"),
    }
    for said, (starts_at, rest) in cases.items():
        found = parse_when(said, now, zone)
        assert (found.starts_at, found.rest) == (starts_at, rest), said


async def test_a_drawn_facilitator_can_step_down_and_the_job_is_drawn_again(database_url):
    async with Room(database_url) as room:
        await join_all(room)
        await room.say("!assembly thu 19:00", as_="alice")
        for name in ("bob", "carol"):
            await room.say("!volunteer facilitation", as_=name)
        assert "You are not the facilitator of a coming assembly" in await room.say("!stepdown facilitation",
                                                                                   as_="bob")
        await room.wait("1d10h")  # Tue 19:00: the lottery opens
        drawn = await room.wait("10m")
        first = re.search(r"the facilitator is @(\w+)", drawn)[1]
        other = "carol" if first == "bob" else "bob"
        assert "You are not the facilitator" in await room.say("!stepdown facilitation", as_=other)
        stepped = await room.say("!stepdown facilitation", as_=first)
        assert f"{first} stepped down as facilitator of Assembly #1" in stepped
        assert f"the facilitator is @{other}" in stepped and "Drawn at once (!stepdown facilitation)" in stepped
        assert "You are the facilitator of Assembly #1" in private_to(stepped, other)[0]
        [row] = assemblies(room)
        assert row.facilitator_id is not None
        again = await room.say("!stepdown facilitation", as_=other)
        assert "Nobody else can be drawn; the first to stand takes it" in again
        assert "Mediators hold no seat" in await room.say("!stepdown mediation", as_=other)
        assert [a.facilitator_id for a in assemblies(room)] == [None]
        assert "the facilitator of Assembly #1" in await room.say("!volunteer facilitation", as_="dan")
