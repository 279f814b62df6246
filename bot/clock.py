"""Time comes from a clock object so tests and the console move time instead of sleeping."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Protocol


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware, in UTC."""


class SystemClock:
    def now(self) -> datetime:
        return utcnow()


class OffsetClock:
    """Real time plus a shift that only grows: the console's simulated clock.

    Time keeps flowing (a 30s deadline passes in 30 real seconds) and
    `advance` jumps ahead (`:wait 3d`).
    """

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def now(self) -> datetime:
        return utcnow() + self.offset

    def advance(self, by: timedelta) -> None:
        self.offset += by


class ManualClock:
    """A clock that only moves when told to: deterministic tests and benchmarks."""

    def __init__(self, start: datetime | None = None) -> None:
        self.current = start or datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc)

    def now(self) -> datetime:
        return self.current

    def advance(self, by: timedelta) -> None:
        self.current += by
