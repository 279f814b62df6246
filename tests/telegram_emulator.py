"""A small Telegram Bot API server for tests.

`BotApiEmulator` is an aiohttp server on 127.0.0.1 that answers the Bot API
methods a python-telegram-bot `Application` uses, the way
https://core.telegram.org/bots/api documents them (Bot API 9.x/10.0): the same
URLs (`/bot<token>/<method>`, `/file/bot<token>/<path>`), form, multipart or
JSON bodies, `{"ok": ..., "result": ...}` answers with Telegram's error codes
and descriptions, complete objects (every field the pinned client requires),
long polling with offsets that confirm updates for good, webhooks with the
secret-token header and retries, and the validation Telegram does before it
accepts a message (HTML entities, lengths, inline buttons, reactions, command
lists).

Tests act as Telegram users through plain methods (`send_text`, `press`,
`member_joined`, ...) and inspect what the bot did (`sent`, `edits`, `answers`,
`reactions`, `commands`, `calls`, `errors`).

Where the server's behaviour is not documented the emulator follows TDLib (which
the Bot API server runs on) where known, and says so where it is stricter:

* HTML: a bare "&" that does not start a supported entity is refused (the
  documentation requires it to be escaped; the real server would keep it as
  text). Pass `strict_html_entities=False` to get the server's leniency.
* Webhooks may use plain http:// URLs on any port, as with a local Bot API
  server (`telegram-bot-api --local`); the public server requires HTTPS.
* Only parse_mode HTML is implemented; Markdown/MarkdownV2 are refused with an
  explicit error rather than accepted unchecked.
* Photo thumbnails all resolve to the uploaded bytes.
"""

from __future__ import annotations

import asyncio
import copy
import inspect
import itertools
import json
import math
import mimetypes
import re
import secrets
import struct
import time
import urllib.parse
from collections import deque
from collections.abc import Callable
from typing import Any

from aiohttp import ClientSession, ClientTimeout, web
from aiohttp.web_request import FileField

__all__ = ["BotApiEmulator", "ApiError", "EntityParseError", "parse_html"]


# --------------------------------------------------------------------------------------------
# Constants from the Bot API documentation
# --------------------------------------------------------------------------------------------

#: ReactionTypeEmoji.emoji: "Currently, it can be one of ..." (compared without U+FE0F).
ALLOWED_REACTIONS = frozenset(
    e.replace("\ufe0f", "")
    for e in [
        "👍", "👎", "❤", "🔥", "🥰", "👏", "😁", "🤔", "🤯", "😱", "🤬", "😢", "🎉", "🤩", "🤮", "💩",
        "🙏", "👌", "🕊", "🤡", "🥱", "🥴", "😍", "🐳", "❤\u200d🔥", "🌚", "🌭", "💯", "🤣", "⚡", "🍌",
        "🏆", "💔", "🤨", "😐", "🍓", "🍾", "💋", "🖕", "😈", "😴", "😭", "🤓", "👻", "👨\u200d💻", "👀",
        "🎃", "🙈", "😇", "😨", "🤝", "✍", "🤗", "🫡", "🎅", "🎄", "☃", "💅", "🤪", "🗿", "🆒", "💘",
        "🙉", "🦄", "😘", "💊", "🙊", "😎", "👾", "🤷\u200d♂", "🤷", "🤷\u200d♀", "😡",
    ]
)

#: Update types ("allowed_updates" values) of the Bot API.
UPDATE_TYPES = frozenset(
    {
        "message", "edited_message", "channel_post", "edited_channel_post", "business_connection",
        "business_message", "edited_business_message", "deleted_business_messages", "message_reaction",
        "message_reaction_count", "inline_query", "chosen_inline_result", "callback_query",
        "shipping_query", "pre_checkout_query", "purchased_paid_media", "poll", "poll_answer",
        "my_chat_member", "chat_member", "chat_join_request", "chat_boost", "removed_chat_boost",
        "managed_bot",
    }
)
#: "Specify an empty list to receive all update types except chat_member, message_reaction,
#: and message_reaction_count (default)."
NOT_BY_DEFAULT = frozenset({"chat_member", "message_reaction", "message_reaction_count"})

CHAT_ACTIONS = frozenset(
    {
        "typing", "upload_photo", "record_video", "upload_video", "record_voice", "upload_voice",
        "upload_document", "choose_sticker", "find_location", "record_video_note", "upload_video_note",
    }
)

INLINE_BUTTON_ACTIONS = (
    "url", "callback_data", "web_app", "login_url", "switch_inline_query",
    "switch_inline_query_current_chat", "switch_inline_query_chosen_chat", "copy_text", "callback_game", "pay",
)

MESSAGE_LIMIT = 4096
CAPTION_LIMIT = 1024
CALLBACK_ANSWER_LIMIT = 200
CALLBACK_DATA_LIMIT = 64
MAX_COMMANDS = 100
UPLOAD_LIMIT = 50 * 1024 * 1024
PHOTO_LIMIT = 10 * 1024 * 1024
DOWNLOAD_LIMIT = 20 * 1024 * 1024

NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are exactly the same "
    "as a current content and reply markup of the message"
)
QUERY_TOO_OLD = "query is too old and response timeout expired or query ID is invalid"


class ApiError(Exception):
    """An error answer: HTTP status == error_code, as Telegram sends them."""

    def __init__(self, code: int, description: str, parameters: dict | None = None):
        super().__init__(description)
        self.code = code
        self.description = description
        self.parameters = parameters


def _bad(message: str) -> ApiError:
    return ApiError(400, f"Bad Request: {message}")


def _forbidden(message: str) -> ApiError:
    return ApiError(403, f"Forbidden: {message}")


# --------------------------------------------------------------------------------------------
# Text: HTML parsing (a port of TDLib's parse_html) and entity detection
# --------------------------------------------------------------------------------------------


class EntityParseError(Exception):
    """The text is not valid Telegram HTML; str() is the reason TDLib would give."""


_HTML_TAGS = frozenset(
    {
        "a", "b", "strong", "i", "em", "s", "strike", "del", "u", "ins", "tg-spoiler", "tg-emoji",
        "span", "pre", "code", "blockquote", "tg-time",
    }
)
_NAMED_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_SPACES = " \t\r\n\0\v"
_TIME_FORMAT = re.compile(r"r|w?[dD]?[tT]?")


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _byte_offset(text: str, index: int) -> int:
    return len(text[:index].encode("utf-8", "surrogatepass"))


def _decode_entity(text: str, pos: int) -> tuple[int, int]:
    """TDLib's decode_html_entity: (code point or 0, position after the entity)."""
    n = len(text)

    def at(i: int) -> str:
        return text[i] if i < n else "\0"

    end = pos + 1
    code = 0
    if at(pos + 1) == "#":
        end += 1
        if at(pos + 2) == "x":
            end += 1
            while at(end) in "0123456789abcdefABCDEF" and at(end) != "\0":
                code = code * 16 + int(at(end), 16)
                end += 1
        else:
            while "0" <= at(end) <= "9":
                code = code * 10 + int(at(end))
                end += 1
        if code == 0 or code >= 0x10FFFF or end - pos >= 10:
            return 0, pos
    else:
        while at(end).isascii() and at(end).isalpha():
            end += 1
        name = text[pos + 1 : end]
        if name not in _NAMED_ENTITIES:
            return 0, pos
        code = ord(_NAMED_ENTITIES[name])
    if at(end) == ";":
        end += 1
    return code, end


def _link_user_id(url: str) -> int | None:
    match = re.fullmatch(r"tg:(?://)?user\?id=(\d{1,19})", url.strip(), flags=re.IGNORECASE)
    return int(match.group(1)) if match else None


def _checked_link(url: str) -> str | None:
    """A simplified LinkManager::get_checked_link: None when Telegram would drop the link."""
    url = url.strip()
    if not url or any(c.isspace() for c in url):
        return None
    match = re.match(r"([A-Za-z][A-Za-z0-9+.-]*):", url)
    if match:
        scheme = match.group(1).lower()
        if scheme in ("tg", "ton"):
            return url
        if scheme not in ("http", "https", "ftp"):
            return None
    else:
        url = "http://" + url
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if not host or not re.fullmatch(r"[A-Za-z0-9\-._~%\u0080-\U0010ffff]+", host):
        return None
    if host.startswith(".") or host.endswith("-") or ".." in host:
        return None
    if parts.path == "" and not parts.query and not parts.fragment:
        url += "/"
    return url


def parse_html(
    text: str,
    *,
    strict_entities: bool = True,
    user_lookup: Callable[[int], dict | None] | None = None,
) -> tuple[str, list[dict]]:
    """Parse Telegram HTML into (plain text, MessageEntity dicts with UTF-16 offsets).

    Follows TDLib's parse_html, including its error messages (raised as
    EntityParseError). With `strict_entities`, a "&" that does not start one of
    the supported entities (&lt; &gt; &amp; &quot; and numeric ones) is an error,
    as the documentation requires it to be escaped."""
    n = len(text)

    def at(i: int) -> str:
        return text[i] if i < n else "\0"

    def is_space(c: str) -> bool:
        return c in _SPACES

    out: list[str] = []
    u16 = 0
    entities: list[dict] = []
    stack: list[dict] = []
    surrogate = False
    i = 0
    while i < n:
        c = text[i]
        if c == "&":
            code, after = _decode_entity(text, i)
            if code:
                if 0xD800 <= code <= 0xDFFF:
                    surrogate = True
                out.append(chr(code))
                u16 += 2 if code > 0xFFFF else 1
                i = after
                continue
            if strict_entities:
                name = re.match(r"&#?[A-Za-z0-9]*;?", text[i:]).group(0)
                raise EntityParseError(
                    f'Unsupported HTML entity "{name}" at byte offset {_byte_offset(text, i)}: '
                    'the Bot API requires "&" to be escaped as "&amp;"'
                )
        if c != "<":
            out.append(c)
            u16 += 2 if ord(c) > 0xFFFF else 1
            i += 1
            continue

        begin = i
        begin_byte = _byte_offset(text, begin)
        i += 1
        if at(i) != "/":
            while not is_space(at(i)) and at(i) != ">":
                i += 1
            if at(i) == "\0":
                raise EntityParseError(f"Unclosed start tag at byte offset {begin_byte}")
            tag = text[begin + 1 : i].lower()
            if tag not in _HTML_TAGS:
                raise EntityParseError(f'Unsupported start tag "{tag}" at byte offset {begin_byte}')
            argument = ""
            extra: dict[str, Any] = {}
            while at(i) != ">":
                while at(i) != "\0" and is_space(at(i)):
                    i += 1
                if at(i) == ">":
                    break
                attribute_begin = i
                while not is_space(at(i)) and at(i) not in "=>/\"'":
                    i += 1
                attribute = text[attribute_begin:i]
                if not attribute:
                    raise EntityParseError(f'Empty attribute name in the tag "{tag}" at byte offset {begin_byte}')
                while at(i) != "\0" and is_space(at(i)):
                    i += 1
                if at(i) != "=":
                    if at(i) == "\0":
                        raise EntityParseError(f'Unclosed start tag "{tag}" at byte offset {begin_byte}')
                    if tag == "blockquote" and attribute == "expandable":
                        argument = "1"
                    continue
                i += 1
                while at(i) != "\0" and is_space(at(i)):
                    i += 1
                if at(i) == "\0":
                    raise EntityParseError(f'Unclosed start tag "{tag}" at byte offset {begin_byte}')
                if at(i) not in "'\"":
                    token_begin = i
                    while (at(i).isascii() and at(i).isalnum()) or at(i) in ".-":
                        i += 1
                    value = text[token_begin:i].lower()
                    if not is_space(at(i)) and at(i) != ">":
                        raise EntityParseError(
                            f"Unexpected end of name token at byte offset {_byte_offset(text, token_begin)}"
                        )
                else:
                    quote = at(i)
                    i += 1
                    buf: list[str] = []
                    while at(i) != quote and at(i) != "\0":
                        if at(i) == "&":
                            code, after = _decode_entity(text, i)
                            if code:
                                buf.append(chr(code))
                                i = after
                                continue
                        buf.append(at(i))
                        i += 1
                    if at(i) == quote:
                        i += 1
                    value = "".join(buf)
                if at(i) == "\0":
                    raise EntityParseError(f"Unclosed start tag at byte offset {begin_byte}")
                if tag == "a" and attribute == "href":
                    argument = value
                elif tag == "code" and attribute == "class" and value.startswith("language-"):
                    argument = value[len("language-") :]
                elif tag == "span" and attribute == "class" and value.startswith("tg-"):
                    argument = value[len("tg-") :]
                elif tag == "tg-emoji" and attribute == "emoji-id":
                    argument = value
                elif tag == "blockquote" and attribute == "expandable":
                    argument = "1"
                elif tag == "tg-time" and attribute in ("unix", "format"):
                    extra[attribute] = value
            if tag == "span" and argument != "spoiler":
                raise EntityParseError(f'Tag "span" must have class "tg-spoiler" at byte offset {begin_byte}')
            stack.append({"tag": tag, "argument": argument, "extra": extra, "u16": u16, "out": len(out)})
            i += 1  # the ">"
            continue

        # an end tag
        if not stack:
            raise EntityParseError(f"Unexpected end tag at byte offset {begin_byte}")
        while not is_space(at(i)) and at(i) != ">":
            i += 1
        end_tag = text[begin + 2 : i].lower()
        while is_space(at(i)) and at(i) != "\0":
            i += 1
        if at(i) != ">":
            raise EntityParseError(f"Unclosed end tag at byte offset {begin_byte}")
        top = stack[-1]
        tag = top["tag"]
        if end_tag and end_tag != tag:
            raise EntityParseError(
                f'Unmatched end tag at byte offset {begin_byte}, expected "</{tag}>", found "</{end_tag}>"'
            )
        if u16 > top["u16"]:
            offset, length = top["u16"], u16 - top["u16"]
            simple = {
                "i": "italic", "em": "italic", "b": "bold", "strong": "bold", "s": "strikethrough",
                "strike": "strikethrough", "del": "strikethrough", "u": "underline", "ins": "underline",
                "tg-spoiler": "spoiler", "span": "spoiler",
            }
            if tag in simple:
                entities.append({"type": simple[tag], "offset": offset, "length": length})
            elif tag == "tg-emoji":
                if not re.fullmatch(r"\d{1,19}", top["argument"]) or int(top["argument"]) == 0:
                    raise EntityParseError("Invalid custom emoji identifier specified")
                entities.append(
                    {"type": "custom_emoji", "offset": offset, "length": length, "custom_emoji_id": top["argument"]}
                )
            elif tag == "a":
                url = top["argument"] or "".join(out[top["out"] :])
                user_id = _link_user_id(url)
                if user_id is not None:
                    user = user_lookup(user_id) if user_lookup else None
                    if user is not None:  # mentions of users the bot can't see are dropped
                        entities.append({"type": "text_mention", "offset": offset, "length": length, "user": user})
                else:
                    checked = _checked_link(url)
                    if checked:
                        entities.append({"type": "text_link", "offset": offset, "length": length, "url": checked})
            elif tag == "pre":
                last = entities[-1] if entities else None
                if (
                    last and last["type"] == "code" and last["offset"] == offset
                    and last["length"] == length and last.get("_language")
                ):
                    last["type"] = "pre"
                    last["language"] = last.pop("_language")
                else:
                    entities.append({"type": "pre", "offset": offset, "length": length})
            elif tag == "code":
                last = entities[-1] if entities else None
                if (
                    last and last["type"] == "pre" and last["offset"] == offset
                    and last["length"] == length and top["argument"]
                ):
                    last["language"] = top["argument"]
                else:
                    entity = {"type": "code", "offset": offset, "length": length}
                    if top["argument"]:
                        entity["_language"] = top["argument"]
                    entities.append(entity)
            elif tag == "blockquote":
                kind = "expandable_blockquote" if top["argument"] else "blockquote"
                entities.append({"type": kind, "offset": offset, "length": length})
            elif tag == "tg-time":
                unix = top["extra"].get("unix", "")
                if not re.fullmatch(r"-?\d{1,12}", unix):
                    raise EntityParseError("Invalid Unix time specified in the tag \"tg-time\"")
                entity = {"type": "date_time", "offset": offset, "length": length, "unix_time": int(unix)}
                fmt = top["extra"].get("format")
                if fmt:
                    if not _TIME_FORMAT.fullmatch(fmt):
                        raise EntityParseError(f'Invalid date and time format "{fmt}" specified')
                    entity["date_time_format"] = fmt
                entities.append(entity)
        stack.pop()
        i += 1  # the ">"
    if stack:
        raise EntityParseError(f'Can\'t find end tag corresponding to start tag "{stack[-1]["tag"]}"')
    if surrogate:
        raise EntityParseError(
            "Text contains invalid Unicode characters after decoding HTML entities, check for unmatched "
            "surrogate code units"
        )
    for entity in entities:
        entity.pop("_language", None)
    return "".join(out), entities


_PRIORITY = {
    "mention": 50, "hashtag": 50, "bot_command": 50, "url": 50, "email": 50, "cashtag": 50, "phone_number": 50,
    "bold": 90, "italic": 91, "code": 20, "pre": 11, "text_link": 49, "text_mention": 49, "underline": 92,
    "strikethrough": 93, "blockquote": 0, "expandable_blockquote": 0, "spoiler": 94, "custom_emoji": 99,
    "date_time": 50,
}
_SPLITTABLE = {"bold", "italic", "underline", "strikethrough", "spoiler"}
_AUTO_REGEXES = [
    ("email", re.compile(r"(?<![\w.+-])[A-Za-z0-9][A-Za-z0-9._+-]*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b")),
    ("url", re.compile(r"(?<![\w@/.])(?:https?://|www\.)[^\s<>\"]+", re.IGNORECASE)),
    ("bot_command", re.compile(r"(?<![\w/<>])/[A-Za-z0-9_]{1,64}(?:@[A-Za-z0-9_]{3,32})?(?![\w/<>@])")),
    ("mention", re.compile(r"(?<![\w@])@[A-Za-z0-9_]{5,32}(?![\w@])")),
    ("hashtag", re.compile(r"(?<![\w#])#\w{1,256}(?![\w#])")),
    ("cashtag", re.compile(r"(?<![\w$])\$[A-Z]{1,8}(?![\w$])")),
]


def _sort_key(entity: dict) -> tuple:
    return (entity["offset"], -entity["length"], _PRIORITY.get(entity["type"], 50))


def find_entities(text: str) -> list[dict]:
    """Entities Telegram finds on its own (an approximation of TDLib's find_entities)."""
    found: list[dict] = []
    prefix = [0]
    for ch in text:
        prefix.append(prefix[-1] + (2 if ord(ch) > 0xFFFF else 1))
    taken: list[tuple[int, int]] = []
    for kind, regex in _AUTO_REGEXES:
        for match in regex.finditer(text):
            start, end = match.span()
            if kind == "url":
                while end > start and text[end - 1] in ".,;:!?)'":
                    end -= 1
            if kind == "hashtag" and not any(ch.isalpha() for ch in text[start + 1 : end]):
                continue
            if any(start < b and a < end for a, b in taken):
                continue
            taken.append((start, end))
            found.append({"type": kind, "offset": prefix[start], "length": prefix[end] - prefix[start]})
    return found


def _overlaps(a: dict, b: dict) -> bool:
    return a["offset"] < b["offset"] + b["length"] and b["offset"] < a["offset"] + a["length"]


def _inside(inner: dict, outer: dict) -> bool:
    return outer["offset"] <= inner["offset"] and inner["offset"] + inner["length"] <= outer["offset"] + outer["length"]


def finish_text(plain: str, entities: list[dict]) -> tuple[str, list[dict]]:
    """What the server does after parsing: trim surrounding whitespace (moving the entities),
    drop entities Telegram does not allow inside code/pre or nested quotes, add the entities it
    finds itself (commands, mentions, links, ...) and sort them like TDLib."""
    spaces = " \t\r\n\v\f"
    stripped = plain.strip(spaces)
    if not stripped:
        return "", []
    lead = len(plain) - len(plain.lstrip(spaces))
    lead16 = utf16_len(plain[:lead])
    end16 = lead16 + utf16_len(stripped)
    kept: list[dict] = []
    for entity in entities:
        start = max(entity["offset"], lead16)
        end = min(entity["offset"] + entity["length"], end16)
        if end > start:
            moved = dict(entity)
            moved["offset"], moved["length"] = start - lead16, end - start
            kept.append(moved)
    codes = [e for e in kept if e["type"] in ("code", "pre")]
    quotes = [e for e in kept if e["type"] in ("blockquote", "expandable_blockquote")]
    result = []
    for entity in kept:
        if entity["type"] not in ("code", "pre") and any(_inside(entity, c) for c in codes):
            continue  # nothing can be part of code or pre
        if entity["type"] in ("code", "pre") and any(c is not entity and _inside(entity, c) for c in codes):
            continue
        if any(q is not entity and _inside(entity, q) for q in quotes) and entity["type"] in (
            "blockquote", "expandable_blockquote"
        ):
            continue  # block quotes can't be nested
        result.append(entity)
    blocking = [e for e in result if e["type"] not in _SPLITTABLE | {"blockquote", "expandable_blockquote"}]
    for entity in find_entities(stripped):
        if not any(_overlaps(entity, other) for other in blocking):
            result.append(entity)
    result.sort(key=_sort_key)
    return stripped, result


# --------------------------------------------------------------------------------------------
# Images
# --------------------------------------------------------------------------------------------


def image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) of a PNG, JPEG or GIF image, None for anything else."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        return struct.unpack(">II", data[16:24])
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        return struct.unpack("<HH", data[6:10])
    if data[:2] == b"\xff\xd8":
        i = 2
        while i + 9 < len(data):
            if data[i] != 0xFF:
                return None
            marker = data[i + 1]
            if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
                i += 2
                continue
            (length,) = struct.unpack(">H", data[i + 2 : i + 4])
            if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
                height, width = struct.unpack(">HH", data[i + 5 : i + 9])
                return width, height
            i += 2 + length
    return None


# --------------------------------------------------------------------------------------------
# State
# --------------------------------------------------------------------------------------------


class _Chat:
    def __init__(self, chat_id: int, type: str, title: str | None, username: str | None, member_count: int):
        self.id = chat_id
        self.type = type
        self.title = title
        self.username = username
        self.member_count = member_count
        self.members: dict[int, str] = {}  # user id -> status (creator/administrator/member/restricted/left/kicked)
        self.bot_status = "member"
        self.next_message_id = 1
        self.messages: dict[int, dict] = {}
        self.pinned: int | None = None
        self.started = False  # private chats: the user has written to the bot
        self.blocked = False  # private chats: the user blocked the bot
        self.reactions: dict[tuple[int, int], list[dict]] = {}  # (message id, user id) -> reactions
        self.sent_times: deque[float] = deque()

    @property
    def is_group(self) -> bool:
        return self.type in ("group", "supergroup")


class _Params:
    """Request parameters, from a query string, a form, a multipart body or a JSON object."""

    def __init__(self, raw: dict[str, Any]):
        self.raw = raw

    def present(self, name: str) -> bool:
        value = self.raw.get(name)
        return value is not None and value != ""

    def str(self, name: str) -> str | None:
        value = self.raw.get(name)
        if value is None or isinstance(value, FileField):
            return None
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, (dict, list)):
            return json.dumps(value)
        return str(value)

    def int(self, name: str, default: int | None = None) -> int | None:
        value = self.raw.get(name)
        if value is None or value == "":
            return default
        if isinstance(value, bool):
            return int(value)
        if isinstance(value, (int, float)):
            return int(value)
        try:
            return int(float(str(value).strip()))
        except ValueError:
            raise _bad(f"field \"{name}\" must be of type Integer") from None

    def float(self, name: str, default: float = 0.0) -> float:
        value = self.raw.get(name)
        if value is None or value == "":
            return default
        try:
            return float(value)
        except (TypeError, ValueError):
            raise _bad(f"field \"{name}\" must be of type Number") from None

    def bool(self, name: str) -> bool:
        value = self.raw.get(name)
        if isinstance(value, bool):
            return value
        if isinstance(value, (int, float)):
            return bool(value)
        return str(value).strip().lower() in ("true", "1") if value is not None else False

    def json(self, name: str, what: str | None = None) -> Any:
        value = self.raw.get(name)
        if value is None or value == "":
            return None
        if isinstance(value, (dict, list)):
            return value
        if isinstance(value, FileField):
            raise _bad(f"can't parse {what or name} JSON object")
        try:
            return json.loads(str(value))
        except ValueError:
            raise _bad(f"can't parse {what or name} JSON object") from None


# --------------------------------------------------------------------------------------------
# The emulator
# --------------------------------------------------------------------------------------------


class BotApiEmulator:
    """A Telegram Bot API server for one bot, plus the users and chats around it."""

    def __init__(
        self,
        token: str = "123456:TEST-TOKEN",
        bot_username: str = "CommonsTestBot",
        bot_id: int = 999,
        *,
        bot_first_name: str = "Commons",
        privacy_mode: bool = True,
        strict_html_entities: bool = True,
        enforce_rate_limits: bool = False,
        callback_query_ttl: float | None = None,
        webhook_retry_delay: float = 0.2,
    ):
        self.token = token
        self.bot_id = bot_id
        self.bot_username = bot_username
        self.bot_first_name = bot_first_name
        self.privacy_mode = privacy_mode
        self.strict_html_entities = strict_html_entities
        self.enforce_rate_limits = enforce_rate_limits
        self.callback_query_ttl = callback_query_ttl
        self.webhook_retry_delay = webhook_retry_delay

        self.host = "127.0.0.1"
        self.port: int | None = None
        self.base_url = ""
        self.base_file_url = ""

        # inspection
        self.sent: list[dict] = []
        self.edits: list[dict] = []
        self.answers: dict[str, dict] = {}
        self.reactions: list[dict] = []
        self.commands: dict[str, list[dict]] = _CommandScopes()
        self.calls: list[tuple[str, float]] = []
        self.errors: list[tuple[str, str]] = []
        self.deleted: list[dict] = []
        self.dropped_updates: list[dict] = []  # updates Telegram would not have delivered (allowed_updates, privacy)
        self.webhook_deliveries: list[dict] = []  # {"update_id", "status", "at"} per webhook POST attempt

        # world
        self._users: dict[int, dict] = {}
        self._chats: dict[int, _Chat] = {}
        self._callbacks: dict[str, dict] = {}
        self._files: dict[str, dict] = {}  # file_id -> {"bytes", "unique_id", "path", ...}
        self._file_paths: dict[str, str] = {}  # file_path -> file_id
        self._fail: dict[str, deque[int]] = {}
        self._ids = itertools.count(1)

        # updates
        self._updates: list[dict] = []
        self._next_update_id = 100_000_001
        self._allowed: frozenset[str] = UPDATE_TYPES - NOT_BY_DEFAULT
        self._poller: object | None = None
        self._changed: asyncio.Event | None = None
        self._closing = False
        self._global_sent: deque[float] = deque()

        # webhook
        self._webhook: dict | None = None
        self._webhook_error: tuple[int, str] | None = None
        self._webhook_task: asyncio.Task | None = None
        self._session: ClientSession | None = None

        self._runner: web.AppRunner | None = None
        self._methods: dict[str, Callable] = {
            name[len("_m_") :].lower(): getattr(self, name) for name in dir(self) if name.startswith("_m_")
        }

    # ---------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        app = web.Application(client_max_size=UPLOAD_LIMIT + 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle_api)
        app.router.add_route("*", "/bot{token}/", self._handle_no_method)
        app.router.add_route("GET", "/file/bot{token}/{path:.+}", self._handle_file)
        self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        self.base_url = f"http://{self.host}:{self.port}/bot"
        self.base_file_url = f"http://{self.host}:{self.port}/file/bot"
        self._closing = False
        self._session = ClientSession(timeout=ClientTimeout(total=10))
        self._webhook_task = asyncio.create_task(self._webhook_loop(), name="BotApiEmulator webhook delivery")

    async def stop(self) -> None:
        self._closing = True
        self._notify()
        if self._webhook_task:
            self._webhook_task.cancel()
            try:
                await self._webhook_task
            except (asyncio.CancelledError, Exception):
                pass
            self._webhook_task = None
        if self._session:
            await self._session.close()
            self._session = None
        if self._runner:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> BotApiEmulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ---------------------------------------------------------------- the world (driver API)

    def add_user(
        self,
        user_id: int,
        first_name: str,
        username: str | None = None,
        is_bot: bool = False,
        *,
        last_name: str | None = None,
        language_code: str | None = None,
    ) -> dict:
        """Register a Telegram user; returns the User object."""
        if user_id <= 0:
            raise ValueError("Telegram user ids are positive")
        user: dict[str, Any] = {"id": user_id, "is_bot": is_bot, "first_name": first_name}
        if last_name:
            user["last_name"] = last_name
        if username:
            user["username"] = username
        if language_code:
            user["language_code"] = language_code
        self._users[user_id] = user
        return dict(user)

    def add_chat(
        self,
        chat_id: int,
        title: str | None = None,
        type: str = "supergroup",
        member_count: int = 3,
        *,
        username: str | None = None,
        bot_status: str = "administrator",
    ) -> dict:
        """Register a chat the bot is in; returns the Chat object.

        Groups have negative ids. The bot is an administrator by default (so it
        sees every message and receives chat_member updates, as Telegram does for
        admin bots); pass bot_status="member" to get privacy mode's filtering. A
        private chat (type="private", chat_id == the user's id) means the user has
        started the bot."""
        if type not in ("private", "group", "supergroup", "channel"):
            raise ValueError(f"unknown chat type {type!r}")
        if type == "private":
            if chat_id not in self._users:
                self.add_user(chat_id, title or f"User {chat_id}")
            chat = self._private_chat(chat_id)
            chat.started = True
            return self._chat_json(chat)
        if chat_id >= 0:
            raise ValueError("group and channel chat ids are negative in the Bot API (e.g. -100123456789)")
        if bot_status not in ("administrator", "member", "left", "kicked"):
            raise ValueError(f"unknown bot status {bot_status!r}")
        chat = _Chat(chat_id, type, title or f"Chat {chat_id}", username, member_count)
        chat.bot_status = bot_status
        self._chats[chat_id] = chat
        return self._chat_json(chat)

    def set_member_status(self, chat_id: int, user_id: int, status: str, *, notify: bool = False) -> None:
        """Make a user creator/administrator/member/restricted/left/kicked in a group.
        With notify, a chat_member update is sent (as when an admin changes it)."""
        if status not in ("creator", "administrator", "member", "restricted", "left", "kicked"):
            raise ValueError(f"unknown status {status!r}")
        chat = self._group(chat_id)
        user = self._user(user_id)
        old = self._member_json(chat, user_id)
        chat.members[user_id] = status
        if notify:
            self._chat_member_update(chat, user, old, self._member_json(chat, user_id))

    def set_bot_status(self, chat_id: int, status: str, *, by: int | None = None) -> None:
        """Change the bot's own status in a group (added, promoted, removed): a my_chat_member update,
        plus the new_chat_members / left_chat_member service message when it joins or leaves."""
        if status not in ("administrator", "member", "left", "kicked"):
            raise ValueError(f"unknown bot status {status!r}")
        chat = self._group(chat_id)
        actor = self._user(by) if by is not None else self._bot_short()
        old = self._member_json(chat, self.bot_id)
        was_in = chat.bot_status in ("administrator", "member")
        chat.bot_status = status
        new = self._member_json(chat, self.bot_id)
        self._enqueue(
            "my_chat_member",
            {"chat": self._chat_json(chat), "from": actor, "date": int(time.time()),
             "old_chat_member": old, "new_chat_member": new},
        )
        is_in = status in ("administrator", "member")
        if is_in and not was_in:
            self._service_message(chat, actor, {"new_chat_members": [self._bot_short()]})

    def send_text(
        self, chat_id: int, user_id: int, text: str, reply_to: int | None = None, date: int | None = None
    ) -> int:
        """A user writes `text` in a chat (chat_id == user_id: the private chat with the bot).
        Enqueues the "message" update Telegram would deliver; returns the message id."""
        user = self._user(user_id)
        if chat_id == user_id:
            chat = self._private_chat(user_id)
            chat.started = True
            chat.blocked = False
        else:
            chat = self._group(chat_id)
            status = chat.members.get(user_id)
            if status in ("left", "kicked"):
                raise ValueError(f"user {user_id} is {status!r} in chat {chat_id} and can't write there")
            if status is None:
                chat.members[user_id] = "member"
        if not text or not text.strip():
            raise ValueError("Telegram clients don't send empty messages")
        if len(text) > MESSAGE_LIMIT:
            raise ValueError("Telegram clients split messages longer than 4096 characters")
        text, entities = finish_text(text, [])
        message: dict[str, Any] = {
            "message_id": self._new_message_id(chat),
            "from": dict(user),
            "chat": self._chat_json(chat),
            "date": int(date if date is not None else time.time()),
            "text": text,
        }
        if entities:
            message["entities"] = entities
        replied = None
        if reply_to is not None:
            replied = chat.messages.get(reply_to)
            if replied is None:
                raise ValueError(f"no message {reply_to} in chat {chat_id} to reply to")
            message["reply_to_message"] = self._without_reply(replied)
        chat.messages[message["message_id"]] = message
        if self._sees_message(chat, message, replied):
            self._enqueue("message", message)
        else:
            reason = "privacy mode" if chat.bot_status in ("administrator", "member") else "the bot is not in the chat"
            self.dropped_updates.append({"message": copy.deepcopy(message), "reason": reason})
        return message["message_id"]

    def edit_text(self, chat_id: int, message_id: int, text: str) -> None:
        """The author edits their message: an edited_message update."""
        chat = self._chat_by_id(chat_id)
        message = chat.messages.get(message_id)
        if message is None or message["from"]["id"] == self.bot_id:
            raise ValueError(f"no user message {message_id} in chat {chat_id}")
        text, entities = finish_text(text, [])
        if not text:
            raise ValueError("Telegram clients don't send empty messages")
        message["text"] = text
        message.pop("entities", None)
        if entities:
            message["entities"] = entities
        message["edit_date"] = int(time.time())
        replied = None
        if "reply_to_message" in message:
            replied = chat.messages.get(message["reply_to_message"]["message_id"])
        if self._sees_message(chat, message, replied):
            self._enqueue("edited_message", message)

    def press(self, chat_id: int, message_id: int, user_id: int, data: str) -> str:
        """A user taps the inline button with callback data `data` on a bot message.
        Enqueues the callback_query update; returns the callback query id."""
        user = self._user(user_id)
        chat = self._private_chat(user_id) if chat_id == user_id else self._group(chat_id)
        message = chat.messages.get(message_id)
        if message is None:
            raise ValueError(f"no message {message_id} in chat {chat_id}")
        if message["from"]["id"] != self.bot_id:
            raise ValueError(f"message {message_id} in chat {chat_id} was not sent by the bot")
        buttons = [b for row in message.get("reply_markup", {}).get("inline_keyboard", []) for b in row]
        if not any(b.get("callback_data") == data for b in buttons):
            offered = [b.get("callback_data") for b in buttons if "callback_data" in b]
            raise ValueError(
                f"message {message_id} in chat {chat_id} has no button with callback_data {data!r}; "
                f"its buttons carry {offered!r}"
            )
        query_id = str(4_000_000_000_000_000_000 + next(self._ids) * 7919 + user_id)
        self._callbacks[query_id] = {"answered": False, "created": time.monotonic(), "data": data}
        self._enqueue(
            "callback_query",
            {
                "id": query_id,
                "from": dict(user),
                "message": copy.deepcopy(message),
                "chat_instance": str(abs(chat.id) * 7 + 8_000_000_000_000_000_000),
                "data": data,
            },
        )
        return query_id

    def member_joined(
        self, chat_id: int, user_id: int, *, by: int | None = None, service_message: bool = True
    ) -> None:
        """A user joins (or, with `by`, is added to) a group. Sends a chat_member update (delivered only
        when the bot is an administrator and "chat_member" is in allowed_updates, as Telegram does) and
        the new_chat_members service message (delivered to every bot in the group)."""
        chat = self._group(chat_id)
        user = self._user(user_id)
        actor = self._user(by) if by is not None else user
        old = self._member_json(chat, user_id)
        if chat.members.get(user_id) not in ("creator", "administrator", "member", "restricted"):
            chat.member_count += 1
        chat.members[user_id] = "member"
        self._chat_member_update(chat, actor, old, self._member_json(chat, user_id))
        if service_message:
            self._service_message(chat, actor, {"new_chat_members": [dict(user)]})

    def member_left(
        self, chat_id: int, user_id: int, *, by: int | None = None, service_message: bool = True
    ) -> None:
        """A user leaves (or, with `by`, is removed from) a group: chat_member update and the
        left_chat_member service message."""
        chat = self._group(chat_id)
        user = self._user(user_id)
        actor = self._user(by) if by is not None else user
        old = self._member_json(chat, user_id)
        if chat.members.get(user_id, "member") in ("creator", "administrator", "member", "restricted"):
            chat.member_count = max(0, chat.member_count - 1)
        chat.members[user_id] = "kicked" if by is not None and by != user_id else "left"
        self._chat_member_update(chat, actor, old, self._member_json(chat, user_id))
        if service_message:
            self._service_message(chat, actor, {"left_chat_member": dict(user)})

    def react(self, chat_id: int, message_id: int, user_id: int, emoji: str | None) -> None:
        """A user sets (or, with None, removes) their reaction: a message_reaction update (bot must be
        an administrator and "message_reaction" must be in allowed_updates)."""
        chat = self._chat_by_id(chat_id)
        user = self._user(user_id)
        if message_id not in chat.messages:
            raise ValueError(f"no message {message_id} in chat {chat_id}")
        if emoji is not None and emoji.replace("\ufe0f", "") not in ALLOWED_REACTIONS:
            raise ValueError(f"{emoji!r} is not a reaction Telegram offers")
        old = chat.reactions.get((message_id, user_id), [])
        new = [{"type": "emoji", "emoji": emoji}] if emoji else []
        chat.reactions[(message_id, user_id)] = new
        update = {
            "chat": self._chat_json(chat), "message_id": message_id, "user": dict(user),
            "date": int(time.time()), "old_reaction": old, "new_reaction": new,
        }
        if chat.is_group and chat.bot_status != "administrator":
            self.dropped_updates.append({"message_reaction": update, "reason": "bot is not an administrator"})
            return
        self._enqueue("message_reaction", update)

    def block_bot(self, user_id: int) -> None:
        """The user blocks the bot: sending to them answers 403."""
        chat = self._private_chat(user_id)
        chat.blocked = True

    def fail_next(self, method: str, times: int = 1, retry_after: int = 1) -> None:
        """The next `times` calls of `method` answer 429 Too Many Requests with that retry_after."""
        self._fail.setdefault(method.lower(), deque()).extend([retry_after] * times)

    # ---------------------------------------------------------------- inspection

    @property
    def pending_updates(self) -> int:
        """Updates not yet confirmed (by an offset or a 2xx webhook answer)."""
        return len(self._updates)

    @property
    def allowed_updates(self) -> frozenset[str]:
        return self._allowed

    @property
    def webhook_url(self) -> str:
        return self._webhook["url"] if self._webhook else ""

    def messages_to(self, chat_id: int) -> list[dict]:
        """Everything the bot sent to the chat (sendMessage/sendPhoto/sendDocument), oldest first."""
        return [s for s in self.sent if s["chat_id"] == chat_id]

    def message(self, chat_id: int, message_id: int) -> dict:
        """The message as it is now (after edits), as Telegram would return it."""
        chat = self._chat_by_id(chat_id)
        if message_id not in chat.messages:
            raise KeyError(f"no message {message_id} in chat {chat_id}")
        return copy.deepcopy(chat.messages[message_id])

    def file_bytes(self, file_id: str) -> bytes:
        return self._files[file_id]["bytes"]

    def member_status(self, chat_id: int, user_id: int) -> str:
        chat = self._chat_by_id(chat_id)
        return chat.bot_status if user_id == self.bot_id else chat.members.get(user_id, "left")

    async def wait_for(self, predicate: Callable[[], Any], timeout: float = 5.0) -> None:
        """Poll until predicate() is true; TimeoutError (with what the bot did meanwhile) if it isn't."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            if predicate():
                return
            if loop.time() >= deadline:
                raise TimeoutError(self._describe_wait(predicate, timeout))
            await asyncio.sleep(0.01)

    def _describe_wait(self, predicate: Callable, timeout: float) -> str:
        try:
            what = inspect.getsource(predicate).strip()
        except (OSError, TypeError):
            what = repr(predicate)
        recent = ", ".join(m for m, _ in self.calls[-12:]) or "none"
        sent = [(s["method"], s["chat_id"], (s.get("text") or s.get("caption") or "")[:60]) for s in self.sent[-5:]]
        return (
            f"condition not met within {timeout}s: {what}\n"
            f"  last API calls: {recent}\n"
            f"  last messages sent: {sent}\n"
            f"  errors returned: {self.errors[-5:]}\n"
            f"  pending updates: {self.pending_updates}; allowed_updates: {sorted(self._allowed)}; "
            f"webhook: {self.webhook_url or 'none'}"
        )

    # ---------------------------------------------------------------- HTTP

    async def _handle_no_method(self, request: web.Request) -> web.Response:
        self.calls.append(("", time.monotonic()))
        return self._answer("", ApiError(404, "Not Found"))

    async def _handle_api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        token = request.match_info["token"]
        self.calls.append((method, time.monotonic()))
        if token != self.token:
            if re.fullmatch(r"\d+:[A-Za-z0-9_-]+", token):
                return self._answer(method, ApiError(401, "Unauthorized"))
            return self._answer(method, ApiError(404, "Not Found"))
        try:
            raw = await self._read_params(request)
        except ApiError as exc:
            return self._answer(method, exc)
        outcome = await self._run(method, raw)
        if isinstance(outcome, ApiError) and (request.transport is None or request.transport.is_closing()):
            return web.Response(status=outcome.code)  # the client is gone (e.g. a cancelled long poll)
        return self._answer(method, outcome)

    async def _read_params(self, request: web.Request) -> dict[str, Any]:
        raw: dict[str, Any] = dict(request.query)
        if request.method not in ("POST", "PUT") or not request.can_read_body:
            return raw
        try:
            if request.content_type == "application/json":
                body = await request.read()
                if body.strip():
                    data = json.loads(body)
                    if not isinstance(data, dict):
                        raise _bad("JSON object expected as the request body")
                    raw.update(data)
            elif request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
                form = await request.post()
                for key in form:
                    raw[key] = form[key]
        except web.HTTPRequestEntityTooLarge:
            raise ApiError(413, "Request Entity Too Large") from None
        except ValueError:
            raise _bad("can't parse JSON object in the request body") from None
        return raw

    async def _run(self, method: str, raw: dict[str, Any]) -> Any:
        """Run a method; the result, or the ApiError to answer with."""
        handler = self._methods.get(method.lower())
        if handler is None:
            return ApiError(404, "Not Found")
        pending = self._fail.get(method.lower())
        if pending:
            retry_after = pending.popleft()
            return ApiError(
                429, f"Too Many Requests: retry after {retry_after}", {"retry_after": retry_after}
            )
        try:
            return await handler(_Params(raw))
        except ApiError as exc:
            return exc

    def _answer(self, method: str, outcome: Any) -> web.Response:
        if isinstance(outcome, ApiError):
            body: dict[str, Any] = {"ok": False, "error_code": outcome.code, "description": outcome.description}
            if outcome.parameters:
                body["parameters"] = outcome.parameters
            if 400 <= outcome.code < 500:
                self.errors.append((method, outcome.description))
            return web.json_response(body, status=outcome.code)
        if isinstance(outcome, _WithDescription):
            return web.json_response({"ok": True, "result": outcome.result, "description": outcome.description})
        return web.json_response({"ok": True, "result": outcome})

    async def _handle_file(self, request: web.Request) -> web.Response:
        self.calls.append(("file", time.monotonic()))
        if request.match_info["token"] != self.token:
            return web.json_response({"ok": False, "error_code": 404, "description": "Not Found"}, status=404)
        file_id = self._file_paths.get(request.match_info["path"])
        if file_id is None:
            return web.json_response({"ok": False, "error_code": 404, "description": "Not Found"}, status=404)
        record = self._files[file_id]
        return web.Response(body=record["bytes"], content_type=record.get("mime_type") or "application/octet-stream")

    # ---------------------------------------------------------------- updates

    def _notify(self) -> None:
        event = self._changed
        self._changed = asyncio.Event()
        if event is not None:
            event.set()

    async def _wait_change(self, timeout: float) -> None:
        if self._changed is None:
            self._changed = asyncio.Event()
        try:
            await asyncio.wait_for(self._changed.wait(), timeout)
        except asyncio.TimeoutError:
            pass

    def _enqueue(self, kind: str, payload: dict) -> None:
        if kind not in self._allowed:
            self.dropped_updates.append({kind: copy.deepcopy(payload), "reason": "not in allowed_updates"})
            return
        update = {"update_id": self._next_update_id, kind: copy.deepcopy(payload)}
        self._next_update_id += 1
        self._updates.append(update)
        self._notify()

    def _set_allowed(self, value: Any) -> None:
        if value is None:
            return
        if not isinstance(value, list):
            raise _bad("can't parse allowed updates JSON object")
        wanted = {str(v) for v in value} & UPDATE_TYPES
        self._allowed = frozenset(wanted) if wanted else UPDATE_TYPES - NOT_BY_DEFAULT

    def _confirm(self, offset: int) -> None:
        if offset > 0:
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
        elif offset < 0:
            self._updates = self._updates[offset:]

    # ---------------------------------------------------------------- webhook delivery

    async def _webhook_loop(self) -> None:
        failures = 0
        while not self._closing:
            hook = self._webhook
            if hook is None or not self._updates:
                await self._wait_change(1.0)
                continue
            update = self._updates[0]
            headers = {"Content-Type": "application/json"}
            if hook.get("secret_token"):
                headers["X-Telegram-Bot-Api-Secret-Token"] = hook["secret_token"]
            status = 0
            reply: Any = None
            try:
                assert self._session is not None
                async with self._session.post(hook["url"], data=json.dumps(update), headers=headers) as resp:
                    status = resp.status
                    reason = resp.reason or ""
                    if resp.content_type == "application/json":
                        try:
                            reply = await resp.json()
                        except ValueError:
                            reply = None
            except asyncio.CancelledError:
                raise
            except asyncio.TimeoutError:
                reason = "Read timeout expired"
            except Exception as exc:  # connection refused, DNS, ...
                text = str(exc).lower()
                reason = "Connection refused" if "refused" in text or "connect" in text else str(exc)
            self.webhook_deliveries.append(
                {"update_id": update["update_id"], "status": status, "at": time.monotonic()}
            )
            if 200 <= status < 300:
                failures = 0
                if self._updates and self._updates[0] is update:
                    self._updates.pop(0)
                    self._notify()
                if isinstance(reply, dict) and isinstance(reply.get("method"), str):
                    # "you can perform a request to the Bot API while sending an answer to the webhook"
                    method = reply["method"]
                    params = {k: v for k, v in reply.items() if k != "method"}
                    self.calls.append((method, time.monotonic()))
                    outcome = await self._run(method, params)
                    if isinstance(outcome, ApiError) and 400 <= outcome.code < 500:
                        self.errors.append((method, outcome.description))
                continue
            failures += 1
            message = f"Wrong response from the webhook: {status} {reason}".strip() if status else reason
            self._webhook_error = (int(time.time()), message)
            await asyncio.sleep(min(self.webhook_retry_delay * 2 ** (failures - 1), 5.0))

    # ---------------------------------------------------------------- helpers: world

    def _user(self, user_id: int) -> dict:
        if user_id not in self._users:
            raise ValueError(f"unknown user {user_id}: call add_user() first")
        return self._users[user_id]

    def _private_chat(self, user_id: int) -> _Chat:
        chat = self._chats.get(user_id)
        if chat is None:
            user = self._user(user_id)
            chat = _Chat(user_id, "private", None, user.get("username"), 2)
            self._chats[user_id] = chat
        return chat

    def _group(self, chat_id: int) -> _Chat:
        chat = self._chats.get(chat_id)
        if chat is None or not chat.is_group:
            raise ValueError(f"unknown group {chat_id}: call add_chat() first")
        return chat

    def _chat_by_id(self, chat_id: int) -> _Chat:
        chat = self._chats.get(chat_id)
        if chat is None:
            raise ValueError(f"unknown chat {chat_id}")
        return chat

    def _bot_short(self) -> dict:
        return {"id": self.bot_id, "is_bot": True, "first_name": self.bot_first_name, "username": self.bot_username}

    def _chat_json(self, chat: _Chat) -> dict:
        if chat.type == "private":
            user = self._users[chat.id]
            result = {"id": chat.id, "first_name": user["first_name"]}
            for key in ("last_name", "username"):
                if key in user:
                    result[key] = user[key]
            result["type"] = "private"
            return result
        result = {"id": chat.id, "title": chat.title}
        if chat.username:
            result["username"] = chat.username
        result["type"] = chat.type
        return result

    def _new_message_id(self, chat: _Chat) -> int:
        message_id = chat.next_message_id
        chat.next_message_id += 1
        return message_id

    @staticmethod
    def _without_reply(message: dict) -> dict:
        inner = copy.deepcopy(message)
        inner.pop("reply_to_message", None)
        return inner

    def _sees_message(self, chat: _Chat, message: dict, replied: dict | None) -> bool:
        """Privacy mode: bots that aren't admins see commands and replies to their messages only."""
        if chat.type == "private":
            return True
        if chat.bot_status not in ("administrator", "member"):
            return False
        if chat.bot_status == "administrator" or not self.privacy_mode:
            return True
        if replied is not None and replied["from"]["id"] == self.bot_id:
            return True
        text = message.get("text", "")
        for entity in message.get("entities", []):
            if entity["type"] == "bot_command":
                command = text[entity["offset"] : entity["offset"] + entity["length"]]
                target = command.partition("@")[2]
                if not target or target.lower() == self.bot_username.lower():
                    return True
        return False

    def _service_message(self, chat: _Chat, actor: dict, fields: dict) -> None:
        message = {
            "message_id": self._new_message_id(chat),
            "from": dict(actor),
            "chat": self._chat_json(chat),
            "date": int(time.time()),
            **fields,
        }
        chat.messages[message["message_id"]] = message
        if chat.bot_status in ("administrator", "member"):  # service messages ignore privacy mode
            self._enqueue("message", message)

    def _chat_member_update(self, chat: _Chat, actor: dict, old: dict, new: dict) -> None:
        update = {
            "chat": self._chat_json(chat), "from": dict(actor), "date": int(time.time()),
            "old_chat_member": old, "new_chat_member": new,
        }
        if chat.bot_status != "administrator":
            self.dropped_updates.append({"chat_member": update, "reason": "bot is not an administrator"})
            return
        self._enqueue("chat_member", update)

    def _member_json(self, chat: _Chat, user_id: int) -> dict:
        user = self._bot_short() if user_id == self.bot_id else dict(self._user(user_id))
        if chat.type == "private":
            return {"user": user, "status": "member"}
        status = chat.bot_status if user_id == self.bot_id else chat.members.get(user_id, "left")
        if status == "creator":
            return {"user": user, "status": "creator", "is_anonymous": False}
        if status == "administrator":
            member = {
                "user": user, "status": "administrator", "can_be_edited": False, "is_anonymous": False,
                "can_manage_chat": True, "can_delete_messages": True, "can_manage_video_chats": True,
                "can_restrict_members": True, "can_promote_members": False, "can_change_info": True,
                "can_invite_users": True, "can_post_stories": True, "can_edit_stories": True,
                "can_delete_stories": True, "can_pin_messages": True, "can_manage_tags": True,
            }
            if chat.type == "supergroup":
                member["can_manage_topics"] = False
            return member
        if status == "restricted":
            return {
                "user": user, "status": "restricted", "is_member": True, "can_send_messages": True,
                "can_send_audios": True, "can_send_documents": True, "can_send_photos": True,
                "can_send_videos": True, "can_send_video_notes": True, "can_send_voice_notes": True,
                "can_send_polls": False, "can_send_other_messages": False, "can_add_web_page_previews": False,
                "can_react_to_messages": True, "can_edit_tag": False, "can_change_info": False,
                "can_invite_users": False, "can_pin_messages": False, "can_manage_topics": False, "until_date": 0,
            }
        if status == "kicked":
            return {"user": user, "status": "kicked", "until_date": 0}
        return {"user": user, "status": status}

    def _permissions(self) -> dict:
        return {
            "can_send_messages": True, "can_send_audios": True, "can_send_documents": True,
            "can_send_photos": True, "can_send_videos": True, "can_send_video_notes": True,
            "can_send_voice_notes": True, "can_send_polls": True, "can_send_other_messages": True,
            "can_add_web_page_previews": True, "can_react_to_messages": True, "can_edit_tag": False,
            "can_change_info": False, "can_invite_users": True, "can_pin_messages": False,
            "can_manage_topics": False,
        }

    # ---------------------------------------------------------------- helpers: requests

    def _target_chat(self, p: _Params, *, writing: bool = False) -> _Chat:
        value = p.raw.get("chat_id")
        if value is None or value == "":
            raise _bad("chat_id is empty")
        chat: _Chat | None = None
        text = str(value).strip()
        if text.startswith("@"):
            chat = next((c for c in self._chats.values() if c.is_group and c.username
                         and c.username.lower() == text[1:].lower()), None)
        else:
            try:
                chat_id = int(text)
            except ValueError:
                raise _bad("chat not found") from None
            chat = self._chats.get(chat_id)
            if chat is None and chat_id in self._users:
                if writing:
                    raise _forbidden("bot can't initiate conversation with a user")
                chat = self._private_chat(chat_id)
        if chat is None:
            raise _bad("chat not found")
        if writing:
            if chat.type == "private":
                if self._users[chat.id].get("is_bot"):
                    raise _forbidden("bot can't send messages to bots")
                if not chat.started:
                    raise _forbidden("bot can't initiate conversation with a user")
                if chat.blocked:
                    raise _forbidden("bot was blocked by the user")
            elif chat.bot_status == "kicked":
                kind = "supergroup" if chat.type == "supergroup" else "group"
                raise _forbidden(f"bot was kicked from the {kind} chat")
            elif chat.bot_status == "left":
                raise _forbidden(f"bot is not a member of the {chat.type} chat")
        return chat

    def _format(
        self, p: _Params, text_field: str, mode_field: str, entities_field: str, *, limit: int, required: bool
    ) -> tuple[str | None, list[dict]]:
        """Parse a text or caption as Telegram does; (None, []) for an absent optional caption."""
        source = p.str(text_field)
        if source is None or source == "":
            if required:
                raise _bad("message text is empty")
            return None, []
        mode = (p.str(mode_field) or "").strip()
        if mode:
            if mode.lower() == "html":
                try:
                    plain, entities = parse_html(
                        source, strict_entities=self.strict_html_entities, user_lookup=self._mention_user
                    )
                except EntityParseError as exc:
                    raise _bad(f"can't parse entities: {exc}") from None
            elif mode.lower() in ("markdown", "markdownv2"):
                raise _bad(
                    f"can't parse entities: parse_mode {mode} is not implemented by the test emulator; use HTML"
                )
            else:
                raise _bad("unsupported parse_mode")
        else:
            plain = source
            entities = self._explicit_entities(p.json(entities_field, "message entities"), source)
        plain, entities = finish_text(plain, entities)
        if not plain:
            if required:
                raise _bad("message text is empty")
            return None, []
        if len(plain) > limit:
            raise _bad("message is too long" if text_field == "text" else "message caption is too long")
        return plain, entities

    def _mention_user(self, user_id: int) -> dict | None:
        user = self._users.get(user_id)
        return dict(user) if user else None

    @staticmethod
    def _explicit_entities(value: Any, text: str) -> list[dict]:
        if value is None:
            return []
        if not isinstance(value, list):
            raise _bad("can't parse entities JSON object")
        total = utf16_len(text)
        result = []
        for entity in value:
            if not isinstance(entity, dict) or not isinstance(entity.get("type"), str):
                raise _bad("can't parse MessageEntity: Field \"type\" must be of type String")
            offset, length = entity.get("offset"), entity.get("length")
            if not isinstance(offset, int) or not isinstance(length, int):
                raise _bad("can't parse MessageEntity: Field \"offset\" must be of type Integer")
            if offset < 0 or length < 0 or offset + length > total:
                raise _bad("can't parse entities: entity beginning/end is out of the text bounds")
            if length:
                result.append(dict(entity))
        return result

    def _markup(self, p: _Params, *, inline_only: bool = False) -> dict | None:
        markup = p.json("reply_markup", "reply keyboard markup")
        if markup is None:
            return None
        if not isinstance(markup, dict):
            raise _bad("can't parse reply keyboard markup JSON object")
        if "inline_keyboard" not in markup:
            if inline_only:
                raise _bad("inline keyboard expected")
            if not any(k in markup for k in ("keyboard", "remove_keyboard", "force_reply")):
                raise _bad("can't parse reply keyboard markup JSON object")
            return markup
        rows = markup["inline_keyboard"]
        if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
            raise _bad('field "inline_keyboard" of the InlineKeyboardMarkup must be an Array of Arrays')
        count = 0
        normalized = []
        for row in rows:
            new_row = []
            for button in row:
                count += 1
                if not isinstance(button, dict):
                    raise _bad("can't parse inline keyboard button: InlineKeyboardButton must be an Object")
                text = button.get("text")
                if not isinstance(text, str):
                    raise _bad("can't parse inline keyboard button: Field \"text\" must be of type String")
                if not text.strip():
                    raise _bad("BUTTON_TEXT_INVALID")
                actions = [k for k in INLINE_BUTTON_ACTIONS if k in button and button[k] not in (None, "")]
                if not actions:
                    raise _bad("can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard")
                if len(actions) > 1:
                    raise _bad(
                        "can't parse inline keyboard button: only one of the optional fields may be used "
                        f"(got {', '.join(actions)})"
                    )
                if "callback_data" in actions:
                    data = button["callback_data"]
                    if not isinstance(data, str) or len(data.encode("utf-8")) > CALLBACK_DATA_LIMIT:
                        raise _bad("BUTTON_DATA_INVALID")
                if "url" in actions:
                    url = str(button["url"])
                    user_id = _link_user_id(url)
                    if user_id is None and not (_checked_link(url) and re.match(r"(?i)(https?|tg|ton)://", url)):
                        raise _bad(f"inline keyboard button URL '{url}' is invalid: Wrong HTTP URL")
                new_row.append(dict(button))
            normalized.append(new_row)
        if count > 100:
            raise _bad("reply markup is too long")
        return {"inline_keyboard": normalized}

    def _reply_target(self, chat: _Chat, p: _Params) -> int | None:
        params = p.json("reply_parameters", "reply parameters")
        if params is not None:
            if not isinstance(params, dict) or not isinstance(params.get("message_id"), int):
                raise _bad("can't parse reply parameters JSON object")
            target_chat = chat
            if params.get("chat_id") not in (None, ""):
                target_chat = self._target_chat(_Params({"chat_id": params["chat_id"]}))
            message_id = params["message_id"]
            allow = bool(params.get("allow_sending_without_reply"))
        else:
            message_id = p.int("reply_to_message_id")
            if message_id is None:
                return None
            target_chat = chat
            allow = p.bool("allow_sending_without_reply")
        if target_chat is not chat:
            raise _bad("replies to messages in other chats are not implemented by the test emulator")
        if message_id not in chat.messages:
            if allow:
                return None
            raise _bad("message to be replied not found")
        return message_id

    def _check_rate(self, chat: _Chat) -> None:
        if not self.enforce_rate_limits:
            return
        now = time.monotonic()
        while self._global_sent and now - self._global_sent[0] > 1.0:
            self._global_sent.popleft()
        if len(self._global_sent) >= 30:
            raise ApiError(429, "Too Many Requests: retry after 1", {"retry_after": 1})
        if chat.is_group:
            while chat.sent_times and now - chat.sent_times[0] > 60.0:
                chat.sent_times.popleft()
            if len(chat.sent_times) >= 20:
                wait = max(1, math.ceil(60.0 - (now - chat.sent_times[0])))
                raise ApiError(429, f"Too Many Requests: retry after {wait}", {"retry_after": wait})
            chat.sent_times.append(now)
        self._global_sent.append(now)

    def _bot_message(self, chat: _Chat, reply_to: int | None, markup: dict | None, **content: Any) -> dict:
        message: dict[str, Any] = {
            "message_id": self._new_message_id(chat),
            "from": self._bot_short(),
            "chat": self._chat_json(chat),
            "date": int(time.time()),
        }
        if reply_to is not None:
            message["reply_to_message"] = self._without_reply(chat.messages[reply_to])
        message.update({k: v for k, v in content.items() if v not in (None, [], False)})
        if markup and "inline_keyboard" in markup:
            message["reply_markup"] = markup
        chat.messages[message["message_id"]] = message
        return message

    def _record_sent(
        self, method: str, chat: _Chat, p: _Params, message: dict, reply_to: int | None, **extra: Any
    ) -> None:
        record = {
            "method": method,
            "chat_id": chat.id,
            "text": p.str("text") if method == "sendMessage" else None,
            "caption": p.str("caption") if method != "sendMessage" else None,
            "plain": message.get("text", message.get("caption")),
            "entities": message.get("entities", message.get("caption_entities", [])),
            "parse_mode": p.str("parse_mode"),
            "reply_markup": p.json("reply_markup"),
            "message_id": message["message_id"],
            "reply_to": reply_to,
            "disable_notification": p.bool("disable_notification"),
            "link_preview_options": p.json("link_preview_options"),
            "message": copy.deepcopy(message),
            "at": time.monotonic(),
        }
        record.update(extra)
        self.sent.append(record)

    def _message_for_edit(self, p: _Params) -> tuple[_Chat, dict]:
        if p.present("inline_message_id"):
            raise _bad("MESSAGE_ID_INVALID")
        chat = self._target_chat(p)
        message_id = p.int("message_id")
        if message_id is None:
            raise _bad("message identifier is not specified")
        message = chat.messages.get(message_id)
        if message is None:
            raise _bad("message to edit not found")
        if message["from"]["id"] != self.bot_id:
            raise _bad("message can't be edited")
        return chat, message

    def _record_edit(self, method: str, chat: _Chat, message: dict, p: _Params) -> None:
        self.edits.append(
            {
                "method": method,
                "chat_id": chat.id,
                "message_id": message["message_id"],
                "text": p.str("text"),
                "caption": p.str("caption"),
                "plain": message.get("text", message.get("caption")),
                "parse_mode": p.str("parse_mode"),
                "reply_markup": p.json("reply_markup"),
                "message": copy.deepcopy(message),
                "at": time.monotonic(),
            }
        )

    async def _input_file(self, p: _Params, field: str) -> tuple[dict | None, bytes | None, str | None, str | None]:
        """(existing file record, new bytes, file name, mime type) for a file parameter."""
        value = p.raw.get(field)
        if isinstance(value, str) and value.startswith("attach://"):
            value = p.raw.get(value[len("attach://") :])
        if isinstance(value, FileField):
            data = value.file.read()
            if len(data) > UPLOAD_LIMIT:
                raise ApiError(413, "Request Entity Too Large")
            if not data:
                raise _bad("file must be non-empty")
            return None, data, value.filename, value.content_type
        if value is None or value == "":
            raise _bad(f"there is no {field} in the request")
        text = str(value)
        if text in self._files:
            return self._files[text], None, None, None
        if re.match(r"(?i)https?://", text):
            assert self._session is not None
            try:
                async with self._session.get(text) as resp:
                    if resp.status != 200:
                        raise _bad("failed to get HTTP URL content")
                    data = await resp.read()
                    name = urllib.parse.urlsplit(text).path.rsplit("/", 1)[-1] or "file"
                    return None, data, name, resp.content_type
            except ApiError:
                raise
            except Exception:
                raise _bad("failed to get HTTP URL content") from None
        raise _bad("wrong file identifier/HTTP URL specified")

    def _store_file(self, data: bytes, kind: str, name: str | None, mime: str | None, index: int | None = None) -> dict:
        file_id = f"{kind[:2].upper()}ACAgIAAxkBAA{secrets.token_urlsafe(24)}"
        number = next(self._ids)
        extension = (name.rsplit(".", 1)[-1] if name and "." in name else {"photos": "jpg"}.get(kind, "bin"))
        path = f"{kind}/file_{number}.{extension}"
        record = {
            "file_id": file_id,
            "file_unique_id": f"AgAD{secrets.token_urlsafe(9)}",
            "bytes": data,
            "path": path,
            "file_name": name,
            "mime_type": mime,
        }
        self._files[file_id] = record
        self._file_paths[path] = file_id
        return record

    # ---------------------------------------------------------------- methods

    async def _m_getMe(self, p: _Params) -> dict:
        return {
            **self._bot_short(),
            "can_join_groups": True,
            "can_read_all_group_messages": not self.privacy_mode,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
            "has_topics_enabled": False,
            "allows_users_to_create_topics": False,
            "can_manage_bots": False,
            "supports_guest_queries": False,
        }

    async def _m_logOut(self, p: _Params) -> bool:
        return True

    async def _m_close(self, p: _Params) -> bool:
        return True

    async def _m_getUpdates(self, p: _Params) -> list[dict]:
        if self._webhook is not None:
            raise ApiError(
                409, "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete "
                "the webhook first"
            )
        offset = p.int("offset", 0) or 0
        limit = min(max(p.int("limit", 100) or 100, 1), 100)
        timeout = max(p.float("timeout", 0.0), 0.0)
        if "allowed_updates" in p.raw:
            self._set_allowed(p.json("allowed_updates", "allowed updates"))
        self._confirm(offset)
        me = object()
        self._poller = me
        self._notify()  # an older long poll ends with 409, as on Telegram
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        try:
            while True:
                if self._poller is not me:
                    raise ApiError(
                        409, "Conflict: terminated by other getUpdates request; make sure that only one bot "
                        "instance is running"
                    )
                if self._webhook is not None:
                    raise ApiError(409, "Conflict: terminated by setWebhook request")
                if self._updates:
                    return copy.deepcopy(self._updates[:limit])
                remaining = deadline - loop.time()
                if remaining <= 0 or self._closing:
                    return []
                await self._wait_change(remaining)
        finally:
            if self._poller is me:
                self._poller = None

    async def _m_setWebhook(self, p: _Params) -> Any:
        url = (p.str("url") or "").strip()
        if not url:
            return await self._m_deleteWebhook(p)
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise _bad("bad webhook: An HTTPS URL must be provided for webhook")
        secret = p.str("secret_token")
        if secret is not None and secret != "":
            if not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", secret):
                raise _bad("secret token contains unallowed characters")
        max_connections = p.int("max_connections", 40) or 40
        if not 1 <= max_connections <= 100:
            raise _bad("bad webhook: max_connections must be between 1 and 100")
        if "allowed_updates" in p.raw:
            self._set_allowed(p.json("allowed_updates", "allowed updates"))
        if p.bool("drop_pending_updates"):
            self._updates.clear()
        same = self._webhook is not None and self._webhook["url"] == url
        self._webhook = {"url": url, "secret_token": secret or None, "max_connections": max_connections,
                         "ip_address": p.str("ip_address") or "127.0.0.1"}
        self._webhook_error = None
        self._notify()
        return _WithDescription(True, "Webhook is already set" if same else "Webhook was set")

    async def _m_deleteWebhook(self, p: _Params) -> Any:
        if p.bool("drop_pending_updates"):
            self._updates.clear()
        had = self._webhook is not None
        self._webhook = None
        self._webhook_error = None
        self._notify()
        return _WithDescription(True, "Webhook was deleted" if had else "Webhook is already deleted")

    async def _m_getWebhookInfo(self, p: _Params) -> dict:
        info: dict[str, Any] = {
            "url": self.webhook_url, "has_custom_certificate": False, "pending_update_count": len(self._updates),
        }
        if self._webhook is not None:
            info["ip_address"] = self._webhook["ip_address"]
            info["max_connections"] = self._webhook["max_connections"]
            if self._allowed != UPDATE_TYPES - NOT_BY_DEFAULT:
                info["allowed_updates"] = sorted(self._allowed)
            if self._webhook_error:
                info["last_error_date"], info["last_error_message"] = self._webhook_error
        return info

    async def _m_sendMessage(self, p: _Params) -> dict:
        chat = self._target_chat(p, writing=True)
        plain, entities = self._format(p, "text", "parse_mode", "entities", limit=MESSAGE_LIMIT, required=True)
        markup = self._markup(p)
        reply_to = self._reply_target(chat, p)
        self._check_rate(chat)
        preview = p.json("link_preview_options", "link preview options")
        message = self._bot_message(
            chat, reply_to, markup, text=plain, entities=entities,
            link_preview_options=preview if isinstance(preview, dict) and preview else None,
        )
        self._record_sent("sendMessage", chat, p, message, reply_to)
        return copy.deepcopy(message)

    async def _m_sendPhoto(self, p: _Params) -> dict:
        chat = self._target_chat(p, writing=True)
        existing, data, name, mime = await self._input_file(p, "photo")
        caption, entities = self._format(
            p, "caption", "parse_mode", "caption_entities", limit=CAPTION_LIMIT, required=False
        )
        markup = self._markup(p)
        reply_to = self._reply_target(chat, p)
        if existing is not None:
            if "photo_sizes" not in existing:
                raise _bad("wrong file identifier/HTTP URL specified")
            sizes = existing["photo_sizes"]
            data = existing["bytes"]
        else:
            assert data is not None
            if len(data) > PHOTO_LIMIT:
                raise _bad("PHOTO_INVALID_DIMENSIONS")
            dims = image_size(data)
            if dims is None:
                raise _bad("IMAGE_PROCESS_FAILED")
            width, height = dims
            if width <= 0 or height <= 0 or width + height > 10000 or max(width, height) > 20 * min(width, height):
                raise _bad("PHOTO_INVALID_DIMENSIONS")
            sizes = []
            for box in (90, 320, 800, 1280, 2560):
                scale = min(1.0, box / max(width, height))
                w, h = max(1, round(width * scale)), max(1, round(height * scale))
                record = self._store_file(data, "photos", name, mime or "image/jpeg")
                size = {"file_id": record["file_id"], "file_unique_id": record["file_unique_id"],
                        "file_size": max(1, int(len(data) * scale * scale)), "width": w, "height": h}
                sizes.append(size)
                if scale >= 1.0:
                    break
            for size in sizes:
                self._files[size["file_id"]]["photo_sizes"] = sizes
        self._check_rate(chat)
        message = self._bot_message(
            chat, reply_to, markup, photo=copy.deepcopy(sizes), caption=caption, caption_entities=entities,
            has_media_spoiler=p.bool("has_spoiler"), show_caption_above_media=p.bool("show_caption_above_media"),
        )
        self._record_sent(
            "sendPhoto", chat, p, message, reply_to,
            file={"bytes": data, "file_name": name, "mime_type": mime, "file_id": sizes[-1]["file_id"]},
        )
        return copy.deepcopy(message)

    async def _m_sendDocument(self, p: _Params) -> dict:
        chat = self._target_chat(p, writing=True)
        existing, data, name, mime = await self._input_file(p, "document")
        caption, entities = self._format(
            p, "caption", "parse_mode", "caption_entities", limit=CAPTION_LIMIT, required=False
        )
        markup = self._markup(p)
        reply_to = self._reply_target(chat, p)
        if existing is not None:
            record = existing
            data = existing["bytes"]
        else:
            assert data is not None
            if not mime or mime == "application/octet-stream":
                mime = mimetypes.guess_type(name or "")[0] or "application/octet-stream"
            record = self._store_file(data, "documents", name, mime)
        document: dict[str, Any] = {}
        if record.get("file_name"):
            document["file_name"] = record["file_name"]
        if record.get("mime_type"):
            document["mime_type"] = record["mime_type"]
        document.update(file_id=record["file_id"], file_unique_id=record["file_unique_id"], file_size=len(data))
        self._check_rate(chat)
        message = self._bot_message(chat, reply_to, markup, document=document, caption=caption,
                                    caption_entities=entities)
        self._record_sent(
            "sendDocument", chat, p, message, reply_to,
            file={"bytes": data, "file_name": record.get("file_name"), "mime_type": record.get("mime_type"),
                  "file_id": record["file_id"]},
        )
        return copy.deepcopy(message)

    async def _m_getFile(self, p: _Params) -> dict:
        file_id = p.str("file_id") or ""
        record = self._files.get(file_id)
        if record is None:
            raise _bad("invalid file_id")
        if len(record["bytes"]) > DOWNLOAD_LIMIT:
            raise _bad("file is too big")
        return {"file_id": file_id, "file_unique_id": record["file_unique_id"],
                "file_size": len(record["bytes"]), "file_path": record["path"]}

    async def _m_editMessageText(self, p: _Params) -> dict:
        chat, message = self._message_for_edit(p)
        plain, entities = self._format(p, "text", "parse_mode", "entities", limit=MESSAGE_LIMIT, required=True)
        markup = self._markup(p, inline_only=True)
        if "text" not in message:
            raise _bad("there is no text in the message to edit")
        if (
            message["text"] == plain and message.get("entities", []) == entities
            and message.get("reply_markup") == markup
        ):
            raise _bad(NOT_MODIFIED)
        message["text"] = plain
        message.pop("entities", None)
        if entities:
            message["entities"] = entities
        self._set_markup(message, markup)
        message["edit_date"] = int(time.time())
        self._record_edit("editMessageText", chat, message, p)
        return copy.deepcopy(message)

    async def _m_editMessageCaption(self, p: _Params) -> dict:
        chat, message = self._message_for_edit(p)
        caption, entities = self._format(
            p, "caption", "parse_mode", "caption_entities", limit=CAPTION_LIMIT, required=False
        )
        markup = self._markup(p, inline_only=True)
        if "text" in message or not any(k in message for k in ("photo", "document")):
            raise _bad("there is no caption in the message to edit")
        if (
            message.get("caption") == caption and message.get("caption_entities", []) == entities
            and message.get("reply_markup") == markup
        ):
            raise _bad(NOT_MODIFIED)
        message.pop("caption", None)
        message.pop("caption_entities", None)
        if caption:
            message["caption"] = caption
        if entities:
            message["caption_entities"] = entities
        self._set_markup(message, markup)
        message["edit_date"] = int(time.time())
        self._record_edit("editMessageCaption", chat, message, p)
        return copy.deepcopy(message)

    async def _m_editMessageReplyMarkup(self, p: _Params) -> dict:
        chat, message = self._message_for_edit(p)
        markup = self._markup(p, inline_only=True)
        if message.get("reply_markup") == markup:
            raise _bad(NOT_MODIFIED)
        self._set_markup(message, markup)
        message["edit_date"] = int(time.time())
        self._record_edit("editMessageReplyMarkup", chat, message, p)
        return copy.deepcopy(message)

    @staticmethod
    def _set_markup(message: dict, markup: dict | None) -> None:
        if markup and markup["inline_keyboard"]:
            message["reply_markup"] = markup
        else:
            message.pop("reply_markup", None)

    async def _m_deleteMessage(self, p: _Params) -> bool:
        chat = self._target_chat(p)
        message_id = p.int("message_id")
        if message_id is None:
            raise _bad("message identifier is not specified")
        message = chat.messages.get(message_id)
        if message is None:
            raise _bad("message to delete not found")
        own = message.get("from", {}).get("id") == self.bot_id
        if chat.is_group and not own and chat.bot_status != "administrator":
            raise _bad("message can't be deleted")
        too_old = time.time() - message["date"] > 48 * 3600
        if own and too_old and chat.type != "private" and chat.bot_status != "administrator":
            raise _bad("message can't be deleted for everyone")
        del chat.messages[message_id]
        self.deleted.append({"chat_id": chat.id, "message_id": message_id, "at": time.monotonic()})
        return True

    async def _m_answerCallbackQuery(self, p: _Params) -> bool:
        query_id = p.str("callback_query_id") or ""
        query = self._callbacks.get(query_id)
        if query is None or query["answered"]:
            raise _bad(QUERY_TOO_OLD)
        if self.callback_query_ttl is not None and time.monotonic() - query["created"] > self.callback_query_ttl:
            raise _bad(QUERY_TOO_OLD)
        text = p.str("text")
        if text is not None and len(text) > CALLBACK_ANSWER_LIMIT:
            raise _bad("MESSAGE_TOO_LONG")
        query["answered"] = True
        self.answers[query_id] = {
            "text": text or None, "show_alert": p.bool("show_alert"), "url": p.str("url"),
            "cache_time": p.int("cache_time", 0), "at": time.monotonic(),
        }
        return True

    async def _m_setMessageReaction(self, p: _Params) -> bool:
        chat = self._target_chat(p)
        message_id = p.int("message_id")
        if message_id is None:
            raise _bad("message identifier is not specified")
        if message_id not in chat.messages:
            raise _bad("message to react not found")
        reaction = p.json("reaction", "reaction types") or []
        if not isinstance(reaction, list):
            raise _bad("can't parse reaction types JSON object")
        if len(reaction) > 1:
            raise _bad("REACTIONS_TOO_MANY")
        for item in reaction:
            if not isinstance(item, dict):
                raise _bad("can't parse ReactionType: ReactionType must be an Object")
            if item.get("type") == "emoji":
                emoji = item.get("emoji")
                if not isinstance(emoji, str) or emoji.replace("\ufe0f", "") not in ALLOWED_REACTIONS:
                    raise _bad("REACTION_INVALID")
            elif item.get("type") in ("custom_emoji", "paid"):
                raise _bad("REACTION_INVALID")
            else:
                raise _bad("can't parse ReactionType: unknown reaction type")
        self.reactions.append(
            {"chat_id": chat.id, "message_id": message_id, "reaction": reaction, "is_big": p.bool("is_big"),
             "at": time.monotonic()}
        )
        return True

    def _scope_key(self, p: _Params) -> str:
        scope = p.json("scope", "bot command scope")
        key = _CommandScopes.normalize(scope)
        if isinstance(scope, dict):
            kind = scope.get("type")
            if kind not in ("default", "all_private_chats", "all_group_chats", "all_chat_administrators",
                            "chat", "chat_administrators", "chat_member"):
                raise _bad("can't parse BotCommandScope: unsupported scope type")
            if kind in ("chat", "chat_administrators", "chat_member"):
                self._target_chat(_Params({"chat_id": scope.get("chat_id")}))
            if kind == "chat_member" and scope.get("user_id") not in self._users:
                raise _bad("user not found")
        elif scope is not None:
            raise _bad("can't parse BotCommandScope JSON object")
        language = p.str("language_code") or ""
        if language and not re.fullmatch(r"[a-z]{2}", language):
            raise _bad("invalid language code specified")
        return f"{key}|{language}" if language else key

    async def _m_setMyCommands(self, p: _Params) -> bool:
        commands = p.json("commands", "bot commands")
        if not isinstance(commands, list):
            raise _bad("can't parse bot commands JSON object")
        if len(commands) > MAX_COMMANDS:
            raise _bad("BOT_COMMANDS_TOO_MUCH")
        cleaned = []
        for command in commands:
            if not isinstance(command, dict):
                raise _bad("can't parse BotCommand: BotCommand must be an Object")
            name, description = command.get("command"), command.get("description")
            if not isinstance(name, str) or not re.fullmatch(r"[a-z0-9_]{1,32}", name.removeprefix("/")):
                raise _bad("BOT_COMMAND_INVALID")
            if not isinstance(description, str) or not 1 <= len(description.strip()) <= 256:
                raise _bad("BOT_COMMAND_DESCRIPTION_INVALID")
            cleaned.append({"command": name.removeprefix("/"), "description": description})
        key = self._scope_key(p)
        if cleaned:
            self.commands[key] = cleaned
        else:
            self.commands.pop(key, None)
        return True

    async def _m_getMyCommands(self, p: _Params) -> list[dict]:
        return copy.deepcopy(self.commands.get(self._scope_key(p), []))

    async def _m_deleteMyCommands(self, p: _Params) -> bool:
        self.commands.pop(self._scope_key(p), None)
        return True

    async def _m_getChat(self, p: _Params) -> dict:
        chat = self._target_chat(p)
        info = self._chat_json(chat)
        info.update(
            accent_color_id=abs(chat.id) % 7,
            max_reaction_count=11,
            accepted_gift_types={
                "unlimited_gifts": chat.type == "private", "limited_gifts": chat.type == "private",
                "unique_gifts": chat.type == "private", "premium_subscription": chat.type == "private",
                "gifts_from_channels": chat.type == "private",
            },
        )
        if chat.is_group:
            info["permissions"] = self._permissions()
            if chat.bot_status == "administrator":
                info["invite_link"] = f"https://t.me/+{abs(chat.id):x}emulated"
            info["has_visible_history"] = True
        if chat.pinned is not None and chat.pinned in chat.messages:
            info["pinned_message"] = self._without_reply(chat.messages[chat.pinned])
        return info

    async def _m_getChatMemberCount(self, p: _Params) -> int:
        chat = self._target_chat(p)
        return 2 if chat.type == "private" else chat.member_count

    async def _m_getChatMember(self, p: _Params) -> dict:
        chat = self._target_chat(p)
        user_id = p.int("user_id")
        if user_id is None:
            raise _bad("user_id is empty")
        if user_id != self.bot_id and user_id not in self._users:
            raise _bad("user not found")
        if chat.type == "private" and user_id not in (chat.id, self.bot_id):
            raise _bad("user not found")
        return self._member_json(chat, user_id)

    async def _m_getChatAdministrators(self, p: _Params) -> list[dict]:
        chat = self._target_chat(p)
        if chat.type == "private":
            raise _bad("there are no administrators in the private chat")
        result = [self._member_json(chat, uid) for uid, status in chat.members.items()
                  if status in ("creator", "administrator")]
        if chat.bot_status == "administrator":
            result.append(self._member_json(chat, self.bot_id))
        return result

    async def _m_sendChatAction(self, p: _Params) -> bool:
        self._target_chat(p, writing=True)
        if (p.str("action") or "") not in CHAT_ACTIONS:
            raise _bad("wrong parameter action in request")
        return True

    async def _m_pinChatMessage(self, p: _Params) -> bool:
        chat = self._target_chat(p)
        message_id = p.int("message_id")
        if message_id is None or message_id not in chat.messages:
            raise _bad("message to pin not found")
        if chat.is_group and chat.bot_status != "administrator":
            raise _bad("not enough rights to manage pinned messages in the chat")
        chat.pinned = message_id
        return True

    async def _m_unpinChatMessage(self, p: _Params) -> bool:
        chat = self._target_chat(p)
        if chat.is_group and chat.bot_status != "administrator":
            raise _bad("not enough rights to manage pinned messages in the chat")
        message_id = p.int("message_id")
        if message_id is not None and message_id not in chat.messages:
            raise _bad("message to unpin not found")
        chat.pinned = None
        return True


class _WithDescription:
    """A successful result that carries Telegram's "description" (setWebhook, deleteWebhook)."""

    def __init__(self, result: Any, description: str):
        self.result = result
        self.description = description


class _CommandScopes(dict):
    """setMyCommands lists by scope: "default", or the scope as JSON. Lookups accept any JSON
    spelling of a scope (key order, spacing) or the scope dict itself."""

    @staticmethod
    def normalize(scope: Any) -> str:
        if isinstance(scope, str):
            if scope in ("", "default"):
                return "default"
            language = ""
            if "|" in scope and not scope.rstrip().endswith("}"):
                scope, _, language = scope.rpartition("|")
            try:
                scope = json.loads(scope)
            except ValueError:
                return scope if not language else f"{scope}|{language}"
            key = _CommandScopes.normalize(scope)
            return f"{key}|{language}" if language else key
        if scope is None or (isinstance(scope, dict) and scope.get("type") == "default"):
            return "default"
        if isinstance(scope, dict):
            scope = dict(scope)
            for field in ("chat_id", "user_id"):
                if isinstance(scope.get(field), str) and re.fullmatch(r"-?\d+", scope[field]):
                    scope[field] = int(scope[field])
            return json.dumps(scope, sort_keys=True)
        return str(scope)

    def __getitem__(self, key: Any) -> list[dict]:
        return super().__getitem__(self.normalize(key))

    def __setitem__(self, key: Any, value: list[dict]) -> None:
        super().__setitem__(self.normalize(key), value)

    def __contains__(self, key: object) -> bool:
        return super().__contains__(self.normalize(key))

    def get(self, key: Any, default: Any = None) -> Any:
        return super().get(self.normalize(key), default)

    def pop(self, key: Any, *default: Any) -> Any:
        return super().pop(self.normalize(key), *default)
