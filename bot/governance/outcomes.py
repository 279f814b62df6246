"""What a closed proposal sets in motion.

A plain decision is only recorded. Role matters act on the outcome: an
election seats its winners, an appointment seats the volunteer nobody
objected to, a renewal extends the mandate, a recall ends it; a review
("Keep #12 …?") keeps the decision it brought back or lets it lapse. Both the
scheduler (deadline) and `close` (early) go through `conclude`, so the
consequences cannot be forgotten on either path.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from zoneinfo import ZoneInfo

from sqlmodel import Session

from bot.actions import Action, SendFile, SendImage, SendMessage
from bot.charts import describe
from bot.events import ChatRef
from bot.governance import charter, federation, record, renewals, reviews, roles, secrecy, setting_changes
from bot.governance import proposals as rules
from bot.governance.proposals import RuleViolation
from bot.governance.settings import GroupSettings
from bot.governance.voting import WITHDRAWN, Outcome
from bot.i18n import N_, _
from bot.render import federation as render_federation
from bot.render.charter import change_lines, settled_lines
from bot.render.common import checkpoint, when
from bot.render.proposals import decision_counts, outcome_announcement
from bot.render.text import b, code, escape, plain
from storage.models import Decision, Federation, Group, Mandate, Member, Proposal, Role


@dataclass
class Concluded:
    decision: Decision
    outcome: Outcome
    consequences: list[str] = field(default_factory=list)  # escaped HTML lines for the announcement
    # What other groups of a federation are told (or this one, after its own outcome): the caller
    # records each in the outbox under its key (bot.governance.federation.Notice).
    notices: list[federation.Notice] = field(default_factory=list)


def conclude(session: Session, proposal: Proposal, now: datetime, members: int, settings: GroupSettings,
             prefix: str, directory) -> Concluded:
    """Close and apply. `directory` (bot.groups.Directory): a charter change of a protected setting
    stores the new value through it; the caller forgets its cached settings after the commit."""
    if proposal.kind == renewals.KIND:  # each item decided on its own, counted once
        outcome, tallied, decided = renewals.decide(session, proposal, members)
        result = Concluded(rules.close_counted(session, proposal, outcome, tallied, now, members), outcome)
        result.consequences.extend(settled_lines(renewals.settle(session, proposal, decided, now), prefix))
        return result
    decision, outcome = rules.close(session, proposal, now, members)
    result = Concluded(decision, outcome)
    _apply(session, proposal, outcome, now, settings, prefix, directory, result)
    result.notices.extend(shared_outcome(session, proposal, now, directory))
    return result


def _apply(session, proposal, outcome, now, settings, prefix, directory, result: Concluded) -> None:
    """What passing (or not) this kind of proposal does."""
    if proposal.kind == "decision":
        return
    if proposal.kind == reviews.KIND:
        _review(session, proposal, outcome, now, settings, result.consequences)
        return
    if proposal.kind == charter.KIND:
        _charter(session, proposal, outcome, now, prefix, directory, result.consequences)
        return
    if proposal.kind in (federation.JOIN, federation.LEAVE):
        if outcome.carried:
            settle = _join if proposal.kind == federation.JOIN else _leave
            settle(session, proposal, now, directory, result)
        return
    role = session.get(Role, proposal.role_id)
    if role is None or role.retired_at is not None:
        result.consequences.append(_("The role was retired meanwhile; nothing changes."))
        return
    if proposal.kind == federation.MANDATE:
        if outcome.carried:
            federation.settle_mandate(session, proposal, role, now)
            result.consequences.append(render_federation.mandate_line(role.name, role.mandate))
        return
    # A recalled delegate's mandate ends across the federation at once: the other groups hear it.
    recalled = (roles.mandate_of(session, role, proposal.subject_member_id)
                if proposal.kind == "recall" and role.delegate else None)
    handler = {"election": _election, "appointment": _appointment, "renewal": _renewal, "recall": _recall}
    handler[proposal.kind](session, proposal, role, outcome, now, settings, prefix, result.consequences)
    if recalled is not None and recalled.ended_at is not None:
        result.notices.extend(_delegate_recalled(session, recalled, directory))


def _tell(session, directory, groups, key: str, write) -> list[federation.Notice]:
    return federation.tell(groups, key, lambda group_id: directory.settings(session, group_id).language,
                           directory.chat_of, write)


def _join(session, proposal, now, directory, result: Concluded) -> None:
    joined = federation.settle_join(session, proposal, now)
    if joined is None:
        result.consequences.append(render_federation.not_changed_line())
        return
    groups = federation.member_groups(session, joined.id)
    joining = session.get(Group, proposal.group_id)
    others = [group for group in groups if group.id != joining.id]
    result.consequences.append(render_federation.joined_line(joined, others))
    result.notices.extend(_tell(session, directory, others, f"federation:{joined.id}:joined:{proposal.id}",
                                lambda group: render_federation.joined_notice(joined, joining, len(groups))))


def _leave(session, proposal, now, directory, result: Concluded) -> None:
    left = federation.settle_leave(session, proposal, now)
    if left is None:
        return
    gone, staying = left
    leaving = session.get(Group, proposal.group_id)
    result.consequences.append(render_federation.left_line(gone))
    result.notices.extend(_tell(session, directory, staying, f"federation:{gone.id}:left:{proposal.id}",
                                lambda group: render_federation.left_notice(gone, leaving, len(staying))))


def _delegate_recalled(session, mandate: Mandate, directory) -> list[federation.Notice]:
    """Every group of the federation (this one too) hears, once, that the delegate's mandate ended."""
    joined = federation.federation_of(session, mandate.group_id)
    if joined is None:
        return []
    holder, group = session.get(Member, mandate.member_id), session.get(Group, mandate.group_id)
    return _tell(session, directory, federation.member_groups(session, joined.id), f"delegate:{mandate.id}:recalled",
                 lambda __: render_federation.delegate_recalled(holder.display_name, group))


def shared_outcome(session: Session, proposal: Proposal, now: datetime, directory) -> list[federation.Notice]:
    """After a copy of a shared question closed or was withdrawn: if it was the last one open, the
    federation's outcome, announced once in every group that got the question (with its own number)."""
    settled = federation.settle_question(session, proposal, now)
    if settled is None:
        return []
    question, copies = settled
    joined = session.get(Federation, question.federation_id)
    found = federation.delegates(session, joined.id)
    own = {copy.group.id: copy.proposal for copy in copies}
    return _tell(session, directory, [copy.group for copy in copies], f"federation-question:{question.id}:outcome",
                 lambda group: render_federation.question_outcome(question, joined, own[group.id], copies, found))


def announcement(session: Session, proposal: Proposal, concluded: Concluded, chat: ChatRef,
                 zone: ZoneInfo, prefix: str) -> list[Action]:
    """What the group is told at the close: the outcome; for a secret ballot who voted and every
    ballot as a file (sorted by receipt hash); for a ranked count a chart of its rounds."""
    decision = concluded.decision
    secret_voters = ([m.display_name for m in secrecy.voters(session, proposal)] if proposal.secret else None)
    head = record.head(session, proposal.group_id).short()
    actions: list[Action] = [SendMessage(chat=chat, text=outcome_announcement(
        proposal, decision, zone, concluded.consequences, secret_voters, checkpoint(head, prefix)))]
    if proposal.secret and decision.outcome != WITHDRAWN:
        data = secrecy.ballot_file(proposal, secrecy.sealed_ballots(session, proposal),
                                   partial(rules.describe_choice, proposal))
        actions.append(SendFile(chat=chat, filename=f"ballots-{proposal.number}.csv", data=data, mime_type="text/csv",
                                caption=plain(_("#{number}: {ballots} ballots, {voters} voters.").format(
                                    number=proposal.number, ballots=decision.voters, voters=len(secret_voters)))))
    count = decision_counts(decision).get("count")
    if count and len(count["stages"]) > 1:
        actions.append(SendImage(chat=chat, filename=f"count-{proposal.number}.png",
                                 chart=describe("rounds", count=count, title=f"#{proposal.number} {proposal.title}"),
                                 caption=plain(_("#{number}: the count, round by round.").format(
                                     number=proposal.number))))
    return actions


def close_early(session: Session, proposal: Proposal, member_id: int, now: datetime, members: int,
                settings: GroupSettings, prefix: str, directory) -> Concluded:
    """The author may end a vote before its deadline, and so may whoever holds the role the
    group made responsible for proposals (`set propose_role facilitator`); everyone else
    waits for the deadline."""
    facilitating = settings.propose_role != "anyone" and roles.holds(session, proposal.group_id,
                                                                     settings.propose_role, member_id)
    if proposal.kind == renewals.KIND:  # every member gets the whole window: what is not kept ends
        raise RuleViolation(_("#{number} is the group's renewal review; it closes at its deadline.").format(
            number=proposal.number))
    if proposal.author_id != member_id and not facilitating:
        author = session.get(Member, proposal.author_id)
        raise RuleViolation(_("Only {author}, who proposed #{number}, can close it early; otherwise it closes by "
                              "itself at its deadline.").format(author=author.display_name, number=proposal.number))
    return conclude(session, proposal, now, members, settings, prefix, directory)


def _charter(session, proposal, outcome, now, prefix, directory, lines) -> None:
    """A charter proposal: if it carried, the charter changes (and a protected setting with it)."""
    group = session.get(Group, proposal.group_id)

    def change_setting(key: str, value: str) -> None:
        setting_changes.change(session, directory, group, key, value, proposal.author_id,
                               f"decision #{proposal.number}", now)  # the name in the group log: not translated
        lines.append(_("⚙️ {setting} is now {value}.").format(setting=code(key), value=b(value)))

    change = charter.settle(session, proposal, outcome.carried, now, change_setting)
    if change is not None:  # a charter is something to renew
        renewals.ensure_scheduled(session, group, directory.settings(session, group.id), now)
    if outcome.carried and change is None:
        lines.append(_("A charter was adopted meanwhile; nothing changes. Amend it clause by clause."))
    lines.extend(change_lines(change, escape(prefix)))


def _review(session, proposal, outcome, now, settings, lines) -> None:
    """A "Keep #n …?" review: not carried, the decision lapses; carried, it stays in force and, if it
    had a review period, comes back again after it."""
    original, decision = reviews.settle(session, proposal, outcome.carried, now)
    title = f"#{original.number} {b(original.title)}"
    if not outcome.carried:
        lines.append(_("⌛ {proposal} has lapsed: the group did not keep it. The decision log marks it lapsed.").format(
            proposal=title))
    elif decision.review_at is not None:
        lines.append(_("🔁 {proposal} stays in force; it comes back for review {when}.").format(
            proposal=title, when=when(decision.review_at, settings.timezone)))
    else:
        lines.append(_("🔁 {proposal} stays in force.").format(proposal=title))


def _election(session, proposal, role, outcome, now, settings, prefix, lines) -> None:
    if not outcome.carried:
        lines.append(_("No one is seated; open a new election with {command}.").format(
            command=f"{escape(prefix)}elect {escape(role.key)}"))
        return
    candidates = json.loads(proposal.candidates)["member_ids"]
    by_option = dict(zip(rules.options_of(proposal), candidates, strict=True))
    for winner in outcome.winners:
        _seat(session, role, by_option[winner], "election", now, settings, lines)


def _appointment(session, proposal, role, outcome, now, settings, prefix, lines) -> None:
    if outcome.carried:
        _seat(session, role, proposal.subject_member_id, "volunteer", now, settings, lines)
    else:
        lines.append(_("The seat stays open; an objection was raised. Talk it through, or {command}.").format(
            command=f"{escape(prefix)}elect {escape(role.key)}"))


def _renewal(session, proposal, role, outcome, now, settings, prefix, lines) -> None:
    mandate, name = _decided_holder(session, proposal, role, outcome, lines,
                                    kept=N_("{name}'s mandate ends as planned."),
                                    gone=N_("{name} no longer holds {role}; nothing to renew."))
    if mandate is None:
        return
    try:
        roles.renew(session, role, mandate, name, now, settings.mandate_warnings)
    except RuleViolation as refusal:
        lines.append(_("Not renewed: {reason}").format(reason=escape(str(refusal))))
        return
    lines.append(_("🔁 {name} holds {role} for another term, until {when} (term {term} in a row).").format(
        name=b(name), role=b(role.name), when=when(mandate.ends_at, settings.timezone), term=mandate.term_number))


def _recall(session, proposal, role, outcome, now, settings, prefix, lines) -> None:
    mandate, name = _decided_holder(session, proposal, role, outcome, lines, kept=N_("{name} stays in {role}."),
                                    gone=N_("{name} no longer holds {role}."))
    if mandate is None:
        return
    roles.recall(session, mandate, now)
    lines.append(_("{name} is recalled from {role}; the seat is open. {next_step}").format(
        name=escape(name), role=b(role.name), next_step=next_step(role, prefix)))


def _decided_holder(session, proposal, role, outcome, lines, kept: str, gone: str) -> tuple[Mandate | None, str]:
    """The mandate a renewal or recall acts on, if it passed and the holder still holds it;
    otherwise says why nothing happens (`kept`: it did not pass, `gone`: no mandate left; both marked N_)."""
    mandate, name = _subject_mandate(session, proposal, role)
    words = {"name": escape(name), "role": escape(role.name)}
    if not outcome.carried:
        if mandate is not None:
            lines.append(_(kept).format(**words))
        return None, name
    if mandate is None:
        lines.append(_(gone).format(**words))
    return mandate, name


def _subject_mandate(session: Session, proposal: Proposal, role: Role) -> tuple[Mandate | None, str]:
    member = session.get(Member, proposal.subject_member_id)
    return roles.mandate_of(session, role, member.id), member.display_name


def _seat(session, role, member_id, filled_by, now, settings, lines) -> None:
    member = session.get(Member, member_id)
    try:
        mandate = roles.seat(session, role, member_id, filled_by, now, settings.mandate_warnings)
    except RuleViolation as refusal:
        lines.append(_("{name} could not be seated: {reason}").format(name=escape(member.display_name),
                                                                      reason=escape(str(refusal))))
        return
    lines.append(_("🎉 {name} now holds {role} until {when}.").format(
        name=b(member.display_name), role=b(role.name), when=when(mandate.ends_at, settings.timezone)))


def next_step(role: Role, prefix: str) -> str:
    """How this role's empty seat gets filled, as a hint."""
    command = {"election": "elect", "lottery": "draw", "volunteer": "volunteer"}[role.fill]
    return _("Next: {command}").format(command=f"{escape(prefix)}{command} {escape(role.key)}")
