"""One way out: every reply, acknowledgement, edit and announcement goes through
the outbox, in order per chat, with retries; a crash between the commit and the
send delivers it after the restart, once."""

import asyncio
from datetime import timedelta

from sqlalchemy import select

from bot.clock import ManualClock
from bot.events import ChatRef, CommandMessage, UserRef
from scheduler import jobs
from storage.models import OutboxItem
from tests.harness import START, Room

ROOM = ChatRef(platform="console", chat_id="room")


def said(user: str, text: str, event_id: str) -> CommandMessage:
    return CommandMessage(chat=ROOM, sender=UserRef(platform="console", user_id=user), sender_name=user,
                          text=text, event_id=event_id)


def outbox_rows(room: Room) -> list[OutboxItem]:
    with room.core.db.transaction() as session:
        return list(session.scalars(select(OutboxItem).order_by(OutboxItem.id)))


def refuse_texts_with(room: Room, word: str, error: Exception) -> None:
    """The console adapter raises `error` for every action whose text holds `word`."""
    adapter = room.session.adapter
    real_perform = adapter.perform

    async def refusing(action, key=None):
        if word in action.text.plain():
            raise error
        return await real_perform(action, key=key)

    adapter.perform = refusing


async def eventually(predicate, timeout: float = 5.0) -> None:
    for _ in range(int(timeout / 0.02)):
        if predicate():
            return
        await asyncio.sleep(0.02)
    assert predicate()


async def test_a_reply_committed_but_not_sent_before_a_crash_arrives_once_after_the_restart(database_url):
    clock = ManualClock(START)
    async with Room(database_url, clock) as room:
        await room.say("!propose Rent the hall closes=1d", as_="alice")
        # The command is applied and committed, then the process dies before anything is sent.
        room.core.intake(said("bob", "!proposal 1", "crash-1"))
        assert "Tally" not in "\n".join(room.output[-1:])
    restarted = Room(database_url, clock)
    shown = "\n".join(await restarted.start())
    await restarted.stop()
    assert shown.count("📜 #1 Rent the hall") == 1
    again = Room(database_url, clock)
    assert "Rent the hall" not in "\n".join(await again.start())  # delivered once, not at every start
    await again.stop()
    assert all(row.sent_at is not None for row in outbox_rows(again))


async def test_replies_go_out_in_order_per_chat_and_a_failure_is_retried_in_place(database_url):
    async with Room(database_url) as room:
        adapter, delivery = room.session.adapter, room.session.runtime.delivery
        delivery.first_pause = 0.05
        real_perform, failures = adapter.perform, []

        async def flaky(action, key=None):
            if len(failures) < 2:
                failures.append(action.kind)
                raise ConnectionError("network hiccup")
            return await real_perform(action, key=key)

        adapter.perform = flaky
        await room.say("!propose First closes=1d", as_="alice")
        await room.say("!propose Second closes=1d", as_="alice")
        await eventually(lambda: "#2 Second" in "\n".join(room.output))
        out = "\n".join(room.output)
        assert out.index("#1 First") < out.index("#2 Second")  # the second waited for the first
        assert out.count("#1 First") == 1 and len(failures) == 2
        await eventually(lambda: [(row.attempts, row.sent_at is not None) for row in outbox_rows(room)][:1]
                         == [(3, True)])  # two failures, then sent


async def test_a_permanent_refusal_marks_the_action_failed_without_blocking_the_chat(database_url):
    async with Room(database_url) as room:
        refuse_texts_with(room, "Refused", PermissionError("the platform refused this message"))
        room.session.adapter.is_permanent = lambda error: isinstance(error, PermissionError)
        await room.say("!propose Refused title closes=1d", as_="alice")
        await room.say("!propose Accepted title closes=1d", as_="alice")
        await eventually(lambda: "Accepted title" in "\n".join(room.output))
        failed = [row for row in outbox_rows(room) if row.failed_at is not None]
        assert len(failed) == 1 and "refused this message" in failed[0].error and failed[0].attempts == 1


async def test_after_the_last_attempt_an_action_is_given_up_with_its_reason(database_url):
    async with Room(database_url) as room:
        delivery = room.session.runtime.delivery
        delivery.first_pause, delivery.max_attempts = 0.01, 3
        refuse_texts_with(room, "Doomed", TimeoutError("no answer"))
        await room.say("!propose Doomed closes=1d", as_="alice")
        await room.say("!propose Next closes=1d", as_="alice")
        await eventually(lambda: "#2 Next" in "\n".join(room.output))
        [failed] = [row for row in outbox_rows(room) if row.failed_at is not None]
        assert failed.attempts == 3 and "TimeoutError: no answer" in failed.error


async def test_a_burst_of_votes_becomes_a_few_edits_with_the_newest_tally(database_url):
    async with Room(database_url, show_edits=True) as room:
        room.session.adapter.edit_delay = 0.5  # as a paced platform would coalesce them
        await room.say("!propose Freezer closes=1d", as_="alice")
        for voter in range(20):
            await room.say("!vote 1 yes", as_=f"member{voter}")
            pending_edits = [row for row in outbox_rows(room) if row.kind == "edit" and row.sent_at is None]
            assert len(pending_edits) <= 1  # the outbox keeps only the newest pending edit of the card
        await eventually(lambda: "Tally: 20 yes" in "\n".join(room.output))
        await asyncio.sleep(0.2)
        edits = [i for i, line in enumerate(room.output) if "✎" in line]
        assert 1 <= len(edits) <= 4  # 20 votes, a handful of edits (one per half second at most)
        assert "Tally: 20 yes" in room.output[edits[-1]] + room.output[edits[-1] + 1]


async def test_an_edit_queued_before_its_card_was_sent_waits_for_it(database_url):
    clock = ManualClock(START)
    async with Room(database_url, clock) as room:
        await room.say("!propose Keep going closes=1d", as_="alice")
    # Crash: the card, a vote's acknowledgement and the tally edit are committed, none sent.
    restarted = Room(database_url, clock, show_edits=True)
    restarted.core.intake(said("carol", "!propose Another closes=1d", "c-1"))
    restarted.core.intake(said("bob", "!vote 2 yes", "c-2"))
    shown = "\n".join(await restarted.start())
    await restarted.stop()
    assert shown.index("#2 Another") < shown.index("✎")  # the edit found the card's message id
    assert "Tally: 1 yes" in shown[shown.index("✎"):]


async def test_delivered_actions_are_forgotten_after_a_week_but_failures_are_kept(database_url):
    clock = ManualClock(START)
    async with Room(database_url, clock) as room:
        refuse_texts_with(room, "Refused", PermissionError("no"))
        room.session.adapter.is_permanent = lambda error: True
        await room.say("!propose Refused closes=30d", as_="alice")
        await room.say("!propose Kept closes=30d", as_="alice")
        await eventually(lambda: all(row.sent_at or row.failed_at for row in outbox_rows(room)))
        clock.advance(timedelta(days=6))
        assert jobs.forget_delivered_actions(room.core) == 0
        clock.advance(timedelta(days=2))
        assert jobs.forget_delivered_actions(room.core) >= 1
        assert [row.failed_at is not None for row in outbox_rows(room)] == [True]
