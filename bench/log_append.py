#!/usr/bin/env python
"""What appending a group-log entry adds to a vote, measured side by side in one process.

400 members vote (yes/no) on one proposal through `core.handle`, in blocks of 100 votes that
alternate between the real code and the same code with the ballot's log entry left out, 60 blocks
each; the difference of the medians is the cost of the entry. Target (issue 14): under 0.2 ms.

    python3 bench/log_append.py [--blocks 60]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import bot.app  # noqa: E402
import bot.config  # noqa: E402
from bot.clock import ManualClock  # noqa: E402
from bot.events import ChatRef, CommandMessage, MemberJoined, UserRef  # noqa: E402
from bot.governance import proposals  # noqa: E402

GROUP = ChatRef(platform="bench", chat_id="group")
MEMBERS, BLOCK = 400, 100


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--blocks", type=int, default=60)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="commons-bench-") as directory:
        core = bot.app.build_core(f"sqlite:///{directory}/bench.db", ManualClock(), bot.config.DefaultsConfig())
        try:
            times = run(core, args.blocks)
        finally:
            core.db.dispose()
    for mode, values in times.items():
        print(f"{mode:24} p50 {statistics.median(values):.3f} ms  mean {statistics.mean(values):.3f} ms")
    added = statistics.median(times["with the log"]) - statistics.median(times["without the log entry"])
    print(f"added per vote: {added:.3f} ms (target < 0.2 ms: {'met' if added < 0.2 else 'missed'})")
    return 0


def run(core, blocks: int) -> dict[str, list[float]]:
    events = iter(range(10**9))

    def say(user: int, text: str):
        return core.handle(CommandMessage(chat=GROUP, sender=UserRef(platform="bench", user_id=f"u{user}"),
                                          sender_name=f"Member {user}", text="!" + text,
                                          event_id=f"e{next(events)}", chat_title="Bench"))

    for user in range(MEMBERS):
        core.handle(MemberJoined(chat=GROUP, user=UserRef(platform="bench", user_id=f"u{user}"),
                                 display_name=f"Member {user}", event_id=f"e{next(events)}"))
    say(0, "propose Question closes=30d")
    real, rng = proposals._log_ballot, random.Random(7)
    times: dict[str, list[float]] = {"with the log": [], "without the log entry": []}
    try:
        for block in range(blocks):
            order = list(times) if block % 2 else list(reversed(times))
            for mode in order:
                proposals._log_ballot = real if mode == "with the log" else (lambda *_args, **_kw: None)
                for user in range(BLOCK):
                    started = time.perf_counter_ns()
                    say(user + (block % (MEMBERS // BLOCK)) * BLOCK, f"vote 1 {rng.choice(['yes', 'no'])}")
                    times[mode].append((time.perf_counter_ns() - started) / 1e6)
    finally:
        proposals._log_ballot = real
    return times


if __name__ == "__main__":
    sys.exit(main())
