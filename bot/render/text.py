"""Text written once, in the HTML subset both platforms render.

Allowed tags: b i u s code pre a blockquote. Line breaks are newline
characters (Telegram rejects <br>). Every string that came from a user goes
through `escape` (or the helpers below, which escape for you), so a member can
never type markup — nor a mention — into a message.

A mention carries the member it names inside the markup itself:

    <a href="mention:PLATFORM/USER_ID">name</a>

with the platform and the user id percent-quoted (any platform id is then safe
inside an attribute) and the name escaped. `mention(user, name)` makes one; it
needs no builder, so a mention made anywhere stays valid wherever its string
goes: composing, joining and nesting texts are plain string concatenation.
Each adapter turns the link into its own pill (a matrix.to link, a
tg://user link, `@name` in the console), so no platform syntax lives in the
core. `RichText.mentions` is derived from the markup: each member once, in
the order of their first mention.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable
from functools import lru_cache
from html.parser import HTMLParser
from typing import Any
from urllib.parse import quote as _quote
from urllib.parse import unquote

from pydantic import BaseModel, ConfigDict, model_validator

from bot.events import UserRef

ALLOWED_TAGS = frozenset({"b", "i", "u", "s", "code", "pre", "a", "blockquote"})
MENTION_SCHEME = "mention:"
# A whole mention as `mention()` writes it: the name inside is escaped text, never a tag.
MENTION = re.compile(r'<a href="mention:([^"/]*)/([^"]*)">([^<]*)</a>')
# The form stored before mentions carried their user: `mention:N` indexing a `mentions` list.
_INDEXED = re.compile(r'<a href="mention:(\d+)">([^<]*)</a>')


def escape(text: str) -> str:
    return html.escape(text, quote=True)


def mention_href(user: UserRef) -> str:
    return f"{MENTION_SCHEME}{_quote(user.platform, safe='')}/{_quote(user.user_id, safe='')}"


def mention(user: UserRef, name: str) -> str:
    """A mention of `user` shown as `name` (escaped here): a string that can go into any text."""
    return f'<a href="{mention_href(user)}">{escape(name)}</a>'


def mentioned(match: re.Match) -> tuple[UserRef, str]:
    """The user and the (escaped) name of one `MENTION` match."""
    return UserRef(platform=unquote(match[1]), user_id=unquote(match[2])), match[3]


@lru_cache(maxsize=4096)
def _mentions_of(markup: str) -> tuple[UserRef, ...]:
    if MENTION_SCHEME not in markup:
        return ()
    return tuple(dict.fromkeys(mentioned(match)[0] for match in MENTION.finditer(markup)))


def _upgrade_indexed(markup: str, mentions: list[Any]) -> str:
    """`mention:N` → the mention of mentions[N]; a dangling index keeps only the name."""
    users = [UserRef.model_validate(user) for user in mentions]

    def replace(match: re.Match) -> str:
        index = int(match[1])
        if index < len(users):
            return f'<a href="{mention_href(users[index])}">{match[2]}</a>'
        return match[2]
    return _INDEXED.sub(replace, markup)


class RichText(BaseModel):
    """A message in the HTML subset. Immutable; `+` and `join` concatenate."""

    model_config = ConfigDict(frozen=True)

    html: str

    @model_validator(mode="before")
    @classmethod
    def _upgrade_stored_form(cls, data: Any) -> Any:
        """Actions queued before mentions carried their user were stored as
        {"html": "… mention:0 …", "mentions": [{platform, user_id}, …]}: rewrite
        them in the current form so they still render after an upgrade."""
        if isinstance(data, dict) and "mentions" in data:
            data = dict(data)
            mentions = data.pop("mentions") or []
            if isinstance(data.get("html"), str):
                data["html"] = _upgrade_indexed(data["html"], list(mentions))
        return data

    @property
    def mentions(self) -> tuple[UserRef, ...]:
        """The members this text mentions: each once, in the order of their first mention."""
        return _mentions_of(self.html)

    def plain(self) -> str:
        """The plain-text fallback: tags dropped, entities decoded, mentions as @name."""
        parser = _PlainText()
        parser.feed(self.html)
        parser.close()
        return "".join(parser.parts)

    def __add__(self, other: RichText) -> RichText:
        return RichText(html=self.html + other.html)


class _PlainText(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        href = dict(attrs).get("href") or ""
        if tag == "a" and href.startswith(MENTION_SCHEME):
            self.parts.append("@")

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


Piece = str | RichText


def _markup(piece: Piece) -> str:
    return piece.html if isinstance(piece, RichText) else piece


class TextBuilder:
    """Collects lines of already-escaped pieces (strings or RichText)."""

    mention = staticmethod(mention)  # kept for callers that wrote `text.mention(…)`

    def __init__(self) -> None:
        self._lines: list[str] = []

    def line(self, *pieces: Piece) -> TextBuilder:
        self._lines.append("".join(_markup(piece) for piece in pieces))
        return self

    def build(self) -> RichText:
        return RichText(html="\n".join(self._lines))


def rich(*pieces: Piece) -> RichText:
    """A one-line message from already-escaped pieces."""
    return RichText(html="".join(_markup(piece) for piece in pieces))


def plain(text: str) -> RichText:
    return RichText(html=escape(text))


def b(text: str) -> str:
    return f"<b>{escape(text)}</b>"


def i(text: str) -> str:
    return f"<i>{escape(text)}</i>"


def code(text: str) -> str:
    return f"<code>{escape(text)}</code>"


def quote(text: str) -> str:
    return f"<blockquote>{escape(text)}</blockquote>"


def join(texts: Iterable[Piece], separator: str = "\n") -> RichText:
    """Concatenate messages (their mentions come along: they live in the markup)."""
    return RichText(html=separator.join(_markup(text) for text in texts))


# A command hint (`!vote`, `/help`) in markup: a prefix not glued to a word, a path, a tag or an entity.
_HINT = re.compile(r"(?<![\w/!:.<&;])[!/]([a-z][a-z-]*)")


def with_prefix(text: RichText, prefix: str, commands: Iterable[str]) -> RichText:
    """The text with each hint of one of `commands` written with `prefix`: a message written for one
    platform, said in a chat on another (a group linked across platforms)."""
    known = frozenset(commands)

    def swap(match: re.Match) -> str:
        return prefix + match[1] if match[1] in known else match[0]
    return RichText(html=_HINT.sub(swap, text.html))


def addressed(user: UserRef, text: RichText) -> RichText:
    """A message said in a group to one member: `@you: …` (a direct message that could not be sent)."""
    return rich(mention(user, "you"), ": ", text)
