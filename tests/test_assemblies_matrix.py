"""Assemblies through the Matrix adapter, against the session's real Synapse with the real core
behind it (rig and people from tests/test_matrix_adapter.py): an assembly is announced with its
place escaped in the HTML, an agenda item is backed with a keycap reaction (once per member; taking
the reaction back stops backing it), and
when the clock reaches the draws the room hears who facilitates and who takes notes, and each of
them is told in their direct room with the bot."""

from __future__ import annotations

from datetime import datetime, time, timedelta, timezone

from tests.test_matrix_adapter import (  # noqa: F401 (fixtures)
    ask,
    bot_user,
    make_rig,
    people,
    reactions,
    room_with_bot,
)

KEYCAP_ONE = "1️⃣"


async def test_an_assembly_its_agenda_and_its_draw_round_trip_through_matrix(make_rig, people, bot_user):  # noqa: F811
    rig = await make_rig()
    alice, bob, carol = await people("alice", "bob", "carol")
    bot_id = bot_user.user_id
    room = await room_with_bot(alice, bot_id, bob, carol)
    direct = {}
    for person in (alice, bob):  # each has a direct room with the bot, where it tells them their job
        direct[person] = await person.create_room("", invite=[bot_id], encrypted=True, direct=True)
        await person.wait_for(lambda person=person: bot_id in person.client.rooms[direct[person]].users
                              and not person.client.rooms[direct[person]].users[bot_id].invited)

    # Scheduled five days ahead (the clock is real time here): the place and title read as typed,
    # escaped in the HTML.
    day = (rig.clock.now() + timedelta(days=5)).date()
    starts_at = datetime.combine(day, time(19, 0), tzinfo=timezone.utc)  # the group's time zone is UTC
    await alice.say(room, f"!assembly {day:%Y-%m-%d} 19:00 Hall <b>A</b> & B | Budget & bread")
    announced = (await alice.wait_for_message(room, bot_id, contains="📅"))["content"]
    assert "Assembly #1 — Budget & bread" in announced["body"] and "📍 Hall <b>A</b> & B" in announced["body"]
    assert "Hall &lt;b&gt;A&lt;/b&gt; &amp; B" in announced["formatted_body"]
    assert "Budget &amp; bread" in announced["formatted_body"] and "<b>A</b>" not in announced["formatted_body"]
    assert f"{day.day} {day:%b} 19:00" in announced["body"]

    # An item, shown on the agenda with a keycap reaction; Bob backs it with one tap.
    added = (await ask(alice, room, bot_id, "!agenda add Repaint the kitchen"))["content"]["body"]
    assert "Item #1" in added and "Repaint the kitchen" in added
    agenda = await ask(carol, room, bot_id, "!agenda")
    assert "1. Repaint the kitchen #1 — Alice\n" in agenda["content"]["body"]  # nobody backs it yet
    await bob.wait_for(lambda: reactions(bob, room, agenda["event_id"], bot_id) == [KEYCAP_ONE])  # seeded
    backed = await bob.react(room, agenda["event_id"], KEYCAP_ONE)  # applied before Carol's command, which follows
    shown = (await ask(carol, room, bot_id, "!agenda"))["content"]["body"]
    assert "Repaint the kitchen #1 — Alice · 👍 1" in shown

    # A second tap by Bob (from a client that leaves out the variation selector, so the homeserver takes
    # it as another reaction) counts nothing: he is told so in the room, addressed to him.
    await bob.react(room, agenda["event_id"], KEYCAP_ONE.replace("\ufe0f", ""))
    refusal = (await bob.wait_for_message(room, bot_id, contains="already"))["content"]
    assert "You back item #1 already" in refusal["body"] and refusal["m.mentions"]["user_ids"] == [bob.user_id]
    shown = (await ask(carol, room, bot_id, "!agenda"))["content"]["body"]
    assert "Repaint the kitchen #1 — Alice · 👍 1" in shown and "👍 2" not in shown

    # Alice stands for facilitation, Bob for the minutes.
    assert "Alice stands for" in (await ask(alice, room, bot_id, "!volunteer facilitation"))["content"]["body"]
    assert "Bob stands for" in (await ask(bob, room, bot_id, "!volunteer minutes"))["content"]["body"]

    # Two days before the start the facilitator's lottery opens; drawn the draw window (10 minutes) later,
    # when the note-taker's opens among the others; drawn 10 minutes after that.
    seen = len(alice.messages(room, bot_id))
    await rig.advance(starts_at - timedelta(days=2) - rig.clock.now() + timedelta(seconds=1))
    opened = (await alice.wait_for_message(room, bot_id, after=seen, contains="Lottery #1"))["content"]["body"]
    assert "Lottery #1 draws the facilitator of Assembly #1 — Budget & bread" in opened
    assert "among 1 member: 1. Alice." in opened and "Repaint the kitchen #1" in opened
    await rig.advance(timedelta(minutes=10, seconds=1))
    facilitator = (await alice.wait_for_message(room, bot_id, after=seen, contains="the facilitator is"))["content"]
    assert "Assembly #1 — Budget & bread: the facilitator is @Alice (lottery #1)." in facilitator["body"]
    assert "Lottery #2 draws the note-taker" in facilitator["body"] and "1. Bob." in facilitator["body"]
    await rig.advance(timedelta(minutes=10, seconds=1))
    note_taker = (await alice.wait_for_message(room, bot_id, after=seen, contains="the note-taker is"))["content"]
    assert "Assembly #1 — Budget & bread: the note-taker is @Bob (lottery #2)." in note_taker["body"]
    assert [facilitator["m.mentions"]["user_ids"], note_taker["m.mentions"]["user_ids"]] == [[alice.user_id],
                                                                                           [bob.user_id]]

    # Each is told in their direct room, with the place as typed and the agenda so far.
    to_alice = (await alice.wait_for_message(direct[alice], bot_id, contains="You are the"))["content"]["body"]
    assert "You are the facilitator of Assembly #1 — Budget & bread" in to_alice
    assert "📍 Hall <b>A</b> & B" in to_alice and "Repaint the kitchen #1 — Alice · 👍 1" in to_alice
    to_bob = (await bob.wait_for_message(direct[bob], bot_id, contains="You are the"))["content"]["body"]
    assert "You are the note-taker of Assembly #1 — Budget & bread" in to_bob

    # Bob takes his reaction back: he no longer backs the item.
    await bob.redact(room, backed)
    shown = (await ask(carol, room, bot_id, "!agenda"))["content"]["body"]
    assert "1. Repaint the kitchen #1 — Alice\n" in shown and "👍" not in shown.split("React to")[0]
    assert "React to back an item: 1️⃣ 👍 #1" in shown
