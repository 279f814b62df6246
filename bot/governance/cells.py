"""Growing by replication: when a group passes `split_at` members, the bot suggests splitting
into cells that federate, and says how.

The essays' number is about 150: past it people no longer know each other, and a group keeps its
trust by becoming several. The suggestion comes once per threshold: raising `split_at` lets the
group grow on, and passing the new threshold brings it again. It is logged in the group's record,
which is what keeps it from coming twice (the outbox forgets delivered messages after a week).
"""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import select
from sqlmodel import Session

from bot import i18n
from bot.actions import SendMessage
from bot.governance import record
from bot.groups import Directory
from bot.render import federation as render
from storage.models import Group, LogEntry

SUGGESTED = "group.split_suggested"  # the log entry's kind


def split_suggestion(session: Session, directory: Directory, group: Group, now: datetime,
                     prefix: str) -> tuple[SendMessage, str] | None:
    """If the group just passed its `split_at` (once per threshold): the suggestion to split into
    federated cells, and its dedupe key, for the caller to record. Called where a member joins or is
    first seen."""
    settings = directory.settings(session, group.id)
    threshold = settings.split_at
    if threshold is None:
        return None
    members = directory.member_count(session, group)
    if members <= threshold or _suggested_at(session, group.id, threshold):
        return None
    record.append(session, group.id, SUGGESTED, {"members": members, "split_at": threshold}, now)
    with i18n.speaking(settings.language):
        text = render.split_suggestion(members, threshold, prefix)
    return SendMessage(chat=directory.chat_of(group), text=text), f"split:{group.id}:{threshold}"


def _suggested_at(session: Session, group_id: int, threshold: int) -> bool:
    bodies = session.scalars(select(LogEntry.body).where(LogEntry.group_id == group_id, LogEntry.kind == SUGGESTED))
    return any(json.loads(body).get("split_at") == threshold for body in bodies)
