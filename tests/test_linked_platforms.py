"""One group across Matrix and Telegram, over real parts: one core and one runtime serve both the
session's real Synapse (people from tests/matrix_people.py) and the Telegram Bot API emulator, as
`commons-bot run` does with both sections configured.

A Matrix room and a Telegram group are linked with `link platform` (the code comes in the bot's
direct room on Matrix); from then on a proposal's card is in both chats, votes from either side
count in one tally shown on both cards, and the outcome is announced once in each chat. Two
accounts of one person (`link me`) vote once."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from adapters.matrix import MatrixAdapter
from adapters.telegram import TelegramAdapter
from bot.app import build_core, published_commands
from bot.clock import OffsetClock
from bot.config import DefaultsConfig
from bot.runtime import Runtime
from tests.matrix_people import Person
from tests.telegram_emulator import BotApiEmulator
from tests.test_matrix_adapter import (  # noqa: F401 (fixtures)
    MatrixRig,
    ask,
    bot_user,
    people,
    reactions,
    room_with_bot,
)
from tests.test_secret_matrix import join_direct_room
from tests.test_secret_telegram import buttons, data_of, in_private, press

GROUP = -100777001
CARLA, DAN = 7770011, 7770012
CODE = re.compile(r"[A-Z2-9]{4}-[A-Z2-9]{4}")
LINKED = "linked this group with its"
YES = "👍"


class LinkedRig(MatrixRig):
    """Core + runtime with both adapters, Matrix and Telegram, started and stopped like the app does."""

    def __init__(self, synapse, bot, store, emu: BotApiEmulator, database_url: str, clock: OffsetClock) -> None:
        super().__init__(synapse, bot, store, database_url, clock)
        self.emu = emu

    async def start(self) -> LinkedRig:
        self.core = build_core(self.url, self.clock, DefaultsConfig(), {"matrix": "!"})
        self.adapter = MatrixAdapter(self.synapse.url, self.bot.user_id, password=self.bot.password,
                                     store_path=self.store, **self.options)
        self.telegram = TelegramAdapter("123456:TEST-TOKEN", commands=published_commands(),
                                        base_url=self.emu.base_url, base_file_url=self.emu.base_file_url,
                                        edit_delay=0.2, poll_timeout=1)
        self.runtime = Runtime(self.core, [self.adapter, self.telegram], timedelta(hours=1))
        await self.runtime.start()
        return self


@pytest.fixture
async def emu():
    async with BotApiEmulator() as emulator:
        emulator.add_chat(GROUP, "Tenants' Union (Telegram)", member_count=3)
        for user_id, name in ((CARLA, "Carla"), (DAN, "Dan")):
            emulator.add_user(user_id, name)
        yield emulator


@pytest.fixture
async def rig(synapse, bot_user, emu, tmp_path, sqlite_url):  # noqa: F811
    rig = await LinkedRig(synapse, bot_user, tmp_path / "bot-store", emu, sqlite_url, OffsetClock()).start()
    yield rig
    await rig.stop()


# Telegram -------------------------------------------------------------------------------------

def telegram_texts(emu: BotApiEmulator) -> list[str]:
    """What the bot posted in the Telegram group (as first sent)."""
    return [m["plain"] or "" for m in emu.messages_to(GROUP)]


async def said_in_telegram(emu: BotApiEmulator, user: int, text: str, contains: str) -> dict:
    """A member writes in the Telegram group; the bot's first message there since, containing `contains`."""
    before = len(emu.messages_to(GROUP))
    emu.send_text(GROUP, user, text)
    await emu.wait_for(lambda: any(contains in (m["plain"] or "") for m in emu.messages_to(GROUP)[before:]),
                       timeout=15)
    return next(m for m in emu.messages_to(GROUP)[before:] if contains in (m["plain"] or ""))


def card_now(emu: BotApiEmulator, card: dict) -> str:
    """A Telegram card's text as it is now, edits applied."""
    return emu.message(GROUP, card["message_id"])["text"]


# Matrix ---------------------------------------------------------------------------------------

def matrix_texts(person: Person, room: str, bot_id: str) -> list[str]:
    """What the bot posted in the Matrix room (as first sent; edits are not new messages)."""
    return [m["content"]["body"] for m in person.messages(room, bot_id)]


def counted(texts: list[str], part: str) -> int:
    return sum(part in text for text in texts)


# the scenario ---------------------------------------------------------------------------------

async def link_the_chats(emu: BotApiEmulator, ana: Person, room: str, bot_id: str) -> None:
    """ana asks for a code in the Matrix room, reads it in her direct room with the bot; Carla types it
    in the Telegram group. Both chats hear it once."""
    asked = await ask(ana, room, bot_id, "!link platform")
    assert "I sent it privately" in asked["content"]["body"]
    direct = await join_direct_room(ana, room)
    given = (await ana.wait_for_message(direct, bot_id, contains="Your code to link the group"))["content"]["body"]
    code = CODE.search(given)[0]
    assert f"!link platform {code}" in given and "on Telegram commands start with /" in given

    linked = await said_in_telegram(emu, CARLA, f"/link platform {code}", contains=LINKED)
    assert "Carla" in linked["plain"] and "/link me" in linked["plain"]
    await ana.wait_for_message(room, bot_id, contains=LINKED)
    assert "!link me" in next(t for t in matrix_texts(ana, room, bot_id) if LINKED in t)  # Matrix's prefix there
    assert counted(telegram_texts(emu), LINKED) == 1 and counted(matrix_texts(ana, room, bot_id), LINKED) == 1
    assert code not in " ".join(matrix_texts(ana, room, bot_id))  # only ever in ana's direct room


async def test_a_linked_group_votes_from_both_sides_and_hears_each_outcome_once_in_each_chat(
        rig, emu, people, bot_user):  # noqa: F811
    ana, bob = await people("ana", "bob")
    bot_id = bot_user.user_id
    room = await room_with_bot(ana, bot_id, bob)
    await ana.wait_for(lambda: rig.active_members() == {ana.user_id, bob.user_id})

    # A proposal opened in Matrix before the link: its card stays in Matrix only (not re-posted), yet
    # the proposal is the whole group's: a vote typed in Telegram counts on the Matrix card.
    first = await ask(ana, room, bot_id, "!propose Buy a chest freezer closes=1d")
    first_id = first["event_id"]
    assert "#1 Buy a chest freezer" in first["content"]["body"]
    await link_the_chats(emu, ana, room, bot_id)
    assert counted(telegram_texts(emu), "Buy a chest freezer") == 0
    typed = emu.send_text(GROUP, DAN, "/vote 1 yes")
    await emu.wait_for(lambda: any(r["message_id"] == typed for r in emu.reactions), timeout=15)  # acknowledged
    await ana.wait_for(lambda: "Tally: 1 yes · 0 no" in ana.latest_text(room, bot_id, first_id))

    # One opened from Telegram after the link: its card is in both chats, each with its own way to vote.
    card = await said_in_telegram(emu, CARLA, "/propose Paint the stairwell closes=1d", contains="Paint the stairwell")
    assert "#2 Paint the stairwell" in card["plain"] and "/vote 2 yes" in card["plain"]
    assert [b["callback_data"] for b in buttons(card)] == ["vote 2 yes", "vote 2 no", "vote 2 abstain", "vote 2 block"]
    mirrored = await ana.wait_for_message(room, bot_id, contains="Paint the stairwell")
    mirrored_id, shown = mirrored["event_id"], mirrored["content"]["body"]
    assert "#2 Paint the stairwell" in shown and "by Carla" in shown
    assert "!vote 2 yes" in shown and "/vote" not in shown  # the hint in Matrix's prefix
    assert "React to vote: 👍 Yes · 👎 No" in shown
    await ana.wait_for(lambda: YES in reactions(ana, room, mirrored_id, bot_id))  # seeded: one tap to vote

    # Votes from both sides: two taps in Telegram, a reaction and a typed vote in Matrix.
    assert "yes on #2" in await press(emu, GROUP, card["message_id"], CARLA, data_of(card, "Yes"))
    assert "yes on #2" in await press(emu, GROUP, card["message_id"], DAN, data_of(card, "Yes"))
    await ana.react(room, mirrored_id, YES)
    await bob.say(room, "!vote 2 no the landlord should pay")

    # The tally counts all four, on both cards: the Telegram message as edited, and the Matrix card's
    # last edit (m.replace); neither chat got a second card.
    tally = "Tally: 3 yes · 1 no · 0 abstain · 0 block"
    await emu.wait_for(lambda: tally in card_now(emu, card), timeout=15)
    await ana.wait_for(lambda: tally in ana.latest_text(room, bot_id, mirrored_id))
    assert ana.edits(room, bot_id, mirrored_id)
    assert counted(telegram_texts(emu), "Paint the stairwell") == 1
    assert counted(matrix_texts(ana, room, bot_id), "Paint the stairwell") == 1

    # Past the deadline each outcome is announced once in each chat — #1's in Telegram too, where its
    # card never was: the decision is the whole group's. Both cards of #2 say it closed.
    await rig.advance(timedelta(days=1, minutes=1))
    first_passed, second_passed = "#1 Buy a chest freezer: passed", "#2 Paint the stairwell: passed"
    for outcome in (first_passed, second_passed):
        await emu.wait_for(lambda outcome=outcome: counted(telegram_texts(emu), outcome), timeout=15)
        await ana.wait_for(lambda outcome=outcome: counted(matrix_texts(ana, room, bot_id), outcome))
    await emu.wait_for(lambda: "Closed" in card_now(emu, card), timeout=15)
    await ana.wait_for(lambda: "Closed" in ana.latest_text(room, bot_id, mirrored_id))
    assert tally in card_now(emu, card) and "Vote:" not in card_now(emu, card)
    assert tally in ana.latest_text(room, bot_id, mirrored_id)

    # Another round of due work, and a command to see the queue was emptied: nothing is said again.
    await rig.advance(timedelta(minutes=5))
    await ask(bob, room, bot_id, "!proposals")
    telegram, matrix = telegram_texts(emu), matrix_texts(ana, room, bot_id)
    for texts in (telegram, matrix):
        assert counted(texts, first_passed) == 1 and counted(texts, second_passed) == 1
        # Distinct members: ana and bob in Matrix, Carla and Dan in Telegram.
        assert counted(texts, "3 yes · 1 no · 0 abstain · 0 block (4 of 4 members voted)") == 1
        assert counted(texts, "1 yes · 0 no · 0 abstain · 0 block (1 of 4 members voted)") == 1


async def test_two_accounts_of_one_member_vote_once_across_platforms(rig, emu, people, bot_user):  # noqa: F811
    ana, carla = await people("ana", "carla")  # Carla is in the Matrix room too, as well as in Telegram
    bot_id = bot_user.user_id
    room = await room_with_bot(ana, bot_id, carla)
    await ana.wait_for(lambda: rig.active_members() == {ana.user_id, carla.user_id})
    await link_the_chats(emu, ana, room, bot_id)
    card = await said_in_telegram(emu, DAN, "/propose Paint the stairwell closes=1d", contains="Paint the stairwell")
    mirrored_id = (await ana.wait_for_message(room, bot_id, contains="Paint the stairwell"))["event_id"]

    def both_cards_say(tally: str) -> bool:
        return tally in card_now(emu, card) and tally in ana.latest_text(room, bot_id, mirrored_id)

    # Until her accounts are linked, Carla is two members: her tap in Telegram and her vote in Matrix
    # both count.
    assert "yes on #1" in await press(emu, GROUP, card["message_id"], CARLA, data_of(card, "Yes"))
    await carla.say(room, "!vote 1 no")
    await ana.wait_for(lambda: both_cards_say("Tally: 1 yes · 1 no"))

    # `link me` privately in Telegram gives a code; Carla sends it from Matrix, in her direct room.
    [answer] = await in_private(emu, CARLA, "/link me")
    code = CODE.search(answer["plain"])[0]
    assert f"/link me {code}" in answer["plain"]
    direct = await carla.create_room("", invite=[bot_id], encrypted=True, direct=True)
    await carla.wait_for(lambda: bot_id in carla.client.rooms[direct].users
                         and not carla.client.rooms[direct].users[bot_id].invited)
    linked = await ask(carla, direct, bot_id, f"link me {code}")
    assert "Your two accounts are one member now" in linked["content"]["body"]
    assert rig.ballots() == [(carla.user_id, "no")]  # her later ballot stays, once
    assert code not in " ".join(matrix_texts(ana, room, bot_id) + telegram_texts(emu))

    # Both cards show her one ballot at once.
    await ana.wait_for(lambda: both_cards_say("Tally: 0 yes · 1 no"))

    # From then on, a vote from either account replaces the other's.
    assert "yes on #1" in await press(emu, GROUP, card["message_id"], CARLA, data_of(card, "Yes"))
    await ana.wait_for(lambda: both_cards_say("Tally: 1 yes · 0 no"))
    await carla.say(room, "!vote 1 abstain")
    await ana.wait_for(lambda: both_cards_say("Tally: 0 yes · 0 no · 1 abstain"))
    assert rig.ballots() == [(carla.user_id, "abstain")]

    # At the close she is counted once among the group's three members (ana, Dan, Carla).
    await rig.advance(timedelta(days=1, minutes=1))
    for texts in (lambda: telegram_texts(emu), lambda: matrix_texts(ana, room, bot_id)):
        await ana.wait_for(lambda texts=texts: counted(texts(), "(1 of 3 members voted)"))
