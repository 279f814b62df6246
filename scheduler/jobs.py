"""The recurring work, as plain functions of the core: the database says what
is due, these functions do it and record what to announce.

Each due item runs in its own transaction, so one failure does not hold back
the others and nothing is half done.
"""

from __future__ import annotations

import logging

from bot import outbox
from bot.actions import SendMessage
from bot.core import Core
from bot.governance import proposals as rules
from bot.render import outcome_announcement
from storage.models import Group

log = logging.getLogger(__name__)


def close_due_proposals(core: Core) -> int:
    """Close every proposal whose deadline has passed and queue its outcome, once."""
    closed = 0
    while True:
        now = core.clock.now()
        with core.db.transaction() as session:
            due = rules.due(session, now, limit=1)
            if not due:
                return closed
            proposal = due[0]
            group = session.get(Group, proposal.group_id)
            members = core.directory.member_count(session, group)
            decision, _ = rules.close(session, proposal, proposal.closes_at, members)
            zone = core.directory.settings(session, group.id).timezone
            announcement = SendMessage(chat=core.directory.chat_of(group),
                                       text=outcome_announcement(proposal, decision, zone))
            outbox.record(session, key=f"proposal:{proposal.id}:outcome", action=announcement,
                          group_id=group.id, now=now)
            core.refresh_card_later(session, group, proposal)
        closed += 1
        log.info("closed proposal %s of group %s: %s", proposal.number, group.id, decision.outcome)


def run_due_work(core: Core) -> int:
    """Everything that is due now; the scheduler and the console's :wait call this."""
    return close_due_proposals(core)


def next_due(core: Core):
    """When the next piece of work falls due (None: nothing scheduled)."""
    with core.db.transaction() as session:
        return rules.next_deadline(session)
