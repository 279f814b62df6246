"""The render matrix: every kind of message the core produces, rendered for
Matrix, Telegram and the console, must come out valid — or it would be dropped.

The real core is driven on each platform (its own user ids, prefix and chat
ids): a story that produces every announcement (proposal outcomes, mandate
warnings and lapses, lottery draws, need nudges and digests, audit prompt,
reminder and report, setting changes…), then every declared command's example
and wrong forms (so a new command is covered without touching this file).
Members' names and texts are hostile: HTML, `&`, emoji, bidi controls, a
forged mention, thousands of characters. Every action recorded in the outbox
is then rendered:

- Telegram: `to_telegram_html` + `split_html`, each part accepted by the Bot
  API emulator's port of TDLib's HTML parser, at most 4,096 characters, every
  mention a `tg://user?id=` link of the right member;
- Matrix: `message_content`: only tags and link schemes of the spec's HTML
  subset, balanced, every mention a matrix.to pill of a member listed in
  `m.mentions`, `body` the plain fallback;
- console: the plain fallback, with no markup or entities of ours left.
"""

from __future__ import annotations

import itertools
import re
from datetime import timedelta
from html import escape as html_escape
from html import unescape
from html.parser import HTMLParser
from types import SimpleNamespace
from urllib.parse import unquote

import pytest
from sqlalchemy import select

from adapters.matrix.adapter import MatrixAdapter
from adapters.matrix.html import MATRIX_TO, message_content
from adapters.telegram import MAX_CAPTION, MAX_MESSAGE, TelegramAdapter, split_html, to_telegram_html
from bot.actions import (
    Action,
    DirectMessage,
    EditMessage,
    SendFile,
    SendImage,
    SendMessage,
    load_action,
)
from bot.app import build_core
from bot.clock import ManualClock
from bot.commands.catalog import REGISTRY
from bot.config import DefaultsConfig
from bot.events import ChatRef, ChoiceMade, CommandMessage, MemberJoined, UserRef
from bot.render.text import MENTION, RichText, addressed, mentioned
from scheduler.jobs import run_due_work
from storage.models import OutboxItem
from tests.harness import START
from tests.telegram_emulator import finish_text, parse_html

# Hostile user text: markup, ampersands, emoji (with joiners), bidi overrides and isolates.
HOSTILE = ('Fix <b>x</b><script>alert(1)</script> & AT&T "quotes" \'n\' 🌱👩‍👩‍👧 '
           '\u202eevil\u202c \u2066iso\u2069')
FORGED = '<a href="mention:telegram/1001">boss</a> mention:0 <a href="mention:0">x</a>'
LONG = ("Details & <i>more</i> 🌮 \u202e" * 200)[:1990]
REASON = ("because <b>we</b> & they said so 🌱 " * 30)[:490]

MEMBERS = {  # key: display name
    "alice": "alice",
    "bob": "bob",
    "carol": "Carol <i>x</i><script>alert(1)</script> & Co 👩‍👩‍👧 \u202eloraC\u202c \u2066iso\u2069",
    "dan": "dan & <u>sons</u>",
    "erin": "erin 🌱",
}
PLATFORMS = {
    "telegram": SimpleNamespace(prefix="/", chat="-1001234567",
                                ids={key: str(1001 + n) for n, key in enumerate(MEMBERS)},
                                private=lambda user_id: user_id),
    "matrix": SimpleNamespace(prefix="!", chat="!room:example.org",
                              ids={key: f"@{key}:example.org" for key in MEMBERS},
                              private=lambda user_id: f"!dm-{user_id[1:].split(':')[0]}:example.org"),
    "console": SimpleNamespace(prefix="!", chat="room", ids={key: key for key in MEMBERS},
                               private=lambda user_id: f"dm-{user_id}"),
}
# Matrix's HTML subset for m.room.message (client-server API, "m.room.message msgtypes").
MATRIX_TAGS = frozenset({
    "font", "del", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "p", "a", "ul", "ol", "sup", "sub", "li",
    "b", "i", "u", "strong", "em", "s", "code", "hr", "br", "div", "table", "thead", "tbody", "tr", "th", "td",
    "caption", "pre", "span", "img", "details", "summary", "mx-reply"})
MATRIX_VOID = frozenset({"br", "hr", "img"})
MATRIX_SCHEMES = ("http://", "https://", "ftp://", "mailto:", "magnet:")
_TAG = re.compile(r"</?[A-Za-z][^<>]*>")
_ENTITY = re.compile(r"&(?:[A-Za-z]+|#[0-9]+|#x[0-9A-Fa-f]+);")


class Drive:
    """The real core on one platform, with a manual clock; scheduled work runs as time moves."""

    def __init__(self, url: str, platform: str) -> None:
        self.platform, self.spec = platform, PLATFORMS[platform]
        self.clock = ManualClock(START)
        self.core = build_core(url, self.clock, DefaultsConfig(), {platform: self.spec.prefix})
        self.chat = ChatRef(platform=platform, chat_id=self.spec.chat)
        self._ids = itertools.count(1)
        self.typed: list[str] = []  # everything members typed, to tell their text from our markup

    def user(self, who: str) -> UserRef:
        return UserRef(platform=self.platform, user_id=self.spec.ids[who])

    def say(self, who: str, body: str, private: bool = False) -> list[Action]:
        user = self.user(who)
        chat = ChatRef(platform=self.platform, chat_id=self.spec.private(user.user_id)) if private else self.chat
        text = body if private else self.spec.prefix + body
        self.typed.append(text)
        return self.core.handle(CommandMessage(
            chat=chat, sender=user, sender_name=MEMBERS[who], text=text, event_id=f"e{next(self._ids)}",
            is_private=private, chat_title="Tenants <b>&</b> friends 🏠"))

    def tap(self, who: str, payload: str) -> list[Action]:
        return self.core.handle(ChoiceMade(chat=self.chat, sender=self.user(who), sender_name=MEMBERS[who],
                                           payload=payload, event_id=f"cb:{next(self._ids)}", message_id="7"))

    def join(self, who: str) -> None:
        self.core.handle(MemberJoined(chat=self.chat, user=self.user(who), display_name=MEMBERS[who],
                                      event_id=f"join:{who}"))

    def wait(self, duration: timedelta, step: timedelta = timedelta(hours=3)) -> None:
        end = self.clock.now() + duration
        while self.clock.now() < end:
            self.clock.advance(min(step, end - self.clock.now()))
            run_due_work(self.core)

    def outbox(self) -> list[Action]:
        table = OutboxItem.__table__
        with self.core.db.transaction() as session:
            return [load_action(row) for row in session.scalars(select(table.c.action).order_by(table.c.id))]


def story(drive: Drive) -> list[Action]:
    """Produce every announcement and most replies; returns the actions handed back directly
    (edits that a newer pending edit replaced are gone from the outbox, not from here)."""
    say, seen = drive.say, []

    def run(who: str, body: str, private: bool = False) -> None:
        seen.extend(say(who, body, private))

    for who in MEMBERS:
        drive.join(who)
        run(who, "help")
    run("alice", f'role add facilitator term=30d fill=lottery handover="{HOSTILE}"')
    run("alice", "role add treasurer term=60d max_terms=2")
    run("alice", "role add greeter term=20d fill=volunteer")
    run("alice", "volunteer facilitator")
    run("carol", "volunteer facilitator")
    run("dan", "draw facilitator")  # a lottery: the holder's name in the draw, warnings, lapse
    run("erin", f"draw add {HOSTILE}")  # a contribution is shown, escaped, when the lottery is drawn
    run("bob", f'draw add "{FORGED}"')
    run("bob", "volunteer treasurer")
    run("carol", "volunteer treasurer")
    run("alice", "elect treasurer")  # proposal #1, a choice poll of the candidates
    for who in ("alice", "dan", "erin"):
        run(who, "vote 1 2")
    run("carol", "volunteer greeter")  # proposal #2: an appointment nobody is silently given
    run("erin", "shadow facilitator")
    run("alice", "handover facilitator")
    run("alice", f"propose {HOSTILE} | {LONG} closes=1d")  # #3
    run("bob", 'propose Lunch options="Soup <b>; Pizza & co; 🌮 \u202e" closes=2d')  # #4
    run("carol", f'propose "{FORGED}" rule=consensus quorum=50%')  # #5
    run("dan", "propose Paint it black closes=1d")  # #6, rejected
    for who in MEMBERS:
        run(who, f"vote 3 {'yes' if who != 'dan' else 'block'} {REASON} {who}")
    for who in ("alice", "bob", "erin"):
        run(who, "vote 6 no")
    seen.extend(drive.tap("dan", "vote 4 2"))
    seen.extend(drive.tap("dan", "vote 4 9"))  # refused, as a toast
    run("alice", "remind 5")  # mentions everyone who has not voted, the hostile name too
    run("alice", "proposal 3")  # longer than one Telegram message
    run("alice", "proposals")
    # needs: #1 need, #2 need, #3 offer, #4 need, #5 need, #6 anonymous
    run("alice", f"need {HOSTILE} category=food urgent")
    run("carol", f'need "{FORGED}" category=housing')
    run("bob", 'offer "bikes & <tools> 🚲" category=repair')
    run("dan", "need a ride category=transport")
    run("alice", "need soup")
    run("erin", 'need "a lawyer <b>now</b>" group=#1', private=True)
    run("bob", "claim 1")  # mentions alice, the author: the bug that dropped this on Matrix
    run("alice", "claim 2")  # mentions the hostile name
    run("carol", "claim 6")  # anonymous: its author is told privately
    run("carol", "unclaim 6")
    run("bob", "claim 6")
    run("bob", "met 6")
    run("erin", "cancel 6", private=True)
    run("dan", "needs")
    run("dan", "needs repair")
    run("dan", "needs nothing-here")
    run("alice", "set vote_duration 2d")
    run("alice", "set timezone America/Sao_Paulo")
    run("alice", "set need_nudge_after 12h")
    run("alice", "set digest wed 10:00")
    run("alice", "set auto_draw on")  # a lapse of the lottery seat comes with the draw, in one message
    run("alice", "settings")
    run("bob", "audit")
    run("bob", f'audit food 12 "{HOSTILE}"')
    run("carol", "audit housing 3 <b>roof</b> & walls")
    # A federation (of this group alone): a shared question with its card, the delegates' lines, and
    # the federation's outcome at the deadline; a shared need; a code to link another platform's chat.
    run("alice", f"federation create River {HOSTILE}")
    run("alice", "role add delegate term=90d delegate=yes")
    run("alice", f"propose Share the van {HOSTILE} closes=1d share=federation")
    run("bob", "federation")
    run("carol", f"need a ride {HOSTILE} share=federation")
    run("alice", "link platform")
    drive.wait(timedelta(days=10))  # outcomes, draws, nudges, the digest, the audit's reminder and report
    run("alice", "audit report")
    run("alice", "audit report csv")
    run("alice", "decisions")
    run("alice", "roles")
    run("alice", "role history facilitator")
    drive.wait(timedelta(days=95), step=timedelta(hours=12))  # warnings, lapses, the next audit
    return seen


def sweep(drive: Drive) -> list[Action]:
    """Every declared command: its example, bare, with garbage, and (where allowed) privately."""
    seen = []
    garbage = f"{HOSTILE} x=1"
    for command in REGISTRY.visible():
        for who, body in (("alice", command.example), ("bob", command.name), ("carol", f"{command.name} {garbage}"),
                          ("dan", f'{command.name} "{FORGED}" {"9" * 12} {LONG}')):
            seen.extend(drive.say(who, body))
        if command.where == "any":
            seen.extend(drive.say("erin", command.example, private=True))
            seen.extend(drive.say("erin", f"{command.name} {garbage}", private=True))
    seen.extend(drive.say("alice", f"frobnicate {HOSTILE}", private=True))  # an unknown command
    seen.extend(drive.say("alice", "vot 1 yes"))  # a near miss
    seen.extend(drive.say("alice", "propose " + "t" * 3992))  # the longest command there is
    seen.extend(drive.say("alice", "propose " + "t" * 4000))  # longer than any command may be
    drive.wait(timedelta(days=4))  # what the examples opened closes
    return seen


# what gets rendered ---------------------------------------------------------------------------

def texts_of(action: Action) -> list[tuple[str, RichText]]:
    if isinstance(action, (SendImage, SendFile)):
        return [(action.kind + " caption", action.caption)] if action.caption else []
    found = [(action.kind, action.text)]
    if isinstance(action, (SendMessage, EditMessage)) and action.choices:
        # Matrix has no buttons: the card carries a legend of reactions.
        found.append((action.kind + " with legend",
                      MatrixAdapter._with_legend(None, action.text, action.choices, action.language)))
    if isinstance(action, DirectMessage):
        # When the member cannot be written to privately, it is said in the group, to them.
        found.append(("dm in the group", addressed(action.user, action.text)))
    return found


# the checks ---------------------------------------------------------------------------------

def mentions_in(text: RichText) -> list[UserRef]:
    """Every mention in order, repeats included."""
    return [mentioned(match)[0] for match in MENTION.finditer(text.html)]


def check_telegram(text: RichText, platform: str, caption: bool = False) -> int:
    """Returns how many parts the text takes on Telegram."""
    limit = MAX_CAPTION if caption else MAX_MESSAGE
    if caption:
        parts = [TelegramAdapter._caption(SimpleNamespace(), text)]
    else:
        parts = split_html(to_telegram_html(text))
    linked: list[int] = []
    for part in parts:
        plain, entities = parse_html(part, user_lookup=lambda user_id: {"id": user_id, "is_bot": False})
        plain, entities = finish_text(plain, entities)
        assert plain.strip(), f"an empty Telegram message from {text.html[:200]!r}"
        assert len(plain) <= limit, f"{len(plain)} characters in one Telegram part"
        linked += [entity["user"]["id"] for entity in entities if entity["type"] == "text_mention"]
    expected = [int(user.user_id) for user in mentions_in(text) if user.platform == "telegram"]
    if platform == "telegram" and not caption:
        assert linked == expected, f"mentions {expected} became links to {linked}"
    else:
        assert set(linked) <= set(expected)
    return len(parts)


class _MatrixChecker(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.pills: list[str] = []

    def handle_starttag(self, tag, attrs) -> None:
        assert tag in MATRIX_TAGS, f"<{tag}> is not in Matrix's HTML subset"
        for name, value in attrs:
            if tag == "a" and name == "href":
                assert value and value.startswith(MATRIX_SCHEMES), f"a link Matrix clients drop: {value!r}"
                if value.startswith(MATRIX_TO):
                    self.pills.append(unquote(value[len(MATRIX_TO):]))
            else:
                raise AssertionError(f"attribute {name}= on <{tag}>")
        if tag not in MATRIX_VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs) -> None:
        assert tag in MATRIX_VOID, f"<{tag}/>"
        self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag) -> None:
        assert tag not in MATRIX_VOID, f"</{tag}>"
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes {self.stack[-1:] or 'nothing'}"
        self.stack.pop()


def check_matrix(text: RichText, platform: str) -> None:
    content = message_content(text)
    assert content["body"] == text.plain()
    assert content.get("format") == "org.matrix.custom.html", "no formatted_body: it would have been dropped"
    checker = _MatrixChecker()
    checker.feed(content["formatted_body"])
    checker.close()
    assert not checker.stack, f"unclosed {checker.stack}"
    # A member on another platform (a group linked across platforms) is named, not pilled.
    users = [user for user in mentions_in(text) if user.platform == "matrix"]
    assert len(checker.pills) == len(users), "a mention did not become a pill"
    listed = content["m.mentions"]["user_ids"]
    assert set(checker.pills) == set(listed) == {user.user_id for user in users}
    if platform == "matrix":
        assert all(re.fullmatch(r"@[a-z]+:example\.org", pill) for pill in checker.pills)


def check_console(text: RichText, typed_tags: set[str]) -> None:
    plain = text.plain()
    # The same text by another road: tags dropped, a mention as @name, entities decoded.
    independent = unescape(_TAG.sub("", MENTION.sub(lambda m: "@" + m[3], text.html)))
    assert plain == independent
    ours = set(_TAG.findall(text.html))  # the real tags (anything typed was escaped, so not matched)
    assert set(_TAG.findall(plain)) & ours <= typed_tags, "markup of ours left in the plain text"
    assert not _ENTITY.search(plain), "an HTML entity left in the plain text"


def render_all(drive: Drive, actions: list[Action]) -> dict:
    typed_tags = {tag for line in drive.typed for tag in _TAG.findall(line)} | set(_TAG.findall(HOSTILE))
    distinct = {action.model_dump_json(): action for action in [*actions, *drive.outbox()]}
    counts = {"texts": 0, "telegram_parts": 0, "mentions": 0, "kinds": set()}
    for action in distinct.values():
        for what, text in texts_of(action):
            caption = what.endswith("caption")
            counts["telegram_parts"] += check_telegram(text, drive.platform, caption=caption)
            check_matrix(text, drive.platform)
            check_console(text, typed_tags)
            counts["texts"] += 1
            counts["mentions"] += len(text.mentions)
            counts["kinds"].add(what)
    return counts


def plains(drive: Drive, actions: list[Action]) -> str:
    return "\n\n".join(text.plain() for action in [*actions, *drive.outbox()] for _, text in texts_of(action))


@pytest.mark.parametrize("platform", ["telegram", "matrix", "console"])
def test_every_message_renders_on_every_platform(sqlite_url, platform):
    drive = Drive(sqlite_url, platform)
    actions = story(drive) + sweep(drive)
    counts = render_all(drive, actions)
    said = plains(drive, actions)
    # Every kind of announcement was produced (so it was rendered above).
    for expected in ("chose", "passed", "rejected",  # outcomes at the deadline
                     "Lottery #1 for facilitator: 1 seat", "Lottery #1 for facilitator: drawn",  # a draw
                     "term as", "has ended",  # mandate warnings and lapses
                     "Still waiting for help", "This week in mutual aid",  # nudges, the digest
                     "Sovereignty audit #1", "Halfway through", "what we did for ourselves",
                     "Sovereignty audit #2",  # prompt, reminder, report, and the next audit by itself
                     "Settings of this group", "vote_duration", "is on it",
                     "Shared with the federation", "Federation River", "Your code to link the group",
                     "Usage:", "Example:", "I don't know the command", "Did you mean", "a command can be at most"):
        assert expected in said, f"nothing said {expected!r}"
    # Hostile text came back as typed (plain) and escaped (HTML), never as markup.
    assert HOSTILE in said and MEMBERS["carol"] in said
    everything = [text for action in [*actions, *drive.outbox()] for _, text in texts_of(action)]
    assert any(html_escape(HOSTILE) in text.html for text in everything)
    assert not any("<script" in text.html or '<a href="mention:0">' in text.html for text in everything)
    assert {"send", "edit", "ack", "dm", "image caption", "send with legend", "dm in the group"} <= counts["kinds"]
    assert counts["texts"] > 300 and counts["mentions"] > 10
    assert counts["telegram_parts"] > counts["texts"]  # some took more than one Telegram message
    print(f"\n{platform}: {counts['texts']} texts rendered, {counts['mentions']} mentions, "
          f"{counts['telegram_parts']} Telegram parts")


def test_a_claim_of_another_members_need_renders_on_matrix_and_mentions_its_author(sqlite_url):
    drive = Drive(sqlite_url, "matrix")
    drive.say("alice", "need a ride to the clinic")
    [reply] = drive.say("bob", "claim 1")
    assert reply.text.mentions == (drive.user("alice"),)
    content = message_content(reply.text)
    assert content["m.mentions"] == {"user_ids": ["@alice:example.org"]}
    assert '<a href="https://matrix.to/#/@alice:example.org">alice</a>, bob is on it.' in content["formatted_body"]
    assert "@alice, bob is on it." in content["body"]
