"""Sovereignty audits and the group's weekly rhythm.

Every `audit_every` an audit opens for `audit_window`: members report what
the group provided itself per area, a reminder comes halfway, and at the close
the bot measures the period itself (needs met and how fast, decisions and
participation, how many people held a role, lapses, renewals, recalls) and
stores those figures with the audit, so every later chart and CSV shows the
same numbers. An auditor can be drawn by a lottery nobody can steer
(bot.governance.draws) among members who hold no role: it opens with the audit
and is drawn `draw_window` later, after members have added randomness. With
`audit_draw federation` the auditor comes from the federation's other groups
(outside eyes), or from the group itself when there is nobody there to draw.

The group's due dates (next digest, next audit) live on the group row, so
"what is due" stays an index lookup; `schedule` (re)computes them.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from statistics import fmean
from typing import NamedTuple
from zoneinfo import ZoneInfo

from sqlalchemy import Select, bindparam, func, select
from sqlmodel import Session

from bot import i18n
from bot.governance import draws, federation, mediation, needs, record, roles, voting
from bot.governance.proposals import RuleViolation
from bot.governance.scope import Platforms, scoped, scoped_groups, served, served_groups
from bot.governance.settings import GroupSettings
from bot.i18n import _
from storage.models import Audit, AuditEntry, Decision, Group, Lottery, Mandate, Member, Need, Proposal

NO_FEDERATION, NOBODY_OUTSIDE = "no federation", "nobody outside"  # why an outside auditor was not drawn
MAX_COUNT = 1_000_000
MAX_NOTE = 300
FIGURES = (  # what the bot measures, in the order reports, charts and CSV files show them
    ("needs_met", "needs met"),
    ("met_within_48h", "met within 48 hours"),
    ("median_hours_to_met", "median hours to met"),
    ("needs_posted", "needs posted"),
    ("decisions", "decisions taken"),
    ("participation", "average participation"),
    ("role_holders", "members who held a role"),
    ("lapsed_on_time", "mandates that lapsed on time"),
    ("extended", "mandates extended"),
    ("recalls", "recalls"),
    ("mediations_opened", "mediations opened"),  # conflict resolution: counts only, never who or what
    ("mediations_closed", "mediations closed"),
)


# schedule ---------------------------------------------------------------------------

def next_weekly(slot: tuple[int, int, int], zone: ZoneInfo, after: datetime) -> datetime:
    """The first moment strictly after `after` that is weekday/hour/minute in the zone."""
    weekday, hour, minute = slot
    local = after.astimezone(zone)
    candidate = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
    candidate += timedelta(days=(weekday - local.weekday()) % 7)
    if candidate <= local:
        candidate += timedelta(days=7)
    # Rebuild from the wall-clock fields, so a DST change in between keeps the hour.
    return datetime(candidate.year, candidate.month, candidate.day, hour, minute, tzinfo=zone)


def schedule(session: Session, group: Group, settings: GroupSettings, since: datetime) -> None:
    """Set the group's next digest (after `since`) and next audit (`audit_every` after the last
    one, or after the group started) from its settings: when first seen and after `set`."""
    group.next_digest_at = next_digest(settings, since)
    if open_audit(session, group.id) is None:
        last = latest(session, group.id)
        base = last.started_at if last is not None else group.created_at
        group.next_audit_at = max(base + settings.audit_every, since)


def next_digest(settings: GroupSettings, after: datetime) -> datetime | None:
    return next_weekly(settings.digest, settings.timezone, after) if settings.digest else None


_groups, _audits = Group.__table__.c, Audit.__table__.c


def _earliest(item_id, due, *where) -> Select:
    """The earliest (id, due time) at or before `:now`."""
    return select(item_id, due).where(due <= bindparam("now"), *where).order_by(due, item_id).limit(1)


# A group whose dates were never set (from before audits existed) is due at once; the scheduler
# takes its due time as its creation (or now, whichever is earlier).
_UNSCHEDULED = select(_groups.id, _groups.created_at).where(_groups.next_audit_at.is_(None)).order_by(
    _groups.id).limit(1)
_DIGEST, _AUDIT_START = _earliest(_groups.id, _groups.next_digest_at), _earliest(_groups.id, _groups.next_audit_at)
_REMINDER = _earliest(_audits.id, _audits.remind_at, _audits.closed_at.is_(None))
_CLOSE = _earliest(_audits.id, _audits.closes_at, _audits.closed_at.is_(None))


def unscheduled_due(platforms: Platforms = None) -> Select:
    return scoped_groups(_UNSCHEDULED, platforms)


def digests_due(platforms: Platforms = None) -> Select:
    return scoped_groups(_DIGEST, platforms)


def audit_starts_due(platforms: Platforms = None) -> Select:
    return scoped_groups(_AUDIT_START, platforms)


def audit_reminders_due(platforms: Platforms = None) -> Select:
    return scoped(_REMINDER, _audits.group_id, platforms)


def audit_closes_due(platforms: Platforms = None) -> Select:
    return scoped(_CLOSE, _audits.group_id, platforms)


def next_deadline(session: Session, platforms: Platforms = None) -> datetime | None:
    """The earliest of every audit and digest date, in one round trip (it runs after each command)."""
    still_open = (Audit.closed_at.is_(None), served(Audit.group_id, platforms))
    ours = served_groups(platforms)
    times = session.execute(select(
        select(func.min(Group.created_at)).where(Group.next_audit_at.is_(None), ours).scalar_subquery(),
        select(func.min(Group.next_digest_at)).where(ours).scalar_subquery(),
        select(func.min(Group.next_audit_at)).where(ours).scalar_subquery(),
        select(func.min(Audit.remind_at)).where(*still_open).scalar_subquery(),
        select(func.min(Audit.closes_at)).where(*still_open).scalar_subquery(),
    )).one()
    return min((t for t in times if t is not None), default=None)


# the audit cycle -------------------------------------------------------------------

def open_audit(session: Session, group_id: int) -> Audit | None:
    return session.scalars(select(Audit).where(Audit.group_id == group_id, Audit.closed_at.is_(None))).first()


def latest(session: Session, group_id: int, closed: bool = False) -> Audit | None:
    query = select(Audit).where(Audit.group_id == group_id)
    if closed:
        query = query.where(Audit.closed_at.is_not(None))
    return session.scalars(query.order_by(Audit.number.desc()).limit(1)).first()


def closed_audits(session: Session, group_id: int, limit: int = 40) -> list[Audit]:
    """The latest closed audits, oldest first (charts and CSV files)."""
    rows = session.scalars(select(Audit).where(Audit.group_id == group_id, Audit.closed_at.is_not(None))
                           .order_by(Audit.number.desc()).limit(limit))
    return list(reversed(list(rows)))


def start(session: Session, group: Group, settings: GroupSettings, now: datetime,
          started_by: int | None) -> Audit:
    current = open_audit(session, group.id)
    if current is not None:
        raise RuleViolation(_("Audit #{number} is open already; report figures with audit <area> <count>.")
                            .format(number=current.number))
    last = latest(session, group.id)
    audit = Audit(group_id=group.id, number=(last.number + 1) if last else 1,
                  period_start=last.closes_at if last else group.created_at, started_at=now,
                  closes_at=now + settings.audit_window, remind_at=now + settings.audit_window / 2,
                  areas=json.dumps(list(settings.audit_areas), ensure_ascii=False), started_by=started_by)
    session.add(audit)
    group.next_audit_at = now + settings.audit_every
    session.flush()
    if settings.audit_draw:  # the auditor is drawn at the end of the window (draws.reveal sets auditor_id)
        outside = _outside_candidates(session, group.id) if settings.audit_from_federation else []
        draws.open_auditor(session, audit, now, settings.draw_window, outside or None)
    return audit


def _outside_candidates(session: Session, group_id: int) -> list[tuple[int, str]]:
    others = [group.id for group in federation.other_groups(session, group_id)]
    return draws.outside_auditor_candidates(session, group_id, others)


class AuditorDraw(NamedTuple):
    """What an audit's prompt says of its auditor's lottery."""

    lottery: Lottery | None  # None: no auditor is drawn
    others_open: bool  # other lotteries are open in the group (contributions must name this one)
    outside: bool  # the candidates are the federation's other groups' members
    own_because: str | None  # `audit_draw federation`, yet drawn in the group: why (NO_FEDERATION …)


def auditor_draw(session: Session, audit: Audit, settings: GroupSettings, now: datetime) -> AuditorDraw:
    lottery = draws.auditor_lottery(session, audit)
    others_open = len(draws.open_lotteries(session, audit.group_id, now)) > 1
    outside = lottery is not None and draws.drawn_outside(session, lottery)
    return AuditorDraw(lottery, others_open, outside, own_auditor_because(session, audit, settings))


def outside_group(session: Session, audit: Audit) -> Group | None:
    """The group of the federation the audit's auditor is from, when it is not the audited group."""
    auditor = session.get(Member, audit.auditor_id) if audit.auditor_id else None
    return None if auditor is None or auditor.group_id == audit.group_id else session.get(Group, auditor.group_id)


def own_auditor_because(session: Session, audit: Audit, settings: GroupSettings) -> str | None:
    """Why an audit whose group asked for an auditor from the federation (`audit_draw federation`) draws
    one among its own members after all: NO_FEDERATION or NOBODY_OUTSIDE (None: drawn as asked)."""
    lottery = draws.auditor_lottery(session, audit)
    if not settings.audit_from_federation or lottery is None or draws.drawn_outside(session, lottery):
        return None
    return NOBODY_OUTSIDE if federation.other_groups(session, audit.group_id) else NO_FEDERATION


def areas_of(audit: Audit) -> list[str]:
    return json.loads(audit.areas)


def area_named(audit: Audit, text: str) -> str:
    wanted = " ".join(text.lower().split())
    for area in areas_of(audit):
        if area == wanted or area.replace(" ", "-") == wanted or area.replace(" ", "_") == wanted:
            return area
    raise RuleViolation(_("This audit does not track “{area}”. Its areas: {areas}. "
                          "(The group changes the list for the next audit with set audit_areas.)")
                        .format(area=text[:40], areas=", ".join(areas_of(audit))))


def report(session: Session, audit: Audit, member_id: int, area: str, count: int, note: str | None,
           now: datetime) -> bool:
    """Record a member's figure for an area; reporting the same area again replaces it. True if replaced."""
    if not 0 <= count <= MAX_COUNT:
        raise RuleViolation(_("Give a count from 0 to {maximum}.").format(maximum=i18n.number(MAX_COUNT)))
    entry = session.scalars(select(AuditEntry).where(AuditEntry.audit_id == audit.id,
                                                     AuditEntry.member_id == member_id,
                                                     AuditEntry.area == area)).first()
    if entry is not None:
        entry.count, entry.note, entry.reported_at = count, note, now
        return True
    session.add(AuditEntry(audit_id=audit.id, member_id=member_id, area=area, count=count, note=note,
                           reported_at=now))
    return False


def entries(session: Session, audit: Audit) -> list[tuple[AuditEntry, str]]:
    return [tuple(row) for row in session.execute(
        select(AuditEntry, Member.display_name).join(Member, Member.id == AuditEntry.member_id)
        .where(AuditEntry.audit_id == audit.id).order_by(AuditEntry.area, AuditEntry.reported_at))]


def reported_totals(audit: Audit, rows: list[tuple[AuditEntry, str]]) -> dict[str, int]:
    totals = {area: 0 for area in areas_of(audit)}
    for entry, _name in rows:
        totals[entry.area] = totals.get(entry.area, 0) + entry.count
    return totals


def close(session: Session, audit: Audit) -> dict:
    """Measure the period, store the figures with the audit, and close it (at its deadline)."""
    figures = measure(session, audit.group_id, audit.period_start, audit.closes_at)
    figures["reported"] = reported_totals(audit, entries(session, audit))
    audit.figures = json.dumps(figures, ensure_ascii=False)
    audit.closed_at, audit.remind_at = audit.closes_at, None
    record.append(session, audit.group_id, "audit.closed", {"audit": audit.number, "figures": figures},
                  audit.closes_at)
    return figures


def figures_of(audit: Audit) -> dict:
    return json.loads(audit.figures) if audit.figures else {}


def measure(session: Session, group_id: int, start: datetime, end: datetime) -> dict:
    """What the bot saw itself in [start, end)."""
    waits = needs.times_to_met(session, group_id, start, end)
    typical = needs.median_wait(waits)
    decisions = session.execute(select(Decision.voters, Decision.members).where(
        Decision.group_id == group_id, Decision.decided_at >= start, Decision.decided_at < end,
        Decision.outcome != voting.WITHDRAWN)).all()
    shares = [voters / members for voters, members in decisions if members]
    challenge = needs.longest_waiting(session, group_id)
    mediations_opened, mediations_closed = mediation.counts(session, group_id, start, end)
    return {
        "period_start": start.isoformat(), "period_end": end.isoformat(),
        "needs_met": len(waits),
        "met_within_48h": sum(1 for wait in waits if wait <= needs.OVERDUE_AFTER),
        "median_hours_to_met": round(typical.total_seconds() / 3600, 1) if typical is not None else None,
        "needs_posted": session.scalar(select(func.count()).select_from(Need).where(
            Need.group_id == group_id, Need.kind == needs.NEED, Need.created_at >= start, Need.created_at < end,
            Need.shared_of.is_(None))),  # a shared need counts where it was posted
        "decisions": len(decisions),
        "participation": round(fmean(shares), 3) if shares else None,
        "role_holders": session.scalar(select(func.count(func.distinct(Mandate.member_id))).where(
            Mandate.group_id == group_id, Mandate.started_at < end,
            (Mandate.ended_at.is_(None)) | (Mandate.ended_at > start))),
        "lapsed_on_time": _ended(session, group_id, roles.EXPIRED, start, end),
        "extended": session.scalar(select(func.count()).select_from(Decision)
                                   .join(Proposal, Proposal.id == Decision.proposal_id).where(
            Decision.group_id == group_id, Proposal.kind == "renewal", Decision.outcome == voting.PASSED,
            Decision.decided_at >= start, Decision.decided_at < end)),
        "recalls": _ended(session, group_id, roles.RECALLED, start, end),
        "mediations_opened": mediations_opened,
        "mediations_closed": mediations_closed,
        "challenge": None if challenge is None else {
            "number": challenge.number, "text": challenge.text, "category": challenge.category,
            "posted": challenge.created_at.isoformat()},
    }


def _ended(session: Session, group_id: int, reason: str, start: datetime, end: datetime) -> int:
    return session.scalar(select(func.count()).select_from(Mandate).where(
        Mandate.group_id == group_id, Mandate.end_reason == reason, Mandate.ended_at >= start,
        Mandate.ended_at < end))
