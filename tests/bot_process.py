"""`commons-bot run` as a child process, killed with SIGKILL and restarted, against the
test Synapse: the parts shared by tests/test_crash_matrix.py and bench/matrix_crash.py.

- `BotProcess` writes the configuration (the bot's SQLite database and Matrix store in
  one work directory), starts the program in its own process group, kills the whole
  group with SIGKILL, restarts it on the same database and store, and reads the
  database on the side (WAL: reading never blocks the bot).
- `MatrixHttp` is the client API over plain HTTP with members' access tokens (no
  sync of their own, no encryption: the rooms here are unencrypted); `Watcher` is one
  member's raw `/sync` long poll, keeping every timeline event with the time its sync
  returned.
- `crash_burst` is the scenario: a room of N members, a proposal, half of them vote
  by tapping 👍 on the card and half by typing `!vote 1 yes`, all within a couple of
  seconds; the bot is killed when about half the ballots are in, and restarted.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp

from tests.synapse_server import RegisteredUser, SynapseServer

ROOT = Path(__file__).resolve().parents[1]
ACK = "✅"
YES = "👍"
SEEDED = 4  # 👍 👎 🤷 ✋ under a yes/no proposal
WATCH_FILTER = json.dumps({"presence": {"not_types": ["*"]}, "room": {"timeline": {"limit": 500}}})


class BotProcess:
    """The whole program as an operator runs it, in its own process group."""

    def __init__(self, workdir: Path, homeserver: str, bot: RegisteredUser) -> None:
        self.workdir = workdir
        self.db_path = workdir / "commons.db"
        self.config = workdir / "config.toml"
        self.config.write_text(f'[database]\nurl = "sqlite:///{self.db_path}"\n'
                               f'[matrix]\nhomeserver = "{homeserver}"\nuser_id = "{bot.user_id}"\n'
                               f'store_path = "{workdir / "store"}"\n')
        self.password = bot.password
        self.process: subprocess.Popen | None = None
        self.logs: list[Path] = []

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        """`commons-bot run --config config.toml` (as `python -m bot.cli`, this checkout's code)."""
        if self.running:
            raise RuntimeError("the bot is already running")
        log = self.workdir / f"bot-{len(self.logs) + 1}.log"
        self.logs.append(log)
        env = {**os.environ, "PYTHONPATH": str(ROOT), "COMMONS_MATRIX__PASSWORD": self.password}
        with open(log, "wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "bot.cli", "run", "--config", str(self.config)],
                cwd=self.workdir, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True)  # its own process group: the kill reaches every child

    def kill(self) -> None:
        """SIGKILL to the whole process group: no shutdown code runs."""
        process = self.process
        if process is None:
            return
        try:
            os.killpg(process.pid, signal.SIGKILL)  # the group id is the leader's pid (start_new_session)
        except ProcessLookupError:
            pass
        process.wait(timeout=30)

    def stop(self, timeout: float = 30) -> int | None:
        """SIGTERM (a clean stop), then SIGKILL if it does not end in time; returns the exit status."""
        process = self.process
        if process is None:
            return None
        if process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(timeout=timeout)
            except ProcessLookupError:
                pass
            except subprocess.TimeoutExpired:
                self.kill()
        return process.returncode

    def log_text(self, tail: int = 20_000) -> str:
        parts = []
        for path in self.logs:
            try:
                text = path.read_text(errors="replace")
            except OSError as error:
                text = f"(not readable: {error})"
            parts.append(f"--- {path.name} ---\n{text[-tail:]}")
        return "\n".join(parts)

    # the bot's database, read on the side ---------------------------------------------------

    def query(self, sql: str, *args: Any) -> list[tuple]:
        """A fresh read-only connection each time (the bot may have been killed and restarted);
        [] while the database or its tables do not exist yet."""
        if not self.db_path.exists():
            return []
        try:
            connection = sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=5)
        except sqlite3.OperationalError:
            return []
        try:
            return connection.execute(sql, args).fetchall()
        except sqlite3.OperationalError:
            return []
        finally:
            connection.close()

    def member_count(self, room_id: str) -> int:
        rows = self.query("SELECT count(*) FROM members m JOIN groups g ON g.id = m.group_id "
                          "WHERE g.platform = 'matrix' AND g.chat_id = ? AND m.active", room_id)
        return rows[0][0] if rows else 0

    def ballots(self, room_id: str, number: int) -> list[tuple[str, str]]:
        """(member's user id, choice) of every ballot on proposal #number of the room."""
        return self.query("SELECT m.user_id, b.choice FROM ballots b JOIN members m ON m.id = b.member_id "
                          "JOIN proposals p ON p.id = b.proposal_id JOIN groups g ON g.id = p.group_id "
                          "WHERE g.platform = 'matrix' AND g.chat_id = ? AND p.number = ?", room_id, number)

    def ballot_count(self, room_id: str, number: int) -> int:
        rows = self.query("SELECT count(*) FROM ballots b JOIN proposals p ON p.id = b.proposal_id "
                          "JOIN groups g ON g.id = p.group_id "
                          "WHERE g.platform = 'matrix' AND g.chat_id = ? AND p.number = ?", room_id, number)
        return rows[0][0] if rows else 0

    def sync_token(self) -> str | None:
        """The Matrix adapter's saved sync token: where the next start resumes."""
        path = self.workdir / "store" / "commons-matrix.db"
        if not path.exists():
            return None
        # Not read-only: a SIGKILL in the middle of a token write leaves a hot journal, which only a
        # writer may roll back (read-only, SQLite refuses: "attempt to write a readonly database"),
        # as the restarted bot will.
        connection = sqlite3.connect(path, timeout=5)
        try:
            row = connection.execute("SELECT token FROM sync WHERE id = 1").fetchone()
        except sqlite3.OperationalError:
            row = None
        finally:
            connection.close()
        return row[0] if row else None

    def processed_ids(self, event_ids: list[str]) -> set[str]:
        found: set[str] = set()
        for start in range(0, len(event_ids), 500):
            chunk = event_ids[start:start + 500]
            found.update(row[0] for row in self.query(
                f"SELECT event_id FROM processed_events WHERE platform = 'matrix' AND event_id IN "
                f"({', '.join('?' * len(chunk))})", *chunk))
        return found

    def processed(self, event_ids: list[str]) -> int:
        """How many of these platform events the core recorded as processed."""
        found = 0
        for start in range(0, len(event_ids), 500):
            chunk = event_ids[start:start + 500]
            rows = self.query(f"SELECT count(*) FROM processed_events WHERE platform = 'matrix' AND event_id IN "
                              f"({', '.join('?' * len(chunk))})", *chunk)
            found += rows[0][0] if rows else 0
        return found


class MatrixHttp:
    """The client-server API with a member's access token."""

    def __init__(self, homeserver: str) -> None:
        self.base = homeserver
        self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=100))

    async def close(self) -> None:
        await self.session.close()

    async def call(self, method: str, path: str, token: str, body: Any = None, timeout: float = 60) -> Any:
        async with self.session.request(method, self.base + path, json=body, timeout=aiohttp.ClientTimeout(timeout),
                                        headers={"Authorization": f"Bearer {token}"}) as response:
            answer = await response.json(content_type=None)
            if response.status >= 300:
                raise RuntimeError(f"{method} {path} -> HTTP {response.status}: {answer}")
            return answer

    async def send(self, token: str, room_id: str, kind: str, content: dict) -> str:
        path = f"/_matrix/client/v3/rooms/{quote(room_id)}/send/{kind}/{uuid.uuid4().hex}"
        return (await self.call("PUT", path, token, content))["event_id"]

    async def say(self, token: str, room_id: str, text: str) -> str:
        return await self.send(token, room_id, "m.room.message", {"msgtype": "m.text", "body": text})

    async def react(self, token: str, room_id: str, target: str, key: str) -> str:
        return await self.send(token, room_id, "m.reaction",
                               {"m.relates_to": {"rel_type": "m.annotation", "event_id": target, "key": key}})

    async def join(self, token: str, room_id: str) -> None:
        await self.call("POST", f"/_matrix/client/v3/join/{quote(room_id)}", token, {})

    async def after(self, token: str, room_id: str, since: str) -> list[dict]:
        """The room's events after a sync token, oldest first (`/messages` takes sync tokens)."""
        events, start = [], since
        while True:
            page = await self.call("GET", f"/_matrix/client/v3/rooms/{quote(room_id)}/messages?dir=f&limit=500"
                                          f"&from={quote(start)}", token)
            events.extend(page.get("chunk", []))
            if not page.get("chunk") or not page.get("end") or page["end"] == start:
                return events
            start = page["end"]

    async def create_room(self, token: str, name: str, invite: list[str]) -> str:
        body = {"name": name, "preset": "private_chat", "invite": invite}
        return (await self.call("POST", "/_matrix/client/v3/createRoom", token, body, timeout=120))["room_id"]


class Watcher:
    """One member's `/sync` long poll: every timeline event, with the perf_counter time its sync returned."""

    def __init__(self, http: MatrixHttp, user: RegisteredUser) -> None:
        self.http, self.user = http, user
        self.events: list[tuple[float, str, dict]] = []  # (arrival, room, event)
        self._since: str | None = None
        self._changed = asyncio.Condition()
        self._task: asyncio.Task | None = None

    async def start(self) -> Watcher:
        await self._sync(0)
        self._task = asyncio.create_task(self._run())
        return self

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            try:
                await self._sync(10_000)
            except asyncio.CancelledError:
                raise
            except Exception:
                await asyncio.sleep(0.2)

    async def _sync(self, timeout_ms: int) -> None:
        query = f"timeout={timeout_ms}&filter={quote(WATCH_FILTER)}" + (f"&since={quote(self._since)}"
                                                                        if self._since else "")
        answer = await self.http.call("GET", f"/_matrix/client/v3/sync?{query}", self.user.access_token,
                                      timeout=timeout_ms / 1000 + 30)
        arrival = time.perf_counter()
        async with self._changed:
            for room_id, info in answer.get("rooms", {}).get("join", {}).items():
                for event in info.get("timeline", {}).get("events", []):
                    self.events.append((arrival, room_id, event))
            self._since = answer["next_batch"]
            self._changed.notify_all()

    async def wait_for(self, predicate: Callable[[], Any], timeout: float, what: str) -> Any:
        deadline = time.monotonic() + timeout
        async with self._changed:
            while not (result := predicate()):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"waited {timeout:.0f} s in vain for {what}")
                try:
                    await asyncio.wait_for(self._changed.wait(), left)
                except asyncio.TimeoutError:
                    pass
            return result

    # what was seen ----------------------------------------------------------------------------

    def in_room(self, room_id: str, sender: str | None = None, kind: str | None = None) -> list[dict]:
        return [e for _, where, e in self.events if where == room_id and (sender is None or e["sender"] == sender)
                and (kind is None or e["type"] == kind)]

    def joined(self, room_id: str, user_id: str) -> bool:
        return any(e.get("state_key") == user_id and e["content"].get("membership") == "join"
                   for e in self.in_room(room_id, kind="m.room.member"))

    def replies(self, room_id: str, sender: str, to: str) -> list[tuple[float, dict]]:
        """Messages (not edits) from `sender` replying to the event `to`, with their arrival."""
        found = []
        for arrival, where, event in self.events:
            relation = (event.get("content") or {}).get("m.relates_to") or {}
            if (where == room_id and event["sender"] == sender and event["type"] == "m.room.message"
                    and relation.get("rel_type") != "m.replace"
                    and (relation.get("m.in_reply_to") or {}).get("event_id") == to):
                found.append((arrival, event))
        return found

    def reactions(self, room_id: str, sender: str, target: str) -> list[str]:
        return [e["content"]["m.relates_to"]["key"] for e in self.in_room(room_id, sender, "m.reaction")
                if e["content"].get("m.relates_to", {}).get("event_id") == target]

    def latest_edit(self, room_id: str, sender: str, target: str) -> str:
        edits = [e for e in self.in_room(room_id, sender, "m.room.message")
                 if (e["content"].get("m.relates_to") or {}).get("rel_type") == "m.replace"
                 and e["content"]["m.relates_to"].get("event_id") == target]
        return edits[-1]["content"]["m.new_content"]["body"] if edits else ""


async def register_many(synapse: SynapseServer, names: list[tuple[str, str]],
                        parallel: int = 8) -> list[RegisteredUser]:
    """Register (localpart, display name) pairs through the shared-secret admin API, a few at a time."""
    gate = asyncio.Semaphore(parallel)

    async def one(localpart: str, name: str) -> RegisteredUser:
        async with gate:
            return await synapse.aregister(localpart, displayname=name)

    return list(await asyncio.gather(*(one(localpart, name) for localpart, name in names)))


# the scenario -----------------------------------------------------------------------------------


@dataclass
class CrashResult:
    voters: int
    room: str = ""
    card: str = ""
    setup_seconds: float = 0.0
    sent_at_kill: int = 0  # votes whose send had returned when the kill was decided
    counted_at_kill: int = 0  # ballots seen in the database just before the kill
    counted_after_kill: int = 0  # ballots in the database once the process was dead
    unconfirmed: int = 0  # vote events after the saved sync token at the kill: the restart syncs them again
    replayed: int = 0  # of those, already applied before the kill (the kill fell inside a batch)
    sent_seconds: float = 0.0  # first to last vote's send returning
    restart_to_reply: float | None = None  # restart -> the answer to `!proposals` (sent right after) is seen
    restart_to_counted: float | None = None  # restart -> every ballot in the database
    restart_to_running: float | None = None  # restart -> the bot logs "Commons is running" (start-up done)
    ballots: list[tuple[str, str]] = field(default_factory=list)
    processed: int = 0  # vote events recorded in processed_events (one row each at most, by the schema)
    replies_to_proposals: int = 0  # answers to the `!proposals` sent while the bot was restarting
    typed: list[str] = field(default_factory=list)  # event ids of the typed votes
    acks: dict[str, int] = field(default_factory=dict)  # typed vote -> ✅ reactions by the bot on it
    final_tally: str = ""  # the card's latest edit, once settled
    detail_reply: str = ""  # the restarted bot's answer to `!proposal <n>`
    votes: dict[str, str] = field(default_factory=dict)  # voter user id -> vote event id
    members: list[str] = field(default_factory=list)  # the voters' user ids
    voter_names: list[str] = field(default_factory=list)  # and their display names


async def crash_burst(synapse: SynapseServer, workdir: Path, voters: int = 60, burst_seconds: float = 2.0,
                      kill_share: float = 0.5, settle: float = 90.0, tag: str | None = None,
                      on_bot: Callable[[BotProcess], None] | None = None) -> CrashResult:
    """Run the kill -9 burst once; the caller checks the result. `on_bot` gets the BotProcess as soon as
    it exists (so a test can print its log on failure); the process is always killed at the end."""
    tag = tag or uuid.uuid4().hex[:6]
    result = CrashResult(voters=voters)
    started = time.monotonic()
    people = await register_many(synapse, [(f"commons-{tag}", "Commons"), (f"owner-{tag}", "Olga"),
                                           *((f"v{n:03d}-{tag}", f"Voter {n:03d}") for n in range(voters))])
    bot_user, owner, members = people[0], people[1], people[2:]
    bot_id = bot_user.user_id
    bot = BotProcess(workdir, synapse.url, bot_user)
    if on_bot is not None:
        on_bot(bot)
    http = MatrixHttp(synapse.url)
    watcher = Watcher(http, owner)
    try:
        bot.start()
        await watcher.start()
        # A room with the bot and every member; the core knows them all before the vote.
        room = result.room = await http.create_room(owner.access_token, "Tenants' Union",
                                                    [bot_id, *(m.user_id for m in members)])
        gate = asyncio.Semaphore(20)

        async def join(member: RegisteredUser) -> None:
            async with gate:
                await http.join(member.access_token, room)

        await asyncio.gather(*(join(m) for m in members))
        await watcher.wait_for(lambda: watcher.joined(room, bot_id), 60, "the bot to join")
        await _until(lambda: bot.member_count(room) >= voters + 1, 90, "the core to know every member", bot)
        command = await http.say(owner.access_token, room, "!propose Rent strike closes=1d")
        _, card = (await watcher.wait_for(lambda: watcher.replies(room, bot_id, command), 30, "the proposal card"))[0]
        result.card = card["event_id"]
        await watcher.wait_for(lambda: len(watcher.reactions(room, bot_id, result.card)) >= SEEDED, 30,
                               "the seeded reactions on the card")
        result.setup_seconds = time.monotonic() - started

        # The burst: half tap 👍, half type `!vote 1 yes`, interleaved, each send in its own task.
        done: list[float] = []

        async def cast(n: int, member: RegisteredUser) -> None:
            if n % 2:
                event_id = await http.say(member.access_token, room, "!vote 1 yes")
                result.typed.append(event_id)
            else:
                event_id = await http.react(member.access_token, room, result.card, YES)
            result.votes[member.user_id] = event_id
            done.append(time.perf_counter())

        interval = burst_seconds / max(voters - 1, 1)
        first = time.perf_counter()
        tasks = []
        kill_at = max(1, round(voters * kill_share))
        killed = False
        for n, member in enumerate(members):
            while (delay := first + n * interval - time.perf_counter()) > 0:
                killed = killed or _kill_when(bot, room, kill_at, result, done)
                await asyncio.sleep(min(delay, 0.01))
            tasks.append(asyncio.create_task(cast(n, member)))
        deadline = time.monotonic() + settle
        while not killed:
            if time.monotonic() > deadline:
                raise TimeoutError(f"only {bot.ballot_count(room, 1)} of {voters} ballots within {settle:.0f} s; "
                                   "the bot was never killed")
            killed = _kill_when(bot, room, kill_at, result, done)
            await asyncio.sleep(0.01)
        result.counted_after_kill = bot.ballot_count(room, 1)
        await asyncio.gather(*tasks)  # the rest of the votes arrive while the bot is down
        token = bot.sync_token()
        if token is not None:
            votes = set(result.votes.values())
            for _ in range(60):  # a loaded homeserver may page its newest events late (seen: over 5 s)
                again = [e["event_id"] for e in await http.after(owner.access_token, room, token)
                         if e["event_id"] in votes]
                if len(again) >= voters - result.counted_after_kill:
                    break
                await asyncio.sleep(0.5)
            result.unconfirmed = len(again)
            result.replayed = len(bot.processed_ids(again))
        result.sent_seconds = max(done) - first

        # Restart on the same database and store; ask something at once and time the answer.
        restarted = time.perf_counter()
        bot.start()
        counting = asyncio.create_task(_until(lambda: bot.ballot_count(room, 1) >= voters, settle,
                                              "every ballot after the restart", bot, poll=0.005))
        running = asyncio.create_task(_until(lambda: "Commons is running" in _read(bot.logs[-1]), settle,
                                             "the restarted bot to say it is running", bot))
        asked = await http.say(owner.access_token, room, "!proposals")
        arrival, _ = (await watcher.wait_for(lambda: watcher.replies(room, bot_id, asked), settle,
                                             "the restarted bot's answer to !proposals"))[0]
        result.restart_to_reply = arrival - restarted
        result.restart_to_counted = await counting - restarted
        result.restart_to_running = await running - restarted
        await _settled(lambda: bot.ballot_count(room, 1), 2.0, settle)

        command = await http.say(owner.access_token, room, "!proposal 1")
        _, detail = (await watcher.wait_for(lambda: watcher.replies(room, bot_id, command), 30,
                                            "the answer to !proposal 1"))[0]
        result.detail_reply = detail["content"]["body"]
        tally = f"Tally: {voters} yes"
        try:
            await watcher.wait_for(lambda: tally in watcher.latest_edit(room, bot_id, result.card), 30,
                                   "the card's final tally")
        except TimeoutError:
            pass  # reported through final_tally
        await asyncio.sleep(2.0)  # late duplicates (replies, acknowledgements) would show by now
        result.final_tally = next((line for line in watcher.latest_edit(room, bot_id, result.card).splitlines()
                                   if line.startswith("Tally:")), "")
        result.ballots = sorted(bot.ballots(room, 1))
        result.processed = bot.processed(list(result.votes.values()))
        result.replies_to_proposals = len(watcher.replies(room, bot_id, asked))
        result.acks = {event_id: watcher.reactions(room, bot_id, event_id).count(ACK) for event_id in result.typed}
        result.members = [m.user_id for m in members]
        result.voter_names = [f"Voter {n:03d}" for n in range(voters)]
        return result
    finally:
        bot.kill()
        await watcher.stop()
        await http.close()


def _kill_when(bot: BotProcess, room: str, kill_at: int, result: CrashResult, done: list[float]) -> bool:
    counted = bot.ballot_count(room, 1)
    if counted < kill_at:
        return False
    result.counted_at_kill, result.sent_at_kill = counted, len(done)
    bot.kill()
    return True


async def _until(predicate: Callable[[], Any], timeout: float, what: str, bot: BotProcess,
                 poll: float = 0.02) -> float:
    """Wait until `predicate()` holds; returns the perf_counter time it was seen to."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if not bot.running:
            raise RuntimeError(f"the bot exited (status {bot.process.returncode}) while waiting for {what}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout:.0f} s in vain for {what}")
        await asyncio.sleep(poll)
    return time.perf_counter()


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


async def _settled(read: Callable[[], Any], quiet: float, timeout: float) -> Any:
    """Wait until `read()` has not changed for `quiet` seconds."""
    deadline = time.monotonic() + timeout
    value, since = read(), time.monotonic()
    while time.monotonic() - since < quiet and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        now = read()
        if now != value:
            value, since = now, time.monotonic()
    return value
