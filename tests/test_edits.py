"""Coalesced tally edits (adapters/edits.py), shared by the Telegram and Matrix adapters."""

import asyncio

from adapters.edits import CoalescedEdits
from bot.actions import EditMessage
from bot.events import ChatRef
from bot.render.text import plain

CHAT = ChatRef(platform="test", chat_id="room")


def edit(text: str) -> EditMessage:
    return EditMessage(chat=CHAT, message_id="card", text=plain(text))


async def test_a_burst_becomes_one_edit_with_the_newest_text():
    sent = []

    async def send(key, action):
        sent.append(action.text.plain())

    edits = CoalescedEdits(0.05, send)
    for votes in range(1, 31):
        edits.queue("card", edit(f"Tally: {votes} yes"))
    await asyncio.sleep(0.2)
    assert sent == ["Tally: 30 yes"]


async def test_an_edit_queued_while_the_previous_one_is_being_sent_is_not_stranded():
    sent = []

    async def slow_send(key, action):
        await asyncio.sleep(0.2)  # a slow homeserver
        sent.append(action.text.plain())

    edits = CoalescedEdits(0.05, slow_send)
    edits.queue("card", edit("Tally: 1 yes"))
    await asyncio.sleep(0.1)  # the first edit is now on its way
    edits.queue("card", edit("Tally: 2 yes"))  # the last vote of the burst
    await asyncio.sleep(0.6)
    assert sent == ["Tally: 1 yes", "Tally: 2 yes"]
