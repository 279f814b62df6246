#!/usr/bin/env python
"""Ranked-count benchmark: instant runoff and STV (Scottish rules) over 10,000 ballots.

    python3 bench/ranked_count.py                 # 10,000 ballots, 10 options, seats=3 for STV
    python3 bench/ranked_count.py --ballots 100000

The ballots are seeded random and shaped like real ones: options differ in popularity, and each
ballot ranks 1–10 of them, short rankings being more common than full ones. Each count runs three
times; the table shows the best time (time.perf_counter). Target: under 1 s each.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.governance import ranked  # noqa: E402

TARGET_SECONDS = 1.0


def make_ballots(count: int, options: list[str], seed: int) -> list[list[str]]:
    rng = random.Random(seed)
    popularity = [rng.uniform(0.2, 3.0) for _ in options]
    # Lengths 1..n, weighted towards short rankings (many voters rank only a few options).
    lengths = list(range(1, len(options) + 1))
    length_weights = [1.0 / length for length in lengths]
    ballots = []
    for _ in range(count):
        length = rng.choices(lengths, length_weights)[0]
        remaining, weights, ranking = list(options), list(popularity), []
        for _ in range(length):  # weighted sampling without replacement
            i = rng.choices(range(len(remaining)), weights)[0]
            ranking.append(remaining.pop(i))
            weights.pop(i)
        ballots.append(ranking)
    return ballots


def best_of(runs: int, count) -> tuple[float, ranked.Count]:
    best, result = float("inf"), None
    for _ in range(runs):
        start = time.perf_counter()
        result = count()
        best = min(best, time.perf_counter() - start)
    return best, result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ballots", type=int, default=10_000)
    parser.add_argument("--options", type=int, default=10)
    parser.add_argument("--seats", type=int, default=3)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    options = [f"Option {i + 1}" for i in range(args.options)]
    ballots = make_ballots(args.ballots, options, seed=20240501)
    rows = [
        ("irv", *best_of(args.runs, lambda: ranked.irv(ballots, options, "bench"))),
        (f"stv seats={args.seats}", *best_of(args.runs, lambda: ranked.stv(ballots, options, args.seats, "bench"))),
    ]
    print(f"{args.ballots} ballots over {args.options} options, best of {args.runs} runs")
    print(f"{'count':<14}{'seconds':>9}{'stages':>8}  winners")
    missed = False
    for name, seconds, count in rows:
        missed |= seconds >= TARGET_SECONDS
        print(f"{name:<14}{seconds:>9.3f}{len(count.stages):>8}  {', '.join(count.winners)}")
    print(f"target: each under {TARGET_SECONDS:.0f} s — {'MISSED' if missed else 'met'}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
