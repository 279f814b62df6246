"""`commons-bot db backup FILE`: a consistent copy of the database, taken while the bot runs.

SQLite: the online backup API copies the last committed state page by page; in WAL mode the
bot keeps reading and writing meanwhile. PostgreSQL: `pg_dump --format=custom`, restored with
`pg_restore`. Either way the copy is written beside FILE under a temporary name and renamed
into place, so a file with FILE's name is always a whole backup, never half of one.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sqlite3
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

from sqlalchemy.engine import URL, make_url

from storage.db import libpq_url


class BackupError(Exception):
    """A backup that was not made; the message says why, in one line."""


def backup(url: str, file: Path, force: bool = False) -> str:
    """Write a backup of the database at `url` to `file`; returns what to tell the operator."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        raise BackupError(f"cannot back up a {backend} database (only SQLite and PostgreSQL)")
    if file.is_dir():
        raise BackupError(f"{file} is a directory; give a file name")
    if file.exists() and not force:
        raise BackupError(f"{file} already exists; use --force to replace it")
    if not file.parent.is_dir():
        raise BackupError(f"the directory {file.parent} does not exist")
    if backend == "sqlite":
        return _sqlite(parsed, file)
    return _postgresql(parsed, file)


@contextmanager
def _beside(file: Path) -> Iterator[Path]:
    """A temporary file next to `file`, synced and renamed to it when the block succeeds, removed
    otherwise. mkstemp makes it private (0600): a backup holds everything the database does."""
    try:
        descriptor, name = tempfile.mkstemp(dir=file.parent, prefix=f".{file.name}.", suffix=".partial")
    except OSError as error:
        raise BackupError(f"cannot write in {file.parent}: {error.strerror or error}") from None
    os.close(descriptor)
    temporary = Path(name)
    try:
        yield temporary
        with open(temporary, "rb+") as written:
            os.fsync(written.fileno())
        os.replace(temporary, file)
        directory = os.open(file.parent, os.O_RDONLY)
        try:
            os.fsync(directory)  # the rename itself survives a power cut
        finally:
            os.close(directory)
    except OSError as error:
        raise BackupError(f"cannot write {file}: {error.strerror or error}") from None
    finally:
        temporary.unlink(missing_ok=True)


def _sqlite(url: URL, file: Path) -> str:
    if not url.database or url.database == ":memory:":
        raise BackupError("the database is in memory; there is nothing to back up")
    database = Path(url.database).expanduser()
    if not database.is_file():
        raise BackupError(f"no SQLite database at {database}")
    if file.resolve() == database.resolve():
        raise BackupError(f"{file} is the database itself; write the backup elsewhere")
    with _beside(file) as temporary:
        try:
            # Read-only: a mistyped path or a damaged file is reported, never created or changed.
            # The timeout covers the rare moments a WAL reader must wait (log recovery).
            source = sqlite3.connect(f"{database.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
            with closing(source), closing(sqlite3.connect(temporary)) as target:
                source.backup(target)  # one step: one read snapshot, the writer is never blocked
                # The copy is one self-contained file, with no write-ahead log to keep beside it.
                target.execute("PRAGMA journal_mode=DELETE")
                (check,) = target.execute("PRAGMA quick_check").fetchone()
        except sqlite3.Error as error:
            raise BackupError(f"cannot read the SQLite database {database}: {error}") from None
        if check != "ok":
            raise BackupError(f"the copy of {database} fails SQLite's integrity check: {check}")
    return f"wrote {file} ({file.stat().st_size:,} bytes), a copy of the SQLite database {database}"


def find_pg_tool(name: str) -> str | None:
    """pg_dump or pg_restore: on PATH, else the newest in /usr/lib/postgresql/*/bin (Debian keeps
    the versioned binaries there)."""
    found = shutil.which(name)
    if found:
        return found

    def version(tool: Path) -> tuple[int, ...]:
        return tuple(int(part) for part in tool.parent.parent.name.split(".") if part.isdigit())

    tools = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), key=version, reverse=True)
    return next((str(tool) for tool in tools if os.access(tool, os.X_OK)), None)


def pg_dump_command(url: URL, file: Path, pg_dump: str) -> tuple[list[str], dict[str, str]]:
    """The pg_dump command line and its environment. The password goes in PGPASSWORD: a command
    line is readable by every user of the machine (ps)."""
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    # --no-password: run from cron or a timer, a missing password must fail, not wait at a prompt.
    where = libpq_url(url, password=False)
    argv = [pg_dump, "--format=custom", "--no-password", "--file", str(file), "--dbname", where]
    return argv, env


def _postgresql(url: URL, file: Path) -> str:
    pg_dump = find_pg_tool("pg_dump")
    if pg_dump is None:
        raise BackupError("pg_dump not found on PATH or in /usr/lib/postgresql/*/bin; "
                          "install the PostgreSQL client tools (apt-get install postgresql-client)")
    with _beside(file) as temporary:
        argv, env = pg_dump_command(url, temporary, pg_dump)
        try:
            done = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True)
        except OSError as error:
            raise BackupError(f"cannot run {pg_dump}: {error.strerror or error}") from None
        if done.returncode != 0:
            said = " ".join(line.strip() for line in done.stderr.splitlines() if line.strip())
            raise BackupError(f"pg_dump failed: {said or f'exit status {done.returncode}'}")
    server = url.host or "the local server"
    where = libpq_url(url, password=False)
    restore = f"pg_restore --clean --if-exists -d {shlex.quote(where)} {shlex.quote(str(file))}"
    return (f"wrote {file} ({file.stat().st_size:,} bytes), a pg_dump of {url.database} on {server}\n"
            f"restore it with: {restore}")
