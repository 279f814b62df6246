"""Proposals and ballots: opening, voting, withdrawing and closing, and the
decision log. Decisions themselves are made by `voting.decide`."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Select, bindparam, delete, func, insert, select, update
from sqlmodel import Session

from bot.commands.args import Quorum
from bot.governance import record, secrecy, voting
from bot.governance.errors import RuleViolation
from bot.governance.scope import Platforms, scoped, served
from bot.i18n import N_, _, ngettext
from storage.models import Ballot, Decision, Member, Proposal, VoterRoll

OPEN, CLOSED, WITHDRAWN = "open", "closed", "withdrawn"
PLAIN, RANKED = "plain", "ranked"
MAX_OPEN_PER_GROUP = 200
RANK_SEPARATOR = ">"  # a ranked ballot is stored as option numbers: "3>1>2"


@dataclass(frozen=True)
class BallotChange:
    previous: str | None
    current: str | None


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
        raise RuleViolation(_("There is no proposal #{number} in this group.").format(number=number))
    return proposal


def open_proposal(session: Session, *, group_id: int, author_id: int, title: str, details: str | None,
                  rule: str, quorum: Quorum, options: list[str] | None, now: datetime,
                  duration: timedelta, kind: str = "decision", role_id: int | None = None,
                  subject_member_id: int | None = None, candidates: dict | None = None, secret: bool = False,
                  method: str = PLAIN, electorate: list[int] = (), review: timedelta | None = None,
                  review_of: int | None = None, question_id: int | None = None,
                  federation_id: int | None = None) -> Proposal:
    """Open a vote; a secret one gets its ballot box and a voter roll of `electorate`. `review`: if it
    passes, the decision comes back after that long; `review_of`: the proposal (id) a review reconsiders;
    `question_id`: this group's copy of a federation's shared question; `federation_id`: the federation
    a join or leave is about."""
    if method == RANKED and not options:
        raise RuleViolation(_('A ranked poll needs options to rank: options="A; B; C".'))
    open_count = session.scalar(
        select(func.count()).select_from(Proposal).where(Proposal.group_id == group_id, Proposal.status == OPEN)
    )
    if open_count >= MAX_OPEN_PER_GROUP:
        raise RuleViolation(ngettext("This group already has {count} open proposal; close some first.",
                                     "This group already has {count} open proposals; close some first.",
                                     open_count).format(count=open_count))
    number = (session.scalar(select(func.max(Proposal.number)).where(Proposal.group_id == group_id)) or 0) + 1
    proposal = Proposal(group_id=group_id, number=number, title=title, details=details, author_id=author_id,
                        rule=rule, quorum=str(quorum), options="\n".join(options) if options else None,
                        opened_at=now, closes_at=now + duration, kind=kind, role_id=role_id,
                        subject_member_id=subject_member_id,
                        candidates=json.dumps(candidates) if candidates else None, secret=secret, method=method,
                        review_seconds=int(review.total_seconds()) if review else None, review_of=review_of,
                        question_id=question_id, federation_id=federation_id)
    session.add(proposal)
    session.flush()
    if secret:
        secrecy.open_roll(session, proposal, list(electorate))
    _log_opened(session, proposal, now)
    if method == RANKED:  # its ties are broken by a lottery members can add randomness to while they vote
        from bot.governance import draws  # draws builds on roles, which builds on this module
        draws.open_tie(session, proposal, options, now)
    return proposal


def seats_of(proposal: Proposal) -> int:
    return json.loads(proposal.candidates)["seats"] if proposal.candidates else 1


# The group log (bot.governance.record): what each event adds, enough to recount every open vote.

def _log_opened(session: Session, proposal: Proposal, now: datetime) -> None:
    review_of = session.get(Proposal, proposal.review_of).number if proposal.review_of else None
    record.append(session, proposal.group_id, "proposal.opened", {
        "proposal": proposal.number, "title": proposal.title, "details": proposal.details,
        "author": author_name(session, proposal), "author_id": proposal.author_id, "rule": proposal.rule,
        "quorum": proposal.quorum, "options": options_of(proposal), "method": proposal.method,
        "secret": proposal.secret, "kind": proposal.kind, "seats": seats_of(proposal),
        "closes_at": record.stamp(proposal.closes_at), "review": proposal.review_seconds, "review_of": review_of,
    }, now)


def _log_ballot(session: Session, proposal: Proposal, member_id: int, choice: str | None, reason: str | None,
                now: datetime, voter: str | None = None) -> None:
    """An open ballot cast, changed or (choice None) taken back. Secret ballots are never logged one
    by one: their order would link them to the voters; the box goes in at the close. `voter`: the
    member's name when the caller has it (a vote spares a query)."""
    voter = voter or session.connection().execute(_AUTHOR, {"member_id": member_id}).scalar()
    body = {"proposal": proposal.number, "member_id": member_id, "member": voter}
    if choice is None:
        record.append(session, proposal.group_id, "ballot.retracted", body, now)
    else:
        record.append(session, proposal.group_id, "ballot.cast", {**body, "choice": choice, "reason": reason}, now)


def _log_closed(session: Session, proposal: Proposal, decision: Decision, data: dict) -> None:
    secret = proposal.secret and proposal.status == CLOSED
    record.append(session, proposal.group_id, "proposal.closed", {
        "proposal": proposal.number, "status": proposal.status, "outcome": decision.outcome,
        "counts": data["counts"], "winners": data["winners"], "explanation": data["explanation"],
        "voters": decision.voters, "members": decision.members, "rule": proposal.rule, "quorum": proposal.quorum,
        "options": options_of(proposal), "method": proposal.method, "seats": seats_of(proposal),
        "secret": proposal.secret, "count": data.get("count"),
        "ballots": [list(b) for b in secrecy.sealed_ballots(session, proposal)] if secret else None,
        "voter_names": [m.display_name for m in secrecy.voters(session, proposal)] if secret else None,
    }, decision.decided_at)


def is_ranked(proposal: Proposal) -> bool:
    return proposal.method == RANKED


def resolve_ranking(proposal: Proposal, words: str) -> str:
    """A ranking typed as option numbers or names, best first ("3 1 2", "Chess > Go"), as stored."""
    options = options_of(proposal)
    rest = words.replace(RANK_SEPARATOR, " ").replace(",", " ").strip()
    if rest.lower() in ("abstain", "pass"):
        return voting.ABSTAIN
    ranking: list[int] = []
    while rest:
        number, rest = _next_option(proposal, options, rest)
        if number in ranking:
            raise RuleViolation(_("“{option}” is ranked twice; rank each option once.").format(
                option=options[number - 1][:30]))
        ranking.append(number)
        rest = rest.strip()
    if not ranking:
        raise RuleViolation(_("Rank the options of #{number}, best first: for example vote {number} 2 1 3.").format(
            number=proposal.number))
    return encode_ranking(ranking)


def _next_option(proposal: Proposal, options: list[str], text: str) -> tuple[int, str]:
    """The option `text` starts with (its number, or the longest name that starts it) and the rest."""
    first, __, rest = text.partition(" ")
    if first.lstrip("#").isdigit() and first.isascii():
        number = int(first.lstrip("#"))
        if not 1 <= number <= len(options):
            raise RuleViolation(_("#{number} has options 1 to {last}.").format(number=proposal.number,
                                                                             last=len(options)))
        return number, rest
    folded = text.casefold()
    matches = [n for n, o in enumerate(options, 1) if folded == o.casefold() or folded.startswith(o.casefold() + " ")]
    if not matches:
        listing = "; ".join(f"{n} {o}" for n, o in enumerate(options, 1))
        raise RuleViolation(_("“{word}” is not an option of #{number}: {options}").format(
            word=first[:30], number=proposal.number, options=listing))
    number = max(matches, key=lambda n: len(options[n - 1]))
    return number, text[len(options[number - 1]):]


def encode_ranking(numbers: list[int]) -> str:
    return RANK_SEPARATOR.join(map(str, numbers)) if numbers else voting.ABSTAIN


def ranking_of(choice: str) -> list[int]:
    return [] if choice == voting.ABSTAIN else [int(n) for n in choice.split(RANK_SEPARATOR)]


def tapped_ranking(proposal: Proposal, current: str | None, tap: str) -> str | None:
    """One tap on a ranked poll: "+2" ranks option 2 next, "undo" takes the last back,
    "clear" starts again (None: no ballot left)."""
    ranking = ranking_of(current) if current else []
    if tap == "clear":
        return None
    if tap == "undo":
        return encode_ranking(ranking[:-1]) if len(ranking) > 1 else None
    number = int(tap[1:]) if tap[1:].isdigit() else 0
    if not 1 <= number <= len(options_of(proposal)):
        raise RuleViolation(_("#{number} has options 1 to {last}.").format(number=proposal.number,
                                                                         last=len(options_of(proposal))))
    if number in ranking:
        raise RuleViolation(_("You ranked {option} already; undo or clear to change.").format(
            option=options_of(proposal)[number - 1][:40]))
    return encode_ranking([*ranking, number])


def describe_choice(proposal: Proposal, choice: str) -> str:
    """A stored choice in words: a ranking reads "Chess > Go > Bridge"."""
    if not is_ranked(proposal) or choice == voting.ABSTAIN:
        return choice
    options = options_of(proposal)
    return " > ".join(options[n - 1] for n in ranking_of(choice))


def resolve_choice(proposal: Proposal, words: str) -> tuple[str, str | None]:
    """What a ballot chose, and the reason after it.

    Yes/no proposals take a stance word (with aliases); choice polls take an
    option's number or its name (the longest name that starts the text)."""
    words = words.strip()
    first, __, rest = words.partition(" ")
    options = options_of(proposal)
    if not options:
        stance = voting.STANCE_ALIASES.get(first.lower())
        if stance is None:
            raise RuleViolation(_("“{word}” is not a vote; answer yes, no, abstain or block.").format(word=first[:30]))
        return stance, rest.strip() or None
    if first.lower() in ("abstain", "pass"):
        return voting.ABSTAIN, rest.strip() or None
    number, rest = _next_option(proposal, options, words)
    return options[number - 1], rest.strip() or None


def cast_ballot(session: Session, proposal: Proposal, member_id: int, choice: str | None, reason: str | None,
                now: datetime, voter: str | None = None) -> BallotChange:
    """Record or change a member's open ballot; one row per member per proposal (the schema
    enforces it). choice=None takes the ballot back (a cleared ranking)."""
    _require_voting(proposal, now)
    connection = session.connection()
    existing = connection.execute(_BALLOT_OF, {"proposal_id": proposal.id, "member_id": member_id}).first()
    if choice is None:
        if existing is not None:
            connection.execute(delete(Ballot.__table__).where(_ballots.id == existing.id))
            _log_ballot(session, proposal, member_id, None, None, now, voter)
        return BallotChange(existing and existing.choice, None)
    if existing is None:
        connection.execute(_NEW_BALLOT, {"proposal_id": proposal.id, "member_id": member_id, "choice": choice,
                                         "reason": reason, "cast_at": now, "changed_at": now})
    else:
        connection.execute(_CHANGE_BALLOT, {"ballot_id": existing.id, "choice": choice, "reason": reason,
                                            "changed_at": now})
    _log_ballot(session, proposal, member_id, choice, reason, now, voter)
    return BallotChange(existing and existing.choice, choice)


def current_choice(session: Session, proposal: Proposal, member_id: int) -> str | None:
    row = session.connection().execute(_BALLOT_OF, {"proposal_id": proposal.id, "member_id": member_id}).first()
    return row and row.choice


def cast_secret(session: Session, proposal: Proposal, member_id: int, choice: str, receipt: str | None,
                now: datetime) -> secrecy.Cast:
    _require_voting(proposal, now)
    return secrecy.cast(session, proposal, member_id, choice, receipt)


def _require_voting(proposal: Proposal, now: datetime) -> None:
    if proposal.status != OPEN or now >= proposal.closes_at:
        raise RuleViolation(_(_NOT_VOTING[proposal.status]).format(number=proposal.number))


def retract_ballot(session: Session, proposal: Proposal, member_id: int, choice: str, now: datetime) -> bool:
    """Take back a ballot (a removed reaction) if it is still the member's current one."""
    if proposal.status != OPEN or now >= proposal.closes_at or proposal.secret:
        return False
    if is_ranked(proposal):  # a removed number reaction takes that option out of the ranking
        current = current_choice(session, proposal, member_id)
        number = int(choice[1:]) if choice.startswith("+") and choice[1:].isdigit() else 0
        if current is None or number not in ranking_of(current):
            return False
        kept = [n for n in ranking_of(current) if n != number]
        cast_ballot(session, proposal, member_id, encode_ranking(kept) if kept else None, None, now)
        return True
    result = session.execute(
        delete(Ballot).where(Ballot.proposal_id == proposal.id, Ballot.member_id == member_id,
                             Ballot.choice == choice)
    )
    if result.rowcount:
        _log_ballot(session, proposal, member_id, None, None, now)
    return result.rowcount > 0


def counts_template(proposal: Proposal) -> dict[str, int]:
    """Every possible choice of this proposal, in display order, at zero."""
    return voting.count_ballots([], options_of(proposal))


def counts(session: Session, proposal: Proposal) -> dict[str, int]:
    """Ballots per choice (a ranked poll: per first preference)."""
    tallied = counts_template(proposal)
    if proposal.secret:
        rows = Counter(secrecy.choices(session, proposal)).items()
    else:
        rows = session.connection().execute(_COUNTS, {"proposal_id": proposal.id}).all()
    for choice, number in rows:
        label = _first_preference(proposal, choice)
        if label in tallied:
            tallied[label] += number
    return tallied


def _first_preference(proposal: Proposal, choice: str) -> str:
    if not is_ranked(proposal) or choice == voting.ABSTAIN:
        return choice
    return options_of(proposal)[ranking_of(choice)[0] - 1]


def all_choices(session: Session, proposal: Proposal) -> list[str]:
    """Every ballot's choice; a secret ballot's come from its box, with nobody attached."""
    if proposal.secret:
        return secrecy.choices(session, proposal)
    return list(session.scalars(select(Ballot.choice).where(Ballot.proposal_id == proposal.id)))


def voter_counts(session: Session, proposals: list[Proposal]) -> dict[int, int]:
    """How many have voted on each proposal, in one query per kind (for lists)."""
    ids = [proposal.id for proposal in proposals if not proposal.secret]
    rows = session.execute(select(Ballot.proposal_id, func.count()).where(Ballot.proposal_id.in_(ids))
                           .group_by(Ballot.proposal_id)).all()
    found = {proposal_id: number for proposal_id, number in rows}
    found.update(secrecy.voted_count(session, [proposal.id for proposal in proposals if proposal.secret]))
    return found


def author_name(session: Session, proposal: Proposal) -> str:
    return session.connection().execute(_AUTHOR, {"member_id": proposal.author_id}).scalar() or "someone"


def ballots_with_voters(session: Session, proposal: Proposal) -> list[tuple[Ballot, Member]]:
    return [tuple(row) for row in session.execute(
        select(Ballot, Member).join(Member, Member.id == Ballot.member_id)
        .where(Ballot.proposal_id == proposal.id).order_by(Ballot.cast_at, Ballot.id)
    ).all()]


def non_voters(session: Session, proposal: Proposal) -> list[Member]:
    if proposal.secret:
        voted = select(VoterRoll.member_id).where(VoterRoll.proposal_id == proposal.id, VoterRoll.voted)
        return list(session.scalars(
            select(Member).where(Member.group_id == proposal.group_id, Member.active, Member.id.not_in(voted))
            .order_by(Member.display_name)))
    voted = select(Ballot.member_id).where(Ballot.proposal_id == proposal.id)
    return list(session.scalars(
        select(Member).where(Member.group_id == proposal.group_id, Member.active, Member.id.not_in(voted))
        .order_by(Member.display_name)
    ))


def withdraw(session: Session, proposal: Proposal, member_id: int, now: datetime) -> Decision:
    if proposal.author_id != member_id:
        raise RuleViolation(_("Only the author of #{number} can withdraw it.").format(number=proposal.number))
    if proposal.kind == "review":  # withdrawn, it would leave the decision in force and never back
        raise RuleViolation(_("#{number} reviews an earlier decision; it cannot be withdrawn and closes at "
                              "its deadline.").format(number=proposal.number))
    if proposal.kind == "renewal_review":  # withdrawn, everything would stay without being renewed
        raise RuleViolation(_("#{number} is the group's renewal review; it cannot be withdrawn and closes "
                              "at its deadline.").format(number=proposal.number))
    _require_open(proposal)
    if proposal.kind == "charter":  # its clause is free to be amended again
        from bot.governance import charter  # the charter builds on this module
        charter.amendment_of(session, proposal).is_open = False
    return _finish(session, proposal, voting.Outcome(voting.WITHDRAWN, explanation="withdrawn by its author"),
                   now, members=0, status=WITHDRAWN)


def close(session: Session, proposal: Proposal, now: datetime, members: int) -> tuple[Decision, voting.Outcome]:
    """Count and record the outcome now (deadline reached, or closed early)."""
    _require_open(proposal)
    tallied = counts(session, proposal)
    seats = seats_of(proposal)
    quorum = Quorum.parse(proposal.quorum)
    if is_ranked(proposal):
        rankings = [[options_of(proposal)[n - 1] for n in ranking_of(choice)]
                    for choice in all_choices(session, proposal)]
        from bot.governance import draws  # draws builds on roles, which builds on this module
        seed = draws.tie_seed(session, proposal, options_of(proposal), now)  # revealed now, logged before the close
        outcome, count = voting.decide_ranked(quorum, members, rankings, options_of(proposal), seats, seed=seed)
        return _finish(session, proposal, outcome, now, members, CLOSED, tallied, count), outcome
    outcome = voting.decide(proposal.rule, quorum, members, tallied, options_of(proposal), seats)
    return _finish(session, proposal, outcome, now, members, CLOSED, tallied), outcome


def close_counted(session: Session, proposal: Proposal, outcome: voting.Outcome, tallied: dict[str, int],
                  now: datetime, members: int) -> Decision:
    """Close with an outcome counted elsewhere (a renewal review decides item by item)."""
    _require_open(proposal)
    return _finish(session, proposal, outcome, now, members, CLOSED, tallied)


_proposals = Proposal.__table__.c
_NEXT_DUE = (select(_proposals.id, _proposals.closes_at)
             .where(_proposals.status == OPEN, _proposals.closes_at <= bindparam("now"))
             .order_by(_proposals.closes_at, _proposals.id).limit(1))


def closing_due(platforms: Platforms = None) -> Select:
    """The proposal whose deadline passed first (id, deadline) at `:now`, for the scheduler's look."""
    return scoped(_NEXT_DUE, _proposals.group_id, platforms)


def next_deadline(session: Session, platforms: Platforms = None) -> datetime | None:
    return session.scalar(select(func.min(Proposal.closes_at)).where(Proposal.status == OPEN,
                                                                     served(Proposal.group_id, platforms)))


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
            status: str, tallied: dict[str, int] | None = None, count: dict | None = None) -> Decision:
    tallied = tallied if tallied is not None else counts(session, proposal)
    proposal.status, proposal.closed_at = status, now
    data = {"counts": tallied, "winners": list(outcome.winners), "explanation": outcome.explanation}
    if count is not None:  # a ranked count, round by round
        data["count"] = count
    decision = Decision(group_id=proposal.group_id, proposal_id=proposal.id, outcome=outcome.result,
                        counts=json.dumps(data, ensure_ascii=False),
                        voters=sum(tallied.values()), members=members, decided_at=now)
    if status == CLOSED and outcome.carried and proposal.review_seconds:
        decision.review_at = now + timedelta(seconds=proposal.review_seconds)
    session.add(decision)
    session.flush()
    _log_closed(session, proposal, decision, data)
    return decision


def _require_open(proposal: Proposal) -> None:
    if proposal.status != OPEN:
        raise RuleViolation(_(_ALREADY[proposal.status]).format(number=proposal.number))


# Refusals by the proposal's status (whole sentences, so each can be translated as one).
_NOT_VOTING = {OPEN: N_("#{number} is closing now; votes are no longer accepted."),
               CLOSED: N_("#{number} is closed; votes are no longer accepted."),
               WITHDRAWN: N_("#{number} is withdrawn; votes are no longer accepted.")}
_ALREADY = {CLOSED: N_("#{number} is already closed."), WITHDRAWN: N_("#{number} is already withdrawn.")}
