"""Assemblies through the Telegram adapter, over real HTTP against the Bot API emulator, with the
real core behind it (rig and emulator from tests/test_secret_telegram.py): an assembly is announced
with its place escaped, an agenda item is backed with one tap (once per member), and when the clock
reaches the draws the group hears who facilitates and who takes notes, and each of them is told
privately."""

from datetime import timedelta

from tests.test_secret_telegram import (  # noqa: F401 (fixtures)
    ALICE,
    BOB,
    CAROL,
    buttons,
    data_of,
    emu,
    in_private,
    press,
    rig,
    since,
)
from tests.test_telegram_adapter import GROUP, reply_to


async def moved(emu, rig, by, marker):  # noqa: F811
    """The clock moves on and the scheduler runs: the group message it brings that says `marker`."""
    before = len(emu.messages_to(GROUP))
    rig.clock.advance(by)
    await rig.runtime.scheduler.run_now()
    await emu.wait_for(lambda: any(marker in m["plain"] for m in emu.messages_to(GROUP)[before:]), timeout=10)
    [said] = [m for m in emu.messages_to(GROUP)[before:] if marker in m["plain"]]
    return said


async def test_an_assembly_its_agenda_and_its_draw_round_trip_through_telegram(emu, rig):  # noqa: F811
    for user in (ALICE, BOB):  # they have started the bot, so it may write to them privately
        await in_private(emu, user, "/start")  # (answered with the help)

    # Scheduled (the clock says Monday 09:00 UTC): the place and title arrive as typed, escaped in the HTML.
    [announced] = await reply_to(emu, ALICE, "/assembly fri 19:00 Hall <b>A</b> & B | Budget & bread")
    assert announced["parse_mode"] == "HTML"
    assert "Assembly #1 — Budget & bread" in announced["plain"] and "📍 Hall <b>A</b> & B" in announced["plain"]
    assert "Hall &lt;b&gt;A&lt;/b&gt; &amp; B" in announced["text"] and "Budget &amp; bread" in announced["text"]
    assert "Fri 6 Mar 19:00 UTC (in 4 days)" in announced["plain"]
    assert not any(e["type"] == "bold" and announced["plain"][e["offset"]:e["offset"] + e["length"]] == "A"
                   for e in announced["entities"])

    # An item, shown on the agenda with a button; Bob backs it with a tap, and a second tap counts nothing.
    [added] = await reply_to(emu, ALICE, "/agenda add Repaint the kitchen")
    assert "Item #1" in added["plain"] and "Repaint the kitchen" in added["plain"]
    [agenda] = await reply_to(emu, CAROL, "/agenda")
    assert "1. Repaint the kitchen #1 — Alice\n" in agenda["plain"]  # nobody backs it yet
    assert [(b["text"], b["callback_data"]) for b in buttons(agenda)] == [("👍 #1", "agenda +1")]
    in_group = len(emu.messages_to(GROUP))
    toast = await press(emu, GROUP, agenda["message_id"], BOB, data_of(agenda, "👍 #1"))
    assert "Bob backs item #1" in toast and "👍 1" in toast
    toast = await press(emu, GROUP, agenda["message_id"], BOB, data_of(agenda, "👍 #1"))
    assert "already" in toast
    assert since(emu, GROUP, in_group) == []  # taps are answered with toasts, not in the group
    [agenda] = await reply_to(emu, CAROL, "/agenda")
    assert "Repaint the kitchen #1 — Alice · 👍 1" in agenda["plain"] and "👍 2" not in agenda["plain"]

    # Alice stands for facilitation, Bob for the minutes.
    [stands] = await reply_to(emu, ALICE, "/volunteer facilitation")
    assert "Alice stands for" in stands["plain"]
    [stands] = await reply_to(emu, BOB, "/volunteer minutes")
    assert "Bob stands for" in stands["plain"]

    # Two days before the start (Wednesday 19:00) the facilitator's lottery opens; drawn the draw window
    # (10 minutes) later, when the note-taker's opens among the others; drawn 10 minutes after that.
    opened = await moved(emu, rig, timedelta(days=2, hours=10), "Lottery #1")
    assert "Lottery #1 draws the facilitator of Assembly #1 — Budget & bread" in opened["plain"]
    assert "among 1 member: 1. Alice." in opened["plain"] and "Repaint the kitchen #1" in opened["plain"]
    alice_before, bob_before = len(emu.messages_to(ALICE)), len(emu.messages_to(BOB))
    facilitator = await moved(emu, rig, timedelta(minutes=10, seconds=1), "the facilitator is")
    assert "Assembly #1 — Budget & bread: the facilitator is Alice (lottery #1)." in facilitator["plain"]
    assert "Lottery #2 draws the note-taker" in facilitator["plain"] and "1. Bob." in facilitator["plain"]
    note_taker = await moved(emu, rig, timedelta(minutes=10, seconds=1), "the note-taker is")
    assert "Assembly #1 — Budget & bread: the note-taker is Bob (lottery #2)." in note_taker["plain"]
    assert [e["user"]["id"] for m in (facilitator, note_taker) for e in m["entities"] if "user" in e] == [ALICE, BOB]

    # Each is told privately, with the place as typed and the agenda so far.
    await emu.wait_for(lambda: since(emu, ALICE, alice_before) and since(emu, BOB, bob_before), timeout=10)
    [to_alice], [to_bob] = since(emu, ALICE, alice_before), since(emu, BOB, bob_before)
    assert "You are the facilitator of Assembly #1 — Budget & bread" in to_alice
    assert "📍 Hall <b>A</b> & B" in to_alice and "Repaint the kitchen #1 — Alice · 👍 1" in to_alice
    assert "You are the note-taker of Assembly #1 — Budget & bread" in to_bob
    assert [e for e in emu.errors if "not modified" not in e[1]] == []
