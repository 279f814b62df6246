"""The members' page (adapters/web) in a real headless Chromium, on SQLite and PostgreSQL: a group
seeded through the console room (roles, proposals and votes, decisions, needs — one anonymous —,
books, an audit, an assembly, a mediation), served by the real aiohttp app on 127.0.0.1 and read at
360 px and 1280 px wide: what it shows, what it never shows (an anonymous need's author, a
mediation, markup members typed), that it fits a phone, that only the current token opens it, the
headers on every response, the rate limit, and the group's language.

Screenshots go to tests/artifacts/."""

from __future__ import annotations

import asyncio
import csv
import io
import re
import time

import aiohttp
import pytest
from sqlalchemy import select

from adapters.web.server import CSP
from bot import i18n, transparency
from bot.governance import record
from bot.i18n import _
from storage.models import PageToken
from tests.browser import CHROMEDRIVER, CHROMIUM, Browser, chromium, serving
from tests.harness import Room, group_messages

ANONYMOUS = "Quimby"  # posts a need privately: the name must be nowhere on the page
MEDIATION_REQUESTER = "Zephyrine"
SECRET = "broken-kettle-grudge"  # what the mediation is about
TITLE = "<script>alert(1)</script> Buy a <b>freezer</b> & cups"
MEMBERS = ("alice", "bob", "carol", "dan", "erin", ANONYMOUS, MEDIATION_REQUESTER)


# The elements holding text whose colour is under 4.5:1 against the first opaque background behind them.
CONTRAST = r"""
const channel = c => { c /= 255; return c <= 0.03928 ? c / 12.92 : Math.pow((c + 0.055) / 1.055, 2.4); };
const luminance = rgb => 0.2126 * channel(rgb[0]) + 0.7152 * channel(rgb[1]) + 0.0722 * channel(rgb[2]);
const parse = text => (text.match(/[\d.]+/g) || []).map(Number);
const failures = [];
let checked = 0;
for (const element of document.querySelectorAll("body *")) {
  const own = [...element.childNodes].some(node => node.nodeType === 3 && node.textContent.trim());
  if (!own) continue;
  let behind = element, background = null;
  while (behind) {
    const value = parse(getComputedStyle(behind).backgroundColor);
    if (value.length === 3 || (value.length === 4 && value[3] > 0)) { background = value; break; }
    behind = behind.parentElement;
  }
  background = background || [255, 255, 255];
  const [a, b] = [luminance(parse(getComputedStyle(element).color)), luminance(background)];
  const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
  checked += 1;
  if (!(ratio >= 4.5)) failures.push(element.tagName + "." + element.className + " " + ratio.toFixed(2));
}
return [checked, failures];
"""


@pytest.fixture(scope="module")
def browser():
    """One Chromium for the module (each test opens its own pages in it)."""
    assert CHROMIUM.exists() and CHROMEDRIVER.exists(), "install Debian's chromium and chromium-driver"
    with chromium() as driver:
        yield Browser(driver)


def token_of(room, group_id: int = 1) -> str:
    with room.core.db.transaction() as session:
        return session.get(PageToken, group_id).token


def address_in(reply: str) -> str:
    return re.search(r"http://127\.0\.0\.1:\d+/g/[A-Za-z0-9_-]+/", reply)[0]


async def seed(room: Room) -> None:
    """A group with a bit of everything, through the commands members type."""
    for name in MEMBERS:
        await room.say("!help", as_=name)
    await room.say("!set audit_draw off", as_="alice")  # a lottery could rightly name anyone as auditor
    await room.say("!role add treasurer term=90d fill=volunteer", as_="alice")
    await room.say("!role add facilitator term=30d seats=2", as_="alice")
    assert "stands for" in await room.say("!volunteer treasurer", as_="bob")  # appointed unless blocked
    await room.say("!volunteer facilitator", as_="carol")
    await room.say(f"!propose {TITLE} closes=1d", as_="alice")  # #2 (#1 is bob's appointment)
    for name, choice in (("alice", "yes"), ("bob", "yes"), ("carol", "no")):
        await room.say(f"!vote 2 {choice}", as_=name)
    await room.say("!propose Paint the hall green closes=20d", as_="carol")  # #3 stays open
    await room.say("!vote 3 yes", as_="erin")
    posted = await room.say(':dm need "groceries for my family this week" category=food', as_=ANONYMOUS)
    assert "without your name" in posted
    await room.say('!need "a ride to the clinic" category=transport urgent', as_="erin")
    await room.say('!offer "I can fix bikes on Saturdays" category=repair', as_="dan")
    await room.say("!ledger +120 donations from the fair category=donations", as_="alice")
    for name in ("carol", "dan"):
        await room.say("!volunteer mediation", as_=name)
    asked = await room.say(f":dm mediation with=erin about the {SECRET} in the kitchen", as_=MEDIATION_REQUESTER)
    assert "Mediation #1" in asked
    await room.say("!audit", as_="alice")
    await room.say('!audit food 12 "community kitchen every Friday"', as_="bob")
    await room.wait("8d")  # #2 passed, bob is treasurer, the audit closed with its report
    assert "shadowing" in await room.say("!shadow treasurer", as_="dan")
    assert "Balance: 74.50 EUR" in await room.say("!ledger -45.50 chest freezer for=#2 category=kitchen", as_="alice")
    await room.say("!assembly 2026-04-10 19:00 community hall | Budget night", as_="alice")


async def test_members_read_their_group_on_a_phone_and_a_desktop_and_nobody_else_does(database_url, browser):
    async with Room(database_url) as room, serving(room.core) as server:
        await seed(room)
        linked = await room.say("!link", as_="alice")
        page = address_in(linked)
        assert "I made a members' page" in linked and "webcal://127.0.0.1" in linked
        assert address_in(await room.say("!link", as_="bob")) == page  # shown again, not replaced
        base = f"http://127.0.0.1:{server.port}"

        for width, height, mobile in ((360, 800, True), (1280, 900, False)):
            await browser.viewport(width, height, mobile)
            await browser.open(page)
            html = await browser.source()
            assert await browser.script("return document.documentElement.lang") == "en"
            assert await browser.script("return window.innerWidth") == width
            scroll, client = await browser.script("const root = document.documentElement; "
                                                  "return [root.scrollWidth, root.clientWidth]")
            assert scroll <= client <= width, f"horizontal scroll at {width} px: {scroll} > {client}"
            await browser.screenshot(f"page-{width}-{room.core.db.backend}.png")

            # Semantic structure: one h1, a heading per section, no script anywhere.
            assert await browser.count("h1") == 1
            headings = await browser.texts_of("section > h2")
            assert headings == ["Rotation calendar", "Open proposals", "Decision log", "Needs and offers",
                                "Sovereignty audits", "Books", "Coming assemblies", "Record and downloads"]
            assert await browser.count("script") == 0 and "<script>" not in html

            roles = await browser.text_of("#roles")
            assert "treasurer" in roles and "bob" in roles and "term ends" in roles
            assert "carol" in roles and "dan" in roles  # a volunteer for facilitator, a trainee of treasurer
            proposals = await browser.text_of("#proposals")
            assert "#3 Paint the hall green" in proposals and "1 member has voted so far" in proposals
            decisions = await browser.text_of("#decisions")
            assert f"#2 {TITLE}" in decisions  # the markup a member typed, shown as text
            assert "passed" in decisions and "2 yes · 1 no · 0 abstain · 0 block" in decisions
            assert "3 of 7 members voted" in decisions
            needs = await browser.text_of("#needs")
            figures = dict(pair.split("\n") for pair in await browser.texts_of("#needs dl.figures div"))
            assert figures["open needs"] == "2" and figures["open offers"] == "1"
            assert "groceries for my family this week" in needs and "a ride to the clinic" in needs
            assert "by erin" in needs and "by dan" in needs
            audits = await browser.text_of("#audits")
            assert "Audit #1" in audits and "food: 12" in audits and "needs posted" in audits
            books = await browser.text_of("#books")
            assert "Balance: 74.50 EUR" in books and "2 entries in the books" in books
            assert "#2 " + TITLE + ": 45.50 EUR" in books  # spending by decision
            assemblies = await browser.text_of("#assemblies")
            assert "Assembly #1: Budget night" in assemblies and "community hall" in assemblies
            with room.core.db.transaction() as session:
                head = record.head(session, 1)
            assert head.hash in await browser.text_of("#record") and head.short() in html

            # Text contrast (WCAG AA: 4.5:1) of every element that holds text, against its background.
            checked, failures = await browser.script(CONTRAST)
            assert checked > 100 and failures == []

            # Never shown: who asked anonymously, anything of a mediation.
            for hidden in (ANONYMOUS, MEDIATION_REQUESTER, SECRET, "mediat"):
                assert hidden.lower() not in html.lower(), hidden

        # The audit chart is drawn and shown.
        await browser.viewport(1280, 900, False)
        await browser.open(page + "#audits")
        loaded = await browser.script("const img = document.querySelector('#audits img'); "
                                      "return img.complete ? img.naturalWidth : -1")
        for _ in range(300):  # the chart is drawn in a process of its own, started on the first one
            if loaded and loaded > 0:
                break
            await asyncio.sleep(0.1)
            loaded = await browser.script("return document.querySelector('#audits img').naturalWidth")
        assert loaded == 800

        async with aiohttp.ClientSession() as client:
            # Files under the page's address: the exports the commands make, the charts, the feed.
            async with client.get(page + "decisions.csv") as answer:
                assert answer.status == 200 and answer.headers["Content-Type"].startswith("text/csv")
                assert 'attachment; filename="decision-log.csv"' == answer.headers["Content-Disposition"]
                rows = {row["number"]: row for row in csv.DictReader(io.StringIO(await answer.text()))}
                assert rows["2"]["title"] == TITLE and rows["2"]["outcome"] == "passed"
            async with client.get(page + "decisions.md") as answer:
                assert "&lt;script&gt;" in await answer.text()
            async with client.get(page + "ledger.csv") as answer:
                entries = list(csv.DictReader(io.StringIO(await answer.text())))
                assert [entry["description"] for entry in entries] == ["donations from the fair", "chest freezer"]
            async with client.get(page + "log.jsonl") as answer:
                lines = (await answer.text()).splitlines()
                assert len(lines) == head.seq and f'"hash":"{head.hash}"' in lines[-1]
            month = room.clock.now().strftime("%Y-%m")
            for chart in ("charts/audits.png", f"charts/ledger-{month}.png"):
                async with client.get(page + chart) as answer:
                    assert answer.status == 200 and answer.headers["Content-Type"] == "image/png"
                    assert (await answer.read()).startswith(b"\x89PNG\r\n\x1a\n")
            async with client.get(page + "charts/ledger-1999-01.png") as answer:
                assert answer.status == 404  # no entries that month
            async with client.get(page + "calendar.ics") as answer:
                assert answer.status == 200 and answer.headers["Content-Type"] == "text/calendar; charset=utf-8"

            # Headers on every kind of response.
            for path in (page, page + "calendar.ics", page + "decisions.csv", page + "charts/audits.png",
                         base + "/static/page.css", base + "/g/nothing/", base + "/", base + "/anything"):
                async with client.get(path, allow_redirects=False) as answer:
                    assert answer.headers["Content-Security-Policy"] == CSP, path
                    assert answer.headers["X-Content-Type-Options"] == "nosniff", path
                    assert answer.headers["Referrer-Policy"] == "no-referrer", path
                    expected = "public, max-age=3600" if path.endswith(".css") else "no-store"
                    assert answer.headers["Cache-Control"] == expected, path
            assert CSP == ("default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; "
                           "form-action 'none'; frame-ancestors 'none'")
            async with client.get(page.rstrip("/"), allow_redirects=False) as answer:
                assert answer.status == 301 and answer.headers["Location"] == page[len(base):]

            # Wrong tokens: the same 404, nothing of the group.
            token = token_of(room)
            wrong = [token[:-1] + ("A" if token[-1] != "A" else "B"), "x", token + token, "%00", "a" * 500]
            missing = None
            for guess in wrong:
                for suffix in ("", "calendar.ics", "decisions.csv", "log.jsonl", "charts/audits.png"):
                    async with client.get(f"{base}/g/{guess}/{suffix}") as answer:
                        assert answer.status == 404, (guess, suffix)
                        body = await answer.text()
                        missing = missing or body
                        assert body == missing
                        assert "Console room" not in body and "bob" not in body
            async with client.get(f"{base}/me/{token}/calendar.ics") as answer:
                assert answer.status == 404  # a page token opens no personal feed

        await browser.open(base + "/g/" + wrong[0] + "/")
        shown = await browser.source()
        assert "Nothing here" in shown and "Console room" not in shown and "treasurer" not in shown
        await browser.screenshot(f"missing-{room.core.db.backend}.png")

        # link reset: a new address, announced; the old one opens nothing (nor its feed).
        reset = await room.say("!link reset", as_="carol")
        [announced] = group_messages(reset)
        assert "carol replaced the address of the members' page" in announced
        fresh = address_in(announced)
        assert fresh != page and address_in(await room.say("!link", as_="alice")) == fresh
        async with aiohttp.ClientSession() as client:
            for old in (page, page + "calendar.ics", page + "decisions.csv", page + "charts/audits.png"):
                async with client.get(old) as answer:
                    assert answer.status == 404 and await answer.text() == missing
            async with client.get(fresh) as answer:
                assert answer.status == 200 and "Paint the hall green" in await answer.text()
        await browser.open(page)
        assert "Paint the hall green" not in await browser.source()


async def test_the_page_is_in_the_groups_language(database_url, browser):
    async with Room(database_url) as room, serving(room.core):
        await room.say("!role add tesorera term=90d fill=volunteer", as_="ana")
        await room.say("!volunteer tesorera", as_="beto")
        await room.say("!propose Comprar una nevera closes=2d", as_="ana")
        await room.say("!set timezone Europe/Madrid", as_="ana")
        assert "es" in await room.say("!set language es", as_="ana")
        page = address_in(await room.say("!link", as_="ana"))
        await browser.viewport(360, 800, True)
        await browser.open(page)
        assert await browser.script("return document.documentElement.lang") == "es"
        assert "Comprar una nevera" in await browser.text_of("#proposals")
        assert "tesorera" in await browser.text_of("#roles")
        assert "Europe/Madrid" in await browser.text_of("header")
        with i18n.speaking("es"):  # the headings and labels from the Spanish catalog, not the English
            for english, where in (("Open proposals", "#proposals"), ("Needs and offers", "#needs")):
                assert _(english) != english and _(english) in await browser.text_of(where)
        assert "Open proposals" not in await browser.source()
        assert await browser.script("return document.documentElement.scrollWidth") <= 360
        await browser.screenshot(f"page-es-360-{room.core.db.backend}.png")


async def test_each_client_gets_sixty_requests_a_minute(sqlite_url):
    async with Room(sqlite_url) as room, serving(room.core, requests_per_minute=60) as server:
        await room.say("!link", as_="alice")
        base = f"http://127.0.0.1:{server.port}"
        page = f"{base}/g/{token_of(room)}/"
        async with aiohttp.ClientSession() as client:
            started = time.monotonic()
            statuses = []
            for _ in range(60):  # a full bucket: sixty at once
                async with client.get(base + "/static/page.css") as answer:
                    statuses.append(answer.status)
            assert statuses == [200] * 60
            extra = 0  # one more a second trickles in (a slow machine may earn one or two meanwhile)
            while True:
                async with client.get(base + "/static/page.css") as answer:
                    if answer.status == 429:
                        limited = answer
                        break
                    extra += 1
                    assert extra <= time.monotonic() - started + 1
            assert int(limited.headers["Retry-After"]) >= 1
            assert limited.headers["Content-Security-Policy"] == CSP
            assert limited.headers["Cache-Control"] == "no-store"
            async with client.get(page) as answer:
                assert answer.status == 429  # pages too: the bucket is per client, not per address
            # Another client (as a reverse proxy on this machine names it) has its own bucket.
            async with client.get(page, headers={"X-Forwarded-For": "203.0.113.7"}) as answer:
                assert answer.status == 200


async def test_link_says_when_the_pages_are_not_switched_on_and_changes_nothing(database_url):
    async with Room(database_url) as room:
        transparency.configure(None)
        for command in ("!link", "!link reset", "!calendar"):
            reply = await room.say(command, as_="alice")
            assert "not switched on for this bot" in reply and "[web]" in reply and "Nothing was changed" in reply
        assert "not switched on" in await room.say(":dm calendar", as_="alice")
        with room.core.db.transaction() as session:
            assert session.scalars(select(PageToken)).all() == []
