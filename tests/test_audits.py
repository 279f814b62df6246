"""Sovereignty audits through the console room with a moved clock, on SQLite and PostgreSQL:
prompt, reminder and report with figures checked against what happened, the chart,
the CSV export, the auditor lottery, restarts during the window."""

import csv
import hashlib
import io
import json
import re
from datetime import timedelta

import pytest
from PIL import Image
from sqlalchemy import select

from bot.actions import load_action
from bot.clock import ManualClock
from bot.events import ChatRef, CommandMessage, UserRef
from storage.models import Audit, AuditEntry, OutboxItem
from tests.harness import START, Room, image_of

PNG = b"\x89PNG\r\n\x1a\n"
MEMBERS = ("alice", "bob", "carol", "dan", "erin")


@pytest.fixture
async def room(database_url):
    async with Room(database_url) as room:
        yield room


async def join_all(room):
    for name in MEMBERS:
        await room.say("!help", as_=name)


def announcement(room, key):
    with room.core.db.transaction() as session:
        row = session.scalars(select(OutboxItem).where(OutboxItem.dedupe_key == key)).one()
        return load_action(row.action)


def stored_audit(room, number=1):
    with room.core.db.transaction() as session:
        audit = session.scalars(select(Audit).where(Audit.number == number)).one()
        session.expunge(audit)
        return audit


async def test_an_audit_cycle_from_prompt_through_reminder_to_a_report_of_what_happened(room):
    await join_all(room)
    # Roles: a lottery seat (held through the period, lapses on day 10) and a treasurer recalled on day 3.
    await room.say("!role add host term=10d fill=lottery", as_="alice")
    await room.say("!volunteer host", as_="alice")
    await room.say("!volunteer host", as_="bob")
    drawn = await room.say("!draw host now", as_="carol")
    host = re.search(r"→ (\w+)", drawn)[1]
    await room.say("!role add treasurer term=30d fill=lottery", as_="alice")
    await room.say("!volunteer treasurer", as_="dan")
    await room.say("!draw treasurer now", as_="alice")
    await room.say("!recall treasurer @dan not reporting", as_="carol")  # proposal #1, closes in 3 days
    for name in ("alice", "bob", "erin"):
        await room.say("!vote 1 yes", as_=name)
    await room.say("!propose \"Buy a freezer\" closes=1d", as_="carol")  # proposal #2
    for name in ("alice", "bob"):
        await room.say("!vote 2 yes", as_=name)
    # Needs: one met in 10 hours, one after 3 days, one still waiting (the challenge).
    await room.say("!need \"soup for the Friday kitchen\" category=food", as_="dan")
    await room.say("!need \"help moving a sofa\" category=other", as_="erin")
    await room.say("!need \"a <b>lawyer</b> for the eviction\" category=legal", as_="carol")
    await room.say("!claim 1", as_="erin")
    await room.wait("10h")
    await room.say("!met 1", as_="erin")
    await room.wait("62h")
    await room.say("!met 2", as_="erin")  # 3 days after posting
    await room.wait("6d")  # day 9: the host still holds the seat

    prompt = await room.say("!audit", as_="bob")
    assert "Sovereignty audit #1 is open until Wed 18 Mar 09:00 UTC" in prompt
    assert "Since 2 Mar 2026, what did we provide ourselves" in prompt
    candidates = sorted(set(MEMBERS) - {host})  # published order: platform ids
    assert ("is drawn Wed 11 Mar 09:10 UTC (in 10 minutes) by lottery #3 among the 4 members who hold no role: "
            + ", ".join(f"{n}. {name}" for n, name in enumerate(candidates, 1))) in prompt
    commitment = re.search(r"Commitment: (\w+)", prompt)[1]
    assert "Audit #1 is open already" in await room.say("!audit", as_="carol")
    assert "Added to lottery #3" in await room.say("!draw add 7 red cars passed", as_="erin")
    drawn = await room.wait("10m")
    auditor = re.search(r"the auditor of audit #1 is @(\w+)", drawn)[1]
    assert auditor != host
    secret = re.search(r"Secret, revealed now: (\w+)", drawn)[1]
    assert hashlib.sha256(secret.encode()).hexdigest() == commitment
    seed = hashlib.sha256(f"{secret}\nlottery #3 opened 2026-03-11T09:00:00Z\n7 red cars passed".encode()).hexdigest()
    assert f"Seed: {seed}" in drawn
    number = next(n for n in (int(hashlib.sha256(f"{seed}:{i}".encode()).hexdigest(), 16) for i in range(99))
                  if n < 2 ** 256 - 2 ** 256 % 4)
    assert candidates[number % 4] == auditor
    assert stored_audit(room).auditor_id is not None

    assert "Recorded for audit #1: food 12." in await room.say('!audit food 12 "kitchen every Friday"', as_="bob")
    await room.say("!audit food 5", as_="carol")
    assert "replaces your earlier figure" in await room.say('!audit food 7 "kitchen, <i>fixed</i>"', as_="bob")
    await room.say("!audit Conflict Resolution 2", as_="dan")
    assert "Halfway" not in await room.wait("3d")
    reminder = await room.wait("12h")
    assert reminder.count("Halfway through audit #1") == 1
    assert "So far 3 members reported: food 12 · conflict resolution 2" in reminder
    assert "Still nothing for: housing, childcare, health, money" in reminder

    report = await room.wait("4d")
    assert report.count("Sovereignty audit #1 — what we did for ourselves, 2 Mar 2026 to 18 Mar 2026") == 1
    assert "• food: 12 — bob: kitchen, <i>fixed</i>" in report
    assert "• conflict resolution: 2" in report and "• housing: nobody reported" in report
    assert "2 needs met, 1 of them within 48 hours (50%); typically after 2 days." in report
    assert "3 needs posted." in report
    assert "2 decisions taken, with on average 50% of members voting." in report
    assert "2 different members held a role; 1 mandate lapsed on time, 0 extended, 1 recall." in report
    assert "Need #3 (legal): “a <b>lawyer</b> for the eviction” — waiting since 2 Mar 2026." in report
    assert f"Auditor: {auditor}." in report
    assert "Halfway" not in await room.wait("30d")

    figures = json.loads(stored_audit(room).figures)
    assert {k: figures[k] for k in ("needs_met", "met_within_48h", "median_hours_to_met", "needs_posted",
                                    "decisions", "participation", "role_holders", "lapsed_on_time", "extended",
                                    "recalls")} == {
        "needs_met": 2, "met_within_48h": 1, "median_hours_to_met": 41.0, "needs_posted": 3, "decisions": 2,
        "participation": 0.5, "role_holders": 2, "lapsed_on_time": 1, "extended": 0, "recalls": 1}
    assert figures["reported"] == {"food": 12, "housing": 0, "childcare": 0, "health": 0,
                                   "conflict resolution": 2, "money": 0}
    story = announcement(room, f"audit:{stored_audit(room).id}:report").text.html
    assert "<b>Need #3 (legal): “a &lt;b&gt;lawyer&lt;/b&gt; for the eviction” — waiting since 2 Mar 2026.</b>" in story
    assert "<i>kitchen, &lt;i&gt;fixed&lt;/i&gt;</i>" in story
    chart = announcement(room, f"audit:{stored_audit(room).id}:chart")
    assert image_of(chart).startswith(PNG)
    with Image.open(io.BytesIO(image_of(chart))) as image:
        image.verify()
        assert image.size == (800, 650)


async def test_the_first_audit_comes_audit_every_after_the_group_starts_and_then_on_its_cadence(room):
    await room.say("!need soup", as_="alice")
    assert "30d" in await room.say("!set audit_every 30d", as_="alice")
    assert "Sovereignty audit" not in await room.wait("29d")
    opened = await room.wait("1d")
    assert opened.count("Sovereignty audit #1 is open") == 1
    assert "Halfway through audit #1" in await room.wait("84h")
    closed = await room.wait("84h")
    assert closed.count("Sovereignty audit #1 — what we did") == 1 and "audit-1.png" in closed
    assert "Sovereignty audit #2 is open" not in await room.wait("22d")  # day 59
    assert "Sovereignty audit #2 is open" in await room.wait("1d")  # 30 days after #1 started


async def test_a_restart_during_the_window_loses_no_figure_and_sends_each_message_once(database_url):
    clock = ManualClock(START)
    async with Room(database_url, clock) as room:
        await room.say("!audit", as_="alice")
        await room.say('!audit housing 3 "three families rehoused"', as_="bob")
    clock.advance(timedelta(days=2))  # down, then back before the halfway point
    async with Room(database_url, clock) as room:
        await room.say("!audit food 40", as_="carol")
        assert "Halfway through audit #1" in await room.wait("2d")
    clock.advance(timedelta(days=5))  # down across the close
    again = Room(database_url, clock)
    started = "\n".join(await again.start())
    await again.stop()
    assert started.count("Sovereignty audit #1 — what we did") == 1
    assert "• housing: 3 — bob: three families rehoused" in started and "• food: 40" in started
    assert "Halfway" not in started
    third = Room(database_url, clock)
    assert "Sovereignty audit" not in "\n".join(await third.start())
    await third.stop()


async def test_a_reminder_due_while_down_is_skipped_if_the_close_passed_too(database_url):
    clock = ManualClock(START)
    async with Room(database_url, clock) as room:
        await room.say("!audit", as_="alice")
        await room.say("!audit money 2", as_="bob")
    clock.advance(timedelta(days=9))
    again = Room(database_url, clock)
    started = "\n".join(await again.start())
    await again.stop()
    assert "Halfway" not in started and started.count("• money: 2") == 1


async def test_bad_audit_input_gets_a_clear_reply_and_changes_nothing(room):
    assert "No audit is open right now. The next one is due Sun 31 May 09:00 UTC." in await room.say(
        "!audit food 3", as_="alice")
    assert "No audit has closed yet. The next one is due" in await room.say("!audit report")
    await room.say("!audit", as_="alice")
    assert "write the area, then a whole number" in (await room.say("!audit food")).lower()
    assert "Usage: !audit [<area> <count> [note]]" in await room.say("!audit 12 food")
    tracked = await room.say("!audit housingg 3")
    assert "does not track “housingg”. Its areas: food, housing, childcare, health, conflict resolution, money" \
        in tracked
    assert "too large a count" in await room.say("!audit food 123456789")
    assert "Keep the note under 300 characters" in await room.say("!audit food 3 " + "x" * 400)
    assert "Audit #1 is open until" in await room.say("!audit report")
    with room.core.db.transaction() as session:
        assert session.scalars(select(AuditEntry)).all() == []
    assert "is not an area name" in await room.say("!set audit_areas food, <script>", as_="alice")
    assert "At most 12 areas." in await room.say("!set audit_areas " + ", ".join(f"area{c}" for c in "abcdefghijklm"))


async def test_the_areas_are_the_groups_own_and_the_auditor_draw_can_be_turned_off(room):
    await room.say("!set audit_areas food, tenant defence, Repair Cafe", as_="alice")
    await room.say("!set audit_draw off", as_="alice")
    prompt = await room.say("!audit", as_="bob")
    assert "Areas: food · tenant defence · repair cafe" in prompt and "Auditor" not in prompt
    assert "tenant defence 4" in await room.say("!audit tenant-defence 4", as_="carol")
    assert "does not track “childcare”" in await room.say("!audit childcare 1", as_="carol")


async def test_audit_report_shows_the_latest_again_and_csv_exports_every_audits_figures(room):
    await room.say("!need soup", as_="alice")
    await room.say("!audit", as_="alice")
    await room.say("!audit food 3", as_="bob")
    await room.wait("7d")
    await room.say("!claim 1", as_="bob")
    await room.say("!met 1", as_="bob")
    await room.say("!audit", as_="alice")
    await room.say("!audit food 9", as_="carol")
    await room.say("!audit money 1", as_="carol")
    await room.wait("7d")
    chat = ChatRef(platform="console", chat_id="room")

    def run(text, event_id):
        return room.core.handle(CommandMessage(chat=chat, sender=UserRef(platform="console", user_id="dan"),
                                               sender_name="dan", text=text, event_id=event_id))
    shown = run("!audit report", "r1")
    assert "Sovereignty audit #2 — what we did for ourselves, 9 Mar 2026 to 16 Mar 2026" in shown[0].text.plain()
    story = shown[0].text.plain()
    assert "• food: 9" in story and "1 need met, 0 of them within 48 hours (0%); typically after 7 days" in story
    assert image_of(shown[1]).startswith(PNG) and shown[1].filename == "audit-2.png"
    exported = run("!audit report csv", "r2")[0]
    assert exported.filename == "sovereignty-audits.csv" and exported.mime_type == "text/csv"
    rows = list(csv.DictReader(io.StringIO(exported.data.decode())))
    assert [row["audit"] for row in rows] == ["1", "2"]
    assert [row["reported: food"] for row in rows] == ["3", "9"]
    assert [row["needs_met"] for row in rows] == ["0", "1"]
    assert rows[0]["challenge_need"] == "#1 soup" and rows[1]["challenge_need"] == ""
    assert rows[1]["period_start"] == "2026-03-09T09:00:00+00:00"


async def test_a_group_from_before_audits_existed_is_scheduled_by_the_next_sweep(room):
    from scheduler import jobs
    from storage.models import Group

    await room.say("!help", as_="alice")
    with room.core.db.transaction() as session:
        group = session.scalars(select(Group)).one()
        assert (group.next_digest_at, group.next_audit_at) == (START + timedelta(days=7), START + timedelta(days=90))
        group.next_digest_at = group.next_audit_at = None  # as migration 0004 leaves existing groups
    jobs.run_due_work(room.core)
    with room.core.db.transaction() as session:
        group = session.scalars(select(Group)).one()
        assert (group.next_digest_at, group.next_audit_at) == (START + timedelta(days=7), START + timedelta(days=90))
