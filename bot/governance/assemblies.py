"""Assemblies: scheduled, not improvised; agendas crowdsourced; facilitation and minutes rotate.

Rules only; the wording lives in bot.render.assemblies, the due steps in scheduler.assemblies.

- An assembly is scheduled at a wall-clock time in the group's time zone. With `assembly_every`
  on, the next one is scheduled when one starts, at the same local time (so a daylight-saving
  change never moves the meeting by an hour).
- Its steps, each done once and in order: reminders (`assembly_reminders`); at the earliest
  reminder (a day before when reminders are off) two lotteries open, one for the facilitator
  and one for the note-taker, drawn `draw_window` later; an hour before the start the agenda
  freezes; at the start the agenda is posted. `next_due_at` always holds the next step's time.
- Agenda items belong to no assembly until an agenda freezes: then every open item is bound to
  that assembly, ordered by support, then age. An item added after a freeze waits for the next.
- Rotation: nobody draws a job twice in a row, and with `rotation_prefers_new` those who never
  did it go first. The note-taker is drawn once the facilitator is known, among the others, so
  nobody does both jobs in one meeting.
- Minutes are appended by the note-taker and published once, into the group log.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from sqlalchemy import Select, and_, bindparam, delete, func, or_, select
from sqlmodel import Session

from bot import i18n
from bot.governance import draws, record, tasks
from bot.governance.errors import RuleViolation
from bot.governance.scope import Platforms, scoped, served
from bot.governance.settings import GroupSettings, Rhythm
from bot.i18n import _
from storage.models import AgendaItem, AgendaSupport, Assembly, Lottery, Member, Proposal

FACILITATION, MINUTES = tasks.FACILITATION, tasks.MINUTES
JOBS = (FACILITATION, MINUTES)
FREEZE_BEFORE = timedelta(hours=1)  # the agenda freezes itself this long before the start
DRAW_LEAD_WITHOUT_REMINDERS = timedelta(days=1)
MEETING_SPAN = timedelta(hours=6)  # after its start, an assembly is "on" this long (agenda shows it)
MAX_AHEAD = timedelta(days=366)
MAX_UPCOMING = 20
MAX_PLACE, MAX_TITLE = 300, 200
MAX_ITEM = 200  # an item becomes a proposal's title
MAX_OPEN_ITEMS = 100
MAX_MINUTES = 20_000
MAX_NOTES = 2000
_DATE = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})")
_TIME = re.compile(r"(\d{1,2})(?:[:h.](\d{2})|h)?\s*(am|pm)?", re.I)


# when -------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class When:
    starts_at: datetime  # UTC
    rest: str  # what followed the date and time (where, | title)


def parse_when(text: str, now: datetime, zone: ZoneInfo) -> When:
    """`fri 19:00`, `tomorrow 18:30`, `2027-01-15 18:30`, `19:00` (the next one), then the rest."""
    words = text.split()
    local_now = now.astimezone(zone)
    day, weekday_only = _day(words[0], local_now.date()) if words else (None, False)
    used = 1 if day is not None else 0
    clock = _clock(words[used]) if len(words) > used else None
    if clock is None:
        if day is not None or not words:
            raise RuleViolation(_("Give a day and a time, like fri 19:00, tomorrow 18:30 or 2027-01-15 18:30."))
        raise RuleViolation(_("I can't read “{word}” as a day or a time; write it like fri 19:00, "
                              "tomorrow 18:30 or 2027-01-15 18:30.").format(word=_short(words[0])))
    if day is None:  # a time alone: the next time the clock shows it
        day = local_now.date() + timedelta(days=0 if local_now.time() < clock else 1)
    elif weekday_only and day == local_now.date() and local_now.time() >= clock:
        day += timedelta(days=7)  # "fri 19:00" said on a Friday evening: next Friday
    return When(wall_clock(day, clock, zone), _after_words(text, used + 1))


_WEEKDAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def _day(word: str, today: date) -> tuple[date | None, bool]:
    """(the date a word names, whether it was a weekday name), or (None, False)."""
    lowered = word.lower().rstrip(",")
    if lowered in ("today", "tonight"):
        return today, False
    if lowered == "tomorrow":
        return today + timedelta(days=1), False
    for index, name in enumerate(_WEEKDAY_NAMES):
        if len(lowered) >= 3 and name.startswith(lowered):
            return today + timedelta(days=(index - today.weekday()) % 7), True
    if match := _DATE.fullmatch(lowered):
        try:
            return date(int(match[1]), int(match[2]), int(match[3])), False
        except ValueError:
            raise RuleViolation(_("“{word}” is not a date; write it like 2027-01-15.").format(
                word=_short(word))) from None
    return None, False


def _clock(word: str) -> time | None:
    match = _TIME.fullmatch(word.strip())
    if not match or not (match[2] or match[3] or word.lower().endswith("h")):
        return None  # a bare number is not a time
    hour, minute = int(match[1]), int(match[2] or 0)
    if match[3]:
        if not 1 <= hour <= 12:
            return None
        hour = hour % 12 + (12 if match[3].lower() == "pm" else 0)
    if hour > 23 or minute > 59:
        return None
    return time(hour, minute)


def wall_clock(day: date, clock: time, zone: ZoneInfo) -> datetime:
    """That local date and time, in UTC (built from the wall-clock fields, whatever the offset that day)."""
    return datetime.combine(day, clock, tzinfo=zone).astimezone(timezone.utc)


def _after_words(text: str, count: int) -> str:
    """The text after its first `count` words, as typed."""
    parts = text.split(None, count)
    return parts[count].strip() if len(parts) > count else ""


def _short(text: str, limit: int = 30) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def following(starts_at: datetime, rhythm: Rhythm, zone: ZoneInfo) -> datetime:
    """The next assembly on the rhythm: same local time, `rhythm` later on the calendar."""
    local = starts_at.astimezone(zone)
    day = local.date() + timedelta(days=rhythm.days)
    if rhythm.months:
        index = day.year * 12 + day.month - 1 + rhythm.months
        year, month = divmod(index, 12)
        for last in (31, 30, 29, 28):  # the same day of the month, or the month's last day
            try:
                day = date(year, month + 1, min(local.day, last))
                break
            except ValueError:
                continue
    return wall_clock(day, local.time().replace(tzinfo=None), zone)


# scheduling ----------------------------------------------------------------------------------------

def schedule(session: Session, group_id: int, settings: GroupSettings, starts_at: datetime, place: str | None,
             title: str | None, member_id: int | None, now: datetime) -> Assembly:
    zone = settings.timezone
    if starts_at <= now:
        raise RuleViolation(_("{moment} is in the past; give a time still to come, like fri 19:00.").format(
            moment=_local(starts_at, zone)))
    if starts_at > now + MAX_AHEAD:
        raise RuleViolation(_("That is more than a year away; schedule assemblies up to a year ahead."))
    if place and len(place) > MAX_PLACE:
        raise RuleViolation(_("The place is {length} characters; keep it under {limit}.").format(
            length=i18n.number(len(place)), limit=MAX_PLACE))
    if title and len(title) > MAX_TITLE:
        raise RuleViolation(_("The title is {length} characters; keep it under {limit}.").format(
            length=i18n.number(len(title)), limit=MAX_TITLE))
    coming = upcoming(session, group_id, now)
    if len(coming) >= MAX_UPCOMING:
        raise RuleViolation(_("{count} assemblies are scheduled already; that is as many as I keep ahead.").format(
            count=MAX_UPCOMING))
    clash = next((a for a in coming if a.starts_at == starts_at), None)
    if clash is not None:
        raise RuleViolation(_("Assembly #{number} is already at {moment}.").format(
            number=clash.number, moment=_local(starts_at, zone)))
    number = (session.scalar(select(func.max(Assembly.number)).where(Assembly.group_id == group_id)) or 0) + 1
    assembly = Assembly(group_id=group_id, number=number, starts_at=starts_at, place=place or None,
                        title=title or None, created_by=member_id, created_at=now, reminded_through=now)
    assembly.next_due_at = next_step_at(assembly, settings)
    session.add(assembly)
    session.flush()
    record.append(session, group_id, "assembly.scheduled", {
        "assembly": number, "starts_at": record.stamp(starts_at), "place": assembly.place, "title": assembly.title,
        "by_rhythm": member_id is None}, now)
    return assembly


def _local(moment: datetime, zone: ZoneInfo) -> str:
    return i18n.moment(moment.astimezone(zone).replace(second=0), year=True)


def cancel(session: Session, assembly: Assembly, member: Member, now: datetime) -> None:
    if assembly.started_at is not None or assembly.cancelled_at is not None:
        done = (_("Assembly #{number} has started already.") if assembly.started_at
                else _("Assembly #{number} has been cancelled already."))
        raise RuleViolation(done.format(number=assembly.number))
    if member.id not in (assembly.created_by, assembly.facilitator_id):
        raise RuleViolation(_("Only whoever scheduled assembly #{number} or its facilitator can cancel it.").format(
            number=assembly.number))
    assembly.cancelled_at, assembly.next_due_at = now, None
    # Its frozen items go back to the pool for the next assembly.
    for item in session.scalars(select(AgendaItem).where(AgendaItem.assembly_id == assembly.id)):
        item.assembly_id, item.position = None, None
    record.append(session, assembly.group_id, "assembly.cancelled", {"assembly": assembly.number,
                                                                    "member": member.display_name}, now)


def find(session: Session, group_id: int, number: int) -> Assembly:
    found = session.scalars(select(Assembly).where(Assembly.group_id == group_id, Assembly.number == number)).first()
    if found is None:
        raise RuleViolation(_("There is no assembly #{number} in this group.").format(number=number))
    return found


def upcoming(session: Session, group_id: int, now: datetime) -> list[Assembly]:
    """Assemblies still to come (not started, not cancelled), soonest first."""
    return list(session.scalars(select(Assembly).where(
        Assembly.group_id == group_id, Assembly.cancelled_at.is_(None), Assembly.started_at.is_(None),
        Assembly.starts_at > now - MEETING_SPAN).order_by(Assembly.starts_at, Assembly.id)))


def next_assembly(session: Session, group_id: int, now: datetime) -> Assembly | None:
    coming = upcoming(session, group_id, now)
    return coming[0] if coming else None


def in_session(session: Session, group_id: int, now: datetime) -> Assembly | None:
    """The assembly that started within the last few hours (its agenda is the one being worked)."""
    return session.scalars(select(Assembly).where(
        Assembly.group_id == group_id, Assembly.started_at.is_not(None), Assembly.cancelled_at.is_(None),
        Assembly.starts_at > now - MEETING_SPAN).order_by(Assembly.starts_at.desc()).limit(1)).first()


def latest(session: Session, group_id: int) -> Assembly | None:
    return session.scalars(select(Assembly).where(Assembly.group_id == group_id, Assembly.cancelled_at.is_(None))
                           .order_by(Assembly.starts_at.desc(), Assembly.id.desc()).limit(1)).first()


def keep_rhythm(session: Session, group_id: int, settings: GroupSettings, now: datetime) -> Assembly | None:
    """With `assembly_every` on and nothing scheduled, the next assembly after the latest one, at
    the same local time — skipping dates already past (after downtime, no meeting in the past)."""
    if settings.assembly_every is None or upcoming(session, group_id, now):
        return None
    last = latest(session, group_id)
    if last is None:
        return None
    starts_at = following(last.starts_at, settings.assembly_every, settings.timezone)
    while starts_at <= now:
        starts_at = following(starts_at, settings.assembly_every, settings.timezone)
    if starts_at > now + MAX_AHEAD:
        return None
    # The place carries over; a title belonged to that one meeting.
    return schedule(session, group_id, settings, starts_at, last.place, None, None, now)


# the steps the scheduler owes an assembly ---------------------------------------------------------

def draw_at(assembly: Assembly, settings: GroupSettings) -> datetime:
    lead = max(settings.assembly_reminders, default=DRAW_LEAD_WITHOUT_REMINDERS)
    return max(assembly.created_at, assembly.starts_at - lead)


def freeze_at(assembly: Assembly) -> datetime:
    return max(assembly.created_at, assembly.starts_at - FREEZE_BEFORE)


def pending_reminders(assembly: Assembly, settings: GroupSettings, until: datetime) -> list[datetime]:
    """Reminder times not yet dealt with, up to `until`, earliest first (only before the start)."""
    since = assembly.reminded_through or assembly.created_at
    times = sorted(assembly.starts_at - offset for offset in settings.assembly_reminders)
    return [moment for moment in times if since < moment <= until and moment < assembly.starts_at]


def next_step_at(assembly: Assembly, settings: GroupSettings) -> datetime | None:
    if assembly.cancelled_at is not None or assembly.started_at is not None:
        return None
    times = [assembly.starts_at]
    if assembly.drawn_at is None:
        times.append(draw_at(assembly, settings))
    if assembly.frozen_at is None:
        times.append(freeze_at(assembly))
    pending = pending_reminders(assembly, settings, assembly.starts_at)
    if pending:
        times.append(pending[0])
    return min(times)


def reschedule(session: Session, group_id: int, settings: GroupSettings, now: datetime) -> None:
    """After a change of `assembly_reminders`: every coming assembly's next step follows the new offsets."""
    for assembly in upcoming(session, group_id, now):
        assembly.next_due_at = next_step_at(assembly, settings)


# facilitator and note-taker ---------------------------------------------------------------------

def job_holder(assembly: Assembly, job: str) -> int | None:
    return assembly.facilitator_id if job == FACILITATION else assembly.note_taker_id


def previous_holder(session: Session, assembly: Assembly, job: str) -> int | None:
    """Who did this job at the group's last assembly before this one that had someone doing it."""
    column = Assembly.facilitator_id if job == FACILITATION else Assembly.note_taker_id
    return session.scalar(select(column).where(
        Assembly.group_id == assembly.group_id, Assembly.cancelled_at.is_(None), column.is_not(None),
        Assembly.starts_at < assembly.starts_at).order_by(Assembly.starts_at.desc()).limit(1))


def ever_did(session: Session, group_id: int, job: str) -> set[int]:
    column = Assembly.facilitator_id if job == FACILITATION else Assembly.note_taker_id
    return set(session.scalars(select(column).where(Assembly.group_id == group_id, column.is_not(None),
                                                    Assembly.cancelled_at.is_(None)).distinct()))


@dataclass(frozen=True)
class Pool:
    """Who a job's lottery draws from, and who was left out and why (said in the announcement)."""

    candidates: list[tuple[int, str]]  # in the published order
    last_time: Member | None  # did it last time, so not this time
    newcomers_first: bool  # the pool is only those who never did it


def job_pool(session: Session, assembly: Assembly, job: str, settings: GroupSettings) -> Pool:
    """Who may be drawn: standing for the job, not last time's holder, not this meeting's
    facilitator (for the notes), and — with `rotation_prefers_new` — only those who never did it,
    if any of them is left."""
    standing = tasks.pool(session, assembly.group_id, job)
    previous = previous_holder(session, assembly, job)
    eligible = [m for m in standing if m.id != previous and (job == FACILITATION or m.id != assembly.facilitator_id)]
    newcomers_first = False
    if settings.rotation_prefers_new:
        done = ever_did(session, assembly.group_id, job)
        fresh = [m for m in eligible if m.id not in done]
        if fresh and len(fresh) < len(eligible):
            eligible, newcomers_first = fresh, True
    last = next((m for m in standing if m.id == previous), None)
    return Pool([(m.id, m.display_name) for m in eligible], last, newcomers_first)


def open_job_draw(session: Session, assembly: Assembly, job: str, pool: Pool, now: datetime,
                  draws_at: datetime) -> Lottery | None:
    """The lottery for one job (None: nobody to draw). The facilitator is drawn first; the
    note-taker's lottery opens once the facilitator is known, so nobody does both jobs."""
    if job == FACILITATION:
        assembly.drawn_at = now
    if not pool.candidates:
        return None
    return draws.open_assembly_job(session, assembly, job, pool.candidates, 1, now, draws_at)


def job_lottery(session: Session, assembly: Assembly, job: str) -> Lottery | None:
    return session.scalars(select(Lottery).where(Lottery.assembly_id == assembly.id, Lottery.purpose == job)
                           .order_by(Lottery.id.desc()).limit(1)).first()


def lotteries_pending(session: Session, assembly: Assembly) -> bool:
    return session.scalar(select(func.count()).select_from(Lottery).where(
        Lottery.assembly_id == assembly.id, Lottery.drawn_at.is_(None))) > 0


def take_open_job(session: Session, group_id: int, job: str, member: Member, now: datetime) -> Assembly | None:
    """A member who stands for a job after the draw found nobody takes it at once — if they can:
    the next assembly's draw is done, the job is free, and they did not do it last time."""
    assembly = next_assembly(session, group_id, now)
    if assembly is None or assembly.drawn_at is None or job_holder(assembly, job) is not None:
        return None
    if lotteries_pending(session, assembly):
        return None  # a draw is still to come (the note-taker's opens when the facilitator's is drawn)
    other = assembly.note_taker_id if job == FACILITATION else assembly.facilitator_id
    if member.id in (other, previous_holder(session, assembly, job)):
        return None
    if job == FACILITATION:
        assembly.facilitator_id = member.id
    else:
        assembly.note_taker_id = member.id
    record.append(session, group_id, "assembly.job_taken", {"assembly": assembly.number, "job": job,
                                                            "member": member.display_name}, now)
    return assembly


def release_job(session: Session, group_id: int, member: Member, job: str, now: datetime) -> Assembly:
    """`stepdown facilitation|minutes`: whoever was drawn for a coming assembly gives the job back."""
    mine = [a for a in upcoming(session, group_id, now) if job_holder(a, job) == member.id]
    if not mine:
        raise RuleViolation(_("You are not the facilitator of a coming assembly.") if job == FACILITATION
                            else _("You are not the note-taker of a coming assembly."))
    assembly = mine[0]
    if job == FACILITATION:
        assembly.facilitator_id = None
    else:
        assembly.note_taker_id = None
    record.append(session, group_id, "assembly.job_released", {"assembly": assembly.number, "job": job,
                                                               "member": member.display_name}, now)
    return assembly


def redraw_job(session: Session, assembly: Assembly, job: str, leaving: Member, settings: GroupSettings,
               now: datetime) -> draws.Drawn | None:
    """A job given back is drawn again at once among the others — not whoever gave it back, for this
    assembly, before (None: nobody else can take it)."""
    pool = job_pool(session, assembly, job, settings)
    gave_back = {leaving.id} | {int(pick) for picks in session.scalars(select(Lottery.picks).where(
        Lottery.assembly_id == assembly.id, Lottery.purpose == job, Lottery.picks.is_not(None)))
        for pick in json.loads(picks)}
    return draw_job_now(session, assembly, job, [c for c in pool.candidates if c[0] not in gave_back], now)


def draw_job_now(session: Session, assembly: Assembly, job: str, candidates: list[tuple[int, str]],
                 now: datetime) -> draws.Drawn | None:
    """Open and draw a job's lottery at once, with no window for randomness (None: no candidate)."""
    if job == FACILITATION:
        assembly.drawn_at = now
    if not candidates:
        return None
    lottery = draws.open_assembly_job(session, assembly, job, candidates, 1, now, now, skipped_window=True)
    return draws.reveal(session, lottery, now, ())


def handover_notes(session: Session, group_id: int, job: str, before: datetime | None = None
                   ) -> tuple[Assembly, str] | None:
    """The latest notes left for this job (by an assembly before `before`), with their assembly."""
    column = Assembly.facilitator_notes if job == FACILITATION else Assembly.note_taker_notes
    query = select(Assembly).where(Assembly.group_id == group_id, column.is_not(None))
    if before is not None:
        query = query.where(Assembly.starts_at < before)
    found = session.scalars(query.order_by(Assembly.starts_at.desc()).limit(1)).first()
    if found is None:
        return None
    return found, found.facilitator_notes if job == FACILITATION else found.note_taker_notes


def leave_notes(session: Session, group_id: int, member: Member, text: str, now: datetime) -> tuple[Assembly, str]:
    """`assembly notes <text>`: for whoever does your job next time. On your latest assembly's job."""
    text = text.strip()
    if len(text) > MAX_NOTES:
        raise RuleViolation(_("The notes are {length} characters; keep them under {limit}.").format(
            length=i18n.number(len(text)), limit=i18n.number(MAX_NOTES)))
    found = session.scalars(select(Assembly).where(
        Assembly.group_id == group_id, Assembly.cancelled_at.is_(None), Assembly.started_at.is_not(None),
        or_(Assembly.facilitator_id == member.id, Assembly.note_taker_id == member.id))
        .order_by(Assembly.starts_at.desc()).limit(1)).first()
    if found is None:
        raise RuleViolation(_("Handover notes are left by whoever facilitated or took the minutes of an assembly "
                              "that has taken place; you have not done either yet."))
    if found.facilitator_id == member.id:
        found.facilitator_notes, job = text, FACILITATION
    else:
        found.note_taker_notes, job = text, MINUTES
    return found, job


# the agenda ----------------------------------------------------------------------------------------

def pending_items(session: Session, group_id: int, limit: int | None = None) -> list[AgendaItem]:
    """Open items not yet on a frozen agenda, in agenda order: most support, then oldest."""
    query = (select(AgendaItem).where(AgendaItem.group_id == group_id, AgendaItem.assembly_id.is_(None),
                                      AgendaItem.withdrawn_at.is_(None))
             .order_by(AgendaItem.support.desc(), AgendaItem.created_at, AgendaItem.number))
    return list(session.scalars(query.limit(limit) if limit else query))


def pending_count(session: Session, group_id: int) -> int:
    return session.scalar(select(func.count()).select_from(AgendaItem).where(
        AgendaItem.group_id == group_id, AgendaItem.assembly_id.is_(None), AgendaItem.withdrawn_at.is_(None)))


def agenda_of(session: Session, assembly: Assembly) -> list[AgendaItem]:
    """A frozen agenda, in its order (withdrawn items left out)."""
    return list(session.scalars(select(AgendaItem).where(AgendaItem.assembly_id == assembly.id,
                                                         AgendaItem.withdrawn_at.is_(None))
                                .order_by(AgendaItem.position)))


def items_for(session: Session, assembly: Assembly, limit: int | None = None) -> list[AgendaItem]:
    """What the assembly will discuss: its frozen agenda, or the open items so far."""
    if assembly.frozen_at is not None:
        return agenda_of(session, assembly)
    return pending_items(session, assembly.group_id, limit)


def item_count(session: Session, assembly: Assembly) -> int:
    """How many items the assembly will discuss (as `items_for` lists them), counted in the database."""
    if assembly.frozen_at is None:
        return pending_count(session, assembly.group_id)
    return session.scalar(select(func.count()).select_from(AgendaItem).where(
        AgendaItem.assembly_id == assembly.id, AgendaItem.withdrawn_at.is_(None)))


def add_item(session: Session, group_id: int, member: Member, text: str, now: datetime) -> tuple[AgendaItem, Assembly]:
    text = " ".join(text.split())
    if not text:
        raise RuleViolation(_("Say what the item is, like agenda add repaint the community kitchen."))
    if len(text) > MAX_ITEM:
        raise RuleViolation(_("The item is {length} characters; keep it under {limit} (it may become a "
                              "proposal's title).").format(length=i18n.number(len(text)), limit=MAX_ITEM))
    target = _open_agenda(session, group_id, now)
    if pending_count(session, group_id) >= MAX_OPEN_ITEMS:
        raise RuleViolation(_("The agenda has {count} items already; back the ones there ({command}) or "
                              "withdraw some.").format(count=MAX_OPEN_ITEMS, command="agenda +<n>"))
    number = (session.scalar(select(func.max(AgendaItem.number)).where(AgendaItem.group_id == group_id)) or 0) + 1
    item = AgendaItem(group_id=group_id, number=number, text=text, author_id=member.id, created_at=now)
    session.add(item)
    session.flush()
    return item, target


def _open_agenda(session: Session, group_id: int, now: datetime) -> Assembly:
    """The coming assembly whose agenda still takes items."""
    coming = upcoming(session, group_id, now)
    if not coming:
        raise RuleViolation(_("No assembly is scheduled, so there is no agenda to add to. Schedule one first: "
                              "{usage}, like {example}.").format(usage="assembly <when> [where]",
                                                                 example="assembly fri 19:00 community hall"))
    open_ones = [assembly for assembly in coming if assembly.frozen_at is None]
    if not open_ones:
        first = coming[0]
        raise RuleViolation(_("The agenda of assembly #{number} is closed and no later assembly is scheduled "
                              "yet; add it once the next one is.").format(number=first.number))
    return open_ones[0]


def find_item(session: Session, group_id: int, number: int) -> AgendaItem:
    item = session.scalars(select(AgendaItem).where(AgendaItem.group_id == group_id,
                                                    AgendaItem.number == number)).first()
    if item is None:
        raise RuleViolation(_("There is no agenda item #{number} in this group.").format(number=number))
    return item


def _bound_assembly(session: Session, item: AgendaItem) -> Assembly | None:
    return session.get(Assembly, item.assembly_id) if item.assembly_id else None


def support(session: Session, item: AgendaItem, member: Member, now: datetime, back: bool = True) -> bool:
    """Back an item (or stop backing it); False when it changed nothing."""
    if item.withdrawn_at is not None:
        raise RuleViolation(_("Item #{number} was withdrawn by its author.").format(number=item.number))
    bound = _bound_assembly(session, item)
    if bound is not None:
        raise RuleViolation(_("The agenda of assembly #{number} is closed; its order is set.").format(
            number=bound.number))
    existing = session.get(AgendaSupport, (item.id, member.id))
    if back == (existing is not None):
        return False
    if back:
        session.add(AgendaSupport(item_id=item.id, member_id=member.id, supported_at=now))
        item.support += 1
    else:
        session.execute(delete(AgendaSupport).where(AgendaSupport.item_id == item.id,
                                                    AgendaSupport.member_id == member.id))
        item.support -= 1
    return True


def withdraw_item(session: Session, item: AgendaItem, member: Member, now: datetime) -> None:
    if item.author_id != member.id:
        raise RuleViolation(_("Only whoever added item #{number} can withdraw it.").format(number=item.number))
    if item.withdrawn_at is not None:
        raise RuleViolation(_("Item #{number} is withdrawn already.").format(number=item.number))
    bound = _bound_assembly(session, item)
    if bound is not None and bound.started_at is not None:
        raise RuleViolation(_("Assembly #{number} has started; its agenda is what it is. Say it in the "
                              "meeting.").format(number=bound.number))
    item.withdrawn_at = now


def freeze(session: Session, assembly: Assembly, now: datetime) -> list[AgendaItem]:
    """Bind every open item to this assembly in agenda order; later items wait for the next."""
    items = pending_items(session, assembly.group_id)
    for position, item in enumerate(items, 1):
        item.assembly_id, item.position = assembly.id, position
    assembly.frozen_at = now
    session.flush()
    return items


def close_agenda(session: Session, group_id: int, member: Member, now: datetime) -> tuple[Assembly, list[AgendaItem]]:
    """`agenda close`: the facilitator freezes the next assembly's agenda before its time."""
    assembly = next_assembly(session, group_id, now)
    if assembly is None:
        raise RuleViolation(_("No assembly is scheduled; there is no agenda to close."))
    if assembly.frozen_at is not None:
        raise RuleViolation(_("The agenda of assembly #{number} is closed already.").format(number=assembly.number))
    if assembly.facilitator_id is None:
        raise RuleViolation(_("The facilitator of assembly #{number} closes its agenda, and none is drawn "
                              "yet. Otherwise it closes itself an hour before the start.").format(
                                  number=assembly.number))
    if assembly.facilitator_id != member.id:
        raise RuleViolation(_("Only the facilitator of assembly #{number} closes its agenda; it also "
                              "closes itself an hour before the start.").format(number=assembly.number))
    return assembly, freeze(session, assembly, now)


def start(session: Session, assembly: Assembly, now: datetime) -> list[AgendaItem]:
    """The meeting begins: the agenda (frozen now if it was not) is what gets posted."""
    if assembly.frozen_at is None:
        freeze(session, assembly, now)
    assembly.started_at, assembly.next_due_at = now, None
    items = agenda_of(session, assembly)
    record.append(session, assembly.group_id, "assembly.started", {
        "assembly": assembly.number, "starts_at": record.stamp(assembly.starts_at),
        "facilitator": _name(session, assembly.facilitator_id), "note_taker": _name(session, assembly.note_taker_id),
        "agenda": [[item.number, item.text] for item in items]}, now)
    return items


def check_proposable(session: Session, item: AgendaItem) -> None:
    if item.withdrawn_at is not None:
        raise RuleViolation(_("Item #{number} was withdrawn by its author.").format(number=item.number))
    if item.proposal_id is not None:
        number = session.get(Proposal, item.proposal_id).number
        raise RuleViolation(_("Item #{item} is proposal #{proposal} already.").format(item=item.number,
                                                                                     proposal=number))


# minutes ------------------------------------------------------------------------------------------

def _awaiting_minutes(session: Session, group_id: int) -> list[Assembly]:
    return list(session.scalars(select(Assembly).where(
        Assembly.group_id == group_id, Assembly.started_at.is_not(None), Assembly.cancelled_at.is_(None),
        Assembly.minutes_done_at.is_(None)).order_by(Assembly.starts_at.desc()).limit(10)))


def minutes_target(session: Session, group_id: int, member: Member) -> Assembly:
    """The assembly whose minutes this member may write: theirs as note-taker, or — when nobody was
    drawn — the latest one without a note-taker (whoever writes first takes the notes)."""
    waiting = _awaiting_minutes(session, group_id)
    if not waiting:
        raise RuleViolation(_("No assembly is waiting for minutes: they are written once an assembly has started."))
    mine = next((a for a in waiting if a.note_taker_id == member.id), None)
    if mine is not None:
        return mine
    latest_one = waiting[0]
    if latest_one.note_taker_id is None:
        latest_one.note_taker_id = member.id
        return latest_one
    taker = session.get(Member, latest_one.note_taker_id)
    raise RuleViolation(_("Only the note-taker of assembly #{number}, {note_taker}, records its "
                          "minutes. Send them your notes, or say them in the meeting.").format(
                              number=latest_one.number, note_taker=taker.display_name))


def append_minutes(session: Session, assembly: Assembly, text: str) -> int:
    text = text.strip()
    combined = f"{assembly.minutes}\n{text}" if assembly.minutes else text
    if len(combined) > MAX_MINUTES:
        raise RuleViolation(_("The minutes would be {length} characters; they can be at most "
                              "{limit}. Publish them with minutes done and summarise the rest.").format(
                                  length=i18n.number(len(combined)), limit=i18n.number(MAX_MINUTES)))
    assembly.minutes = combined
    return len(combined)


def proposals_from(session: Session, assembly: Assembly) -> list[Proposal]:
    """Proposals opened from the items of this assembly's agenda."""
    return list(session.scalars(select(Proposal).join(AgendaItem, AgendaItem.proposal_id == Proposal.id)
                                .where(AgendaItem.assembly_id == assembly.id).order_by(Proposal.number)))


def publish_minutes(session: Session, group_id: int, member: Member, now: datetime) -> Assembly:
    waiting = _awaiting_minutes(session, group_id)
    assembly = next((a for a in waiting if a.note_taker_id == member.id), None)
    if assembly is None:
        if waiting:
            raise RuleViolation(_("Only the note-taker publishes the minutes of assembly #{number}.").format(
                number=waiting[0].number))
        raise RuleViolation(_("No assembly is waiting for minutes."))
    if not assembly.minutes:
        raise RuleViolation(_("The minutes of assembly #{number} are empty; write them with {command} "
                              "first.").format(number=assembly.number, command="minutes <text>"))
    assembly.minutes_done_at = now
    record.append(session, group_id, "assembly.minutes", {
        "assembly": assembly.number, "starts_at": record.stamp(assembly.starts_at),
        "note_taker": member.display_name, "facilitator": _name(session, assembly.facilitator_id),
        "minutes": assembly.minutes, "agenda": [item.number for item in agenda_of(session, assembly)],
        "proposals": [proposal.number for proposal in proposals_from(session, assembly)]}, now)
    return assembly


def latest_minutes(session: Session, group_id: int) -> Assembly | None:
    return session.scalars(select(Assembly).where(Assembly.group_id == group_id,
                                                  Assembly.minutes_done_at.is_not(None))
                           .order_by(Assembly.starts_at.desc()).limit(1)).first()


def holders(session: Session, assembly: Assembly) -> tuple[Member | None, Member | None]:
    """(facilitator, note-taker), None where nobody is."""
    return (session.get(Member, assembly.facilitator_id) if assembly.facilitator_id else None,
            session.get(Member, assembly.note_taker_id) if assembly.note_taker_id else None)


def authors_of(session: Session, items: list[AgendaItem]) -> dict[int, str]:
    """Display names of the items' authors, by member id."""
    ids = {item.author_id for item in items}
    if not ids:
        return {}
    return dict(session.execute(select(Member.id, Member.display_name).where(Member.id.in_(ids))).all())


@dataclass(frozen=True)
class Brief:
    """What whoever takes a job is sent: the agenda so far and the last holder's handover notes."""

    items: list[AgendaItem]
    authors: dict[int, str]
    notes: tuple[Assembly, str, str] | None  # (their assembly, who wrote them, the notes)


def brief(session: Session, assembly: Assembly, job: str) -> Brief:
    items = items_for(session, assembly)
    found = handover_notes(session, assembly.group_id, job, before=assembly.starts_at)
    notes = None
    if found is not None:
        earlier, written = found
        notes = (earlier, _name(session, job_holder(earlier, job)) or _("the last one"), written)
    return Brief(items, authors_of(session, items), notes)


def _name(session: Session, member_id: int | None) -> str | None:
    member = session.get(Member, member_id) if member_id else None
    return member.display_name if member else None


# the scheduler's view ------------------------------------------------------------------------------

_table = Assembly.__table__.c
_NEXT_DUE = (select(_table.id, _table.next_due_at)  # ix_assemblies_due: only rows with a step owed
             .where(_table.next_due_at.is_not(None), _table.next_due_at <= bindparam("now"))
             .order_by(_table.next_due_at, _table.id).limit(1))


def steps_due(platforms: Platforms = None) -> Select:
    return scoped(_NEXT_DUE, _table.group_id, platforms)


def next_deadline(session: Session, platforms: Platforms = None) -> datetime | None:
    return session.scalar(select(func.min(Assembly.next_due_at)).where(
        and_(Assembly.next_due_at.is_not(None), served(Assembly.group_id, platforms))))
