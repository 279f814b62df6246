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
from bot.i18n import N_, _
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
            raise ArgError(_("write +3 to back item #3 or -3 to stop backing it (not “{text}”)").format(text=text[:20]))
        return int(text[1:].lstrip("#")), text[0] == "+"


# scheduling ---------------------------------------------------------------------------------------

@command("assembly", summary=N_("schedule an assembly, in the group's time zone"),
         example=N_("assembly fri 19:00 community hall | Budget night"),
         params=(Positional("time", Text("day and time", max_length=assemblies.MAX_PLACE + assemblies.MAX_TITLE + 60),
                            rest=True, label="<when> [where or link] [| title]"),),
         aliases=("meeting",),
         details=N_("When is a day and a time: fri 19:00, tomorrow 18:30, 2027-01-15 18:30, or just 19:00. After "
                    "it, where (a place or a link), and a title after a |. Reminders follow assembly_reminders; with "
                    "assembly_every (2w, 1mo) the next one is scheduled when this one starts."))
def schedule(ctx: Context, time: str) -> None:
    settings = ctx.settings
    parsed = assemblies.parse_when(time, ctx.now, settings.timezone)
    place, __, title = parsed.rest.partition("|")
    assembly = assemblies.schedule(ctx.session, ctx.group_id, settings, parsed.starts_at, place.strip(),
                                   title.strip(), ctx.member_id, ctx.now)
    ctx.post(render.scheduled(assembly, settings.timezone, ctx.now, ctx.prefix, ctx.settings.raw["assembly_every"]
                              if settings.assembly_every else None, _reminders(ctx, assembly)))


def _reminders(ctx: Context, assembly: Assembly) -> str:
    """The reminders still ahead (a 2-day reminder for a meeting tomorrow is not)."""
    return ", ".join(_("{duration} before").format(duration=format_duration(offset))
                     for offset in ctx.settings.assembly_reminders
                     if assembly.starts_at - offset > ctx.now)


@command("assemblies", summary=N_("the coming assemblies: when, where, facilitator, note-taker, agenda size"),
         example=N_("assemblies"), aliases=("meetings",))
def show_assemblies(ctx: Context) -> None:
    settings = ctx.settings
    rows = [(assembly, people(ctx, assembly), assemblies.item_count(ctx.session, assembly))
            for assembly in assemblies.upcoming(ctx.session, ctx.group_id, ctx.now)]
    standing = {job: tasks.pool(ctx.session, ctx.group_id, job) for job in assemblies.JOBS}
    ctx.reply(render.listing(rows, settings.timezone, ctx.now, ctx.prefix, standing,
                             settings.raw["assembly_every"] if settings.assembly_every else None))


@command("assembly cancel", summary=N_("cancel a coming assembly (whoever scheduled it, or its facilitator)"),
         example=N_("assembly cancel 3"), params=(Positional("assembly", Number(), label="assembly#"),))
def cancel(ctx: Context, assembly: int) -> None:
    found = assemblies.find(ctx.session, ctx.group_id, assembly)
    assemblies.cancel(ctx.session, found, ctx.member(), ctx.now)
    ctx.post(render.cancelled(found, ctx.sender_name, ctx.settings.timezone))


@command("assembly notes", summary=N_("leave handover notes for whoever facilitates or takes minutes next time"),
         example=N_("assembly notes start with a round of names; the projector cable is in the blue box"),
         params=(Positional("notes", Text("notes", max_length=assemblies.MAX_NOTES), rest=True), GROUP),
         where="any")
def leave_notes(ctx: Context, notes: str, group: str | None) -> None:
    ctx.enter_group(group)
    found, job = assemblies.leave_notes(ctx.session, ctx.group_id, ctx.member(), notes, ctx.now)
    ctx.reply(RichText(html=_("🗂 Thank you: whoever is {job} after {assembly} gets these notes when they are "
                              "drawn.").format(job=_(render.JOB_NAMES[job]), assembly=render.title_of(found))))


# the agenda -------------------------------------------------------------------------------------

@command("agenda", summary=N_("the agenda of the coming assembly — or back an item with +n"),
         example=N_("agenda +3"), params=(Positional("backing", Backing(), optional=True, label="[+n|-n]"),),
         details=N_("Items are ordered by how many members back them, then by age. The agenda closes an hour "
                    "before the start (or when the facilitator says agenda close)."))
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
              choices=choices, choices_do=N_("back an item"))


def _next_open(ctx: Context, after: Assembly) -> Assembly | None:
    return next((a for a in assemblies.upcoming(ctx.session, ctx.group_id, ctx.now)
                 if a.frozen_at is None and a.starts_at > after.starts_at), None)


def _back(ctx: Context, number: int, back: bool) -> None:
    item = assemblies.find_item(ctx.session, ctx.group_id, number)
    changed = assemblies.support(ctx.session, item, ctx.member(), ctx.now, back)
    if not changed:
        refusal = _("You back item #{number} already.") if back else _("You were not backing item #{number}.")
        raise RuleViolation(refusal.format(number=number))
    said = (_("{member} backs item {item} ({text}) · 👍 {support}") if back
            else _("{member} no longer backs item {item} ({text}) · 👍 {support}"))
    ctx.ack(RichText(html=said.format(member=escape(ctx.sender_name), item=code(f"#{number}"),
                                      text=escape(item.text[:60]), support=item.support)))


@command("agenda add", summary=N_("add an item to the next assembly's agenda"),
         example=N_("agenda add repaint the community kitchen"),
         params=(Positional("item", Text("item", max_length=assemblies.MAX_ITEM), rest=True),))
def add(ctx: Context, item: str) -> None:
    added, assembly = assemblies.add_item(ctx.session, ctx.group_id, ctx.member(), item, ctx.now)
    ctx.reply(render.added(added, assembly, ctx.settings.timezone, ctx.prefix))


@command("agenda withdraw", summary=N_("withdraw an agenda item you added"), example=N_("agenda withdraw 4"),
         params=(Positional("item", Number(), label="item#"),), aliases=("agenda remove",))
def withdraw(ctx: Context, item: int) -> None:
    found = assemblies.find_item(ctx.session, ctx.group_id, item)
    assemblies.withdraw_item(ctx.session, found, ctx.member(), ctx.now)
    ctx.reply(RichText(html=_("Item {item} is withdrawn: {text}").format(item=code(f"#{item}"),
                                                                         text=escape(found.text))))


@command("agenda close", summary=N_("the facilitator closes the next assembly's agenda before its time"),
         example=N_("agenda close"))
def close(ctx: Context) -> None:
    assembly, items = assemblies.close_agenda(ctx.session, ctx.group_id, ctx.member(), ctx.now)
    ctx.post(render.agenda_closed(assembly, items, authors(ctx, items), ctx.sender_name))


@command("agenda propose", summary=N_("turn an agenda item into a proposal for the group to decide"),
         example=N_("agenda propose 4"), params=(Positional("item", Number(), label="item#"),),
         gate="propose_role", task=N_("opening proposals"))
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

@command("minutes", summary=N_("the note-taker records the minutes (messages add up); minutes <#> shows them"),
         example=N_("minutes We agreed to repaint the kitchen in March; Ana buys the paint."),
         params=(Positional("text", Text("minutes", max_length=assemblies.MAX_MINUTES), optional=True, rest=True,
                            label="[text|assembly#]"), GROUP),
         where="any",
         details=N_("Only the assembly's note-taker writes its minutes (if nobody was drawn, whoever writes first "
                    "takes the notes); privately add group=<name>. minutes done publishes them to the group and "
                    "its record. minutes alone shows the latest published minutes, minutes 3 those of assembly #3."))
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
            raise RuleViolation(_("No minutes have been published yet."))
    else:
        found = assemblies.find(ctx.session, ctx.group_id, number)
        if found.minutes_done_at is None:
            if found.note_taker_id == ctx.member_id and found.minutes:  # the note-taker sees their draft
                ctx.reply(render.minutes(found, None, [], zone, published=False))
                return
            raise RuleViolation(_("The minutes of assembly #{number} are not published yet.").format(number=number))
    ctx.reply(render.minutes(found, _name(ctx, found.note_taker_id),
                             [p.number for p in assemblies.proposals_from(ctx.session, found)], zone))


@command("minutes done", summary=N_("the note-taker publishes the minutes to the group and its record"),
         example=N_("minutes done"), params=(GROUP,), where="any")
def publish(ctx: Context, group: str | None) -> None:
    ctx.enter_group(group)
    member = ctx.member()
    assembly = assemblies.publish_minutes(ctx.session, ctx.group_id, member, ctx.now)
    proposals = [p.number for p in assemblies.proposals_from(ctx.session, assembly)]
    ctx.post(render.minutes(assembly, member.display_name, proposals, ctx.settings.timezone))
    if ctx.is_private:
        ctx.reply(RichText(html=_("📜 Published in the group: the minutes of {assembly}.").format(
            assembly=render.title_of(assembly))))


# standing for a job ------------------------------------------------------------------------------------

def stand_for_task(ctx: Context, task: str) -> None:
    """`volunteer facilitation|minutes|mediation` (the role commands hand the task words here)."""
    if not tasks.stand(ctx.session, ctx.group_id, task, ctx.member_id, ctx.now):
        raise RuleViolation(_("You already stand for {task}.").format(task=_(tasks.NAMES[task])))
    if task == tasks.MEDIATION:
        stands = _("🙋 {member} stands for {task}: when a member asks privately for mediation, two mediators are "
                   "drawn by lot among you.")
    else:
        stands = _("🙋 {member} stands for {task}: each assembly draws its facilitator and note-taker by lot among "
                   "those who stand; nobody twice in a row.")
    ctx.reply(RichText(html=stands.format(member=escape(ctx.sender_name), task=escape(_(tasks.DOING[task])))))
    if task in assemblies.JOBS:
        taken = assemblies.take_open_job(ctx.session, ctx.group_id, task, ctx.member(), ctx.now)
        if taken is not None:
            ctx.post(render.job_taken(taken, task, ctx.member(), ctx.chat.platform))
            tell_job(ctx, taken, task)


def stop_standing(ctx: Context, task: str) -> None:
    if not tasks.stand_down(ctx.session, ctx.group_id, task, ctx.member_id):
        raise RuleViolation(_("You were not standing for {task}.").format(task=task))
    ctx.reply(RichText(html=_("{member} no longer stands for {task}.").format(
        member=escape(ctx.sender_name), task=escape(_(tasks.DOING[task])))))


def step_down_from_job(ctx: Context, task: str) -> None:
    """`stepdown facilitation|minutes`: give the job back; it is drawn again at once among the others."""
    if task not in assemblies.JOBS:
        raise RuleViolation(_("Mediators hold no seat: to stop being drawn, unvolunteer mediation."))
    member = ctx.member()
    assembly = assemblies.release_job(ctx.session, ctx.group_id, member, task, ctx.now)
    drawn = assemblies.redraw_job(ctx.session, assembly, task, member, ctx.settings, ctx.now)
    text = [RichText(html=_("↩️ {member} stepped down as {job} of {assembly}.").format(
        member=escape(ctx.sender_name), job=_(render.JOB_NAMES[task]), assembly=render.title_of(assembly)))]
    if drawn is not None:
        text.append(render.jobs_drawn(assembly, ctx.chat.platform, [drawn], ctx.prefix,
                                      at_once=f"{ctx.prefix}stepdown {task}"))
    else:
        text.append(RichText(html=_("Nobody else can be drawn; the first to stand takes it: {command}").format(
            command=code(f"{ctx.prefix}volunteer {task}"))))
    ctx.post(join(text))
    if drawn is not None and drawn.assigned is not None:
        with ctx.speaking_to(ctx.user_of(drawn.assigned)):
            text = render.job_message(assembly, task, ctx.group.title, assemblies.brief(ctx.session, assembly, task),
                                      ctx.settings.timezone, ctx.now, ctx.prefix)
            ctx.actions.append(DirectMessage(user=ctx.user_of(drawn.assigned), text=text, fallback_chat=ctx.chat))


def show_task_notes(ctx: Context, task: str) -> None:
    """`handover facilitation|minutes`: the notes the last holder of the job left."""
    if task not in assemblies.JOBS:
        raise RuleViolation(_("Mediation has no handover notes: what mediators hear stays with them."))
    notes = assemblies.handover_notes(ctx.session, ctx.group_id, task)
    if notes is None:
        raise RuleViolation(_("Nobody has left handover notes for {task} yet ({command}).").format(
            task=_(tasks.NAMES[task]), command="assembly notes <text>"))
    earlier, written = notes
    ctx.reply(RichText(html=_("🗂 Handover notes for {task}, from assembly #{number}:").format(
        task=escape(_(tasks.NAMES[task])), number=earlier.number) + f"\n<blockquote>{escape(written)}</blockquote>"))


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
