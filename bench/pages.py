#!/usr/bin/env python
"""Members' page benchmark: the transparency page and the calendar feeds of a group with a long history.

One group with 120 members, created through the core, then bulk-inserted: 5,000 closed proposals
with their decisions (200 of them coming back for review), 20 open proposals, 50 roles (each with
one or two holders, a volunteer, a trainee and past holders), 2,000 needs and offers (a third
still open, some anonymous), 600 ledger entries over six months, 12 closed audits, 5 coming
assemblies and a 20,000-entry group log. Measures, in-process on one thread, what the web
adapter's thread does for each request (no network):

1. the page: reading it (bot.transparency, one transaction) and rendering its template
   (adapters/web) — target p99 < 50 ms;
2. the group's calendar feed (bot/calendar_feed.py) — target p99 < 200 ms;
3. a member's own feed (reference), and the whole request over HTTP on 127.0.0.1 (reference).

    python bench/pages.py                      # SQLite
    python bench/pages.py --backend both       # SQLite, then a throwaway PostgreSQL
    python bench/pages.py --quick              # fewer timed runs, same data

See bench/README.md for how results are reported.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # so `bench` and `tests.pgserver` import

from sqlalchemy import insert, select  # noqa: E402
from sqlalchemy import text as sql_text  # noqa: E402

import bot.app  # noqa: E402
from bench import common  # noqa: E402
from bot import transparency  # noqa: E402
from bot.clock import ManualClock  # noqa: E402
from bot.config import DefaultsConfig  # noqa: E402
from bot.events import ChatRef, MemberJoined, UserRef  # noqa: E402
from bot.governance.chain import GENESIS, canonical, entry_hash  # noqa: E402
from storage.models import (  # noqa: E402
    Assembly,
    Audit,
    Decision,
    Group,
    LedgerEntry,
    LogEntry,
    Mandate,
    Member,
    Need,
    Proposal,
    Role,
    Trainee,
    Volunteer,
)

PLATFORM = "bench"
CHAT = ChatRef(platform=PLATFORM, chat_id="pages-bench")
START = datetime(2026, 3, 20, 9, 0, tzinfo=timezone.utc)
MEMBERS = 120
DECISIONS = 5000
OPEN_PROPOSALS = 20
ROLES = 50
NEEDS = 2000
LEDGER = 600
AUDITS = 12
LOG = 20_000
BATCH = 2000
PAGE_TARGET_MS = 50.0
FEED_TARGET_MS = 200.0
OUTCOMES = ("passed", "rejected", "blocked", "no quorum", "withdrawn")


def seed(core, clock: ManualClock, sender: common.Sender, backend: str) -> dict:
    """The group and its members through the core; its history in bulk, on the tables."""
    t0 = time.perf_counter()
    rng = random.Random(7)
    clock.current = START - timedelta(days=3 * 365)
    sender.run(0, "!help")
    for user in range(1, MEMBERS):
        core.handle(MemberJoined(chat=CHAT, user=UserRef(platform=PLATFORM, user_id=f"u{user}"),
                                 display_name=f"Member {user}", event_id=f"join{user}"))
    clock.current = START
    with core.db.engine.connect() as conn:
        group_id = conn.execute(select(Group.id)).scalar_one()
        members = list(conn.execute(select(Member.id).where(Member.group_id == group_id)).scalars())
    begin = START - timedelta(days=3 * 365)
    with core.db.engine.begin() as conn:
        def put(model, rows):
            for start in range(0, len(rows), BATCH):
                conn.execute(insert(model.__table__), rows[start:start + BATCH])

        # Proposals: 5,000 closed (each with its decision) and 20 open.
        step = (START - begin) / DECISIONS
        proposals = []
        for number in range(1, DECISIONS + OPEN_PROPOSALS + 1):
            opened = begin + step * (number - 1) if number <= DECISIONS else START - timedelta(hours=number)
            closed = number <= DECISIONS
            proposals.append(dict(
                group_id=group_id, number=number, title=f"Proposal {number}: buy or fix something <for> the group",
                details=None, author_id=rng.choice(members), rule="majority", quorum="0", options=None,
                status="closed" if closed else "open", opened_at=opened, closes_at=opened + timedelta(days=3),
                closed_at=opened + timedelta(days=3) if closed else None, kind="decision", role_id=None,
                subject_member_id=None, candidates=None, secret=False, method="plain", review_seconds=None,
                review_of=None))
        put(Proposal, proposals)
        ids = dict(conn.execute(select(Proposal.number, Proposal.id).where(Proposal.group_id == group_id)).all())
        decisions = []
        for number in range(1, DECISIONS + 1):
            outcome = rng.choice(OUTCOMES)
            counts = {"yes": rng.randint(0, 40), "no": rng.randint(0, 30), "abstain": rng.randint(0, 5),
                      "block": rng.randint(0, 2)}
            decided = proposals[number - 1]["closed_at"]
            decisions.append(dict(
                group_id=group_id, proposal_id=ids[number], outcome=outcome,
                counts=json.dumps({"counts": counts, "winners": [], "explanation": ""}),
                voters=sum(counts.values()), members=MEMBERS, decided_at=decided,
                review_at=START + timedelta(days=rng.randint(1, 300)) if number > DECISIONS - 200 else None,
                lapsed_at=None))
        put(Decision, decisions)

        # Roles: 50, each with holders, a volunteer, a trainee and three past holders.
        put(Role, [dict(group_id=group_id, key=f"role{n}", name=f"Role{n}", term_seconds=90 * 86400,
                        seats=1 + n % 2, max_terms=2, fill=("election", "lottery", "volunteer")[n % 3],
                        handover=None, trainees_required=0, created_at=begin, retired_at=None,
                        sunset_at=START + timedelta(days=100 + n) if n % 10 == 0 else None)
                   for n in range(ROLES)])
        roles = list(conn.execute(select(Role.id, Role.seats).where(Role.group_id == group_id)).all())
        mandates, volunteers, trainees = [], [], []
        for role_id, seats in roles:
            people = rng.sample(members, 8)
            for seat in range(1, seats + 1):
                started = START - timedelta(days=rng.randint(1, 80))
                mandates.append(dict(group_id=group_id, role_id=role_id, member_id=people[seat], seat=seat,
                                     filled_by="election", term_number=1, renewals=0, started_at=started,
                                     term_started_at=started, ends_at=started + timedelta(days=90),
                                     next_warning_at=None, ended_at=None, end_reason=None))
            for past in range(3):
                started = START - timedelta(days=90 * (past + 2))
                mandates.append(dict(group_id=group_id, role_id=role_id, member_id=people[3 + past], seat=1,
                                     filled_by="election", term_number=1, renewals=0, started_at=started,
                                     term_started_at=started, ends_at=started + timedelta(days=90),
                                     next_warning_at=None, ended_at=started + timedelta(days=90),
                                     end_reason="expired"))
            volunteers.append(dict(role_id=role_id, member_id=people[6], since=START - timedelta(days=5)))
            trainees.append(dict(role_id=role_id, member_id=people[7], since=START - timedelta(days=1)))
        put(Mandate, mandates)
        put(Volunteer, volunteers)
        put(Trainee, trainees)

        # Needs and offers: 2,000, a third still open or claimed.
        needs = []
        for number in range(1, NEEDS + 1):
            created = begin + (START - begin) * number / NEEDS
            status = rng.choice(("open", "claimed", "met", "met", "cancelled", "met")) if number > NEEDS // 2 else (
                rng.choice(("met", "cancelled")))
            needs.append(dict(
                group_id=group_id, number=number, kind="need" if number % 4 else "offer",
                text=f"need {number}: a hand with something", category=rng.choice(("food", "housing", "transport")),
                urgent=number % 17 == 0, author_id=rng.choice(members), anonymous=number % 9 == 0, status=status,
                claimer_id=rng.choice(members) if status in ("claimed", "met") else None, offer_id=None,
                created_at=created, claimed_at=created + timedelta(hours=5) if status in ("claimed", "met") else None,
                met_at=created + timedelta(hours=rng.randint(6, 200)) if status == "met" else None,
                cancelled_at=created + timedelta(days=1) if status == "cancelled" else None,
                nudge_at=None, nudged_at=None))
        put(Need, needs)

        # Books: 600 entries over six months, with running balances.
        balance, entries = 0, []
        for number in range(1, LEDGER + 1):
            amount = rng.choice((1, -1)) * rng.randint(100, 20_000)
            balance += amount
            entries.append(dict(group_id=group_id, number=number, amount_cents=amount, currency="EUR",
                                description=f"entry {number}", category=rng.choice(("food", "rent", None)),
                                proposal_id=None, need_id=None, reverses_id=None, member_id=rng.choice(members),
                                recorded_at=START - timedelta(days=180) + timedelta(days=180) * number / LEDGER,
                                balance_cents=balance))
        put(LedgerEntry, entries)

        # Twelve closed audits with their figures; five coming assemblies.
        audits = []
        for number in range(1, AUDITS + 1):
            closes = START - timedelta(days=90 * (AUDITS - number) + 1)
            figures = {"period_start": (closes - timedelta(days=90)).isoformat(), "period_end": closes.isoformat(),
                       "needs_met": rng.randint(10, 60), "met_within_48h": rng.randint(0, 10),
                       "median_hours_to_met": 30.5, "needs_posted": 70, "decisions": 400, "participation": 0.4,
                       "role_holders": 60, "lapsed_on_time": 20, "extended": 3, "recalls": 1,
                       "mediations_opened": 2, "mediations_closed": 1,
                       "reported": {"food": rng.randint(0, 50), "housing": rng.randint(0, 9)}, "challenge": None}
            audits.append(dict(group_id=group_id, number=number, period_start=closes - timedelta(days=90),
                               started_at=closes - timedelta(days=7), closes_at=closes, remind_at=None,
                               closed_at=closes, areas=json.dumps(["food", "housing"]), started_by=None,
                               auditor_id=rng.choice(members), draw_seed=None, draw_candidates=None,
                               figures=json.dumps(figures)))
        put(Audit, audits)
        put(Assembly, [dict(group_id=group_id, number=n, starts_at=START + timedelta(days=14 * n), place="the hall",
                            title=f"Assembly {n}", created_by=members[0], created_at=START, next_due_at=None,
                            facilitator_id=members[n], note_taker_id=members[n + 1])
                       for n in range(1, 6)])

        # The group log: a chain of 20,000 entries (only its head is read).
        prev, log = GENESIS, []
        for seq in range(1, LOG + 1):
            body = canonical({"n": seq, "at": "2026-01-01T00:00:00Z"})
            digest = entry_hash(prev, body)
            log.append(dict(group_id=group_id, seq=seq, kind="bench", body=body, prev_hash=prev, hash=digest))
            prev = digest
        put(LogEntry, log)
        if backend == "postgresql":
            for table in ("proposals", "decisions", "roles", "mandates", "needs", "ledger_entries", "audits",
                          "assemblies"):
                conn.execute(sql_text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                      f"(SELECT coalesce(max(id), 1) FROM {table}))"))
    if backend == "postgresql":  # a live server's autovacuum would have analysed the tables
        with core.db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sql_text("ANALYZE"))
    with core.db.transaction() as session:
        token, _ = transparency.page_token(session, group_id, START)
        personal, _ = transparency.feed_token(session, PLATFORM, "u3", START)
    return {"group_id": group_id, "token": token, "personal": personal, "head": prev,
            "seconds": time.perf_counter() - t0}


def timed(call, runs: int, check) -> dict:
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        result = call()
        samples.append(time.perf_counter() - t0)
        check(result)
    samples.sort()
    return {"runs": runs, "p50": common.pct(samples, 50), "p99": common.pct(samples, 99), "max": samples[-1]}


def noise(runs: int) -> dict:
    """The same pure-Python work timed `runs` times: how much this machine alone spreads p99 from p50
    (a shared or busy machine stretches every tail; compare the ratios)."""
    def work() -> int:
        total = 0
        for value in range(200_000):
            total += value * value
        return total
    return timed(work, runs, lambda _: None)


async def over_http(server, token: str, runs: int) -> dict:
    import aiohttp

    samples = []
    async with aiohttp.ClientSession() as client:
        for _ in range(runs):
            t0 = time.perf_counter()
            async with client.get(f"http://127.0.0.1:{server.port}/g/{token}/") as answer:
                await answer.read()
                if answer.status != 200:
                    raise common.BenchFailure(f"the page answered {answer.status}")
            samples.append(time.perf_counter() - t0)
    samples.sort()
    return {"runs": runs, "p50": common.pct(samples, 50), "p99": common.pct(samples, 99), "max": samples[-1]}


def bench_backend(backend: str, runs: int) -> bool:
    with common.throwaway_database(backend) as url:
        core = bot.app.build_core(url, ManualClock(START), DefaultsConfig())
        try:
            server_line = common.describe_server(core.db.engine, backend)
            sender = common.Sender(core, CHAT, "Pages bench commons")
            facts = seed(core, core.clock, sender, backend)
            return asyncio.run(measure(core, backend, server_line, facts, runs))
        finally:
            core.db.dispose()


async def measure(core, backend: str, server_line: str, facts: dict, runs: int) -> bool:
    server = bot.app.web_server(core, "127.0.0.1", 0, requests_per_minute=1_000_000)
    await server.start()
    bot.app.freeze_start_up_objects()  # as the app does once everything has started
    transparency.configure(f"http://127.0.0.1:{server.port}")
    reader = transparency.Reader(core.db, core.directory, core.clock)
    token, personal = facts["token"], facts["personal"]
    try:
        def page_check(html):
            if html is None or facts["head"].encode() not in html or b"Proposal 5000:" not in html:
                raise common.BenchFailure("the page lacks the log's head or the latest decision")

        def personal_check(data):
            if data is None or b"BEGIN:VEVENT" not in data:
                raise common.BenchFailure("the personal feed lacks events")

        def feed_check(data):
            if data is None or data.count(b"BEGIN:VEVENT") < ROLES + OPEN_PROPOSALS:
                raise common.BenchFailure("the feed lacks events")

        t0 = time.perf_counter()
        first = server.render_page(token)
        cold = time.perf_counter() - t0
        page_check(first)
        results = {
            "page (read + render)": timed(lambda: server.render_page(token), runs, page_check),
            "page: read only": timed(lambda: reader.page(token), runs, lambda page: None),
            "group feed": timed(lambda: reader.group_feed(token), runs, feed_check),
            "personal feed": timed(lambda: reader.personal_feed(personal), runs, personal_check),
            "page over HTTP": await over_http(server, token, max(20, runs // 4)),
            "CPU loop (machine noise)": noise(runs),
        }
        page = reader.page(token)
        feed = reader.group_feed(token)
    finally:
        transparency.configure(None)
        await server.stop()
    print(f"=== backend: {backend} ({server_line}) ===")
    for line in common.machine({}):
        print(line)
    print(f"seeded {DECISIONS:,} decisions, {ROLES} roles, {NEEDS:,} needs and offers, {LEDGER} ledger entries, "
          f"{AUDITS} audits, {LOG:,} log entries in {facts['seconds']:.1f} s")
    print(f"page: {len(first):,} bytes of HTML ({len(page.decisions)} latest decisions of {DECISIONS:,}, "
          f"{len(page.roles)} roles, {len(page.needs.listed)} needs listed), first render {cold * 1000:.1f} ms; "
          f"group feed: {len(feed):,} bytes, {feed.count(b'BEGIN:VEVENT')} events")
    targets = {"page (read + render)": PAGE_TARGET_MS, "group feed": FEED_TARGET_MS}
    ok = True
    for label, found in results.items():
        target = targets.get(label)
        met = target is None or found["p99"] * 1000 < target
        ok = ok and met
        verdict = f"target p99 < {target:g} ms {'PASS' if met else 'MISS'}" if target else "(reference)"
        print(f"{label:<24} {found['runs']} runs: p50 {found['p50'] * 1000:7.2f} ms, p99 "
              f"{found['p99'] * 1000:7.2f} ms, max {found['max'] * 1000:7.2f} ms  {verdict}")
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="sqlite")
    parser.add_argument("--runs", type=int, help="timed calls of each (default 200)")
    parser.add_argument("--quick", action="store_true", help="40 timed calls of each")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)
    if args.backend == "both":
        return common.run_each_backend(__file__, list(argv if argv is not None else sys.argv[1:]))
    runs = args.runs or (40 if args.quick else 200)
    try:
        met = bench_backend(args.backend, runs)
    except common.BenchFailure as failure:
        print(f"BENCH FAILED ({args.backend}): {failure}", file=sys.stderr)
        return 2
    return 1 if args.strict and not met else 0


if __name__ == "__main__":
    sys.exit(main())
