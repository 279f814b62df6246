"""Review dates: sunset clauses on decisions.

`propose … review=6mo` stores the delay on the proposal; if it carries, its decision
gets `review_at` (bot.governance.proposals). At that date the scheduler brings the
decision back (`open_review`): a yes/no proposal "Keep #12 …?" of kind "review" under
the original's rule, with the group's quorum and vote duration, by the original's
author. Opening it clears `review_at`, in the same transaction, so it fires once
whatever restarts happen. When the review closes (`settle`, from outcomes.conclude):
if it did not carry, the decision lapses (`lapsed_at`, "decision.lapsed" in the log);
if it carried, it is kept ("decision.kept") and, the clause being part of the
decision, comes back again after the same delay.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Select, bindparam, func, select
from sqlmodel import Session

from bot.durations import format_duration
from bot.governance import proposals as rules
from bot.governance import record
from bot.governance.errors import RuleViolation
from bot.governance.scope import Platforms, scoped, served
from bot.governance.settings import GroupSettings
from bot.i18n import _
from storage.models import Decision, Proposal

KIND = "review"
MIN_REVIEW = timedelta(days=1)
RETRY = timedelta(days=1)  # a review that cannot open now (too many open proposals) is tried again then

_decisions = Decision.__table__.c
_NEXT_REVIEW = (select(_decisions.id, _decisions.review_at)
                .where(_decisions.review_at <= bindparam("now"))
                .order_by(_decisions.review_at, _decisions.id).limit(1))


def check_delay(delay: timedelta) -> timedelta:
    """A review date is for deciding again, not for a vote in an hour: at least a day away."""
    if delay < MIN_REVIEW:
        shown = format_duration(delay)
        if "m" in shown:
            raise RuleViolation(_("A review must be at least a day after the decision; {delay} is too soon (m is "
                                  "minutes; write months as mo, like review=6mo).").format(delay=shown))
        raise RuleViolation(_("A review must be at least a day after the decision; {delay} is too soon.").format(
            delay=shown))
    return delay


def reviews_due(platforms: Platforms = None) -> Select:
    """The decision whose review date passed first (id, date) at `:now`, for the scheduler's look."""
    return scoped(_NEXT_REVIEW, _decisions.group_id, platforms)


def next_review(session: Session, platforms: Platforms = None) -> datetime | None:
    """When the next review falls due (None: none scheduled)."""
    return session.scalar(select(func.min(Decision.review_at)).where(served(Decision.group_id, platforms)))


def title_of(original: Proposal) -> str:
    return f"Keep #{original.number} {original.title.rstrip('?').rstrip()}?"


def open_review(session: Session, decision: Decision, now: datetime, settings: GroupSettings,
                details: str, electorate: list[int] = ()) -> Proposal:
    """Bring a decision back: open its "Keep #n …?" proposal and clear its review date (so it fires once).
    A secret original gets a secret review (`electorate`: the voter roll)."""
    original = session.get(Proposal, decision.proposal_id)
    review = rules.open_proposal(
        session, group_id=decision.group_id, author_id=original.author_id, title=title_of(original),
        details=details, rule=original.rule, quorum=settings.quorum, options=None, now=now,
        duration=settings.vote_duration, kind=KIND, secret=original.secret, electorate=electorate,
        review_of=original.id)
    decision.review_at = None
    return review


def postpone(decision: Decision, now: datetime) -> datetime:
    decision.review_at = now + RETRY
    return decision.review_at


def reviewed(session: Session, review: Proposal) -> tuple[Proposal, Decision]:
    """The proposal a review reconsiders, and its decision."""
    original = session.get(Proposal, review.review_of)
    return original, rules.decision_of(session, original)


def settle(session: Session, review: Proposal, carried: bool, now: datetime) -> tuple[Proposal, Decision]:
    """The review closed: keep the decision (and set its next review date) or mark it lapsed."""
    original, decision = reviewed(session, review)
    body = {"proposal": original.number, "review": review.number}
    if carried:
        if original.review_seconds:
            decision.review_at = now + timedelta(seconds=original.review_seconds)
        record.append(session, review.group_id, "decision.kept", body, now)
    else:
        decision.review_at = None
        decision.lapsed_at = now
        record.append(session, review.group_id, "decision.lapsed", body, now)
    return original, decision


def coming(session: Session, group_id: int, limit: int) -> tuple[list[tuple[Decision, Proposal]], int]:
    """The review dates to come, soonest first (at most `limit`), and how many there are in all."""
    where = (Decision.group_id == group_id, Decision.review_at.is_not(None))
    total = session.scalar(select(func.count()).select_from(Decision).where(*where))
    rows = session.execute(select(Decision, Proposal).join(Proposal, Proposal.id == Decision.proposal_id)
                           .where(*where).order_by(Decision.review_at, Decision.id).limit(limit)).all()
    return [tuple(row) for row in rows], total


def whole_log(session: Session, group_id: int) -> list[tuple[Decision, Proposal]]:
    """Every decision of the group, oldest first (for the exports)."""
    return [tuple(row) for row in session.execute(
        select(Decision, Proposal).join(Proposal, Proposal.id == Decision.proposal_id)
        .where(Decision.group_id == group_id).order_by(Decision.decided_at, Decision.id)).all()]
