"""One group across Matrix and Telegram, one member across accounts — through the core, with
events as each adapter hands them over (the real adapters: tests/test_linked_platforms.py).

What members see is read from the outbox: what the bot will say, in which chat, once."""

from __future__ import annotations

import itertools
import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from bot.actions import DirectMessage, EditMessage, SendMessage, load_action
from bot.app import build_core
from bot.clock import ManualClock
from bot.config import DefaultsConfig
from bot.events import ChatRef, CommandMessage, MemberCount, UserRef
from bot.verify import verify
from scheduler.jobs import run_due_work
from storage.models import Ballot, GroupChat, LogEntry, OutboxItem, Proposal
from tests.harness import START

MATRIX = ChatRef(platform="matrix", chat_id="!tenants:example.org")
TELEGRAM = ChatRef(platform="telegram", chat_id="-1001234")
OTHER_MATRIX = ChatRef(platform="matrix", chat_id="!other:example.org")
ANA, BOB = "@ana:example.org", "@bob:example.org"  # Matrix
CARLA, DAN, ANA_TG = "5001", "5002", "5003"  # Telegram (ANA_TG: Ana's Telegram account)
CODE = re.compile(r"\b[A-Z2-9]{4}-[A-Z2-9]{4}\b")
_events = itertools.count()


class Chats:
    """The core, spoken to from several chats of two platforms."""

    def __init__(self, database_url: str) -> None:
        self.clock = ManualClock(START)
        self.database_url = database_url
        self.core = build_core(database_url, self.clock, DefaultsConfig(quorum="50%"))

    def restart(self) -> None:
        """A new core on the same database (a restart: nothing kept in memory)."""
        self.core.db.dispose()
        self.core = build_core(self.database_url, self.clock, DefaultsConfig(quorum="50%"))

    def say(self, chat: ChatRef, user: str, text: str, private: bool = False) -> list:
        where = ChatRef(platform=chat.platform, chat_id=f"dm-{user}") if private else chat
        return self.core.handle(CommandMessage(
            chat=where, sender=UserRef(platform=chat.platform, user_id=user), sender_name=NAMES[user], text=text,
            event_id=f"{chat.platform}-{next(_events)}", is_private=private, chat_title="Tenants' union"))

    def texts(self, actions, kind=SendMessage) -> list[str]:
        return [action.text.plain() for action in actions if isinstance(action, kind)]

    def outbox(self) -> list:
        with self.core.db.transaction() as session:
            return [load_action(row) for row in session.scalars(select(OutboxItem.action).order_by(OutboxItem.id))
                    if row]

    def said_in(self, chat: ChatRef, containing: str) -> list[str]:
        return [a.text.plain() for a in self.outbox()
                if isinstance(a, SendMessage) and a.chat == chat and containing in a.text.plain()]

    def latest_card(self, chat: ChatRef, number: int) -> str:
        """The card as the chat shows it now: its last edit (or the card as posted)."""
        shown = [a.text.plain() for a in self.outbox()
                 if isinstance(a, (SendMessage, EditMessage)) and a.chat == chat and a.track == f"proposal:{number}"]
        return shown[-1]

    def link(self) -> None:
        """Ana links the Matrix room with the Telegram group; Carla types the code there."""
        code = code_in(self.say(MATRIX, ANA, "!link platform"))
        self.say(TELEGRAM, CARLA, f"/link platform {code}")

    def count(self, model, *where) -> int:
        with self.core.db.transaction() as session:
            return session.scalar(select(func.count()).select_from(model).where(*where))

    def due(self) -> None:
        run_due_work(self.core)


NAMES = {ANA: "Ana", BOB: "Bob", CARLA: "Carla", DAN: "Dan", ANA_TG: "Ana"}


def code_in(actions) -> str:
    private = [a.text.plain() for a in actions if isinstance(a, DirectMessage)
               or (isinstance(a, SendMessage) and a.chat.chat_id.startswith("dm-"))]
    assert private, "the code is given privately"
    return CODE.search(private[0])[0]


@pytest.fixture
def chats(database_url):
    chats = Chats(database_url)
    yield chats
    chats.core.db.dispose()


def test_a_linked_group_votes_from_both_chats_and_hears_everything_in_both(chats):
    chats.say(MATRIX, BOB, "!proposals")
    chats.say(MATRIX, BOB, "!propose Early question closes=3d")
    asked = chats.say(MATRIX, ANA, "!link platform")
    # The code goes to Ana alone; the room only hears that she asked.
    code = code_in(asked)
    assert not any(code in text for text in chats.texts(asked) if "dm-" not in text)
    assert [a.user.user_id for a in asked if isinstance(a, DirectMessage)] == [ANA]
    linked = chats.say(TELEGRAM, CARLA, f"/link platform {code}")
    announced = {a.chat: a.text.plain() for a in linked if isinstance(a, SendMessage) and "one group" in a.text.plain()}
    assert set(announced) == {MATRIX, TELEGRAM}
    assert "/link me" in announced[TELEGRAM] and "!link me" in announced[MATRIX]  # each chat's own prefix

    # The vote opened before the link reaches the Telegram chat with the link, buttons and all.
    caught_up = [a for a in linked if isinstance(a, SendMessage) and a.track == "proposal:1"]
    assert [(a.chat, bool(a.choices)) for a in caught_up] == [(TELEGRAM, True)]
    assert "/vote 1" in caught_up[0].text.plain()
    opened = chats.say(TELEGRAM, DAN, "/propose Share the tool library closes=2d")
    cards = {a.chat: a.text.plain() for a in opened if isinstance(a, SendMessage) and a.track == "proposal:2"}
    assert set(cards) == {MATRIX, TELEGRAM}
    assert "!vote 2" in cards[MATRIX] and "/vote 2" in cards[TELEGRAM]

    chats.say(MATRIX, ANA, "!vote 2 yes")
    chats.say(TELEGRAM, CARLA, "/vote 2 yes")
    chats.say(MATRIX, BOB, "!vote 2 no")
    chats.say(TELEGRAM, DAN, "/vote 2 yes")
    for chat in (MATRIX, TELEGRAM):
        assert "3 yes · 1 no" in chats.latest_card(chat, 2)
    assert "!vote 2" in chats.latest_card(MATRIX, 2) and "/vote 2" in chats.latest_card(TELEGRAM, 2)

    chats.clock.advance(timedelta(days=2, minutes=1))
    chats.due()
    chats.due()  # a second look finds nothing more to say
    for chat in (MATRIX, TELEGRAM):
        outcome = chats.said_in(chat, "#2 Share the tool library")
        outcome = [text for text in outcome if "passed" in text.lower()]
        assert len(outcome) == 1, outcome
        assert "3 yes" in chats.latest_card(chat, 2)
    # Quorum counted distinct members of both chats: 4 of 4 voted.
    assert chats.count(Ballot) == 4


def test_linked_accounts_are_one_member_with_one_vote(chats):
    chats.link()
    chats.say(MATRIX, BOB, "!proposals")
    chats.say(MATRIX, ANA, "!propose Buy a ladder closes=1d")
    # Ana votes from both accounts before linking them: until then she counts twice.
    chats.say(MATRIX, ANA, "!vote 1 yes")
    chats.clock.advance(timedelta(minutes=5))
    chats.say(TELEGRAM, ANA_TG, "/vote 1 no")
    assert "1 yes · 1 no" in chats.latest_card(MATRIX, 1)
    with chats.core.db.transaction() as session:
        group = chats.core.directory.find_group(session, MATRIX)
        assert chats.core.directory.member_count(session, group) == 4  # Ana, Bob, Carla, Ana's Telegram

    given = chats.say(TELEGRAM, ANA_TG, "/link me", private=True)
    code = code_in(given)
    linked = chats.say(MATRIX, ANA, f"!link me {code}", private=True)
    assert any("one member now" in text for text in chats.texts(linked))
    with chats.core.db.transaction() as session:
        group = chats.core.directory.find_group(session, MATRIX)
        assert chats.core.directory.member_count(session, group) == 3
    # Her later ballot (no, from Telegram) is the one that counts; the card follows in both chats.
    assert chats.count(Ballot) == 1
    for chat in (MATRIX, TELEGRAM):
        assert "0 yes · 1 no" in chats.latest_card(chat, 1)
    # From now on a vote from either account replaces the other.
    chats.say(MATRIX, ANA, "!vote 1 yes")
    chats.say(TELEGRAM, ANA_TG, "/vote 1 abstain")
    assert chats.count(Ballot) == 1
    shown = chats.texts(chats.say(TELEGRAM, CARLA, "/proposal 1"))[0]
    assert shown.count("Ana") == 2, shown  # the author line and one ballot
    assert "1 abstain" in shown


def test_codes_refuse_clearly_and_change_nothing(chats):
    chats.say(MATRIX, BOB, "!proposals")
    code = code_in(chats.say(MATRIX, ANA, "!link platform"))

    def refused(actions) -> str:
        [text] = chats.texts(actions)
        assert text.startswith("⚠️"), text
        return text

    assert "don't know the code" in refused(chats.say(TELEGRAM, CARLA, "/link platform ZZZZ-ZZZZ"))
    assert "don't know the code" in refused(chats.say(TELEGRAM, CARLA, "/link platform <b>x</b>"))
    # Matrix with Matrix: one chat per platform.
    assert "different platforms" in refused(chats.say(OTHER_MATRIX, BOB, f"!link platform {code}"))
    assert "already part" in refused(chats.say(MATRIX, BOB, f"!link platform {code}"))
    chats.clock.advance(timedelta(minutes=16))
    assert "expired" in refused(chats.say(TELEGRAM, CARLA, f"/link platform {code}"))
    assert chats.count(GroupChat) == 0

    code = code_in(chats.say(MATRIX, ANA, "!link platform"))
    chats.say(TELEGRAM, CARLA, f"/link platform {code.lower()}")  # typed in lower case: still the code
    assert chats.count(GroupChat) == 1
    assert "used already" in refused(chats.say(TELEGRAM, DAN, f"/link platform {code}"))

    assert "private chat" in refused(chats.say(MATRIX, ANA, "!link me"))
    own = code_in(chats.say(MATRIX, ANA, "!link me", private=True))
    assert "other account" in refused(chats.say(MATRIX, ANA, f"!link me {own}", private=True))
    assert "don't know the code" in refused(chats.say(TELEGRAM, ANA_TG, f"/link platform {own}"))  # not that kind
    assert "not linked" in refused(chats.say(OTHER_MATRIX, BOB, "!unlink platform"))


def test_two_groups_with_records_are_not_merged_one_without_is(chats):
    chats.say(MATRIX, ANA, "!propose Paint the hall")
    chats.say(TELEGRAM, CARLA, "/propose Fix the stairs")
    code = code_in(chats.say(MATRIX, ANA, "!link platform"))
    [refusal] = chats.texts(chats.say(TELEGRAM, CARLA, f"/link platform {code}"))
    assert "can't merge" in refusal and "group log" in refusal and "proposals numbered #1" in refusal
    assert chats.count(GroupChat) == 0

    # An empty Matrix room joins the Telegram group that has a record: its record is kept.
    chats.say(OTHER_MATRIX, BOB, "!proposals")
    code = code_in(chats.say(TELEGRAM, CARLA, "/link platform"))
    linked = chats.say(OTHER_MATRIX, BOB, f"!link platform {code}")
    # The Matrix room, new to the group, gets the open vote's card (the Telegram chat has it already).
    assert [a.chat for a in linked if isinstance(a, SendMessage) and a.track == "proposal:1"] == [OTHER_MATRIX]
    [listing] = chats.texts(chats.say(OTHER_MATRIX, BOB, "!proposals"))
    assert "Fix the stairs" in listing and "Paint the hall" not in listing
    chats.say(OTHER_MATRIX, BOB, "!vote 1 yes")
    assert "1 yes" in chats.latest_card(TELEGRAM, 1)


def test_unlinking_leaves_the_shared_history_with_both_chats(chats):
    chats.link()
    chats.say(MATRIX, ANA, "!propose Open the garden closes=1d")
    chats.say(TELEGRAM, CARLA, "/vote 1 yes")
    chats.say(MATRIX, ANA, "!vote 1 yes")
    chats.clock.advance(timedelta(days=1, minutes=1))
    chats.due()
    chats.restart()  # nothing about the link lives only in memory
    chats.say(TELEGRAM, DAN, "/propose Weekly clean-up closes=2d")

    unlinked = chats.say(TELEGRAM, CARLA, "/unlink platform")
    assert {a.chat for a in unlinked if isinstance(a, SendMessage) and "unlinked" in a.text.plain()} == {
        MATRIX, TELEGRAM}
    for chat, user, prefix in ((MATRIX, ANA, "!"), (TELEGRAM, CARLA, "/")):
        [decisions] = chats.texts(chats.say(chat, user, f"{prefix}decisions"))
        assert "Open the garden" in decisions
    # The open proposal stays with the group that keeps the record; the chat that left starts afresh.
    assert "Weekly clean-up" in chats.texts(chats.say(MATRIX, ANA, "!proposals"))[0]
    assert "Weekly clean-up" not in chats.texts(chats.say(TELEGRAM, CARLA, "/proposals"))[0]
    # Both logs verify, and share every entry up to the split.
    with chats.core.db.transaction() as session:
        logs = {}
        for chat in (MATRIX, TELEGRAM):
            group = chats.core.directory.find_group(session, chat)
            logs[chat] = list(session.scalars(select(LogEntry).where(LogEntry.group_id == group.id)
                                              .order_by(LogEntry.seq)))
    matrix_log, telegram_log = logs[MATRIX], logs[TELEGRAM]
    split = next(n for n, entry in enumerate(telegram_log) if entry.kind == "chats unlinked")
    assert [e.hash for e in telegram_log[:split]] == [e.hash for e in matrix_log[:split]]
    for chat, user, prefix in ((MATRIX, ANA, "!"), (TELEGRAM, CARLA, "/")):
        [export] = [a for a in chats.say(chat, user, f"{prefix}log export") if a.kind == "file"]
        assert verify(export.data.decode().splitlines()).ok
    # Votes in one no longer reach the other.
    opened = chats.say(TELEGRAM, CARLA, "/propose Separate idea")
    assert {a.chat for a in opened if isinstance(a, SendMessage) and a.track} == {TELEGRAM}
    with chats.core.db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(Proposal)) >= 4


def test_a_code_survives_a_restart_and_the_link_after_it(chats):
    code = code_in(chats.say(MATRIX, ANA, "!link platform"))
    chats.restart()
    chats.say(TELEGRAM, CARLA, f"/link platform {code}")
    chats.restart()
    opened = chats.say(MATRIX, ANA, "!propose After the restarts")
    assert {a.chat for a in opened if isinstance(a, SendMessage) and a.track} == {MATRIX, TELEGRAM}
    given = chats.say(TELEGRAM, ANA_TG, "/link me", private=True)
    chats.restart()
    chats.say(MATRIX, ANA, f"!link me {code_in(given)}", private=True)
    chats.say(TELEGRAM, ANA_TG, "/vote 1 yes")
    chats.say(MATRIX, ANA, "!vote 1 no")
    assert chats.count(Ballot) == 1


def test_quorum_counts_each_member_once_whatever_the_head_counts(chats):
    chats.link()
    for user in (BOB, DAN):
        chats.say(MATRIX if user == BOB else TELEGRAM, user, "!proposals")

    def members() -> int:
        with chats.core.db.transaction() as session:
            group = chats.core.directory.find_group(session, MATRIX)
            return chats.core.directory.member_count(session, group)
    assert members() == 4  # Ana, Bob (Matrix), Carla, Dan (Telegram)
    # Each platform counts its own chat; one cannot tell who is in both, so the larger stands.
    chats.core.handle(MemberCount(chat=TELEGRAM, count=30))
    chats.core.handle(MemberCount(chat=MATRIX, count=12))
    assert members() == 30
    chats.core.handle(MemberCount(chat=TELEGRAM, count=9))
    assert members() == 12


SOUTH_TG = ChatRef(platform="telegram", chat_id="-1009999")  # a Telegram-only group
EVE, FAY = "@eve:example.org", "5009"
NAMES.update({EVE: "Eve", FAY: "Fay"})


def test_a_federation_of_three_groups_across_platforms_decides_by_groups(chats):
    """A Matrix group, a Telegram group, and a group linked across both: a shared question is decided
    in each group by its own members, then counted by groups; every chat hears the outcome once."""
    # The linked group (Matrix room + Telegram chat) and its two members, one on each side.
    chats.link()
    chats.say(MATRIX, ANA, "!proposals")
    chats.say(TELEGRAM, CARLA, "/proposals")
    created = chats.texts(chats.say(OTHER_MATRIX, EVE, "!federation create River valley"))[0]
    code = re.search(r"federation join (\S+)", created)[1]
    chats.say(OTHER_MATRIX, BOB, "!proposals")
    for chat, voter, prefix in ((SOUTH_TG, DAN, "/"), (MATRIX, ANA, "!")):
        opened = chats.texts(chats.say(chat, voter, f"{prefix}federation join {code}"))[0]
        number = re.search(r"#(\d+) ", opened)[1]
        chats.say(chat, voter, f"{prefix}vote {number} yes")
        if chat == MATRIX:
            chats.say(TELEGRAM, CARLA, f"/vote {number} yes")
    chats.clock.advance(timedelta(days=3, minutes=1))
    chats.due()
    [listing] = chats.texts(chats.say(SOUTH_TG, DAN, "/federation"))
    assert listing.count("River valley") >= 1 and "Tenants' union" in listing

    opened = chats.say(OTHER_MATRIX, EVE, "!propose Share the van closes=1d share=federation")
    cards = {a.chat: a.text.plain() for a in chats.outbox()
             if isinstance(a, SendMessage) and a.track and "Share the van" in a.text.plain()}
    assert set(cards) == {OTHER_MATRIX, SOUTH_TG, MATRIX, TELEGRAM}  # the linked group's card in both its chats
    assert "/vote" in cards[SOUTH_TG] and "/vote" in cards[TELEGRAM] and "!vote" in cards[MATRIX]
    assert opened

    def number_in(chat, user, prefix) -> str:
        return re.search(r"#(\d+) Share the van", chats.texts(chats.say(chat, user, f"{prefix}proposals"))[0])[1]
    # The founding group passes it, the Telegram group rejects it, the linked group passes it from both sides.
    n = number_in(OTHER_MATRIX, EVE, "!")
    chats.say(OTHER_MATRIX, EVE, f"!vote {n} yes")
    chats.say(OTHER_MATRIX, BOB, f"!vote {n} yes")
    n = number_in(SOUTH_TG, DAN, "/")
    chats.say(SOUTH_TG, DAN, f"/vote {n} no")
    n = number_in(MATRIX, ANA, "!")
    chats.say(MATRIX, ANA, f"!vote {n} yes")
    chats.say(TELEGRAM, CARLA, f"/vote {n} yes")
    chats.clock.advance(timedelta(days=1, minutes=1))
    chats.due()
    chats.due()
    for chat in (OTHER_MATRIX, SOUTH_TG, MATRIX, TELEGRAM):
        told = chats.said_in(chat, "Federation River valley")
        told = [text for text in told if "Share the van" in text]
        assert len(told) == 1, (chat, told)
        assert "— adopted" in told[0] and "2 of 3" in told[0], told[0]
