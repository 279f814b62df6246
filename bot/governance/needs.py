"""Mutual aid: needs and offers, claimed, met or cancelled, every change timestamped.

Who may do what lives here: anyone may claim; the claimer or the author may
release a claim or mark it met; only the author may cancel. An anonymous
need's author is stored (to send them updates and let them close it) but the
rules never behave differently for them in public, so nothing gives them away.

A need shared with a federation (`share=federation`) lives in its group; every
other group of the federation holds a copy (`shared_of`) with its own number.
A copy is the same need: whatever is done to one (claim, release, met, cancel)
changes the original and every copy together, and the history (events, the
group log, the audit's figures) stays with the original alone.
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
from storage.models import Group, Member, Need, NeedEvent

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
    shared_by: str | None = None  # a copy: the title of the group it was shared by


def category_of(text: str | None) -> str:
    if text is None:
        return "other"
    value = text.strip().lower()
    if not CATEGORY.fullmatch(value):
        raise RuleViolation(_("“{category}” is not a category; use one word, like {categories} or other.")
                            .format(category=text[:30], categories=", ".join(CATEGORIES[:-1])))
    return value


def post(session: Session, *, group_id: int, author_id: int, kind: str, text: str, category: str, urgent: bool,
         anonymous: bool, now: datetime, nudge_after: timedelta | None, shared_of: int | None = None) -> Need:
    active = session.scalar(select(func.count()).select_from(Need)
                            .where(Need.group_id == group_id, Need.status.in_(ACTIVE)))
    if active >= MAX_ACTIVE_PER_GROUP:
        raise RuleViolation(_("This group has {count} open needs and offers; close some first.")
                            .format(count=i18n.number(active)))
    number = (session.scalar(select(func.max(Need.number)).where(Need.group_id == group_id)) or 0) + 1
    need = Need(group_id=group_id, number=number, kind=kind, text=text, category=category, urgent=urgent,
                author_id=author_id, anonymous=anonymous, created_at=now, shared_of=shared_of,
                nudge_at=now + nudge_after if kind == NEED and nudge_after is not None else None)
    session.add(need)
    session.flush()
    if shared_of is None:  # a copy's history is its original's
        _log(session, need, "posted", author_id, now)
    return need


def share(session: Session, need: Need, groups: list[Group], now: datetime) -> list[Need]:
    """A copy of `need` in each of `groups` (the other groups of its federation). Copies are never
    nudged: the original is, once, in its own group."""
    return [post(session, group_id=group.id, author_id=need.author_id, kind=need.kind, text=need.text,
                 category=need.category, urgent=need.urgent, anonymous=need.anonymous, now=now, nudge_after=None,
                 shared_of=need.id) for group in groups]


def original_of(session: Session, need: Need) -> Need:
    return need if need.shared_of is None else session.get(Need, need.shared_of)


def family(session: Session, need: Need) -> list[Need]:
    """The original of `need` first, then every copy of it (just the need when it is not shared)."""
    original = original_of(session, need)
    return [original, *session.scalars(select(Need).where(Need.shared_of == original.id).order_by(Need.id))]


def same_person(session: Session, member_id: int | None, other_id: int | None) -> bool:
    """Two member rows of one account: a shared need's author or claimer acting from another group
    of the federation is a member there under another id."""
    if member_id is None or other_id is None:
        return False
    if member_id == other_id:
        return True
    one, other = session.get(Member, member_id), session.get(Member, other_id)
    return (one is not None and other is not None and one.user_id == other.user_id
            and one.platform == other.platform)


def is_author(session: Session, need: Need, member_id: int | None) -> bool:
    return same_person(session, member_id, need.author_id)


def _set(session: Session, need: Need, **fields) -> None:
    """Change a need and all its copies together: a copy is the same need in another group."""
    for each in family(session, need):
        for name, value in fields.items():
            setattr(each, name, value)


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
    if is_author(session, need, member_id) and not need.anonymous:
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
    _set(session, need, status=CLAIMED, claimer_id=member_id, claimed_at=now, nudge_at=None, offer_id=None)
    # The offer is one of the group where it was matched: only that group's need points at it.
    need.offer_id = offer.id if offer is not None else None
    _log(session, original_of(session, need), "claimed", member_id, now, offer)


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
    if not (same_person(session, member_id, need.claimer_id) or is_author(session, need, member_id)):
        raise RuleViolation(_("Only whoever claimed #{number}, or its author, can release it.")
                            .format(number=need.number))
    _set(session, need, status=OPEN, claimer_id=None, claimed_at=None, offer_id=None)
    original = original_of(session, need)
    if original.kind == NEED and original.nudged_at is None:
        original.nudge_at = now + nudge_after  # only the original is nudged, in its own group
    _log(session, original, "unclaimed", member_id, now)


def mark_met(session: Session, need: Need, member_id: int, now: datetime) -> None:
    _require_active(need)
    if not (same_person(session, member_id, need.claimer_id) or is_author(session, need, member_id)):
        raise RuleViolation(_("Only the author of #{number} or whoever claimed it can mark it met.")
                            .format(number=need.number))
    _set(session, need, status=MET, met_at=now, nudge_at=None)
    original = original_of(session, need)
    _log(session, original, "met", member_id, now)
    # The group log keeps that it was met, not by or for whom (a need may have been posted privately).
    record.append(session, original.group_id, "need.met", {"need": original.number, "kind": original.kind,
                                                           "category": original.category}, now)


def cancel(session: Session, need: Need, member_id: int, now: datetime) -> None:
    _require_active(need)
    if not is_author(session, need, member_id):
        raise RuleViolation(_("Only the author of #{number} can cancel it.").format(number=need.number))
    _set(session, need, status=CANCELLED, cancelled_at=now, nudge_at=None)
    _log(session, original_of(session, need), "cancelled", member_id, now)


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

_author, _claimer, _offer, _origin = aliased(Member), aliased(Member), aliased(Need), aliased(Need)


def listing(session: Session, group_id: int, category: str | None, limit: int) -> tuple[list[Listed], int]:
    """Open and claimed needs and offers, urgent first, then oldest; and how many there are in all."""
    where = [Need.group_id == group_id, Need.status.in_(ACTIVE)]
    if category is not None:
        where.append(Need.category == category)
    total = session.scalar(select(func.count()).select_from(Need).where(*where))
    rows = session.execute(
        select(Need, _author.display_name, _claimer.display_name, _offer.number, Group.title)
        .join(_author, _author.id == Need.author_id)
        .outerjoin(_claimer, _claimer.id == Need.claimer_id)
        .outerjoin(_offer, _offer.id == Need.offer_id)
        .outerjoin(_origin, _origin.id == Need.shared_of).outerjoin(Group, Group.id == _origin.group_id)
        .where(*where).order_by(Need.urgent.desc(), Need.created_at, Need.id).limit(limit)
    ).all()
    return [Listed(need, None if need.anonymous else author, claimer, offer,
                   (origin or _("another group")) if need.shared_of is not None else None)
            for need, author, claimer, offer, origin in rows], total


def categories_in_use(session: Session, group_id: int) -> list[str]:
    return list(session.scalars(select(Need.category).where(Need.group_id == group_id, Need.status.in_(ACTIVE))
                                .group_by(Need.category).order_by(func.count().desc()).limit(12)))


def times_to_met(session: Session, group_id: int, start: datetime, end: datetime) -> list[timedelta]:
    """How long each need met in [start, end) waited, from posting to met (a shared need counts in
    the group it was posted in, not in every group that held a copy)."""
    rows = session.execute(select(Need.created_at, Need.met_at).where(
        Need.group_id == group_id, Need.kind == NEED, Need.met_at >= start, Need.met_at < end,
        Need.shared_of.is_(None)))
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
