"""Which groups a process's scheduled work covers: those of the platform accounts it serves.

Several processes may share one database, each serving its own bot accounts
(bot/standby.py); each closes the votes, lapses the mandates and posts the
digests of its own groups only. `None` means every group (one process serves
them all: the console, tests, a single bot).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Select, exists, select, true
from sqlmodel import Session

from storage.models import Group

Platforms = Sequence[str] | None


def needed(session: Session, platforms: Platforms) -> Platforms:
    """The platforms to narrow scheduled work to, or None when every group in the database is
    theirs anyway (the usual case: one process serves everything), which spares every look for
    due work its extra condition."""
    if platforms is None:
        return None
    others = session.scalar(select(exists().where(Group.platform.not_in(list(platforms)))))
    return platforms if others else None


def served(group_id, platforms: Platforms):
    """A condition on a row's group id column: its group is one of these platforms'. A correlated
    EXISTS, so a look for the earliest due row checks candidates in due order and stops at the
    first of ours (an IN over the groups would first list all of them, for every look)."""
    if platforms is None:
        return true()
    return exists().where(Group.id == group_id, Group.platform.in_(list(platforms)))


def served_groups(platforms: Platforms):
    """The same condition on the groups table itself."""
    return true() if platforms is None else Group.platform.in_(list(platforms))


def scoped(statement: Select, group_id, platforms: Platforms) -> Select:
    """A prepared look for due work, narrowed to these platforms' groups (unchanged for all)."""
    return statement if platforms is None else statement.where(served(group_id, platforms))


def scoped_groups(statement: Select, platforms: Platforms) -> Select:
    """The same for a look on the groups table itself."""
    return statement if platforms is None else statement.where(served_groups(platforms))
