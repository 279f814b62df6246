"""Dates and times as members read them, and the log's checkpoint: shared by every area's rendering."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from bot import i18n
from bot.durations import humanize
from bot.i18n import _


def when(moment: datetime, zone: ZoneInfo) -> str:
    """`Fri 5 Dec 19:00 WET`: the day and time in the group's zone and language."""
    local = moment.astimezone(zone)
    return f"{i18n.moment(local)} {local.tzname()}"


def relative(moment: datetime, now: datetime) -> str:
    delta = moment - now
    if abs(delta) < timedelta(seconds=1):
        return _("now")
    if delta > timedelta(0):
        return _("in {duration}").format(duration=humanize(delta))
    return _("{duration} ago").format(duration=humanize(delta))


def checkpoint(head: str, prefix: str) -> str:
    """The group log's size and head hash in short (`1234:3f9a0c1b2d4e`): a copy the bot cannot take back."""
    return _("📒 Record checkpoint <code>{head}</code> — keep it: <code>{command}</code> shows the log, "
             "<code>commons-bot verify</code> checks an export against it.").format(head=head, command=f"{prefix}log")


# A cell a spreadsheet would run as a formula (CSV files the bot sends).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: object) -> object:
    """A spreadsheet must not run what a member typed: '=1+1' is written as "'=1+1"."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value
