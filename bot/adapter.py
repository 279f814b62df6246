"""What every platform adapter offers the application. Adapters translate;
they never touch storage or governance rules."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

from bot.actions import Action
from bot.events import Inbound

Sink = Callable[[Inbound], Awaitable[None]]


class Adapter(Protocol):
    platform: str
    # Action kinds this platform can perform natively ("send", "edit", "ack", "image", "file", "dm");
    # the delivery layer falls back for the rest.
    can: frozenset[str]
    # Optional `paced = True`: messages may wait for a rate limit, so the delivery layer
    # sends them in the background, in order per chat.

    async def start(self, sink: Sink) -> None:
        """Connect and begin handing inbound events to `sink`."""

    async def stop(self) -> None:
        """Disconnect; return once no more events will be delivered."""

    async def perform(self, action: Action) -> str | None:
        """Carry out one action; return the platform message id when a message was posted.

        Raise on failure, so announcements stay queued and are retried."""
