"""The Telegram adapter — a real python-telegram-bot Application — driven over
real HTTP through the Bot API emulator, with the real core behind it."""

import asyncio
import re
import time
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from adapters.telegram import TelegramAdapter, split_html
from bot.app import build_core, published_commands
from bot.clock import ManualClock
from bot.config import DefaultsConfig
from bot.render.text import RichText
from bot.runtime import Runtime
from storage.models import Ballot
from tests.harness import START
from tests.telegram_emulator import BotApiEmulator

GROUP = -100123
ALICE, BOB, CAROL = 11, 12, 13


class Rig:
    """Core + runtime + Telegram adapter, started and stopped like the app does."""

    def __init__(self, emu: BotApiEmulator, url: str, clock: ManualClock, **adapter_options) -> None:
        self.emu, self.url, self.clock, self.options = emu, url, clock, adapter_options

    async def start(self) -> "Rig":
        self.core = build_core(self.url, self.clock, DefaultsConfig())
        options = {"edit_delay": 0.2, "poll_timeout": 1, **self.options}
        self.adapter = TelegramAdapter("123456:TEST-TOKEN", commands=published_commands(), base_url=self.emu.base_url,
                                       base_file_url=self.emu.base_file_url, **options)
        self.runtime = Runtime(self.core, [self.adapter], timedelta(hours=1))
        await self.runtime.start()
        return self

    async def stop(self) -> None:
        await self.runtime.stop()
        self.core.db.dispose()

    def ballots(self) -> int:
        with self.core.db.transaction() as session:
            return session.scalar(select(func.count()).select_from(Ballot))


@pytest.fixture
async def emu():
    async with BotApiEmulator() as emulator:
        emulator.add_chat(GROUP, "Tenants' Union", member_count=40)
        for user_id, name in ((ALICE, "Alice"), (BOB, "Bob"), (CAROL, "Carol")):
            emulator.add_user(user_id, name)
        yield emulator


@pytest.fixture
async def rig(emu, sqlite_url):
    rig = await Rig(emu, sqlite_url, ManualClock(START)).start()
    yield rig
    await rig.stop()


async def reply_to(emu, user, text, count=1):
    before = len(emu.messages_to(GROUP))
    emu.send_text(GROUP, user, text)
    await emu.wait_for(lambda: len(emu.messages_to(GROUP)) >= before + count, timeout=10)
    return emu.messages_to(GROUP)[before:]


async def open_proposal(emu, text="/propose Buy a chest freezer closes=1d"):
    [card] = await reply_to(emu, ALICE, text)
    return card


async def test_commands_are_answered_in_html_and_published(emu, rig):
    [reply] = await reply_to(emu, ALICE, "/help")
    assert reply["parse_mode"] == "HTML" and "/propose" in reply["plain"]
    [reply] = await reply_to(emu, ALICE, "/help@CommonsTestBot vote")
    assert "/vote <#> <yes|no|abstain|block|option> [reason…]" in reply["plain"]
    names = [c["command"] for c in emu.commands['{"type":"all_group_chats"}']]
    assert {"propose", "vote", "roles", "role"} <= set(names)
    # The same menu in each shipped language, for members whose app speaks it (Spanish, Portuguese).
    for code in ("es", "pt"):
        menu = {c["command"]: c["description"] for c in emu.commands['{"type":"all_group_chats"}|' + code]}
        assert set(menu) == set(names) and menu["propose"] != "open a proposal for the group to decide"
        assert emu.commands['{"type":"all_private_chats"}|' + code]
    assert not emu.errors


async def test_commands_for_another_bot_are_ignored(emu, rig):
    emu.send_text(GROUP, ALICE, "/help@SomeOtherBot")
    await reply_to(emu, BOB, "/help")
    assert len(emu.messages_to(GROUP)) == 1


async def test_a_tap_votes_privately_and_the_tally_is_edited(emu, rig):
    card = await open_proposal(emu)
    buttons = [b["callback_data"] for row in card["reply_markup"]["inline_keyboard"] for b in row]
    assert buttons == ["vote 1 yes", "vote 1 no", "vote 1 abstain", "vote 1 block"]
    query = emu.press(GROUP, card["message_id"], BOB, "vote 1 yes")
    await emu.wait_for(lambda: query in emu.answers)
    assert "yes on #1" in emu.answers[query]["text"]
    await emu.wait_for(lambda: "1 yes" in emu.message(GROUP, card["message_id"])["text"])
    assert len(emu.messages_to(GROUP)) == 1  # no group message for the vote
    assert emu.message(GROUP, card["message_id"])["reply_markup"]  # buttons kept for the next voter


async def test_a_typed_vote_is_acknowledged_with_a_reaction_not_a_message(emu, rig):
    await open_proposal(emu)
    command = emu.send_text(GROUP, CAROL, "/vote 1 no too expensive")
    await emu.wait_for(lambda: any(r["message_id"] == command for r in emu.reactions))
    assert len(emu.messages_to(GROUP)) == 1 and rig.ballots() == 1


async def test_a_burst_of_300_presses_is_counted_without_flooding_the_group(emu, rig):
    card = await open_proposal(emu)
    users = range(1000, 1300)
    for user in users:
        emu.add_user(user, f"Member {user}")
    started = time.monotonic()
    queries = [emu.press(GROUP, card["message_id"], user, "vote 1 yes" if user % 3 else "vote 1 no")
               for user in users]
    await emu.wait_for(lambda: all(q in emu.answers for q in queries), timeout=60)
    assert rig.ballots() == 300
    await emu.wait_for(lambda: "200 yes · 100 no" in emu.message(GROUP, card["message_id"])["text"], timeout=10)
    elapsed = time.monotonic() - started
    # No message per press: the card, and once the group passes split_at (150), the one suggestion to split.
    others = [m for m in emu.messages_to(GROUP) if m["message_id"] != card["message_id"]]
    assert len(others) == 1 and "past the 150" in others[0]["text"], others
    edits = len([e for e in emu.edits if e["message_id"] == card["message_id"]])
    assert edits <= elapsed / rig.adapter.edit_delay + 2 and edits < 60  # coalesced, not one per press


async def test_a_429_is_honoured_and_nothing_is_lost(emu, rig):
    emu.fail_next("sendMessage", times=1, retry_after=1)
    started = time.monotonic()
    [reply] = await reply_to(emu, ALICE, "/proposals")
    assert "No open proposals" in reply["plain"]
    assert time.monotonic() - started >= 1.0
    assert [e for e in emu.errors if "retry after" in e[1].lower()]


async def test_the_outcome_is_announced_in_the_group_at_the_deadline(emu, rig):
    card = await open_proposal(emu)
    emu.press(GROUP, card["message_id"], BOB, "vote 1 yes")
    await emu.wait_for(lambda: rig.ballots() == 1)
    rig.clock.advance(timedelta(days=1))
    await rig.runtime.scheduler.run_now()
    await emu.wait_for(lambda: any("passed" in m["plain"] for m in emu.messages_to(GROUP)))
    await rig.runtime.delivery.drain()  # pending tally edits go out now
    final = emu.message(GROUP, card["message_id"])
    assert "Closed" in final["text"] and not final.get("reply_markup")  # buttons removed at the end


async def test_a_restart_reapplies_nothing_and_skips_stale_updates(emu, sqlite_url):
    clock = ManualClock(START)
    first = await Rig(emu, sqlite_url, clock).start()
    await open_proposal(emu)
    emu.send_text(GROUP, BOB, "/vote 1 yes")
    await emu.wait_for(lambda: first.ballots() == 1)
    await first.stop()
    # While the bot is down: one fresh command, one from two hours ago.
    emu.send_text(GROUP, CAROL, "/vote 1 no")
    emu.send_text(GROUP, ALICE, "/propose Old news", date=int(time.time()) - 7200)
    second = await Rig(emu, sqlite_url, clock).start()
    try:
        await emu.wait_for(lambda: second.ballots() == 2)
        await asyncio.sleep(1.5)  # give a (wrong) replay or the stale command time to show up
        assert len(emu.messages_to(GROUP)) == 1  # only the first card: nothing answered twice
        assert second.ballots() == 2 and emu.pending_updates == 0
    finally:
        await second.stop()


async def test_members_come_from_chat_member_updates_and_the_member_count(emu, rig):
    await reply_to(emu, ALICE, "/help")
    emu.add_user(77, "Helper Bot", is_bot=True)
    emu.member_joined(GROUP, 77)
    emu.member_joined(GROUP, BOB)
    await asyncio.sleep(0.5)
    with rig.core.db.transaction() as session:
        from storage.models import Group, Member
        group = session.scalars(select(Group)).one()
        assert group.reported_member_count == 39  # 40 minus the bot itself
        names = set(session.scalars(select(Member.display_name)))
    assert "Bob" in names and "Helper Bot" not in names


async def test_a_direct_message_falls_back_to_the_group_until_the_member_starts_the_bot(emu, rig):
    from bot import outbox
    from bot.actions import DirectMessage
    from bot.events import ChatRef, UserRef

    message = DirectMessage(user=UserRef(platform="telegram", user_id=str(BOB)), text=RichText(html="<b>hi</b>"),
                            fallback_chat=ChatRef(platform="telegram", chat_id=str(GROUP)))

    async def deliver():  # as the core's actions go: through the outbox and the delivery layer
        with rig.core.db.transaction() as session:
            item = outbox.add(session, message, group_id=None, now=rig.clock.now())
        await rig.runtime.delivery.submit([item])
        await rig.runtime.delivery.drain()

    await deliver()
    await emu.wait_for(lambda: emu.messages_to(GROUP))
    said = emu.messages_to(GROUP)[-1]
    assert said["plain"] == "you: hi" and said["entities"][0]["user"]["id"] == BOB  # a mention that notifies Bob
    emu.send_text(BOB, BOB, "/help")  # Bob opens a private chat with the bot
    await emu.wait_for(lambda: emu.messages_to(BOB))
    await deliver()
    await emu.wait_for(lambda: emu.messages_to(BOB)[-1]["plain"] == "hi")
    assert len(emu.messages_to(GROUP)) == 1


async def test_long_messages_are_split_cleanly(emu, rig):
    from bot.actions import SendMessage
    from bot.events import ChatRef

    lines = [f"<b>line {n}</b> " + "x" * 90 for n in range(100)]
    text = RichText(html="<blockquote>quoted\nacross lines</blockquote>\n" + "\n".join(lines))
    await rig.adapter.perform(SendMessage(chat=ChatRef(platform="telegram", chat_id=str(GROUP)), text=text))
    parts = emu.messages_to(GROUP)
    assert len(parts) == 3 and all(len(p["plain"]) <= 4096 for p in parts)
    assert len(re.findall(r"line \d+", "".join(p["plain"] for p in parts))) == 100 and not emu.errors


def test_split_html_never_cuts_inside_a_tag():
    html = "<pre>" + "\n".join("y" * 50 for _ in range(100)) + "</pre>\n" + "\n".join("z" * 50 for _ in range(100))
    parts = split_html(html, limit=1000)
    assert parts[0].startswith("<pre>") and parts[0].endswith("</pre>")  # kept whole, rather than broken
    assert all(part.count("<pre>") == part.count("</pre>") for part in parts)


async def test_a_proposal_with_600_voters_is_shown_in_parts_telegram_accepts(emu, rig):
    """The voters line of `proposal <#>` is one line far over 4,096 characters: it is cut between
    names, never inside a mention, and every part is accepted."""
    card = await open_proposal(emu)
    for user_id in range(1000, 1600):
        emu.add_user(user_id, f"Member & {user_id} 🏠")
        emu.press(GROUP, card["message_id"], user_id, "vote 1 yes")
    await emu.wait_for(lambda: rig.ballots() == 600, timeout=60)
    before = len(emu.messages_to(GROUP))
    emu.send_text(GROUP, ALICE, "/proposal 1")
    await emu.wait_for(lambda: any("Member & 1599" in m["plain"] for m in emu.messages_to(GROUP)[before:]),
                       timeout=120)
    shown = "\n".join(m["plain"] for m in emu.messages_to(GROUP)[before:])
    assert all(f"Member & {user_id} 🏠" in shown for user_id in range(1000, 1600))  # no name cut in two
    assert not emu.errors


def test_a_line_longer_than_a_message_is_cut_between_words_outside_tags():
    line = "yes (300): " + ", ".join(f'<a href="tg://user?id={n}">Ana &amp; {n}</a>' for n in range(300))
    parts = split_html("<b>#1</b>\n" + line, limit=1000)
    assert len(parts) > 4
    assert all(part.count("<a ") == part.count("</a>") for part in parts)
    assert "".join(parts).count("Ana &amp;") == 300


async def test_webhook_mode_checks_the_secret_token(emu, sqlite_url, unused_tcp_port):
    import aiohttp

    rig = await Rig(emu, sqlite_url, ManualClock(START), mode="webhook", listen="127.0.0.1", port=unused_tcp_port,
                    webhook_url=f"http://127.0.0.1:{unused_tcp_port}/telegram", secret_token="s3cret").start()
    try:
        [reply] = await reply_to(emu, ALICE, "/help")  # delivered by the emulator with the right secret
        assert "/propose" in reply["plain"]
        update = {"update_id": 999999, "message": emu.message(GROUP, 1)}
        async with aiohttp.ClientSession() as http:
            wrong = await http.post(f"http://127.0.0.1:{unused_tcp_port}/telegram", json=update,
                                    headers={"X-Telegram-Bot-Api-Secret-Token": "guess"})
            assert wrong.status == 403
    finally:
        await rig.stop()


async def test_replies_waiting_for_the_group_budget_do_not_hold_up_votes(emu, sqlite_url):
    from adapters.telegram import CommonsRateLimiter

    # Telegram's budget, compressed in time: 20 messages per 6 s instead of per 60 s.
    limiter = CommonsRateLimiter(group_per_minute=20, group_window=6)
    rig = await Rig(emu, sqlite_url, ManualClock(START), rate_limiter=limiter).start()
    try:
        card = await open_proposal(emu)
        for _ in range(30):
            emu.send_text(GROUP, CAROL, "/help")
        await emu.wait_for(lambda: len(emu.messages_to(GROUP)) >= 10, timeout=10)
        pressed = time.monotonic()
        query = emu.press(GROUP, card["message_id"], BOB, "vote 1 yes")
        await emu.wait_for(lambda: query in emu.answers, timeout=10)
        assert emu.answers[query]["at"] - pressed < 1.0  # not behind the queued replies
        assert len(emu.messages_to(GROUP)) < 31  # the replies were still queued when the vote was answered
        await emu.wait_for(lambda: len(emu.messages_to(GROUP)) == 31, timeout=30)
        times = sorted(m["at"] for m in emu.messages_to(GROUP))
        assert max(sum(1 for t in times if start <= t < start + 6) for start in times) <= 20
    finally:
        await rig.stop()


async def test_images_and_files_go_out_as_photo_and_document(emu, rig):
    from bot.actions import SendFile, SendImage
    from bot.events import ChatRef

    chat = ChatRef(platform="telegram", chat_id=str(GROUP))
    png = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4"
           b"\x89\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00\x00\x00IEND\xaeB`\x82")
    await rig.adapter.perform(SendImage(chat=chat, filename="audit.png", data=png,
                                        caption=RichText(html="<b>Audit</b> chart")))
    await rig.adapter.perform(SendFile(chat=chat, filename="audit.csv", data=b"area,count\nfood,12\n",
                                       mime_type="text/csv"))
    photo, document = emu.messages_to(GROUP)
    assert photo["method"] == "sendPhoto" and photo["caption"] == "<b>Audit</b> chart"
    assert document["method"] == "sendDocument" and document["file"]["bytes"] == b"area,count\nfood,12\n"
    assert not emu.errors


async def test_commons_bot_run_serves_telegram_and_stops_cleanly_on_sigterm(emu, tmp_path):
    import os
    import signal
    import sys

    config = tmp_path / "config.toml"
    config.write_text(f'[database]\nurl = "sqlite:///{tmp_path / "run.db"}"\n'
                      f'[telegram]\ntoken = "123456:TEST-TOKEN"\nbase_url = "{emu.base_url}"\n'
                      f'[scheduler]\nsweep_interval = "5s"\n')
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.cli", "run", "--config", str(config), "--log-level", "WARNING",
        cwd=tmp_path, env={**os.environ, "PYTHONPATH": os.getcwd()},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        await emu.wait_for(lambda: emu.commands.get('{"type":"all_group_chats"}'), timeout=30)
        [reply] = await reply_to(emu, ALICE, "/propose Rent the hall closes=1d")
        assert "#1 Rent the hall" in reply["plain"]
    finally:
        process.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(process.wait(), timeout=20)
    stderr = (await process.stderr.read()).decode()
    assert code == 0, stderr


async def test_an_anonymous_need_sent_privately_reaches_the_group_without_its_author(emu, rig):
    await reply_to(emu, ALICE, "/needs")  # Alice and Bob are known members of the group
    await reply_to(emu, BOB, "/needs")
    emu.send_text(ALICE, ALICE, "need help with rent this month category=money group=\"Tenants' Union\"")
    await emu.wait_for(lambda: emu.messages_to(ALICE) and emu.messages_to(GROUP)[-1]["plain"].startswith("🆘"))
    posted = emu.messages_to(GROUP)[-1]["plain"]
    assert "Need #1 (money) from a member (posted privately)" in posted and "Alice" not in posted
    assert "without your name" in emu.messages_to(ALICE)[-1]["plain"]
    await reply_to(emu, BOB, "/claim 1")
    await emu.wait_for(lambda: "Bob claimed it" in emu.messages_to(ALICE)[-1]["plain"])
    assert all("Alice" not in message["plain"] for message in emu.messages_to(GROUP)[2:])
