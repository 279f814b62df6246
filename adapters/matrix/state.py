"""What the Matrix adapter must remember across restarts that matrix-nio does not.

A small SQLite file next to nio's key store in `store_path` (both private to
the bot: the directory is 0700, the files 0600, since they hold the access
token and the encryption keys):

- the login (device id and access token), so a restart reuses the device and
  its keys instead of creating a new device each time;
- the sync token, saved only after every event of a batch was handed to the
  core (nio would save it before), so a crash never skips events — the core's
  processed-event record ignores the ones handled twice;
- encrypted events whose room key has not arrived yet: the sync token moves on
  past them (the key comes in a later sync), so they are kept here until they
  are decrypted and handed to the core, or given up;
- direct-message rooms, per member;
- which reaction on which bot message stands for which choice, and each
  member's vote reactions, so a redacted reaction can be taken back (a
  redaction strips the event it removes: the homeserver cannot tell us later).
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS login (user_id TEXT PRIMARY KEY, device_id TEXT NOT NULL, access_token TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sync (id INTEGER PRIMARY KEY CHECK (id = 1), token TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS direct_rooms (room_id TEXT PRIMARY KEY, user_id TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS direct_rooms_user ON direct_rooms (user_id);
CREATE TABLE IF NOT EXISTS choices (
    event_id TEXT NOT NULL, reaction_key TEXT NOT NULL, payload TEXT NOT NULL,
    PRIMARY KEY (event_id, reaction_key));
CREATE TABLE IF NOT EXISTS reactions (
    reaction_id TEXT PRIMARY KEY, room_id TEXT NOT NULL, sender TEXT NOT NULL, target TEXT NOT NULL,
    payload TEXT NOT NULL, created_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS undecrypted (
    event_id TEXT PRIMARY KEY, room_id TEXT NOT NULL, source TEXT NOT NULL, first_seen REAL NOT NULL);
"""
VARIATION_SELECTOR = "\ufe0f"


def reaction_key(key: str) -> str:
    """Clients differ on the emoji variation selector (👍 vs 👍️): compare without it."""
    return key.replace(VARIATION_SELECTOR, "").strip()


@dataclass(frozen=True)
class Login:
    user_id: str
    device_id: str
    access_token: str


@dataclass(frozen=True)
class VoteReaction:
    room_id: str
    sender: str
    target: str
    payload: str


class AdapterState:
    def __init__(self, store_path: Path) -> None:
        store_path.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = store_path / "commons-matrix.db"
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        os.chmod(path, 0o600)
        self.db.executescript(SCHEMA)

    def close(self) -> None:
        self.db.close()

    def _one(self, sql: str, *args) -> tuple | None:
        return self.db.execute(sql, args).fetchone()

    # login and sync token ----------------------------------------------------------

    def login(self, user_id: str) -> Login | None:
        row = self._one("SELECT device_id, access_token FROM login WHERE user_id = ?", user_id)
        return Login(user_id, *row) if row else None

    def save_login(self, login: Login) -> None:
        self.db.execute("INSERT OR REPLACE INTO login VALUES (?, ?, ?)",
                        (login.user_id, login.device_id, login.access_token))

    def forget_login(self, user_id: str) -> None:
        self.db.execute("DELETE FROM login WHERE user_id = ?", (user_id,))

    def sync_token(self) -> str | None:
        row = self._one("SELECT token FROM sync WHERE id = 1")
        return row[0] if row else None

    def save_sync_token(self, token: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO sync VALUES (1, ?)", (token,))

    # encrypted events waiting for their room key -----------------------------------------

    def save_undecrypted(self, room_id: str, event_id: str, source: dict, first_seen: float) -> None:
        self.db.execute("INSERT OR IGNORE INTO undecrypted VALUES (?, ?, ?, ?)",
                        (event_id, room_id, json.dumps(source), first_seen))

    def undecrypted(self) -> list[tuple[str, dict, float]]:
        """(room id, event source, first seen) of every event still waiting, oldest first."""
        rows = self.db.execute("SELECT room_id, source, first_seen FROM undecrypted ORDER BY first_seen, rowid")
        return [(room_id, json.loads(source), first_seen) for room_id, source, first_seen in rows]

    def forget_undecrypted(self, event_id: str) -> None:
        self.db.execute("DELETE FROM undecrypted WHERE event_id = ?", (event_id,))

    # direct rooms -------------------------------------------------------------------

    def direct_room(self, user_id: str) -> str | None:
        row = self._one("SELECT room_id FROM direct_rooms WHERE user_id = ? ORDER BY rowid DESC", user_id)
        return row[0] if row else None

    def is_direct(self, room_id: str) -> bool:
        return self._one("SELECT 1 FROM direct_rooms WHERE room_id = ?", room_id) is not None

    def save_direct_room(self, room_id: str, user_id: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO direct_rooms VALUES (?, ?)", (room_id, user_id))

    def forget_room(self, room_id: str) -> None:
        self.db.execute("DELETE FROM direct_rooms WHERE room_id = ?", (room_id,))

    # one-tap choices ------------------------------------------------------------------

    def save_choices(self, event_id: str, choices: dict[str, str]) -> None:
        with self.db:
            self.db.execute("DELETE FROM choices WHERE event_id = ?", (event_id,))
            self.db.executemany("INSERT INTO choices VALUES (?, ?, ?)",
                                [(event_id, reaction_key(key), payload) for key, payload in choices.items()])

    def choice(self, event_id: str, key: str) -> str | None:
        row = self._one("SELECT payload FROM choices WHERE event_id = ? AND reaction_key = ?",
                        event_id, reaction_key(key))
        return row[0] if row else None

    def save_reaction(self, reaction_id: str, vote: VoteReaction) -> None:
        self.db.execute("INSERT OR IGNORE INTO reactions VALUES (?, ?, ?, ?, ?, ?)",
                        (reaction_id, vote.room_id, vote.sender, vote.target, vote.payload, time.time()))

    def reaction(self, reaction_id: str) -> VoteReaction | None:
        row = self._one("SELECT room_id, sender, target, payload FROM reactions WHERE reaction_id = ?",
                        reaction_id)
        return VoteReaction(*row) if row else None

    def forget_reaction(self, reaction_id: str) -> None:
        self.db.execute("DELETE FROM reactions WHERE reaction_id = ?", (reaction_id,))

    def prune_reactions(self, older_than_seconds: float) -> None:
        """Votes close within weeks; a reaction taken back after a year changes nothing."""
        self.db.execute("DELETE FROM reactions WHERE created_at < ?", (time.time() - older_than_seconds,))
