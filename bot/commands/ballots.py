"""ballot, ballot check: a secret ballot in the member's private chat, and its receipt."""

from __future__ import annotations

from bot.actions import EditMessage
from bot.commands.args import Number, Text, Word
from bot.commands.base import command
from bot.commands.proposals import send_private_ballot
from bot.commands.registry import Option, Positional
from bot.context import Context
from bot.governance import proposals as rules
from bot.governance import secrecy
from bot.governance.errors import RuleViolation
from bot.i18n import N_, _
from bot.render.proposals import private_ballot, private_choices
from bot.render.text import TextBuilder, b, plain

GROUP = Option("group", Text("group", max_length=80))


@command("ballot", summary=N_("get a secret ballot privately, with buttons to vote"), example=N_("ballot 3"),
         params=(Positional("number", Number(), label="#"), Option("rank", Word("ranking")), GROUP),
         where="any",
         details=N_("In the group this sends you the ballot in a private chat; there you tap your answer. On a "
                    "ranked ballot each tap adds the next option, then Cast seals it."))
def ballot(ctx: Context, number: int, rank: str | None, group: str | None) -> None:
    ctx.enter_group(group)
    proposal = _secret(ctx, number)
    if proposal.status != rules.OPEN:
        raise RuleViolation(_("#{number} is closed; its result and every ballot were published in the group.").format(
            number=number))
    if not ctx.is_private:
        send_private_ballot(ctx, proposal)
        return
    draft = _draft(proposal, rank)
    ctx.sealed = bool(draft)  # a ranking in progress is the member's business only
    text, choices = private_ballot(proposal, ctx.group.title, ctx.prefix, draft), private_choices(proposal, draft)
    if ctx.tapped and ctx.tapped_message:  # the ranking so far: the same message, edited
        ctx.actions.append(EditMessage(chat=ctx.chat, message_id=ctx.tapped_message, text=text, choices=choices))
        options = rules.options_of(proposal)
        ranking = " > ".join(options[n - 1] for n in draft)
        ctx.ack(plain(_("Ranking so far: {ranking}").format(ranking=ranking) if ranking
                      else _("Ranking so far: nothing")))
        return
    ctx.reply(text, choices=choices)


@command("ballot check", summary=N_("check your secret ballot with its receipt (in a private chat with me)"),
         example=N_("ballot check 3 ABCD-EFGH-JKMN"),
         params=(Positional("number", Number(), label="#"), Positional("receipt", Word("code")), GROUP),
         where="any")
def ballot_check(ctx: Context, number: int, receipt: str, group: str | None) -> None:
    if not ctx.is_private:
        # Anyone who saw the receipt could change the ballot: say so privately, repeat nothing.
        ctx.tell_privately(plain(_("Check your ballot here, in our private chat, not in the group: whoever sees your "
                                   "receipt can change your ballot until the close.")),
                           fallback=plain(_("keep receipts out of the group: whoever sees one can change that ballot. "
                                            "Check it in a private chat with me.")))
        return
    ctx.enter_group(group)
    proposal = _secret(ctx, number)
    ctx.sealed = True
    choice = secrecy.check(ctx.session, proposal, receipt)
    if choice is None:
        raise RuleViolation(_("No ballot on #{number} has that receipt. Receipts look like ABCD-EFGH-JKMN.").format(
            number=number))
    says = (_("The ballot with that receipt on #{number} says {choice}: counted in the result.")
            if proposal.status != rules.OPEN
            else _("The ballot with that receipt on #{number} says {choice}: in the box until the close."))
    ctx.reply(TextBuilder().line("🔒 ", says.format(number=number,
                                                   choice=b(rules.describe_choice(proposal, choice)))).build())


def _secret(ctx: Context, number: int):
    proposal = rules.find(ctx.session, ctx.group_id, number)
    if not proposal.secret:
        raise RuleViolation(_("#{number} is an open vote; vote in the group with {command}").format(
            number=number, command=f"{ctx.prefix}vote {number} …"))
    return proposal


def _draft(proposal, rank: str | None) -> list[int]:
    if not rank:
        return []
    if not rules.is_ranked(proposal):
        raise RuleViolation(_("#{number} is not a ranked ballot.").format(number=proposal.number))
    return rules.ranking_of(rules.resolve_ranking(proposal, rank.replace(".", " ")))
