"""Hands the core's actions to the right adapter, with fallbacks for what a
platform cannot do, and drains the announcement outbox."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from bot.actions import Acknowledge, Action, DirectMessage, SendMessage, platform_of
from bot.adapter import Adapter
from bot.core import Core
from bot.text import TextBuilder, join

log = logging.getLogger(__name__)

CallCore = Callable[..., Awaitable[Any]]


class Delivery:
    def __init__(self, core: Core, adapters: Iterable[Adapter], call_core: CallCore) -> None:
        self.core = core
        self.adapters = {adapter.platform: adapter for adapter in adapters}
        self.call_core = call_core  # runs core methods on the core's worker thread

    async def perform(self, actions: Iterable[Action]) -> None:
        """Command replies: best effort, in order; a failure is logged, not retried."""
        for action in actions:
            try:
                await self._perform(action)
            except Exception:
                log.exception("could not perform %s", action.kind)

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
        message_id = await adapter.perform(action)
        if isinstance(action, SendMessage) and action.track and message_id:
            await self.call_core(self.core.remember_message, action.chat, action.track, message_id)

    @staticmethod
    def _fallback(adapter: Adapter, action: Action) -> Action | None:
        if action.kind in adapter.can:
            return action
        if isinstance(action, Acknowledge):
            return SendMessage(chat=action.chat, text=action.text, reply_to=action.event_id)
        if isinstance(action, DirectMessage) and action.fallback_chat is not None:
            builder = TextBuilder()
            builder.line(builder.mention(action.user, "you"), ":")
            return SendMessage(chat=action.fallback_chat, text=join([builder.build(), action.text], " "))
        log.warning("%s cannot perform %s; dropped", adapter.platform, action.kind)
        return None

