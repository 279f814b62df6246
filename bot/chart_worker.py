"""Charts are drawn in a process of their own, off the core's worker and the event loop.

Drawing an audit chart takes about 0.4 s of CPU. On the core's worker thread every
member's command waited behind it (40 audits closing together: 17.7 s); on a
second thread it would still hold the interpreter's lock most of that time. A
separate process takes it away entirely. It starts on the first chart (a bot that
never draws one never pays for matplotlib) and is reused after that.

Nothing sets the language in that process: each chart carries the language it was
described in (`charts.describe`, in the core), and `charts.draw` speaks it there.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from bot import charts
from bot.actions import Chart

log = logging.getLogger(__name__)


class ChartWorker:
    def __init__(self) -> None:
        self._pool: ProcessPoolExecutor | None = None

    async def draw(self, chart: Chart) -> bytes:
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor(), charts.draw, chart)
        except BrokenProcessPool:  # the drawing process died (out of memory?): a fresh one next time
            self._pool = None
            raise

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            # forkserver: a clean child, not a fork of a process with running threads and open sockets.
            self._pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("forkserver"))
        return self._pool

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
