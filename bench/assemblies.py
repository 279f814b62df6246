#!/usr/bin/env python
"""Assemblies benchmark: `agenda` and `assemblies` on a group with 500 past assemblies, and the
reminder sweep for 10,000 groups side by side with the rotation benchmark's warning sweep.

1. Commands (in this process, through `core.handle`, one thread, no adapters): one group with
   30 members, 500 past assemblies (490 held, 10 cancelled) and 5,000 agenda items — 4,750 on
   past agendas with their positions, 150 withdrawn before a freeze, 100 open for the coming
   assembly (the most the app allows) — backed by members through `agenda_supports` rows, and
   one assembly coming in three days. Times `!agenda` and `!assemblies` (target: p99 < 20 ms)
   and, as a reference, `!agenda +n` / `!agenda -n`.
2. Reminder sweep: 10,000 groups, each with one coming assembly whose first reminder (2 days
   before, with the default `assembly_reminders` "2d 1h"; the facilitator's lottery opens at the
   same step) falls due at the same instant. The clock jumps to that instant and
   `jobs.run_due_work` runs until nothing is due. Beside it, in the same run, the rotation
   benchmark's equivalent: its own `setup_database` (10,000 groups × 1 role), every mandate's
   7-day warning moved to the same instant, the same sweep. Start-up (`bench.rotation.start_up`:
   build_core + Runtime.start + gc.freeze, with the runtime serving the groups' platform) is timed
   on both databases, each in a fresh process.

    python bench/assemblies.py                          # SQLite, full size
    python bench/assemblies.py --backend both           # SQLite, then a throwaway PostgreSQL
    python bench/assemblies.py --quick --backend both   # 250 groups, 50 timed calls (~15 + 30 s)
    python bench/assemblies.py --only sweep --profile   # cProfile of each sweep

See bench/README.md ("Assemblies") for the results.
"""

from __future__ import annotations

import time

_T_PROCESS = time.perf_counter()

import argparse  # noqa: E402
import cProfile  # noqa: E402
import gc  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from datetime import datetime, timedelta  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # so `bench` and `tests.pgserver` import

from sqlalchemy import bindparam, func, insert, select, update  # noqa: E402
from sqlalchemy import text as sql_text  # noqa: E402

import bot.app  # noqa: E402
from bench import common, rotation  # noqa: E402
from bot.clock import ManualClock  # noqa: E402
from bot.config import DefaultsConfig  # noqa: E402
from bot.events import ChatRef, MemberJoined, UserRef  # noqa: E402
from bot.governance import assemblies as assembly_rules  # noqa: E402
from bot.governance import roles as role_rules  # noqa: E402
from bot.governance.settings import GroupSettings  # noqa: E402
from bot.render.assemblies import MAX_LISTED  # noqa: E402
from scheduler import jobs  # noqa: E402
from storage.db import Database  # noqa: E402
from storage.models import AgendaItem, AgendaSupport, Assembly, Group, Mandate, Member, TaskVolunteer  # noqa: E402

_T_IMPORTED = time.perf_counter()

PLATFORM = "bench"
SEED = 42
START = rotation.START  # 2026-01-05 09:00 UTC, a Monday: the clock when the benchmark begins
WEEK = timedelta(days=7)
BATCH = 5000  # rows per executemany
SWEEP = timedelta(seconds=30)  # the app's default sweep (only for Runtime's scheduler at start-up)

# 1. commands
CHAT = ChatRef(platform=PLATFORM, chat_id="assemblies-bench")
MEMBERS = 30
UPCOMING_AT = datetime(2026, 1, 8, 19, 0, tzinfo=START.tzinfo)  # Thursday 19:00, three days after START
CANCELLED = 10  # of the past assemblies
WITHDRAWN = 150  # items withdrawn before any freeze (in the pending index, filtered out)
FACILITATORS, NOTE_TAKERS = range(0, 8), range(4, 12)  # members standing for each job (some for both)
PHRASES = ("repaint the community kitchen", "buy a second chest freezer", "move the Thursday market to 17:00",
           "rota for cleaning the hall", "a crèche during assemblies", "apply for the neighbourhood grant",
           "fix the van's brakes before winter", "open the garden on Sundays", "a welcome pack for newcomers",
           "share the tool library with the school", "solar panels on the shed roof", "a bigger notice board")
P99_TARGET_MS = 20.0

# 2. sweep
DUE = START + timedelta(hours=1)  # when every group's reminder (or warning) falls due
SWEEP_MEMBERS = 5
SWEEP_PAST = 2  # past assemblies per group (they feed "nobody twice in a row" and "newcomers first")
SWEEP_PENDING = 3  # open agenda items per group (the reminder lists them)
SWEEP_BOUND = 2  # items on each past agenda
START_UP_RUNS = 3
START_UP_TARGET_S = rotation.START_UP_TARGET_S  # the rotation benchmark's target, shown for reference


BenchFailure = common.BenchFailure


def settings_default() -> GroupSettings:
    return GroupSettings.from_values(DefaultsConfig().canonical())


def set_sequences(conn, tables: tuple[str, ...]) -> None:
    for table in tables:
        conn.execute(sql_text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                              f"(SELECT coalesce(max(id), 1) FROM {table}))"))


def analyze(db: Database) -> None:
    """On PostgreSQL, as autovacuum would on a live server; SQLite gets none, as in the app."""
    if db.backend == "postgresql":
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sql_text("ANALYZE"))


# ==========================================================================
# 1. the commands on one group with a long history

def seed_commands(core, clock: ManualClock, sender: common.Sender, backend: str, past: int, items: int,
                  pending: int) -> dict:
    """The group and its members through the core, then its history in bulk."""
    t0 = time.perf_counter()
    first_meeting = UPCOMING_AT - past * WEEK
    clock.current = first_meeting - timedelta(days=30)
    sender.run(0, "!help")
    for user in range(1, MEMBERS):
        core.handle(MemberJoined(chat=CHAT, user=UserRef(platform=PLATFORM, user_id=f"u{user}"),
                                 display_name=f"Member {user}", event_id=f"join{user}"))
    with core.db.engine.connect() as conn:
        group_id = conn.execute(select(Group.id)).scalar_one()
        member_ids = list(conn.execute(select(Member.id).where(Member.group_id == group_id)
                                       .order_by(Member.id)).scalars())
    rows = history_rows(group_id, member_ids, past, items, pending, clock.current)
    with core.db.engine.begin() as conn:
        for table, model in (("task_volunteers", TaskVolunteer), ("assemblies", Assembly),
                             ("agenda_items", AgendaItem), ("agenda_supports", AgendaSupport)):
            for first in range(0, len(rows[table]), BATCH):
                conn.execute(insert(model.__table__), rows[table][first:first + BATCH])
        if backend == "postgresql":
            set_sequences(conn, ("assemblies", "agenda_items"))
    analyze(core.db)
    clock.current = START
    facts = {name: len(value) for name, value in rows.items() if isinstance(value, list)}
    facts.update(seconds=time.perf_counter() - t0, pending=rows["pending"], upcoming=rows["upcoming"],
                 backable=rows["backable"])
    return facts


def history_rows(group_id: int, member_ids: list[int], past: int, count: int, pending: int,
                 created: datetime) -> dict:
    """Past assemblies a week apart up to the coming one, their agendas, the open items and their backers."""
    rng = random.Random(SEED)
    settings = settings_default()
    rows: dict = {"task_volunteers": [], "assemblies": [], "agenda_items": [], "agenda_supports": []}
    for job, members in (("facilitation", FACILITATORS), ("minutes", NOTE_TAKERS)):
        for m in members:
            rows["task_volunteers"].append(dict(group_id=group_id, task=job, member_id=member_ids[m], since=created))
    cancelled = set(rng.sample(range(1, past), min(CANCELLED, max(0, past - 1))))
    held, previous = [], (None, None)
    for number in range(1, past + 1):
        starts = UPCOMING_AT - (past + 1 - number) * WEEK
        row = dict(id=number, group_id=group_id, number=number, starts_at=starts, place="Community hall",
                   title=None, created_by=member_ids[0] if number == 1 else None, created_at=starts - WEEK,
                   next_due_at=None, reminded_through=starts - timedelta(hours=1), drawn_at=None, frozen_at=None,
                   started_at=None, cancelled_at=None, facilitator_id=None, note_taker_id=None,
                   facilitator_notes=None, note_taker_notes=None, minutes=None, minutes_done_at=None)
        if number in cancelled:
            row.update(cancelled_at=starts - timedelta(days=3), reminded_through=starts - timedelta(days=2))
        else:
            facilitator = rng.choice([m for m in FACILITATORS if member_ids[m] != previous[0]])
            note_taker = rng.choice([m for m in NOTE_TAKERS if member_ids[m] not in (previous[1],
                                                                                    member_ids[facilitator])])
            previous = (member_ids[facilitator], member_ids[note_taker])
            row.update(drawn_at=starts - timedelta(days=2), frozen_at=starts - timedelta(hours=1), started_at=starts,
                       facilitator_id=previous[0], note_taker_id=previous[1],
                       facilitator_notes=("Start with a round of names; the projector cable is in the blue box."
                                          if rng.random() < 0.3 else None),
                       note_taker_notes="Keep decisions in bold." if rng.random() < 0.2 else None)
            if rng.random() < 0.9:
                row.update(minutes=" ".join(rng.choice(PHRASES) + "." for _ in range(12)),
                           minutes_done_at=starts + timedelta(days=1))
            held.append(row)
        rows["assemblies"].append(row)
    upcoming = Assembly(id=past + 1, group_id=group_id, number=past + 1, starts_at=UPCOMING_AT, place="Community hall",
                        created_by=None, created_at=UPCOMING_AT - WEEK, reminded_through=UPCOMING_AT - WEEK)
    upcoming.next_due_at = assembly_rules.next_step_at(upcoming, settings)
    if upcoming.next_due_at <= START:
        raise BenchFailure(f"the coming assembly's next step ({upcoming.next_due_at}) is not after the clock start")
    rows["assemblies"].append({c.name: getattr(upcoming, c.name) for c in Assembly.__table__.columns})

    # Items: most on past agendas (about ten each), some withdrawn before a freeze, `pending` open now.
    bound = count - pending - WITHDRAWN
    if bound < 0 or not held:
        raise BenchFailure("too few items for the open and withdrawn ones, or no past assembly")
    last_freeze = held[-1]["frozen_at"]
    drafts = []  # (created_at, assembly row or None, withdrawn_at)
    for _ in range(bound):
        meeting = rng.choice(held)
        freeze = meeting["frozen_at"]
        drafts.append((freeze - timedelta(seconds=rng.uniform(60, 7 * 86400 - 3600)), meeting, None))
    span = (held[-1]["frozen_at"] - held[0]["starts_at"]).total_seconds()
    for _ in range(WITHDRAWN):
        made = held[0]["starts_at"] + timedelta(seconds=rng.uniform(0, span))
        drafts.append((made, None, made + timedelta(hours=rng.uniform(1, 48))))
    for _ in range(pending):
        drafts.append((last_freeze + timedelta(seconds=rng.uniform(60, (START - last_freeze).total_seconds())),
                       None, None))
    drafts.sort(key=lambda draft: draft[0])
    by_meeting: dict[int, list[dict]] = {}
    backers: dict[int, list[int]] = {}
    for number, (made, meeting, withdrawn) in enumerate(drafts, 1):
        k = 0 if rng.random() < 0.35 else min(MEMBERS - 1, 1 + int(rng.expovariate(1 / 3)))
        who = rng.sample(range(MEMBERS - 1), k)  # member 29 backs nothing: the reference command backs for them
        backers[number] = who
        item = dict(id=number, group_id=group_id, number=number,
                    text=f"{rng.choice(PHRASES).capitalize()} (item {number})",
                    author_id=member_ids[rng.randrange(MEMBERS)], created_at=made, support=k,
                    assembly_id=meeting["id"] if meeting else None, position=None, withdrawn_at=withdrawn,
                    proposal_id=None)
        rows["agenda_items"].append(item)
        if meeting is not None:
            by_meeting.setdefault(meeting["id"], []).append(item)
        limit = meeting["frozen_at"] if meeting else (withdrawn or START)
        for m in who:
            rows["agenda_supports"].append(dict(item_id=number, member_id=member_ids[m], supported_at=min(
                limit - timedelta(seconds=1), made + timedelta(seconds=rng.uniform(1, 3 * 86400)))))
    for agenda in by_meeting.values():  # positions as the freeze gave them: support, then age
        for position, item in enumerate(sorted(agenda, key=lambda i: (-i["support"], i["created_at"], i["number"])), 1):
            item["position"] = position
    open_items = [item for item in rows["agenda_items"] if item["assembly_id"] is None and item["withdrawn_at"] is None]
    rows["pending"] = len(open_items)
    rows["upcoming"] = past + 1
    rows["backable"] = open_items[len(open_items) // 2]["number"]
    return rows


def timed(sender: common.Sender, text: str | list[str], runs: int, check) -> dict:
    samples = []
    texts = [text] if isinstance(text, str) else text
    for k in range(runs):
        user = (MEMBERS - 1) if len(texts) > 1 else k % MEMBERS
        event = sender.event(user, texts[k % len(texts)])
        t0 = time.perf_counter()
        actions = sender.core.handle(event)
        samples.append(time.perf_counter() - t0)
        check(actions)
    first = samples[0]
    samples.sort()
    return {"runs": runs, "p50": common.pct(samples, 50), "p99": common.pct(samples, 99), "max": samples[-1],
            "first": first}


def _contains(*words: str):
    def check(actions):
        html = " ".join(common.html_of(a) for a in actions)
        missing = [w for w in words if w not in html]
        if missing or "⚠" in html:
            raise BenchFailure(f"reply lacks {missing!r}: {html[:400]!r}")
    return check


def bench_commands(url: str, backend: str, past: int, items: int, pending: int, runs: int,
                   profile_path: str | None) -> dict:
    clock = ManualClock(START)
    core = bot.app.build_core(url, clock, DefaultsConfig())
    try:
        bot.app.freeze_start_up_objects()
        sender = common.Sender(core, CHAT, "Assemblies bench commons")
        facts = seed_commands(core, clock, sender, backend, past, items, pending)
        gc.collect()
        number = facts["upcoming"]
        more = facts["pending"] - MAX_LISTED
        agenda_check = _contains(f"Agenda of <b>Assembly #{number}", "— open",
                                 *([f"… and {more} more"] if more > 0 else []))
        list_check = _contains(f"Assembly #{number}", f"agenda open, {facts['pending']} item")
        back = facts["backable"]
        results = {}
        profiler = cProfile.Profile() if profile_path else None
        for label, text, check in (("agenda", "!agenda", agenda_check), ("assemblies", "!assemblies", list_check),
                                   ("agenda +n / -n", [f"!agenda +{back}", f"!agenda -{back}"],
                                    _contains(f"item <code>#{back}</code>"))):
            cold = None
            if isinstance(text, str):  # the first call of a command, apart (the back/unback pair: its first run)
                t0 = time.perf_counter()
                first = core.handle(sender.event(1, text))
                cold = time.perf_counter() - t0
                check(first)
            if profiler is not None:
                profiler.enable()
            results[label] = timed(sender, text, runs, check)
            if profiler is not None:
                profiler.disable()
            results[label]["cold"] = cold if cold is not None else results[label]["first"]
        results["reply"] = {label: common.html_of(a) for label, a in (
            ("agenda", core.handle(sender.event(2, "!agenda"))[0]),
            ("assemblies", core.handle(sender.event(2, "!assemblies"))[0]))}
        if profiler is not None:
            common.print_profile(profiler, profile_path, "the timed agenda / assemblies / agenda +n calls", ROOT)
        return {"facts": facts, "results": results}
    finally:
        core.db.dispose()


def report_commands(facts: dict, results: dict) -> bool:
    print(f"seeded {facts['assemblies']:,} assemblies ({facts['upcoming'] - 1:,} past, {CANCELLED} of them "
          f"cancelled, 1 coming), {facts['agenda_items']:,} agenda items ({facts['pending']} open, {WITHDRAWN} "
          f"withdrawn before a freeze, the rest on past agendas), {facts['agenda_supports']:,} backings, "
          f"{facts['task_volunteers']} standing for a job, {MEMBERS} members, in {facts['seconds']:.1f} s")
    ok = True
    for label in ("agenda", "assemblies", "agenda +n / -n"):
        found = results[label]
        target = label in ("agenda", "assemblies")
        met = found["p99"] * 1000 < P99_TARGET_MS
        ok = ok and (met or not target)
        verdict = ("PASS" if met else "MISS") if target else "(reference)"
        print(f"{label:<16} {found['runs']} runs: p50 {found['p50'] * 1000:6.2f} ms, "
              f"p99 {found['p99'] * 1000:6.2f} ms, max {found['max'] * 1000:6.2f} ms, "
              f"first call {found['cold'] * 1000:6.1f} ms  "
              f"target p99 < {P99_TARGET_MS:g} ms {verdict}")
    for label, html in results["reply"].items():
        print(f"  `{label}` reply: {len(html):,} characters of HTML, {html.count(chr(10)) + 1} lines")
    return ok


# ==========================================================================
# 2. reminder sweep vs the rotation benchmark's warning sweep

def seed_sweep_assemblies(url: str, groups: int) -> dict:
    """Migrate, then `groups` groups with members, volunteers, two past assemblies, a few open
    agenda items and one coming assembly whose first reminder is due at DUE (ids explicit)."""
    t0 = time.perf_counter()
    db = Database(url)
    db.upgrade()
    settings = settings_default()
    starts = DUE + max(settings.assembly_reminders)  # the earliest reminder (and the draw) at DUE
    rng = random.Random(SEED)
    per_assembly = SWEEP_PAST + 1
    per_items = SWEEP_PAST * SWEEP_BOUND + SWEEP_PENDING
    created = START - timedelta(days=400)
    template = Assembly(id=0, group_id=0, number=SWEEP_PAST + 1, starts_at=starts, created_by=None,
                        created_at=starts - WEEK, reminded_through=starts - WEEK)
    next_due = assembly_rules.next_step_at(template, settings)
    if next_due != DUE:
        raise BenchFailure(f"the coming assembly's next step is {next_due}, expected {DUE}")
    totals = dict(groups=0, members=0, task_volunteers=0, assemblies=0, agenda_items=0, agenda_supports=0)
    per_batch = max(1, BATCH // 20)
    with db.engine.begin() as conn:
        for first in range(0, groups, per_batch):
            rows: dict = {name: [] for name in totals}
            for g in range(first, min(groups, first + per_batch)):
                rows["groups"].append(dict(id=g + 1, platform=PLATFORM, chat_id=f"g{g}", title=f"Bench group {g}",
                                           created_at=created, next_audit_at=audit_at(g), next_digest_at=None))
                member = [g * SWEEP_MEMBERS + m + 1 for m in range(SWEEP_MEMBERS)]
                for m, member_id in enumerate(member):
                    rows["members"].append(dict(id=member_id, group_id=g + 1, user_id=f"u{m}",
                                                display_name=f"Member {m}", active=True, joined_at=created))
                for job, who in (("facilitation", (0, 1, 2)), ("minutes", (2, 3, 4))):
                    for m in who:
                        rows["task_volunteers"].append(dict(group_id=g + 1, task=job, member_id=member[m],
                                                            since=created))
                base = g * per_assembly
                for k in range(SWEEP_PAST):
                    held = starts - (SWEEP_PAST - k) * WEEK
                    rows["assemblies"].append(dict(
                        id=base + k + 1, group_id=g + 1, number=k + 1, starts_at=held, place="Hall", title=None,
                        created_by=member[0] if k == 0 else None, created_at=held - WEEK, next_due_at=None,
                        reminded_through=held - timedelta(hours=1), drawn_at=held - timedelta(days=2),
                        frozen_at=held - timedelta(hours=1), started_at=held, cancelled_at=None,
                        facilitator_id=member[k % 3], note_taker_id=member[2 + (k + 1) % 3],
                        facilitator_notes="Start with a round of names." if k == SWEEP_PAST - 1 else None,
                        note_taker_notes=None, minutes="We agreed to repaint the kitchen.",
                        minutes_done_at=held + timedelta(days=1)))
                rows["assemblies"].append(dict(
                    id=base + SWEEP_PAST + 1, group_id=g + 1, number=SWEEP_PAST + 1, starts_at=starts, place="Hall",
                    title=None, created_by=None, created_at=template.created_at, next_due_at=next_due,
                    reminded_through=template.reminded_through, drawn_at=None, frozen_at=None, started_at=None,
                    cancelled_at=None, facilitator_id=None, note_taker_id=None, facilitator_notes=None,
                    note_taker_notes=None, minutes=None, minutes_done_at=None))
                for i in range(per_items):
                    item_id = g * per_items + i + 1
                    k = i // SWEEP_BOUND
                    bound = k < SWEEP_PAST
                    made = (starts - (SWEEP_PAST - k) * WEEK - timedelta(days=3)) if bound \
                        else START - timedelta(days=3, hours=i)
                    backers = rng.sample(member, rng.randint(0, 2))
                    rows["agenda_items"].append(dict(
                        id=item_id, group_id=g + 1, number=i + 1, text=f"{PHRASES[(g + i) % len(PHRASES)]}",
                        author_id=member[rng.randrange(SWEEP_MEMBERS)], created_at=made, support=len(backers),
                        assembly_id=base + k + 1 if bound else None, position=(i % SWEEP_BOUND) + 1 if bound else None,
                        withdrawn_at=None, proposal_id=None))
                    for member_id in backers:
                        rows["agenda_supports"].append(dict(item_id=item_id, member_id=member_id,
                                                            supported_at=made + timedelta(hours=1)))
            for name, model in (("groups", Group), ("members", Member), ("task_volunteers", TaskVolunteer),
                                ("assemblies", Assembly), ("agenda_items", AgendaItem),
                                ("agenda_supports", AgendaSupport)):
                if rows[name]:
                    conn.execute(insert(model.__table__), rows[name])
                    totals[name] += len(rows[name])
        if db.backend == "postgresql":
            set_sequences(conn, ("groups", "members", "assemblies", "agenda_items"))
    analyze(db)
    db.dispose()
    totals["seconds"] = time.perf_counter() - t0
    return totals


def audit_at(g: int) -> datetime:
    """Every group's first audit, well after the sweep (a NULL date would make the group due at once)."""
    return START + timedelta(days=30, minutes=g)


def seed_sweep_rotation(url: str, groups: int) -> dict:
    """The rotation benchmark's own setup (10,000 groups × 1 role, one open mandate each), then every
    mandate ends 7 days after DUE, so its 7-day warning falls due at DUE, as `roles.next_warning` says."""
    t0 = time.perf_counter()
    totals = rotation.setup_database(url, groups, 1)
    warnings = rotation.warnings_setting()
    ends = DUE + max(warnings)
    next_warning = role_rules.next_warning(ends, warnings, START, START)
    if next_warning != DUE:
        raise BenchFailure(f"the mandates' next warning is {next_warning}, expected {DUE}")
    db = Database(url)
    with db.engine.begin() as conn:
        conn.execute(update(Mandate.__table__).values(ends_at=ends, started_at=ends - rotation.TERM,
                                                      term_started_at=ends - rotation.TERM,
                                                      next_warning_at=next_warning))
        # Dates the groups would have today (bench/rotation.py leaves them empty: due at once).
        for first in range(0, groups, BATCH):
            conn.execute(update(Group.__table__).where(Group.__table__.c.id == bindparam("gid"))
                         .values(next_audit_at=bindparam("audit")),
                         [{"gid": g + 1, "audit": audit_at(g)} for g in range(first, min(groups, first + BATCH))])
    analyze(db)
    db.dispose()
    totals["rotation_setup_seconds"] = totals["seconds"]
    totals["seconds"] = time.perf_counter() - t0
    return totals


# -- the child processes -----------------------------------------------------------------------

def start_up(url: str, clock: ManualClock) -> tuple[object, dict]:
    """`bench.rotation.start_up` (build_core + Runtime.start + gc.freeze, timed in pieces), serving
    every group; checks that the start-up found the sweep's due time (so it looked at the groups)."""
    core, timings = rotation.start_up(url, clock, SWEEP)  # it serves the bench platform
    found = timings.get("next_due_value")
    if found != DUE:
        raise BenchFailure(f"start-up: next due {found}, expected {DUE} (did the runtime serve the groups?)")
    timings["next_due_value"] = str(found)
    return core, timings


def startup_child(url: str) -> dict:
    clock = ManualClock(START)
    core, timings = start_up(url, clock)
    core.db.dispose()
    timings["peak_rss"] = common.vm_hwm_mb()
    timings["imports"] = _T_IMPORTED - _T_PROCESS
    return timings


def sweep_child(kind: str, url: str, profile_path: str | None) -> dict:
    """Start up at START (nothing due), jump to DUE, run the due work until none is left; every
    item's lateness is the wall time from the sweep's start until its transaction committed."""
    clock = rotation.TimingClock(START)
    core, startup = start_up(url, clock)
    startup.update(peak_rss=common.vm_hwm_mb(), imports=_T_IMPORTED - _T_PROCESS)
    if startup["items"]:
        raise BenchFailure(f"{startup['items']} items were overdue at start-up")
    with core.db.engine.connect() as conn:
        groups = conn.execute(select(func.count()).select_from(Group)).scalar_one()
    clock.advance(DUE - clock.now())
    batches = []  # (start, end, items, finished)
    original = jobs.run_due_batch

    def recorded(*args, **kwargs):
        t = time.perf_counter()
        done, finished = original(*args, **kwargs)
        batches.append((t, time.perf_counter(), done, finished))
        return done, finished

    profiler = cProfile.Profile() if profile_path else None
    stamps: list[float] = []
    clock.stamps = stamps
    jobs.run_due_batch = recorded
    calls = 0
    try:
        if profiler is not None:
            profiler.enable()
        t0 = time.perf_counter()
        total = 0
        while True:
            done = jobs.run_due_work(core)
            calls += 1
            total += done
            if done < 10_000:
                break
        t1 = time.perf_counter()
        if profiler is not None:
            profiler.disable()
    finally:
        jobs.run_due_batch = original
        clock.stamps = None
    committed, flushed = [], []
    position = 0
    exact = len(stamps) == total + sum(1 for b in batches if b[3])
    for _, end, done, finished in batches:
        committed.extend([end - t0] * done)
        if exact:
            starts = stamps[position:position + done + (1 if finished else 0)]
            flushed.extend((starts[j + 1] if j + 1 < len(starts) else end) - t0 for j in range(done))
            position += done + (1 if finished else 0)
    committed.sort()
    flushed.sort()
    next_due_times = []
    for _ in range(20):
        t = time.perf_counter()
        upcoming = jobs.next_due(core)
        next_due_times.append(time.perf_counter() - t)
    checks = verify(kind, core, groups)
    if total != groups:
        raise BenchFailure(f"{kind}: {total:,} items done for {groups:,} groups")
    core.db.dispose()
    if profiler is not None:
        common.print_profile(profiler, profile_path, f"the {kind} sweep", ROOT)
    return dict(kind=kind, groups=groups, startup=startup, items=total, wall=t1 - t0, calls=calls,
                batches=len(batches), batch_items=[b[2] for b in batches],
                committed=summary(committed), flushed=summary(flushed) if exact else None,
                next_due=statistics.median(next_due_times), next_due_value=str(upcoming), checks=checks,
                peak_rss=common.vm_hwm_mb())


def summary(values: list[float]) -> dict:
    return dict(n=len(values), p50=common.pct(values, 50), p95=common.pct(values, 95), p99=common.pct(values, 99),
                max=values[-1] if values else float("nan"))


def verify(kind: str, core, groups: int) -> dict:
    """What the sweep must have done: one announcement per group, each item moved on to its next step."""
    def count(query, **params) -> int:
        with core.db.engine.connect() as conn:
            return conn.execute(query if not isinstance(query, str) else sql_text(query), params).scalar_one()

    outbox_rows = count("SELECT count(*) FROM outbox")
    if kind == "assemblies":
        table = Assembly.__table__.c
        steps = count("SELECT count(*) FROM outbox WHERE dedupe_key LIKE :key", key="assembly:%:step:%")
        distinct = count("SELECT count(DISTINCT dedupe_key) FROM outbox WHERE dedupe_key LIKE :key",
                         key="assembly:%:step:%")
        reminded = count(select(func.count()).where(table.reminded_through == DUE))
        left = count(select(func.count()).where(table.next_due_at <= DUE))
        lotteries = count("SELECT count(*) FROM lotteries")
        checks = dict(announcements=steps, distinct=distinct, moved_on=reminded, still_due=left, lotteries=lotteries,
                      outbox=outbox_rows)
        problems = [f"{name} {value:,} (expected {groups:,})" for name, value in
                    (("reminders", steps), ("distinct reminders", distinct), ("reminded_through = due", reminded))
                    if value != groups]
    else:
        table = Mandate.__table__.c
        warned = count("SELECT count(*) FROM outbox WHERE dedupe_key LIKE :key AND dedupe_key NOT LIKE :dm",
                       key="mandate:%:warn:%", dm="%:dm")
        private = count("SELECT count(*) FROM outbox WHERE dedupe_key LIKE :key", key="mandate:%:warn:%:dm")
        warnings = rotation.warnings_setting()
        moved = count(select(func.count()).where(table.next_warning_at == DUE + max(warnings) - min(warnings)))
        left = count(select(func.count()).where(table.next_warning_at <= DUE))
        checks = dict(announcements=warned, private=private, moved_on=moved, still_due=left, outbox=outbox_rows)
        problems = [f"{name} {value:,} (expected {groups:,})" for name, value in
                    (("warnings", warned), ("private copies", private), ("next warning = the 1d one", moved))
                    if value != groups]
    if left:
        problems.append(f"{left:,} still due")
    if problems:
        raise BenchFailure(f"{kind} sweep: " + "; ".join(problems))
    return checks


def run_child(args: list[str]) -> dict:
    """This script in a fresh interpreter; returns its RESULT line and passes its other output on."""
    result = subprocess.run([sys.executable, str(Path(__file__).resolve()), *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise BenchFailure(f"child {args[:2]} failed ({result.returncode}):\n{result.stdout[-3000:]}\n"
                           f"{result.stderr[-5000:]}")
    found = None
    for line in result.stdout.splitlines():
        if line.startswith("RESULT "):
            found = json.loads(line[len("RESULT "):])
        else:
            print(line)
    if found is None:
        raise BenchFailure(f"child {args[:2]} printed no result:\n{result.stdout}\n{result.stderr}")
    return found


def bench_sweep(urls: dict[str, str], groups: int, start_up_runs: int, profile_path: str | None) -> dict:
    kinds = ("assemblies", "rotation")
    setup = {kind: run_child(["--_setup", kind, urls[kind], "--groups", str(groups)]) for kind in kinds}
    startups: dict[str, list[dict]] = {kind: [] for kind in kinds}
    for _ in range(start_up_runs - 1):  # alternating, each in a fresh interpreter
        for kind in kinds:
            startups[kind].append(run_child(["--_startup", urls[kind]]))
    sweeps = {}
    for kind in kinds:
        args = ["--_sweep", kind, urls[kind]]
        if profile_path:
            args += ["--profile", f"{Path(profile_path).stem}-{kind}.pstats"]
        sweeps[kind] = run_child(args)
        startups[kind].append(sweeps[kind]["startup"])  # the sweep's process started up the same way
    return {"setup": setup, "startups": startups, "sweeps": sweeps}


def median_run(runs: list[dict]) -> dict:
    return sorted(runs, key=lambda r: r["total"])[len(runs) // 2]


def report_sweep(groups: int, found: dict) -> list[tuple]:
    setup, startups, sweeps = found["setup"], found["startups"], found["sweeps"]
    a, r = setup["assemblies"], setup["rotation"]
    print(f"assemblies database: {a['groups']:,} groups, {a['members']:,} members, {a['task_volunteers']:,} "
          f"standing for a job, {a['assemblies']:,} assemblies ({groups:,} coming, first reminder due "
          f"{DUE:%Y-%m-%d %H:%M} UTC), {a['agenda_items']:,} agenda items, {a['agenda_supports']:,} backings; "
          f"bulk inserts in a child process {a['seconds']:.1f} s")
    print(f"rotation database: bench/rotation.py's setup_database ({r['groups']:,} groups x 1 role, "
          f"{r['mandates']:,} open mandates) in {r['rotation_setup_seconds']:.1f} s, then every 7d warning moved "
          f"to the same instant")
    print(f"default assembly_reminders {DefaultsConfig().canonical()['assembly_reminders']}, mandate_warnings "
          f"{DefaultsConfig().canonical()['mandate_warnings']}; the clock jumps from START to the due instant, "
          f"then jobs.run_due_work until nothing is due (one thread, no adapters: announcements only recorded)")
    rows = []
    med = {kind: median_run(startups[kind]) for kind in startups}

    def row(label: str, av: float, rv: float, unit: str, digits: int = 2, ratio: bool = True):
        text_ratio = f"x{av / rv:.2f}" if ratio and rv else ""
        rows.append((label, f"{av:,.{digits}f} {unit}", f"{rv:,.{digits}f} {unit}", text_ratio))

    sa, sr = sweeps["assemblies"], sweeps["rotation"]
    runs = len(startups["assemblies"])
    row(f"start-up, median of {runs} fresh process{'es' if runs > 1 else ''}", med["assemblies"]["total"],
        med["rotation"]["total"], "s", 3)
    row("  of which build_core", med["assemblies"]["build_core"], med["rotation"]["build_core"], "s", 3)
    row("  of which Runtime.start", med["assemblies"]["runtime_start"], med["rotation"]["runtime_start"], "s", 3)
    row("  of which next_due", med["assemblies"]["next_due"] * 1000, med["rotation"]["next_due"] * 1000, "ms", 2)
    row("start-up peak RSS (VmHWM)", med["assemblies"]["peak_rss"], med["rotation"]["peak_rss"], "MB", 0)
    row("sweep: items", sa["items"], sr["items"], "", 0, ratio=False)
    row("sweep: total wall time", sa["wall"], sr["wall"], "s", 2)
    row("sweep: items/s", sa["items"] / sa["wall"], sr["items"] / sr["wall"], "/s", 0)
    row("sweep: time per item", 1000 * sa["wall"] / sa["items"], 1000 * sr["wall"] / sr["items"], "ms", 2)
    for part in ("p50", "p99", "max"):
        row(f"lateness due -> committed, {part}", sa["committed"][part], sr["committed"][part], "s", 2)
    if sa["flushed"] and sr["flushed"]:
        for part in ("p50", "p99", "max"):
            row(f"lateness due -> item done (flushed), {part}", sa["flushed"][part], sr["flushed"][part], "s", 2)
    row("next_due after the sweep (median of 20)", 1000 * sa["next_due"], 1000 * sr["next_due"], "ms", 2)
    row("peak RSS of the sweep process", sa["peak_rss"], sr["peak_rss"], "MB", 0)
    width = max(len(r[0]) for r in rows) + 2
    header = f"{'':<{width}}{'assemblies':>16}{'rotation':>16}{'ratio':>9}"
    print(header)
    print("-" * len(header))
    for label, av, rv, ratio in rows:
        print(f"{label:<{width}}{av:>16}{rv:>16}{ratio:>9}")
    print(f"  assemblies: {sa['batches']} run_due_batch transactions ({min(n for n in sa['batch_items'] if n)}-"
          f"{max(sa['batch_items'])} items each) in {sa['calls']} run_due_work calls; "
          f"outbox {sa['checks']['outbox']:,} rows, {sa['checks']['lotteries']:,} lotteries opened (the "
          f"facilitators'; a note-taker's opens once the facilitator is drawn); "
          f"next due after: {sa['next_due_value']}")
    print(f"  rotation:   {sr['batches']} run_due_batch transactions ({min(n for n in sr['batch_items'] if n)}-"
          f"{max(sr['batch_items'])} items each) in {sr['calls']} run_due_work calls; "
          f"outbox {sr['checks']['outbox']:,} rows (warning + private copy); "
          f"next due after: {sr['next_due_value']}")
    for kind in ("assemblies", "rotation"):
        s = med[kind]
        print(f"  {kind} start-up (median run): build_core {s['build_core']:.3f} s + Runtime.start "
              f"{s['runtime_start']:.3f} s (run_due_work {s['run_due_work']:.3f} s for {s['items']} items, "
              f"next_due {1000 * s['next_due']:.2f} ms) + gc.freeze {s['gc_freeze']:.3f} s; all runs: "
              + ", ".join(f"{run['total']:.3f}" for run in startups[kind]) + " s")
    ok = med["assemblies"]["total"] < START_UP_TARGET_S
    print(f"reference: the rotation benchmark's start-up target < {START_UP_TARGET_S:g} s: "
          f"{'met' if ok else 'missed'} by assemblies ({med['assemblies']['total']:.3f} s)")
    print("verified: one reminder per coming assembly (distinct keys), each assembly's reminded_through at the due "
          "instant and nothing left due; one warning and one private copy per mandate, each moved on to its 1d "
          "warning; items done = groups on both")
    return rows


# ==========================================================================

def bench_backend(backend: str, args, groups: int, runs: int) -> bool:
    pg = tmp = None
    ok = True
    try:
        if backend == "sqlite":
            tmp = tempfile.TemporaryDirectory(prefix="commons-assemblies-")
            urls = {name: f"sqlite:///{tmp.name}/{name}.db" for name in ("commands", "assemblies", "rotation")}
        else:
            pg = common.start_postgres()
            urls = {name: pg.create_database(f"bench_{name}") for name in ("commands", "assemblies", "rotation")}
        db = Database(urls["commands"])
        server = common.describe_server(db.engine, backend)
        db.dispose()
        print(f"=== backend: {backend} ({server}) ===")
        for line in common.machine({"APScheduler": __import__("apscheduler").__version__}):
            print(line)
        print(f"imports (bot.app, SQLAlchemy …): {_T_IMPORTED - _T_PROCESS:.2f} s, not included; load average "
              + " / ".join(f"{x:.2f}" for x in os.getloadavg()) + " at the start")
        if "commands" in args.only:
            print("")
            print(f"-- 1. agenda and assemblies on one group ({args.past} past assemblies, {args.items:,} items) --")
            found = bench_commands(urls["commands"], backend, args.past, args.items, args.pending, runs, args.profile)
            ok = report_commands(found["facts"], found["results"]) and ok
        if "sweep" in args.only:
            print("")
            print(f"-- 2. reminder sweep for {groups:,} groups, side by side with the rotation warning sweep --")
            report_sweep(groups, bench_sweep(urls, groups, 1 if args.quick else START_UP_RUNS, args.profile))
        print("")
        return ok
    finally:
        if pg is not None:
            pg.stop()
        if tmp is not None:
            tmp.cleanup()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="sqlite")
    parser.add_argument("--groups", type=int, help="groups in the sweep (default 10,000; --quick 250)")
    parser.add_argument("--past", type=int, default=500, help="past assemblies of the commands' group (500)")
    parser.add_argument("--items", type=int, default=5000, help="agenda items of the commands' group (5,000)")
    parser.add_argument("--pending", type=int, default=assembly_rules.MAX_OPEN_ITEMS,
                        help=f"open items among them (default {assembly_rules.MAX_OPEN_ITEMS}, the app's limit)")
    parser.add_argument("--runs", type=int, help="timed calls of each command (default 200; --quick 50)")
    parser.add_argument("--only", nargs="+", choices=("commands", "sweep"), default=("commands", "sweep"))
    parser.add_argument("--quick", action="store_true",
                        help="250 groups in the sweep, one start-up each, 50 timed calls (on the same group)")
    parser.add_argument("--profile", metavar="FILE", nargs="?", const="assemblies-profile.pstats",
                        help="cProfile the timed commands and each sweep; print the top 25 lines")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--_setup", nargs=2, metavar=("KIND", "URL"), help=argparse.SUPPRESS)
    parser.add_argument("--_startup", metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument("--_sweep", nargs=2, metavar=("KIND", "URL"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    groups = args.groups if args.groups is not None else (250 if args.quick else 10_000)
    runs = args.runs or (50 if args.quick else 200)
    if groups < 1 or args.past < 2 or args.pending > args.items:
        raise SystemExit("--groups must be at least 1, --past at least 2, --pending at most --items")
    try:
        if args._setup:
            kind, url = args._setup
            seed = seed_sweep_assemblies if kind == "assemblies" else seed_sweep_rotation
            print("RESULT " + json.dumps(seed(url, groups)))
            return 0
        if args._startup:
            print("RESULT " + json.dumps(startup_child(args._startup)))
            return 0
        if args._sweep:
            print("RESULT " + json.dumps(sweep_child(*args._sweep, args.profile)))
            return 0
    except BenchFailure as failure:
        print(f"BENCH FAILED: {failure}", file=sys.stderr)
        return 2
    if args.backend == "both":
        return common.run_each_backend(__file__, list(argv if argv is not None else sys.argv[1:]))
    print(f"Commons assemblies benchmark — {time.strftime('%Y-%m-%d %H:%M:%S')}", flush=True)
    try:
        met = bench_backend(args.backend, args, groups, runs)
    except BenchFailure as failure:
        print(f"BENCH FAILED ({args.backend}): {failure}", file=sys.stderr)
        return 2
    sys.stdout.flush()
    return 1 if (args.strict and not met) else 0


if __name__ == "__main__":
    sys.exit(main())
