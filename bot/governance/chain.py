"""The chain of the group log, pure: how an entry is written and hashed (see bot.governance.record).
No database here, so the offline verifier starts quickly."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from typing import Any, NamedTuple

GENESIS = "0" * 64
SHORT = 12  # hex digits of a hash in a checkpoint


class Head(NamedTuple):
    seq: int  # entries so far
    hash: str

    def short(self) -> str:
        """A checkpoint as members copy it: `1234:3f9a0c1b2d4e`."""
        return f"{self.seq}:{self.hash[:SHORT]}"


def canonical(body: dict[str, Any]) -> str:
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def entry_hash(prev: str, body_text: str) -> str:
    return hashlib.sha256((prev + body_text).encode()).hexdigest()


def stamp(moment: datetime) -> str:
    """Times in bodies: UTC, to the second, ISO 8601 with a Z."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
