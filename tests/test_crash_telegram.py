"""kill -9 in the middle of a burst of 300 votes, then a restart on the same
database: every vote is counted once, none is lost (see tests/telegram_crash.py).

python-telegram-bot's own Updater lost 131 of 300 here: it confirms a batch
of updates to Telegram while still working through it in memory. The adapter
confirms an update (next getUpdates offset, or the webhook's 200) only after
its effects are committed."""

import asyncio
import re

from tests.telegram_crash import CrashRun, kill_during_burst
from tests.telegram_emulator import BotApiEmulator

MEMBERS = 300
TIME_LIMIT = 240  # seconds for the whole scenario (two start-ups, the burst, the catch-up)
NOISE = re.compile(r"HTTP Request:|apscheduler\.scheduler: Added job|alembic\.runtime")


def show_log(run_log) -> None:
    if run_log is None or not run_log.exists():
        return
    lines = [line for line in run_log.read_text().splitlines() if not NOISE.search(line)]
    print(f"--- the bot's log ({run_log}), {len(lines)} lines without request noise ---")
    print("\n".join(lines[-400:]))


async def crash(tmp_path, mode: str) -> CrashRun:
    log = tmp_path / f"bot-{mode}.log"
    try:
        async with BotApiEmulator() as emu:
            run = await asyncio.wait_for(kill_during_burst(emu, tmp_path, mode, members=MEMBERS), TIME_LIMIT)
    except BaseException:
        show_log(log)
        raise
    print(f"{mode}: {run.ballots_at_kill} ballots in the database at the kill ({run.kill_after:.2f} s into the "
          f"burst, {run.pending_at_kill} updates unconfirmed, {run.applied_unconfirmed} of them applied); after the "
          f"restart {run.ballots}/{MEMBERS}; first reply {run.first_reply:.2f} s after the restart, everything "
          f"applied after {run.all_applied:.2f} s; webhook answers {run.webhook_statuses}; presses answered "
          f"{run.presses_answered}/{len(run.presses)}, typed votes with 👍 {run.typed_acknowledged}/{len(run.typed)}")
    return run


def check(run: CrashRun) -> None:
    try:
        assert 0 < run.ballots_at_kill < MEMBERS, "the kill must fall in the middle of the burst"
        # Nothing was confirmed to Telegram before it was applied (PTB's Updater: 131 votes were).
        assert run.applied_unconfirmed >= 0, run
        assert run.ballots == MEMBERS, f"{run.ballots} ballots after the restart, {MEMBERS} votes were cast"
        assert run.distinct == MEMBERS, "one ballot per member"
        assert f"Tally: {MEMBERS} yes · 0 no" in run.summary and f"Ballots ({MEMBERS})" in run.summary, run.summary
        assert not run.notes, run.notes
        # Acknowledgements are in the outbox with the ballot (a replayed press is answered too): none is lost.
        assert run.presses_answered == len(run.presses) and run.typed_acknowledged == len(run.typed)
        assert run.first_reply < 60
    except AssertionError:
        show_log(run.log)
        raise


async def test_polling_kill_9_mid_burst_loses_no_vote(tmp_path):
    run = await crash(tmp_path, "polling")
    check(run)


async def test_webhook_kill_9_mid_burst_loses_no_vote(tmp_path):
    run = await crash(tmp_path, "webhook")
    check(run)
    # While the bot was dead the emulator's POSTs were refused; it kept trying, as Telegram does.
    assert run.refused_connections >= 1, run.webhook_statuses
    assert set(run.webhook_statuses) <= {0, 200}, run.webhook_statuses  # no update failed to apply
