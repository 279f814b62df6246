"""The steps of each assembly (bot.governance.assemblies), done once each, in order.

Wired into scheduler.jobs like the other due work: `advance_assembly` runs at the assembly's
`next_due_at` and does every step whose time has come — the lotteries for its facilitator and
note-taker, the agenda's freeze, the latest reminder not yet sent, the start — then points
`next_due_at` at the next step. Messages are queued under dedupe keys in the same transaction,
so after a crash or a restart each goes out once. After downtime, only the latest missed
reminder is sent, and none once the assembly has started.

The lotteries themselves are drawn by `jobs.draw_due_lottery`, which hands assembly lotteries
to `announce_draw`: when the second of the two is drawn, both results go out in one message and
each person drawn gets a direct message with the agenda and last time's handover notes.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlmodel import Session

from bot import languages, outbox
from bot.actions import DirectMessage, SendMessage
from bot.core import Core
from bot.events import UserRef
from bot.governance import assemblies, draws
from bot.render import assemblies as render
from bot.render.text import join
from storage.models import Assembly, Group, Lottery, Member

log = logging.getLogger(__name__)


def advance_assembly(core: Core, session: Session, assembly: Assembly, now: datetime) -> None:
    group = session.get(Group, assembly.group_id)
    settings = core.directory.settings(session, group.id)
    if assembly.cancelled_at is not None or assembly.started_at is not None:
        assembly.next_due_at = None
        return
    opened, pools = _open_draws_if_due(core, session, group, assembly, now)
    if assembly.frozen_at is None and assemblies.freeze_at(assembly) <= now:
        assemblies.freeze(session, assembly, now)
    due = assemblies.pending_reminders(assembly, settings, now)
    if due:
        assembly.reminded_through = due[-1]
    reminding = bool(due) and now < assembly.starts_at
    if reminding or pools:
        prefix = core.prefix_for(group.platform)
        texts = [_reminder(core, session, group, assembly, opened, now)] if reminding else []
        if pools:
            others = len(draws.open_lotteries(session, group.id, now)) > len(opened)
            texts.append(render.draws_opened(assembly, opened, pools, settings.timezone, now, prefix, others))
        moment = (due[-1] if reminding else now).isoformat()
        outbox.record(session, key=f"assembly:{assembly.id}:step:{moment}", group_id=group.id, now=now,
                      action=SendMessage(chat=core.directory.chat_of(group), text=join(texts)))
    if assembly.starts_at <= now:
        _start(core, session, group, assembly, now)
    assembly.next_due_at = assemblies.next_step_at(assembly, settings)


def _open_draws_if_due(core: Core, session: Session, group: Group, assembly: Assembly,
                       now: datetime) -> tuple[list[Lottery], dict[str, assemblies.Pool]]:
    """At the draw time: the facilitator's lottery (or, if nobody can facilitate, the note-taker's),
    with the pools considered. Back after the start (downtime), both are drawn at once: a meeting
    under way needs its facilitator now."""
    settings = core.directory.settings(session, group.id)
    if assembly.drawn_at is not None or assemblies.draw_at(assembly, settings) > now:
        return [], {}
    if now >= assembly.starts_at:
        _draw_both_now(core, session, group, assembly, now)
        return [], {}
    pools: dict[str, assemblies.Pool] = {}
    for job in assemblies.JOBS:
        pools[job] = assemblies.job_pool(session, assembly, job, settings)
        lottery = assemblies.open_job_draw(session, assembly, job, pools[job], now, now + settings.draw_window)
        if lottery is not None:
            return [lottery], pools  # the note-taker's lottery opens when this one is drawn
    return [], pools


def _draw_both_now(core: Core, session: Session, group: Group, assembly: Assembly, now: datetime) -> None:
    settings = core.directory.settings(session, group.id)
    results = []
    for job in assemblies.JOBS:  # in turn: the note-taker's pool leaves out the facilitator just drawn
        pool = assemblies.job_pool(session, assembly, job, settings)
        if (drawn := assemblies.draw_job_now(session, assembly, job, pool.candidates, now)) is not None:
            results.append(drawn)
    if results:
        _announce(core, session, group, assembly, results, [], now, key=f"assembly:{assembly.id}:drawn")


def _reminder(core: Core, session: Session, group: Group, assembly: Assembly, opened: list[Lottery],
              now: datetime):
    settings = core.directory.settings(session, group.id)
    items = assemblies.items_for(session, assembly)
    people = render.People.of(group.platform, assemblies.holders(session, assembly))
    pending = opened or [lottery for job in assemblies.JOBS
                         if (lottery := assemblies.job_lottery(session, assembly, job)) is not None]
    return render.reminder(assembly, items, assemblies.authors_of(session, items), people, pending,
                           settings.timezone, now, core.prefix_for(group.platform))


def _start(core: Core, session: Session, group: Group, assembly: Assembly, now: datetime) -> None:
    settings = core.directory.settings(session, group.id)
    items = assemblies.start(session, assembly, now)
    following = assemblies.keep_rhythm(session, group.id, settings, now)
    people = render.People.of(group.platform, assemblies.holders(session, assembly))
    outbox.record(session, key=f"assembly:{assembly.id}:start", group_id=group.id, now=now, action=SendMessage(
        chat=core.directory.chat_of(group),
        text=render.started(assembly, items, assemblies.authors_of(session, items), people, following,
                            settings.timezone, now, core.prefix_for(group.platform))))
    log.info("assembly %s of group %s started", assembly.number, group.id)


def announce_draw(core: Core, session: Session, lottery: Lottery, drawn: draws.Drawn, now: datetime) -> None:
    """A job's lottery was drawn: who takes it. After the facilitator's, the note-taker's opens,
    among the others, in the same message."""
    assembly = session.get(Assembly, lottery.assembly_id) if lottery.assembly_id else None
    if assembly is None:
        return
    group = session.get(Group, assembly.group_id)
    settings = core.directory.settings(session, group.id)
    following = []
    if lottery.purpose == assemblies.FACILITATION and assembly.started_at is None and assembly.cancelled_at is None:
        pool = assemblies.job_pool(session, assembly, assemblies.MINUTES, settings)
        minutes = assemblies.open_job_draw(session, assembly, assemblies.MINUTES, pool, now,
                                           now + settings.draw_window)
        others = len(draws.open_lotteries(session, group.id, now)) > (1 if minutes else 0)
        following.append(render.draws_opened(assembly, [minutes] if minutes else [], {assemblies.MINUTES: pool},
                                             settings.timezone, now, core.prefix_for(group.platform), others))
    _announce(core, session, group, assembly, [drawn], following, now, key=f"lottery:{lottery.id}:drawn")


def _announce(core: Core, session: Session, group: Group, assembly: Assembly, results: list[draws.Drawn],
              following: list, now: datetime, key: str) -> None:
    prefix, chat = core.prefix_for(group.platform), core.directory.chat_of(group)
    text = join([render.jobs_drawn(assembly, group.platform, results, prefix), *following])
    outbox.record(session, key=key, group_id=group.id, now=now, action=SendMessage(chat=chat, text=text))
    for drawn in results:
        if drawn.assigned is not None:
            tell_job(core, session, group, assembly, drawn.lottery.purpose, drawn.assigned, now)
    log.info("assembly %s of group %s: %s drawn", assembly.number, group.id,
             " and ".join(drawn.lottery.purpose for drawn in results))


def tell_job(core: Core, session: Session, group: Group, assembly: Assembly, job: str, member: Member,
             now: datetime) -> None:
    settings = core.directory.settings(session, group.id)
    user = UserRef(platform=member.platform, user_id=member.user_id)
    # Nothing in it is private (the agenda, the notes any member can read): where the member cannot be
    # written to privately (Telegram, before they open a chat with the bot), it is said in the group.
    with languages.speaking_to(session, core.directory, user):
        text = render.job_message(assembly, job, group.title, assemblies.brief(session, assembly, job),
                                  settings.timezone, now, core.prefix_for(group.platform))
        action = DirectMessage(user=user, text=text, fallback_chat=core.directory.chat_of(group))
    outbox.record(session, key=f"assembly:{assembly.id}:{job}:dm", group_id=group.id, now=now, action=action)


DUE_WORK: tuple = ((assemblies.steps_due, Assembly, advance_assembly),)


def next_due(session: Session, platforms=None) -> datetime | None:
    return assemblies.next_deadline(session, platforms)
