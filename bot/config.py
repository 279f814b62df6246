"""Configuration: a TOML file, overridden by environment variables.

`COMMONS_TELEGRAM__TOKEN=…` overrides `[telegram] token`, so secrets need
not sit in the file. Every key is documented in config.example.toml.

Values may be written in TOML's natural types (`quorum = 5`, `auto_draw = true`)
or as strings; [defaults] are stored in the canonical string form group
settings use. A bad file raises `ConfigError`, one line per problem, naming
the key and what it accepts.
"""

from __future__ import annotations

import difflib
import json
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, SecretStr, ValidationError, field_validator
from pydantic_core import PydanticCustomError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from bot.commands.args import ArgError
from bot.durations import DurationError, format_duration, parse_duration
from bot.governance.settings import SPECS
from bot.governance.voting import RULES


class ConfigError(ValueError):
    """A configuration the bot cannot start with; the message says what to change."""


def _problem(text: str) -> PydanticCustomError:
    return PydanticCustomError("config", "{problem}", {"problem": text})


def _shown(value: Any) -> str:
    """A value as it was written in the file, roughly (5, "5", [1], true)."""
    return json.dumps(value, ensure_ascii=False, default=str)[:60]


DURATION = 'a duration in quotes, like "3d" (units s, m, h, d, w, mo, y)'
ON_OFF = 'true or false (or "on", "off")'


def _duration(value: Any) -> str:
    if not isinstance(value, str):
        raise _problem(f"got {_shown(value)}; accepted: {DURATION}")
    try:
        return format_duration(parse_duration(value))
    except DurationError as error:
        raise _problem(f"{error}; accepted: {DURATION}") from None


Duration = Annotated[str, BeforeValidator(_duration)]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelt key must not be silently ignored


class DatabaseConfig(Section):
    url: str = "sqlite:///commons.db"


def _account(value: Any) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"[a-z0-9_-]{0,20}", value):
        raise _problem(f"got {_shown(value)}; accepted: a short name in quotes (a-z, 0-9, - and _, at most 20), "
                       'or "" for the first account')
    return value


# A second bot account of a platform on the same database needs a name of its own:
# its groups are kept apart as platform "telegram.<account>" (see README, several bot accounts).
Account = Annotated[str, BeforeValidator(_account)]


class MatrixConfig(Section):
    account: Account = ""
    homeserver: str
    user_id: str
    password: SecretStr = SecretStr("")
    access_token: SecretStr = SecretStr("")
    device_name: str = "Commons"
    store_path: str = "matrix-store"
    command_prefix: str = "!"
    allowed_inviters: list[str] = []  # user ids or homeservers; empty = anyone
    bots: list[str] = []  # other bots in the rooms: not members, not counted for quorum
    history_window: Duration = "10m"


class TelegramConfig(Section):
    account: Account = ""
    token: SecretStr
    mode: Literal["polling", "webhook"] = "polling"
    webhook_url: str = ""
    listen: str = "127.0.0.1"
    port: int = 8443
    secret_token: SecretStr = SecretStr("")
    base_url: str = ""
    history_window: Duration = "10m"


def platform_key(kind: str, account: str) -> str:
    """The platform name groups and actions carry: "telegram", or "telegram.<account>"."""
    return f"{kind}.{account}" if account else kind


class SchedulerConfig(Section):
    sweep_interval: Duration = "30s"


class OpsConfig(Section):
    """What the operator watches: health and metrics endpoints, and the log's format."""

    listen: str = "127.0.0.1"
    port: int = 0  # 0: no /livez, /readyz, /metrics endpoints
    log_format: Literal["text", "json"] = "text"


class WebConfig(Section):
    """The members' pages and calendar feeds (adapters/web): served on listen:port, linked as public_url."""

    listen: str = "127.0.0.1"
    port: int = 0  # 0: no members' page, no calendar feeds
    public_url: str = ""  # how members reach it, e.g. https://commons.example.org ("": http://listen:port)

    @field_validator("public_url")
    @classmethod
    def _address(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if value and not re.fullmatch(r"https?://[^\s/?#]+(/[^\s?#]*)?", value):
            raise _problem(f"got {_shown(value)}; accepted: an address in quotes, like "
                           '"https://commons.example.org", or "" for http://listen:port')
        return value


# Per [defaults] key: the TOML types taken besides a string, and the accepted forms errors name.
_FORMS: dict[str, tuple[tuple[type, ...], str]] = {
    "timezone": ((), 'a time zone name in quotes, like "Europe/Lisbon" or "UTC"'),
    "vote_duration": ((), DURATION),
    "rule": ((), ", ".join(f'"{rule}"' for rule in RULES)),
    "quorum": ((int,), 'a count (5 or "5") or a share of members ("40%")'),
    "mandate_warnings": ((list,), 'a list of durations, like ["7d", "1d"]'),
    "need_nudge_after": ((), DURATION),
    "audit_every": ((), DURATION),
    "propose_role": ((), '"anyone" or a role name in quotes'),
    "auto_draw": ((bool,), ON_OFF),
    "digest": ((), 'a weekday and time in quotes, like "mon 09:00", or "off"'),
    "audit_window": ((), DURATION),
    "audit_areas": ((list,), 'a list of areas, like ["food", "housing"]'),
    "audit_draw": ((bool,), ON_OFF + ', or "federation"'),
    "draw_window": ((), DURATION),
    "currency": ((), 'a three-letter currency code in quotes, like "EUR"'),
    "ledger_role": ((), '"anyone" or a role name in quotes'),
    "spend_limit": ((int,), 'a whole amount (200) or one in quotes with cents ("49.99"); 0: no limit'),
    "charter_rule": ((), ", ".join(f'"{rule}"' for rule in RULES)),
    "renewal_every": ((), 'a duration in quotes, like "1y" or "6mo", or "off"'),
    "assembly_every": ((), 'whole days, weeks or months in quotes, like "2w" or "1mo", or "off"'),
    "assembly_reminders": ((list,), 'a list of durations, like ["2d", "1h"], or "off"'),
    "rotation_prefers_new": ((bool,), ON_OFF),
    "language": ((), 'a language code in quotes, like "en", "es" or "pt_BR"'),
    "federation_rule": ((), '"majority", "two-thirds" or "consensus" (of the federation\'s groups)'),
    "split_at": ((int,), 'a number of members, like 150, or "off"'),
}
_LIST_SEPARATOR = {"mandate_warnings": " ", "audit_areas": ", ", "assembly_reminders": " "}


def _as_text(key: str, value: Any) -> str | None:
    """The setting's string form of a TOML value, or None when the key does not take its type."""
    natural = _FORMS[key][0]
    if isinstance(value, str):
        return value
    if isinstance(value, bool):  # checked before int: `quorum = true` is not a count
        return ("on" if value else "off") if bool in natural else None
    if isinstance(value, int) and int in natural:
        return str(value)
    if isinstance(value, list) and list in natural and all(isinstance(item, str) for item in value):
        return _LIST_SEPARATOR[key].join(value)
    return None


def setting_value(key: str, value: Any) -> str:
    """A [defaults] value in canonical form; raises a pydantic error naming what the key accepts."""
    accepted = _FORMS[key][1]
    text = _as_text(key, value)
    if text is None:
        raise _problem(f"got {_shown(value)}; accepted: {accepted}")
    try:
        return SPECS[key].canonical(text)
    except ArgError as error:
        raise _problem(f"{error}; accepted: {accepted}") from None


class DefaultsConfig(Section):
    model_config = ConfigDict(extra="forbid", validate_default=True)

    timezone: str = "UTC"
    vote_duration: str = "3d"
    rule: str = "majority"
    quorum: str = "0"
    mandate_warnings: str = "7d 1d"
    need_nudge_after: str = "24h"
    audit_every: str = "90d"
    propose_role: str = "anyone"
    auto_draw: str = "off"
    digest: str = "mon 09:00"
    audit_window: str = "7d"
    audit_areas: str = "food, housing, childcare, health, conflict resolution, money"
    audit_draw: str = "on"
    draw_window: str = "10m"
    currency: str = "EUR"
    ledger_role: str = "anyone"
    spend_limit: str = "0"
    charter_rule: str = "two-thirds"
    renewal_every: str = "1y"
    assembly_every: str = "off"
    assembly_reminders: str = "2d 1h"
    rotation_prefers_new: str = "on"
    language: str = "en"
    federation_rule: str = "majority"
    split_at: str = "150"

    @field_validator("*", mode="before")
    @classmethod
    def _canonical(cls, value: Any, info) -> str:
        return setting_value(info.field_name, value)

    def canonical(self) -> dict[str, str]:
        """Every default in the canonical form group settings use (validation already made them so)."""
        return {key: getattr(self, key) for key in SPECS}


class AppConfig(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="COMMONS_", env_nested_delimiter="__", extra="forbid")

    database: DatabaseConfig = DatabaseConfig()
    matrix: MatrixConfig | None = None
    telegram: TelegramConfig | None = None
    scheduler: SchedulerConfig = SchedulerConfig()
    defaults: DefaultsConfig = DefaultsConfig()
    ops: OpsConfig = OpsConfig()
    web: WebConfig = WebConfig()

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, env_settings, dotenv_settings,
                                   file_secret_settings) -> tuple[PydanticBaseSettingsSource, ...]:
        # Environment first: it overrides the file.
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls))


SECTIONS: dict[str, type[Section]] = {
    "database": DatabaseConfig, "matrix": MatrixConfig, "telegram": TelegramConfig,
    "scheduler": SchedulerConfig, "defaults": DefaultsConfig, "ops": OpsConfig,
    "web": WebConfig,
}


def _unknown(loc: tuple, value: Any) -> str:
    if len(loc) == 1:
        what = f"[{loc[0]}]: unknown section" if isinstance(value, dict) else f"{loc[0]}: unknown key outside a section"
        return f"{what}; the sections are " + ", ".join(f"[{name}]" for name in SECTIONS)
    section, key = loc[0], str(loc[-1])
    keys = list(SECTIONS[section].model_fields)
    guess = difflib.get_close_matches(key, keys, n=1)
    hint = f" (did you mean {guess[0]}?)" if guess else ""
    return f"[{section}] {key}: unknown key{hint}; the keys of [{section}] are {', '.join(keys)}"


def describe(error: ValidationError) -> list[str]:
    """One line per problem, `[section] key: what is wrong; accepted: …`, instead of pydantic's report."""
    lines = []
    for problem in error.errors():
        loc = problem["loc"]
        if problem["type"] == "extra_forbidden" and (len(loc) == 1 or loc[0] in SECTIONS):
            lines.append(_unknown(loc, problem['input']))
            continue
        where = f"[{loc[0]}]" + "".join(f"[{part}]" if isinstance(part, int) else f" {part}" for part in loc[1:])
        if problem["type"] == "config":
            lines.append(f"{where}: {problem['msg']}")
        elif problem["type"] == "missing":
            lines.append(f"{where}: missing; the section needs it")
        else:
            lines.append(f"{where}: got {_shown(problem['input'])}; {problem['msg'][:1].lower()}{problem['msg'][1:]}")
    return lines


def load_config(path: Path | None = None) -> AppConfig:
    """Read the TOML file (if any) and the environment; raises ConfigError saying what to fix."""
    if path is not None and not path.is_file():
        raise ConfigError(f"no configuration file at {path}")

    class FileConfig(AppConfig):
        model_config = SettingsConfigDict(toml_file=path)

    try:
        return FileConfig()
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path} is not valid TOML: {error}") from None
    except ValidationError as error:
        lines = describe(error)
        source = path or "the environment"
        if len(lines) == 1:
            raise ConfigError(f"{source}: {lines[0]}") from None
        raise ConfigError(f"{source}:\n  " + "\n  ".join(lines)) from None
