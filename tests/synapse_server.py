"""Throwaway Synapse homeserver for the test suite.

Runs a real Matrix homeserver (the pip-installed ``matrix-synapse``) on
127.0.0.1 with a random free port and everything it writes -- config,
signing key, SQLite database, media store, logs -- inside one fresh temp
directory, removed again on stop().  Only the client API is served (no
federation) and every rate limit is raised so far that tests never see a 429
unless they ask for one with override_ratelimit().  conftest.py wraps this in
the session-scoped ``synapse`` fixture.

    with SynapseServer() as hs:
        alice = hs.register("alice")            # RegisteredUser with an access token
        client = nio.AsyncClient(hs.url, alice.user_id, alice.device_id)
        client.access_token = alice.access_token
        hs.restart()                            # same port, same database

Synapse runs as a child process in its own process group.  It gets SIGTERM
when the process that started it dies (prctl PR_SET_PDEATHSIG), so no
homeserver outlives a crashed or killed test run; atexit stops it on a
normal exit.  PR_SET_PDEATHSIG fires when the *thread* that forked the child
ends, so start()/restart() must run on a long-lived thread (the main thread,
where pytest runs tests and the asyncio loop).  From async code use
astart()/arestart(), which fork on the calling thread and only wait in a
worker thread.  Set COMMONS_KEEP_SYNAPSE=1 to keep the temp directory (with
homeserver.log) for a post-mortem.
"""

from __future__ import annotations

import asyncio
import atexit
import ctypes
import hashlib
import hmac
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"
SERVER_NAME = "localhost"
_START_ATTEMPTS = 3  # first start only: retries with a new port if another process grabbed ours
_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>

# Every rate limiter Synapse 1.163 reads (synapse/config/ratelimiting.py),
# raised so far that no test runs into one by accident.
_UNLIMITED = {"per_second": 10000, "burst_count": 10000}
_RATE_LIMITS: dict[str, Any] = {
    "rc_message": _UNLIMITED,
    "rc_registration": _UNLIMITED,
    "rc_registration_token_validity": _UNLIMITED,
    "rc_login": {"address": _UNLIMITED, "account": _UNLIMITED, "failed_attempts": _UNLIMITED},
    "rc_admin_redaction": _UNLIMITED,
    "rc_joins": {"local": _UNLIMITED, "remote": _UNLIMITED},
    "rc_joins_per_room": _UNLIMITED,
    "rc_key_requests": _UNLIMITED,
    "rc_3pid_validation": _UNLIMITED,
    "rc_invites": {"per_room": _UNLIMITED, "per_user": _UNLIMITED, "per_issuer": _UNLIMITED},
    "rc_third_party_invite": _UNLIMITED,
    "rc_media_create": _UNLIMITED,
    "rc_presence": {"per_user": _UNLIMITED},
    "rc_delayed_event_mgmt": _UNLIMITED,
    "rc_room_creation": _UNLIMITED,
    "rc_reports": _UNLIMITED,
    "rc_user_directory": _UNLIMITED,
    "rc_profile": _UNLIMITED,
    # Federation is not served, but keep its limiter out of the way too.
    "rc_federation": {"window_size": 1000, "sleep_limit": 10000, "sleep_delay": 0,
                      "reject_limit": 10000, "concurrent": 10000},
    "federation_rr_transactions_per_room_per_second": 10000,
}


@dataclass(frozen=True)
class RegisteredUser:
    user_id: str
    password: str
    access_token: str
    device_id: str


class SynapseHTTPError(RuntimeError):
    """A non-2xx answer from the homeserver; ``body`` is the decoded JSON error (or raw text)."""

    def __init__(self, method: str, path: str, status: int, body: Any):
        super().__init__(f"{method} {path} -> HTTP {status}: {body}")
        self.status = status
        self.body = body


def _free_port() -> int:
    # Ask the kernel for an unused port.  There is a small race until Synapse
    # binds it; the first start() retries with another port if we lose it.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError as e:
        return f"(not readable: {e})"


def _prctl():
    """libc's prctl, looked up in the parent: the child between fork and exec should do as little as possible."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    prctl.restype = ctypes.c_int
    return prctl


class SynapseServer:
    def __init__(self, workdir: Path | None = None):
        # A given workdir belongs to the caller and is never deleted.
        self._given_workdir = Path(workdir) if workdir is not None else None
        self._dir: Path | None = None
        self._port: int | None = None
        self._proc: subprocess.Popen | None = None
        self._secrets: dict[str, str] = {}
        self._admin: RegisteredUser | None = None
        self._owner_pid = os.getpid()

    # -- paths -------------------------------------------------------------
    @property
    def workdir(self) -> Path:
        if self._dir is None:
            raise RuntimeError("SynapseServer has not been started")
        return self._dir

    @property
    def config_path(self) -> Path:
        return self.workdir / "homeserver.yaml"

    @property
    def log_path(self) -> Path:
        return self.workdir / "homeserver.log"

    @property
    def stdout_path(self) -> Path:
        return self.workdir / "synapse.stdout"

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("SynapseServer has not been started")
        return self._port

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    # -- config ------------------------------------------------------------
    def _prepare(self) -> None:
        """Fresh workdir and secrets; the port and the config file come with the first start."""
        if self._given_workdir is not None:
            self._given_workdir.mkdir(parents=True, exist_ok=True)
            self._dir = self._given_workdir
        else:
            self._dir = Path(tempfile.mkdtemp(prefix="commons-synapse-"))
        (self._dir / "media_store").mkdir(exist_ok=True)
        self._secrets = {name: secrets.token_hex(32)
                         for name in ("registration_shared_secret", "macaroon_secret_key", "form_secret")}
        self._admin = None

    def _write_config(self) -> None:
        d = self.workdir
        log_config = {
            "version": 1,
            "disable_existing_loggers": False,
            "formatters": {"precise": {"format": "%(asctime)s - %(name)s - %(lineno)d - %(levelname)s - %(message)s"}},
            "handlers": {"file": {"class": "logging.FileHandler", "formatter": "precise",
                                  "filename": str(d / "homeserver.log"), "encoding": "utf8"}},
            "root": {"level": "WARNING", "handlers": ["file"]},
        }
        config = {
            "server_name": SERVER_NAME,
            "public_baseurl": f"http://{HOST}:{self.port}/",
            "pid_file": str(d / "homeserver.pid"),
            "listeners": [{"port": self.port, "bind_addresses": [HOST], "type": "http", "tls": False,
                           "x_forwarded": False, "resources": [{"names": ["client"], "compress": False}]}],
            "database": {"name": "sqlite3", "args": {"database": str(d / "homeserver.db")}},
            "log_config": str(d / "log_config.yaml"),
            "media_store_path": str(d / "media_store"),
            "max_upload_size": "50M",
            "signing_key_path": str(d / "signing.key"),
            **self._secrets,
            "enable_registration": False,
            "report_stats": False,
            "presence": {"enabled": False},
            "url_preview_enabled": False,
            "trusted_key_servers": [],
            "suppress_key_server_warning": True,
            "bcrypt_rounds": 4,  # the minimum: registering a user drops from ~250 ms to a few ms
            **_RATE_LIMITS,
        }
        # JSON is valid YAML: no YAML library needed on our side.
        (d / "log_config.yaml").write_text(json.dumps(log_config, indent=2))
        self.config_path.write_text(json.dumps(config, indent=2))

    # -- lifecycle ---------------------------------------------------------
    def start(self, timeout: float = 60) -> None:
        """Start Synapse and wait until it serves the client API.

        The first start picks the port, writes the config and (by Synapse's
        default generate-missing-and-run mode) the signing key; later starts
        (after restart() or kill()) reuse all of them.  Raises RuntimeError
        with the tails of homeserver.log and the process output on failure.
        """
        first = self._spawn()
        for attempt in range(1, _START_ATTEMPTS + 1):
            try:
                return self._wait_ready(timeout)
            except RuntimeError as e:
                self._retry_or_raise(first, attempt, e)

    async def astart(self, timeout: float = 60) -> None:
        """start() for async code: forks on this (the loop's) thread, waits in a worker thread."""
        first = self._spawn()
        for attempt in range(1, _START_ATTEMPTS + 1):
            try:
                return await asyncio.to_thread(self._wait_ready, timeout)
            except RuntimeError as e:
                self._retry_or_raise(first, attempt, e)

    def _spawn(self) -> bool:
        """Launch the process (without waiting); True if this is the first start of a fresh server."""
        if self.running:
            raise RuntimeError("SynapseServer is already running")
        self._owner_pid = os.getpid()
        # Registered first so a half-started server is cleaned up too.
        atexit.unregister(self.stop)
        atexit.register(self.stop)
        first = self._dir is None
        if first:
            self._prepare()
            self._port = _free_port()
            self._write_config()
        self._launch()
        return first

    def _launch(self) -> None:
        prctl = _prctl()
        parent = os.getpid()

        def die_with_parent() -> None:  # runs in the child between fork and exec
            if prctl is not None:
                prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
            if os.getppid() != parent:  # the parent died before prctl took effect
                os._exit(1)

        with open(self.stdout_path, "ab") as out:
            out.write(f"--- start {time.strftime('%H:%M:%S')} on port {self.port} ---\n".encode())
            out.flush()
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "synapse.app.homeserver", "--config-path", str(self.config_path)],
                cwd=self.workdir, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,  # own process group: a Ctrl-C to pytest is not a Ctrl-C to Synapse
                preexec_fn=die_with_parent,
            )

    def _retry_or_raise(self, first: bool, attempt: int, error: RuntimeError) -> None:
        """After a failed start: relaunch on a new port if we lost the race for a fresh one, else raise."""
        self._terminate()
        lost_port = "Address already in use" in str(error) or "CannotListenError" in str(error)
        # Never on restart, where the port must stay the same.
        if not (first and lost_port and attempt < _START_ATTEMPTS):
            raise error
        self._port = _free_port()
        self._write_config()
        self._launch()

    def _wait_ready(self, timeout: float) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + timeout
        versions = f"{self.url}/_matrix/client/versions"
        while True:
            code = self._proc.poll()
            if code is not None:
                raise RuntimeError(f"Synapse exited with code {code} during start\n{self._diagnostics()}")
            try:
                with urllib.request.urlopen(versions, timeout=2) as resp:
                    if resp.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"Synapse did not answer {versions} within {timeout} s\n{self._diagnostics()}")
            time.sleep(0.05)

    def _diagnostics(self) -> str:
        return (f"--- {self.log_path} (tail) ---\n{_tail(self.log_path)}\n"
                f"--- {self.stdout_path} (tail) ---\n{_tail(self.stdout_path)}")

    def _terminate(self, grace: float = 15) -> None:
        """SIGTERM, then SIGKILL after ``grace`` seconds; keeps the workdir."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(grace)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def stop(self) -> None:
        """Stop Synapse and remove its temp dir. Idempotent; safe if start failed."""
        if os.getpid() != self._owner_pid:
            return  # a forked child must not tear down its parent's server
        atexit.unregister(self.stop)
        self._terminate()
        if self._dir is not None and self._given_workdir is None and os.environ.get("COMMONS_KEEP_SYNAPSE") != "1":
            shutil.rmtree(self._dir, ignore_errors=True)
        self._dir = None
        self._port = None
        self._admin = None

    async def astop(self) -> None:
        await asyncio.to_thread(self.stop)

    def restart(self, timeout: float = 60) -> None:
        """Graceful stop, then start again on the same port with the same database and keys."""
        if self._dir is None:
            raise RuntimeError("SynapseServer has not been started")
        self._terminate()
        self.start(timeout)

    async def arestart(self, timeout: float = 60) -> None:
        """restart() that keeps the event loop (and a bot under test on it) running meanwhile."""
        if self._dir is None:
            raise RuntimeError("SynapseServer has not been started")
        await asyncio.to_thread(self._terminate)
        await self.astart(timeout)

    def kill(self) -> None:
        """SIGKILL, as in a crash: no graceful shutdown, workdir kept; start() brings it back."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()

    def __enter__(self) -> SynapseServer:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- HTTP helpers --------------------------------------------------------
    def request(self, method: str, path: str, body: Any = None, access_token: str | None = None,
                timeout: float = 30) -> Any:
        """One JSON request to the homeserver; returns the decoded answer, raises SynapseHTTPError."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Content-Type", "application/json")
        if access_token is not None:
            req.add_header("Authorization", f"Bearer {access_token}")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as e:
            raw = e.read()
            try:
                detail: Any = json.loads(raw)
            except ValueError:
                detail = raw.decode(errors="replace")
            raise SynapseHTTPError(method, path, e.code, detail) from None
        return json.loads(raw) if raw else {}

    def register(self, localpart: str, password: str | None = None, admin: bool = False,
                 displayname: str | None = None) -> RegisteredUser:
        """Create a user through the shared-secret admin API (registration is closed otherwise)."""
        if password is None:
            password = "pw-" + localpart
        path = "/_synapse/admin/v1/register"
        nonce = self.request("GET", path)["nonce"]
        mac = hmac.new(self._secrets["registration_shared_secret"].encode(), digestmod=hashlib.sha1)
        mac.update(b"\x00".join([nonce.encode(), localpart.encode(), password.encode(),
                                 b"admin" if admin else b"notadmin"]))
        body = {"nonce": nonce, "username": localpart, "password": password, "admin": admin,
                "mac": mac.hexdigest()}
        if displayname is not None:
            body["displayname"] = displayname
        answer = self.request("POST", path, body)
        return RegisteredUser(user_id=answer["user_id"], password=password,
                              access_token=answer["access_token"], device_id=answer["device_id"])

    async def aregister(self, localpart: str, password: str | None = None, admin: bool = False,
                        displayname: str | None = None) -> RegisteredUser:
        return await asyncio.to_thread(self.register, localpart, password, admin, displayname)

    @property
    def admin(self) -> RegisteredUser:
        """A server admin ``@admin:localhost``, registered on first use."""
        if self._admin is None:
            self._admin = self.register("admin", admin=True)
        return self._admin

    def override_ratelimit(self, user_id: str, messages_per_second: int = 0, burst_count: int = 0) -> None:
        """Give one user their own message rate limit (admin API).

        Synapse only accepts whole numbers here, and 0/0 (the default) means
        "never rate limit this user" rather than "block everything"; to make
        the homeserver answer 429 use e.g. 1 message/s with burst_count 1.
        """
        self.request("POST", f"/_synapse/admin/v1/users/{urllib.parse.quote(user_id)}/override_ratelimit",
                     {"messages_per_second": messages_per_second, "burst_count": burst_count},
                     access_token=self.admin.access_token)

    def delete_ratelimit_override(self, user_id: str) -> None:
        self.request("DELETE", f"/_synapse/admin/v1/users/{urllib.parse.quote(user_id)}/override_ratelimit",
                     access_token=self.admin.access_token)
