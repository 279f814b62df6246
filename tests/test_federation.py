"""Federations through the console rooms (each room is a group of its own), on SQLite and PostgreSQL:
forming by decision, shared proposals decided per group and counted by groups, delegates and their
mandates, a recall mid-question, a restart between closes, and bad input."""

import re

from sqlalchemy import select

from bot.clock import ManualClock
from storage.models import FederationGroup, FederationQuestion
from tests.harness import START, Room, in_room, recorded

OUTCOME = re.compile(r"Federation River valley: #\d+ Share the van — (adopted|not adopted)")


async def create(room: Room, name: str = "River valley") -> str:
    """The federation, founded by the first room; its join code."""
    created = await room.say(f"!federation create {name}", as_="ana", room="room")
    return re.search(r"federation join (\S+)", created)[1]


async def join(room: Room, code: str, group: str, voter: str) -> str:
    """A group joins by its own decision: everything said from the proposal to its close."""
    opened = await room.say(f"!federation join {code}", as_=voter, room=group)
    number = re.search(r"#(\d+) Join the federation", opened)[1]
    await room.say(f"!vote {number} yes", as_=voter, room=group)
    return opened + await room.wait("3d")


async def federate(room: Room, *groups: tuple[str, str]) -> None:
    code = await create(room)
    for group, voter in groups:
        assert "This group is now in the federation" in await join(room, code, group, voter)


async def number_in(room: Room, group: str, title: str = "Share the van") -> str:
    """The number an open shared proposal has in one group (each group numbers its own)."""
    return re.search(rf"#(\d+) {title}", await room.say("!proposals", as_="ana", room=group))[1]


async def card_in(room: Room, group: str, title: str = "Share the van") -> str:
    number = await number_in(room, group, title)
    return await room.say(f"!proposal {number}", as_="ana", room=group)


def outcomes_in(output: str, group: str) -> list[str]:
    return [match for message in in_room(output, group) for match in OUTCOME.findall(message)]


async def test_three_groups_federate_decide_a_shared_proposal_by_groups_and_one_leaves(database_url):
    async with Room(database_url) as room:
        code = await create(room)
        joined = await join(room, code, "north", "bob")
        assert "passed" in joined and "This group is now in the federation River valley, with Console room" in joined
        assert any("north joined the federation River valley" in m for m in in_room(joined, "room"))
        await room.say("!proposals", as_="erin", room="north")  # north has two members
        joined = await join(room, code, "south", "dave")
        for group in ("room", "north"):
            assert any("south joined the federation River valley by a decision of its members: 3 groups now" in m
                       for m in in_room(joined, group))

        listing = await room.say("!federation", as_="ana", room="room")
        assert "3 groups" in listing
        assert "Console room — 1 member" in listing and "north — 2 members" in listing
        assert "south — 1 member" in listing and "majority of groups" in listing

        # The same question in every group, each deciding by its own rule; counted by groups.
        shared = await room.say("!propose Share the van | weekends only share=federation", as_="ana", room="room")
        assert "Shared with the federation River valley: decided here by majority, then counted across 3 groups " \
               "(majority of groups)" in shared
        posted = "\n".join(in_room(shared, "north"))
        assert "Proposed by ana of Console room" in posted and "Vote: !vote 2 yes|no" in posted
        north, south = await number_in(room, "north"), await number_in(room, "south")
        await room.say("!vote 1 yes", as_="ana", room="room")
        await room.say(f"!vote {north} yes", as_="bob", room="north")
        await room.say(f"!vote {south} no", as_="dave", room="south")
        closed = await room.wait("3d")
        for group in ("room", "north", "south"):
            assert outcomes_in(closed, group) == ["adopted"], group
        assert "— adopted: passed in 2 of 3 groups (majority of groups)" in closed
        assert "• south: rejected" in closed
        assert not outcomes_in(await room.wait("3d"), "room")  # once
        with room.core.db.transaction() as session:
            question = session.scalars(select(FederationQuestion)).one()
            assert (question.outcome, question.groups_for, question.groups_total) == ("adopted", 2, 3)
        assert "federation.question.decided" in await room.say("!log", as_="bob", room="north")

        # One group chooses consensus of groups: the strictest rule binds the federation.
        await room.say("!set federation_rule consensus", as_="dave", room="south")
        assert "consensus of groups" in await room.say("!federation", as_="ana", room="room")
        shared = await room.say("!propose Share the van share=federation", as_="ana", room="room")
        assert "counted across 3 groups (consensus of groups)" in shared
        number = await number_in(room, "room")
        north, south = await number_in(room, "north"), await number_in(room, "south")
        await room.say(f"!vote {number} yes", as_="ana", room="room")
        await room.say(f"!vote {north} yes", as_="bob", room="north")
        await room.say(f"!vote {south} no", as_="dave", room="south")
        closed = await room.wait("3d")
        for group in ("room", "north", "south"):
            assert outcomes_in(closed, group) == ["not adopted"], group
        assert "passed in 2 of 3 groups (consensus of groups)" in closed

        # Leaving is a decision too; the others are told.
        opened = await room.say("!federation leave", as_="dave", room="south")
        number = re.search(r"#(\d+) Leave the federation River valley", opened)[1]
        await room.say(f"!vote {number} yes", as_="dave", room="south")
        left = await room.wait("3d")
        assert any("This group has left the federation River valley" in m for m in in_room(left, "south"))
        for group in ("room", "north"):
            assert [m for m in in_room(left, group) if "south left the federation River valley" in m
                    and "2 groups remain" in m], group
        listing = await room.say("!federation", as_="ana", room="room")
        assert "2 groups" in listing and "south" not in listing
        assert "no federation" in await room.say("!federation", as_="dave", room="south")


async def test_a_delegate_recalled_mid_proposal_loses_the_mandate_across_the_federation(database_url):
    async with Room(database_url) as room:
        await federate(room, ("north", "bob"))
        await room.say("!role add delegate term=90d delegate=yes", as_="bob", room="north")
        await room.say("!volunteer delegate", as_="bob", room="north")
        await room.say("!draw delegate now", as_="bob", room="north")
        assert "delegate to the federation" in await room.say("!roles", as_="carol", room="north")
        opened = await room.say("!mandate Yes to the van, if it stays in the valley", as_="carol", room="north")
        number = re.search(r"#(\d+) Mandate for our delegate", opened)[1]
        await room.say(f"!vote {number} yes", as_="carol", room="north")
        decided = await room.wait("3d")
        assert "now carries this mandate: Yes to the van, if it stays in the valley" in decided
        assert "Mandate: Yes to the van" in await room.say("!mandate", as_="carol", room="north")
        listing = await room.say("!federation", as_="ana", room="room")
        assert "north: bob (delegate) — mandate: Yes to the van, if it stays in the valley" in listing

        await room.say("!propose Share the van share=federation closes=5d", as_="ana", room="room")
        north = await number_in(room, "north")
        assert "north: bob (delegate) — mandate: Yes to the van" in await card_in(room, "north")
        await room.say("!vote 1 yes", as_="ana", room="room")
        await room.say(f"!vote {north} yes", as_="carol", room="north")

        opened = await room.say("!recall delegate @bob overstepped", as_="carol", room="north")
        recall = re.search(r"#(\d+) Recall bob from delegate", opened)[1]
        await room.say(f"!vote {recall} yes", as_="carol", room="north")
        recalled = await room.wait("3d")
        notice = "bob is no longer north's delegate: recalled by their group. Their mandate has ended."
        for group in ("room", "north"):
            assert sum(notice in m for m in in_room(recalled, group)) == 1, group

        closed = await room.wait("2d")
        for group in ("room", "north"):
            assert outcomes_in(closed, group) == ["adopted"], group
        assert "passed in 2 of 2 groups" in closed
        assert "north: the delegate seat is empty, so no mandate is carried" in closed
        assert "Yes to the van" not in closed
        assert notice not in await room.wait("3d")


async def test_a_restart_between_the_closes_of_a_shared_question_loses_nothing(database_url):
    clock = ManualClock(START)
    room = Room(database_url, clock)
    await room.start()
    await federate(room, ("north", "bob"), ("south", "dave"))
    await room.say("!propose Share the van share=federation closes=1d", as_="ana", room="room")
    north, south = await number_in(room, "north"), await number_in(room, "south")
    await room.say("!vote 1 yes", as_="ana", room="room")
    early = await room.say("!close 1", as_="ana", room="room")  # the origin's copy closes first
    assert "#1 Share the van: passed" in early and "Federation" not in early
    await room.say(f"!vote {north} no", as_="bob", room="north")
    await room.stop()

    again = Room(database_url, clock)
    await again.start()
    await again.say(f"!vote {south} yes", as_="dave", room="south")
    closed = await again.wait("2d")
    for group in ("room", "north", "south"):
        assert outcomes_in(closed, group) == ["adopted"], group
    assert "passed in 2 of 3 groups" in closed
    await again.stop()

    third = Room(database_url, clock)
    await third.start()
    assert "Federation" not in await third.wait("1d")
    await third.stop()


async def test_a_withdrawn_copy_counts_as_not_passed_and_only_the_origin_can_withdraw(database_url):
    async with Room(database_url) as room:
        await federate(room, ("north", "bob"))
        await room.say("!propose Share the van share=federation", as_="ana", room="room")
        north = await number_in(room, "north")
        assert "Only the author" in await room.say(f"!withdraw {north}", as_="bob", room="north")
        await room.say(f"!vote {north} yes", as_="bob", room="north")
        withdrawn = await room.say("!withdraw 1", as_="ana", room="room")
        assert "withdrawn" in withdrawn and "Federation" not in withdrawn  # north's copy is still open
        closed = await room.wait("3d")
        for group in ("room", "north"):
            assert outcomes_in(closed, group) == ["not adopted"], group
        assert "passed in 1 of 2 groups" in closed and "• Console room: withdrawn" in closed


async def test_bad_input_is_refused_and_changes_nothing(database_url):
    async with Room(database_url) as room:
        assert "no federation" in await room.say("!federation", as_="ana")
        refused = await room.say("!propose Share the van share=federation", as_="ana")
        assert "in no federation" in refused and "#1" not in refused
        assert "no delegate role" in await room.say("!mandate Say yes", as_="ana")
        assert "in no federation" in await room.say("!federation code", as_="ana")
        huge = await room.say("!federation create " + "x" * 200, as_="ana")
        assert "keep it under 120" in huge
        assert "no federation" in await room.say("!federation", as_="ana")

        code = await create(room, "River <b>valley</b>")
        html = [action.text.html for action in recorded(room, "send") if "created the federation" in action.text.html]
        assert "River &lt;b&gt;valley&lt;/b&gt;" in html[0] and "<b>valley</b>" not in html[0]
        assert "already in the federation" in await room.say(f"!federation join {code}", as_="ana")
        assert "already in the federation" in await room.say("!federation create Another", as_="ana")
        assert "don't know the code" in await room.say("!federation join WRON-GCOD", as_="bob", room="north")
        opened = await room.say(f"!federation join {code}", as_="bob", room="north")
        assert "#1 Join the federation River <b>valley</b>" in opened
        assert "#1 is already open for this" in await room.say(f"!federation join {code}", as_="bob")
        assert "share=federation" not in await room.say("!role add delegate term=90d delegate=yes", as_="bob")
        assert "delegate role already" in await room.say("!role add speaker term=90d delegate=yes", as_="bob")
        await room.say("!role add speaker term=90d", as_="bob")
        assert "delegate role already" in await room.say("!role edit speaker delegate=yes", as_="bob")
        rules = await room.say("!propose Share it share=federation rule=consensus", as_="ana", room="room")
        assert "leave out options=, method=, rule= and quorum=" in rules

        await room.wait("8d")  # the join proposal closed (nobody voted) and the code expired
        assert "has expired" in await room.say(f"!federation join {code}", as_="carol", room="south")
        with room.core.db.transaction() as session:
            assert len(session.scalars(select(FederationGroup)).all()) == 1
