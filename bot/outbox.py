"""Announcements the bot makes unprompted go through an outbox.

They are recorded in the same transaction as the change they announce,
under a dedupe key, and marked sent only after the adapter confirmed. So an
announcement is never created twice, and a crash between recording and
sending re-sends it once at start-up instead of losing it.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlmodel import Session

from bot.actions import Action, dump_action, load_action
from storage.models import Announcement, Group


def record(session: Session, *, key: str, action: Action, group_id: int | None, now: datetime) -> bool:
    """Queue an announcement unless one with this key exists; True if queued."""
    exists = session.scalar(select(Announcement.id).where(Announcement.dedupe_key == key))
    if exists is not None:
        return False
    session.add(Announcement(group_id=group_id, dedupe_key=key, action=dump_action(action), created_at=now))
    return True


def pending(session: Session, platforms: list[str], limit: int = 100) -> list[tuple[int, Action]]:
    """Unsent announcements for groups on the given platforms (others wait for their adapter)."""
    rows = session.scalars(
        select(Announcement).join(Group, Group.id == Announcement.group_id)
        .where(Announcement.sent_at.is_(None), Group.platform.in_(platforms))
        .order_by(Announcement.id).limit(limit)
    )
    return [(row.id, load_action(row.action)) for row in rows]


def mark_sent(session: Session, announcement_id: int, now: datetime) -> None:
    row = session.get(Announcement, announcement_id)
    if row is not None and row.sent_at is None:
        row.sent_at = now
        row.attempts += 1


def mark_failed(session: Session, announcement_id: int) -> None:
    row = session.get(Announcement, announcement_id)
    if row is not None:
        row.attempts += 1
