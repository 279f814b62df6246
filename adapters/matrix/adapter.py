"""Matrix: matrix-nio translating between sync responses and the core's events
and actions. Every Matrix quirk lives in this package:

- commands start with a configurable prefix (`!`) in rooms; in a direct room
  everything the member writes is for the bot. Pills are read as user ids.
- the bot answers with `m.notice` (bots do not notify like people), HTML in
  `formatted_body`, replies point at the command, mentions are pills listed in
  `m.mentions`;
- one-tap votes are reactions: the card shows which emoji means what and the
  bot seeds them, so a member taps one. A later reaction replaces an earlier
  vote; redacting one's own reaction takes the vote back. Reactions render in
  every client (Element Web, Android, iOS, Element X, FluffyChat…), are edited
  nowhere, and never hide the official tally — which is the edited card;
- a secret ballot is cast in the member's (encrypted) direct room by typing
  `vote N yes`, never by a reaction: a reaction's key travels in the clear, even
  in an encrypted room. Nothing written in a direct room is ever logged (nor
  what nio logs of the events it parses);
- a typed `!vote` is acknowledged with a ✅ reaction on the command; tally
  edits (`m.replace`) are coalesced by the delivery layer;
- every event the bot sends carries a transaction id derived from its outbox
  row, so a send repeated after a crash is recognised by the homeserver and
  not shown twice;
- encrypted rooms work through nio's e2e support; keys live in `store_path`;
- the sync token is saved only after a whole batch was applied: every event
  handed to the core (which commits before it returns), a `limited` batch's gap
  fetched, undecryptable events stored until their key comes. When applying
  fails (the database is down), the batch is synced again from the saved token;
  events older than `history_window` (sent while the bot was away) are not
  acted on;
- network errors and homeserver restarts: nio retries with backoff, and 429s
  wait for `retry_after_ms`.
"""

from __future__ import annotations

import asyncio
import io
import itertools
import logging
import struct
import time
import traceback
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from nio import (
    AsyncClient,
    AsyncClientConfig,
    ErrorResponse,
    Event,
    InviteMemberEvent,
    JoinError,
    LoginResponse,
    MatrixRoom,
    MegolmEvent,
    ReactionEvent,
    RedactionEvent,
    RoomCreateResponse,
    RoomMemberEvent,
    RoomMessagesResponse,
    RoomMessageText,
    RoomPreset,
    RoomSendResponse,
    SyncResponse,
    UploadResponse,
    WhoamiResponse,
)

from adapters.matrix.html import edit_content, message_content, read_text
from adapters.matrix.state import AdapterState, Login, VoteReaction
from bot import i18n
from bot.actions import Acknowledge, Action, Choice, DirectMessage, EditMessage, SendFile, SendImage, SendMessage
from bot.adapter import Sink
from bot.events import ChatRef, ChoiceMade, CommandMessage, Inbound, MemberCount, MemberJoined, MemberLeft, UserRef
from bot.i18n import _
from bot.metrics import RATE_LIMITED, RECEIVE_ERRORS
from bot.render.text import RichText, addressed, escape, join, rich

log = logging.getLogger(__name__)

PLATFORM = "matrix"
CORE_PREFIX = "!"  # how the core reads commands; the room's own prefix is translated
ACK_REACTION = "✅"
JOINED = "join"
GONE = ("leave", "ban")
DECRYPT_PATIENCE = 120.0  # seconds to wait for a room key that has not arrived yet
REACTION_MEMORY = 400 * 86400.0
THREAD_MEMORY = 1000
# Presence is noise for a bot. A room busier than one sync's timeline comes back `limited`; the gap is fetched.
SYNC_FILTER = {"presence": {"not_types": ["*"]}, "room": {"timeline": {"limit": 100}}}
GAP_PAGE, GAP_LIMIT = 100, 5000  # events fetched per request, and at most, to fill a gap in a sync


# Refusals a retry cannot change: the bot may not post there, the room or event is gone, the event is refused.
PERMANENT_ERRORS = frozenset({"M_FORBIDDEN", "M_NOT_FOUND", "M_TOO_LARGE", "M_BAD_JSON", "M_NOT_JSON",
                              "M_UNKNOWN_ROOM", "M_INVALID_PARAM", "NOT_IN_ROOM"})


# The outbox row being performed: its key and how many events were sent for it (see `perform`).
_SEND_KEY: ContextVar[tuple[str, Iterator[int]] | None] = ContextVar("matrix_send_key", default=None)
_SYNCING: ContextVar[bool] = ContextVar("matrix_syncing", default=False)  # in the sync request (not a send)


class _Client(AsyncClient):
    """nio's client, counting the failed syncs nio retries by itself (timeouts, no connection): with
    `max_timeouts=None` a sync never fails while the homeserver is unreachable, it just keeps trying."""

    async def get_timeout_retry_wait_time(self, got_timeouts: int) -> float:
        if _SYNCING.get():
            RECEIVE_ERRORS.labels(PLATFORM).inc()
        return await super().get_timeout_retry_wait_time(got_timeouts)


def _count_rate_limited(response: ErrorResponse) -> None:
    # nio runs response callbacks on its own only for a 429 (M_LIMIT_EXCEEDED) it is about to wait
    # out and retry: this adapter calls sync(), not sync_forever(), which would run them for every sync.
    RATE_LIMITED.labels(PLATFORM).inc()


class NioContentFilter(logging.Filter):
    """matrix-nio logs what it parses: every response at DEBUG, and an event that fails validation, with
    its content, as a warning. For a direct room that is what a member wrote privately (a secret ballot,
    decrypted): those records keep their first words only."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = str(record.msg)
        if message.startswith("Validating response schema"):
            return False
        if message.startswith("Error validating"):
            record.msg, record.args = message.partition(":")[0] + " (its content is not logged)", ()
        return True


NIO_CONTENT_FILTER = NioContentFilter()
NIO_CONTENT_LOGGERS = ("nio.events.misc", "nio.responses")  # a logger's filters see only its own records


def install_log_filter() -> None:
    for name in NIO_CONTENT_LOGGERS:
        logger = logging.getLogger(name)
        if NIO_CONTENT_FILTER not in logger.filters:
            logger.addFilter(NIO_CONTENT_FILTER)


class MatrixError(RuntimeError):
    """The homeserver refused a request (after nio's own retries)."""

    def __init__(self, message: str, status_code: str | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


def _ok(response: Any, kind: type) -> Any:
    if not isinstance(response, kind):
        raise MatrixError(f"{type(response).__name__}: {getattr(response, 'message', response)}",
                          getattr(response, "status_code", None))
    return response


@dataclass
class _Undecrypted:
    room_id: str
    event: MegolmEvent
    since: float = field(default_factory=time.time)  # wall clock: it is kept across restarts


class _NotApplied(Exception):
    """The core could not apply an event (its database is unreachable): the batch is not confirmed."""


class MatrixAdapter:
    platform = PLATFORM
    can = frozenset({"send", "edit", "ack", "image", "file", "dm"})
    paced = True  # a reply waiting on a 429 must not hold up the next member's vote

    def __init__(self, homeserver: str, user_id: str, *, password: str = "", access_token: str = "",
                 device_name: str = "Commons", store_path: Path | str = "matrix-store", command_prefix: str = "!",
                 allowed_inviters: Iterable[str] = (), bots: Iterable[str] = (),
                 history_window: timedelta = timedelta(minutes=10), edit_delay: float = 1.0,
                 sync_timeout_ms: int = 30_000, max_backoff: float = 30.0, platform: str = PLATFORM) -> None:
        install_log_filter()
        self.platform = platform  # "matrix", or "matrix.<account>" for another bot account
        self.homeserver, self.user_id = homeserver.rstrip("/"), user_id
        self.password, self.access_token, self.device_name = password, access_token, device_name
        self.store_path = Path(store_path)
        self.prefix = command_prefix
        self.allowed_inviters = [entry.strip() for entry in allowed_inviters if entry.strip()]
        self.bots = set(bots) | {user_id}
        self.history_window = history_window
        self.edit_delay = edit_delay
        self.sync_timeout_ms = sync_timeout_ms
        self.max_backoff = max_backoff
        self.client: AsyncClient | None = None
        self.state: AdapterState | None = None
        self.synced = asyncio.Event()  # set after each handled sync (tests wait on it)
        self._sink: Sink | None = None
        self._sync_task: asyncio.Task | None = None
        self._in_sync = False
        self._stopping = False
        self._member_counts: dict[str, int] = {}
        # Rooms whose membership changed in the batch being handled: True when someone left.
        self._membership_changed: dict[str, bool] = {}
        self._undecrypted: dict[str, _Undecrypted] = {}  # by event id; also in `state`, for restarts
        self._failing: dict[str, float] = {}  # event id -> when the core first failed to apply it
        self._have_state = False  # nio keeps no room state across restarts: the first sync asks for it all
        # Rooms just joined or created, until a sync brings their state.
        self._arriving: dict[str, asyncio.Event] = {}
        # Commands written in a thread get their answer in that thread (a cache: losing it only
        # means the answer lands in the main timeline).
        self._threads: OrderedDict[str, str] = OrderedDict()

    # lifecycle -----------------------------------------------------------------------------

    async def start(self, sink: Sink) -> None:
        self._sink = sink
        self._stopping = False
        self.state = AdapterState(self.store_path)
        self.state.prune_reactions(REACTION_MEMORY)
        self._have_state = False
        self._undecrypted = {}
        for room_id, source, first_seen in self.state.undecrypted():
            event = MegolmEvent.from_dict(source)
            if isinstance(event, MegolmEvent):
                event.room_id = room_id
                self._undecrypted[event.event_id] = _Undecrypted(room_id, event, first_seen)
            else:
                self.state.forget_undecrypted(source.get("event_id", ""))
        config = AsyncClientConfig(encryption_enabled=True, store_sync_tokens=False, max_limit_exceeded=20,
                                   max_timeouts=None, max_timeout_retry_wait_time=self.max_backoff,
                                   backoff_factor=0.25)
        self.client = _Client(self.homeserver, self.user_id, store_path=str(self.store_path), config=config)
        self.client.add_response_callback(_count_rate_limited, ErrorResponse)
        await self._log_in()
        if self.client.should_upload_keys:
            await self.client.keys_upload()
        # The first sync (full state: nio keeps no room state across restarts) is handled
        # before start returns, so events queued while the bot was away come first.
        try:
            await self._sync_once(first=True)
        except Exception:
            log.exception("the first Matrix sync failed; retrying")  # from the same saved token
        self._sync_task = asyncio.create_task(self._sync_forever())

    async def stop(self) -> None:
        self._stopping = True
        if self._sync_task is not None:
            if self._in_sync:
                self._sync_task.cancel()  # waiting on the long poll: nothing half-done
            try:
                await asyncio.wait_for(asyncio.shield(self._sync_task), timeout=30)
            except (asyncio.CancelledError, asyncio.TimeoutError):
                self._sync_task.cancel()
        if self.client is not None:
            await self.client.close()
        if self.state is not None:
            self.state.close()

    async def _log_in(self) -> None:
        """Reuse the stored device; otherwise log in once and store the device and token."""
        client, stored = self.client, self.state.login(self.user_id)
        if stored is not None:
            client.restore_login(stored.user_id, stored.device_id, stored.access_token)
            if isinstance(await client.whoami(), WhoamiResponse):
                return
            log.warning("the stored Matrix access token was refused; logging in again")
        if self.access_token:
            client.access_token = self.access_token
            who = _ok(await client.whoami(), WhoamiResponse)
            if not who.device_id:
                raise MatrixError("the access token has no device; log in with a password once instead")
            login = Login(self.user_id, who.device_id, self.access_token)
        elif self.password:
            if stored is not None:
                client.device_id = stored.device_id  # same device: its encryption keys stay valid
            response = _ok(await client.login(self.password, device_name=self.device_name), LoginResponse)
            login = Login(self.user_id, response.device_id, response.access_token)
        else:
            raise MatrixError("[matrix] needs a password or an access_token")
        self.state.save_login(login)
        client.restore_login(login.user_id, login.device_id, login.access_token)

    @property
    def device_id(self) -> str:
        return self.client.device_id if self.client else ""

    # syncing ---------------------------------------------------------------------------------

    async def _sync_forever(self) -> None:
        while not self._stopping:
            try:
                await self._sync_once(first=False)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("Matrix sync failed; retrying")
                await asyncio.sleep(min(self.max_backoff, 2.0))

    async def _sync_once(self, first: bool) -> None:
        client = self.client
        # Always from the last batch applied in full: nio moves its own next_batch on as soon as a
        # response arrives, so after a batch whose handling failed it would skip that batch.
        since = self.state.sync_token()
        previous = since or client.next_batch  # where this batch starts, to fill a gap from
        full_state = first or not self._have_state
        self._in_sync = True
        syncing = _SYNCING.set(True)
        try:
            response = await client.sync(timeout=0 if full_state else self.sync_timeout_ms,
                                         full_state=full_state or None, since=since, sync_filter=SYNC_FILTER)
        except Exception:
            RECEIVE_ERRORS.labels(PLATFORM).inc()
            raise
        finally:
            _SYNCING.reset(syncing)
            self._in_sync = False
        if not isinstance(response, SyncResponse):
            RECEIVE_ERRORS.labels(PLATFORM).inc()
            log.warning("Matrix sync refused: %s", getattr(response, "message", response))
            if getattr(response, "status_code", None) == "M_UNKNOWN_TOKEN" and self.password:
                self.state.forget_login(self.user_id)  # logged out elsewhere: log in again, same device
                await self._log_in()
            await asyncio.sleep(min(self.max_backoff, 2.0))
            return
        await self._handle_sync(response, previous)  # raises when an event could not be applied
        self.state.save_sync_token(response.next_batch)
        self._have_state = True
        await exchange_keys(self.client)
        self.synced.set()
        self.synced.clear()

    async def _handle_sync(self, response: SyncResponse, previous: str | None) -> None:
        for room_id, invite in response.rooms.invite.items():
            await self._on_invite(room_id, invite.invite_state)
        for room_id, info in response.rooms.join.items():
            room = self.client.rooms.get(room_id)
            if room is None:
                continue
            if room_id in self._arriving:
                self._arriving.pop(room_id).set()
            events = [*info.state, *info.timeline.events]
            if info.timeline.limited and previous:
                # More happened than one sync carries: fetch the rest, or votes would be lost.
                events = [*info.state, *await self._fill_gap(room_id, info.timeline.prev_batch, previous),
                          *info.timeline.events]
            seen: set[str] = set()
            for event in events:
                if event.event_id in seen:
                    continue
                seen.add(event.event_id)
                await self._on_event(room, event)
            if room_id in self._membership_changed:
                await self._report_member_count(room, departed=self._membership_changed.pop(room_id))
        for room_id in response.rooms.leave:
            self._forget(room_id)
        await self._retry_decryption()

    async def _fill_gap(self, room_id: str, newest: str, oldest: str) -> list[Event]:
        """The events between the previous batch and this one, oldest first."""
        found: list[Event] = []
        start = newest
        while len(found) < GAP_LIMIT:
            response = await self.client.room_messages(room_id, start=start, end=oldest, limit=GAP_PAGE)
            if not isinstance(response, RoomMessagesResponse):
                # Not confirming this batch: the next sync starts from the same token and tries again.
                raise MatrixError(f"could not fetch missed events in {room_id}: "
                                  f"{getattr(response, 'message', response)}")
            found.extend(response.chunk)
            if not response.chunk or not response.end or response.end == start:
                break
            start = response.end
        else:
            log.warning("more than %d events missed in %s; the oldest are skipped", GAP_LIMIT, room_id)
        log.info("fetched %d events missed in %s", len(found), room_id)
        return found[::-1]

    async def _on_event(self, room: MatrixRoom, event: Event) -> None:
        try:
            if isinstance(event, RoomMemberEvent):
                await self._on_membership(room, event)
            elif event.sender in self.bots:
                return
            elif isinstance(event, MegolmEvent):
                # nio decrypts a sync's events itself, but not those of a batch synced again (after the core
                # could not apply it: nio skips a response whose next_batch it has seen) nor those fetched to
                # fill a gap, and leaves their room_id unset, without which no key can decrypt them.
                event.room_id = room.room_id
                try:
                    decrypted = self.client.decrypt_event(event)
                except Exception:  # its room key has not come yet
                    if event.event_id not in self._undecrypted:
                        waiting = self._undecrypted[event.event_id] = _Undecrypted(room.room_id, event)
                        self.state.save_undecrypted(room.room_id, event.event_id, event.source, waiting.since)
                    await self._request_key(event)
                else:
                    await self._on_event(room, decrypted)
            elif self._too_old(event):
                log.info("skipped %s from %s, sent while the bot was away", type(event).__name__,
                         event.server_timestamp)
            elif isinstance(event, RoomMessageText):
                await self._on_text(room, event)
            elif isinstance(event, ReactionEvent):
                await self._on_reaction(room, event)
            elif isinstance(event, RedactionEvent):
                await self._on_redaction(room, event)
        except _NotApplied:
            raise
        except Exception as error:
            # One bad event must not stop the others (nor the sync loop).
            if self.state.is_direct(room.room_id):
                log.error("could not handle Matrix event %s in a direct room: %s", getattr(event, "event_id", "?"),
                          without_text(error))
            else:
                log.exception("could not handle Matrix event %s", getattr(event, "event_id", "?"))

    async def _apply(self, inbound: Inbound) -> None:
        """Hand one event to the core, which returns once its effects are committed. If it raises
        (the database is unreachable), the batch must not be confirmed: `_NotApplied` stops it and the
        sync starts again from the saved token. An event the core keeps failing on for longer than
        `history_window` is given up (it would be too old to act on after a restart, too)."""
        event_id = getattr(inbound, "event_id", None)
        try:
            await self._sink(inbound)
        except Exception as error:
            first = self._failing.setdefault(event_id, time.time()) if event_id else time.time()
            private = getattr(inbound, "is_private", False)
            if time.time() - first <= self.history_window.total_seconds():
                if not private:
                    raise _NotApplied(event_id) from error
                # The error (a database's, with its statement's parameters) may quote the message:
                # the sync loop's log gets its type and place only.
                log.warning("could not apply Matrix event %s from a direct room: %s", event_id,
                            without_text(error))
                raise _NotApplied(event_id) from None
            if private:
                log.error("gave up on Matrix event %s from a direct room: it could not be applied for %s (%s)",
                          event_id, self.history_window, without_text(error))
            else:
                log.exception("gave up on Matrix event %s: it could not be applied for %s", event_id,
                              self.history_window)
        self._failing.pop(event_id, None)

    def _too_old(self, event: Event) -> bool:
        age_ms = time.time() * 1000 - (event.server_timestamp or 0)
        return age_ms > self.history_window.total_seconds() * 1000

    # inbound: messages, reactions, redactions ---------------------------------------------------

    async def _on_text(self, room: MatrixRoom, event: RoomMessageText) -> None:
        content = event.source.get("content", {})
        relation = content.get("m.relates_to") or {}
        if relation.get("rel_type") == "m.replace":
            return  # an edited command is not run a second time
        text = read_text(content)
        private = self.state.is_direct(room.room_id)
        if text.startswith(self.prefix):
            text = CORE_PREFIX + text[len(self.prefix):]
        elif not private:
            return  # ordinary conversation: the core never sees it
        reply_to = (relation.get("m.in_reply_to") or {}).get("event_id")
        if relation.get("rel_type") == "m.thread" and relation.get("event_id"):
            self._remember_thread(event.event_id, relation["event_id"])
        await self._apply(CommandMessage(
            chat=self._chat(room.room_id), sender=UserRef(platform=self.platform, user_id=event.sender),
            sender_name=room.user_name(event.sender) or event.sender, text=text, event_id=event.event_id,
            reply_to=reply_to, is_private=private, chat_title=None if private else room.display_name))

    async def _on_reaction(self, room: MatrixRoom, event: ReactionEvent) -> None:
        payload = self.state.choice(event.reacts_to, event.key)
        if payload is None:
            return  # a reaction to something that is not a ballot
        self.state.save_reaction(event.event_id, VoteReaction(room.room_id, event.sender, event.reacts_to, payload))
        await self._apply(ChoiceMade(
            chat=self._chat(room.room_id), sender=UserRef(platform=self.platform, user_id=event.sender),
            sender_name=room.user_name(event.sender) or event.sender, payload=payload, event_id=event.event_id,
            message_id=event.reacts_to, is_private=self.state.is_direct(room.room_id)))

    async def _on_redaction(self, room: MatrixRoom, event: RedactionEvent) -> None:
        vote = self.state.reaction(event.redacts)
        # Only the voter's own redaction takes a vote back; a moderator tidying up does not.
        if vote is None or vote.sender != event.sender:
            return
        await self._apply(ChoiceMade(
            chat=self._chat(room.room_id), sender=UserRef(platform=self.platform, user_id=event.sender),
            sender_name=room.user_name(event.sender) or event.sender, payload=vote.payload,
            event_id=event.event_id, message_id=vote.target, retracted=True,
            is_private=self.state.is_direct(room.room_id)))
        self.state.forget_reaction(event.redacts)  # after: if applying fails, the redaction is synced again

    # inbound: encryption ------------------------------------------------------------------------------

    async def _request_key(self, event: MegolmEvent) -> None:
        log.info("cannot decrypt %s yet; waiting for its room key", event.event_id)
        try:
            await self.client.request_room_key(event)
        except Exception as error:  # already requested, or no session to ask about
            log.debug("room key request for %s: %s", event.event_id, error)

    async def _retry_decryption(self) -> None:
        """Room keys often arrive a sync after the message: try again, for a while. An event leaves
        the waiting list (and the store) only once the core has it, or it is given up."""
        for event_id, item in list(self._undecrypted.items()):
            try:
                event = self.client.decrypt_event(item.event)
            except Exception:
                if time.time() - item.since >= DECRYPT_PATIENCE:
                    log.warning("gave up decrypting %s in %s: its room key never came", event_id, item.room_id)
                    self._forget_undecrypted(event_id)
                continue
            room = self.client.rooms.get(item.room_id)
            if room is not None:
                await self._on_event(room, event)
            self._forget_undecrypted(event_id)

    def _forget_undecrypted(self, event_id: str) -> None:
        self._undecrypted.pop(event_id, None)
        self.state.forget_undecrypted(event_id)

    # inbound: membership -------------------------------------------------------------------------------

    async def _on_membership(self, room: MatrixRoom, event: RoomMemberEvent) -> None:
        user = event.state_key
        if user == self.user_id or user in self.bots:
            return
        self._membership_changed[room.room_id] = (self._membership_changed.get(room.room_id, False)
                                                  or event.membership in GONE)
        if self.state.is_direct(room.room_id):
            return
        chat, ref = self._chat(room.room_id), UserRef(platform=self.platform, user_id=user)
        if event.membership == JOINED:
            name = (event.content or {}).get("displayname") or room.user_name(user) or user
            await self._apply(MemberJoined(chat=chat, user=ref, display_name=name, event_id=event.event_id))
        elif event.membership in GONE and (event.prev_membership == JOINED or event.prev_membership is None):
            await self._apply(MemberLeft(chat=chat, user=ref, event_id=event.event_id))

    def _humans(self, room: MatrixRoom) -> list[str]:
        return [user for user, member in room.users.items() if not member.invited and user not in self.bots]

    async def _report_member_count(self, room: MatrixRoom, departed: bool) -> None:
        """Quorum shares are of the room's joined members, bots excluded."""
        humans = self._humans(room)
        if not humans:
            if departed:  # not a room still being set up, whose invitations are on their way
                await self._leave_empty(room)
            return
        if self.state.is_direct(room.room_id) or self._member_counts.get(room.room_id) == len(humans):
            return
        await self._apply(MemberCount(chat=self._chat(room.room_id), count=len(humans)))
        self._member_counts[room.room_id] = len(humans)

    async def _leave_empty(self, room: MatrixRoom) -> None:
        """Everyone left (or the direct room was closed): the bot goes too."""
        if room.invited_users:
            return
        log.info("leaving %s: no members left", room.room_id)
        await self.client.room_leave(room.room_id)
        self._forget(room.room_id)

    def _forget(self, room_id: str) -> None:
        self.state.forget_room(room_id)
        self._member_counts.pop(room_id, None)

    async def _on_invite(self, room_id: str, invite_state: list) -> None:
        invite = next((event for event in invite_state if isinstance(event, InviteMemberEvent)
                       and event.state_key == self.user_id and event.membership == "invite"), None)
        if invite is None:
            return
        if not self._may_invite(invite.sender):
            log.warning("declined an invitation to %s from %s (not in allowed_inviters)", room_id, invite.sender)
            await self.client.room_leave(room_id)
            return
        response = await self.client.join(room_id)
        if isinstance(response, JoinError):
            log.warning("could not join %s: %s", room_id, response.message)
            return
        self._expect_room(room_id)
        if (invite.content or {}).get("is_direct"):
            self.state.save_direct_room(room_id, invite.sender)
        log.info("joined %s, invited by %s", room_id, invite.sender)

    def _may_invite(self, user_id: str) -> bool:
        """Allow-list entries are user ids (`@ana:example.org`) or homeservers (`example.org`, `:example.org`)."""
        if not self.allowed_inviters:
            return True
        server = user_id.partition(":")[2]
        return any(entry == user_id or entry.lstrip(":") == server for entry in self.allowed_inviters)

    # outbound ---------------------------------------------------------------------------------------------

    @staticmethod
    def is_permanent(error: BaseException) -> bool:
        return isinstance(error, MatrixError) and error.status_code in PERMANENT_ERRORS

    async def perform(self, action: Action, key: str | None = None) -> str | None:
        """`key` is stable per outbox row: each event sent for it gets a transaction id derived
        from it, so a resend after a crash is recognised by the homeserver, not shown twice."""
        token = _SEND_KEY.set((key, itertools.count()) if key else None)
        try:
            return await self._perform(action)
        finally:
            _SEND_KEY.reset(token)

    async def _perform(self, action: Action) -> str | None:
        if isinstance(action, SendMessage):
            return await self._send_message(action)
        if isinstance(action, EditMessage):
            await self._send_edit(action.message_id, action)
        elif isinstance(action, Acknowledge):
            await self._acknowledge(action)
        elif isinstance(action, DirectMessage):
            return await self._direct(action)
        elif isinstance(action, (SendImage, SendFile)):
            return await self._send_upload(action)
        return None

    def _chat(self, room_id: str) -> ChatRef:
        return ChatRef(platform=self.platform, chat_id=room_id)

    async def _room(self, room_id: str) -> MatrixRoom:
        if room_id not in self.client.rooms:
            await self._wait_for_room(room_id)
        return self.client.rooms[room_id]

    async def _send(self, room_id: str, content: dict[str, Any], event_type: str = "m.room.message") -> str:
        if (await self._room(room_id)).encrypted and self.client.should_query_keys:
            # Devices of people who just arrived must be known before the room key is shared,
            # or they could never read this message.
            await self.client.keys_query()
        keyed = _SEND_KEY.get()
        transaction = f"commons.{keyed[0]}.{next(keyed[1])}" if keyed else None
        response = await self.client.room_send(room_id, event_type, content, tx_id=transaction,
                                               ignore_unverified_devices=True)
        return _ok(response, RoomSendResponse).event_id

    async def _wait_for_room(self, room_id: str, timeout: float = 30.0) -> None:
        """A room just joined or created is known to nio only after the next sync; any other
        unknown room is one the bot is not in, and waiting would not help."""
        arriving = self._arriving.get(room_id)
        if arriving is None:
            raise MatrixError(f"the bot is not in room {room_id}", "NOT_IN_ROOM")
        try:
            await asyncio.wait_for(arriving.wait(), timeout)
        except asyncio.TimeoutError:
            raise MatrixError(f"room {room_id} did not arrive") from None

    def _expect_room(self, room_id: str) -> None:
        if room_id not in self.client.rooms:
            self._arriving.setdefault(room_id, asyncio.Event())

    def _with_legend(self, text: RichText, choices: tuple[Choice, ...], language: str,
                     does: str = "vote") -> RichText:
        """Matrix has no buttons: the card says, in the card's language, which reaction means what."""
        tapped = [escape(choice.label) if choice.label.startswith(choice.symbol)  # "🔒 Vote privately"
                  else f"{choice.symbol} {escape(choice.label)}" for choice in choices if choice.symbol]
        if not tapped:
            return text
        with i18n.speaking(language):
            legend = _("React to {action}: ").format(action=escape(_(does)))
        return join([text, rich(legend, " · ".join(tapped))])

    async def _send_message(self, action: SendMessage) -> str:
        content = message_content(self._with_legend(action.text, action.choices, action.language, action.choices_do))
        if action.reply_to and action.reply_to.startswith("$"):
            content["m.relates_to"] = self._reply_relation(action.reply_to)
        event_id = await self._send(action.chat.chat_id, content)
        if action.choices:
            await self._offer_choices(action.chat.chat_id, event_id, action.choices)
        return event_id

    def _remember_thread(self, event_id: str, root: str) -> None:
        self._threads[event_id] = root
        while len(self._threads) > THREAD_MEMORY:
            self._threads.popitem(last=False)

    def _reply_relation(self, event_id: str) -> dict[str, Any]:
        relation: dict[str, Any] = {"m.in_reply_to": {"event_id": event_id}}
        if (root := self._threads.get(event_id)) is not None:
            relation |= {"rel_type": "m.thread", "event_id": root, "is_falling_back": False}
        return relation

    async def _offer_choices(self, room_id: str, event_id: str, choices: tuple[Choice, ...]) -> None:
        """Seed the reactions so one tap votes; the card counts as sent once they are there.

        Only choices with a symbol become reactions. A secret ballot's private choices have none, on
        purpose: a reaction's key (the emoji) is in `m.relates_to`, which stays in the clear even in an
        encrypted room, so the homeserver would see the vote. There the member types `vote N yes` in
        the direct room instead (no prefix needed), which is encrypted like any message."""
        keyed = {choice.symbol: choice.payload for choice in choices if choice.symbol}
        self.state.save_choices(event_id, keyed)
        for key in keyed:
            await self._react(room_id, event_id, key)

    async def _acknowledge(self, action: Acknowledge) -> None:
        vote = self.state.reaction(action.event_id)
        if vote is not None:
            # A tap: the reaction is its own acknowledgement. A refused tap is said in the room,
            # to the member, since Matrix has no private toast.
            if action.problem:
                content = message_content(addressed(UserRef(platform=self.platform, user_id=vote.sender), action.text))
                content["m.relates_to"] = {"m.in_reply_to": {"event_id": vote.target}}
                await self._send(vote.room_id, content)
            return
        if action.event_id.startswith("$"):
            await self._react(action.chat.chat_id, action.event_id, ACK_REACTION)

    async def _react(self, room_id: str, event_id: str, key: str) -> None:
        await self._send(room_id, {"m.relates_to": {"rel_type": "m.annotation", "event_id": event_id, "key": key}},
                         "m.reaction")

    async def _direct(self, action: DirectMessage) -> str:
        """Raises when no direct room can be had; the delivery layer then says it in the group.
        Its choices are offered as reactions only where they have a symbol (see `_offer_choices`):
        a secret ballot's have none, so it gets no legend and no reactions, only its text."""
        room_id = await self._direct_room(action.user.user_id)
        legended = self._with_legend(action.text, action.choices, action.language)
        event_id = await self._send(room_id, message_content(legended))
        if any(choice.symbol for choice in action.choices):
            await self._offer_choices(room_id, event_id, action.choices)
        return event_id

    async def _direct_room(self, user_id: str) -> str:
        """The member's direct room with the bot, or a new encrypted one (they get an invite)."""
        room_id = self.state.direct_room(user_id)
        if room_id is not None and room_id in self.client.rooms:
            return room_id
        response = await self.client.room_create(
            is_direct=True, invite=[user_id], preset=RoomPreset.trusted_private_chat,
            initial_state=[{"type": "m.room.encryption", "state_key": "",
                            "content": {"algorithm": "m.megolm.v1.aes-sha2"}}])
        room_id = _ok(response, RoomCreateResponse).room_id
        self._expect_room(room_id)
        self.state.save_direct_room(room_id, user_id)
        await self._wait_for_member(room_id, user_id)
        return room_id

    async def _wait_for_member(self, room_id: str, user_id: str, timeout: float = 15.0) -> None:
        """Until a sync shows the invitation, encrypting would leave the member out of the room key."""
        room = await self._room(room_id)
        deadline = time.monotonic() + timeout
        while user_id not in room.users and time.monotonic() < deadline:
            try:
                await asyncio.wait_for(self.synced.wait(), deadline - time.monotonic())
            except asyncio.TimeoutError:
                break

    async def _send_upload(self, action: SendImage | SendFile) -> str:
        room_id = action.chat.chat_id
        encrypted = (await self._room(room_id)).encrypted
        mime = "image/png" if isinstance(action, SendImage) else action.mime_type
        uploaded, keys = await self.client.upload(io.BytesIO(action.data), content_type=mime,
                                                  filename=action.filename, filesize=len(action.data),
                                                  encrypt=encrypted)
        uploaded = _ok(uploaded, UploadResponse)
        info: dict[str, Any] = {"mimetype": mime, "size": len(action.data)}
        if isinstance(action, SendImage) and (size := png_size(action.data)):
            info["w"], info["h"] = size
        content: dict[str, Any] = {"msgtype": "m.image" if isinstance(action, SendImage) else "m.file",
                                   "body": action.filename, "filename": action.filename, "info": info}
        if action.caption is not None:  # a caption is a body other than the file name
            caption = message_content(action.caption)
            content |= {key: caption[key] for key in ("body", "format", "formatted_body") if key in caption}
        if encrypted:
            content["file"] = {"url": uploaded.content_uri, **(keys or {})}
        else:
            content["url"] = uploaded.content_uri
        return await self._send(room_id, content)

    # edits (the delivery layer coalesces them: only the newest text of a tally goes out) ---------------

    async def _send_edit(self, message_id: str, action: EditMessage) -> None:
        if action.choices:
            self.state.save_choices(message_id, {c.symbol: c.payload for c in action.choices if c.symbol})
        await self._send(action.chat.chat_id, edit_content(message_id, self._with_legend(action.text, action.choices,
                                                                                       action.language)))


async def exchange_keys(client: AsyncClient) -> None:
    """The housekeeping nio's sync_forever does after a sync: to-device messages and key upload/query/claim."""
    await client.send_to_device_messages()
    if client.should_upload_keys:
        await client.keys_upload()
    if client.should_query_keys:
        await client.keys_query()
    if client.should_claim_keys:
        await client.keys_claim(client.get_users_for_key_claiming())


def without_text(error: BaseException) -> str:
    """An error as its type and where it was raised, without its message: the message may quote
    what a member wrote in a direct room (a secret ballot), and that is never logged."""
    frames = traceback.extract_tb(error.__traceback__)[-3:]
    where = " < ".join(f"{Path(frame.filename).name}:{frame.lineno} {frame.name}" for frame in reversed(frames))
    return f"{type(error).__name__} at {where}" if where else type(error).__name__


def png_size(data: bytes) -> tuple[int, int] | None:
    """Width and height from a PNG header, so clients can lay the image out before loading it."""
    if data[:8] != b"\x89PNG\r\n\x1a\n" or len(data) < 24:
        return None
    return struct.unpack(">II", data[16:24])
