"""Configuration from TOML and the environment; the commons-bot commands."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from bot.config import load_config

ROOT = Path(__file__).resolve().parents[1]


def test_the_example_configuration_loads():
    config = load_config(ROOT / "config.example.toml")
    assert config.defaults.canonical()["vote_duration"] == "3d"


def test_environment_overrides_the_file(tmp_path, monkeypatch):
    path = tmp_path / "config.toml"
    path.write_text('[telegram]\ntoken = "from-file"\n[defaults]\nrule = "consent"\n')
    monkeypatch.setenv("COMMONS_TELEGRAM__TOKEN", "from-env")
    monkeypatch.setenv("COMMONS_DATABASE__URL", "sqlite:///elsewhere.db")
    config = load_config(path)
    assert config.telegram.token.get_secret_value() == "from-env"
    assert config.database.url == "sqlite:///elsewhere.db"
    assert config.defaults.rule == "consent"
    assert "from-env" not in repr(config)  # secrets never printed


def test_invalid_defaults_are_refused(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text('[defaults]\nvote_duration = "soon"\n')
    with pytest.raises(ValidationError):
        load_config(path)


def run_cli(*args, cwd):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "bot.cli", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=120)


def test_console_replays_a_script(tmp_path):
    script = tmp_path / "rehearsal.txt"
    script.write_text("!propose Try consent closes=1h rule=consent\n:as bob\n!vote 1 yes\n:wait 2h\n!decisions\n")
    result = run_cli("console", "--db", str(tmp_path / "room.db"), "--script", str(script), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "#1 Try consent: passed" in result.stdout
    assert result.stdout.count("#1 Try consent: passed") == 2  # the announcement, then the decision log


def test_run_without_a_platform_says_what_to_add(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text(f'[database]\nurl = "sqlite:///{tmp_path / "x.db"}"\n')
    result = run_cli("run", "--config", str(path), cwd=tmp_path)
    assert result.returncode != 0
    assert "[matrix]" in result.stderr and "[telegram]" in result.stderr


def test_db_upgrade(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text(f'[database]\nurl = "sqlite:///{tmp_path / "x.db"}"\n')
    result = run_cli("db", "upgrade", "--config", str(path), cwd=tmp_path)
    assert result.returncode == 0 and "up to date" in result.stdout
