"""The running application: core, adapters, delivery and scheduler, wired once.

The core is synchronous (one database transaction per event); it runs on one
worker thread so the event loop stays free for the platforms and database
writes happen one at a time.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime, timedelta
from functools import partial
from typing import Any, Callable

from bot.adapter import Adapter
from bot.core import Core
from bot.delivery import Delivery
from bot.events import Inbound
from bot.metrics import REPLY_SECONDS
from bot.worker import CoreWorker
from scheduler import jobs
from scheduler.runner import Scheduler

log = logging.getLogger(__name__)
HOUSEKEEPING_EVERY = 3600.0  # seconds between clean-ups of the outbox
CATCH_UP_LIMIT = 10_000_000  # due items caught up at start-up before the adapters start (all of them)


class Runtime:
    def __init__(self, core: Core, adapters: list[Adapter], sweep_interval: timedelta) -> None:
        self.core = core
        self.adapters = adapters
        # Scheduled work covers the groups of these platform accounts only: other processes on the
        # same database serve the others (bot/standby.py).
        self.platforms = tuple(adapter.platform for adapter in adapters)
        self._rearming: asyncio.Future | None = None
        self._rearm_again = False
        self._scope = self.platforms  # narrowed to None when every group is ours (refreshed each round)
        self._worker = CoreWorker()
        self.delivery = Delivery(core, adapters, self.call)
        self.scheduler = Scheduler(self.run_due, core.clock, sweep_interval)
        self._next_housekeeping = 0.0

    async def call(self, function: Callable[..., Any], *args: Any) -> Any:
        """Run on the core's worker, ahead of any background work waiting there."""
        return await self._worker.call(function, *args)

    async def call_in_background(self, function: Callable[..., Any], *args: Any) -> Any:
        """Run on the core's worker after whatever members are waiting for."""
        return await self._worker.call(function, *args, background=True)

    async def handle(self, event: Inbound, platform: str | None = None) -> None:
        """The sink adapters feed: apply the event (its replies are in the outbox when this
        commits), deliver them, re-arm the wake-up. An adapter confirms the event to its
        platform only after this returned."""
        if platform is not None:
            await self.delivery.open(platform)  # the adapter is receiving, so it can send too
        started = time.perf_counter()
        outgoing = await self.call(self.core.intake, event)
        REPLY_SECONDS.observe(time.perf_counter() - started)
        await self.delivery.submit(outgoing)
        if outgoing:
            self._rearm_soon()

    def _rearm_soon(self) -> None:
        """A command may have set a new deadline: look when the next one falls, off the reply path
        (after the member's work on the worker) and once for a whole burst of commands."""
        if self._rearming is None or self._rearming.done():
            self._rearming = asyncio.ensure_future(self._rearm())
        else:
            self._rearm_again = True

    async def _rearm(self) -> None:
        try:
            while True:
                self._rearm_again = False
                self.scheduler.wake_at(await self.call_in_background(jobs.next_due, self.core, self._scope))
                if not self._rearm_again:
                    return
        except Exception:
            log.exception("could not look for the next deadline; the next sweep will")

    async def run_due(self) -> datetime | None:
        """Do the due work in short slices, delivering what each announced, and say when to look next.

        Each slice is a separate turn on the core's worker, so a member's command that arrives
        meanwhile runs between two slices instead of waiting for all of it (a thousand audits
        closing together used to hold every group's commands for minutes)."""
        self._scope = await self.call(jobs.work_scope, self.core, self.platforms)
        finished = False
        while not finished:
            _, finished = await self.call_in_background(jobs.run_due_batch, self.core, jobs.SLICE_BUDGET,
                                                        jobs.SLICE_BATCH, self._scope)
            await self.delivery.pull()
        if time.monotonic() >= self._next_housekeeping:
            self._next_housekeeping = time.monotonic() + HOUSEKEEPING_EVERY
            await self.call(jobs.forget_delivered_actions, self.core)
        return await self.call(jobs.next_due, self.core, self._scope)

    async def start(self) -> None:
        # Overdue work first (deadlines that passed while the bot was down), once, in big batches:
        # no member can be waiting yet. Then everything a crash left in the outbox is queued
        # ahead of new replies.
        self._scope = await self.call(jobs.work_scope, self.core, self.platforms)
        await self.call(jobs.run_due_work, self.core, CATCH_UP_LIMIT, self._scope)
        next_due = await self.run_due()
        self.scheduler.start()
        self.scheduler.wake_at(next_due)
        for adapter in self.adapters:
            await adapter.start(partial(self.handle, platform=adapter.platform))
            await self.delivery.open(adapter.platform)

    async def fence(self, timeout: float = 5.0) -> None:
        """Stop serving at once, without delivering what is queued: another process now serves these
        accounts and delivers it. Nothing is lost — it is all in the outbox and the platforms' queues."""
        await self.delivery.close()
        for adapter in self.adapters:
            try:
                await asyncio.wait_for(adapter.stop(), timeout)
            except Exception:
                log.exception("stopping %s failed", adapter.platform)
        try:
            await asyncio.wait_for(self.scheduler.shutdown(), timeout)
        except TimeoutError:
            log.warning("scheduled work was still running when fenced; the next active process redoes it")
        await self._stop_rearming()
        self._worker.shutdown(wait=False)  # a call stuck on a lost connection must not hold the exit

    async def stop(self) -> None:
        await self.delivery.drain()  # what is queued goes out while the adapters can still send
        for adapter in self.adapters:
            try:
                await adapter.stop()
            except Exception:
                log.exception("stopping %s failed", adapter.platform)
        await self.scheduler.shutdown()
        await self._stop_rearming()
        await self.delivery.close()  # anything that came in meanwhile stays in the outbox for next time
        self._worker.shutdown(wait=True)

    async def _stop_rearming(self) -> None:
        if self._rearming is not None:
            self._rearming.cancel()
            await asyncio.gather(self._rearming, return_exceptions=True)
