"""Peer mediation, asked and closed privately: mediation [about <text>] [with=<name>], mediation done."""

from __future__ import annotations

from bot.actions import DirectMessage
from bot.commands.args import ArgType, Number, Text, Word
from bot.commands.base import command
from bot.commands.registry import Option, Positional
from bot.context import Context, memberships_named
from bot.governance import mediation
from bot.governance.errors import RuleViolation
from bot.i18n import N_, _
from bot.render import mediation as render
from storage.models import Group, Mediation, Member

GROUP = Option("group", Word("group"), label="name")
PRIVATELY = N_("Ask me in a private message, so nothing about it shows here: open a chat with me and write "
                "{command}. Nothing was recorded.")  # shown as _(PRIVATELY).format(command=…)


class About(ArgType):
    """What the conflict is about, with or without the word `about` in front."""

    metavar = "text"

    def parse(self, raw: str) -> str:
        text = raw.strip()
        if text.lower().startswith("about "):
            text = text[6:].strip()
        return Text("text", max_length=mediation.MAX_ABOUT).parse(text)


@command("mediation", summary=N_("ask privately for peer mediation: two mediators are drawn by lot"),
         example=N_("mediation with=Bob about we keep clashing over the kitchen rota"),
         params=(Positional("about", About(), optional=True, rest=True, label="[about <text>]"),
                 Option("with", Text("name", max_length=120), label="name"), GROUP),
         where="any", aliases=("mediate",),
         details=N_("Only in a private chat with me. Two members who stand for mediation (volunteer mediation) "
                    "are drawn by lot, never a party to it; they get what you wrote, the group only hears that a "
                    "mediation is under way, and audits count mediations — never who or what."))
def ask(ctx: Context, about: str | None, group: str | None, **named) -> None:
    if not ctx.is_private:
        raise RuleViolation(_(PRIVATELY).format(command="mediation [about <text>] [with=<name>]"))
    ctx.sealed = True  # what the requester wrote is blanked from the outbox once delivered
    ctx.enter_group(group)
    other = _other_party(ctx, named["with"])
    requester = ctx.member()
    opened = mediation.request(ctx.session, ctx.group_id, requester, other, about, ctx.now)
    title = ctx.group.title
    ctx.reply(render.requested(opened.mediation, opened.mediators, title, ctx.prefix))
    for mediator in opened.mediators:
        partner = next((m for m in opened.mediators if m.id != mediator.id), None)
        # No fallback into the group: a mention there would name a mediator of a mediation just begun.
        with ctx.speaking_to(ctx.user_of(mediator)):
            ctx.actions.append(DirectMessage(user=ctx.user_of(mediator), text=render.for_mediator(
                opened.mediation, requester, other, partner, title, ctx.prefix)))
    ctx.post(render.under_way())


def _other_party(ctx: Context, name: str | None) -> Member | None:
    if name is None:
        return None
    found = ctx.directory.resolve_mention(ctx.session, ctx.group_id, name)
    if found is None or not found.active:
        if ctx.group.title:
            unknown = _("I don't know a member called “{name}” in {group}. Write their name as the group shows it, "
                        "or leave with= out.")
        else:
            unknown = _("I don't know a member called “{name}” in that group. Write their name as the group shows "
                        "it, or leave with= out.")
        raise RuleViolation(unknown.format(name=name[:40], group=ctx.group.title))
    return found


@command("mediation done", summary=N_("a mediator closes a mediation (privately), with an optional note"),
         example=N_("mediation done 2 they talked it through and agreed on a new rota"),
         params=(Positional("number", Number(), label="n"),
                 Positional("note", Text("note", max_length=mediation.MAX_NOTE), optional=True, rest=True),
                 GROUP),
         where="any")
def done(ctx: Context, number: int, note: str | None, group: str | None) -> None:
    if not ctx.is_private:
        raise RuleViolation(_("Close a mediation in a private message to me; nothing about it shows in the group."))
    ctx.sealed = True
    found, mediator = _mediated_by_sender(ctx, number, group)
    mediation.close(ctx.session, found, mediator, note, ctx.now)
    ctx.reply(render.closed_for_mediator(found))
    title = ctx.session.get(Group, found.group_id).title
    requester = ctx.session.get(Member, found.requester_id)
    with ctx.speaking_to(ctx.user_of(requester)):
        ctx.actions.append(DirectMessage(user=ctx.user_of(requester), text=render.closed_for_requester(found, title)))
    for other in mediation.mediators_of(found):
        if other != mediator.id:
            user = ctx.user_of(ctx.session.get(Member, other))
            with ctx.speaking_to(user):
                ctx.actions.append(DirectMessage(user=user, text=render.closed_for_mediator(found)))


def _mediated_by_sender(ctx: Context, number: int, group: str | None) -> tuple[Mediation, Member]:
    """The sender's mediation with that number, and the membership they mediate it as."""
    memberships = ctx.directory.memberships(ctx.session, ctx.chat.platform, ctx.sender.user_id)
    if group is not None:
        memberships = memberships_named(memberships, group)
    found = mediation.mine(ctx.session, [m.member_id for m in memberships], number)
    if not found:
        raise RuleViolation(_("You are not a mediator of a mediation #{number}.").format(number=number))
    if len(found) > 1:
        raise RuleViolation(_("You mediate a #{number} in several groups; add {option}.").format(
            number=number, option="group=<name>"))
    mine = {m.member_id for m in memberships} & set(mediation.mediators_of(found[0]))
    return found[0], ctx.session.get(Member, mine.pop())
