"""Throwaway PostgreSQL server for the test suite.

Starts a private cluster on 127.0.0.1 with a random free port, its data
directory, log and unix socket all inside one fresh temp directory, and
removes everything again on stop().  Only the PostgreSQL binaries and psycopg
are needed; conftest.py wraps this in fixtures.

    with PostgresServer(find_postgres_bindir()) as pg:
        url = pg.create_database("commons_test")   # SQLAlchemy URL
"""

from __future__ import annotations

import atexit
import json
import os
import pwd
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import urllib.parse
from pathlib import Path

import psycopg
from psycopg import sql

USER = "commons"  # superuser created by initdb; auth is "trust", no password
HOST = "127.0.0.1"
_START_ATTEMPTS = 3  # retries with a new port if another process grabbed ours


def find_postgres_bindir() -> Path | None:
    """Directory holding initdb and pg_ctl, or None if PostgreSQL is not installed."""

    def ok(d: Path) -> bool:
        # initdb also needs the postgres binary next to it.
        return all(os.access(d / exe, os.X_OK) for exe in ("initdb", "pg_ctl", "postgres"))

    initdb = shutil.which("initdb")
    if initdb and ok(Path(initdb).parent):
        return Path(initdb).parent

    # Debian/Ubuntu keep the binaries off PATH; RHEL uses /usr/pgsql-<ver>.
    def version(d: Path) -> tuple[int, ...]:
        m = re.search(r"(\d+(?:\.\d+)*)", d.parent.name)
        return tuple(int(x) for x in m.group(1).split(".")) if m else ()

    dirs = [*Path("/usr/lib/postgresql").glob("*/bin"), *Path("/usr").glob("pgsql-*/bin")]
    for d in sorted(dirs, key=version, reverse=True):
        if ok(d):
            return d
    return None


def _free_port() -> int:
    # Ask the kernel for an unused port.  There is a small race until
    # postgres binds it; start() retries with another port if we lose it.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


# Runs in a detached child process.  It blocks reading a pipe whose write end
# only the test process holds: stop() writes b"x" (all done, just exit), but if
# the test process dies -- even by SIGKILL, where atexit never runs -- the read
# returns EOF and the watchdog shuts the server down and deletes the temp dir.
_WATCHDOG = r"""
import json, shutil, subprocess, sys
prefix, pg_ctl, data, tmp = json.loads(sys.argv[1])
try:
    got = sys.stdin.buffer.read(1)
except BaseException:
    got = b""
if got != b"x":
    subprocess.run([*prefix, pg_ctl, "stop", "-D", data, "-m", "immediate", "-w", "-t", "30"],
                   cwd=tmp, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    shutil.rmtree(tmp, ignore_errors=True)
"""


class PostgresServer:
    def __init__(self, bindir: Path):
        self.bindir = Path(bindir)
        self._tmp: Path | None = None
        self._port: int | None = None
        self._watchdog: subprocess.Popen | None = None
        self._owner_pid = os.getpid()

    # -- paths -------------------------------------------------------------
    @property
    def _data(self) -> Path:
        assert self._tmp is not None
        return self._tmp / "data"

    @property
    def _log(self) -> Path:
        assert self._tmp is not None
        return self._tmp / "postgres.log"

    @property
    def _sockdir(self) -> Path:
        # Unix socket lives in our temp dir, so /var/run/postgresql (which may
        # not exist or not be writable) is never needed.  Keep the path short:
        # unix socket paths are limited to ~107 bytes.
        assert self._tmp is not None
        return self._tmp / "sock"

    # -- running the server binaries ----------------------------------------
    def _prefix(self) -> list[str]:
        """Command prefix that runs a binary as a user PostgreSQL accepts.

        postgres refuses to run as root (CI runs as root), so then we switch to
        the ``postgres`` system user; otherwise we run as ourselves.
        """
        if os.geteuid() != 0:
            return []
        if shutil.which("runuser"):
            return ["runuser", "-u", "postgres", "--"]
        # su needs one shell string; _run() joins the argv for it.
        return ["su", "postgres", "-s", "/bin/sh", "-c"]

    def _run(self, *args: str, timeout: float = 90) -> subprocess.CompletedProcess:
        cmd = [str(self.bindir / args[0]), *args[1:]]
        prefix = self._prefix()
        cmd = prefix + ([shlex.join(cmd)] if prefix[:1] == ["su"] else cmd)
        # Drop PG* variables (PGDATA, PGPORT, PGHOST, ...) so a developer's
        # environment cannot point the tools at another cluster.  cwd=tmp
        # because the postgres user may not be able to enter our cwd.
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        return subprocess.run(cmd, cwd=self._tmp, env=env, stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=timeout)

    def _log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self._log.read_text(errors="replace").splitlines()[-lines:])
        except OSError as e:
            return f"(no server log: {e})"

    # -- lifecycle ---------------------------------------------------------
    def start(self) -> None:
        """initdb + pg_ctl start; raises RuntimeError with the log tail on failure."""
        if self._tmp is not None:
            raise RuntimeError("PostgresServer already started")
        self._owner_pid = os.getpid()
        # Registered first so a half-started server is cleaned up too.
        atexit.register(self.stop)
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> None:
        root = os.geteuid() == 0
        if root:
            try:
                pg_user = pwd.getpwnam("postgres")
            except KeyError:
                raise RuntimeError("running as root but there is no 'postgres' system user "
                                   "to run the server as") from None
        # Under /tmp (world-traversable) so the postgres user can reach it
        # when we are root; short path keeps the unix socket path legal.
        base = "/tmp" if os.path.isdir("/tmp") else None
        self._tmp = Path(tempfile.mkdtemp(prefix="commons-pg-", dir=base))
        self._sockdir.mkdir()
        if root:
            for p in (self._tmp, self._sockdir):
                os.chown(p, pg_user.pw_uid, pg_user.pw_gid)

        # Start the watchdog before anything that can leave a process behind.
        self._watchdog = subprocess.Popen(
            [sys.executable, "-c", _WATCHDOG,
             json.dumps([self._prefix(), str(self.bindir / "pg_ctl"), str(self._data), str(self._tmp)])],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            # Own session: a Ctrl-C or a kill of the test's process group
            # must not take the watchdog down with it.
            start_new_session=True,
        )

        r = self._run("initdb", "-D", str(self._data), "-A", "trust", "-U", USER,
                      "--encoding=UTF8", "--locale=C",
                      "-N")  # --no-sync: crash safety is pointless for a throwaway cluster
        if r.returncode != 0:
            raise RuntimeError(f"initdb failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")

        for attempt in range(_START_ATTEMPTS):
            port = _free_port()
            opts = " ".join([
                f"-c listen_addresses={HOST}", f"-p {port}",
                f"-k {shlex.quote(str(self._sockdir))}",
                # Durability off: a test database never needs to survive a
                # crash, and skipping fsync makes commits/CREATE DATABASE fast.
                "-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off",
                "-c max_connections=200",  # pools from many tests/workers
                "-c timezone=UTC",  # deterministic regardless of the host
            ])
            r = self._run("pg_ctl", "start", "-D", str(self._data), "-l", str(self._log),
                          "-w", "-t", "60", "-o", opts)
            if r.returncode == 0:
                self._port = port
                return
            tail = self._log_tail()
            # Lost the race for the port: try again with a new one.
            if "already in use" in tail and attempt + 1 < _START_ATTEMPTS:
                continue
            raise RuntimeError(f"pg_ctl start failed ({r.returncode}):\n"
                               f"{r.stdout}\n{r.stderr}\n--- server log tail ---\n{tail}")

    def stop(self) -> None:
        """pg_ctl stop -m fast, then remove the temp dir. Idempotent; safe if start failed."""
        if os.getpid() != self._owner_pid:
            return  # a forked child must not tear down its parent's server
        atexit.unregister(self.stop)
        if self._tmp is not None:
            if (self._data / "postmaster.pid").exists():
                try:
                    r = self._run("pg_ctl", "stop", "-D", str(self._data), "-m", "fast",
                                  "-w", "-t", "30", timeout=40)
                    ok = r.returncode == 0
                except subprocess.TimeoutExpired:
                    ok = False
                if not ok:
                    try:
                        self._run("pg_ctl", "stop", "-D", str(self._data), "-m", "immediate",
                                  "-w", "-t", "30", timeout=40)
                    except subprocess.TimeoutExpired:
                        pass
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None
        self._port = None
        if self._watchdog is not None:
            try:
                self._watchdog.communicate(b"x", timeout=10)  # "all cleaned up, exit"
            except Exception:
                self._watchdog.kill()
            self._watchdog = None

    def __enter__(self) -> PostgresServer:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- connection helpers --------------------------------------------------
    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("PostgresServer is not running")
        return self._port

    def url(self, dbname: str = "postgres") -> str:
        """SQLAlchemy URL for database ``dbname``."""
        return f"postgresql+psycopg://{USER}@{HOST}:{self.port}/{urllib.parse.quote(dbname, safe='')}"

    def conninfo(self, dbname: str = "postgres") -> str:
        """libpq connection string for ``psycopg.connect``."""
        return psycopg.conninfo.make_conninfo(host=HOST, port=self.port, user=USER,
                                              dbname=dbname, connect_timeout=10)

    def create_database(self, name: str, template: str | None = None) -> str:
        """CREATE DATABASE name [TEMPLATE template]; returns url(name).

        Cloning needs the template to have no other connections (PostgreSQL
        waits ~5 s for them, then fails): close/dispose them first.
        """
        query = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template is not None:
            query += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
        # CREATE/DROP DATABASE cannot run inside a transaction block.
        with psycopg.connect(self.conninfo(), autocommit=True) as conn:
            conn.execute(query)
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """DROP DATABASE IF EXISTS name WITH (FORCE) -- also kicks out open connections."""
        with psycopg.connect(self.conninfo(), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
