"""Proposals and votes, driven through the console room on SQLite and PostgreSQL,
with the clock moved instead of sleeping."""

import re

import pytest
from sqlalchemy import func, select

from storage.models import Ballot, Decision, Proposal
from tests.harness import Room


@pytest.fixture
async def room(database_url):
    async with Room(database_url) as room:
        yield room


def count(room, model, *where):
    with room.core.db.transaction() as session:
        return session.scalar(select(func.count()).select_from(model).where(*where))


async def test_a_proposal_is_opened_voted_and_announced_at_its_deadline_once(room):
    opened = await room.say("!propose Buy a chest freezer | up to 300 EUR closes=2d", as_="alice")
    assert "#1 Buy a chest freezer" in opened and "up to 300 EUR" in opened
    assert "[Yes] [No] [Abstain] [Block]" in opened
    assert "Closes Wed 4 Mar 09:00 UTC (in 2 days)" in opened
    assert "counted" in await room.say("!vote 1 yes", as_="bob")
    await room.say("!vote 1 no too expensive", as_="carol")
    await room.say("!vote #1 y", as_="dan")
    assert "2 yes · 1 no · 0 abstain · 0 block" in await room.say("!proposal 1")
    assert await room.wait("1d") == "  (… 1d pass …)"
    announced = await room.wait("1d")
    assert "#1 Buy a chest freezer: passed" in announced
    assert "2 yes · 1 no · 0 abstain · 0 block (3 of 4 members voted)" in announced
    assert "passed" not in await room.wait("3d")  # exactly once
    log = await room.say("!decisions")
    assert re.search(r"2026-03-04 .*#1 Buy a chest freezer: passed — 2 yes · 1 no", log)


async def test_a_member_can_change_a_ballot_but_never_has_two(room):
    await room.say("!propose Paint the door", as_="alice")
    await room.say("!vote 1 yes", as_="bob")
    changed = await room.say("!vote 1 no changed my mind", as_="bob")
    assert "changed from yes" in changed and "0 yes · 1 no" in changed
    assert count(room, Ballot) == 1
    shown = await room.say("!proposal 1")
    assert "no (1): bob" in shown and "• bob (no): changed my mind" in shown


async def test_votes_after_the_deadline_are_refused_and_change_nothing(room):
    await room.say("!propose Paint the door closes=1h", as_="alice")
    await room.wait("2h")
    refused = await room.say("!vote 1 yes", as_="bob")
    assert "no longer accepted" in refused
    assert count(room, Ballot) == 0


async def test_only_the_author_withdraws_or_closes_early(room):
    await room.say("!propose Change the meeting day", as_="alice")
    assert "Only the author" in await room.say("!withdraw 1", as_="bob")
    refused = await room.say("!close 1", as_="bob")
    assert "Only alice, who proposed #1, can close it early" in refused
    assert count(room, Decision) == 0
    withdrawn = await room.say("!withdraw 1", as_="alice")
    assert "#1 Change the meeting day: withdrawn" in withdrawn
    assert "already withdrawn" in await room.say("!close 1", as_="alice")
    assert "withdrawn" in await room.say("!decisions")
    assert "withdrawn" not in await room.wait("4d")  # no second announcement at the old deadline


async def test_closing_early_counts_now(room):
    await room.say("!propose Adopt the budget rule=consent", as_="alice")
    await room.say("!vote 1 block not yet", as_="bob")
    closed = await room.say("!close 1", as_="alice")
    assert "#1 Adopt the budget: blocked" in closed
    assert "blocked" not in await room.wait("4d")


async def test_quorum_as_a_share_of_the_members(room):
    for name in ("bob", "carol", "dan"):
        await room.say(":as " + name)
    await room.say("!propose Hire a lawyer quorum=50% closes=1h", as_="alice")
    await room.say("!vote 1 yes", as_="bob")
    announced = await room.wait("1h")
    assert "no quorum" in announced and "1 of the 2 ballots needed" in announced


async def test_a_choice_poll_is_decided_by_plurality_and_reports_ties(room):
    await room.say('!propose Meeting day options="Monday; Thursday evening; Saturday" closes=1d', as_="alice")
    await room.say("!vote 1 2", as_="bob")
    await room.say("!vote 1 thursday evening works best", as_="carol")
    await room.say("!vote 1 Monday", as_="dan")
    assert "is not an option" in await room.say("!vote 1 Sunday", as_="erin")
    assert "options 1 to 3" in await room.say("!vote 1 7", as_="erin")
    announced = await room.wait("1d")
    assert "chose Thursday evening" in announced

    await room.say('!poll Snack options="Apples; Pears" closes=1d', as_="alice")
    await room.say("!vote 2 1", as_="bob")
    await room.say("!vote 2 2", as_="carol")
    assert "tie between Apples and Pears" in await room.wait("1d")


async def test_remind_mentions_exactly_the_members_who_have_not_voted(room):
    for name in ("bob", "carol", "dan"):
        await room.say(":as " + name)
    await room.say("!propose Fix the gate", as_="alice")
    await room.say("!vote 1 yes", as_="bob")
    reminder = await room.say("!remind 1", as_="bob")
    assert "@alice" in reminder and "@carol" in reminder and "@dan" in reminder
    assert "@bob" not in reminder


async def test_numbers_are_per_group(database_url):
    async with Room(database_url) as room:
        await room.say("!propose One", as_="alice")
        await room.say("!propose Two", as_="alice")
    with room.core.db.transaction() as session:
        assert sorted(session.scalars(select(Proposal.number))) == [1, 2]


BAD_INPUT = [
    ("!vote", "number is missing"),
    ("!vote one yes", "is not a number"),
    ("!vote 99 yes", "no proposal #99"),
    ("!vote 1 maybe", "is not a vote"),
    ("!proposal", "number is missing"),
    ("!close 1 2", "did not expect"),
    ("!propose | only details", "title is empty"),
    ("!propose " + "x" * 250, "keep it under 200"),
    ("!propose x closes=0s", "longer than zero"),
    ("!vot 1 yes", "don't know the command “vot”. Did you mean !vote?"),
    ("!propose " + "y" * 100_000, "100,009 characters long"),
]


@pytest.mark.parametrize("line, complaint", BAD_INPUT)
async def test_bad_input_gets_a_clear_reply_and_changes_nothing(room, line, complaint):
    await room.say("!propose Existing proposal", as_="alice")
    before = (count(room, Proposal), count(room, Ballot), count(room, Decision))
    reply = await room.say(line, as_="bob")
    assert "⚠️" in reply and complaint in reply
    assert (count(room, Proposal), count(room, Ballot), count(room, Decision)) == before


async def test_another_bots_command_is_left_alone_in_a_group(room):
    assert await room.say("!weather Lisbon", as_="bob") == ""


async def test_a_wrong_command_shows_the_right_form(room):
    reply = await room.say("!vote 1", as_="bob")
    assert "Usage: !vote <#> <yes|no|abstain|block|option> [reason…]" in reply
    assert "Example: !vote 3 yes" in reply


@pytest.mark.parametrize("title", [
    "<script>alert(1)</script> & <b>bold</b>",
    "Robert'); DROP TABLE proposals;--",
    "مطبخ مشترك للحي \u202e",
    "Café ☕ für alle 🇩🇪",
])
async def test_hostile_and_unicode_titles_are_stored_verbatim_and_rendered_escaped(room, title):
    await room.say(f"!propose {title}", as_="alice")
    with room.core.db.transaction() as session:
        assert session.scalar(select(Proposal.title)) == title
    plain = await room.say("!proposal 1")
    assert title in plain
    actions = room.core.handle(_command("!proposals"))
    html = actions[0].text.html
    assert "<script>" not in html and "&lt;script&gt;" in html or "<" not in title


def _command(text):
    import uuid

    from bot.events import ChatRef, CommandMessage, UserRef

    return CommandMessage(chat=ChatRef(platform="console", chat_id="room"),
                          sender=UserRef(platform="console", user_id="alice"), sender_name="alice",
                          text=text, event_id=uuid.uuid4().hex)


async def test_help_lists_every_command_and_explains_one(room):
    listing = await room.say("!help")
    for name in ("propose", "vote", "proposals", "proposal", "withdraw", "close", "remind", "decisions",
                 "settings", "set"):
        assert f"!{name} —" in listing
    one = await room.say("!help vote")
    assert "!vote <#> <yes|no|abstain|block|option> [reason…]" in one and "Example: !vote 3 yes" in one
    assert "Did you mean !vote?" in await room.say("!help vot")


async def test_mentions_resolve_to_members_by_id_or_unique_name(room):
    await room.say("!help", as_="Bob")
    await room.say("!help", as_="carol")
    with room.core.db.transaction() as session:
        group = room.core.directory.find_group(session, _command("x").chat)
        resolve = room.core.directory.resolve_mention
        assert resolve(session, group.id, "@bob").display_name == "Bob"
        assert resolve(session, group.id, "Carol").user_id == "carol"
        assert resolve(session, group.id, "@nobody") is None


async def test_in_a_private_chat_every_unknown_command_gets_an_answer(room):
    from bot.events import ChatRef, CommandMessage, UserRef

    private = CommandMessage(chat=ChatRef(platform="console", chat_id="dm-bob"),
                             sender=UserRef(platform="console", user_id="bob"), sender_name="bob",
                             text="frobnicate", event_id="dm-1", is_private=True)
    [reply] = room.core.handle(private)
    assert "I don't know the command “frobnicate”" in reply.text.plain() and "help" in reply.text.plain()
    [refusal] = room.core.handle(private.model_copy(update={"text": "withdraw 1", "event_id": "dm-2"}))
    assert "works in a group chat" in refusal.text.plain()
