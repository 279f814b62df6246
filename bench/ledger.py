#!/usr/bin/env python
"""Ledger benchmark: `ledger`, `ledger statement` and `ledger csv` on a group with 100,000 entries.

One group with 30 members and three passed decisions; 100,000 ledger entries spread evenly
over the three years before the clock start (about 2,800 a month, some citing a decision,
one in fifty an undo), bulk-inserted with correct running balances. Measures, in-process
through `core.handle` (no network, no adapters, one thread):

1. `!ledger`: balance, this month's in/out, the last 10 (target: p99 < 50 ms);
2. `!ledger statement` (this month so far) and `!ledger statement last` (a whole past month):
   figures, spending by decision, and the chart (target: p99 < 50 ms). The chart is cached on
   its figures (a past month never changes), so the first call of each month is shown apart;
3. `!ledger csv`: every entry as a file (target: < 2 s);
4. `!ledger -1.00 …`: recording an entry (reference).

    python bench/ledger.py                    # SQLite
    python bench/ledger.py --backend both     # SQLite, then a throwaway PostgreSQL
    python bench/ledger.py --quick            # fewer timed runs, same data

See bench/README.md for the results.
"""

from __future__ import annotations

import argparse
import csv
import gc
import io
import random
import sys
import tempfile
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
from bot.actions import SendFile, SendImage  # noqa: E402
from bot.charts import ledger_chart  # noqa: E402
from bot.clock import ManualClock  # noqa: E402
from bot.config import DefaultsConfig  # noqa: E402
from bot.events import ChatRef, MemberJoined, UserRef  # noqa: E402
from bot.governance import ledger  # noqa: E402
from bot.render import ledger as render  # noqa: E402
from scheduler import jobs  # noqa: E402
from storage.models import Group, LedgerEntry, Member, Proposal  # noqa: E402

PLATFORM = "bench"
CHAT = ChatRef(platform=PLATFORM, chat_id="ledger-bench")
START = datetime(2026, 3, 20, 9, 0, tzinfo=timezone.utc)  # the clock: 19 days into March
SPAN = timedelta(days=3 * 365)
CATEGORIES = ("food", "rent", "repairs", "transport", "donations", "events", None)
BATCH = 5000
P99_TARGET_MS = 50.0
CSV_TARGET_S = 2.0


BenchFailure = common.BenchFailure


def seed(core, clock: ManualClock, sender: common.Sender, entries: int, backend: str) -> dict:
    """Members and three passed decisions through the core, then the entries in bulk."""
    t0 = time.perf_counter()
    clock.current = START - SPAN - timedelta(days=2)
    sender.run(0, "!help")
    for user in range(1, 30):
        core.handle(MemberJoined(chat=CHAT, user=UserRef(platform=PLATFORM, user_id=f"u{user}"),
                                 display_name=f"Member {user}", event_id=f"join{user}"))
    for title in ("Buy a chest freezer", "Rent the hall for the assembly", "Repair the van"):
        sender.run(0, f"!propose {title} closes=1h")
    for number in (1, 2, 3):
        for user in range(5):
            sender.run(user, f"!vote {number} yes")
    clock.advance(timedelta(hours=2))
    jobs.run_due_work(core)
    with core.db.engine.connect() as conn:
        group_id = conn.execute(select(Group.id)).scalar_one()
        members = list(conn.execute(select(Member.id).where(Member.group_id == group_id)).scalars())
        decisions = list(conn.execute(select(Proposal.id).order_by(Proposal.number)).scalars())
    rows = _entries(group_id, members, decisions, entries)
    with core.db.engine.begin() as conn:
        for start in range(0, len(rows), BATCH):
            conn.execute(insert(LedgerEntry.__table__), rows[start:start + BATCH])
        conn.execute(Group.__table__.update().values(next_statement_at=ledger.month_start("2026-04", timezone.utc)))
        if backend == "postgresql":
            conn.execute(sql_text("SELECT setval(pg_get_serial_sequence('ledger_entries', 'id'), "
                                  "(SELECT max(id) FROM ledger_entries))"))
    if backend == "postgresql":  # a live server's autovacuum would have analysed the table
        with core.db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sql_text("ANALYZE"))
    clock.current = START
    return {"entries": len(rows), "balance": rows[-1]["balance_cents"], "seconds": time.perf_counter() - t0}


def _entries(group_id: int, members: list[int], decisions: list[int], count: int) -> list[dict]:
    rng = random.Random(42)
    begin, step = START - SPAN, SPAN / count
    rows, balance = [], 0
    for number in range(1, count + 1):
        at = begin + step * (number - 1)
        undo = rows[rng.randrange(len(rows))] if rows and rng.random() < 0.02 else None
        if undo is not None and (undo["reverses_id"] is not None or undo.get("undone")):
            undo = None
        if undo is not None:
            undo["undone"] = True
            amount, description, category = -undo["amount_cents"], f"Reversal of #{undo['number']}: typo", \
                undo["category"]
            proposal = undo["proposal_id"]
        else:
            amount = rng.choice((1, -1)) * rng.randint(100, 60_000)
            description = f"{'income' if amount > 0 else 'spending'} line {number}"
            category = rng.choice(CATEGORIES)
            proposal = rng.choice(decisions) if amount < 0 and rng.random() < 0.1 else None
        balance += amount
        rows.append(dict(id=number, group_id=group_id, number=number, amount_cents=amount, currency="EUR",
                         description=description, category=category, proposal_id=proposal, need_id=None,
                         reverses_id=undo["id"] if undo else None, member_id=rng.choice(members), recorded_at=at,
                         balance_cents=balance))
    for row in rows:
        row.pop("undone", None)
    return rows


def timed(sender: common.Sender, text: str, runs: int, check) -> dict:
    samples = []
    for k in range(runs):
        event = sender.event(k % 30, text)
        t0 = time.perf_counter()
        actions = sender.core.handle(event)
        samples.append(time.perf_counter() - t0)
        check(actions)
    samples.sort()
    return {"runs": runs, "p50": common.pct(samples, 50), "p99": common.pct(samples, 99), "max": samples[-1]}


def _needs(kind, words: str):
    def check(actions):
        if not any(isinstance(a, kind) for a in actions) and not any(
                words in getattr(getattr(a, "text", None), "html", "") for a in actions):
            raise BenchFailure(f"unexpected reply: {[getattr(a, 'text', a) for a in actions]!r}")
    return check


def bench_backend(backend: str, entries: int, runs: int) -> bool:
    clock = ManualClock(START)
    pg = tmp = core = None
    try:
        if backend == "sqlite":
            tmp = tempfile.TemporaryDirectory(prefix="commons-ledger-")
            url = f"sqlite:///{tmp.name}/bench.db"
        else:
            pg = common.start_postgres()
            url = pg.create_database("commons_ledger_bench")
        core = bot.app.build_core(url, clock, DefaultsConfig())
        server = common.describe_server(core.db.engine, backend)
        bot.app.freeze_start_up_objects()
        sender = common.Sender(core, CHAT, "Ledger bench commons")
        facts = seed(core, clock, sender, entries, backend)
        gc.collect()
        results = run_all(sender, runs, facts)
        return report(backend, server, facts, results)
    finally:
        if core is not None:
            core.db.dispose()
        if pg is not None:
            pg.stop()
        if tmp is not None:
            tmp.cleanup()


def run_all(sender: common.Sender, runs: int, facts: dict) -> dict:
    results = {}
    shown = render.money(facts["balance"], "EUR")
    results["ledger"] = timed(sender, "!ledger", runs, _needs(type(None), f"Balance: {shown}"))
    for label, text in (("statement (this month)", "!ledger statement"),
                        ("statement (last month)", "!ledger statement last")):
        t0 = time.perf_counter()
        first = sender.core.handle(sender.event(1, text))
        cold = time.perf_counter() - t0
        if not any(isinstance(a, SendImage) for a in first):
            raise BenchFailure(f"{text}: no chart")
        results[label] = timed(sender, text, runs, _needs(SendImage, ""))
        results[label]["cold"] = cold
    with sender.core.db.transaction() as session:
        group_id = session.scalar(select(Group.id))
        month = ledger.statement(session, group_id, "2026-02", timezone.utc)
    rows = tuple((c or "no category", i, o) for c, i, o in month.by_category)
    t0 = time.perf_counter()
    ledger_chart.__wrapped__("February 2026", rows, "EUR", month.opening_cents, month.closing_cents, "bench")
    results["chart alone (uncached)"] = time.perf_counter() - t0
    csv_times = []
    for _ in range(3):
        t0 = time.perf_counter()
        actions = sender.run(2, "!ledger csv")
        csv_times.append(time.perf_counter() - t0)
    [exported] = [a for a in actions if isinstance(a, SendFile)]
    lines = list(csv.reader(io.StringIO(exported.data.decode())))
    if len(lines) != facts["entries"] + 1:
        raise BenchFailure(f"csv has {len(lines) - 1} rows, expected {facts['entries']}")
    results["csv"] = {"runs": 3, "best": min(csv_times), "max": max(csv_times), "bytes": len(exported.data)}
    results["record"] = timed(sender, "!ledger -1.00 bench stamps category=repairs", runs,
                              lambda actions: None)
    return results


def report(backend: str, server: str, facts: dict, results: dict) -> bool:
    print(f"=== backend: {backend} ({server}) ===")
    for line in common.machine({}):
        print(line)
    print(f"seeded {facts['entries']:,} entries in {facts['seconds']:.1f} s")
    ok = True
    for label in ("ledger", "statement (this month)", "statement (last month)", "record"):
        found = results[label]
        target = label != "record"
        met = found["p99"] * 1000 < P99_TARGET_MS
        ok = ok and (met or not target)
        cold = f", first call {found['cold'] * 1000:.1f} ms" if "cold" in found else ""
        verdict = ("PASS" if met else "MISS") if target else "(reference)"
        print(f"{label:<26} {found['runs']} runs: p50 {found['p50'] * 1000:6.2f} ms, p99 {found['p99'] * 1000:6.2f} "
              f"ms, max {found['max'] * 1000:6.2f} ms{cold}  target p99 < {P99_TARGET_MS:g} ms {verdict}")
    print(f"chart alone, uncached: {results['chart alone (uncached)'] * 1000:.1f} ms")
    csv_found = results["csv"]
    met = csv_found["max"] < CSV_TARGET_S
    print(f"ledger csv                 3 runs: best {csv_found['best']:.3f} s, max {csv_found['max']:.3f} s, "
          f"{csv_found['bytes']:,} bytes  target < {CSV_TARGET_S:g} s {'PASS' if met else 'MISS'}")
    return ok and met


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="sqlite")
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--runs", type=int, help="timed calls of each command (default 200)")
    parser.add_argument("--quick", action="store_true", help="50 timed calls of each")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)
    if args.backend == "both":
        return common.run_each_backend(__file__, list(argv if argv is not None else sys.argv[1:]))
    runs = args.runs or (50 if args.quick else 200)
    try:
        met = bench_backend(args.backend, args.entries, runs)
    except BenchFailure as failure:
        print(f"BENCH FAILED ({args.backend}): {failure}", file=sys.stderr)
        return 2
    return 1 if args.strict and not met else 0


if __name__ == "__main__":
    sys.exit(main())
