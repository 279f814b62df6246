"""The real scheduler wakes at the next deadline by itself (APScheduler on real
time), without waiting for the periodic sweep."""

import asyncio
from datetime import timedelta

from bot.app import ConsoleSession
from bot.clock import OffsetClock


async def test_the_bot_wakes_at_a_deadline_without_being_prompted(sqlite_url):
    output: list[str] = []
    session = ConsoleSession(sqlite_url, output.append, clock=OffsetClock(), sweep_interval=timedelta(hours=1))
    await session.start()
    try:
        await session.room.say("!propose Quick check closes=1s rule=consent")
        for _ in range(100):  # up to 10 s; normally about one second
            if any("Quick check: passed" in line for line in output):
                break
            await asyncio.sleep(0.1)
        assert sum("#1 Quick check: passed" in line for line in output) == 1
    finally:
        await session.stop()
