"""A hard crash in the middle of a vote, for real: `commons-bot run` as a child
process against the Bot API emulator, killed with SIGKILL (the whole process
group) half-way through a burst of votes, then started again on the same
SQLite file. Used by tests/test_crash_telegram.py and bench/crash.py (the
Matrix counterpart is tests/bot_process.py).

The scenario (`kill_during_burst`): a group of N members; one opens a
proposal; every member votes within about two seconds, half by typing
`/vote <#> yes`, half by pressing the Yes button; once the database holds
about half the ballots the bot is killed; it is started again, a member asks
`/proposals` at once (the time to that reply is measured), and the run waits
until every vote is in. Nothing may be lost or counted twice.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import signal
import socket
import sqlite3
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from tests.telegram_emulator import BotApiEmulator

ROOT = Path(__file__).resolve().parent.parent
GROUP = -1001122334455
FIRST_MEMBER = 5000
SECRET = "crash-test-secret"
BALLOTS = ("SELECT count(*), count(DISTINCT b.member_id) FROM ballots b JOIN proposals p ON p.id = b.proposal_id "
           "WHERE p.number = ?")


def free_port() -> int:
    """A port that is free now, below Linux's ephemeral range (32768–60999): the bot binds it seconds
    later, and twice, while the machine opens outgoing connections, which take ephemeral ports."""
    for _ in range(200):
        port = random.randrange(20000, 32000)
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port found for the webhook")


def write_config(path: Path, database: Path, emu: BotApiEmulator, mode: str, port: int = 0) -> Path:
    lines = [f'[database]\nurl = "sqlite:///{database}"\n',
             f'[telegram]\ntoken = "{emu.token}"\nbase_url = "{emu.base_url}"\nmode = "{mode}"\n']
    if mode == "webhook":
        lines.append(f'webhook_url = "http://127.0.0.1:{port}/telegram"\nlisten = "127.0.0.1"\nport = {port}\n'
                     f'secret_token = "{SECRET}"\n')
    lines.append('[scheduler]\nsweep_interval = "30s"\n')
    path.write_text("".join(lines))
    return path


class BotProcess:
    """`commons-bot run --config …` in a session of its own, so SIGKILL reaches the whole group.
    stdout and stderr go to `log` (appended: both runs end up in one file)."""

    def __init__(self, config: Path, log: Path, log_level: str = "INFO") -> None:
        self.config, self.log, self.log_level = config, log, log_level
        self.process: asyncio.subprocess.Process | None = None
        self.started_at = 0.0

    async def start(self) -> BotProcess:
        with self.log.open("a") as out:
            out.write(f"\n===== commons-bot run started at {time.strftime('%H:%M:%S')} =====\n")
        self.started_at = time.monotonic()
        with self.log.open("a") as out:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bot.cli", "run", "--config", str(self.config), "--log-level", self.log_level,
                cwd=self.config.parent, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdin=asyncio.subprocess.DEVNULL,
                stdout=out, stderr=out, start_new_session=True)
        return self

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.returncode is None

    def kill(self) -> None:
        """SIGKILL to the whole process group: no clean-up of any kind."""
        if self.process is not None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    async def wait(self, timeout: float = 20) -> int:
        assert self.process is not None
        return await asyncio.wait_for(self.process.wait(), timeout)

    async def terminate(self, timeout: float = 20) -> int:
        """SIGTERM, as an operator stops it; SIGKILL if it does not end in time."""
        assert self.process is not None
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return await self.wait(timeout)
        except TimeoutError:
            self.kill()
            await self.wait(timeout)
            raise

    async def finish(self) -> None:
        """Always safe (a finally): whatever state it is in, the process group is gone afterwards."""
        if self.process is None:
            return
        if self.process.returncode is None:
            self.kill()
        try:
            await self.wait(10)
        except TimeoutError:
            pass


def count_ballots(database: Path, number: int) -> tuple[int, int]:
    """(ballots, distinct members) for a proposal, read-only, as committed."""
    if not database.exists():
        return 0, 0
    connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5)
    try:
        return connection.execute(BALLOTS, (number,)).fetchone()
    except sqlite3.OperationalError:  # the schema is not there yet
        return 0, 0
    finally:
        connection.close()


@dataclass
class CrashRun:
    mode: str
    members: int
    number: int = 0
    card_id: int = 0
    ballots_at_kill: int = 0  # committed ballots once the first process was dead
    pending_at_kill: int = 0  # updates not yet confirmed to the emulator when the kill happened
    # Votes applied (committed) but not yet confirmed at the kill: redelivered after the restart and
    # ignored as replays. Never negative: that would be a vote confirmed before it was applied.
    applied_unconfirmed: int = 0
    injected_at_kill: int = 0  # votes sent by members when the kill happened
    kill_after: float = 0.0  # seconds from the first vote to the kill
    ready: float = 0.0  # seconds from the restart to its first getUpdates / setWebhook (start-up done)
    first_reply: float = 0.0  # seconds from the restart (process spawned) to the /proposals answer
    all_applied: float = 0.0  # seconds from the restart until every ballot was in
    ballots: int = 0
    distinct: int = 0
    summary: str = ""  # the restarted bot's answer to /proposal <#>
    refused_connections: int = 0  # webhook POSTs that could not connect (the bot was dead)
    webhook_statuses: dict[int, int] = field(default_factory=dict)  # HTTP status (0: no answer) -> POSTs
    presses: list[str] = field(default_factory=list)  # callback query ids of the button votes
    typed: list[int] = field(default_factory=list)  # message ids of the typed votes
    presses_answered: int = 0  # presses whose callback query was answered (once, as Telegram allows)
    typed_acknowledged: int = 0  # typed votes with the bot's 👍 reaction
    log: Path | None = None
    notes: list[str] = field(default_factory=list)


async def _until(emu: BotApiEmulator, bot: BotProcess, predicate, timeout: float, what: str) -> None:
    """Wait for `predicate`; fail at once, saying so, if the bot process exits meanwhile."""
    def done() -> bool:
        if not bot.running:
            raise RuntimeError(f"the bot exited (status {bot.process.returncode}) while waiting for {what}; "
                               f"see {bot.log}")
        return bool(predicate())
    await emu.wait_for(done, timeout=timeout)


async def _reply(emu: BotApiEmulator, bot: BotProcess, message_id: int, timeout: float) -> dict:
    """The bot's first message in the group that replies to `message_id`."""
    def found():
        return next((s for s in emu.sent if s["chat_id"] == GROUP and s["reply_to"] == message_id), None)
    await _until(emu, bot, lambda: found() is not None, timeout, f"the answer to message {message_id}")
    return found()


async def kill_during_burst(emu: BotApiEmulator, workdir: Path, mode: str = "polling", members: int = 300,
                            kill_share: float = 0.5, burst_seconds: float = 2.0) -> CrashRun:
    """Run the scenario; raises (TimeoutError, AssertionError) if the bot does not get there."""
    run = CrashRun(mode=mode, members=members, log=workdir / f"bot-{mode}.log")
    database = workdir / f"crash-{mode}.db"
    port = free_port() if mode == "webhook" else 0
    config = write_config(workdir / f"crash-{mode}.toml", database, emu, mode, port)
    emu.add_chat(GROUP, "Tenants' Union", member_count=members + 1)
    users = [FIRST_MEMBER + n for n in range(members)]
    for user in users:
        emu.add_user(user, "Member", last_name=str(user))

    first = BotProcess(config, run.log)
    second = BotProcess(config, run.log)
    try:
        await first.start()
        await _until(emu, first, lambda: emu.commands.get('{"type":"all_group_chats"}') and
                     (mode != "webhook" or emu.webhook_url), 60, "the bot to start")
        propose = emu.send_text(GROUP, users[0], "/propose Rent strike closes=1d")
        card = await _reply(emu, first, propose, timeout=30)
        run.card_id = card["message_id"]
        run.number = int(re.search(r"#(\d+) Rent strike", card["plain"])[1])
        buttons = [b["callback_data"] for row in card["reply_markup"]["inline_keyboard"] for b in row]
        yes = next(data for data in buttons if data.endswith(" yes"))

        # The burst, in small batches; the kill comes from a watcher of the database.
        target = max(1, round(members * kill_share))
        injected = 0

        async def inject() -> None:
            nonlocal injected
            batch = 15
            started = time.monotonic()
            for start in range(0, members, batch):
                delay = started + burst_seconds * start / members - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                for user in users[start:start + batch]:
                    if user % 2:
                        run.presses.append(emu.press(GROUP, run.card_id, user, yes))
                    else:
                        run.typed.append(emu.send_text(GROUP, user, f"/vote {run.number} yes"))
                    injected += 1

        burst_started = time.monotonic()
        injector = asyncio.create_task(inject())
        try:
            deadline = time.monotonic() + 60
            # One read-only connection while watching (WAL: each query sees the latest commit and never
            # blocks the bot); opening one per look would take CPU from the bot on a small machine.
            watch = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5)
            try:
                while watch.execute(BALLOTS, (run.number,)).fetchone()[0] < target:
                    if time.monotonic() > deadline or not first.running:
                        raise TimeoutError(f"the first run stored {count_ballots(database, run.number)[0]} "
                                           f"ballots of the {target} awaited before the kill")
                    await asyncio.sleep(0.01)
                first.kill()
            finally:
                watch.close()
            run.kill_after = time.monotonic() - burst_started
            run.injected_at_kill = injected
            run.pending_at_kill = emu.pending_updates
            await first.wait()
        finally:
            await injector  # every member still votes: the rest queue up while the bot is dead
        run.ballots_at_kill = count_ballots(database, run.number)[0]
        # Every update before the burst (the /propose) was confirmed; of the votes sent by the kill, those
        # not pending any more were confirmed.
        run.applied_unconfirmed = run.ballots_at_kill - (run.injected_at_kill - run.pending_at_kill)
        await asyncio.sleep(0.5)  # dead for a moment: Telegram keeps trying the webhook meanwhile

        await second.start()
        asked = emu.send_text(GROUP, users[1], "/proposals")
        answer = await _reply(emu, second, asked, timeout=90)
        run.first_reply = answer["at"] - second.started_at
        run.ready = next(at for method, at in emu.calls if method in ("getUpdates", "setWebhook")
                         and at >= second.started_at) - second.started_at
        # Updates are applied in order, so the answer to /proposals (asked after every vote) means every vote
        # still held by Telegram has been applied; a vote lost at the kill would never come now.
        await _until(emu, second, lambda: emu.pending_updates == 0, 60, "every update to be applied")
        try:
            await emu.wait_for(lambda: count_ballots(database, run.number)[0] >= members, timeout=10)
        except TimeoutError:
            run.notes.append(f"only {count_ballots(database, run.number)[0]} of {members} ballots after the restart")
        run.all_applied = time.monotonic() - second.started_at
        run.webhook_statuses = dict(Counter(d["status"] for d in emu.webhook_deliveries))
        run.refused_connections = run.webhook_statuses.get(0, 0)
        asked = emu.send_text(GROUP, users[2], f"/proposal {run.number}")
        run.summary = (await _reply(emu, second, asked, timeout=60))["plain"]
        await asyncio.sleep(1.0)  # a vote counted twice would show up now
        run.ballots, run.distinct = count_ballots(database, run.number)
        run.presses_answered = sum(1 for query in run.presses if query in emu.answers)
        reacted = {r["message_id"] for r in emu.reactions if r["chat_id"] == GROUP and r["reaction"]}
        run.typed_acknowledged = sum(1 for message in run.typed if message in reacted)
        code = await second.terminate()
        if code != 0:
            run.notes.append(f"the restarted bot exited with {code} on SIGTERM")
    finally:
        await first.finish()
        await second.finish()
    return run
