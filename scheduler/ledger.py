"""The books' monthly cycle (bot.governance.ledger): the statement at the start of each month,
the co-auditor's draw, and one reminder while the check is unanswered.

Wired into scheduler.jobs like the other due work: each entry of `DUE_WORK` is
(the look for its earliest due (id, time) at `:now`, table, job), and `next_due` is one of the
times `jobs.next_due`
takes the minimum of. Each job does one item in one transaction and queues its messages
under dedupe keys, so after a crash or a restart every message goes out once.

A check's `remind_at` carries its two follow-ups: first the lottery's draw time (the draw
itself is done and logged by `jobs.draw_due_lottery`, which announces only role and audit
draws, so the co-auditor is announced here), then the one reminder, `REMIND_AFTER` later.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime

from sqlmodel import Session

from bot import languages, outbox
from bot.actions import DirectMessage, SendImage, SendMessage
from bot.core import Core
from bot.events import UserRef
from bot.governance import draws
from bot.governance import ledger as books
from bot.i18n import _
from bot.render import ledger as render
from bot.render.text import plain
from storage.models import Group, LedgerCheck, Lottery, Member

log = logging.getLogger(__name__)


def post_statement(core: Core, session: Session, group: Group, now: datetime) -> None:
    """At a month's start: the statement of the month just ended and the draw of its co-auditor.
    A month without entries gets neither; the next statement is scheduled either way."""
    settings = core.directory.settings(session, group.id)
    zone = settings.timezone
    due = group.next_statement_at
    # From the due time, not now: after downtime each missed month comes out, in order.
    month = books.shift(books.month_of(due, zone), -1)
    group.next_statement_at = books.next_statement(due, zone)
    found = books.statement(session, group.id, month, zone)
    if not found.entries or books.check_for(session, group.id, month) is not None:
        return
    _check, lottery = books.open_check(session, group.id, month, now, settings.draw_window)
    prefix, chat = core.prefix_for(group.platform), core.directory.chat_of(group)
    others = len(draws.open_lotteries(session, group.id, now)) > 1
    key = f"ledger:{group.id}:{month}:statement"
    outbox.record(session, key=key, group_id=group.id, now=now, action=SendMessage(
        chat=chat, text=render.monthly(found, settings.currency, lottery, now, zone, prefix, others)))
    outbox.record(session, key=key + ":chart", group_id=group.id, now=now, action=SendImage(
        chat=chat, filename=f"ledger-{month}.png", chart=render.chart(found, settings.currency, group.title),
        caption=plain(_("{month}: in and out by category.").format(month=render.month_name(month)))))
    log.info("ledger statement %s of group %s posted", month, group.id)


def follow_up_check(core: Core, session: Session, check: LedgerCheck, now: datetime) -> None:
    """First the co-auditor's draw is announced, then — still unanswered — they are reminded once."""
    lottery = session.get(Lottery, check.lottery_id) if check.lottery_id else None
    if check.answered_at is not None or lottery is None:
        check.remind_at = None
        return
    group = session.get(Group, check.group_id)
    if check.remind_at <= lottery.draws_at:
        _announce_draw(core, session, group, check, lottery, now)
    else:
        _remind(core, session, group, check, now)


def _announce_draw(core: Core, session: Session, group: Group, check: LedgerCheck, lottery: Lottery,
                   now: datetime) -> None:
    settings = core.directory.settings(session, group.id)
    if lottery.drawn_at is None:  # normally drawn just before by jobs.draw_due_lottery; never left waiting
        drawn = draws.reveal(session, lottery, lottery.draws_at, settings.mandate_warnings)
    else:
        drawn = _drawn(session, lottery, check)
    check.remind_at = lottery.draws_at + books.REMIND_AFTER if check.auditor_id else None
    outbox.record(session, key=f"ledger:{group.id}:{check.month}:drawn", group_id=group.id, now=now,
                  action=SendMessage(chat=core.directory.chat_of(group),
                                     text=render.checker_drawn(check, drawn, group.platform,
                                                               core.prefix_for(group.platform))))


def _drawn(session: Session, lottery: Lottery, check: LedgerCheck) -> draws.Drawn:
    """A draw done already, as `draws.reveal` returned it (for its announcement)."""
    picks = [int(pick) for pick in json.loads(lottery.picks or "[]")]
    auditor = session.get(Member, check.auditor_id) if check.auditor_id else None
    unseated = [(pick, _("they are no longer in the group")) for pick in picks if auditor is None]
    return draws.Drawn(lottery, None, draws.candidates_of(lottery), draws.contributions_of(lottery), picks,
                       unseated=unseated, auditor=auditor)


def _remind(core: Core, session: Session, group: Group, check: LedgerCheck, now: datetime) -> None:
    check.remind_at = None  # once, never twice
    auditor = session.get(Member, check.auditor_id)
    if auditor is None or not auditor.active:
        return
    prefix, key = core.prefix_for(group.platform), f"ledger:{group.id}:{check.month}:reminder"
    outbox.record(session, key=key, group_id=group.id, now=now, action=SendMessage(
        chat=core.directory.chat_of(group), text=render.reminder(check, auditor, group.platform, prefix)))
    user = UserRef(platform=auditor.platform, user_id=auditor.user_id)
    with languages.speaking_to(session, core.directory, user):
        told = DirectMessage(user=user, text=render.private_reminder(check, group.title, prefix))
    outbox.record(session, key=key + ":dm", group_id=group.id, now=now, action=told)


DUE_WORK: tuple = (
    (books.statements_due, Group, post_statement),
    (books.checks_due, LedgerCheck, follow_up_check),
)


def next_due(session: Session, platforms=None) -> datetime | None:
    return books.next_deadline(session, platforms)
