"""What an operator sees: the health and metrics endpoints, the log lines (JSON or
text, with the ids of what was handled and no secrets), and the counters the
adapters and the delivery layer keep."""

import asyncio
import io
import json
import logging
import time
from datetime import datetime

import pytest
from aiohttp import ClientSession
from prometheus_client.parser import text_string_to_metric_families

from adapters.telegram import CommonsRateLimiter, TelegramAdapter
from bot.actions import Outgoing, SendMessage
from bot.delivery import Delivery
from bot.events import ChatRef
from bot.logs import log_context, redact, setup_logging
from bot.metrics import DELIVERY_RETRIES, OUTBOX_DEPTH, RATE_LIMITED, RECEIVE_ERRORS, REGISTRY
from bot.ops import OpsServer
from bot.render.text import plain
from tests.telegram_emulator import BotApiEmulator

TOKEN = "123456789:AAFakeTokenAAAAAAAAAAAAAAAAAAAAAAAAA"
GROUP = -100123


def counted(metric, platform: str) -> float:
    return REGISTRY.get_sample_value(f"{metric._name}_total", {"platform": platform}) or 0.0


async def eventually(predicate, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    assert predicate()


# the endpoints -------------------------------------------------------------------------------------

class Ops:
    def __init__(self, refresh=None) -> None:
        self.state = "starting"
        self.server = OpsServer("127.0.0.1", 0, lambda: self.state, refresh)

    async def __aenter__(self) -> "Ops":
        await self.server.start()
        self.http = ClientSession(f"http://127.0.0.1:{self.server.port}")
        return self

    async def __aexit__(self, *exc) -> None:
        await self.http.close()
        await self.server.stop()

    async def get(self, path: str) -> tuple[int, str, dict]:
        async with self.http.get(path) as response:
            return response.status, await response.text(), dict(response.headers)


async def test_livez_answers_while_the_loop_runs_and_nothing_is_cached():
    async with Ops() as ops:
        assert ops.server.port > 0
        status, body, headers = await ops.get("/livez")
        assert (status, body) == (200, "ok") and headers["Cache-Control"] == "no-store"


async def test_readyz_is_200_only_while_active():
    async with Ops() as ops:
        assert (await ops.get("/readyz"))[:2] == (503, "starting")
        for state, status in (("standby", 503), ("active", 200), ("fenced", 503), ("stopping", 503)):
            ops.state = state
            assert (await ops.get("/readyz"))[:2] == (status, state)


async def test_metrics_are_served_in_the_prometheus_format_after_a_refresh():
    async def refresh():
        OUTBOX_DEPTH.set(7)

    async with Ops(refresh) as ops:
        status, body, headers = await ops.get("/metrics")
    assert status == 200 and headers["Content-Type"].startswith("text/plain")
    families = {family.name: family for family in text_string_to_metric_families(body)}
    assert {"commons_commands", "commons_outbox_depth", "commons_active", "commons_reply_seconds"} <= set(families)
    assert "# TYPE commons_commands_total counter" in body
    assert [sample.value for sample in families["commons_outbox_depth"].samples] == [7]
    OUTBOX_DEPTH.set(0)


async def test_a_slow_or_failing_refresh_does_not_hold_up_the_scrape(caplog):
    async def slow():
        await asyncio.sleep(5)

    async def failing():
        raise ConnectionError("database unreachable")

    for refresh, said in ((slow, "took over 2 s"), (failing, "failed")):
        async with Ops(refresh) as ops:
            started = time.monotonic()
            status, body, _ = await ops.get("/metrics")
            assert status == 200 and "commons_outbox_depth" in body
            assert time.monotonic() - started < 3
        assert said in caplog.text


async def test_nothing_else_is_served():
    async with Ops() as ops:
        for path in ("/", "/metrics/", "/static", "/../bot/config.py", "/livez/x"):
            status, _, headers = await ops.get(path)
            assert status == 404 and headers["Cache-Control"] == "no-store", path
        async with ops.http.post("/readyz") as response:
            assert response.status == 405


# log lines -----------------------------------------------------------------------------------------

@pytest.fixture
def output():
    """The process's log output, as set up by `commons-bot run`; the test runner's handlers come back after."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    stream = io.StringIO()
    yield stream
    for handler in root.handlers[:]:
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)


def test_json_lines_carry_the_ids_of_what_was_handled_and_no_secret(output):
    setup_logging("info", "json", stream=output)
    log = logging.getLogger("commons.test")
    with log_context(group_id=3, chat_id="-100", event_id="e1"):
        log.info("calling https://api.telegram.org/bot%s/getMe with postgresql://u:hunter2@db/x", TOKEN)
    log.debug("not at INFO")
    [line] = output.getvalue().splitlines()
    entry = json.loads(line)
    assert entry["level"] == "INFO" and entry["logger"] == "commons.test"
    assert (entry["group_id"], entry["chat_id"], entry["event_id"]) == (3, "-100", "e1")
    assert "platform" not in entry and "exc" not in entry
    assert datetime.fromisoformat(entry["time"]).utcoffset().total_seconds() == 0
    assert entry["message"] == "calling https://api.telegram.org/bot***/getMe with postgresql://u:***@db/x"
    assert TOKEN.split(":")[1] not in line and "hunter2" not in line


def test_a_traceback_goes_into_exc_masked_too(output):
    setup_logging("INFO", "json", stream=output)
    try:
        raise PermissionError(f"refused: Authorization: Bearer syt_secret_token and {TOKEN}")
    except PermissionError:
        logging.getLogger("commons.test").exception("sending failed")
    entry = json.loads(output.getvalue())
    assert entry["message"] == "sending failed" and "group_id" not in entry
    assert entry["exc"].startswith("Traceback")
    assert "PermissionError: refused: Authorization: Bearer ***" in entry["exc"]
    assert "syt_secret_token" not in entry["exc"] and TOKEN not in entry["exc"]


def test_text_lines_are_masked_and_say_the_ids_too(output):
    setup_logging("INFO", "text", stream=output)
    with log_context(platform="matrix", chat_id="!room:example.org"):
        with log_context(event_id="$e2"):
            logging.getLogger("commons.test").warning("sync at https://hs.example/_matrix?access_token=syt_abc&x=1")
        logging.getLogger("commons.test").warning("outer")
    logging.getLogger("commons.test").warning("outside")
    first, outer, outside = output.getvalue().splitlines()
    assert first.endswith("WARNING commons.test: sync at https://hs.example/_matrix?access_token=***&x=1 "
                          "[platform=matrix chat_id=!room:example.org event_id=$e2]")
    assert outer.endswith("outer [platform=matrix chat_id=!room:example.org]")
    assert outside.endswith("commons.test: outside")


def test_redaction_leaves_ordinary_text_alone():
    text = "vote 12:30 on #4, see https://example.org/a:b@c and user@example.org, time 2024-01-01T10:00:00"
    assert redact(text) == text
    assert redact("redis://:pw@cache/0 and Bearer abc.def-ghi") == "redis://:***@cache/0 and Bearer ***"
    with pytest.raises(TypeError):
        with log_context(member="alice"):
            pass


# counters ------------------------------------------------------------------------------------------

@pytest.fixture
async def emu():
    async with BotApiEmulator() as emulator:
        emulator.add_chat(GROUP, "Tenants' Union", member_count=40)
        yield emulator


async def ignore(event) -> None:
    pass


async def test_a_429_from_telegram_is_counted(emu):
    adapter = TelegramAdapter(emu.token, base_url=emu.base_url, base_file_url=emu.base_file_url, poll_timeout=1)
    await adapter.start(ignore)
    try:
        before = counted(RATE_LIMITED, "telegram")
        emu.fail_next("sendMessage", times=1, retry_after=1)
        await adapter.perform(SendMessage(chat=ChatRef(platform="telegram", chat_id=str(GROUP)), text=plain("hi")))
        assert counted(RATE_LIMITED, "telegram") == before + 1
        assert [m["plain"] for m in emu.messages_to(GROUP)] == ["hi"]
    finally:
        await adapter.stop()


async def test_a_failed_poll_is_counted(emu):
    adapter = TelegramAdapter(emu.token, base_url=emu.base_url, base_file_url=emu.base_file_url, poll_timeout=1,
                              rate_limiter=CommonsRateLimiter(max_retries=0))  # the 429 reaches the poll loop
    before = counted(RECEIVE_ERRORS, "telegram")
    emu.fail_next("getUpdates", times=1, retry_after=1)
    await adapter.start(ignore)
    try:
        await eventually(lambda: counted(RECEIVE_ERRORS, "telegram") == before + 1)
    finally:
        await adapter.stop()


class Flaky:
    platform = "telegram.second"  # a second account: counted under its platform
    can = frozenset({"send"})

    def __init__(self) -> None:
        self.sent: list[str] = []

    async def perform(self, action, key=None):
        if not self.sent:
            self.sent.append("failed")
            raise ConnectionError("network hiccup")
        self.sent.append(action.text.plain())


class Books:
    """The core's side of delivery, in memory."""

    def __init__(self) -> None:
        self.attempts: dict[int, int] = {}
        self.sent: list[int] = []

    def delivery_failed(self, item_id, error, permanent, max_attempts) -> int:
        self.attempts[item_id] = self.attempts.get(item_id, 0) + 1
        return self.attempts[item_id]

    def delivered(self, ids, tracked=()) -> None:
        self.sent += ids


async def test_a_delivery_retry_is_counted():
    adapter, books = Flaky(), Books()

    async def call_core(function, *args):
        return function(*args)

    delivery = Delivery(books, [adapter], call_core, first_pause=0.01)
    before = counted(DELIVERY_RETRIES, "telegram")
    await delivery.open(adapter.platform)
    chat = ChatRef(platform=adapter.platform, chat_id="-1")
    await delivery.submit([Outgoing(1, SendMessage(chat=chat, text=plain("hello")), "k1")])
    await delivery.drain()
    assert adapter.sent == ["failed", "hello"] and books.sent == [1]
    assert counted(DELIVERY_RETRIES, "telegram") == before + 1
    await delivery.close()
