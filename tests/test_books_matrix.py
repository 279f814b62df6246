"""The open books and the charter through the Matrix adapter, against the session's real Synapse
with the real core behind it (rig and people from tests/test_matrix_adapter.py): `!ledger` entries
are acknowledged with a reaction and shown with the balance, member text is escaped in the HTML,
and a clause added with `!charter add` becomes the charter when the group votes for it."""

from __future__ import annotations

from adapters.matrix.adapter import ACK_REACTION
from tests.test_matrix_adapter import (  # noqa: F401 (fixtures)
    YES,
    ask,
    bot_user,
    make_rig,
    people,
    reactions,
    room_with_bot,
)


async def test_the_ledger_and_the_charter_round_trip_through_matrix(make_rig, people, bot_user):  # noqa: F811
    rig = await make_rig()
    alice, bob, carol = await people("alice", "bob", "carol")
    bot_id = bot_user.user_id
    room = await room_with_bot(alice, bot_id, bob, carol)

    # The books: two entries, each acknowledged quietly with a reaction, then the balance.
    async def record(text: str) -> None:
        command = await alice.say(room, text)
        await alice.wait_for(lambda: reactions(alice, room, command, bot_id) == [ACK_REACTION])

    await record("!ledger +120 Sunday kitchen donations")
    await record("!ledger -45.50 freezer repair")
    assert alice.messages(room, bot_id) == []  # no message for an entry
    books = (await ask(bob, room, bot_id, "!ledger"))["content"]["body"]
    assert "Balance: 74.50 EUR" in books
    assert "Sunday kitchen donations" in books and "freezer repair" in books
    assert "120.00 EUR" in books and "45.50 EUR" in books

    # A description with HTML in it reads as typed, and is escaped in the HTML.
    await record("!ledger +1 <b>bold</b> test")
    books = (await ask(bob, room, bot_id, "!ledger"))["content"]
    assert "Balance: 75.50 EUR" in books["body"] and "<b>bold</b> test" in books["body"]
    assert "&lt;b&gt;bold&lt;/b&gt; test" in books["formatted_body"] and "<b>bold</b>" not in books["formatted_body"]

    # The charter: none yet; a clause is proposed under the charter rule, voted, closed by its author.
    none = (await ask(carol, room, bot_id, "!charter"))["content"]["body"]
    assert "no charter yet" in none and "!charter add <text>" in none
    card = await ask(alice, room, bot_id, "!charter add Meetings start on time")
    card_id = card["event_id"]
    assert "Meetings start on time" in card["content"]["body"] and "two-thirds" in card["content"]["body"]
    await bob.wait_for(lambda: YES in reactions(bob, room, card_id, bot_id))  # seeded: one tap to vote
    await bob.react(room, card_id, YES)
    command = await carol.say(room, "!vote 1 yes")
    await carol.wait_for(lambda: reactions(carol, room, command, bot_id) == [ACK_REACTION])
    await alice.wait_for(lambda: "Tally: 2 yes" in alice.latest_text(room, bot_id, card_id))
    assert sorted(choice for _, choice in rig.ballots()) == ["yes", "yes"]

    refused = (await ask(bob, room, bot_id, "!close 1"))["content"]["body"]
    assert "can close it early" in refused
    await alice.say(room, "!close 1")
    outcome = (await alice.wait_for_message(room, bot_id, contains="charter is now at version"))["content"]
    assert "📜 The charter is now at version 1." in outcome["body"] and "1. Meetings start on time" in outcome["body"]
    await alice.wait_for(lambda: "Closed" in alice.latest_text(room, bot_id, card_id))

    shown = (await ask(bob, room, bot_id, "!charter"))["content"]["body"]
    assert "Our charter (version 1)" in shown and "1. Meetings start on time" in shown
