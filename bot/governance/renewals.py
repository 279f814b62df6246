"""Renewal cycles: structures that are not re-affirmed lapse.

Every `renewal_every` (default a year) the group gets a renewal review: a proposal of kind
"renewal_review" listing every role and every charter clause. Each member answers with one
message (`renew keep 1 3 4 drop 2`) or taps; a later message changes only the items it names.
At the close each item is decided on its own under `charter_rule` (voting.decide_items): keep
is yes, drop is no, an item a ballot leaves out is an abstention. What is not kept ends — roles
are retired (their holders thanked), clauses removed — and the whole review is one decision.
A role defined with `sunset=6mo` gets a review of its own at that date.

The items are frozen when the review opens (`RenewalItem`), so a role added meanwhile is not
swept away by a vote that never listed it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Select, bindparam, func, select
from sqlmodel import Session

from bot.commands.args import Quorum
from bot.governance import charter, record, roles, voting
from bot.governance import proposals as rules
from bot.governance.errors import RuleViolation
from bot.governance.scope import Platforms, scoped, scoped_groups, served, served_groups
from bot.governance.settings import GroupSettings
from bot.i18n import _
from storage.models import Ballot, Group, Member, Proposal, RenewalItem, Role

KIND = "renewal_review"
MIN_WINDOW = timedelta(days=7)  # what is not kept ends: members get at least a week to answer
RETRY = timedelta(days=1)
TITLE = "Renewal review: what do we keep?"


@dataclass(frozen=True)
class Settled:
    """A renewal review decided: each item and what became of it."""

    items: list[tuple[RenewalItem, voting.ItemOutcome]]
    retired: list[tuple[Role, list[str]]]  # roles ended, with the names of the holders thanked
    charter_version: int | None  # the version that removed clauses, if any


# what is up for renewal ----------------------------------------------------------------------

def current_items(session: Session, group_id: int,
                  role: Role | None = None) -> list[tuple[int | None, int | None, str]]:
    """(role id, clause number, label): every role, then every clause; or just `role` (its sunset)."""
    if role is not None:
        return [(role.id, None, f"Role {role.name}")]
    found = [(r.id, None, f"Role {r.name}") for r in roles.active_roles(session, group_id)]
    for clause in charter.clauses(session, group_id):
        words = clause.text if len(clause.text) <= 80 else clause.text[:79] + "…"
        found.append((None, clause.number, f"Clause {clause.number}: {words}"))
    return found


def items_of(session: Session, proposal: Proposal) -> list[RenewalItem]:
    return list(session.scalars(select(RenewalItem).where(RenewalItem.proposal_id == proposal.id)
                                .order_by(RenewalItem.position)))


def open_reviews(session: Session, group_id: int) -> list[Proposal]:
    return list(session.scalars(select(Proposal).where(Proposal.group_id == group_id, Proposal.kind == KIND,
                                                       Proposal.status == rules.OPEN).order_by(Proposal.number)))


# opening ------------------------------------------------------------------------------------

def open_review(session: Session, group: Group, settings: GroupSettings, now: datetime,
                role: Role | None = None) -> Proposal | None:
    """Open a renewal review of everything (or of one role at its sunset); None: nothing to renew."""
    items = current_items(session, group.id, role)
    author = _nominal_author(session, group.id, role)
    if not items or author is None:
        return None
    title = f"Sunset: keep the role {role.name}?" if role is not None else TITLE
    proposal = rules.open_proposal(
        session, group_id=group.id, author_id=author, title=title, details=None, rule=settings.charter_rule,
        quorum=settings.quorum, options=None, now=now, duration=max(settings.vote_duration, MIN_WINDOW), kind=KIND)
    for position, (role_id, clause, label) in enumerate(items, 1):
        session.add(RenewalItem(proposal_id=proposal.id, position=position, role_id=role_id, clause=clause,
                                label=label[:255]))
    session.flush()
    record.append(session, group.id, "renewal.opened", {
        "proposal": proposal.number, "items": [label for _role, _clause, label in items]}, now)
    return proposal


def _nominal_author(session: Session, group_id: int, role: Role | None) -> int | None:
    """The bot opens renewal reviews, but a proposal needs an author: whoever defined the role at its
    sunset, otherwise the longest-standing active member (the card does not name an author)."""
    if role is not None:
        defined_by = roles.defined_by(session, role)
        if defined_by is not None:
            return defined_by
    return session.scalar(select(Member.id).where(Member.group_id == group_id, Member.active)
                          .order_by(Member.joined_at, Member.id).limit(1))


# answering ----------------------------------------------------------------------------------

def parse_marks(first: str, words: str, count: int) -> dict[int, bool]:
    """`keep`, `1 3 4 drop 2` → {1: keep, 3: keep, 4: keep, 2: drop}. Numbers may be separated by
    commas; `all` means every item; a later mention of an item wins."""
    marks: dict[int, bool] = {}
    keeping = first == "keep"
    for word in words.replace(",", " ").split():
        lowered = word.lower().lstrip("#")
        if lowered in ("keep", "drop"):
            keeping = lowered == "keep"
        elif lowered == "all":
            marks.update(dict.fromkeys(range(1, count + 1), keeping))
        elif lowered.isdigit() and lowered.isascii() and 1 <= int(lowered) <= count:
            marks[int(lowered)] = keeping
        else:
            raise RuleViolation(_("“{word}” is not an item: give item numbers from 1 to {count}, like "
                                  "renew keep 1 3 drop 2.").format(word=word[:20], count=count))
    if not marks:
        raise RuleViolation(_("Say which items: renew keep 1 3 drop 2 (items 1 to {count}), or renew keep all.").format(
            count=count))
    return marks


def answer(session: Session, proposal: Proposal, member_id: int, marks: dict[int, bool], now: datetime,
           voter: str) -> dict[int, bool]:
    """Add a member's keeps and drops to their ballot (items not named keep their earlier answer)."""
    current = rules.current_choice(session, proposal, member_id)
    merged = (voting.decode_marks(current) or {}) if current else {}
    merged.update(marks)
    rules.cast_ballot(session, proposal, member_id, voting.encode_marks(merged), None, now, voter)
    return merged


def find_review(session: Session, group_id: int, number: int | None) -> Proposal:
    if number is not None:
        proposal = rules.find(session, group_id, number)
        if proposal.kind != KIND:
            raise RuleViolation(_("#{number} is not a renewal review.").format(number=number))
        return proposal
    found = open_reviews(session, group_id)
    if not found:
        raise RuleViolation(_("No renewal review is open in this group."))
    if len(found) > 1:
        raise RuleViolation(_("Several renewal reviews are open: {reviews}. Say which: review=#{number}.").format(
            reviews=", ".join(f"#{p.number}" for p in found), number=found[0].number))
    return found[0]


# deciding ------------------------------------------------------------------------------------

def tally(session: Session, proposal: Proposal) -> list[dict[int, bool]]:
    choices = session.scalars(select(Ballot.choice).where(Ballot.proposal_id == proposal.id))
    return [voting.decode_marks(choice) or {} for choice in choices]


def decide(session: Session, proposal: Proposal, members: int) -> tuple[voting.Outcome, dict[str, int],
                                                                         list[voting.ItemOutcome]]:
    """The review's outcome (for the decision log), its counts and each item's outcome."""
    ballots = tally(session, proposal)
    items = items_of(session, proposal)
    quorum = Quorum.parse(proposal.quorum)
    decided = voting.decide_items(proposal.rule, quorum, members, ballots, [item.position for item in items])
    outcome, counts = voting.renewal_outcome(ballots, [item.label for item in items], decided, quorum, members)
    return outcome, counts, decided


def settle(session: Session, proposal: Proposal, decided: list[voting.ItemOutcome], now: datetime) -> Settled:
    """Apply the review: what was not kept ends — roles retired, clauses removed."""
    items = items_of(session, proposal)
    by_position = {item.position: item for item in items}
    pairs = [(by_position[outcome.position], outcome) for outcome in decided]
    retired: list[tuple[Role, list[str]]] = []
    for item, outcome in pairs:
        item.kept = outcome.kept
        role = session.get(Role, item.role_id) if item.role_id else None
        if role is not None and not outcome.kept and role.retired_at is None:
            names = [member.display_name for __, member in roles.holders(session, role)]
            roles.retire_role(session, role, None, now)
            retired.append((role, names))
        if role is not None and outcome.kept:
            role.sunset_at = None  # kept: it is renewed with everything else from now on
    dropped = [item.clause for item, outcome in pairs if item.clause is not None and not outcome.kept]
    version = charter.sunset(session, proposal.group_id, dropped, proposal, now) if dropped else None
    record.append(session, proposal.group_id, "renewal.settled", {
        "proposal": proposal.number,
        "kept": [item.label for item, outcome in pairs if outcome.kept],
        "ended": [item.label for item, outcome in pairs if not outcome.kept]}, now)
    return Settled(pairs, retired, version)


# when reviews fall due --------------------------------------------------------------------------

def schedule(session: Session, group: Group, settings: GroupSettings, now: datetime) -> None:
    """Set the group's next renewal review from `renewal_every` (after `set`, or when the first
    role or clause appears): one period after the last review, or from now if there was none."""
    if settings.renewal_every is None:
        group.next_renewal_at = None
        return
    last = session.scalar(select(func.max(Proposal.opened_at)).where(
        Proposal.group_id == group.id, Proposal.kind == KIND, Proposal.title == TITLE))
    group.next_renewal_at = max((last or now) + settings.renewal_every, now)


def ensure_scheduled(session: Session, group: Group, settings: GroupSettings, now: datetime) -> None:
    if group.next_renewal_at is None and settings.renewal_every is not None:
        schedule(session, group, settings, now)


def postpone(group: Group, now: datetime) -> None:
    group.next_renewal_at = now + RETRY


_groups, _roles = Group.__table__.c, Role.__table__.c
_NEXT_REVIEW = (select(_groups.id, _groups.next_renewal_at).where(_groups.next_renewal_at <= bindparam("now"))
                .order_by(_groups.next_renewal_at, _groups.id).limit(1))
_NEXT_SUNSET = (select(_roles.id, _roles.sunset_at)
                .where(_roles.sunset_at <= bindparam("now"), _roles.retired_at.is_(None))
                .order_by(_roles.sunset_at, _roles.id).limit(1))


def reviews_due(platforms: Platforms = None) -> Select:
    return scoped_groups(_NEXT_REVIEW, platforms)


def sunsets_due(platforms: Platforms = None) -> Select:
    return scoped(_NEXT_SUNSET, _roles.group_id, platforms)


def next_due(session: Session, platforms: Platforms = None) -> datetime | None:
    times = (session.scalar(select(func.min(Group.next_renewal_at)).where(served_groups(platforms))),
             session.scalar(select(func.min(Role.sunset_at)).where(Role.retired_at.is_(None),
                                                                   served(Role.group_id, platforms))))
    return min((t for t in times if t is not None), default=None)

