"""The open books through the console room with a moved clock, on SQLite and PostgreSQL:
recording tied to decisions, refusals that change nothing, undo by reversal, the CSV and the
statement with its chart, the role gate, and the monthly cycle — statement, co-auditor drawn
by lot among members who hold no role, their answer, one reminder — also across restarts."""

import csv
import io
import json
import re
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from PIL import Image
from sqlalchemy import func, select

from bot.actions import DirectMessage
from bot.clock import ManualClock
from bot.governance import ledger
from storage.models import Group, LedgerCheck, LedgerEntry, LogEntry, Lottery
from tests.harness import START, Room, image_of, recorded

PNG = b"\x89PNG\r\n\x1a\n"
MEMBERS = ("alice", "bob", "carol", "dan", "erin")


@pytest.fixture
async def room(database_url):
    async with Room(database_url) as room:
        yield room


async def join_all(room):
    for name in MEMBERS:
        await room.say("!help", as_=name)


async def passed_decision(room, title="Buy a chest freezer"):
    """A proposal that passes a day later; returns its number."""
    opened = await room.say(f"!propose {title} closes=1d", as_="alice")
    number = int(re.search(r"#(\d+) ", opened)[1])
    for name in ("alice", "bob", "carol"):
        await room.say(f"!vote {number} yes", as_=name)
    assert f"#{number} {title}: passed" in await room.wait("1d")
    return number


def entry_count(room) -> int:
    with room.core.db.transaction() as session:
        return session.scalar(select(func.count()).select_from(LedgerEntry))


def log_bodies(room, kind):
    with room.core.db.transaction() as session:
        return [json.loads(body) for body in session.scalars(
            select(LogEntry.body).where(LogEntry.kind == kind).order_by(LogEntry.seq))]


def the_check(room, month):
    with room.core.db.transaction() as session:
        check = session.scalars(select(LedgerCheck).where(LedgerCheck.month == month)).one()
        session.expunge(check)
        return check


async def test_income_spending_for_a_decision_summary_csv_and_statement(room):
    await join_all(room)
    assert "The books are empty" in await room.say("!ledger", as_="bob")
    await room.say("!set spend_limit 200", as_="alice")
    donated = await room.say("!ledger +120 Sunday kitchen donations category=food", as_="bob")
    assert "bot ✓" in donated  # a quiet acknowledgement, not an announcement
    assert "#1 recorded: +120.00 EUR Sunday kitchen donations · food" in donated
    assert "Balance: 120.00 EUR" in donated
    freezer = await passed_decision(room)  # proposal #1, passes Tue 3 Mar
    spent = await room.say(f"!ledger -450 chest freezer for=#{freezer} category=kitchen", as_="carol")
    assert "#2 recorded: −450.00 EUR chest freezer · kitchen · for #1" in spent and "Balance: −330.00 EUR" in spent
    await room.say("!ledger -45.50 cleaning things", as_="dan")  # under the limit: no decision needed
    await room.say("!ledger +1000 rent share from the bakery", as_="erin")
    await room.say("!ledger +5 =1+1 raffle", as_="erin")  # would be a formula in a spreadsheet

    shown = await room.say("!ledger", as_="bob")
    assert "Balance: 629.50 EUR" in shown
    assert "March 2026 so far: in 1 125.00 EUR · out 495.50 EUR" in shown
    assert shown.index("#5 3 Mar +5.00 EUR =1+1 raffle — erin") < shown.index("#1 2 Mar +120.00 EUR")

    await room.say("!ledger csv", as_="bob")
    [exported] = recorded(room, "file")
    assert exported.filename.endswith(".csv") and exported.mime_type == "text/csv"
    rows = list(csv.DictReader(io.StringIO(exported.data.decode())))
    assert [row["entry"] for row in rows] == ["1", "2", "3", "4", "5"]
    assert [row["amount"] for row in rows] == ["120.00", "-450.00", "-45.50", "1000.00", "5.00"]
    assert [row["balance"] for row in rows] == ["120.00", "-330.00", "-375.50", "624.50", "629.50"]
    assert rows[1]["for_decision"] == "1" and rows[1]["category"] == "kitchen" and rows[1]["recorded_by"] == "carol"
    assert rows[4]["description"] == "'=1+1 raffle"

    statement = await room.say("!ledger statement", as_="bob")
    assert "Statement for March 2026 so far" in statement
    assert "Opening balance: 0.00 EUR" in statement and "Closing balance: 629.50 EUR" in statement
    assert "In: 1 125.00 EUR · Out: 495.50 EUR (5 entries)" in statement
    assert "• #1 Buy a chest freezer: 450.00 EUR" in statement and "• no decision: 45.50 EUR" in statement
    assert "• kitchen: 0.00 EUR / 450.00 EUR" in statement and "• food: 120.00 EUR / 0.00 EUR" in statement
    [chart] = recorded(room, "image")
    assert image_of(chart).startswith(PNG) and chart.filename == "ledger-2026-03.png"

    recorded_log = log_bodies(room, "ledger.recorded")
    assert [body["amount_cents"] for body in recorded_log] == [12000, -45000, -4550, 100000, 500]
    assert all(isinstance(body["balance_cents"], int) for body in recorded_log)
    assert recorded_log[1]["for"] == {"decision": 1} and recorded_log[1]["member"] == "carol"


async def test_the_summary_shows_the_last_ten_and_only_this_months_money(room):
    await room.say("!ledger +300 grant", as_="alice")
    await room.wait("31d")  # April
    for day in range(1, 13):
        await room.say(f"!ledger -{day} stamps batch {day}", as_="alice")
    shown = await room.say("!ledger", as_="bob")
    assert "April 2026 so far: in 0.00 EUR · out 78.00 EUR" in shown
    assert "Last 10 entries of 13:" in shown
    assert "stamps batch 12" in shown and "stamps batch 3 " in shown
    assert "stamps batch 2 " not in shown and "grant" not in shown
    march = await room.say("!ledger statement 2026-03", as_="bob")
    assert "Statement for March 2026" in march and "so far" not in march and "Closing balance: 300.00 EUR" in march
    april = await room.say("!ledger statement april", as_="bob")
    assert "Opening balance: 300.00 EUR" in april and "Closing balance: 222.00 EUR" in april


async def test_refusals_say_what_was_wrong_and_change_nothing(room):
    await join_all(room)
    await room.say("!set spend_limit 200", as_="alice")
    await room.say("!ledger +500 grant", as_="alice")
    over = await room.say("!ledger -450 chest freezer", as_="bob")
    assert ("Spending over 200.00 EUR needs a decision: propose it first (!propose Spend 450.00 EUR on chest "
            "freezer), then record it with for=#N.") in over
    await room.say("!need a freezer for the kitchen", as_="carol")
    assert "Citing a need is not enough" in await room.say("!ledger -450 chest freezer for=need1", as_="bob")

    await room.say("!propose Buy a van closes=1d", as_="alice")  # #1: will fail
    still_open = await room.say("!ledger -50 van deposit for=#1", as_="bob")
    assert "Proposal #1 is still open: it closes Tue 3 Mar 09:00 UTC" in still_open
    for name in ("alice", "bob"):
        await room.say("!vote 1 no", as_=name)
    await room.wait("1d")
    assert "Proposal #1 did not pass (rejected)" in await room.say("!ledger -50 van deposit for=#1", as_="bob")
    await room.say("!propose Buy a bike closes=1d", as_="alice")
    await room.say("!withdraw 2", as_="alice")
    assert "Proposal #2 was withdrawn" in await room.say("!ledger -50 bike for=#2", as_="bob")
    assert "There is no proposal #9" in await room.say("!ledger -50 bike for=#9", as_="bob")
    assert "There is no need #7" in await room.say("!ledger -50 bike for=need7", as_="bob")
    assert "write for=#12 for a decision or for=need5" in await room.say("!ledger -50 bike for=soon", as_="bob")

    assert "“-45.505” has more than two decimals" in await room.say("!ledger -45.505 soap", as_="bob")
    not_number = await room.say("!ledger lots of money", as_="bob")
    assert "“lots” is not an amount; write it like +120 or -45.50" in not_number
    assert "Usage: !ledger [<±amount> <description>] [category=word] [for=#N|needN]" in not_number
    assert "Write + for money in or - for money out, like +45 or -45" in await room.say("!ledger 45 soap", as_="bob")
    assert "Say what the money is for, like +120 Sunday kitchen donations" in await room.say("!ledger -45", as_="bob")
    assert "keep it under 200" in await room.say("!ledger -5 " + "x" * 300, as_="bob")
    assert "An entry of 0 changes nothing" in await room.say("!ledger +0 nothing", as_="bob")
    assert "go with an amount" in await room.say("!ledger category=food", as_="bob")
    assert entry_count(room) == 1  # only the grant

    await room.say("!ledger +10 raffle", as_="bob")  # #2
    assert "#3 undoes #2: −10.00 EUR Reversal of #2: counted twice" in await room.say(
        "!ledger undo 2 counted twice", as_="bob")
    assert "an undo cannot be undone — record a new entry instead" in await room.say(
        "!ledger undo 3 oops", as_="bob")
    assert "#2 was already undone by #3" in await room.say("!ledger undo 2 again", as_="carol")
    assert "There is no ledger entry #40" in await room.say("!ledger undo 40 typo", as_="carol")
    assert "The reason is missing" in await room.say("!ledger undo 1", as_="carol")
    assert entry_count(room) == 3
    shown = await room.say("!ledger", as_="dan")
    assert "Balance: 500.00 EUR" in shown and "raffle · undone by #3" in shown


async def test_a_big_spend_is_undone_without_a_decision_and_nets_out_of_the_month(room):
    await join_all(room)
    await room.say("!set spend_limit 100", as_="alice")
    await room.say("!ledger +1000 grant", as_="alice")
    freezer = await passed_decision(room)
    await room.say(f"!ledger -450 freezer for=#{freezer}", as_="bob")
    undone = await room.say("!ledger undo 2 the shop refunded it", as_="bob")  # +450, above the limit
    assert "#3 undoes #2: +450.00 EUR" in undone and "Balance: 1 000.00 EUR" in undone
    statement = await room.say("!ledger statement", as_="bob")
    assert "In: 1 000.00 EUR · Out: 0.00 EUR (3 entries)" in statement
    assert "Buy a chest freezer" not in statement  # spent and refunded in the same month


async def test_descriptions_and_concerns_are_escaped(room):
    await join_all(room)
    await room.say("!ledger +5 <b>bold</b> & <script>x</script> category=food", as_="alice")
    [ack] = recorded(room, "ack")
    assert "&lt;b&gt;bold&lt;/b&gt; &amp; &lt;script&gt;x&lt;/script&gt;" in ack.text.html
    assert "<b>bold</b>" not in ack.text.html


async def test_only_holders_record_when_ledger_role_names_a_held_role(room):
    await join_all(room)
    await room.say("!role add treasurer term=90d fill=lottery", as_="alice")
    await room.say("!volunteer treasurer", as_="dan")
    await room.say("!draw treasurer now", as_="alice")
    assert "treasurer" in await room.say("!set ledger_role treasurer", as_="alice")
    refused = await room.say("!ledger +20 donations", as_="bob")
    assert "recording money is the treasurer's task (held by dan)" in refused
    assert "#1 recorded" in await room.say("!ledger +20 donations", as_="dan")
    assert "recording money is the treasurer's task" in await room.say("!ledger undo 1 wrong", as_="bob")
    assert "Balance: 20.00 EUR" in await room.say("!ledger", as_="bob")  # reading stays open to all
    assert entry_count(room) == 1


def test_months_start_at_local_midnight_across_summer_time():
    lisbon = ZoneInfo("Europe/Lisbon")
    assert ledger.month_start("2026-03", lisbon) == datetime(2026, 3, 1, 0, 0, tzinfo=timezone.utc)
    assert ledger.month_start("2026-04", lisbon) == datetime(2026, 3, 31, 23, 0, tzinfo=timezone.utc)  # WEST
    assert ledger.next_statement(datetime(2026, 3, 31, 23, 30, tzinfo=timezone.utc), lisbon) == datetime(
        2026, 4, 30, 23, 0, tzinfo=timezone.utc)  # 00:30 on 1 April local is already April
    assert ledger.shift("2026-12", 1) == "2027-01" and ledger.shift("2026-01", -1) == "2025-12"


async def hold_a_role(room, role, member):
    await room.say(f"!role add {role} term=1y fill=lottery", as_="alice")
    await room.say(f"!volunteer {role}", as_=member)
    await room.say(f"!draw {role} now", as_="alice")


async def test_the_monthly_statement_its_co_auditor_the_answer_and_one_reminder(room):
    await join_all(room)
    await hold_a_role(room, "treasurer", "alice")
    await room.say("!ledger +200 donations category=food", as_="alice")
    await room.say("!ledger -30 bread category=food", as_="alice")
    assert "The books for" not in await room.wait("29d")  # Tue 31 Mar 09:00
    posted = await room.wait("15h")  # Wed 1 Apr 00:00 UTC
    assert posted.count("The books for March 2026") == 1
    assert "In: 200.00 EUR · Out: 30.00 EUR" in posted and "Closing balance: 170.00 EUR" in posted
    assert "ledger-2026-03.png" in posted
    assert "the co-auditor of March 2026: 1 seat among 4 candidates" in posted
    assert "1. bob, 2. carol, 3. dan, 4. erin" in posted  # alice holds a role
    assert "Only the co-auditor drawn by lot" not in await room.say("!draw add seven red cars", as_="bob")

    drawn = await room.wait("10m")
    auditor = re.search(r"@(\w+) checks the books of March 2026", drawn)[1]
    assert auditor in ("bob", "carol", "dan", "erin")
    assert the_check(room, "2026-03").auditor_id is not None
    other = next(name for name in ("bob", "carol", "dan", "erin") if name != auditor)
    assert "Only the co-auditor drawn by lot checks a month's books" in await room.say("!ledger check ok", as_=other)

    assert "still waiting" not in await room.wait("6d")
    reminded = await room.wait("1d")
    assert reminded.count(f"@{auditor}, the books of March 2026 are still waiting for your check") == 1
    assert [dm.user.user_id for dm in recorded(room, "dm")] == [auditor]
    assert "still waiting" not in await room.wait("14d")  # once, never twice

    answered = await room.say("!ledger check ok", as_=auditor)
    assert f"{auditor}, drawn to check the books of March 2026, finds them in order" in answered
    check = the_check(room, "2026-03")
    assert (check.verdict, check.answered_at is not None) == ("ok", True)
    [logged] = log_bodies(room, "ledger.checked")
    assert (logged["month"], logged["verdict"], logged["member"]) == ("2026-03", "ok", auditor)
    assert "No month's books are waiting" in await room.say("!ledger check ok", as_=auditor)


async def test_a_concern_is_announced_escaped_and_ends_the_reminder(room):
    await join_all(room)
    await room.say("!ledger -30 bread", as_="alice")
    await room.wait("30d")
    drawn = await room.wait("10m")
    auditor = re.search(r"@(\w+) checks the books of March 2026", drawn)[1]
    concern = await room.say("!ledger check no receipt for the <b>bread</b>", as_=auditor)
    assert "raises a concern" in concern and "no receipt for the <b>bread</b>" in concern
    [ack] = [a for a in recorded(room, "send") if "raises a concern" in a.text.html]
    assert "&lt;b&gt;bread&lt;/b&gt;" in ack.text.html
    assert "still waiting" not in await room.wait("10d")


async def test_a_month_without_entries_gets_no_statement_but_the_cycle_goes_on(room):
    await join_all(room)
    await room.say("!ledger +10 seed money", as_="alice")
    assert "The books for March 2026" in await room.wait("31d")  # 2 Apr
    assert "The books for" not in await room.wait("30d")  # 2 May: April was empty
    await room.say("!ledger +5 more", as_="alice")
    assert "The books for May 2026" in await room.wait("31d")
    with room.core.db.transaction() as session:
        assert [c.month for c in session.scalars(select(LedgerCheck).order_by(LedgerCheck.month))] == [
            "2026-03", "2026-05"]
        assert session.scalars(select(Group)).one().next_statement_at == datetime(2026, 7, 1, tzinfo=timezone.utc)


async def test_nobody_eligible_is_said_in_the_statement(room):
    await room.say("!help", as_="alice")
    await hold_a_role(room, "treasurer", "alice")
    await room.say("!ledger +10 seed money", as_="alice")
    posted = await room.wait("31d")
    assert "Nobody can check these books this month: every active member holds a role" in posted
    with room.core.db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(Lottery)) == 1  # only the treasurer's


async def test_the_statement_goes_out_once_across_restarts(database_url):
    clock = ManualClock(START)
    async with Room(database_url, clock) as room:
        await join_all(room)
        await room.say("!ledger +120 donations", as_="alice")
    clock.advance(timedelta(days=31))  # down across 1 April
    second = Room(database_url, clock)
    started = "\n".join(await second.start())
    await second.stop()
    assert started.count("The books for March 2026") == 1
    third = Room(database_url, clock)
    assert "The books for" not in "\n".join(await third.start())
    await third.stop()
    clock.advance(timedelta(minutes=10))  # down again across the draw
    async with Room(database_url, clock) as fourth:
        drawn = "\n".join(fourth.output)
        assert drawn.count("checks the books of March 2026") == 1
        auditor = re.search(r"@(\w+) checks the books", drawn)[1]
        assert "checks the books" not in await fourth.wait("1h")
        assert "finds them in order" in await fourth.say("!ledger check ok", as_=auditor)
        dms = [a for a in recorded(fourth, "dm") if isinstance(a, DirectMessage)]
        assert dms == []


async def test_the_statement_chart_is_drawn_off_the_core_and_delivered_as_a_png(sqlite_url, tmp_path):
    """The outbox holds the chart's figures, not its pixels; the delivery layer draws it in its chart
    process and the member receives a real PNG (the console writes it into its files folder)."""
    async with Room(sqlite_url, files_dir=tmp_path / "files") as room:
        await room.say("!ledger +120 Sunday kitchen donations category=food")
        assert f"📎 {tmp_path / 'files' / 'ledger-2026-03.png'}" in await room.say("!ledger statement")
        [chart] = recorded(room, "image")
        assert chart.data == b"" and chart.chart.name == "ledger"
        assert json.loads(chart.chart.figures)["categories"] == [["food", 12000, 0]]
        with Image.open(tmp_path / "files" / "ledger-2026-03.png") as image:
            image.verify()
            assert image.format == "PNG"
