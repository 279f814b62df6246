"""The recurring work, as plain functions of the core: the database says what
is due, these functions do it and record what to announce.

Due items of every kind are taken strictly in order of their due time, one
per transaction, so after downtime the announcements come out in the order
things happened, one failure does not hold back the rest, and nothing is
half done.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import literal, select, type_coerce, union_all
from sqlmodel import Session

from bot import i18n, languages, outbox
from bot.actions import DirectMessage, SendImage, SendMessage
from bot.context import account_of
from bot.core import Core
from bot.events import UserRef
from bot.governance import audits, draws, federation, record, roles, scope
from bot.governance import needs as needs_rules
from bot.governance import proposals as rules
from bot.governance.outcomes import announcement, conclude, next_step
from bot.governance.scope import Platforms
from bot.i18n import _
from bot.logs import log_context
from bot.metrics import DUE_DONE, DUE_LATENESS_SECONDS
from bot.render import audits as render_audits
from bot.render import needs as render_needs
from bot.render.common import checkpoint
from bot.render.proposals import proposal_card, vote_choices
from bot.render.roles import draw_announcement, lapse, lottery_opened, private_warning, warning
from bot.render.text import RichText, b, join, plain
from scheduler import assemblies as assembly_jobs
from scheduler import ledger as ledger_jobs
from scheduler import renewals as renewal_jobs
from scheduler import reviews as review_jobs
from storage.models import Audit, Group, Lottery, Mandate, Member, Need, Proposal, Role
from storage.types import UTCDateTime

log = logging.getLogger(__name__)
WEEK = timedelta(days=7)
# Catching up (at start-up, before any member can be waiting): big transactions, few commits.
CATCH_UP_BUDGET, CATCH_UP_BATCH = 1.0, 500
# While serving: short slices on the core's worker, so a command waits at most one of them.
SLICE_BUDGET, SLICE_BATCH = 0.005, 100
DIGEST_ITEMS = 10


def close_due_proposal(core: Core, session: Session, proposal: Proposal, now: datetime) -> None:
    """At its deadline a proposal is counted, its consequences applied, its outcome queued — once."""
    group = session.get(Group, proposal.group_id)
    settings = core.directory.settings(session, group.id)
    concluded = conclude(session, proposal, proposal.closes_at, core.directory.member_count(session, group),
                         settings, core.prefix_for(group.platform), core.directory)
    announced = announcement(session, proposal, concluded, core.directory.chat_of(group), settings.timezone,
                             core.prefix_for(group.platform))
    for index, action in enumerate(announced):  # the outcome, then its file or chart
        key = f"proposal:{proposal.id}:outcome" + (f":{index}" if index else "")
        outbox.record(session, key=key, group_id=group.id, now=now, action=action)
    for notice in concluded.notices:  # a federation's groups: a shared question's outcome, a joining group …
        outbox.record(session, key=notice.key, group_id=notice.group_id, now=now, action=notice.action)
    core.refresh_card_later(session, group, proposal)
    core.directory.forget_settings(group.id)  # a charter decision may have changed one; read them afresh
    log.info("closed proposal %s of group %s: %s", proposal.number, group.id, concluded.decision.outcome)


def warn_before_mandate_ends(core: Core, session: Session, mandate: Mandate, now: datetime) -> None:
    """A warning to the group (mentioning the holder) and privately to the holder, once per offset."""
    if now >= mandate.ends_at:
        mandate.next_warning_at = None  # came back after the end: the lapse announcement says it all
        return
    group = session.get(Group, mandate.group_id)
    settings = core.directory.settings(session, group.id)
    due = roles.latest_due_warning(mandate, settings.mandate_warnings, now)
    mandate.next_warning_at = roles.warning_after(mandate.ends_at, settings.mandate_warnings, due or now)
    if due is None:
        return  # the offsets changed since this was scheduled
    role, holder = session.get(Role, mandate.role_id), session.get(Member, mandate.member_id)
    user = UserRef(platform=holder.platform, user_id=holder.user_id)
    key = f"mandate:{mandate.id}:ends:{mandate.ends_at.isoformat()}:warn:{due.isoformat()}"
    prefix = core.prefix_for(group.platform)
    outbox.record(session, key=key, group_id=group.id, now=now, action=SendMessage(
        chat=core.directory.chat_of(group),
        text=warning(role, mandate, holder, roles.volunteers(session, role), now, settings.timezone, prefix, user)))
    with languages.speaking_to(session, core.directory, user):
        told = DirectMessage(user=user, text=private_warning(role, mandate, group.title, now, settings.timezone))
    outbox.record(session, key=key + ":dm", group_id=group.id, now=now, action=told)


def lapse_mandate(core: Core, session: Session, mandate: Mandate, now: datetime) -> None:
    """A mandate ends on its own at its end date; the seat opens and the handover note is shared."""
    group = session.get(Group, mandate.group_id)
    settings = core.directory.settings(session, group.id)
    role, holder = session.get(Role, mandate.role_id), session.get(Member, mandate.member_id)
    roles.lapse(session, mandate)
    session.flush()
    prefix = core.prefix_for(group.platform)
    text = lapse(role, holder, roles.eligible(session, role, mandate.ends_at), next_step(role, prefix))
    if (role.fill == "lottery" and settings.auto_draw and roles.eligible(session, role, mandate.ends_at)
            and draws.open_for_role(session, role) is None):
        # A lottery for the successor, with its window from now (after downtime members still get one).
        opened = draws.open_role(session, role, mandate.ends_at, settings.draw_window,
                                 draws_at=max(now, mandate.ends_at) + settings.draw_window)
        others = len(draws.open_lotteries(session, group.id, now)) > 1
        text = join([text, lottery_opened(opened, b(role.name), now, settings.timezone, prefix, others)])
    outbox.record(session, key=f"mandate:{mandate.id}:lapsed", group_id=group.id, now=now,
                  action=SendMessage(chat=core.directory.chat_of(group), text=text))
    for proposal in roles.open_appointments(session, role, mandate.ends_at, settings.vote_duration):
        outbox.record(session, key=f"proposal:{proposal.id}:opened", group_id=group.id, now=now, action=SendMessage(
            chat=core.directory.chat_of(group), choices=vote_choices(proposal), track=f"proposal:{proposal.number}",
            text=proposal_card(proposal, rules.author_name(session, proposal), rules.counts(session, proposal),
                               now, settings.timezone, prefix)))
    log.info("mandate %s (%s in group %s) lapsed", mandate.id, role.key, group.id)


def schedule_group(core: Core, session: Session, group: Group, now: datetime) -> None:
    """A group from before audits existed gets its digest and audit dates (new groups get them at creation)."""
    audits.schedule(session, group, core.directory.settings(session, group.id), since=group.created_at)


def nudge_need(core: Core, session: Session, need: Need, now: datetime) -> None:
    """An unclaimed need is posted again, once, briefly; its anonymous author is told privately."""
    group = session.get(Group, need.group_id)
    needs_rules.nudged(session, need, now)
    if need.status != needs_rules.OPEN:
        return
    prefix = core.prefix_for(group.platform)
    outbox.record(session, key=f"need:{need.id}:nudge", group_id=group.id, now=now, action=SendMessage(
        chat=core.directory.chat_of(group), text=render_needs.nudge(need, now, prefix)))
    if need.anonymous:
        author = account_of(session.get(Member, need.author_id))
        with languages.speaking_to(session, core.directory, author):
            told = DirectMessage(user=author, text=render_needs.private_update(
                need, group.title, _("nobody has claimed it yet, so I posted it again.")))
        # Sealed: whom it went to says who asked; the row keeps no trace of it once delivered.
        outbox.record(session, key=f"need:{need.id}:nudge:dm", group_id=group.id, now=now, action=told, sealed=True)


def send_digest(core: Core, session: Session, group: Group, now: datetime) -> None:
    """The weekly digest: open needs (overdue flagged), needs met this week and how fast. Skipped
    in a week with nothing open and nothing met, so groups that do not use needs hear nothing."""
    due = group.next_digest_at
    settings = core.directory.settings(session, group.id)
    group.next_digest_at = audits.next_digest(settings, now)
    open_needs, overdue, open_offers = needs_rules.open_counts(session, group.id, now)
    waits = needs_rules.times_to_met(session, group.id, now - WEEK, now)
    if not (open_needs or open_offers or waits):
        return
    entries, __ = needs_rules.listing(session, group.id, None, DIGEST_ITEMS)
    prefix = core.prefix_for(group.platform)
    text = join([render_needs.digest(entries, open_needs, overdue, open_offers, len(waits),
                                     needs_rules.median_wait(waits), now, prefix),
                 RichText(html=checkpoint(record.head(session, group.id).short(), prefix))])
    outbox.record(session, key=f"digest:{group.id}:{due.isoformat()}", group_id=group.id, now=now,
                  action=SendMessage(chat=core.directory.chat_of(group), text=text))


def start_due_audit(core: Core, session: Session, group: Group, now: datetime) -> None:
    settings = core.directory.settings(session, group.id)
    current = audits.open_audit(session, group.id)
    if current is not None:  # started by hand in the meantime: the cadence counts from that one
        group.next_audit_at = current.started_at + settings.audit_every
        return
    audit = audits.start(session, group, settings, now, started_by=None)
    text = render_audits.prompt(audit, core.prefix_for(group.platform), settings.timezone, now,
                                audits.auditor_draw(session, audit, settings, now))
    outbox.record(session, key=f"audit:{audit.id}:prompt", group_id=group.id, now=now,
                  action=SendMessage(chat=core.directory.chat_of(group), text=text))
    log.info("audit %s of group %s opened", audit.number, group.id)


def remind_audit(core: Core, session: Session, audit: Audit, now: datetime) -> None:
    audit.remind_at = None
    if now >= audit.closes_at:
        return  # came back after the close: the report says it all
    group = session.get(Group, audit.group_id)
    settings = core.directory.settings(session, group.id)
    text = render_audits.reminder(audit, audits.entries(session, audit), core.prefix_for(group.platform),
                                  settings.timezone)
    outbox.record(session, key=f"audit:{audit.id}:reminder", group_id=group.id, now=now,
                  action=SendMessage(chat=core.directory.chat_of(group), text=text))


def close_audit(core: Core, session: Session, audit: Audit, now: datetime) -> None:
    """At the end of the window: measure, store the figures, post the story and its chart."""
    group = session.get(Group, audit.group_id)
    settings = core.directory.settings(session, group.id)
    audits.close(session, audit)
    session.flush()
    auditor = session.get(Member, audit.auditor_id) if audit.auditor_id else None
    chat = core.directory.chat_of(group)
    outside = audits.outside_group(session, audit)
    text = render_audits.report(audit, audits.entries(session, audit), settings.timezone, auditor, outside)
    outbox.record(session, key=f"audit:{audit.id}:report", group_id=group.id, now=now,
                  action=SendMessage(chat=chat, text=text))
    if outside is not None:  # an auditor from another group of the federation is not in this chat
        _tell_outside_auditor(core, session, audit, auditor, f"audit:{audit.id}:report:auditor",
                              lambda: render_audits.report_for_auditor(text, federation.group_name(group)))
    drawn = render_audits.chart(audits.closed_audits(session, group.id, render_audits.MAX_CHART_AUDITS), group.title)
    outbox.record(session, key=f"audit:{audit.id}:chart", group_id=group.id, now=now, action=SendImage(
        chat=chat, filename=f"audit-{audit.number}.png", chart=drawn,
        caption=plain(_("Audit #{number}: our figures across the audits so far.").format(number=audit.number))))
    log.info("audit %s of group %s closed", audit.number, group.id)


def draw_due_lottery(core: Core, session: Session, lottery: Lottery, now: datetime) -> None:
    """At the end of its window a lottery is drawn — once, at its due time even after downtime — and
    announced with everything needed to recompute it. A tie lottery goes with its vote's close."""
    group = session.get(Group, lottery.group_id)
    settings = core.directory.settings(session, group.id)
    drawn = draws.reveal(session, lottery, lottery.draws_at, settings.mandate_warnings)
    session.flush()
    prefix = core.prefix_for(group.platform)
    if lottery.purpose == draws.ROLE:
        text = draw_announcement(drawn, settings.timezone, prefix)
    elif lottery.purpose == draws.AUDITOR:
        audit = session.get(Audit, lottery.audit_id) if lottery.audit_id else None
        outside = audits.outside_group(session, audit) if audit is not None else None
        text = render_audits.auditor_drawn(audit, drawn, prefix, outside)
        if outside is not None:
            _tell_outside_auditor(core, session, audit, drawn.auditor, f"lottery:{lottery.id}:drawn:auditor",
                                  lambda: render_audits.told_auditor(audit, federation.group_name(group),
                                                                     settings.timezone))
    elif lottery.purpose in draws.ASSEMBLY_JOBS:
        assembly_jobs.announce_draw(core, session, lottery, drawn, now)  # both jobs at once, when both are drawn
        return
    else:
        return  # its vote was withdrawn (a closing vote reveals its own): the draw is in the log, nothing to say
    outbox.record(session, key=f"lottery:{lottery.id}:drawn", group_id=group.id, now=now,
                  action=SendMessage(chat=core.directory.chat_of(group), text=text))
    log.info("lottery %s of group %s drawn", lottery.number, group.id)


def _tell_outside_auditor(core: Core, session: Session, audit: Audit, auditor: Member, key: str,
                          make: Callable[[], RichText]) -> None:
    """A direct message to an auditor from another group of the federation, on their own platform and
    in their own language (recorded with the audited group's id: it is that group's business)."""
    user = account_of(auditor)
    with languages.speaking_to(session, core.directory, user):
        told = DirectMessage(user=user, text=make())
    outbox.record(session, key=key, group_id=audit.group_id, now=core.clock.now(), action=told)


# Each kind of due work: the look for its earliest due item (id, due time) at `:now` (a SELECT
# with LIMIT 1, narrowed to the served platforms), its table, and the job. On a tie, earlier
# kinds go first: a renewal decided at the deadline beats the lapse at the same instant.
DUE_WORK = (
    (rules.closing_due, Proposal, close_due_proposal),
    (draws.draws_due, Lottery, draw_due_lottery),
    (roles.warnings_due, Mandate, warn_before_mandate_ends),
    (roles.lapses_due, Mandate, lapse_mandate),
    (audits.unscheduled_due, Group, schedule_group),
    (needs_rules.nudges_due, Need, nudge_need),
    (audits.audit_closes_due, Audit, close_audit),
    (audits.audit_reminders_due, Audit, remind_audit),
    (audits.audit_starts_due, Group, start_due_audit),
    (audits.digests_due, Group, send_digest),
    review_jobs.DUE,  # decisions brought back at their review date (scheduler/reviews.py)
    *ledger_jobs.DUE_WORK,  # monthly statements and their checks (scheduler/ledger.py)
    *renewal_jobs.DUE_WORK,  # renewal reviews and role sunsets (scheduler/renewals.py)
    *assembly_jobs.DUE_WORK,  # reminders, draws, agenda freeze and start of assemblies (scheduler/assemblies.py)
)


def _earliest_due(session: Session, now: datetime, platforms: Platforms):
    """The next due item of any kind in the served groups, as (due time, order, job, item), or None.
    One statement asks every kind for its earliest due item (a round trip per kind was most of the
    time an item took); an item's due time is never later than now (a group never scheduled is
    due from its creation, or now)."""
    rows = session.connection().execute(_due_look(DUE_WORK, platforms), {"now": now}).all()
    if not rows:
        return None
    order, item_id, due = min(((order, item_id, min(due, now)) for order, item_id, due in rows),
                              key=lambda row: (row[2], row[0]))
    __, model, job = DUE_WORK[order]
    return due, order, job, session.get(model, item_id)


_DUE_LOOKS: dict = {}


def _due_look(work: tuple, platforms: Platforms):
    """UNION ALL of each kind's earliest-due lookup, tagged with its place in `work` (built once
    per set of kinds and platforms)."""
    key = (work, tuple(platforms) if platforms is not None else None)
    if key not in _DUE_LOOKS:
        parts = []
        for order, (due_statement, _table, _job) in enumerate(work):
            item_id, due = due_statement(platforms).subquery().c
            parts.append(select(literal(order).label("kind"), item_id.label("item_id"),
                                type_coerce(due, UTCDateTime()).label("due")))
        _DUE_LOOKS[key] = union_all(*parts)
    return _DUE_LOOKS[key]


def run_due_batch(core: Core, budget: float, max_items: int, platforms: Platforms = None) -> tuple[int, bool]:
    """Due items in order, in one transaction, until `budget` seconds or `max_items` are used up:
    (items done, whether none is left). One commit for many items is what makes catching up after
    downtime fast; the budget is what keeps members' commands from waiting long behind it.

    If an item fails the batch is undone and done again one item per transaction, so every
    item before the failing one is kept and the failure is the failing item's alone."""
    try:
        return _batch(core, budget, max_items, platforms)
    except Exception:
        core.directory.reset()  # caches may hold what the rollback undid
        if max_items == 1:
            raise
    done = 0
    while done < max_items:
        count, finished = _batch(core, budget, 1, platforms)
        done += count
        if finished:
            return done, True
    return done, False


def _batch(core: Core, budget: float, max_items: int, platforms: Platforms) -> tuple[int, bool]:
    started, done = time.monotonic(), 0
    with core.db.transaction() as session:
        while done < max_items and (done == 0 or time.monotonic() - started < budget):
            now = core.clock.now()
            entry = _earliest_due(session, now, platforms)
            if entry is None:
                return done, True
            due, __, job, item = entry
            group_id = item.id if isinstance(item, Group) else getattr(item, "group_id", None)
            with log_context(group_id=group_id), i18n.speaking(core.group_language(session, group_id)):
                job(core, session, item, now)
            session.flush()  # the next look for due work must see this item done (some looks bypass the ORM)
            DUE_LATENESS_SECONDS.observe(max(0.0, (now - due).total_seconds()))
            DUE_DONE.inc()
            done += 1
    return done, False


def run_due_work(core: Core, limit: int = 10_000, platforms: Platforms = None) -> int:
    """Everything that is due now, in order (the console's :wait and tests; the runtime goes in slices)."""
    done = 0
    while done < limit:
        count, finished = run_due_batch(core, CATCH_UP_BUDGET, min(CATCH_UP_BATCH, limit - done), platforms)
        done += count
        if finished:
            break
    return done


def forget_delivered_actions(core: Core, keep: timedelta = WEEK) -> int:
    """Housekeeping: the outbox keeps what was delivered for a week (to look into a complaint),
    then forgets it, so it does not grow without end."""
    with core.db.transaction() as session:
        return outbox.forget_delivered(session, core.clock.now() - keep)


def work_scope(core: Core, platforms: Platforms) -> Platforms:
    """What to narrow scheduled work to (None: every group is served here), looked up once per round."""
    with core.db.transaction() as session:
        return scope.needed(session, platforms)


def next_due(core: Core, platforms: Platforms = None) -> datetime | None:
    """When the next piece of work in the served groups falls due (None: nothing scheduled)."""
    with core.db.transaction() as session:
        times = (rules.next_deadline(session, platforms), roles.next_mandate_deadline(session, platforms),
                 needs_rules.next_nudge(session, platforms), audits.next_deadline(session, platforms),
                 draws.next_deadline(session, platforms), review_jobs.next_review(session, platforms),
                 ledger_jobs.next_due(session, platforms), renewal_jobs.next_due(session, platforms),
                 assembly_jobs.next_due(session, platforms))
        return min((t for t in times if t is not None), default=None)
