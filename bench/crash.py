#!/usr/bin/env python
"""kill -9 in the middle of a burst of votes, on Telegram: what is counted after the restart.

`commons-bot run` runs as a child process (its own process group) against the in-process Bot API
emulator (`tests.telegram_emulator.BotApiEmulator`), on a SQLite file. A group of N members; one
opens a proposal; every member votes within about 2 s, half typing `/vote 1 yes`, half pressing the
Yes button. When the database holds about half the ballots the whole process group gets SIGKILL; the
bot is started again on the same database and configuration, a member asks `/proposals` at once,
and the run waits until every update Telegram still held is applied. Once with long polling, once
with the webhook. The scenario is tests/telegram_crash.py (also run by tests/test_crash_telegram.py).

    python bench/crash.py                      # polling, then webhook; 300 members (about 40 s)
    python bench/crash.py --mode webhook --runs 3
    python bench/crash.py --members 1000 --kill-at 0.3
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# bench/ holds a telegram.py: keep it off sys.path so `import telegram` is python-telegram-bot.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import argparse  # noqa: E402
import asyncio  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

from bench import common  # noqa: E402
from tests.telegram_crash import CrashRun, kill_during_burst  # noqa: E402
from tests.telegram_emulator import BotApiEmulator  # noqa: E402


async def one(mode: str, members: int, kill_at: float, keep: bool) -> CrashRun:
    workdir = Path(tempfile.mkdtemp(prefix=f"commons-crash-{mode}-"))
    async with BotApiEmulator() as emu:
        run = await asyncio.wait_for(kill_during_burst(emu, workdir, mode, members=members, kill_share=kill_at), 300)
    if not keep and run.ballots == members and not run.notes:
        for path in sorted(workdir.iterdir()):
            path.unlink()
        workdir.rmdir()
    else:
        run.notes.append(f"files kept in {workdir}")
    return run


def machine() -> list[str]:
    import aiohttp
    import telegram

    return common.machine({"python-telegram-bot": telegram.__version__, "aiohttp": aiohttp.__version__})


def report(mode: str, members: int, runs: list[CrashRun]) -> bool:
    ok = True
    print(f"--- {mode} ---")
    for n, run in enumerate(runs, 1):
        good = run.ballots == members and run.distinct == members and run.applied_unconfirmed >= 0
        ok = ok and good and not [note for note in run.notes if not note.startswith("files kept")]
        extra = ""
        if mode == "webhook":
            extra = (f"; webhook POSTs refused while dead: {run.refused_connections} "
                     f"(answers: {dict(sorted(run.webhook_statuses.items()))})")
        print(f"run {n}: counted {run.ballots} of {members} ({run.distinct} distinct members) — "
              f"{'OK' if good else 'VOTES LOST OR DOUBLED'}; `/proposal {run.number}` says "
              f"{'all' if f'Ballots ({members})' in run.summary else 'NOT all'} {members}")
        print(f"       at the kill ({run.kill_after:.2f} s into the burst, {run.injected_at_kill} of {members} votes "
              f"sent): {run.ballots_at_kill} ballots in the database, {run.pending_at_kill} updates unconfirmed, "
              f"{run.applied_unconfirmed} of them already applied (replayed after the restart){extra}")
        print(f"       acknowledged: {run.presses_answered} of {len(run.presses)} presses answered, "
              f"{run.typed_acknowledged} of {len(run.typed)} typed votes with the 👍 reaction")
        print(f"       restart -> first reply (`/proposals`, behind the backlog): {run.first_reply:.2f} s "
              f"(start-up until the first {'setWebhook' if mode == 'webhook' else 'getUpdates'}: {run.ready:.2f} s); "
              f"-> every vote counted: {run.all_applied:.2f} s")
        for note in run.notes:
            print(f"       note: {note}")
    if len(runs) > 1:
        replies = [run.first_reply for run in runs]
        print(f"restart -> first reply over {len(runs)} runs: median {statistics.median(replies):.2f} s, "
              f"min {min(replies):.2f} s, max {max(replies):.2f} s")
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=["polling", "webhook", "both"], default="both")
    parser.add_argument("--members", type=int, default=300)
    parser.add_argument("--kill-at", type=float, default=0.5, help="share of the ballots in the database at the kill")
    parser.add_argument("--runs", type=int, default=1, help="runs per mode")
    parser.add_argument("--keep", action="store_true", help="keep each run's database, config and bot log")
    args = parser.parse_args(argv)
    if args.members < 4 or not 0 < args.kill_at < 1:
        raise SystemExit("--members must be at least 4 and --kill-at between 0 and 1")
    print(f"Commons Telegram kill -9 benchmark — {time.strftime('%Y-%m-%d %H:%M:%S')}")
    print(f"setup: `commons-bot run` (child process, own process group, SIGKILL to the group) <- BotApiEmulator "
          f"(in-process, loopback HTTP; webhook retries after 0.2 s, doubling up to 5 s); SQLite file (WAL); "
          f"{args.members} members, half typed /vote, half button presses, within ~2 s; kill at "
          f"{args.kill_at:.0%} of the ballots")
    for line in machine():
        print(line)
    modes = ["polling", "webhook"] if args.mode == "both" else [args.mode]
    ok = True
    for mode in modes:
        runs = [asyncio.run(one(mode, args.members, args.kill_at, args.keep)) for _ in range(args.runs)]
        ok = report(mode, args.members, runs) and ok
    return 0 if ok else 2


if __name__ == "__main__":
    sys.exit(main())
