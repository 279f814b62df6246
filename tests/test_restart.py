"""Nothing lost, nothing twice: deadlines across restarts, the outbox across
crashes, replayed platform events."""

import asyncio
from datetime import timedelta

from sqlalchemy import func, select

from bot.actions import Acknowledge, SendMessage
from bot.clock import ManualClock
from bot.events import ChatRef, ChoiceMade, CommandMessage, UserRef
from scheduler import jobs
from storage.models import Ballot, OutboxItem
from tests.harness import START, Room

ROOM = ChatRef(platform="console", chat_id="room")


def vote(event_id, user="bob", text="!vote 1 yes"):
    return CommandMessage(chat=ROOM, sender=UserRef(platform="console", user_id=user), sender_name=user,
                          text=text, event_id=event_id)


async def test_a_deadline_that_passed_while_stopped_is_announced_once_at_start(database_url):
    clock = ManualClock(START)
    async with Room(database_url, clock) as room:
        await room.say("!propose Rent the hall closes=1h", as_="alice")
        await room.say("!vote 1 yes", as_="bob")
    clock.advance(timedelta(hours=5))  # the bot is down while the deadline passes
    second = Room(database_url, clock)
    started = "\n".join(await second.start())
    await second.stop()
    assert started.count("#1 Rent the hall: passed") == 1
    assert "Decided Mon 2 Mar 10:00 UTC" in started  # decided at the deadline, not at start-up
    third = Room(database_url, clock)
    assert "passed" not in "\n".join(await third.start())
    await third.stop()


async def test_an_announcement_recorded_but_not_sent_is_sent_once_after_a_crash(database_url):
    clock = ManualClock(START)
    async with Room(database_url, clock) as room:
        await room.say("!propose Rent the hall closes=1h", as_="alice")
        clock.advance(timedelta(hours=2))
        # The scheduler recorded the outcome, then the process died before sending it.
        assert jobs.run_due_work(room.core) == 1
    restarted = Room(database_url, clock)
    assert "\n".join(await restarted.start()).count("#1 Rent the hall: rejected") == 1
    await restarted.stop()
    with restarted.core.db.transaction() as session:
        assert session.scalar(select(func.count()).where(OutboxItem.sent_at.is_(None))) == 0


async def test_an_adapter_failure_keeps_the_announcement_queued_until_it_goes_through(database_url):
    async with Room(database_url) as room:
        await room.say("!propose Rent the hall closes=1h", as_="alice")
        adapter = room.session.adapter
        real_perform = adapter.perform

        async def network_down(action, key=None):
            raise ConnectionError("homeserver unreachable")

        room.session.runtime.delivery.first_pause = 0.05
        adapter.perform = network_down
        assert "rejected" not in await room.wait("2h")
        adapter.perform = real_perform
        for _ in range(100):  # retried in the background, with a short pause
            await asyncio.sleep(0.02)
            if "rejected" in "\n".join(room.output):
                break
        assert "\n".join(room.output).count("#1 Rent the hall: rejected") == 1
        assert "rejected" not in await room.wait("1m")


async def test_a_replayed_command_is_ignored(database_url):
    async with Room(database_url) as room:
        await room.say("!propose Rent the hall", as_="alice")
        core = room.core
        first = core.handle(vote("evt-1"))
        assert any(isinstance(a, Acknowledge) for a in first)
        assert core.handle(vote("evt-1")) == []
        assert core.handle(vote("evt-1", text="!vote 1 no")) == []  # same id, whatever the text
        with core.db.transaction() as session:
            assert session.scalar(select(Ballot.choice)) == "yes"


async def test_a_replayed_error_stays_quiet_and_a_replayed_tap_counts_once(database_url):
    async with Room(database_url) as room:
        await room.say("!propose Rent the hall", as_="alice")
        core = room.core
        assert isinstance(core.handle(vote("evt-2", text="!vote 9 yes"))[0], SendMessage)
        assert core.handle(vote("evt-2", text="!vote 9 yes")) == []
        tap = ChoiceMade(chat=ROOM, sender=UserRef(platform="console", user_id="carol"), sender_name="carol",
                         payload="vote 1 no", event_id="tap-1")
        assert core.handle(tap) and core.handle(tap) == []
        with core.db.transaction() as session:
            assert session.scalar(select(func.count()).select_from(Ballot)) == 1


async def test_a_retracted_reaction_takes_the_ballot_back(database_url):
    async with Room(database_url) as room:
        await room.say("!propose Rent the hall", as_="alice")
        user = UserRef(platform="console", user_id="carol")
        room.core.handle(ChoiceMade(chat=ROOM, sender=user, sender_name="carol", payload="vote 1 no",
                                    event_id="react-1"))
        room.core.handle(ChoiceMade(chat=ROOM, sender=user, sender_name="carol", payload="vote 1 no",
                                    event_id="redact-1", retracted=True))
        assert "0 yes · 0 no" in await room.say("!proposal 1")


async def test_a_forged_payload_is_ignored(database_url):
    async with Room(database_url) as room:
        await room.say("!propose Rent the hall", as_="alice")
        forged = ChoiceMade(chat=ROOM, sender=UserRef(platform="console", user_id="eve"), sender_name="eve",
                            payload="withdraw 1", event_id="tap-x")
        assert room.core.handle(forged) == []
        assert "Tally" in await room.say("!proposal 1") and "Withdrawn" not in await room.say("!proposal 1")


async def test_the_live_tally_message_is_edited_as_votes_arrive(database_url):
    async with Room(database_url, show_edits=True) as room:
        opened = await room.say("!propose Rent the hall", as_="alice")
        assert "#1 Rent the hall" in opened
        edited = await room.say("!vote 1 yes", as_="bob")
        assert "bot ✎ m" in edited and "1 yes · 0 no" in edited


async def test_a_refused_tap_is_answered_privately_not_in_the_group(database_url):
    async with Room(database_url) as room:
        await room.say("!propose Rent the hall closes=1h", as_="alice")
        await room.wait("2h")
        late = ChoiceMade(chat=ROOM, sender=UserRef(platform="console", user_id="bob"), sender_name="bob",
                          payload="vote 1 yes", event_id="late-tap")
        [answer] = room.core.handle(late)
        assert isinstance(answer, Acknowledge) and "no longer accepted" in answer.text.plain()


async def test_announcements_wait_for_their_platforms_adapter(database_url):
    async with Room(database_url) as room:
        telegram_group = CommandMessage(chat=ChatRef(platform="telegram", chat_id="-100"),
                                        sender=UserRef(platform="telegram", user_id="7"), sender_name="Ana",
                                        text="/propose Elsewhere closes=1h", event_id="tg-1")
        room.core.handle(telegram_group)
        await room.wait("2h")  # this process serves the console only: the Telegram group's vote is not its work
        assert not any("rejected" in item.action.text.plain() for item in room.core.pending_outbox(["telegram"]))
        jobs.run_due_work(room.core, platforms=("telegram",))  # as the process serving Telegram would
        await room.wait("1m")  # no telegram adapter here: the outcome stays queued, quietly
        waiting = room.core.pending_outbox(["telegram"])
        assert {item.action.chat.platform for item in waiting} == {"telegram"}
        assert any("Elsewhere: rejected" in item.action.text.plain() for item in waiting)
        assert room.core.pending_outbox(["console"]) == []


async def test_a_restart_in_the_middle_of_a_warning_period_loses_nothing_and_repeats_nothing(database_url):
    clock = ManualClock(START)
    async with Room(database_url, clock) as room:
        await room.say("!role add facilitator term=30d fill=lottery", as_="alice")
        await room.say("!volunteer facilitator", as_="bob")
        await room.say("!draw facilitator now")
        assert "(in 7 days)" in await room.wait("23d")
    clock.advance(timedelta(days=3))  # down for three days inside the warning period: nothing is due
    second = Room(database_url, clock)
    assert "facilitator" not in "\n".join(await second.start())  # the 7-day warning is not repeated
    await second.stop()
    clock.advance(timedelta(days=5))  # down again across the 1-day warning AND the end of the term
    third = Room(database_url, clock)
    started = "\n".join(await third.start())
    assert "bob's term as facilitator has ended" in started
    assert "term as facilitator ends" not in started  # a warning for a term already over would be noise
    await third.stop()
    fourth = Room(database_url, clock)
    assert "facilitator" not in "\n".join(await fourth.start())
    await fourth.stop()


async def test_a_warning_that_fell_due_while_down_is_sent_once_at_start(database_url):
    clock = ManualClock(START)
    async with Room(database_url, clock) as room:
        await room.say("!role add facilitator term=30d", as_="alice")
        await room.say("!volunteer facilitator", as_="bob")
        await room.say("!draw facilitator now")
    clock.advance(timedelta(days=29, hours=12))  # both warnings fell due while the bot was down
    second = Room(database_url, clock)
    started = "\n".join(await second.start())
    await second.stop()
    assert started.count("term as facilitator ends") == 1 and "(in 12 hours)" in started
