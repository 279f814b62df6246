#!/usr/bin/env python
"""Kill -9 in a burst of Matrix votes: how many are counted, and how fast the bot is back.

`commons-bot run` runs as a child process against a throwaway local Synapse
(tests/synapse_server.py). N members of one unencrypted room vote on a proposal
within a couple of seconds, half by tapping 👍 on the card, half by typing
`!vote 1 yes`. When about half the ballots are in the bot's SQLite database, the
bot's process group gets SIGKILL; it is restarted at once on the same database and
Matrix store, and `!proposals` is sent right after the restart. The scenario is
tests/bot_process.py's `crash_burst`, the one tests/test_crash_matrix.py checks.

    python bench/matrix_crash.py                    # 60 voters, 2 s burst, kill at half, one run
    python bench/matrix_crash.py --voters 200 --burst-seconds 5 --runs 3

Reported per run: ballots counted out of N (and whether every voter has exactly one),
how many votes came after the sync token the bot had saved (the restart syncs them
again) and how many of those had already been applied (the kill fell inside a sync
batch: the core must ignore them), the time from the restart (process start) to the
answer to `!proposals` seen by the member and to the last ballot, and what the bot
said about the votes (✅ per typed vote, the card's final tally).
Exit status 2 when a vote was lost or counted twice.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# As in bench/matrix_bench.py: bench/telegram.py must not shadow python-telegram-bot.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import argparse  # noqa: E402
import asyncio  # noqa: E402
import importlib.metadata  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections import Counter  # noqa: E402

from bench import common  # noqa: E402
from tests.bot_process import CrashResult, crash_burst  # noqa: E402
from tests.synapse_server import SynapseServer  # noqa: E402


def check(result: CrashResult) -> list[str]:
    problems = []
    voters = [user for user, _ in result.ballots]
    if len(result.ballots) != result.voters or sorted(voters) != sorted(result.members):
        extra = Counter(voters) - Counter(result.members)
        missing = Counter(result.members) - Counter(voters)
        problems.append(f"{len(result.ballots)} ballots for {result.voters} voters "
                        f"({sum(missing.values())} missing, {sum(extra.values())} unexpected)")
    if any(choice != "yes" for _, choice in result.ballots):
        problems.append("a ballot differs from the vote cast")
    if result.processed != result.voters:
        problems.append(f"{result.processed} of {result.voters} vote events recorded as processed")
    if not (0 < result.counted_after_kill < result.voters):
        problems.append(f"the kill did not land inside the burst ({result.counted_after_kill} ballots at the kill)")
    if result.replies_to_proposals != 1:
        problems.append(f"`!proposals` sent at the restart was answered {result.replies_to_proposals} times")
    if f"yes ({result.voters})" not in result.detail_reply:
        problems.append("`!proposal 1` after the restart does not list every voter")
    return problems


def report(n: int, r: CrashResult, problems: list[str]) -> None:
    acks = Counter(r.acks.values())
    print(f"--- run {n}: {r.voters} voters ({r.voters - len(r.typed)} 👍 on the card, {len(r.typed)} typed), "
          f"set-up {r.setup_seconds:.1f} s ---")
    rows = [
        ("ballots counted after the restart", f"{len(r.ballots)} / {r.voters}"),
        ("  distinct voters with a ballot / ballots of other members",
         f"{len({u for u, _ in r.ballots} & set(r.members))} / {len({u for u, _ in r.ballots} - set(r.members))}"),
        ("votes sent when the kill was decided", f"{r.sent_at_kill} / {r.voters}"),
        ("ballots at the kill (seen before it / once dead)", f"{r.counted_at_kill} / {r.counted_after_kill}"),
        ("votes after the saved sync token (synced again at restart)", f"{r.unconfirmed}"),
        ("  of them applied before the kill (replays ignored)", f"{r.replayed}"),
        ("restart (process start) -> the bot logs it is running", f"{r.restart_to_running:.2f} s"),
        ("restart -> answer to `!proposals` seen by the member", f"{r.restart_to_reply:.2f} s"),
        ("restart -> every ballot in the database", f"{r.restart_to_counted:.2f} s"),
        ("typed votes with 0 / 1 / 2+ ✅", f"{acks.get(0, 0)} / {acks.get(1, 0)} / "
                                          f"{sum(v for k, v in acks.items() if k > 1)}"),
        ("card's final tally", r.final_tally or "(no edit seen)"),
        ("answers to `!proposals` sent at the restart", f"{r.replies_to_proposals}"),
        ("all votes sent within", f"{r.sent_seconds:.2f} s"),
    ]
    for label, value in rows:
        print(f"{label:<62}{value:>30}")
    print("checks: " + ("passed" if not problems else "FAILED: " + "; ".join(problems)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--voters", type=int, default=60, help="members voting (half tap, half type)")
    parser.add_argument("--burst-seconds", type=float, default=2.0, help="the votes are spread over this long")
    parser.add_argument("--kill-share", type=float, default=0.5, help="kill when this share of ballots is in")
    parser.add_argument("--runs", type=int, default=1, help="kill -9 bursts, each with a fresh bot and room")
    args = parser.parse_args(argv)
    if args.voters < 2 or not 0 < args.kill_share < 1 or args.runs < 1:
        raise SystemExit("--voters must be at least 2, --kill-share between 0 and 1, --runs at least 1")

    started = time.monotonic()
    print(f"Commons Matrix crash benchmark (kill -9 in a burst of votes) — {time.strftime('%Y-%m-%d %H:%M:%S')}")
    versions = {"matrix-nio": importlib.metadata.version("matrix-nio"),
                "Synapse": importlib.metadata.version("matrix-synapse")}
    for line in common.machine(versions):
        print(line)
    print("setup: one local Synapse (tests/synapse_server.py: SQLite, rate limits raised, 127.0.0.1), an "
          "unencrypted room; the bot is `python -m bot.cli run --config …` (SQLite database, production "
          "defaults) in its own process group, killed with SIGKILL and restarted on the same database and store")
    synapse = SynapseServer()
    results: list[CrashResult] = []
    failed = False
    try:
        synapse.start()  # on the main thread: its parent-death signal is per thread
        for n in range(1, args.runs + 1):
            with tempfile.TemporaryDirectory(prefix="commons-matrix-crash-") as workdir:
                result = asyncio.run(crash_burst(synapse, Path(workdir), voters=args.voters,
                                                 burst_seconds=args.burst_seconds, kill_share=args.kill_share))
            problems = check(result)
            failed = failed or bool(problems)
            results.append(result)
            report(n, result, problems)
    finally:
        synapse.stop()
    if len(results) > 1:
        replies = sorted(r.restart_to_reply for r in results)
        print(f"restart -> answer, median / max over {len(results)} runs: {statistics.median(replies):.2f} / "
              f"{replies[-1]:.2f} s; counted {sum(len(r.ballots) for r in results)} / "
              f"{sum(r.voters for r in results)}")
    print(f"run time: {time.monotonic() - started:.1f} s (Synapse start and stop included)")
    return 2 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
