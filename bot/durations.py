"""Durations as people type them: `30s 15m 12h 3d 2w 6mo 1y`, also combined (`1d12h`, `1y6mo`).

`m` is minutes and `mo` months. A month is 30 days and a year 365 days: a duration is a
fixed length of time (a timedelta, stored as seconds), so "6mo" is 180 days from whenever
it starts, not the same date six calendar months later.
"""

from __future__ import annotations

import re
from datetime import timedelta

from bot.i18n import _, ngettext

DAY = 86400
MONTH, YEAR = 30 * DAY, 365 * DAY
UNITS = {"s": 1, "m": 60, "h": 3600, "d": DAY, "w": 7 * DAY, "mo": MONTH, "y": YEAR}
_UNIT = r"(?:mo|[smhdwy])"  # "mo" first: "6mo" is six months, never six minutes and a stray "o"
_PART = re.compile(rf"(\d{{1,6}})({_UNIT})")
_WHOLE = re.compile(rf"(?:\d{{1,6}}{_UNIT})+")
MAX_DURATION = timedelta(days=3660)
# Up to a quarter reads best in days or weeks (30d, 60d, 90d, 12w are how people write them);
# beyond it a whole number of months or years is shown as such (6mo, 1y, 1y6mo).
MONTHS_FROM = 90 * DAY


class DurationError(ValueError):
    pass


def parse_duration(text: str) -> timedelta:
    cleaned = text.strip().lower().replace(" ", "")
    if not _WHOLE.fullmatch(cleaned):
        raise DurationError(_("“{text}” is not a duration; write it like 30s, 15m, 12h, 3d, 2w, 6mo or 1y "
                              "(m is minutes, mo months)").format(text=text))
    seconds = sum(int(n) * UNITS[unit] for n, unit in _PART.findall(cleaned))
    if seconds <= 0:
        raise DurationError(_("a duration must be longer than zero"))
    result = timedelta(seconds=seconds)
    if result > MAX_DURATION:
        raise DurationError(_("a duration can be at most ten years"))
    return result


def format_duration(value: timedelta) -> str:
    """The shortest exact form, which parses back to the same value: 90 days → 90d, 36 hours → 1d12h,
    7 days → 7d, 14 days → 2w, 180 days → 6mo, 365 days → 1y, 545 days → 1y6mo, 390 days → 13mo,
    400 days → 400d."""
    seconds = int(value.total_seconds())
    if seconds <= 0:
        return "0s"
    if seconds > MONTHS_FROM and seconds % DAY == 0:
        years, rest = divmod(seconds, YEAR)
        if rest % MONTH == 0:  # a whole number of years and months, nothing left over
            return (f"{years}y" if years else "") + (f"{rest // MONTH}mo" if rest else "")
        if seconds % MONTH == 0:  # 13mo (390 days) is not 1y and whole months
            return f"{seconds // MONTH}mo"
    parts = []
    for unit in ("w", "d", "h", "m", "s"):
        size = UNITS[unit]
        if unit == "w" and (seconds % size or seconds < 2 * size):
            continue  # 10d reads better than 1w3d, and 7d is how people write a week
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


def humanize(value: timedelta) -> str:
    """Approximate, for people: '2 days', '3 hours' (59m59s reads as '1 hour', not '60 minutes')."""
    seconds = abs(int(value.total_seconds()))
    minutes = round(seconds / 60)
    hours = round(seconds / 3600)
    if seconds < 60:
        return ngettext("{count} second", "{count} seconds", seconds).format(count=seconds)
    if minutes < 60:
        return ngettext("{count} minute", "{count} minutes", minutes).format(count=minutes)
    if hours < 24:
        return ngettext("{count} hour", "{count} hours", hours).format(count=hours)
    days = round(seconds / 86400)
    return ngettext("{count} day", "{count} days", days).format(count=days)


def plural(count: int, unit: str) -> str:
    return f"{count} {unit}{'s' if count != 1 else ''}"
