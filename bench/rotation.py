#!/usr/bin/env python
"""Rotation scheduler benchmark: many groups, many mandates, a clock that runs for months.

Builds a database with 10,000 groups × 5 roles, one open mandate per role (50,000
mandates) ending at seeded random times spread over the next 90 days, then measures
what the app's scheduler does with it:

1. start-up: `bot.app.build_core` plus `bot.runtime.Runtime.start()` (the overdue work,
   the outbox flush, `jobs.next_due`, the APScheduler start), once with nothing overdue
   and once after the bot was down for a day;
2. lateness: a `ManualClock` moves in sweep steps (30 s) for 100 simulated days, calling
   `jobs.run_due_work(core)` at every tick, and each warning and lapse is compared with its
   due time;
3. memory: peak RSS of the process.

    python bench/rotation.py                        # SQLite, full size
    python bench/rotation.py --backend both         # SQLite, then a throwaway PostgreSQL
    python bench/rotation.py --quick --backend both # ~1/20 scale smoke run (500 groups)
    python bench/rotation.py --quick --profile      # cProfile of the run_due_work calls

See bench/README.md ("Rotation scheduler benchmark") for what is measured and the targets.
"""

from __future__ import annotations

import time

_T_PROCESS = time.perf_counter()

import argparse  # noqa: E402
import asyncio  # noqa: E402
import cProfile  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import random  # noqa: E402
import resource  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from array import array  # noqa: E402
from datetime import datetime, timedelta, timezone  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # so `tests.pgserver` imports

from sqlalchemy import insert  # noqa: E402
from sqlalchemy import text as sql_text  # noqa: E402

import bot.app  # noqa: E402
from bench import common  # noqa: E402
from bot.clock import ManualClock  # noqa: E402
from bot.config import DefaultsConfig  # noqa: E402
from bot.durations import format_duration, parse_duration  # noqa: E402
from bot.governance import roles  # noqa: E402
from bot.governance.settings import GroupSettings  # noqa: E402
from bot.runtime import Runtime  # noqa: E402
from scheduler import jobs  # noqa: E402
from storage.db import Database  # noqa: E402
from storage.models import Group, Mandate, Member, Role  # noqa: E402

_T_IMPORTED = time.perf_counter()

PLATFORM = "bench"
SEED = 42
START = datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc)  # ManualClock's default start
SPREAD = timedelta(days=90)  # mandates end uniformly within this window after START
TERM = timedelta(days=90)  # every role's term; a mandate started TERM before it ends (so before START)
ROLE_NAMES = ("facilitator", "treasurer", "secretary", "host", "caretaker")
BATCH = 5000  # rows per executemany

# Targets (see README).
START_UP_TARGET_S = 5.0
RSS_TARGET_MB = 300.0
LATENESS_TARGET_SWEEPS = 2.0  # p99 lateness < this × the sweep interval


def rss_now_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def peak_rss_mb() -> float:
    """ru_maxrss (KiB on Linux), or the current RSS if the kernel has not caught up with it yet."""
    return max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, rss_now_mb())


def warnings_setting() -> tuple[timedelta, ...]:
    """The default `mandate_warnings` (7d 1d), parsed exactly as a group's settings are."""
    return GroupSettings.from_values(DefaultsConfig().canonical()).mandate_warnings


def role_name(r: int) -> str:
    return ROLE_NAMES[r] if r < len(ROLE_NAMES) else f"role{r + 1}"


# --------------------------------------------------------------------------
# setup (own process, not timed as start-up): bulk inserts into the app's tables

def setup_database(url: str, groups: int, roles_per_group: int) -> dict:
    """Migrate, then insert groups, members, roles and one open mandate per role with SQLAlchemy Core.

    Ids are given explicitly (group g has id g+1; member, role and mandate g*R+r+1), so the
    mandate behind every announcement is known without a lookup. A mandate's next warning is
    what the app would have stored for a bot that has been running all along: warnings whose
    time had passed before START count as sent (`next_warning(ends_at, warnings, START, START)`),
    so nothing is overdue at START.
    """
    t0 = time.perf_counter()
    db = Database(url)
    db.upgrade()
    migrated = time.perf_counter() - t0
    warnings = warnings_setting()
    rng = random.Random(SEED)
    spread_us = int(SPREAD / timedelta(microseconds=1))
    total = {"groups": 0, "members": 0, "roles": 0, "mandates": 0}
    with db.engine.begin() as conn:
        for first in range(0, groups, max(1, BATCH // roles_per_group)):
            last = min(groups, first + max(1, BATCH // roles_per_group))
            group_rows, member_rows, role_rows, mandate_rows = [], [], [], []
            for g in range(first, last):
                # The audit far beyond the simulated days and no digest: each tick's items are then
                # the mandates' alone, which the per-tick check of announcements below relies on.
                group_rows.append(dict(id=g + 1, platform=PLATFORM, chat_id=f"g{g}", title=f"Bench group {g}",
                                       created_at=START - TERM - timedelta(days=1),
                                       next_audit_at=START + timedelta(days=3650), next_digest_at=None))
                for r in range(roles_per_group):
                    key = g * roles_per_group + r + 1
                    name = role_name(r)
                    member_rows.append(dict(id=key, group_id=g + 1, user_id=f"u{r}", display_name=f"Member {r}",
                                            active=True, joined_at=START - TERM - timedelta(days=1)))
                    role_rows.append(dict(id=key, group_id=g + 1, key=name, name=name,
                                          term_seconds=int(TERM.total_seconds()), seats=1, max_terms=1,
                                          fill="election", handover=None, trainees_required=0,
                                          created_at=START - TERM - timedelta(days=1), retired_at=None))
                    ends_at = START + timedelta(microseconds=rng.randrange(1, spread_us + 1))
                    started = ends_at - TERM  # <= START
                    mandate_rows.append(dict(
                        id=key, group_id=g + 1, role_id=key, member_id=key, seat=1, filled_by="election",
                        term_number=1, renewals=0, started_at=started, term_started_at=started, ends_at=ends_at,
                        next_warning_at=roles.next_warning(ends_at, warnings, START, START),
                        ended_at=None, end_reason=None))
            conn.execute(insert(Group.__table__), group_rows)
            conn.execute(insert(Member.__table__), member_rows)
            conn.execute(insert(Role.__table__), role_rows)
            conn.execute(insert(Mandate.__table__), mandate_rows)
            total["groups"] += len(group_rows)
            total["members"] += len(member_rows)
            total["roles"] += len(role_rows)
            total["mandates"] += len(mandate_rows)
        if db.backend == "postgresql":
            for table in ("groups", "members", "roles", "mandates"):
                conn.execute(sql_text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                      f"(SELECT max(id) FROM {table}))"))
    if db.backend == "postgresql":
        # A live server's autovacuum would have analysed tables this size; SQLite gets no ANALYZE,
        # as the app never runs one.
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sql_text("ANALYZE"))
    db.dispose()
    total["seconds"] = time.perf_counter() - t0
    total["migrate_seconds"] = migrated
    return total


# --------------------------------------------------------------------------
# start-up, as `commons-bot run` does it (without adapters)

class TimingClock(ManualClock):
    """A ManualClock that notes the wall time of every now() call while `stamps` is a list.

    run_due_work reads the clock once at the start of every iteration, so the (i+1)-th
    stamp of a call is when its i-th item was committed."""

    def __init__(self, start: datetime) -> None:
        super().__init__(start)
        self.stamps: list[float] | None = None

    def now(self) -> datetime:
        if self.stamps is not None:
            self.stamps.append(time.perf_counter())
        return self.current


def start_up(url: str, clock: ManualClock, sweep: timedelta) -> tuple[object, dict]:
    """Build the core and start the runtime (no adapters) inside asyncio.run; returns the core and timings.

    `Runtime.start()` runs the overdue work once (`jobs.run_due_work`), flushes the outbox
    (nothing to flush to: no adapters, so nothing is sent), asks `jobs.next_due` and starts the
    APScheduler `scheduler.runner.Scheduler` with its sweep and its wake-up. The pieces are
    timed by wrapping the `jobs` functions for the duration of the start-up."""
    timings: dict = {"run_due_work": 0.0, "next_due": 0.0, "items": 0}
    original_run, original_next = jobs.run_due_work, jobs.next_due

    def timed_run(core, *args, **kwargs):
        t = time.perf_counter()
        done = original_run(core, *args, **kwargs)
        timings["run_due_work"] += time.perf_counter() - t
        timings["items"] += done
        return done

    def timed_next(core, *args, **kwargs):
        t = time.perf_counter()
        due = original_next(core, *args, **kwargs)
        timings["next_due"] += time.perf_counter() - t
        timings["next_due_value"] = due
        return due

    async def main():
        t0 = time.perf_counter()
        core = bot.app.build_core(url, clock, DefaultsConfig())
        t1 = time.perf_counter()
        runtime = Runtime(core, [], sweep)
        # No adapter: serve the bench groups' platform by hand, or the scheduled work would be narrowed
        # to no group at all (bot/governance/scope.py) and start-up would look at nothing.
        runtime.platforms = (PLATFORM,)
        jobs.run_due_work, jobs.next_due = timed_run, timed_next
        try:
            await runtime.start()
        finally:
            jobs.run_due_work, jobs.next_due = original_run, original_next
        t2 = time.perf_counter()
        running = runtime.scheduler._aps.running
        jobs_scheduled = sorted(job.id for job in runtime.scheduler._aps.get_jobs())
        bot.app.freeze_start_up_objects()  # as `commons-bot run` does right after start()
        t3 = time.perf_counter()
        await runtime.stop()  # the simulation below drives the clock itself
        timings.update(build_core=t1 - t0, runtime_start=t2 - t1, gc_freeze=t3 - t2, total=t3 - t0,
                       scheduler_running=running, aps_jobs=jobs_scheduled)
        return core

    core = asyncio.run(main())
    return core, timings


# --------------------------------------------------------------------------
# the clock runs

def simulate(core, clock: TimingClock, sweep: timedelta, days: int, profiler: cProfile.Profile | None,
             progress: bool) -> dict:
    """Sweep ticks at START + k × sweep. After each tick's run_due_work, `jobs.next_due` says when
    the next work falls due, and the clock jumps straight to the first tick at or after it (the
    ticks in between would find nothing: nothing changes the database but this loop)."""
    start = clock.now()
    end = start + timedelta(days=days)
    sweep_s = sweep.total_seconds()
    perf = time.perf_counter
    tick_s, n_items, call_wall, offsets = array("d"), array("l"), array("d"), array("d")
    next_due_wall = array("d")
    idle_wall = array("d")  # run_due_work calls that found nothing (only the first tick)
    ticks_run = 0
    limit_hits = fallbacks = 0
    next_report = 10
    last_tick = start
    t_begin = perf()
    while clock.now() <= end:
        stamps: list[float] = []
        clock.stamps = stamps
        if profiler is not None:
            profiler.enable()
        t0 = perf()
        done = jobs.run_due_work(core)
        t1 = perf()
        clock.stamps = None
        due = jobs.next_due(core)
        t2 = perf()
        if profiler is not None:
            profiler.disable()
        ticks_run += 1
        next_due_wall.append(t2 - t1)
        now = last_tick = clock.now()
        if done:
            tick_s.append((now - start).total_seconds())
            n_items.append(done)
            call_wall.append(t1 - t0)
            if len(stamps) == done + 1:
                offsets.extend(s - t0 for s in stamps[1:])
            else:  # someone else read the clock: fall back to the upper bound (whole call)
                offsets.extend([t1 - t0] * done)
                fallbacks += 1
            if done >= 10_000:
                limit_hits += 1
        else:
            idle_wall.append(t1 - t0)
        # the next tick
        step = now + sweep
        if due is not None and due > step:
            k = math.ceil((due - start).total_seconds() / sweep_s)
            step = start + timedelta(seconds=k * sweep_s)
        elif due is None:
            step = end + sweep  # nothing left to do, ever
        clock.advance(step - now)
        if progress:
            elapsed_days = (clock.now() - start) / timedelta(days=1)
            while elapsed_days >= next_report and next_report <= days:
                print(f"  … day {next_report}: {sum(n_items):,} items, {ticks_run:,} ticks, "
                      f"{perf() - t_begin:.0f} s", file=sys.stderr, flush=True)
                next_report += 10
    wall = perf() - t_begin
    return dict(wall=wall, tick_s=tick_s, n_items=n_items, call_wall=call_wall, offsets=offsets,
                next_due_wall=next_due_wall, idle_wall=idle_wall, ticks_run=ticks_run,
                ticks_total=int((end - start).total_seconds() // sweep_s) + 1, limit_hits=limit_hits,
                fallbacks=fallbacks,
                last_tick_s=(last_tick - start).total_seconds())


class BenchFailure(Exception):
    pass


def analyse(core, sim: dict, sweep: timedelta, warnings: tuple[timedelta, ...]) -> dict:
    """Read the outbox back (in id order = processing order) and compute each item's lateness.

    lateness = (tick time − due time) + (wall time from the start of that tick's run_due_work
    call until the item was committed)."""
    offsets_by = {w: format_duration(w) for w in warnings}
    engine = core.db.engine
    with engine.connect() as conn:
        rows = conn.execute(sql_text("SELECT id, ends_at, ended_at, end_reason FROM mandates ORDER BY id")).all()
    mandates = len(rows)
    last = sim["last_tick_s"]  # everything due up to the last tick run must have been processed
    ends = array("d", [0.0]) * (mandates + 1)
    problems = []
    open_left = 0
    for mandate_id, ends_at, ended_at, reason in rows:
        ends_at = _aware(ends_at)
        ends[mandate_id] = (ends_at - START).total_seconds()
        if ends[mandate_id] > last:
            ok = ended_at is None
            open_left += 1
        else:
            ok = ended_at is not None and reason == roles.EXPIRED and _aware(ended_at) == ends_at
        if not ok and len(problems) < 5:
            problems.append(f"mandate {mandate_id}: ended_at {ended_at}, reason {reason!r} "
                            f"(expected {'expired at' if ends[mandate_id] <= last else 'still open, ends'} {ends_at})")
    del rows
    expected_lapses = mandates - open_left
    expected_warnings = {name: sum(1 for m in range(1, mandates + 1) if 0 < ends[m] - off.total_seconds() <= last)
                         for off, name in offsets_by.items()}

    lateness, clock_part, processing = array("d"), array("d"), array("d")
    kinds = {"lapse": 0, **{f"warning {name}": 0 for name in offsets_by.values()}, "dm": 0, "other": 0}
    seen_lapse = bytearray(mandates + 1)
    step, position = 0, 0
    tick_s, n_items, item_offsets = sim["tick_s"], sim["n_items"], sim["offsets"]
    first_offset = 0
    with engine.connect() as conn:
        result = conn.execution_options(stream_results=True, yield_per=5000).execute(sql_text(
            "SELECT id, dedupe_key, created_at FROM outbox WHERE dedupe_key IS NOT NULL ORDER BY id"))
        for _, key, created_at in result:
            if key.endswith(":dm"):
                kinds["dm"] += 1
                continue
            if not key.startswith("mandate:"):
                kinds["other"] += 1
                continue
            while step < len(n_items) and position >= n_items[step]:
                first_offset += n_items[step]
                step, position = step + 1, 0
            if step >= len(n_items):
                raise BenchFailure(f"more announcements than processed items (at {key!r})")
            processed_s = (_aware(created_at) - START).total_seconds()
            if abs(processed_s - tick_s[step]) > 1e-3:
                raise BenchFailure(f"announcement {key!r} created at {processed_s} s, expected the tick at "
                                   f"{tick_s[step]} s")
            head, _, tail = key.partition(":ends:")
            mandate_id = int(key.split(":")[1])
            if tail:
                ends_iso, _, due_iso = tail.partition(":warn:")
                due_s = (datetime.fromisoformat(due_iso) - START).total_seconds()
                offset = timedelta(seconds=round(ends[mandate_id] - due_s, 6))
                name = offsets_by.get(offset)
                if name is None or abs((datetime.fromisoformat(ends_iso) - START).total_seconds()
                                       - ends[mandate_id]) > 1e-6:
                    raise BenchFailure(f"warning {key!r} is not one of the mandate's warning times")
                kinds[f"warning {name}"] += 1
            elif key.endswith(":lapsed"):
                due_s = ends[mandate_id]
                if seen_lapse[mandate_id]:
                    raise BenchFailure(f"mandate {mandate_id} lapsed twice")
                seen_lapse[mandate_id] = 1
                kinds["lapse"] += 1
            else:
                kinds["other"] += 1
                position += 1
                continue
            late_clock = tick_s[step] - due_s
            if late_clock < -1e-6:
                raise BenchFailure(f"{key!r} was processed {-late_clock:.3f} s before it was due")
            wall = item_offsets[first_offset + position]
            clock_part.append(late_clock)
            processing.append(wall)
            lateness.append(late_clock + wall)
            position += 1
    processed = sum(n_items)
    counted = len(lateness) + kinds["other"]
    if counted != processed:
        raise BenchFailure(f"run_due_work reported {processed:,} items, the outbox holds {counted:,}")
    if kinds["lapse"] != expected_lapses:
        problems.append(f"{kinds['lapse']:,} lapses announced, expected {expected_lapses:,}")
    for name, count in expected_warnings.items():
        if kinds[f"warning {name}"] != count:
            problems.append(f"{kinds[f'warning {name}']:,} warnings {name} announced, expected {count:,}")
    if kinds["dm"] != sum(expected_warnings.values()):
        problems.append(f"{kinds['dm']:,} private warnings, expected {sum(expected_warnings.values()):,}")
    if problems:
        raise BenchFailure("; ".join(problems))
    return dict(lateness=sorted(lateness), clock_part=sorted(clock_part), processing=sorted(processing), kinds=kinds,
                expected_warnings=expected_warnings, expected_lapses=expected_lapses, open_left=open_left,
                mandates=mandates)


def _aware(value) -> datetime:
    if isinstance(value, str):  # SQLite through a text() query
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


pct = common.pct


# --------------------------------------------------------------------------
# report

def machine() -> list[str]:
    import apscheduler

    return common.machine({"APScheduler": apscheduler.__version__})


def fmt_start(label: str, t: dict) -> str:
    return (f"{label}: {t['total']:.2f} s = build_core {t['build_core']:.2f} s + Runtime.start "
            f"{t['runtime_start']:.2f} s (run_due_work {t['run_due_work']:.2f} s for {t['items']:,} items, "
            f"next_due {t['next_due']:.3f} s, the rest {t['runtime_start'] - t['run_due_work'] - t['next_due']:.3f} s) "
            f"+ gc.freeze {t['gc_freeze']:.2f} s; scheduler running: {t['scheduler_running']}, "
            f"jobs {', '.join(t['aps_jobs'])}")


# --------------------------------------------------------------------------
# one backend

def run_child(args: list[str]) -> dict:
    """Run this script in a child process (setup, or a cold start-up) and return its RESULT line."""
    result = subprocess.run([sys.executable, str(Path(__file__).resolve()), *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"child {args[:1]} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    for line in result.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    raise SystemExit(f"child {args[:1]} printed no result:\n{result.stdout}\n{result.stderr}")


def bench_backend(backend: str, groups: int, roles_per_group: int, sweep: timedelta, days: int,
                  downtime: timedelta, profile_path: str | None, progress: bool) -> bool:
    pg = tmp = core = None
    try:
        if backend == "sqlite":
            tmp = tempfile.TemporaryDirectory(prefix="commons-rotation-")
            url_run, url_down = f"sqlite:///{tmp.name}/run.db", f"sqlite:///{tmp.name}/down.db"
        else:
            pg = common.start_postgres()
            url_run, url_down = pg.create_database("rotation_run"), pg.create_database("rotation_down")

        # Setup in child processes, so this process's peak RSS is the app's alone.
        setup = run_child(["--_setup", url_run, "--groups", str(groups), "--roles", str(roles_per_group)])
        run_child(["--_setup", url_down, "--groups", str(groups), "--roles", str(roles_per_group)])
        # The day-of-downtime start-up, cold, in its own process too.
        down = run_child(["--_downtime", url_down, "--sweep", f"{int(sweep.total_seconds())}s",
                          "--downtime", f"{int(downtime.total_seconds())}s"])

        clock = TimingClock(START)
        rss_before = rss_now_mb()
        core, cold = start_up(url_run, clock, sweep)
        rss_started, peak_started = rss_now_mb(), peak_rss_mb()
        server = common.describe_server(core.db.engine, backend)

        profiler = cProfile.Profile() if profile_path else None
        sim = simulate(core, clock, sweep, days, profiler, progress)
        rss_sim, peak_sim = rss_now_mb(), peak_rss_mb()
        warnings = warnings_setting()
        result = analyse(core, sim, sweep, warnings)
        met = report(backend, server, groups, roles_per_group, sweep, days, downtime, setup, cold, down, sim, result,
                     dict(before=rss_before, started=rss_started, peak_started=peak_started, sim=rss_sim,
                          peak_sim=peak_sim))
        if profiler is not None:
            common.print_profile(profiler, profile_path, "the simulation's run_due_work + next_due calls", ROOT)
        return met
    finally:
        if core is not None:
            core.db.dispose()
        if pg is not None:
            pg.stop()
        if tmp is not None:
            tmp.cleanup()


def report(backend, server, groups, roles_per_group, sweep, days, downtime, setup, cold, down, sim, result,
           rss) -> bool:
    out = print
    sweep_s = sweep.total_seconds()
    mandates = result["mandates"]
    out(f"=== backend: {backend} ({server}) ===")
    out(f"workload: {groups:,} groups x {roles_per_group} roles, {mandates:,} open mandates ending uniformly over "
        f"{SPREAD.days} days (seed {SEED}), warnings {DefaultsConfig().canonical()['mandate_warnings']}, "
        f"sweep {sweep_s:g} s, {days} simulated days; single thread")
    for line in machine():
        out(line)
    out(f"setup (bulk inserts in a child process, not part of start-up): {setup['seconds']:.1f} s "
        f"({setup['groups']:,} groups, {setup['members']:,} members, {setup['roles']:,} roles, "
        f"{setup['mandates']:,} mandates)")
    out(f"imports before start-up (bot.app, scheduler, SQLAlchemy, APScheduler …; not included): "
        f"{_T_IMPORTED - _T_PROCESS:.2f} s in this process")
    out("")
    out("start-up (build_core + Runtime.start without adapters + gc.freeze, in asyncio.run):")
    out("  " + fmt_start("nothing overdue", cold))
    out("  " + fmt_start(f"after {format_duration(downtime)} down (own process)", down))
    out(f"  next due after start-up: {cold.get('next_due_value')}")
    ok_start = cold["total"] < START_UP_TARGET_S
    ok_down = down["total"] < START_UP_TARGET_S
    out(f"target: start-up < {START_UP_TARGET_S:g} s: {'MET' if ok_start else 'MISSED'} ({cold['total']:.2f} s); "
        f"after {format_duration(downtime)} down: {'met' if ok_down else 'missed'} ({down['total']:.2f} s, "
        f"{down['items']:,} overdue items "
        f"at {down['items'] / down['run_due_work'] if down['run_due_work'] else float('nan'):,.0f} items/s)")
    out("")
    items = sum(sim["n_items"])
    kinds = result["kinds"]
    late, clock_part = result["lateness"], result["clock_part"]
    calls = sorted(sim["call_wall"])
    next_due = sorted(sim["next_due_wall"])
    work_time = sum(sim["call_wall"]) + sum(sim["idle_wall"])
    out(f"clock run: {days} days in {sweep_s:g} s ticks = {sim['ticks_total']:,} ticks; {sim['ticks_run']:,} ticks run "
        f"(the others had nothing due, so they were skipped), {len(calls):,} with work")
    out(f"  wall time {sim['wall']:.1f} s; {items:,} items processed = {items / sim['wall']:,.0f} items/s overall; "
        f"inside run_due_work {work_time:.1f} s = {items / work_time if work_time else float('nan'):,.0f} items/s "
        f"({1000 * work_time / items if items else float('nan'):.2f} ms per item)")
    out(f"  items: {kinds['lapse']:,} lapses, " + ", ".join(
        f"{kinds[k]:,} {k}s" for k in kinds if k.startswith("warning ")) + f" (+ {kinds['dm']:,} private copies of "
        f"the warnings in the outbox); expected {result['expected_lapses']:,} lapses and "
        + ", ".join(f"{n:,} warnings {k}" for k, n in result["expected_warnings"].items())
        + " (warnings due before the clock start count as sent)")
    out(f"  run_due_work per tick with work: p50 {1000 * pct(calls, 50):.2f} ms, p99 {1000 * pct(calls, 99):.2f} ms, "
        f"max {1000 * calls[-1] if calls else float('nan'):.2f} ms; most items in one tick: "
        f"{max(sim['n_items'], default=0)}")
    out(f"  next_due after every tick: p50 {1000 * pct(next_due, 50):.2f} ms, p99 {1000 * pct(next_due, 99):.2f} ms, "
        f"max {1000 * next_due[-1] if next_due else float('nan'):.2f} ms")
    if sim["fallbacks"]:
        out(f"  {sim['fallbacks']:,} ticks used the whole call's wall time as every item's processing time "
            "(the clock was read more often than once per item)")
    if sim["limit_hits"]:
        out(f"  run_due_work hit its 10,000-item limit {sim['limit_hits']} times")
    out("  announcements were only recorded in the outbox (no adapters: nothing sent)")
    out("")
    header = f"{'lateness (s)':<44}{'items':>9}{'p50':>9}{'p95':>9}{'p99':>9}{'max':>9}"
    out(header)
    out("-" * len(header))
    processing = result["processing"]
    for label, values in (("total: tick − due + processing", late), ("  of which: tick − due (sweep wait)", clock_part),
                          ("  of which: processing (wall)", processing)):
        out(f"{label:<44}{len(values):>9,}{pct(values, 50):>9.3f}{pct(values, 95):>9.3f}{pct(values, 99):>9.3f}"
            f"{values[-1] if values else float('nan'):>9.3f}")
    out("(pure sweep ticks: the worst case. The app also wakes at the next due time "
        "(Scheduler.wake_at), so its real lateness is about the processing part.)")
    ok_late = pct(late, 99) < LATENESS_TARGET_SWEEPS * sweep_s
    out(f"target: p99 lateness < {LATENESS_TARGET_SWEEPS:g} x sweep = {LATENESS_TARGET_SWEEPS * sweep_s:g} s: "
        f"{'MET' if ok_late else 'MISSED'} (p99 {pct(late, 99):.3f} s)")
    out("")
    out(f"RSS: {rss['before']:.0f} MB before build_core, {rss['started']:.0f} MB after start-up, "
        f"{rss['sim']:.0f} MB after the clock run")
    ok_rss = rss["peak_sim"] < RSS_TARGET_MB
    out(f"peak RSS (start-up + clock run): {rss['peak_sim']:.0f} MB (this Python process only; the PostgreSQL "
        f"server is not included)")
    out(f"target: peak RSS < {RSS_TARGET_MB:g} MB: {'MET' if ok_rss else 'MISSED'}")
    out(f"peak RSS of the {format_duration(downtime)}-down start-up process: {down['peak_rss']:.0f} MB")
    still_open = f" ({result['open_left']:,} mandates end after the last tick and are still open)" \
        if result["open_left"] else ""
    out("verified: every mandate due by the last tick lapsed once, at its end date (expired)" + still_open
        + "; every warning due by then went out once, at one of its mandate's warning times; run_due_work's "
        "item counts match the outbox")
    out("")
    return ok_start and ok_rss and ok_late


def downtime_child(url: str, sweep: timedelta, downtime: timedelta) -> dict:
    clock = ManualClock(START + downtime)
    core, timings = start_up(url, clock, sweep)
    core.db.dispose()
    timings["peak_rss"] = peak_rss_mb()
    timings["next_due_value"] = str(timings.get("next_due_value"))
    return timings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="sqlite")
    parser.add_argument("--groups", type=int)
    parser.add_argument("--roles", type=int, default=5, help="roles (and mandates) per group (default 5)")
    parser.add_argument("--sweep", default="30s", help="sweep interval (default 30s, the app's default)")
    parser.add_argument("--days", type=int, default=100, help="simulated days (default 100)")
    parser.add_argument("--downtime", default="1d", help="how long the bot was down in the second start-up "
                        "variant (default 1d)")
    parser.add_argument("--quick", action="store_true", help="~1/20 scale smoke run (500 groups)")
    parser.add_argument("--profile", metavar="FILE", nargs="?", const="rotation-profile.pstats",
                        help="cProfile the clock run's run_due_work/next_due calls; print the top 25 lines")
    parser.add_argument("--progress", action="store_true", help="print progress every 10 simulated days (stderr)")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--_setup", metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument("--_downtime", metavar="URL", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    groups = args.groups if args.groups is not None else (500 if args.quick else 10_000)
    sweep = parse_duration(args.sweep)
    downtime = parse_duration(args.downtime)
    if args.roles < 1 or groups < 1:
        raise SystemExit("--groups and --roles must be at least 1")

    if args._setup:
        print("RESULT " + json.dumps(setup_database(args._setup, groups, args.roles)))
        return 0
    if args._downtime:
        print("RESULT " + json.dumps(downtime_child(args._downtime, sweep, downtime)))
        return 0

    if args.backend == "both":
        return common.run_each_backend(__file__, list(argv if argv is not None else sys.argv[1:]))

    print(f"Commons rotation scheduler benchmark — {time.strftime('%Y-%m-%d %H:%M:%S')}", flush=True)
    try:
        met = bench_backend(args.backend, groups, args.roles, sweep, args.days, downtime, args.profile,
                            args.progress)
    except BenchFailure as failure:
        print(f"BENCH FAILED ({args.backend}): {failure}", file=sys.stderr)
        return 2
    sys.stdout.flush()
    return 1 if (args.strict and not met) else 0


if __name__ == "__main__":
    sys.exit(main())
