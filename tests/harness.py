"""Drive the real core through the console room, errbot-style: say a line,
get back what the bot printed. Time is a ManualClock moved by `wait`."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import inspect, select, text

from bot import charts
from bot.actions import Action, load_action
from bot.app import ConsoleSession
from bot.clock import ManualClock
from bot.config import DefaultsConfig
from bot.durations import parse_duration
from storage.models import OutboxItem

START = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)  # a Monday


class Room:
    def __init__(self, database_url: str, clock: ManualClock | None = None,
                 defaults: DefaultsConfig | None = None, show_edits: bool = False, files_dir=None) -> None:
        self.clock = clock or ManualClock(START)
        self.output: list[str] = []
        self.session = ConsoleSession(database_url, self.output.append, clock=self.clock, defaults=defaults,
                                      show_edits=show_edits, sweep_interval=timedelta(hours=1), files_dir=files_dir)

    async def __aenter__(self) -> Room:
        await self.start()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.stop()

    async def start(self) -> list[str]:
        mark = len(self.output)
        await self.session.start()
        return self.output[mark:]

    async def stop(self) -> None:
        await self.session.stop()

    async def say(self, line: str, as_: str | None = None, room: str | None = None) -> str:
        """What the bot printed in answer to one line, as text (`room=`: said in that room, a group
        of its own, which stays the current room; "room" is the first one)."""
        mark = len(self.output)
        if room is not None:
            await self.session.room.say(f":room {room}")
            mark = len(self.output)
        await self.session.room.say(line, as_=as_)
        return "\n".join(self.output[mark:])

    async def wait(self, duration: str) -> str:
        mark = len(self.output)
        parse_duration(duration)  # a typo in a test should fail loudly, not print a hint
        await self.session.room.say(f":wait {duration}")
        return "\n".join(self.output[mark:])

    @property
    def core(self):
        return self.session.core


async def gather(room: Room, names: list[str]) -> None:
    """Members the bot knows: each says something in the room."""
    for name in names:
        await room.say("!proposals", as_=name)


def recorded(room: Room, kind: str) -> list[Action]:
    """The actions of one kind (file, image …) the bot recorded in its outbox, oldest first."""
    with room.core.db.transaction() as session:
        return [load_action(row) for row in session.scalars(
            select(OutboxItem.action).where(OutboxItem.kind == kind).order_by(OutboxItem.id))]


def image_of(action) -> bytes:
    """An image action's PNG: drawn here from its figures when the outbox holds a chart (the
    delivery layer draws it the same way, in its chart process)."""
    return charts.draw(action.chart) if action.chart is not None else action.data


def messages(output: str) -> list[str]:
    """Split console output into the bot's messages, each with its header line."""
    found: list[str] = []
    for line in output.split("\n"):
        if line.startswith("  bot"):
            found.append(line)
        elif line.startswith("      ") and found:
            found[-1] += "\n" + line
    return found


def group_messages(output: str) -> list[str]:
    return [m for m in messages(output) if "(private)" not in m.split("\n")[0]]


def in_room(output: str, room: str) -> list[str]:
    """The bot's messages posted in one room ("room" is the first one)."""
    header = "  bot ▸" if room == "room" else f"  bot [{room}] ▸"
    return [m for m in messages(output) if m.startswith(header)]


def private_to(output: str, name: str) -> list[str]:
    return [m for m in messages(output) if m.startswith(f"  bot → {name} (private)")]


def rows_mentioning(room: Room, needle: str) -> dict[str, int]:
    """Every table with a text value containing the needle (any case), and how many rows: where a
    name or words that must stay private are kept."""
    found: dict[str, int] = {}
    with room.core.db.engine.connect() as connection:
        for table in inspect(connection).get_table_names():
            columns = [c["name"] for c in inspect(connection).get_columns(table)]
            rows = connection.execute(text(f'SELECT {", ".join(f"{chr(34)}{c}{chr(34)}" for c in columns)} '
                                           f'FROM "{table}"')).all()
            hits = sum(1 for row in rows if any(isinstance(value, str) and needle in value.lower() for value in row))
            if hits:
                found[table] = hits
    return found
