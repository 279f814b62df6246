"""Secret ballots and ranked polls through the Matrix adapter, against the session's real
Synapse with the real core behind it (rig and people from tests/test_matrix_adapter.py).

A secret ballot is cast by typing in the member's encrypted direct room: never by a
reaction, whose key the homeserver would see even there."""

from __future__ import annotations

import csv
import hashlib
import logging
import re

from bot.events import CommandMessage
from tests.matrix_people import Person
from tests.test_matrix_adapter import (  # noqa: F401 (fixtures)
    _download,
    _stored_types,
    ask,
    bot_user,
    make_rig,
    people,
    reactions,
    room_with_bot,
)

RECEIPT = re.compile(r"[A-Z2-9]{4}-[A-Z2-9]{4}-[A-Z2-9]{4}")
LOCK = "🔒"
ONE, THREE = "1️⃣", "3️⃣"


def bot_texts(person: Person, room: str, bot_id: str) -> list[str]:
    """Everything the bot has said in a room: its messages and every edit of them."""
    return ([m["content"]["body"] for m in person.messages(room, bot_id)]
            + [e["content"]["m.new_content"]["body"] for e in person.edits(room, bot_id)])


async def join_direct_room(person: Person, group: str) -> str:
    """The person joins the direct room the bot opened with them (the invitation that is not to the group)."""
    room = await person.wait_for(lambda: next((room for room in person.invites if room != group), None))
    await person.join(room)
    assert person.client.rooms[room].encrypted
    return room


async def test_a_secret_ballot_is_cast_in_encrypted_direct_rooms(make_rig, people, bot_user, synapse,  # noqa: F811
                                                                  caplog):
    for name in ("adapters", "bot"):
        caplog.set_level(logging.DEBUG, logger=name)
    rig = await make_rig()
    alice, bob, carol = await people("alice", "bob", "carol")
    bot_id = bot_user.user_id
    room = await room_with_bot(alice, bot_id, bob, carol, encrypted=True)
    everyone = {alice.user_id, bob.user_id, carol.user_id}
    await alice.wait_for(lambda: rig.active_members() == everyone)  # all on the voter roll

    card = await ask(alice, room, bot_id, "!propose Rent strike secret=yes")
    card_id, body = card["event_id"], card["content"]["body"]
    assert "Secret ballot: 0 voted so far" in body and "Tally" not in body
    assert "React to vote: 🔒 Vote privately" in body
    await bob.wait_for(lambda: reactions(bob, room, card_id, bot_id) == [LOCK])  # seeded like any choice

    # Bob taps 🔒: the ballot comes in an encrypted direct room, with nothing to tap there.
    await bob.react(room, card_id, LOCK)
    bob_direct = await join_direct_room(bob, room)
    ballot = await bob.wait_for_message(bob_direct, bot_id, contains="Secret ballot #1: Rent strike")
    assert "React to vote" not in ballot["content"]["body"]

    receipt = await ask(bob, bob_direct, bot_id, "vote 1 no")  # no prefix needed in a direct room
    code = RECEIPT.search(receipt["content"]["body"])[0]
    assert await _stored_types(synapse, bob, bob_direct, bob.user_id) == {"m.room.encrypted"}
    await alice.wait_for(lambda: "1 voted so far" in alice.latest_text(room, bot_id, card_id))
    assert "Tally" not in alice.latest_text(room, bot_id, card_id)
    assert len(alice.messages(room, bot_id)) == 1  # only the card, edited
    assert not any("Bob" in text for text in bot_texts(alice, room, bot_id))

    # Carol votes in the group: nothing there repeats it; her ballot comes privately.
    command = await carol.say(room, "!vote 1 yes")
    carol_direct = await join_direct_room(carol, room)
    await carol.wait_for_message(carol_direct, bot_id, contains="nothing you send in the group counts")
    sink, failed = rig.adapter._sink, []

    async def database_down(event):  # the first try fails with an error that quotes the statement's parameters
        if isinstance(event, CommandMessage) and event.is_private and not failed:
            failed.append(event.event_id)
            raise ConnectionError(f"database unreachable [parameters: ({event.text!r},)]")
        await sink(event)

    rig.adapter._sink = database_down
    carols = RECEIPT.search((await ask(carol, carol_direct, bot_id, "vote 1 no"))["content"]["body"])[0]
    await alice.wait_for(lambda: "2 voted so far" in alice.latest_text(room, bot_id, card_id))
    assert failed
    assert reactions(alice, room, command, bot_id) == []  # not even an acknowledgement
    assert len(alice.messages(room, bot_id)) == 1
    assert not any(name in text for text in bot_texts(alice, room, bot_id) for name in ("Bob", "Carol"))

    # Bob changes his ballot with the receipt; without it he is refused; the receipt finds it.
    changed = await ask(bob, bob_direct, bot_id, f"vote 1 yes receipt={code}")
    assert "now says yes (it said no)" in changed["content"]["body"]
    refused = await ask(bob, bob_direct, bot_id, "vote 1 yes")
    assert "already voted on #1" in refused["content"]["body"]
    # A message nio finds malformed (no msgtype) is logged by nio without its content.
    await bob.client.room_send(bob_direct, "m.room.message", {"body": "vote 1 abstain"},
                               ignore_unverified_devices=True)
    checked = await ask(bob, bob_direct, bot_id, f"ballot check 1 {code}")
    assert "says yes" in checked["content"]["body"]
    # The direct room carried only encrypted messages: no reaction, whose key would show a choice.
    assert await _stored_types(synapse, bob, bob_direct, bot_id) == {"m.room.encrypted"}
    assert reactions(bob, bob_direct, ballot["event_id"], bot_id) == []

    await alice.say(room, "!close 1")
    outcome = await alice.wait_for_message(room, bot_id, contains="voted:")
    assert "2 voted: Bob, Carol." in outcome["content"]["body"]
    sent = await alice.wait_for(lambda: next((m for m in alice.messages(room, bot_id)
                                              if m["content"]["msgtype"] == "m.file"), None))
    assert sent["content"]["filename"] == "ballots-1.csv" and "url" not in sent["content"]  # encrypted
    rows = list(csv.reader(line for line in (await _download(alice, sent["content"])).decode().splitlines()
                           if not line.startswith("#")))
    assert rows[0] == ["receipt_hash", "choice"]
    ballots = rows[1:]
    assert len(ballots) == 2 and ballots == sorted(ballots)
    bobs = hashlib.sha256(code.replace("-", "").upper().encode()).hexdigest()[:32]
    assert [bobs, "yes"] in ballots and sorted(choice for _, choice in ballots) == ["no", "yes"]
    assert rig.ballots() == []  # no open ballot table row links a member to a choice
    # Nothing written in a direct room was logged, not even when applying it failed.
    logged = "\n".join(record.getMessage() + (caplog.handler.formatter.formatException(record.exc_info)
                                             if record.exc_info else "") for record in caplog.records)
    assert "could not apply" in logged and "Error validating event (its content is not logged)" in logged
    for secret in ("vote 1 no", "vote 1 yes", "vote 1 abstain", code, carols):
        assert secret not in logged


async def test_a_ranked_poll_is_ranked_by_reactions_in_order(make_rig, people, bot_user):  # noqa: F811
    rig = await make_rig()
    alice, bob = await people("alice", "bob")
    bot_id = bot_user.user_id
    room = await room_with_bot(alice, bot_id, bob)
    card = await ask(alice, room, bot_id, '!propose Pick a day options="Mon; Tue; Wed" method=ranked')
    card_id = card["event_id"]
    assert "React to vote: 1️⃣ 1. Mon · 2️⃣ 2. Tue · 3️⃣ 3. Wed" in card["content"]["body"]
    await bob.wait_for(lambda: len(reactions(bob, room, card_id, bot_id)) == 3)

    third = await bob.react(room, card_id, THREE)
    await bob.wait_for(lambda: rig.ballots() == [(bob.user_id, "3")])
    await bob.react(room, card_id, ONE)
    await bob.wait_for(lambda: rig.ballots() == [(bob.user_id, "3>1")])
    shown = await ask(alice, room, bot_id, "!proposal 1")
    assert "Bob: Wed > Mon" in shown["content"]["body"]

    await bob.redact(room, third)  # taking the reaction back takes Wed out of the ranking
    await bob.wait_for(lambda: rig.ballots() == [(bob.user_id, "1")])
    shown = await ask(alice, room, bot_id, "!proposal 1")
    assert "Bob: Mon" in shown["content"]["body"] and "Wed >" not in shown["content"]["body"]
