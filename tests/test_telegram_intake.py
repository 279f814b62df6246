"""The Telegram adapter's durable intake, in process, over real HTTP against the
Bot API emulator: an update is confirmed (getUpdates offset, webhook 200) only
once the sink returned; failures are retried, a bad update is set aside and
then dropped without blocking the group, an outage is waited out.
(tests/test_crash_telegram.py kills the real program with SIGKILL.)"""

import asyncio
import logging
import time

import aiohttp
import pytest

from adapters.telegram import NOT_RECORDED, SECRET_HEADER, Intake
from bot import i18n
from bot.clock import ManualClock
from bot.events import CommandMessage, MemberCount
from bot.i18n import _
from tests.harness import START
from tests.telegram_emulator import BotApiEmulator
from tests.test_telegram_adapter import Rig as AdapterRig

GROUP = -100777
ALICE, BOB = 21, 22


class DatabaseDown(Exception):
    pass


class Rig(AdapterRig):
    """The adapter tests' rig, whose sink can be made to fail, with short pauses after a failure."""

    def __init__(self, emu: BotApiEmulator, url: str, **options) -> None:
        super().__init__(emu, url, ManualClock(START), **options)
        self.fail = lambda event: False  # which events the "database" refuses
        self.refused: list[object] = []

    async def start(self) -> "Rig":
        await super().start()
        self.adapter._pause_after = lambda failures: 0.05  # instead of 1, 2, 4 … s
        sink = self.adapter._sink

        async def flaky(event):
            if self.fail(event):
                self.refused.append(event)
                raise DatabaseDown("database unavailable")
            await sink(event)

        self.adapter._sink = flaky
        return self


@pytest.fixture
async def emu():
    async with BotApiEmulator(webhook_retry_delay=0.05) as emulator:
        emulator.add_chat(GROUP, "Co-op", member_count=10)
        emulator.add_user(ALICE, "Alice")
        emulator.add_user(BOB, "Bob", language_code="pt-br")  # his app speaks Portuguese
        yield emulator


@pytest.fixture
async def rig(emu, sqlite_url):
    rig = await Rig(emu, sqlite_url).start()
    yield rig
    await rig.stop()


def commands(rig: Rig) -> list[str]:
    return [e.text for e in rig.refused if isinstance(e, CommandMessage)]


async def answer_to(emu: BotApiEmulator, message_id: int, timeout: float = 10) -> dict:
    await emu.wait_for(lambda: any(s["reply_to"] == message_id for s in emu.sent), timeout=timeout)
    return next(s for s in emu.sent if s["reply_to"] == message_id)


async def test_an_update_is_confirmed_only_once_the_sink_succeeded(emu, rig):
    rig.adapter.intake.give_up_after = 100
    rig.fail = lambda event: not isinstance(event, MemberCount)
    asked = emu.send_text(GROUP, ALICE, "/proposals")
    await emu.wait_for(lambda: len(commands(rig)) >= 3)
    assert emu.pending_updates == 1  # tried three times, never confirmed
    rig.fail = lambda event: False
    assert "No open proposals" in (await answer_to(emu, asked))["plain"]
    await emu.wait_for(lambda: emu.pending_updates == 0)
    assert not rig.adapter.intake.dropped


async def test_a_bad_update_is_set_aside_then_dropped_and_the_group_moves_on(emu, rig):
    card = await answer_to(emu, emu.send_text(GROUP, ALICE, "/propose Paint the hall closes=1d"))
    rig.fail = lambda event: getattr(event, "sender", None) is not None and event.sender.user_id == str(BOB) \
        and not isinstance(event, CommandMessage)
    press = emu.press(GROUP, card["message_id"], BOB, "vote 1 yes")  # this one always fails
    await emu.wait_for(lambda: len(rig.refused) >= 5)
    assert press not in emu.answers  # not answered while it may still be applied
    # Set aside after five attempts: the next update goes through, then the press gets one last try.
    asked = emu.send_text(GROUP, ALICE, "/proposals")
    await answer_to(emu, asked)
    await emu.wait_for(lambda: press in emu.answers)
    # The member learns it did not count, in his app's language (no group could be asked for its own).
    with i18n.speaking("pt_BR"):
        assert emu.answers[press]["text"] == _(NOT_RECORDED) != NOT_RECORDED
    assert len(rig.refused) == 6 and rig.ballots() == 0
    assert len(rig.adapter.intake.dropped) == 1
    await emu.wait_for(lambda: emu.pending_updates == 0)


async def test_an_update_that_does_not_parse_does_not_block_the_rest(emu, rig, caplog):
    # What a newer Bot API could send: an object this python-telegram-bot cannot read (no "date").
    emu._updates.append({"update_id": emu._next_update_id, "message": {"message_id": 77, "text": "/help"}})
    emu._next_update_id += 1
    asked = emu.send_text(GROUP, ALICE, "/help")
    assert "/propose" in (await answer_to(emu, asked))["plain"]
    await emu.wait_for(lambda: emu.pending_updates == 0)
    assert len(rig.adapter.intake.dropped) == 1
    assert any("did not parse" in r.getMessage() for r in caplog.records)


async def test_an_outage_is_waited_out_not_skipped():
    """One update is set aside at most: while it waits, another failing update means the
    trouble is not the update, and it is retried for as long as it takes."""
    applied, down = [], {"poison", "a", "b"}

    async def apply(update):
        if update in down:
            raise DatabaseDown(update)
        applied.append(update)

    intake = Intake(apply, give_up_after=3)
    assert [await intake.offer(1, "poison") for _ in range(3)] == [False, False, True]  # set aside
    assert [await intake.offer(2, "a") for _ in range(10)] == [False] * 10  # never skipped
    down.discard("a")
    assert await intake.offer(2, "a")  # back: "a", then the last try of "poison" (which fails again)
    assert applied == ["a"] and intake.dropped == [1]
    assert [await intake.offer(3, "b") for _ in range(3)] == [False, False, True]  # a new trouble, a new aside
    down.discard("b")
    assert await intake.offer(4, "c")
    assert applied == ["a", "c", "b"] and intake.dropped == [1]  # "b" got through on its last try


async def test_a_second_poller_is_reported_as_a_conflict(emu, rig, caplog):
    await answer_to(emu, emu.send_text(GROUP, ALICE, "/help"))
    def reported() -> bool:
        return any("only one instance may run" in r.getMessage() for r in caplog.records)

    async with aiohttp.ClientSession() as http:  # another instance with the same token
        for _ in range(10):  # it must come while the bot's own long poll is open
            await http.post(f"{emu.base_url}{emu.token}/getUpdates", json={"timeout": 0.5})
            if reported():
                break
    await emu.wait_for(reported)
    # The bot goes on once the other poller is gone.
    assert "/propose" in (await answer_to(emu, emu.send_text(GROUP, BOB, "/help"), timeout=15))["plain"]


async def test_stopping_during_a_long_poll_is_quick_and_quiet(emu, sqlite_url, caplog):
    caplog.set_level(logging.INFO)
    rig = await Rig(emu, sqlite_url, poll_timeout=30).start()
    await answer_to(emu, emu.send_text(GROUP, ALICE, "/help"))
    await asyncio.sleep(0.3)  # now in a 30 s long poll
    started = time.monotonic()
    await rig.stop()
    assert time.monotonic() - started < 3
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert emu.pending_updates == 0  # what was applied was confirmed at the stop


async def test_webhook_answers_500_until_applied_and_telegram_delivers_again(emu, sqlite_url, unused_tcp_port):
    url = f"http://127.0.0.1:{unused_tcp_port}/telegram"
    rig = await Rig(emu, sqlite_url, mode="webhook", port=unused_tcp_port, webhook_url=url,
                    secret_token="s3cret").start()
    try:
        rig.fail = lambda event: isinstance(event, CommandMessage) and len(commands(rig)) < 2
        asked = emu.send_text(GROUP, ALICE, "/proposals")
        await answer_to(emu, asked)
        await emu.wait_for(lambda: emu.pending_updates == 0)
        assert [d["status"] for d in emu.webhook_deliveries] == [500, 500, 200]
    finally:
        await rig.stop()


async def test_a_replayed_press_changes_nothing_and_is_answered(emu, sqlite_url, unused_tcp_port):
    url = f"http://127.0.0.1:{unused_tcp_port}/telegram"
    rig = await Rig(emu, sqlite_url, mode="webhook", port=unused_tcp_port, webhook_url=url,
                    secret_token="s3cret").start()
    try:
        card = await answer_to(emu, emu.send_text(GROUP, ALICE, "/propose Paint the hall closes=1d"))
        before = len(emu.webhook_deliveries)
        press = emu.press(GROUP, card["message_id"], BOB, "vote 1 yes")
        await emu.wait_for(lambda: press in emu.answers and len(emu.webhook_deliveries) > before)
        update = {"update_id": 1, "callback_query": {
            "id": press, "from": {"id": BOB, "is_bot": False, "first_name": "Bob"}, "chat_instance": "1",
            "data": "vote 1 yes", "message": emu.message(GROUP, card["message_id"])}}
        async with aiohttp.ClientSession() as http:  # Telegram delivers it again (say, after a crash)
            again = await http.post(url, json=update, headers={SECRET_HEADER: "s3cret"})
            assert again.status == 200
        assert rig.ballots() == 1
        # Answered again (every press must be): Telegram says it is too old; that is fine.
        assert [e for e in emu.errors if e[0] == "answerCallbackQuery"]
    finally:
        await rig.stop()
