"""The process's log lines: plain text, or one JSON object a line for a log collector.

Either way each line says which group, chat and event it was about when that is
known (`log_context`, kept in contextvars so it follows the task or thread doing
the work), and secrets that may slip into a message or a traceback (a bot token,
a database password, an access token) are masked before the line is written.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime, timezone
from types import MappingProxyType
from typing import Any, TextIO

FIELDS = ("group_id", "platform", "chat_id", "event_id")
_IDS: ContextVar[Mapping[str, Any]] = ContextVar("commons_log_ids", default=MappingProxyType({}))

MASK = "***"
_SECRETS = [
    (re.compile(r"\d{5,}:[A-Za-z0-9_-]{30,}"), MASK),  # a Telegram bot token (also inside an API URL)
    (re.compile(r"(://[^/\s:@]*):[^/\s@]+@"), rf"\1:{MASK}@"),  # scheme://user:password@host
    (re.compile(r"(access_token=)[^&\s\"']+", re.IGNORECASE), rf"\1{MASK}"),
    (re.compile(r"(Bearer\s+)[A-Za-z0-9._~+/=-]+", re.IGNORECASE), rf"\1{MASK}"),
]


def redact(text: str) -> str:
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return text


@contextmanager
def log_context(**ids: Any) -> Iterator[None]:
    """Within the block, log lines carry these ids (group_id, platform, chat_id, event_id;
    None: not known). Nested blocks add to the outer ones; leaving a block restores them."""
    unknown = set(ids) - set(FIELDS)
    if unknown:
        raise TypeError(f"log_context takes {', '.join(FIELDS)}, not {', '.join(sorted(unknown))}")
    token = _IDS.set({**_IDS.get(), **{key: value for key, value in ids.items() if value is not None}})
    try:
        yield
    finally:
        _IDS.reset(token)


class ContextFilter(logging.Filter):
    """Stamps each record with the ids in effect where it was logged (a handler's filters run in
    the logging thread, so a handler that formats later, in another thread, still sees them)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "log_ids"):
            record.log_ids = _IDS.get()
        return True


def _ids(record: logging.LogRecord) -> Mapping[str, Any]:
    return getattr(record, "log_ids", None) or {}


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:
        line = super().formatMessage(record)
        ids = _ids(record)
        return f"{line} [{' '.join(f'{key}={value}' for key, value in ids.items())}]" if ids else line

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **_ids(record),
        }
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exc"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        # Masked field by field, not on the JSON text, so a replacement cannot cut through an escape.
        entry = {key: redact(value) if isinstance(value, str) else value for key, value in entry.items()}
        return json.dumps(entry, ensure_ascii=False, default=str)


def setup_logging(level: str, fmt: str, stream: TextIO | None = None) -> logging.Handler:
    """Send every log record at `level` or above to `stream` (stderr) as text or JSON lines.
    Replaces the root logger's handlers; returns the one it installed."""
    formatters = {"text": TextFormatter, "json": JsonFormatter}
    if fmt not in formatters:
        raise ValueError(f"log format must be {' or '.join(formatters)}, not {fmt!r}")
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatters[fmt]())
    handler.addFilter(ContextFilter())
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    return handler
