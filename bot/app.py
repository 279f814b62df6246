"""Application wiring: the one place that knows every part (core, storage,
scheduler, adapters) and puts them together. Kept thin on purpose."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import signal
import sys
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path

from sqlalchemy.engine import make_url

from adapters.console import PLATFORM as CONSOLE
from adapters.console import ConsoleAdapter, ConsoleRoom
from bot import i18n, outbox, transparency
from bot.clock import Clock, OffsetClock, SystemClock
from bot.commands.catalog import REGISTRY
from bot.commands.registry import Command, Registry
from bot.config import AppConfig, DefaultsConfig, MatrixConfig, TelegramConfig, platform_key
from bot.core import Core
from bot.durations import parse_duration
from bot.events import platform_kind
from bot.i18n import _
from bot.metrics import ACTIVE, OUTBOX_DEPTH, OUTBOX_OLDEST_SECONDS
from bot.ops import OpsServer
from bot.runtime import Runtime
from bot.standby import FENCED_EXIT, AccountLocks, AlreadyRunning, SqliteGuard
from storage.db import Database

log = logging.getLogger(__name__)


# How each platform writes commands (Matrix's prefix is configurable).
PREFIXES = {"telegram": "/", "matrix": "!", CONSOLE: "!"}


def build_core(database_url: str, clock: Clock, defaults: DefaultsConfig,
               prefixes: dict[str, str] | None = None, migrate: bool = True) -> Core:
    db = Database(database_url)
    if migrate:
        db.upgrade()
    return Core(db, clock, defaults.canonical(), PREFIXES | (prefixes or {}))


def freeze_start_up_objects() -> None:
    """Move everything alive after start-up (modules, mappers, compiled statements)
    out of the garbage collector's reach, so full collections stay short and a
    command that allocates a lot does not pause for tens of milliseconds. The
    language catalogs are read first, so they are among them (and the first
    message in each language does not wait for its catalog)."""
    i18n.preload()
    gc.collect()
    gc.freeze()


# commons-bot run ------------------------------------------------------------

def published_commands(registry: Registry = REGISTRY, default_language: str = i18n.SOURCE_LANGUAGE
                       ) -> dict[str | None, list[tuple[str, str]]]:
    """One entry per command word, for menus like Telegram's (`role` stands for its subcommands), in
    each language: under None the default language's (for everyone else), then one list per shipped
    language under its two-letter code (Telegram's `language_code`: pt_BR's is `pt`)."""
    families: dict[str, list[Command]] = {}
    for command in registry.visible():
        families.setdefault(command.name.split()[0], []).append(command)
    published: dict[str | None, list[tuple[str, str]]] = {}
    for language in (None, *i18n.available()):
        with i18n.speaking(language or default_language):
            published[language and language.split("_")[0]] = [_menu_line(word, members)
                                                               for word, members in families.items()]
    return published


def _menu_line(word: str, members: list[Command]) -> tuple[str, str]:
    bare = next((m for m in members if m.name == word), None)
    subcommands = [m.name.split(" ", 1)[1] for m in members if m is not bare]
    if not subcommands:
        return word, _(bare.summary)
    if bare is not None:  # `audit`: its own summary, then its subcommands
        also = _("also {command}").format(command=f"{word} " + ", ".join(subcommands))
        return word, f"{_(bare.summary)}; {also}"[:256]
    return word, f"{word} " + ", ".join(subcommands)


def telegram_adapter(config: TelegramConfig, language: str = i18n.SOURCE_LANGUAGE):
    from adapters.telegram import TelegramAdapter  # imported only when Telegram is configured

    return TelegramAdapter(
        config.token.get_secret_value(), commands=published_commands(default_language=language),
        base_url=config.base_url, mode=config.mode, webhook_url=config.webhook_url, listen=config.listen,
        port=config.port, secret_token=config.secret_token.get_secret_value(),
        history_window=parse_duration(config.history_window), platform=platform_key("telegram", config.account))


def matrix_adapter(config: MatrixConfig):
    from adapters.matrix import MatrixAdapter  # imported only when Matrix is configured

    return MatrixAdapter(
        config.homeserver, config.user_id, password=config.password.get_secret_value(),
        access_token=config.access_token.get_secret_value(), device_name=config.device_name,
        store_path=config.store_path, command_prefix=config.command_prefix,
        allowed_inviters=config.allowed_inviters, bots=config.bots,
        history_window=parse_duration(config.history_window), platform=platform_key("matrix", config.account))


def configured_adapters(config: AppConfig) -> tuple[list, list[str]]:
    """The adapters this configuration asks for, and problems to report."""
    problems, adapters = [], []
    if config.matrix is not None:
        secret = config.matrix.password.get_secret_value() or config.matrix.access_token.get_secret_value()
        if not secret:
            problems.append("[matrix] needs a password or an access_token (or COMMONS_MATRIX__PASSWORD).")
        else:
            adapters.append(matrix_adapter(config.matrix))
    if config.telegram is not None:
        if not config.telegram.token.get_secret_value():
            problems.append("[telegram] needs the token from @BotFather (or COMMONS_TELEGRAM__TOKEN).")
        else:
            adapters.append(telegram_adapter(config.telegram, config.defaults.language))
    if config.matrix is None and config.telegram is None:
        problems.append("No chat platform is configured. Add a [matrix] section (homeserver, user_id, "
                        "password) or a [telegram] section (token) to the configuration file — see "
                        "config.example.toml — or try the bot locally with `commons-bot console`.")
    return adapters, problems


def served_accounts(config: AppConfig) -> list[str]:
    """What this process's locks are named after: each account's platform name (whose groups it
    serves) and the platform identity behind it (a token or a Matrix user serves from one place)."""
    accounts = []
    if config.matrix is not None:
        accounts += [platform_key("matrix", config.matrix.account), f"matrix user {config.matrix.user_id}"]
    if config.telegram is not None:
        bot_id = config.telegram.token.get_secret_value().split(":", 1)[0]  # the public part of the token
        accounts += [platform_key("telegram", config.telegram.account), f"telegram bot {bot_id}"]
    return accounts


def command_prefixes(config: AppConfig, adapters: list) -> dict[str, str]:
    kinds = PREFIXES | ({"matrix": config.matrix.command_prefix} if config.matrix else {})
    return {adapter.platform: kinds[platform_kind(adapter.platform)] for adapter in adapters}


class ServingState:
    """Where this process stands, for /readyz and the logs."""

    def __init__(self) -> None:
        self.state = "starting"  # starting → standby → active → stopping, or → fenced

    def __call__(self) -> str:
        return self.state


async def serve(config: AppConfig) -> int:
    adapters, problems = configured_adapters(config)
    if problems or not adapters:
        for problem in problems:
            print(problem, file=sys.stderr)
        return 2
    core = build_core(config.database.url, SystemClock(), config.defaults, command_prefixes(config, adapters))
    if core.db.backend == "sqlite":
        guard = SqliteGuard(make_url(config.database.url).database or ":memory:")
        try:
            guard.acquire()
        except AlreadyRunning as error:
            print(error, file=sys.stderr)
            core.db.dispose()
            return 2
        locks = None
    else:
        guard = locks = AccountLocks(config.database.url, served_accounts(config))
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopping.set)
    state = ServingState()
    ops = None
    if config.ops.port:
        platforms = [adapter.platform for adapter in adapters]
        ops = OpsServer(config.ops.listen, config.ops.port, state, partial(_measure_outbox, core, platforms))
        await ops.start()
    web = None
    try:
        if config.web.port:  # the members' pages and calendar feeds (link, calendar)
            transparency.configure(config.web.public_url or f"http://{config.web.listen}:{config.web.port}")
            web = web_server(core, config.web.listen, config.web.port)
            await web.start()
        return await _serve_while_active(config, core, adapters, locks, stopping, state)
    finally:
        if web is not None:
            await web.stop()
        if ops is not None:
            await ops.stop()
        guard.release()
        core.db.dispose()


def web_server(core: Core, listen: str, port: int, requests_per_minute: int | None = None):
    """The members' pages and calendar feeds (adapters/web), answering from the core's read model;
    their charts are drawn in a process of their own, like the chat's."""
    from adapters.web.server import REQUESTS_PER_MINUTE, WebServer  # imported only when [web] is on
    from bot.chart_worker import ChartWorker

    reader, charts = transparency.Reader(core.db, core.directory, core.clock), ChartWorker()
    return WebServer(listen, port, page=reader.page, group_feed=reader.group_feed, personal_feed=reader.personal_feed,
                     download=reader.download, chart=reader.chart, draw_chart=charts.draw,
                     requests_per_minute=requests_per_minute or REQUESTS_PER_MINUTE, on_stop=charts.close)


async def _measure_outbox(core: Core, platforms: list[str]) -> None:
    """The outbox gauges, read on a thread of their own (not behind the core's work)."""
    def read() -> tuple[int, datetime | None]:
        with core.db.transaction() as session:
            return outbox.backlog(session, platforms)
    depth, oldest = await asyncio.to_thread(read)
    OUTBOX_DEPTH.set(depth)
    OUTBOX_OLDEST_SECONDS.set(max(0.0, (core.clock.now() - oldest).total_seconds()) if oldest else 0.0)


async def _first(*awaitables) -> int:
    """Run the awaitables together; the index of the first to finish (the others are cancelled)."""
    tasks = [asyncio.ensure_future(awaitable) for awaitable in awaitables]
    done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    return tasks.index(next(iter(done)))


async def _serve_while_active(config: AppConfig, core: Core, adapters: list, locks: AccountLocks | None,
                              stopping: asyncio.Event, state: ServingState) -> int:
    """Stand by until this process holds its accounts' locks, serve, and stop at once if they are lost."""
    if locks is not None:
        state.state = "standby"
        if await _first(stopping.wait(), locks.acquire()) == 0:
            return 0  # stopped while standing by
    state.state = "active"
    ACTIVE.set(1)
    runtime = Runtime(core, adapters, parse_duration(config.scheduler.sweep_interval))
    await runtime.start()
    freeze_start_up_objects()
    log.info("Commons is running on %s", ", ".join(a.platform for a in adapters))
    if locks is None:
        await stopping.wait()
    else:
        lost = asyncio.ensure_future(locks.lost())
        if await _first(stopping.wait(), lost) == 1:
            state.state = "fenced"
            ACTIVE.set(0)
            log.error("stopping at once: %s; a standby takes over", lost.result())
            await runtime.fence()
            return FENCED_EXIT
    state.state = "stopping"
    log.info("shutting down")
    await runtime.stop()
    ACTIVE.set(0)
    return 0


# commons-bot console --------------------------------------------------------

class ConsoleSession:
    """A console room on a local SQLite file, with a simulated clock that persists its shift."""

    def __init__(self, database_url: str, write: Callable[[str], None], clock: Clock | None = None,
                 defaults: DefaultsConfig | None = None, clock_file: Path | None = None,
                 show_edits: bool = False, files_dir: Path | None = None,
                 sweep_interval: timedelta = timedelta(seconds=1)) -> None:
        self.clock_file = clock_file
        self.clock = clock or self._load_clock()
        self.core = build_core(database_url, self.clock, defaults or DefaultsConfig(), {CONSOLE: "!"})
        self.adapter = ConsoleAdapter(write, files_dir=files_dir, show_edits=show_edits)
        self.runtime = Runtime(self.core, [self.adapter], sweep_interval)
        self.room = ConsoleRoom(self.adapter, self.runtime.handle, self.advance)

    async def start(self) -> None:
        await self.runtime.start()

    async def stop(self) -> None:
        await self.runtime.stop()
        self.core.db.dispose()

    async def advance(self, step: timedelta) -> None:
        self.clock.advance(step)
        self._save_clock()
        await self.runtime.scheduler.run_now()

    def _load_clock(self) -> OffsetClock:
        clock = OffsetClock()
        if self.clock_file and self.clock_file.is_file():
            clock.offset = timedelta(seconds=json.loads(self.clock_file.read_text())["offset_seconds"])
        return clock

    def _save_clock(self) -> None:
        if self.clock_file and isinstance(self.clock, OffsetClock):
            self.clock_file.write_text(json.dumps({"offset_seconds": self.clock.offset.total_seconds()}))


class ConsoleInput:
    """Typed lines, read on a daemon thread; `stop` (Ctrl-C, SIGTERM) ends the input at once.

    `asyncio.to_thread(input)` kept the process alive until Enter (asyncio.run
    waits for its executor) and Ctrl-C ended in a KeyboardInterrupt traceback.
    The thread reads a private file on stdin's descriptor: blocked in
    sys.stdin, it would hold the lock interpreter shutdown needs (a fatal error).
    """

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stdin = open(sys.stdin.fileno(), encoding=sys.stdin.encoding, errors=sys.stdin.errors,
                           closefd=False)
        self._pending: asyncio.Future[str | None] | None = None
        self.stopped = False

    def stop(self) -> None:
        self.stopped = True
        self._resolve(self._pending, None)

    async def read(self, prompt: str) -> str | None:
        """The next line, or None at end of input or once stopped."""
        if self.stopped:
            return None
        self._pending = self._loop.create_future()
        threading.Thread(target=self._input, args=(self._pending, prompt), daemon=True).start()
        return await self._pending

    def _input(self, future: asyncio.Future[str | None], prompt: str) -> None:
        print(prompt, end="", flush=True)
        line = self._stdin.readline()
        line = line.rstrip("\r\n") if line else None  # "" is end of input
        try:
            self._loop.call_soon_threadsafe(self._resolve, future, line)
        except RuntimeError:
            pass  # the console has already ended; nobody waits for this line

    @staticmethod
    def _resolve(future: asyncio.Future[str | None] | None, line: str | None) -> None:
        if future is not None and not future.done():
            future.set_result(line)


async def console(database_path: Path, script: Path | None, member: str, echo: Callable[[str], None]) -> int:
    session = ConsoleSession(f"sqlite:///{database_path}", echo, clock_file=database_path.with_suffix(".clock"),
                             files_dir=database_path.parent / "commons-files")
    session.room.member = member
    await session.start()
    freeze_start_up_objects()
    typed = ConsoleInput()
    for signum in (signal.SIGINT, signal.SIGTERM):  # stop like end of input: the session closes cleanly
        asyncio.get_running_loop().add_signal_handler(signum, typed.stop)
    try:
        if script is not None:
            for line in script.read_text(encoding="utf-8").splitlines():
                if typed.stopped:
                    break
                if line.strip().startswith("#"):
                    continue
                echo(f"{session.room.member}> {line}")
                if not await session.room.say(line):
                    break
        else:
            echo(f"Commons console room — you are {member}. Type :help for the console, !help for the bot.")
            while (line := await typed.read(f"{session.room.member}> ")) is not None:
                if not await session.room.say(line):
                    break
    finally:
        await session.stop()
    return 0
