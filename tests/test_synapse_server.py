"""The throwaway Synapse homeserver (tests/synapse_server.py) against real Matrix clients.

People are matrix-nio clients logged in with the access tokens that
SynapseServer.register() hands out (no password login: faster).
"""

from __future__ import annotations

import asyncio
import uuid

import pytest
from nio import (
    AsyncClient,
    AsyncClientConfig,
    JoinResponse,
    RoomCreateResponse,
    RoomMessagesResponse,
    RoomMessageText,
    RoomSendError,
    RoomSendResponse,
    SyncResponse,
    WhoamiResponse,
)

from tests.synapse_server import RegisteredUser, SynapseServer


def _localpart(name: str) -> str:
    # The server lives for the whole session: never reuse a user name.
    return f"{name}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
async def connect(synapse: SynapseServer):
    """connect(user, **config) -> a logged-in nio AsyncClient, closed after the test."""
    clients: list[AsyncClient] = []

    def make(user: RegisteredUser, **config) -> AsyncClient:
        client = AsyncClient(synapse.url, user.user_id, device_id=user.device_id,
                             config=AsyncClientConfig(encryption_enabled=False, **config))
        client.restore_login(user.user_id, user.device_id, user.access_token)
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()


async def _room_with(alice: AsyncClient, bob: AsyncClient) -> str:
    created = await alice.room_create(invite=[bob.user_id])
    assert isinstance(created, RoomCreateResponse), created
    joined = await bob.join(created.room_id)
    assert isinstance(joined, JoinResponse), joined
    return created.room_id


async def _say(client: AsyncClient, room_id: str, body: str) -> RoomSendResponse | RoomSendError:
    return await client.room_send(room_id, "m.room.message", {"msgtype": "m.text", "body": body})


async def _wait_for_text(client: AsyncClient, room_id: str, body: str, timeout: float = 10) -> RoomMessageText:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        sync = await client.sync(timeout=1000)  # long-poll; nio keeps the since token
        assert isinstance(sync, SyncResponse), sync
        room = sync.rooms.join.get(room_id)
        for event in room.timeline.events if room else ():
            if isinstance(event, RoomMessageText) and event.body == body:
                return event
    pytest.fail(f"{client.user_id} did not see {body!r} in {room_id} within {timeout} s")


async def test_message_goes_from_one_person_to_another(synapse, connect):
    alice = connect(await synapse.aregister(_localpart("alice")))
    bob = connect(await synapse.aregister(_localpart("bob")))
    room_id = await _room_with(alice, bob)

    sent = await _say(alice, room_id, "hello bob")
    assert isinstance(sent, RoomSendResponse), sent

    event = await _wait_for_text(bob, room_id, "hello bob")
    assert event.sender == alice.user_id
    assert event.event_id == sent.event_id


async def test_restart_keeps_accounts_rooms_and_history(synapse, connect):
    user = await synapse.aregister(_localpart("alice"))
    alice, bob = connect(user), connect(await synapse.aregister(_localpart("bob")))
    room_id = await _room_with(alice, bob)
    sent = await _say(alice, room_id, "before the restart")
    assert isinstance(sent, RoomSendResponse), sent
    port = synapse.port

    await synapse.arestart()

    assert synapse.port == port
    # A client that never saw the restart: the old access token still works.
    after = connect(user)
    whoami = await after.whoami()
    assert isinstance(whoami, WhoamiResponse), whoami
    assert (whoami.user_id, whoami.device_id) == (user.user_id, user.device_id)
    history = await after.room_messages(room_id, limit=20)
    assert isinstance(history, RoomMessagesResponse), history
    assert sent.event_id in [event.event_id for event in history.chunk]
    # And the room still works both ways.
    await _say(after, room_id, "after the restart")
    await _wait_for_text(bob, room_id, "after the restart")


async def test_kill_then_start_recovers(synapse, connect):
    user = await synapse.aregister(_localpart("carol"))
    synapse.kill()
    assert not synapse.running
    await synapse.astart()
    whoami = await connect(user).whoami()
    assert isinstance(whoami, WhoamiResponse), whoami


async def test_ratelimit_override_makes_synapse_answer_429(synapse, connect):
    user = await synapse.aregister(_localpart("dave"))
    # max_limit_exceeded=0: nio hands back the first 429 instead of sleeping and retrying.
    dave = connect(user, max_limit_exceeded=0)
    # 0/0 exempts dave, so setting up the room leaves nothing in his bucket...
    await asyncio.to_thread(synapse.override_ratelimit, user.user_id, 0, 0)
    room_id = await _room_with(dave, connect(await synapse.aregister(_localpart("erin"))))

    # ...and with 1 message/s, burst 1 (Synapse takes whole numbers only)
    # exactly one of two quick sends gets through.
    await asyncio.to_thread(synapse.override_ratelimit, user.user_id, 1, 1)
    first = await _say(dave, room_id, "one")
    assert isinstance(first, RoomSendResponse), first
    second = await _say(dave, room_id, "two")
    assert isinstance(second, RoomSendError), second
    assert second.status_code == "M_LIMIT_EXCEEDED"
    assert second.retry_after_ms and second.retry_after_ms > 0

    await asyncio.to_thread(synapse.delete_ratelimit_override, user.user_id)
    for body in ("three", "four", "five"):
        sent = await _say(dave, room_id, body)
        assert isinstance(sent, RoomSendResponse), sent
