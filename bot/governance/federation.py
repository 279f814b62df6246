"""Federations of groups: which groups federate, and the questions, needs and delegates they share.

A federation decides nothing by itself: a shared question is decided in each group by its own
rule and quorum, and the federation's outcome only counts the groups.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NamedTuple

from sqlalchemy import func, select
from sqlmodel import Session

from bot import i18n
from bot.actions import Action, SendMessage
from bot.events import UserRef
from bot.governance import codes, record, roles
from bot.governance.errors import RuleViolation
from bot.governance.proposals import OPEN, open_proposal
from bot.governance.settings import GROUP_RULES, GroupSettings
from bot.governance.voting import CHOSEN, PASSED
from bot.i18n import _
from bot.render.text import RichText
from storage.models import (
    Decision,
    Federation,
    FederationGroup,
    FederationQuestion,
    Group,
    Mandate,
    Member,
    Proposal,
    Role,
)


def federation_of(session: Session, group_id: int) -> Federation | None:
    """The federation the group belongs to (a group is in one at most)."""
    place = session.get(FederationGroup, group_id)
    return None if place is None else session.get(Federation, place.federation_id)


def member_groups(session: Session, federation_id: int) -> list[Group]:
    """The federation's groups, in the order they joined."""
    return list(session.scalars(
        select(Group).join(FederationGroup, FederationGroup.group_id == Group.id)
        .where(FederationGroup.federation_id == federation_id)
        .order_by(FederationGroup.joined_at, Group.id)))


def other_groups(session: Session, group_id: int) -> list[Group]:
    """The other groups of the group's federation (none when it is in no federation)."""
    federation = federation_of(session, group_id)
    if federation is None:
        return []
    return [group for group in member_groups(session, federation.id) if group.id != group_id]


def create(session: Session, name: str, founder_group_id: int, now: datetime) -> Federation:
    """A new federation with its founding group in it."""
    federation = Federation(name=name, created_at=now)
    session.add(federation)
    session.flush()
    join(session, federation.id, founder_group_id, now)
    return federation


def join(session: Session, federation_id: int, group_id: int, now: datetime) -> None:
    session.add(FederationGroup(group_id=group_id, federation_id=federation_id, joined_at=now))
    session.flush()


# forming -------------------------------------------------------------------------

CODE_PURPOSE = "federation"
CODE_LIFETIME = timedelta(days=7)
MAX_NAME = 120
MAX_MANDATE = 1000
JOIN, LEAVE, MANDATE = "federation-join", "federation-leave", "mandate"  # the proposals' kinds
ADOPTED, NOT_ADOPTED = "adopted", "not adopted"  # a shared question's outcome (stored; shown translated)


def group_name(group: Group) -> str:
    return group.title or f"#{group.id}"


def clean_name(name: str) -> str:
    """A federation's name: one line, not empty, bounded (shown in every member group)."""
    name = " ".join(name.split())
    if not name:
        raise RuleViolation(_("Give the federation a name, like: federation create River valley commons."))
    if len(name) > MAX_NAME:
        raise RuleViolation(_("A federation's name can be at most {limit} characters; this one has {length}.").format(
            limit=MAX_NAME, length=i18n.number(len(name))))
    return name


def found(session: Session, name: str, group_id: int, now: datetime) -> Federation:
    """`federation create`: a new federation with this group in it (a group is in one at most)."""
    _require_unfederated(session, group_id)
    federation = create(session, clean_name(name), group_id, now)
    record.append(session, group_id, "federation.created", {"federation": federation.id, "name": federation.name},
                  now)
    return federation


def _require_unfederated(session: Session, group_id: int) -> None:
    current = federation_of(session, group_id)
    if current is not None:
        raise RuleViolation(_("This group is already in the federation {name}; a group is in one federation at "
                              "most (federation leave first).").format(name=current.name))


def require_federation(session: Session, group_id: int) -> Federation:
    federation = federation_of(session, group_id)
    if federation is None:
        raise RuleViolation(_("This group is in no federation. Create one with federation create <name>, or join "
                              "one with federation join <join-code> (a member group gives the code)."))
    return federation


def new_code(session: Session, federation: Federation, group_id: int, platform: str, user_id: str,
             now: datetime) -> str:
    """A join code, shown once. It works for a week, for any number of groups (each still decides by
    its own vote), so it is never used up."""
    return codes.issue(session, CODE_PURPOSE, UserRef(platform=platform, user_id=user_id), now, CODE_LIFETIME,
                       group_id=group_id, federation_id=federation.id)


def federation_for_code(session: Session, code: str, now: datetime) -> Federation:
    return session.get(Federation, codes.redeem(session, CODE_PURPOSE, code, now, once=False).federation_id)


def open_of_kind(session: Session, group_id: int, kind: str) -> Proposal | None:
    return session.scalars(select(Proposal).where(Proposal.group_id == group_id, Proposal.kind == kind,
                                                  Proposal.status == OPEN)).first()


def _refuse_if_open(session: Session, group_id: int, kind: str) -> None:
    existing = open_of_kind(session, group_id, kind)
    if existing is not None:
        raise RuleViolation(_("#{number} is already open for this; vote there.").format(number=existing.number))


def open_join(session: Session, group_id: int, author_id: int, code: str, settings: GroupSettings,
              now: datetime) -> Proposal:
    """`federation join <join-code>`: the group decides by its own rule whether to join."""
    _require_unfederated(session, group_id)
    _refuse_if_open(session, group_id, JOIN)
    federation = federation_for_code(session, code, now)
    names = ", ".join(group_name(group) for group in member_groups(session, federation.id)) or "—"
    return open_proposal(
        session, group_id=group_id, author_id=author_id,
        title=_("Join the federation {name}").format(name=federation.name),
        details=_("Its groups: {groups}. Shared proposals would then come to this group too, each decided here "
                  "by our own rule and quorum.").format(groups=names),
        rule=settings.rule, quorum=settings.quorum, options=None, now=now, duration=settings.vote_duration,
        kind=JOIN, federation_id=federation.id)


def open_leave(session: Session, group_id: int, author_id: int, settings: GroupSettings,
               now: datetime) -> Proposal:
    """`federation leave`: leaving is a group decision too."""
    federation = require_federation(session, group_id)
    _refuse_if_open(session, group_id, LEAVE)
    return open_proposal(
        session, group_id=group_id, author_id=author_id,
        title=_("Leave the federation {name}").format(name=federation.name), details=None,
        rule=settings.rule, quorum=settings.quorum, options=None, now=now, duration=settings.vote_duration,
        kind=LEAVE, federation_id=federation.id)


def settle_join(session: Session, proposal: Proposal, now: datetime) -> Federation | None:
    """A join that passed: the group joins (None when it is in a federation by now)."""
    if federation_of(session, proposal.group_id) is not None:
        return None
    federation = session.get(Federation, proposal.federation_id)
    join(session, federation.id, proposal.group_id, now)
    joining = session.get(Group, proposal.group_id)
    for group in member_groups(session, federation.id):
        record.append(session, group.id, "federation.joined", {
            "federation": federation.id, "name": federation.name, "group": group_name(joining),
            "decision": proposal.number if group.id == joining.id else None}, now)
    return federation


def settle_leave(session: Session, proposal: Proposal, now: datetime) -> tuple[Federation, list[Group]] | None:
    """A leave that passed: the group leaves; the groups that stay (None when it had left already)."""
    place = session.get(FederationGroup, proposal.group_id)
    if place is None or place.federation_id != proposal.federation_id:
        return None
    federation = session.get(Federation, place.federation_id)
    session.delete(place)
    session.flush()
    leaving = session.get(Group, proposal.group_id)
    staying = member_groups(session, federation.id)
    for group in [leaving, *staying]:
        record.append(session, group.id, "federation.left", {
            "federation": federation.id, "name": federation.name, "group": group_name(leaving),
            "decision": proposal.number if group.id == leaving.id else None}, now)
    return federation, staying


def rule_in_force(session: Session, federation_id: int, settings_of: Callable[[int], GroupSettings]) -> str:
    """The strictest `federation_rule` any member group chose: no group is bound by a looser rule
    than its own."""
    chosen = [settings_of(group.id).federation_rule for group in member_groups(session, federation_id)]
    return max(chosen, key=GROUP_RULES.index, default=GROUP_RULES[0])


def adopted(rule: str, groups_for: int, groups_total: int) -> bool:
    if groups_total == 0:
        return False
    if rule == "consensus":
        return groups_for == groups_total
    if rule == "two-thirds":
        return 3 * groups_for >= 2 * groups_total
    return 2 * groups_for > groups_total


# messages to the federation's groups ------------------------------------------------

@dataclass(frozen=True)
class Notice:
    """Something said in one group of a federation, because of what happened in another (or the
    same) group: recorded in the outbox under `key`, once, by whoever holds the transaction."""

    key: str
    group_id: int
    action: Action


def tell(groups: list[Group], key: str, language_of: Callable[[int], str], chat_of,
         write: Callable[[Group], RichText]) -> list[Notice]:
    """The same news for each group, written in that group's language."""
    notices = []
    for group in groups:
        with i18n.speaking(language_of(group.id)):
            text = write(group)
        notices.append(Notice(f"{key}:{group.id}", group.id, SendMessage(chat=chat_of(group), text=text)))
    return notices


# shared questions --------------------------------------------------------------------

def open_question(session: Session, *, origin_group_id: int, author_id: int, title: str, details: str | None,
                  duration: timedelta, secret: bool, review: timedelta | None, now: datetime,
                  settings_of: Callable[[int], GroupSettings],
                  electorate_of: Callable[[int], list[int]]) -> tuple[FederationQuestion, list[Proposal]]:
    """`propose … share=federation`: one question, one proposal in every member group (the origin's
    first), each with that group's own rule and quorum and the same deadline. The author is the
    origin's member in every copy: only there can they withdraw or close it (member ids are per group)."""
    federation = require_federation(session, origin_group_id)
    groups = sorted(member_groups(session, federation.id), key=lambda group: group.id != origin_group_id)
    question = FederationQuestion(federation_id=federation.id, origin_group_id=origin_group_id, title=title,
                                  rule=rule_in_force(session, federation.id, settings_of), opened_at=now)
    session.add(question)
    session.flush()
    origin = groups[0]
    copies = []
    for group in groups:
        settings = settings_of(group.id)
        copy = open_proposal(
            session, group_id=group.id, author_id=author_id, title=title, details=details, rule=settings.rule,
            quorum=settings.quorum, options=None, now=now, duration=duration, secret=secret,
            electorate=electorate_of(group.id) if secret else (), review=review, question_id=question.id)
        record.append(session, group.id, "federation.question.opened", {
            "question": question.id, "federation": federation.name, "origin": group_name(origin),
            "proposal": copy.number, "groups": len(groups), "rule": question.rule}, now)
        copies.append(copy)
    return question, copies


class SharedView(NamedTuple):
    """What a copy's card says about the question it belongs to."""

    question: FederationQuestion
    federation: Federation
    origin: Group
    groups: int  # how many groups got the question
    delegates: list[Delegate]


def shared_view(session: Session, proposal: Proposal) -> SharedView | None:
    if proposal.question_id is None:
        return None
    question = session.get(FederationQuestion, proposal.question_id)
    federation = session.get(Federation, question.federation_id)
    copies = session.scalar(select(func.count()).select_from(Proposal).where(Proposal.question_id == question.id))
    return SharedView(question, federation, session.get(Group, question.origin_group_id), copies,
                      delegates(session, federation.id))


class Copy(NamedTuple):
    proposal: Proposal
    group: Group
    outcome: str  # the copy's decision (withdrawn included)
    carried: bool


def settle_question(session: Session, proposal: Proposal,
                    now: datetime) -> tuple[FederationQuestion, list[Copy]] | None:
    """After a copy closed (or was withdrawn): if no copy is open any more, the federation's outcome,
    decided now from the database, once. The question's row is locked first, so two copies closing
    at the same moment cannot both see the other still open and leave it undecided."""
    if proposal.question_id is None:
        return None
    session.flush()
    question = session.get(FederationQuestion, proposal.question_id, with_for_update=True, populate_existing=True)
    if question.decided_at is not None:
        return None
    proposals = list(session.scalars(select(Proposal).where(Proposal.question_id == question.id)
                                     .order_by(Proposal.id)))
    if any(copy.status == OPEN for copy in proposals):
        return None
    outcomes = dict(session.execute(select(Decision.proposal_id, Decision.outcome)
                                    .where(Decision.proposal_id.in_([copy.id for copy in proposals]))).all())
    copies = [Copy(copy, session.get(Group, copy.group_id), outcomes.get(copy.id, ""),
                   outcomes.get(copy.id) in (PASSED, CHOSEN)) for copy in proposals]
    question.groups_for = sum(copy.carried for copy in copies)
    question.groups_total = len(copies)
    question.outcome = ADOPTED if adopted(question.rule, question.groups_for, question.groups_total) else NOT_ADOPTED
    question.decided_at = now
    for copy in copies:
        record.append(session, copy.group.id, "federation.question.decided", {
            "question": question.id, "proposal": copy.proposal.number, "title": question.title,
            "outcome": question.outcome, "groups_for": question.groups_for, "groups_total": question.groups_total,
            "rule": question.rule, "groups": {group_name(c.group): c.outcome for c in copies}}, now)
    return question, copies


# delegates ---------------------------------------------------------------------------

class Delegate(NamedTuple):
    """A group's delegate seat as the federation sees it: the role (None: the group has none), who
    holds it now, and the mandate they carry (none while nobody holds the seat)."""

    group: Group
    role: Role | None
    holders: list[Member]

    @property
    def mandate(self) -> str | None:
        return self.role.mandate if self.role is not None and self.holders else None


def delegate_role(session: Session, group_id: int) -> Role | None:
    return session.scalars(select(Role).where(Role.group_id == group_id, Role.delegate,
                                              Role.retired_at.is_(None))).first()


def delegates(session: Session, federation_id: int) -> list[Delegate]:
    """The delegate seats of the federation's groups (groups without a delegate role have none), in two
    queries whatever the federation's size: every shared card shows them, and each vote redraws it."""
    seats: dict[int, tuple[Role, Group]] = {}
    for role, group in session.execute(
            select(Role, Group).join(FederationGroup, FederationGroup.group_id == Role.group_id)
            .join(Group, Group.id == Role.group_id)
            .where(FederationGroup.federation_id == federation_id, Role.delegate, Role.retired_at.is_(None))
            .order_by(FederationGroup.joined_at, Group.id, Role.id)):
        seats.setdefault(group.id, (role, group))
    holding: dict[int, list[Member]] = {}
    if seats:
        held = (select(Mandate.role_id, Member).join(Member, Member.id == Mandate.member_id)
                .where(Mandate.role_id.in_([role.id for role, __ in seats.values()]), Mandate.ended_at.is_(None))
                .order_by(Mandate.seat))
        for role_id, member in session.execute(held):
            holding.setdefault(role_id, []).append(member)
    return [Delegate(group, role, holding.get(role.id, [])) for role, group in seats.values()]


def require_delegate_role(session: Session, group_id: int) -> Role:
    role = delegate_role(session, group_id)
    if role is None:
        raise RuleViolation(_("This group has no delegate role. Define one first, like: role add delegate term=90d "
                              "delegate=yes"))
    return role


def open_mandate(session: Session, group_id: int, author_id: int, text: str, settings: GroupSettings,
                 now: datetime) -> Proposal:
    """`mandate <text>`: the group decides what its delegate carries to the federation."""
    role = require_delegate_role(session, group_id)
    text = text.strip()
    if len(text) > MAX_MANDATE:
        raise RuleViolation(_("Keep the mandate under {count} characters.").format(count=i18n.number(MAX_MANDATE)))
    existing = roles.open_role_proposal(session, role, MANDATE)
    if existing is not None:
        raise RuleViolation(_("#{number} is already open for this; vote there.").format(number=existing.number))
    federation = federation_of(session, group_id)
    return open_proposal(
        session, group_id=group_id, author_id=author_id,
        title=_("Mandate for our delegate ({role})").format(role=role.name), details=text, rule=settings.rule,
        quorum=settings.quorum, options=None, now=now, duration=settings.vote_duration, kind=MANDATE,
        role_id=role.id, federation_id=federation.id if federation else None)


def settle_mandate(session: Session, proposal: Proposal, role: Role, now: datetime) -> None:
    """A mandate that passed belongs to the seat: whoever holds it carries it, until the group changes it."""
    role.mandate = proposal.details
    record.append(session, role.group_id, "delegate.mandate", {"role": role.name, "mandate": role.mandate,
                                                               "decision": proposal.number}, now)
