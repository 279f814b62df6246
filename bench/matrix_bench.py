#!/usr/bin/env python
"""Benchmark for the Matrix adapter against a real local Synapse homeserver.

One throwaway Synapse (tests/synapse_server.py) serves every client; all rooms are unencrypted.

1. Reply latency. The Commons bot (the real `MatrixAdapter` with production settings, a `Runtime` and a
   SQLite core in a temp dir) answers `!proposals` in a room with three open proposals. A minimal
   matrix-nio echo bot (below, same 30 s long poll) answers `!echo` in its own room. One person (a
   matrix-nio client) sends the commands, alternating between the two bots, and times each from just
   before `room_send` until its own sync delivers the reply (`m.in_reply_to` = the command).
2. A burst of votes. 200 members of a fresh room vote on one proposal within 10 s, mostly by tapping a
   reaction on the card, 1 in 5 by typing `!vote 1 yes|no`. Checked: all ballots counted, the card's
   edited tally final, and what the bot posted meanwhile (edits, ✅ acknowledgements, new messages).

    python bench/matrix_bench.py              # 100 latency samples per bot, then the burst (about 1 minute)
    python bench/matrix_bench.py --quick      # 20 samples per bot, the same burst (about 40 s)
    python bench/matrix_bench.py --samples 200 --voters 200 --burst-seconds 10 --typed-share 0.2

See bench/README.md ("Matrix adapter benchmark") for what is measured and the targets.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# Run as `python bench/matrix_bench.py`, bench/ is sys.path[0], where bench/telegram.py would shadow
# python-telegram-bot for anything importing `telegram` (and this file is not called matrix.py for the
# same reason). Take bench/ off the path and put the project root on it.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import argparse  # noqa: E402
import asyncio  # noqa: E402
import importlib.metadata  # noqa: E402
import logging  # noqa: E402
import random  # noqa: E402
import resource  # noqa: E402
import sqlite3  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from collections import Counter  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from datetime import datetime, timezone  # noqa: E402
from typing import Any  # noqa: E402
from urllib.parse import quote  # noqa: E402

import aiohttp  # noqa: E402
from nio import (  # noqa: E402
    AsyncClient,
    AsyncClientConfig,
    RoomCreateResponse,
    RoomMessageText,
    RoomSendResponse,
    SyncResponse,
)

import bot.app  # noqa: E402
from adapters.matrix import MatrixAdapter  # noqa: E402
from adapters.matrix.adapter import ACK_REACTION, SYNC_FILTER  # noqa: E402
from bench import common  # noqa: E402
from bot.clock import SystemClock  # noqa: E402
from bot.config import DefaultsConfig, SchedulerConfig  # noqa: E402
from bot.durations import parse_duration  # noqa: E402
from bot.events import CommandMessage  # noqa: E402
from bot.runtime import Runtime  # noqa: E402
from tests.bot_process import MatrixHttp  # noqa: E402
from tests.matrix_people import wait_on  # noqa: E402
from tests.synapse_server import RegisteredUser, SynapseServer  # noqa: E402

SEED = 42
SYNC_TIMEOUT_MS = 30_000  # MatrixAdapter's production default; the echo bot and the person use the same
# The echo bot syncs with the adapter's own filter (presence off, a bounded timeline per room).
BOT_FILTER = SYNC_FILTER
TIMELINE_LIMIT = BOT_FILTER["room"]["timeline"]["limit"]
PERSON_FILTER = {"presence": {"not_types": ["*"]}, "room": {"timeline": {"limit": 500}}}  # never a gap
TARGET_RATIO = 1.3
WAIT = 30.0  # for any one reply
SETTLE = 60.0  # for the burst's ballots and final tally
AFTER = 2.0  # the burst window ends this long after the final tally edit was seen
YES, NO = "👍", "👎"
STANCE_WEIGHTS = {"yes": 65, "no": 35}
TITLES = ("Buy a chest freezer for the pantry", "Repaint the stairwell", "Monthly repair café in the yard")
BURST_TITLE = "Join the city-wide rent strike"

log = logging.getLogger("bench.matrix")


def now_ms() -> float:
    return time.time() * 1000


# --------------------------------------------------------------------------
# clients: a person who times replies, the echo bot, plain HTTP for the voters


class Person:
    """A matrix-nio client (no encryption: every room here is unencrypted) syncing in the background
    with the same long poll as the bots. Every timeline event is kept with the perf_counter time its
    sync returned; replies and edits are indexed as they arrive."""

    def __init__(self, homeserver: str, user: RegisteredUser) -> None:
        self.user = user
        self.client = AsyncClient(homeserver, user.user_id, device_id=user.device_id,
                                  config=AsyncClientConfig(encryption_enabled=False, max_timeouts=None))
        self.client.restore_login(user.user_id, user.device_id, user.access_token)
        self.events: list[tuple[float, str, dict]] = []  # (arrival, room, event)
        self.replies: dict[str, tuple[float, dict]] = {}  # replied-to event id -> (arrival, first reply)
        self.edits: dict[str, list[tuple[float, dict]]] = {}  # edited event id -> [(arrival, edit)]
        self._changed = asyncio.Condition()
        self._task: asyncio.Task | None = None

    @property
    def user_id(self) -> str:
        return self.user.user_id

    async def start(self) -> Person:
        response = await self.client.sync(timeout=0, sync_filter=PERSON_FILTER, full_state=True)
        if not isinstance(response, SyncResponse):
            raise RuntimeError(f"first sync of {self.user_id} failed: {response}")
        self._task = asyncio.create_task(self._run())
        return self

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self.client.close()

    async def _run(self) -> None:
        while True:
            try:
                response = await self.client.sync(timeout=SYNC_TIMEOUT_MS, sync_filter=PERSON_FILTER)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("person sync failed")
                await asyncio.sleep(0.2)
                continue
            arrival = time.perf_counter()
            if not isinstance(response, SyncResponse):
                await asyncio.sleep(0.2)
                continue
            async with self._changed:
                for room_id, info in response.rooms.join.items():
                    for event in info.timeline.events:
                        self._record(arrival, room_id, event.source)
                self._changed.notify_all()

    def _record(self, arrival: float, room_id: str, source: dict) -> None:
        self.events.append((arrival, room_id, source))
        relation = (source.get("content") or {}).get("m.relates_to") or {}
        if source.get("type") != "m.room.message" or source.get("sender") == self.user_id:
            return
        if relation.get("rel_type") == "m.replace":
            self.edits.setdefault(relation.get("event_id"), []).append((arrival, source))
        elif (replied := (relation.get("m.in_reply_to") or {}).get("event_id")) is not None:
            self.replies.setdefault(replied, (arrival, source))

    async def wait_for(self, predicate: Callable[[], Any], timeout: float = WAIT, what: str = "") -> Any:
        return await wait_on(self._changed, predicate, timeout,
                             f"waited {timeout:.0f} s in vain{' for ' + what if what else ''}")

    def in_room(self, room_id: str, sender: str | None = None, kind: str | None = None) -> list[dict]:
        return [e for _, where, e in self.events if where == room_id and (sender is None or e["sender"] == sender)
                and (kind is None or e["type"] == kind)]

    def joined(self, room_id: str, user_id: str) -> bool:
        return any(e.get("state_key") == user_id and e["content"].get("membership") == "join"
                   for e in self.in_room(room_id, kind="m.room.member"))

    def reactions_on(self, room_id: str, sender: str, target: str) -> list[str]:
        return [e["content"]["m.relates_to"]["key"] for e in self.in_room(room_id, sender, "m.reaction")
                if e["content"]["m.relates_to"].get("event_id") == target]

    async def say(self, room_id: str, text: str) -> str:
        response = await self.client.room_send(room_id, "m.room.message", {"msgtype": "m.text", "body": text})
        if not isinstance(response, RoomSendResponse):
            raise RuntimeError(f"send failed: {response}")
        return response.event_id

    async def ask(self, room_id: str, text: str, timeout: float = WAIT) -> dict:
        command = await self.say(room_id, text)
        return (await self.wait_for(lambda: self.replies.get(command), timeout, f"a reply to {text!r}"))[1]

    async def create_room(self, name: str, invite: list[str]) -> str:
        response = await self.client.room_create(name=name, invite=invite)
        if not isinstance(response, RoomCreateResponse):
            raise RuntimeError(f"room not created: {response}")
        return response.room_id


class EchoBot:
    """The baseline: a minimal matrix-nio bot. Same long poll and timeline filter as the adapter; joins
    when invited; answers every `!echo …` with an m.notice replying to it. Stamps where the time goes."""

    def __init__(self, homeserver: str, user: RegisteredUser) -> None:
        self.client = AsyncClient(homeserver, user.user_id, device_id=user.device_id,
                                  config=AsyncClientConfig(encryption_enabled=False, max_timeouts=None))
        self.client.restore_login(user.user_id, user.device_id, user.access_token)
        self.synced: dict[str, float] = {}  # command event id -> when the bot's sync returned with it
        self.sending: dict[str, tuple[float, float]] = {}  # command event id -> reply room_send start, end
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        await self.client.sync(timeout=0, sync_filter=BOT_FILTER)
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self.client.close()

    async def _run(self) -> None:
        while True:
            response = await self.client.sync(timeout=SYNC_TIMEOUT_MS, sync_filter=BOT_FILTER)
            arrival = time.perf_counter()
            if not isinstance(response, SyncResponse):
                await asyncio.sleep(1)
                continue
            for room_id in response.rooms.invite:
                await self.client.join(room_id)
            for room_id, info in response.rooms.join.items():
                for event in info.timeline.events:
                    if (isinstance(event, RoomMessageText) and event.sender != self.client.user_id
                            and event.body.startswith("!echo")):
                        self.synced[event.event_id] = arrival
                        started = time.perf_counter()
                        await self.client.room_send(room_id, "m.room.message", {
                            "msgtype": "m.notice", "body": event.body,
                            "m.relates_to": {"m.in_reply_to": {"event_id": event.event_id}}})
                        self.sending[event.event_id] = (started, time.perf_counter())


class Http(MatrixHttp):
    """Plain client-API calls with a member's access token: the 200 voters need no sync of their own."""

    async def timeline(self, token: str, room_id: str, since_ms: float) -> list[dict]:
        """The room's events from `since_ms` on (server timestamps), oldest first, via /messages."""
        events, token_from = [], None
        while True:
            query = "dir=b&limit=500" + (f"&from={quote(token_from)}" if token_from else "")
            page = await self.call("GET", f"/_matrix/client/v3/rooms/{quote(room_id)}/messages?{query}", token)
            chunk = page.get("chunk", [])
            events.extend(chunk)
            token_from = page.get("end")
            if not chunk or not token_from or chunk[-1]["origin_server_ts"] < since_ms:
                break
        return sorted((e for e in events if e["origin_server_ts"] >= since_ms), key=lambda e: e["origin_server_ts"])


# --------------------------------------------------------------------------
# the Commons bot, wired as `commons-bot run` does, with stamps for the latency breakdown


class CommonsBot:
    def __init__(self, homeserver: str, user: RegisteredUser, workdir: Path) -> None:
        self.db_path = workdir / "commons.db"
        self.core = bot.app.build_core(f"sqlite:///{self.db_path}", SystemClock(), DefaultsConfig(),
                                       {"matrix": "!"})
        # Production defaults: edit_delay 1.0 s, sync_timeout_ms 30000, max_backoff 30 s, e2e enabled.
        self.adapter = MatrixAdapter(homeserver, user.user_id, password=user.password,
                                     store_path=workdir / "matrix-store")
        self.runtime = Runtime(self.core, [self.adapter], parse_duration(SchedulerConfig().sweep_interval))
        self.synced: dict[str, float] = {}
        self.sending: dict[str, tuple[float, float]] = {}
        self.handled: dict[str, float] = {}  # command event id -> seconds in core.handle
        self.batches: list[tuple[float, str, int, bool]] = []  # per sync and room: when, room, events, limited
        self.started = False
        self._reader: sqlite3.Connection | None = None

    async def start(self) -> None:
        await self.runtime.start()
        self.started = True
        bot.app.freeze_start_up_objects()  # as `commons-bot run` does after start-up
        self._instrument()

    async def stop(self) -> None:
        if self._reader is not None:
            self._reader.close()
        if self.started:
            await asyncio.wait_for(self.runtime.stop(), 90)
        self.core.db.dispose()

    def _instrument(self) -> None:
        """Wrap (in this process only) the nio client's sync and room_send and the core's handle,
        to stamp each command on its way through. Nothing is changed in the adapter's code."""
        client, core = self.adapter.client, self.core
        sync, room_send, handle = client.sync, client.room_send, core.handle

        async def timed_sync(*args, **kwargs):
            response = await sync(*args, **kwargs)
            arrival = time.perf_counter()
            if isinstance(response, SyncResponse):
                for room_id, info in response.rooms.join.items():
                    self.batches.append((arrival, room_id, len(info.timeline.events), bool(info.timeline.limited)))
                    for event in info.timeline.events:
                        if isinstance(event, RoomMessageText) and event.body.startswith("!"):
                            self.synced.setdefault(event.event_id, arrival)
            return response

        async def timed_room_send(room_id, message_type, content, *args, **kwargs):
            started = time.perf_counter()
            response = await room_send(room_id, message_type, content, *args, **kwargs)
            replied = ((content.get("m.relates_to") or {}).get("m.in_reply_to") or {}).get("event_id")
            if replied:
                self.sending.setdefault(replied, (started, time.perf_counter()))
            return response

        def timed_handle(event):
            started = time.perf_counter()
            try:
                return handle(event)
            finally:
                if isinstance(event, CommandMessage):
                    self.handled[event.event_id] = time.perf_counter() - started

        client.sync, client.room_send, core.handle = timed_sync, timed_room_send, timed_handle

    # the core's database, read on the side (WAL: readers never block the core's writes)

    def query(self, sql: str, *args) -> list[tuple]:
        if self._reader is None:
            self._reader = sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True)
        return self._reader.execute(sql, args).fetchall()

    def member_count(self, room_id: str) -> int:
        return self.query("SELECT count(*) FROM members m JOIN groups g ON g.id = m.group_id "
                          "WHERE g.chat_id = ? AND m.active", room_id)[0][0]

    def proposal_id(self, room_id: str, number: int) -> int:
        return self.query("SELECT p.id FROM proposals p JOIN groups g ON g.id = p.group_id "
                          "WHERE g.chat_id = ? AND p.number = ?", room_id, number)[0][0]

    def ballot_count(self, proposal_id: int) -> int:
        return self.query("SELECT count(*) FROM ballots WHERE proposal_id = ?", proposal_id)[0][0]

    def ballots(self, proposal_id: int) -> list[tuple[str, str, str]]:
        return self.query("SELECT m.user_id, b.choice, b.cast_at FROM ballots b JOIN members m ON m.id = b.member_id "
                          "WHERE b.proposal_id = ?", proposal_id)


# --------------------------------------------------------------------------
# part 1: reply latency


@dataclass
class Sample:
    sent: float  # perf_counter just before room_send
    command: str = ""
    arrived: float = 0.0

    @property
    def latency(self) -> float:
        return self.arrived - self.sent


async def one_round(person: Person, room_id: str, text: str, check: Callable[[str], bool]) -> Sample:
    sample = Sample(time.perf_counter())
    sample.command = await person.say(room_id, text)
    arrival, reply = await person.wait_for(lambda: person.replies.get(sample.command), WAIT, f"a reply to {text}")
    sample.arrived = arrival
    if not check(reply["content"].get("body", "")):
        raise AssertionError(f"unexpected reply to {text!r}: {reply['content'].get('body', '')[:300]!r}")
    return sample


async def latency_phase(args, person: Person, commons: CommonsBot, echo: EchoBot, bot_id: str, echo_id: str,
                        problems: list[str]) -> dict:
    # The Commons room, with three open proposals (and their seeded reactions) so the list is real.
    room = await person.create_room("Tenants' Union", invite=[bot_id])
    await person.wait_for(lambda: person.joined(room, bot_id), WAIT, "the Commons bot to join")
    cards = []
    for title in TITLES:
        card = await person.ask(room, f"!propose {title} closes=3d")
        if "React to vote: 👍 Yes · 👎 No · 🤷 Abstain · ✋ Block" not in card["content"]["body"]:
            problems.append(f"the card for {title!r} has no reaction legend: {card['content']['body'][:200]!r}")
        cards.append(card["event_id"])
    await person.wait_for(lambda: all(len(person.reactions_on(room, bot_id, c)) == 4 for c in cards), WAIT,
                          "the seeded reactions")
    echo_room = await person.create_room("Echo", invite=[echo_id])
    await person.wait_for(lambda: person.joined(echo_room, echo_id), WAIT, "the echo bot to join")

    def lists_all(body: str) -> bool:
        return all(title in body for title in TITLES)

    counter = iter(range(1_000_000))

    async def commons_round() -> Sample:
        return await one_round(person, room, "!proposals", lists_all)

    async def echo_round() -> Sample:
        text = f"!echo {next(counter)}"
        return await one_round(person, echo_room, text, lambda body: body == text)

    for _ in range(args.warmup):
        await commons_round()
        await asyncio.sleep(args.gap)
        await echo_round()
        await asyncio.sleep(args.gap)
    samples: dict[str, list[Sample]] = {"commons": [], "echo": []}
    started = time.monotonic()
    for n in range(args.samples):
        # Interleaved, in ABBA order, so drift and noise hit both bots alike.
        order = ("commons", "echo") if n % 2 == 0 else ("echo", "commons")
        for which in order:
            samples[which].append(await (commons_round() if which == "commons" else echo_round()))
            await asyncio.sleep(args.gap)
    return {"samples": samples, "seconds": time.monotonic() - started, "reply": person.replies}


def breakdown(samples: list[Sample], synced: dict[str, float], sending: dict[str, tuple[float, float]],
              handled: dict[str, float] | None) -> dict[str, list[float]]:
    """Per sample, in ms: command delivery to the bot, the bot's own time, reply delivery to the person."""
    parts: dict[str, list[float]] = {"to_bot": [], "in_bot": [], "to_person": [], "reply_send": [], "core": []}
    for s in samples:
        if s.command not in synced or s.command not in sending:
            continue
        got, (send_start, send_end) = synced[s.command], sending[s.command]
        parts["to_bot"].append((got - s.sent) * 1000)
        parts["in_bot"].append((send_start - got) * 1000)
        parts["to_person"].append((s.arrived - send_start) * 1000)
        parts["reply_send"].append((send_end - send_start) * 1000)
        if handled is not None and s.command in handled:
            parts["core"].append(handled[s.command] * 1000)
    return parts


# --------------------------------------------------------------------------
# part 2: the burst


@dataclass
class Vote:
    user: RegisteredUser
    stance: str
    typed: bool
    at: float = 0.0  # perf_counter when the send started
    wall_ms: float = 0.0
    done: float = 0.0
    event_id: str = ""
    error: str = ""


@dataclass
class Burst:
    votes: list[Vote] = field(default_factory=list)
    room: str = ""
    card: str = ""
    number: int = 0
    join_seconds: float = 0.0
    absorb_seconds: float = 0.0
    propose_ms: float = 0.0
    seeded_ms: float = 0.0
    first: float = 0.0  # perf_counter of the first vote sent
    first_wall_ms: float = 0.0
    sent_seconds: float = 0.0  # first to last vote sent
    counted_at: float | None = None  # all ballots counted (polled)
    counted: int = 0
    last_cast_ms: float | None = None  # latest ballot's cast_at, after the first vote (wall)
    cast_latency: list[float] = field(default_factory=list)  # per vote: send -> ballot cast_at, seconds
    wrong_choices: int = 0
    final_tally: str = ""
    final_seen: float | None = None  # perf_counter of the edit showing the final tally
    final_seen_wall_ms: float = 0.0
    latest_text: str = ""
    window_ms: tuple[float, float] = (0.0, 0.0)
    new_messages: list[dict] = field(default_factory=list)
    edits: list[dict] = field(default_factory=list)
    reactions: Counter = field(default_factory=Counter)
    acked: int = 0
    ack_latency: list[float] = field(default_factory=list)  # typed vote sent -> its ✅ (server time), seconds
    syncs: int = 0  # the bot's syncs bringing burst-room events during the window
    sync_max: int = 0  # most timeline events in one of them
    sync_gaps: int = 0  # how many came back `limited` (more events than the filter's timeline limit)
    other: Counter = field(default_factory=Counter)
    after_window: int = 0


def make_votes(members: list[RegisteredUser], typed_share: float) -> list[Vote]:
    rng = random.Random(SEED)
    typed = round(len(members) * typed_share)
    kinds = [True] * typed + [False] * (len(members) - typed)
    rng.shuffle(kinds)
    order = list(members)
    rng.shuffle(order)
    stances = rng.choices(list(STANCE_WEIGHTS), list(STANCE_WEIGHTS.values()), k=len(members))
    return [Vote(user, stance, kind) for user, stance, kind in zip(order, stances, kinds, strict=True)]


async def burst_phase(args, http: Http, person: Person, commons: CommonsBot, bot_id: str,
                      members: list[RegisteredUser], problems: list[str]) -> Burst:
    b = Burst(votes=make_votes(members, args.typed_share))
    # A fresh room: the owner (the person) invites the bot and every member; each member joins with one call.
    started = time.monotonic()
    b.room = await person.create_room("Pantry co-op", invite=[bot_id, *(m.user_id for m in members)])
    gate = asyncio.Semaphore(20)

    async def join(member: RegisteredUser) -> None:
        async with gate:
            await http.join(member.access_token, b.room)

    await asyncio.gather(*(join(m) for m in members))
    b.join_seconds = time.monotonic() - started
    # The bot handles each join (MemberJoined -> the core); wait until the core knows everyone.
    everyone = len(members) + 1
    deadline = time.monotonic() + 120
    while commons.member_count(b.room) < everyone:
        if time.monotonic() > deadline:
            problems.append(f"the core knows {commons.member_count(b.room)} members of the burst room after "
                            f"120 s, expected {everyone}")
            break
        await asyncio.sleep(0.05)
    b.absorb_seconds = time.monotonic() - started - b.join_seconds

    t0 = time.perf_counter()
    card = await person.ask(b.room, f"!propose {BURST_TITLE} closes=1d")
    b.propose_ms = (time.perf_counter() - t0) * 1000
    b.card = card["event_id"]
    b.number = int(card["content"]["body"].split("#", 1)[1].split()[0])
    await person.wait_for(lambda: len(person.reactions_on(b.room, bot_id, b.card)) == 4, WAIT,
                          "the four seeded reactions on the card")
    b.seeded_ms = (time.perf_counter() - t0) * 1000
    proposal = commons.proposal_id(b.room, b.number)
    await asyncio.sleep(0.5)  # let the bot go back to its long poll

    # The burst: vote n starts at first + n * interval, each in its own task, so slow sends never delay others.
    async def cast(vote: Vote) -> None:
        vote.at, vote.wall_ms = time.perf_counter(), now_ms()
        try:
            if vote.typed:
                vote.event_id = await http.send(vote.user.access_token, b.room, "m.room.message",
                                                {"msgtype": "m.text", "body": f"!vote {b.number} {vote.stance}"})
            else:
                key = YES if vote.stance == "yes" else NO
                vote.event_id = await http.send(vote.user.access_token, b.room, "m.reaction", {
                    "m.relates_to": {"rel_type": "m.annotation", "event_id": b.card, "key": key}})
        except Exception as error:
            vote.error = str(error)
        vote.done = time.perf_counter()

    interval = args.burst_seconds / max(len(b.votes) - 1, 1)
    tasks = []
    b.first, b.first_wall_ms = time.perf_counter(), now_ms()
    for n, vote in enumerate(b.votes):
        delay = b.first + n * interval - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(cast(vote)))

    # Meanwhile and after: poll the core's database until every ballot is counted.
    deadline = time.perf_counter() + args.burst_seconds + SETTLE
    while (count := commons.ballot_count(proposal)) < len(b.votes) and time.perf_counter() < deadline:
        await asyncio.sleep(0.02)
    if count >= len(b.votes):
        b.counted_at = time.perf_counter()
    await asyncio.gather(*tasks)
    b.sent_seconds = max(v.at for v in b.votes) - b.first
    failed = [v for v in b.votes if v.error]
    if failed:
        problems.append(f"{len(failed)} votes could not be sent, e.g. {failed[0].error[:200]}")

    rows = commons.ballots(proposal)
    b.counted = len(rows)
    if b.counted != len(b.votes):
        problems.append(f"{b.counted} ballots counted for {len(b.votes)} votes")
    expected = {v.user.user_id: v for v in b.votes}
    for user_id, choice, cast_at in rows:
        vote = expected.get(user_id)
        if vote is None or vote.stance != choice:
            b.wrong_choices += 1
            continue
        cast_ms = datetime.fromisoformat(str(cast_at)).replace(tzinfo=timezone.utc).timestamp() * 1000
        b.cast_latency.append((cast_ms - vote.wall_ms) / 1000)
        b.last_cast_ms = max(b.last_cast_ms or 0.0, cast_ms)
    if b.wrong_choices:
        problems.append(f"{b.wrong_choices} ballots differ from the member's vote")

    # The card's tally: the first edit that shows the final count (what the members sent).
    tally = Counter(v.stance for v in b.votes)
    b.final_tally = f"Tally: {tally['yes']} yes · {tally['no']} no · 0 abstain · 0 block"

    def final_edit():
        return next(((arrival, e) for arrival, e in person.edits.get(b.card, [])
                     if b.final_tally in e["content"]["m.new_content"]["body"]), None)

    try:
        left = max(1.0, deadline - time.perf_counter())
        arrival, _ = await person.wait_for(final_edit, left, "the final tally on the card")
        b.final_seen = arrival
        b.final_seen_wall_ms = now_ms() - (time.perf_counter() - arrival) * 1000
    except TimeoutError:
        edits = person.edits.get(b.card, [])
        b.latest_text = edits[-1][1]["content"]["m.new_content"]["body"] if edits else ""
        shown = next((line for line in b.latest_text.splitlines() if line.startswith("Tally:")), "(no edit)")
        problems.append(f"the card never showed {b.final_tally!r} within {SETTLE:.0f} s; it shows {shown!r}")
        b.final_seen_wall_ms = now_ms()
    edits = person.edits.get(b.card, [])
    if edits:
        b.latest_text = edits[-1][1]["content"]["m.new_content"]["body"]

    # What the bot posted during the burst window, read back from the room's timeline.
    await asyncio.sleep(AFTER + 0.5)
    b.window_ms = (b.first_wall_ms, b.final_seen_wall_ms + AFTER * 1000)
    timeline = await http.timeline(person.user.access_token, b.room, b.first_wall_ms - 100)
    typed_by_id = {v.event_id: v for v in b.votes if v.typed}
    typed_ids = set(typed_by_id)
    for event in timeline:
        if event["sender"] != bot_id:
            continue
        if event["origin_server_ts"] > b.window_ms[1]:
            b.after_window += 1
            continue
        relation = (event.get("content") or {}).get("m.relates_to") or {}
        if event["type"] == "m.room.message":
            (b.edits if relation.get("rel_type") == "m.replace" else b.new_messages).append(event)
        elif event["type"] == "m.reaction":
            b.reactions[relation.get("key")] += 1
            if relation.get("key") == ACK_REACTION and relation.get("event_id") in typed_ids:
                b.acked += 1
                b.ack_latency.append((event["origin_server_ts"] - typed_by_id[relation["event_id"]].wall_ms) / 1000)
        else:
            b.other[event["type"]] += 1
    window = [(n, limited) for at, room, n, limited in commons.batches
              if room == b.room and b.first <= at <= (b.final_seen or time.perf_counter()) + AFTER]
    b.syncs, b.sync_max = len(window), max((n for n, _ in window), default=0)
    b.sync_gaps = sum(limited for _, limited in window)
    if b.new_messages:
        problems.append(f"the bot posted {len(b.new_messages)} new messages during the burst, e.g. "
                        f"{b.new_messages[0]['content'].get('body', '')[:200]!r}")
    if b.acked != len(typed_ids) or b.reactions[ACK_REACTION] != len(typed_ids):
        problems.append(f"{b.acked} typed votes acknowledged with {ACK_REACTION} ({b.reactions[ACK_REACTION]} "
                        f"{ACK_REACTION} in all) for {len(typed_ids)} typed votes")
    if set(b.reactions) - {ACK_REACTION}:
        problems.append(f"unexpected bot reactions during the burst: {dict(b.reactions)}")
    if b.other:
        problems.append(f"unexpected bot events during the burst: {dict(b.other)}")
    return b


# --------------------------------------------------------------------------
# running and reporting


class WarningCount(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


async def register_all(synapse: SynapseServer, voters: int) -> tuple[dict[str, RegisteredUser], list]:
    gate = asyncio.Semaphore(8)
    tag = uuid.uuid4().hex[:4]

    async def register(localpart: str, name: str) -> RegisteredUser:
        async with gate:
            return await synapse.aregister(f"{localpart}-{tag}", displayname=name)

    bot_user, echo_user, person_user = await asyncio.gather(
        register("commons", "Commons"), register("echo", "Echo"), register("ana", "Ana"))
    members = await asyncio.gather(*(register(f"m{n:03d}", f"Member {n:03d}") for n in range(voters)))
    return {"bot": bot_user, "echo": echo_user, "person": person_user}, list(members)


async def run(args, synapse: SynapseServer) -> tuple[dict, list[str]]:
    problems: list[str] = []
    result: dict[str, Any] = {}
    t0 = time.monotonic()
    users, members = await register_all(synapse, args.voters)
    result["register_seconds"] = time.monotonic() - t0
    tmp = tempfile.TemporaryDirectory(prefix="commons-matrix-bench-")
    http = Http(synapse.url)
    commons = CommonsBot(synapse.url, users["bot"], Path(tmp.name))
    echo = EchoBot(synapse.url, users["echo"])
    person = Person(synapse.url, users["person"])
    try:
        await commons.start()
        await echo.start()
        await person.start()
        bot_id, echo_id = users["bot"].user_id, users["echo"].user_id
        result["latency"] = await latency_phase(args, person, commons, echo, bot_id, echo_id, problems)
        lat = result["latency"]["samples"]
        result["parts"] = {
            "commons": breakdown(lat["commons"], commons.synced, commons.sending, commons.handled),
            "echo": breakdown(lat["echo"], echo.synced, echo.sending, None)}
        if args.voters:
            result["burst"] = await burst_phase(args, http, person, commons, bot_id, members, problems)
    finally:
        for closing in (person.stop(), echo.stop(), commons.stop(), http.close()):
            try:
                await closing
            except Exception:
                log.exception("shutting down")
        tmp.cleanup()
    return result, problems


def ms(values: list[float], q: float | None = None) -> float:
    values = sorted(values)
    if not values:
        return float("nan")
    return statistics.median(values) if q is None else common.pct(values, q)


def revision() -> str:
    try:
        head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "adapters", "bot", "storage"],
                               capture_output=True, text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "(not a git checkout)"
    return f"commit {head}" + (" with uncommitted changes in adapters/, bot/ or storage/" if dirty else "")


def synapse_peak_rss_mb(synapse: SynapseServer) -> float | None:
    process = getattr(synapse, "_proc", None)  # SynapseServer writes no pid file (Synapse runs in the foreground)
    try:
        pid = process.pid
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (AttributeError, OSError, ValueError):
        return None
    return None


def report(args, r: dict, problems: list[str], warnings: WarningCount, seconds: float, synapse_rss: float | None,
           log_path: Path) -> bool:
    out = print
    out("setup: one local Synapse (tests/synapse_server.py: SQLite, rate limits raised, 127.0.0.1), unencrypted "
        "rooms; Commons = MatrixAdapter (matrix-nio, production defaults: sync long poll 30 s, edit_delay 1.0 s, "
        "e2e enabled) <- Runtime <- core (SQLite file in a temp dir, WAL), gc.freeze() after start-up; "
        "echo bot = minimal matrix-nio sync loop, same 30 s long poll; all clients in this one process")
    out(f"code: {revision()}")
    out(f"users registered (bots, person, {args.voters} members): {r['register_seconds']:.1f} s")
    samples = r["latency"]["samples"]
    c = [s.latency * 1000 for s in samples["commons"]]
    e = [s.latency * 1000 for s in samples["echo"]]
    out("")
    out(f"=== 1. Reply latency: person's room_send -> person's sync has the reply; {len(c)} samples per bot, "
        f"interleaved (ABBA), {args.warmup} warm-up rounds, {args.gap * 1000:.0f} ms apart; "
        f"{r['latency']['seconds']:.1f} s ===")
    header = f"{'':<40}{'median ms':>11}{'p95 ms':>9}{'p99 ms':>9}{'min ms':>9}{'max ms':>9}{'mean ms':>9}"
    out(header)
    out("-" * len(header))
    for label, values in ((f"Commons `!proposals` ({len(TITLES)} open)", c), ("echo bot `!echo`", e)):
        out(f"{label:<40}{ms(values):>11.1f}{ms(values, 95):>9.1f}{ms(values, 99):>9.1f}{min(values):>9.1f}"
            f"{max(values):>9.1f}{statistics.fmean(values):>9.1f}")
    ratio_median, ratio_p95 = ms(c) / ms(e), ms(c, 95) / ms(e, 95)
    out(f"{'ratio Commons / echo':<40}{ratio_median:>11.2f}{ratio_p95:>9.2f}{ms(c, 99) / ms(e, 99):>9.2f}")
    met = ratio_median <= TARGET_RATIO
    out(f"target: median ratio <= {TARGET_RATIO}: {'MET' if met else 'MISSED'} ({ratio_median:.2f}); "
        f"p95 ratio {ratio_p95:.2f}")
    out("")
    out("where the time goes, mean / median ms per sample (stamped in this process: the bots' sync return and "
        "reply room_send, the core's handle)")
    pc, pe = r["parts"]["commons"], r["parts"]["echo"]
    header = f"{'':<58}{'Commons':>17}{'echo bot':>17}"
    out(header)
    out("-" * len(header))

    def row(label: str, key: str) -> None:
        def cell(parts: dict) -> str:
            values = parts.get(key) or []
            return f"{statistics.fmean(values):.1f} / {ms(values):.1f}" if values else "—"
        out(f"{label:<58}{cell(pc):>17}{cell(pe):>17}")

    row("1. command: person's send -> bot's sync returns it", "to_bot")
    row("2. bot: its sync returned -> reply room_send starts", "in_bot")
    row("   of which core.handle on the worker thread", "core")
    row("3. reply: room_send starts -> person's sync has it", "to_person")
    row("   of which the reply's room_send request", "reply_send")
    out(f"{'total (mean / median)':<58}{f'{statistics.fmean(c):.1f} / {ms(c):.1f}':>17}"
        f"{f'{statistics.fmean(e):.1f} / {ms(e):.1f}':>17}")

    b: Burst | None = r.get("burst")
    if b is not None:
        typed = sum(v.typed for v in b.votes)
        out("")
        out(f"=== 2. Burst: {len(b.votes)} members vote on one proposal within {args.burst_seconds:.0f} s "
            f"({len(b.votes) - typed} reactions {YES}/{NO} on the card, {typed} typed `!vote {b.number} yes|no`) ===")
        out(f"room: {len(b.votes)} members invited by the owner with the room, joined in {b.join_seconds:.1f} s "
            f"(20 at a time); the core knew them all {b.absorb_seconds:.1f} s later")
        out(f"`!propose` -> card: {b.propose_ms:.0f} ms; the 4 seeded reactions seen after {b.seeded_ms:.0f} ms")
        out(f"votes sent from +0.00 to +{b.sent_seconds:.2f} s "
            f"({len(b.votes) / max(b.sent_seconds, 1e-9):.1f}/s, each in its own task); "
            f"send p50 / max {ms([(v.done - v.at) * 1000 for v in b.votes]):.0f} / "
            f"{max((v.done - v.at) * 1000 for v in b.votes):.0f} ms")
        header = f"{'':<64}{'figure':>28}"
        out(header)
        out("-" * len(header))
        counted = (f"+{b.counted_at - b.first:.2f} s" if b.counted_at else "never")
        out(f"{'ballots counted (select count(*) from ballots)':<64}{f'{b.counted} / {len(b.votes)}':>28}")
        out(f"{'all counted (polled every 20 ms), after the first vote':<64}{counted:>28}")
        if b.last_cast_ms:
            out(f"{'last ballot cast_at, after the first vote':<64}"
                f"{f'+{(b.last_cast_ms - b.first_wall_ms) / 1000:.2f} s':>28}")
        lat = sorted(b.cast_latency)
        if lat:
            out(f"{'vote sent -> ballot cast_at, p50 / p95 / max':<64}"
                f"{f'{ms(lat) * 1000:.0f} / {ms(lat, 95) * 1000:.0f} / {lat[-1] * 1000:.0f} ms':>28}")
        final = f"+{b.final_seen - b.first:.2f} s" if b.final_seen else "never"
        out(f"{'card shows the final tally (person sync), after the first vote':<64}{final:>28}")
        window = (b.window_ms[1] - b.window_ms[0]) / 1000
        out(f"bot events in the burst window (first vote -> final tally seen + {AFTER:.0f} s = {window:.1f} s), "
            "from /messages:")
        out(f"{'  new messages (m.room.message, not edits)':<64}{len(b.new_messages):>28}")
        out(f"{'  edits of the card (m.replace)':<64}{len(b.edits):>28}")
        acks = f"{b.reactions[ACK_REACTION]} ({b.acked} on the {typed} typed votes)"
        out(f"{'  reactions ' + ACK_REACTION + ' (acks of typed votes)':<64}{acks:>28}")
        others = sum(n for k, n in b.reactions.items() if k != ACK_REACTION) + sum(b.other.values())
        out(f"{'  other bot events':<64}{others:>28}")
        out(f"{'  bot events after the window':<64}{b.after_window:>28}")
        acks = sorted(b.ack_latency)
        if acks:
            out(f"{'typed vote sent -> its ' + ACK_REACTION + ' (server time), p50 / p95 / max':<64}"
                f"{f'{ms(acks) * 1000:.0f} / {ms(acks, 95) * 1000:.0f} / {acks[-1] * 1000:.0f} ms':>28}")
        out(f"{f'bot syncs with burst-room events / most events in one (limit {TIMELINE_LIMIT})':<64}"
            f"{f'{b.syncs} / {b.sync_max}':>28}")
        out(f"{'  of them `limited` (a gap the adapter must fetch)':<64}{b.sync_gaps:>28}")
        stamps = ", ".join(f"+{(ev['origin_server_ts'] - b.first_wall_ms) / 1000:.1f}" for ev in b.edits)
        out(f"edits at (s after the first vote, server time): {stamps}")
        shown = next((line for line in b.latest_text.splitlines() if line.startswith("Tally:")), "(no edit)")
        out(f"card's latest edit: {shown!r} (expected {b.final_tally!r})")
    out("")
    out(f"warnings logged: {len(warnings.records)}"
        + (f" (e.g. {warnings.records[0].name}: {warnings.records[0].getMessage()[:160]!r}; log: {log_path})"
           if warnings.records else ""))
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out(f"peak RSS: {rss:,.0f} MB (this process: Commons bot and core, echo bot, person, voters)"
        + (f"; Synapse {synapse_rss:,.0f} MB" if synapse_rss else ""))
    out(f"run time: {seconds:.1f} s (Synapse start and stop included)")
    if problems:
        out("CHECKS FAILED:")
        for problem in problems:
            out(f"  - {problem}")
    else:
        burst = (f"; {b.counted} ballots counted, the card's final tally shown, no new messages, one "
                 f"{ACK_REACTION} per typed vote" if b is not None else "")
        out(f"checks passed: every `!proposals` reply listed the {len(TITLES)} proposals{burst}")
    return met


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, help="latency samples per bot (default 100; 20 with --quick)")
    parser.add_argument("--warmup", type=int, help="warm-up rounds per bot, not counted (default 5; 3 with --quick)")
    parser.add_argument("--gap", type=float, default=0.05, help="seconds between latency rounds")
    parser.add_argument("--voters", type=int, default=200, help="members voting in the burst (0: no burst)")
    parser.add_argument("--burst-seconds", type=float, default=10.0, help="the votes are spread over this long")
    parser.add_argument("--typed-share", type=float, default=0.2, help="share of votes typed as `!vote`")
    parser.add_argument("--quick", action="store_true", help="20 latency samples per bot instead of 100")
    parser.add_argument("--strict", action="store_true", help="exit status 1 when the latency ratio target is missed")
    parser.add_argument("--log", type=Path, default=Path(tempfile.gettempdir()) / "commons-matrix-bench.log",
                        help="where nio, adapter and bench log lines go (WARNING and up; INFO with --verbose)")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    args.samples = args.samples if args.samples is not None else (20 if args.quick else 100)
    args.warmup = args.warmup if args.warmup is not None else (3 if args.quick else 5)
    if args.samples < 1 or args.voters < 0:
        raise SystemExit("--samples must be at least 1 and --voters at least 0")
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, filename=str(args.log),
                        filemode="w", format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    warnings = WarningCount()
    logging.getLogger().addHandler(warnings)

    started = time.monotonic()
    print(f"Commons Matrix adapter benchmark — {time.strftime('%Y-%m-%d %H:%M:%S')}", flush=True)
    versions = {"matrix-nio": importlib.metadata.version("matrix-nio"),
                "Synapse": importlib.metadata.version("matrix-synapse"), "aiohttp": aiohttp.__version__}
    for line in common.machine(versions):
        print(line)
    synapse = SynapseServer()
    synapse_rss = None
    try:
        synapse.start()  # on the main thread: its parent-death signal is per thread
        result, problems = asyncio.run(run(args, synapse))
        synapse_rss = synapse_peak_rss_mb(synapse)
    finally:
        synapse.stop()
    met = report(args, result, problems, warnings, time.monotonic() - started, synapse_rss, args.log)
    if problems:
        return 2
    return 1 if args.strict and not met else 0


if __name__ == "__main__":
    sys.exit(main())
