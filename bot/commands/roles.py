"""Role rotation commands: role add/edit/remove, roles, volunteer, unvolunteer,
draw, draw add, elect, renew, recall, stepdown, shadow, handover."""

from __future__ import annotations

from datetime import timedelta

from bot.commands.args import Count, Duration, MentionArg, Number, OneOf, Text, Word
from bot.commands.assemblies import show_task_notes, stand_for_task, step_down_from_job, stop_standing
from bot.commands.base import command
from bot.commands.proposals import METHOD, SECRET, post_card
from bot.commands.registry import Flag, Option, Positional
from bot.context import Context
from bot.governance import draws, renewals, reviews, roles, tasks
from bot.governance import proposals as rules
from bot.governance.outcomes import next_step
from bot.governance.proposals import RuleViolation
from bot.i18n import N_, _, ngettext
from bot.render.common import when
from bot.render.roles import (
    calendar_entry,
    draw_announcement,
    handover_block,
    history_lines,
    lottery_opened,
    role_terms,
    stepped_down,
)
from bot.render.text import RichText, TextBuilder, b, code, escape, i, plain
from storage.models import Member, Role

ROLE = Positional("role", Word("role"))
TERMS = (
    Option("term", Duration()),
    Option("seats", Count(1, roles.MAX_SEATS)),
    Option("max_terms", Count(1, 20), aliases=("max",)),
    Option("fill", OneOf(*roles.FILLS, aliases={"vote": "election", "lot": "lottery", "sortition": "lottery"})),
    Option("handover", Text("handover note", max_length=roles.MAX_HANDOVER), label='"…"'),
    Option("trainees_required", Count(0, 10), aliases=("trainees",)),
    Option("delegate", OneOf("yes", "no", aliases={"true": "yes", "y": "yes", "on": "yes", "false": "no", "n": "no",
                                                   "off": "no"})),
)
MIN_VOTE = timedelta(minutes=1)


def _terms(values: dict) -> roles.RoleTerms:
    delegate = None if values["delegate"] is None else values["delegate"] == "yes"
    return roles.RoleTerms(delegate=delegate, **{key: values[key] for key in
                                                 ("term", "seats", "max_terms", "fill", "handover",
                                                  "trainees_required")})


def _announce(ctx: Context, *lines: str) -> None:
    text = TextBuilder()
    for line in lines:
        text.line(line)
    ctx.post(text.build())


@command("role add", summary=N_("define a role; every role has a term and expires on its own"),
         example=N_('role add facilitator term=30d fill=lottery handover="Open on time; keep the stack"'),
         params=(Positional("name", Word("name")), Option("term", Duration(), required=True), *TERMS[1:],
                 Option("sunset", Duration())),
         details=N_("max_terms is how many terms in a row one person may hold it (default 1: nobody twice in a "
                    "row). sunset=6mo gives the role its own sunset date: then the group keeps it, or it is retired. "
                    "delegate=yes makes it the group's delegate to its federation, carrying the mandate the group "
                    "sets (mandate <text>); a group has one delegate role."))
def role_add(ctx: Context, name: str, sunset: timedelta | None, **values) -> None:
    if sunset is not None:
        reviews.check_delay(sunset)
    role = roles.add_role(ctx.session, ctx.group_id, name, _terms(values), ctx.member_id, ctx.now)
    lines = [_("🆕 {member} defined the role {role}: {terms}.").format(
        member=escape(ctx.sender_name), role=b(role.name), terms=escape(role_terms(role)))]
    if sunset is not None:
        role.sunset_at = ctx.now + sunset
        lines.append(_("🌅 Sunset {date}: the group keeps it then, or it is retired.").format(
            date=when(role.sunset_at, ctx.settings.timezone)))
    renewals.ensure_scheduled(ctx.session, ctx.group, ctx.settings, ctx.now)
    _announce(ctx, *lines, i(_("Stand for it with {volunteer}; see every role with {roles}.").format(
        volunteer=f"{ctx.prefix}volunteer {role.key}", roles=f"{ctx.prefix}roles")))


@command("role edit", summary=N_("change a role's term, seats, limits, filling or handover note"),
         example=N_("role edit facilitator term=60d max_terms=2"),
         params=(Positional("name", Word("name")), *TERMS))
def role_edit(ctx: Context, name: str, **values) -> None:
    role = roles.find_role(ctx.session, ctx.group_id, name)
    changed = roles.edit_role(ctx.session, role, _terms(values), ctx.member_id, ctx.now)
    _announce(ctx, _("✏️ {member} changed {role} ({fields}): {terms}.").format(
                  member=escape(ctx.sender_name), role=b(role.name), fields=escape(", ".join(changed)),
                  terms=escape(role_terms(role))),
              i(_("Current mandates keep their end date; a new term applies from the next mandate.")))


@command("role remove", summary=N_("retire a role; its holders' mandates end now"),
         example=N_("role remove treasurer"),
         params=(Positional("name", Word("name")),), aliases=("role retire",))
def role_remove(ctx: Context, name: str) -> None:
    role = roles.find_role(ctx.session, ctx.group_id, name)
    ended = roles.retire_role(ctx.session, role, ctx.member_id, ctx.now)
    values = {"member": escape(ctx.sender_name), "role": b(role.name), "count": len(ended)}
    if ended:
        headline = ngettext("📦 {member} retired the role {role}; {count} mandate ended.",
                            "📦 {member} retired the role {role}; {count} mandates ended.", len(ended)).format(**values)
    else:
        headline = _("📦 {member} retired the role {role}.").format(**values)
    _announce(ctx, headline, i(_("Its history stays in the record.")))


@command("roles", summary=N_("the rotation calendar: holders, term ends, volunteers, trainees"), example=N_("roles"))
def show_roles(ctx: Context) -> None:
    found = roles.active_roles(ctx.session, ctx.group_id)
    if not found:
        ctx.reply(plain(_("No roles yet. Define one: {command}").format(
            command=f"{ctx.prefix}role add facilitator term=30d")))
        return
    zone = ctx.settings.timezone
    lines = [b(_("Rotation calendar"))]
    for role in found:
        holders = roles.holders(ctx.session, role)
        learned = {m.id: len(roles.trainees(ctx.session, role, since=m.term_started_at)) for m, __ in holders}
        since = min((m.term_started_at for m, __ in holders), default=ctx.now - roles.term_of(role))
        lines += calendar_entry(role, holders, roles.volunteers(ctx.session, role),
                                roles.trainees(ctx.session, role, since=since), roles.history(ctx.session, role),
                                learned, ctx.now, zone)
    ctx.reply(RichText(html="\n".join(lines)))


@command("role history", summary=N_("who held a role, when, and how each mandate ended"),
         example=N_("role history facilitator"), params=(Positional("name", Word("name")),))
def role_history(ctx: Context, name: str) -> None:
    found = roles.find_role(ctx.session, ctx.group_id, name)
    rows = roles.history(ctx.session, found, limit=30)
    current = roles.holders(ctx.session, found)
    if not rows and not current:
        ctx.reply(plain(_("Nobody has held {role} yet.").format(role=found.name)))
        return
    ctx.reply(RichText(html="\n".join(history_lines(found, current, rows, ctx.settings.timezone))))


@command("volunteer", summary=N_("stand for a role — or for facilitation, minutes or mediation"),
         example=N_("volunteer facilitator"), params=(ROLE,), aliases=("stand",),
         details=N_("volunteer facilitation and volunteer minutes put you in the draw for each assembly's "
                    "facilitator and note-taker; volunteer mediation, in the draw for peer mediators."))
def volunteer(ctx: Context, role: str) -> None:
    task = tasks.task_named(ctx.session, ctx.group_id, role)
    if task is not None:
        stand_for_task(ctx, task)
        return
    found = roles.find_role(ctx.session, ctx.group_id, role)
    standing = roles.is_volunteer(ctx.session, found, ctx.member_id)
    if not standing:
        roles.volunteer(ctx.session, found, ctx.member_id, ctx.now)
    reply = _("🙋 {member} stands for {role}.").format(member=escape(ctx.sender_name), role=b(found.name))
    if found.fill == "volunteer":
        # Also for someone already standing: a seat may have opened since (recall, step-down).
        proposal = roles.open_appointment(ctx.session, found, ctx.member_id, ctx.now, ctx.settings.vote_duration)
        if proposal is not None:
            ctx.reply(RichText(html=reply + " " + _("Nobody is appointed silently: if no one objects by the "
                                                    "deadline, the seat is theirs.")))
            post_card(ctx, proposal)
            return
    if standing:
        raise RuleViolation(_("You are already standing for {role}.").format(role=found.name))
    ctx.reply(RichText(html=reply + f" {next_step(found, ctx.prefix)}"))


@command("unvolunteer", summary=N_("stop standing for a role"), example=N_("unvolunteer facilitator"),
         params=(ROLE,))
def unvolunteer(ctx: Context, role: str) -> None:
    task = tasks.task_named(ctx.session, ctx.group_id, role)
    if task is not None:
        stop_standing(ctx, task)
        return
    found = roles.find_role(ctx.session, ctx.group_id, role)
    roles.unvolunteer(ctx.session, found, ctx.member_id)
    ctx.reply(RichText(html=_("{member} no longer stands for {role}.").format(member=escape(ctx.sender_name),
                                                                                role=b(found.name))))


@command("draw", summary=N_("fill a role's free seats by a lottery nobody can steer, among eligible volunteers"),
         example=N_("draw facilitator"), params=(ROLE, Flag("now")), aliases=("lottery",),
         details=N_("I publish the candidates and a commitment to a secret; for draw_window (10m) anyone may add "
                    "randomness with draw add <anything>; then I reveal the secret and the picks, which anyone can "
                    "recompute. draw <role> now skips the window for urgent cases: the seed then rests on the bot "
                    "alone."))
def draw(ctx: Context, role: str, now: bool) -> None:
    found = roles.find_role(ctx.session, ctx.group_id, role)
    if now:
        drawn = draws.draw_role_now(ctx.session, found, ctx.now, ctx.settings.mandate_warnings)
        ctx.post(draw_announcement(drawn, ctx.settings.timezone, ctx.prefix))
        return
    opened = draws.open_role(ctx.session, found, ctx.now, ctx.settings.draw_window)
    others = len(draws.open_lotteries(ctx.session, ctx.group_id, ctx.now)) > 1
    ctx.post(lottery_opened(opened, b(found.name), ctx.now, ctx.settings.timezone, ctx.prefix, others))


@command("draw add", summary=N_("add randomness to the open lottery: any text, before it is drawn"),
         example=N_("draw add my cat walked on the keyboard"),
         params=(Positional("text", Text("text", max_length=draws.MAX_CONTRIBUTION), rest=True, label="<anything>"),
                 Option("lottery", Number(), label="n")),
         aliases=("lottery add",),
         # "up to 3" is draws.MAX_PER_MEMBER, written out so the sentence can go through the catalog
         details=N_("The seed of a draw is SHA-256 of the bot's secret and every contribution, in order: nobody can "
                    "steer it who does not know them all. lottery=<n> says which, when several are open; each member "
                    "may add up to 3 to one lottery."))
def draw_add(ctx: Context, text: str, lottery: int | None) -> None:
    target = draws.contribute(ctx.session, ctx.group_id, ctx.member(), text, ctx.now, lottery)
    count = draws.added_by_members(target)
    ctx.ack(plain(_("🎲 Added to lottery #{number} ({count} from members so far); it is drawn {date}.").format(
        number=target.number, count=count, date=when(target.draws_at, ctx.settings.timezone))))


@command("elect", summary=N_("open an election among a role's volunteers"), example=N_("elect treasurer method=stv"),
         params=(ROLE, Option("method", METHOD), Option("secret", SECRET, aliases=("ballot",))),
         aliases=("election",),
         details=N_("Members rank the candidates when there are several seats (counted by STV, Scottish rules); for "
                    "one seat it is a plain poll unless method=ranked (instant runoff). method=plain gives the old "
                    "count: the most votes take the seats. secret=yes makes it a secret ballot."))
def elect(ctx: Context, role: str, method: str | None, secret: str | None) -> None:
    found = roles.find_role(ctx.session, ctx.group_id, role)
    seats = len(roles.free_seats(ctx.session, found))
    if not seats:
        raise RuleViolation(_("Every seat of {role} is taken; an election can fill a seat when one opens.").format(
            role=found.name))
    _no_open(ctx, found, "election")
    candidates = roles.eligible(ctx.session, found, ctx.now)
    if not candidates:
        raise RuleViolation(_("Nobody eligible is standing for {role}; volunteer with {command}.").format(
            role=found.name, command=f"{ctx.prefix}volunteer {found.key}"))
    settings = ctx.settings
    proposal = rules.open_proposal(
        ctx.session, group_id=ctx.group_id, author_id=ctx.member_id,
        title=ngettext("Election: {role} ({count} seat)", "Election: {role} ({count} seats)", seats).format(
            role=found.name, count=seats), details=None,
        rule=settings.rule, quorum=settings.quorum, options=_labels(candidates), now=ctx.now,
        duration=settings.vote_duration, kind="election", role_id=found.id,
        candidates={"member_ids": [m.id for m in candidates], "seats": seats},
        method=method or (rules.RANKED if seats > 1 else rules.PLAIN),  # several seats: a fair count, STV
        secret=secret == "yes", electorate=ctx.directory.active_member_ids(ctx.session, ctx.group_id))
    post_card(ctx, proposal)


@command("renew", summary=N_("open a vote to renew a holder's mandate for one more term"),
         example=N_("renew facilitator @alice"),
         params=(ROLE, Positional("member", MentionArg(), optional=True, label="[@member]")))
def renew(ctx: Context, role: str, member) -> None:
    found = roles.find_role(ctx.session, ctx.group_id, role)
    mandate, holder = _holder(ctx, found, member, default_self=True)
    roles.check_renewable(ctx.session, found, mandate, holder.display_name)
    _no_open(ctx, found, "renewal", holder)
    duration = _until_end(ctx, mandate)
    proposal = rules.open_proposal(
        ctx.session, group_id=ctx.group_id, author_id=ctx.member_id,
        title=_("Renew {member} as {role} for another term").format(member=holder.display_name, role=found.name),
        details=None,
        rule=ctx.settings.rule, quorum=ctx.settings.quorum, options=None, now=ctx.now, duration=duration,
        kind="renewal", role_id=found.id, subject_member_id=holder.id)
    post_card(ctx, proposal)


@command("recall", summary=N_("open a vote to end a holder's mandate now"),
         example=N_("recall treasurer @bob not reporting"),
         params=(ROLE, Positional("member_and_reason", Text("reason", max_length=600), optional=True, rest=True,
                                  label="[@member] [reason]")))
def recall(ctx: Context, role: str, member_and_reason: str | None) -> None:
    found = roles.find_role(ctx.session, ctx.group_id, role)
    mention, reason = None, member_and_reason
    if member_and_reason and member_and_reason.startswith("@"):
        first, __, rest = member_and_reason.partition(" ")
        mention, reason = MentionArg().parse(first), rest.strip() or None
    mandate, holder = _holder(ctx, found, mention, default_self=False)
    _no_open(ctx, found, "recall", holder)
    proposal = rules.open_proposal(
        ctx.session, group_id=ctx.group_id, author_id=ctx.member_id,
        title=_("Recall {member} from {role}").format(member=holder.display_name, role=found.name),
        details=reason, rule=ctx.settings.rule,
        quorum=ctx.settings.quorum, options=None, now=ctx.now, duration=ctx.settings.vote_duration,
        kind="recall", role_id=found.id, subject_member_id=holder.id)
    post_card(ctx, proposal)


@command("stepdown", summary=N_("leave a role (or a drawn facilitation or minutes job) now — rotation is healthy"),
         example=N_("stepdown facilitator"),
         params=(ROLE,), aliases=("step-down", "resign"))
def stepdown(ctx: Context, role: str) -> None:
    task = tasks.task_named(ctx.session, ctx.group_id, role)
    if task is not None:
        step_down_from_job(ctx, task)
        return
    found = roles.find_role(ctx.session, ctx.group_id, role)
    roles.step_down(ctx.session, found, ctx.member_id, ctx.now)
    member = ctx.member()
    ctx.post(stepped_down(found, member, roles.eligible(ctx.session, found, ctx.now),
                          next_step(found, ctx.prefix)))
    after_seat_opens(ctx, found)


@command("shadow", summary=N_("train for a role alongside its holder"), example=N_("shadow treasurer"),
         params=(ROLE,), aliases=("train",))
def shadow(ctx: Context, role: str) -> None:
    found = roles.find_role(ctx.session, ctx.group_id, role)
    roles.shadow(ctx.session, found, ctx.member_id, ctx.now)
    holders = roles.holders(ctx.session, found)
    who = ", ".join(escape(m.display_name) for __, m in holders) or _("nobody yet")
    reply = _("📚 {member} is shadowing {role} (held by {holders}). The handover note: {command}").format(
        member=escape(ctx.sender_name), role=b(found.name), holders=who,
        command=code(f"{ctx.prefix}handover {found.key}"))
    ctx.reply(RichText(html=reply))


@command("handover", summary=N_("show a role's handover note"), example=N_("handover facilitator"), params=(ROLE,),
         where="any")
def handover(ctx: Context, role: str) -> None:
    if ctx.group_id is None:
        raise RuleViolation(_("Ask for a handover note in the group whose role it is."))
    task = tasks.task_named(ctx.session, ctx.group_id, role)
    if task is not None:
        show_task_notes(ctx, task)
        return
    found = roles.find_role(ctx.session, ctx.group_id, role)
    ctx.reply(RichText(html=handover_block(found)))


# helpers ---------------------------------------------------------------------------

def after_seat_opens(ctx: Context, role: Role) -> None:
    """A seat just opened during a command: volunteers may be appointed right away."""
    for proposal in roles.open_appointments(ctx.session, role, ctx.now, ctx.settings.vote_duration):
        post_card(ctx, proposal)


def _holder(ctx: Context, role: Role, mention, default_self: bool):
    current = roles.holders(ctx.session, role)
    if mention is not None:
        member = ctx.directory.resolve_mention(ctx.session, ctx.group_id, mention.text)
        if member is None:
            raise RuleViolation(_("I don't know {member} in this group.").format(member=mention.text[:40]))
        for mandate, holder in current:
            if holder.id == member.id:
                return mandate, holder
        raise RuleViolation(_("{member} does not hold {role}.").format(member=member.display_name, role=role.name))
    if default_self:
        for mandate, holder in current:
            if holder.id == ctx.member_id:
                return mandate, holder
    if len(current) == 1:
        return current[0]
    if not current:
        raise RuleViolation(_("Nobody holds {role} right now.").format(role=role.name))
    raise RuleViolation(ngettext("{role} has {count} holder; name one, like @{name}.",
                                 "{role} has {count} holders; name one, like @{name}.", len(current)).format(
        role=role.name, count=len(current), name=current[0][1].display_name))


def _no_open(ctx: Context, role: Role, kind: str, holder: Member | None = None) -> None:
    existing = roles.open_role_proposal(ctx.session, role, kind)
    if existing is not None and (holder is None or existing.subject_member_id == holder.id):
        raise RuleViolation(_("#{number} is already open for this; vote there.").format(number=existing.number))


def _until_end(ctx: Context, mandate) -> timedelta:
    """A renewal vote must close before the mandate ends, or it would decide nothing."""
    left = mandate.ends_at - ctx.now
    if left < MIN_VOTE:
        raise RuleViolation(_("The mandate ends {date}; too late to vote on a renewal. Once the seat is open, stand "
                              "for it again if you are eligible.").format(date=when(mandate.ends_at,
                                                                                    ctx.settings.timezone)))
    return min(ctx.settings.vote_duration, left)


def _labels(candidates: list[Member]) -> list[str]:
    """Election options: display names, made unique with the platform id where two are alike."""
    seen = [m.display_name for m in candidates]
    return [m.display_name[:60] if seen.count(m.display_name) == 1 else f"{m.display_name[:40]} ({m.user_id[:40]})"
            for m in candidates]

