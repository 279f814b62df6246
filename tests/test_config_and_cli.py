"""Configuration from TOML and the environment; the commons-bot commands."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.config import ConfigError, load_config

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


def config_file(tmp_path, text):
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def test_settings_in_natural_toml_types(tmp_path):
    path = config_file(tmp_path, '[defaults]\nquorum = 5\nauto_draw = true\naudit_draw = false\n'
                                 'mandate_warnings = ["3d", "12h"]\n[scheduler]\nsweep_interval = "1m"\n')
    defaults = load_config(path).defaults.canonical()
    assert (defaults["quorum"], defaults["auto_draw"], defaults["audit_draw"]) == ("5", "on", "off")
    assert defaults["mandate_warnings"] == "3d 12h"
    assert load_config(config_file(tmp_path, '[defaults]\nquorum = "40%"\n')).defaults.canonical()["quorum"] == "40%"
    assert load_config(config_file(tmp_path, '[defaults]\nquorum = "5"\n')).defaults.canonical()["quorum"] == "5"


@pytest.mark.parametrize("text, expected", [
    ('[defaults]\nvote_duration = "soon"\n', "[defaults] vote_duration:"),
    ('[defaults]\nquorum = 2.5\n', "[defaults] quorum: got 2.5; accepted: a count (5 or \"5\") or a share"),
    ('[defaults]\nquorum = true\n', "[defaults] quorum: got true"),
    ('[defaults]\nauto_draw = 1\n', "[defaults] auto_draw: got 1; accepted: true or false"),
    ('[defaults]\nvote_duration = 3\n', "[defaults] vote_duration: got 3; accepted: a duration in quotes"),
    ('[scheduler]\nsweep_interval = 30\n', "[scheduler] sweep_interval: got 30"),
])
def test_a_wrong_type_names_the_key_and_the_accepted_forms(tmp_path, text, expected):
    with pytest.raises(ConfigError) as error:
        load_config(config_file(tmp_path, text))
    assert expected in str(error.value)


def test_an_unknown_key_is_refused_with_a_suggestion(tmp_path):
    with pytest.raises(ConfigError) as error:
        load_config(config_file(tmp_path, '[defaults]\nqourum = 5\n'))
    assert "[defaults] qourum: unknown key (did you mean quorum?)" in str(error.value)
    with pytest.raises(ConfigError) as error:
        load_config(config_file(tmp_path, '[defualts]\nquorum = 5\n'))
    assert "[defualts]: unknown section" in str(error.value)


def test_a_bad_file_stops_the_bot_with_a_message_not_a_traceback(tmp_path):
    path = config_file(tmp_path, '[defaults]\nquorum = [5]\n')
    result = run_cli("run", "--config", str(path), cwd=tmp_path)
    assert result.returncode == 2
    assert "Configuration problem:" in result.stderr and "[defaults] quorum: got [5]" in result.stderr
    assert "Traceback" not in result.stderr


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
