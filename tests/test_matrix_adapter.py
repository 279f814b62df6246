"""The Matrix adapter — matrix-nio with encryption — against a real Synapse
homeserver started for the session, with the real core behind it. People are
matrix-nio clients (tests/matrix_people.py)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

import pytest
from nio import AsyncClient, EncryptionError, RoomMessagesError, crypto
from sqlalchemy import select

from adapters.matrix import MatrixAdapter, MatrixError
from adapters.matrix.adapter import ACK_REACTION
from bot.actions import DirectMessage, SendMessage
from bot.app import build_core
from bot.clock import OffsetClock
from bot.config import DefaultsConfig
from bot.events import ChatRef, CommandMessage, UserRef
from bot.render.text import plain
from bot.runtime import Runtime
from storage.models import Ballot, Group, Member
from tests.matrix_people import Person

YES, NO = "👍", "👎"


class MatrixRig:
    """Core + runtime + Matrix adapter, started and stopped like the app does."""

    def __init__(self, synapse, bot, store: Path, database_url: str, clock: OffsetClock, **options) -> None:
        self.synapse, self.bot, self.store, self.url, self.clock = synapse, bot, store, database_url, clock
        self.options = {"edit_delay": 0.2, "sync_timeout_ms": 1000, "max_backoff": 1.0} | options

    async def start(self) -> MatrixRig:
        self.core = build_core(self.url, self.clock, DefaultsConfig(), {"matrix": "!"})
        self.adapter = MatrixAdapter(self.synapse.url, self.bot.user_id, password=self.bot.password,
                                     store_path=self.store, **self.options)
        self.runtime = Runtime(self.core, [self.adapter], timedelta(hours=1))
        await self.runtime.start()
        return self

    async def stop(self) -> None:
        await self.runtime.stop()
        self.core.db.dispose()

    async def advance(self, by: timedelta) -> None:
        self.clock.advance(by)
        await self.runtime.scheduler.run_now()

    def ballots(self) -> list[tuple[str, str]]:
        with self.core.db.transaction() as session:
            rows = session.execute(select(Member.user_id, Ballot.choice).join(Member, Member.id == Ballot.member_id))
            return sorted((user, choice) for user, choice in rows)

    def group(self) -> Group:
        with self.core.db.transaction() as session:
            group = session.scalars(select(Group)).one()
            session.expunge(group)
            return group

    def active_members(self) -> set[str]:
        with self.core.db.transaction() as session:
            return set(session.scalars(select(Member.user_id).where(Member.active)))


def unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:6]}"  # the homeserver lives for the whole session


@pytest.fixture
async def people(synapse, tmp_path):
    """people("alice", "bob") -> started Person objects, stopped after the test."""
    started: list[Person] = []

    async def make(*names: str) -> list[Person]:
        made = []
        for name in names:
            user = await synapse.aregister(unique(name), displayname=name.capitalize())
            person = await Person(synapse.url, user, tmp_path / "people" / user.user_id).start()
            started.append(person)
            made.append(person)
        return made

    yield make
    for person in started:
        await person.stop()


@pytest.fixture
async def bot_user(synapse):
    return await synapse.aregister(unique("commons"), displayname="Commons")


@pytest.fixture
async def make_rig(synapse, bot_user, tmp_path, sqlite_url):
    rigs: list[MatrixRig] = []
    clock = OffsetClock()

    async def make(**options) -> MatrixRig:
        rig = await MatrixRig(synapse, bot_user, tmp_path / "bot-store", sqlite_url, clock, **options).start()
        rigs.append(rig)
        return rig

    yield make
    for rig in rigs:
        if rig.adapter.client is not None and not rig.adapter._stopping:
            await rig.stop()


async def room_with_bot(owner: Person, bot_id: str, *others: Person, encrypted: bool = False) -> str:
    """The owner opens a room and invites the bot, which joins by itself; others join too."""
    room = await owner.create_room("Tenants' Union", invite=[bot_id, *(p.user_id for p in others)],
                                   encrypted=encrypted)
    for person in others:
        await person.join(room)
    await owner.wait_for(lambda: bot_id in owner.client.rooms[room].users
                         and not owner.client.rooms[room].users[bot_id].invited)
    return room


async def ask(person: Person, room: str, bot_id: str, text: str) -> dict:
    """Say a command and return the bot's reply to it."""
    command = await person.say(room, text)
    return await person.wait_for(lambda: next(
        (m for m in person.messages(room, bot_id)
         if (m["content"].get("m.relates_to") or {}).get("m.in_reply_to", {}).get("event_id") == command), None))


def reactions(person: Person, room: str, target: str, sender: str | None = None) -> list[str]:
    return [e["content"]["m.relates_to"]["key"] for e in person.events(room, sender, "m.reaction")
            if e["content"]["m.relates_to"]["event_id"] == target]


# ---------------------------------------------------------------------------------------------

async def test_the_bot_joins_when_invited_and_answers_as_a_notice_with_html(make_rig, people, bot_user):
    rig = await make_rig()
    [alice] = await people("alice")
    room = await room_with_bot(alice, bot_user.user_id)
    reply = await ask(alice, room, bot_user.user_id, "!help vote")
    content = reply["content"]
    assert content["msgtype"] == "m.notice"
    assert content["format"] == "org.matrix.custom.html"
    assert "!vote &lt;#&gt;" in content["formatted_body"] and "<br>" in content["formatted_body"]
    assert "!vote <#> <yes|no|abstain|block|option>" in content["body"]
    assert content["m.mentions"] == {"user_ids": []}
    # Ordinary conversation gets no answer, and the bot speaks only when addressed.
    await alice.say(room, "hello everyone")
    await ask(alice, room, bot_user.user_id, "!proposals")
    assert len(alice.messages(room, bot_user.user_id)) == 2
    assert rig.group().title == "Tenants' Union"


async def test_a_proposal_is_voted_by_reaction_changed_retracted_and_typed(make_rig, people, bot_user):
    rig = await make_rig()
    alice, bob, carol = await people("alice", "bob", "carol")
    bot_id = bot_user.user_id
    room = await room_with_bot(alice, bot_id, bob, carol)
    card = await ask(alice, room, bot_id, "!propose Buy a <b>chest</b> freezer closes=1d")
    assert "React to vote: 👍 Yes · 👎 No · 🤷 Abstain · ✋ Block" in card["content"]["body"]
    assert "&lt;b&gt;chest&lt;/b&gt;" in card["content"]["formatted_body"]  # user text escaped
    card_id = card["event_id"]
    await bob.wait_for(lambda: len(reactions(bob, room, card_id, bot_id)) == 4)  # seeded: one tap to vote

    first = await bob.react(room, card_id, YES)
    await bob.wait_for(lambda: "Tally: 1 yes" in bob.latest_text(room, bot_id, card_id))
    assert rig.ballots() == [(bob.user_id, "yes")]

    await bob.react(room, card_id, NO + "\ufe0f")  # some clients add the variation selector
    await bob.wait_for(lambda: rig.ballots() == [(bob.user_id, "no")])  # the later reaction replaces
    await bob.redact(room, first)  # taking back the old reaction does not touch the new vote
    second = [e["event_id"] for e in bob.events(room, bob.user_id, "m.reaction")][-1]
    await bob.redact(room, second)
    await bob.wait_for(lambda: rig.ballots() == [])  # redacting the current one retracts it

    command = await carol.say(room, "!vote 1 yes too cold in winter")
    await carol.wait_for(lambda: reactions(carol, room, command, bot_id) == [ACK_REACTION])
    await carol.wait_for(lambda: "Tally: 1 yes" in carol.latest_text(room, bot_id, card_id))
    assert rig.ballots() == [(carol.user_id, "yes")]
    assert len(alice.messages(room, bot_id)) == 1  # votes posted no messages: the card was edited


async def test_the_outcome_is_announced_at_the_deadline_and_the_card_closed(make_rig, people, bot_user):
    rig = await make_rig()
    alice, bob = await people("alice", "bob")
    room = await room_with_bot(alice, bot_user.user_id, bob)
    card = await ask(alice, room, bot_user.user_id, "!propose Paint the stairwell closes=1d")
    await bob.react(room, card["event_id"], YES)
    await bob.wait_for(lambda: rig.ballots() == [(bob.user_id, "yes")])
    await rig.advance(timedelta(days=1, minutes=1))
    outcome = await alice.wait_for_message(room, bot_user.user_id, after=1)
    assert "Paint the stairwell" in outcome["content"]["body"] and "#1" in outcome["content"]["body"]
    await alice.wait_for(lambda: "Closed" in alice.latest_text(room, bot_user.user_id, card["event_id"]))
    assert "React to vote" not in alice.latest_text(room, bot_user.user_id, card["event_id"])
    # A late tap is refused in the open (Matrix has no private toast), addressed to the member.
    await bob.react(room, card["event_id"], NO)
    refusal = await bob.wait_for_message(room, bot_user.user_id, after=2)
    assert bob.user_id in refusal["content"]["m.mentions"]["user_ids"]
    assert rig.ballots() == [(bob.user_id, "yes")]


async def test_mentions_are_pills_that_notify_only_the_people_named(make_rig, people, bot_user):
    rig = await make_rig()
    alice, bob = await people("alice", "bob")
    room = await room_with_bot(alice, bot_user.user_id, bob)
    await ask(bob, room, bot_user.user_id, "!proposals")  # the bot now knows bob
    await ask(alice, room, bot_user.user_id, "!propose Rotate the keys closes=2d")
    await alice.say(room, "!vote 1 yes")
    await alice.wait_for(lambda: rig.ballots() == [(alice.user_id, "yes")])
    await alice.say(room, "!remind 1")
    reminder = await alice.wait_for_message(room, bot_user.user_id, after=2)
    content = reminder["content"]
    assert f'<a href="https://matrix.to/#/{bob.user_id}">Bob</a>' in content["formatted_body"]
    assert content["m.mentions"] == {"user_ids": [bob.user_id]}
    assert rig.active_members() == {alice.user_id, bob.user_id}


async def test_members_are_the_joined_people_minus_bots(make_rig, people, bot_user, synapse):
    other_bot = await synapse.aregister(unique("otherbot"))
    rig = await make_rig(bots=[other_bot.user_id])
    alice, bob, carol = await people("alice", "bob", "carol")
    room = await room_with_bot(alice, bot_user.user_id, bob)
    other = await Person(synapse.url, other_bot, rig.store.parent / "otherbot").start()
    try:
        await alice.client.room_invite(room, other_bot.user_id)
        await other.join(room)
        await alice.client.room_invite(room, carol.user_id)
        await carol.join(room)
        await ask(alice, room, bot_user.user_id, "!proposals")
        await alice.wait_for(lambda: rig.group().reported_member_count == 3)
        assert rig.active_members() == {alice.user_id, bob.user_id, carol.user_id}
        await bob.client.room_leave(room)
        await alice.wait_for(lambda: rig.group().reported_member_count == 2)
        await alice.wait_for(lambda: rig.active_members() == {alice.user_id, carol.user_id})
    finally:
        await other.stop()


async def test_invitations_are_accepted_only_from_the_allow_list(make_rig, people, bot_user, synapse):
    alice, mallory = await people("alice", "mallory")
    await make_rig(allowed_inviters=[alice.user_id, "example.org"])
    refused = await mallory.create_room("Elsewhere", invite=[bot_user.user_id])
    await mallory.wait_for(lambda: any(
        e["state_key"] == bot_user.user_id and e["content"]["membership"] == "leave"
        for e in mallory.events(refused, kind="m.room.member")))
    room = await room_with_bot(alice, bot_user.user_id)
    await ask(alice, room, bot_user.user_id, "!help")


async def test_an_encrypted_room_works_across_a_restart_of_the_bot(make_rig, people, bot_user, synapse):
    assert crypto.ENCRYPTION_ENABLED
    rig = await make_rig()
    [alice] = await people("alice")
    room = await room_with_bot(alice, bot_user.user_id, encrypted=True)
    device = rig.adapter.device_id
    reply = await ask(alice, room, bot_user.user_id, "!help")
    assert reply["content"]["msgtype"] == "m.notice"
    assert await _stored_types(synapse, alice, room, bot_user.user_id) == {"m.room.encrypted"}

    await rig.stop()
    rig = await make_rig()
    assert rig.adapter.device_id == device  # the same device, so its keys still decrypt
    reply = await ask(alice, room, bot_user.user_id, "!proposals")
    assert "No open proposals" in reply["content"]["body"] or "proposal" in reply["content"]["body"].lower()
    # An image and a file in an encrypted room are encrypted attachments.
    await alice.say(room, "!audit")
    await alice.wait_for_message(room, bot_user.user_id, contains="audit #1")
    await rig.advance(timedelta(days=8))
    image = await alice.wait_for(lambda: next((m for m in alice.messages(room, bot_user.user_id)
                                               if m["content"]["msgtype"] == "m.image"), None), timeout=30)
    data = await _download(alice, image["content"])
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert image["content"]["info"]["w"] > 100 and "url" not in image["content"]


async def _stored_types(synapse, person: Person, room: str, sender: str) -> set[str]:
    """The types of the sender's events as the homeserver stores them, read over plain HTTP:
    in an encrypted room it never sees a message's plaintext (reactions are not encrypted by any client)."""
    path = f"/_matrix/client/v3/rooms/{quote(room)}/messages?dir=b&limit=100"
    chunk = (await asyncio.to_thread(synapse.request, "GET", path, None, person.user.access_token))["chunk"]
    return {e["type"] for e in chunk if e["sender"] == sender and "state_key" not in e}


async def _download(person: Person, content: dict) -> bytes:
    source = content.get("file", {}).get("url") or content["url"]
    response = await person.client.download(mxc=source)
    if "file" in content:
        keys = content["file"]
        return crypto.decrypt_attachment(response.body, keys["key"]["k"], keys["hashes"]["sha256"], keys["iv"])
    return response.body


async def test_a_file_is_uploaded_to_the_media_repository(make_rig, people, bot_user):
    rig = await make_rig()
    [alice] = await people("alice")
    room = await room_with_bot(alice, bot_user.user_id)
    await alice.say(room, "!audit")
    await alice.wait_for_message(room, bot_user.user_id, contains="audit #1")
    await rig.advance(timedelta(days=8))
    await alice.wait_for(lambda: any(m["content"]["msgtype"] == "m.image" for m in alice.messages(
        room, bot_user.user_id)), timeout=30)
    await alice.say(room, "!audit report csv")
    sent = await alice.wait_for(lambda: next((m for m in alice.messages(room, bot_user.user_id)
                                              if m["content"]["msgtype"] == "m.file"), None))
    assert sent["content"]["filename"] == "sovereignty-audits.csv"
    assert sent["content"]["url"].startswith("mxc://")
    data = await _download(alice, sent["content"])
    assert data.decode().startswith("audit,")


async def test_no_replay_after_a_restart_and_only_recent_commands_from_the_downtime(make_rig, people, bot_user):
    rig = await make_rig(history_window=timedelta(seconds=4))
    [alice] = await people("alice")
    bot_id = bot_user.user_id
    room = await room_with_bot(alice, bot_id)
    await ask(alice, room, bot_id, "!help")
    await rig.stop()
    stale = await alice.say(room, "!proposals")
    await asyncio.sleep(4.5)
    recent = await alice.say(room, "!decisions")
    await make_rig(history_window=timedelta(seconds=4))
    await alice.wait_for(lambda: any(_replies_to(alice, room, bot_id, recent)))
    await ask(alice, room, bot_id, "!roles")  # a later command, so everything before it was handled
    assert len(alice.messages(room, bot_id)) == 3  # help, decisions, roles: nothing twice
    assert not list(_replies_to(alice, room, bot_id, stale))


def _replies_to(person: Person, room: str, sender: str, event_id: str):
    return (m for m in person.messages(room, sender)
            if (m["content"].get("m.relates_to") or {}).get("m.in_reply_to", {}).get("event_id") == event_id)


async def test_an_anonymous_need_from_a_direct_room(make_rig, people, bot_user):
    rig = await make_rig()
    alice, bob = await people("alice", "bob")
    bot_id = bot_user.user_id
    room = await room_with_bot(alice, bot_id, bob)
    await ask(alice, room, bot_id, "!needs")
    direct = await alice.create_room("", invite=[bot_id], encrypted=True, direct=True)
    await alice.wait_for(lambda: bot_id in alice.client.rooms[direct].users
                         and not alice.client.rooms[direct].users[bot_id].invited)
    receipt = await ask(alice, direct, bot_id, "need a lift to the clinic on Friday")
    assert "#1" in receipt["content"]["body"]
    posted = await bob.wait_for_message(room, bot_id, contains="lift to the clinic")
    assert "Alice" not in posted["content"]["body"] and "privately" in posted["content"]["body"]
    await ask(bob, room, bot_id, "!claim 1")
    told = await alice.wait_for_message(direct, bot_id, after=1)
    assert "Bob claimed it" in told["content"]["body"]
    assert rig.group().title == "Tenants' Union"


async def test_the_bot_reconnects_after_the_homeserver_restarts(make_rig, people, bot_user, synapse):
    await make_rig()
    [alice] = await people("alice")
    room = await room_with_bot(alice, bot_user.user_id)
    await ask(alice, room, bot_user.user_id, "!help")
    await synapse.arestart()
    reply = await ask(alice, room, bot_user.user_id, "!proposals")
    assert reply["content"]["msgtype"] == "m.notice"


async def test_rate_limits_are_waited_out_and_nothing_is_lost(make_rig, people, bot_user, synapse):
    await make_rig()
    [alice] = await people("alice")
    room = await room_with_bot(alice, bot_user.user_id)
    synapse.override_ratelimit(bot_user.user_id, messages_per_second=1, burst_count=1)
    try:
        commands = [await alice.say(room, text) for text in ("!help", "!proposals", "!decisions")]
        for command in commands:
            await alice.wait_for(lambda command=command: any(_replies_to(alice, room, bot_user.user_id, command)),
                                 timeout=20)
        assert len(alice.messages(room, bot_user.user_id)) == 3
    finally:
        synapse.delete_ratelimit_override(bot_user.user_id)


async def test_a_command_in_a_thread_is_answered_in_that_thread(make_rig, people, bot_user):
    await make_rig()
    [alice] = await people("alice")
    room = await room_with_bot(alice, bot_user.user_id)
    root = await alice.say(room, "Planning the spring assembly")
    command = await alice.say(room, "!proposals", **{"m.relates_to": {"rel_type": "m.thread", "event_id": root}})
    [reply] = await alice.wait_for(lambda: list(_replies_to(alice, room, bot_user.user_id, command)))
    assert reply["content"]["m.relates_to"]["rel_type"] == "m.thread"
    assert reply["content"]["m.relates_to"]["event_id"] == root


async def test_commons_bot_run_serves_a_matrix_room_from_its_configuration(people, bot_user, synapse, tmp_path):
    """The whole program, as an operator starts it: `commons-bot run --config config.toml`."""
    root = Path(__file__).resolve().parents[1]
    config = tmp_path / "config.toml"
    config.write_text(f'[database]\nurl = "sqlite:///{tmp_path / "commons.db"}"\n'
                      f'[matrix]\nhomeserver = "{synapse.url}"\nuser_id = "{bot_user.user_id}"\n'
                      f'store_path = "{tmp_path / "store"}"\ncommand_prefix = "."\n')
    env = {**os.environ, "PYTHONPATH": str(root), "COMMONS_MATRIX__PASSWORD": bot_user.password}
    process = await asyncio.create_subprocess_exec(sys.executable, "-m", "bot.cli", "run", "--config", str(config),
                                                   env=env, stderr=asyncio.subprocess.PIPE, cwd=tmp_path)
    try:
        [alice] = await people("alice")
        room = await room_with_bot(alice, bot_user.user_id)
        reply = await ask(alice, room, bot_user.user_id, ".help vote")  # the configured prefix
        assert ".vote <#>" in reply["content"]["body"]
        await alice.say(room, "!help")  # not this bot's prefix here: ignored
        await ask(alice, room, bot_user.user_id, ".proposals")
        assert len(alice.messages(room, bot_user.user_id)) == 2
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode == 0, stderr.decode()[-2000:]


async def test_the_bot_opens_an_encrypted_direct_room_when_it_has_none(make_rig, people, bot_user):
    rig = await make_rig()
    [bob] = await people("bob")
    user = UserRef(platform="matrix", user_id=bob.user_id)
    sending = asyncio.create_task(rig.adapter.perform(DirectMessage(user=user, text=plain("Your term ends soon."))))
    invite = await bob.wait_for(lambda: bob.invites[-1] if bob.invites else None)
    await bob.join(invite)
    await sending
    told = await bob.wait_for_message(invite, bot_user.user_id)
    assert told["content"]["body"] == "Your term ends soon."
    assert bob.client.rooms[invite].encrypted
    # The next message reuses the room.
    await rig.adapter.perform(DirectMessage(user=user, text=plain("And thank you.")))
    await bob.wait_for_message(invite, bot_user.user_id, after=1)
    assert len(bob.client.rooms) == 1


async def test_a_bot_removed_from_a_room_keeps_running_and_can_be_invited_back(make_rig, people, bot_user):
    rig = await make_rig()
    [alice] = await people("alice")
    room = await room_with_bot(alice, bot_user.user_id)
    await ask(alice, room, bot_user.user_id, "!help")
    await alice.client.room_kick(room, bot_user.user_id, reason="testing")
    await alice.wait_for(lambda: bot_user.user_id not in alice.client.rooms[room].users)
    await asyncio.sleep(0.5)
    with pytest.raises(MatrixError):  # an announcement for that room fails at once (and stays queued)
        await rig.adapter.perform(SendMessage(chat=ChatRef(platform="matrix", chat_id=room), text=plain("hi")))
    await alice.client.room_invite(room, bot_user.user_id)
    await alice.wait_for(lambda: bot_user.user_id in alice.client.rooms[room].users
                         and not alice.client.rooms[room].users[bot_user.user_id].invited)
    await ask(alice, room, bot_user.user_id, "!proposals")


async def test_a_command_buried_under_a_busy_downtime_is_still_handled_once(make_rig, people, bot_user):
    rig = await make_rig()
    [alice] = await people("alice")
    room = await room_with_bot(alice, bot_user.user_id)
    await ask(alice, room, bot_user.user_id, "!help")
    await rig.stop()
    buried = await alice.say(room, "!propose Open the tool library on Sundays")
    for number in range(130):  # more than one sync carries: the timeline comes back "limited"
        await alice.say(room, f"chatter {number}")
    await make_rig()
    await alice.wait_for(lambda: any(_replies_to(alice, room, bot_user.user_id, buried)))
    await ask(alice, room, bot_user.user_id, "!proposals")
    assert len(alice.messages(room, bot_user.user_id)) == 3


# The sync token is confirmed only after the whole batch was applied ---------------------------

async def test_a_vote_the_core_could_not_apply_is_synced_again_and_counted_once(make_rig, people, bot_user):
    rig = await make_rig()
    alice, bob = await people("alice", "bob")
    bot_id = bot_user.user_id
    room = await room_with_bot(alice, bot_id, bob)
    await ask(alice, room, bot_id, "!propose Fix the boiler closes=1d")
    sink, failed = rig.adapter._sink, []

    async def database_down(event):  # the first three attempts fail, as when the database is unreachable
        if isinstance(event, CommandMessage) and event.text.startswith("!vote") and len(failed) < 3:
            failed.append(event.event_id)
            raise ConnectionError("database unreachable")
        await sink(event)

    rig.adapter._sink = database_down
    command = await bob.say(room, "!vote 1 yes")
    await bob.wait_for(lambda: rig.ballots() == [(bob.user_id, "yes")], timeout=30)
    assert failed == [command] * 3
    await ask(alice, room, bot_id, "!proposals")  # everything before it was handled
    assert reactions(bob, room, command, bot_id) == [ACK_REACTION]


async def test_a_gap_that_could_not_be_fetched_is_fetched_again(make_rig, people, bot_user, monkeypatch):
    rig = await make_rig()
    [alice] = await people("alice")
    room = await room_with_bot(alice, bot_user.user_id)
    await ask(alice, room, bot_user.user_id, "!help")
    await rig.stop()
    buried = await alice.say(room, "!propose Open the tool library on Sundays")
    for number in range(130):  # more than one sync carries: the bot must fetch the gap
        await alice.say(room, f"chatter {number}")
    room_messages, refused = AsyncClient.room_messages, []

    async def once_refused(client, *args, **kwargs):
        if not refused:
            refused.append(args)
            return RoomMessagesError("homeserver overloaded", "M_UNKNOWN")
        return await room_messages(client, *args, **kwargs)

    monkeypatch.setattr(AsyncClient, "room_messages", once_refused)
    await make_rig()
    await alice.wait_for(lambda: any(_replies_to(alice, room, bot_user.user_id, buried)), timeout=30)
    assert refused
    await ask(alice, room, bot_user.user_id, "!proposals")
    assert len(alice.messages(room, bot_user.user_id)) == 3


async def test_an_encrypted_command_waiting_for_its_key_is_kept_across_a_restart(make_rig, people, bot_user):
    rig = await make_rig()
    [alice] = await people("alice")
    room = await room_with_bot(alice, bot_user.user_id, encrypted=True)
    await ask(alice, room, bot_user.user_id, "!help")
    # The bot cannot decrypt for now (as when the room key is late); the sync token moves on.
    client = rig.adapter.client

    def no_key(*args, **kwargs):
        raise EncryptionError("no room key yet")

    client.olm._decrypt_megolm_no_error = lambda *args, **kwargs: None
    client.decrypt_event = no_key
    before = rig.adapter.state.sync_token()
    command = await alice.say(room, "!proposals")
    await alice.wait_for(lambda: rig.adapter.state.undecrypted()
                         and rig.adapter.state.sync_token() != before, timeout=15)
    await rig.stop()  # the same as a crash here: the waiting event is in the store already
    rig = await make_rig()
    await alice.wait_for(lambda: any(_replies_to(alice, room, bot_user.user_id, command)), timeout=30)
    await ask(alice, room, bot_user.user_id, "!decisions")
    assert len(list(_replies_to(alice, room, bot_user.user_id, command))) == 1
    assert rig.adapter.state.undecrypted() == []
