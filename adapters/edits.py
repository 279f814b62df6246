"""Coalesced edits, for adapters whose tallies are edited in place.

A burst of 300 votes asks for 300 edits of one message; only the newest text
matters, so each message keeps its latest edit and sends it once `delay` has
passed. Platform-neutral: the adapter supplies how to send one edit.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

from bot.actions import EditMessage

Key = TypeVar("Key", bound=Hashable)


class CoalescedEdits(Generic[Key]):
    def __init__(self, delay: float, send: Callable[[Key, EditMessage], Awaitable[None]]) -> None:
        self.delay = delay
        self._send = send
        self._pending: dict[Key, EditMessage] = {}
        self._tasks: dict[Key, asyncio.Task] = {}
        self._sending = asyncio.Lock()

    def queue(self, key: Key, action: EditMessage) -> None:
        self._pending[key] = action
        if key not in self._tasks:
            self._tasks[key] = asyncio.create_task(self._later(key))

    async def _later(self, key: Key) -> None:
        await asyncio.sleep(self.delay)
        # Unregister before sending: an edit queued while this one is on its way needs a timer of its own.
        self._tasks.pop(key, None)
        async with self._sending:  # one at a time, so an older text never lands after a newer one
            await self._flush(key)

    async def _flush(self, key: Key) -> None:
        action = self._pending.pop(key, None)
        if action is not None:
            await self._send(key, action)

    async def flush(self) -> None:
        """Send every pending edit now (at shutdown, and in tests)."""
        for task in list(self._tasks.values()):
            task.cancel()
        self._tasks.clear()
        async with self._sending:
            for key in list(self._pending):
                await self._flush(key)
