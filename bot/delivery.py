"""Hands the core's actions to the right adapter, with fallbacks for what a
platform cannot do, and drains the announcement outbox.

Adapters whose messages can wait for a rate limit (Telegram: 20 messages a
minute per group) say `paced = True`. Their messages go out in the
background, in order per chat, so a reply waiting for the group's budget never
holds up the next member's vote; acknowledgements and edits are performed at
once (they are not messages, and edits are coalesced by the adapter).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from bot.actions import Acknowledge, Action, DirectMessage, SendMessage, platform_of
from bot.adapter import Adapter
from bot.core import Core
from bot.render.text import addressed

log = logging.getLogger(__name__)

CallCore = Callable[..., Awaitable[Any]]
IMMEDIATE = frozenset({"ack", "edit"})


class Delivery:
    def __init__(self, core: Core, adapters: Iterable[Adapter], call_core: CallCore) -> None:
        self.core = core
        self.adapters = {adapter.platform: adapter for adapter in adapters}
        self.call_core = call_core  # runs core methods on the core's worker thread
        self._queues: dict[tuple[str, str], list[Action]] = {}
        self._workers: dict[tuple[str, str], asyncio.Task] = {}

    async def perform(self, actions: Iterable[Action]) -> None:
        """Command replies: best effort, in order per chat; a failure is logged, not retried."""
        for action in actions:
            adapter = self.adapters.get(platform_of(action))
            if getattr(adapter, "paced", False) and action.kind not in IMMEDIATE:
                self._enqueue(action)
            else:
                await self._best_effort(action)

    async def _best_effort(self, action: Action) -> None:
        try:
            await self._perform(action)
        except Exception:
            log.exception("could not perform %s", action.kind)

    def _enqueue(self, action: Action) -> None:
        where = action.user.user_id if isinstance(action, DirectMessage) else action.chat.chat_id
        key = (platform_of(action), where)
        self._queues.setdefault(key, []).append(action)
        if key not in self._workers:
            self._workers[key] = asyncio.create_task(self._drain_chat(key))

    async def _drain_chat(self, key: tuple[str, str]) -> None:
        try:
            while self._queues.get(key):
                await self._best_effort(self._queues[key].pop(0))
        finally:
            self._queues.pop(key, None)
            self._workers.pop(key, None)

    async def drain(self) -> None:
        """Wait until every queued reply is out (before shutting down, and in tests)."""
        while self._workers:
            await asyncio.gather(*list(self._workers.values()), return_exceptions=True)

    async def flush_announcements(self) -> int:
        """Send every queued announcement; failures stay queued for the next sweep."""
        sent = 0
        pending = await self.call_core(self.core.pending_announcements, list(self.adapters))
        for announcement_id, action in pending:
            try:
                await self._perform(action)
            except Exception:
                log.exception("announcement %s not delivered; will retry", announcement_id)
                await self.call_core(self.core.announcement_failed, announcement_id)
                continue
            await self.call_core(self.core.announcement_sent, announcement_id)
            sent += 1
        return sent

    async def _perform(self, action: Action) -> None:
        adapter = self.adapters.get(platform_of(action))
        if adapter is None:
            raise LookupError(f"no adapter for platform {platform_of(action)!r}")
        action = self._fallback(adapter, action)
        if action is None:
            return
        try:
            message_id = await adapter.perform(action)
        except Exception:
            if not (isinstance(action, DirectMessage) and action.fallback_chat is not None):
                raise
            # The platform could not reach the member privately (e.g. no direct room could be opened).
            log.warning("direct message to %s failed; saying it in the group", action.user.user_id, exc_info=True)
            message_id = await adapter.perform(self._in_group(action))
        if isinstance(action, SendMessage) and action.track and message_id:
            await self.call_core(self.core.remember_message, action.chat, action.track, message_id)

    @staticmethod
    def _in_group(action: DirectMessage) -> SendMessage:
        return SendMessage(chat=action.fallback_chat, text=addressed(action.user, action.text))

    @staticmethod
    def _fallback(adapter: Adapter, action: Action) -> Action | None:
        if action.kind in adapter.can:
            return action
        if isinstance(action, Acknowledge):
            return SendMessage(chat=action.chat, text=action.text, reply_to=action.event_id)
        if isinstance(action, DirectMessage) and action.fallback_chat is not None:
            return Delivery._in_group(action)
        log.warning("%s cannot perform %s; dropped", adapter.platform, action.kind)
        return None

