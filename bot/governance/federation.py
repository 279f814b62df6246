"""Federations of groups: which groups federate, and the questions, needs and delegates they share.

A federation decides nothing by itself: a shared question is decided in each group by its own
rule and quorum, and the federation's outcome only counts the groups.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlmodel import Session

from storage.models import Federation, FederationGroup, Group


def federation_of(session: Session, group_id: int) -> Federation | None:
    """The federation the group belongs to (a group is in one at most)."""
    place = session.get(FederationGroup, group_id)
    return None if place is None else session.get(Federation, place.federation_id)


def member_groups(session: Session, federation_id: int) -> list[Group]:
    """The federation's groups, in the order they joined."""
    return list(session.scalars(
        select(Group).join(FederationGroup, FederationGroup.group_id == Group.id)
        .where(FederationGroup.federation_id == federation_id)
        .order_by(FederationGroup.joined_at, Group.id)))


def other_groups(session: Session, group_id: int) -> list[Group]:
    """The other groups of the group's federation (none when it is in no federation)."""
    federation = federation_of(session, group_id)
    if federation is None:
        return []
    return [group for group in member_groups(session, federation.id) if group.id != group_id]


def create(session: Session, name: str, founder_group_id: int, now: datetime) -> Federation:
    """A new federation with its founding group in it."""
    federation = Federation(name=name, created_at=now)
    session.add(federation)
    session.flush()
    join(session, federation.id, founder_group_id, now)
    return federation


def join(session: Session, federation_id: int, group_id: int, now: datetime) -> None:
    session.add(FederationGroup(group_id=group_id, federation_id=federation_id, joined_at=now))
    session.flush()
