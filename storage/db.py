"""Engine, sessions and migrations.

SQLite (WAL) is the embedded default; PostgreSQL is chosen by the URL alone.
Every inbound event runs in one transaction (`Database.transaction`).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlalchemy.engine import URL, Engine, make_url
from sqlmodel import Session, create_engine

MIGRATIONS = Path(__file__).parent / "migrations"
log = logging.getLogger(__name__)


CHECKPOINT_EVERY = 0.5  # seconds between background WAL checkpoints


def _tune_sqlite(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers work while one writer commits; NORMAL is durable in WAL
    # mode except for the last transactions on power loss, not on a crash.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    # No checkpoint inside a commit (it copies the log into the database and syncs it: the
    # slowest 1% of votes were those); the Checkpointer does it in the background instead.
    cursor.execute("PRAGMA wal_autocheckpoint=0")
    cursor.close()


class Checkpointer:
    """Moves the SQLite write-ahead log into the database file on a thread of its own
    (PASSIVE: it never waits for, nor blocks, the writer), so commits stay short."""

    def __init__(self, path: str, every: float = CHECKPOINT_EVERY) -> None:
        self._path, self._every = path, every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="commons-sqlite-checkpoint", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        connection = sqlite3.connect(self._path, check_same_thread=False)
        try:
            while not self._stop.wait(self._every):
                try:
                    connection.execute("PRAGMA wal_checkpoint(PASSIVE)")
                except sqlite3.Error as error:  # busy or locked now: the next round catches up
                    log.debug("WAL checkpoint skipped: %s", error)
            connection.execute("PRAGMA wal_checkpoint(PASSIVE)")
        finally:
            connection.close()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


def make_engine(url: str) -> Engine:
    # hide_parameters: a database error (or SQL echo) would otherwise quote a statement's values in
    # the log, and a secret ballot's box is one of them.
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False}, hide_parameters=True)
        event.listen(engine, "connect", _tune_sqlite)
        return engine
    return create_engine(url, pool_pre_ping=True, hide_parameters=True)


def libpq_url(url: str | URL, password: bool = True) -> str:
    """A PostgreSQL URL as libpq reads it (`postgresql+psycopg://…` → `postgresql://…`), with or
    without its password (pg_dump gets the password from the environment instead)."""
    parsed = make_url(url)
    # Built anew: URL.set(password=None) would leave the password in place.
    return URL.create("postgresql", username=parsed.username, password=parsed.password if password else None,
                      host=parsed.host, port=parsed.port, database=parsed.database,
                      query=parsed.query).render_as_string(hide_password=False)


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


class Database:
    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        database = make_url(url).database
        self._checkpointer = (Checkpointer(str(Path(database).expanduser()))
                              if self.backend == "sqlite" and database and database != ":memory:" else None)

    @property
    def backend(self) -> str:
        return self.engine.dialect.name

    def upgrade(self) -> None:
        """Apply every pending Alembic migration (run at start and by `commons-bot db upgrade`)."""
        with self.engine.begin() as connection:
            if self.backend == "postgresql":
                # An active process and its standby start together: one migrates, the other
                # waits here and then finds nothing to do (same space as bot/standby.py's locks).
                connection.exec_driver_sql("SELECT pg_advisory_xact_lock(1131310445, 0)")
            config = alembic_config(self.url)
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One unit of work: committed on success, rolled back on any exception."""
        with Session(self.engine, expire_on_commit=False) as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    def dispose(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.stop()
            self._checkpointer = None
        self.engine.dispose()
