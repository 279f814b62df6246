"""The outbox: the one way out for everything the bot says or does in a chat.

Every action is recorded in the same transaction as the change that caused
it, and marked sent only after its platform confirmed. So nothing is said
about a change that was rolled back, and a crash between the commit and the
send delivers the action after the restart instead of losing it.
Announcements carry a dedupe key, so the same announcement is never created
twice; a pending edit of a message replaces the older pending edit of it.

A group linked across platforms (`link platform`) has several chats: what is said to
the whole group (an announcement, a card and its edits, the scheduler's charts) is
recorded once per chat here, so no caller has to know; replies to a command and
quiet acknowledgements stay in the chat the command came from.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from datetime import datetime, timezone

from sqlalchemy import and_, bindparam, case, delete, exists, func, insert, literal, select, update
from sqlmodel import Session

from bot.actions import (
    Acknowledge,
    Action,
    DirectMessage,
    EditMessage,
    Outgoing,
    SendMessage,
    dump_action,
    load_action,
    platform_of,
    target_of,
)
from bot.events import ChatRef
from bot.render.text import with_prefix
from storage.models import Group, GroupChat, OutboxItem

_TABLE = OutboxItem.__table__
_PENDING = and_(_TABLE.c.sent_at.is_(None), _TABLE.c.failed_at.is_(None))
# Built once: they run for nearly every event.
_INSERT = insert(_TABLE).returning(_TABLE.c.id, sort_by_parameter_order=True)
_SUPERSEDE = delete(_TABLE).where(_PENDING, _TABLE.c.kind == "edit", _TABLE.c.target == bindparam("target"))


def _row(action: Action, group_id: int | None, now: datetime, key: str | None, sealed: bool = False) -> dict:
    return {"group_id": group_id, "platform": platform_of(action), "kind": action.kind,
            "target": target_of(action), "dedupe_key": key, "action": dump_action(action),
            "created_at": now, "attempts": 0, "token": secrets.token_hex(6), "sealed": sealed}


def add(session: Session, action: Action, *, group_id: int | None, now: datetime,
        key: str | None = None, sealed: bool = False, origin: ChatRef | None = None) -> Outgoing:
    """Record one action (and its copies for the group's other chats); an edit replaces the older
    pending edit of the same message. Returns the action's own row."""
    actions, keys = _for_every_chat(session, [action], group_id, origin, key)
    items = _insert(session, actions, [_row(a, group_id, now, k, sealed) for a, k in zip(actions, keys, strict=True)])
    return items[0]


def add_to_group(session: Session, action: Action, *, group_id: int | None, now: datetime,
                 key: str | None = None) -> list[Outgoing]:
    """Say something to a whole group (every chat of it; with no group id, the action's chat alone),
    unless `key` was used before; returns every row recorded."""
    if key is not None and session.scalar(select(exists().where(_TABLE.c.dedupe_key == key))):
        return []
    actions, keys = _for_every_chat(session, [action], group_id, None, key)
    return _insert(session, actions, [_row(a, group_id, now, k) for a, k in zip(actions, keys, strict=True)])


def add_all(session: Session, actions: Iterable[Action], *, group_id: int | None, now: datetime,
            sealed: bool = False, origin: ChatRef | None = None) -> list[Outgoing]:
    """Record what one event caused, in one statement (a vote: its acknowledgement and the card edit).
    `origin`: the chat of the command that caused them, whose replies stay there. Sealed actions are
    blanked once delivered or given up (see `mark_sent`)."""
    actions, keys = _for_every_chat(session, list(actions), group_id, origin, None)
    rows = [_row(action, group_id, now, key, sealed) for action, key in zip(actions, keys, strict=True)]
    return _insert(session, actions, rows) if actions else []


# How each platform writes commands (the core's configuration, see `use_prefixes`), for copies of
# a message in a linked chat on another platform; and the command words hints may name.
_prefixes: dict[str, str] = {}
_commands: frozenset[str] = frozenset()


def use_prefixes(prefixes: dict[str, str], commands: frozenset[str]) -> None:
    _prefixes.update(prefixes)
    global _commands
    _commands = commands


def _prefix_for(platform: str) -> str:
    return _prefixes.get(platform, "!")  # as Core.prefix_for: the configuration has every platform served


_chats = GroupChat.__table__.c
_FURTHER_CHATS = select(_chats.platform, _chats.chat_id).where(_chats.group_id == bindparam("group_id"))


def _for_every_chat(session: Session, actions: list[Action], group_id: int | None, origin: ChatRef | None,
                    key: str | None) -> tuple[list[Action], list[str | None]]:
    """The actions, each followed by its copies for the group's other chats when it is said to the
    whole group; with their dedupe keys (a copy's is the original's, tagged with its chat)."""
    keys: list[str | None] = [key] * len(actions)
    if group_id is None or not actions:
        return actions, keys
    further = [ChatRef(platform=p, chat_id=c)
               for p, c in session.connection().execute(_FURTHER_CHATS, {"group_id": group_id})]
    if not further:  # the usual case: a group in one chat
        return actions, keys
    group = session.get(Group, group_id)
    chats = [ChatRef(platform=group.platform, chat_id=group.chat_id), *further]
    mirrored, mirrored_keys = [], []
    for action in actions:
        mirrored.append(action)
        mirrored_keys.append(key)
        if not _to_whole_group(action, origin) or action.chat not in chats:
            continue
        mirrored[-1] = _copy_to(action, action.chat)  # its hints, too, in its own chat's way
        for chat in chats:
            if chat != action.chat:
                mirrored.append(_copy_to(action, chat))
                mirrored_keys.append(key and f"{key}>{chat.platform}:{chat.chat_id}"[:255])
    return mirrored, mirrored_keys


def _to_whole_group(action: Action, origin: ChatRef | None) -> bool:
    if isinstance(action, (Acknowledge, DirectMessage)):
        return False
    if isinstance(action, SendMessage):
        return action.reply_to is None or action.track is not None  # an announcement, or a card
    if isinstance(action, EditMessage):
        return action.track is not None  # a card's new tally (an id names one chat's message)
    return origin is None or action.chat != origin  # a picture or file: not when it answers a command


def _copy_to(action: Action, chat: ChatRef) -> Action:
    """The action for one chat of the group: there, command hints use that platform's prefix (a card
    a Telegram vote edited says `!vote` in Matrix)."""
    update: dict = {"chat": chat}
    if isinstance(action, (SendMessage, EditMessage)):
        update["text"] = with_prefix(action.text, _prefix_for(chat.platform), _commands)
    if isinstance(action, SendMessage) and chat != action.chat:
        update["reply_to"] = None
    return action.model_copy(update=update)


def _insert(session: Session, actions: list[Action], rows: list[dict]) -> list[Outgoing]:
    # Of several edits of one message in one event, the last one is kept.
    last_edit = {row["target"]: index for index, row in enumerate(rows) if row["kind"] == "edit"}
    kept = [index for index, row in enumerate(rows) if row["kind"] != "edit" or last_edit[row["target"]] == index]
    connection = session.connection()
    kept_rows = [rows[index] for index in kept]
    if connection.dialect.name == "sqlite" and not any(row["dedupe_key"] for row in kept_rows):
        # The pending-edit unique index makes OR REPLACE drop the older edit of the message.
        ids = _insert_sqlite(connection, kept_rows)
    else:
        for target in last_edit:
            connection.execute(_SUPERSEDE, {"target": target})
        ids = connection.execute(_INSERT, kept_rows).scalars().all()
    return [Outgoing(item_id, actions[index], f"{item_id}.{rows[index]['token']}")
            for item_id, index in zip(ids, kept, strict=True)]


_COLUMNS = ("group_id", "platform", "kind", "target", "dedupe_key", "action", "created_at", "attempts", "token",
            "sealed")


def _insert_sqlite(connection, rows: list[dict]) -> list[int]:
    """The same INSERT OR REPLACE on the driver's cursor: the vote path's one extra statement
    costs half as much without SQLAlchemy's statement machinery. Times are stored as
    UTCDateTime stores them on SQLite (naive UTC text); ids come back in row order because
    AUTOINCREMENT hands them out in the order the rows are inserted."""
    values = ", ".join(["(" + ", ".join("?" * len(_COLUMNS)) + ")"] * len(rows))
    parameters = [_sqlite_value(row[column]) for row in rows for column in _COLUMNS]
    cursor = connection.connection.driver_connection.cursor()
    try:
        cursor.execute(f"INSERT OR REPLACE INTO outbox ({', '.join(_COLUMNS)}) VALUES {values} RETURNING id",
                       parameters)
        return sorted(row[0] for row in cursor.fetchall())
    finally:
        cursor.close()


def _sqlite_value(value):
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
    return value


def record(session: Session, *, key: str, action: Action, group_id: int | None, now: datetime,
           sealed: bool = False) -> bool:
    """Queue an announcement unless one with this key exists; True if queued."""
    if session.scalar(select(exists().where(_TABLE.c.dedupe_key == key))):
        return False
    add(session, action, group_id=group_id, now=now, key=key, sealed=sealed)
    return True


def pending(session: Session, platforms: list[str], limit: int = 500, after: int = 0) -> list[Outgoing]:
    """Undelivered actions for the given platforms, oldest first, from id `after` on (others wait
    for their adapter)."""
    rows = session.execute(
        select(_TABLE.c.id, _TABLE.c.action, _TABLE.c.token)
        .where(_PENDING, _TABLE.c.platform.in_(platforms), _TABLE.c.id > after).order_by(_TABLE.c.id).limit(limit))
    return [Outgoing(row.id, load_action(row.action), f"{row.id}.{row.token}") for row in rows]


def backlog(session: Session, platforms: list[str]) -> tuple[int, datetime | None]:
    """How many actions wait for these platforms, and since when the oldest (for /metrics)."""
    row = session.execute(select(func.count(), func.min(_TABLE.c.created_at))
                          .where(_PENDING, _TABLE.c.platform.in_(platforms))).one()
    return row[0], row[1]


def is_pending_send(session: Session, target: str) -> bool:
    """Is the tracked message an edit waits for still on its way?"""
    return bool(session.scalar(select(exists().where(_PENDING, _TABLE.c.kind != "edit",
                                                     _TABLE.c.target == target))))


# A sealed action's text goes once it is out (or given up): only the row's bookkeeping stays.
_UNSEALED = case((_TABLE.c.sealed, literal("")), else_=_TABLE.c.action)


def mark_sent(session: Session, ids: Iterable[int], now: datetime) -> None:
    ids = list(ids)
    for start in range(0, len(ids), 500):  # keep the IN list within every backend's parameter limit
        session.connection().execute(
            update(_TABLE).where(_TABLE.c.id.in_(ids[start:start + 500]), _TABLE.c.sent_at.is_(None))
            .values(sent_at=now, attempts=_TABLE.c.attempts + 1, action=_UNSEALED))


def mark_attempt(session: Session, item_id: int, error: str) -> int:
    """Count a failed attempt; returns the attempts so far (0: the row is gone, e.g. a superseded edit)."""
    return session.connection().execute(
        update(_TABLE).where(_TABLE.c.id == item_id).values(attempts=_TABLE.c.attempts + 1, error=error[:1000])
        .returning(_TABLE.c.attempts)).scalar() or 0


def mark_failed(session: Session, item_id: int, error: str, now: datetime) -> None:
    """Give up on an action for good (the reason stays with it); its chat's queue moves on."""
    session.connection().execute(update(_TABLE).where(_TABLE.c.id == item_id, _TABLE.c.sent_at.is_(None))
                                 .values(failed_at=now, error=error[:1000], action=_UNSEALED))


def forget_delivered(session: Session, before: datetime) -> int:
    """Delete actions delivered before `before` (failed ones stay, with their reason, for the operator)."""
    return session.connection().execute(delete(_TABLE).where(_TABLE.c.sent_at < before)).rowcount or 0
