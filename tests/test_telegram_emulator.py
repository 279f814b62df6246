"""The Bot API emulator, driven by a real python-telegram-bot Application.

Each test is time-limited, and fails when PTB logged an error (PTB logs and
retries in a loop when it can't parse what the server sent: that is how an
incomplete object would show up)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dtm
import functools
import json
import logging
import socket
import struct
import warnings
import zlib

import pytest
from aiohttp import ClientSession, web
from telegram import (
    BotCommand,
    BotCommandScopeAllGroupChats,
    BotCommandScopeChat,
    ChatFullInfo,
    ChatMemberAdministrator,
    ChatMemberLeft,
    ChatMemberMember,
    ChatMemberOwner,
    ChatMemberRestricted,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    MessageEntity,
    ReactionTypeEmoji,
    TelegramObject,
    Update,
)
from telegram.constants import ParseMode
from telegram.error import BadRequest, Conflict, EndPointNotFound, Forbidden, InvalidToken, RetryAfter
from telegram.ext import (
    AIORateLimiter,
    Application,
    CallbackQueryHandler,
    ChatMemberHandler,
    CommandHandler,
    MessageHandler,
    filters,
)

from tests.telegram_emulator import BotApiEmulator, EntityParseError, finish_text, parse_html

GROUP = -1001234567890
ALICE, BOB, CAROL = 101, 102, 103
LIMIT = 20.0  # seconds, per test


def limited(test):
    """Fail the test if it runs longer than LIMIT seconds."""

    @functools.wraps(test)
    async def wrapper(*args, **kwargs):
        return await asyncio.wait_for(test(*args, **kwargs), LIMIT)

    return wrapper


@pytest.fixture(autouse=True)
def ptb_log(caplog):
    """PTB's log goes to caplog (never stdout); any ERROR from telegram.* fails the test."""
    caplog.set_level(logging.WARNING, logger="telegram")
    caplog.set_level(logging.WARNING, logger="httpx")
    yield caplog
    problems = [
        f"{r.name}: {r.getMessage()}"
        for r in caplog.get_records("call")
        if r.name.startswith("telegram") and r.levelno >= logging.ERROR
    ]
    assert not problems, "python-telegram-bot logged errors:\n" + "\n".join(problems)


@pytest.fixture
async def emu():
    emulator = BotApiEmulator()
    await emulator.start()
    emulator.add_user(ALICE, "Alice", "alice_commons")
    emulator.add_user(BOB, "Bob")
    emulator.add_user(CAROL, "Carol", "carol_c")
    emulator.add_chat(GROUP, "Commons test group")
    yield emulator
    await emulator.stop()


def build(emu: BotApiEmulator) -> Application:
    return (
        Application.builder()
        .token(emu.token)
        .base_url(emu.base_url)
        .base_file_url(emu.base_file_url)
        .build()
    )


@contextlib.asynccontextmanager
async def polling(app: Application, **kwargs):
    await app.initialize()
    await app.start()
    await app.updater.start_polling(timeout=dtm.timedelta(seconds=2), **kwargs)
    try:
        yield app
    finally:
        await app.updater.stop()
        await app.stop()
        await app.shutdown()


@contextlib.asynccontextmanager
async def bot_only(emu: BotApiEmulator):
    app = build(emu)
    await app.initialize()
    try:
        yield app.bot
    finally:
        await app.shutdown()


def png(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    raw = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def retry_seconds(exc: RetryAfter) -> float:
    with warnings.catch_warnings():  # PTB 22 deprecates the int form; either form is fine here
        warnings.simplefilter("ignore")
        value = exc.retry_after
    return value.total_seconds() if isinstance(value, dtm.timedelta) else float(value)


# ------------------------------------------------------------------------------------------
# A real Application against the emulator
# ------------------------------------------------------------------------------------------


@limited
async def test_initialize_calls_get_me_and_parses_the_bot(emu):
    app = build(emu)
    await app.initialize()
    try:
        assert [method for method, _ in emu.calls] == ["getMe"]
        assert app.bot.username == "CommonsTestBot"
        assert app.bot.id == 999
        me = app.bot.bot
        assert me.is_bot and me.can_join_groups
        assert me.can_read_all_group_messages is False
        assert me.supports_inline_queries is False
        assert me.api_kwargs == {}  # nothing PTB doesn't know about
    finally:
        await app.shutdown()
    assert emu.errors == []


@limited
async def test_polling_command_gets_an_html_reply(emu):
    seen = []

    async def start(update, context):
        seen.append((update.effective_chat.id, update.message.text, update.message.entities))
        user = update.effective_user
        await update.message.reply_html(f"<b>Welcome</b>, {user.mention_html()} &amp; co!")

    app = build(emu)
    app.add_handler(CommandHandler("start", start))
    async with polling(app):
        message_id = emu.send_text(GROUP, ALICE, "/start")
        await emu.wait_for(lambda: len(emu.sent) == 1)

    chat_id, text, entities = seen[0]
    assert (chat_id, text) == (GROUP, "/start")
    assert entities == (MessageEntity(MessageEntity.BOT_COMMAND, 0, 6),)
    sent = emu.sent[0]
    assert sent["method"] == "sendMessage" and sent["chat_id"] == GROUP
    assert sent["parse_mode"] == "HTML"
    assert sent["text"] == '<b>Welcome</b>, <a href="tg://user?id=101">Alice</a> &amp; co!'
    assert sent["plain"] == "Welcome, Alice & co!"
    assert [(e["type"], e["offset"], e["length"]) for e in sent["entities"]] == [
        ("bold", 0, 7),
        ("text_mention", 9, 5),
    ]
    assert sent["entities"][1]["user"]["id"] == ALICE
    assert sent["reply_to"] in (None, message_id)
    assert emu.messages_to(GROUP) == [sent]
    assert emu.pending_updates == 0
    assert emu.errors == []


@limited
async def test_private_chat_command(emu):
    replies = []

    async def help_(update, context):
        assert update.effective_chat.type == "private"
        assert update.effective_chat.id == BOB
        replies.append(await update.message.reply_text("How can I help?"))

    app = build(emu)
    app.add_handler(CommandHandler("help", help_))
    async with polling(app):
        emu.send_text(BOB, BOB, "/help")
        await emu.wait_for(lambda: emu.messages_to(BOB))
    assert replies[0].chat.id == BOB and replies[0].text == "How can I help?"
    assert emu.errors == []


@limited
async def test_bad_html_is_refused_with_cant_parse_entities(emu):
    failures = []

    async def start(update, context):
        try:
            await update.message.reply_html("line one<br>line two")
        except BadRequest as exc:
            failures.append(exc.message)

    app = build(emu)
    app.add_handler(CommandHandler("start", start))
    async with polling(app):
        emu.send_text(GROUP, ALICE, "/start")
        await emu.wait_for(lambda: failures)
    assert failures == ['Can\'t parse entities: unsupported start tag "br" at byte offset 8']  # PTB's rewording
    assert emu.errors == [
        ("sendMessage", 'Bad Request: can\'t parse entities: Unsupported start tag "br" at byte offset 8')
    ]
    assert emu.sent == []


@limited
async def test_button_press_is_received_and_answered(emu):
    pressed = []

    async def on_press(update, context):
        query = update.callback_query
        pressed.append((query.data, query.from_user.id, query.message.message_id))
        await query.answer("Counted")

    app = build(emu)
    app.add_handler(CallbackQueryHandler(on_press))
    async with polling(app):
        keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Yes", callback_data="vote:yes"),
                                          InlineKeyboardButton("No", callback_data="vote:no")]])
        message = await app.bot.send_message(GROUP, "Adopt the budget?", reply_markup=keyboard)
        assert message.reply_markup == keyboard
        query_id = emu.press(GROUP, message.message_id, BOB, "vote:yes")
        await emu.wait_for(lambda: query_id in emu.answers)

        assert pressed == [("vote:yes", BOB, message.message_id)]
        assert emu.answers[query_id]["text"] == "Counted"
        assert emu.answers[query_id]["show_alert"] is False
        with pytest.raises(BadRequest, match="(?i)query is too old"):
            await app.bot.answer_callback_query(query_id, "again")
        with pytest.raises(ValueError, match="(?i)no button"):
            emu.press(GROUP, message.message_id, BOB, "vote:maybe")
    assert emu.errors == [
        ("answerCallbackQuery", "Bad Request: query is too old and response timeout expired or query ID is invalid")
    ]


@limited
async def test_callback_data_over_64_bytes_is_refused(emu):
    async with bot_only(emu) as bot:
        ok = InlineKeyboardMarkup([[InlineKeyboardButton("ok", callback_data="x" * 64)]])
        await bot.send_message(GROUP, "fits", reply_markup=ok)
        for data in ("x" * 65, "é" * 33):
            too_long = InlineKeyboardMarkup([[InlineKeyboardButton("no", callback_data=data)]])
            with pytest.raises(BadRequest, match="(?i)BUTTON_DATA_INVALID"):
                await bot.send_message(GROUP, "too long", reply_markup=too_long)
        with pytest.raises(BadRequest, match="(?i)Text buttons are unallowed"):
            await bot.send_message(GROUP, "x", reply_markup={"inline_keyboard": [[{"text": "bare"}]]})
    assert len(emu.sent) == 1
    assert [e[1] for e in emu.errors][:2] == ["Bad Request: BUTTON_DATA_INVALID"] * 2


@limited
async def test_edit_message_text_not_modified_and_keyboard_rules(emu):
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Vote", callback_data="v")]])
    async with bot_only(emu) as bot:
        message = await bot.send_message(GROUP, "<b>Tally</b>: 0", parse_mode=ParseMode.HTML, reply_markup=keyboard)
        with pytest.raises(BadRequest, match="(?i)message is not modified"):
            await bot.edit_message_text("<b>Tally</b>: 0", GROUP, message.message_id,
                                        parse_mode=ParseMode.HTML, reply_markup=keyboard)
        # same text, different entities: modified
        edited = await bot.edit_message_text("Tally: 0", GROUP, message.message_id, reply_markup=keyboard)
        assert edited.text == "Tally: 0" and edited.entities == () and edited.edit_date is not None
        # leaving reply_markup out removes the keyboard
        edited = await bot.edit_message_text("Tally: 1", GROUP, message.message_id)
        assert edited.reply_markup is None
        assert "reply_markup" not in emu.message(GROUP, message.message_id)
        with pytest.raises(BadRequest, match="(?i)message is not modified"):
            await bot.edit_message_reply_markup(GROUP, message.message_id)
        await bot.edit_message_reply_markup(GROUP, message.message_id, reply_markup=keyboard)
        with pytest.raises(BadRequest, match="(?i)message to edit not found"):
            await bot.edit_message_text("x", GROUP, 4242)
        user_message = emu.send_text(GROUP, ALICE, "hello")
        with pytest.raises(BadRequest, match="(?i)message can't be edited"):
            await bot.edit_message_text("x", GROUP, user_message)
    assert [e["method"] for e in emu.edits] == ["editMessageText", "editMessageText", "editMessageReplyMarkup"]
    assert emu.errors[0] == (
        "editMessageText",
        "Bad Request: message is not modified: specified new message content and reply markup are exactly "
        "the same as a current content and reply markup of the message",
    )


@limited
async def test_set_my_commands_validation_and_scopes(emu):
    async with bot_only(emu) as bot:
        await bot.set_my_commands([BotCommand("propose", "Make a proposal"), BotCommand("vote_now", "Vote")])
        await bot.set_my_commands([BotCommand("roles", "Who holds which role")], scope=BotCommandScopeAllGroupChats())
        await bot.set_my_commands([BotCommand("audit", "Audit")], scope=BotCommandScopeChat(GROUP))
        with pytest.raises(BadRequest, match="(?i)BOT_COMMAND_INVALID"):
            await bot.set_my_commands([BotCommand("Propose", "uppercase")])
        with pytest.raises(BadRequest, match="(?i)BOT_COMMAND_INVALID"):
            await bot.set_my_commands([BotCommand("x" * 33, "too long")])
        with pytest.raises(BadRequest, match="(?i)BOT_COMMAND_DESCRIPTION_INVALID"):
            await bot.set_my_commands([BotCommand("ok", "")])
        with pytest.raises(BadRequest, match="(?i)BOT_COMMANDS_TOO_MUCH"):
            await bot.set_my_commands([BotCommand(f"c{i}", "d") for i in range(101)])
        assert await bot.get_my_commands() == (
            BotCommand("propose", "Make a proposal"),
            BotCommand("vote_now", "Vote"),
        )
        group_commands = await bot.get_my_commands(scope=BotCommandScopeAllGroupChats())
        assert group_commands == (BotCommand("roles", "Who holds which role"),)
    assert emu.commands["default"] == [
        {"command": "propose", "description": "Make a proposal"},
        {"command": "vote_now", "description": "Vote"},
    ]
    assert emu.commands[json.dumps({"type": "all_group_chats"})][0]["command"] == "roles"
    assert emu.commands[{"type": "chat", "chat_id": GROUP}][0]["command"] == "audit"
    # any spelling of a scope finds its list
    spelled = json.dumps({"type": "chat", "chat_id": GROUP})
    assert emu.commands[spelled] is emu.commands[{"chat_id": GROUP, "type": "chat"}]


@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")
@limited
async def test_fail_next_surfaces_as_retry_after(emu):
    emu.fail_next("sendMessage", times=1, retry_after=7)
    async with bot_only(emu) as bot:
        with pytest.raises(RetryAfter) as caught:
            await bot.send_message(GROUP, "first")
        assert retry_seconds(caught.value) == 7
        await bot.send_message(GROUP, "second")
    assert [s["plain"] for s in emu.sent] == ["second"]
    assert emu.errors == [("sendMessage", "Too Many Requests: retry after 7")]
    assert [m for m, _ in emu.calls].count("sendMessage") == 2


@limited
async def test_confirmed_updates_are_not_delivered_to_the_next_application(emu):
    first, second = [], []

    def collector(into):
        async def collect(update, context):
            into.append(update.message.text)

        return collect

    app = build(emu)
    app.add_handler(MessageHandler(filters.TEXT, collector(first)))
    async with polling(app):
        emu.send_text(GROUP, ALICE, "one")
        emu.send_text(GROUP, BOB, "two")
        await emu.wait_for(lambda: len(first) == 2)
    assert emu.pending_updates == 0

    app = build(emu)
    app.add_handler(MessageHandler(filters.TEXT, collector(second)))
    async with polling(app):
        emu.send_text(GROUP, CAROL, "three")
        await emu.wait_for(lambda: second)
        await asyncio.sleep(0.2)
    assert first == ["one", "two"]
    assert second == ["three"]
    assert emu.errors == []


@limited
async def test_get_updates_offsets_follow_telegram(emu):
    async with bot_only(emu) as bot:
        for text in ("a", "b", "c"):
            emu.send_text(GROUP, ALICE, text)
        updates = await bot.get_updates()
        again = await bot.get_updates()  # nothing confirmed yet
        assert [u.message.text for u in updates] == [u.message.text for u in again] == ["a", "b", "c"]
        ids = [u.update_id for u in updates]
        assert ids == sorted(ids) and ids[1] == ids[0] + 1
        assert [u.message.text for u in await bot.get_updates(offset=ids[1])] == ["b", "c"]
        assert [u.message.text for u in await bot.get_updates(offset=ids[0])] == ["b", "c"]  # "a" is gone
        assert [u.message.text for u in await bot.get_updates(offset=-1)] == ["c"]
        assert await bot.get_updates(offset=ids[2] + 1) == ()
        assert emu.pending_updates == 0
        # long polling returns as soon as an update arrives
        loop = asyncio.get_running_loop()
        started = loop.time()
        loop.call_later(0.3, emu.send_text, GROUP, BOB, "late")
        updates = await bot.get_updates(timeout=5)
        assert [u.message.text for u in updates] == ["late"]
        assert loop.time() - started < 3
        # and waits the whole timeout when nothing comes
        started = loop.time()
        assert await bot.get_updates(offset=updates[-1].update_id + 1, timeout=1) == ()
        assert loop.time() - started >= 0.9


@limited
async def test_a_second_poller_terminates_the_first_with_409(emu):
    async with bot_only(emu) as one, bot_only(emu) as two:  # two instances of the same bot
        first = asyncio.create_task(one.get_updates(timeout=5))
        await emu.wait_for(lambda: [m for m, _ in emu.calls].count("getUpdates") == 1)
        assert await two.get_updates(timeout=0) == ()
        with pytest.raises(Conflict, match="(?i)terminated by other getUpdates request"):
            await first


@limited
async def test_webhook_delivery_with_secret_and_409_for_get_updates(emu):
    received: list[tuple[dict, str | None]] = []
    statuses = [500, 200]

    async def hook(request: web.Request) -> web.Response:
        received.append((await request.json(), request.headers.get("X-Telegram-Bot-Api-Secret-Token")))
        return web.Response(status=statuses.pop(0) if statuses else 200)

    receiver = web.Application()
    receiver.router.add_post("/hook", hook)
    runner = web.AppRunner(receiver, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
    try:
        async with bot_only(emu) as bot:
            assert await bot.set_webhook(url, secret_token="s3cret-token_1")
            message_id = emu.send_text(GROUP, ALICE, "via webhook")
            await emu.wait_for(lambda: len(received) == 2 and emu.pending_updates == 0)
            first, second = received
            assert first == second  # retried after the 500
            update = Update.de_json(first[0], bot)
            assert update.message.text == "via webhook" and update.message.message_id == message_id
            assert first[1] == "s3cret-token_1"
            info = await bot.get_webhook_info()
            assert info.url == url and info.pending_update_count == 0
            assert info.last_error_message == "Wrong response from the webhook: 500 Internal Server Error"
            with pytest.raises(Conflict, match="(?i)webhook is active"):
                await bot.get_updates()
            with pytest.raises(BadRequest, match="(?i)secret token"):
                await bot.set_webhook(url, secret_token="not allowed!")
            assert await bot.delete_webhook()
            emu.send_text(GROUP, BOB, "back to polling")
            assert [u.message.text for u in await bot.get_updates()] == ["back to polling"]
    finally:
        await runner.cleanup()
    assert ("getUpdates", "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook "
            "to delete the webhook first") in emu.errors


@limited
async def test_ptb_webhook_server_receives_updates(emu):
    texts = []

    async def collect(update, context):
        texts.append(update.message.text)

    port = free_port()
    app = build(emu)
    app.add_handler(MessageHandler(filters.TEXT, collect))
    await app.initialize()
    await app.start()
    await app.updater.start_webhook(
        listen="127.0.0.1", port=port, url_path="tg", webhook_url=f"http://127.0.0.1:{port}/tg",
        secret_token="webhook-secret",
    )
    try:
        assert emu.webhook_url == f"http://127.0.0.1:{port}/tg"
        emu.send_text(GROUP, ALICE, "hello hook")
        await emu.wait_for(lambda: texts == ["hello hook"])
        await emu.wait_for(lambda: emu.pending_updates == 0)
    finally:
        await app.updater.stop()
        await app.stop()
        await app.shutdown()
    assert all(d["status"] == 200 for d in emu.webhook_deliveries)


def unknown_fields(obj, path="update") -> list[str]:
    """Fields PTB did not recognise anywhere in a parsed object (api_kwargs), as paths."""
    found = []
    if isinstance(obj, TelegramObject):
        if obj.api_kwargs:
            found.append(f"{path}: {sorted(obj.api_kwargs)}")
        for name, value in obj._get_attrs(recursive=False).items():
            found += unknown_fields(value, f"{path}.{name}")
    elif isinstance(obj, (tuple, list)):
        for i, value in enumerate(obj):
            found += unknown_fields(value, f"{path}[{i}]")
    return found


@limited
async def test_every_update_kind_parses_completely(emu):
    """Each kind of update the emulator produces parses in PTB 22.8 with nothing left over."""
    async with bot_only(emu) as bot:
        await bot.get_updates(allowed_updates=Update.ALL_TYPES)
        emu.add_chat(ALICE, type="private")
        emu.set_member_status(GROUP, CAROL, "administrator")
        keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Yes", callback_data="y")]])
        bot_message = await bot.send_message(GROUP, "<i>Proposal</i> #7", parse_mode="HTML", reply_markup=keyboard)
        first = emu.send_text(GROUP, ALICE, "/propose@CommonsTestBot more bikes https://example.org @carol_c")
        emu.send_text(GROUP, BOB, "+1", reply_to=first)
        emu.send_text(ALICE, ALICE, "/start")
        emu.edit_text(GROUP, first, "/propose more bikes")
        emu.press(GROUP, bot_message.message_id, BOB, "y")
        emu.member_joined(GROUP, BOB)
        emu.member_left(GROUP, BOB, by=CAROL)
        emu.set_member_status(GROUP, ALICE, "restricted", notify=True)
        emu.react(GROUP, first, BOB, "🔥")
        emu.set_bot_status(GROUP, "member", by=CAROL)
        updates = await bot.get_updates()
    kinds = [next(k for k in ("message", "edited_message", "callback_query", "chat_member", "my_chat_member",
                              "message_reaction") if getattr(u, k)) for u in updates]
    assert kinds == [
        "message", "message", "message", "edited_message", "callback_query", "chat_member", "message",
        "chat_member", "message", "chat_member", "message_reaction", "my_chat_member",
    ]
    problems = [p for u in updates for p in unknown_fields(u)]
    assert problems == []
    assert updates[0].message.parse_entities(["url", "mention", "bot_command"]) == {
        MessageEntity("bot_command", 0, 23): "/propose@CommonsTestBot",
        MessageEntity("url", 35, 19): "https://example.org",
        MessageEntity("mention", 55, 8): "@carol_c",
    }
    assert updates[1].message.reply_to_message.message_id == first
    assert updates[4].callback_query.message.reply_markup == keyboard
    assert updates[7].chat_member.new_chat_member.status == "kicked"
    assert isinstance(updates[9].chat_member.new_chat_member, ChatMemberRestricted)
    assert emu.errors == []


@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")
@limited
async def test_aiorate_limiter_retries_a_429(emu):
    emu.fail_next("sendMessage", retry_after=1)
    app = (
        Application.builder().token(emu.token).base_url(emu.base_url).base_file_url(emu.base_file_url)
        .rate_limiter(AIORateLimiter(max_retries=2)).build()
    )
    await app.initialize()
    try:
        await app.bot.send_message(GROUP, "eventually")
    finally:
        await app.shutdown()
    sends = [at for method, at in emu.calls if method == "sendMessage"]
    assert len(sends) == 2 and sends[1] - sends[0] >= 1.0
    assert [s["plain"] for s in emu.sent] == ["eventually"]


@limited
async def test_delete_pin_and_chat_action(emu):
    async with bot_only(emu) as bot:
        message = await bot.send_message(GROUP, "to be removed")
        assert await bot.send_chat_action(GROUP, "typing")
        assert await bot.pin_chat_message(GROUP, message.message_id)
        assert (await bot.get_chat(GROUP)).pinned_message.message_id == message.message_id
        assert await bot.delete_message(GROUP, message.message_id)
        with pytest.raises(BadRequest, match="(?i)message to delete not found"):
            await bot.delete_message(GROUP, message.message_id)
        with pytest.raises(BadRequest, match="(?i)wrong parameter action"):
            await bot.send_chat_action(GROUP, "dancing")
    assert emu.deleted[0]["message_id"] == message.message_id


# ------------------------------------------------------------------------------------------
# Membership, chats, reactions, files
# ------------------------------------------------------------------------------------------


@limited
async def test_chat_member_updates_need_allowed_updates(emu):
    changes, joins = [], []

    async def on_member(update, context):
        change = update.chat_member
        changes.append((change.new_chat_member.user.id, change.old_chat_member.status, change.new_chat_member.status))

    async def on_join(update, context):
        joins.append([u.id for u in update.message.new_chat_members])

    app = build(emu)
    app.add_handler(ChatMemberHandler(on_member, ChatMemberHandler.CHAT_MEMBER))
    app.add_handler(MessageHandler(filters.StatusUpdate.NEW_CHAT_MEMBERS, on_join))
    async with polling(app):  # default allowed_updates: no chat_member
        await emu.wait_for(lambda: any(m == "getUpdates" for m, _ in emu.calls))
        emu.member_joined(GROUP, BOB)
        await emu.wait_for(lambda: joins)
    assert changes == [] and joins == [[BOB]]
    assert any("chat_member" in d for d in emu.dropped_updates)

    app = build(emu)
    app.add_handler(ChatMemberHandler(on_member, ChatMemberHandler.CHAT_MEMBER))
    async with polling(app, allowed_updates=Update.ALL_TYPES):
        await emu.wait_for(lambda: "chat_member" in emu.allowed_updates)
        emu.member_left(GROUP, BOB)
        emu.member_joined(GROUP, CAROL)
        await emu.wait_for(lambda: len(changes) == 2)
    assert changes == [(BOB, "member", "left"), (CAROL, "left", "member")]
    assert emu.errors == []


@limited
async def test_get_chat_and_members_parse_completely(emu):
    emu.set_member_status(GROUP, ALICE, "creator")
    emu.set_member_status(GROUP, BOB, "restricted")
    async with bot_only(emu) as bot:
        chat = await bot.get_chat(GROUP)
        assert isinstance(chat, ChatFullInfo)
        assert chat.title == "Commons test group" and chat.type == "supergroup"
        assert chat.max_reaction_count == 11 and chat.permissions.can_send_messages
        assert chat.api_kwargs == {}
        private = await bot.get_chat(ALICE)
        assert private.type == "private" and private.username == "alice_commons"
        assert await bot.get_chat_member_count(GROUP) == 3
        assert isinstance(await bot.get_chat_member(GROUP, ALICE), ChatMemberOwner)
        assert isinstance(await bot.get_chat_member(GROUP, BOB), ChatMemberRestricted)
        assert isinstance(await bot.get_chat_member(GROUP, CAROL), ChatMemberLeft)
        me = await bot.get_chat_member(GROUP, bot.id)
        assert isinstance(me, ChatMemberAdministrator) and me.can_delete_messages
        emu.send_text(GROUP, CAROL, "hi")
        assert isinstance(await bot.get_chat_member(GROUP, CAROL), ChatMemberMember)
        admins = await bot.get_chat_administrators(GROUP)
        assert {a.user.id for a in admins} == {ALICE, bot.id}
        with pytest.raises(BadRequest, match="(?i)chat not found"):
            await bot.get_chat(-100999)
        with pytest.raises(BadRequest, match="(?i)user not found"):
            await bot.get_chat_member(GROUP, 555)


@limited
async def test_reactions(emu):
    async with bot_only(emu) as bot:
        message_id = emu.send_text(GROUP, ALICE, "I volunteer")
        assert await bot.set_message_reaction(GROUP, message_id, "👍")
        # with U+FE0F, as keyboards type it (PTB would send a bare "❤️" string as a custom emoji id)
        assert await bot.set_message_reaction(GROUP, message_id, ReactionTypeEmoji("❤️"))
        with pytest.raises(BadRequest, match="(?i)REACTION_INVALID"):
            await bot.set_message_reaction(GROUP, message_id, "🤖")
        with pytest.raises(BadRequest, match="(?i)REACTIONS_TOO_MANY"):
            await bot.set_message_reaction(GROUP, message_id, ["👍", "🔥"])
    assert [r["reaction"] for r in emu.reactions] == [
        [{"type": "emoji", "emoji": "👍"}],
        [{"type": "emoji", "emoji": "❤️"}],
    ]


@limited
async def test_photos_and_documents_are_stored_and_downloadable(emu):
    image = png(40, 20)
    async with bot_only(emu) as bot:
        message = await bot.send_photo(GROUP, image, caption="<b>Turnout</b> chart", parse_mode=ParseMode.HTML)
        assert message.caption == "Turnout chart"
        assert message.caption_entities == (MessageEntity("bold", 0, 7),)
        largest = message.photo[-1]
        assert (largest.width, largest.height) == (40, 20)
        downloaded = await (await bot.get_file(largest.file_id)).download_as_bytearray()
        assert bytes(downloaded) == image
        again = await bot.send_photo(GROUP, largest.file_id)  # by file_id
        assert again.photo[-1].file_unique_id == largest.file_unique_id

        doc = await bot.send_document(GROUP, b"id,votes\n1,3\n", filename="tally.csv", caption="Tally")
        assert doc.document.file_name == "tally.csv" and doc.document.file_size == 13
        downloaded = await (await bot.get_file(doc.document.file_id)).download_as_bytearray()
        assert bytes(downloaded) == b"id,votes\n1,3\n"

        with pytest.raises(BadRequest, match="(?i)message caption is too long"):
            await bot.send_photo(GROUP, image, caption="x" * 1025)
        with pytest.raises(BadRequest, match="(?i)IMAGE_PROCESS_FAILED"):
            await bot.send_photo(GROUP, b"not an image")
    assert [s["method"] for s in emu.sent] == ["sendPhoto", "sendPhoto", "sendDocument"]
    assert emu.sent[0]["file"]["bytes"] == image and emu.sent[2]["file"]["file_name"] == "tally.csv"


@limited
async def test_send_message_validation(emu):
    async with bot_only(emu) as bot:
        with pytest.raises(BadRequest, match="(?i)message text is empty"):
            await bot.send_message(GROUP, "   ")
        with pytest.raises(BadRequest, match="(?i)message text is empty"):
            await bot.send_message(GROUP, "<b></b>", parse_mode=ParseMode.HTML)
        with pytest.raises(BadRequest, match="(?i)message is too long"):
            await bot.send_message(GROUP, "a" * 4097)
        await bot.send_message(GROUP, "<b>" + "a" * 4096 + "</b>", parse_mode=ParseMode.HTML)  # tags don't count
        with pytest.raises(BadRequest, match="(?i)can't parse entities"):
            await bot.send_message(GROUP, "Tom & Jerry", parse_mode=ParseMode.HTML)
        with pytest.raises(BadRequest, match="(?i)can't parse entities"):
            await bot.send_message(GROUP, "<b>open", parse_mode=ParseMode.HTML)
        with pytest.raises(BadRequest, match="(?i)chat not found"):
            await bot.send_message(-100777, "hello")
        with pytest.raises(Forbidden, match="(?i)can't initiate conversation"):
            await bot.send_message(CAROL, "hello")  # Carol never wrote to the bot
        with pytest.raises(BadRequest, match="(?i)message to be replied not found"):
            await bot.send_message(GROUP, "re", reply_to_message_id=999)
        user_message = emu.send_text(GROUP, ALICE, "question")
        reply = await bot.send_message(GROUP, "answer", reply_to_message_id=user_message)
        assert reply.reply_to_message.text == "question"
        with pytest.raises(EndPointNotFound):
            await bot.do_api_request("noSuchMethod")
    assert emu.sent[-1]["reply_to"] == user_message


@limited
async def test_wrong_token_is_refused(emu):
    app = (
        Application.builder().token("123456:WRONG").base_url(emu.base_url).base_file_url(emu.base_file_url).build()
    )
    with pytest.raises(InvalidToken):
        await app.initialize()
    assert emu.errors == [("getMe", "Unauthorized")]


@limited
async def test_raw_http_json_form_and_query_bodies(emu):
    """Any Bot API client may send JSON, a form or a query string; answers are Telegram's envelopes."""
    url = f"{emu.base_url}{emu.token}"
    keyboard = {"inline_keyboard": [[{"text": "Join", "callback_data": "join"}]]}
    async with ClientSession() as http:
        payload = {"chat_id": GROUP, "text": "json", "reply_markup": keyboard}
        async with http.post(f"{url}/sendMessage", json=payload) as r:
            body = await r.json()
            assert r.status == 200 and body["ok"] is True
            assert body["result"]["reply_markup"] == keyboard and body["result"]["chat"]["id"] == GROUP
        form = {"chat_id": str(GROUP), "text": "<i>form</i>", "parse_mode": "HTML"}
        form["reply_markup"] = json.dumps(keyboard)
        async with http.post(f"{url}/sendMessage", data=form) as r:
            assert (await r.json())["result"]["entities"] == [{"type": "italic", "offset": 0, "length": 4}]
        async with http.get(f"{url}/getChatMemberCount", params={"chat_id": GROUP}) as r:
            assert await r.json() == {"ok": True, "result": 3}
        async with http.get(f"{url}/getMe") as r:
            assert (await r.json())["result"]["username"] == "CommonsTestBot"
        async with http.post(f"{url}/sendMessage", json={"chat_id": GROUP, "text": ""}) as r:
            assert r.status == 400
            assert await r.json() == {
                "ok": False, "error_code": 400, "description": "Bad Request: message text is empty"
            }
        async with http.post(f"{url}/noSuchMethod") as r:
            assert (r.status, await r.json()) == (404, {"ok": False, "error_code": 404, "description": "Not Found"})
        async with http.post(f"{emu.base_url}not-a-token/getMe") as r:
            assert r.status == 404
        async with http.post(f"{emu.base_url}42:AAAAwrong/getMe") as r:
            assert (r.status, (await r.json())["description"]) == (401, "Unauthorized")
        emu.fail_next("getMe", retry_after=3)
        async with http.post(f"{url}/getMe") as r:
            assert (r.status, await r.json()) == (429, {
                "ok": False, "error_code": 429, "description": "Too Many Requests: retry after 3",
                "parameters": {"retry_after": 3},
            })
    assert [s["plain"] for s in emu.sent] == ["json", "form"]
    assert emu.sent[1]["reply_markup"] == keyboard


@limited
async def test_privacy_mode_for_a_bot_that_is_not_admin(emu):
    emu.add_chat(-100555, "Plain member", bot_status="member")
    async with bot_only(emu) as bot:
        bot_message = await bot.send_message(-100555, "I am here")
        emu.send_text(-100555, ALICE, "just chatting")
        emu.send_text(-100555, ALICE, "/propose@CommonsTestBot rotate roles")
        emu.send_text(-100555, ALICE, "/other@SomeOtherBot")
        emu.send_text(-100555, BOB, "agreed", reply_to=bot_message.message_id)
        updates = await bot.get_updates()
    assert [u.message.text for u in updates] == ["/propose@CommonsTestBot rotate roles", "agreed"]
    assert [d["message"]["text"] for d in emu.dropped_updates] == ["just chatting", "/other@SomeOtherBot"]


@limited
async def test_wait_for_explains_a_timeout(emu):
    with pytest.raises(TimeoutError, match="(?i)condition not met") as caught:
        await emu.wait_for(lambda: emu.sent, timeout=0.1)
    assert "last API calls" in str(caught.value)


# ------------------------------------------------------------------------------------------
# The HTML parser on its own
# ------------------------------------------------------------------------------------------


def test_html_entities_use_utf16_offsets():
    text, entities = parse_html("😀 <b>ok</b> <i>é<u>x</u></i>")
    assert text == "😀 ok éx"
    assert entities == [
        {"type": "bold", "offset": 3, "length": 2},
        {"type": "underline", "offset": 7, "length": 1},
        {"type": "italic", "offset": 6, "length": 2},
    ]


@pytest.mark.parametrize(
    ("html", "reason"),
    [
        ("a<br>b", 'Unsupported start tag "br" at byte offset 1'),
        ("<div>x</div>", 'Unsupported start tag "div" at byte offset 0'),
        ("<b>x</i>", 'Unmatched end tag at byte offset 4, expected "</b>", found "</i>"'),
        ("<b><i>x</b></i>", 'Unmatched end tag at byte offset 7, expected "</i>", found "</b>"'),
        ("<b>x", 'Can\'t find end tag corresponding to start tag "b"'),
        ("x</b>", "Unexpected end tag at byte offset 1"),
        ("<span>x</span>", 'Tag "span" must have class "tg-spoiler" at byte offset 0'),
        ("a &foo; b", 'Unsupported HTML entity "&foo;" at byte offset 2'),
        ("<b", "Unclosed start tag at byte offset 0"),
    ],
)
def test_html_errors(html, reason):
    with pytest.raises(EntityParseError) as caught:
        parse_html(html)
    assert str(caught.value).startswith(reason)


def test_html_supported_tags():
    users = {7: {"id": 7, "is_bot": False, "first_name": "Dee"}}
    html = (
        '<strong>s</strong><em>e</em><ins>i</ins><del>d</del><strike>k</strike><tg-spoiler>p</tg-spoiler>'
        '<span class="tg-spoiler">q</span><a href="https://example.org/x?a=1&amp;b=2">l</a>'
        '<a href="tg://user?id=7">m</a><a href="tg://user?id=8">n</a><code>c</code>'
        '<pre><code class="language-python">py</code></pre><blockquote>bq</blockquote>'
        '<blockquote expandable>ex</blockquote><tg-emoji emoji-id="5368324170671202286">👍</tg-emoji>'
        '&lt;&gt;&amp;&quot;&#65;&#x42;'
    )
    text, entities = parse_html(html, user_lookup=users.get)
    assert text == 'seidkpqlmncpybqex👍<>&"AB'
    kinds = {(e["type"], text[e["offset"] : e["offset"] + e["length"]]) for e in entities}
    assert ("bold", "s") in kinds and ("italic", "e") in kinds and ("underline", "i") in kinds
    assert ("strikethrough", "d") in kinds and ("strikethrough", "k") in kinds
    assert ("spoiler", "p") in kinds and ("spoiler", "q") in kinds
    assert ("text_link", "l") in kinds and ("text_mention", "m") in kinds
    assert not any(e["type"] in ("text_link", "text_mention") and e["offset"] == 9 for e in entities)  # unknown user
    assert ("code", "c") in kinds and ("pre", "py") in kinds
    assert ("blockquote", "bq") in kinds and ("expandable_blockquote", "ex") in kinds
    link = next(e for e in entities if e["type"] == "text_link")
    assert link["url"] == "https://example.org/x?a=1&b=2"
    assert next(e for e in entities if e["type"] == "pre")["language"] == "python"
    assert next(e for e in entities if e["type"] == "text_mention")["user"]["id"] == 7
    # the result parses as PTB MessageEntity objects
    assert all(MessageEntity.de_json(e, None) for e in entities)


def test_server_side_trimming_and_found_entities():
    text, entities = finish_text("  /vote@CommonsTestBot yes #budget  \n", [{"type": "bold", "offset": 0, "length": 7}])
    assert text == "/vote@CommonsTestBot yes #budget"
    assert {"type": "bold", "offset": 0, "length": 5} in entities
    assert {"type": "bot_command", "offset": 0, "length": 20} in entities
    assert {"type": "hashtag", "offset": 25, "length": 7} in entities


def test_lenient_mode_keeps_a_bare_ampersand_like_the_server():
    assert parse_html("Tom & Jerry &foo;", strict_entities=False) == ("Tom & Jerry &foo;", [])
