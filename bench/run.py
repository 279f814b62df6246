#!/usr/bin/env python
"""Load benchmark for the Commons core, in-process, on one core.

Drives `bot.core.Core.handle` directly (no network, no adapters, no asyncio)
with a deterministic, seeded workload and reports per-command latency.

    python bench/run.py                       # SQLite, full size
    python bench/run.py --backend both        # SQLite, then a throwaway PostgreSQL
    python bench/run.py --quick --backend both   # ~20x smaller smoke run
    python bench/run.py --quick --profile     # cProfile of the core calls

See bench/README.md for what is measured and the targets.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import os
import random
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # so `tests.pgserver` imports

from sqlalchemy import text as sql_text  # noqa: E402

import bot.app  # noqa: E402
import bot.config  # noqa: E402
from bench import common  # noqa: E402
from bot.actions import Acknowledge, EditMessage, SendMessage  # noqa: E402
from bot.clock import ManualClock  # noqa: E402
from bot.events import ChatRef, CommandMessage, MemberJoined, UserRef  # noqa: E402

PLATFORM = "bench"
SEED = 42

# Targets (see README).
VOTE_RATE_TARGET = 1000.0  # vote commands/s, SQLite
VOTE_P99_TARGET_MS = 10.0  # SQLite
HOT_SHOW_P99_TARGET_MS = 20.0  # `proposal <#>` on a proposal with 200 ballots

STANCES = ("yes", "no", "abstain", "block")
STANCE_WEIGHTS = (50, 25, 15, 10)
POLL_OPTIONS = ("A", "B", "C")
POLL_ANSWERS = ("1", "2", "3", "abstain")
POLL_WEIGHTS = (40, 30, 20, 10)
RULE_CHOICES = (None, "majority", "two-thirds", "consent", "consensus")
REASONS = ("I can help with this", "too expensive for now", "we discussed it last week",
           "fine by me", "needs more detail first", "let's try it for a month")
TOPICS = ("Buy a chest freezer for the pantry", "Repaint the meeting room", "Move the weekly call to Thursday",
          "Adopt a code of conduct", "Start a tool library", "Rent a stall at the summer market",
          "Switch bank accounts", "Plant a herb bed by the entrance", "Raise the monthly contribution",
          "Hold the assembly online", "Buy a second cargo bike", "Open the space on Sundays")

VOTE_TYPES = ("vote (new ballot)", "vote (change)")
REPLAY = "vote (replay, ignored)"
DELIVERY = "card sent (delivery)"
MARK_SENT = "outbox: mark sent"
MARK_EVERY = 10  # events whose actions are marked sent in one transaction (the delivery's group commit)


# --------------------------------------------------------------------------
# configuration

@dataclass
class Config:
    groups: int
    members: int
    proposals: int
    votes: int
    hot: int
    hot_reads: int
    read_every: int = 20  # one read command per this many votes (on average)
    replay_rate: float = 0.02  # share of votes followed by a replay of an earlier vote
    # Changes picked on purpose; random repeat voters add ~2.5 points more, so ~10% of votes are changes.
    change_rate: float = 0.08
    poll_rate: float = 0.20
    tick_every: int = 10  # advance the clock 1 s every this many events


def make_config(args: argparse.Namespace) -> Config:
    if args.quick:
        base = dict(groups=5, members=200, proposals=100, votes=1000, hot=2, hot_reads=25)
    else:
        base = dict(groups=50, members=200, proposals=2000, votes=20000, hot=10, hot_reads=50)
    for key in ("groups", "members", "proposals", "votes", "hot", "hot_reads"):
        value = getattr(args, key)
        if value is not None:
            base[key] = value
    cfg = Config(**base)
    cfg.hot = min(cfg.hot, cfg.groups, cfg.proposals)
    if cfg.hot * cfg.members > cfg.votes * 0.6:
        raise SystemExit(f"--hot {cfg.hot} × --members {cfg.members} needs more than 60% of --votes {cfg.votes}; "
                         "lower --hot or raise --votes")
    if cfg.proposals > cfg.groups * 200:
        raise SystemExit("at most 200 open proposals per group (MAX_OPEN_PER_GROUP)")
    return cfg


# --------------------------------------------------------------------------
# the workload: a deterministic stream of (label, event, check) items

class BenchFailure(Exception):
    pass


@dataclass
class Op:
    label: str
    event: object
    check: object = None  # callable(actions) -> str | None (problem)
    after: object = None  # callable(core, actions) run untimed after the call (delivery simulation)


@dataclass
class Expected:
    ballots: dict = field(default_factory=dict)  # (g, number, u) -> stored choice
    event_ids: int = 0  # distinct event ids sent (each must be recorded once)
    hot: list = field(default_factory=list)  # (g, number)


def _texts(actions) -> list[str]:
    out = []
    for action in actions:
        text = getattr(action, "text", None)
        if text is not None:
            out.append(text.html)
        caption = getattr(action, "caption", None)
        if caption is not None:
            out.append(caption.html)
    return out


def _no_warning(actions) -> str | None:
    for html in _texts(actions):
        if "⚠" in html:
            return f"core refused it: {html!r}"
    return None


def workload(cfg: Config, expected: Expected):
    rng = random.Random(SEED)
    chats = [ChatRef(platform=PLATFORM, chat_id=f"g{g}") for g in range(cfg.groups)]
    users = [UserRef(platform=PLATFORM, user_id=f"u{u}") for u in range(cfg.members)]
    counter = 0

    def next_id() -> str:
        nonlocal counter
        counter += 1
        expected.event_ids += 1
        return f"e{counter}"

    def command(g: int, u: int, text: str, event_id: str | None = None) -> CommandMessage:
        return CommandMessage(chat=chats[g], sender=users[u], sender_name=f"Member {u}", text=text,
                              event_id=event_id or next_id(), chat_title=f"Bench group {g}")

    # 1. everyone appears through a join event
    for g in range(cfg.groups):
        for u in range(cfg.members):
            yield Op("member_joined", MemberJoined(chat=chats[g], user=users[u], display_name=f"Member {u}",
                                                   event_id=next_id()),
                     check=lambda actions: f"expected no actions, got {len(actions)}" if actions else None)

    # 2. proposals, votes and reads, interleaved
    proposals: list[tuple[int, int, bool]] = []  # k -> (group, number, is_poll)
    opened_per_group = [0] * cfg.groups
    ballot_keys: list[tuple[int, int]] = []  # (k, u) with a ballot
    choice_of: dict[tuple[int, int], str] = {}  # (k, u) -> stored choice
    hot_queues = {k: rng.sample(range(cfg.members), cfg.members) for k in range(cfg.hot)}
    hot_left = cfg.hot * cfg.members
    votes_left = cfg.votes
    past_votes: list[tuple[int, int, str, str]] = []  # (g, u, text, event_id) for replays

    def vote_op(k: int, u: int, change: bool) -> Op:
        g, number, poll = proposals[k]
        current = choice_of.get((k, u))
        if poll:
            pool = [a for a in POLL_ANSWERS if _poll_choice(a) != current] if change else list(POLL_ANSWERS)
            weights = [POLL_WEIGHTS[POLL_ANSWERS.index(a)] for a in pool]
            answer = rng.choices(pool, weights)[0]
            stored = _poll_choice(answer)
        else:
            pool = [s for s in STANCES if s != current] if change else list(STANCES)
            weights = [STANCE_WEIGHTS[STANCES.index(s)] for s in pool]
            answer = stored = rng.choices(pool, weights)[0]
        text = f"!vote {number} {answer}"
        if rng.random() < 0.3:
            text += " " + rng.choice(REASONS)
        if (k, u) not in choice_of:
            ballot_keys.append((k, u))
        choice_of[(k, u)] = stored
        expected.ballots[(g, number, u)] = stored
        event = command(g, u, text)
        past_votes.append((g, u, text, event.event_id))
        verb = "(changed from" if change else "(counted)"
        marker = f"<b>{stored}</b> on #{number} {verb}"

        def check(actions, marker=marker):
            problem = _no_warning(actions)
            if problem:
                return problem
            acks = [a for a in actions if isinstance(a, Acknowledge)]
            if not acks or marker not in acks[0].text.html:
                return f"expected an acknowledgement containing {marker!r}, got {_texts(actions)!r}"
            return None

        return Op(VOTE_TYPES[1] if change else VOTE_TYPES[0], event, check)

    def read_op() -> Op:
        kind = rng.choices(("proposals", "proposal", "decisions", "help"), (30, 40, 15, 15))[0]
        if kind == "proposal":
            k = rng.randrange(len(proposals))
            g, number, _ = proposals[k]
            u = rng.randrange(cfg.members)
            return Op("proposal <#>", command(g, u, f"!proposal {number}"), _no_warning)
        g = rng.randrange(cfg.groups)
        while opened_per_group[g] == 0 and kind == "proposals":
            g = rng.randrange(cfg.groups)
        u = rng.randrange(cfg.members)
        return Op(kind, command(g, u, f"!{kind}"), _no_warning)

    for k in range(cfg.proposals):
        g = k % cfg.groups
        opened_per_group[g] += 1
        number = opened_per_group[g]
        poll = rng.random() < cfg.poll_rate
        proposals.append((g, number, poll))
        topic = rng.choice(TOPICS)
        text = f"!propose {topic} (#{k}) | Proposed for the bench, group {g}; see the thread for costs. closes=30d"
        if poll:
            text += ' options="A; B; C"'
        else:
            rule = rng.choice(RULE_CHOICES)
            if rule:
                text += f" rule={rule}"
            if rng.random() < 0.15:
                text += f" quorum={rng.choice(('5', '20%', '10'))}"
        author = rng.randrange(cfg.members)

        def check(actions, number=number):
            problem = _no_warning(actions)
            if problem:
                return problem
            tracked = [a for a in actions if isinstance(a, SendMessage) and a.track]
            if not tracked or tracked[0].track != f"proposal:{number}":
                return f"expected a tracked card 'proposal:{number}', got {[a.track for a in tracked]!r}"
            return None

        def deliver(core, actions, k=k):
            # What the delivery layer does once the platform accepted the card.
            for action in actions:
                if isinstance(action, SendMessage) and action.track:
                    return lambda: core.delivered([], [(action.chat, action.track, f"msg-{k}")])
            return None

        yield Op("propose", command(g, author, text), check, after=deliver)

        # the votes that follow this proposal, so votes spread evenly over the run
        quota = (k + 1) * cfg.votes // cfg.proposals - k * cfg.votes // cfg.proposals
        for _ in range(quota):
            live_hot = [h for h in hot_queues if hot_queues[h] and h < len(proposals)]
            if live_hot and rng.random() < hot_left / votes_left:
                h = live_hot[rng.randrange(len(live_hot))]
                u = hot_queues[h].pop()
                hot_left -= 1
                yield vote_op(h, u, change=(h, u) in choice_of)
            elif ballot_keys and rng.random() < cfg.change_rate:
                kk, u = ballot_keys[rng.randrange(len(ballot_keys))]
                yield vote_op(kk, u, change=True)
            else:
                # a proposal opened so far, not a hot one (those get exactly one ballot per member)
                low = cfg.hot if len(proposals) > cfg.hot else 0
                kk = rng.randrange(low, len(proposals))
                u = rng.randrange(cfg.members)
                yield vote_op(kk, u, change=(kk, u) in choice_of)
            votes_left -= 1
            if past_votes and rng.random() < cfg.replay_rate:
                g_, u_, text_, event_id = past_votes[rng.randrange(len(past_votes))]
                yield Op(REPLAY, command(g_, u_, text_, event_id=event_id),
                         lambda actions: f"a replay must return [], got {_texts(actions)!r}" if actions else None)
            if rng.random() < 1 / cfg.read_every:
                yield read_op()

    # hot proposals that did not get all their ballots in the stream (tiny runs)
    for h, queue in hot_queues.items():
        while queue:
            u = queue.pop()
            yield vote_op(h, u, change=(h, u) in choice_of)

    # 3. `proposal <#>` on the hot proposals, which now have one ballot per member
    label = f"proposal <#> ({cfg.members} ballots)"
    for h in range(cfg.hot):
        g, number, _ = proposals[h]
        expected.hot.append((g, number))
    for _ in range(cfg.hot_reads):
        for h in range(cfg.hot):
            g, number, _ = proposals[h]
            marker = f"<b>Ballots</b> ({cfg.members}):"

            def check(actions, marker=marker):
                problem = _no_warning(actions)
                if problem:
                    return problem
                if not any(marker in html for html in _texts(actions)):
                    return f"expected {marker!r} in the reply"
                return None

            yield Op(label, command(g, rng.randrange(cfg.members), f"!proposal {number}"), check)


def _poll_choice(answer: str) -> str:
    return "abstain" if answer == "abstain" else POLL_OPTIONS[int(answer) - 1]


# --------------------------------------------------------------------------
# running

class GcWatch:
    """Time spent in Python's cyclic garbage collector, per generation (a gc.callbacks hook)."""

    def __init__(self) -> None:
        self.total_ns = 0
        self.by_gen = [[0, 0], [0, 0], [0, 0]]  # [collections, ns]
        self._start = 0

    def __call__(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._start = time.perf_counter_ns()
        else:
            spent = time.perf_counter_ns() - self._start
            self.total_ns += spent
            entry = self.by_gen[info["generation"]]
            entry[0] += 1
            entry[1] += spent


def run_workload(core, clock: ManualClock, cfg: Config, profiler: cProfile.Profile | None,
                 profile_labels: tuple[str, ...] | None):
    expected = Expected()
    samples: dict[str, list[int]] = defaultdict(list)
    slow_with_gc: dict[str, list[int]] = defaultdict(lambda: [0, 0])  # label -> [slow calls, of which had a GC]
    edits = 0
    handled = 0
    perf = time.perf_counter_ns
    watch = GcWatch()
    gc.callbacks.append(watch)
    unmarked: list[int] = []
    started = perf()
    for op in workload(cfg, expected):
        handled += 1
        if handled % cfg.tick_every == 0:
            clock.advance(timedelta(seconds=1))
        profiling = profiler is not None and (profile_labels is None or op.label in profile_labels)
        if profiling:
            profiler.enable()
        gc_before = watch.by_gen[2][0]
        t0 = perf()
        outgoing = core.intake(op.event)
        t1 = perf()
        actions = [item.action for item in outgoing]
        unmarked.extend(item.id for item in outgoing)
        if profiling:
            profiler.disable()
        samples[op.label].append(t1 - t0)
        if t1 - t0 > 10_000_000:
            slow_with_gc[op.label][0] += 1
            slow_with_gc[op.label][1] += watch.by_gen[2][0] != gc_before
        problem = op.check(actions) if op.check else None
        if problem:
            raise BenchFailure(f"{op.label}: {op.event.text if hasattr(op.event, 'text') else op.event!r}\n"
                               f"  -> {problem}")
        edits += sum(isinstance(a, EditMessage) for a in actions)
        if handled % MARK_EVERY == 0 and unmarked:  # what the delivery layer does once they are out
            t0 = perf()
            core.delivered(unmarked)
            samples[MARK_SENT].append(perf() - t0)
            unmarked = []
        if op.after is not None:
            deliver = op.after(core, actions)
            if deliver is not None:
                t0 = perf()
                deliver()
                samples[DELIVERY].append(perf() - t0)
    wall = (perf() - started) / 1e9
    gc.callbacks.remove(watch)
    return expected, samples, wall, handled, edits, (watch, dict(slow_with_gc))


def verify(core, cfg: Config, expected: Expected) -> list[str]:
    """Replays must not have counted: the stored ballots are exactly the expected ones."""
    notes = []
    with core.db.engine.connect() as conn:
        rows = conn.execute(sql_text(
            "SELECT g.chat_id, p.number, m.user_id, b.choice FROM ballots b "
            "JOIN proposals p ON p.id = b.proposal_id JOIN members m ON m.id = b.member_id "
            "JOIN groups g ON g.id = p.group_id WHERE g.platform = :platform"), {"platform": PLATFORM}).all()
        stored = {(int(chat[1:]), number, int(user[1:])): choice for chat, number, user, choice in rows}
        if len(rows) != len(expected.ballots):
            raise BenchFailure(f"{len(rows)} ballots stored, expected {len(expected.ballots)} "
                               "(a replayed vote was counted, or a vote was lost)")
        wrong = [key for key, choice in expected.ballots.items() if stored.get(key) != choice]
        if wrong:
            key = wrong[0]
            raise BenchFailure(f"{len(wrong)} ballots differ from the expected final choice, e.g. group g{key[0]} "
                               f"#{key[1]} u{key[2]}: stored {stored.get(key)!r}, expected "
                               f"{expected.ballots[key]!r} (a replay re-applied an old vote?)")
        for g, number in expected.hot:
            count = conn.execute(sql_text(
                "SELECT count(*) FROM ballots b JOIN proposals p ON p.id = b.proposal_id "
                "JOIN groups g ON g.id = p.group_id WHERE g.chat_id = :chat AND p.number = :number"),
                {"chat": f"g{g}", "number": number}).scalar_one()
            if count != cfg.members:
                raise BenchFailure(f"hot proposal g{g} #{number} has {count} ballots, expected {cfg.members}")
        processed = conn.execute(sql_text("SELECT count(*) FROM processed_events WHERE platform = :p"),
                                 {"p": PLATFORM}).scalar_one()
        if processed != expected.event_ids:
            raise BenchFailure(f"{processed} processed events recorded, expected {expected.event_ids}")
        open_count = conn.execute(sql_text("SELECT count(*) FROM proposals WHERE status = 'open'")).scalar_one()
        if open_count != cfg.proposals:
            raise BenchFailure(f"{open_count} proposals open at the end, expected {cfg.proposals}")
    notes.append(f"verified: {len(rows):,} ballots match the expected final choices exactly; "
                 f"{len(expected.hot)} hot proposals have {cfg.members} ballots each; "
                 f"{processed:,} event ids recorded once; replays changed nothing")
    return notes


def percentile(sorted_ns: list[int], q: float) -> float:
    """Nearest-rank percentile, in ms."""
    if not sorted_ns:
        return float("nan")
    rank = max(1, -(-len(sorted_ns) * q // 100))
    return sorted_ns[int(rank) - 1] / 1e6


def summarise(samples: dict[str, list[int]]) -> dict[str, dict]:
    stats = {}
    for label, values in samples.items():
        values = sorted(values)
        total = sum(values) / 1e9
        stats[label] = dict(count=len(values), total=total, rate=len(values) / total if total else float("inf"),
                            p50=percentile(values, 50), p95=percentile(values, 95), p99=percentile(values, 99),
                            max=values[-1] / 1e6)
    votes = sorted(v for label in VOTE_TYPES for v in samples.get(label, []))
    if votes:
        total = sum(votes) / 1e9
        stats["vote (all, new + change)"] = dict(count=len(votes), total=total, rate=len(votes) / total,
                                                 p50=percentile(votes, 50), p95=percentile(votes, 95),
                                                 p99=percentile(votes, 99), max=votes[-1] / 1e6)
    return stats


ORDER = ("member_joined", "propose", DELIVERY, "vote (new ballot)", "vote (change)", "vote (all, new + change)",
         REPLAY, "proposals", "proposal <#>", "decisions", "help")


def machine() -> list[str]:
    return common.machine({})


def report(backend: str, cfg: Config, samples, wall: float, handled: int, edits: int, server: str,
           notes: list[str], gc_info) -> bool:
    stats = summarise(samples)
    out = print
    out(f"=== backend: {backend} ({server}) ===")
    out(f"workload: {cfg.groups} groups x {cfg.members} members, {cfg.proposals} proposals "
        f"({cfg.hot} hot with {cfg.members} ballots), {cfg.votes} votes, seed {SEED}; single thread")
    for line in machine():
        out(line)
    core_time = sum(s["total"] for label, s in stats.items()
                    if label not in (DELIVERY, MARK_SENT, "vote (all, new + change)"))
    out(f"total wall time: {wall:.2f} s for {handled:,} core.handle calls "
        f"(time inside core.handle: {core_time:.2f} s)")
    out(f"overall: {handled / wall:,.0f} commands/s (wall clock, incl. event building and checks)")
    out(f"card edits returned by votes: {edits:,}")
    out("")
    header = f"{'command type':<32}{'count':>8}{'cmd/s':>10}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'max ms':>9}"
    out(header)
    out("-" * len(header))
    labels = [label for label in ORDER if label in stats] + sorted(set(stats) - set(ORDER))
    for label in labels:
        s = stats[label]
        out(f"{label:<32}{s['count']:>8,}{s['rate']:>10,.0f}{s['p50']:>9.2f}{s['p95']:>9.2f}{s['p99']:>9.2f}"
            f"{s['max']:>9.2f}")
    out(f"({DELIVERY} is Core.delivered with the card's platform id, as the delivery layer reports it; "
        f"{MARK_SENT} marks the actions of {MARK_EVERY} events sent in one transaction; neither is a command, "
        "both are in the wall time)")
    out("")
    votes = stats.get("vote (all, new + change)")
    hot = stats.get(f"proposal <#> ({cfg.members} ballots)")
    met = True
    if votes:
        out(f"vote commands/s: {votes['rate']:,.0f} (p50 {votes['p50']:.2f} ms, p99 {votes['p99']:.2f} ms)")
        binding = backend == "sqlite"
        suffix = "" if binding else "  (target is for SQLite; shown for reference)"
        ok_rate = votes["rate"] >= VOTE_RATE_TARGET
        ok_p99 = votes["p99"] < VOTE_P99_TARGET_MS
        out(f"target: >= {VOTE_RATE_TARGET:,.0f} vote commands/s: {'MET' if ok_rate else 'MISSED'}{suffix}")
        out(f"target: vote p99 < {VOTE_P99_TARGET_MS:.0f} ms: {'MET' if ok_p99 else 'MISSED'}{suffix}")
        if binding:
            met = met and ok_rate and ok_p99
    if hot:
        ok = hot["p99"] < HOT_SHOW_P99_TARGET_MS
        note = "" if cfg.members == 200 else f"  (target is for 200 ballots; this run has {cfg.members})"
        out(f"target: proposal <#> with {cfg.members} ballots p99 < {HOT_SHOW_P99_TARGET_MS:.0f} ms "
            f"(p99 {hot['p99']:.2f} ms): {'MET' if ok else 'MISSED'}{note}")
        met = met and ok
    watch, slow = gc_info
    out("garbage collector during the run: " + ", ".join(
        f"gen{gen} {n:,}x {ns / 1e9:.2f} s" for gen, (n, ns) in enumerate(watch.by_gen))
        + (f"; gen2 avg {watch.by_gen[2][1] / watch.by_gen[2][0] / 1e6:.1f} ms" if watch.by_gen[2][0] else ""))
    if slow:
        out("calls over 10 ms, and how many of them ran a full (gen2) collection: " + ", ".join(
            f"{label} {n} ({with_gc} with gen2 GC)" for label, (n, with_gc) in sorted(slow.items())))
    for note in notes:
        out(note)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    out(f"peak RSS: {rss:,.0f} MB (this Python process only)")
    out("")
    return met


def bench_backend(backend: str, cfg: Config, profile_path: str | None, profile_all: bool = False,
                  gc_freeze: bool = True) -> bool:
    clock = ManualClock()
    defaults = bot.config.DefaultsConfig()
    pg = None
    tmp = None
    core = None
    try:
        if backend == "sqlite":
            tmp = tempfile.TemporaryDirectory(prefix="commons-bench-")
            url = f"sqlite:///{tmp.name}/bench.db"
        else:
            pg = common.start_postgres()
            url = pg.create_database("commons_bench")
        core = bot.app.build_core(url, clock, defaults)
        server = common.describe_server(core.db.engine, backend)
        if gc_freeze:
            bot.app.freeze_start_up_objects()  # as `commons-bot run` does after start-up
            server += "; gc.freeze() after start-up, as the app does"
        profiler = cProfile.Profile() if profile_path else None
        labels = None if profile_all else VOTE_TYPES
        expected, samples, wall, handled, edits, gc_info = run_workload(core, clock, cfg, profiler, labels)
        notes = verify(core, cfg, expected)
        met = report(backend, cfg, samples, wall, handled, edits, server, notes, gc_info)
        if profiler is not None:
            common.print_profile(profiler, profile_path, "all core.handle calls" if profile_all else
                                 "the vote core.handle calls only", ROOT)
        return met
    finally:
        if core is not None:
            core.db.dispose()
        if pg is not None:
            pg.stop()
        if tmp is not None:
            tmp.cleanup()


def _without_compare(argv: list[str]) -> list[str]:
    kept, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg in ("--compare", "--rounds"):
            skip = True
        elif not arg.startswith(("--compare=", "--rounds=")):
            kept.append(arg)
    return kept


VOTE_LINE = re.compile(r"vote commands/s: ([\d,]+) \(p50 ([\d.]+) ms, p99 ([\d.]+) ms\)")


def compare(rev: str, rounds: int, argv: list[str]) -> int:
    """Before/after in one run on one machine: REV's benchmark (a git worktree) and this one,
    alternately, so a machine that gets busier affects both alike."""
    figures: dict[str, list[tuple[float, float]]] = {rev: [], "this tree": []}
    with tempfile.TemporaryDirectory(prefix="commons-bench-rev-") as tmp:
        worktree = Path(tmp) / "tree"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(worktree), rev],
                       check=True, capture_output=True)
        try:
            for round_ in range(rounds):
                for name, tree in ((rev, worktree), ("this tree", ROOT)):
                    run = subprocess.run([sys.executable, str(tree / "bench" / "run.py"), *argv], cwd=tree,
                                         capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(tree)})
                    match = VOTE_LINE.search(run.stdout)
                    if run.returncode != 0 or match is None:
                        print(run.stdout[-2000:], run.stderr[-2000:], file=sys.stderr)
                        raise SystemExit(f"the benchmark of {name} failed")
                    rate, p99 = float(match[1].replace(",", "")), float(match[3])
                    figures[name].append((rate, p99))
                    print(f"round {round_ + 1}, {name}: {rate:,.0f} votes/s, p99 {p99:.2f} ms", flush=True)
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(worktree)],
                           capture_output=True)
    (before_rate, before_p99), (after_rate, after_p99) = (
        (statistics.median(r for r, _ in runs), statistics.median(p for _, p in runs)) for runs in figures.values())
    print(f"\nmedian of {rounds} runs each ({' '.join(argv) or 'full size, sqlite'}):")
    print(f"{'':<14}{'votes/s':>10}{'p99 ms':>9}")
    print(f"{'before ' + rev[:7]:<14}{before_rate:>10,.0f}{before_p99:>9.2f}")
    print(f"{'after':<14}{after_rate:>10,.0f}{after_p99:>9.2f}")
    print(f"{'after/before':<14}{after_rate / before_rate:>10.2f}{after_p99 / before_p99:>9.2f}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="sqlite")
    parser.add_argument("--groups", type=int)
    parser.add_argument("--members", type=int)
    parser.add_argument("--proposals", type=int)
    parser.add_argument("--votes", type=int)
    parser.add_argument("--hot", type=int, help="proposals every member of their group votes on (default 10)")
    parser.add_argument("--hot-reads", type=int, help="`proposal <#>` calls per hot proposal at the end")
    parser.add_argument("--quick", action="store_true", help="~20x smaller smoke run")
    parser.add_argument("--profile", metavar="FILE", nargs="?", const="bench-profile.pstats",
                        help="cProfile the vote calls and print the top 25 cumulative lines")
    parser.add_argument("--profile-all", action="store_true", help="with --profile: every command, not only votes")
    parser.add_argument("--no-gc-freeze", dest="gc_freeze", action="store_false",
                        help="skip the gc.freeze() the app does after start-up (to see its effect)")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--compare", metavar="REV", help="run REV's bench/run.py and this one alternately, "
                        "with the same options, and print their vote figures side by side")
    parser.add_argument("--rounds", type=int, default=2, help="with --compare: runs of each, alternating")
    args = parser.parse_args(argv)
    cfg = make_config(args)

    if args.compare:
        return compare(args.compare, args.rounds, _without_compare(list(argv if argv is not None else sys.argv[1:])))

    if args.backend == "both":
        return common.run_each_backend(__file__, list(argv if argv is not None else sys.argv[1:]))

    print(f"Commons core benchmark — {time.strftime('%Y-%m-%d %H:%M:%S')}", flush=True)
    try:
        met = bench_backend(args.backend, cfg, args.profile, args.profile_all, args.gc_freeze)
    except BenchFailure as failure:
        print(f"BENCH FAILED ({args.backend}): {failure}", file=sys.stderr)
        return 2
    sys.stdout.flush()
    return 1 if (args.strict and not met) else 0


if __name__ == "__main__":
    sys.exit(main())
