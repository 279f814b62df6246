"""Configuration: a TOML file, overridden by environment variables.

`COMMONS_TELEGRAM__TOKEN=…` overrides `[telegram] token`, so secrets need
not sit in the file. Every key is documented in config.example.toml.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from bot.commands.args import ArgError
from bot.durations import DurationError, parse_duration
from bot.governance.settings import SPECS


class DatabaseConfig(BaseModel):
    url: str = "sqlite:///commons.db"


class MatrixConfig(BaseModel):
    homeserver: str
    user_id: str
    password: SecretStr = SecretStr("")
    access_token: SecretStr = SecretStr("")
    device_name: str = "Commons"
    store_path: str = "matrix-store"
    command_prefix: str = "!"
    allowed_inviters: list[str] = []  # user ids or homeservers; empty = anyone
    bots: list[str] = []  # other bots in the rooms: not members, not counted for quorum
    history_window: str = "10m"


class TelegramConfig(BaseModel):
    token: SecretStr
    mode: Literal["polling", "webhook"] = "polling"
    webhook_url: str = ""
    listen: str = "127.0.0.1"
    port: int = 8443
    secret_token: SecretStr = SecretStr("")
    base_url: str = ""
    history_window: str = "10m"


class SchedulerConfig(BaseModel):
    sweep_interval: str = "30s"

    @field_validator("sweep_interval")
    @classmethod
    def _valid_duration(cls, value: str) -> str:
        try:
            parse_duration(value)
        except DurationError as error:
            raise ValueError(str(error)) from None
        return value


class DefaultsConfig(BaseModel):
    timezone: str = "UTC"
    vote_duration: str = "3d"
    rule: str = "majority"
    quorum: str = "0"
    mandate_warnings: list[str] | str = ["7d", "1d"]
    need_nudge_after: str = "24h"
    audit_every: str = "90d"
    propose_role: str = "anyone"
    auto_draw: str | bool = "off"
    digest: str = "mon 09:00"
    audit_window: str = "7d"
    audit_areas: list[str] | str = ["food", "housing", "childcare", "health", "conflict resolution", "money"]
    audit_draw: str | bool = "on"

    def canonical(self) -> dict[str, str]:
        """Every default in the canonical form group settings use; raises ValueError when invalid."""
        values = self.model_dump()
        if isinstance(values["mandate_warnings"], list):
            values["mandate_warnings"] = " ".join(values["mandate_warnings"])
        if isinstance(values["audit_areas"], list):
            values["audit_areas"] = ", ".join(values["audit_areas"])
        for key in ("auto_draw", "audit_draw"):
            if isinstance(values[key], bool):
                values[key] = "on" if values[key] else "off"
        result = {}
        for key, spec in SPECS.items():
            try:
                result[key] = spec.canonical(str(values[key]))
            except ArgError as error:
                raise ValueError(f"[defaults] {key}: {error}") from None
        return result

    @field_validator("timezone", "vote_duration", "rule", "quorum", "need_nudge_after", "audit_every",
                     "propose_role", "digest", "audit_window")
    @classmethod
    def _valid(cls, value: str, info) -> str:
        try:
            SPECS[info.field_name].canonical(str(value))
        except ArgError as error:
            raise ValueError(str(error)) from None
        return value


class AppConfig(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="COMMONS_", env_nested_delimiter="__", extra="forbid")

    database: DatabaseConfig = DatabaseConfig()
    matrix: MatrixConfig | None = None
    telegram: TelegramConfig | None = None
    scheduler: SchedulerConfig = SchedulerConfig()
    defaults: DefaultsConfig = DefaultsConfig()

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, env_settings, dotenv_settings,
                                   file_secret_settings) -> tuple[PydanticBaseSettingsSource, ...]:
        # Environment first: it overrides the file.
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls))


def load_config(path: Path | None = None) -> AppConfig:
    """Read the TOML file (if any) and the environment."""
    if path is not None and not path.is_file():
        raise FileNotFoundError(f"no configuration file at {path}")

    class FileConfig(AppConfig):
        model_config = SettingsConfigDict(toml_file=path)

    return FileConfig()
