"""The open books and the charter through the Telegram adapter, over real HTTP against the Bot API
emulator, with the real core behind it (rig and emulator from tests/test_secret_telegram.py): money
recorded with `/ledger` is acknowledged quietly and shown with its balance, member text arrives
escaped, and a clause added with `/charter add` becomes the charter when the group votes for it."""

from tests.test_secret_telegram import (  # noqa: F401 (fixtures)
    ALICE,
    BOB,
    CAROL,
    buttons,
    data_of,
    emu,
    press,
    rig,
    since,
)
from tests.test_telegram_adapter import GROUP, reply_to


async def recorded(emu, user, text):  # noqa: F811
    """A ledger entry: the bot acknowledges the command with a reaction, and says nothing in the group."""
    before = len(emu.messages_to(GROUP))
    command = emu.send_text(GROUP, user, text)
    await emu.wait_for(lambda: any(r["message_id"] == command for r in emu.reactions), timeout=10)
    assert len(emu.messages_to(GROUP)) == before  # quiet: no message for the entry
    return command


async def test_the_ledger_and_the_charter_round_trip_through_telegram(emu, rig):  # noqa: F811
    # The books: empty, then two entries, then the balance with both of them.
    [empty] = await reply_to(emu, ALICE, "/ledger")
    assert "The books are empty" in empty["plain"] and "/ledger +120 Sunday kitchen donations" in empty["plain"]
    await recorded(emu, ALICE, "/ledger +120 Sunday kitchen donations")
    await recorded(emu, ALICE, "/ledger -45.50 freezer repair")
    [books] = await reply_to(emu, BOB, "/ledger")
    assert books["parse_mode"] == "HTML"
    assert "Balance: 74.50 EUR" in books["plain"]
    assert "Sunday kitchen donations" in books["plain"] and "freezer repair" in books["plain"]
    assert "120.00 EUR" in books["plain"] and "45.50 EUR" in books["plain"]

    # A description with HTML in it is shown as typed: escaped in what is sent, literal in what is read.
    await recorded(emu, ALICE, "/ledger +1 <b>bold</b> test")
    [books] = await reply_to(emu, BOB, "/ledger")
    assert "Balance: 75.50 EUR" in books["plain"]
    assert "&lt;b&gt;bold&lt;/b&gt; test" in books["text"] and "<b>bold</b> test" in books["plain"]
    assert not any(e["type"] == "bold" and books["plain"][e["offset"]:e["offset"] + e["length"]] == "bold"
                   for e in books["entities"])

    # The charter: none yet; a clause is proposed under the charter rule and voted with the buttons.
    [none] = await reply_to(emu, CAROL, "/charter")
    assert "no charter yet" in none["plain"] and "/charter add <text>" in none["plain"]
    [card] = await reply_to(emu, ALICE, "/charter add Meetings start on time")
    assert "Meetings start on time" in card["plain"] and "two-thirds" in card["plain"]
    assert [b["callback_data"] for b in buttons(card)][:2] == ["vote 1 yes", "vote 1 no"]
    assert "yes on #1" in await press(emu, GROUP, card["message_id"], BOB, data_of(card, "Yes"))
    assert "yes on #1" in await press(emu, GROUP, card["message_id"], CAROL, data_of(card, "Yes"))
    command = emu.send_text(GROUP, ALICE, "/vote 1 yes")  # typed: acknowledged with a reaction
    await emu.wait_for(lambda: any(r["message_id"] == command for r in emu.reactions), timeout=10)
    await emu.wait_for(lambda: "3 yes" in emu.message(GROUP, card["message_id"])["text"], timeout=10)

    # Bob did not propose it, so he cannot close it early; Alice, the author, can.
    [refused] = await reply_to(emu, BOB, "/close 1")
    assert "can close it early" in refused["plain"]
    closing = len(emu.messages_to(GROUP))
    emu.send_text(GROUP, ALICE, "/close 1")
    await emu.wait_for(lambda: any("charter is now at version 1" in text for text in since(emu, GROUP, closing)),
                       timeout=10)
    announced = "\n".join(since(emu, GROUP, closing))
    assert "📜 The charter is now at version 1." in announced and "1. Meetings start on time" in announced
    await rig.runtime.delivery.drain()
    final = emu.message(GROUP, card["message_id"])
    assert "Closed" in final["text"] and not final.get("reply_markup")

    [shown] = await reply_to(emu, BOB, "/charter")
    assert "Our charter (version 1)" in shown["plain"] and "1. Meetings start on time" in shown["plain"]
    assert [e for e in emu.errors if "not modified" not in e[1]] == []
