"""The group's log: every governance event, in order, chained by hashes.

An entry is (seq, kind, body, prev, hash): `seq` counts from 1 per group,
`body` is canonical JSON (keys sorted, no spaces, UTF-8, no floats), `prev`
is the hash of the entry before (64 zeros for the first) and

    hash = SHA-256(prev + canonical body)

so changing, removing or reordering any entry changes every hash after it. An
entry is appended in the transaction of the event it records; the primary key
(group, seq) makes a second writer of the same place fail instead of forking
the chain. Checkpoints (the size and the head's hash, in short) go out with
every outcome announcement and in the weekly digest, so members keep copies of
the head the bot cannot take back. `commons-bot verify` checks an export
offline (bot.verify).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, insert, select
from sqlmodel import Session

from bot.governance.chain import GENESIS, SHORT, Head, canonical, entry_hash, stamp
from storage.models import LogEntry

__all__ = ["GENESIS", "SHORT", "Head", "canonical", "entry_hash", "stamp", "append", "head", "latest",
           "export_lines", "export_line"]

_log = LogEntry.__table__.c
# Built once: a vote appends an entry (two statements on the connection).
_HEAD = (select(_log.seq, _log.hash).where(_log.group_id == bindparam("group_id"))
         .order_by(_log.seq.desc()).limit(1))
_APPEND = insert(LogEntry.__table__)


def append(session: Session, group_id: int, kind: str, body: dict[str, Any], at: datetime) -> Head:
    """Add one entry after the group's head (in the caller's transaction)."""
    connection = session.connection()
    if connection.dialect.name == "sqlite":
        return _append_sqlite(connection, group_id, kind, body, at)
    head = connection.execute(_HEAD, {"group_id": group_id}).first()
    seq, prev = (head.seq + 1, head.hash) if head else (1, GENESIS)
    text = canonical({**body, "at": stamp(at)})
    digest = entry_hash(prev, text)
    connection.execute(_APPEND, {"group_id": group_id, "seq": seq, "kind": kind, "body": text,
                                 "prev_hash": prev, "hash": digest})
    return Head(seq, digest)


def _append_sqlite(connection, group_id: int, kind: str, body: dict[str, Any], at: datetime) -> Head:
    """The same two statements on the driver's cursor: a vote appends an entry, and SQLAlchemy's
    statement machinery would cost as much as the statements themselves."""
    cursor = connection.connection.driver_connection.cursor()
    try:
        cursor.execute("SELECT seq, hash FROM log_entries WHERE group_id = ? ORDER BY seq DESC LIMIT 1", (group_id,))
        found = cursor.fetchone()
        seq, prev = (found[0] + 1, found[1]) if found else (1, GENESIS)
        text = canonical({**body, "at": stamp(at)})
        digest = entry_hash(prev, text)
        cursor.execute("INSERT INTO log_entries (group_id, seq, kind, body, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?)",
                       (group_id, seq, kind, text, prev, digest))
        return Head(seq, digest)
    finally:
        cursor.close()


def head(session: Session, group_id: int) -> Head:
    found = session.connection().execute(_HEAD, {"group_id": group_id}).first()
    return Head(found.seq, found.hash) if found else Head(0, GENESIS)


def latest(session: Session, group_id: int, count: int) -> list[LogEntry]:
    rows = session.scalars(select(LogEntry).where(LogEntry.group_id == group_id)
                           .order_by(LogEntry.seq.desc()).limit(count))
    return list(reversed(list(rows)))


def export_lines(session: Session, group_id: int, batch: int = 1000) -> Iterator[str]:
    """The whole chain as JSON Lines, oldest first, read in batches."""
    after = 0
    while True:
        rows = list(session.scalars(select(LogEntry).where(LogEntry.group_id == group_id, LogEntry.seq > after)
                                    .order_by(LogEntry.seq).limit(batch)))
        for entry in rows:
            yield export_line(entry)
        if len(rows) < batch:
            return
        after = rows[-1].seq


def export_line(entry: LogEntry) -> str:
    """One entry of an export: its body as stored (canonical), the rest around it."""
    return (f'{{"seq":{entry.seq},"kind":{json.dumps(entry.kind)},"prev":"{entry.prev_hash}",'
            f'"hash":"{entry.hash}","body":{entry.body}}}')
