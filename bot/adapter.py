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
    # sends them in the background, in order per chat. Optional `edit_delay` (seconds): how
    # long a tally edit waits for newer ones. Optional `acks_inline = True`: an event is
    # confirmed only after its acknowledgement had its first attempt (a Telegram button press
    # must be answered).

    async def start(self, sink: Sink) -> None:
        """Connect and begin handing inbound events to `sink`."""

    async def stop(self) -> None:
        """Disconnect; return once no more events will be delivered."""

    async def perform(self, action: Action, key: str | None = None) -> str | None:
        """Carry out one action; return the platform message id when a message was posted.

        Raise on failure: the action stays in the outbox and is retried (an adapter may say which
        errors are permanent with `is_permanent(error) -> bool`; those are not retried). `key` is
        stable for one outbox row across retries and restarts: a platform that deduplicates by a
        client transaction id uses it, so a resend after a crash is not shown twice."""
