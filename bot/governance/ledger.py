"""The group's open books: entries tied to decisions, corrections by reversal, monthly checks.

Rules only; the wording members read lives in bot.render.ledger.

- An entry is numbered per group and never edited. `balance_cents` is the balance after it,
  so the balance is one row (the latest number) and a month's opening balance is one row
  (the last entry before the month) — figures stay fast however long the books grow.
- Spending above the group's `spend_limit` must cite a decision that passed (`for=#N`).
- A correction is a reversal (`ledger undo`): the opposite amount, citing the original.
  In a month's figures a reversal counts on the side of the entry it reverses, so a mistake
  and its undo in the same month cancel out instead of inflating both "in" and "out".
- Every entry and every check answer goes into the group log in the same transaction.
- Months are calendar months in the group's time zone.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import NamedTuple
from zoneinfo import ZoneInfo

from sqlalchemy import Select, and_, bindparam, case, exists, func, or_, select
from sqlalchemy.orm import aliased
from sqlmodel import Session

from bot import i18n
from bot.governance import draws, needs, proposals, record
from bot.governance.errors import RuleViolation
from bot.governance.scope import Platforms, scoped, scoped_groups, served, served_groups
from bot.governance.settings import GroupSettings
from bot.governance.voting import BLOCKED, CHOSEN, NO_QUORUM, PASSED, REJECTED, TIE, WITHDRAWN
from bot.i18n import _
from bot.money import format_cents
from bot.render.common import when
from storage.models import Decision, Group, LedgerCheck, LedgerEntry, Lottery, Member, Need, Proposal

MAX_DESCRIPTION = 200
MAX_CATEGORY = 32
MAX_REASON = 150  # "Reversal of #N: " + reason stays within MAX_DESCRIPTION
MAX_NOTE = 500
LAST_SHOWN = 10
REMIND_AFTER = timedelta(days=7)  # an unanswered check is reminded once, this long after the draw
OK, CONCERN = "ok", "concern"
_CATEGORY = re.compile(r"[\w][\w '&/-]*")
_MONTH = re.compile(r"(\d{4})-(\d{2})")


# months in the group's time zone ------------------------------------------------------------

def month_of(moment: datetime, zone: ZoneInfo) -> str:
    return f"{moment.astimezone(zone):%Y-%m}"


def shift(month: str, months: int) -> str:
    year, number = (int(part) for part in month.split("-"))
    index = year * 12 + number - 1 + months
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def month_start(month: str, zone: ZoneInfo) -> datetime:
    """00:00 local on the 1st, in UTC. Built from the wall-clock fields, so a DST change during
    the month never moves it by an hour."""
    year, number = (int(part) for part in month.split("-"))
    return datetime(year, number, 1, tzinfo=zone).astimezone(timezone.utc)


def bounds(month: str, zone: ZoneInfo) -> tuple[datetime, datetime]:
    return month_start(month, zone), month_start(shift(month, 1), zone)


def next_statement(after: datetime, zone: ZoneInfo) -> datetime:
    """When the statement of `after`'s month is due: the start of the following month."""
    return month_start(shift(month_of(after, zone), 1), zone)


MONTH_NAMES = ("january", "february", "march", "april", "may", "june", "july", "august", "september",
               "october", "november", "december")


def parse_month(text: str | None, now: datetime, zone: ZoneInfo) -> str:
    """`2026-03`, `march`/`mar` (the latest one not in the future), `last`, or nothing (this month)."""
    current = month_of(now, zone)
    word = (text or "").strip().lower()
    if word in ("", "this", "now"):
        return current
    if word in ("last", "previous"):
        return shift(current, -1)
    if match := _MONTH.fullmatch(word):
        if not 1 <= int(match[2]) <= 12:
            raise RuleViolation(_("“{month}” is not a month; write it like 2026-03 or march.").format(month=text[:20]))
        if word > current:
            raise RuleViolation(_("{month} has not begun yet; the books go up to {current}.")
                                .format(month=word, current=current))
        return word
    for index, name in enumerate(MONTH_NAMES, 1):
        if len(word) >= 3 and name.startswith(word):
            found = f"{current[:4]}-{index:02d}"
            return found if found <= current else shift(found, -12)
    raise RuleViolation(_("“{month}” is not a month; write it like 2026-03, march, or last.").format(month=text[:20]))


# what an entry is for --------------------------------------------------------------------------

@dataclass(frozen=True)
class Reference:
    """`for=` as typed: a decision (`#12`) or a need (`need5`)."""

    kind: str  # "decision" | "need"
    number: int


@dataclass(frozen=True)
class Cited:
    proposal: Proposal | None = None
    need: Need | None = None

    def body(self) -> dict | None:
        """As the log shows it: {"decision": 12}, {"need": 5} or None."""
        if self.proposal is not None:
            return {"decision": self.proposal.number}
        return {"need": self.need.number} if self.need is not None else None


def cite(session: Session, group_id: int, reference: Reference | None, zone: ZoneInfo) -> Cited:
    """The decision or need an entry is for; refused unless the decision carried and still stands."""
    if reference is None:
        return Cited()
    if reference.kind == "need":
        return Cited(need=needs.find(session, group_id, reference.number, needs.NEED))
    proposal = proposals.find(session, group_id, reference.number)
    decision = session.scalars(select(Decision).where(Decision.proposal_id == proposal.id)).first()
    if proposal.status == proposals.OPEN:
        raise RuleViolation(_("Proposal #{number} is still open: it closes {when}. Record the money once it has "
                              "passed.").format(number=proposal.number, when=when(proposal.closes_at, zone)))
    if proposal.status == proposals.WITHDRAWN or decision is None or decision.outcome == WITHDRAWN:
        raise RuleViolation(_("Proposal #{number} was withdrawn, so it decided nothing to spend on.")
                            .format(number=proposal.number))
    if decision.outcome not in (PASSED, CHOSEN):
        raise RuleViolation(_did_not_pass(proposal.number, decision.outcome))
    if decision.lapsed_at is not None:
        raise RuleViolation(_("Decision #{number} has lapsed: the group did not keep it at its review.")
                            .format(number=proposal.number))
    return Cited(proposal=proposal)


def _did_not_pass(number: int, outcome: str) -> str:
    """The refusal to record money for a proposal that did not pass, naming how it ended."""
    refusals = {
        REJECTED: _("Proposal #{number} did not pass (rejected); money can only be recorded for a decision that "
                    "passed."),
        BLOCKED: _("Proposal #{number} did not pass (blocked); money can only be recorded for a decision that "
                   "passed."),
        NO_QUORUM: _("Proposal #{number} did not pass (no quorum); money can only be recorded for a decision that "
                     "passed."),
        TIE: _("Proposal #{number} did not pass (tie); money can only be recorded for a decision that passed."),
    }
    fallback = _("Proposal #{number} did not pass ({outcome}); money can only be recorded for a decision that "
                 "passed.")
    return refusals.get(outcome, fallback).format(number=number, outcome=outcome)


# recording -------------------------------------------------------------------------------------

def clean_description(text: str) -> str:
    text = " ".join(text.split())
    if not text:
        raise RuleViolation(_("Say what the money is for, like ledger +120 Sunday kitchen donations."))
    if len(text) > MAX_DESCRIPTION:
        raise RuleViolation(_("The description is {length} characters long; keep it under {maximum}.")
                            .format(length=i18n.number(len(text)), maximum=MAX_DESCRIPTION))
    return text


def clean_category(text: str | None) -> str | None:
    if text is None:
        return None
    text = " ".join(text.split()).lower()
    if not text or len(text) > MAX_CATEGORY or not _CATEGORY.fullmatch(text):
        raise RuleViolation(_("A category is a word or a few (up to {maximum} characters), like category=food.")
                            .format(maximum=MAX_CATEGORY))
    return text


def record_entry(session: Session, group: Group, member: Member, amount_cents: int, description: str,
                 category: str | None, cited: Cited, settings: GroupSettings, now: datetime,
                 prefix: str) -> LedgerEntry:
    """Income (+) or spending (−), checked against the spend limit, then appended and logged."""
    if amount_cents == 0:
        raise RuleViolation(_("An entry of 0 changes nothing; write the amount like +120 or -45.50."))
    description, category = clean_description(description), clean_category(category)
    _check_spend_limit(amount_cents, description, cited, settings, prefix)
    return _append(session, group, member, amount_cents, description, category, cited, None, settings, now)


def _check_spend_limit(amount_cents: int, description: str, cited: Cited, settings: GroupSettings,
                       prefix: str) -> None:
    limit = settings.spend_limit_cents
    if amount_cents >= 0 or not limit or -amount_cents <= limit or cited.proposal is not None:
        return
    currency = settings.currency
    spend = format_cents(-amount_cents, currency)
    if cited.need is not None:
        message = _("Citing a need is not enough: Spending over {limit} needs a decision: propose it first "
                    "({command} Spend {amount} on {description}), then record it with for=#N.")
    else:
        message = _("Spending over {limit} needs a decision: propose it first "
                    "({command} Spend {amount} on {description}), then record it with for=#N.")
    raise RuleViolation(message.format(limit=format_cents(limit, currency), command=f"{prefix}propose", amount=spend,
                                       description=description[:60]))


def undo(session: Session, group: Group, member: Member, number: int, reason: str, settings: GroupSettings,
         now: datetime) -> tuple[LedgerEntry, LedgerEntry]:
    """A reversal of entry `number` (never blocked by the spend limit): (the reversal, the original)."""
    original = find(session, group.id, number)
    if original.reverses_id is not None:
        reversed_number = session.get(LedgerEntry, original.reverses_id).number
        raise RuleViolation(_("#{number} is itself the undo of #{original}; an undo cannot be undone — "
                              "record a new entry instead.").format(number=number, original=reversed_number))
    already = session.scalar(select(LedgerEntry.number).where(LedgerEntry.reverses_id == original.id))
    if already is not None:
        raise RuleViolation(_("#{number} was already undone by #{reversal}.").format(number=number, reversal=already))
    reason = " ".join(reason.split())
    if not reason:
        raise RuleViolation(_("Say why it is undone, like ledger undo 5 typed the wrong amount."))
    if len(reason) > MAX_REASON:
        raise RuleViolation(_("Keep the reason under {maximum} characters.").format(maximum=MAX_REASON))
    proposal = session.get(Proposal, original.proposal_id) if original.proposal_id else None
    need = session.get(Need, original.need_id) if original.need_id else None
    reversal = _append(session, group, member, -original.amount_cents, f"Reversal of #{number}: {reason}",
                       original.category, Cited(proposal, need), original, settings, now)
    return reversal, original


def _append(session: Session, group: Group, member: Member, amount_cents: int, description: str,
            category: str | None, cited: Cited, reverses: LedgerEntry | None, settings: GroupSettings,
            now: datetime) -> LedgerEntry:
    """The next entry after the group's latest. Two writers reading the same latest both try the
    same number; the unique (group, number) constraint fails one of them instead of forking the books."""
    latest = session.execute(select(LedgerEntry.number, LedgerEntry.balance_cents)
                             .where(LedgerEntry.group_id == group.id)
                             .order_by(LedgerEntry.number.desc()).limit(1)).first()
    number, balance = (latest[0] + 1, latest[1] + amount_cents) if latest else (1, amount_cents)
    entry = LedgerEntry(group_id=group.id, number=number, amount_cents=amount_cents, currency=settings.currency,
                        description=description, category=category,
                        proposal_id=cited.proposal.id if cited.proposal else None,
                        need_id=cited.need.id if cited.need else None,
                        reverses_id=reverses.id if reverses else None, member_id=member.id, recorded_at=now,
                        balance_cents=balance)
    session.add(entry)
    session.flush()
    if group.next_statement_at is None:  # the first entry starts the monthly cycle
        group.next_statement_at = next_statement(now, settings.timezone)
    record.append(session, group.id, "ledger.recorded", {
        "entry": number, "amount_cents": amount_cents, "currency": settings.currency, "description": description,
        "category": category, "for": cited.body(), "reverses": reverses.number if reverses else None,
        "member_id": member.id, "member": member.display_name, "balance_cents": balance}, now)
    return entry


def find(session: Session, group_id: int, number: int) -> LedgerEntry:
    entry = session.scalars(select(LedgerEntry).where(LedgerEntry.group_id == group_id,
                                                      LedgerEntry.number == number)).first()
    if entry is None:
        raise RuleViolation(_("There is no ledger entry #{number} in this group.").format(number=number))
    return entry


def has_entries(session: Session, group_id: int) -> bool:
    return bool(session.scalar(select(exists().where(LedgerEntry.group_id == group_id))))


# reading -----------------------------------------------------------------------------------------

class Line(NamedTuple):
    """One entry as members read it (a named tuple: the CSV export makes 100,000 of them)."""

    number: int
    recorded_at: datetime
    amount_cents: int
    currency: str
    description: str
    category: str | None
    decision: int | None  # for=#N
    need: int | None  # for=need N
    reverses: int | None  # the entry this one undoes
    undone_by: int | None  # the entry that undoes this one
    member: str
    balance_cents: int


_E = aliased(LedgerEntry, name="entry")
_ORIGINAL = aliased(LedgerEntry, name="original")
_UNDO = aliased(LedgerEntry, name="undo")
_LINES = (select(_E.number, _E.recorded_at, _E.amount_cents, _E.currency, _E.description, _E.category,
                 Proposal.number, Need.number, _ORIGINAL.number, _UNDO.number, Member.display_name,
                 _E.balance_cents)
          .join(Member, Member.id == _E.member_id)
          .outerjoin(Proposal, Proposal.id == _E.proposal_id)
          .outerjoin(Need, Need.id == _E.need_id)
          .outerjoin(_ORIGINAL, _ORIGINAL.id == _E.reverses_id)
          .outerjoin(_UNDO, _UNDO.reverses_id == _E.id))


def line_of(session: Session, entry: LedgerEntry) -> Line:
    return Line(*session.execute(_LINES.where(_E.id == entry.id)).one())


def latest_lines(session: Session, group_id: int, count: int = LAST_SHOWN) -> list[Line]:
    rows = session.execute(_LINES.where(_E.group_id == group_id).order_by(_E.number.desc()).limit(count))
    return [Line(*row) for row in rows]


def all_lines(session: Session, group_id: int, batch: int = 5000) -> Iterator[Line]:
    """Every entry in order, read in batches by number (keyset), so memory stays flat.

    The bare table on the connection, with the few names and numbers it refers to looked up in
    dicts read once: joining four tables for each of 100,000 rows cost more than the rest of an
    export together. A reversal always comes after the entry it undoes, so that entry's number
    is known by then."""
    connection = session.connection()

    def lookup(*query) -> dict:
        return dict(connection.execute(select(*query[:2]).where(*query[2:])).all())
    members = lookup(Member.id, Member.display_name, Member.group_id == group_id)
    decisions = lookup(Proposal.id, Proposal.number, Proposal.group_id == group_id)
    need_numbers = lookup(Need.id, Need.number, Need.group_id == group_id)
    undone_by = lookup(_c.reverses_id, _c.number, _c.group_id == group_id, _c.reverses_id.is_not(None))
    numbers: dict[int, int] = {}
    columns = (_c.id, _c.number, _c.recorded_at, _c.amount_cents, _c.currency, _c.description, _c.category,
               _c.proposal_id, _c.need_id, _c.reverses_id, _c.member_id, _c.balance_cents)
    after = 0
    while True:
        rows = connection.execute(select(*columns).where(_c.group_id == group_id, _c.number > after)
                                  .order_by(_c.number).limit(batch)).all()
        for (entry_id, number, at, amount, currency, description, category, proposal_id, need_id, reverses_id,
             member_id, balance_cents) in rows:
            if entry_id in undone_by:
                numbers[entry_id] = number
            yield Line(number, at, amount, currency, description, category, decisions.get(proposal_id),
                       need_numbers.get(need_id), numbers.get(reverses_id), undone_by.get(entry_id),
                       members.get(member_id, "?"), balance_cents)
        if len(rows) < batch:
            return
        after = rows[-1][1]


def balance(session: Session, group_id: int, before: datetime | None = None) -> int:
    """The balance now, or just before `before` (0 before the first entry)."""
    query = select(LedgerEntry.balance_cents).where(LedgerEntry.group_id == group_id)
    if before is None:
        query = query.order_by(LedgerEntry.number.desc())
    else:  # ix_ledger_time, read backwards from `before`
        query = query.where(LedgerEntry.recorded_at < before).order_by(LedgerEntry.recorded_at.desc(),
                                                                       LedgerEntry.number.desc())
    return session.scalar(query.limit(1)) or 0


# An entry is "out" when it spends, or when it undoes an income; a reversal counts on the side of
# the entry it reverses, so in − out is still the month's net change.
_c = LedgerEntry.__table__.c
_IS_OUT = or_(and_(_c.amount_cents < 0, _c.reverses_id.is_(None)),
              and_(_c.amount_cents > 0, _c.reverses_id.is_not(None)))
_OUT = case((_IS_OUT, 1), else_=0).label("out")


@dataclass(frozen=True)
class Flow:
    out: bool
    proposal_id: int | None
    category: str | None
    cents: int  # net, signed as the entries (spending negative)
    entries: int


def _flows(session: Session, group_id: int, start: datetime, end: datetime) -> list[Flow]:
    """The period's money, summed by direction, decision and category: one pass over ix_ledger_time."""
    rows = session.execute(select(_OUT, _c.proposal_id, _c.category, func.sum(_c.amount_cents), func.count())
                           .where(_c.group_id == group_id, _c.recorded_at >= start, _c.recorded_at < end)
                           .group_by(_OUT, _c.proposal_id, _c.category))
    return [Flow(bool(out), proposal_id, category, int(cents), count)
            for out, proposal_id, category, cents, count in rows]


def _totals(flows: list[Flow]) -> tuple[int, int]:
    """(in, out) in cents, both positive when money came in and went out."""
    money_in = sum(flow.cents for flow in flows if not flow.out)
    money_out = -sum(flow.cents for flow in flows if flow.out)
    return money_in, money_out


@dataclass(frozen=True)
class Summary:
    balance_cents: int
    month: str
    in_cents: int
    out_cents: int
    lines: list[Line]
    entries: int  # how many entries the books hold


def summary(session: Session, group_id: int, now: datetime, zone: ZoneInfo) -> Summary:
    month = month_of(now, zone)
    money_in, money_out = _totals(_flows(session, group_id, *bounds(month, zone)))
    lines = latest_lines(session, group_id)
    return Summary(balance(session, group_id), month, money_in, money_out, lines, lines[0].number if lines else 0)


@dataclass(frozen=True)
class Statement:
    month: str
    opening_cents: int
    in_cents: int
    out_cents: int
    closing_cents: int
    entries: int
    by_decision: list[tuple[int | None, str | None, int]]  # (decision number, title, spent cents), None: none
    by_category: list[tuple[str | None, int, int]] = field(default_factory=list)  # (category, in, out)


def statement(session: Session, group_id: int, month: str, zone: ZoneInfo) -> Statement:
    start, end = bounds(month, zone)
    flows = _flows(session, group_id, start, end)
    opening = balance(session, group_id, before=start)
    money_in, money_out = _totals(flows)
    return Statement(month, opening, money_in, money_out, opening + money_in - money_out,
                     sum(flow.entries for flow in flows), _by_decision(session, flows), _by_category(flows))


def _by_decision(session: Session, flows: list[Flow]) -> list[tuple[int | None, str | None, int]]:
    spent: dict[int | None, int] = {}
    for flow in flows:
        if flow.out:
            spent[flow.proposal_id] = spent.get(flow.proposal_id, 0) - flow.cents
    cited = [key for key in spent if key is not None]
    found = {row[0]: row[1:] for row in session.execute(
        select(Proposal.id, Proposal.number, Proposal.title).where(Proposal.id.in_(cited)))} if cited else {}
    rows = [(*found[key], cents) for key, cents in spent.items() if key is not None and cents]
    rows.sort(key=lambda row: row[0])
    if spent.get(None):  # a decision's spending undone within the month nets to nothing: not shown
        rows.append((None, None, spent[None]))
    return rows


def _by_category(flows: list[Flow]) -> list[tuple[str | None, int, int]]:
    totals: dict[str | None, list[int]] = {}
    for flow in flows:
        pair = totals.setdefault(flow.category, [0, 0])
        if flow.out:
            pair[1] -= flow.cents
        else:
            pair[0] += flow.cents
    named = sorted((key, *pair) for key, pair in totals.items() if key is not None and any(pair))
    return named + ([(None, *totals[None])] if any(totals.get(None, ())) else [])


# the monthly check -------------------------------------------------------------------------------

def open_check(session: Session, group_id: int, month: str, now: datetime,
               window: timedelta) -> tuple[LedgerCheck, Lottery | None]:
    """A month to check, and the lottery that draws its co-auditor (None: nobody holds no role).
    `remind_at` first marks when the draw is to be announced, then the one reminder."""
    check = LedgerCheck(group_id=group_id, month=month, opened_at=now)
    session.add(check)
    session.flush()
    lottery = draws.open_ledger_checker(session, check, now, window)
    if lottery is not None:
        check.remind_at = lottery.draws_at
    return check, lottery


def check_for(session: Session, group_id: int, month: str) -> LedgerCheck | None:
    return session.scalars(select(LedgerCheck).where(LedgerCheck.group_id == group_id,
                                                     LedgerCheck.month == month)).first()


def answer(session: Session, group_id: int, member: Member, text: str, now: datetime,
           zone: ZoneInfo) -> LedgerCheck:
    """The drawn co-auditor's verdict on their month: `ok`, or a concern in their words."""
    check = _check_to_answer(session, group_id, member, zone)
    text = " ".join(text.split())
    verdict = OK if text.lower().rstrip(".!") in ("ok", "okay", "fine", "✅", "👍") else CONCERN
    if verdict == CONCERN and len(text) > MAX_NOTE:
        raise RuleViolation(_("Keep the concern under {maximum} characters.").format(maximum=MAX_NOTE))
    check.verdict, check.note = verdict, text if verdict == CONCERN else None
    check.answered_at, check.remind_at = now, None
    record.append(session, group_id, "ledger.checked", {
        "month": check.month, "verdict": verdict, "note": check.note, "member_id": member.id,
        "member": member.display_name}, now)
    return check


def _check_to_answer(session: Session, group_id: int, member: Member, zone: ZoneInfo) -> LedgerCheck:
    waiting = list(session.scalars(select(LedgerCheck).where(LedgerCheck.group_id == group_id,
                                                             LedgerCheck.answered_at.is_(None))
                                   .order_by(LedgerCheck.month.desc())))
    mine = [check for check in waiting if check.auditor_id == member.id]
    if mine:
        return mine[0]
    drawn = [check for check in waiting if check.auditor_id is not None]
    if drawn:
        names = ", ".join(f"{_name(session, check.auditor_id)} ({check.month})" for check in drawn)
        raise RuleViolation(_("Only the co-auditor drawn by lot checks a month's books: {names}.").format(names=names))
    pending = [check for check in waiting if check.lottery_id is not None]
    if pending:
        lottery = session.get(Lottery, pending[0].lottery_id)
        raise RuleViolation(_("The co-auditor of {month} is drawn {when}.")
                            .format(month=pending[0].month, when=when(lottery.draws_at, zone)))
    raise RuleViolation(_("No month's books are waiting for a check; a statement and its check come at the start "
                          "of each month."))


def _name(session: Session, member_id: int) -> str:
    return session.get(Member, member_id).display_name


# the scheduler's view -----------------------------------------------------------------------------

_groups, _checks = Group.__table__.c, LedgerCheck.__table__.c
_NEXT_STATEMENT = (select(_groups.id, _groups.next_statement_at).where(_groups.next_statement_at <= bindparam("now"))
                   .order_by(_groups.next_statement_at, _groups.id).limit(1))
_NEXT_CHECK = (select(_checks.id, _checks.remind_at).where(_checks.remind_at <= bindparam("now"))
               .order_by(_checks.remind_at, _checks.id).limit(1))


def statements_due(platforms: Platforms = None) -> Select:
    return scoped_groups(_NEXT_STATEMENT, platforms)


def checks_due(platforms: Platforms = None) -> Select:
    return scoped(_NEXT_CHECK, _checks.group_id, platforms)


def next_deadline(session: Session, platforms: Platforms = None) -> datetime | None:
    times = session.execute(select(
        select(func.min(Group.next_statement_at)).where(served_groups(platforms)).scalar_subquery(),
        select(func.min(LedgerCheck.remind_at)).where(served(LedgerCheck.group_id, platforms)).scalar_subquery(),
    )).one()
    return min((moment for moment in times if moment is not None), default=None)
