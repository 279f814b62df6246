"""The open books: ledger (show or record), ledger undo, ledger csv, ledger statement, ledger check."""

from __future__ import annotations

import re

from bot.actions import SendFile, SendImage
from bot.commands.args import ArgError, ArgType, Number, Text, Word
from bot.commands.base import command
from bot.commands.registry import Option, Positional
from bot.context import Context
from bot.governance import ledger, roles
from bot.governance.errors import RuleViolation
from bot.i18n import N_, _
from bot.money import MoneyError, parse_cents
from bot.render import ledger as render
from bot.render.text import plain

TASK = N_("recording money")
_MINUS = str.maketrans({"−": "-", "–": "-"})  # phones turn a typed minus into these
_NEED = re.compile(r"need\s*[#-]?\s*(\d{1,9})", re.I)


class Entry(ArgType):
    """`<±amount> <description>`: a signed amount (+ in, - out), then what it was."""

    metavar = "±amount description"

    def parse(self, raw: str) -> tuple[int, str]:
        amount, _space, description = raw.strip().partition(" ")
        amount = amount.translate(_MINUS)
        try:
            cents = parse_cents(amount)
        except MoneyError as error:
            raise ArgError(str(error)) from None
        if amount[:1] not in "+-":
            raise ArgError(_("write + for money in or - for money out, like +{amount} or -{amount}")
                           .format(amount=amount))
        if not description.strip():
            raise ArgError(_("say what the money is for, like +120 Sunday kitchen donations"))
        return cents, description


class ForWhat(ArgType):
    """`for=#12` (a decision that passed) or `for=need5` (a need)."""

    metavar = "#N|needN"

    def parse(self, raw: str) -> ledger.Reference:
        text = raw.strip()
        if match := _NEED.fullmatch(text):
            return ledger.Reference("need", int(match[1]))
        try:
            return ledger.Reference("decision", Number().parse(text))
        except ArgError:
            raise ArgError(_("write for=#12 for a decision or for=need5 for a need (not “{text}”)")
                           .format(text=text[:20])) from None


@command("ledger", summary=N_("the group's books: the balance, this month, the last entries — or record money"),
         example=N_("ledger -45.50 freezer repair for=#12 category=kitchen"),
         params=(Positional("entry", Entry(), optional=True, rest=True, label="[<±amount> <description>]"),
                 Option("category", Word("category"), aliases=("cat",), label="word"),
                 Option("for", ForWhat())),
         aliases=("books",),
         details=N_("+ records money in, - money out, in the group's currency. for= cites a decision that passed "
                    "(#12) or a need (need5); spending above the group's spend_limit needs a decision. Entries are "
                    "never edited: ledger undo reverses one."))
def show_or_record(ctx: Context, entry: tuple[int, str] | None, category: str | None, **cited) -> None:
    reference = cited["for"]
    if entry is None:
        if category is not None or reference is not None:
            raise RuleViolation(_("category= and for= go with an amount, like ledger -45.50 freezer repair for=#12."))
        found = ledger.summary(ctx.session, ctx.group_id, ctx.now, ctx.settings.timezone)
        ctx.reply(render.summary(found, ctx.settings.currency, ctx.settings.timezone, ctx.prefix))
        return
    settings = ctx.settings
    roles.require_role(ctx.session, ctx.group_id, settings.ledger_role, ctx.member_id, TASK, ctx.prefix)
    amount, description = entry
    why = ledger.cite(ctx.session, ctx.group_id, reference, settings.timezone)
    added = ledger.record_entry(ctx.session, ctx.group, ctx.member(), amount, description, category, why, settings,
                                ctx.now, ctx.prefix)
    ctx.ack(render.recorded(added, ledger.line_of(ctx.session, added)))


@command("ledger undo", summary=N_("reverse a ledger entry (entries are never edited or deleted)"),
         example=N_("ledger undo 5 typed 450 instead of 45"),
         params=(Positional("entry", Number(), label="entry#"),
                 Positional("reason", Text("reason", max_length=ledger.MAX_REASON), rest=True)),
         gate="ledger_role", task=TASK)
def undo(ctx: Context, entry: int, reason: str) -> None:
    reversal, _original = ledger.undo(ctx.session, ctx.group, ctx.member(), entry, reason, ctx.settings, ctx.now)
    ctx.ack(render.recorded(reversal, ledger.line_of(ctx.session, reversal)))


@command("ledger csv", summary=N_("every ledger entry as a spreadsheet file"), example=N_("ledger csv"))
def export_csv(ctx: Context) -> None:
    if not ledger.has_entries(ctx.session, ctx.group_id):
        raise RuleViolation(_("The books are empty; there is nothing to export yet."))
    data = render.csv_file(ledger.all_lines(ctx.session, ctx.group_id))
    ctx.actions.append(SendFile(chat=ctx.chat, filename=f"ledger-{ctx.group_id}.csv", data=data,
                                mime_type="text/csv",
                                caption=plain(_("Every entry of the books, in {currency}.")
                                              .format(currency=ctx.settings.currency))))


@command("ledger statement", summary=N_("a month's opening and closing balance, money in and out, spending by "
                                          "decision, with a chart"), example=N_("ledger statement 2026-03"),
         params=(Positional("month", Word("month"), optional=True, label="[YYYY-MM|month name|last]"),))
def month_statement(ctx: Context, month: str | None) -> None:
    zone, currency = ctx.settings.timezone, ctx.settings.currency
    wanted = ledger.parse_month(month, ctx.now, zone)
    found = ledger.statement(ctx.session, ctx.group_id, wanted, zone)
    heading = (_("Statement for {month} so far") if wanted == ledger.month_of(ctx.now, zone)
               else _("Statement for {month}")).format(month=render.month_name(wanted))
    ctx.reply(render.statement(found, currency, ctx.prefix, heading))
    if found.entries:
        ctx.actions.append(SendImage(chat=ctx.chat, filename=f"ledger-{wanted}.png",
                                     chart=render.chart(found, currency, ctx.group.title),
                                     caption=plain(_("{month}: in and out by category.")
                                                   .format(month=render.month_name(wanted)))))


@command("ledger check", summary=N_("the co-auditor drawn for a month answers: ok, or a concern"),
         example=N_("ledger check the 450.00 freezer has no receipt"),
         params=(Positional("answer", Text("answer", max_length=ledger.MAX_NOTE), rest=True, label="ok|concern"),))
def check(ctx: Context, answer: str) -> None:
    member = ctx.member()
    answered = ledger.answer(ctx.session, ctx.group_id, member, answer, ctx.now, ctx.settings.timezone)
    ctx.post(render.checked(answered, member.display_name))
