"""Assemblies through the Telegram adapter, over real HTTP against the Bot API emulator, with the
real core behind it (rig and emulator from tests/test_secret_telegram.py): an assembly is announced
with its place escaped, an agenda item is backed with one tap (once per member), and when the clock
reaches the draw the group hears who facilitates and who takes notes, and each of them is told
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


async def test_an_assembly_its_agenda_and_its_draw_round_trip_through_telegram(emu, rig):  # noqa: F811
    for user in (ALICE, BOB):  # they have started the bot, so it may write to them privately
        await in_private(emu, user, "/start")  # (answered with the help)

    # Scheduled (the clock says Monday 09:00 UTC): the place and title arrive as typed, escaped in the HTML.
    [announced] = await reply_to(emu, ALICE, "/assembly fri 19:00 Hall <b>A</b> & B | Budget & bread")
    assert announced["parse_mode"] == "HTML"
    assert "Assembly #1 — Budget & bread" in announced["plain"] and "📍 Hall <b>A</b> & B" in announced["plain"]
    assert "Hall &lt;b&gt;A&lt;/b&gt; &amp; B" in announced["text"] and "Budget &amp; bread" in announced["text"]
    assert "Fri" in announced["plain"] and "19:00" in announced["plain"]
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

    # Two days before the start (Wednesday 19:00) the lotteries open; the draw window later they are drawn.
    opening = len(emu.messages_to(GROUP))
    rig.clock.advance(timedelta(days=2, hours=10))
    await rig.runtime.scheduler.run_now()
    await emu.wait_for(lambda: any("Lottery #" in text for text in since(emu, GROUP, opening)), timeout=10)
    drawing, alice_before, bob_before = len(emu.messages_to(GROUP)), len(emu.messages_to(ALICE)), len(
        emu.messages_to(BOB))
    rig.clock.advance(timedelta(minutes=10, seconds=1))
    await rig.runtime.scheduler.run_now()
    await emu.wait_for(lambda: any("note-taker" in text for text in since(emu, GROUP, drawing)), timeout=10)
    [drawn] = [m for m in emu.messages_to(GROUP)[drawing:] if "note-taker" in m["plain"]]
    assert "Assembly #1 — Budget & bread: facilitator Alice, note-taker Bob." in drawn["plain"]
    assert {e["user"]["id"] for e in drawn["entities"] if "user" in e} == {ALICE, BOB}  # mentions that notify

    await emu.wait_for(lambda: since(emu, ALICE, alice_before) and since(emu, BOB, bob_before), timeout=10)
    [to_alice], [to_bob] = since(emu, ALICE, alice_before), since(emu, BOB, bob_before)
    assert "You are the facilitator of Assembly #1 — Budget & bread" in to_alice
    assert "📍 Hall <b>A</b> & B" in to_alice and "Repaint the kitchen #1" in to_alice
    assert "You are the note-taker of Assembly #1 — Budget & bread" in to_bob
    assert [e for e in emu.errors if "not modified" not in e[1]] == []
