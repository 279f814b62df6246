"""Text written once, in the HTML subset both platforms render.

Allowed tags: b i u s code pre a blockquote. Line breaks are newline
characters (Telegram rejects <br>). Mentions are links to `mention:N`, where N
indexes `RichText.mentions`; each adapter turns them into its own pill
(matrix.to link, tg://user link, `@name` in the console), so no platform
syntax lives in the core. Every string that came from a user goes through
`escape` (or the helpers below, which escape for you).
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from html.parser import HTMLParser

from pydantic import BaseModel, ConfigDict

from bot.events import UserRef

ALLOWED_TAGS = frozenset({"b", "i", "u", "s", "code", "pre", "a", "blockquote"})
MENTION_SCHEME = "mention:"


def escape(text: str) -> str:
    return html.escape(text, quote=True)


class RichText(BaseModel):
    model_config = ConfigDict(frozen=True)

    html: str
    mentions: tuple[UserRef, ...] = ()

    def plain(self) -> str:
        """The plain-text fallback: tags dropped, entities decoded, mentions as @name."""
        parser = _PlainText()
        parser.feed(self.html)
        parser.close()
        return "".join(parser.parts)

    def __add__(self, other: RichText) -> RichText:
        return join([self, other], "")


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


class TextBuilder:
    """Collects escaped pieces and mentions, line by line."""

    def __init__(self) -> None:
        self._lines: list[str] = []
        self._mentions: list[UserRef] = []

    def line(self, *pieces: str) -> TextBuilder:
        self._lines.append("".join(pieces))
        return self

    def mention(self, user: UserRef, name: str) -> str:
        index = len(self._mentions)
        self._mentions.append(user)
        return f'<a href="{MENTION_SCHEME}{index}">{escape(name)}</a>'

    def build(self) -> RichText:
        return RichText(html="\n".join(self._lines), mentions=tuple(self._mentions))


def rich(*pieces: str) -> RichText:
    """A one-line message from already-escaped pieces."""
    return RichText(html="".join(pieces))


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


def join(texts: Iterable[RichText], separator: str = "\n") -> RichText:
    """Concatenate messages, renumbering their mentions."""
    parts: list[str] = []
    mentions: list[UserRef] = []
    for text in texts:
        body = text.html
        # Renumber from the highest index down so mention:1 does not clobber mention:10.
        for index in range(len(text.mentions) - 1, -1, -1):
            body = body.replace(
                f'href="{MENTION_SCHEME}{index}"', f'href="{MENTION_SCHEME}#{index + len(mentions)}"'
            )
        parts.append(body.replace(f'href="{MENTION_SCHEME}#', f'href="{MENTION_SCHEME}'))
        mentions.extend(text.mentions)
    return RichText(html=separator.join(parts), mentions=tuple(mentions))


def addressed(user: UserRef, text: RichText) -> RichText:
    """A message said in a group to one member: `@you: …` (a direct message that could not be sent)."""
    builder = TextBuilder()
    builder.line(builder.mention(user, "you"), ":")
    return join([builder.build(), text], " ")
