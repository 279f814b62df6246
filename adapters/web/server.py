"""The members' pages and calendar feeds over HTTP: aiohttp, Jinja2 templates rendered on the server,
one stylesheet, no JavaScript at all.

    /g/<token>/                     a group's page (bot.transparency.Page, rendered in its language)
    /g/<token>/calendar.ics         the group's calendar feed
    /g/<token>/decisions.csv|.md    the decision log, as `decisions export` makes it
    /g/<token>/ledger.csv           the books, as `ledger csv` makes them
    /g/<token>/log.jsonl            the group log, as `log export` makes it
    /g/<token>/charts/<name>.png    the page's charts (audits, a month's books)
    /me/<token>/calendar.ics        a member's own calendar feed
    /static/page.css                the stylesheet

Nothing else answers, and nothing answers without a valid token: every miss is the same 404 page.
This adapter never touches storage; it calls what the wiring hands it (the core's read model,
bot.transparency.Reader), each call on a thread so the event loop never waits for the database.

Every response carries a strict Content-Security-Policy (nothing but this origin's stylesheet and
images), nosniff, no referrer and, for everything but the stylesheet, `Cache-Control: no-store`.
Each client address gets a token bucket (REQUESTS_PER_MINUTE, 429 beyond). Behind a reverse proxy
on the same machine (the peer is a loopback address) the last X-Forwarded-For address is the client.
The access log is off: a request line holds a token.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp import web
from babel.dates import format_date
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup, escape

from bot import i18n, transparency
from bot.money import format_cents

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
STATIC = HERE / "static"
TEMPLATES = HERE / "templates"
REQUESTS_PER_MINUTE = 60
MAX_CLIENTS = 10_000  # buckets kept; the least recently seen client's goes first
CHART_CACHE = 32
CSP = ("default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; "
       "frame-ancestors 'none'")
CALENDAR = "text/calendar; charset=utf-8"
TOKEN = "[A-Za-z0-9_-]{1,128}"  # what secrets.token_urlsafe makes (with room to spare)

Blocking = Callable[..., Any]  # called on a thread


def environment() -> Environment:
    """Templates with every value escaped, and texts translated by bot.i18n (the language is the
    one `speaking` sets around each rendering)."""
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]),
                      extensions=["jinja2.ext.i18n"], trim_blocks=True, lstrip_blocks=True, auto_reload=False)
    # Newstyle gettext semantics (below), without Jinja's wrapper around each call; the templates use
    # `_()` and `ngettext()` only, never `{% trans %}` blocks (those would format a second time).
    env.install_gettext_callables(gettext, ngettext, newstyle=False)
    env.filters.update(number=i18n.number)
    env.globals.update(OUTCOMES=transparency.OUTCOMES, RULES=transparency.RULE_NAMES, FILLS=transparency.FILLS,
                       END_REASONS=transparency.END_REASONS, KINDS=transparency.KINDS, money=format_cents,
                       translated=translated, tally=tally, shown_decisions=transparency.DECISIONS_SHOWN)
    return env


# Jinja's "newstyle" gettext, made lean (a page calls it a thousand times): the translation is taken
# as markup, the named placeholders are filled with escaped values (numbers as they are), and `%%` is
# a percent sign, as with `install_gettext_callables(…, newstyle=True)`.
def _escaped(variables: dict) -> dict:
    return {key: value if isinstance(value, int | float) else escape(value) for key, value in variables.items()}


def gettext(message: str, **variables) -> Markup:
    return Markup(i18n._(message) % _escaped(variables))


def ngettext(singular: str, plural: str, count: int, **variables) -> Markup:
    return Markup(i18n.ngettext(singular, plural, count) % _escaped({"num": count, **variables}))


def translated(labels: dict[str, str]) -> dict[str, str]:
    """Words kept as data (outcomes, rules …) in the page's language, looked up once per page."""
    return {key: i18n._(label) for key, label in labels.items()}


def tally(counts: list[tuple[str, int, bool]]) -> str:
    """`2 yes · 1 no · 0 abstain · 0 block` (a poll's options as members wrote them)."""
    return " · ".join(f"{i18n.number(count)} {i18n._(label) if word else label}" for label, count, word in counts)


class _Formats:
    """Dates and durations as members read them, in the group's time zone and the page's language;
    made per page, each one formatted once (a page repeats term starts and ends many times)."""

    def __init__(self, zone) -> None:
        self.zone = zone
        self._at: dict[datetime, Markup] = {}
        self._on: dict[datetime, Markup] = {}
        self._span: dict[timedelta, str] = {}

    def at(self, value: datetime) -> Markup:
        """A moment as a <time> element: `Fri 5 Dec 19:00`, machine-readable in its attribute."""
        found = self._at.get(value)
        if found is None:
            local = value.astimezone(self.zone)
            found = self._at[value] = Markup(f'<time datetime="{local.isoformat(timespec="minutes")}">'
                                             f'{escape(i18n.moment(local))}</time>')
        return found

    def on(self, value: datetime) -> Markup:
        """A day as a <time> element: `5 Dec 2026`."""
        found = self._on.get(value)
        if found is None:
            local = value.astimezone(self.zone)
            found = self._on[value] = Markup(f'<time datetime="{local.date().isoformat()}">'
                                             f'{escape(i18n.day(local))}</time>')
        return found

    def past_holders(self, past: list, reasons: dict[str, str]) -> Markup:
        """`ana (5 Mar 2026 – 3 Jun 2026, term ended); bob (…)`: who held a role before."""
        return Markup("; ").join(
            Markup(f"{escape(holder.name)} ({self.period(holder.started, holder.ended)}"
                   f"{', ' + escape(reasons.get(holder.reason, holder.reason)) if holder.reason else ''})")
            for holder in past)

    def span(self, value: timedelta) -> str:
        """`3 months`, `2 days`: how long, in words."""
        found = self._span.get(value)
        if found is None:
            found = self._span[value] = i18n.span(value)
        return found

    def period(self, start: datetime, end: datetime) -> Markup:
        return Markup(f"{self.on(start)} – {self.on(end)}")

    def month(self, value: datetime) -> str:
        """`March 2026`, in the page's language."""
        return format_date(value.astimezone(self.zone).date(), "LLLL y", locale=i18n.current())


class RateLimit:
    """A token bucket per client: `rate` requests a minute, as a burst or spread out."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.capacity = float(per_minute)
        self.refill = per_minute / 60.0
        self.clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def allow(self, client: str) -> bool:
        now = self.clock()
        tokens, since = self._buckets.pop(client, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - since) * self.refill)
        allowed = tokens >= 1.0
        self._buckets[client] = (tokens - 1.0 if allowed else tokens, now)
        if len(self._buckets) > MAX_CLIENTS:
            self._buckets.popitem(last=False)  # the least recently seen client
        return allowed

    def retry_after(self, client: str) -> int:
        tokens, _ = self._buckets.get(client, (0.0, 0.0))
        return max(1, int((1.0 - tokens) / self.refill + 0.999))


def client_of(request: web.Request) -> str:
    remote = request.remote or "?"
    forwarded = request.headers.get("X-Forwarded-For")
    if forwarded:
        try:
            local = ipaddress.ip_address(remote).is_loopback
        except ValueError:
            local = False
        if local:  # a reverse proxy on this machine says who asked
            return forwarded.split(",")[-1].strip()[:64] or remote
    return remote


class WebServer:
    def __init__(self, listen: str, port: int, *, page: Blocking, group_feed: Blocking, personal_feed: Blocking,
                 download: Blocking, chart: Blocking, draw_chart: Callable[[Any], Awaitable[bytes]],
                 requests_per_minute: int = REQUESTS_PER_MINUTE,
                 on_stop: Callable[[], None] | None = None) -> None:
        """`port` 0 binds an ephemeral port (tests); the bound one is in `port` after `start`.
        `page(token)`, `group_feed(token)`, `personal_feed(token)`, `download(token, name)` and
        `chart(token, name)` block (they read the database) and return None for "no such page";
        `draw_chart(chart)` turns a chart's description into a PNG."""
        self.listen, self.port = listen, port
        self._page, self._group_feed, self._personal_feed = page, group_feed, personal_feed
        self._download, self._chart, self._draw = download, chart, draw_chart
        self.limit = RateLimit(requests_per_minute)
        self._on_stop = on_stop
        self._charts: OrderedDict[tuple[str, str], bytes] = OrderedDict()
        self._runner: web.AppRunner | None = None
        self.env = environment()
        # Compiled now, at start-up (before the app freezes what it has loaded), not on the first request.
        self._template = self.env.get_template("page.html")
        self._missing = self._render_missing()

    # lifecycle --------------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._limited, self._not_found])
        group, person = f"/g/{{token:{TOKEN}}}", f"/me/{{token:{TOKEN}}}"  # anything else is the 404 page
        app.router.add_get("/static/page.css", self._stylesheet)
        app.router.add_get(group, self._slash)
        app.router.add_get(group + "/", self._group_page)
        app.router.add_get(group + "/calendar.ics", self._group_calendar)
        app.router.add_get(group + r"/{name:decisions\.csv|decisions\.md|ledger\.csv|log\.jsonl}", self._file)
        app.router.add_get(group + "/charts/{name:[a-z0-9-]{1,40}}.png", self._chart_png)
        app.router.add_get(person + "/calendar.ics", self._personal_calendar)
        app.on_response_prepare.append(_headers)
        return app

    async def start(self) -> None:
        self._runner = web.AppRunner(self.app(), access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.listen, self.port).start()
        self.port = self._runner.addresses[0][1]
        log.info("members' pages and calendar feeds on http://%s:%d/", self.listen, self.port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._on_stop is not None:
            self._on_stop()

    # middleware ----------------------------------------------------------------------------------

    @web.middleware
    async def _limited(self, request: web.Request, handler) -> web.StreamResponse:
        client = client_of(request)
        if not self.limit.allow(client):
            return web.Response(status=429, text="Too many requests; try again in a minute.\n",
                                headers={"Retry-After": str(self.limit.retry_after(client))})
        return await handler(request)

    @web.middleware
    async def _not_found(self, request: web.Request, handler) -> web.StreamResponse:
        """Every miss (an unknown path, a wrong or replaced token) is the same page; errors are logged
        without the path (it holds a token)."""
        try:
            return await handler(request)
        except web.HTTPNotFound:
            return self.missing()
        except web.HTTPException:
            raise
        except Exception:
            log.exception("the members' page failed (%s)", request.match_info.route.name or "a page")
            return web.Response(status=500, text="Something went wrong on our side.\n")

    def missing(self) -> web.Response:
        return web.Response(status=404, body=self._missing, content_type="text/html", charset="utf-8")

    # handlers ------------------------------------------------------------------------------------

    async def _stylesheet(self, request: web.Request) -> web.StreamResponse:
        return web.FileResponse(STATIC / "page.css", headers={"Content-Type": "text/css; charset=utf-8"})

    async def _slash(self, request: web.Request) -> web.StreamResponse:
        # The page's links are relative to its address with the slash; no lookup here (a redirect says nothing).
        raise web.HTTPMovedPermanently(location=f"/g/{request.match_info['token']}/")

    async def _group_page(self, request: web.Request) -> web.StreamResponse:
        body = await asyncio.to_thread(self.render_page, request.match_info["token"])
        if body is None:
            return self.missing()
        return web.Response(body=body, content_type="text/html", charset="utf-8")

    async def _group_calendar(self, request: web.Request) -> web.StreamResponse:
        return await self._calendar(self._group_feed, request.match_info["token"])

    async def _personal_calendar(self, request: web.Request) -> web.StreamResponse:
        return await self._calendar(self._personal_feed, request.match_info["token"])

    async def _calendar(self, feed: Blocking, token: str) -> web.StreamResponse:
        data = await asyncio.to_thread(feed, token)
        if data is None:
            return self.missing()
        return web.Response(body=data, headers={"Content-Type": CALENDAR,
                                                "Content-Disposition": 'inline; filename="calendar.ics"'})

    async def _file(self, request: web.Request) -> web.StreamResponse:
        found = await asyncio.to_thread(self._download, request.match_info["token"], request.match_info["name"])
        if found is None:
            return self.missing()
        return web.Response(body=found.data, headers={
            "Content-Type": found.content_type,
            "Content-Disposition": f'attachment; filename="{found.filename}"'})

    async def _chart_png(self, request: web.Request) -> web.StreamResponse:
        described = await asyncio.to_thread(self._chart, request.match_info["token"], request.match_info["name"])
        if described is None:
            return self.missing()
        key = (described.name, described.figures)
        png = self._charts.get(key)
        if png is None:  # a chart is drawn from its figures alone: the same figures, the same picture
            png = await self._draw(described)
            self._charts[key] = png
            if len(self._charts) > CHART_CACHE:
                self._charts.popitem(last=False)
        else:
            self._charts.move_to_end(key)
        return web.Response(body=png, content_type="image/png")

    # rendering ---------------------------------------------------------------------------------

    def render_page(self, token: str) -> bytes | None:
        """The page of the group `token` opens, as HTML in the group's language (None: no such page).
        Blocking: reads the database."""
        page = self._page(token)
        if page is None:
            return None
        return self.render(page)

    def render(self, page) -> bytes:
        formats = _Formats(page.zone)
        with i18n.speaking(page.language):
            html = self._template.render(
                page=page, lang=page.language.replace("_", "-"), at=formats.at, on=formats.on,
                period=formats.period, month=formats.month, span=formats.span, past_holders=formats.past_holders,
                zone=page.zone.key)
        return html.encode("utf-8")

    def _render_missing(self) -> bytes:
        with i18n.speaking(i18n.SOURCE_LANGUAGE):
            return self.env.get_template("missing.html").render(lang=i18n.SOURCE_LANGUAGE).encode("utf-8")


async def _headers(request: web.Request, response: web.StreamResponse) -> None:
    headers = response.headers
    headers["Content-Security-Policy"] = CSP
    headers["X-Content-Type-Options"] = "nosniff"
    headers["Referrer-Policy"] = "no-referrer"
    headers["X-Frame-Options"] = "DENY"
    headers["X-Robots-Tag"] = "noindex, nofollow"
    headers["Cross-Origin-Resource-Policy"] = "same-origin"
    headers["Server"] = "commons"
    if request.path == "/static/page.css" and response.status == 200:
        headers["Cache-Control"] = "public, max-age=3600"
    else:
        headers["Cache-Control"] = "no-store"
