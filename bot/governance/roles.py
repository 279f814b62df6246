"""Role rotation: every role has a term, mandates end on their own unless the
group renews them, nobody holds a seat beyond `max_terms` terms in a row,
lotteries are verifiable (bot.governance.draws), and skills circulate through trainees.

Each rule lives here; commands and the scheduler only call these functions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Select, bindparam, func, select
from sqlmodel import Session

from bot import i18n
from bot.commands.args import Quorum
from bot.durations import format_duration
from bot.governance import record, tasks
from bot.governance.proposals import OPEN, RuleViolation, open_proposal
from bot.governance.scope import Platforms, scoped, served
from bot.i18n import _, ngettext
from storage.models import Mandate, Member, Proposal, Role, RoleChange, Trainee, Volunteer

FILLS = ("election", "lottery", "volunteer")
MAX_ROLES = 50
MAX_SEATS = 50
MAX_HANDOVER = 2000
NAME = re.compile(r"[^\W_][\w-]{0,31}")
EXPIRED, RENEWED, RECALLED, STEPPED_DOWN, RETIRED = "expired", "renewed", "recalled", "stepped down", "retired"


@dataclass(frozen=True)
class RoleTerms:
    """What `role add` and `role edit` may set."""

    term: timedelta | None = None
    seats: int | None = None
    max_terms: int | None = None
    fill: str | None = None
    handover: str | None = None
    trainees_required: int | None = None
    delegate: bool | None = None  # the group's delegate to its federation (one such role per group)


# roles ------------------------------------------------------------------------

def find_role(session: Session, group_id: int, name: str) -> Role:
    role = session.scalars(select(Role).where(Role.group_id == group_id, Role.key == name.strip().lower(),
                                              Role.retired_at.is_(None))).first()
    if role is None:
        names = [r.name for r in active_roles(session, group_id)]
        if names:
            raise RuleViolation(_("There is no role “{name}”. Roles here: {roles}.").format(
                name=name[:32], roles=", ".join(names)))
        raise RuleViolation(_("There is no role “{name}”. This group has no roles yet (role add).").format(
            name=name[:32]))
    return role


def active_roles(session: Session, group_id: int) -> list[Role]:
    return list(session.scalars(select(Role).where(Role.group_id == group_id, Role.retired_at.is_(None))
                                .order_by(Role.key)))


def add_role(session: Session, group_id: int, name: str, terms: RoleTerms, member_id: int,
             now: datetime) -> Role:
    if not NAME.fullmatch(name):
        raise RuleViolation(_("A role name is one word of letters, digits, - or _ (up to 32), like facilitator."))
    if tasks.is_reserved(name):
        raise RuleViolation(_("“{name}” is the name of a task members stand for (volunteer {task}); "
                              "give the role another name.").format(name=name, task=name.lower()))
    if terms.term is None:
        raise RuleViolation(_("Every role needs a term, like term=90d: power expires by default."))
    _validate(terms)
    existing = session.scalars(select(Role).where(Role.group_id == group_id, Role.key == name.lower())).first()
    if existing is not None and existing.retired_at is None:
        raise RuleViolation(_("The role {role} exists already; change it with role edit.").format(role=existing.name))
    if len(active_roles(session, group_id)) >= MAX_ROLES:
        raise RuleViolation(_("A group can have at most {count} roles.").format(count=MAX_ROLES))
    if terms.delegate:
        _one_delegate(session, group_id, None)
    role = existing or Role(group_id=group_id, key=name.lower(), name=name, term_seconds=0, created_at=now)
    role.name, role.retired_at = name, None
    role.term_seconds = int(terms.term.total_seconds())
    role.seats, role.max_terms = terms.seats or 1, terms.max_terms or 1
    role.fill, role.handover = terms.fill or "election", terms.handover
    role.trainees_required = terms.trainees_required or 0
    role.delegate = bool(terms.delegate)
    session.add(role)
    session.flush()
    _log(session, role, member_id, "added", describe(role), now)
    return role


def edit_role(session: Session, role: Role, terms: RoleTerms, member_id: int, now: datetime) -> list[str]:
    """Change a role's definition; open mandates keep their end date (the new term applies from the next)."""
    _validate(terms)
    if terms.delegate and not role.delegate:
        _one_delegate(session, role.group_id, role.id)
    changes = []
    for field, value in (("term_seconds", terms.term and int(terms.term.total_seconds())), ("seats", terms.seats),
                         ("max_terms", terms.max_terms), ("fill", terms.fill), ("handover", terms.handover),
                         ("trainees_required", terms.trainees_required), ("delegate", terms.delegate)):
        if value is not None and getattr(role, field) != value:
            changes.append(field.replace("_seconds", ""))
            setattr(role, field, value)
    if not changes:
        raise RuleViolation(_("Nothing to change; give at least one of term=, seats=, max_terms=, fill=, "
                              "handover=, trainees_required=."))
    if role.seats < len(holders(session, role)):
        count = len(holders(session, role))
        raise RuleViolation(ngettext("{role} has {count} holder now; reduce seats after their mandates end.",
                                     "{role} has {count} holders now; reduce seats after their mandates end.",
                                     count).format(role=role.name, count=count))
    _log(session, role, member_id, "edited", f"changed {', '.join(changes)}: {describe(role)}", now)
    return changes


def retire_role(session: Session, role: Role, member_id: int, now: datetime) -> list[Mandate]:
    """Retire a role: its mandates end now; its history stays."""
    ended = []
    for mandate, __ in holders(session, role):
        _end(session, mandate, now, RETIRED)
        ended.append(mandate)
    role.retired_at = now
    _log(session, role, member_id, "retired", describe(role), now)
    return ended


def _one_delegate(session: Session, group_id: int, role_id: int | None) -> None:
    """A group speaks to its federation through one delegate role (its seats may be several)."""
    other = session.scalars(select(Role).where(Role.group_id == group_id, Role.delegate, Role.retired_at.is_(None),
                                               Role.id != (role_id or 0))).first()
    if other is not None:
        raise RuleViolation(_("{role} is this group's delegate role already; a group has one (give it more seats "
                              "if needed).").format(role=other.name))


def defined_by(session: Session, role: Role) -> int | None:
    """The member who defined the role (None if unknown)."""
    return session.scalar(select(RoleChange.member_id).where(RoleChange.role_id == role.id,
                                                             RoleChange.action == "added").limit(1))


def describe(role: Role) -> str:
    return (f"term {format_duration(timedelta(seconds=role.term_seconds))}, {role.seats} seat"
            f"{'s' if role.seats != 1 else ''}, max {role.max_terms} term{'s' if role.max_terms != 1 else ''} "
            f"in a row, fill by {role.fill}"
            + (f", {role.trainees_required} trainees before renewal" if role.trainees_required else "")
            + (", delegate to the federation" if role.delegate else ""))


def term_of(role: Role) -> timedelta:
    return timedelta(seconds=role.term_seconds)


def _validate(terms: RoleTerms) -> None:
    if terms.seats is not None and not 1 <= terms.seats <= MAX_SEATS:
        raise RuleViolation(_("seats= must be between 1 and {most}.").format(most=MAX_SEATS))
    if terms.max_terms is not None and not 1 <= terms.max_terms <= 20:
        raise RuleViolation(_("max_terms= must be between 1 and 20."))
    if terms.trainees_required is not None and not 0 <= terms.trainees_required <= 10:
        raise RuleViolation(_("trainees_required= must be between 0 and 10."))
    if terms.handover is not None and len(terms.handover) > MAX_HANDOVER:
        raise RuleViolation(_("Keep the handover note under {count} characters.").format(
            count=i18n.number(MAX_HANDOVER)))


def _log(session: Session, role: Role, member_id: int | None, action: str, summary: str, now: datetime) -> None:
    session.add(RoleChange(group_id=role.group_id, role_id=role.id, member_id=member_id, action=action,
                           summary=summary, changed_at=now))


# people around a role ----------------------------------------------------------

def holders(session: Session, role: Role) -> list[tuple[Mandate, Member]]:
    return [tuple(row) for row in session.execute(
        select(Mandate, Member).join(Member, Member.id == Mandate.member_id)
        .where(Mandate.role_id == role.id, Mandate.ended_at.is_(None)).order_by(Mandate.seat)).all()]


def mandate_of(session: Session, role: Role, member_id: int) -> Mandate | None:
    return session.scalars(select(Mandate).where(Mandate.role_id == role.id, Mandate.member_id == member_id,
                                                 Mandate.ended_at.is_(None))).first()


def free_seats(session: Session, role: Role) -> list[int]:
    taken = {mandate.seat for mandate, __ in holders(session, role)}
    return [seat for seat in range(1, role.seats + 1) if seat not in taken]


def volunteers(session: Session, role: Role) -> list[Member]:
    return list(session.scalars(select(Member).join(Volunteer, Volunteer.member_id == Member.id)
                                .where(Volunteer.role_id == role.id).order_by(Volunteer.since, Member.id)))


def trainees(session: Session, role: Role, since: datetime | None = None) -> list[Member]:
    query = select(Member).join(Trainee, Trainee.member_id == Member.id).where(Trainee.role_id == role.id)
    if since is not None:
        query = query.where(Trainee.since >= since)
    return list(session.scalars(query.order_by(Trainee.since, Member.id)))


def history(session: Session, role: Role, limit: int = 3) -> list[tuple[Mandate, Member]]:
    return [tuple(row) for row in session.execute(
        select(Mandate, Member).join(Member, Member.id == Mandate.member_id)
        .where(Mandate.role_id == role.id, Mandate.ended_at.is_not(None))
        .order_by(Mandate.ended_at.desc(), Mandate.id.desc()).limit(limit)).all()]


def streak(session: Session, role: Role, member_id: int, now: datetime) -> int:
    """Consecutive terms the member holds or just held: sitting out a full term resets it."""
    last = session.scalars(select(Mandate).where(Mandate.role_id == role.id, Mandate.member_id == member_id)
                           .order_by(Mandate.ends_at.desc(), Mandate.id.desc())).first()
    if last is None:
        return 0
    if last.ended_at is None:
        return last.term_number
    return last.term_number if now - last.ended_at < term_of(role) else 0


def eligible(session: Session, role: Role, now: datetime) -> list[Member]:
    """Volunteers who may take a seat now: not holding one, not at their consecutive-term limit."""
    seated = {mandate.member_id for mandate, __ in holders(session, role)}
    return [m for m in volunteers(session, role)
            if m.id not in seated and streak(session, role, m.id, now) < role.max_terms]


def is_volunteer(session: Session, role: Role, member_id: int) -> bool:
    return session.get(Volunteer, (role.id, member_id)) is not None


def volunteer(session: Session, role: Role, member_id: int, now: datetime) -> None:
    if mandate_of(session, role, member_id) is not None:
        raise RuleViolation(_("You already hold {role}.").format(role=role.name))
    if session.get(Volunteer, (role.id, member_id)) is not None:
        raise RuleViolation(_("You are already standing for {role}.").format(role=role.name))
    session.add(Volunteer(role_id=role.id, member_id=member_id, since=now))


def unvolunteer(session: Session, role: Role, member_id: int) -> None:
    row = session.get(Volunteer, (role.id, member_id))
    if row is None:
        raise RuleViolation(_("You are not standing for {role}.").format(role=role.name))
    session.delete(row)


def shadow(session: Session, role: Role, member_id: int, now: datetime) -> None:
    if mandate_of(session, role, member_id) is not None:
        raise RuleViolation(_("You hold {role} yourself; invite someone else to shadow you.").format(role=role.name))
    row = session.get(Trainee, (role.id, member_id))
    if row is not None and any(row.since >= m.term_started_at for m, __ in holders(session, role)):
        raise RuleViolation(_("You are already shadowing {role} this term.").format(role=role.name))
    if row is None:
        session.add(Trainee(role_id=role.id, member_id=member_id, since=now))
    else:
        row.since = now  # shadowing again in a new term counts for this term


# filling seats -------------------------------------------------------------------

def seat(session: Session, role: Role, member_id: int, filled_by: str, now: datetime,
         warnings: tuple[timedelta, ...]) -> Mandate:
    """Give a member a free seat; refuses when no seat is free or they are at their limit."""
    free = free_seats(session, role)
    if not free:
        raise RuleViolation(_("Every seat of {role} is taken.").format(role=role.name))
    if mandate_of(session, role, member_id) is not None:
        raise RuleViolation(_("That member already holds {role}.").format(role=role.name))
    terms = streak(session, role, member_id, now) + 1
    if terms > role.max_terms:
        held = terms - 1
        raise RuleViolation(ngettext("That member has held {role} {count} term in a row; the limit is {limit}.",
                                     "That member has held {role} {count} terms in a row; the limit is {limit}.",
                                     held).format(role=role.name, count=held, limit=role.max_terms))
    mandate = Mandate(group_id=role.group_id, role_id=role.id, member_id=member_id, seat=free[0],
                      filled_by=filled_by, term_number=terms, started_at=now, term_started_at=now,
                      ends_at=now + term_of(role))
    mandate.next_warning_at = next_warning(mandate.ends_at, warnings, now, now)
    session.add(mandate)
    volunteer_row = session.get(Volunteer, (role.id, member_id))
    if volunteer_row is not None:
        session.delete(volunteer_row)  # standing is over once seated
    session.flush()
    _log_mandate(session, "mandate.started", mandate, now)
    return mandate


def open_role_proposal(session: Session, role: Role, kind: str) -> Proposal | None:
    return session.scalars(select(Proposal).where(Proposal.role_id == role.id, Proposal.kind == kind,
                                                  Proposal.status == OPEN)).first()


def pending_appointments(session: Session, role: Role) -> list[Proposal]:
    return list(session.scalars(select(Proposal).where(Proposal.role_id == role.id, Proposal.status == OPEN,
                                                       Proposal.kind == "appointment")))


def open_appointment(session: Session, role: Role, member_id: int, now: datetime,
                     duration: timedelta) -> Proposal | None:
    """fill=volunteer: a consent proposal seats the volunteer at its deadline unless someone
    blocks — nobody is ever appointed silently. None when no seat is left to offer or the
    member is not eligible or already up for one."""
    pending = pending_appointments(session, role)
    if len(free_seats(session, role)) - len(pending) <= 0:
        return None
    if member_id not in {m.id for m in eligible(session, role, now)}:
        return None
    if any(p.subject_member_id == member_id for p in pending):
        return None
    member = session.get(Member, member_id)
    # The bot's own title and details are written in the group's language, like a member's.
    title = _("Seat {member} as {role}").format(member=member.display_name, role=role.name)
    return open_proposal(
        session, group_id=role.group_id, author_id=member_id, title=title,
        details=_("A volunteer takes the seat unless someone blocks."), rule="consent", quorum=Quorum(0, False),
        options=None, now=now, duration=duration, kind="appointment", role_id=role.id, subject_member_id=member_id)


def open_appointments(session: Session, role: Role, now: datetime, duration: timedelta) -> list[Proposal]:
    """After a seat opens: offer it to eligible volunteers, first come first served."""
    opened = []
    if role.fill != "volunteer":
        return opened
    for candidate in eligible(session, role, now):
        proposal = open_appointment(session, role, candidate.id, now, duration)
        if proposal is None:
            break
        opened.append(proposal)
    return opened


# ending and extending mandates -----------------------------------------------------

def step_down(session: Session, role: Role, member_id: int, now: datetime) -> Mandate:
    mandate = mandate_of(session, role, member_id)
    if mandate is None:
        raise RuleViolation(_("You do not hold {role}, so there is nothing to step down from.").format(role=role.name))
    _end(session, mandate, now, STEPPED_DOWN)
    return mandate


def recall(session: Session, mandate: Mandate, now: datetime) -> None:
    _end(session, mandate, now, RECALLED)


def check_renewable(session: Session, role: Role, mandate: Mandate, name: str) -> None:
    """Why a renewal may not go ahead: the consecutive-term limit, or too few trainees."""
    if mandate.term_number + 1 > role.max_terms:
        raise RuleViolation(ngettext(
            "{name} has held {role} for {count} term in a row and max_terms is {limit}: the seat rotates to someone "
            "else.",
            "{name} has held {role} for {count} terms in a row and max_terms is {limit}: the seat rotates to someone "
            "else.", mandate.term_number).format(name=name, role=role.name, count=mandate.term_number,
                                                  limit=role.max_terms))
    if role.trainees_required:
        learned = trainees(session, role, since=mandate.term_started_at)
        if len(learned) < role.trainees_required:
            raise RuleViolation(ngettext(
                "{role} needs {count} trainee to have shadowed it this term before it can be renewed; so far "
                "{learned} (shadow {key}).",
                "{role} needs {count} trainees to have shadowed it this term before it can be renewed; so far "
                "{learned} (shadow {key}).", role.trainees_required).format(
                    role=role.name, count=role.trainees_required, learned=len(learned), key=role.key))


def renew(session: Session, role: Role, mandate: Mandate, name: str, now: datetime,
          warnings: tuple[timedelta, ...]) -> None:
    check_renewable(session, role, mandate, name)
    mandate.term_started_at = mandate.ends_at
    mandate.ends_at = mandate.ends_at + term_of(role)
    mandate.term_number += 1
    mandate.renewals += 1
    mandate.next_warning_at = next_warning(mandate.ends_at, warnings, now, mandate.term_started_at)
    _log_mandate(session, "mandate.renewed", mandate, now)


def _end(session: Session, mandate: Mandate, when: datetime, reason: str) -> None:
    mandate.ended_at, mandate.end_reason, mandate.next_warning_at = when, reason, None
    _log_mandate(session, "mandate.ended", mandate, when, reason=reason)


def _log_mandate(session: Session, kind: str, mandate: Mandate, when: datetime, **extra) -> None:
    """Mandates started, renewed and ended go into the group log (bot.governance.record)."""
    role, member = session.get(Role, mandate.role_id), session.get(Member, mandate.member_id)
    record.append(session, mandate.group_id, kind, {
        "role": role.name, "member_id": member.id, "member": member.display_name, "seat": mandate.seat,
        "filled_by": mandate.filled_by, "term": mandate.term_number, "ends_at": record.stamp(mandate.ends_at),
        **extra}, when)


# the scheduler's view ---------------------------------------------------------------

def next_warning(ends_at: datetime, warnings: tuple[timedelta, ...], now: datetime,
                 start: datetime) -> datetime | None:
    """When the next warning is due: the earliest `ends_at - offset` still ahead, or — when
    some passed while nobody sent them — the most recent passed one, so one warning goes out.
    Offsets reaching back before the term started are skipped (a 2-minute term gets no
    "7 days left")."""
    times = sorted(ends_at - offset for offset in warnings if start <= ends_at - offset < ends_at)
    upcoming = [t for t in times if t > now]
    passed = [t for t in times if t <= now]
    if passed and now < ends_at:
        return passed[-1]
    return upcoming[0] if upcoming else None


def latest_due_warning(mandate: Mandate, warnings: tuple[timedelta, ...], now: datetime) -> datetime | None:
    """The most recent warning time that has come (the one to send now), if any."""
    passed = [mandate.ends_at - offset for offset in warnings
              if mandate.term_started_at <= mandate.ends_at - offset <= now]
    return max(passed, default=None)


def warning_after(ends_at: datetime, warnings: tuple[timedelta, ...], sent_due: datetime) -> datetime | None:
    later = sorted(ends_at - offset for offset in warnings if sent_due < ends_at - offset < ends_at)
    return later[0] if later else None


_mandates = Mandate.__table__.c
_NEXT_LAPSE = (select(_mandates.id, _mandates.ends_at)
               .where(_mandates.ended_at.is_(None), _mandates.ends_at <= bindparam("now"))
               .order_by(_mandates.ends_at, _mandates.id).limit(1))
_NEXT_WARNING = (select(_mandates.id, _mandates.next_warning_at)
                 .where(_mandates.ended_at.is_(None), _mandates.next_warning_at <= bindparam("now"))
                 .order_by(_mandates.next_warning_at, _mandates.id).limit(1))


def lapses_due(platforms: Platforms = None) -> Select:
    return scoped(_NEXT_LAPSE, _mandates.group_id, platforms)


def warnings_due(platforms: Platforms = None) -> Select:
    return scoped(_NEXT_WARNING, _mandates.group_id, platforms)


def next_mandate_deadline(session: Session, platforms: Platforms = None) -> datetime | None:
    current = (Mandate.ended_at.is_(None), served(Mandate.group_id, platforms))
    ends = session.scalar(select(func.min(Mandate.ends_at)).where(*current))
    warns = session.scalar(select(func.min(Mandate.next_warning_at)).where(*current))
    return min((t for t in (ends, warns) if t is not None), default=None)


def lapse(session: Session, mandate: Mandate) -> None:
    _end(session, mandate, mandate.ends_at, EXPIRED)


def reschedule_warnings(session: Session, group_id: int, warnings: tuple[timedelta, ...], now: datetime) -> None:
    """After `set mandate_warnings`: recompute every open mandate's next warning in the group."""
    for mandate in session.scalars(select(Mandate).where(Mandate.group_id == group_id, Mandate.ended_at.is_(None))):
        mandate.next_warning_at = next_warning(mandate.ends_at, warnings, now, mandate.term_started_at)


def holds(session: Session, group_id: int, role_key: str, member_id: int) -> bool:
    return session.scalar(
        select(func.count()).select_from(Mandate).join(Role, Role.id == Mandate.role_id)
        .where(Role.group_id == group_id, Role.key == role_key, Mandate.member_id == member_id,
               Mandate.ended_at.is_(None))) > 0


def require_role(session: Session, group_id: int, role_key: str, member_id: int, task: str, prefix: str) -> None:
    """A role-gated action: only holders may do it — unless nobody holds the role, so no group locks itself out."""
    if role_key == "anyone":
        return
    role = session.scalars(select(Role).where(Role.group_id == group_id, Role.key == role_key,
                                              Role.retired_at.is_(None))).first()
    if role is None or holds(session, group_id, role_key, member_id):
        return
    current = holders(session, role)
    if not current:
        return
    names = ", ".join(member.display_name for __, member in current)
    raise RuleViolation(_("In this group, {task} is the {role}'s task (held by {holders}). To take it on next: "
                          "{command}").format(task=_(task), role=role.name, holders=names,
                                              command=f"{prefix}volunteer {role.key}"))
