"""Telegram: python-telegram-bot 22 translating between Bot API updates and the
core's events and actions. Every Telegram quirk lives here:

- commands arrive as `/cmd` or `/cmd@BotName`; with BotFather's privacy mode on
  the bot sees exactly those (and replies to it), which is all it needs;
- text goes out in HTML parse mode: no <br> (newlines are literal), mentions
  are `tg://user?id=` links, and a message is at most 4,096 characters, so
  longer ones are split on line boundaries outside any tag;
- a button press must always be answered (a private toast), and callback_data
  is at most 64 bytes (the core keeps payloads short);
- a private choice (a secret ballot) is a button opening the member's private
  chat with the bot: a `t.me/<bot>?start=<payload, base64url>` deep link, which
  Telegram delivers as `/start <token>` and which is handed over as the
  payload, marked as coming from a link (the core lets a link open a ballot,
  never cast one: anyone can craft a link);
- nothing a member says or is told privately is logged: PTB's DEBUG records of
  every request's parameters and result are dropped (`PrivateFilter`), and an
  update from a private chat is logged by its id, never its content;
- a typed `/vote` is acknowledged with a reaction on the command, never with a
  group message; tally edits are coalesced per message;
- outgoing rate limits: ~30 requests/s overall and 20 messages/min per group,
  429 `retry_after` honoured, transient network errors retried;
- an update is confirmed to Telegram only after its effects are committed, so
  a hard crash (kill -9, power cut) at any moment loses nothing. PTB's own
  `Updater` confirms a whole batch by offset while it still works through it
  in memory, and its webhook server answers 200 before the update is applied,
  so neither is used: the adapter drives `getUpdates` itself (the next
  offset is asked for only once every update of the batch was applied) and
  runs its own small aiohttp webhook (200 only once applied; 500 makes
  Telegram deliver it again);
- updates are applied one at a time, in order. One that keeps failing (the
  database is down, a bug) is retried with a growing pause; after 5 failures
  it is set aside so it no longer blocks the group, and tried once more after
  the next update that succeeds. While one is set aside a failing update is
  retried for as long as it takes (an outage, not a bad update);
- redeliveries are harmless: event ids are stable (`{chat}:{message}`,
  `cb:{query}`, member events) and the core's processed-event record ignores
  a replay; a replayed button press is still answered. Updates older than
  `history_window` (queued while the bot was down) are skipped;
- a 409 `Conflict` on getUpdates means another process polls with the same
  token (or a webhook is set): only one instance may run per bot.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import html as html_lib
import json
import logging
import re
import time
import warnings
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from html.parser import HTMLParser
from typing import Any

from aiohttp import web
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
from telegram.error import BadRequest, Conflict, Forbidden, NetworkError, RetryAfter, TelegramError, TimedOut
from telegram.ext import Application, BaseRateLimiter
from telegram.warnings import PTBUserWarning

from bot import i18n
from bot.actions import Acknowledge, Action, Choice, DirectMessage, EditMessage, SendFile, SendImage, SendMessage
from bot.adapter import Sink
from bot.events import (
    ChatRef,
    ChoiceMade,
    CommandMessage,
    MemberCount,
    MemberJoined,
    MemberLeft,
    UserRef,
    platform_kind,
)
from bot.i18n import N_, _
from bot.metrics import RATE_LIMITED, RECEIVE_ERRORS
from bot.render.text import MENTION, MENTION_SCHEME, RichText, escape, mentioned

log = logging.getLogger(__name__)

PLATFORM = "telegram"
MAX_MESSAGE = 4096
MAX_CAPTION = 1024
MAX_TOAST = 200
ACK_REACTION = "👍"
SEND_METHODS = frozenset({"sendMessage", "sendPhoto", "sendDocument"})
_USER_ID = re.compile(r"[0-9]{1,19}")  # Telegram user ids are numbers
UPDATE_TYPES = ("message", "callback_query", "chat_member", "my_chat_member")
WEBHOOK_PATH = "/telegram"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
GIVE_UP_AFTER = 5  # failed attempts before an update is set aside
LONGEST_PAUSE = 30.0  # seconds, between retries
STOP_TIMEOUT = 15.0  # seconds an update being applied may take to finish at stop
NOT_RECORDED = N_("⚠ That did not go through. Please try again.")
MAX_START = 64  # a deep link's start parameter: 1–64 of [A-Za-z0-9_-]
_START_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,64}")
_START = re.compile(r"/start(?:@(\w+))?(?:\s+(\S+))?\s*", re.IGNORECASE)


# private-vote hygiene ---------------------------------------------------------------

class PrivateFilter(logging.Filter):
    """PTB logs, at DEBUG, the parameters and the result of every Bot API call: the text of a secret
    ballot, its receipt and a member's private choices would end up in the logs. Those records are
    dropped; a response body PTB could not parse is logged by its length only."""

    CALLS = ("Calling Bot API endpoint", "Call to Bot API endpoint")

    def filter(self, record: logging.LogRecord) -> bool:
        message = str(record.msg)
        if message.startswith(self.CALLS):
            return False
        if message.startswith("Can not load invalid JSON data") and record.args:
            record.args = tuple(f"<{len(str(arg))} characters not logged>" for arg in record.args)
        return True


PRIVATE_FILTER = PrivateFilter()
# The loggers PTB 22 writes those records to: Bot._LOGGER, ExtBot._LOGGER (the one an Application's bot
# uses), and BaseRequest's module logger. A logger's filters see only the records logged on it, so each is named.
FILTERED_LOGGERS = ("telegram.Bot", "telegram.ext.ExtBot", "telegram.request.BaseRequest")


def install_log_filter() -> None:
    for name in FILTERED_LOGGERS:
        logger = logging.getLogger(name)
        if PRIVATE_FILTER not in logger.filters:
            logger.addFilter(PRIVATE_FILTER)


def start_token(payload: str) -> str:
    """A choice's payload as a deep link's start parameter: base64url without padding."""
    return base64.urlsafe_b64encode(payload.encode()).rstrip(b"=").decode()


def start_payload(text: str, username: str = "") -> str | None:
    """The payload a deep link carried (`/start <token>`), or None when `text` is not one
    (a bare /start, or a token that does not decode)."""
    match = _START.fullmatch(text.strip())
    if match is None or not match.group(2):
        return None
    if match.group(1) and username and match.group(1).lower() != username.lower():
        return None
    token = match.group(2)
    if not _START_TOKEN.fullmatch(token):
        return None
    try:
        payload = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except (binascii.Error, ValueError):
        return None
    return payload if payload.strip() and payload.isprintable() else None


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
                RATE_LIMITED.labels(PLATFORM).inc()
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

def _user_link(match: re.Match) -> str:
    user, name = mentioned(match)
    # A second bot account's platform is "telegram.<account>": its users are Telegram users too.
    if platform_kind(user.platform) != PLATFORM or not _USER_ID.fullmatch(user.user_id):
        return name  # not someone Telegram can link to: the name alone
    return f'<a href="tg://user?id={user.user_id}">{name}</a>'


def to_telegram_html(text: RichText) -> str:
    """The core's HTML subset is Telegram's too; only mentions need a Telegram link."""
    html = MENTION.sub(_user_link, text.html)
    if f'href="{MENTION_SCHEME}' in html:
        raise ValueError("a mention link that is not in the form mention() writes")
    return html


class _Depth(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.depth, self.visible = 0, 0

    def handle_starttag(self, tag, attrs) -> None:
        self.depth += 1

    def handle_endtag(self, tag) -> None:
        self.depth -= 1

    def handle_data(self, data) -> None:
        self.visible += _utf16(data)


def _utf16(text: str) -> int:
    """Telegram counts a message's length in UTF-16 code units (an emoji is two)."""
    return len(text.encode("utf-16-le")) // 2


def _visible(markup: str) -> int:
    probe = _Depth()
    probe.feed(markup)
    probe.close()
    return probe.visible


def split_html(html: str, limit: int = MAX_MESSAGE) -> list[str]:
    """Split a long message on line boundaries that are outside every tag, so each
    part is valid HTML and at most `limit` visible characters; a single line longer
    than that (a long list of voters) is cut between words outside any tag."""
    parts, current, visible = [], [], 0
    depth = _Depth()
    for line in html.split("\n"):
        width = _visible(line)
        if depth.depth == 0 and width > limit:
            if current:
                parts.append("\n".join(current))
                current, visible = [], 0
            parts.extend(_split_line(line, limit))
            depth.feed(line + "\n")
            continue
        if current and depth.depth == 0 and visible + width + 1 > limit:
            parts.append("\n".join(current))
            current, visible = [], 0
        current.append(line)
        visible += width + 1
        depth.feed(line + "\n")
    if current:
        parts.append("\n".join(current))
    return [part for part in parts if part.strip()] or [html]


_TAG_OR_TEXT = re.compile(r"(<[^>]*>)")
_TEXT_UNIT = re.compile(r"&[#\w]+;|[^&]|&")


def _split_line(line: str, limit: int) -> list[str]:
    """One line longer than `limit`: cut after the last ", " outside every tag before the limit
    (a list of names), else after the last space, else right at it; a run inside a tag that is
    itself too long goes out as plain text."""
    pieces: list[str] = []
    current, visible, depth = "", 0, 0
    comma = space = -1  # where the last ", " / space outside tags ends
    for token in _TAG_OR_TEXT.split(line):
        if token.startswith("<"):
            depth += -1 if token.startswith("</") else (0 if token.endswith("/>") else 1)
            current += token
            continue
        for unit in _TEXT_UNIT.findall(token):
            if visible + _utf16(html_lib.unescape(unit)) > limit and depth == 0:
                at = comma if comma > 0 else space if space > 0 else len(current)
                pieces.append(current[:at])
                current, comma, space = current[at:], -1, -1
                visible = _visible(current)
            current += unit
            visible += _utf16(html_lib.unescape(unit))
            if unit == " " and depth == 0:
                space = len(current)
                if current.endswith(", "):
                    comma = space
    if current:
        pieces.append(current)
    out: list[str] = []
    for piece in pieces:  # a tag that alone holds more than the limit: its text, plainly
        if _visible(piece) <= limit:
            out.append(piece)
        else:
            text = html_lib.unescape(re.sub(r"<[^>]*>", "", piece))
            out.extend(html_lib.escape(text[start:start + limit // 2], quote=False)
                       for start in range(0, len(text), limit // 2))
    return [piece for piece in out if piece.strip()]


def plain_parts(text: str, limit: int = MAX_MESSAGE) -> list[str]:
    """Plain text in parts of at most `limit` characters, split between lines where possible."""
    parts, current = [], ""
    for line in text.split("\n"):
        while len(line) > limit:
            if current:
                parts.append(current)
                current = ""
            parts.append(line[:limit])
            line = line[limit:]
        if current and len(current) + 1 + len(line) > limit:
            parts.append(current)
            current = line
        else:
            current = f"{current}\n{line}" if current else line
    parts.append(current)
    return [part for part in parts if part.strip()] or ["…"]


def render_parts(text: RichText, limit: int = MAX_MESSAGE) -> tuple[list[str], str | None]:
    """The text as Telegram HTML in parts of at most `limit`, with the parse mode to send them in;
    a text that cannot be rendered still goes out: as its plain text (parse mode None)."""
    try:
        return split_html(to_telegram_html(text), limit), ParseMode.HTML
    except Exception:
        log.exception("could not render a text as Telegram HTML; sending its plain text")
        return plain_parts(text.plain(), limit), None


def keyboard(choices: Sequence[Choice], username: str = "") -> InlineKeyboardMarkup | None:
    """Inline buttons; a private choice opens the member's private chat with the bot (`username`)."""
    if not choices:
        return None
    width = 2 if len(choices) == 4 else 3
    buttons = [_button(choice, username) for choice in choices]
    return InlineKeyboardMarkup([buttons[i:i + width] for i in range(0, len(buttons), width)])


def _button(choice: Choice, username: str) -> InlineKeyboardButton:
    if choice.private:
        token = start_token(choice.payload)
        if username and len(token) <= MAX_START:
            return InlineKeyboardButton(choice.label[:64], url=f"https://t.me/{username}?start={token}")
        # The tap then comes back from the group, and the core answers privately.
        log.warning("a private choice is a plain button: %s", "the bot's username is unknown" if not username
                    else f"its payload is {len(token)} characters as a start parameter (at most {MAX_START})")
    return InlineKeyboardButton(choice.label[:64], callback_data=choice.payload)


def message_ref(event_id: str) -> tuple[int, int] | None:
    """(chat id, message id) from an event id made by this adapter."""
    chat, __, message = event_id.rpartition(":")
    try:
        return int(chat), int(message)
    except ValueError:
        return None


# durable intake --------------------------------------------------------------------------

Incoming = Update | dict  # a parsed update, or the raw JSON of one (parsed when it is applied)


def _update_json(update: Incoming) -> str:
    """An update for the log: its JSON, unless it may come from a private chat (a secret ballot there):
    then only what kind of update it is."""
    data = update.to_dict() if isinstance(update, Update) else update
    chat_type = _chat_type(data)
    if chat_type is None or chat_type == "private":
        kinds = ", ".join(key for key in data if key != "update_id") if isinstance(data, dict) else "unknown"
        return f"a {kinds} update from a {chat_type or 'private or unknown'} chat (its content is not logged)"
    return json.dumps(data, ensure_ascii=False, default=str)[:4000]


def _chat_type(data: Any) -> str | None:
    """The type of the chat an update (as JSON) comes from, if it says."""
    if not isinstance(data, dict):
        return None
    query = data.get("callback_query")
    inner = query.get("message") if isinstance(query, dict) else next(
        (value for key, value in data.items() if key != "update_id" and isinstance(value, dict)), None)
    chat = inner.get("chat") if isinstance(inner, dict) else None
    return chat.get("type") if isinstance(chat, dict) else None


class Intake:
    """Applies updates one at a time, in the order they are offered, and says when one may be
    confirmed to Telegram: once it was applied, or given up on.

    An update whose application raised is offered again by the caller (polling: after a pause;
    webhook: Telegram delivers it again after a 500). After `give_up_after` failures it is set
    aside — confirmed, so it no longer blocks the group — and tried once more after the next
    update that is applied; if that last try fails, it is dropped (logged with its JSON unless it
    may come from a private chat, and `on_drop` is told, e.g. to answer a button press). Only one
    update is set aside at a time: when another one keeps failing meanwhile, the trouble is not the
    update (the database is down), so it is not set aside but retried for as long as it takes."""

    def __init__(self, apply: Callable[[Incoming], Awaitable[None]],
                 on_drop: Callable[[Incoming], Awaitable[None]] | None = None,
                 give_up_after: int = GIVE_UP_AFTER) -> None:
        self._apply = apply
        self._on_drop = on_drop
        self.give_up_after = give_up_after
        self._lock = asyncio.Lock()  # one update at a time: the core applies them in order anyway
        self._failures: dict[int, int] = {}
        self._aside: tuple[int, Incoming] | None = None
        self.applied = 0
        self.dropped: list[int] = []

    def failures(self, update_id: int) -> int:
        """Failed attempts so far of an update that is still being offered."""
        return self._failures.get(update_id, 0)

    async def offer(self, update_id: int, update: Incoming) -> bool:
        """Try to apply the update once; True when it may be confirmed."""
        async with self._lock:
            try:
                await self._apply(update)
            except Exception as error:
                failures = self._failures[update_id] = self._failures.get(update_id, 0) + 1
                if failures < self.give_up_after or (self._aside is not None and self._aside[0] != update_id):
                    log.warning("update %d not applied (attempt %d): %s: %s", update_id, failures,
                                type(error).__name__, error, exc_info=failures == 1)
                    return False
                del self._failures[update_id]
                self._aside = (update_id, update)
                log.error("update %d failed %d times (%s: %s); moving on so it does not block the group; it gets "
                          "one more try after the next update that is applied", update_id, failures,
                          type(error).__name__, error)
                return True
            self.applied += 1
            self._failures.pop(update_id, None)
            if self._aside is not None and self._aside[0] != update_id:
                await self._last_try()
            return True

    async def _last_try(self) -> None:
        update_id, update = self._aside
        self._aside = None
        try:
            await self._apply(update)
        except Exception:
            self.dropped.append(update_id)
            log.error("dropped update %d after %d failed attempts: %s", update_id, self.give_up_after + 1,
                      _update_json(update), exc_info=True)
            if self._on_drop is not None:
                try:
                    await self._on_drop(update)
                except Exception:
                    log.warning("could not tell about dropped update %d", update_id, exc_info=True)
        else:
            self.applied += 1
            log.warning("update %d applied on its last try", update_id)


# the adapter ----------------------------------------------------------------------------

class TelegramAdapter:
    platform = PLATFORM
    can = frozenset({"send", "edit", "ack", "image", "file", "dm"})
    paced = True  # messages may wait for the group's budget: deliver them in the background
    # A press is answered by its acknowledgement (the toast) before the update is confirmed; _on_press
    # answers it with an empty toast only when the core had nothing to say (a replay).
    acks_inline = True

    def __init__(self, token: str, *, commands: Mapping[str | None, Sequence[tuple[str, str]]] | None = None,
                 base_url: str = "",
                 base_file_url: str = "", mode: str = "polling", webhook_url: str = "", listen: str = "127.0.0.1",
                 port: int = 8443, secret_token: str = "", history_window: timedelta = timedelta(minutes=10),
                 edit_delay: float = 2.0, member_count_ttl: float = 3600.0, poll_timeout: int = 10,
                 rate_limiter: BaseRateLimiter | None = None, platform: str = PLATFORM) -> None:
        install_log_filter()
        self.platform = platform  # "telegram", or "telegram.<account>" for another bot account
        # The Application gives the Bot (with the rate limiter) and its start-up and shutdown; updates are
        # fetched and applied by this adapter, not by PTB's Updater (see the module docstring).
        builder = Application.builder().token(token).rate_limiter(rate_limiter or CommonsRateLimiter()).updater(None)
        if base_url:
            builder = builder.base_url(base_url).base_file_url(base_file_url or base_url.replace("/bot", "/file/bot"))
        self.app = builder.build()
        # The menu per Telegram language_code (None: everyone else's), as (command, description) pairs.
        self.commands = {language: list(listed) for language, listed in (commands or {}).items()}
        self.mode, self.webhook_url, self.listen, self.port = mode, webhook_url, listen, port
        self.secret_token = secret_token
        self.history_window = history_window
        self.edit_delay = edit_delay
        self.member_count_ttl = member_count_ttl
        self.poll_timeout = poll_timeout
        self._sink: Sink | None = None
        self._counted: dict[int, float] = {}
        self._answered: set[str] = set()
        self.username = ""
        self.intake = Intake(self._apply, on_drop=self._dropped)
        self._offset = 0  # the next update id to ask for: every one before it was applied
        self._poller: asyncio.Task | None = None
        self._fetching = False
        self._stopping = False
        self._stopped = asyncio.Event()
        self._web: web.AppRunner | None = None

    # lifecycle -------------------------------------------------------------------------

    async def start(self, sink: Sink) -> None:
        self._sink = sink
        self._stopping = False
        self._stopped.clear()
        await self.app.initialize()
        self.username = self.app.bot.username or ""
        await self._publish_commands()
        if self.mode == "webhook":
            await self._start_webhook()
        else:
            # getUpdates answers 409 while a webhook is set (e.g. after switching modes).
            await self.app.bot.delete_webhook(drop_pending_updates=False)
            self._poller = asyncio.create_task(self._poll(), name="telegram polling")

    async def stop(self) -> None:
        """Stop taking updates: a long poll is cancelled, an update being applied finishes first."""
        self._stopping = True
        self._stopped.set()
        if self._poller is not None:
            if self._fetching:
                self._poller.cancel()
            done, __ = await asyncio.wait({self._poller}, timeout=STOP_TIMEOUT)
            if not done:
                log.warning("an update was still being applied after %.0f s; it will be delivered again",
                            STOP_TIMEOUT)
                self._poller.cancel()
            await asyncio.gather(self._poller, return_exceptions=True)
            self._poller = None
            await self._confirm_applied()
        if self._web is not None:
            await self._web.cleanup()  # waits for a webhook request being applied
            self._web = None
        await self.app.shutdown()

    async def _publish_commands(self) -> None:
        """The menu in each language: Telegram shows a user the list for their app's language, and
        the one without a language_code to everyone else."""
        for language, listed in self.commands.items():
            commands = [BotCommand(name, summary[:256]) for name, summary in listed
                        if re.fullmatch(r"[a-z0-9_]{1,32}", name)][:100]
            if not commands:
                continue
            for scope in (BotCommandScopeAllGroupChats(), BotCommandScopeAllPrivateChats()):
                try:
                    await self.app.bot.set_my_commands(commands, scope=scope, language_code=language)
                except (BadRequest, NetworkError) as error:
                    log.warning("could not publish the command list: %s", error)

    # polling: getUpdates, driven here ----------------------------------------------------------

    async def _poll(self) -> None:
        """Ask for updates, apply each of a batch in order, and only then ask for the next batch
        with offset = last applied + 1: that request is what confirms them to Telegram."""
        errors = 0
        while not self._stopping:
            self._fetching = True
            try:
                batch = await self._fetch()
            except asyncio.CancelledError:
                if self._stopping:
                    return
                raise
            except Conflict as error:
                errors += 1
                RECEIVE_ERRORS.labels(PLATFORM).inc()
                log.error("Telegram refused getUpdates: %s. Another process is polling with this bot's token, or a "
                          "webhook is set; only one instance may run per bot. Retrying in %.0f s.", error,
                          self._pause_after(errors))
                await self._pause(self._pause_after(errors))
                continue
            except Exception as error:  # network trouble, Telegram unavailable, ...
                errors += 1
                RECEIVE_ERRORS.labels(PLATFORM).inc()
                log.warning("getUpdates failed (%s: %s); retrying in %.0f s", type(error).__name__, error,
                            self._pause_after(errors), exc_info=not isinstance(error, TelegramError))
                await self._pause(self._pause_after(errors))
                continue
            finally:
                self._fetching = False
            errors = 0
            for update_id, update in batch:
                if update_id < self._offset:
                    continue  # applied before (Telegram should not send it again; cheap to make sure)
                while not await self.intake.offer(update_id, update):
                    if self._stopping:
                        return  # not confirmed: Telegram delivers it again after the restart
                    await self._pause(self._pause_after(self.intake.failures(update_id)))
                self._offset = update_id + 1
                if self._stopping:
                    return

    async def _fetch(self) -> list[tuple[int, Incoming]]:
        bot = self.app.bot
        try:
            updates = await bot.get_updates(offset=self._offset or None, timeout=self.poll_timeout,
                                            allowed_updates=UPDATE_TYPES)
        except TelegramError:
            raise
        except Exception as error:
            # An update this PTB cannot parse (say, a newer Bot API) fails the whole batch; take the raw
            # JSON instead, so each update is parsed when it is applied and only a bad one fails.
            log.warning("a batch of updates did not parse (%s: %s); applying them one by one",
                        type(error).__name__, error)
            # PTB would rather we called get_updates, which is what just failed.
            warnings.filterwarnings("ignore", message=r"Please use 'Bot\.getUpdates'", category=PTBUserWarning)
            raw = await bot.do_api_request("getUpdates", api_kwargs={
                "offset": self._offset or None, "timeout": 0, "allowed_updates": list(UPDATE_TYPES)})
            return [(int(item["update_id"]), item) for item in raw]
        return [(update.update_id, update) for update in updates]

    async def _confirm_applied(self) -> None:
        """At a clean stop, tell Telegram what was applied, so the next start does not see it again
        (it would be ignored as a replay anyway)."""
        if not self._offset:
            return
        try:
            await self.app.bot.get_updates(offset=self._offset, limit=1, timeout=0, allowed_updates=UPDATE_TYPES,
                                           read_timeout=5)
        except Exception as error:
            log.info("could not confirm the last updates at stop (%s); they will be ignored as replays", error)

    @staticmethod
    def _pause_after(failures: int) -> float:
        return min(LONGEST_PAUSE, 2.0 ** max(failures - 1, 0))  # 1, 2, 4, 8, 16, 30, 30 … s

    async def _pause(self, seconds: float) -> None:
        """Sleep, but wake up at once when the adapter stops."""
        try:
            await asyncio.wait_for(self._stopped.wait(), seconds)
        except TimeoutError:
            pass

    # webhook: a small aiohttp server that answers 200 only once the update was applied ----------------

    async def _start_webhook(self) -> None:
        server = web.Application()
        server.router.add_post(WEBHOOK_PATH, self._on_webhook)
        # handler_cancellation stays off: an update being applied finishes even if Telegram hangs up.
        self._web = web.AppRunner(server, access_log=None, shutdown_timeout=STOP_TIMEOUT)
        await self._web.setup()
        await web.TCPSite(self._web, self.listen, self.port).start()
        await self.app.bot.set_webhook(self.webhook_url, secret_token=self.secret_token or None,
                                       allowed_updates=UPDATE_TYPES)

    async def _on_webhook(self, request: web.Request) -> web.Response:
        if self.secret_token and not hmac.compare_digest(request.headers.get(SECRET_HEADER, "").encode(),
                                                         self.secret_token.encode()):
            return web.Response(status=403)
        try:
            data = await request.json()
            update_id = int(data["update_id"])
        except (ValueError, KeyError, TypeError):
            return web.Response(status=400)
        if self._stopping:
            return web.Response(status=503)  # not applied: Telegram delivers it again
        if await self.intake.offer(update_id, data):
            return web.Response()
        return web.Response(status=500)  # Telegram delivers it again, after a pause of its own

    # applying one update ----------------------------------------------------------------------------

    async def _apply(self, update: Incoming) -> None:
        """Translate one update and hand it to the core; returns once its effects are committed."""
        if isinstance(update, dict):
            update = Update.de_json(update, self.app.bot)
        if update.message is not None:
            await self._on_text(update)
        elif update.callback_query is not None:
            await self._on_press(update)
        elif update.chat_member is not None:
            await self._on_member(update)
        elif update.my_chat_member is not None:
            await self._on_bot_membership(update)

    async def _dropped(self, update: Incoming) -> None:
        """A dropped button press is still answered, so the member knows to try again."""
        if isinstance(update, Update):
            query = update.callback_query.to_dict() if update.callback_query else {}
        else:
            query = update.get("callback_query") or {}
        if query.get("id"):
            # The core could not say which group it was, so the toast is in the member's app language.
            spoken = i18n.normalise((query.get("from") or {}).get("language_code") or "")
            with i18n.speaking(spoken):
                await self._answer(str(query["id"]), _(NOT_RECORDED))

    # inbound ---------------------------------------------------------------------------------

    def _too_old(self, when: datetime | None) -> bool:
        return when is not None and datetime.now(timezone.utc) - when > self.history_window

    async def _on_text(self, update: Update) -> None:
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
        text, linked = message.text, None
        if private:
            # A deep link (a private choice's button) arrives as `/start <token>`: the payload it carries is
            # handed over, marked as coming from a link (anyone can make one: the core lets it open a ballot,
            # not cast one). A token that does not decode goes as it is (the core answers).
            linked = start_payload(text, self.username)
            text = linked or text
        else:
            await self._refresh_member_count(chat.id)
        await self._sink(CommandMessage(
            chat=ChatRef(platform=self.platform, chat_id=str(chat.id)),
            sender=UserRef(platform=self.platform, user_id=str(user.id)), sender_name=user.full_name,
            text=text, event_id=f"{chat.id}:{message.message_id}",
            reply_to=str(message.reply_to_message.message_id) if message.reply_to_message else None,
            is_private=private, chat_title=chat.title, bot_username=self.username, via_link=linked is not None))

    async def _on_press(self, update: Update) -> None:
        query = update.callback_query
        if query is None or query.message is None:
            return
        event_id = f"cb:{query.id}"
        try:
            await self._sink(ChoiceMade(
                chat=ChatRef(platform=self.platform, chat_id=str(query.message.chat.id)),
                sender=UserRef(platform=self.platform, user_id=str(query.from_user.id)),
                sender_name=query.from_user.full_name, payload=query.data or "", event_id=event_id,
                message_id=str(query.message.message_id), is_private=query.message.chat.type == "private"))
        except BaseException:
            self._answered.discard(event_id)
            raise  # not applied: answered when a retry applies it (or by _dropped)
        answered = event_id in self._answered
        self._answered.discard(event_id)
        if not answered:  # every press must be answered, even a replayed one
            try:
                await self._answer(query.id, "")
            except TelegramError as error:  # applied all the same: nothing to retry
                log.info("callback %s not answered: %s", query.id, error)

    async def _on_member(self, update: Update) -> None:
        change = update.chat_member
        if change is None or change.new_chat_member.user.is_bot:
            return
        chat = ChatRef(platform=self.platform, chat_id=str(change.chat.id))
        member = change.new_chat_member
        user = UserRef(platform=self.platform, user_id=str(member.user.id))
        event_id = f"member:{change.chat.id}:{member.user.id}:{int(change.date.timestamp())}:{member.status}"
        if member.status in (ChatMember.MEMBER, ChatMember.ADMINISTRATOR, ChatMember.OWNER, ChatMember.RESTRICTED):
            await self._sink(MemberJoined(chat=chat, user=user, display_name=member.user.full_name,
                                          event_id=event_id))
        else:
            await self._sink(MemberLeft(chat=chat, user=user, event_id=event_id))

    async def _on_bot_membership(self, update: Update) -> None:
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
        await self._sink(MemberCount(chat=ChatRef(platform=self.platform, chat_id=str(chat_id)),
                                     count=max(count - 1, 0)))

    # outbound ------------------------------------------------------------------------------------

    @staticmethod
    def is_permanent(error: BaseException) -> bool:
        """Refusals that a retry cannot change: the message itself (400) or the chat (403: the bot
        was removed or blocked). Time-outs, network errors and 5xx are worth retrying."""
        return isinstance(error, (BadRequest, Forbidden))


    async def perform(self, action: Action, key: str | None = None) -> str | None:
        """`key` is unused: the Bot API has no idempotency key for sends."""
        if isinstance(action, SendMessage):
            return await self._send(int(action.chat.chat_id), action.text, action.choices, action.reply_to)
        if isinstance(action, Acknowledge):
            await self._acknowledge(action)
        elif isinstance(action, EditMessage):
            await self._send_edit((int(action.chat.chat_id), int(action.message_id)), action)
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

    async def _html_or_plain(self, call: Callable[[str, str | None], Coroutine[Any, Any, Any]], body: str,
                             mode: str | None) -> Any:
        """Send `body`; if Telegram cannot parse its HTML after all, send its plain text instead."""
        try:
            return await call(body, mode)
        except BadRequest as error:
            if mode is None or not self._unparsable(error):
                raise
            log.error("Telegram could not parse a text (%s); sending its plain text", error)
            return await call(plain_parts(RichText(html=body).plain())[0], None)

    async def _send(self, chat_id: int, text: RichText, choices: Sequence[Choice] = (),
                    reply_to: str | None = None) -> str:
        parts, mode = render_parts(text)
        reply = None
        if reply_to and (ref := message_ref(reply_to)) is not None:
            reply = ReplyParameters(message_id=ref[1], allow_sending_without_reply=True)
        first_id = None
        for index, part in enumerate(parts):
            replying = reply if index == 0 else None  # bound per part below
            markup = keyboard(choices, self.username) if index == len(parts) - 1 else None

            def send(body: str, parse_mode: str | None, replying=replying, markup=markup):
                return self._retrying(lambda: self.app.bot.send_message(
                    chat_id, body, parse_mode=parse_mode, reply_parameters=replying, reply_markup=markup))
            sent = await self._html_or_plain(send, part, mode)
            first_id = first_id or sent.message_id
            last_id = sent.message_id
        # Edits go to the part that carries the buttons.
        return str(last_id if choices else first_id)

    @staticmethod
    def _unparsable(error: BadRequest) -> bool:
        return "can't parse entities" in str(error).lower()

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
            await self._send(int(action.user.user_id), action.text, action.choices)
        except Forbidden:
            # Telegram lets a bot write only to people who started a private chat with it. With a
            # fallback chat the delivery layer says it there instead (its fallback text, mentioning them).
            if action.fallback_chat is not None:
                raise

    def _caption(self, caption: RichText | None) -> str | None:
        """A caption is sent as HTML, at most 1,024 visible characters (whole lines, so no tag is cut);
        if it cannot be rendered, its plain text goes, escaped (so the HTML parse mode still holds)."""
        if not caption:
            return None
        parts, mode = render_parts(caption, MAX_CAPTION)
        return parts[0] if mode else escape(parts[0])

    # edits (the delivery layer coalesces them: only the newest text of a tally goes out) -----------------

    async def _send_edit(self, key: tuple[int, int], action: EditMessage) -> None:
        def edit(body: str, parse_mode: str | None):
            return self._retrying(lambda: self.app.bot.edit_message_text(
                body, chat_id=key[0], message_id=key[1], parse_mode=parse_mode,
                reply_markup=keyboard(action.choices, self.username)))
        parts, mode = render_parts(action.text)  # an edit is one message: its first part
        try:
            await self._html_or_plain(edit, parts[0], mode)
        except BadRequest as error:
            if "not modified" not in str(error):
                log.warning("edit of %s failed: %s", key, error)

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
