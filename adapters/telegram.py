"""Telegram: python-telegram-bot 22 translating between Bot API updates and the
core's events and actions. Every Telegram quirk lives here:

- commands arrive as `/cmd` or `/cmd@BotName`; with BotFather's privacy mode on
  the bot sees exactly those (and replies to it), which is all it needs;
- text goes out in HTML parse mode: no <br> (newlines are literal), mentions
  are `tg://user?id=` links, and a message is at most 4,096 characters, so
  longer ones are split on line boundaries outside any tag;
- a button press must always be answered (a private toast), and callback_data
  is at most 64 bytes (the core keeps payloads short);
- a typed `/vote` is acknowledged with a reaction on the command, never with a
  group message; tally edits are coalesced per message;
- outgoing rate limits: ~30 requests/s overall and 20 messages/min per group,
  429 `retry_after` honoured, transient network errors retried;
- updates are confirmed by offset; the core's processed-event record ignores
  redeliveries; updates older than `history_window` (queued while the bot was
  down) are skipped.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable, Coroutine, Sequence
from datetime import datetime, timedelta, timezone
from html.parser import HTMLParser
from typing import Any

from aiolimiter import AsyncLimiter
from telegram import (
    BotCommand,
    BotCommandScopeAllGroupChats,
    BotCommandScopeAllPrivateChats,
    ChatMember,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    ReactionTypeEmoji,
    ReplyParameters,
    Update,
)
from telegram.constants import ParseMode
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TimedOut
from telegram.ext import (
    Application,
    BaseRateLimiter,
    CallbackQueryHandler,
    ChatMemberHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from adapters.edits import CoalescedEdits
from bot.actions import Acknowledge, Action, Choice, DirectMessage, EditMessage, SendFile, SendImage, SendMessage
from bot.adapter import Sink
from bot.events import ChatRef, ChoiceMade, CommandMessage, MemberCount, MemberJoined, MemberLeft, UserRef
from bot.render.text import MENTION_SCHEME, RichText

log = logging.getLogger(__name__)

PLATFORM = "telegram"
MAX_MESSAGE = 4096
MAX_TOAST = 200
ACK_REACTION = "👍"
SEND_METHODS = frozenset({"sendMessage", "sendPhoto", "sendDocument"})
_MENTION = re.compile(rf'<a href="{MENTION_SCHEME}(\d+)">')


# rate limits ---------------------------------------------------------------------

class CommonsRateLimiter(BaseRateLimiter[int]):
    """Telegram's limits as they are documented: about 30 messages a second overall and
    20 *messages* a minute per group (requests without a chat, like answering a button,
    are not messages). Edits and reactions are not messages, so they do
    not queue behind the per-group message budget (edits are coalesced anyway).
    A 429 pauses everything for `retry_after`, then the request is retried."""

    def __init__(self, overall_per_second: float = 30, group_per_minute: float = 20, max_retries: int = 5,
                 group_window: float = 60) -> None:
        self._overall = AsyncLimiter(overall_per_second, 1)
        self._group_rate, self._group_window = group_per_minute, group_window
        self._groups: dict[int | str, AsyncLimiter] = {}
        self._max_retries = max_retries
        self._paused_until = 0.0

    async def initialize(self) -> None:
        pass

    async def shutdown(self) -> None:
        pass

    def _group_limiter(self, chat_id: int | str) -> AsyncLimiter:
        limiter = self._groups.get(chat_id)
        if limiter is None:
            # One message per slot, slots a little over 60/20 s apart: any 60 s window holds
            # at most 20 even with network jitter.
            limiter = self._groups[chat_id] = AsyncLimiter(1, self._group_window / self._group_rate * 1.05)
        return limiter

    async def process_request(self, callback: Callable[..., Coroutine[Any, Any, Any]], args: Any, kwargs: Any,
                              endpoint: str, data: dict[str, Any], rate_limit_args: int | None) -> Any:
        chat_id = data.get("chat_id")
        group = None
        if endpoint in SEND_METHODS and chat_id is not None and str(chat_id).startswith("-"):
            group = self._group_limiter(int(chat_id))
        for attempt in range(self._max_retries + 1):
            await self._wait_pause()
            try:
                if chat_id is None:  # e.g. answering a button press: not a message to anyone
                    return await callback(*args, **kwargs)
                if group is not None:
                    async with group:
                        async with self._overall:
                            return await callback(*args, **kwargs)
                async with self._overall:
                    return await callback(*args, **kwargs)
            except RetryAfter as error:
                if attempt == self._max_retries:
                    raise
                delay = error.retry_after.total_seconds() if isinstance(error.retry_after, timedelta) \
                    else float(error.retry_after)
                log.warning("Telegram asked to wait %.1f s (%s); retrying", delay, endpoint)
                self._paused_until = max(self._paused_until, time.monotonic() + delay + 0.1)
        raise AssertionError("unreachable")

    async def _wait_pause(self) -> None:
        delay = self._paused_until - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)


# HTML -------------------------------------------------------------------------------

def to_telegram_html(text: RichText) -> str:
    """The core's HTML subset is Telegram's too; only mentions need a Telegram link."""
    def link(match: re.Match) -> str:
        user = text.mentions[int(match[1])]
        return f'<a href="tg://user?id={user.user_id}">'
    return _MENTION.sub(link, text.html)


class _Depth(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.depth, self.visible = 0, 0

    def handle_starttag(self, tag, attrs) -> None:
        self.depth += 1

    def handle_endtag(self, tag) -> None:
        self.depth -= 1

    def handle_data(self, data) -> None:
        self.visible += len(data)


def split_html(html: str, limit: int = MAX_MESSAGE) -> list[str]:
    """Split a long message on line boundaries that are outside every tag, so each
    part is valid HTML and at most `limit` visible characters."""
    parts, current, visible = [], [], 0
    depth = _Depth()
    for line in html.split("\n"):
        probe = _Depth()
        probe.feed(line)
        probe.close()
        if current and depth.depth == 0 and visible + probe.visible + 1 > limit:
            parts.append("\n".join(current))
            current, visible = [], 0
        current.append(line)
        visible += probe.visible + 1
        depth.feed(line + "\n")
    if current:
        parts.append("\n".join(current))
    return [part for part in parts if part.strip()] or [html]


def keyboard(choices: Sequence[Choice]) -> InlineKeyboardMarkup | None:
    if not choices:
        return None
    width = 2 if len(choices) == 4 else 3
    buttons = [InlineKeyboardButton(choice.label[:64], callback_data=choice.payload) for choice in choices]
    return InlineKeyboardMarkup([buttons[i:i + width] for i in range(0, len(buttons), width)])


def message_ref(event_id: str) -> tuple[int, int] | None:
    """(chat id, message id) from an event id made by this adapter."""
    chat, _, message = event_id.rpartition(":")
    try:
        return int(chat), int(message)
    except ValueError:
        return None


# the adapter ----------------------------------------------------------------------------

class TelegramAdapter:
    platform = PLATFORM
    can = frozenset({"send", "edit", "ack", "image", "file", "dm"})
    paced = True  # messages may wait for the group's budget: deliver them in the background

    def __init__(self, token: str, *, commands: Sequence[tuple[str, str]] = (), base_url: str = "",
                 base_file_url: str = "", mode: str = "polling", webhook_url: str = "", listen: str = "127.0.0.1",
                 port: int = 8443, secret_token: str = "", history_window: timedelta = timedelta(minutes=10),
                 edit_delay: float = 2.0, member_count_ttl: float = 3600.0, poll_timeout: int = 10,
                 rate_limiter: BaseRateLimiter | None = None) -> None:
        builder = Application.builder().token(token).rate_limiter(rate_limiter or CommonsRateLimiter())
        if base_url:
            builder = builder.base_url(base_url).base_file_url(base_file_url or base_url.replace("/bot", "/file/bot"))
        self.app = builder.build()
        self.commands = list(commands)
        self.mode, self.webhook_url, self.listen, self.port = mode, webhook_url, listen, port
        self.secret_token = secret_token
        self.history_window = history_window
        self.edit_delay = edit_delay
        self.member_count_ttl = member_count_ttl
        self.poll_timeout = poll_timeout
        self._sink: Sink | None = None
        # A burst of 300 presses becomes a handful of edits of the tally.
        self.edits: CoalescedEdits[tuple[int, int]] = CoalescedEdits(edit_delay, self._send_edit)
        self._counted: dict[int, float] = {}
        self._answered: set[str] = set()
        self.username = ""

    # lifecycle -------------------------------------------------------------------------

    async def start(self, sink: Sink) -> None:
        self._sink = sink
        app = self.app
        app.add_handler(MessageHandler(filters.TEXT & filters.UpdateType.MESSAGE, self._on_text))
        app.add_handler(CallbackQueryHandler(self._on_press))
        app.add_handler(ChatMemberHandler(self._on_member, ChatMemberHandler.CHAT_MEMBER))
        app.add_handler(ChatMemberHandler(self._on_bot_membership, ChatMemberHandler.MY_CHAT_MEMBER))
        app.add_error_handler(self._on_error)
        await app.initialize()
        self.username = app.bot.username or ""
        await self._publish_commands()
        await app.start()
        updates = ["message", "callback_query", "chat_member", "my_chat_member"]
        if self.mode == "webhook":
            await app.updater.start_webhook(listen=self.listen, port=self.port, url_path="telegram",
                                            webhook_url=self.webhook_url, secret_token=self.secret_token or None,
                                            allowed_updates=updates)
        else:
            await app.updater.start_polling(allowed_updates=updates, timeout=self.poll_timeout,
                                            drop_pending_updates=False)

    async def stop(self) -> None:
        await self.flush_edits()
        if self.app.updater and self.app.updater.running:
            await self.app.updater.stop()
        if self.app.running:
            await self.app.stop()
        await self.app.shutdown()

    async def _publish_commands(self) -> None:
        commands = [BotCommand(name, summary[:256]) for name, summary in self.commands
                    if re.fullmatch(r"[a-z0-9_]{1,32}", name)][:100]
        if not commands:
            return
        for scope in (BotCommandScopeAllGroupChats(), BotCommandScopeAllPrivateChats()):
            try:
                await self.app.bot.set_my_commands(commands, scope=scope)
            except (BadRequest, NetworkError) as error:
                log.warning("could not publish the command list: %s", error)

    # inbound ---------------------------------------------------------------------------------

    def _too_old(self, when: datetime | None) -> bool:
        return when is not None and datetime.now(timezone.utc) - when > self.history_window

    async def _on_text(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        if message is None or message.text is None or update.effective_user is None:
            return
        if self._too_old(message.date):
            log.info("skipped a message from %s sent while the bot was away", message.date)
            return
        chat, user = message.chat, update.effective_user
        if user.is_bot:
            return
        private = chat.type == "private"
        if not private:
            await self._refresh_member_count(chat.id)
        await self._sink(CommandMessage(
            chat=ChatRef(platform=PLATFORM, chat_id=str(chat.id)),
            sender=UserRef(platform=PLATFORM, user_id=str(user.id)), sender_name=user.full_name,
            text=message.text, event_id=f"{chat.id}:{message.message_id}",
            reply_to=str(message.reply_to_message.message_id) if message.reply_to_message else None,
            is_private=private, chat_title=chat.title, bot_username=self.username))

    async def _on_press(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        if query is None or query.message is None:
            return
        event_id = f"cb:{query.id}"
        try:
            await self._sink(ChoiceMade(
                chat=ChatRef(platform=PLATFORM, chat_id=str(query.message.chat.id)),
                sender=UserRef(platform=PLATFORM, user_id=str(query.from_user.id)),
                sender_name=query.from_user.full_name, payload=query.data or "", event_id=event_id,
                message_id=str(query.message.message_id)))
        finally:
            if event_id not in self._answered:  # every press must be answered, even a replayed one
                await self._answer(query.id, "")
            self._answered.discard(event_id)

    async def _on_member(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        change = update.chat_member
        if change is None or change.new_chat_member.user.is_bot:
            return
        chat = ChatRef(platform=PLATFORM, chat_id=str(change.chat.id))
        member = change.new_chat_member
        user = UserRef(platform=PLATFORM, user_id=str(member.user.id))
        event_id = f"member:{change.chat.id}:{member.user.id}:{int(change.date.timestamp())}:{member.status}"
        if member.status in (ChatMember.MEMBER, ChatMember.ADMINISTRATOR, ChatMember.OWNER, ChatMember.RESTRICTED):
            await self._sink(MemberJoined(chat=chat, user=user, display_name=member.user.full_name,
                                          event_id=event_id))
        else:
            await self._sink(MemberLeft(chat=chat, user=user, event_id=event_id))

    async def _on_bot_membership(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        change = update.my_chat_member
        if change is not None and change.new_chat_member.status in (ChatMember.MEMBER, ChatMember.ADMINISTRATOR):
            self._counted.pop(change.chat.id, None)
            await self._refresh_member_count(change.chat.id)

    async def _refresh_member_count(self, chat_id: int) -> None:
        """Quorum shares need the head count; Telegram gives a number, not a list."""
        if time.monotonic() - self._counted.get(chat_id, -1e9) < self.member_count_ttl:
            return
        self._counted[chat_id] = time.monotonic()
        try:
            count = await self.app.bot.get_chat_member_count(chat_id)
        except (BadRequest, Forbidden, NetworkError) as error:
            log.warning("member count of %s unavailable: %s", chat_id, error)
            return
        # The count includes this bot.
        await self._sink(MemberCount(chat=ChatRef(platform=PLATFORM, chat_id=str(chat_id)),
                                     count=max(count - 1, 0)))

    async def _on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        log.error("update %s failed", getattr(update, "update_id", "?"), exc_info=context.error)

    # outbound ------------------------------------------------------------------------------------

    async def perform(self, action: Action) -> str | None:
        if isinstance(action, SendMessage):
            return await self._send(int(action.chat.chat_id), action.text, action.choices, action.reply_to)
        if isinstance(action, Acknowledge):
            await self._acknowledge(action)
        elif isinstance(action, EditMessage):
            self._queue_edit(action)
        elif isinstance(action, DirectMessage):
            await self._direct(action)
        elif isinstance(action, SendImage):
            sent = await self.app.bot.send_photo(int(action.chat.chat_id), action.data, filename=action.filename,
                                                 caption=self._caption(action.caption), parse_mode=ParseMode.HTML)
            return str(sent.message_id)
        elif isinstance(action, SendFile):
            sent = await self.app.bot.send_document(int(action.chat.chat_id), action.data,
                                                    filename=action.filename, caption=self._caption(action.caption),
                                                    parse_mode=ParseMode.HTML)
            return str(sent.message_id)
        return None

    async def _send(self, chat_id: int, text: RichText, choices: Sequence[Choice] = (),
                    reply_to: str | None = None) -> str:
        parts = split_html(to_telegram_html(text))
        reply = None
        if reply_to and (ref := message_ref(reply_to)) is not None:
            reply = ReplyParameters(message_id=ref[1], allow_sending_without_reply=True)
        first_id = None
        for index, part in enumerate(parts):
            replying = reply if index == 0 else None  # bound per part below
            markup = keyboard(choices) if index == len(parts) - 1 else None
            sent = await self._retrying(lambda part=part, replying=replying, markup=markup: self.app.bot.send_message(
                chat_id, part, parse_mode=ParseMode.HTML, reply_parameters=replying, reply_markup=markup))
            first_id = first_id or sent.message_id
            last_id = sent.message_id
        # Edits go to the part that carries the buttons.
        return str(last_id if choices else first_id)

    async def _acknowledge(self, action: Acknowledge) -> None:
        if action.event_id.startswith("cb:"):
            self._answered.add(action.event_id)
            await self._answer(action.event_id[3:], action.text.plain())
            return
        ref = message_ref(action.event_id)
        if ref is None:
            return
        try:
            await self.app.bot.set_message_reaction(ref[0], ref[1], [ReactionTypeEmoji(ACK_REACTION)])
        except BadRequest as error:
            # Reactions can be switched off in a chat; a short reply is the fallback.
            log.info("reaction refused (%s); replying instead", error)
            await self._send(ref[0], action.text, reply_to=action.event_id)

    async def _answer(self, query_id: str, text: str) -> None:
        try:
            await self.app.bot.answer_callback_query(query_id, text=text[:MAX_TOAST] or None)
        except BadRequest as error:
            log.info("callback %s not answered: %s", query_id, error)

    async def _direct(self, action: DirectMessage) -> None:
        try:
            await self._send(int(action.user.user_id), action.text)
        except Forbidden:
            # Telegram lets a bot write only to people who started a private chat with it.
            if action.fallback_chat is not None:
                await self._send(int(action.fallback_chat.chat_id), action.text)

    def _caption(self, caption: RichText | None) -> str | None:
        return to_telegram_html(caption)[:1024] if caption else None

    # edits, coalesced ---------------------------------------------------------------------------------

    def _queue_edit(self, action: EditMessage) -> None:
        self.edits.queue((int(action.chat.chat_id), int(action.message_id)), action)

    async def _send_edit(self, key: tuple[int, int], action: EditMessage) -> None:
        try:
            await self._retrying(lambda: self.app.bot.edit_message_text(
                to_telegram_html(action.text)[:MAX_MESSAGE * 2], chat_id=key[0], message_id=key[1],
                parse_mode=ParseMode.HTML, reply_markup=keyboard(action.choices)))
        except BadRequest as error:
            if "not modified" not in str(error):
                log.warning("edit of %s failed: %s", key, error)

    async def flush_edits(self) -> None:
        """Send every pending edit now (at shutdown, and in tests)."""
        await self.edits.flush()

    # transient failures ---------------------------------------------------------------------------------

    async def _retrying(self, call: Callable[[], Coroutine[Any, Any, Any]], attempts: int = 4) -> Any:
        """Network hiccups are retried with backoff (429s are the rate limiter's job)."""
        for attempt in range(attempts):
            try:
                return await call()
            except (TimedOut, NetworkError) as error:
                if isinstance(error, BadRequest) or attempt == attempts - 1:  # BadRequest subclasses NetworkError
                    raise
                await asyncio.sleep(0.5 * 2 ** attempt)
        raise AssertionError("unreachable")
