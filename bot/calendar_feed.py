"""Calendar feeds (iCalendar, RFC 5545): a group's, beside its members' page, and a member's own.

The group feed holds every current mandate's term (and those that ended in the last RECENT days),
the deadlines of open proposals, the audit window (open, or the next one scheduled), the next
weekly digest, coming assemblies, and review dates: decisions coming back for review, the group's
renewal review and roles' sunsets. A member's feed holds their own terms and the open proposals
and coming assemblies of every group they are in on that platform.

- Every event has a stable UID built from what it is about (`mandate-<id>@commons`,
  `proposal-<group>-<number>-closes@commons` …), so when a deadline moves or a mandate is renewed
  a subscribed calendar replaces the event instead of adding a second one.
- Times are in UTC (written with a `Z`), never floating: a calendar app shows them in its own
  zone, so a group in Europe/Lisbon and a member travelling both see the right moment. The
  group's zone is named in X-WR-TIMEZONE as a hint for apps that use it.
- A deadline is a moment (DTSTART only); an assembly is given a nominal ASSEMBLY_LENGTH, since
  the bot knows when it starts, not when it ends.
- Texts are in the group's language (a member's own feed: their chosen language, else each
  group's). Nothing private goes in: no anonymous author, no ballot, no mediation.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from icalendar import Calendar, Event
from sqlalchemy import or_, select
from sqlmodel import Session

from bot import i18n, languages
from bot.governance import assemblies, audits, reviews
from bot.governance import proposals as rules
from bot.governance.renewals import TITLE as RENEWAL_TITLE
from bot.governance.settings import GroupSettings
from bot.groups import Directory
from bot.i18n import N_, _
from bot.transparency import END_REASONS
from storage.models import Audit, Group, Mandate, Member, Role

RECENT = timedelta(days=90)  # mandates that ended this recently stay in the feed
ASSEMBLY_LENGTH = timedelta(hours=2)
REVIEWS_SHOWN = 50
DOMAIN = "commons"
PRODID = "-//Commons//governance bot//EN"
CONTENT_TYPE = "text/calendar; charset=utf-8"


def uid(*parts: object) -> str:
    return "-".join(str(part) for part in parts) + f"@{DOMAIN}"


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(timezone.utc)


def _event(key: str, start: datetime, summary: str, now: datetime, end: datetime | None = None,
           description: str | None = None, location: str | None = None) -> Event:
    event = Event()
    event.add("uid", key)
    event.add("dtstamp", _utc(now).replace(microsecond=0))
    event.add("dtstart", _utc(start).replace(microsecond=0))
    if end is not None and end > start:
        event.add("dtend", _utc(end).replace(microsecond=0))
    event.add("summary", summary)
    if description:
        event.add("description", description)
    if location:
        event.add("location", location)
    return event


def _calendar(name: str, zone: str | None = None) -> Calendar:
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", "PUBLISH")
    calendar.add("x-wr-calname", name)
    if zone:
        calendar.add("x-wr-timezone", zone)
    calendar.add("refresh-interval", timedelta(hours=1), parameters={"VALUE": "DURATION"})
    calendar.add("x-published-ttl", "PT1H")
    return calendar


# What goes in ------------------------------------------------------------------------------------

def mandate_events(session: Session, group_id: int, now: datetime, names: dict[int, str],
                   member_ids: list[int] | None = None, prefix: str = "") -> list[Event]:
    """Each mandate's current term, start to end (a renewal moves both; the UID stays)."""
    query = (select(Mandate, Role.name).join(Role, Role.id == Mandate.role_id)
             .where(Mandate.group_id == group_id,
                    or_(Mandate.ended_at.is_(None), Mandate.ended_at >= now - RECENT)))
    if member_ids is not None:
        query = query.where(Mandate.member_id.in_(member_ids))
    found = []
    for mandate, role_name in session.execute(query.order_by(Mandate.id)):
        ended = mandate.ended_at is not None
        description = _("Term {number}.").format(number=mandate.term_number)
        if ended:
            description += " " + _("Ended: {reason}.").format(reason=_(END_REASONS.get(mandate.end_reason,
                                                                                    N_("ended"))))
        found.append(_event(uid("mandate", mandate.id), mandate.term_started_at,
                            prefix + _("{role}: {name}").format(role=role_name,
                                                                name=names.get(mandate.member_id, "?")),
                            now, end=mandate.ended_at if ended else mandate.ends_at, description=description))
    return found


def proposal_events(session: Session, group_id: int, now: datetime, prefix: str = "") -> list[Event]:
    found = []
    for proposal in rules.open_in_group(session, group_id):
        summary = _("Vote closes: #{number} {title}").format(number=proposal.number, title=proposal.title)
        found.append(_event(uid("proposal", group_id, proposal.number, "closes"), proposal.closes_at,
                            prefix + summary, now))
    return found


def assembly_events(session: Session, group_id: int, now: datetime, names: dict[int, str],
                    prefix: str = "") -> list[Event]:
    found = []
    for assembly in assemblies.upcoming(session, group_id, now):
        summary = prefix + _("Assembly #{number}").format(number=assembly.number)
        if assembly.title:
            summary += f" — {assembly.title}"
        jobs = [_("Facilitator: {name}").format(name=names[assembly.facilitator_id])
                if assembly.facilitator_id in names else _("Facilitator: not drawn yet"),
                _("Note-taker: {name}").format(name=names[assembly.note_taker_id])
                if assembly.note_taker_id in names else _("Note-taker: not drawn yet")]
        found.append(_event(uid("assembly", group_id, assembly.number), assembly.starts_at, summary, now,
                            end=assembly.starts_at + ASSEMBLY_LENGTH, description="\n".join(jobs),
                            location=assembly.place))
    return found


def audit_events(session: Session, group: Group, settings: GroupSettings, now: datetime) -> list[Event]:
    """The open audit's window, or the next one's as scheduled (it will carry the same number)."""
    current = audits.open_audit(session, group.id)
    if current is not None:
        number, start, end = current.number, current.started_at, current.closes_at
    elif group.next_audit_at is not None:
        last = session.scalar(select(Audit.number).where(Audit.group_id == group.id)
                              .order_by(Audit.number.desc()).limit(1))
        number, start = (last or 0) + 1, group.next_audit_at
        end = start + settings.audit_window
    else:
        return []
    return [_event(uid("audit", group.id, number), start,
                   _("Sovereignty audit #{number}: report what the group provided itself").format(number=number),
                   now, end=end, description=_("Report a figure per area: audit <area> <count> [note]"))]


def digest_events(group: Group, now: datetime) -> list[Event]:
    if group.next_digest_at is None:
        return []
    return [_event(uid("digest", group.id), group.next_digest_at, _("Weekly needs digest"), now)]


def review_events(session: Session, group: Group, now: datetime) -> list[Event]:
    """Decisions coming back for review, the group's renewal review, and roles' sunsets."""
    coming, _total = reviews.coming(session, group.id, REVIEWS_SHOWN)
    found = [_event(uid("review", group.id, proposal.number), decision.review_at,
                    _("Review of #{number} {title}").format(number=proposal.number, title=proposal.title), now)
             for decision, proposal in coming]
    if group.next_renewal_at is not None:
        found.append(_event(uid("renewal-review", group.id), group.next_renewal_at, _(RENEWAL_TITLE), now))
    for role in session.scalars(select(Role).where(Role.group_id == group.id, Role.retired_at.is_(None),
                                                   Role.sunset_at.is_not(None)).order_by(Role.id)):
        found.append(_event(uid("role-sunset", role.id), role.sunset_at,
                            _("Sunset of the role {role}: keep it or retire it").format(role=role.name), now))
    return found


def _names(session: Session, group_id: int) -> dict[int, str]:
    return dict(session.execute(select(Member.id, Member.display_name).where(Member.group_id == group_id)).all())


# The two feeds -------------------------------------------------------------------------------------

def group_feed(session: Session, directory: Directory, group_id: int, now: datetime) -> bytes:
    group = session.get(Group, group_id)
    settings = directory.read_settings(session, group_id)
    names = _names(session, group_id)
    with i18n.speaking(settings.language):
        calendar = _calendar(group.title or _("Commons group"), settings.timezone.key)
        for event in (*mandate_events(session, group_id, now, names), *proposal_events(session, group_id, now),
                      *audit_events(session, group, settings, now), *digest_events(group, now),
                      *assembly_events(session, group_id, now, names), *review_events(session, group, now)):
            calendar.add_component(event)
    return calendar.to_ical()


def personal_feed(session: Session, directory: Directory, platform: str, user_id: str, now: datetime) -> bytes:
    """A member's terms, and the open proposals and coming assemblies of each group they are in."""
    own = languages.chosen(session, platform, user_id)
    memberships = directory.memberships(session, platform, user_id)
    spoken = {membership.group_id: directory.read_settings(session, membership.group_id) for membership in memberships}
    # As in a private chat: the person's own language, else their groups' if they all speak one.
    common = {settings.language for settings in spoken.values()}
    with i18n.speaking(own or (common.pop() if len(common) == 1 else directory.defaults.get("language"))):
        calendar = _calendar(_("Commons: my terms and deadlines"))
    for membership in memberships:
        settings = spoken[membership.group_id]
        names = _names(session, membership.group_id)
        with i18n.speaking(own or settings.language):
            prefix = f"{membership.title or _('Commons group')} · "
            for event in (*mandate_events(session, membership.group_id, now, names, [membership.member_id], prefix),
                          *proposal_events(session, membership.group_id, now, prefix),
                          *assembly_events(session, membership.group_id, now, names, prefix)):
                calendar.add_component(event)
    return calendar.to_ical()
