"""The core's worker puts members first: a command waits at most for the slice of scheduled
work already running, never for a queue of them; order is kept within each kind."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

from sqlalchemy import func, select

from bot.worker import CoreWorker
from storage.models import Mandate
from tests.harness import Room


async def test_a_members_call_overtakes_queued_background_work():
    worker = CoreWorker()
    finished: list[str] = []

    def work(name: str, seconds: float) -> str:
        time.sleep(seconds)
        finished.append(name)
        return name

    try:
        background = [asyncio.ensure_future(worker.call(work, f"slice {n}", 0.1, background=True)) for n in range(4)]
        await asyncio.sleep(0.02)  # slice 0 is running
        assert await worker.call(work, "vote", 0.0) == "vote"
        assert finished == ["slice 0", "vote"], finished
        await asyncio.gather(*background)
        assert finished == ["slice 0", "vote", "slice 1", "slice 2", "slice 3"]
        urgent = [asyncio.ensure_future(worker.call(work, f"reply {n}", 0.0)) for n in range(5)]
        assert await asyncio.gather(*urgent) == [f"reply {n}" for n in range(5)]  # in order
    finally:
        worker.shutdown()


async def test_an_error_reaches_its_caller_and_the_worker_goes_on():
    worker = CoreWorker()
    try:
        def fail() -> None:
            raise ValueError("no such proposal")
        try:
            await worker.call(fail)
        except ValueError as error:
            assert str(error) == "no such proposal"
        else:
            raise AssertionError("the error was lost")
        assert await worker.call(lambda: 42) == 42
    finally:
        worker.shutdown()


def lapsed(room: Room) -> int:
    with room.core.db.transaction() as session:
        return session.scalar(select(func.count(Mandate.ended_at)))


async def test_a_vote_is_answered_while_a_wave_of_mandates_lapses(sqlite_url):
    """150 mandates whose terms end together (a group's 50 roles, 3 seats each): the scheduled work
    runs in slices, and a vote sent meanwhile is answered before the last lapse is announced."""
    async with Room(sqlite_url) as room:
        await room.say("!propose Paint the stairwell closes=30d", as_="alice")
        runtime = room.session.runtime
        for n in range(50):
            await room.say(f"!role add role{n} term=7d fill=volunteer seats=3", as_="alice")
            for member in ("carol", "dave", "erin"):
                await room.say(f"!volunteer role{n}", as_=member)
        await room.wait("3d")  # no objection: they take the 150 seats
        room.clock.advance(timedelta(days=8))
        mark = len(room.output)
        wave = asyncio.ensure_future(runtime.run_due())
        while lapsed(room) == 0:  # the wave is under way
            await asyncio.sleep(0.001)
        answer = await room.say("!vote 1 yes", as_="bob")
        assert "✅" in answer or "yes" in answer.lower(), answer
        answered_at = len(room.output)
        assert lapsed(room) < 150, "the vote waited for the whole wave"
        await wave
        lapses = [n for n, line in enumerate(room.output[mark:], mark) if "has ended, as every mandate does" in line]
        assert len(lapses) == 150
        assert answered_at < lapses[-1], "the vote was answered before the wave was over, not after it"
