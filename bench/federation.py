#!/usr/bin/env python
"""Federation benchmark: a federation of 100 groups of 50 members, one shared proposal.

Measured in-process through the core (as bench/operations.py does; no platform):

1. fan-out: `propose … share=federation` in one group records a card in all 100 (one command,
   one transaction), beside the baseline of one ordinary proposal;
2. the votes: all 5,000 members vote on their group's copy (60 groups pass it, 40 do not),
   beside the same 5,000 votes on 100 ordinary proposals (one per group);
3. close and announcement: at the deadline the scheduler closes the 100 copies, and the last
   close counts the groups and records the federation's outcome in all 100; beside the baseline
   of closing 100 ordinary proposals;
4. the votes counted: every group's decision counts its 50 ballots (5,000 in all), the federation's
   outcome says 60 of 100 groups, and each group has its own outcome and the federation's, once.

    python bench/federation.py                 # SQLite
    python bench/federation.py --backend both  # SQLite, then a throwaway PostgreSQL

See bench/README.md for how results are reported.
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # so `bench` and `tests.pgserver` import

from sqlalchemy import func, insert, select  # noqa: E402

import bot.app  # noqa: E402
from bench import common  # noqa: E402
from bot.clock import ManualClock  # noqa: E402
from bot.config import DefaultsConfig  # noqa: E402
from bot.events import ChatRef, CommandMessage, UserRef  # noqa: E402
from bot.governance import federation  # noqa: E402
from scheduler.jobs import run_due_work  # noqa: E402
from storage.models import Decision, FederationQuestion, Group, Member, OutboxItem, Proposal  # noqa: E402

PLATFORM = "bench"
START = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
GROUPS, MEMBERS, PASSING = 100, 50, 60
_events = itertools.count()


def chat(group: int) -> ChatRef:
    return ChatRef(platform=PLATFORM, chat_id=f"g{group}")


def say(core, group: int, member: int, text: str) -> list:
    actions = core.handle(CommandMessage(
        chat=chat(group), sender=UserRef(platform=PLATFORM, user_id=f"g{group}u{member}"),
        sender_name=f"Member {member} of {group}", text=text, event_id=f"e{next(_events)}",
        chat_title=f"Cell {group}"))
    for action in actions:
        if "⚠" in common.html_of(action):
            raise common.BenchFailure(f"{text!r} refused: {common.html_of(action)!r}")
    return actions


def seed(core) -> dict[int, int]:
    """100 groups (each first seen through the core), 49 more members each in bulk, one federation."""
    group_ids = {}
    for group in range(GROUPS):
        say(core, group, 0, "!help")
    with core.db.transaction() as session:
        for group in range(GROUPS):
            group_ids[group] = core.directory.find_group(session, chat(group)).id
        rows = [{"group_id": group_ids[group], "user_id": f"g{group}u{member}", "platform": PLATFORM,
                 "display_name": f"Member {member} of {group}", "active": True, "joined_at": START}
                for group in range(GROUPS) for member in range(1, MEMBERS)]
        session.connection().execute(insert(Member.__table__), rows)
        joined = federation.create(session, "Bench federation", group_ids[0], START)
        for group in range(1, GROUPS):
            federation.join(session, joined.id, group_ids[group], START)
    return group_ids


def timed(call, *args) -> float:
    t0 = time.perf_counter()
    call(*args)
    return (time.perf_counter() - t0) * 1000


def vote_everyone(core, numbers: dict[int, int]) -> list[float]:
    """Every member votes on their group's proposal `numbers[group]`: yes in the first 60 groups
    (all of them), no in the others."""
    times = []
    for group in range(GROUPS):
        choice = "yes" if group < PASSING else "no"
        for member in range(MEMBERS):
            times.append(timed(say, core, group, member, f"!vote {numbers[group]} {choice}"))
    return times


def numbers_of(core, group_ids: dict[int, int], title: str) -> dict[int, int]:
    with core.db.transaction() as session:
        found = dict(session.execute(select(Proposal.group_id, Proposal.number).where(Proposal.title == title)).all())
    return {group: found[group_id] for group, group_id in group_ids.items()}


def line(label: str, times: list[float]) -> str:
    ordered = sorted(times)
    return (f"{label:<46} n={len(ordered):>5}  p50 {common.pct(ordered, 50):8.2f} ms  "
            f"p99 {common.pct(ordered, 99):8.2f} ms  total {sum(ordered) / 1000:7.2f} s")


def bench_backend(backend: str, repeats: int) -> None:
    with common.throwaway_database(backend) as url:
        clock = ManualClock(START)
        core = bot.app.build_core(url, clock, DefaultsConfig(quorum="50%", rule="majority"))
        try:
            print(f"== {backend}: {common.describe_server(core.db.engine, backend)}")
            print("\n".join(common.machine({})))
            t0 = time.perf_counter()
            group_ids = seed(core)
            print(f"seeded {GROUPS} groups x {MEMBERS} members, one federation: {time.perf_counter() - t0:.1f} s")
            measure(core, clock, group_ids, repeats)
        finally:
            core.db.dispose()


def measure(core, clock: ManualClock, group_ids: dict[int, int], repeats: int) -> None:
    # 1. Fan-out, beside one ordinary proposal: alternated, so both see the same machine.
    plain, shared = [], []
    for n in range(repeats):
        plain.append(timed(say, core, n % GROUPS, 1, f"!propose Ordinary {n} closes=30d"))
        shared.append(timed(say, core, n % GROUPS, 1, f"!propose Shared {n} closes=30d share=federation"))
    print(line("open one ordinary proposal (baseline)", plain))
    print(line(f"open a shared proposal: {GROUPS} copies and cards", shared))
    print(f"  fan-out ratio (p50): x{statistics.median(shared) / statistics.median(plain):.1f} for {GROUPS} groups")

    # 2. The votes: 100 ordinary proposals (one per group) and one shared question.
    for group in range(GROUPS):
        say(core, group, 0, "!propose Baseline question closes=1d")
    say(core, 0, 0, "!propose Shared question closes=1d1h share=federation")
    baseline_votes = vote_everyone(core, numbers_of(core, group_ids, "Baseline question"))
    shared_votes = vote_everyone(core, numbers_of(core, group_ids, "Shared question"))
    print(line("votes on ordinary proposals (baseline)", baseline_votes))
    print(line("votes on the shared question's copies", shared_votes))
    print(f"  vote ratio (p50): x{statistics.median(shared_votes) / statistics.median(baseline_votes):.2f}")

    # 3. Close and announce.
    clock.advance(timedelta(days=1, minutes=1))
    closed_plain = timed(run_due_work, core)
    clock.advance(timedelta(hours=1))
    closed_shared = timed(run_due_work, core)
    print(f"{'close 100 ordinary proposals (baseline)':<46} {closed_plain:10.1f} ms")
    print(f"{'close 100 copies + count and announce groups':<46} {closed_shared:10.1f} ms")
    print(f"  close ratio: x{closed_shared / closed_plain:.2f}")

    # 4. What was counted and said.
    with core.db.transaction() as session:
        question = session.scalars(select(FederationQuestion)
                                   .where(FederationQuestion.title == "Shared question")).one()
        copies = select(Proposal.id).where(Proposal.question_id == question.id)
        voters = session.scalar(select(func.sum(Decision.voters)).where(Decision.proposal_id.in_(copies)))
        decided = session.scalar(select(func.count()).select_from(Decision).where(Decision.proposal_id.in_(copies)))
        told = session.scalar(select(func.count()).select_from(OutboxItem).where(
            OutboxItem.dedupe_key.like(f"federation-question:{question.id}:outcome%")))
        groups = session.scalar(select(func.count()).select_from(Group))
    print(f"counted: {voters} ballots in {decided} group decisions; federation: {question.outcome} "
          f"({question.groups_for} of {question.groups_total} groups, rule {question.rule}); "
          f"federation outcome announced {told} times in {groups} groups")
    expected = (MEMBERS * GROUPS, GROUPS, PASSING, GROUPS, GROUPS)
    if (voters, decided, question.groups_for, question.groups_total, told) != expected:
        raise common.BenchFailure(json.dumps({"voters": voters, "decided": decided, "for": question.groups_for,
                                              "total": question.groups_total, "told": told}))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="sqlite")
    parser.add_argument("--repeats", type=int, default=5, help="fan-outs timed (and as many baselines)")
    args = parser.parse_args(argv)
    if args.backend == "both":
        return common.run_each_backend(__file__, list(argv if argv is not None else sys.argv[1:]))
    try:
        bench_backend(args.backend, args.repeats)
    except common.BenchFailure as failure:
        print(f"BENCH FAILED ({args.backend}): {failure}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
