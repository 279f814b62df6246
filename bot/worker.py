"""The core's one worker thread, with members first.

Database writes happen one at a time on this thread (see bot/runtime.py). Work
comes in two kinds: what a member is waiting for (a command, its delivery
bookkeeping) and background work (slices of scheduled work). Both wait in one
queue, but a member's work goes ahead of any background work still waiting, so
a vote waits at most for the slice already running, never for a queue of them.
Within each kind the order is kept.
"""

from __future__ import annotations

import asyncio
import itertools
import queue
import threading
from collections.abc import Callable
from typing import Any

URGENT, BACKGROUND, LAST = 0, 1, 2


class CoreWorker:
    def __init__(self, name: str = "commons-core") -> None:
        self._queue: queue.PriorityQueue = queue.PriorityQueue()
        self._order = itertools.count()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    async def call(self, function: Callable[..., Any], *args: Any, background: bool = False) -> Any:
        if self._closed:
            raise RuntimeError("the core's worker has stopped")
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._queue.put((BACKGROUND if background else URGENT, next(self._order), function, args, loop, future))
        return await future

    def _run(self) -> None:
        while True:
            _, _, function, args, loop, future = self._queue.get()
            if function is None:
                return
            try:
                result, error = function(*args), None
            except BaseException as exc:  # handed to the caller, as an executor would
                result, error = None, exc
            loop.call_soon_threadsafe(_settle, future, result, error)

    def shutdown(self, wait: bool = True) -> None:
        """Stop after everything already queued (wait: until it is done)."""
        if not self._closed:
            self._closed = True
            self._queue.put((LAST, next(self._order), None, (), None, None))
        if wait:
            self._thread.join()


def _settle(future: asyncio.Future, result: Any, error: BaseException | None) -> None:
    if future.done():  # the caller gave up (cancelled)
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
