"""The running application: core, adapters, delivery and scheduler, wired once.

The core is synchronous (one database transaction per event); it runs on one
worker thread so the event loop stays free for the platforms and database
writes happen one at a time.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from functools import partial
from typing import Any, Callable

from bot.adapter import Adapter
from bot.core import Core
from bot.delivery import Delivery
from bot.events import Inbound
from scheduler import jobs
from scheduler.runner import Scheduler

log = logging.getLogger(__name__)


class Runtime:
    def __init__(self, core: Core, adapters: list[Adapter], sweep_interval: timedelta) -> None:
        self.core = core
        self.adapters = adapters
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="commons-core")
        self.delivery = Delivery(core, adapters, self.call)
        self.scheduler = Scheduler(self.run_due, core.clock, sweep_interval)

    async def call(self, function: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._worker, partial(function, *args))

    async def handle(self, event: Inbound) -> None:
        """The sink adapters feed: apply the event, deliver the replies, re-arm the wake-up."""
        actions = await self.call(self.core.handle, event)
        await self.delivery.perform(actions)
        if actions:
            self.scheduler.wake_at(await self.call(jobs.next_due, self.core))

    async def run_due(self) -> datetime | None:
        """Do the due work, send what it announced, and say when to look next."""
        await self.call(jobs.run_due_work, self.core)
        await self.delivery.flush_announcements()
        return await self.call(jobs.next_due, self.core)

    async def start(self) -> None:
        # Overdue work first (deadlines that passed while the bot was down), once,
        # and announcements a crash left unsent.
        next_due = await self.run_due()
        self.scheduler.start()
        self.scheduler.wake_at(next_due)
        for adapter in self.adapters:
            await adapter.start(self.handle)

    async def stop(self) -> None:
        await self.delivery.drain()  # replies still waiting for a rate limit go out first
        for adapter in self.adapters:
            try:
                await adapter.stop()
            except Exception:
                log.exception("stopping %s failed", adapter.platform)
        await self.scheduler.shutdown()
        self._worker.shutdown(wait=True)
