"""APScheduler wakes the core: at the next deadline, and on a regular sweep.

The database is the source of truth for what is due; this module only
decides *when* to look. A sweep every `sweep_interval` catches anything a
wake-up missed (clock jumps, work created elsewhere), and start-up runs the
overdue work once before anything else.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta, timezone

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from bot.clock import Clock, utcnow

log = logging.getLogger(__name__)


class Scheduler:
    def __init__(self, run_due: Callable[[], Awaitable[datetime | None]], clock: Clock,
                 sweep_interval: timedelta) -> None:
        self._run_due = run_due  # does the due work, returns the next due time
        self._clock = clock
        self._sweep_interval = sweep_interval
        self._aps = AsyncIOScheduler(timezone=timezone.utc)
        self._lock = asyncio.Lock()
        self._closing = False
        self._asked: datetime | None = None  # a wake-up asked for while a run was under way

    def start(self) -> None:
        # Two instances: a sweep that comes while a long run is under way finds the lock taken and
        # returns at once (_sweep), rather than being refused with a warning by APScheduler.
        self._aps.add_job(self._sweep, IntervalTrigger(seconds=self._sweep_interval.total_seconds()),
                          id="sweep", max_instances=2, coalesce=True, misfire_grace_time=None)
        self._aps.start()

    async def shutdown(self) -> None:
        """Stop waking, let a run in progress finish, then stop APScheduler.

        APScheduler's asyncio executor cannot wait: its shutdown cancels a job
        still running (a CancelledError traceback, work cut off mid-way), and the
        shutdown itself only happens on a later loop turn, when the core's worker
        may be gone. So no job may be running or queued when it is called.
        """
        if not self._aps.running:
            return
        self._closing = True
        self._aps.pause()  # no new job tasks from here on
        await asyncio.sleep(0)  # job tasks created before the pause take their turn at the lock first
        async with self._lock:  # ...and the run holding it finishes
            pass
        self._aps.shutdown(wait=False)
        await asyncio.sleep(0)  # APScheduler shuts down on the next loop turn: let it, while the loop runs

    async def _sweep(self) -> None:
        """The regular look: skipped while a run is under way (that run re-arms the next wake-up)."""
        if not self._lock.locked():
            await self.run_now()

    async def run_now(self) -> None:
        async with self._lock:  # sweeps and wake-ups never overlap
            if self._closing:
                return
            try:
                due = await self._run_due()
            except Exception:
                log.exception("scheduled work failed; the next sweep retries")
                return
            finally:
                asked, self._asked = self._asked, None
        self.wake_at(min((t for t in (due, asked) if t is not None), default=None))

    def wake_at(self, due: datetime | None) -> None:
        """Ask to be woken when `due` (in the core's clock) arrives."""
        if due is None or not self._aps.running:
            return
        if self._lock.locked():  # a run is under way: arm it when that run ends (no job piling up behind it)
            self._asked = due if self._asked is None else min(self._asked, due)
            return
        # The core's clock may be shifted (the console's :wait); APScheduler runs on real time.
        real = utcnow() + (due - self._clock.now())
        self._aps.add_job(self.run_now, DateTrigger(run_date=max(real, utcnow())), id="wake",
                          replace_existing=True, misfire_grace_time=None,
                          # A wake-up may come while an earlier one still waits for the run in progress
                          # (the console's :wait runs directly): it queues on the lock, it is not dropped.
                          max_instances=4)
