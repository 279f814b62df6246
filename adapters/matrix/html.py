"""Text in both directions between the core's HTML subset and Matrix events.

Outbound: mentions become matrix.to pills listed in `m.mentions` (so only the
people named are notified), newlines become <br> (Matrix HTML collapses
whitespace, except inside <pre>), and `body` carries the plain fallback.

Inbound: a pill in a member's message stands for a user id, so it is read as
`@user:server` — names are labels, ids are identity; reply fallbacks
(`<mx-reply>`, leading `> ` lines) are dropped.
"""

from __future__ import annotations

import logging
import re
from html.parser import HTMLParser
from typing import Any
from urllib.parse import quote, unquote

from bot.events import platform_kind
from bot.render.text import MENTION, MENTION_SCHEME, RichText, mentioned

log = logging.getLogger(__name__)

MATRIX_TO = "https://matrix.to/#/"
HTML_FORMAT = "org.matrix.custom.html"
# Events are limited to 64 KiB; keep text well under it (body and formatted_body both count).
MAX_TEXT = 24_000
_PRE = re.compile(r"(<pre>.*?</pre>)", re.DOTALL)


def pill(user_id: str) -> str:
    return MATRIX_TO + quote(user_id, safe="@:")


def _pill_link(match: re.Match) -> str:
    user, name = mentioned(match)
    if platform_kind(user.platform) != "matrix":
        return name  # a member on another platform (a group linked across platforms): the name alone
    return f'<a href="{pill(user.user_id)}">{name}</a>'


def to_matrix_html(text: RichText) -> str:
    html = MENTION.sub(_pill_link, text.html)
    if f'href="{MENTION_SCHEME}' in html:
        raise ValueError("a mention link that is not in the form mention() writes")
    # Outside <pre>, a newline is a line break.
    return "".join(part if part.startswith("<pre>") else part.replace("\n", "<br>") for part in _PRE.split(html))


def message_content(text: RichText, msgtype: str = "m.notice") -> dict[str, Any]:
    """An `m.room.message` content with body, formatted_body and `m.mentions`.

    If the HTML cannot be rendered, the plain fallback goes out alone rather than nothing."""
    body = text.plain()
    try:
        formatted = to_matrix_html(text)
    except Exception:
        log.exception("could not render a message as Matrix HTML; sending its plain text")
        formatted = None
    if formatted is not None and len(formatted) > MAX_TEXT:
        formatted = None
    if len(body) > MAX_TEXT:
        body = body[:MAX_TEXT] + "\n…"
    content: dict[str, Any] = {"msgtype": msgtype, "body": body}
    if formatted is not None:
        content |= {"format": HTML_FORMAT, "formatted_body": formatted}
    content["m.mentions"] = {"user_ids": sorted({user.user_id for user in text.mentions
                                                 if platform_kind(user.platform) == "matrix"})}
    return content


def edit_content(event_id: str, text: RichText) -> dict[str, Any]:
    """An `m.replace` edit: clients show `m.new_content`; the outer body is for old clients.
    The outer `m.mentions` is empty so an edited tally does not notify anyone again."""
    new = message_content(text)
    outer = {key: value for key, value in new.items() if key != "m.mentions"}
    outer["body"] = "* " + outer["body"]
    if "formatted_body" in outer:
        outer["formatted_body"] = "* " + outer["formatted_body"]
    return outer | {"m.new_content": new, "m.mentions": {},
                    "m.relates_to": {"rel_type": "m.replace", "event_id": event_id}}


class _Reader(HTMLParser):
    """formatted_body → plain text with pills as user ids."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0  # inside <mx-reply>
        self._pill = False  # inside a pill, whose text is replaced by the id

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "mx-reply":
            self._skip += 1
        elif tag == "br":
            self.parts.append("\n")
        elif tag in ("p", "div", "li") and self.parts and not self._skip:
            self.parts.append("\n")
        elif tag == "a":
            href = dict(attrs).get("href") or ""
            if href.startswith((MATRIX_TO + "@", MATRIX_TO + "%40")):
                if not self._skip:
                    self.parts.append(unquote(href[len(MATRIX_TO):]).split("?")[0])
                self._pill = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "mx-reply" and self._skip:
            self._skip -= 1
        elif tag == "a":
            self._pill = False

    def handle_data(self, data: str) -> None:
        if not self._skip and not self._pill:
            self.parts.append(data)


def _strip_reply_fallback(body: str) -> str:
    """Old clients quote the message replied to as leading `> ` lines and a blank line."""
    lines = body.split("\n")
    if not lines or not lines[0].startswith("> "):
        return body
    index = 0
    while index < len(lines) and lines[index].startswith(">"):
        index += 1
    return "\n".join(lines[index:]).lstrip("\n")


def read_text(content: dict[str, Any]) -> str:
    """What a member typed, with pills as user ids and without a reply fallback."""
    body = content.get("body") if isinstance(content.get("body"), str) else ""
    formatted = content.get("formatted_body")
    if content.get("format") == HTML_FORMAT and isinstance(formatted, str) and MATRIX_TO in formatted:
        reader = _Reader()
        reader.feed(formatted)
        reader.close()
        return "".join(reader.parts).strip()
    return _strip_reply_fallback(body)
