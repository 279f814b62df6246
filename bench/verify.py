#!/usr/bin/env python
"""`commons-bot verify` over a large export: 100,000 entries checked offline.

    python3 bench/verify.py                    # 100,000 entries
    python3 bench/verify.py --entries 20000    # smaller
    python3 bench/verify.py --strict           # exit status 1 when the target is missed

The export is generated (seeded) into a temporary file, shaped like a busy group's log: mostly
ballot.cast (changed now and then, sometimes taken back), each proposal opened and closed around
its ballots — majority, consent and consensus votes, polls, a ranked poll and a secret vote every so
often — plus mandates, setting changes and a lottery (committed, then drawn) every few proposals.
Every closed outcome is computed with the bot's own functions, so the whole file verifies. The
check (`bot.verify.verify`, reading the file line by line as the CLI does) runs three times; the
best time (time.perf_counter) is compared with the target: under 10 s.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import resource
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import common  # noqa: E402
from bot.commands.args import Quorum  # noqa: E402
from bot.governance import lottery, record, voting  # noqa: E402
from bot.verify import verify  # noqa: E402

TARGET_SECONDS = 10.0
MEMBERS = 300
OPTIONS = ["Library", "Cafe", "Park", "Hall", "Garden"]


class Writer:
    """Appends entries as the bot does and writes them as `log export` does."""

    def __init__(self, out) -> None:
        self.out, self.seq, self.prev = out, 0, record.GENESIS
        self.clock = datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc)

    def add(self, kind: str, body: dict) -> None:
        self.clock += timedelta(seconds=37)
        text = record.canonical({**body, "at": record.stamp(self.clock)})
        digest = record.entry_hash(self.prev, text)
        self.seq += 1
        self.out.write(f'{{"seq":{self.seq},"kind":{json.dumps(kind)},"prev":"{self.prev}",'
                       f'"hash":"{digest}","body":{text}}}\n')
        self.prev = digest


def proposal(writer: Writer, rng: random.Random, number: int, voters: int) -> None:
    shape = number % 10
    options = OPTIONS[:rng.randint(2, 5)] if shape in (3, 4, 7) else None
    method = "ranked" if shape == 7 else "plain"
    secret = shape == 9
    rule = ("majority", "consent", "consensus", "two-thirds")[number % 4]
    quorum = rng.choice(["0", "5", "40%"])
    seats = 2 if shape == 4 else 1
    parameters = {"rule": rule, "quorum": quorum, "options": options, "method": method, "secret": secret,
                  "seats": seats}
    author = rng.randint(1, MEMBERS)
    writer.add("proposal.opened", {
        "proposal": number, "title": f"Proposal {number}: buy a kettle for the hall", "details": None,
        "author": f"member {author}", "author_id": author, **parameters,
        "kind": "election" if seats > 1 else "decision",
        "closes_at": record.stamp(writer.clock + timedelta(days=3)), "review": None, "review_of": None})
    ballots: dict[int, str] = {}

    def choose() -> str:
        if method == "ranked":
            order = rng.sample(range(1, len(options) + 1), rng.randint(0, len(options)))
            return ">".join(map(str, order)) or "abstain"
        if options:
            return rng.choice([*options, "abstain"])
        return rng.choices(voting.STANCES, [6, 3, 1, 0.2 if rule in ("consent", "consensus") else 0.5])[0]

    for member_id in rng.sample(range(1, MEMBERS + 1), voters):
        choice = choose()
        if not secret:
            writer.add("ballot.cast", {"proposal": number, "member_id": member_id, "member": f"member {member_id}",
                                       "choice": choice, "reason": None})
        ballots[member_id] = choice
        if not secret and rng.random() < 0.05:  # a change of mind, or a ballot taken back
            if rng.random() < 0.5:
                ballots[member_id] = choose()
                writer.add("ballot.cast", {"proposal": number, "member_id": member_id,
                                           "member": f"member {member_id}", "choice": ballots[member_id],
                                           "reason": "changed my mind"})
            else:
                del ballots[member_id]
                writer.add("ballot.retracted", {"proposal": number, "member_id": member_id,
                                                "member": f"member {member_id}"})
    choices = list(ballots.values())
    count = None
    if method == "ranked":
        rankings = [[] if c == "abstain" else [options[int(n) - 1] for n in c.split(">")] for c in choices]
        counts = voting.count_ballots([r[0] if r else "abstain" for r in rankings], options)
        outcome, count = voting.decide_ranked(Quorum.parse(quorum), MEMBERS, rankings, options, seats,
                                              seed=f"{number:016x}")
    else:
        counts = voting.count_ballots(choices, options)
        outcome = voting.decide(rule, Quorum.parse(quorum), MEMBERS, counts, options, seats)
    box = sorted([hashlib.sha256(f"R{number}-{i}".encode()).hexdigest()[:32], c] for i, c in enumerate(choices))
    writer.add("proposal.closed", {
        "proposal": number, "status": "closed", "outcome": outcome.result, "counts": counts,
        "winners": list(outcome.winners), "explanation": outcome.explanation, "voters": sum(counts.values()),
        "members": MEMBERS, **parameters, "count": count, "ballots": box if secret else None,
        "voter_names": [f"member {i}" for i in ballots] if secret else None})


def draw(writer: Writer, rng: random.Random, number: int) -> None:
    secret = lottery.new_secret()
    candidates = [[i, f"member {i}"] for i in sorted(rng.sample(range(1, MEMBERS + 1), 12))]
    published = {"lottery": number, "purpose": "role", "role": "facilitator", "candidates": candidates, "seats": 2,
                 "commitment": lottery.commitment(secret)}
    writer.add("lottery.committed", {**published, "draws_at": record.stamp(writer.clock + timedelta(days=1))})
    contributions = [[f"member {i}", f"{rng.random()}"] for i in rng.sample(range(1, MEMBERS + 1), 3)]
    seed = lottery.seed(secret, [text for _, text in contributions])
    picks = [i for i, _ in lottery.draw(seed, candidates, 2)]
    writer.add("lottery.drawn", {**published, "secret": secret, "contributions": contributions, "seed": seed,
                                 "picks": picks, "skipped_window": False})


def generate(path: Path, entries: int, seed: int) -> Writer:
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8") as out:
        writer = Writer(out)
        number = 0
        while writer.seq < entries - 260:  # room for the last proposal
            number += 1
            proposal(writer, rng, number, voters=rng.randint(60, 220))
            if number % 7 == 0:
                draw(writer, rng, number // 7)
            if number % 5 == 0:
                writer.add("setting.changed", {"key": "vote_duration", "value": "3d", "member": "member 1"})
            if number % 11 == 0:
                writer.add("mandate.started", {"role": "facilitator", "member_id": number, "member": "member 2"})
        while writer.seq < entries:
            writer.add("need.met", {"need": writer.seq, "member": "member 3"})
    return writer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--strict", action="store_true", help="exit 1 when the target is missed")
    args = parser.parse_args(argv)
    for line in common.machine({}):
        print(line)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "log.jsonl"
        start = time.perf_counter()
        writer = generate(path, args.entries, args.seed)
        print(f"generated {writer.seq:,} entries ({path.stat().st_size / 1e6:.1f} MB) "
              f"in {time.perf_counter() - start:.1f} s")
        best, report = float("inf"), None
        for _ in range(3):
            start = time.perf_counter()
            with path.open("rb") as lines:
                report = verify(lines, head=record.Head(writer.seq, writer.prev).short())
            best = min(best, time.perf_counter() - start)
    if not report.ok:
        print(f"the generated export does not verify: {report.problem}")
        return 2
    print(report.summary())
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    verdict = "met" if best < TARGET_SECONDS else "MISSED"
    print(f"verify: best of 3 {best:.2f} s for {report.entries:,} entries "
          f"({report.entries / best:,.0f} entries/s); target < {TARGET_SECONDS:.0f} s: {verdict}; "
          f"peak RSS {peak:.0f} MB")
    return 1 if args.strict and best >= TARGET_SECONDS else 0


if __name__ == "__main__":
    sys.exit(main())
