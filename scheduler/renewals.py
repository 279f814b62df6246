"""Renewal reviews fall due: every `renewal_every`, and at a role's own sunset date
(bot.governance.renewals).

Wired into scheduler.jobs like the other due work. Opening the review, moving the group's
next renewal date (or clearing the role's sunset date) and queueing the card under a dedupe
key happen in one transaction, so a review opens once whatever restarts happen.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlmodel import Session

from bot import outbox
from bot.actions import SendMessage
from bot.commands.proposals import card_choices, card_text
from bot.core import Core
from bot.governance import renewals
from bot.governance.errors import RuleViolation
from storage.models import Group, Proposal, Role

log = logging.getLogger(__name__)


def open_renewal_review(core: Core, session: Session, group: Group, now: datetime) -> None:
    """The periodic review of every role and clause; the next one is scheduled a period later."""
    settings = core.directory.settings(session, group.id)
    if settings.renewal_every is None:
        group.next_renewal_at = None  # switched off since it was scheduled
        return
    if any(p.title == renewals.TITLE for p in renewals.open_reviews(session, group.id)):
        renewals.postpone(group, now)  # the last one is still open (a long vote_duration)
        return
    try:
        review = renewals.open_review(session, group, settings, now)
    except RuleViolation as refusal:  # e.g. too many open proposals: try again tomorrow
        renewals.postpone(group, now)
        log.warning("renewal review of group %s postponed: %s", group.id, refusal)
        return
    group.next_renewal_at = now + settings.renewal_every
    if review is not None:
        _post(core, session, group, review, now)


def open_role_sunset(core: Core, session: Session, role: Role, now: datetime) -> None:
    """A role defined with sunset=… reaches its date: the group keeps it or it is retired."""
    group = session.get(Group, role.group_id)
    settings = core.directory.settings(session, group.id)
    try:
        review = renewals.open_review(session, group, settings, now, role=role)
    except RuleViolation as refusal:
        role.sunset_at = now + renewals.RETRY
        log.warning("sunset review of role %s in group %s postponed: %s", role.key, group.id, refusal)
        return
    role.sunset_at = None  # once: the review decides what happens next
    if review is not None:
        _post(core, session, group, review, now)


def _post(core: Core, session: Session, group: Group, review: Proposal, now: datetime) -> None:
    settings = core.directory.settings(session, group.id)
    text = card_text(session, review, now, settings.timezone, core.prefix_for(group.platform))
    outbox.record(session, key=f"proposal:{review.id}:opened", group_id=group.id, now=now, action=SendMessage(
        chat=core.directory.chat_of(group), text=text, choices=card_choices(session, review),
        track=f"proposal:{review.number}"))
    log.info("renewal review %s opened in group %s", review.number, group.id)


DUE_WORK = (
    (renewals.reviews_due, Group, open_renewal_review),
    (renewals.sunsets_due, Role, open_role_sunset),
)
next_due = renewals.next_due
