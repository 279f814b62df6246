"""Secret ballots through the Telegram adapter, over real HTTP against the Bot API emulator, with
the real core behind it: the card's 🔒 button is a t.me deep link into the member's private chat,
the ballot is cast there with buttons, the group sees only how many voted, and the logs (at DEBUG,
every logger) never hold a receipt or a private choice."""

import base64
import csv
import hashlib
import logging
import re

import pytest
from sqlalchemy import select

from adapters.telegram import MAX_START, CommonsRateLimiter, Intake, keyboard, start_payload, start_token
from bot.actions import Choice
from bot.clock import ManualClock
from storage.models import Group
from tests.harness import START
from tests.telegram_emulator import BotApiEmulator
from tests.test_telegram_adapter import GROUP, Rig, reply_to

# Ids long enough to be told apart in a log line.
ALICE, BOB, CAROL, DAVE = 5550011, 5550012, 5550013, 5550014
RECEIPT = re.compile(r"[A-Z2-9]{4}-[A-Z2-9]{4}-[A-Z2-9]{4}")
# What only a voter is told, in words that appear nowhere else.
PRIVATE_WORDS = ("is in the box", "Your ranking so far", "Ranking so far", "Ballot sealed", "now says",
                 "The ballot with that receipt", "already voted")


@pytest.fixture
async def emu():
    async with BotApiEmulator() as emulator:
        emulator.add_chat(GROUP, "Tenants' Union", member_count=5)
        for user_id, name in ((ALICE, "Alice"), (BOB, "Bob"), (CAROL, "Carol"), (DAVE, "Dave")):
            emulator.add_user(user_id, name)
        yield emulator


@pytest.fixture
async def rig(emu, sqlite_url, caplog):
    caplog.set_level(logging.DEBUG)  # every logger, from before the adapter starts
    # Telegram's group budget compressed in time (20 messages per 2 s rather than per minute).
    limiter = CommonsRateLimiter(group_window=2)
    rig = await Rig(emu, sqlite_url, ManualClock(START), rate_limiter=limiter).start()
    yield rig
    await rig.stop()


def buttons(message: dict) -> list[dict]:
    return [button for row in (message.get("reply_markup") or {}).get("inline_keyboard", []) for button in row]


def data_of(message: dict, label: str) -> str:
    [data] = [b["callback_data"] for b in buttons(message) if b["text"] == label]
    return data


def decoded(url: str, bot: str) -> str:
    prefix = f"https://t.me/{bot}?start="
    assert url.startswith(prefix), url
    token = url[len(prefix):]
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,64}", token), token
    return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()


async def in_private(emu, user, text, count=1):
    """The member writes to the bot privately; the bot's answers there."""
    before = len(emu.messages_to(user))
    emu.send_text(user, user, text)
    await emu.wait_for(lambda: len(emu.messages_to(user)) >= before + count, timeout=10)
    return emu.messages_to(user)[before:]


async def press(emu, chat, message_id, user, data):
    query = emu.press(chat, message_id, user, data)
    await emu.wait_for(lambda: query in emu.answers, timeout=10)
    return emu.answers[query]["text"] or ""


def since(emu, chat, count) -> list[str]:
    return [m["plain"] or "" for m in emu.messages_to(chat)[count:]]


def receipt_sha256(code: str) -> str:
    return hashlib.sha256(code.replace("-", "").upper().encode()).hexdigest()[:32]


def all_callback_data(emu) -> list[str]:
    markups = [r["reply_markup"] for r in [*emu.sent, *emu.edits] if r.get("reply_markup")]
    return [b["callback_data"] for markup in markups for row in markup.get("inline_keyboard", []) for b in row
            if "callback_data" in b]


async def test_a_secret_ballot_is_cast_privately_and_published_at_the_close(emu, rig, caplog):
    bot = emu.bot_username
    for user in (ALICE, BOB, CAROL, DAVE):  # four members the bot knows in the group
        await reply_to(emu, user, "/help")
    [bare] = await in_private(emu, DAVE, "/start")  # Dave has started the bot; a bare /start is /help
    assert "/propose" in bare["plain"]

    # The card: one button, a deep link into the private chat; no tally.
    [card] = await reply_to(emu, ALICE, "/propose Rent strike secret=yes")
    with rig.core.db.transaction() as session:
        group_id = session.scalars(select(Group.id)).one()
    [link] = buttons(card)
    assert "callback_data" not in link and decoded(link["url"], bot) == f"ballot 1 group=#{group_id}"
    assert "Tally" not in card["plain"] and "0 voted so far" in card["plain"]
    in_group = len(emu.messages_to(GROUP))

    # Bob opens the link: Telegram sends `/start <token>` from his private chat.
    token = link["url"].rpartition("=")[2]
    [ballot] = await in_private(emu, BOB, f"/start {token}")
    assert "Secret ballot #1: Rent strike" in ballot["plain"]
    assert [b["text"] for b in buttons(ballot)] == ["Yes", "No", "Abstain", "Block"]
    assert all(b["callback_data"].startswith("vote 1 ") for b in buttons(ballot))

    # He presses No: a toast, a receipt privately, the card counts one voter and still shows no tally.
    before = len(emu.messages_to(BOB))
    toast = await press(emu, BOB, ballot["message_id"], BOB, data_of(ballot, "No"))
    assert "sealed" in toast
    await emu.wait_for(lambda: len(emu.messages_to(BOB)) > before)
    [sealed] = since(emu, BOB, before)
    assert "is in the box: no." in sealed
    bob_receipt = RECEIPT.search(sealed).group()
    await emu.wait_for(lambda: "1 voted so far" in emu.message(GROUP, card["message_id"])["text"])
    shown = emu.message(GROUP, card["message_id"])
    assert shown["text"] == card["plain"].replace("0 voted so far", "1 voted so far")  # nothing else changed
    assert [b.get("url") for b in buttons(shown)] == [link["url"]]
    assert since(emu, GROUP, in_group) == []  # nothing was said in the group

    # A link anyone could craft to cast a vote (`?start=` + "vote 1 yes …") opens nothing and counts nothing.
    [crafted] = await in_private(emu, DAVE, f"/start {start_token(f'vote 1 yes group=#{group_id}')}")
    assert "A link can open a ballot, not run vote" in crafted["plain"] and not RECEIPT.search(crafted["plain"])
    assert "1 voted so far" in emu.message(GROUP, card["message_id"])["text"]

    # Typed in the group, a vote counts for nothing and is not repeated there. Dave (who started the bot)
    # gets his ballot privately; Carol (who never did) is told in the group, without what she typed.
    before_dave = len(emu.messages_to(DAVE))
    emu.send_text(GROUP, DAVE, "/vote 1 yes")
    await emu.wait_for(lambda: len(emu.messages_to(DAVE)) > before_dave)
    [dave_ballot] = emu.messages_to(DAVE)[before_dave:]
    assert "nothing you send in the group counts" in dave_ballot["plain"]
    assert [b["text"] for b in buttons(dave_ballot)] == ["Yes", "No", "Abstain", "Block"]
    await reply_to(emu, CAROL, "/vote 1 yes")
    [told] = since(emu, GROUP, in_group)
    assert "secret ballot" in told and "privately" in told and not re.search(r"\byes\b", told, re.IGNORECASE)
    assert any(e.get("user", {}).get("id") == CAROL for e in emu.messages_to(GROUP)[-1]["entities"])
    assert not emu.messages_to(CAROL)
    assert "1 voted so far" in emu.message(GROUP, card["message_id"])["text"]

    # Dave votes from the ballot he was sent.
    before_dave = len(emu.messages_to(DAVE))
    await press(emu, DAVE, dave_ballot["message_id"], DAVE, data_of(dave_ballot, "Yes"))
    await emu.wait_for(lambda: len(emu.messages_to(DAVE)) > before_dave)
    dave_receipt = RECEIPT.search(since(emu, DAVE, before_dave)[0]).group()
    await emu.wait_for(lambda: "2 voted so far" in emu.message(GROUP, card["message_id"])["text"])

    # Bob changes his ballot with the receipt; without it he is refused; the receipt shows the change.
    [changed] = await in_private(emu, BOB, f"/vote 1 yes receipt={bob_receipt}")
    assert "now says yes (it said no)" in changed["plain"]
    [refused] = await in_private(emu, BOB, "/vote 1 yes")
    assert "already voted" in refused["plain"] and not RECEIPT.search(refused["plain"])
    [checked] = await in_private(emu, BOB, f"/ballot check 1 {bob_receipt}")
    assert "says yes" in checked["plain"]

    # Ranked and secret: each tap edits the same private message with the ranking so far.
    [ranked] = await reply_to(emu, ALICE, '/propose Pick a day options="Mon; Tue; Wed" method=ranked secret=yes')
    [link2] = buttons(ranked)
    assert decoded(link2["url"], bot) == f"ballot 2 group=#{group_id}"
    assert "3. Wed\n" in ranked["plain"] and "— 0" not in ranked["plain"]  # the options, no counts
    [private] = await in_private(emu, BOB, "/ballot 2")
    assert [b["text"] for b in buttons(private)] == ["1. Mon", "2. Tue", "3. Wed"]
    toast = await press(emu, BOB, private["message_id"], BOB, data_of(private, "2. Tue"))
    assert toast == "Ranking so far: Tue"
    await emu.wait_for(lambda: "Your ranking so far: Tue" in emu.message(BOB, private["message_id"])["text"])
    current = emu.message(BOB, private["message_id"])
    assert [b["text"] for b in buttons(current)] == ["1. Mon", "3. Wed", "↩ Undo", "✖ Clear", "✅ Cast"]
    toast = await press(emu, BOB, private["message_id"], BOB, data_of(current, "3. Wed"))
    assert toast == "Ranking so far: Tue > Wed"
    await emu.wait_for(lambda: "Tue > Wed" in emu.message(BOB, private["message_id"])["text"])
    current = emu.message(BOB, private["message_id"])
    before = len(emu.messages_to(BOB))
    await press(emu, BOB, private["message_id"], BOB, data_of(current, "✅ Cast"))
    await emu.wait_for(lambda: len(emu.messages_to(BOB)) > before)
    [cast] = since(emu, BOB, before)
    assert "is in the box" in cast and "Tue > Wed" in cast
    ranked_receipt = RECEIPT.search(cast).group()
    assert len(emu.messages_to(BOB)) == before + 1  # the ranking was edited in place, not sent anew
    assert all(len(data.encode()) <= 64 for data in all_callback_data(emu))
    await emu.wait_for(lambda: "1 voted so far" in emu.message(GROUP, ranked["message_id"])["text"])

    # The close: the outcome, who voted, and every ballot as CSV sorted by receipt hash.
    closing = len(emu.messages_to(GROUP))
    emu.send_text(GROUP, ALICE, "/close 1")
    await emu.wait_for(lambda: any(m["method"] == "sendDocument" for m in emu.messages_to(GROUP)[closing:]),
                       timeout=10)
    announced = "\n".join(since(emu, GROUP, closing))
    assert "#1 Rent strike" in announced and "2 voted: Bob, Dave" in announced
    [document] = [m for m in emu.messages_to(GROUP)[closing:] if m["method"] == "sendDocument"]
    rows = list(csv.reader(line for line in document["file"]["bytes"].decode().splitlines()
                           if not line.startswith("#")))
    assert rows[0] == ["receipt_hash", "choice"]
    assert rows[1:] == sorted(rows[1:]) and len(rows) == 3
    assert dict(rows[1:]) == {receipt_sha256(bob_receipt): "yes", receipt_sha256(dave_receipt): "yes"}
    emu.send_text(GROUP, ALICE, "/close 2")
    await emu.wait_for(lambda: [m for m in emu.messages_to(GROUP)[closing:] if m["method"] == "sendDocument"][1:],
                       timeout=10)
    document = [m for m in emu.messages_to(GROUP)[closing:] if m["method"] == "sendDocument"][-1]
    assert f"{receipt_sha256(ranked_receipt)},Tue > Wed" in document["file"]["bytes"].decode()
    await rig.runtime.delivery.drain()
    # Carol's ballot could not be sent to her (an edit of the card that changed nothing is harmless).
    assert [e for e in emu.errors if "not modified" not in e[1]] == [
        ("sendMessage", "Forbidden: bot can't initiate conversation with a user")]

    # Nothing private reached the logs, even at DEBUG.
    records = [record.getMessage() for record in caplog.records]
    # The capture did see the traffic, and PTB's own DEBUG records.
    assert any("HTTP Request: POST" in message for message in records)
    assert any(r.name == "telegram.ext.ExtBot" and r.levelno == logging.DEBUG for r in caplog.records)
    assert not any("Bot API endpoint" in message for message in records)
    secrets = [bob_receipt, dave_receipt, ranked_receipt, *(code.replace("-", "") for code in
                                                              (bob_receipt, dave_receipt, ranked_receipt))]
    for message in records:
        assert not any(secret in message for secret in secrets), message
        assert not any(words in message for words in PRIVATE_WORDS), message
        assert "vote 1 no" not in message and "rank=" not in message, message
        if any(str(user) in message for user in (BOB, DAVE, CAROL)):
            assert not re.search(r"\b(yes|no|abstain|block|Mon|Tue|Wed)\b", message, re.IGNORECASE), message


def test_a_private_choice_too_long_for_a_start_parameter_is_a_plain_button(caplog):
    fits, too_long = "x" * 48, "x" * 49  # base64: 64 and 66 characters
    assert len(start_token(fits)) == MAX_START and len(start_token(too_long)) > MAX_START
    markup = keyboard([Choice(label="🔒", payload=fits, private=True),
                       Choice(label="🔒", payload=too_long, private=True)], "CommonsTestBot").to_dict()
    first, second = markup["inline_keyboard"][0]
    assert first["url"] == f"https://t.me/CommonsTestBot?start={start_token(fits)}" and "callback_data" not in first
    assert second["callback_data"] == too_long and "url" not in second
    assert "plain button" in caplog.text and too_long not in caplog.text
    plain = keyboard([Choice(label="🔒", payload="ballot 1", private=True)]).to_dict()  # no username known
    assert plain["inline_keyboard"][0][0]["callback_data"] == "ballot 1"


def test_start_parameters_are_decoded_or_left_alone():
    token = start_token("ballot 3 group=#12")
    assert start_payload(f"/start {token}") == "ballot 3 group=#12"
    assert start_payload(f"/start@CommonsTestBot {token}", "CommonsTestBot") == "ballot 3 group=#12"
    assert start_payload(f"/start@OtherBot {token}", "CommonsTestBot") is None
    for text in ("/start", "/start ", "/start !!!", "/start " + "A" * 65, "/start gA", "/help abc", "start abc"):
        assert start_payload(text) is None, text


async def test_a_dropped_update_from_a_private_chat_is_logged_without_its_content(caplog):
    """An update that keeps failing is dropped with its JSON logged, for a group's; for a private
    chat's (a ballot, a receipt) only its id and kind."""
    def update(update_id: int, chat_type: str, text: str) -> dict:
        chat = {"id": BOB, "type": "private", "first_name": "Bob"} if chat_type == "private" \
            else {"id": GROUP, "type": "supergroup", "title": "Tenants' Union"}
        return {"update_id": update_id, "message": {"message_id": update_id, "date": 0, "chat": chat,
                                                    "from": {"id": BOB, "is_bot": False, "first_name": "Bob"},
                                                    "text": text}}

    async def apply(data: dict) -> None:
        if data["message"]["text"].startswith("/vote"):
            raise RuntimeError("the database is down")

    caplog.set_level(logging.DEBUG)
    intake = Intake(apply, give_up_after=1)
    for update_id, chat_type in ((1, "private"), (3, "supergroup")):
        failing = update(update_id, chat_type, f"/vote 1 no receipt=ABCD-EFGH-JK{update_id}")
        assert await intake.offer(update_id, failing)
        assert await intake.offer(update_id + 1, update(update_id + 1, chat_type, "/help"))  # the last try fails
    assert intake.dropped == [1, 3]
    [private, group] = [r.getMessage() for r in caplog.records if r.getMessage().startswith("dropped update")]
    assert "dropped update 1 " in private and "message update from a private chat" in private
    assert "ABCD" not in private and "vote" not in private
    assert "receipt=ABCD-EFGH-JK3" in group  # a group's update is logged whole, as before
