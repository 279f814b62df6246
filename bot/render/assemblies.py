"""How assemblies read: scheduled, listed, reminded, their jobs drawn, the agenda, the start,
the minutes — and the direct message whoever is drawn receives."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from bot.actions import Choice
from bot.durations import plural
from bot.events import UserRef
from bot.governance import draws
from bot.governance.assemblies import FACILITATION, Brief, Pool
from bot.render.common import relative, when
from bot.render.roles import how_to_add, lottery_details, numbered, rule_lines
from bot.render.text import RichText, TextBuilder, b, code, escape, i, mention, quote
from storage.models import AgendaItem, Assembly, Lottery, Member

MAX_LISTED = 15  # agenda items shown in one message
MAX_BUTTONS = 8
KEYCAPS = ("1️⃣", "2️⃣", "3️⃣", "4️⃣", "5️⃣", "6️⃣", "7️⃣", "8️⃣")
JOB_NAMES = {FACILITATION: "facilitator", "minutes": "note-taker"}
CANDIDATES = "Candidates (standing for it), in order of their platform id"


@dataclass(frozen=True)
class People:
    """Who does what at an assembly, as members (None: nobody yet), and the group's platform for mentions."""

    platform: str
    facilitator: Member | None = None
    note_taker: Member | None = None

    @classmethod
    def of(cls, platform: str, holders: tuple[Member | None, Member | None]) -> People:
        return cls(platform, *holders)

    def who(self, member: Member | None, nobody: str = "not drawn yet") -> str:
        if member is None:
            return i(nobody)
        return mention(UserRef(platform=self.platform, user_id=member.user_id), member.display_name)


def title_of(assembly: Assembly) -> str:
    """`Assembly #3` or `Assembly #3 — Budget night` (escaped)."""
    head = f"Assembly #{assembly.number}"
    return escape(f"{head} — {assembly.title}" if assembly.title else head)


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
        shown.append(i(f"… and {len(items) - MAX_LISTED} more"))
    return shown


def agenda_choices(items: list[AgendaItem]) -> tuple[Choice, ...]:
    """A tap backs an item (the buttons of an open agenda; a reaction on Matrix)."""
    return tuple(Choice(label=f"👍 #{item.number}", payload=f"agenda +{item.number}", symbol=KEYCAPS[n])
                 for n, item in enumerate(items[:MAX_BUTTONS]))


def scheduled(assembly: Assembly, zone: ZoneInfo, now: datetime, prefix: str, rhythm: str | None,
              reminders: str) -> RichText:
    text = TextBuilder().line(f"📅 {heading(assembly, zone, now)}")
    text.line(f"Add to its agenda: {code(f'{prefix}agenda add <item>')} · see it: {code(f'{prefix}agenda')}")
    text.line(f"Facilitator and note-taker are drawn by lot among those who stand: "
              f"{code(f'{prefix}volunteer facilitation')} · {code(f'{prefix}volunteer minutes')}")
    tail = f"Reminders: {reminders}." if reminders else "No reminder before it (see assembly_reminders)."
    if rhythm:
        tail += f" The next one follows {rhythm} later, at the same time."
    text.line(i(tail))
    return text.build()


def listing(rows: list[tuple[Assembly, People, int]], zone: ZoneInfo, now: datetime, prefix: str,
            standing: dict[str, list[Member]], rhythm: str | None) -> RichText:
    """`assemblies`: the coming ones with their jobs and agenda size, and who stands for the jobs."""
    if not rows:
        text = TextBuilder().line("No assembly is scheduled. " + code(f"{prefix}assembly <when> [where]") +
                                  " schedules one, like " + code(f"{prefix}assembly fri 19:00 community hall"))
    else:
        text = TextBuilder().line(b("Coming assemblies"))
        for assembly, people, items in rows:
            text.line(f"📅 {heading(assembly, zone, now)}")
            agenda = "closed" if assembly.frozen_at else "open"
            text.line(f"    facilitator: {people.who(people.facilitator)} · notes: {people.who(people.note_taker)}"
                      f" · agenda {agenda}, {plural(items, 'item')}")
    if rhythm:
        text.line(i(f"On a rhythm: every {rhythm}."))
    for job, members in standing.items():
        names = ", ".join(escape(m.display_name) for m in members) or i("nobody yet")
        text.line(f"Standing for {escape(job)}: {names}")
    return text.build()


def _jobs_line(people: People, lotteries: list[Lottery], now: datetime) -> str:
    drawing = {lottery.purpose for lottery in lotteries if lottery.drawn_at is None}
    parts = []
    for job, member in ((FACILITATION, people.facilitator), ("minutes", people.note_taker)):
        name = JOB_NAMES[job]
        parts.append(f"{name}: " + (people.who(member) if member or job not in drawing
                                    else i(f"drawn {relative(_draw_time(lotteries, job), now)}")))
    return " · ".join(parts)


def _draw_time(lotteries: list[Lottery], job: str) -> datetime:
    return next(lottery.draws_at for lottery in lotteries if lottery.purpose == job)


def reminder(assembly: Assembly, items: list[AgendaItem], authors: dict[int, str], people: People,
             opened: list[Lottery], zone: ZoneInfo, now: datetime, prefix: str) -> RichText:
    text = TextBuilder().line(f"⏰ {heading(assembly, zone, now)}")
    text.line(_jobs_line(people, opened, now))
    if items:
        text.line(b("Agenda" + (" (closed)" if assembly.frozen_at else " so far") + ":"))
        for line in item_lines(items, authors):
            text.line(line)
    else:
        text.line(i("Nothing on the agenda yet."))
    if assembly.frozen_at is None:
        text.line(f"Add: {code(f'{prefix}agenda add <item>')} · back an item: {code(f'{prefix}agenda +<n>')}")
    return text.build()


def draws_opened(assembly: Assembly, opened: list[Lottery], pools: dict[str, Pool], zone: ZoneInfo,
                 now: datetime, prefix: str, others_open: bool) -> RichText:
    """The lottery for a job opens (or why it could not), for each job in `pools`."""
    text = TextBuilder()
    for job in pools:
        name = JOB_NAMES[job]
        lottery = next((lottery for lottery in opened if lottery.purpose == job), None)
        if lottery is None:
            text.line(f"🙋 Nobody can be drawn as {name} of {title_of(assembly)}: {_why_empty(pools[job])} "
                      f"The first to stand takes it: {code(f'{prefix}volunteer {job}')}")
            continue
        candidates = draws.candidates_of(lottery)
        text.line(f"🎲 {b(f'Lottery #{lottery.number}')} draws the {name} of {title_of(assembly)} "
                  f"{when(lottery.draws_at, zone)} ({relative(lottery.draws_at, now)}) among "
                  f"{plural(len(candidates), 'member')}: {numbered(candidates)}.")
        text.line(f"    {_pool_note(pools[job], name)}Commitment: {code(lottery.commitment)} · add randomness: "
                  f"{how_to_add(lottery, prefix, others_open)}")
    return text.build()


def _why_empty(pool: Pool) -> str:
    if pool.last_time is not None:
        return (f"only {escape(pool.last_time.display_name)} stands, who did it last time (nobody does it twice "
                "in a row).")
    return "nobody stands for it."


def _pool_note(pool: Pool, name: str) -> str:
    notes = []
    if pool.last_time is not None:
        notes.append(f"{escape(pool.last_time.display_name)} was {name} last time, so not this time.")
    if pool.newcomers_first:
        notes.append(f"Only those who were never {name} are in this draw (rotation_prefers_new).")
    return " ".join(notes) + (" " if notes else "")


def jobs_drawn(assembly: Assembly, platform: str, results: list[draws.Drawn], prefix: str,
               at_once: str = "back after the start") -> RichText:
    """A job's lottery drawn (or both, after downtime): who takes it, and how to recompute the draw.
    `at_once` says why a draw had no window for randomness."""
    text = TextBuilder()
    for drawn in results:
        job = drawn.lottery.purpose
        name = JOB_NAMES[job]
        who = People(platform).who(drawn.assigned, "nobody")
        text.line(f"🎲 <b>{title_of(assembly)}</b>: the {name} is {who} ({b(f'lottery #{drawn.lottery.number}')}).")
        names = dict(drawn.candidates)
        for member_id, why in drawn.unseated:
            text.line(f"  {escape(names.get(member_id, '?'))} was drawn but is not {name}: {escape(why)}.")
        for line in lottery_details(drawn, CANDIDATES) + rule_lines(drawn, at_once):
            text.line(f"  {line}")
        if drawn.assigned is None:
            text.line(f"The first to stand takes it: {code(f'{prefix}volunteer {job}')}")
    return text.build()


def job_taken(assembly: Assembly, job: str, member: Member, platform: str) -> RichText:
    who = mention(UserRef(platform=platform, user_id=member.user_id), member.display_name)
    return RichText(html=f"🙋 {who} is the {JOB_NAMES[job]} of {title_of(assembly)}: nobody else could be drawn.")


def job_message(assembly: Assembly, job: str, group_title: str | None, brief: Brief, zone: ZoneInfo,
                now: datetime, prefix: str) -> RichText:
    """The direct message to whoever is drawn: when, the agenda so far, last time's handover notes."""
    where = f" of {escape(group_title)}" if group_title else ""
    text = TextBuilder().line(f"👋 You are the {b(JOB_NAMES[job])} of {title_of(assembly)}{where}: "
                              f"{when(assembly.starts_at, zone)} ({relative(assembly.starts_at, now)})"
                              f"{_place(assembly)}.")
    if job == FACILITATION:
        text.line(f"You hold the agenda and the time; you may close the agenda early with "
                  f"{code(f'{prefix}agenda close')}, and items decided in the meeting become proposals with "
                  f"{code(f'{prefix}agenda propose <n>')}.")
    else:
        text.line(f"You keep the minutes: {code(f'{prefix}minutes <text>')} (several messages add up), then "
                  f"{code(f'{prefix}minutes done')} publishes them to the group and its record.")
    text.line(b("The agenda so far:") if brief.items else i("Nothing is on the agenda yet."))
    for line in item_lines(brief.items, brief.authors):
        text.line(line)
    if brief.notes is not None:
        earlier, author, written = brief.notes
        text.line(f"Handover notes from {escape(author)}, {JOB_NAMES[job]} of assembly #{earlier.number}:")
        text.line(quote(written))
    else:
        text.line(i("Nobody has left handover notes for this job yet."))
    text.line(i(f"After the assembly, leave notes for whoever comes next: {prefix}assembly notes <text>"))
    return text.build()


def agenda(assembly: Assembly | None, items: list[AgendaItem], authors: dict[int, str], zone: ZoneInfo,
           now: datetime, prefix: str, later: tuple[Assembly, int] | None = None) -> RichText:
    """`agenda`: the agenda of the assembly under way or coming, open items ordered by support, then age."""
    text = TextBuilder()
    if assembly is None:
        text.line("No assembly is scheduled. " + code(f"{prefix}assembly <when> [where]") + " schedules one.")
        return text.build()
    state = ("under way" if assembly.started_at else "closed" if assembly.frozen_at else "open")
    text.line(f"🗒 Agenda of {heading(assembly, zone, now)} — {state}")
    if items:
        for line in item_lines(items, authors):
            text.line(line)
    else:
        text.line(i("Nothing on it yet."))
    if assembly.frozen_at is None:
        text.line(f"Add: {code(f'{prefix}agenda add <item>')} · back one: {code(f'{prefix}agenda +<n>')} "
                  f"(or tap) · withdraw yours: {code(f'{prefix}agenda withdraw <n>')}")
    elif assembly.started_at is not None:
        text.line(f"Decided something? {code(f'{prefix}agenda propose <n>')} opens it as a proposal.")
    if later is not None:
        following, count = later
        text.line(i(f"New items go to assembly #{following.number} ({plural(count, 'item')} so far)."))
    return text.build()


def added(item: AgendaItem, assembly: Assembly, zone: ZoneInfo, prefix: str) -> RichText:
    return RichText(html=f"🗒 Item {code(f'#{item.number}')} is on the agenda of {title_of(assembly)} "
                         f"({when(assembly.starts_at, zone)}): {escape(item.text)}. Back it with "
                         f"{code(f'{prefix}agenda +{item.number}')}.")


def agenda_closed(assembly: Assembly, items: list[AgendaItem], authors: dict[int, str], who: str) -> RichText:
    text = TextBuilder().line(f"🔒 {escape(who)} closed the agenda of {title_of(assembly)}:")
    for line in item_lines(items, authors) or [i("nothing on it.")]:
        text.line(line)
    return text.build()


def started(assembly: Assembly, items: list[AgendaItem], authors: dict[int, str], people: People,
            upcoming_one: Assembly | None, zone: ZoneInfo, now: datetime, prefix: str) -> RichText:
    text = TextBuilder().line(f"🔔 {b('Starting now')}: {title_of(assembly)}{_place(assembly)}")
    text.line(f"Facilitator: {people.who(people.facilitator, 'nobody drawn')} · notes: "
              f"{people.who(people.note_taker, 'nobody drawn — the first to write minutes takes them')}")
    if items:
        text.line(b("Agenda:"))
        for line in item_lines(items, authors):
            text.line(line)
    else:
        text.line(i("The agenda is empty: an open conversation."))
    text.line(f"Decided something? {code(f'{prefix}agenda propose <n>')} · minutes: "
              f"{code(f'{prefix}minutes <text>')}, then {code(f'{prefix}minutes done')}")
    if upcoming_one is not None:
        text.line(i(f"Next: assembly #{upcoming_one.number}, {when(upcoming_one.starts_at, zone)}."))
    return text.build()


def minutes_added(assembly: Assembly, length: int, prefix: str) -> RichText:
    return RichText(html=f"📝 Added to the minutes of {title_of(assembly)} ({length:,} characters so far). "
                         f"{code(f'{prefix}minutes done')} publishes them.")


def minutes(assembly: Assembly, note_taker: str | None, proposal_numbers: list[int], zone: ZoneInfo,
            published: bool = True) -> RichText:
    head = "📜 Minutes of" if published else "📝 Draft minutes of"
    text = TextBuilder().line(f"{head} <b>{title_of(assembly)}</b> "
                              f"({when(assembly.starts_at, zone)})" +
                              (f", taken by {escape(note_taker)}" if note_taker else ""))
    text.line(quote(assembly.minutes or ""))
    if proposal_numbers:
        text.line("Proposals opened from its agenda: " + ", ".join(f"#{n}" for n in proposal_numbers))
    return text.build()


def cancelled(assembly: Assembly, who: str, zone: ZoneInfo) -> RichText:
    return RichText(html=f"🚫 {escape(who)} cancelled {title_of(assembly)} ({when(assembly.starts_at, zone)}). Its "
                         "agenda items wait for the next assembly.")
