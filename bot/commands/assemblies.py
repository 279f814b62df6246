"""Assemblies: assembly, assemblies, assembly cancel, assembly notes, agenda (show, +n/-n, add,
withdraw, close, propose), minutes, minutes done — and standing for facilitation or minutes."""

from __future__ import annotations

import re

from bot.actions import DirectMessage
from bot.commands.args import ArgError, ArgType, Number, Text, Word
from bot.commands.base import command
from bot.commands.proposals import card, message_key
from bot.commands.registry import Option, Positional
from bot.context import Context
from bot.durations import format_duration
from bot.governance import assemblies, tasks
from bot.governance import proposals as rules
from bot.governance.errors import RuleViolation
from bot.render import assemblies as render
from bot.render.proposals import vote_choices
from bot.render.text import RichText, code, escape, join
from storage.models import AgendaItem, Assembly, Member

GROUP = Option("group", Word("group"), label="name")
_SHOW = re.compile(r"#?\d{1,6}")


class Backing(ArgType):
    """`+3` backs item #3, `-3` stops backing it."""

    metavar = "+n|-n"

    def parse(self, raw: str) -> tuple[int, bool]:
        text = raw.strip().replace("−", "-")
        if text[:1] not in "+-" or not text[1:].lstrip("#").isdigit() or len(text) > 10:
            raise ArgError(f"write +3 to back item #3 or -3 to stop backing it (not “{text[:20]}”)")
        return int(text[1:].lstrip("#")), text[0] == "+"


# scheduling ---------------------------------------------------------------------------------------

@command("assembly", summary="schedule an assembly, in the group's time zone",
         example="assembly fri 19:00 community hall | Budget night",
         params=(Positional("time", Text("day and time", max_length=assemblies.MAX_PLACE + assemblies.MAX_TITLE + 60),
                            rest=True, label="<when> [where or link] [| title]"),),
         aliases=("meeting",),
         details="When is a day and a time: fri 19:00, tomorrow 18:30, 2027-01-15 18:30, or just 19:00. After it, "
                 "where (a place or a link), and a title after a |. Reminders follow assembly_reminders; with "
                 "assembly_every (2w, 1mo) the next one is scheduled when this one starts.")
def schedule(ctx: Context, time: str) -> None:
    settings = ctx.settings
    parsed = assemblies.parse_when(time, ctx.now, settings.timezone)
    place, _, title = parsed.rest.partition("|")
    assembly = assemblies.schedule(ctx.session, ctx.group_id, settings, parsed.starts_at, place.strip(),
                                   title.strip(), ctx.member_id, ctx.now)
    ctx.post(render.scheduled(assembly, settings.timezone, ctx.now, ctx.prefix, ctx.settings.raw["assembly_every"]
                              if settings.assembly_every else None, _reminders(ctx, assembly)))


def _reminders(ctx: Context, assembly: Assembly) -> str:
    """The reminders still ahead (a 2-day reminder for a meeting tomorrow is not)."""
    return ", ".join(f"{format_duration(offset)} before" for offset in ctx.settings.assembly_reminders
                     if assembly.starts_at - offset > ctx.now)


@command("assemblies", summary="the coming assemblies: when, where, facilitator, note-taker, agenda size",
         example="assemblies", aliases=("meetings",))
def show_assemblies(ctx: Context) -> None:
    settings = ctx.settings
    rows = [(assembly, people(ctx, assembly), assemblies.item_count(ctx.session, assembly))
            for assembly in assemblies.upcoming(ctx.session, ctx.group_id, ctx.now)]
    standing = {job: tasks.pool(ctx.session, ctx.group_id, job) for job in assemblies.JOBS}
    ctx.reply(render.listing(rows, settings.timezone, ctx.now, ctx.prefix, standing,
                             settings.raw["assembly_every"] if settings.assembly_every else None))


@command("assembly cancel", summary="cancel a coming assembly (whoever scheduled it, or its facilitator)",
         example="assembly cancel 3", params=(Positional("assembly", Number(), label="assembly#"),))
def cancel(ctx: Context, assembly: int) -> None:
    found = assemblies.find(ctx.session, ctx.group_id, assembly)
    assemblies.cancel(ctx.session, found, ctx.member(), ctx.now)
    ctx.post(render.cancelled(found, ctx.sender_name, ctx.settings.timezone))


@command("assembly notes", summary="leave handover notes for whoever facilitates or takes minutes next time",
         example="assembly notes start with a round of names; the projector cable is in the blue box",
         params=(Positional("notes", Text("notes", max_length=assemblies.MAX_NOTES), rest=True), GROUP),
         where="any")
def leave_notes(ctx: Context, notes: str, group: str | None) -> None:
    ctx.enter_group(group)
    found, job = assemblies.leave_notes(ctx.session, ctx.group_id, ctx.member(), notes, ctx.now)
    ctx.reply(RichText(html=f"🗂 Thank you: whoever is {render.JOB_NAMES[job]} after {render.title_of(found)} "
                            "gets these notes when they are drawn."))


# the agenda -------------------------------------------------------------------------------------

@command("agenda", summary="the agenda of the coming assembly — or back an item with +n",
         example="agenda +3", params=(Positional("backing", Backing(), optional=True, label="[+n|-n]"),),
         details="Items are ordered by how many members back them, then by age. The agenda closes an hour "
                 "before the start (or when the facilitator says agenda close).")
def show_or_back(ctx: Context, backing: tuple[int, bool] | None) -> None:
    if backing is not None:
        _back(ctx, *backing)
        return
    shown = (assemblies.in_session(ctx.session, ctx.group_id, ctx.now)
             or assemblies.next_assembly(ctx.session, ctx.group_id, ctx.now))
    items = assemblies.items_for(ctx.session, shown) if shown else []
    later = None
    if shown is not None and shown.frozen_at is not None and (following := _next_open(ctx, shown)) is not None:
        later = (following, assemblies.pending_count(ctx.session, ctx.group_id))  # where new items go
    choices = render.agenda_choices(items) if shown is not None and shown.frozen_at is None else ()
    ctx.reply(render.agenda(shown, items, authors(ctx, items), ctx.settings.timezone, ctx.now, ctx.prefix, later),
              choices=choices, choices_do="back an item")


def _next_open(ctx: Context, after: Assembly) -> Assembly | None:
    return next((a for a in assemblies.upcoming(ctx.session, ctx.group_id, ctx.now)
                 if a.frozen_at is None and a.starts_at > after.starts_at), None)


def _back(ctx: Context, number: int, back: bool) -> None:
    item = assemblies.find_item(ctx.session, ctx.group_id, number)
    changed = assemblies.support(ctx.session, item, ctx.member(), ctx.now, back)
    if not changed:
        raise RuleViolation(f"You back item #{number} already." if back else f"You were not backing item #{number}.")
    verb = "backs" if back else "no longer backs"
    ctx.ack(RichText(html=f"{escape(ctx.sender_name)} {verb} item {code(f'#{number}')} ({escape(item.text[:60])}) · "
                          f"👍 {item.support}"))


@command("agenda add", summary="add an item to the next assembly's agenda",
         example="agenda add repaint the community kitchen",
         params=(Positional("item", Text("item", max_length=assemblies.MAX_ITEM), rest=True),))
def add(ctx: Context, item: str) -> None:
    added, assembly = assemblies.add_item(ctx.session, ctx.group_id, ctx.member(), item, ctx.now)
    ctx.reply(render.added(added, assembly, ctx.settings.timezone, ctx.prefix))


@command("agenda withdraw", summary="withdraw an agenda item you added", example="agenda withdraw 4",
         params=(Positional("item", Number(), label="item#"),), aliases=("agenda remove",))
def withdraw(ctx: Context, item: int) -> None:
    found = assemblies.find_item(ctx.session, ctx.group_id, item)
    assemblies.withdraw_item(ctx.session, found, ctx.member(), ctx.now)
    ctx.reply(RichText(html=f"Item {code(f'#{item}')} is withdrawn: {escape(found.text)}"))


@command("agenda close", summary="the facilitator closes the next assembly's agenda before its time",
         example="agenda close")
def close(ctx: Context) -> None:
    assembly, items = assemblies.close_agenda(ctx.session, ctx.group_id, ctx.member(), ctx.now)
    ctx.post(render.agenda_closed(assembly, items, authors(ctx, items), ctx.sender_name))


@command("agenda propose", summary="turn an agenda item into a proposal for the group to decide",
         example="agenda propose 4", params=(Positional("item", Number(), label="item#"),),
         gate="propose_role", task="opening proposals")
def propose(ctx: Context, item: int) -> None:
    found = assemblies.find_item(ctx.session, ctx.group_id, item)
    assemblies.check_proposable(ctx.session, found)
    settings = ctx.settings
    assembly = ctx.session.get(Assembly, found.assembly_id) if found.assembly_id else None
    details = f"From agenda item #{found.number}" + (f" of assembly #{assembly.number}." if assembly else ".")
    proposal = rules.open_proposal(
        ctx.session, group_id=ctx.group_id, author_id=ctx.member_id, title=found.text, details=details,
        rule=settings.rule, quorum=settings.quorum, options=None, now=ctx.now, duration=settings.vote_duration,
        electorate=ctx.directory.active_member_ids(ctx.session, ctx.group_id))
    found.proposal_id = proposal.id
    ctx.reply(card(ctx, proposal), choices=vote_choices(proposal), track=message_key(proposal))


# minutes --------------------------------------------------------------------------------------------

@command("minutes", summary="the note-taker records the minutes (messages add up); minutes <#> shows them",
         example="minutes We agreed to repaint the kitchen in March; Ana buys the paint.",
         params=(Positional("text", Text("minutes", max_length=assemblies.MAX_MINUTES), optional=True, rest=True,
                            label="[text|assembly#]"), GROUP),
         where="any",
         details="Only the assembly's note-taker writes its minutes (if nobody was drawn, whoever writes first "
                 "takes the notes); privately add group=<name>. minutes done publishes them to the group and "
                 "its record. minutes alone shows the latest published minutes, minutes 3 those of assembly #3.")
def write_or_show(ctx: Context, text: str | None, group: str | None) -> None:
    ctx.enter_group(group)
    if text is None or _SHOW.fullmatch(text):
        _show_minutes(ctx, int(text.lstrip("#")) if text else None)
        return
    member = ctx.member()
    assembly = assemblies.minutes_target(ctx.session, ctx.group_id, member)
    length = assemblies.append_minutes(ctx.session, assembly, text)
    ctx.ack(render.minutes_added(assembly, length, ctx.prefix))


def _show_minutes(ctx: Context, number: int | None) -> None:
    zone = ctx.settings.timezone
    if number is None:
        found = assemblies.latest_minutes(ctx.session, ctx.group_id)
        if found is None:
            raise RuleViolation("No minutes have been published yet.")
    else:
        found = assemblies.find(ctx.session, ctx.group_id, number)
        if found.minutes_done_at is None:
            if found.note_taker_id == ctx.member_id and found.minutes:  # the note-taker sees their draft
                ctx.reply(render.minutes(found, None, [], zone, published=False))
                return
            raise RuleViolation(f"The minutes of assembly #{number} are not published yet.")
    ctx.reply(render.minutes(found, _name(ctx, found.note_taker_id),
                             [p.number for p in assemblies.proposals_from(ctx.session, found)], zone))


@command("minutes done", summary="the note-taker publishes the minutes to the group and its record",
         example="minutes done", params=(GROUP,), where="any")
def publish(ctx: Context, group: str | None) -> None:
    ctx.enter_group(group)
    member = ctx.member()
    assembly = assemblies.publish_minutes(ctx.session, ctx.group_id, member, ctx.now)
    proposals = [p.number for p in assemblies.proposals_from(ctx.session, assembly)]
    ctx.post(render.minutes(assembly, member.display_name, proposals, ctx.settings.timezone))
    if ctx.is_private:
        ctx.reply(RichText(html=f"📜 Published in the group: the minutes of {render.title_of(assembly)}."))


# standing for a job ------------------------------------------------------------------------------------

def stand_for_task(ctx: Context, task: str) -> None:
    """`volunteer facilitation|minutes|mediation` (the role commands hand the task words here)."""
    if not tasks.stand(ctx.session, ctx.group_id, task, ctx.member_id, ctx.now):
        raise RuleViolation(f"You already stand for {task}.")
    how = ("when a member asks privately for mediation, two mediators are drawn by lot among you."
           if task == tasks.MEDIATION else
           "each assembly draws its facilitator and note-taker by lot among those who stand; nobody twice in a row.")
    ctx.reply(RichText(html=f"🙋 {escape(ctx.sender_name)} stands for {escape(tasks.DOING[task])}: {how}"))
    if task in assemblies.JOBS:
        taken = assemblies.take_open_job(ctx.session, ctx.group_id, task, ctx.member(), ctx.now)
        if taken is not None:
            ctx.post(render.job_taken(taken, task, ctx.member(), ctx.chat.platform))
            tell_job(ctx, taken, task)


def stop_standing(ctx: Context, task: str) -> None:
    if not tasks.stand_down(ctx.session, ctx.group_id, task, ctx.member_id):
        raise RuleViolation(f"You were not standing for {task}.")
    ctx.reply(RichText(html=f"{escape(ctx.sender_name)} no longer stands for {escape(tasks.DOING[task])}."))


def step_down_from_job(ctx: Context, task: str) -> None:
    """`stepdown facilitation|minutes`: give the job back; it is drawn again at once among the others."""
    if task not in assemblies.JOBS:
        raise RuleViolation("Mediators hold no seat: to stop being drawn, unvolunteer mediation.")
    member = ctx.member()
    assembly = assemblies.release_job(ctx.session, ctx.group_id, member, task, ctx.now)
    drawn = assemblies.redraw_job(ctx.session, assembly, task, member, ctx.settings, ctx.now)
    name = render.JOB_NAMES[task]
    text = [RichText(html=f"↩️ {escape(ctx.sender_name)} stepped down as {name} of {render.title_of(assembly)}.")]
    if drawn is not None:
        text.append(render.jobs_drawn(assembly, ctx.chat.platform, [drawn], ctx.prefix,
                                      at_once=f"{ctx.prefix}stepdown {task}"))
    else:
        text.append(RichText(html=f"Nobody else can be drawn; the first to stand takes it: "
                                  f"{code(f'{ctx.prefix}volunteer {task}')}"))
    ctx.post(join(text))
    if drawn is not None and drawn.assigned is not None:
        text = render.job_message(assembly, task, ctx.group.title, assemblies.brief(ctx.session, assembly, task),
                                  ctx.settings.timezone, ctx.now, ctx.prefix)
        ctx.actions.append(DirectMessage(user=ctx.user_of(drawn.assigned), text=text,
                                         fallback_chat=ctx.chat))


def show_task_notes(ctx: Context, task: str) -> None:
    """`handover facilitation|minutes`: the notes the last holder of the job left."""
    if task not in assemblies.JOBS:
        raise RuleViolation("Mediation has no handover notes: what mediators hear stays with them.")
    notes = assemblies.handover_notes(ctx.session, ctx.group_id, task)
    if notes is None:
        raise RuleViolation(f"Nobody has left handover notes for {task} yet (assembly notes <text>).")
    earlier, written = notes
    ctx.reply(RichText(html=f"🗂 Handover notes for {escape(task)}, from assembly #{earlier.number}:\n"
                            f"<blockquote>{escape(written)}</blockquote>"))


def tell_job(ctx: Context, assembly: Assembly, job: str) -> None:
    """The briefing, to the member who just took a job (nothing private in it: said in the group if need be)."""
    text = render.job_message(assembly, job, ctx.group.title, assemblies.brief(ctx.session, assembly, job),
                              ctx.settings.timezone, ctx.now, ctx.prefix)
    ctx.tell_privately(text, fallback=text)


def people(ctx: Context, assembly: Assembly) -> render.People:
    return render.People.of(ctx.chat.platform, assemblies.holders(ctx.session, assembly))


def authors(ctx: Context, items: list[AgendaItem]) -> dict[int, str]:
    return assemblies.authors_of(ctx.session, items)


def _name(ctx: Context, member_id: int | None) -> str | None:
    member = ctx.session.get(Member, member_id) if member_id else None
    return member.display_name if member else None
