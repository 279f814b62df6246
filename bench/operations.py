#!/usr/bin/env python
"""Operations benchmark: what an operator sees when a lot falls due at once, after downtime, at start-up
and when the active process dies.

1. **Reply latency under scheduled load.** One database with 1,000 groups whose sovereignty audits close
   at the same instant (1,000 reports and charts) and 2,000 groups × 5 roles whose 10,000 mandates end at
   that instant, plus a "hot" group with 200 members and open proposals. A `Runtime` with a console
   adapter (output discarded) runs; the clock moves past the instant and `runtime.run_due()` works
   through the due items while members of the hot group vote, one `!vote` every 20 ms, each timed
   around `await runtime.handle(...)`. The same votes on the same database with nothing due (before
   and after) are the baseline; the ratio of the p99s is the figure to read.
2. **Catch-up of a day of downtime** for 10,000 groups × 5 roles: mandates ending during the day, the
   weekly digest that falls in it and the audits that start in it. Timed as a running bot whose clock
   jumps a day (`runtime.run_due()`) and, with `--catchup both` (the default with `--quick`), as a
   restart a day later (`Runtime.start()`, which catches up before the adapters start), each on its own
   copy of the database; every lapse must be announced exactly once.
3. **Start-up time and memory** for 100,000 groups beside 100 groups: `bench/operations.py
   --child-startup URL` in a fresh process, from spawning it to `Runtime.start()` returning.
4. **Takeover** (PostgreSQL only): two `commons-bot run` processes on one database with the Telegram
   emulator; the active one gets `kill -9` N times (the killed one restarts as the new standby) and
   the time from the kill to the new active process's first `getUpdates` is measured.

    python bench/operations.py                         # SQLite, full size
    python bench/operations.py --backend both          # SQLite, then a throwaway PostgreSQL, own processes
    python bench/operations.py --quick --backend both  # ~20x smaller smoke run
    python bench/operations.py --only load catchup     # some of the phases

See bench/README.md ("Operations") for what is measured and the targets.
"""

from __future__ import annotations

import time

_T_PROCESS = time.perf_counter()

import argparse  # noqa: E402
import asyncio  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from datetime import datetime, timedelta, timezone  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # so `tests.*` and `bench.*` import

from sqlalchemy import bindparam, create_engine, insert  # noqa: E402
from sqlalchemy import text as sql_text  # noqa: E402

import bot.app  # noqa: E402
from adapters.console import PLATFORM as CONSOLE  # noqa: E402
from adapters.console import ConsoleAdapter  # noqa: E402
from bench import common  # noqa: E402
from bench.rotation import peak_rss_mb, role_name, rss_now_mb, warnings_setting  # noqa: E402
from bot.clock import ManualClock  # noqa: E402
from bot.config import DefaultsConfig  # noqa: E402
from bot.events import ChatRef, CommandMessage, MemberJoined, UserRef  # noqa: E402
from bot.governance import audits as audit_rules  # noqa: E402
from bot.governance import roles as role_rules  # noqa: E402
from bot.runtime import Runtime  # noqa: E402
from storage.db import Database  # noqa: E402
from storage.models import Audit, AuditEntry, Group, Mandate, Member, Role  # noqa: E402
from storage.types import UTCDateTime  # noqa: E402

_T_IMPORTED = time.perf_counter()

SEED = 42
START = datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc)  # ManualClock's default start (a Monday, 09:00)
INSTANT = START + timedelta(hours=2)  # phase 1: every audit closes and every mandate ends here
DAY_START = START - timedelta(hours=12)  # phase 2: the day down, Sunday 21:00 → Monday 21:00 (the digest is Mon 09:00)
DOWN = timedelta(days=1)
TERM = timedelta(days=90)
AUDIT_EVERY = timedelta(days=90)
SWEEP = timedelta(seconds=30)  # the app's default sweep interval
BATCH = 5000  # rows per executemany
HOT_CHAT = ChatRef(platform=CONSOLE, chat_id="hot")
VOTE_INTERVAL = 0.020

# Targets (the issue).
LOAD_P99_TARGET_MS = 50.0
LOAD_RATIO_TARGET = 2.0


class BenchFailure(Exception):
    pass


@dataclass
class Sizes:
    audit_groups: int  # phase 1: groups whose audit closes at the instant (one chart each)
    role_groups: int  # phase 1: groups × ROLES mandates ending at the instant (the first audit_groups overlap)
    hot_members: int
    warm_votes: int
    idle_votes: int
    load_proposals: int  # proposals the votes under load go to (200 distinct members each, then changes)
    load_seconds: float  # votes under load stop after this long (or when the due work is done, if sooner)
    catchup_groups: int  # phase 2
    startup_groups: int  # phase 3, beside 100
    startup_runs: int
    takeover_runs: int


ROLES = 5


def make_sizes(args: argparse.Namespace) -> Sizes:
    if args.quick:
        sizes = Sizes(audit_groups=50, role_groups=100, hot_members=200, warm_votes=20, idle_votes=100,
                      load_proposals=5, load_seconds=30, catchup_groups=500, startup_groups=5000, startup_runs=2,
                      takeover_runs=3)
    else:
        sizes = Sizes(audit_groups=1000, role_groups=2000, hot_members=200, warm_votes=50, idle_votes=500,
                      load_proposals=20, load_seconds=180, catchup_groups=10_000, startup_groups=100_000,
                      startup_runs=3, takeover_runs=10)
    if args.takeover_runs is not None:
        sizes.takeover_runs = args.takeover_runs
    if args.load_seconds is not None:
        sizes.load_seconds = args.load_seconds
    if sizes.role_groups < sizes.audit_groups:
        raise SystemExit("role groups must include the audit groups")
    return sizes


class SkippedWakeUps(logging.Handler):
    """Counts APScheduler's "skipped: maximum number of running instances reached" warnings (a wake-up
    asked for while the scheduler's run is still going: every command re-arms it) instead of printing
    each one; anything else it logs still goes to stderr."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if "maximum number of running instances" in record.getMessage():
            self.count += 1
        else:
            sys.stderr.write(self.format(record) + "\n")


SKIPPED = SkippedWakeUps()


def out(*parts) -> None:
    print(*parts, flush=True)


def pct(sorted_values, q: float) -> float:
    return common.pct(sorted_values, q)


def stats_ms(samples: list[float]) -> dict:
    values = sorted(samples)
    if not values:
        return dict(n=0, p50=float("nan"), p90=float("nan"), p99=float("nan"), max=float("nan"))
    return dict(n=len(values), p50=1000 * pct(values, 50), p90=1000 * pct(values, 90), p99=1000 * pct(values, 99),
                max=1000 * values[-1])


# --------------------------------------------------------------------------
# seeding: bulk inserts into the app's tables (the core's commands would take far too long at this size)

def seed_groups(url: str, count: int, *, members: int, roles_per_group: int, digest_at, audit_at,
                mandate_ends=None, open_audits: int = 0, audit_closes: datetime | None = None,
                chat_prefix: str = "g", created_at: datetime = START - timedelta(days=400)) -> dict:
    """Migrate, then insert `count` groups on the console platform (chats `{chat_prefix}{g}`) with `members`
    members and `roles_per_group` roles, one open mandate each ending at `mandate_ends(g, r)`, and the
    group's digest and audit dates (`digest_at(g)`, `audit_at(g)`) set as the app would have them. The
    first `open_audits` groups also have three closed audits (figures as `audits.measure` keys them) and
    an open one closing at `audit_closes`, with three reported figures.

    Ids are given explicitly: group g is g+1, member/role/mandate g*N+i+1."""
    t0 = time.perf_counter()
    db = Database(url)
    db.upgrade()
    rng = random.Random(SEED)
    warnings = warnings_setting()
    areas = DefaultsConfig().canonical()["audit_areas"].split(", ")
    from sqlmodel import Session

    with Session(db.engine) as session:  # the keys the app's figures have, from an empty period
        template = audit_rules.measure(session, 0, START - timedelta(days=1), START)
    totals = dict(groups=0, members=0, roles=0, mandates=0, audits=0, audit_entries=0)
    per_batch = max(1, BATCH // max(1, members + roles_per_group))
    audit_id = entry_id = 0
    with db.engine.connect() as conn:
        for first in range(0, count, per_batch):
            rows = dict(groups=[], members=[], roles=[], mandates=[], audits=[], audit_entries=[])
            for g in range(first, min(count, first + per_batch)):
                rows["groups"].append(dict(id=g + 1, platform=CONSOLE, chat_id=f"{chat_prefix}{g}",
                                           title=f"Operations group {g}", created_at=created_at,
                                           next_digest_at=digest_at(g), next_audit_at=audit_at(g)))
                member_ids = [g * members + m + 1 for m in range(members)]
                for m, member_id in enumerate(member_ids):
                    rows["members"].append(dict(id=member_id, group_id=g + 1, user_id=f"u{m}",
                                                display_name=f"Member {m}", active=True, joined_at=created_at))
                for r in range(roles_per_group):
                    key = g * roles_per_group + r + 1
                    name = role_name(r)
                    rows["roles"].append(dict(id=key, group_id=g + 1, key=name, name=name,
                                              term_seconds=int(TERM.total_seconds()), seats=1, max_terms=1,
                                              fill="election", handover=None, trainees_required=0,
                                              created_at=created_at, retired_at=None))
                    ends_at = mandate_ends(g, r)
                    started = ends_at - TERM
                    rows["mandates"].append(dict(
                        id=key, group_id=g + 1, role_id=key, member_id=member_ids[r % members], seat=1,
                        filled_by="election", term_number=1, renewals=0, started_at=started,
                        term_started_at=started, ends_at=ends_at,
                        # warnings due before the clock start count as sent (as in bench/rotation.py)
                        next_warning_at=role_rules.next_warning(ends_at, warnings, min(ends_at, START),
                                                                min(ends_at, START)),
                        ended_at=None, end_reason=None))
                if g < open_audits:
                    candidates = json.dumps([[member_id, f"Member {m}"] for m, member_id in enumerate(member_ids)])
                    previous = created_at
                    for number in range(1, 5):
                        closes = audit_closes - (4 - number) * AUDIT_EVERY
                        started = closes - timedelta(days=7)
                        figures = None
                        if number < 4:
                            figures = dict(template, period_start=previous.isoformat(), period_end=closes.isoformat())
                            for name, value in template.items():
                                if isinstance(value, int) and not isinstance(value, bool):
                                    figures[name] = rng.randint(0, 40)
                            figures["participation"] = round(rng.uniform(0.3, 0.9), 3)
                            figures["median_hours_to_met"] = round(rng.uniform(2, 60), 1)
                            figures["reported"] = {area: rng.randint(0, 60) for area in areas}
                            figures = json.dumps(figures, ensure_ascii=False)
                        audit_id += 1
                        rows["audits"].append(dict(
                            id=audit_id, group_id=g + 1, number=number, period_start=previous, started_at=started,
                            closes_at=closes, remind_at=None, closed_at=closes if number < 4 else None,
                            areas=json.dumps(areas), started_by=None, auditor_id=member_ids[number % members],
                            draw_seed=f"{rng.getrandbits(64):016x}", draw_candidates=candidates, figures=figures))
                        previous = closes
                    for m, area in enumerate(rng.sample(areas, 3)):
                        entry_id += 1
                        rows["audit_entries"].append(dict(
                            id=entry_id, audit_id=audit_id, member_id=member_ids[m % members], area=area,
                            count=rng.randint(1, 40), note=None, reported_at=audit_closes - timedelta(days=3)))
            for table, model in (("groups", Group), ("members", Member), ("roles", Role), ("mandates", Mandate),
                                 ("audits", Audit), ("audit_entries", AuditEntry)):
                if rows[table]:
                    conn.execute(insert(model.__table__), rows[table])
                    totals[table] += len(rows[table])
            conn.commit()
        if db.backend == "postgresql":
            for table, n in totals.items():
                if n:
                    conn.execute(sql_text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                          f"(SELECT max(id) FROM {table}))"))
            conn.commit()
    if db.backend == "postgresql":
        # A live server's autovacuum would have analysed tables this size; SQLite gets none, as in the app.
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sql_text("ANALYZE"))
    db.dispose()
    totals["seconds"] = time.perf_counter() - t0
    return totals


class Databases:
    """Throwaway databases on one backend: files in a temp dir, or databases on one local PostgreSQL server."""

    def __init__(self, backend: str) -> None:
        self.backend = backend
        self.tmp = tempfile.TemporaryDirectory(prefix="commons-ops-")
        self.pg = common.start_postgres() if backend == "postgresql" else None

    def new(self, name: str) -> str:
        if self.pg is None:
            return f"sqlite:///{self.tmp.name}/{name}.db"
        return self.pg.create_database(f"ops_{name}")

    def copy(self, source: str, name: str) -> str:
        """A copy of a database nobody is connected to."""
        if self.pg is None:
            path = Path(self.tmp.name) / f"{source}.db"
            for suffix in ("", "-wal", "-shm"):
                if Path(f"{path}{suffix}").exists():
                    shutil.copy(f"{path}{suffix}", Path(self.tmp.name) / f"{name}.db{suffix}")
            return f"sqlite:///{self.tmp.name}/{name}.db"
        return self.pg.create_database(f"ops_{name}", template=f"ops_{source}")

    def close(self) -> None:
        if self.pg is not None:
            self.pg.stop()
        self.tmp.cleanup()


def query(text: str, **params):
    """A text() statement whose datetime parameters are bound as the app's columns store them (SQLite keeps
    naive UTC text)."""
    return sql_text(text).bindparams(*(bindparam(name, value, type_=UTCDateTime()) if isinstance(value, datetime)
                                       else bindparam(name, value) for name, value in params.items()))


def scalar(url: str, text: str, **params):
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(query(text, **params)).scalar()
    finally:
        engine.dispose()


def rows(url: str, text: str, **params) -> list:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(query(text, **params)).all()
    finally:
        engine.dispose()


def check_lapses(url: str, expected: int, label: str, due_by: datetime) -> dict:
    """Every mandate that ended by then lapsed (expired) and its lapse was recorded once in the outbox."""
    # (patterns as parameters: text() would read ":lapsed" as one)
    lapsed_keys, distinct_keys = rows(url, "SELECT count(*), count(DISTINCT dedupe_key) FROM outbox "
                                           "WHERE dedupe_key LIKE :pattern", pattern="mandate:%:lapsed")[0]
    expired = scalar(url, "SELECT count(*) FROM mandates WHERE ended_at IS NOT NULL AND end_reason = 'expired'")
    still_open = scalar(url, "SELECT count(*) FROM mandates WHERE ended_at IS NULL AND ends_at <= :now",
                        now=due_by)
    missing = scalar(url, "SELECT count(*) FROM mandates m WHERE m.ended_at IS NOT NULL AND NOT EXISTS "
                          "(SELECT 1 FROM outbox o WHERE o.dedupe_key = :head || m.id || :tail)",
                     head="mandate:", tail=":lapsed")
    problems = []
    if lapsed_keys != expected or distinct_keys != expected:
        problems.append(f"{lapsed_keys:,} lapse announcements ({distinct_keys:,} distinct keys), expected "
                        f"{expected:,} exactly once each")
    if expired != expected or still_open:
        problems.append(f"{expired:,} mandates expired, {still_open:,} due but still open; expected {expected:,} "
                        "expired")
    if missing:
        problems.append(f"{missing:,} ended mandates have no lapse announcement")
    if problems:
        raise BenchFailure(f"{label}: " + "; ".join(problems))
    return dict(lapses=lapsed_keys)


# --------------------------------------------------------------------------
# a running bot: Runtime + console adapter whose output goes nowhere

class Bot:
    def __init__(self, url: str, clock: ManualClock) -> None:
        self.lines = 0
        self.clock = clock
        self.core = bot.app.build_core(url, clock, DefaultsConfig())
        self.adapter = ConsoleAdapter(self._discard)
        self.runtime = Runtime(self.core, [self.adapter], SWEEP)
        self._events = 0
        self._watch = create_engine(url)

    def _discard(self, text: str) -> None:
        self.lines += 1

    def event_id(self) -> str:
        self._events += 1
        return f"ops-{self._events}"

    async def start(self) -> float:
        t0 = time.perf_counter()
        await self.runtime.start()
        spent = time.perf_counter() - t0
        bot.app.freeze_start_up_objects()  # as `commons-bot run` does after start-up
        return spent

    async def stop(self) -> None:
        try:
            await self.runtime.stop()
        finally:
            self.core.db.dispose()
            self._watch.dispose()

    def pending_announcements(self) -> int:
        with self._watch.connect() as conn:
            return conn.execute(sql_text(PENDING_ANNOUNCEMENTS)).scalar()

    async def run_due_until_idle(self, delivered: bool = False) -> tuple[float, int]:
        """`runtime.run_due()` as the scheduler calls it, again (at once) while it says more is due now —
        and with `delivered`, while announcements are still waiting in the outbox (each call pulls some)."""
        t0, calls = time.perf_counter(), 0
        while True:
            due = await self.runtime.run_due()
            calls += 1
            if (due is None or due > self.clock.now()) and (not delivered or self.pending_announcements() == 0):
                return time.perf_counter() - t0, calls
            if calls >= 100_000:
                raise BenchFailure(f"run_due() called {calls:,} times and there is still work or delivery left")

    def command(self, member: int, text: str) -> CommandMessage:
        return CommandMessage(chat=HOT_CHAT, sender=UserRef(platform=CONSOLE, user_id=f"h{member}"),
                              sender_name=f"Hot member {member}", text=text, event_id=self.event_id(),
                              chat_title="Hot group")


PENDING_ANNOUNCEMENTS = ("SELECT count(*) FROM outbox WHERE sent_at IS NULL AND failed_at IS NULL "
                         "AND dedupe_key IS NOT NULL")  # announcements only: votes keep their own replies coming
DUE_LEFT = ("SELECT (SELECT count(*) FROM mandates WHERE ended_at IS NULL AND ends_at <= :now) + "
            "(SELECT count(*) FROM audits WHERE closed_at IS NULL AND closes_at <= :now) + "
            "(SELECT count(*) FROM groups WHERE next_digest_at <= :now OR next_audit_at <= :now) + "
            "(SELECT count(*) FROM lotteries WHERE drawn_at IS NULL AND draws_at <= :now)")


class Progress(threading.Thread):
    """Watches the database from a connection of its own (4 looks a second): when the last item due by
    `due_by` was committed, and when no announcement was left to deliver."""

    def __init__(self, url: str, due_by: datetime) -> None:
        super().__init__(daemon=True)
        self.engine = create_engine(url)
        self.due_by = due_by
        self.stop_event = threading.Event()
        self.started_at = time.perf_counter()
        self.items_done_at: float | None = None
        self.delivered_at: float | None = None
        self.left: int | None = None  # due items not done yet, at the latest look

    def run(self) -> None:
        due_left = query(DUE_LEFT, now=self.due_by)
        next_note = 30.0
        with self.engine.connect() as conn:
            while True:
                stopping = self.stop_event.wait(0.25)  # one last look after finish(): an upper bound
                left = self.left = conn.execute(due_left).scalar()
                pending = conn.execute(sql_text(PENDING_ANNOUNCEMENTS)).scalar()
                conn.rollback()
                now = time.perf_counter() - self.started_at
                if now >= next_note:  # a sign of life in long runs
                    out(f"    … {now:.0f} s: {left:,} due items left, {pending:,} announcements waiting; "
                        f"load average {os.getloadavg()[0]:.2f}")
                    next_note += 30.0
                if left == 0 and self.items_done_at is None:
                    self.items_done_at = now
                if left == 0 and pending == 0 and self.delivered_at is None:
                    self.delivered_at = now
                if stopping or self.delivered_at is not None:
                    return

    def finish(self) -> None:
        self.stop_event.set()
        self.join(30)
        self.engine.dispose()


MAX_BACKLOG = 1000  # unanswered votes (20 s of them) after which the stream holds new ones back


class VoteStream:
    """Votes from distinct members of the hot group, round after round over `proposals` (after the last
    proposal the rounds change the ballots, yes ↔ no); each is timed from just before `runtime.handle`
    to its return."""

    def __init__(self, bot_: Bot, proposals: list[int], members: int) -> None:
        self.bot, self.proposals, self.members = bot_, proposals, members
        self.k = 0
        self.pairs: dict[tuple[int, int], str] = {}

    def next_event(self) -> CommandMessage:
        member, round_ = self.k % self.members, self.k // self.members
        number = self.proposals[round_ % len(self.proposals)]
        choice = ("yes", "no")[(round_ // len(self.proposals)) % 2]
        self.pairs[(number, member)] = choice
        self.k += 1
        return self.bot.command(member, f"!vote {number} {choice}")

    async def sequential(self, count: int) -> float:
        """`count` votes one after the other: votes/s the bot answers when nothing else runs."""
        t0 = time.perf_counter()
        for _ in range(count):
            await self.bot.runtime.handle(self.next_event())
        return count / (time.perf_counter() - t0)

    async def open_loop(self, interval: float, count: int | None = None, stop: asyncio.Event | None = None,
                        at_least: int = 0, max_seconds: float | None = None) -> dict:
        """One vote every `interval` seconds whatever the replies do (each in a task of its own). Stops after
        `count` votes, or once `stop` is set (and at least `at_least` were sent), or after `max_seconds`. A
        vote whose turn comes while MAX_BACKLOG are unanswered is not sent (counted as held back)."""
        samples: list[tuple[float, float]] = []  # (sent at, seconds)
        tasks: set[asyncio.Task] = set()
        perf = time.perf_counter
        begin = perf()
        outstanding = [0]

        errors: list[BaseException] = []

        async def one(event: CommandMessage, sent: float) -> None:
            outstanding[0] += 1
            t0 = perf()
            try:
                await self.bot.runtime.handle(event)
            except Exception as error:  # noqa: BLE001 - reported below, after the other votes
                errors.append(error)
                return
            finally:
                outstanding[0] -= 1
            samples.append((sent, perf() - t0))

        slot = sent = held = 0
        while True:
            if count is not None and sent >= count:
                break
            if stop is not None and stop.is_set() and sent >= at_least:
                break
            if max_seconds is not None and perf() - begin >= max_seconds and sent >= at_least:
                break
            delay = begin + slot * interval - perf()
            if delay > 0:
                await asyncio.sleep(delay)
            slot += 1
            if outstanding[0] >= MAX_BACKLOG:
                held += 1
                continue
            task = asyncio.create_task(one(self.next_event(), perf() - begin))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            sent += 1
        sent_for = perf() - begin
        if tasks:
            await asyncio.gather(*tasks)
        if errors:
            raise BenchFailure(f"{len(errors)} votes failed in runtime.handle; the first: {errors[0]!r}")
        return dict(samples=samples, sent=sent, held=held, sent_for=sent_for)


# --------------------------------------------------------------------------
# phase 1: reply latency under scheduled load

async def phase_load(dbs: Databases, sizes: Sizes) -> dict:
    url = dbs.new("load")
    mandates = sizes.role_groups * ROLES
    seed_rng = random.Random(SEED + 1)
    seeded = seed_groups(
        url, sizes.role_groups, members=ROLES, roles_per_group=ROLES,
        digest_at=lambda g: START + timedelta(days=7),  # next Monday: not due in this phase
        audit_at=lambda g: (INSTANT - timedelta(days=7) + AUDIT_EVERY if g < sizes.audit_groups
                            else START + timedelta(seconds=seed_rng.uniform(86400, 90 * 86400))),
        mandate_ends=lambda g, r: INSTANT, open_audits=sizes.audit_groups, audit_closes=INSTANT)
    out(f"  seeded (bulk inserts): {seeded['groups']:,} groups, {seeded['members']:,} members, "
        f"{seeded['mandates']:,} mandates ending at {INSTANT:%H:%M}, {sizes.audit_groups:,} open audits closing then "
        f"(+ {seeded['audits'] - sizes.audit_groups:,} closed ones for the charts) in {seeded['seconds']:.1f} s")

    clock = ManualClock(START)
    bot_ = Bot(url, clock)
    result: dict = dict(mandates=mandates, audits=sizes.audit_groups, seed_seconds=seeded["seconds"])
    try:
        result["start_seconds"] = await bot_.start()
        # The hot group, through the core: members join, proposals open.
        t0 = time.perf_counter()
        for m in range(sizes.hot_members):
            await bot_.runtime.handle(MemberJoined(chat=HOT_CHAT, user=UserRef(platform=CONSOLE, user_id=f"h{m}"),
                                                   display_name=f"Hot member {m}", event_id=bot_.event_id()))
        rounds = math.ceil(sizes.idle_votes / sizes.hot_members)
        plan = dict(warm=1, capacity=1, idle=rounds, load=sizes.load_proposals, after=rounds)
        numbers: dict[str, list[int]] = {}
        next_number = 1
        for phase, n in plan.items():
            numbers[phase] = list(range(next_number, next_number + n))
            for number in numbers[phase]:
                await bot_.runtime.handle(bot_.command(number % sizes.hot_members,
                                                       f"!propose Operations item {number} | for the benchmark "
                                                       "closes=30d"))
            next_number += n
        hot_id, opened = rows(url, "SELECT g.id, count(p.id) FROM groups g JOIN proposals p ON p.group_id = g.id "
                                   "WHERE g.chat_id = 'hot' AND p.status = 'open' GROUP BY g.id")[0]
        if opened != next_number - 1:
            raise BenchFailure(f"the hot group has {opened} open proposals, expected {next_number - 1}")
        out(f"  hot group through the core: {sizes.hot_members} joins and {opened} proposals in "
            f"{time.perf_counter() - t0:.1f} s; Runtime.start() took {result['start_seconds']:.2f} s")

        streams = {phase: VoteStream(bot_, numbers[phase], sizes.hot_members) for phase in plan}
        await streams["warm"].open_loop(VOTE_INTERVAL, count=sizes.warm_votes)
        capacity = await streams["capacity"].sequential(sizes.hot_members)
        idle = await streams["idle"].open_loop(VOTE_INTERVAL, count=sizes.idle_votes)

        # Past the instant: everything is due at once.
        clock.advance(INSTANT + timedelta(seconds=1) - clock.now())
        stop = asyncio.Event()
        progress = Progress(url, INSTANT)

        async def due_work() -> tuple[float, int]:
            try:
                return await bot_.run_due_until_idle()
            finally:
                stop.set()

        progress.start()
        due_task = asyncio.create_task(due_work())
        load = await streams["load"].open_loop(VOTE_INTERVAL, stop=stop, at_least=sizes.hot_members,
                                               max_seconds=sizes.load_seconds)
        left_when_votes_stopped = progress.left
        due_seconds, due_calls = await due_task
        progress.finish()
        after = await streams["after"].open_loop(VOTE_INTERVAL, count=sizes.idle_votes)
        await bot_.run_due_until_idle()

        # checks
        result.update(check_lapses(url, mandates, "load", INSTANT))
        closed = scalar(url, "SELECT count(*) FROM audits WHERE closed_at = :at", at=INSTANT)
        keys = {kind: scalar(url, "SELECT count(*) FROM outbox WHERE dedupe_key LIKE :pattern",
                             pattern=f"audit:%:{kind}") for kind in ("chart", "report")}
        if closed != sizes.audit_groups or keys.get("chart") != sizes.audit_groups \
                or keys.get("report") != sizes.audit_groups:
            raise BenchFailure(f"load: {closed} audits closed with {keys} announcements, expected "
                               f"{sizes.audit_groups} of each")
        unsent = dict(rows(url, "SELECT CASE WHEN failed_at IS NULL THEN 'pending' ELSE 'failed' END, count(*) "
                                "FROM outbox WHERE sent_at IS NULL GROUP BY 1"))
        ballots = dict(rows(url, "SELECT p.number, count(*) FROM ballots b JOIN proposals p ON p.id = b.proposal_id "
                                 "WHERE p.group_id = :g GROUP BY p.number", g=hot_id))
        expected: dict[int, int] = {}
        for stream in streams.values():
            for number, _ in stream.pairs:
                expected[number] = expected.get(number, 0) + 1
        wrong = {n: (ballots.get(n, 0), e) for n, e in expected.items() if ballots.get(n, 0) != e}
        if wrong:
            raise BenchFailure("load: ballots per hot proposal (stored, expected) differ: "
                               f"{dict(list(wrong.items())[:5])}")
        during = [s for sent, s in load["samples"] if sent <= due_seconds]
        worst_sent, worst = max(load["samples"], key=lambda e: e[1])
        result.update(
            idle=stats_ms([s for _, s in idle["samples"]]), after=stats_ms([s for _, s in after["samples"]]),
            load=stats_ms(during), load_all=stats_ms([s for _, s in load["samples"]]),
            load_sent=load["sent"], load_held=load["held"], load_for=load["sent_for"],
            left_when_votes_stopped=left_when_votes_stopped, capacity=capacity,
            load_during=len(during), due_seconds=due_seconds, due_calls=due_calls,
            items_done_at=progress.items_done_at, delivered_at=progress.delivered_at, worst_sent=worst_sent,
            worst=worst, over_50=sum(1 for s in during if s > 0.05), over_1s=sum(1 for s in during if s > 1.0),
            unsent=unsent, console_lines=bot_.lines)
    finally:
        await bot_.stop()
    return result


def report_load(r: dict) -> None:
    out(f"  due work: {r['audits']:,} audit closes (a report and a chart each) + {r['mandates']:,} lapses "
        f"= {r['audits'] + r['mandates']:,} items")
    done = f"{r['items_done_at']:.1f} s" if r["items_done_at"] is not None else "not seen"
    delivered = f"{r['delivered_at']:.1f} s" if r["delivered_at"] is not None else "(not yet when it returned)"
    out(f"  run_due() until nothing was due: {r['due_seconds']:.1f} s in {r['due_calls']} call(s) "
        f"({(r['audits'] + r['mandates']) / r['due_seconds']:,.0f} items/s); last item committed at {done}, "
        f"every announcement delivered at {delivered} (watched 4x a second)")
    header = f"  {'!vote reply time (ms)':<42}{'votes':>7}{'p50':>9}{'p90':>9}{'p99':>9}{'max':>10}"
    out(header)
    out("  " + "-" * (len(header) - 2))
    for label, key in (("idle, before (nothing due)", "idle"), ("under load (sent while due work ran)", "load"),
                       ("idle, after", "after")):
        s = r[key]
        out(f"  {label:<42}{s['n']:>7,}{s['p50']:>9.2f}{s['p90']:>9.2f}{s['p99']:>9.2f}{s['max']:>10.1f}")
    ratio = r["load"]["p99"] / r["idle"]["p99"]
    r["ratio"] = ratio
    ok_abs = r["load"]["p99"] < LOAD_P99_TARGET_MS
    ok_ratio = ratio <= LOAD_RATIO_TARGET
    out(f"  p99 under load / p99 idle: x{ratio:.2f}")
    out(f"  target: p99 under load < {LOAD_P99_TARGET_MS:g} ms: {'MET' if ok_abs else 'MISSED'} "
        f"({r['load']['p99']:.2f} ms); <= {LOAD_RATIO_TARGET:g}x idle: {'MET' if ok_ratio else 'MISSED'} "
        f"(x{ratio:.2f})")
    out(f"  under load: {r['over_50']:,} of {r['load_during']:,} votes over 50 ms, {r['over_1s']:,} over 1 s; "
        f"the slowest ({r['worst'] * 1000:,.0f} ms) was sent {r['worst_sent']:.2f} s after the clock moved")
    left = r["left_when_votes_stopped"]
    out(f"  votes: one every {VOTE_INTERVAL * 1000:g} ms ({1 / VOTE_INTERVAL:g}/s) for {r['load_for']:.1f} s, "
        f"{r['load_sent']:,} sent"
        + (f", {r['load_held']:,} held back (over {MAX_BACKLOG:,} unanswered)" if r["load_held"] else "")
        + (f"; {left:,} of the {r['audits'] + r['mandates']:,} due items were still left when they stopped"
           if left else "")
        + f". Sequential votes on the idle bot: {r['capacity']:.0f}/s")
    if r["capacity"] < 1 / VOTE_INTERVAL:
        out(f"  (the bot answers fewer than {1 / VOTE_INTERVAL:g} votes/s even when idle: the stream alone overloads "
            "it, and replies queue up whatever the due work does)")
    if r["unsent"]:
        out(f"  outbox rows not sent at the end: {r['unsent']}")
    r["targets_met"] = ok_abs and ok_ratio


# --------------------------------------------------------------------------
# phase 2: a day of downtime

async def phase_catchup(dbs: Databases, sizes: Sizes, variants: tuple[str, ...]) -> dict:
    url = dbs.new("catchup_seed")
    rng = random.Random(SEED + 2)
    day_us = int(DOWN / timedelta(microseconds=1))
    ends = [DAY_START + timedelta(microseconds=rng.randrange(1, day_us)) for _ in range(sizes.catchup_groups * ROLES)]
    audit_at = [DAY_START + timedelta(seconds=rng.uniform(0, AUDIT_EVERY.total_seconds()))
                for _ in range(sizes.catchup_groups)]
    seeded = seed_groups(url, sizes.catchup_groups, members=ROLES, roles_per_group=ROLES,
                         digest_at=lambda g: START,  # Monday 09:00, inside the day
                         audit_at=audit_at.__getitem__, mandate_ends=lambda g, r: ends[g * ROLES + r])
    urls = {variant: dbs.copy("catchup_seed", f"catchup_{variant}") for variant in variants}
    audits_due = sum(1 for t in audit_at if t <= DAY_START + DOWN)
    out(f"  seeded (bulk inserts): {seeded['groups']:,} groups, {seeded['mandates']:,} mandates ending during the "
        f"day, {sizes.catchup_groups:,} digests (Mon 09:00) and {audits_due} audit starts in it, in "
        f"{seeded['seconds']:.1f} s (a copy per variant)")
    result: dict = dict(seed_seconds=seeded["seconds"], groups=sizes.catchup_groups, mandates=seeded["mandates"])
    for variant in variants:
        result[variant] = await (catchup_running if variant == "running" else catchup_restart)(urls[variant])
        result[variant].update(count_catchup(urls[variant], f"catch-up ({variant})", seeded["mandates"]))
        if result[variant]["unsent"]:
            raise BenchFailure(f"catch-up ({variant}): {result[variant]['unsent']:,} outbox rows were never sent")
    return result


async def catchup_running(url: str) -> dict:
    """A running bot whose clock jumps a day: runtime.run_due() as the scheduler calls it, again at once
    while there is work or an announcement left."""
    clock = ManualClock(DAY_START)
    bot_ = Bot(url, clock)
    try:
        await bot_.start()
        before = scalar(url, "SELECT count(*) FROM outbox")
        if before:
            raise BenchFailure(f"catch-up: {before} outbox rows before the clock moved (something was due)")
        clock.advance(DOWN)
        progress = Progress(url, DAY_START + DOWN)
        progress.start()
        try:
            seconds, calls = await bot_.run_due_until_idle(delivered=True)
        finally:
            progress.finish()
    finally:
        await bot_.stop()
    return dict(seconds=seconds, calls=calls, items_done_at=progress.items_done_at,
                delivered_at=progress.delivered_at)


async def catchup_restart(url: str) -> dict:
    """The bot was down for the day: it starts a day later and catches up in Runtime.start(); then
    run_due() at once, again and again, until every announcement is delivered (the app's scheduler would
    make the next call at its next sweep or wake-up)."""
    bot_ = Bot(url, ManualClock(DAY_START + DOWN))
    progress = Progress(url, DAY_START + DOWN)
    try:
        progress.start()
        t0 = time.perf_counter()
        await bot_.runtime.start()
        started = time.perf_counter() - t0
        left_after_start = bot_.pending_announcements()
        rest, calls = await bot_.run_due_until_idle(delivered=True)
    finally:
        progress.finish()
        await bot_.stop()
    return dict(seconds=started + rest, start=started, left_after_start=left_after_start, calls=calls,
                items_done_at=progress.items_done_at, delivered_at=progress.delivered_at)


def count_catchup(url: str, label: str, mandates: int) -> dict:
    lapses = check_lapses(url, mandates, label, DAY_START + DOWN)["lapses"]
    digests = scalar(url, "SELECT count(*) FROM groups WHERE next_digest_at > :at", at=DAY_START + DOWN)
    audits_started = scalar(url, "SELECT count(*) FROM audits")
    drawn = scalar(url, "SELECT count(*) FROM lotteries WHERE drawn_at IS NOT NULL")
    announced = scalar(url, "SELECT count(*) FROM outbox WHERE dedupe_key IS NOT NULL")
    unsent = scalar(url, "SELECT count(*) FROM outbox WHERE sent_at IS NULL")
    return dict(lapses=lapses, digests=digests, audits=audits_started, draws=drawn,
                items=lapses + digests + audits_started + drawn, announced=announced, unsent=unsent)


def report_catchup(r: dict) -> None:
    out(f"  {r['groups']:,} groups x {ROLES} roles; items = lapses + digests (one look each; a group with no "
        "open needs posts none) + audits started + auditor draws; each lapse announced exactly once (checked)")
    header = (f"  {'':<42}{'items':>8}{'total s':>9}{'items/s':>9}{'items done':>12}{'delivered':>11}"
              f"{'announced':>11}{'run_due calls':>15}")
    out(header)
    out("  " + "-" * (len(header) - 2))
    for label, key in (("running, clock +1 day (runtime.run_due)", "running"),
                       ("restart a day later (Runtime.start)", "restart")):
        if key not in r:
            continue
        s = r[key]
        s["rate"] = s["items"] / s["seconds"]
        done = f"{s['items_done_at']:.1f} s" if s["items_done_at"] is not None else "?"
        delivered = f"{s['delivered_at']:.1f} s" if s["delivered_at"] is not None else "?"
        out(f"  {label:<42}{s['items']:>8,}{s['seconds']:>9.1f}{s['rate']:>9,.0f}{done:>12}{delivered:>11}"
            f"{s['announced']:>11,}{s['calls']:>15,}")
    if "restart" not in r:
        out("  (the restart variant: --catchup both)")
    else:
        s = r["restart"]
        out(f"  (restart: {s['lapses']:,} lapses, {s['digests']:,} digests, {s['audits']:,} audits, "
            f"{s['draws']:,} draws; "
            f"Runtime.start() returned after {s['start']:.1f} s with {s['left_after_start']:,} announcements still "
            f"in the outbox; they went out over {s['calls']:,} more run_due() calls made back to back — the app makes "
            f"one per sweep ({SWEEP.total_seconds():g} s) or wake-up)")
    out("  (items done / delivered: when the last due item was committed / the last announcement marked sent, "
        "watched 4x a second from a connection of its own)")


# --------------------------------------------------------------------------
# phase 3: start-up time and memory

def process_age() -> float | None:
    """Seconds since this process was started (exec'd), from /proc (10 ms resolution)."""
    try:
        fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        return time.clock_gettime(time.CLOCK_BOOTTIME) - int(fields[19]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, AttributeError):
        return None


def child_startup(url: str) -> dict:
    """Run in a fresh process: build the core and start a Runtime with a console adapter, as `commons-bot
    run` does (its adapter apart)."""
    async def main() -> dict:
        t0 = time.perf_counter()
        core = bot.app.build_core(url, ManualClock(START), DefaultsConfig())
        t1 = time.perf_counter()
        runtime = Runtime(core, [ConsoleAdapter(lambda text: None)], SWEEP)
        await runtime.start()
        t2 = time.perf_counter()
        ready_wall = time.time()
        result = dict(seconds=process_age(), imports=_T_IMPORTED - _T_PROCESS, build_core=t1 - t0,
                      runtime_start=t2 - t1, in_python=t2 - _T_PROCESS, ready_wall=ready_wall,
                      peak_rss_mb=common.vm_hwm_mb(), ru_maxrss_mb=peak_rss_mb(), rss_mb=rss_now_mb())
        try:
            with core.db.engine.connect() as conn:
                result["groups"] = conn.execute(sql_text("SELECT count(*) FROM groups")).scalar()
        finally:
            await runtime.stop()
            core.db.dispose()
        return result

    return asyncio.run(main())


def spawn_startup(url: str) -> dict:
    before = time.time()
    run = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child-startup", url],
                         capture_output=True, text=True, cwd=ROOT)
    for line in run.stdout.splitlines():
        if line.startswith("RESULT "):
            result = json.loads(line[len("RESULT "):])
            result["spawn_to_ready"] = result["ready_wall"] - before
            return result
    raise BenchFailure(f"start-up child failed ({run.returncode}):\n{run.stdout[-2000:]}\n{run.stderr[-3000:]}")


def phase_startup(dbs: Databases, sizes: Sizes) -> dict:
    result: dict = {}
    urls = {}
    rng = random.Random(SEED + 3)
    for label, count in (("small", 100), ("big", sizes.startup_groups)):
        urls[label] = dbs.new(f"startup_{label}")
        audit_at = [START + timedelta(seconds=rng.uniform(86400, AUDIT_EVERY.total_seconds())) for _ in range(count)]
        seeded = seed_groups(urls[label], count, members=3, roles_per_group=0,
                             digest_at=lambda g: START + timedelta(days=7), audit_at=audit_at.__getitem__)
        out(f"  seeded {count:,} groups x 3 members (bulk inserts, nothing due) in {seeded['seconds']:.1f} s")
        result[label] = dict(groups=count, runs=[])
    for _ in range(sizes.startup_runs):  # alternately, so a machine that gets busier affects both alike
        for label in ("small", "big"):
            child = spawn_startup(urls[label])
            if child["groups"] != result[label]["groups"]:
                raise BenchFailure(f"start-up: the child saw {child['groups']} groups, expected "
                                   f"{result[label]['groups']}")
            result[label]["runs"].append(child)
    for label in ("small", "big"):
        runs = sorted(result[label]["runs"], key=lambda c: c["spawn_to_ready"])
        result[label]["median"] = runs[(len(runs) - 1) // 2]
        result[label]["peak_rss_mb"] = max(c["peak_rss_mb"] for c in runs)
    return result


def report_startup(r: dict) -> None:
    header = (f"  {'groups':>8}{'spawn→ready s':>15}{'imports':>9}{'build_core':>12}{'Runtime.start':>15}"
              f"{'peak RSS MB':>13}{'runs (spawn→ready)':>26}")
    out(header)
    out("  " + "-" * (len(header) - 2))
    for label in ("small", "big"):
        m = r[label]["median"]
        runs = ", ".join(f"{c['spawn_to_ready']:.2f}" for c in r[label]["runs"])
        out(f"  {r[label]['groups']:>8,}{m['spawn_to_ready']:>15.2f}{m['imports']:>9.2f}{m['build_core']:>12.3f}"
            f"{m['runtime_start']:>15.3f}{r[label]['peak_rss_mb']:>13.0f}{runs:>26}")
    big, small = r["big"]["median"], r["small"]["median"]
    out(f"  {r['big']['groups']:,} groups / 100 groups: "
        f"start-up x{big['spawn_to_ready'] / small['spawn_to_ready']:.2f}, "
        f"peak RSS x{r['big']['peak_rss_mb'] / r['small']['peak_rss_mb']:.2f} (median of the runs; spawn→ready is "
        "from just before spawning the interpreter to Runtime.start() returning; peak RSS is the child's VmHWM: "
        "its ru_maxrss would include this process's RSS, which Linux carries across the fork and exec)")


# --------------------------------------------------------------------------
# phase 4: takeover

def takeover_times(dbs: Databases, sizes: Sizes) -> dict:
    """Two `commons-bot run` processes on one PostgreSQL database with the Telegram emulator; the active
    one gets SIGKILL (its whole process group), the standby takes over; the killed one is started again
    as the new standby. As in tests/test_standby.py, the takeover is the standby's first getUpdates call
    after the kill."""
    if dbs.pg is None:
        out("  takeover: PostgreSQL only (a second process on one SQLite file is refused); skipped")
        return {}
    return asyncio.run(_takeover(dbs.new("takeover"), Path(dbs.tmp.name), sizes.takeover_runs))


async def _takeover(url: str, workdir: Path, runs: int) -> dict:
    from tests.telegram_crash import FIRST_MEMBER, GROUP, BotProcess
    from tests.telegram_emulator import BotApiEmulator

    rng = random.Random(SEED + 4)
    processes: list = []
    kill_to_poll, kill_to_reply = [], []

    def logged(process, words: str) -> bool:
        return process.log.exists() and words in process.log.read_text()

    async def until(predicate, timeout: float, what: str, *watched) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            for process in watched:
                if not process.running:
                    raise BenchFailure(f"takeover: {process.log.name} exited ({process.process.returncode}) while "
                                       f"waiting for {what}; see its log:\n{process.log.read_text()[-3000:]}")
            if time.monotonic() > deadline:
                logs = "".join(f"\n--- {process.log.name} (end) ---\n{process.log.read_text()[-1500:]}"
                               for process in watched if process.log.exists())
                raise BenchFailure(f"takeover: waited {timeout:g} s for {what}{logs}")
            await asyncio.sleep(0.02)

    async with BotApiEmulator() as emu:
        config = workdir / "takeover.toml"
        config.write_text(f'[database]\nurl = "{url}"\n[telegram]\ntoken = "{emu.token}"\n'
                          f'base_url = "{emu.base_url}"\n[scheduler]\nsweep_interval = "30s"\n')
        emu.add_chat(GROUP, "Operations bench", member_count=3)
        emu.add_user(FIRST_MEMBER, "Member", last_name="1")

        def new(tag: str):
            process = BotProcess(config, workdir / f"bot-{tag}.log")
            processes.append(process)
            return process

        def polled_since(at: float) -> float | None:
            return next((t for method, t in emu.calls if method == "getUpdates" and t >= at), None)

        def reply_to(message_id: int) -> dict | None:
            return next((s for s in emu.sent if s["chat_id"] == GROUP and s["reply_to"] == message_id), None)

        try:
            a, b = new("0a"), new("0b")
            await a.start()
            await b.start()
            await until(lambda: polled_since(0) is not None and (logged(a, "standing by") or logged(b, "standing by")),
                        90, "one process to serve and the other to stand by", a, b)
            active, standby = (b, a) if logged(a, "standing by") else (a, b)
            asked = emu.send_text(GROUP, FIRST_MEMBER, "/help")
            await until(lambda: reply_to(asked) is not None, 60, "the answer to /help", active)
            for run in range(runs):
                await until(lambda s=standby: logged(s, "standing by"), 90, "the new process to stand by", active,
                            standby)
                await asyncio.sleep(rng.uniform(0.5, 1.5))  # any phase of the standby's once-a-second look
                active.kill()
                killed_at = time.monotonic()
                asked = emu.send_text(GROUP, FIRST_MEMBER, "/proposals")
                await active.wait()
                await until(lambda k=killed_at: polled_since(k) is not None, 60, "the standby to take over", standby)
                kill_to_poll.append(polled_since(killed_at) - killed_at)
                await until(lambda m=asked: reply_to(m) is not None, 60, "the answer to /proposals", standby)
                kill_to_reply.append(reply_to(asked)["at"] - killed_at)
                if not logged(standby, "active for"):
                    raise BenchFailure(f"takeover: {standby.log.name} polls but never logged 'active for'")
                out(f"  run {run + 1}: kill -9 → first getUpdates of the standby {kill_to_poll[-1]:.2f} s, "
                    f"→ answer to /proposals sent at the kill {kill_to_reply[-1]:.2f} s")
                restarted = new(f"{run + 1}")
                await restarted.start()
                active, standby = standby, restarted
        finally:
            for process in processes:
                await process.finish()
    return dict(runs=runs, poll=sorted(kill_to_poll), reply=sorted(kill_to_reply))


def report_takeover(r: dict) -> None:
    if not r:
        return
    poll, reply = r["poll"], r["reply"]
    out(f"  {r['runs']} kills: kill → first getUpdates median {_median(poll):.2f} s, max {poll[-1]:.2f} s; "
        f"kill → answer to a command sent at the kill median {_median(reply):.2f} s, max {reply[-1]:.2f} s "
        "(standby looks once a second: bot/standby.py POLL_SECONDS)")


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    n = len(ordered)
    return (ordered[(n - 1) // 2] + ordered[n // 2]) / 2


# --------------------------------------------------------------------------
# one backend, and the summary table

PHASES = ("load", "catchup", "startup", "takeover")


def bench_backend(backend: str, sizes: Sizes, phases: tuple[str, ...], catchup: tuple[str, ...]) -> dict:
    dbs = Databases(backend)
    summary: dict = dict(backend=backend)
    aps = logging.getLogger("apscheduler")
    aps.addHandler(SKIPPED)
    aps.propagate = False
    try:
        server = server_description(backend, dbs)
        out(f"=== backend: {backend} ({server}) ===")
        for line in common.machine({}):
            out(line)
        out(f"imports (bot.app, SQLAlchemy …): {_T_IMPORTED - _T_PROCESS:.2f} s, not included")
        for phase in phases:
            t0 = time.perf_counter()
            load_before = os.getloadavg()[0]
            if phase == "load":
                out("\n[1] reply latency under scheduled load")
                summary["load"] = asyncio.run(phase_load(dbs, sizes))
                report_load(summary["load"])
            elif phase == "catchup":
                out("\n[2] catch-up of a day of downtime")
                summary["catchup"] = asyncio.run(phase_catchup(dbs, sizes, catchup))
                report_catchup(summary["catchup"])
            elif phase == "startup":
                out(f"\n[3] start-up time and memory, {sizes.startup_groups:,} groups beside 100")
                summary["startup"] = phase_startup(dbs, sizes)
                report_startup(summary["startup"])
            elif phase == "takeover":
                out("\n[4] takeover after kill -9 of the active process")
                summary["takeover"] = takeover_times(dbs, sizes)
                report_takeover(summary["takeover"])
            spent = time.perf_counter() - t0
            summary.setdefault("phase_seconds", {})[phase] = spent
            if SKIPPED.count:
                out(f"  APScheduler logged {SKIPPED.count:,} warnings 'Execution of job \"Scheduler.run_now\" skipped: "
                    "maximum number of running instances reached' (counted here, not printed)")
                summary.setdefault("skipped_wakeups", {})[phase] = SKIPPED.count
                SKIPPED.count = 0
            out(f"  (phase wall time {spent:.1f} s; 1-minute load average {load_before:.2f} at its start, "
                f"{os.getloadavg()[0]:.2f} at its end, on {os.cpu_count()} CPUs)")
        summary["peak_rss_mb"] = peak_rss_mb()
        out(f"\npeak RSS of this process (phases 1-2; the PostgreSQL server not included): "
            f"{summary['peak_rss_mb']:.0f} MB")
    finally:
        dbs.close()
    return summary


def server_description(backend: str, dbs: Databases) -> str:
    if backend == "sqlite":
        import sqlite3

        return f"SQLite {sqlite3.sqlite_version}, files in a temp dir, WAL"
    version = scalar(dbs.pg.url("postgres"), "SELECT version()")
    return version.split(",")[0] + ", throwaway local server (fsync=off, synchronous_commit=off)"


def table(summaries: list[dict]) -> None:
    """One compact table, a column per backend."""
    names = [s["backend"] for s in summaries]
    lines: list[tuple[str, list[str]]] = []

    def row(label: str, get) -> None:
        cells = []
        for s in summaries:
            try:
                cells.append(get(s))
            except (KeyError, TypeError, ZeroDivisionError, IndexError):
                cells.append("—")
        if any(c != "—" for c in cells):
            lines.append((label, cells))

    row("vote p50 / p99 idle (ms)", lambda s: f"{s['load']['idle']['p50']:.2f} / {s['load']['idle']['p99']:.2f}")
    row("vote p50 / p90 / p99 / max under load (ms)",
        lambda s: "{p50:.1f} / {p90:.1f} / {p99:.1f} / {max:,.0f}".format(**s["load"]["load"]))
    row("p99 load / p99 idle (target ≤ 2)", lambda s: f"x{s['load']['load']['p99'] / s['load']['idle']['p99']:.2f}")
    row("due work (audits + lapses): run_due total",
        lambda s: f"{s['load']['due_seconds']:.1f} s ({s['load']['audits']:,} + {s['load']['mandates']:,})")
    row("catch-up, restart a day later",
        lambda s: f"{s['catchup']['restart']['seconds']:.1f} s, "
                  f"{s['catchup']['restart']['items'] / s['catchup']['restart']['seconds']:,.0f} items/s")
    row("catch-up, running bot (run_due)",
        lambda s: f"{s['catchup']['running']['seconds']:.1f} s, "
                  f"{s['catchup']['running']['items'] / s['catchup']['running']['seconds']:,.0f} items/s")
    row("start-up, 100 groups (s / peak MB)",
        lambda s: f"{s['startup']['small']['median']['spawn_to_ready']:.2f} / "
                  f"{s['startup']['small']['peak_rss_mb']:.0f}")
    row("start-up, many groups (s / peak MB)",
        lambda s: f"{s['startup']['big']['groups']:,}: {s['startup']['big']['median']['spawn_to_ready']:.2f} / "
                  f"{s['startup']['big']['peak_rss_mb']:.0f}")
    row("takeover kill → getUpdates median / max",
        lambda s: f"{_median(s['takeover']['poll']):.2f} / {s['takeover']['poll'][-1]:.2f} s "
                  f"({s['takeover']['runs']} runs)")
    row("takeover kill → reply median / max",
        lambda s: f"{_median(s['takeover']['reply']):.2f} / {s['takeover']['reply'][-1]:.2f} s")
    row("wall time", lambda s: f"{sum(s['phase_seconds'].values()):.0f} s")
    width = max(len(label) for label, _ in lines) + 2 if lines else 20
    widths = [max(len(name), *(len(cells[i]) for _, cells in lines)) + 2 for i, name in enumerate(names)]
    out("\n=== summary ===")
    out(f"{'':<{width}}" + "".join(f"{name:>{w}}" for name, w in zip(names, widths, strict=True)))
    for label, cells in lines:
        out(f"{label:<{width}}" + "".join(f"{cell:>{w}}" for cell, w in zip(cells, widths, strict=True)))


def run_both(argv: list[str]) -> int:
    """Each backend in a process of its own (so each peak RSS is that backend's), then one table."""
    status = 0
    summaries = []
    with tempfile.TemporaryDirectory(prefix="commons-ops-summary-") as directory:
        for backend in ("sqlite", "postgresql"):
            path = Path(directory) / f"{backend}.json"
            run = subprocess.run([sys.executable, str(Path(__file__).resolve()),
                                  *common.replace_backend(argv, backend), "--summary-file", str(path)])
            status = status or run.returncode
            if path.exists():
                summaries.append(json.loads(path.read_text()))
    if summaries:
        table(summaries)
    return status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="sqlite")
    parser.add_argument("--quick", action="store_true", help="~20x smaller smoke run")
    parser.add_argument("--only", nargs="+", choices=PHASES, help="run only these phases (default: all)")
    parser.add_argument("--load-seconds", type=float, help="how long votes go on while the due work runs "
                        "(default 180; --quick 30); the due work itself always runs to the end")
    parser.add_argument("--takeover-runs", type=int, help="kills in the takeover phase (default 10; --quick 3)")
    parser.add_argument("--catchup", choices=("running", "restart", "both"),
                        help="catch-up variants: a running bot's run_due(), a restart's Runtime.start(), or both "
                             "(default: running; --quick: both)")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--child-startup", metavar="URL", help="(internal) start a Runtime on URL, print JSON")
    parser.add_argument("--summary-file", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child_startup:
        print("RESULT " + json.dumps(child_startup(args.child_startup)), flush=True)
        return 0
    argv_list = list(argv if argv is not None else sys.argv[1:])
    if args.backend == "both":
        return run_both(argv_list)

    sizes = make_sizes(args)
    phases = tuple(p for p in PHASES if args.only is None or p in args.only)
    out(f"Commons operations benchmark — {time.strftime('%Y-%m-%d %H:%M:%S')}"
        f"{' (quick)' if args.quick else ''}")
    try:
        catchup = args.catchup or ("both" if args.quick else "running")
        variants = ("running", "restart") if catchup == "both" else (catchup,)
        summary = bench_backend(args.backend, sizes, phases, variants)
    except BenchFailure as failure:
        print(f"BENCH FAILED ({args.backend}): {failure}", file=sys.stderr, flush=True)
        return 2
    if args.summary_file:
        Path(args.summary_file).write_text(json.dumps(summary, default=str))
    else:
        table([summary])
    met = summary.get("load", {}).get("targets_met", True)
    return 1 if (args.strict and not met) else 0


if __name__ == "__main__":
    sys.exit(main())
