"""kill -9 in the middle of an assembly reminder sweep, then a restart on the same database:
every group hears its reminder once — none lost, none twice — and every assembly's facilitator
lottery is opened once.

The scenario, with `commons-bot run` as a child process against the Bot API emulator (the
helpers of tests/telegram_crash.py and tests/test_standby.py), on a SQLite file and on
PostgreSQL:

- the database is migrated and seeded directly: GROUPS Telegram groups, each with one member
  and assembly #1 a day and a few minutes away, scheduled ten days ago, so its two-day reminder
  and the draw of its facilitator are overdue when the bot starts (`next_due_at` is what
  `assemblies.next_step_at` says, as when it was scheduled). In every other group the member
  stands for facilitation, so a lottery opens; in the others nobody can be drawn, and the
  reminder says so;
- the bot starts, catches up (every reminder is queued in the outbox with its step, under a
  dedupe key) and sends them, paced at Telegram's ~30 messages a second; once about half of
  them have reached the emulator the whole process group gets SIGKILL;
- it is started again on the same database and runs until the outbox is empty;
- then each group must have exactly one "⏰ Assembly #1" message, each assembly its step done
  once (`reminded_through`, `drawn_at`, one outbox row, one facilitation lottery or the
  "Nobody can be drawn" line in that one message).
"""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlmodel import Session

from bot.config import DefaultsConfig
from bot.governance import assemblies, audits
from bot.governance.settings import GroupSettings
from storage.db import Database
from storage.models import Assembly, Group, Member, TaskVolunteer
from tests.telegram_crash import BotProcess
from tests.telegram_emulator import BotApiEmulator
from tests.test_crash_telegram import show_log
from tests.test_standby import until, write_config

GROUPS = 200
KILL_SHARE = 0.5  # kill once this share of the reminders has reached Telegram
FIRST_CHAT = -1003000000000
FIRST_USER = 7000
REMINDER = "⏰ Assembly #1"
LOTTERY = "draws the facilitator of Assembly #1"
NOBODY = "Nobody can be drawn as facilitator of Assembly #1"
TIME_LIMIT = 100  # seconds for one backend's whole scenario (two start-ups, the sends, the catch-up)
STEP_ROWS = "SELECT count(*) FROM outbox WHERE dedupe_key LIKE 'assembly:%:step:%' AND sent_at IS NOT NULL"


def chat_of(index: int) -> int:
    return FIRST_CHAT - index


def stands(index: int) -> bool:
    """Whether the group's one member stands for facilitation (every other group)."""
    return index % 2 == 0


def seed(url: str, now: datetime) -> GroupSettings:
    """Migrate, then insert the groups, members, volunteers and assemblies in one transaction."""
    settings = GroupSettings.from_values(DefaultsConfig().model_dump())  # what the bot uses: no [defaults]
    assert settings.assembly_reminders == (timedelta(days=2), timedelta(hours=1))
    database = Database(url)
    try:
        database.upgrade()
        created = now - timedelta(days=10)
        starts_at = now + timedelta(days=1, minutes=5)
        with database.transaction() as session:
            groups = [Group(platform="telegram", chat_id=str(chat_of(n)), title=f"Co-op {n}", created_at=created,
                            reported_member_count=1) for n in range(GROUPS)]
            session.add_all(groups)
            session.flush()
            members = []
            for n, group in enumerate(groups):
                audits.schedule(session, group, settings, since=now)  # as a group seen for the first time
                members.append(Member(group_id=group.id, user_id=str(FIRST_USER + n), display_name=f"Member {n}",
                                      joined_at=created))
            session.add_all(members)
            session.flush()
            session.add_all(TaskVolunteer(group_id=member.group_id, task=assemblies.FACILITATION, member_id=member.id,
                                          since=created) for n, member in enumerate(members) if stands(n))
            for group, member in zip(groups, members, strict=True):
                assembly = Assembly(group_id=group.id, number=1, starts_at=starts_at, place="Community hall",
                                    created_by=member.id, created_at=created, reminded_through=created)
                assembly.next_due_at = assemblies.next_step_at(assembly, settings)
                session.add(assembly)
        check = Session(database.engine)
        try:
            due = check.query(Assembly).filter(Assembly.next_due_at <= now).count()
        finally:
            check.close()
        assert due == GROUPS, f"only {due} of {GROUPS} assemblies are due at the start"
    finally:
        database.dispose()
    return settings


def query(url: str, sql: str) -> list[tuple]:
    """A read on the side (the bot may be running: WAL on SQLite, MVCC on PostgreSQL)."""
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return [tuple(row) for row in connection.execute(text(sql))]
    finally:
        engine.dispose()


def reminders(emu: BotApiEmulator) -> Counter:
    """How many "⏰ Assembly #1" messages each group's chat received."""
    return Counter(s["chat_id"] for s in emu.sent
                   if s["method"] == "sendMessage" and s["chat_id"] < 0 and (s["plain"] or "").startswith(REMINDER))


def pending_outbox(url: str) -> int:
    return query(url, "SELECT count(*) FROM outbox WHERE sent_at IS NULL AND failed_at IS NULL")[0][0]


@dataclass
class Sweep:
    delivered_at_kill: int = 0  # reminders that had reached the emulator when the first process was dead
    marked_at_kill: int = 0  # of the reminders' outbox rows, those marked sent at the kill
    queued_at_kill: int = 0  # reminders' outbox rows at the kill (the sweep's commits)
    messages: dict[int, list[str]] = field(default_factory=dict)  # chat -> texts of its reminders
    restart_to_all: float = 0.0  # seconds from the restart until every group had its reminder
    exit_code: int | None = None


async def crash_sweep(emu: BotApiEmulator, url: str, workdir: Path) -> Sweep:
    run = Sweep()
    now = datetime.now(timezone.utc)
    seed(url, now)
    for n in range(GROUPS):
        emu.add_user(FIRST_USER + n, "Member", last_name=str(n))
        emu.add_chat(chat_of(n), f"Co-op {n}", member_count=2)
    config = write_config(workdir / "commons.toml", url, emu)
    log = workdir / "bot.log"
    first, second = BotProcess(config, log), BotProcess(config, log)
    try:
        await first.start()
        target = round(GROUPS * KILL_SHARE)
        await until(lambda: sum(reminders(emu).values()) >= target, 60, f"{target} reminders before the kill", first)
        first.kill()
        await first.wait()
        await asyncio.sleep(0.3)  # a request already on the wire when it died is recorded now, or never
        run.delivered_at_kill = sum(reminders(emu).values())
        run.marked_at_kill = query(url, STEP_ROWS)[0][0]
        run.queued_at_kill = query(url, "SELECT count(*) FROM outbox WHERE dedupe_key LIKE 'assembly:%:step:%'")[0][0]

        await second.start()
        await until(lambda: len(reminders(emu)) == GROUPS, 60, "every group's reminder after the restart", second)
        run.restart_to_all = emu.sent[-1]["at"] - second.started_at
        await until(lambda: pending_outbox(url) == 0, 30, "the outbox to be empty", second)
        await asyncio.sleep(1.0)  # a reminder sent twice would show by now
        run.messages = {chat: [s["plain"] for s in emu.sent if s["chat_id"] == chat and s["method"] == "sendMessage"
                               and s["plain"].startswith(REMINDER)] for chat in map(chat_of, range(GROUPS))}
        run.exit_code = await second.terminate()
    finally:
        await first.finish()
        await second.finish()
    return run


def check(url: str, run: Sweep, now_bound: datetime) -> None:
    assert 0 < run.delivered_at_kill < GROUPS, f"the kill must fall in the middle ({run.delivered_at_kill} sent)"
    assert run.exit_code == 0, f"the restarted bot exited with {run.exit_code} on SIGTERM"

    # Telegram: one reminder per group, none lost, none twice.
    counts = {chat: len(texts) for chat, texts in run.messages.items()}
    lost = sorted(chat for chat, count in counts.items() if count == 0)
    twice = sorted(chat for chat, count in counts.items() if count > 1)
    assert not lost and not twice, (f"{len(lost)} groups got no reminder ({lost[:5]}), {len(twice)} got it more "
                                    f"than once ({twice[:5]})")
    for n in range(GROUPS):
        [message] = run.messages[chat_of(n)]
        if stands(n):
            assert LOTTERY in message and NOBODY not in message, message
        else:
            assert NOBODY in message and LOTTERY not in message, message

    # The database: each step done once.
    rows = query(url, "SELECT a.id, g.chat_id, a.starts_at, a.reminded_through, a.drawn_at, a.frozen_at, "
                      "a.started_at, a.next_due_at FROM assemblies a JOIN groups g ON g.id = a.group_id")
    assert len(rows) == GROUPS
    lotteries = Counter(dict(query(url, "SELECT assembly_id, count(*) FROM lotteries WHERE purpose = 'facilitation' "
                                        "GROUP BY assembly_id")))
    others = query(url, "SELECT count(*) FROM lotteries WHERE purpose <> 'facilitation'")[0][0]
    assert others == 0, f"{others} lotteries for something else (the note-taker's opens only after the draw)"
    steps = Counter(dict(query(url, "SELECT dedupe_key, count(*) FROM outbox WHERE dedupe_key LIKE 'assembly:%' "
                                    "GROUP BY dedupe_key")))
    assert all(count == 1 for count in steps.values()), steps.most_common(3)
    assert len(steps) == GROUPS, f"{len(steps)} assembly messages queued for {GROUPS} assemblies"
    for assembly_id, chat_id, starts_at, reminded_through, drawn_at, frozen_at, started_at, next_due_at in rows:
        n = FIRST_CHAT - int(chat_id)
        starts_at, reminded_through = _utc(starts_at), _utc(reminded_through)
        assert reminded_through == starts_at - timedelta(days=2), (chat_id, reminded_through, starts_at)
        assert drawn_at is not None and frozen_at is None and started_at is None, (chat_id, drawn_at)
        assert _utc(drawn_at) <= now_bound
        # The next step is the agenda's freeze an hour before the start (the 1 h reminder comes with it).
        assert _utc(next_due_at) == starts_at - timedelta(hours=1), (chat_id, next_due_at)
        assert f"assembly:{assembly_id}:step:{reminded_through.isoformat()}" in steps
        assert lotteries.get(assembly_id, 0) == (1 if stands(n) else 0), (chat_id, lotteries.get(assembly_id))
    failed = query(url, "SELECT count(*) FROM outbox WHERE failed_at IS NOT NULL")[0][0]
    assert failed == 0, f"{failed} outbox rows failed"


def _utc(moment) -> datetime:
    """PostgreSQL gives aware datetimes, SQLite the naive UTC text UTCDateTime stores (read without it)."""
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_kill_9_mid_assembly_reminders_loses_none_and_sends_none_twice(backend, request, tmp_path):
    name = f"crash_assemblies_{os.getpid()}"
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'commons.db'}"
    else:
        postgres = request.getfixturevalue("postgres")
        url = postgres.create_database(name)
        request.addfinalizer(lambda: postgres.drop_database(name))
    try:
        async with BotApiEmulator() as emu:
            run = await asyncio.wait_for(crash_sweep(emu, url, tmp_path), TIME_LIMIT)
        print(f"{backend}: {run.delivered_at_kill}/{GROUPS} reminders had reached Telegram at the kill "
              f"({run.queued_at_kill} queued in the outbox, {run.marked_at_kill} marked sent); every group had its "
              f"reminder {run.restart_to_all:.2f} s after the restart")
        check(url, run, datetime.now(timezone.utc))
    except BaseException:
        show_log(tmp_path / "bot.log")
        raise
