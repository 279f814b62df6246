"""How the books read: the acknowledgement of an entry, `ledger`, the monthly statement and its
chart, the co-auditor's draw, reminder and answer, and the CSV export. Every member-typed
text (descriptions, categories, decision titles, names, concerns) is escaped here."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from datetime import datetime
from zoneinfo import ZoneInfo

from bot import i18n
from bot.actions import Chart
from bot.charts import describe
from bot.events import UserRef
from bot.governance import draws
from bot.governance.ledger import CONCERN, Line, Statement, Summary
from bot.i18n import N_, _, ngettext
from bot.money import format_cents
from bot.render.common import csv_cell
from bot.render.roles import lottery_opened, task_draw_tail
from bot.render.text import RichText, TextBuilder, b, code, escape, i, mention, quote
from storage.models import LedgerCheck, LedgerEntry, Lottery, Member

MONTHS = (N_("January"), N_("February"), N_("March"), N_("April"), N_("May"), N_("June"), N_("July"),
          N_("August"), N_("September"), N_("October"), N_("November"), N_("December"))
CSV_COLUMNS = ("entry", "recorded_at", "amount", "currency", "description", "category", "for_decision",
               "for_need", "reverses", "undone_by", "recorded_by", "balance")


def _entries(count: int) -> str:
    return ngettext("{count} entry", "{count} entries", count).format(count=i18n.number(count))


def month_name(month: str) -> str:
    """`2026-03` → `March 2026`."""
    year, number = month.split("-")
    return _("{month} {year}").format(month=_(MONTHS[int(number) - 1]), year=year)


def money(cents: int, currency: str, sign: bool = False) -> str:
    return escape(format_cents(cents, currency, sign=sign))


def signed(cents: int, currency: str) -> str:
    return b(format_cents(cents, currency, sign=True))


def _purpose(line: Line) -> str:
    """What an entry is for, in a few words: ` · for #12`, ` · undoes #5`, ` · undone by #9`."""
    parts = []
    if line.category:
        parts.append(escape(line.category))
    if line.decision is not None:
        parts.append(_("for #{number}").format(number=line.decision))
    if line.need is not None:
        parts.append(_("for need #{number}").format(number=line.need))
    if line.undone_by is not None:
        parts.append(_("undone by #{number}").format(number=line.undone_by))
    return "".join(f" · {part}" for part in parts)


def entry_line(line: Line, zone: ZoneInfo) -> str:
    local = line.recorded_at.astimezone(zone)
    return (f"{code(f'#{line.number}')} {i18n.day_month(local)} {signed(line.amount_cents, line.currency)} "
            f"{escape(line.description)}{_purpose(line)} — {escape(line.member)}")


def recorded(entry: LedgerEntry, line: Line) -> RichText:
    """The quiet acknowledgement of a new entry (or a reversal), with the new balance."""
    done = (_("📒 {entry} recorded: {amount} {description}{purpose}") if entry.reverses_id is None
            else _("📒 {entry} undoes #{original}: {amount} {description}{purpose}"))
    return (TextBuilder()
            .line(done.format(entry=b(f"#{entry.number}"), original=line.reverses,
                              amount=signed(entry.amount_cents, entry.currency),
                              description=escape(entry.description), purpose=_purpose(line)))
            .line(_("Balance: {amount}").format(amount=b(format_cents(entry.balance_cents, entry.currency))))
            .build())


def summary(found: Summary, currency: str, zone: ZoneInfo, prefix: str) -> RichText:
    text = TextBuilder()
    if not found.lines:
        text.line(_("📒 <b>The books are empty.</b> Record money in or out:"))
        income, spending = _("Sunday kitchen donations"), _("freezer repair")  # examples: what a member might write
        text.line(code(f"{prefix}ledger +120 {income}"), " · ", code(f"{prefix}ledger -45.50 {spending} for=#12"))
        return text.build()
    balance = _("Balance: {amount}").format(amount=format_cents(found.balance_cents, currency))
    text.line(f"📒 {b(balance)}")
    text.line(_("{month} so far: in {money_in} · out {money_out}").format(
        month=month_name(found.month), money_in=money(found.in_cents, currency),
        money_out=money(found.out_cents, currency)))
    shown = len(found.lines)
    text.line(_("Last {entries} of {total}:").format(entries=_entries(shown), total=i18n.number(found.entries))
              if found.entries > shown else _("Entries:"))
    for line in found.lines:
        text.line(entry_line(line, zone))
    text.line(i(f"{prefix}ledger statement [month] · {prefix}ledger csv · {prefix}ledger undo <entry#> <reason>"))
    return text.build()


def statement(found: Statement, currency: str, prefix: str, heading: str = "") -> RichText:
    """A month's figures: opening, in, out, closing, and spending by decision and by category."""
    text = TextBuilder()
    heading = heading or _("Statement for {month}").format(month=month_name(found.month))
    text.line(f"🧾 {b(heading)}")
    if not found.entries:
        text.line(_("No entries this month. Balance: {amount}").format(amount=money(found.closing_cents, currency)))
        return text.build()
    text.line(_("Opening balance: {amount}").format(amount=money(found.opening_cents, currency)))
    text.line(_("In: {money_in} · Out: {money_out} ({entries})").format(
        money_in=money(found.in_cents, currency), money_out=money(found.out_cents, currency),
        entries=_entries(found.entries)))
    text.line(_("Closing balance: {amount}").format(amount=b(format_cents(found.closing_cents, currency))))
    if found.by_decision:
        text.line(b(_("Spending by decision:")))
        for number, title, cents in found.by_decision:
            what = f"#{number} {escape(title)}" if number is not None else i(_("no decision"))
            text.line(f"• {what}: {money(cents, currency)}")
    if found.by_category:
        text.line(b(_("By category (in / out):")))
        for category, money_in, money_out in found.by_category:
            name = escape(category) if category else i(_("no category"))
            text.line(f"• {name}: {money(money_in, currency)} / {money(money_out, currency)}")
    text.line(i(_("Every entry: {command}").format(command=f"{prefix}ledger csv")))
    return text.build()


def chart(found: Statement, currency: str, group_title: str | None) -> Chart:
    """The month's chart, drawn on delivery (its words in the group's language, see bot.charts)."""
    unnamed = _("no category")
    rows = [(category or unnamed, money_in, money_out) for category, money_in, money_out in found.by_category]
    return describe("ledger", month=month_name(found.month), categories=rows, currency=currency,
                    opening_cents=found.opening_cents, closing_cents=found.closing_cents,
                    group_title=group_title or "")


def monthly(found: Statement, currency: str, lottery: Lottery | None, now: datetime, zone: ZoneInfo, prefix: str,
            others_open: bool) -> RichText:
    """The statement posted at the start of a month, with the draw of the member who checks it."""
    month = month_name(found.month)
    text = [statement(found, currency, prefix, _("The books for {month}").format(month=month))]
    if lottery is None:
        text.append(RichText(html=_("🔍 Nobody can check these books this month: every active member holds a "
                                    "role, and the co-auditor is drawn among those who hold none.")))
    else:
        text.append(lottery_opened(lottery, escape(_("the co-auditor of {month}").format(month=month)), now, zone,
                                   prefix, others_open, N_("Members who hold no role, in order of their platform id")))
        text.append(RichText(html=i(_("They check the month against the statement and answer with {ok} or "
                                      "{concern}.").format(ok=f"{prefix}ledger check ok",
                                                           concern=f"{prefix}ledger check <concern>"))))
    return RichText(html="\n".join(part.html for part in text))


def _commands(check: LedgerCheck, prefix: str) -> dict[str, str]:
    """The commands a co-auditor is pointed to (placeholders of the sentences that name them)."""
    return {"statement": code(f"{prefix}ledger statement {check.month}"), "csv": code(f"{prefix}ledger csv"),
            "ok": code(f"{prefix}ledger check ok"), "concern": code(f"{prefix}ledger check <concern>")}


def checker_drawn(check: LedgerCheck, drawn: draws.Drawn, platform: str, prefix: str) -> RichText:
    text = TextBuilder()
    name = month_name(check.month)
    if drawn.auditor is not None:
        auditor = drawn.auditor
        who = mention(UserRef(platform=auditor.platform, user_id=auditor.user_id), auditor.display_name)
        text.line(_("🎲 <b>Lottery #{lottery}</b>: {name} checks the books of {month}. Read {statement} (or {csv}), "
                    "then answer {ok} or {concern}.").format(lottery=drawn.lottery.number, name=who, month=name,
                                                             **_commands(check, prefix)))
    else:
        text.line(_("🎲 <b>Lottery #{lottery}</b> for the co-auditor of {month}: drawn, but nobody takes the task.")
                  .format(lottery=drawn.lottery.number, month=name))
    for line in task_draw_tail(drawn, "check", f"{prefix}ledger"):
        text.line(line)
    return text.build()


def reminder(check: LedgerCheck, auditor: Member, platform: str, prefix: str) -> RichText:
    who = mention(UserRef(platform=auditor.platform, user_id=auditor.user_id), auditor.display_name)
    return (TextBuilder()
            .line(_("⏳ {name}, the books of {month} are still waiting for your check.")
                  .format(name=who, month=month_name(check.month)))
            .line(_("Read {statement}, then answer {ok} or {concern}.").format(**_commands(check, prefix)))
            .build())


def private_reminder(check: LedgerCheck, group_title: str | None, prefix: str) -> RichText:
    waiting = (_("⏳ You were drawn to check the books of {month} in {group}, and they are still waiting.")
               if group_title else
               _("⏳ You were drawn to check the books of {month} in <b>your group</b>, and they are still waiting."))
    return (TextBuilder()
            .line(waiting.format(month=month_name(check.month), group=b(group_title or "")))
            .line(_("In the group: {statement}, then {ok} or {concern}.").format(**_commands(check, prefix)))
            .build())


def checked(check: LedgerCheck, name: str) -> RichText:
    month = month_name(check.month)
    if check.verdict == CONCERN:
        return (TextBuilder().line(_("⚠️ {name}, drawn to check the books of {month}, raises a concern:")
                                   .format(name=b(name), month=month))
                .line(quote(check.note or "")).build())
    return TextBuilder().line(_("✅ {name}, drawn to check the books of {month}, finds them in order.")
                              .format(name=b(name), month=month)).build()


def csv_file(lines: Iterable[Line]) -> bytes:
    """Every entry; amounts as plain decimals a spreadsheet reads, member text defused (csv_cell)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for line in lines:  # a category starts with a letter or digit (ledger.clean_category): never a formula
        writer.writerow((line.number, line.recorded_at.isoformat(), _decimal(line.amount_cents), line.currency,
                         csv_cell(line.description), line.category or "", line.decision or "",
                         line.need or "", line.reverses or "", line.undone_by or "", csv_cell(line.member),
                         _decimal(line.balance_cents)))
    return buffer.getvalue().encode()


def _decimal(cents: int) -> str:
    """-4550 → `-45.50`: no thousands separator, an ASCII minus, as spreadsheets read numbers."""
    whole, rest = divmod(abs(cents), 100)
    return f"{'-' if cents < 0 else ''}{whole}.{rest:02d}"
