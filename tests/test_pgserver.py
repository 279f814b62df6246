"""Checks for the throwaway PostgreSQL helper in tests/pgserver.py."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.pgserver import PostgresServer, find_postgres_bindir

BINDIR = find_postgres_bindir()
pytestmark = pytest.mark.skipif(
    BINDIR is None,
    reason="PostgreSQL binaries (initdb, pg_ctl) not found on PATH or in /usr/lib/postgresql/*/bin",
)


def _accepts_connections(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def test_lifecycle_databases_and_template():
    import psycopg

    server = PostgresServer(BINDIR)
    server.start()
    try:
        port = server.port
        tmp = server._tmp
        assert _accepts_connections(port)
        assert server.url() == f"postgresql+psycopg://commons@127.0.0.1:{port}/postgres"

        url = server.create_database("pg Test-A")  # needs identifier quoting
        assert url == f"postgresql+psycopg://commons@127.0.0.1:{port}/pg%20Test-A"
        with psycopg.connect(server.conninfo("pg Test-A")) as conn:
            conn.execute("CREATE TABLE item (id int PRIMARY KEY, name text NOT NULL)")
            conn.execute("INSERT INTO item VALUES (%s, %s)", (1, "héllo"))
            conn.commit()
            assert conn.execute("SELECT id, name FROM item").fetchall() == [(1, "héllo")]
            assert conn.execute("SHOW fsync").fetchone() == ("off",)
        # The template's connection is closed now, so it can be cloned.
        server.create_database("pg_test_b", template="pg Test-A")
        conn = psycopg.connect(server.conninfo("pg_test_b"))
        try:
            assert conn.execute("SELECT id, name FROM item").fetchall() == [(1, "héllo")]
            # DROP ... WITH (FORCE) must work even while someone is connected.
            server.drop_database("pg_test_b")
        finally:
            conn.close()  # already terminated by the server; close() does not raise
        server.drop_database("pg_test_b")  # IF EXISTS: dropping twice is fine
        server.drop_database("pg Test-A")
        with psycopg.connect(server.conninfo()) as conn:
            names = {r[0] for r in conn.execute("SELECT datname FROM pg_database")}
        assert not names & {"pg Test-A", "pg_test_b"}
    finally:
        server.stop()

    assert not _accepts_connections(port)
    assert not tmp.exists()
    server.stop()  # idempotent
    with pytest.raises(RuntimeError):
        _ = server.port


def test_stop_without_start_and_context_manager():
    PostgresServer(BINDIR).stop()  # never started: must be a no-op

    with PostgresServer(BINDIR) as server:
        port = server.port
        assert _accepts_connections(port)
    assert not _accepts_connections(port)


def test_server_cleaned_up_when_test_process_is_killed():
    # A child process starts a server and then SIGKILLs itself, so neither
    # stop() nor atexit runs; the watchdog must still clean up.
    root = Path(__file__).resolve().parents[1]
    code = (
        "import json, os, signal, sys\n"
        "from tests.pgserver import PostgresServer, find_postgres_bindir\n"
        "s = PostgresServer(find_postgres_bindir()); s.start()\n"
        "print(json.dumps([s.port, str(s._tmp)]), flush=True)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    port, tmp = json.loads(proc.stdout)

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if not _accepts_connections(port) and not Path(tmp).exists():
            break
        time.sleep(0.1)
    assert not _accepts_connections(port)
    assert not Path(tmp).exists()


def test_start_failure_raises_with_log_and_cleans_up(monkeypatch):
    import tests.pgserver as pgserver

    # Every attempt gets a port somebody else already listens on.
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        monkeypatch.setattr(pgserver, "_free_port", lambda: busy.getsockname()[1])
        server = PostgresServer(BINDIR)
        with pytest.raises(RuntimeError, match="server log tail") as info:
            server.start()
    assert "already in use" in str(info.value)
    assert server._tmp is None  # temp dir removed, watchdog released
    server.stop()  # still safe
