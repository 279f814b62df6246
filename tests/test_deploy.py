"""Operations: `commons-bot db backup` through the real command line — on SQLite while another
connection writes, on PostgreSQL with pg_dump — restored and read back; the systemd unit, the
Containerfile and the compose file checked."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import threading
from datetime import datetime, timezone
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from storage.backup import find_pg_tool, pg_dump_command
from storage.db import Database, libpq_url
from storage.models import Ballot, Group, Member, Proposal
from tests.harness import Room

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if not key.startswith("COMMONS_")}  # the file decides
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run([sys.executable, "-m", "bot.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def config_file(directory: Path, url: str) -> Path:
    path = directory / "config.toml"
    path.write_text(f'[database]\nurl = "{url}"\n')
    return path


def counts(url: str) -> dict[str, int]:
    database = Database(url)
    try:
        with database.transaction() as session:
            return {model.__name__: session.scalar(select(func.count()).select_from(model))
                    for model in (Group, Member, Proposal, Ballot)}
    finally:
        database.dispose()


async def hold_a_vote(room: Room) -> None:
    await room.say("!propose Buy a chest freezer closes=2d", as_="alice")
    await room.say("!vote 1 yes", as_="bob")
    await room.say("!vote 1 no too expensive", as_="carol")


def one_line(text: str) -> bool:
    return len(text.strip().splitlines()) == 1 and "Traceback" not in text


# -- SQLite ---------------------------------------------------------------------------------------

async def test_sqlite_backup_while_a_write_is_open_restores_every_committed_row(tmp_path, sqlite_url):
    config = config_file(tmp_path, sqlite_url)
    async with Room(sqlite_url) as room:  # the bot is running on the database
        await hold_a_vote(room)
        committed = counts(sqlite_url)
        assert committed["Proposal"] == 1 and committed["Ballot"] == 2

        writer = Database(sqlite_url)
        try:
            with writer.transaction() as session:
                group = session.scalar(select(Group.id))
                session.add_all(Member(group_id=group, user_id=f"late{n}", display_name=f"late{n}", joined_at=NOW)
                                for n in range(5))
                session.flush()  # SQLite's write lock is held, the rows not committed, while the backup runs
                result = cli("db", "backup", "backup.db", "--config", str(config), cwd=tmp_path)
        finally:
            writer.dispose()
        assert counts(sqlite_url)["Member"] == committed["Member"] + 5  # the writer was not disturbed

    assert result.returncode == 0, result.stderr
    assert re.fullmatch(r"wrote backup\.db \([\d,]+ bytes\), a copy of the SQLite database .*commons\.db\n",
                        result.stdout)
    backup = tmp_path / "backup.db"
    assert backup.stat().st_mode & 0o077 == 0  # private: it holds secret ballots too
    assert not list(tmp_path.glob(".backup.db.*"))  # no temporary file left behind
    assert not Path(f"{backup}-wal").exists()  # one self-contained file

    # Restore: the backup is the database of a fresh start.
    restored = f"sqlite:///{backup}"
    assert counts(restored) == committed  # the open transaction's rows are not in it
    async with Room(restored) as room:
        shown = await room.say("!proposal 1")
    assert "Buy a chest freezer" in shown and "yes (1): bob" in shown and "no (1): carol" in shown


def test_sqlite_backups_taken_while_rows_are_committed_are_whole(tmp_path, sqlite_url):
    config = config_file(tmp_path, sqlite_url)
    database = Database(sqlite_url)
    database.upgrade()
    with database.transaction() as session:
        group = Group(platform="console", chat_id="room", created_at=NOW)
        session.add(group)
    written, stop, failures = [0], threading.Event(), []

    def write() -> None:  # one committed row at a time, as fast as SQLite takes them
        try:
            while not stop.is_set():
                with database.transaction() as session:
                    session.add(Member(group_id=group.id, user_id=f"m{written[0]}", display_name="m", joined_at=NOW))
                written[0] += 1
        except Exception as error:  # reported below: the backup must never make the writer fail
            failures.append(error)

    thread = threading.Thread(target=write)
    thread.start()
    try:
        results = []
        for name in ("first.db", "second.db"):
            before = written[0]
            results.append((name, before, cli("db", "backup", name, "--config", str(config), cwd=tmp_path)))
            assert written[0] > before  # rows were being committed during the backup
    finally:
        stop.set()
        thread.join(timeout=30)
        database.dispose()
    assert not failures
    for name, before, result in results:
        assert result.returncode == 0, result.stderr
        copied = counts(f"sqlite:///{tmp_path / name}")
        assert copied["Group"] == 1 and before <= copied["Member"] <= written[0]


def test_backup_refuses_to_overwrite_and_says_what_is_wrong_in_one_line(tmp_path, sqlite_url):
    database = Database(sqlite_url)
    database.upgrade()
    database.dispose()
    config = config_file(tmp_path, sqlite_url)

    older = tmp_path / "backup.db"
    older.write_text("last week's backup")
    refused = cli("db", "backup", str(older), "--config", str(config), cwd=tmp_path)
    assert refused.returncode == 2 and one_line(refused.stderr)
    assert "already exists" in refused.stderr and "--force" in refused.stderr
    assert older.read_text() == "last week's backup"
    forced = cli("db", "backup", str(older), "--force", "--config", str(config), cwd=tmp_path)
    assert forced.returncode == 0, forced.stderr
    assert counts(f"sqlite:///{older}")["Group"] == 0  # a real, migrated database now

    nowhere = cli("db", "backup", str(tmp_path / "nowhere" / "b.db"), "--config", str(config), cwd=tmp_path)
    assert nowhere.returncode == 2 and one_line(nowhere.stderr)
    assert "directory" in nowhere.stderr and "nowhere" in nowhere.stderr and "does not exist" in nowhere.stderr

    (tmp_path / "notes.txt").write_text("not a database at all\n" * 100)
    damaged = config_file(tmp_path, f"sqlite:///{tmp_path / 'notes.txt'}")
    unreadable = cli("db", "backup", "copy.db", "--config", str(damaged), cwd=tmp_path)
    assert unreadable.returncode == 2 and one_line(unreadable.stderr)
    assert "cannot read the SQLite database" in unreadable.stderr
    assert not (tmp_path / "copy.db").exists() and not list(tmp_path.glob(".copy.db.*"))  # nothing half-written

    missing = config_file(tmp_path, f"sqlite:///{tmp_path / 'missing.db'}")
    result = cli("db", "backup", "copy.db", "--config", str(missing), cwd=tmp_path)
    assert result.returncode == 2 and "no SQLite database at" in result.stderr
    assert not (tmp_path / "missing.db").exists()  # looking never creates one

    needs_file = cli("db", "backup", "--config", str(config), cwd=tmp_path)
    assert needs_file.returncode == 2 and "FILE" in needs_file.stderr
    assert cli("db", "upgrade", "--config", str(config), cwd=tmp_path).returncode == 0  # unchanged


# -- PostgreSQL -----------------------------------------------------------------------------------

def test_the_password_reaches_pg_dump_through_the_environment_only():
    url = make_url("postgresql+psycopg://commons:s3cret@db.example.org:5433/commons?sslmode=require")
    argv, env = pg_dump_command(url, Path("out.dump"), "pg_dump")
    assert env["PGPASSWORD"] == "s3cret" and not any("s3cret" in arg for arg in argv)
    assert argv[-1] == "postgresql://commons@db.example.org:5433/commons?sslmode=require"
    assert "--format=custom" in argv and "--no-password" in argv


async def test_postgresql_backup_with_pg_dump_restores_with_pg_restore(tmp_path, postgres):
    source, copy = f"commons_backup_{os.getpid()}", f"commons_restored_{os.getpid()}"
    # The test server trusts every connection, so a password in the URL is accepted and unused:
    # enough to show it never appears in what the command prints.
    url = postgres.create_database(source).replace("commons@", "commons:pw-not-to-print@", 1)
    try:
        database = Database(url)
        database.upgrade()
        database.dispose()
        async with Room(url) as room:
            await hold_a_vote(room)
        committed = counts(url)
        assert committed["Ballot"] == 2

        result = cli("db", "backup", "commons.dump", "--config", str(config_file(tmp_path, url)), cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert "pw-not-to-print" not in result.stdout + result.stderr
        assert re.match(r"wrote commons\.dump \([\d,]+ bytes\), a pg_dump of commons_backup_", result.stdout)
        assert "restore it with: pg_restore --clean --if-exists -d " in result.stdout
        assert (tmp_path / "commons.dump").read_bytes()[:5] == b"PGDMP"  # the custom format
        assert not list(tmp_path.glob(".commons.dump.*"))

        restored = postgres.create_database(copy)
        pg_restore = find_pg_tool("pg_restore")
        assert pg_restore is not None, "pg_restore not found beside pg_dump"
        done = subprocess.run([pg_restore, "--clean", "--if-exists", "--exit-on-error",
                               "-d", libpq_url(restored, password=False), str(tmp_path / "commons.dump")],
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert counts(restored) == committed
        async with Room(restored) as room:
            shown = await room.say("!proposal 1")
        assert "yes (1): bob" in shown and "no (1): carol" in shown
    finally:
        postgres.drop_database(source)
        postgres.drop_database(copy)


def test_a_postgresql_backup_that_cannot_connect_says_so_in_one_line(tmp_path):
    url = "postgresql+psycopg://commons:pw-not-to-print@127.0.0.1:1/commons"
    result = cli("db", "backup", "x.dump", "--config", str(config_file(tmp_path, url)), cwd=tmp_path)
    assert result.returncode == 2 and one_line(result.stderr)
    # Missing pg_dump or a refused connection: either way a clear line, and never the password.
    assert "pg_dump" in result.stderr and "pw-not-to-print" not in result.stderr
    assert not (tmp_path / "x.dump").exists() and not list(tmp_path.glob(".x.dump.*"))


# -- deployment files -----------------------------------------------------------------------------

def test_the_systemd_unit_restarts_a_fenced_process_as_a_dedicated_user():
    unit = (DEPLOY / "commons-bot.service").read_text()
    lines = set(unit.splitlines())
    assert "ExecStart=/usr/local/bin/commons-bot run --config /etc/commons-bot/config.toml" in lines
    assert "User=commons" in lines or "DynamicUser=yes" in lines
    assert {"StateDirectory=commons-bot", "WorkingDirectory=/var/lib/commons-bot", "Restart=on-failure",
            "NoNewPrivileges=yes", "ProtectSystem=strict", "ReadWritePaths=/var/lib/commons-bot"} <= lines
    assert re.search(r"^RestartSec=\S+", unit, re.M)
    # Exit status 75 (a lost database lock) must count as a failure, so systemd restarts it.
    assert not re.search(r"^(SuccessExitStatus|RestartPreventExitStatus)=.*\b75\b", unit, re.M)


def test_systemd_analyze_verifies_the_unit(tmp_path):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    # verify insists that ExecStart's program exists: point it at an installed one.
    program = shutil.which("commons-bot") or "/bin/true"
    unit = tmp_path / "commons-bot.service"
    unit.write_text(re.sub(r"^ExecStart=/usr/local/bin/commons-bot", f"ExecStart={program}",
                           (DEPLOY / "commons-bot.service").read_text(), flags=re.M))
    result = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True, timeout=120)
    # Only what concerns this unit's own text counts; the host's other units are not ours to judge.
    problems = [line for line in (result.stdout + result.stderr).splitlines()
                if line.startswith(f"{unit}:") or (line.startswith("commons-bot.service:")
                                                   and re.search(r"unknown|invalid|pars|exec", line, re.I))]
    assert problems == []


def test_the_container_image_runs_as_a_user_and_bakes_in_no_secret():
    containerfile = (DEPLOY / "Containerfile").read_text()
    assert re.search(r"^FROM python:3\.12-slim\b", containerfile, re.M)
    users = re.findall(r"^USER\s+(\S+)", containerfile, re.M)
    assert users and users[-1].split(":")[0] not in ("root", "0")  # the final stage's user
    assert 'ENTRYPOINT ["commons-bot"]' in containerfile
    assert 'CMD ["run", "--config", "/config/config.toml"]' in containerfile
    assert re.search(r"^VOLUME\s+\[?\"?/data\b", containerfile, re.M)
    assert not re.search(r"^(ENV|ARG)\b.*(TOKEN|PASSWORD|SECRET)", containerfile, re.M | re.I)
    for sources in re.findall(r"^COPY\s+(?!--from)(.+)\s+\S+$", containerfile, re.M):
        for source in sources.split():  # built from the repository root; no config.toml among them
            assert (ROOT / source).exists() and "config" not in source


def test_compose_runs_postgres_and_two_identical_bots_checked_on_livez():
    text = (DEPLOY / "compose.yaml").read_text()
    try:
        import yaml  # PyYAML comes with the test extras (matrix-synapse needs it)
    except ImportError:  # no new dependency for this: check the text instead
        assert all(re.search(rf"^  {name}:", text, re.M) for name in ("postgres", "commons-a", "commons-b"))
        assert "/livez" in text and "COMMONS_DATABASE__URL" in text
        return
    compose = yaml.safe_load(text)
    services = compose["services"]
    assert set(services) == {"postgres", "commons-a", "commons-b"}
    postgres = services["postgres"]
    assert re.fullmatch(r"(docker\.io/(library/)?)?postgres:16(\S*)", postgres["image"])
    assert "pg_isready" in str(postgres["healthcheck"]["test"])
    volume = postgres["volumes"][0].split(":")[0]
    assert volume in compose["volumes"]  # a named volume
    a, b = services["commons-a"], services["commons-b"]
    assert a == b  # the same image and configuration: which one is active is decided at run time
    assert (DEPLOY / a["build"]["context"] / a["build"]["dockerfile"]).resolve() == DEPLOY / "Containerfile"
    assert a["restart"] == "unless-stopped"
    assert a["depends_on"]["postgres"]["condition"] == "service_healthy"
    env = a["environment"]
    assert re.fullmatch(r"postgresql\+psycopg://commons:.+@postgres:5432/commons", env["COMMONS_DATABASE__URL"])
    assert env["COMMONS_OPS__PORT"] == "9100" and env["COMMONS_OPS__LISTEN"] == "0.0.0.0"
    assert "http://127.0.0.1:9100/livez" in " ".join(a["healthcheck"]["test"])
