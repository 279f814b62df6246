"""Peer mediation: conflict tended early, privately, by two members drawn by lot.

A member asks privately; two mediators are drawn among those who stand for mediation, never a
party to it. Who asked, about whom and what they wrote stay between the requester and the two
mediators: nothing of it goes into the group log, the group's messages or any export. The group
only learns that a mediation is under way, and audits count how many were opened and closed.

The draw uses the lottery rule with a fresh secret that is never published: a public draw
would name the candidates, and a candidate list without the requester names the requester.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, or_, select
from sqlmodel import Session

from bot import i18n
from bot.governance import lottery, tasks
from bot.governance.errors import RuleViolation
from bot.i18n import _, ngettext
from storage.models import Mediation, Member

MAX_ABOUT = 1000
MAX_NOTE = 500
MAX_OPEN_PER_REQUESTER = 3
MEDIATORS = 2


@dataclass(frozen=True)
class Opened:
    mediation: Mediation
    mediators: list[Member]
    other: Member | None


def request(session: Session, group_id: int, requester: Member, other: Member | None, about: str | None,
            now: datetime) -> Opened:
    if about is not None and len(about) > MAX_ABOUT:
        raise RuleViolation(_("That is {length} characters; keep it under {limit}. The mediators will "
                              "hear the rest from you.").format(length=i18n.number(len(about)),
                                                                limit=i18n.number(MAX_ABOUT)))
    if other is not None and other.id == requester.id:
        raise RuleViolation(_("with= names the other person in the conflict, not you."))
    still_open = session.scalar(select(func.count()).select_from(Mediation).where(
        Mediation.requester_id == requester.id, Mediation.closed_at.is_(None)))
    if still_open >= MAX_OPEN_PER_REQUESTER:
        raise RuleViolation(ngettext("You have {count} mediation under way; let the mediators close one first.",
                                     "You have {count} mediations under way; let the mediators close one first.",
                                     still_open).format(count=still_open))
    parties = {requester.id} | ({other.id} if other else set())
    pool = [member for member in tasks.pool(session, group_id, tasks.MEDIATION) if member.id not in parties]
    if not pool:
        raise RuleViolation(_("Nobody else in this group stands as a mediator yet, so I cannot draw any. Nothing "
                              "was recorded. Members stand with volunteer mediation in the group."))
    seed = lottery.seed(lottery.new_secret(), [])
    picks = lottery.draw(seed, [member.id for member in pool], MEDIATORS)
    number = (session.scalar(select(func.max(Mediation.number)).where(Mediation.group_id == group_id)) or 0) + 1
    mediation = Mediation(group_id=group_id, number=number, requester_id=requester.id,
                          other_party_id=other.id if other else None, about=about or None,
                          first_mediator_id=picks[0], second_mediator_id=picks[1] if len(picks) > 1 else None,
                          seed=seed, opened_at=now)
    session.add(mediation)
    session.flush()
    chosen = {member.id: member for member in pool}
    return Opened(mediation, [chosen[pick] for pick in picks], other)


def mediators_of(mediation: Mediation) -> list[int]:
    return [m for m in (mediation.first_mediator_id, mediation.second_mediator_id) if m is not None]


def mine(session: Session, member_ids: list[int], number: int) -> list[Mediation]:
    """Mediations numbered `number` that one of these memberships mediates (one per group at most)."""
    return list(session.scalars(select(Mediation).where(
        Mediation.number == number,
        or_(Mediation.first_mediator_id.in_(member_ids), Mediation.second_mediator_id.in_(member_ids)))))


def close(session: Session, mediation: Mediation, mediator: Member, note: str | None, now: datetime) -> None:
    if mediation.closed_at is not None:
        raise RuleViolation(_("Mediation #{number} is closed already.").format(number=mediation.number))
    if note is not None and len(note) > MAX_NOTE:
        raise RuleViolation(_("Keep the note under {limit} characters.").format(limit=MAX_NOTE))
    mediation.closed_at, mediation.closed_by, mediation.note = now, mediator.id, note or None


def counts(session: Session, group_id: int, start: datetime, end: datetime) -> tuple[int, int]:
    """(opened, closed) in [start, end): the only figures about mediation anyone else sees."""
    opened = session.scalar(select(func.count()).select_from(Mediation).where(
        Mediation.group_id == group_id, Mediation.opened_at >= start, Mediation.opened_at < end))
    closed = session.scalar(select(func.count()).select_from(Mediation).where(
        Mediation.group_id == group_id, Mediation.closed_at >= start, Mediation.closed_at < end))
    return opened, closed
