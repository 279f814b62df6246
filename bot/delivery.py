"""Delivery: the outbox's one way out to the platforms.

Every action the core emits is already in the outbox (same transaction as its
effects) when it reaches this module; here it is performed and then marked
sent. Nothing is kept only in memory: a crash leaves unsent rows, and `pull`
picks them up at the next start.

- **Order per chat.** Each chat (and each member's private chat) is a lane,
  worked through in order by one task. Acknowledgements have a lane of their
  own per chat: a reaction must not wait behind replies held by a group's
  message budget (Telegram: 20 a minute).
- **Retries.** A failed action is retried in place with growing pauses, so
  the chat's order holds; after `max_attempts`, or at once for an error the
  platform says is permanent (the bot was removed, the message is refused),
  it is marked failed with the reason and the lane moves on.
- **Coalesced edits.** The outbox keeps only the newest pending edit of a
  message; an edit waits `edit_delay` (the adapter's) before it goes, so a
  burst of votes becomes a few edits of the tally.
- **Group commit.** Deliveries are marked sent in batches: whatever finished
  while the previous batch was being written.

Every database call goes through `call_core`, one worker thread, in order;
`pull` relies on that (see `_accept`).
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from bot.actions import (
    Acknowledge,
    Action,
    DirectMessage,
    EditMessage,
    Outgoing,
    SendImage,
    SendMessage,
    lane_of,
    platform_of,
    target_of,
)
from bot.adapter import Adapter
from bot.chart_worker import ChartWorker
from bot.core import Core
from bot.events import platform_kind
from bot.metrics import DELIVERY_RETRIES
from bot.render.text import addressed

log = logging.getLogger(__name__)

CallCore = Callable[..., Awaitable[Any]]
Lane = tuple[str, str]
TRACKED_MEMORY = 10_000  # platform ids of tracked messages kept in memory (the database has them all)


class Delivery:
    def __init__(self, core: Core, adapters: Iterable[Adapter], call_core: CallCore, *,
                 max_attempts: int = 8, first_pause: float = 1.0, longest_pause: float = 60.0) -> None:
        self.core = core
        self.adapters = {adapter.platform: adapter for adapter in adapters}
        self.call_core = call_core
        self.max_attempts = max_attempts
        self.first_pause, self.longest_pause = first_pause, longest_pause
        self._open: set[str] = set()  # platforms whose adapter can perform actions
        self._known: set[int] = set()  # outbox ids queued or on their way, until marked in the database
        self._lanes: dict[Lane, deque[Outgoing]] = {}
        self._workers: dict[Lane, asyncio.Task] = {}
        self._edits: dict[str, Outgoing] = {}  # target → newest pending edit
        self._edit_timers: dict[str, asyncio.Task] = {}
        self._waiters: dict[int, asyncio.Future] = {}
        self._finished: list[int] = []
        self._tracked: list[tuple[Any, str, str]] = []
        self._marker: asyncio.Task | None = None
        self._message_ids: OrderedDict[str, str] = OrderedDict()  # target → platform message id
        self.charts = ChartWorker()  # images described by their figures are drawn just before they go

    # what the runtime calls -------------------------------------------------------------------------

    async def open(self, platform: str) -> None:
        """The platform's adapter is up: start working through its lanes (for a platform that
        is not paced, return once what was queued for it had its first attempt)."""
        if platform in self._open:
            return
        self._open.add(platform)
        queued = [item for lane, items in self._lanes.items() if lane[0] == platform for item in items]
        for lane in list(self._lanes):
            if lane[0] == platform:
                self._wake(lane)
        for target, item in list(self._edits.items()):
            if platform_of(item.action) == platform:
                self._arm_edit(target)
        await self._wait_first_attempts(queued)

    async def submit(self, items: Iterable[Outgoing]) -> None:
        """Deliver what one event caused. Returns once the first attempt of each quiet
        acknowledgement is over where the adapter asks (`acks_inline`: a Telegram button press
        must be answered) — and of everything, for platforms that are not paced (the console
        prints its replies before the next line)."""
        await self._queue_and_wait(items)

    async def pull(self, page: int = 500) -> int:
        """Queue every undelivered action in the outbox (after a restart, and after due work), a page
        at a time: after a long downtime there may be tens of thousands, and all of them go out now
        rather than one page per sweep."""
        accepted, after = 0, 0
        while True:
            rows = await self.call_core(self.core.pending_outbox, list(self.adapters), page, after)
            accepted += await self._queue_and_wait(rows)
            if len(rows) < page:
                return accepted
            after = rows[-1].id

    async def _queue_and_wait(self, items: Iterable[Outgoing]) -> int:
        accepted = [item for item in items if self._accept(item)]
        await self._wait_first_attempts(accepted)
        return len(accepted)

    async def _wait_first_attempts(self, items: list[Outgoing]) -> None:
        waits = [self._waiters.setdefault(item.id, asyncio.get_running_loop().create_future())
                 for item in items if self._awaited(item.action)]
        if waits:
            await asyncio.gather(*waits)

    async def drain(self, timeout: float = 15.0) -> None:
        """Deliver what is queued, pending edits at once (before stopping, and in tests). Whatever
        is still waiting after `timeout` (a platform that keeps failing) stays in the outbox."""
        for target in list(self._edit_timers):
            self._edit_timers.pop(target).cancel()
            self._edit_now(target)
        busy = [*self._workers.values(), *([self._marker] if self._marker else [])]
        if not busy:
            return
        done, pending = await asyncio.wait(busy, timeout=timeout)
        for task in pending:
            task.cancel()
        if pending:
            log.warning("%d chats still had actions to deliver; they stay in the outbox", len(pending))
            await asyncio.gather(*pending, return_exceptions=True)
            self._lanes.clear()
            for item_id in list(self._waiters):
                self._settle(item_id)
        if self._workers or self._marker:
            await self.drain(timeout=timeout)

    async def close(self) -> None:
        """Stop delivering; what is not out yet stays in the outbox. Finished ones are marked."""
        self._open.clear()
        for task in [*self._workers.values(), *self._edit_timers.values()]:
            task.cancel()
        await asyncio.gather(*self._workers.values(), *self._edit_timers.values(), return_exceptions=True)
        self._workers.clear()
        self._edit_timers.clear()
        if self._marker is not None:
            await self._marker
        for item_id in list(self._waiters):
            self._settle(item_id)
        self.charts.close()

    # queueing ---------------------------------------------------------------------------------

    def _accept(self, item: Outgoing) -> bool:
        """Queue an item once. `pull` may return an id a lane has just delivered: it stays in
        `_known` until its mark is committed, and the mark is committed on the core's single
        worker thread after the `pull` query that saw it, whose result is handled first."""
        if item.id in self._known:
            return False
        self._known.add(item.id)
        action = item.action
        if isinstance(action, EditMessage) and self._edit_delay(action) > 0:
            self._queue_edit(target_of(action), item)
        else:
            self._enqueue(item)
        return True

    def _enqueue(self, item: Outgoing) -> None:
        lane = self._lane(item.action)
        self._lanes.setdefault(lane, deque()).append(item)
        self._wake(lane)

    @staticmethod
    def _lane(action: Action) -> Lane:
        platform, where = lane_of(action)
        return (platform, where + "#ack") if action.kind == "ack" else (platform, where)

    def _wake(self, lane: Lane) -> None:
        if lane[0] in self._open and lane not in self._workers and self._lanes.get(lane):
            self._workers[lane] = asyncio.create_task(self._work(lane), name=f"deliver {lane}")

    async def _work(self, lane: Lane) -> None:
        queue = self._lanes[lane]
        try:
            while queue:
                await self._deliver(queue[0])
                queue.popleft()
        finally:
            self._workers.pop(lane, None)
            if not queue:
                self._lanes.pop(lane, None)

    def _awaited(self, action: Action) -> bool:
        """Is an action's first attempt waited for? Not on a closed platform, nor a deferred edit."""
        if platform_of(action) not in self._open or (action.kind == "edit" and self._edit_delay(action) > 0):
            return False
        if action.kind == "ack":
            return bool(getattr(self._adapter(action), "acks_inline", False)) or not self._paced(action)
        return not self._paced(action)

    def _adapter(self, action: Action) -> Adapter | None:
        return self.adapters.get(platform_of(action))

    def _paced(self, action: Action) -> bool:
        return bool(getattr(self._adapter(action), "paced", False))

    def _edit_delay(self, action: Action) -> float:
        return float(getattr(self._adapter(action), "edit_delay", 0.0))

    # edits -----------------------------------------------------------------------------------------

    def _queue_edit(self, target: str, item: Outgoing) -> None:
        older = self._edits.get(target)
        self._edits[target] = item
        if older is not None:  # superseded: the outbox row is already gone
            self._settle(older.id)
            self._known.discard(older.id)
        if platform_of(item.action) in self._open and target not in self._edit_timers:
            self._arm_edit(target)

    def _arm_edit(self, target: str) -> None:
        delay = self._edit_delay(self._edits[target].action)
        self._edit_timers[target] = asyncio.create_task(self._edit_later(target, delay))

    async def _edit_later(self, target: str, delay: float) -> None:
        await asyncio.sleep(delay)
        self._edit_timers.pop(target, None)  # an edit queued from now on needs a timer of its own
        self._edit_now(target)

    def _edit_now(self, target: str) -> None:
        """Hand the newest edit to its chat's lane, so it follows the message it changes."""
        item = self._edits.pop(target, None)
        if item is not None:
            self._enqueue(item)

    # performing one action ------------------------------------------------------------------------

    async def _deliver(self, item: Outgoing) -> None:
        while True:
            try:
                action = await self._resolve(item.action)
                message_id = await self._perform(action, item.key) if action is not None else None
            except Exception as error:
                adapter = self._adapter(item.action)
                permanent = bool(getattr(adapter, "is_permanent", lambda _: False)(error))
                attempts = await self.call_core(self.core.delivery_failed, item.id, _describe(error), permanent,
                                                self.max_attempts)
                if permanent or attempts >= self.max_attempts:
                    log.error("gave up on %s #%d to %s after %s: %s", item.action.kind, item.id,
                              lane_of(item.action), "a permanent error" if permanent else f"{attempts} attempts",
                              _describe(error))
                    self._settle(item.id)
                    self._known.discard(item.id)
                    return
                for waiting in self._lanes.get(self._lane(item.action), ()):
                    self._settle(waiting.id)  # nobody waits for retries, nor for what queues behind them
                pause = min(self.longest_pause, self.first_pause * 2 ** (attempts - 1))
                # Labelled like the adapters' metrics: "telegram", not a second account's "telegram.<account>".
                DELIVERY_RETRIES.labels(platform_kind(platform_of(item.action))).inc()
                log.warning("%s #%d not delivered (attempt %d): %s; retrying in %.0f s", item.action.kind,
                            item.id, attempts, _describe(error), pause)
                await asyncio.sleep(pause)
                continue
            self._finish(item, message_id)
            return

    async def _resolve(self, action: Action) -> Action | None:
        """An edit names its message by `track` until the message is out; find its platform id."""
        if not isinstance(action, EditMessage) or action.message_id:
            return action
        target = target_of(action)
        message_id = self._message_ids.get(target) or await self.call_core(
            self.core.tracked_message, action.chat, action.track)
        if message_id is None:
            if await self.call_core(self.core.awaits_send, target):
                raise _NotYet(f"the message {action.track} is not sent yet")
            log.info("edit of %s dropped: that message was never sent", action.track)
            return None
        return action.model_copy(update={"message_id": message_id})

    async def _perform(self, action: Action, key: str) -> str | None:
        if isinstance(action, SendImage) and action.chart is not None and not action.data:
            action = action.model_copy(update={"data": await self.charts.draw(action.chart)})
        adapter = self._adapter(action)
        if adapter is None:
            raise LookupError(f"no adapter for platform {platform_of(action)!r}")
        action = self._fallback(adapter, action)
        if action is None:
            return None
        try:
            return await adapter.perform(action, key=key)
        except Exception:
            if not (isinstance(action, DirectMessage) and action.fallback_chat is not None):
                raise
            # The platform could not reach the member privately (e.g. no direct room could be opened).
            log.warning("direct message to %s failed; saying it in the group", action.user.user_id, exc_info=True)
            return await adapter.perform(self._in_group(action), key=key + ".group")

    @staticmethod
    def _in_group(action: DirectMessage) -> SendMessage:
        return SendMessage(chat=action.fallback_chat, text=addressed(action.user, action.fallback_text or action.text))

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

    # marking sent ----------------------------------------------------------------------------------

    def _finish(self, item: Outgoing, message_id: str | None) -> None:
        action = item.action
        if isinstance(action, SendMessage) and action.track and message_id:
            self._remember(target_of(action), message_id)
            self._tracked.append((action.chat, action.track, message_id))
        self._finished.append(item.id)
        self._settle(item.id)
        if self._marker is None:
            self._marker = asyncio.create_task(self._mark_finished())

    def _remember(self, target: str, message_id: str) -> None:
        self._message_ids[target] = message_id
        self._message_ids.move_to_end(target)
        while len(self._message_ids) > TRACKED_MEMORY:
            self._message_ids.popitem(last=False)

    async def _mark_finished(self) -> None:
        """Mark delivered actions sent, a batch per transaction: whatever finished meanwhile."""
        try:
            while self._finished:
                ids, tracked = self._finished, self._tracked
                self._finished, self._tracked = [], []
                await self.call_core(self.core.delivered, ids, tracked)
                self._known.difference_update(ids)
        finally:
            self._marker = None

    def _settle(self, item_id: int) -> None:
        waiter = self._waiters.pop(item_id, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


class _NotYet(Exception):
    """An edit whose message is still on its way: retried like a failed attempt."""


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"[:1000]
