"""Review dates fall due: the decision comes back as "Keep #12 …?" (bot.governance.reviews).

Wired into scheduler.jobs like the other due work: `DUE` is one entry of `jobs.DUE_WORK`
and `next_review` one of the times `jobs.next_due` takes the minimum of. The proposal is
opened, the decision's review date cleared and the card queued in one transaction (the
card under a dedupe key), so a review fires once: after a restart it is either done or
still due, never half done or twice.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlmodel import Session

from bot import outbox
from bot.actions import SendMessage
from bot.core import Core
from bot.governance import proposals as rules
from bot.governance import reviews, secrecy
from bot.governance.errors import RuleViolation
from bot.governance.voting import CHOSEN
from bot.render.common import when
from bot.render.proposals import decision_counts, proposal_card, vote_choices
from storage.models import Decision, Group, Proposal

log = logging.getLogger(__name__)


def bring_back(core: Core, session: Session, decision: Decision, now: datetime) -> None:
    """At its review date a decision is put to the group again, once."""
    group = session.get(Group, decision.group_id)
    settings = core.directory.settings(session, group.id)
    original = session.get(Proposal, decision.proposal_id)
    electorate = core.directory.active_member_ids(session, group.id) if original.secret else ()
    try:
        review = reviews.open_review(session, decision, now, settings, _details(original, decision, settings),
                                     electorate)
    except RuleViolation as refusal:  # e.g. the group has too many open proposals: try again later
        retry = reviews.postpone(decision, now)
        log.warning("review of proposal %s in group %s postponed to %s: %s", original.number, group.id,
                    retry.isoformat(), refusal)
        return
    prefix = core.prefix_for(group.platform)
    card = proposal_card(review, rules.author_name(session, review), rules.counts(session, review), now,
                         settings.timezone, prefix, secrecy.state(session, review))
    outbox.record(session, key=f"proposal:{review.id}:opened", group_id=group.id, now=now, action=SendMessage(
        chat=core.directory.chat_of(group), text=card, choices=vote_choices(review),
        track=f"proposal:{review.number}"))
    log.info("decision on proposal %s of group %s brought back for review as %s", original.number, group.id,
             review.number)


def _details(original: Proposal, decision: Decision, settings) -> str:
    """The card's line under the title (plain text: the card escapes it)."""
    again = " and comes back again after the same time" if original.review_seconds else ""
    winners = decision_counts(decision).get("winners") or []
    outcome = f"chose {' and '.join(winners)}" if decision.outcome == CHOSEN and winners else decision.outcome
    return (f"Review of #{original.number}, decided {when(decision.decided_at, settings.timezone)} "
            f"({outcome}, {decision.voters} of {decision.members} voted). If this passes, #{original.number} "
            f"stays in force{again}; if not, it lapses.")


DUE = (reviews.reviews_due, Decision, bring_back)
next_review = reviews.next_review
