"""How assemblies read: scheduled, listed, reminded, their jobs drawn, the agenda, the start,
the minutes — and the direct message whoever is drawn receives."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from bot import i18n
from bot.actions import Choice
from bot.events import UserRef
from bot.governance import draws, tasks
from bot.governance.assemblies import FACILITATION, Brief, Pool
from bot.i18n import N_, _, ngettext
from bot.render.common import relative, when
from bot.render.roles import how_to_add, lottery_details, numbered, rule_lines
from bot.render.text import RichText, TextBuilder, b, code, escape, i, mention, quote
from storage.models import AgendaItem, Assembly, Lottery, Member

MAX_LISTED = 15  # agenda items shown in one message
MAX_BUTTONS = 8
KEYCAPS = ("1️⃣", "2️⃣", "3️⃣", "4️⃣", "5️⃣", "6️⃣", "7️⃣", "8️⃣")
JOB_NAMES = {FACILITATION: N_("facilitator"), "minutes": N_("note-taker")}  # shown as _(JOB_NAMES[job])
CANDIDATES = N_("Candidates (standing for it), in order of their platform id")  # lottery_details translates it


@dataclass(frozen=True)
class People:
    """Who does what at an assembly, as members (None: nobody yet), and the group's platform for mentions."""

    platform: str
    facilitator: Member | None = None
    note_taker: Member | None = None

    @classmethod
    def of(cls, platform: str, holders: tuple[Member | None, Member | None]) -> People:
        return cls(platform, *holders)

    def who(self, member: Member | None, nobody: str = N_("not drawn yet")) -> str:
        """A mention of `member`, or `nobody` (English, marked with N_) in italics."""
        if member is None:
            return i(_(nobody))
        return mention(UserRef(platform=member.platform, user_id=member.user_id), member.display_name)


def title_of(assembly: Assembly) -> str:
    """`Assembly #3` or `Assembly #3 — Budget night` (escaped)."""
    if assembly.title:
        return escape(_("Assembly #{number} — {title}").format(number=assembly.number, title=assembly.title))
    return escape(_("Assembly #{number}").format(number=assembly.number))


def _place(assembly: Assembly) -> str:
    return f" · 📍 {escape(assembly.place)}" if assembly.place else ""


def heading(assembly: Assembly, zone: ZoneInfo, now: datetime) -> str:
    return (f"<b>{title_of(assembly)}</b>: {when(assembly.starts_at, zone)} ({relative(assembly.starts_at, now)})"
            f"{_place(assembly)}")


def item_line(item: AgendaItem, author: str | None = None, numbered_as: int | None = None) -> str:
    support = f" · 👍 {item.support}" if item.support else ""
    by = f" — {escape(author)}" if author else ""
    position = f"{numbered_as}. " if numbered_as is not None else ""
    return f"{position}{escape(item.text)} {code(f'#{item.number}')}{by}{support}"


def item_lines(items: list[AgendaItem], authors: dict[int, str], numbered_list: bool = True) -> list[str]:
    shown = [item_line(item, authors.get(item.author_id), n if numbered_list else None)
             for n, item in enumerate(items[:MAX_LISTED], 1)]
    if len(items) > MAX_LISTED:
        more = len(items) - MAX_LISTED
        shown.append(i(ngettext("… and {count} more", "… and {count} more", more).format(count=more)))
    return shown


def agenda_choices(items: list[AgendaItem]) -> tuple[Choice, ...]:
    """A tap backs an item (the buttons of an open agenda; a reaction on Matrix)."""
    return tuple(Choice(label=f"👍 #{item.number}", payload=f"agenda +{item.number}", symbol=KEYCAPS[n])
                 for n, item in enumerate(items[:MAX_BUTTONS]))


def scheduled(assembly: Assembly, zone: ZoneInfo, now: datetime, prefix: str, rhythm: str | None,
              reminders: str) -> RichText:
    text = TextBuilder().line(f"📅 {heading(assembly, zone, now)}")
    text.line(_("Add to its agenda: {add} · see it: {show}").format(add=code(f"{prefix}agenda add <item>"),
                                                                     show=code(f"{prefix}agenda")))
    text.line(_("Facilitator and note-taker are drawn by lot among those who stand: {facilitation} · "
                "{minutes}").format(facilitation=code(f"{prefix}volunteer facilitation"),
                                    minutes=code(f"{prefix}volunteer minutes")))
    tail = (_("Reminders: {reminders}.").format(reminders=reminders) if reminders
            else _("No reminder before it (see assembly_reminders)."))
    if rhythm:
        tail += " " + _("The next one follows {rhythm} later, at the same time.").format(rhythm=rhythm)
    text.line(i(tail))
    return text.build()


def listing(rows: list[tuple[Assembly, People, int]], zone: ZoneInfo, now: datetime, prefix: str,
            standing: dict[str, list[Member]], rhythm: str | None) -> RichText:
    """`assemblies`: the coming ones with their jobs and agenda size, and who stands for the jobs."""
    if not rows:
        text = TextBuilder().line(_("No assembly is scheduled. {command} schedules one, like {example}").format(
            command=code(f"{prefix}assembly <when> [where]"),
            example=code(f"{prefix}assembly fri 19:00 community hall")))
    else:
        text = TextBuilder().line(b(_("Coming assemblies")))
        for assembly, people, items in rows:
            text.line(f"📅 {heading(assembly, zone, now)}")
            text.line("    " + _jobs_and_agenda(assembly, people, items))
    if rhythm:
        text.line(i(_("On a rhythm: every {rhythm}.").format(rhythm=rhythm)))
    for job, members in standing.items():
        names = ", ".join(escape(m.display_name) for m in members) or i(_("nobody yet"))
        text.line(_("Standing for {job}: {names}").format(job=escape(_(tasks.NAMES.get(job, job))), names=names))
    return text.build()


def _jobs_and_agenda(assembly: Assembly, people: People, items: int) -> str:
    """`facilitator: Ana · notes: Bob · agenda open, 3 items` (a line of the listing)."""
    if assembly.frozen_at:
        line = ngettext("facilitator: {facilitator} · notes: {note_taker} · agenda closed, {count} item",
                        "facilitator: {facilitator} · notes: {note_taker} · agenda closed, {count} items", items)
    else:
        line = ngettext("facilitator: {facilitator} · notes: {note_taker} · agenda open, {count} item",
                        "facilitator: {facilitator} · notes: {note_taker} · agenda open, {count} items", items)
    return line.format(facilitator=people.who(people.facilitator), note_taker=people.who(people.note_taker),
                       count=items)


def _jobs_line(people: People, lotteries: list[Lottery], now: datetime) -> str:
    drawing = {lottery.purpose for lottery in lotteries if lottery.drawn_at is None}
    parts = []
    for job, member in ((FACILITATION, people.facilitator), ("minutes", people.note_taker)):
        holder = (people.who(member) if member or job not in drawing
                  else i(_("drawn {when}").format(when=relative(_draw_time(lotteries, job), now))))
        parts.append(_("{job}: {holder}").format(job=_(JOB_NAMES[job]), holder=holder))
    return " · ".join(parts)


def _draw_time(lotteries: list[Lottery], job: str) -> datetime:
    return next(lottery.draws_at for lottery in lotteries if lottery.purpose == job)


def reminder(assembly: Assembly, items: list[AgendaItem], authors: dict[int, str], people: People,
             opened: list[Lottery], zone: ZoneInfo, now: datetime, prefix: str) -> RichText:
    text = TextBuilder().line(f"⏰ {heading(assembly, zone, now)}")
    text.line(_jobs_line(people, opened, now))
    if items:
        text.line(b(_("Agenda (closed):") if assembly.frozen_at else _("Agenda so far:")))
        for line in item_lines(items, authors):
            text.line(line)
    else:
        text.line(i(_("Nothing on the agenda yet.")))
    if assembly.frozen_at is None:
        text.line(_("Add: {add} · back an item: {back}").format(add=code(f"{prefix}agenda add <item>"),
                                                                 back=code(f"{prefix}agenda +<n>")))
    return text.build()


def draws_opened(assembly: Assembly, opened: list[Lottery], pools: dict[str, Pool], zone: ZoneInfo,
                 now: datetime, prefix: str, others_open: bool) -> RichText:
    """The lottery for a job opens (or why it could not), for each job in `pools`."""
    text = TextBuilder()
    for job in pools:
        name = _(JOB_NAMES[job])
        lottery = next((lottery for lottery in opened if lottery.purpose == job), None)
        if lottery is None:
            text.line(_nobody_to_draw(assembly, job, pools[job], prefix))
            continue
        candidates = draws.candidates_of(lottery)
        text.line(ngettext("🎲 {lottery} draws the {job} of {assembly} {when} ({relative}) among {count} member: "
                           "{candidates}.",
                           "🎲 {lottery} draws the {job} of {assembly} {when} ({relative}) among {count} members: "
                           "{candidates}.", len(candidates)).format(
            lottery=b(_("Lottery #{number}").format(number=lottery.number)), job=name, assembly=title_of(assembly),
            when=when(lottery.draws_at, zone), relative=relative(lottery.draws_at, now), count=len(candidates),
            candidates=numbered(candidates)))
        text.line("    " + _pool_note(pools[job], name) + _("Commitment: {commitment} · add randomness: {how}").format(
            commitment=code(lottery.commitment), how=how_to_add(lottery, prefix, others_open)))
    return text.build()


def _nobody_to_draw(assembly: Assembly, job: str, pool: Pool, prefix: str) -> str:
    if pool.last_time is not None:
        line = _("🙋 Nobody can be drawn as {job} of {assembly}: only {member} stands, who did it last time (nobody "
                 "does it twice in a row). The first to stand takes it: {command}")
    else:
        line = _("🙋 Nobody can be drawn as {job} of {assembly}: nobody stands for it. The first to stand takes it: "
                 "{command}")
    return line.format(job=_(JOB_NAMES[job]), assembly=title_of(assembly), command=code(f"{prefix}volunteer {job}"),
                       member=escape(pool.last_time.display_name) if pool.last_time is not None else "")


def _pool_note(pool: Pool, name: str) -> str:
    notes = []
    if pool.last_time is not None:
        notes.append(_("{member} was {job} last time, so not this time.").format(
            member=escape(pool.last_time.display_name), job=name))
    if pool.newcomers_first:
        notes.append(_("Only those who were never {job} are in this draw (rotation_prefers_new).").format(job=name))
    return " ".join(notes) + (" " if notes else "")


def jobs_drawn(assembly: Assembly, platform: str, results: list[draws.Drawn], prefix: str,
               at_once: str | None = None) -> RichText:
    """A job's lottery drawn (or both, after downtime): who takes it, and how to recompute the draw.
    `at_once` says why a draw had no window for randomness (by default: back after the start)."""
    text = TextBuilder()
    for drawn in results:
        job = drawn.lottery.purpose
        name = _(JOB_NAMES[job])
        who = People(platform).who(drawn.assigned, N_("nobody"))
        text.line(_("🎲 <b>{assembly}</b>: the {job} is {holder} ({lottery}).").format(
            assembly=title_of(assembly), job=name, holder=who,
            lottery=b(_("lottery #{number}").format(number=drawn.lottery.number))))
        names = dict(drawn.candidates)
        for member_id, why in drawn.unseated:
            text.line("  " + _("{member} was drawn but is not {job}: {reason}.").format(
                member=escape(names.get(member_id, "?")), job=name, reason=escape(why)))
        for line in lottery_details(drawn, CANDIDATES) + rule_lines(drawn, at_once or _("back after the start")):
            text.line(f"  {line}")
        if drawn.assigned is None:
            text.line(_("The first to stand takes it: {command}").format(command=code(f"{prefix}volunteer {job}")))
    return text.build()


def job_taken(assembly: Assembly, job: str, member: Member, platform: str) -> RichText:
    who = mention(UserRef(platform=member.platform, user_id=member.user_id), member.display_name)
    return RichText(html=_("🙋 {member} is the {job} of {assembly}: nobody else could be drawn.").format(
        member=who, job=_(JOB_NAMES[job]), assembly=title_of(assembly)))


def job_message(assembly: Assembly, job: str, group_title: str | None, brief: Brief, zone: ZoneInfo,
                now: datetime, prefix: str) -> RichText:
    """The direct message to whoever is drawn: when, the agenda so far, last time's handover notes."""
    if group_title:
        head = _("👋 You are the {job} of {assembly} of {group}: {when} ({relative}){place}.")
    else:
        head = _("👋 You are the {job} of {assembly}: {when} ({relative}){place}.")
    text = TextBuilder().line(head.format(
        job=b(_(JOB_NAMES[job])), assembly=title_of(assembly), group=escape(group_title or ""),
        when=when(assembly.starts_at, zone), relative=relative(assembly.starts_at, now), place=_place(assembly)))
    if job == FACILITATION:
        text.line(_("You hold the agenda and the time; you may close the agenda early with {close}, and items "
                    "decided in the meeting become proposals with {propose}.").format(
                        close=code(f"{prefix}agenda close"), propose=code(f"{prefix}agenda propose <n>")))
    else:
        text.line(_("You keep the minutes: {write} (several messages add up), then {done} publishes them to the "
                    "group and its record.").format(write=code(f"{prefix}minutes <text>"),
                                                    done=code(f"{prefix}minutes done")))
    text.line(b(_("The agenda so far:")) if brief.items else i(_("Nothing is on the agenda yet.")))
    for line in item_lines(brief.items, brief.authors):
        text.line(line)
    if brief.notes is not None:
        earlier, author, written = brief.notes
        text.line(_("Handover notes from {author}, {job} of assembly #{number}:").format(
            author=escape(author), job=_(JOB_NAMES[job]), number=earlier.number))
        text.line(quote(written))
    else:
        text.line(i(_("Nobody has left handover notes for this job yet.")))
    text.line(i(_("After the assembly, leave notes for whoever comes next: {command}").format(
        command=f"{prefix}assembly notes <text>")))
    return text.build()


def agenda(assembly: Assembly | None, items: list[AgendaItem], authors: dict[int, str], zone: ZoneInfo,
           now: datetime, prefix: str, later: tuple[Assembly, int] | None = None) -> RichText:
    """`agenda`: the agenda of the assembly under way or coming, open items ordered by support, then age."""
    text = TextBuilder()
    if assembly is None:
        text.line(_("No assembly is scheduled. {command} schedules one.").format(
            command=code(f"{prefix}assembly <when> [where]")))
        return text.build()
    if assembly.started_at:
        head = _("🗒 Agenda of {assembly} — under way")
    elif assembly.frozen_at:
        head = _("🗒 Agenda of {assembly} — closed")
    else:
        head = _("🗒 Agenda of {assembly} — open")
    text.line(head.format(assembly=heading(assembly, zone, now)))
    if items:
        for line in item_lines(items, authors):
            text.line(line)
    else:
        text.line(i(_("Nothing on it yet.")))
    if assembly.frozen_at is None:
        text.line(_("Add: {add} · back one: {back} (or tap) · withdraw yours: {withdraw}").format(
            add=code(f"{prefix}agenda add <item>"), back=code(f"{prefix}agenda +<n>"),
            withdraw=code(f"{prefix}agenda withdraw <n>")))
    elif assembly.started_at is not None:
        text.line(_("Decided something? {command} opens it as a proposal.").format(
            command=code(f"{prefix}agenda propose <n>")))
    if later is not None:
        following, count = later
        text.line(i(ngettext("New items go to assembly #{number} ({count} item so far).",
                             "New items go to assembly #{number} ({count} items so far).", count).format(
                                 number=following.number, count=count)))
    return text.build()


def added(item: AgendaItem, assembly: Assembly, zone: ZoneInfo, prefix: str) -> RichText:
    return RichText(html=_("🗒 Item {item} is on the agenda of {assembly} ({when}): {text}. Back it with "
                           "{command}.").format(item=code(f"#{item.number}"), assembly=title_of(assembly),
                                                 when=when(assembly.starts_at, zone), text=escape(item.text),
                                                 command=code(f"{prefix}agenda +{item.number}")))


def agenda_closed(assembly: Assembly, items: list[AgendaItem], authors: dict[int, str], who: str) -> RichText:
    text = TextBuilder().line(_("🔒 {member} closed the agenda of {assembly}:").format(
        member=escape(who), assembly=title_of(assembly)))
    for line in item_lines(items, authors) or [i(_("nothing on it."))]:
        text.line(line)
    return text.build()


def started(assembly: Assembly, items: list[AgendaItem], authors: dict[int, str], people: People,
            upcoming_one: Assembly | None, zone: ZoneInfo, now: datetime, prefix: str) -> RichText:
    text = TextBuilder().line(_("🔔 <b>Starting now</b>: {assembly}{place}").format(
        assembly=title_of(assembly), place=_place(assembly)))
    text.line(_("Facilitator: {facilitator} · notes: {note_taker}").format(
        facilitator=people.who(people.facilitator, N_("nobody drawn")),
        note_taker=people.who(people.note_taker, N_("nobody drawn — the first to write minutes takes them"))))
    if items:
        text.line(b(_("Agenda:")))
        for line in item_lines(items, authors):
            text.line(line)
    else:
        text.line(i(_("The agenda is empty: an open conversation.")))
    text.line(_("Decided something? {propose} · minutes: {write}, then {done}").format(
        propose=code(f"{prefix}agenda propose <n>"), write=code(f"{prefix}minutes <text>"),
        done=code(f"{prefix}minutes done")))
    if upcoming_one is not None:
        text.line(i(_("Next: assembly #{number}, {when}.").format(number=upcoming_one.number,
                                                                 when=when(upcoming_one.starts_at, zone))))
    return text.build()


def minutes_added(assembly: Assembly, length: int, prefix: str) -> RichText:
    return RichText(html=_("📝 Added to the minutes of {assembly} ({length} characters so far). {command} "
                           "publishes them.").format(assembly=title_of(assembly), length=i18n.number(length),
                                                     command=code(f"{prefix}minutes done")))


def minutes(assembly: Assembly, note_taker: str | None, proposal_numbers: list[int], zone: ZoneInfo,
            published: bool = True) -> RichText:
    text = TextBuilder().line(_minutes_head(published, bool(note_taker)).format(
        assembly=title_of(assembly), when=when(assembly.starts_at, zone), note_taker=escape(note_taker or "")))
    text.line(quote(assembly.minutes or ""))
    if proposal_numbers:
        text.line(_("Proposals opened from its agenda: {proposals}").format(
            proposals=", ".join(f"#{n}" for n in proposal_numbers)))
    return text.build()


def _minutes_head(published: bool, by_someone: bool) -> str:
    if published:
        return (_("📜 Minutes of <b>{assembly}</b> ({when}), taken by {note_taker}") if by_someone
                else _("📜 Minutes of <b>{assembly}</b> ({when})"))
    return (_("📝 Draft minutes of <b>{assembly}</b> ({when}), taken by {note_taker}") if by_someone
            else _("📝 Draft minutes of <b>{assembly}</b> ({when})"))


def cancelled(assembly: Assembly, who: str, zone: ZoneInfo) -> RichText:
    return RichText(html=_("🚫 {member} cancelled {assembly} ({when}). Its agenda items wait for the next "
                           "assembly.").format(member=escape(who), assembly=title_of(assembly),
                                               when=when(assembly.starts_at, zone)))
