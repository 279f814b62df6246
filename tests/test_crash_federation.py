"""kill -9 in the middle of closing a federation's shared question, then a restart on the same
database: every group hears its own result once and the federation's once, and the groups are
counted once — on Telegram and in the database.

`commons-bot run` runs as a child process against the Bot API emulator (as in
tests/test_crash_assemblies.py), on a SQLite file and on PostgreSQL:

- The database is seeded directly: GROUPS Telegram groups of two members in one federation, and
  a shared question with a copy in every group, both members having voted (yes in two groups of
  three, no in the others), its deadline a second away or already past.
- "start-up": the deadline passed before the bot starts: it closes all the copies in its
  catch-up (the last close counts the groups), then sends the results and is killed once half the
  federation's announcements are out. "serving": the question is seeded once the bot serves; its
  sweep closes the copies in short slices between deliveries and is killed when a tenth of the
  groups' own results are out, in the middle of the closes.
- Restarted on the same database, it runs until the outbox is empty. The only message that may
  come twice is one Telegram accepted just before the kill, its outbox row not yet marked sent.
"""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.config import DefaultsConfig
from bot.governance import audits, federation
from bot.governance import proposals as rules
from bot.governance.settings import GroupSettings
from storage.db import Database
from storage.models import Group, Member
from tests.telegram_crash import BotProcess
from tests.telegram_emulator import BotApiEmulator
from tests.test_crash_assemblies import pending_outbox, query, write_config
from tests.test_crash_telegram import show_log
from tests.test_standby import until

GROUPS = 120
PASSING = 80  # groups whose members vote yes
FIRST_CHAT = -1004000000000
FIRST_USER = 9000
TITLE = "Share the van"
FEDERATION_SAYS = "Federation River valley:"
KILL_AT = {"start-up": GROUPS // 2, "serving": GROUPS // 10}  # messages on Telegram before the kill (see above)
TIME_LIMIT = 100
MAX_IN_FLIGHT = 5
SETTINGS = GroupSettings.from_values(DefaultsConfig().model_dump())


def chat_of(index: int) -> int:
    return FIRST_CHAT - index


def seed_groups(url: str, now: datetime) -> None:
    """Migrate; the groups, two members each, and the federation of them all."""
    database = Database(url)
    try:
        database.upgrade()
        created = now - timedelta(days=10)
        with database.transaction() as session:
            groups = [Group(platform="telegram", chat_id=str(chat_of(n)), title=f"Cell {n}", created_at=created,
                            reported_member_count=2) for n in range(GROUPS)]
            session.add_all(groups)
            session.flush()
            for n, group in enumerate(groups):
                audits.schedule(session, group, SETTINGS, since=now)
                session.add_all(Member(group_id=group.id, user_id=str(FIRST_USER + 2 * n + k), platform="telegram",
                                       display_name=f"Member {n}.{k}", joined_at=created) for k in range(2))
            joined = federation.create(session, "River valley", groups[0].id, created)
            for group in groups[1:]:
                federation.join(session, joined.id, group.id, created)
    finally:
        database.dispose()


def seed_question(url: str, closes_at: datetime) -> None:
    """The shared question, a copy in every group, every member's ballot cast; due at `closes_at`."""
    database = Database(url)
    try:
        opened = closes_at - timedelta(days=1)
        with database.transaction() as session:
            members: dict[int, list[int]] = {}
            for member in session.scalars(select(Member).order_by(Member.id)):
                members.setdefault(member.group_id, []).append(member.id)
            first = min(members)
            __, copies = federation.open_question(
                session, origin_group_id=first, author_id=members[first][0], title=TITLE, details=None,
                duration=closes_at - opened, secret=False, review=None, now=opened,
                settings_of=lambda group_id: SETTINGS, electorate_of=lambda group_id: members[group_id])
            for copy in copies:
                group = session.get(Group, copy.group_id)
                choice = "yes" if FIRST_CHAT - int(group.chat_id) < PASSING else "no"
                for member_id in members[copy.group_id]:
                    rules.cast_ballot(session, copy, member_id, choice, None, opened)
    finally:
        database.dispose()


def said(emu: BotApiEmulator) -> dict[str, Counter]:
    """Per kind ("own", "federation"), how many results about the question each chat received."""
    found = {"own": Counter(), "federation": Counter()}
    for sent in emu.sent:
        text = sent["plain"] or ""
        if sent["method"] == "sendMessage" and sent["chat_id"] < 0 and TITLE in text:
            found["federation" if FEDERATION_SAYS in text else "own"][sent["chat_id"]] += 1
    return found


def marked_sent(url: str) -> set[tuple[str, int]]:
    """(kind, chat) of the results whose outbox row was marked sent."""
    rows = query(url, "SELECT o.dedupe_key, g.chat_id FROM outbox o JOIN groups g ON g.id = o.group_id "
                      "WHERE o.sent_at IS NOT NULL AND o.dedupe_key IS NOT NULL")
    return {(_kind(key), int(chat)) for key, chat in rows if _kind(key)}


def _kind(key: str) -> str | None:
    """Which result an outbox row's dedupe key is: the federation's, or a group's own."""
    if key.startswith("federation-question:"):
        return "federation"
    return "own" if key.startswith("proposal:") and key.endswith(":outcome") else None


@dataclass
class Crash:
    when: str
    delivered_at_kill: set[tuple[str, int]] = field(default_factory=set)
    marked_at_kill: set[tuple[str, int]] = field(default_factory=set)
    closed_at_kill: int = 0
    counts: dict[str, Counter] = field(default_factory=dict)

    @property
    def in_flight(self) -> set[tuple[str, int]]:
        return self.delivered_at_kill - self.marked_at_kill


async def crash_close(emu: BotApiEmulator, url: str, workdir: Path, when: str) -> Crash:
    run = Crash(when=when)
    seed_groups(url, datetime.now(timezone.utc))
    if when == "start-up":
        seed_question(url, datetime.now(timezone.utc) - timedelta(seconds=1))
    for n in range(GROUPS):
        for k in range(2):
            emu.add_user(FIRST_USER + 2 * n + k, "Member", last_name=f"{n}.{k}")
        emu.add_chat(chat_of(n), f"Cell {n}", member_count=3)
    config = write_config(workdir / "commons.toml", url, emu)
    first, second = BotProcess(config, workdir / "bot.log"), BotProcess(config, workdir / "bot.log")
    watched = "federation" if when == "start-up" else "own"
    try:
        await first.start()
        if when == "serving":
            await until(lambda: any(method == "getUpdates" for method, _ in emu.calls), 60, "the bot to serve", first)
            seed_question(url, datetime.now(timezone.utc))  # due now: the next sweep closes the copies
        await until(lambda: len(said(emu)[watched]) >= KILL_AT[when], 60, f"{KILL_AT[when]} results", first)
        first.kill()
        await first.wait()
        await asyncio.sleep(0.3)  # a request already on the wire when it died is recorded now, or never
        run.delivered_at_kill = {(kind, chat) for kind, chats in said(emu).items() for chat in chats}
        run.marked_at_kill = marked_sent(url)
        run.closed_at_kill = query(url, "SELECT count(*) FROM decisions")[0][0]

        await second.start()
        await until(lambda: all(len(chats) == GROUPS for chats in said(emu).values()), 60,
                    "every group's two results after the restart", second)
        await until(lambda: pending_outbox(url) == 0, 30, "the outbox to be empty", second)
        await asyncio.sleep(1.0)  # a result sent twice would show by now
        run.counts = said(emu)
        assert await second.terminate() == 0
    finally:
        await first.finish()
        await second.finish()
    return run


def check(url: str, run: Crash) -> None:
    assert 0 < len(run.delivered_at_kill) < 2 * GROUPS, "the kill must fall in the middle of the results"
    if run.when == "serving":
        assert run.closed_at_kill < GROUPS, f"the kill must fall in the middle of the closes (all {GROUPS} closed)"
    assert run.marked_at_kill <= run.delivered_at_kill, "marked sent before Telegram had it"
    # Every group heard both results; twice only what was on its way at the kill.
    assert len(run.in_flight) <= MAX_IN_FLIGHT, f"{len(run.in_flight)} in flight at the kill"
    for kind, chats in run.counts.items():
        assert set(chats) == {chat_of(n) for n in range(GROUPS)}, f"groups without their {kind} result"
        repeated = {chat for chat, count in chats.items() if count > 1}
        assert {(kind, chat) for chat in repeated} <= run.in_flight, (kind, sorted(repeated)[:5])
        assert max(chats.values()) <= 2
    # The database: each copy decided once, the groups counted once.
    assert query(url, "SELECT count(*) FROM decisions")[0][0] == GROUPS
    [(outcome, groups_for, total)] = query(url, "SELECT outcome, groups_for, groups_total FROM federation_questions")
    assert (outcome, groups_for, total) == ("adopted", PASSING, GROUPS)
    keys = Counter(key for (key,) in query(url, "SELECT dedupe_key FROM outbox WHERE dedupe_key LIKE "
                                                "'federation-question:%'"))
    assert len(keys) == GROUPS and set(keys.values()) == {1}, keys.most_common(3)
    voters = query(url, "SELECT sum(voters) FROM decisions")[0][0]
    assert voters == 2 * GROUPS
    assert query(url, "SELECT count(*) FROM outbox WHERE failed_at IS NOT NULL")[0][0] == 0
    assert query(url, "SELECT count(*) FROM proposals WHERE status = 'open'")[0][0] == 0
    assert query(url, "SELECT count(*) FROM proposals WHERE question_id IS NULL")[0][0] == 0


@pytest.mark.parametrize("when", ["start-up", "serving"])
@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_kill_9_mid_federation_close_each_result_once_groups_counted_once(backend, when, request, tmp_path):
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'commons.db'}"
    else:
        postgres = request.getfixturevalue("postgres")
        name = f"crash_federation_{os.getpid()}_{when.replace('-', '')}"
        url = postgres.create_database(name)
        request.addfinalizer(lambda: postgres.drop_database(name))
    try:
        async with BotApiEmulator() as emu:
            run = await asyncio.wait_for(crash_close(emu, url, tmp_path, when), TIME_LIMIT)
        print(f"{backend}, due at {when}: at the kill {run.closed_at_kill}/{GROUPS} copies closed, "
              f"{len(run.delivered_at_kill)} results on Telegram, {len(run.marked_at_kill)} marked sent "
              f"(in flight: {sorted(run.in_flight)})")
        check(url, run)
    except BaseException:
        show_log(tmp_path / "bot.log")
        raise
