"""Durations as people type them: `30s 15m 12h 3d 2w`, also combined (`1d12h`)."""

from __future__ import annotations

import re
from datetime import timedelta

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_PART = re.compile(r"(\d{1,6})([smhdw])")
_WHOLE = re.compile(r"(?:\d{1,6}[smhdw])+")
MAX_DURATION = timedelta(days=3660)


class DurationError(ValueError):
    pass


def parse_duration(text: str) -> timedelta:
    cleaned = text.strip().lower().replace(" ", "")
    if not _WHOLE.fullmatch(cleaned):
        raise DurationError(f"“{text}” is not a duration; write it like 30s, 15m, 12h, 3d or 2w")
    seconds = sum(int(n) * UNITS[unit] for n, unit in _PART.findall(cleaned))
    if seconds <= 0:
        raise DurationError("a duration must be longer than zero")
    result = timedelta(seconds=seconds)
    if result > MAX_DURATION:
        raise DurationError("a duration can be at most ten years")
    return result


def format_duration(value: timedelta) -> str:
    """The shortest exact form: 90 days → 90d, 36 hours → 1d12h, 7 days → 7d, 14 days → 2w."""
    seconds = int(value.total_seconds())
    if seconds <= 0:
        return "0s"
    parts = []
    for unit, size in sorted(UNITS.items(), key=lambda item: -item[1]):
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
        return plural(seconds, "second")
    if minutes < 60:
        return plural(minutes, "minute")
    if hours < 24:
        return plural(hours, "hour")
    return plural(round(seconds / 86400), "day")


def plural(count: int, unit: str) -> str:
    return f"{count} {unit}{'s' if count != 1 else ''}"
