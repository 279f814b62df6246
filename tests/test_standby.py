"""A standby that takes over, for real: two `commons-bot run` processes on one
PostgreSQL database with the Telegram emulator. The active one is killed
with SIGKILL in the middle of a 300-vote burst, just before a deadline; the
standby takes over, every vote is counted once, and the outcome of the
deadline that fell during the takeover is announced once. Then the new
active process loses its database connection: it stops serving at once
(exit 75) and a third process takes over. A second process on one SQLite
file is refused.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from pathlib import Path

import aiohttp
import psycopg
from prometheus_client.parser import text_string_to_metric_families

from bot.standby import FENCED_EXIT
from storage.db import libpq_url
from tests.telegram_crash import FIRST_MEMBER, GROUP, BotProcess, free_port
from tests.telegram_emulator import BotApiEmulator
from tests.test_crash_telegram import show_log

MEMBERS = 300
BALLOTS = ("SELECT count(*), count(DISTINCT b.member_id) FROM ballots b JOIN proposals p ON p.id = b.proposal_id "
           "WHERE p.number = %s")


def write_config(path: Path, database_url: str, emu: BotApiEmulator, ops_port: int = 0) -> Path:
    path.write_text(f'[database]\nurl = "{database_url}"\n'
                    f'[telegram]\ntoken = "{emu.token}"\nbase_url = "{emu.base_url}"\n'
                    '[scheduler]\nsweep_interval = "30s"\n'
                    f'[ops]\nport = {ops_port}\n')
    return path


async def get(port: int, path: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}{path}") as response:
        return response.status, await response.text()


def metric(text: str, name: str, **labels) -> float:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    raise KeyError(name)


def ballots(url: str, number: int) -> tuple[int, int]:
    with psycopg.connect(libpq_url(url)) as connection:
        return connection.execute(BALLOTS, (number,)).fetchone()


async def until(predicate, timeout: float, what: str, *processes: BotProcess) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        for process in processes:
            if not process.running:
                raise AssertionError(f"{process.log.name} exited ({process.process.returncode}) while waiting for "
                                     f"{what}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout} s for {what}")
        await asyncio.sleep(0.05)


def ops_port(process: BotProcess) -> int:
    return int(re.search(r"port = (\d+)", process.config.read_text())[1])


def polls_since(emu: BotApiEmulator, since: float) -> bool:
    return any(method == "getUpdates" and at >= since for method, at in emu.calls)


def logged(process: BotProcess, text: str) -> bool:
    return process.log.exists() and text in process.log.read_text()


def group_messages(emu: BotApiEmulator, words: str) -> list[dict]:
    return [s for s in emu.sent if s["chat_id"] == GROUP and s["method"] == "sendMessage" and words in s["plain"]]


async def reply_to(emu: BotApiEmulator, message_id: int, timeout: float, *processes: BotProcess) -> dict:
    def found():
        return next((s for s in emu.sent if s["chat_id"] == GROUP and s["reply_to"] == message_id), None)
    await until(lambda: found() is not None, timeout, f"the answer to message {message_id}", *processes)
    return found()


async def test_kill_9_of_the_active_process_the_standby_takes_over(postgres, tmp_path):
    name = f"standby_{os.getpid()}"
    url = postgres.create_database(name)  # empty: both processes start together and one migrates
    processes: list[BotProcess] = []
    try:
        async with BotApiEmulator() as emu:
            first, second, third = (
                BotProcess(write_config(tmp_path / f"{n}.toml", url, emu, free_port()), tmp_path / f"bot-{n}.log")
                for n in ("a", "b", "c"))
            processes += [first, second, third]
            await asyncio.wait_for(takeover_scenario(emu, url, first, second, third), 240)
    except BaseException:
        for process in processes:
            show_log(process.log)
        raise
    finally:
        for process in processes:
            await process.finish()
        postgres.drop_database(name)


async def takeover_scenario(emu, url, first: BotProcess, second: BotProcess, third: BotProcess) -> None:
    emu.add_chat(GROUP, "Tenants' Union", member_count=MEMBERS + 1)
    users = [FIRST_MEMBER + n for n in range(MEMBERS)]
    for user in users:
        emu.add_user(user, "Member", last_name=str(user))
    await first.start()
    await second.start()
    await until(lambda: polls_since(emu, 0) and (logged(first, "standing by") or logged(second, "standing by")),
                90, "one process to serve and the other to stand by", first, second)
    if logged(first, "standing by"):  # whichever won the race is "active" from here on
        first, second = second, first
    assert not logged(second, "active for"), "both processes claim to be active"
    # Each says where it stands, to a load balancer or an operator.
    assert await get(ops_port(first), "/readyz") == (200, "active")
    assert await get(ops_port(second), "/readyz") == (503, "standby")
    assert (await get(ops_port(second), "/livez"))[0] == 200

    # A vote that closes in 20 s, and a big one: the burst runs across that deadline.
    short = emu.send_text(GROUP, users[0], "/propose Lunch rota closes=20s")
    short_card = await reply_to(emu, short, 30, first)
    closes_at = time.monotonic() + 20
    propose = emu.send_text(GROUP, users[0], "/propose Rent strike closes=1d")
    card = await reply_to(emu, propose, 30, first)
    number = int(re.search(r"#(\d+) Rent strike", card["plain"])[1])
    yes = next(b["callback_data"] for row in card["reply_markup"]["inline_keyboard"] for b in row
               if b["callback_data"].endswith(" yes"))

    await asyncio.sleep(closes_at - 1.5 - time.monotonic())
    presses, typed = [], []

    async def burst() -> None:
        started = time.monotonic()
        for start in range(0, MEMBERS, 15):
            await asyncio.sleep(max(0.0, started + 2.0 * start / MEMBERS - time.monotonic()))
            for user in users[start:start + 15]:
                if user % 2:
                    presses.append(emu.press(GROUP, card["message_id"], user, yes))
                else:
                    typed.append(emu.send_text(GROUP, user, f"/vote {number} yes"))

    injector = asyncio.create_task(burst())
    await asyncio.sleep(closes_at - 0.5 - time.monotonic())
    first.kill()
    killed_at = time.monotonic()
    await first.wait()
    at_kill = ballots(url, number)[0]
    await injector

    await until(lambda: polls_since(emu, killed_at), 30, "the standby to take over", second)
    takeover = next(at for method, at in emu.calls if method == "getUpdates" and at >= killed_at) - killed_at
    print(f"kill -9 with {at_kill}/{MEMBERS} ballots in; the standby polled Telegram {takeover:.2f} s later")
    assert 0 < at_kill < MEMBERS, "the kill must fall in the middle of the burst"
    assert takeover < 10
    asked = emu.send_text(GROUP, users[1], f"/proposal {number}")
    summary = (await reply_to(emu, asked, 60, second))["plain"]
    await until(lambda: emu.pending_updates == 0, 60, "every update to be applied", second)
    await asyncio.sleep(1.0)  # a vote counted twice, or an outcome announced twice, would show by now
    assert ballots(url, number) == (MEMBERS, MEMBERS)
    asked = emu.send_text(GROUP, users[2], f"/proposal {number}")
    summary = (await reply_to(emu, asked, 60, second))["plain"]
    assert f"Tally: {MEMBERS} yes · 0 no" in summary, summary
    # The deadline fell while nobody served: its outcome went out once, from the new active process.
    await until(lambda: len(group_messages(emu, "Lunch rota")) >= 2, 30, "the short vote's outcome", second)
    lunch = group_messages(emu, "Lunch rota")
    assert len(lunch) == 2 and lunch[0]["message_id"] == short_card["message_id"], [m["plain"] for m in lunch]
    assert all(query in emu.answers for query in presses), "every press is answered"
    reacted = {r["message_id"] for r in emu.reactions if r["chat_id"] == GROUP and r["reaction"]}
    assert all(message in reacted for message in typed), "every typed vote is acknowledged"
    sent = [(s["reply_to"], s["plain"]) for s in emu.sent if s["method"] == "sendMessage"]
    assert len(sent) == len(set(sent)), "no message was sent twice"
    status, metrics = await get(ops_port(second), "/metrics")
    assert status == 200 and metric(metrics, "commons_active") == 1
    assert metric(metrics, "commons_commands_total", kind="vote") >= 1
    assert metric(metrics, "commons_reply_seconds_count") >= 1
    assert metric(metrics, "commons_outbox_depth") >= 0 and metric(metrics, "commons_outbox_oldest_seconds") >= 0
    for _ in range(100):  # the last tally edit waits its couple of seconds; then nothing is left to send
        metrics = (await get(ops_port(second), "/metrics"))[1]
        if metric(metrics, "commons_outbox_depth") == 0:
            break
        await asyncio.sleep(0.2)
    assert metric(metrics, "commons_outbox_depth") == 0 and metric(metrics, "commons_outbox_oldest_seconds") == 0

    # The new active process loses its database connection: it stops at once; a third takes over.
    await third.start()
    await until(lambda: logged(third, "standing by"), 60, "the third process to stand by", second, third)
    with psycopg.connect(libpq_url(url), autocommit=True) as admin:
        cut = admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
                            (f"commons-bot {second.process.pid} lock",)).fetchall()
    assert cut == [(True,)], cut
    cut_at = time.monotonic()
    assert await second.wait(15) == FENCED_EXIT
    assert logged(second, "stopping at once")
    await until(lambda: polls_since(emu, cut_at) and logged(third, "active for"), 30, "the third to take over",
                third)
    asked = emu.send_text(GROUP, users[3], "/proposals")
    assert "Rent strike" in (await reply_to(emu, asked, 60, third))["plain"]
    assert await third.terminate() == 0


async def test_a_second_process_on_one_sqlite_file_is_refused(tmp_path):
    async with BotApiEmulator() as emu:
        config = write_config(tmp_path / "commons.toml", f"sqlite:///{tmp_path / 'commons.db'}", emu)
        first, second, third = (BotProcess(config, tmp_path / f"{n}.log") for n in "abc")
        try:
            await first.start()
            await until(lambda: polls_since(emu, 0), 60, "the first process to serve", first)
            await second.start()
            assert await second.wait(60) == 2
            assert "Another commons-bot process" in second.log.read_text()
            assert "use PostgreSQL" in second.log.read_text()
            assert first.running
            assert await first.terminate() == 0
            # Once the first has stopped, the file is free again.
            await third.start()
            await until(lambda: logged(third, "Commons is running"), 60, "a new process to start", third)
            assert await third.terminate() == 0
        finally:
            for process in (first, second, third):
                await process.finish()
