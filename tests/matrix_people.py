"""People in Matrix rooms for the adapter's tests: real matrix-nio clients,
with encryption, syncing in the background and remembering what they saw."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nio import (
    AsyncClient,
    AsyncClientConfig,
    Event,
    MegolmEvent,
    RoomCreateResponse,
    RoomSendResponse,
    SyncResponse,
)

from adapters.matrix.adapter import exchange_keys

WAIT = 15.0


async def wait_on(changed: asyncio.Condition, predicate: Callable[[], Any], timeout: float, failure: str) -> Any:
    """Wait until `predicate()` is truthy, re-checking whenever `changed` is notified (after each sync)."""
    deadline = time.monotonic() + timeout
    async with changed:
        while not (result := predicate()):
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(failure)
            try:
                await asyncio.wait_for(changed.wait(), left)
            except asyncio.TimeoutError:
                pass
        return result


class Person:
    """One member on one device. `seen` holds every timeline event (decrypted where possible)."""

    def __init__(self, homeserver: str, user, store: Path) -> None:
        store.mkdir(parents=True, exist_ok=True)
        config = AsyncClientConfig(encryption_enabled=True, store_sync_tokens=False, max_timeouts=None,
                                   max_timeout_retry_wait_time=1.0)
        self.user = user
        self.client = AsyncClient(homeserver, user.user_id, device_id=user.device_id, store_path=str(store),
                                  config=config)
        self.client.restore_login(user.user_id, user.device_id, user.access_token)
        self.seen: list[tuple[str, Event]] = []
        self.invites: list[str] = []
        self._changed = asyncio.Condition()
        self._task: asyncio.Task | None = None

    @property
    def user_id(self) -> str:
        return self.user.user_id

    async def start(self) -> Person:
        if self.client.should_upload_keys:
            await self.client.keys_upload()
        await self._sync(0)
        self._task = asyncio.create_task(self._run())
        return self

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self.client.close()

    async def _run(self) -> None:
        while True:
            try:
                await self._sync(1000)
            except asyncio.CancelledError:
                raise
            except Exception:
                await asyncio.sleep(0.2)

    async def _sync(self, timeout: int) -> None:
        client = self.client
        response = await client.sync(timeout=timeout, full_state=True if timeout == 0 else None)
        if not isinstance(response, SyncResponse):
            await asyncio.sleep(0.2)
            return
        await exchange_keys(client)
        async with self._changed:
            for room_id, info in response.rooms.join.items():
                for event in info.timeline.events:
                    self.seen.append((room_id, event))
            self.invites.extend(response.rooms.invite)
            self._retry_decryption()
            self._changed.notify_all()

    def _retry_decryption(self) -> None:
        for index, (room_id, event) in enumerate(self.seen):
            if isinstance(event, MegolmEvent):
                event.room_id = room_id
                try:
                    self.seen[index] = (room_id, self.client.decrypt_event(event))
                except Exception:
                    pass

    # waiting ---------------------------------------------------------------------------------

    async def wait_for(self, predicate: Callable[[], Any], timeout: float = WAIT) -> Any:
        return await wait_on(self._changed, predicate, timeout, f"{self.user_id} waited {timeout} s in vain")

    def events(self, room_id: str, sender: str | None = None, kind: str | None = None) -> list[dict]:
        """Raw events (as dicts, decrypted) in a room, optionally by sender and type."""
        found = []
        for where, event in self.seen:
            source = dict(event.source)
            if isinstance(event, MegolmEvent):
                source["type"] = "m.room.encrypted"
            if where != room_id or (sender and source.get("sender") != sender):
                continue
            if kind and source.get("type") != kind:
                continue
            found.append(source)
        return found

    def messages(self, room_id: str, sender: str) -> list[dict]:
        """Messages (not edits) a sender posted to a room, as event dicts."""
        return [e for e in self.events(room_id, sender, "m.room.message")
                if (e["content"].get("m.relates_to") or {}).get("rel_type") != "m.replace"]

    def edits(self, room_id: str, sender: str, of: str | None = None) -> list[dict]:
        return [e for e in self.events(room_id, sender, "m.room.message")
                if (e["content"].get("m.relates_to") or {}).get("rel_type") == "m.replace"
                and (of is None or e["content"]["m.relates_to"]["event_id"] == of)]

    def latest_text(self, room_id: str, sender: str, event_id: str) -> str:
        """What a message says now, edits applied."""
        edits = self.edits(room_id, sender, event_id)
        if edits:
            return edits[-1]["content"]["m.new_content"]["body"]
        return next(e["content"]["body"] for e in self.events(room_id, sender) if e["event_id"] == event_id)

    async def wait_for_message(self, room_id: str, sender: str, after: int = 0, contains: str = "",
                               timeout: float = WAIT) -> dict:
        """The first message from `sender` beyond the first `after`, containing `contains`."""
        def found():
            return next((m for m in self.messages(room_id, sender)[after:] if contains in m["content"]["body"]),
                        None)
        return await self.wait_for(found, timeout)

    # acting -----------------------------------------------------------------------------------

    async def say(self, room_id: str, text: str, **extra: Any) -> str:
        content = {"msgtype": "m.text", "body": text, **extra}
        response = await self.client.room_send(room_id, "m.room.message", content, ignore_unverified_devices=True)
        assert isinstance(response, RoomSendResponse), response
        return response.event_id

    async def react(self, room_id: str, event_id: str, key: str) -> str:
        content = {"m.relates_to": {"rel_type": "m.annotation", "event_id": event_id, "key": key}}
        response = await self.client.room_send(room_id, "m.reaction", content, ignore_unverified_devices=True)
        assert isinstance(response, RoomSendResponse), response
        return response.event_id

    async def redact(self, room_id: str, event_id: str) -> None:
        await self.client.room_redact(room_id, event_id)

    async def create_room(self, name: str, invite: list[str] = (), encrypted: bool = False,
                          direct: bool = False) -> str:
        initial_state = []
        if encrypted:
            initial_state.append({"type": "m.room.encryption", "state_key": "",
                                  "content": {"algorithm": "m.megolm.v1.aes-sha2"}})
        response = await self.client.room_create(name=name or None, invite=list(invite),
                                                 initial_state=initial_state, is_direct=direct)
        assert isinstance(response, RoomCreateResponse), response
        await self.wait_for(lambda: response.room_id in self.client.rooms)
        return response.room_id

    async def join(self, room_id: str) -> None:
        await self.client.join(room_id)
        await self.wait_for(lambda: room_id in self.client.rooms
                            and self.user_id in self.client.rooms[room_id].users)
