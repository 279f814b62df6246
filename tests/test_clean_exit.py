"""The bot ends without tracebacks: the scheduler lets a run in progress finish
(APScheduler's own shutdown cancelled it: a CancelledError at every console exit),
and the console stops cleanly on Ctrl-C or SIGTERM."""

import asyncio
import logging
import os
import re
import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from bot.clock import SystemClock
from scheduler.runner import Scheduler

ROOT = Path(__file__).resolve().parents[1]


async def test_shutdown_lets_the_run_in_progress_finish(caplog):
    started, finished = asyncio.Event(), []

    async def run_due():
        started.set()
        await asyncio.sleep(0.3)  # slow work, still going when shutdown is asked for
        finished.append(True)
        return None

    scheduler = Scheduler(run_due, SystemClock(), timedelta(seconds=0.05))
    scheduler.start()
    await asyncio.wait_for(started.wait(), 10)
    with caplog.at_level(logging.WARNING):
        await scheduler.shutdown()
        await asyncio.sleep(0.2)  # a later sweep, had one been left, would start here
    assert finished == [True]
    assert not caplog.records, [record.getMessage() for record in caplog.records]
    assert [task for task in asyncio.all_tasks() if task is not asyncio.current_task()] == []


def quiet(err: str) -> str:
    """stderr without asyncio's slow-callback notes (-X dev reports any step over 0.1 s: on a
    busy shared machine start-up's garbage collection can be one; it says nothing about exiting)."""
    return "".join(line for line in err.splitlines(keepends=True)
                   if not re.match(r"WARNING asyncio: Executing <.*> took [0-9.]+ seconds", line))


def console(tmp_path, *args, **popen):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-X", "dev", "-m", "bot.cli", "console", "--db", str(tmp_path / "c.db"),
                             *args], cwd=tmp_path, env=env, text=True, **popen)


def test_a_script_ending_after_an_audit_report_exits_cleanly(tmp_path):
    script = tmp_path / "t.txt"
    script.write_text("!propose Test closes=1d\n:wait 1d\n!audit\n:wait 8d\n!audit report\n")
    process = console(tmp_path, "--script", str(script), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    assert "Auditor: alice." in out
    assert "Traceback" not in err and "CancelledError" not in err, err
    assert quiet(err) == ""  # -X dev would also show tasks destroyed while pending, unclosed resources


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_the_interactive_console_stops_cleanly_on_a_signal(tmp_path, signum):
    process = console(tmp_path, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert "Commons console room" in process.stdout.readline()  # signal handlers are in place
        process.stdin.write("!propose Test closes=1d\n")
        process.stdin.flush()
        assert "📜 #1 Test" in process.stdout.readline()
        process.send_signal(signum)
        returncode = process.wait(timeout=30)  # stdin stays open: the pending read must not hold the exit
        err = process.stderr.read()
    finally:
        process.kill()
        process.communicate()
    assert returncode == 0, err
    assert quiet(err) == "", err
