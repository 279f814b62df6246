"""The console room: a group chat in the terminal.

The embedded default and the way a group rehearses its rules: type commands
as a member, `:as bob` to speak as someone else, `:wait 3d` to move the
simulated clock so deadlines fire as they would. It is an adapter like the
others: it turns typed lines into inbound events and prints outbound actions.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path

from bot.actions import Acknowledge, Action, DirectMessage, EditMessage, SendFile, SendImage, SendMessage
from bot.adapter import Sink
from bot.durations import DurationError, format_duration, parse_duration
from bot.events import ChatRef, CommandMessage, MemberJoined, UserRef
from bot.render.text import RichText

PLATFORM = "console"
ROOM = ChatRef(platform=PLATFORM, chat_id="room")
PRIVATE = "dm-"  # a member's private chat with the bot is "dm-<name>"
HELP = """Console room commands:
  :as NAME     speak as another member (they join the room)
  :wait 3d     move the simulated clock forward (30s 15m 12h 3d 2w 6mo 1y)
  :who         who is in the room
  :room NAME   go to another room (another group: federations), :room alone back to the first
  :dm TEXT     say TEXT to the bot privately, as the current member (e.g. :dm need "…" group=#1)
  :help        this text        :quit  leave
Everything else is sent to the room; bot commands start with ! (try !help)."""


class ConsoleAdapter:
    platform = PLATFORM
    can = frozenset({"send", "edit", "ack", "image", "file", "dm"})

    def __init__(self, write: Callable[[str], None], files_dir: Path | None = None,
                 show_edits: bool = False) -> None:
        self.write = write
        self.files_dir = files_dir
        self.show_edits = show_edits
        self._ids = itertools.count(1)
        self._sink: Sink | None = None

    async def start(self, sink: Sink) -> None:
        self._sink = sink

    async def stop(self) -> None:
        self._sink = None

    async def perform(self, action: Action, key: str | None = None) -> str | None:
        if isinstance(action, SendMessage):
            message_id = f"m{next(self._ids)}"
            private = action.chat.chat_id.startswith(PRIVATE)
            self._print(f"bot → {action.chat.chat_id[len(PRIVATE):]} (private)" if private else _bot_in(action.chat),
                        action.text)
            if action.choices:
                self.write("      " + " ".join(f"[{choice.label}]" for choice in action.choices))
            return message_id
        if isinstance(action, Acknowledge):
            self._print("bot ✓", action.text)
        elif isinstance(action, EditMessage):
            if self.show_edits:
                self._print(f"bot ✎ {action.message_id}", action.text)
        elif isinstance(action, DirectMessage):
            self._print(f"bot → {action.user.user_id} (private)", action.text)
        elif isinstance(action, (SendImage, SendFile)):
            self._print(_bot_in(action.chat), action.caption or RichText(html=""))
            self.write(f"      📎 {self._save(action.filename, action.data)}")
        return None

    def _print(self, who: str, text: RichText) -> None:
        lines = text.plain().split("\n")
        self.write(f"  {who} ▸ {lines[0]}")
        for line in lines[1:]:
            self.write(f"      {line}")

    def _save(self, filename: str, data: bytes) -> str:
        if self.files_dir is None:
            return f"{filename} ({len(data):,} bytes)"
        self.files_dir.mkdir(parents=True, exist_ok=True)
        path = self.files_dir / Path(filename).name
        path.write_bytes(data)
        return str(path)


def _bot_in(chat: ChatRef) -> str:
    """The bot's header in a room: "bot" in the first room, "bot [north]" in another."""
    return "bot" if chat == ROOM else f"bot [{chat.chat_id}]"


class ConsoleRoom:
    """Turns typed lines into events for a room (`:room` moves to another one, a group of its
    own); `:wait` moves the clock via `advance`."""

    def __init__(self, adapter: ConsoleAdapter, sink: Sink,
                 advance: Callable[[timedelta], Awaitable[None]], member: str = "alice") -> None:
        self.adapter = adapter
        self.sink = sink
        self.advance = advance
        self.member = member
        self.chat = ROOM
        self.members: set[tuple[ChatRef, str]] = set()
        self._events = itertools.count(1)
        self.session = uuid.uuid4().hex[:12]  # keeps event ids unique across console runs

    async def say(self, line: str, as_: str | None = None) -> bool:
        """Process one typed line; False when the user asked to quit."""
        if as_ is not None:
            self.member = as_
        line = line.rstrip("\n")
        if line.startswith(":"):
            return await self._meta(line[1:].strip())
        if not line.strip():
            return True
        await self._join(self.member)
        title = "Console room" if self.chat == ROOM else self.chat.chat_id
        await self.sink(CommandMessage(chat=self.chat, sender=self._user(self.member), sender_name=self.member,
                                       text=line, event_id=self._event_id(), chat_title=title))
        return True

    async def _meta(self, line: str) -> bool:
        verb, _, rest = line.partition(" ")
        verb, rest = verb.lower(), rest.strip()
        if verb in ("quit", "q", "exit"):
            return False
        if verb == "as" and rest:
            self.member = rest.split()[0][:40]
            self.adapter.write(f"  (you are now {self.member})")
            await self._join(self.member)
        elif verb == "wait" and rest:
            try:
                step = parse_duration(rest)
            except DurationError as error:
                self.adapter.write(f"  ({error})")
                return True
            self.adapter.write(f"  (… {format_duration(step)} pass …)")
            await self.advance(step)
        elif verb == "dm" and rest:
            await self.sink(CommandMessage(chat=ChatRef(platform=PLATFORM, chat_id=PRIVATE + self.member.lower()),
                                           sender=self._user(self.member), sender_name=self.member, text=rest,
                                           event_id=self._event_id(), is_private=True))
        elif verb == "room":
            name = rest.split()[0][:40].lower() if rest else ROOM.chat_id
            self.chat = ChatRef(platform=PLATFORM, chat_id=name)
            self.adapter.write(f"  (you are now in {name})")
        elif verb == "who":
            here = sorted(name for chat, name in self.members if chat == self.chat)
            self.adapter.write(f"  (in the room: {', '.join(here) or 'nobody yet'})")
        else:
            self.adapter.write(HELP)
        return True

    async def _join(self, name: str) -> None:
        if (self.chat, name) in self.members:
            return
        self.members.add((self.chat, name))
        room = "" if self.chat == ROOM else f"{self.chat.chat_id}-"
        await self.sink(MemberJoined(chat=self.chat, user=self._user(name), display_name=name,
                                     event_id=f"join-{self.session}-{room}{name}"))

    @staticmethod
    def _user(name: str) -> UserRef:
        return UserRef(platform=PLATFORM, user_id=name.lower())

    def _event_id(self) -> str:
        return f"console-{self.session}-{next(self._events)}"
