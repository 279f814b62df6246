"""What every benchmark prints the same way: the machine, and how `--backend both`
re-runs a script once per backend."""

from __future__ import annotations

import os
import platform
import sqlite3
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def machine(versions: dict[str, str]) -> list[str]:
    """Two lines: the hardware, then Python and the given library versions."""
    model = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        nproc = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    except OSError:
        nproc = str(os.cpu_count())
    import sqlalchemy

    libraries = {"SQLAlchemy": sqlalchemy.__version__, "SQLite": sqlite3.sqlite_version, **versions}
    return [f"machine: {platform.machine()} {platform.processor() or '-'}, CPU {model}, nproc {nproc}, "
            f"{platform.system()} {platform.release()}",
            f"python {platform.python_version()} ({platform.python_implementation()}), "
            + ", ".join(f"{name} {version}" for name, version in libraries.items())]


def run_each_backend(script: str, argv: list[str]) -> int:
    """`--backend both`: run the script once per backend, each in its own process,
    so each peak RSS is that backend's own."""
    import sys

    status = 0
    for backend in ("sqlite", "postgresql"):
        result = subprocess.run([sys.executable, str(Path(script).resolve()), *replace_backend(argv, backend)])
        status = status or result.returncode
    return status


def replace_backend(argv: list[str], backend: str) -> list[str]:
    """The same command line with `--backend <backend>` instead of whatever was given."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg == "--backend":
            skip = True
            continue
        if arg.startswith("--backend="):
            continue
        out.append(arg)
    return [*out, "--backend", backend]


def print_profile(profiler, path: str, what: str, root: Path,
                  libraries: tuple[str, ...] = ("sqlalchemy", "sqlmodel", "pydantic"),
                  names: str = "SQLAlchemy, SQLModel and pydantic") -> None:
    """Save a cProfile run and print its top 25 cumulative lines from the project and the given libraries."""
    import io
    import pstats

    profiler.dump_stats(path)
    buffer = io.StringIO()
    stats = pstats.Stats(profiler, stream=buffer)
    stats.sort_stats("cumulative")
    project = "|".join(str(root / part) for part in ("bot", "storage", "scheduler"))
    stats.print_stats(rf"({project}|{'|'.join(libraries)})", 25)
    print(f"--- cProfile of {what} (saved to {path}), sorted by cumulative time, top 25 lines "
          f"from the project, {names} ---")
    text = buffer.getvalue()
    start = text.find("   ncalls")
    print(text[start:] if start >= 0 else text)


def pct(sorted_values, q: float) -> float:
    """Nearest-rank percentile."""
    import math

    if not sorted_values:
        return float("nan")
    rank = max(1, math.ceil(len(sorted_values) * q / 100))
    return sorted_values[rank - 1]


def start_postgres():
    """A throwaway PostgreSQL server on loopback (the tests' own), started."""
    from tests.pgserver import PostgresServer, find_postgres_bindir

    bindir = find_postgres_bindir()
    if bindir is None:
        raise SystemExit("PostgreSQL binaries (initdb, pg_ctl, postgres) not found")
    server = PostgresServer(bindir)
    server.start()
    return server


@contextmanager
def throwaway_database(backend: str) -> Iterator[str]:
    """The URL of an empty database on `backend` (a temp SQLite file, or a throwaway local PostgreSQL
    server), removed afterwards."""
    if backend == "sqlite":
        with tempfile.TemporaryDirectory(prefix="commons-bench-") as directory:
            yield f"sqlite:///{directory}/bench.db"
        return
    server = start_postgres()
    try:
        yield server.create_database("commons_bench")
    finally:
        server.stop()


def describe_server(engine, backend: str) -> str:
    """The database's version and set-up, for the results header."""
    from sqlalchemy import text

    with engine.connect() as conn:
        if backend == "sqlite":
            return ("SQLite " + conn.execute(text("select sqlite_version()")).scalar_one() + ", file in a temp dir, "
                    + conn.execute(text("PRAGMA journal_mode")).scalar_one().upper())
        return (conn.execute(text("select version()")).scalar_one().split(",")[0]
                + ", throwaway local server (fsync=off, synchronous_commit=off)")


class BenchFailure(Exception):
    """A check of a benchmark failed: its figures mean nothing."""


def html_of(action) -> str:
    return getattr(getattr(action, "text", None), "html", "") or ""


class Sender:
    """Commands into the core as members `u<n>` of one chat; a refusal (⚠) fails the benchmark."""

    def __init__(self, core, chat, title: str) -> None:
        self.core, self.chat, self.title, self.counter = core, chat, title, 0

    def event(self, user: int, text: str):
        from bot.events import CommandMessage, UserRef

        self.counter += 1
        return CommandMessage(chat=self.chat, sender=UserRef(platform=self.chat.platform, user_id=f"u{user}"),
                              sender_name=f"Member {user}", text=text, event_id=f"e{self.counter}",
                              chat_title=self.title)

    def run(self, user: int, text: str) -> list:
        actions = self.core.handle(self.event(user, text))
        for action in actions:
            if "⚠" in html_of(action):
                raise BenchFailure(f"{text!r} refused: {html_of(action)!r}")
        return actions


def vm_hwm_mb() -> float:
    """This process's peak RSS (VmHWM; ru_maxrss would carry the parent's over fork and exec)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")
