"""Dates and times as members read them, and the log's checkpoint: shared by every area's rendering."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from bot.durations import humanize


def when(moment: datetime, zone: ZoneInfo) -> str:
    local = moment.astimezone(zone)
    clock = f"{local:%H:%M:%S}" if local.second else f"{local:%H:%M}"  # seconds only when they matter
    return f"{local:%a} {local.day} {local:%b} {clock} {local.tzname()}"


def relative(moment: datetime, now: datetime) -> str:
    delta = moment - now
    if abs(delta) < timedelta(seconds=1):
        return "now"
    return f"in {humanize(delta)}" if delta > timedelta(0) else f"{humanize(delta)} ago"


def checkpoint(head: str, prefix: str) -> str:
    """The group log's size and head hash in short (`1234:3f9a0c1b2d4e`): a copy the bot cannot take back."""
    return (f"📒 Record checkpoint <code>{head}</code> — keep it: <code>{prefix}log</code> shows the log, "
            f"<code>commons-bot verify</code> checks an export against it.")


# A cell a spreadsheet would run as a formula (CSV files the bot sends).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: object) -> object:
    """A spreadsheet must not run what a member typed: '=1+1' is written as "'=1+1"."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value
