"""Proposals and ballots: opening, voting, withdrawing and closing, and the
decision log. Decisions themselves are made by `voting.decide`."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, delete, func, insert, select, update
from sqlmodel import Session

from bot.commands.args import Quorum
from bot.governance import voting
from storage.models import Ballot, Decision, Member, Proposal

OPEN, CLOSED, WITHDRAWN = "open", "closed", "withdrawn"
MAX_OPEN_PER_GROUP = 200


class RuleViolation(Exception):
    """The action breaks a governance rule; the message says which, and nothing changes."""


@dataclass(frozen=True)
class BallotChange:
    previous: str | None
    current: str


# The statements of the vote path, built once: building a statement costs more
# than SQLite takes to run it. They run on the session's connection, bypassing
# the ORM's unit of work (ballots are never loaded as objects on this path).
_ballots = Ballot.__table__.c
_FIND = select(Proposal).where(Proposal.group_id == bindparam("group_id"), Proposal.number == bindparam("number"))
_BALLOT_OF = select(_ballots.id, _ballots.choice).where(
    _ballots.proposal_id == bindparam("proposal_id"), _ballots.member_id == bindparam("member_id"))
_NEW_BALLOT = insert(Ballot.__table__)
_CHANGE_BALLOT = update(Ballot.__table__).where(_ballots.id == bindparam("ballot_id")).values(
    choice=bindparam("choice"), reason=bindparam("reason"), changed_at=bindparam("changed_at"))
_COUNTS = (select(_ballots.choice, func.count()).where(_ballots.proposal_id == bindparam("proposal_id"))
           .group_by(_ballots.choice))
_AUTHOR = select(Member.__table__.c.display_name).where(Member.__table__.c.id == bindparam("member_id"))


def options_of(proposal: Proposal) -> list[str] | None:
    return proposal.options.split("\n") if proposal.options else None


def find(session: Session, group_id: int, number: int) -> Proposal:
    proposal = session.scalars(_FIND, {"group_id": group_id, "number": number}).first()
    if proposal is None:
        raise RuleViolation(f"There is no proposal #{number} in this group.")
    return proposal


def open_proposal(session: Session, *, group_id: int, author_id: int, title: str, details: str | None,
                  rule: str, quorum: Quorum, options: list[str] | None, now: datetime,
                  duration: timedelta, kind: str = "decision", role_id: int | None = None,
                  subject_member_id: int | None = None, candidates: dict | None = None) -> Proposal:
    open_count = session.scalar(
        select(func.count()).select_from(Proposal).where(Proposal.group_id == group_id, Proposal.status == OPEN)
    )
    if open_count >= MAX_OPEN_PER_GROUP:
        raise RuleViolation(f"This group already has {open_count} open proposals; close some first.")
    number = (session.scalar(select(func.max(Proposal.number)).where(Proposal.group_id == group_id)) or 0) + 1
    proposal = Proposal(group_id=group_id, number=number, title=title, details=details, author_id=author_id,
                        rule=rule, quorum=str(quorum), options="\n".join(options) if options else None,
                        opened_at=now, closes_at=now + duration, kind=kind, role_id=role_id,
                        subject_member_id=subject_member_id,
                        candidates=json.dumps(candidates) if candidates else None)
    session.add(proposal)
    session.flush()
    return proposal


def resolve_choice(proposal: Proposal, words: str) -> tuple[str, str | None]:
    """What a ballot chose, and the reason after it.

    Yes/no proposals take a stance word (with aliases); choice polls take an
    option's number or its name (the longest name that starts the text)."""
    words = words.strip()
    first, _, rest = words.partition(" ")
    options = options_of(proposal)
    if not options:
        stance = voting.STANCE_ALIASES.get(first.lower())
        if stance is None:
            raise RuleViolation(f"“{first[:30]}” is not a vote; answer yes, no, abstain or block.")
        return stance, rest.strip() or None
    if first.lstrip("#").isdigit() and first.isascii():
        index = int(first.lstrip("#"))
        if not 1 <= index <= len(options):
            raise RuleViolation(f"#{proposal.number} has options 1 to {len(options)}.")
        return options[index - 1], rest.strip() or None
    if first.lower() in ("abstain", "pass"):
        return voting.ABSTAIN, rest.strip() or None
    folded = words.casefold()
    matches = [o for o in options if folded == o.casefold() or folded.startswith(o.casefold() + " ")]
    if not matches:
        listing = "; ".join(f"{n} {o}" for n, o in enumerate(options, 1))
        raise RuleViolation(f"“{first[:30]}” is not an option of #{proposal.number}: {listing}")
    chosen = max(matches, key=len)
    return chosen, words[len(chosen):].strip() or None


def cast_ballot(session: Session, proposal: Proposal, member_id: int, choice: str, reason: str | None,
                now: datetime) -> BallotChange:
    """Record or change a member's ballot; one row per member per proposal (the schema enforces it)."""
    if proposal.status != OPEN or now >= proposal.closes_at:
        raise RuleViolation(f"#{proposal.number} is {_state(proposal)}; votes are no longer accepted.")
    connection = session.connection()
    existing = connection.execute(_BALLOT_OF, {"proposal_id": proposal.id, "member_id": member_id}).first()
    if existing is None:
        connection.execute(_NEW_BALLOT, {"proposal_id": proposal.id, "member_id": member_id, "choice": choice,
                                         "reason": reason, "cast_at": now, "changed_at": now})
        return BallotChange(None, choice)
    connection.execute(_CHANGE_BALLOT, {"ballot_id": existing.id, "choice": choice, "reason": reason,
                                        "changed_at": now})
    return BallotChange(existing.choice, choice)


def retract_ballot(session: Session, proposal: Proposal, member_id: int, choice: str, now: datetime) -> bool:
    """Take back a ballot (a removed reaction) if it is still the member's current one."""
    if proposal.status != OPEN or now >= proposal.closes_at:
        return False
    result = session.execute(
        delete(Ballot).where(Ballot.proposal_id == proposal.id, Ballot.member_id == member_id,
                             Ballot.choice == choice)
    )
    return result.rowcount > 0


def counts_template(proposal: Proposal) -> dict[str, int]:
    """Every possible choice of this proposal, in display order, at zero."""
    return voting.count_ballots([], options_of(proposal))


def counts(session: Session, proposal: Proposal) -> dict[str, int]:
    rows = session.connection().execute(_COUNTS, {"proposal_id": proposal.id}).all()
    tallied = counts_template(proposal)
    for choice, number in rows:
        if choice in tallied:
            tallied[choice] = number
    return tallied


def voter_counts(session: Session, proposals: list[Proposal]) -> dict[int, int]:
    """How many ballots each proposal has, in one query (for lists)."""
    ids = [proposal.id for proposal in proposals]
    rows = session.execute(select(Ballot.proposal_id, func.count()).where(Ballot.proposal_id.in_(ids))
                           .group_by(Ballot.proposal_id)).all()
    return {proposal_id: number for proposal_id, number in rows}


def author_name(session: Session, proposal: Proposal) -> str:
    return session.connection().execute(_AUTHOR, {"member_id": proposal.author_id}).scalar() or "someone"


def ballots_with_voters(session: Session, proposal: Proposal) -> list[tuple[Ballot, Member]]:
    return [tuple(row) for row in session.execute(
        select(Ballot, Member).join(Member, Member.id == Ballot.member_id)
        .where(Ballot.proposal_id == proposal.id).order_by(Ballot.cast_at, Ballot.id)
    ).all()]


def non_voters(session: Session, proposal: Proposal) -> list[Member]:
    voted = select(Ballot.member_id).where(Ballot.proposal_id == proposal.id)
    return list(session.scalars(
        select(Member).where(Member.group_id == proposal.group_id, Member.active, Member.id.not_in(voted))
        .order_by(Member.display_name)
    ))


def withdraw(session: Session, proposal: Proposal, member_id: int, now: datetime) -> Decision:
    if proposal.author_id != member_id:
        raise RuleViolation(f"Only the author of #{proposal.number} can withdraw it.")
    _require_open(proposal)
    return _finish(session, proposal, voting.Outcome(voting.WITHDRAWN, explanation="withdrawn by its author"),
                   now, members=0, status=WITHDRAWN)


def close(session: Session, proposal: Proposal, now: datetime, members: int) -> tuple[Decision, voting.Outcome]:
    """Count and record the outcome now (deadline reached, or closed early)."""
    _require_open(proposal)
    tallied = counts(session, proposal)
    seats = json.loads(proposal.candidates)["seats"] if proposal.candidates else 1
    outcome = voting.decide(proposal.rule, Quorum.parse(proposal.quorum), members, tallied, options_of(proposal),
                            seats)
    return _finish(session, proposal, outcome, now, members, CLOSED, tallied), outcome


_proposals = Proposal.__table__.c
_NEXT_DUE = (select(_proposals.id, _proposals.closes_at)
             .where(_proposals.status == OPEN, _proposals.closes_at <= bindparam("now"))
             .order_by(_proposals.closes_at, _proposals.id).limit(1))


def next_due_id(session: Session, now: datetime) -> tuple[int, datetime] | None:
    """The proposal whose deadline passed first (id and deadline), for the scheduler's loop."""
    row = session.connection().execute(_NEXT_DUE, {"now": now}).first()
    return (row.id, row.closes_at) if row else None


def next_deadline(session: Session) -> datetime | None:
    return session.scalar(select(func.min(Proposal.closes_at)).where(Proposal.status == OPEN))


def open_in_group(session: Session, group_id: int) -> list[Proposal]:
    return list(session.scalars(
        select(Proposal).where(Proposal.group_id == group_id, Proposal.status == OPEN).order_by(Proposal.closes_at)
    ))


def decision_log(session: Session, group_id: int, limit: int) -> list[tuple[Decision, Proposal]]:
    return [tuple(row) for row in session.execute(
        select(Decision, Proposal).join(Proposal, Proposal.id == Decision.proposal_id)
        .where(Decision.group_id == group_id).order_by(Decision.decided_at.desc(), Decision.id.desc()).limit(limit)
    ).all()]


def decision_of(session: Session, proposal: Proposal) -> Decision | None:
    return session.scalars(select(Decision).where(Decision.proposal_id == proposal.id)).first()


def _finish(session: Session, proposal: Proposal, outcome: voting.Outcome, now: datetime, members: int,
            status: str, tallied: dict[str, int] | None = None) -> Decision:
    tallied = tallied if tallied is not None else counts(session, proposal)
    proposal.status, proposal.closed_at = status, now
    decision = Decision(group_id=proposal.group_id, proposal_id=proposal.id, outcome=outcome.result,
                        counts=json.dumps({"counts": tallied, "winners": list(outcome.winners),
                                           "explanation": outcome.explanation}, ensure_ascii=False),
                        voters=sum(tallied.values()), members=members, decided_at=now)
    session.add(decision)
    session.flush()
    return decision


def _require_open(proposal: Proposal) -> None:
    if proposal.status != OPEN:
        raise RuleViolation(f"#{proposal.number} is already {_state(proposal)}.")


def _state(proposal: Proposal) -> str:
    return {OPEN: "closing now", CLOSED: "closed", WITHDRAWN: "withdrawn"}[proposal.status]
