"""What a supervisor and a metrics collector ask the process: is it alive, is it
serving, and the numbers of `bot.metrics`.

- `/livez`: 200 while the event loop answers (the loop itself serves it).
- `/readyz`: 200 only while this process is active; 503 with the state otherwise
  (starting, standby, fenced, stopping), so a load balancer or an orchestrator
  sends nothing to a hot standby.
- `/metrics`: the Prometheus text format. Gauges read from the database are
  refreshed first; a slow or failing refresh does not hold up the scrape.

Nothing else is served, and nothing is cached on the way.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from bot.metrics import REGISTRY

log = logging.getLogger(__name__)

READY = "active"


class OpsServer:
    def __init__(self, listen: str, port: int, state: Callable[[], str],
                 refresh: Callable[[], Awaitable[None]] | None = None, refresh_timeout: float = 2.0) -> None:
        """`port` 0 binds an ephemeral port (tests); the bound one is in `port` after `start`.
        `state` says "starting", "standby", "active", "fenced" or "stopping"."""
        self.listen, self.port = listen, port
        self.state = state
        self.refresh = refresh
        self.refresh_timeout = refresh_timeout
        self._refreshing: asyncio.Future | None = None
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/livez", self._livez)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/metrics", self._metrics)
        app.on_response_prepare.append(_no_store)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.listen, self.port).start()
        self.port = self._runner.addresses[0][1]
        log.info("health and metrics on http://%s:%d/ (livez, readyz, metrics)", self.listen, self.port)

    async def stop(self) -> None:
        if self._refreshing is not None:
            self._refreshing.cancel()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _livez(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def _readyz(self, request: web.Request) -> web.Response:
        state = self.state()
        return web.Response(text=state, status=200 if state == READY else 503)

    async def _metrics(self, request: web.Request) -> web.Response:
        await self._refreshed()
        return web.Response(body=generate_latest(REGISTRY), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def _refreshed(self) -> None:
        """Wait a little for fresh values. One refresh runs at a time: a scrape during a slow one waits
        for that one, so a stuck database does not pile up queries; it finishes in the background."""
        if self.refresh is None:
            return
        try:
            if self._refreshing is None or self._refreshing.done():
                self._refreshing = asyncio.ensure_future(self.refresh())
            await asyncio.wait_for(asyncio.shield(self._refreshing), self.refresh_timeout)
        except TimeoutError:
            log.warning("refreshing the metrics took over %.0f s; serving the last values", self.refresh_timeout)
        except Exception:
            log.warning("refreshing the metrics failed; serving the last values", exc_info=True)


async def _no_store(request: web.Request, response: web.StreamResponse) -> None:
    response.headers["Cache-Control"] = "no-store"
