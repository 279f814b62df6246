"""charter (show, template, adopt, add, amend, remove, history) and renew keep/drop (renewal reviews)."""

from __future__ import annotations

from bot.commands.args import Number, Text
from bot.commands.base import command
from bot.commands.proposals import card, card_choices, message_key, refresh_card
from bot.commands.registry import Option, Positional
from bot.context import Context
from bot.governance import charter, renewals
from bot.i18n import N_, _
from bot.render.charter import answer_ack, charter_text, history_text, template_text
from bot.render.text import TextBuilder, escape

CLAUSE = Positional("clause", Number(), label="<clause#>")
CLAUSE_TEXT = Positional("text", Text("clause", max_length=charter.MAX_CLAUSE), rest=True)


@command("charter", summary=N_("our charter: the numbered clauses the group wrote, and its version"),
         example=N_("charter"))
def show_charter(ctx: Context) -> None:
    ctx.reply(charter_text(charter.clauses(ctx.session, ctx.group_id), charter.version(ctx.session, ctx.group_id),
                           ctx.prefix))


@command("charter template", summary=N_("a short starting charter, in plain words"), example=N_("charter template"))
def show_template(ctx: Context) -> None:
    ctx.reply(template_text(ctx.prefix))


@command("charter adopt", summary=N_("propose adopting the starting charter"), example=N_("charter adopt"))
def adopt(ctx: Context) -> None:
    open_charter_proposal(ctx, charter.draft_adopt(ctx.session, ctx.group_id))


@command("charter add", summary=N_("propose a new clause"),
         example=N_("charter add Meetings start on time and end on time"), params=(CLAUSE_TEXT,))
def add_clause(ctx: Context, text: str) -> None:
    open_charter_proposal(ctx, charter.draft_add(ctx.session, ctx.group_id, text))


@command("charter amend", summary=N_("propose new words for a clause"),
         example=N_("charter amend 3 Roles last six months"), params=(CLAUSE, CLAUSE_TEXT))
def amend_clause(ctx: Context, clause: int, text: str) -> None:
    open_charter_proposal(ctx, charter.draft_amend(ctx.session, ctx.group_id, clause, text, ctx.prefix))


@command("charter remove", summary=N_("propose removing a clause"), example=N_("charter remove 4"), params=(CLAUSE,))
def remove_clause(ctx: Context, clause: int) -> None:
    open_charter_proposal(ctx, charter.draft_remove(ctx.session, ctx.group_id, clause))


@command("charter history", summary=N_("every version of the charter and the decision behind it"),
         example=N_("charter history"))
def show_history(ctx: Context) -> None:
    ctx.reply(history_text(charter.history(ctx.session, ctx.group_id), ctx.settings.timezone))


def open_charter_proposal(ctx: Context, draft: charter.Draft, lead: str = "") -> None:
    """Open a charter proposal under the charter rule and post its card (`lead`: why, if not asked for)."""
    settings = ctx.settings
    proposal = charter.propose(ctx.session, draft, group_id=ctx.group_id, author_id=ctx.member_id,
                               settings=settings, now=ctx.now,
                               electorate=ctx.directory.active_member_ids(ctx.session, ctx.group_id))
    if lead:
        ctx.reply(TextBuilder().line(lead, _("I opened #{number}, decided by {rule} (the charter rule).")
                                     .format(number=proposal.number, rule=escape(settings.charter_rule))).build())
    ctx.reply(card(ctx, proposal), choices=card_choices(ctx.session, proposal), track=message_key(proposal))


MARKS = Positional("answer", Text("answer", max_length=400), rest=True, label="<item#…> [drop|keep <item#…>]")
REVIEW = Option("review", Number())


@command("renew keep", summary=N_("renewal review: keep these items (and drop others in the same message)"),
         example=N_("renew keep 1 3 4 drop 2"), params=(MARKS, REVIEW))
def renew_keep(ctx: Context, answer: str, review: int | None) -> None:
    _answer(ctx, "keep", answer, review)


@command("renew drop", summary=N_("renewal review: let these items end"), example=N_("renew drop 2 keep 1 3"),
         params=(MARKS, REVIEW))
def renew_drop(ctx: Context, answer: str, review: int | None) -> None:
    _answer(ctx, "drop", answer, review)


def _answer(ctx: Context, first: str, words: str, number: int | None) -> None:
    proposal = renewals.find_review(ctx.session, ctx.group_id, number)
    listed = renewals.items_of(ctx.session, proposal)
    marks = renewals.parse_marks(first, words, len(listed))
    merged = renewals.answer(ctx.session, proposal, ctx.member_id, marks, ctx.now, ctx.sender_name)
    ctx.ack(answer_ack(ctx.sender_name, proposal, listed, merged))
    refresh_card(ctx, proposal)

