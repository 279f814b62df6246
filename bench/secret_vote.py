#!/usr/bin/env python
"""A secret vote's reply latency beside an open vote's, in one run.

One group of N members; two proposals open side by side, one open and one
secret (and, with --ranked, both ranked over 5 options). Every member votes on
both, alternating which comes first, so the two kinds share the machine's
weather. Each vote is timed through `core.intake` (the transaction that applies
it and records its replies in the outbox: what stands between the member's
message and the bot's answer), then marked delivered as the delivery layer
does (for a secret vote that also blanks its sealed rows; timed apart).

    python bench/secret_vote.py                       # SQLite, 200 and 1,000 members
    python bench/secret_vote.py --backend both        # SQLite, then a throwaway PostgreSQL
    python bench/secret_vote.py --ranked              # ranked ballots instead of yes/no

Target (issue 12): a secret vote within 20% of an open vote.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import bot.app  # noqa: E402
import bot.config  # noqa: E402
from bench import common  # noqa: E402
from bot.clock import ManualClock  # noqa: E402
from bot.events import ChatRef, CommandMessage, MemberJoined, UserRef  # noqa: E402

PLATFORM = "bench"
GROUP = ChatRef(platform=PLATFORM, chat_id="group")
OPTIONS = ("Library", "Cafe", "Park", "Hall", "Garden")


class Voters:
    def __init__(self, core, members: int, ranked: bool) -> None:
        self.core, self.members, self.ranked = core, members, ranked
        self.events = 0

    def event_id(self) -> str:
        self.events += 1
        return f"e{self.events}"

    def say(self, user: int, text: str, private: bool = False):
        chat = ChatRef(platform=PLATFORM, chat_id=f"dm-{user}") if private else GROUP
        return self.core.intake(CommandMessage(
            chat=chat, sender=UserRef(platform=PLATFORM, user_id=f"u{user}"), sender_name=f"Member {user}",
            text=text if private else "!" + text, event_id=self.event_id(), is_private=private,
            chat_title=None if private else "Bench group"))

    def setup(self) -> None:
        for user in range(self.members):
            self.core.intake(MemberJoined(chat=GROUP, user=UserRef(platform=PLATFORM, user_id=f"u{user}"),
                                          display_name=f"Member {user}", event_id=self.event_id()))
        how = f'options="{"; ".join(OPTIONS)}" method=ranked' if self.ranked else ""
        self.deliver(self.say(0, f"propose Open question {how} closes=7d"))
        self.deliver(self.say(0, f"propose Secret question {how} secret=yes closes=7d"))

    def choice(self, rng: random.Random) -> str:
        if self.ranked:
            return " ".join(map(str, rng.sample(range(1, len(OPTIONS) + 1), rng.randint(1, len(OPTIONS)))))
        return rng.choice(("yes", "no", "abstain"))

    def deliver(self, outgoing) -> float:
        started = time.perf_counter_ns()
        self.core.delivered([item.id for item in outgoing])
        return (time.perf_counter_ns() - started) / 1e6


def run(backend: str, members: int, ranked: bool) -> dict:
    with common.throwaway_database(backend) as url:
        core = bot.app.build_core(url, ManualClock(), bot.config.DefaultsConfig())
        try:
            voters = Voters(core, members, ranked)
            voters.setup()
            return {"server": common.describe_server(core.db.engine, backend), "times": vote_both(voters)}
        finally:
            core.db.dispose()


def vote_both(voters: Voters) -> dict[str, list[float]]:
    """Every member votes on both proposals, alternating which first; milliseconds per vote."""
    rng = random.Random(12)
    times = {"open": [], "secret": [], "open mark": [], "secret mark": []}
    for user in range(voters.members):
        for kind in (("open", "secret") if user % 2 else ("secret", "open")):
            number, private = (1, False) if kind == "open" else (2, True)
            started = time.perf_counter_ns()
            outgoing = voters.say(user, f"vote {number} {voters.choice(rng)}", private)
            times[kind].append((time.perf_counter_ns() - started) / 1e6)
            assert outgoing, f"no reply to a {kind} vote"
            times[f"{kind} mark"].append(voters.deliver(outgoing))
    return times


def summary(values: list[float]) -> str:
    ordered = sorted(values)
    return (f"p50 {statistics.median(ordered):6.2f}  p90 {common.pct(ordered, 90):6.2f}  "
            f"p99 {common.pct(ordered, 99):6.2f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="sqlite")
    parser.add_argument("--members", type=int, nargs="+", default=[200, 1000])
    parser.add_argument("--ranked", action="store_true")
    args = parser.parse_args(argv)
    backends = ("sqlite", "postgresql") if args.backend == "both" else (args.backend,)
    met = True
    for backend in backends:
        for members in args.members:
            result = run(backend, members, args.ranked)
            times = result["times"]
            kind = "ranked" if args.ranked else "yes/no"
            print(f"\n{backend}, {members} members voting on an open and a secret {kind} proposal "
                  f"({result['server']})")
            for label in ("open", "secret", "open mark", "secret mark"):
                print(f"  {label:12} ms  {summary(times[label])}")
            ratio = statistics.median(times["secret"]) / statistics.median(times["open"])
            p90 = common.pct(sorted(times["secret"]), 90) / common.pct(sorted(times["open"]), 90)
            print(f"  secret/open: p50 ×{ratio:.2f}, p90 ×{p90:.2f} (target ≤ ×1.20)")
            met = met and ratio <= 1.2
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
