"""kill -9 in the middle of an assembly reminder sweep, then a restart on the same database:
every group hears its reminder and every assembly's steps are done once (one reminder queued,
one facilitator lottery opened) — counted on Telegram and in the database.

`commons-bot run` runs as a child process against the Bot API emulator (the helpers of
tests/telegram_crash.py and tests/test_standby.py), on a SQLite file and on PostgreSQL:

- The database is migrated and seeded directly: GROUPS Telegram groups, each with one member
  and assembly #1 a day and five minutes away, scheduled ten days ago, so its two-day reminder
  and the draw of its facilitator are overdue (`next_due_at` is what `next_step_at` says, as
  when it was scheduled). In every other group the member stands for facilitation, so a lottery
  opens with the reminder; in the others the reminder says nobody can be drawn.
- "start-up": the assemblies are there before the bot starts; it catches them all up in one
  transaction before its adapter starts, then sends the reminders (paced at Telegram's ~30
  messages a second) and is killed (SIGKILL to its process group) once half of them are out.
  "serving": the assemblies are added once the bot serves; its sweep (every second) does them
  in short slices between deliveries and is killed a tenth of the way through, mid-sweep.
- It is started again on the same database and runs until the outbox is empty; then every
  group must have its "⏰ Assembly #1" reminder once, with the lottery or "Nobody can be drawn"
  in it, and every assembly exactly one queued step, one lottery (or none: nobody stands),
  `reminded_through`, `drawn_at` and its next step (the freeze) set.

The one reminder that may arrive twice is one Telegram accepted just before the kill, while its
outbox row was not yet marked sent ("in flight"): the Bot API has no idempotency key, so nothing
tells the restarted bot it went out, and it is sent again rather than lost. The test checks that
every repeat is such a one, sent at most once more, and that there are never more than a few.
"""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select, text

from bot.config import DefaultsConfig
from bot.governance import assemblies, audits
from bot.governance.settings import GroupSettings
from storage.db import Database
from storage.models import Assembly, Group, Member, TaskVolunteer
from tests.telegram_crash import BotProcess
from tests.telegram_emulator import BotApiEmulator
from tests.test_crash_telegram import show_log
from tests.test_standby import until

GROUPS = 200
FIRST_CHAT = -1003000000000
FIRST_USER = 7000
REMINDER = "⏰ Assembly #1"
LOTTERY = "draws the facilitator of Assembly #1"
NOBODY = "Nobody can be drawn as facilitator of Assembly #1"
KILL_SHARE = {"start-up": 0.5, "serving": 0.1}  # kill once this share of the reminders has reached Telegram
TIME_LIMIT = 100  # seconds for one backend's whole scenario (two start-ups, the sends, the catch-up)
MAX_IN_FLIGHT = 5  # reminders accepted by Telegram but not yet marked sent at the kill (seen: 0 or 1)
SETTINGS = GroupSettings.from_values(DefaultsConfig().model_dump())  # what the bot uses (no [defaults] given)


def chat_of(index: int) -> int:
    return FIRST_CHAT - index


def stands(index: int) -> bool:
    """Whether the group's one member stands for facilitation (every other group)."""
    return index % 2 == 0


def seed_groups(url: str, now: datetime) -> None:
    """Migrate, then insert the groups, their members and the volunteers, in one transaction."""
    database = Database(url)
    try:
        database.upgrade()
        created = now - timedelta(days=10)
        with database.transaction() as session:
            groups = [Group(platform="telegram", chat_id=str(chat_of(n)), title=f"Co-op {n}", created_at=created,
                            reported_member_count=1) for n in range(GROUPS)]
            session.add_all(groups)
            session.flush()
            members = []
            for n, group in enumerate(groups):
                audits.schedule(session, group, SETTINGS, since=now)  # as a group seen for the first time
                members.append(Member(group_id=group.id, user_id=str(FIRST_USER + n), display_name=f"Member {n}",
                                      joined_at=created))
            session.add_all(members)
            session.flush()
            session.add_all(TaskVolunteer(group_id=member.group_id, task=assemblies.FACILITATION, member_id=member.id,
                                          since=created) for n, member in enumerate(members) if stands(n))
    finally:
        database.dispose()


def seed_assemblies(url: str, now: datetime) -> None:
    """Assembly #1 in every group, scheduled ten days ago for a day and five minutes from `now`: its
    two-day reminder and its facilitator's draw are overdue (`next_due_at` as `schedule` sets it)."""
    database = Database(url)
    try:
        created, starts_at = now - timedelta(days=10), now + timedelta(days=1, minutes=5)
        with database.transaction() as session:
            members = session.scalars(select(Member).order_by(Member.group_id)).all()
            for member in members:
                assembly = Assembly(group_id=member.group_id, number=1, starts_at=starts_at, place="Community hall",
                                    created_by=member.id, created_at=created, reminded_through=created)
                assembly.next_due_at = assemblies.next_step_at(assembly, SETTINGS)
                assert assembly.next_due_at == starts_at - timedelta(days=2) < now
                session.add(assembly)
        with database.transaction() as session:
            assert session.scalar(select(func.count()).select_from(Assembly)
                                  .where(Assembly.next_due_at <= now)) == GROUPS
    finally:
        database.dispose()


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


def step_rows(url: str, sent: bool = False) -> set[int]:
    """The chats whose reminder (the assembly's step) is in the outbox (only those marked sent: `sent`)."""
    where = " AND o.sent_at IS NOT NULL" if sent else ""
    return {int(chat) for (chat,) in query(url, "SELECT g.chat_id FROM outbox o JOIN groups g ON g.id = o.group_id "
                                                f"WHERE o.dedupe_key LIKE 'assembly:%:step:%'{where}")}


def pending_outbox(url: str) -> int:
    return query(url, "SELECT count(*) FROM outbox WHERE sent_at IS NULL AND failed_at IS NULL")[0][0]


def write_config(path: Path, url: str, emu: BotApiEmulator) -> Path:
    """Polling, and a sweep every second: assemblies added while the bot serves are found at once."""
    path.write_text(f'[database]\nurl = "{url}"\n'
                    f'[telegram]\ntoken = "{emu.token}"\nbase_url = "{emu.base_url}"\nmode = "polling"\n'
                    '[scheduler]\nsweep_interval = "1s"\n')
    return path


@dataclass
class Sweep:
    when: str  # "start-up": due before the bot started (caught up first); "serving": due while it serves
    kill_at: int = 0  # reminders awaited on Telegram before the kill
    delivered_at_kill: set[int] = field(default_factory=set)  # chats whose reminder reached Telegram before it
    queued_at_kill: set[int] = field(default_factory=set)  # chats whose reminder the sweep had committed
    marked_at_kill: set[int] = field(default_factory=set)  # ...and of those, marked sent
    messages: dict[int, list[str]] = field(default_factory=dict)  # chat -> its reminders, as Telegram shows them
    restart_to_all: float = 0.0  # seconds from the restart until every group had its reminder
    exit_code: int | None = None

    @property
    def in_flight(self) -> set[int]:
        """Reminders Telegram had accepted whose outbox row was not marked sent yet: the process died
        between the platform's answer and the commit of the mark."""
        return self.delivered_at_kill - self.marked_at_kill


async def crash_sweep(emu: BotApiEmulator, url: str, workdir: Path, when: str) -> Sweep:
    run = Sweep(when=when, kill_at=round(GROUPS * KILL_SHARE[when]))
    seed_groups(url, datetime.now(timezone.utc))
    if when == "start-up":
        seed_assemblies(url, datetime.now(timezone.utc))
    for n in range(GROUPS):
        emu.add_user(FIRST_USER + n, "Member", last_name=str(n))
        emu.add_chat(chat_of(n), f"Co-op {n}", member_count=2)
    config = write_config(workdir / "commons.toml", url, emu)
    log = workdir / "bot.log"
    first, second = BotProcess(config, log), BotProcess(config, log)
    try:
        await first.start()
        if when == "serving":
            await until(lambda: any(method == "getUpdates" for method, _ in emu.calls), 60, "the bot to serve", first)
            seed_assemblies(url, datetime.now(timezone.utc))  # the next sweep (within a second) finds them due
        await until(lambda: sum(reminders(emu).values()) >= run.kill_at, 60, f"{run.kill_at} reminders", first)
        first.kill()
        await first.wait()
        await asyncio.sleep(0.3)  # a request already on the wire when it died is recorded now, or never
        run.delivered_at_kill = set(reminders(emu))
        run.queued_at_kill, run.marked_at_kill = step_rows(url), step_rows(url, sent=True)

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


def check(url: str, run: Sweep) -> None:
    delivered = len(run.delivered_at_kill)
    assert 0 < delivered < GROUPS, f"the kill must fall in the middle of the reminders ({delivered} sent)"
    if run.when == "serving":  # the sweep goes in slices between deliveries: killed half-way through it too
        assert len(run.queued_at_kill) < GROUPS, f"the kill must fall in the middle of the sweep (all {GROUPS} queued)"
    else:  # caught up in one transaction before the adapter started
        assert len(run.queued_at_kill) == GROUPS, f"{len(run.queued_at_kill)} queued before the first send"
    # Nothing was marked sent before Telegram had it.
    assert run.marked_at_kill <= run.delivered_at_kill, sorted(run.marked_at_kill - run.delivered_at_kill)[:5]
    assert run.exit_code == 0, f"the restarted bot exited with {run.exit_code} on SIGTERM"

    # Telegram: every group has its reminder, once. The one exception is a reminder Telegram had
    # accepted when the process died, before its outbox row was marked sent (`in_flight`): the Bot API
    # has no idempotency key, so after the restart nothing tells it went out, and the same row is sent
    # again (at least once — never lost). Anything else sent twice is a bug.
    lost = sorted(chat for chat, texts in run.messages.items() if not texts)
    assert not lost, f"{len(lost)} groups got no reminder: {lost[:5]}"
    repeated = {chat: texts for chat, texts in run.messages.items() if len(texts) > 1}
    assert len(run.in_flight) <= MAX_IN_FLIGHT, f"{len(run.in_flight)} sent but not marked sent at the kill"
    unexplained = sorted(set(repeated) - run.in_flight)
    assert not unexplained, (f"{len(unexplained)} groups got their reminder more than once although it was not on "
                             f"its way at the kill: {unexplained[:5]}")
    for chat, texts in repeated.items():
        assert len(texts) == 2 and texts[0] == texts[1], (chat, texts)  # the same outbox row, sent once more
    for n in range(GROUPS):
        message = run.messages[chat_of(n)][0]
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
    assert len(steps) == GROUPS and set(steps.values()) == {1}, steps.most_common(3)
    for assembly_id, chat_id, starts_at, reminded_through, drawn_at, frozen_at, started_at, next_due_at in rows:
        n = FIRST_CHAT - int(chat_id)
        starts_at, reminded_through = _utc(starts_at), _utc(reminded_through)
        assert reminded_through == starts_at - timedelta(days=2), (chat_id, reminded_through, starts_at)
        assert drawn_at is not None and frozen_at is None and started_at is None, (chat_id, drawn_at, frozen_at)
        # The next step is the agenda's freeze an hour before the start (the 1 h reminder with it).
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


@pytest.mark.parametrize("when", ["start-up", "serving"])
@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_kill_9_mid_assembly_reminders_none_lost_none_repeated_but_in_flight(backend, when, request, tmp_path):
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'commons.db'}"
    else:
        postgres = request.getfixturevalue("postgres")
        name = f"crash_assemblies_{os.getpid()}_{when.replace('-', '')}"
        url = postgres.create_database(name)
        request.addfinalizer(lambda: postgres.drop_database(name))
    try:
        async with BotApiEmulator() as emu:
            run = await asyncio.wait_for(crash_sweep(emu, url, tmp_path, when), TIME_LIMIT)
        print(f"{backend}, due at {when}: at the kill {len(run.queued_at_kill)}/{GROUPS} reminders queued, "
              f"{len(run.delivered_at_kill)} on Telegram, {len(run.marked_at_kill)} marked sent "
              f"(in flight: {sorted(run.in_flight)}); every group had its reminder {run.restart_to_all:.2f} s "
              f"after the restart; sent twice: {[c for c, t in run.messages.items() if len(t) > 1]}")
        check(url, run)
    except BaseException:
        show_log(tmp_path / "bot.log")
        raise
