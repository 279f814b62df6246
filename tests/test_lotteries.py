"""Lotteries nobody can steer, through the console room on SQLite and PostgreSQL: the commitment,
members' randomness during the window, the reveal, `now`, restarts, the auditor and a ranked
count's ties, and the old draws migrated.

Every draw is re-derived here from what the bot printed, by the short implementation below —
never with bot.governance.lottery — so a bot that agreed only with itself would not pass."""

import hashlib
import json
import re
from datetime import timedelta

import pytest
from alembic import command
from sqlalchemy import func, inspect, select, text

from bot.clock import ManualClock
from bot.governance import record
from bot.verify import verify
from storage.db import Database, alembic_config
from storage.models import Audit, Group, LogEntry, Lottery, Mandate
from tests.harness import START, Room

HEX = r"([0-9a-f]{64})"


# --- the rule, written out again from the announcement's one line ----------------------------------

def sha256(data: str) -> str:
    return hashlib.sha256(data.encode()).hexdigest()


def picks_of(seed: str, candidates: list, seats: int) -> list:
    """pick = next SHA-256(seed:i) below the largest multiple of n, modulo n; the pick leaves the list."""
    left, picked, counter = list(candidates), [], 0
    while left and len(picked) < seats:
        while True:
            number = int(sha256(f"{seed}:{counter}"), 16)
            counter += 1
            if number < 2 ** 256 - 2 ** 256 % len(left):
                break
        picked.append(left.pop(number % len(left)))
    return picked


def parse(announcement: str) -> dict:
    """Commitment, secret, contributions, seed and candidates, from the announcement's text alone."""
    lines = [line.strip() for line in announcement.splitlines()]
    found = {
        "commitment": re.search(r"Commitment, published when it opened: " + HEX, announcement)[1],
        "secret": re.search(r"Secret, revealed now: (\S+)", announcement)[1],
        "seed": re.search(r"Seed: " + HEX, announcement)[1],
        "candidates": [re.fullmatch(r"\d+\. (.+)", item)[1] for item in re.search(
            r"in order of their platform id: (.*)", announcement)[1].split(", ")],
        "contributions": [],
    }
    start = next(n for n, line in enumerate(lines) if line.startswith("Contributions, in order ("))
    count = int(re.search(r"\((\d+)\)", lines[start])[1])
    for number, line in enumerate(lines[start + 1:start + 1 + count], 1):
        match = re.fullmatch(r"(\d+)\. (.+?): (.*)", line)
        assert int(match[1]) == number
        found["contributions"].append((match[2], match[3]))
    return found


def rederive(announcement: str, seats: int = 1) -> list[str]:
    """The picks (names), checked step by step against what the announcement says."""
    shown = parse(announcement)
    assert sha256(shown["secret"]) == shown["commitment"]
    seed = sha256("\n".join([shown["secret"], *(text for _, text in shown["contributions"])]))
    assert seed == shown["seed"]
    return picks_of(seed, shown["candidates"], seats)


# --- helpers -------------------------------------------------------------------------------------------

@pytest.fixture
async def room(database_url):
    async with Room(database_url) as room:
        yield room


async def stand(room, role, *names):
    for name in names:
        assert "stands for" in await room.say(f"!volunteer {role}", as_=name)


def stored(room, number=1) -> Lottery:
    with room.core.db.transaction() as session:
        found = session.scalars(select(Lottery).where(Lottery.number == number)).one()
        session.expunge(found)
        return found


def log_bodies(room, kind) -> list[dict]:
    with room.core.db.transaction() as session:
        return [json.loads(body) for body in session.scalars(
            select(LogEntry.body).where(LogEntry.kind == kind).order_by(LogEntry.seq))]


def holders(room) -> int:
    with room.core.db.transaction() as session:
        return session.scalar(select(func.count()).select_from(Mandate).where(Mandate.ended_at.is_(None)))


# --- the window ----------------------------------------------------------------------------------------

async def test_members_add_randomness_and_anyone_recomputes_the_draw_from_the_announcement(room):
    await room.say("!role add facilitator term=30d seats=2 fill=lottery", as_="alice")
    await stand(room, "facilitator", "carol", "alice", "erin", "bob")
    opened = await room.say("!draw facilitator", as_="dan")
    assert "Lottery #1 for facilitator: 2 seats among 4 candidates." in opened
    assert "Candidates, in order of their platform id: 1. alice, 2. bob, 3. carol, 4. erin" in opened
    commitment = re.search(r"Commitment: " + HEX, opened)[1]
    assert "Drawn Mon 2 Mar 09:10 UTC (in 10 minutes)" in opened and "!draw add <anything>" in opened
    assert "Seat" not in opened and holders(room) == 0  # nothing is decided at the opening

    acknowledged = await room.say("!draw add   the 7:42 bus was   late <b>again</b>", as_="bob")
    assert "Added to lottery #1 (1 from members so far); it is drawn Mon 2 Mar 09:10 UTC." in acknowledged
    await room.wait("5m")
    assert "(2 from members so far)" in await room.say('!lottery add "🌧 rain, 14°C"', as_="dan")
    drawn = await room.wait("5m")
    assert drawn.count("Lottery #1 for facilitator: drawn") == 1

    shown = parse(drawn)
    assert shown["commitment"] == commitment  # the one published when it opened
    assert shown["contributions"] == [("(the bot, at the opening)", "lottery #1 opened 2026-03-02T09:00:00Z"),
                                      ("bob", "the 7:42 bus was late <b>again</b>"), ("dan", '"🌧 rain, 14°C"')]
    picked = rederive(drawn, seats=2)
    for seat, name in enumerate(picked, 1):
        assert f"Seat {seat} → {name} (candidate {shown['candidates'].index(name) + 1}), until " in drawn
    assert "Recompute it: seed = SHA-256(secret + each contribution, one per line); pick = next SHA-256(seed:i) " \
           "below the largest multiple of n, modulo n" in drawn
    assert "rests on the bot alone" not in drawn
    assert holders(room) == 2
    assert "drawn" not in await room.wait("1h") and holders(room) == 2  # drawn once

    # One log entry at the opening and one for the draw, with everything a verifier needs.
    [committed] = log_bodies(room, "lottery.committed")
    [logged] = log_bodies(room, "lottery.drawn")
    assert committed["commitment"] == logged["commitment"] == commitment
    assert committed["draws_at"] == "2026-03-02T09:10:00Z" and committed["seats"] == logged["seats"] == 2
    assert logged["secret"] == shown["secret"] and logged["seed"] == shown["seed"]
    assert logged["contributions"] == [list(c) for c in shown["contributions"]]
    assert [name for _, name in logged["candidates"]] == shown["candidates"]
    names = dict(logged["candidates"])
    assert [names[member_id] for member_id in logged["picks"]] == picked
    assert logged["skipped_window"] is False and logged["purpose"] == "role" and logged["role"] == "facilitator"
    with room.core.db.transaction() as session:
        group_id = session.scalars(select(Group.id)).one()
        report = verify(list(record.export_lines(session, group_id)))
    assert report.ok and report.lotteries == 1, report.problem


async def test_draw_now_skips_the_window_and_says_whose_seed_it_is(room):
    await room.say("!role add cook term=30d fill=lottery", as_="alice")
    await stand(room, "cook", "bob", "carol")
    drawn = await room.say("!draw cook now", as_="alice")
    assert "Lottery #1 for cook: drawn" in drawn
    assert "Drawn at once (!draw cook now): nobody could add randomness, so this seed rests on the bot alone." \
        in drawn
    [holder] = rederive(drawn)
    assert f"Seat 1 → {holder}" in drawn and holders(room) == 1
    assert parse(drawn)["contributions"] == [("(the bot, at the opening)", "lottery #1 opened 2026-03-02T09:00:00Z")]
    assert "No lottery is open" in await room.say("!draw add too late", as_="dan")
    [logged] = log_bodies(room, "lottery.drawn")
    assert logged["skipped_window"] is True
    assert "Lottery #1 for cook: drawn" not in await room.wait("1h")  # nothing left to draw


async def test_a_restart_during_the_window_keeps_the_commitment_and_draws_once(database_url):
    clock = ManualClock(START)
    async with Room(database_url, clock) as room:
        await room.say("!role add host term=30d fill=lottery", as_="alice")
        await stand(room, "host", "alice", "bob", "carol")
        opened = await room.say("!draw host", as_="dan")
        commitment = re.search(r"Commitment: " + HEX, opened)[1]
        await room.say("!draw add before the restart", as_="bob")
        secret = stored(room).secret
        clock.advance(timedelta(minutes=4))
    second = Room(database_url, clock)  # the same database, a new process
    assert "host" not in "\n".join(await second.start())
    assert "(2 from members so far)" in await second.say("!draw add after the restart", as_="carol")
    drawn = await second.wait("6m")
    await second.stop()
    assert drawn.count("Lottery #1 for host: drawn") == 1
    shown = parse(drawn)
    assert (shown["commitment"], shown["secret"]) == (commitment, secret)  # generated once, before the restart
    assert [text for _, text in shown["contributions"][1:]] == ["before the restart", "after the restart"]
    [holder] = rederive(drawn)
    assert f"Seat 1 → {holder}" in drawn
    third = Room(database_url, clock)
    assert "Lottery" not in "\n".join(await third.start())  # never drawn twice
    assert len(log_bodies(third, "lottery.drawn")) == 1
    await third.stop()


async def test_a_lottery_due_while_the_bot_was_down_is_drawn_once_at_start(database_url):
    clock = ManualClock(START)
    async with Room(database_url, clock) as room:
        await room.say("!role add host term=30d fill=lottery", as_="alice")
        await stand(room, "host", "alice", "bob")
        await room.say("!draw host", as_="dan")
        await room.say("!draw add from before", as_="alice")
    clock.advance(timedelta(hours=5))  # the window ends while the bot is down
    second = Room(database_url, clock)
    started = "\n".join(await second.start())
    await second.stop()
    assert started.count("Lottery #1 for host: drawn") == 1
    [holder] = rederive(started)
    assert f"Seat 1 → {holder}" in started and "until Wed 1 Apr 09:10 UTC" in started  # drawn at its due time
    third = Room(database_url, clock)
    assert "Lottery" not in "\n".join(await third.start())
    await third.stop()


# --- bad input ----------------------------------------------------------------------------------------

async def test_draw_add_refuses_clearly_and_changes_nothing(room):
    await room.say("!role add host term=30d fill=lottery", as_="alice")
    await room.say("!role add cook term=30d fill=lottery", as_="alice")
    await stand(room, "host", "alice", "bob")
    await stand(room, "cook", "carol", "dan")
    nothing_open = await room.say("!draw add hello", as_="bob")
    assert "⚠️" in nothing_open and "No lottery is open in this group right now" in nothing_open
    await room.say("!draw host", as_="alice")
    before = stored(room).contributions
    for line, complaint in (
        ("!draw add", "The text is missing"),
        ("!draw add    ", "The text is missing"),
        ("!draw add " + "x" * 1000, "is 1,000 characters long; keep it under 200"),
        ("!draw add hi lottery=7", "There is no lottery #7"),
        ("!draw add hi lottery=seven", "is not a number"),
        ("!draw add xy=1", "has no option “xy=”"),
    ):
        reply = await room.say(line, as_="bob")
        assert "⚠️" in reply and complaint in reply, (line, reply)
    assert "Usage: !draw add <anything> [lottery=n]" in await room.say("!draw add", as_="bob")
    assert stored(room).contributions == before
    for n in range(3):
        assert "Added to lottery #1" in await room.say(f"!draw add try {n}", as_="erin")
    assert "You have added 3 contributions to lottery #1" in await room.say("!draw add once more", as_="erin")
    assert "Added to lottery #1" in await room.say('!draw add "xy=1"', as_="bob")  # quoted, any text goes

    await room.say("!draw cook", as_="alice")
    several = await room.say("!draw add which one?", as_="bob")
    assert "Several lotteries are open: #1 (host), #2 (cook)" in several and "lottery=1" in several
    assert "Added to lottery #2" in await room.say("!draw add for the cook lottery=#2", as_="bob")
    assert [row[1] for row in json.loads(stored(room, 2).contributions)][1:] == ["for the cook"]
    await room.wait("10m")
    assert "has been drawn already" in await room.say("!draw add late lottery=1", as_="bob")
    assert "No lottery is open" in await room.say("!draw add late", as_="bob")


async def test_draw_refuses_a_second_lottery_for_the_same_role_and_a_full_role(room):
    await room.say("!role add host term=30d fill=lottery", as_="alice")
    assert "Nobody eligible is standing for host" in await room.say("!draw host", as_="alice")
    await stand(room, "host", "bob")
    await room.say("!draw host", as_="alice")
    assert "Lottery #1 for host is open already" in await room.say("!draw host", as_="carol")
    assert "Lottery #1 for host is open already" in await room.say("!draw host now", as_="carol")
    with room.core.db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(Lottery)) == 1
    await room.wait("10m")
    assert "Every seat of host is taken" in await room.say("!draw host", as_="carol")


async def test_a_pick_who_stopped_standing_during_the_window_is_reported_not_seated(room):
    await room.say("!role add host term=30d fill=lottery", as_="alice")
    await stand(room, "host", "bob")
    await room.say("!draw host", as_="alice")
    await room.say("!unvolunteer host", as_="bob")
    drawn = await room.wait("10m")
    assert rederive(drawn) == ["bob"]
    assert "bob was drawn but takes no seat: they stopped standing for host." in drawn
    assert "The seat stays open: !draw host draws again." in drawn
    assert holders(room) == 0


# --- the auditor, and a ranked count's ties ------------------------------------------------------------

async def test_the_auditor_is_drawn_by_lottery_at_the_end_of_the_window(room):
    for name in ("alice", "bob", "carol", "dan"):
        await room.say("!help", as_=name)
    await room.say("!role add host term=30d fill=lottery", as_="alice")
    await stand(room, "host", "dan")
    await room.say("!draw host now", as_="alice")  # dan holds a role: never the auditor
    prompt = await room.say("!audit", as_="bob")
    assert ("The auditor — who checks the figures and reads the report to the group — is drawn Mon 2 Mar 09:10 UTC "
            "(in 10 minutes) by lottery #2 among the 3 members who hold no role: 1. alice, 2. bob, 3. carol") in prompt
    commitment = re.search(r"Commitment: " + HEX, prompt)[1]
    assert stored(room, 2).audit_id is not None
    await room.say("!draw add a coin landed on its edge", as_="carol")
    drawn = await room.wait("10m")
    [auditor] = rederive(drawn)
    assert f"Lottery #2: the auditor of audit #1 is @{auditor}." in drawn
    assert parse(drawn)["commitment"] == commitment
    with room.core.db.transaction() as session:
        audit = session.scalars(select(Audit)).one()
        assert json.loads(audit.draw_candidates)[["alice", "bob", "carol"].index(auditor)][0] == audit.auditor_id
    assert f"Auditor: {auditor}." in await room.wait("7d")


async def test_a_ranked_elections_tie_is_decided_by_its_lottery_seed(room):
    await room.say("!role add scribe term=30d", as_="alice")
    await stand(room, "scribe", "bob", "carol")
    opened = await room.say("!elect scribe method=ranked", as_="alice")
    assert "Election: scribe" in opened
    [committed] = log_bodies(room, "lottery.committed")
    assert committed["purpose"] == "tie" and committed["candidates"] == [[1, "bob"], [2, "carol"]]
    assert committed["draws_at"] == "2026-03-05T09:00:00Z"  # when the vote closes
    assert "Added to lottery #1" in await room.say("!draw add my vote is in", as_="dan")
    await room.say("!vote 1 bob carol", as_="bob")
    await room.say("!vote 1 carol bob", as_="carol")  # one each: tied at every stage
    closed = await room.wait("3d")
    [logged] = log_bodies(room, "lottery.drawn")
    assert sha256(logged["secret"]) == committed["commitment"]
    texts = [text for _, text in logged["contributions"]]
    assert texts == ["lottery #1 opened 2026-03-02T09:00:00Z", "my vote is in"]
    seed = sha256("\n".join([logged["secret"], *texts]))
    assert logged["seed"] == seed and f"Lot seed: {seed}" in closed
    # The published lot of a ranked count: SHA-256("seed:stage") modulo the tied, names sorted; the
    # tie at stage 2 excludes the one it picks.
    excluded = sorted(["bob", "carol"])[int(sha256(f"{seed}:2"), 16) % 2]
    winner = "carol" if excluded == "bob" else "bob"
    assert f"lot with seed {seed[:8]}… picked {excluded}" in closed
    assert f"{winner} now holds scribe" in closed
    assert "No lottery is open" in await room.say("!draw add after the close", as_="dan")


async def test_closing_a_ranked_poll_early_draws_its_tie_lottery_then(room):
    await room.say('!propose Where to meet options="Library; Park" method=ranked', as_="alice")
    await room.say("!close 1", as_="alice")
    [logged] = log_bodies(room, "lottery.drawn")
    assert logged["purpose"] == "tie" and stored(room).drawn_at == START
    assert "Lottery" not in await room.wait("4d")


# --- the old draws ----------------------------------------------------------------------------------

async def test_old_draws_become_drawn_lotteries_in_the_migration(database_url):
    async with Room(database_url) as room:
        await room.say("!role add host term=30d fill=lottery", as_="alice")
        await stand(room, "host", "bob")
        await room.say("!draw host now", as_="alice")  # lottery #1, back to a draw and forward again
    database = Database(database_url)
    try:
        with database.engine.begin() as connection:
            config = alembic_config(database_url)
            config.attributes["connection"] = connection
            command.downgrade(config, "0006")
            [(group_id, role_id, picked)] = connection.execute(text(
                "SELECT group_id, role_id, picked FROM draws")).all()
            connection.execute(text(
                "INSERT INTO draws (group_id, role_id, seed, candidates, picked, drawn_at) "
                "VALUES (:group_id, :role_id, 'cafe0123', :candidates, :picked, :drawn_at)"),
                {"group_id": group_id, "role_id": role_id, "candidates": '[[7, "Ana"], [9, "Ben"]]',
                 "picked": "[9]", "drawn_at": (START + timedelta(days=1)).replace(tzinfo=None)})
        database.upgrade()
        with database.transaction() as session:
            first, second = session.scalars(select(Lottery).order_by(Lottery.number)).all()
            assert json.loads(first.picks) == json.loads(picked)
            assert (second.number, second.purpose, second.role_id, second.seed, second.picks) == (
                2, "role", role_id, "cafe0123", "[9]")
            assert json.loads(second.candidates) == [[7, "Ana"], [9, "Ben"]] and second.seats == 1
            assert (second.commitment, second.secret, second.skipped_window) == ("", "", True)
            assert second.opened_at == second.draws_at == second.drawn_at == START + timedelta(days=1)
        assert "draws" not in inspect(database.engine).get_table_names()
    finally:
        database.dispose()


async def test_a_withdrawn_ranked_polls_tie_lottery_is_drawn_quietly_and_others_name_their_number(room):
    await room.say('!propose Where to meet options="Library; Park" method=ranked', as_="alice")
    await room.say("!role add host term=30d fill=lottery", as_="alice")
    await stand(room, "host", "bob")
    opened = await room.say("!draw host", as_="alice")  # two lotteries open: the hint names this one
    assert "anyone may add randomness: !draw add <anything> lottery=2" in opened
    assert "Several lotteries are open: #2 (host), #1 (ties of vote #1)" in await room.say("!draw add hm", as_="bob")
    await room.say("!withdraw 1", as_="alice")
    assert "Added to lottery #2" in await room.say("!draw add hm", as_="bob")  # a withdrawn vote's lot is shut
    assert "closed to contributions" in await room.say("!draw add hm lottery=1", as_="bob")
    await room.wait("10m")
    quiet = await room.wait("3d")
    assert "Lottery" not in quiet
    assert [body["purpose"] for body in log_bodies(room, "lottery.drawn")] == ["role", "tie"]


async def test_the_window_is_the_groups_draw_window_setting(room):
    assert "draw_window = 10m" in await room.say("!settings", as_="alice")
    assert "⚠️" in await room.say("!set draw_window soon", as_="alice")
    assert "changed draw_window: 10m → 1h" in await room.say("!set draw_window 1h", as_="alice")
    await room.say("!role add host term=30d fill=lottery", as_="alice")
    await stand(room, "host", "bob")
    assert "Drawn Mon 2 Mar 10:00 UTC (in 1 hour)" in await room.say("!draw host", as_="alice")
    assert "drawn" not in await room.wait("59m")
    assert "Lottery #1 for host: drawn" in await room.wait("1m")
