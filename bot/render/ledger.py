"""How the books read: the acknowledgement of an entry, `ledger`, the monthly statement and its
chart, the co-auditor's draw, reminder and answer, and the CSV export. Every member-typed
text (descriptions, categories, decision titles, names, concerns) is escaped here."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from datetime import datetime
from zoneinfo import ZoneInfo

from bot.actions import Chart
from bot.charts import describe
from bot.events import UserRef
from bot.governance import draws
from bot.governance.ledger import CONCERN, Line, Statement, Summary
from bot.money import format_cents
from bot.render.common import csv_cell
from bot.render.roles import lottery_opened, task_draw_tail
from bot.render.text import RichText, TextBuilder, b, code, escape, i, mention, quote
from storage.models import LedgerCheck, LedgerEntry, Lottery, Member

MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December")
CSV_COLUMNS = ("entry", "recorded_at", "amount", "currency", "description", "category", "for_decision",
               "for_need", "reverses", "undone_by", "recorded_by", "balance")


def _entries(count: int) -> str:
    return f"{count:,} entr{'y' if count == 1 else 'ies'}"


def month_name(month: str) -> str:
    """`2026-03` → `March 2026`."""
    year, number = month.split("-")
    return f"{MONTHS[int(number) - 1]} {year}"


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
        parts.append(f"for #{line.decision}")
    if line.need is not None:
        parts.append(f"for need #{line.need}")
    if line.undone_by is not None:
        parts.append(f"undone by #{line.undone_by}")
    return "".join(f" · {part}" for part in parts)


def entry_line(line: Line, zone: ZoneInfo) -> str:
    local = line.recorded_at.astimezone(zone)
    return (f"{code(f'#{line.number}')} {local.day} {local:%b} {signed(line.amount_cents, line.currency)} "
            f"{escape(line.description)}{_purpose(line)} — {escape(line.member)}")


def recorded(entry: LedgerEntry, line: Line) -> RichText:
    """The quiet acknowledgement of a new entry (or a reversal), with the new balance."""
    verb = "recorded" if entry.reverses_id is None else f"undoes #{line.reverses}"
    return (TextBuilder()
            .line(f"📒 {b(f'#{entry.number}')} {verb}: {signed(entry.amount_cents, entry.currency)} "
                  f"{escape(entry.description)}{_purpose(line)}")
            .line(f"Balance: {b(format_cents(entry.balance_cents, entry.currency))}")
            .build())


def summary(found: Summary, currency: str, zone: ZoneInfo, prefix: str) -> RichText:
    text = TextBuilder()
    if not found.lines:
        text.line(f"📒 {b('The books are empty.')} Record money in or out:")
        text.line(code(f"{prefix}ledger +120 Sunday kitchen donations"), " · ",
                  code(f"{prefix}ledger -45.50 freezer repair for=#12"))
        return text.build()
    text.line(f"📒 {b('Balance: ' + format_cents(found.balance_cents, currency))}")
    text.line(f"{month_name(found.month)} so far: in {money(found.in_cents, currency)} · "
              f"out {money(found.out_cents, currency)}")
    shown = len(found.lines)
    text.line(f"Last {_entries(shown)} of {found.entries:,}:" if found.entries > shown
              else "Entries:")
    for line in found.lines:
        text.line(entry_line(line, zone))
    text.line(i(f"{prefix}ledger statement [month] · {prefix}ledger csv · {prefix}ledger undo <entry#> <reason>"))
    return text.build()


def statement(found: Statement, currency: str, prefix: str, heading: str = "") -> RichText:
    """A month's figures: opening, in, out, closing, and spending by decision and by category."""
    text = TextBuilder()
    text.line(f"🧾 {b(heading or f'Statement for {month_name(found.month)}')}")
    if not found.entries:
        text.line(f"No entries this month. Balance: {money(found.closing_cents, currency)}")
        return text.build()
    text.line(f"Opening balance: {money(found.opening_cents, currency)}")
    text.line(f"In: {money(found.in_cents, currency)} · Out: {money(found.out_cents, currency)} "
              f"({_entries(found.entries)})")
    text.line(f"Closing balance: {b(format_cents(found.closing_cents, currency))}")
    if found.by_decision:
        text.line(b("Spending by decision:"))
        for number, title, cents in found.by_decision:
            what = f"#{number} {escape(title)}" if number is not None else i("no decision")
            text.line(f"• {what}: {money(cents, currency)}")
    if found.by_category:
        text.line(b("By category (in / out):"))
        for category, money_in, money_out in found.by_category:
            name = escape(category) if category else i("no category")
            text.line(f"• {name}: {money(money_in, currency)} / {money(money_out, currency)}")
    text.line(i(f"Every entry: {prefix}ledger csv"))
    return text.build()


def chart(found: Statement, currency: str, group_title: str | None) -> Chart:
    """The month's chart, drawn on delivery."""
    rows = [(category or "no category", money_in, money_out) for category, money_in, money_out in found.by_category]
    return describe("ledger", month=month_name(found.month), categories=rows, currency=currency,
                    opening_cents=found.opening_cents, closing_cents=found.closing_cents,
                    group_title=group_title or "")


def monthly(found: Statement, currency: str, lottery: Lottery | None, now: datetime, zone: ZoneInfo, prefix: str,
            others_open: bool) -> RichText:
    """The statement posted at the start of a month, with the draw of the member who checks it."""
    text = [statement(found, currency, prefix, f"The books for {month_name(found.month)}")]
    if lottery is None:
        text.append(RichText(html="🔍 Nobody can check these books this month: every active member holds a "
                                  "role, and the co-auditor is drawn among those who hold none."))
    else:
        text.append(lottery_opened(lottery, f"the co-auditor of {month_name(found.month)}", now, zone, prefix,
                                   others_open, "Members who hold no role, in order of their platform id"))
        text.append(RichText(html=i(f"They check the month against the statement and answer with {prefix}ledger "
                                    f"check ok or {prefix}ledger check <concern>.")))
    return RichText(html="\n".join(part.html for part in text))


def checker_drawn(check: LedgerCheck, drawn: draws.Drawn, platform: str, prefix: str) -> RichText:
    text = TextBuilder()
    name = month_name(check.month)
    if drawn.auditor is not None:
        who = mention(UserRef(platform=platform, user_id=drawn.auditor.user_id), drawn.auditor.display_name)
        text.line(f"🎲 {b(f'Lottery #{drawn.lottery.number}')}: {who} checks the books of {name}. Read "
                  f"{code(f'{prefix}ledger statement {check.month}')} (or {code(f'{prefix}ledger csv')}), then "
                  f"answer {code(f'{prefix}ledger check ok')} or {code(f'{prefix}ledger check <concern>')}.")
    else:
        text.line(f"🎲 {b(f'Lottery #{drawn.lottery.number}')} for the co-auditor of {name}: drawn, but nobody "
                  "takes the task.")
    for line in task_draw_tail(drawn, "check", f"{prefix}ledger"):
        text.line(line)
    return text.build()


def reminder(check: LedgerCheck, auditor: Member, platform: str, prefix: str) -> RichText:
    who = mention(UserRef(platform=platform, user_id=auditor.user_id), auditor.display_name)
    return (TextBuilder()
            .line(f"⏳ {who}, the books of {month_name(check.month)} are still waiting for your check.")
            .line(f"Read {code(f'{prefix}ledger statement {check.month}')}, then answer "
                  f"{code(f'{prefix}ledger check ok')} or {code(f'{prefix}ledger check <concern>')}.")
            .build())


def private_reminder(check: LedgerCheck, group_title: str | None, prefix: str) -> RichText:
    return (TextBuilder()
            .line(f"⏳ You were drawn to check the books of {month_name(check.month)} in "
                  f"{b(group_title or 'your group')}, and they are still waiting.")
            .line(f"In the group: {code(f'{prefix}ledger statement {check.month}')}, then "
                  f"{code(f'{prefix}ledger check ok')} or {code(f'{prefix}ledger check <concern>')}.")
            .build())


def checked(check: LedgerCheck, name: str) -> RichText:
    month = month_name(check.month)
    if check.verdict == CONCERN:
        return (TextBuilder().line(f"⚠️ {b(name)}, drawn to check the books of {month}, raises a concern:")
                .line(quote(check.note or "")).build())
    return TextBuilder().line(f"✅ {b(name)}, drawn to check the books of {month}, finds them in order.").build()


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
