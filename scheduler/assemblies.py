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

import json
import logging
from datetime import datetime

from sqlmodel import Session

from bot import outbox
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
    due = assemblies.reminders_due(assembly, settings, now)
    if due:
        assembly.reminded_through = due[-1]
    reminding = bool(due) and now < assembly.starts_at
    if reminding or opened:
        texts = [_reminder(core, session, group, assembly, opened, now)] if reminding else []
        if opened:
            texts.append(render.draws_opened(assembly, opened, pools, settings.timezone, now,
                                             core.prefix_for(group.platform),
                                             len(draws.open_lotteries(session, group.id, now)) > len(opened)))
        moment = (due[-1] if reminding else now).isoformat()
        outbox.record(session, key=f"assembly:{assembly.id}:step:{moment}", group_id=group.id, now=now,
                      action=SendMessage(chat=core.directory.chat_of(group), text=join(texts)))
    if assembly.starts_at <= now:
        _start(core, session, group, assembly, now)
    assembly.next_due_at = assemblies.next_step_at(assembly, settings)


def _open_draws_if_due(core: Core, session: Session, group: Group, assembly: Assembly,
                       now: datetime) -> tuple[list[Lottery], dict[str, assemblies.Pool]]:
    """The lotteries for the two jobs at the draw time, with the pools they draw from. Back after
    the start (downtime), they are drawn at once: a meeting under way needs its facilitator now."""
    settings = core.directory.settings(session, group.id)
    if assembly.drawn_at is not None or assemblies.draw_at(assembly, settings) > now:
        return [], {}
    late = now >= assembly.starts_at
    pools = {job: assemblies.job_pool(session, assembly, job, settings) for job in assemblies.JOBS}
    opened = assemblies.open_draws(session, assembly, settings, now, pools, skip_window=late)
    if late:
        results = [draws.reveal(session, lottery, now, ()) for lottery in opened]
        announce_jobs(core, session, group, assembly, results, now)
        return [], pools
    if not opened:  # nobody to draw for either job: say so, and how to stand
        outbox.record(session, key=f"assembly:{assembly.id}:nobody", group_id=group.id, now=now, action=SendMessage(
            chat=core.directory.chat_of(group), text=render.draws_opened(
                assembly, [], pools, settings.timezone, now, core.prefix_for(group.platform), False)))
    return opened, pools


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
    """One of an assembly's two lotteries was drawn; when none is left, announce both."""
    assembly = session.get(Assembly, lottery.assembly_id) if lottery.assembly_id else None
    if assembly is None or assemblies.lotteries_pending(session, assembly):
        return
    results = [drawn if other.id == lottery.id else _as_drawn(other)
               for job in assemblies.JOBS if (other := assemblies.job_lottery(session, assembly, job)) is not None]
    announce_jobs(core, session, session.get(Group, assembly.group_id), assembly, results, now)


def _as_drawn(lottery: Lottery) -> draws.Drawn:
    """A lottery drawn earlier, as `draws.reveal` returned it (for the announcement of both)."""
    return draws.Drawn(lottery, None, draws.candidates_of(lottery), draws.contributions_of(lottery),
                       [int(pick) for pick in json.loads(lottery.picks or "[]")])


def announce_jobs(core: Core, session: Session, group: Group, assembly: Assembly, results: list[draws.Drawn],
                  now: datetime) -> None:
    prefix, chat = core.prefix_for(group.platform), core.directory.chat_of(group)
    people = render.People.of(group.platform, assemblies.holders(session, assembly))
    outbox.record(session, key=f"assembly:{assembly.id}:drawn", group_id=group.id, now=now, action=SendMessage(
        chat=chat, text=render.jobs_drawn(assembly, people, results, prefix)))
    for job, member in zip(assemblies.JOBS, (people.facilitator, people.note_taker), strict=True):
        if member is not None:
            tell_job(core, session, group, assembly, job, member, now)
    log.info("assembly %s of group %s: facilitator and note-taker drawn", assembly.number, group.id)


def tell_job(core: Core, session: Session, group: Group, assembly: Assembly, job: str, member: Member,
             now: datetime) -> None:
    settings = core.directory.settings(session, group.id)
    text = render.job_message(assembly, job, group.title, assemblies.brief(session, assembly, job),
                              settings.timezone, now, core.prefix_for(group.platform))
    outbox.record(session, key=f"assembly:{assembly.id}:{job}:dm", group_id=group.id, now=now, action=DirectMessage(
        user=UserRef(platform=group.platform, user_id=member.user_id), text=text))


DUE_WORK: tuple = ((assemblies.next_due_id, Assembly, advance_assembly),)


def next_due(session: Session, platforms=None) -> datetime | None:
    return assemblies.next_deadline(session, platforms)
