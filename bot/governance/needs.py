"""Mutual aid: needs and offers, claimed, met or cancelled, every change timestamped.

Who may do what lives here: anyone may claim; the claimer or the author may
release a claim or mark it met; only the author may cancel. An anonymous
need's author is stored (to send them updates and let them close it) but the
rules never behave differently for them in public, so nothing gives them away.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from statistics import median

from sqlalchemy import Select, bindparam, case, func, select
from sqlalchemy.orm import aliased
from sqlmodel import Session

from bot import i18n
from bot.governance import record
from bot.governance.proposals import RuleViolation
from bot.governance.scope import Platforms, scoped, served
from bot.i18n import _
from storage.models import Member, Need, NeedEvent

NEED, OFFER = "need", "offer"
OPEN, CLAIMED, MET, CANCELLED = "open", "claimed", "met", "cancelled"
ACTIVE = (OPEN, CLAIMED)
CATEGORIES = ("food", "housing", "childcare", "transport", "health", "money", "repair", "legal", "other")
CATEGORY = re.compile(r"[^\W_][\w-]{0,23}")
MAX_TEXT = 500
MAX_ACTIVE_PER_GROUP = 10_000
# The essays' promise: a tangible benefit within 48 hours. Past it, a need is overdue.
OVERDUE_AFTER = timedelta(hours=48)


@dataclass(frozen=True)
class Listed:
    """A need as the `needs` list shows it (the author's name only when not anonymous)."""

    need: Need
    author: str | None
    claimer: str | None
    offer_number: int | None


def category_of(text: str | None) -> str:
    if text is None:
        return "other"
    value = text.strip().lower()
    if not CATEGORY.fullmatch(value):
        raise RuleViolation(_("“{category}” is not a category; use one word, like {categories} or other.")
                            .format(category=text[:30], categories=", ".join(CATEGORIES[:-1])))
    return value


def post(session: Session, *, group_id: int, author_id: int, kind: str, text: str, category: str, urgent: bool,
         anonymous: bool, now: datetime, nudge_after: timedelta) -> Need:
    active = session.scalar(select(func.count()).select_from(Need)
                            .where(Need.group_id == group_id, Need.status.in_(ACTIVE)))
    if active >= MAX_ACTIVE_PER_GROUP:
        raise RuleViolation(_("This group has {count} open needs and offers; close some first.")
                            .format(count=i18n.number(active)))
    number = (session.scalar(select(func.max(Need.number)).where(Need.group_id == group_id)) or 0) + 1
    need = Need(group_id=group_id, number=number, kind=kind, text=text, category=category, urgent=urgent,
                author_id=author_id, anonymous=anonymous, created_at=now,
                nudge_at=now + nudge_after if kind == NEED else None)
    session.add(need)
    session.flush()
    _log(session, need, "posted", author_id, now)
    return need


def find(session: Session, group_id: int, number: int, kind: str | None = None) -> Need:
    need = session.scalars(select(Need).where(Need.group_id == group_id, Need.number == number)).first()
    if need is None or (kind is not None and need.kind != kind):
        missing = {NEED: _("There is no need #{number} in this group."),
                   OFFER: _("There is no offer #{number} in this group.")}
        raise RuleViolation(missing.get(kind, _("There is no need or offer #{number} in this group."))
                            .format(number=number))
    return need


def claim(session: Session, need: Need, member_id: int, now: datetime, offer: Need | None = None) -> None:
    """Take a need (or an offer) on; `offer` records which offer meets this need."""
    if need.status == CLAIMED:
        if need.claimer_id == member_id:
            raise RuleViolation(_("You have already claimed #{number}.").format(number=need.number))
        raise RuleViolation(_("#{number} is already claimed by {name}.").format(
            number=need.number, name=name_of(session, need.claimer_id)))
    _require_active(need)
    if need.author_id == member_id and not need.anonymous:
        # (An anonymous author is treated like anyone: a different reply would give them away.)
        own = (_("#{number} is your own need; mark it met with met {number} when it is sorted.") if need.kind == NEED
               else _("#{number} is your own offer; mark it met with met {number} when it is sorted."))
        raise RuleViolation(own.format(number=need.number))
    if offer is not None:
        if need.kind != NEED or offer.kind != OFFER:
            raise RuleViolation(_mismatch(need, offer))
        if offer.status not in ACTIVE:
            ended = (_("Offer #{number} is met.") if offer.status == MET
                     else _("Offer #{number} is cancelled."))
            raise RuleViolation(ended.format(number=offer.number))
    need.status, need.claimer_id, need.claimed_at, need.nudge_at = CLAIMED, member_id, now, None
    need.offer_id = offer.id if offer is not None else None
    _log(session, need, "claimed", member_id, now, offer)


def _mismatch(need: Need, offer: Need) -> str:
    """The refusal of `claim <need#> with <offer#>` given two needs, two offers, or the other way round."""
    if need.kind == NEED:
        message = _("Match a need with an offer: claim <need#> with <offer#> (#{first} is a need, #{second} a need).")
    elif offer.kind == NEED:
        message = _("Match a need with an offer: claim <need#> with <offer#> (#{first} is an offer, #{second} a need).")
    else:
        message = _("Match a need with an offer: claim <need#> with <offer#> "
                    "(#{first} is an offer, #{second} an offer).")
    return message.format(first=need.number, second=offer.number)


def unclaim(session: Session, need: Need, member_id: int, now: datetime, nudge_after: timedelta) -> None:
    """The claimer gives it back, or the author releases it; it waits for someone else."""
    if need.status != CLAIMED:
        unclaimed = {OPEN: _("#{number} is not claimed by anyone."),
                     MET: _("#{number} is not claimed by anyone; it is met."),
                     CANCELLED: _("#{number} is not claimed by anyone; it is cancelled.")}
        raise RuleViolation(unclaimed[need.status].format(number=need.number))
    if member_id not in (need.claimer_id, need.author_id):
        raise RuleViolation(_("Only whoever claimed #{number}, or its author, can release it.")
                            .format(number=need.number))
    need.status, need.claimer_id, need.claimed_at, need.offer_id = OPEN, None, None, None
    if need.kind == NEED and need.nudged_at is None:
        need.nudge_at = now + nudge_after
    _log(session, need, "unclaimed", member_id, now)


def mark_met(session: Session, need: Need, member_id: int, now: datetime) -> None:
    _require_active(need)
    if member_id not in (need.claimer_id, need.author_id):
        raise RuleViolation(_("Only the author of #{number} or whoever claimed it can mark it met.")
                            .format(number=need.number))
    need.status, need.met_at, need.nudge_at = MET, now, None
    _log(session, need, "met", member_id, now)
    # The group log keeps that it was met, not by or for whom (a need may have been posted privately).
    record.append(session, need.group_id, "need.met", {"need": need.number, "kind": need.kind,
                                                       "category": need.category}, now)


def cancel(session: Session, need: Need, member_id: int, now: datetime) -> None:
    _require_active(need)
    if member_id != need.author_id:
        raise RuleViolation(_("Only the author of #{number} can cancel it.").format(number=need.number))
    need.status, need.cancelled_at, need.nudge_at = CANCELLED, now, None
    _log(session, need, "cancelled", member_id, now)


def nudged(session: Session, need: Need, now: datetime) -> None:
    need.nudge_at, need.nudged_at = None, now
    _log(session, need, "nudged", None, now)


def _require_active(need: Need) -> None:
    if need.status not in ACTIVE:
        done = _("#{number} is already met.") if need.status == MET else _("#{number} is already cancelled.")
        raise RuleViolation(done.format(number=need.number))


def _log(session: Session, need: Need, action: str, member_id: int | None, now: datetime,
         offer: Need | None = None) -> None:
    session.add(NeedEvent(need_id=need.id, action=action, member_id=member_id,
                          offer_id=offer.id if offer else None, at=now))


def name_of(session: Session, member_id: int | None) -> str:
    member = session.get(Member, member_id) if member_id is not None else None
    return member.display_name if member else _("someone")


# reading -------------------------------------------------------------------------

_author, _claimer, _offer = aliased(Member), aliased(Member), aliased(Need)


def listing(session: Session, group_id: int, category: str | None, limit: int) -> tuple[list[Listed], int]:
    """Open and claimed needs and offers, urgent first, then oldest; and how many there are in all."""
    where = [Need.group_id == group_id, Need.status.in_(ACTIVE)]
    if category is not None:
        where.append(Need.category == category)
    total = session.scalar(select(func.count()).select_from(Need).where(*where))
    rows = session.execute(
        select(Need, _author.display_name, _claimer.display_name, _offer.number)
        .join(_author, _author.id == Need.author_id)
        .outerjoin(_claimer, _claimer.id == Need.claimer_id)
        .outerjoin(_offer, _offer.id == Need.offer_id)
        .where(*where).order_by(Need.urgent.desc(), Need.created_at, Need.id).limit(limit)
    ).all()
    return [Listed(need, None if need.anonymous else author, claimer, offer)
            for need, author, claimer, offer in rows], total


def categories_in_use(session: Session, group_id: int) -> list[str]:
    return list(session.scalars(select(Need.category).where(Need.group_id == group_id, Need.status.in_(ACTIVE))
                                .group_by(Need.category).order_by(func.count().desc()).limit(12)))


def times_to_met(session: Session, group_id: int, start: datetime, end: datetime) -> list[timedelta]:
    """How long each need met in [start, end) waited, from posting to met."""
    rows = session.execute(select(Need.created_at, Need.met_at).where(
        Need.group_id == group_id, Need.kind == NEED, Need.met_at >= start, Need.met_at < end))
    return [met - created for created, met in rows]


def median_wait(waits: list[timedelta]) -> timedelta | None:
    return median(waits) if waits else None


def open_counts(session: Session, group_id: int, now: datetime) -> tuple[int, int, int]:
    """(open needs, of which overdue: unclaimed past 48 hours, open offers)."""
    overdue = case((Need.created_at <= now - OVERDUE_AFTER, 1), else_=0)
    needs, late = session.execute(
        select(func.count(), func.coalesce(func.sum(case((Need.status == OPEN, overdue), else_=0)), 0))
        .where(Need.group_id == group_id, Need.kind == NEED, Need.status.in_(ACTIVE))).one()
    offers = session.scalar(select(func.count()).select_from(Need).where(
        Need.group_id == group_id, Need.kind == OFFER, Need.status.in_(ACTIVE)))
    return needs, late, offers


def longest_waiting(session: Session, group_id: int) -> Need | None:
    """The unmet need that has waited longest: the challenge an audit report ends with."""
    return session.scalars(select(Need).where(Need.group_id == group_id, Need.kind == NEED,
                                              Need.status.in_(ACTIVE))
                           .order_by(Need.created_at, Need.id).limit(1)).first()


def is_overdue(need: Need, now: datetime) -> bool:
    return need.kind == NEED and need.status == OPEN and now - need.created_at >= OVERDUE_AFTER


# the scheduler -------------------------------------------------------------------

_needs = Need.__table__.c
_NEXT_NUDGE = (select(_needs.id, _needs.nudge_at).where(_needs.nudge_at <= bindparam("now"))
               .order_by(_needs.nudge_at, _needs.id).limit(1))


def nudges_due(platforms: Platforms = None) -> Select:
    return scoped(_NEXT_NUDGE, _needs.group_id, platforms)


def next_nudge(session: Session, platforms: Platforms = None) -> datetime | None:
    return session.scalar(select(func.min(Need.nudge_at)).where(Need.nudge_at.is_not(None),
                                                                served(Need.group_id, platforms)))
