"""Federations through the console room, on SQLite and PostgreSQL: a need shared with every group of
a federation (claimed from another group, its anonymous author's name found nowhere), an auditor
drawn among the other groups' members, and the suggestion to split a group that grew too big."""

import logging

from sqlalchemy import select

from bot import transparency
from bot.governance import federation, record
from bot.verify import verify
from storage.models import Group, Need
from tests.harness import Room, in_room, messages, private_to, recorded, rows_mentioning

AUTHOR = "zephyrine"  # the anonymous author: a name that appears nowhere else
ROOMS = ("room", "north", "south")


async def federate(room: Room, members: dict[str, tuple[str, ...]]) -> dict[str, int]:
    """Members speak in each room (so the groups exist), then the rooms federate (the commands that
    do it by proposals have their own tests): the group id of each room."""
    for name, people in members.items():
        for person in people:
            await say(room, "!needs", person, name)
    with room.core.db.transaction() as session:
        ids = {name: session.scalars(select(Group.id).where(Group.chat_id == name)).one() for name in members}
        founded = federation.create(session, "Valley", ids[ROOMS[0]], room.clock.now())
        for name in list(members)[1:]:
            federation.join(session, founded.id, ids[name], room.clock.now())
    return ids


async def say(room: Room, line: str, as_: str, room_name: str | None = None) -> str:
    """`room.say`: what the command said in the other groups of the federation is out with its replies."""
    return await room.say(line, as_=as_, room=room_name)


def pages_of(room: Room, ids: dict[str, int]) -> list[str]:
    """Each group's members' page, as everything it would show (its view, not the HTML: same words)."""
    with room.core.db.transaction() as session:
        return [repr(transparency.build_page(session, room.core.directory, group_id, room.clock.now()))
                for group_id in ids.values()]


def needs_in(room: Room, group_id: int) -> list[Need]:
    with room.core.db.transaction() as session:
        found = list(session.scalars(select(Need).where(Need.group_id == group_id).order_by(Need.number)))
        for need in found:
            session.expunge(need)
        return found


def downloads_of(room: Room, ids: dict[str, int]) -> list[str]:
    """The files each group's page offers: its log, its decisions as CSV and as Markdown."""
    with room.core.db.transaction() as session:
        return [transparency.download(session, room.core.directory, group_id, name, room.clock.now()).data.decode()
                for group_id in ids.values() for name in ("log.jsonl", "decisions.csv", "decisions.md")]


# shared needs ------------------------------------------------------------------------------------------

async def test_a_shared_anonymous_need_is_claimed_from_another_group_and_its_author_stays_unnamed(
        database_url, caplog):
    caplog.set_level(logging.DEBUG)
    async with Room(database_url) as room:
        mark = len(room.output)
        ids = await federate(room, {"room": (AUTHOR, "alice"), "north": ("bob", "carol"), "south": ("dan",)})
        shared = await say(room, f':dm need "insulin cooler for the weekend" group=#{ids["room"]} share=federation '
                           "category=health", AUTHOR)
        [receipt] = private_to(shared, AUTHOR)
        assert "Posted in Console room as need #1 (health) without your name" in receipt
        assert "Shared with the federation's other groups too: north, south." in receipt
        [here] = in_room(shared, "room")
        assert "Need #1 (health) from a member (posted privately)" in here and "north, south" in here
        for name in ("north", "south"):
            [copy] = in_room(shared, name)
            assert "Shared by Console room:" in copy and "insulin cooler for the weekend" in copy
            assert "from a member (posted privately)" in copy
        # Each group numbers its copy on its own: north had none, so it is #1 there too.
        assert "#1 [health] insulin cooler for the weekend" in await say(room, "!needs", "dan", "south")
        listed = await say(room, "!needs", "carol", "north")
        assert "#1 [health] insulin cooler for the weekend" in listed and "shared by Console room" in listed

        claimed = await say(room, "!claim 1", "bob", "north")
        [there] = in_room(claimed, "north")
        assert "bob claimed need #1 (health)" in there
        [home] = in_room(claimed, "room")
        assert "bob of north claimed need #1 (health)" in home
        assert in_room(claimed, "south") == []  # the other copies change without a message each
        [told] = private_to(claimed, AUTHOR)
        assert "Your need #1 (health) in Console room: bob of north claimed it and will help." in told
        assert all(need.status == "claimed" and need.claimer_id is not None
                   for group_id in ids.values() for need in needs_in(room, group_id))
        assert "claimed by bob" in await say(room, "!needs", "dan", "south")
        pages = pages_of(room, ids)
        assert all("insulin cooler for the weekend" in page for page in pages)  # listed on every group's page
        assert "already claimed by bob" in await say(room, "!claim 1", "alice", "room")
        assert "Only the author of #1 or whoever claimed it" in await say(room, "!met 1", "dan", "south")

        # She releases the claim privately: both groups concerned hear "its author", never who.
        released = await say(room, f":dm unclaim 1 group=#{ids['room']}", AUTHOR)
        assert "its author released need #1 (health); it is open again" in in_room(released, "room")[0]
        assert "its author released need #1 (health)" in in_room(released, "north")[0]
        assert {need.status for group_id in ids.values() for need in needs_in(room, group_id)} == {"open"}
        assert "dan claimed need #1 (health)" in await say(room, "!claim 1", "dan", "south")
        assert "already claimed by dan" in await say(room, "!claim 1", "bob", "north")
        assert "dan of south released need #1" in in_room(await say(room, "!unclaim 1", "dan", "south"), "room")[0]
        await say(room, "!claim 1", "bob", "north")

        met = await say(room, "!met 1", "bob", "north")
        assert "Need #1 (health) is met by bob" in in_room(met, "north")[0]
        assert "Need #1 (health) is met by bob of north" in in_room(met, "room")[0]
        assert "marked met by bob" in private_to(met, AUTHOR)[0]
        assert {need.status for group_id in ids.values() for need in needs_in(room, group_id)} == {"met"}
        for name, member in zip(ROOMS, ("alice", "carol", "dan"), strict=True):
            assert "Nothing open right now" in await say(room, "!needs", member, name)

        # Nowhere public does her name appear: no group message, no log line at DEBUG, no export, no page.
        for name, member in zip(ROOMS, ("alice", "carol", "dan"), strict=True):
            await say(room, "!log export", member, name)
            await say(room, "!decisions export", member, name)
        public = [m for m in messages("\n".join(room.output[mark:])) if "(private)" not in m.split("\n")[0]]
        files = [action.data.decode() for action in recorded(room, "file")]
        assert len(files) == 6 and public
        downloads = downloads_of(room, ids)
        for where in [*public, *files, *pages, *downloads, caplog.text]:
            assert AUTHOR not in where.lower()
        assert set(rows_mentioning(room, AUTHOR)) <= {"members", "processed_events"}
        with room.core.db.transaction() as session:
            for group_id in ids.values():
                assert verify(list(record.export_lines(session, group_id))).ok


async def test_a_restart_in_the_middle_of_a_shared_claim_loses_nothing_and_says_nothing_twice(database_url):
    room = Room(database_url)
    await room.start()
    ids = await federate(room, {"room": (AUTHOR, "alice"), "north": ("bob",), "south": ("dan",)})
    await say(room, f':dm need "a pram for a month" group=#{ids["room"]} share=federation', AUTHOR)
    before = len(room.output)
    await room.say("!claim 1", as_="bob", room="north")  # committed; what it tells the other group may wait
    said = room.output[before:]
    await room.stop()

    again = Room(database_url, clock=room.clock)
    said += await again.start()  # whatever was recorded and not yet sent goes out now, once
    heard = "\n".join(said)
    assert len(in_room(heard, "room")) == 1 and "bob of north claimed need #1 (other)" in in_room(heard, "room")[0]
    assert len(private_to(heard, AUTHOR)) == 1 and "bob of north claimed it" in private_to(heard, AUTHOR)[0]
    assert "already claimed by bob" in await say(again, "!claim 1", "dan", "south")
    met = await say(again, "!met 1", "bob", "north")
    assert "is met by bob of north" in in_room(met, "room")[0]
    assert {need.status for group_id in ids.values() for need in needs_in(again, group_id)} == {"met"}
    assert needs_in(again, ids["room"])[0].nudge_at is None  # met: nobody is nudged, in any group
    await again.stop()


async def test_a_shared_need_refused_outside_a_federation_and_copies_are_never_nudged(database_url):
    async with Room(database_url) as room:
        refused = await say(room, '!need "a ladder" share=federation', "alice", "west")
        assert "west is in no federation, so there is nobody to share with" in refused
        assert "Nothing open right now" in await say(room, "!needs", "alice", "west")  # nothing was posted
        ids = await federate(room, {"room": ("alice",), "north": ("bob",)})
        posted = await say(room, '!offer "a ladder, weekends" share=federation category=repair', "alice", "room")
        assert "Offer #1 (repair) from alice" in in_room(posted, "room")[0]
        [copy] = in_room(posted, "north")
        assert "Shared by Console room:" in copy and "Offer #1 (repair) from alice" in copy
        await say(room, '!need "help moving a sofa" share=federation', "bob", "north")
        nudges = await room.wait("3d")
        assert len(in_room(nudges, "north")) == 1 and "Still waiting for help" in in_room(nudges, "north")[0]
        assert "Still waiting" not in "\n".join(in_room(nudges, "room"))  # the copy is not nudged
        [copy] = [need for need in needs_in(room, ids["room"]) if need.kind == "need"]
        assert copy.shared_of is not None and copy.nudge_at is None


# outside eyes ------------------------------------------------------------------------------------------

async def test_the_auditor_is_drawn_among_the_other_groups_members_and_told_privately(database_url):
    from tests.test_lotteries import parse, rederive

    async with Room(database_url) as room:
        ids = await federate(room, {"room": ("alice", "bob"), "north": ("carol", "dan", "bob"), "south": ("erin",)})
        await say(room, "!role add host term=30d fill=lottery", "dan", "north")
        await say(room, "!volunteer host", "dan", "north")
        await say(room, "!draw host now", "dan", "north")  # dan holds a role in north: not an auditor
        await say(room, "!set audit_draw federation", "alice", "room")
        prompt = await say(room, "!audit", "alice", "room")
        # bob is in north too, but he is a member of the audited group: outside eyes only.
        assert ("Outside eyes: the auditor — who checks the figures and reads the report to the group — is drawn "
                "Mon 2 Mar 09:10 UTC (in 10 minutes) by lottery #1 among the 2 members of the federation's other "
                "groups who hold no role there: 1. carol (north), 2. erin (south)") in prompt
        drawn = await room.wait("10m")
        [auditor] = rederive(drawn)
        name, group = auditor.split(" (")[0], auditor.split(" (")[1].rstrip(")")
        assert f"the auditor of audit #1 is @{name} of {group}." in in_room(drawn, "room")[0]
        [told] = private_to(drawn, name)
        assert "You were drawn by lot as the auditor of sovereignty audit #1 of Console room" in told
        assert parse(drawn)["candidates"] == ["carol (north)", "erin (south)"]
        with room.core.db.transaction() as session:
            report = verify(list(record.export_lines(session, ids["room"])))
        assert report.ok and report.lotteries == 1, report.problem

        closed = await room.wait("7d")
        assert f"Auditor: {name} of {group}." in in_room(closed, "room")[0]
        [sent] = private_to(closed, name)
        assert "The report of the audit you were drawn for, in Console room" in sent and "Sovereignty audit #1" in sent


async def test_outside_a_federation_the_auditor_is_drawn_in_the_group_and_the_prompt_says_why(database_url):
    async with Room(database_url) as room:
        for name in ("alice", "bob"):
            await say(room, "!needs", name, "room")
        await say(room, "!set audit_draw federation", "alice", "room")
        prompt = await say(room, "!audit", "alice", "room")
        assert "among the 2 members who hold no role: 1. alice, 2. bob" in prompt
        assert "this group is in no federation with other groups, so the auditor is drawn among its own members" \
            in prompt
        await say(room, "!set audit_draw on", "alice", "room")
        assert "no federation" not in await say(room, "!audit", "bob", "west")
        await federate(room, {"room": ("alice",), "north": ("bob",)})  # bob of north is in room too
        await room.wait("7d")
        await say(room, "!set audit_draw federation", "alice", "room")
        again = await say(room, "!audit", "alice", "room")
        assert "no member of the federation's other groups is free to audit" in again


# too big -----------------------------------------------------------------------------------------------

async def join(room: Room, names: list[str]) -> str:
    said = [await say(room, "!needs", name, "room") for name in names]
    return "\n".join(said)


def suggestions(output: str) -> int:
    return sum("Consider splitting into cells that federate" in message for message in in_room(output, "room"))


async def test_a_group_past_split_at_is_told_once_per_threshold_how_to_split_and_federate(database_url):
    async with Room(database_url) as room:
        await say(room, "!set split_at off", "m00", "room")
        assert suggestions(await join(room, [f"m{n:02}" for n in range(1, 11)])) == 0  # 11 members, but off
        for bad in ("5", "many", "-3"):
            refused = await say(room, f"!set split_at {bad}", "m00", "room")
            assert "Give a number of members from 10 up, like 150, or off." in refused
        with room.core.db.transaction() as session:
            group_id = session.scalars(select(Group.id).where(Group.chat_id == "room")).one()
            assert room.core.directory.read_settings(session, group_id).split_at is None  # still off
        await say(room, "!set split_at 10", "m00", "room")
        told = await join(room, ["m11"])
        assert suggestions(told) == 1
        [message] = [m for m in in_room(told, "room") if "Consider splitting" in m]
        assert "We are 12 now, past the 10 this group set (split_at)" in message
        for step in ("!federation create <name>", "!federation join <join-code>", "delegate=yes", "!mandate <text>"):
            assert step in message
        assert suggestions(await join(room, ["m12", "m13"])) == 0  # once per threshold
        await say(room, "!set split_at 20", "m00", "room")
        assert suggestions(await join(room, [f"m{n:02}" for n in range(14, 20)])) == 0  # 20 members: at 20, not past
        told = await join(room, ["m20"])
        assert suggestions(told) == 1 and "We are 21 now, past the 20" in told
        await say(room, "!set split_at 10", "m00", "room")
        assert suggestions(await join(room, ["m21", "m22"])) == 0  # 10 was suggested already
        await say(room, "!set split_at off", "m00", "room")
        assert suggestions(await join(room, [f"m{n:02}" for n in range(23, 30)])) == 0
