"""Who serves: one active process per platform account, the others stand by.

Telegram allows one poller (or one webhook) per bot token and a Matrix
device must sync from one place, so several `commons-bot run` processes on
one database must agree on who serves each account.

- **PostgreSQL.** The active process holds a session-level advisory lock per
  account on a connection of its own. PostgreSQL releases it the moment that
  connection ends — the process was killed, the machine died, the network
  dropped (TCP keepalives make that seconds, not hours) — and a standby,
  trying every second, takes it. The holder checks its lock every second; when
  it cannot, it stops serving at once (fencing) and exits, so two processes
  never serve one account for longer than that check.
- **SQLite** serves one process: a second one on the same file is refused,
  with an exclusive lock on a file beside the database.
"""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import logging
import os
from pathlib import Path

from storage.db import libpq_url

log = logging.getLogger(__name__)

# The first half of every advisory lock key Commons takes (two-int form), so no other
# application's locks on a shared server collide with ours. "Comm" in ASCII.
LOCK_SPACE = 0x436F6D6D
MIGRATION_KEY = 0  # the lock schema migrations run under (storage.db)
POLL_SECONDS = 1.0  # how often a standby tries to take over
CHECK_SECONDS = 1.0  # how often the active process checks it still holds its locks
CHECK_TIMEOUT = 3.0  # a check that does not answer in time counts as a lost lock
FENCED_EXIT = 75  # EX_TEMPFAIL: systemd's Restart=on-failure starts it again, as a standby


class AlreadyRunning(RuntimeError):
    """Another process serves this SQLite file."""


def account_key(account: str) -> int:
    """A stable 31-bit key for an account's name (the second half of its advisory lock)."""
    return int.from_bytes(hashlib.sha256(account.encode()).digest()[:4], "big") & 0x7FFFFFFF


class SqliteGuard:
    """An exclusive lock on `<database>.lock` for the life of the process (the kernel drops it
    when the process dies, even by kill -9)."""

    def __init__(self, database: str) -> None:
        self.path = Path(database).expanduser().with_name(Path(database).name + ".lock")
        self._file = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            raise AlreadyRunning(
                f"Another commons-bot process (pid {holder}) is already running on {self.path.with_suffix('')}. "
                "A SQLite database serves one process; stop the other one, or use PostgreSQL to run a "
                "standby beside the active process.") from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._file = handle

    def release(self) -> None:
        if self._file is not None:
            self._file.close()  # closing drops the lock
            self._file = None


class AccountLocks:
    """The advisory locks of this process's platform accounts, on one dedicated connection.

    All or nothing: a process serves all its accounts or none, so its due work and its
    adapters always belong together."""

    def __init__(self, url: str, accounts: list[str]) -> None:
        self.url = libpq_url(url)
        self.keys = sorted({account_key(account) for account in accounts})
        self.accounts = sorted(accounts)
        self._connection = None

    # blocking parts: run on a thread of their own, never on the core's worker

    def _connect(self):
        import psycopg  # the PostgreSQL driver the storage layer uses too

        return psycopg.connect(
            self.url, autocommit=True, connect_timeout=5, application_name=f"commons-bot {os.getpid()} lock",
            # A dead peer (machine gone, network cut) ends the connection in ~9 s instead of
            # the kernel's two hours, which releases the lock for the standby.
            keepalives=1, keepalives_idle=5, keepalives_interval=2, keepalives_count=2)

    def _try_all(self) -> bool:
        if self._connection is None or self._connection.closed:
            self._connection = self._connect()
        taken = []
        for key in self.keys:
            if not self._connection.execute("SELECT pg_try_advisory_lock(%s, %s)", (LOCK_SPACE, key)).fetchone()[0]:
                for held in taken:  # not all of them: give back what we took, try again later
                    self._connection.execute("SELECT pg_advisory_unlock(%s, %s)", (LOCK_SPACE, held))
                return False
            taken.append(key)
        return True

    def _still_held(self) -> bool:
        held = self._connection.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid() "
            "AND classid::bigint = %s AND objid::bigint = ANY(%s::bigint[]) AND objsubid = 2 AND granted",
            (LOCK_SPACE, self.keys)).fetchone()[0]
        return held == len(self.keys)

    # what the app awaits

    async def acquire(self) -> None:
        """Return once this process holds every lock; until then it is a standby."""
        announced = False
        while True:
            try:
                if await asyncio.to_thread(self._try_all):
                    log.info("active for %s", ", ".join(self.accounts))
                    return
            except Exception as error:  # the database is unreachable: keep trying, as a standby would
                log.warning("cannot reach the database to take over: %s", error)
                self._drop()
            if not announced:
                log.info("standing by: another process serves %s", ", ".join(self.accounts))
                announced = True
            await asyncio.sleep(POLL_SECONDS)

    async def lost(self) -> str:
        """Return (with the reason) as soon as the locks are no longer certainly ours."""
        while True:
            await asyncio.sleep(CHECK_SECONDS)
            try:
                held = await asyncio.wait_for(asyncio.to_thread(self._still_held), CHECK_TIMEOUT)
            except TimeoutError:
                return f"the database did not answer the lock check within {CHECK_TIMEOUT:.0f} s"
            except Exception as error:
                return f"the lock's database connection failed ({type(error).__name__}: {error})"
            if not held:
                return "the lock is no longer held"

    def _drop(self) -> None:
        if self._connection is not None:
            try:
                self._connection.close()
            except Exception:
                pass
            self._connection = None

    def release(self) -> None:
        """Closing the connection releases every lock at once."""
        self._drop()
