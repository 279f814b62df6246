"""Peer mediation through the console room, on SQLite and PostgreSQL: asked privately, two mediators
drawn by lot among those who stand (never a party), the group told only that one is under way, closed
privately, counted in the audit — and the requester's name and words found nowhere else: no group
message, no log line at DEBUG, no export, no row of the database but the mediation's own."""

import logging

from sqlalchemy import func, select

from bot.events import ChatRef, CommandMessage, UserRef
from storage.models import Mediation
from tests.harness import Room, group_messages, private_to, recorded, rows_mentioning

REQUESTER = "zephyrine"  # a name that appears nowhere else
SECRET = "the-broken-kettle-grudge"  # what she writes: only the mediators may read it


async def test_a_mediation_stays_between_the_requester_and_the_mediators(database_url, caplog):
    caplog.set_level(logging.DEBUG)
    async with Room(database_url) as room:
        for name in (REQUESTER, "bob", "carol", "dan", "erin"):
            await room.say("!help", as_=name)
        for name in ("bob", "carol", "dan", "erin"):
            assert "stands for mediating conflicts" in await room.say("!volunteer mediation", as_=name)
        mark = len(room.output)
        asked = await room.say(f":dm mediation with=bob about {SECRET} in the kitchen", as_=REQUESTER)
        told = private_to(asked, REQUESTER)[0]
        assert "Mediation #1 in Console room: I drew" in told
        mediators = sorted(name for name in ("carol", "dan", "erin") if name in told)
        assert len(mediators) == 2 and "bob" not in told  # the other party is never a mediator
        for name in mediators:
            [dm] = private_to(asked, name)
            assert f"{REQUESTER} asked for mediation, about a conflict with bob" in dm and SECRET in dm
        assert private_to(asked, "bob") == []
        [public] = group_messages(asked)
        assert "A mediation is under way" in public
        closed = await room.say(f":dm mediation done 1 {SECRET} settled over tea", as_=mediators[0])
        assert "Mediation #1 is closed" in private_to(closed, mediators[0])[0]
        assert "Your mediators closed mediation #1" in private_to(closed, REQUESTER)[0]
        assert "Mediation #1 is closed" in private_to(closed, mediators[1])[0]
        assert group_messages(closed) == []
        await room.say("!set audit_draw off", as_="carol")  # a lottery could rightly name her as auditor
        await room.say("!audit", as_="carol")
        report = await room.wait("7d")
        assert "Conflict resolution: 1 mediation asked for, 1 closed by peer mediators" in report
        await room.say("!log export", as_="carol")
        await room.say("!decisions export", as_="carol")
        csv = room.core.handle(CommandMessage(chat=ChatRef(platform="console", chat_id="room"),
                                              sender=UserRef(platform="console", user_id="carol"),
                                              sender_name="carol", text="!audit report csv", event_id="csv-1"))
        header, first = csv[0].data.decode().splitlines()[:2]
        columns = dict(zip(header.split(","), first.split(","), strict=False))
        assert columns["mediations_opened"] == "1" and columns["mediations_closed"] == "1"
        public_after = group_messages("\n".join(room.output[mark:]))
        files = [action.data.decode() for action in recorded(room, "file")] + [csv[0].data.decode()]
        for where in [*public_after, *files, caplog.text]:
            assert REQUESTER not in where.lower() and SECRET not in where
        assert set(rows_mentioning(room, SECRET)) == {"mediations"}  # the outbox blanked what it delivered
        assert set(rows_mentioning(room, REQUESTER)) <= {"members", "processed_events"}  # she joined the room


async def test_mediation_refuses_what_it_cannot_do_and_records_nothing(database_url):
    async with Room(database_url) as room:
        for name in ("alice", "bob", "carol"):
            await room.say("!help", as_=name)
        in_group = await room.say("!mediation about the rota", as_="alice")
        assert "Ask me in a private message, so nothing about it shows here" in in_group
        assert "Nobody else in this group stands as a mediator yet" in await room.say(":dm mediation",
                                                                                      as_="alice")
        await room.say("!volunteer mediation", as_="alice")
        assert "Nobody else in this group stands as a mediator yet" in await room.say(
            ":dm mediation about the rota", as_="alice")  # she cannot mediate her own conflict
        await room.say("!volunteer mediation", as_="bob")
        assert "Nobody else in this group stands as a mediator yet" in await room.say(
            ":dm mediation with=bob", as_="alice")  # nor can the other party
        assert "I don't know a member called “mallory”" in await room.say(":dm mediation with=mallory",
                                                                         as_="alice")
        assert "not you" in await room.say(":dm mediation with=alice", as_="alice")
        assert "keep it under 1,000" in await room.say(":dm mediation about " + "x" * 1001, as_="alice")
        assert "You already stand for mediation" in await room.say("!volunteer mediation", as_="bob")
        assert "I don't know you from any group yet" in await room.say(":dm mediation", as_="stranger")
        with room.core.db.transaction() as session:
            assert session.scalar(select(func.count()).select_from(Mediation)) == 0
        asked = await room.say(":dm mediation with=bob about the rota", as_="carol")
        told = private_to(asked, "carol")[0]
        assert "I drew alice by lot" in told and "Only one mediator could be drawn" in told
        assert "You are not a mediator of a mediation #1" in await room.say(":dm mediation done 1", as_="carol")
        assert "Close a mediation in a private message" in await room.say("!mediation done 1", as_="alice")
        assert "Mediation #1 is closed. Thank you" in await room.say(":dm mediation done 1", as_="alice")
        assert "Mediation #1 is closed already" in await room.say(":dm mediation done 1", as_="alice")
