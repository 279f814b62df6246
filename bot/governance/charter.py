"""The group's charter: a short written constitution the group amends itself.

Clauses are numbered once and never renumbered, so a decision that cites clause 3 still
means the same clause later. Every change is a proposal of kind "charter" decided under
`charter_rule` (default two-thirds): adding, amending or removing a clause, adopting the
starting template, protecting a setting, or changing a protected one. What a proposal would
change sits in `CharterAmendment` beside it; when it passes, `apply` changes the clauses,
counts the version up, and logs it ("charter.changed"). A setting the group protects is a
clause too ("setting clause"), whose text states the value: it changes only through a
charter proposal, and a renewal review can let it lapse like any other clause.

Two open amendments of the same clause (or setting, or the template) are refused: checked
here with a clear reply, and by a partial unique index if two arrive at once.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlmodel import Session

from bot import i18n
from bot.governance import proposals as rules
from bot.governance import record
from bot.governance.errors import RuleViolation
from bot.governance.settings import SPECS, GroupSettings
from bot.i18n import _
from storage.models import CharterAmendment, CharterClause, CharterVersion, Proposal

KIND = "charter"
ADOPT, ADD, AMEND, REMOVE, PROTECT, SETTING = "adopt", "add", "amend", "remove", "protect", "setting"
SUNSET = "sunset"  # a clause a renewal review did not keep
MAX_CLAUSE = 600
MAX_CLAUSES = 40

TEMPLATE = (
    "Purpose: we come together to meet each other's needs and to decide together how. This charter is ours, "
    "and we change it by the rules written here.",
    "Voluntary association: everyone is here by choice. Anyone may leave at any time, and nobody is left out of "
    "a decision that affects them.",
    "Rotation and term limits: every role has a fixed term and ends on its own unless the group renews it. "
    "Nobody holds a role for more terms in a row than the role allows, so skills pass from hand to hand.",
    "Open books: our money is recorded where every member can see it. Spending above our limit needs a decision "
    "of the group, and each month a member drawn by lot checks the books.",
    "Recall at any time: any member may propose to recall anyone who holds a role, at any time, and the group "
    "decides it like any other proposal.",
    "Transparency by default, secrecy by necessity: what we decide, who holds which role and how our money moves "
    "are open to every member. We keep something secret only when openness would put someone at risk, like a "
    "secret ballot or who asked for help.",
)


@dataclass(frozen=True)
class Change:
    """A charter change that passed, for the announcement."""

    version: int
    action: str
    clauses: list[CharterClause]  # the clauses as they now read (added or amended)
    removed: list[CharterClause]


# reading ------------------------------------------------------------------------------------

def clauses(session: Session, group_id: int) -> list[CharterClause]:
    return list(session.scalars(select(CharterClause).where(
        CharterClause.group_id == group_id, CharterClause.removed_version.is_(None)).order_by(CharterClause.number)))


def version(session: Session, group_id: int) -> int:
    return session.scalar(select(func.max(CharterVersion.version)).where(CharterVersion.group_id == group_id)) or 0


def history(session: Session, group_id: int) -> list[tuple[CharterVersion, Proposal | None]]:
    rows = session.execute(select(CharterVersion, Proposal)
                           .outerjoin(Proposal, Proposal.id == CharterVersion.proposal_id)
                           .where(CharterVersion.group_id == group_id).order_by(CharterVersion.version))
    return [tuple(row) for row in rows]


def find_clause(session: Session, group_id: int, number: int) -> CharterClause:
    clause = session.scalars(select(CharterClause).where(CharterClause.group_id == group_id,
                                                         CharterClause.number == number)).first()
    if clause is None or clause.removed_version is not None:
        raise RuleViolation(_no_clause(number, removed=clause is not None,
                                       listing=", ".join(str(c.number) for c in clauses(session, group_id))))
    return clause


def _no_clause(number: int, removed: bool, listing: str) -> str:
    """The refusal to touch a clause that is not in the charter (`listing`: the numbers that are)."""
    if removed:
        message = (_("Clause {number} was removed; the charter's clauses are: {listing}.") if listing
                   else _("Clause {number} was removed; the charter's clauses are: none yet."))
    else:
        message = (_("Clause {number} does not exist; the charter's clauses are: {listing}.") if listing
                   else _("Clause {number} does not exist; the charter's clauses are: none yet."))
    return message.format(number=number, listing=listing)


def protecting(session: Session, group_id: int, key: str) -> CharterClause | None:
    """The clause that protects a setting, if the group protected it."""
    return session.scalars(select(CharterClause).where(
        CharterClause.group_id == group_id, CharterClause.setting_key == key,
        CharterClause.removed_version.is_(None))).first()


def amendment_of(session: Session, proposal: Proposal) -> CharterAmendment | None:
    return session.get(CharterAmendment, proposal.id)


def setting_text(key: str, value: str) -> str:
    """A protected setting, as its clause reads."""
    return (f"The setting {key} is {value} ({SPECS[key].summary}). It changes only by an amendment of this "
            "charter.")


# proposing ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Draft:
    """What a charter proposal would change, and how its card reads."""

    action: str
    title: str
    details: str
    target: str | None = None
    clause: int | None = None
    text: str | None = None
    setting_key: str | None = None
    setting_value: str | None = None


def draft_adopt(session: Session, group_id: int) -> Draft:
    if clauses(session, group_id):
        raise RuleViolation(_("This group has a charter already; change it clause by clause with charter add, "
                              "charter amend or charter remove."))
    listing = "\n".join(f"{n}. {text}" for n, text in enumerate(TEMPLATE, 1))
    return Draft(ADOPT, f"Adopt the starting charter ({len(TEMPLATE)} clauses)", listing, target="charter")


def draft_add(session: Session, group_id: int, text: str) -> Draft:
    text = _clause_text(text)
    if len(clauses(session, group_id)) >= MAX_CLAUSES:
        raise RuleViolation(_("The charter has {count} clauses; keep it short: amend or remove one first.")
                            .format(count=MAX_CLAUSES))
    return Draft(ADD, "Charter: add a clause", text, text=text)


def draft_amend(session: Session, group_id: int, number: int, text: str, prefix: str) -> Draft:
    clause = find_clause(session, group_id, number)
    if clause.setting_key:
        raise RuleViolation(_("Clause {number} protects the setting {key}; change the value with {command} <value>, "
                              "which opens a charter proposal.")
                            .format(number=number, key=clause.setting_key, command=f"{prefix}set {clause.setting_key}"))
    text = _clause_text(text)
    if text == clause.text:
        raise RuleViolation(_("Clause {number} says exactly that already.").format(number=number))
    return Draft(AMEND, f"Charter: amend clause {number}", f"Now: {clause.text}\nProposed: {text}",
                 target=f"clause:{number}", clause=number, text=text)


def draft_remove(session: Session, group_id: int, number: int) -> Draft:
    clause = find_clause(session, group_id, number)
    what = f" (it protects the setting {clause.setting_key})" if clause.setting_key else ""
    return Draft(REMOVE, f"Charter: remove clause {number}{what}", clause.text, target=f"clause:{number}",
                 clause=number, setting_key=clause.setting_key)


def draft_protect(session: Session, group_id: int, key: str, value: str) -> Draft:
    found = protecting(session, group_id, key)
    if found is not None:
        raise RuleViolation(_("The setting {key} is protected already, by clause {number}.")
                            .format(key=key, number=found.number))
    text = setting_text(key, value)
    return Draft(PROTECT, f"Charter: protect the setting {key} (now {value})", text, target=f"setting:{key}",
                 text=text, setting_key=key, setting_value=value)


def draft_setting(session: Session, group_id: int, key: str, old: str, new: str) -> Draft:
    clause = protecting(session, group_id, key)
    return Draft(SETTING, f"Charter: change the protected setting {key} to {new}",
                 f"Clause {clause.number} now: {clause.text}\nProposed: {setting_text(key, new)}",
                 target=f"setting:{key}", clause=clause.number, text=setting_text(key, new), setting_key=key,
                 setting_value=new)


def _clause_text(text: str) -> str:
    text = " ".join(text.split())
    if not text:
        raise RuleViolation(_("Write the clause's text, in plain words."))
    if len(text) > MAX_CLAUSE:
        raise RuleViolation(_("The clause is {length} characters; keep it under {maximum} — short rules are the ones "
                              "people remember.").format(length=i18n.number(len(text)), maximum=MAX_CLAUSE))
    return text


def propose(session: Session, draft: Draft, *, group_id: int, author_id: int, settings: GroupSettings,
            now: datetime, electorate: list[int]) -> Proposal:
    """Open the charter proposal for `draft` under the charter rule (refused if its target is open already)."""
    _refuse_second_amendment(session, group_id, draft)
    proposal = rules.open_proposal(
        session, group_id=group_id, author_id=author_id, title=draft.title, details=draft.details,
        rule=settings.charter_rule, quorum=settings.quorum, options=None, now=now, duration=settings.vote_duration,
        kind=KIND, electorate=electorate)
    session.add(CharterAmendment(proposal_id=proposal.id, group_id=group_id, action=draft.action,
                                 target=draft.target, clause=draft.clause, text=draft.text,
                                 setting_key=draft.setting_key, setting_value=draft.setting_value))
    session.flush()  # the unique index speaks now, inside this command, if another got in first
    return proposal


def _refuse_second_amendment(session: Session, group_id: int, draft: Draft) -> None:
    if draft.target is None:
        return
    open_one = session.scalars(select(CharterAmendment).where(
        CharterAmendment.group_id == group_id, CharterAmendment.target == draft.target,
        CharterAmendment.is_open)).first()
    if open_one is not None:
        number = session.get(Proposal, open_one.proposal_id).number
        refusals = {
            "charter": _("Adopting the charter is already under discussion in #{number}; vote on that one first "
                         "(two amendments of the same thing at once would undo each other)."),
            "clause": _("Clause {clause} is already under discussion in #{number}; vote on that one first "
                        "(two amendments of the same thing at once would undo each other)."),
            "setting": _("The setting {key} is already under discussion in #{number}; vote on that one first "
                         "(two amendments of the same thing at once would undo each other)."),
        }
        raise RuleViolation(refusals[draft.target.split(":")[0]].format(number=number, clause=draft.clause,
                                                                         key=draft.setting_key))


# deciding ------------------------------------------------------------------------------------

def settle(session: Session, proposal: Proposal, carried: bool, now: datetime,
           change_setting: Callable[[str, str], None]) -> Change | None:
    """The proposal closed: if it carried, change the charter (`change_setting(key, value)` applies a
    protected setting's new value). None: nothing changed."""
    amendment = amendment_of(session, proposal)
    amendment.is_open = False
    if not carried:
        return None
    if amendment.action == ADOPT and clauses(session, proposal.group_id):
        return None  # a charter was adopted meanwhile; the caller says so
    number = version(session, proposal.group_id) + 1
    added, removed = _apply(session, amendment, number, change_setting)
    summary = _summary(amendment, added, removed)
    touched = sorted({c.number for c in added} | {c.number for c in removed})
    session.add(CharterVersion(group_id=proposal.group_id, version=number, proposal_id=proposal.id,
                               change=amendment.action, clauses=json.dumps(touched), summary=summary,
                               changed_at=now))
    record.append(session, proposal.group_id, "charter.changed", {
        "version": number, "change": amendment.action, "proposal": proposal.number,
        "clauses": [{"number": c.number, "text": c.text, "setting": c.setting_key} for c in added],
        "removed": [c.number for c in removed]}, now)
    return Change(number, amendment.action, added, removed)


def _apply(session: Session, amendment: CharterAmendment, number: int,
           change_setting: Callable[[str, str], None]) -> tuple[list[CharterClause], list[CharterClause]]:
    group_id = amendment.group_id
    if amendment.action == ADOPT:
        return [_new_clause(session, group_id, text, number) for text in TEMPLATE], []
    if amendment.action in (ADD, PROTECT):
        return [_new_clause(session, group_id, amendment.text, number, amendment.setting_key)], []
    clause = find_clause(session, group_id, amendment.clause)
    if amendment.action == REMOVE:
        clause.removed_version = number
        return [], [clause]
    if amendment.action == SETTING:
        change_setting(amendment.setting_key, amendment.setting_value)
    # The clause keeps its number; its old text stays in the version history and the log.
    clause.text, clause.added_version = amendment.text, number
    return [clause], []


def _new_clause(session: Session, group_id: int, text: str, version_number: int,
                setting_key: str | None = None) -> CharterClause:
    last = session.scalar(select(func.max(CharterClause.number)).where(CharterClause.group_id == group_id)) or 0
    clause = CharterClause(group_id=group_id, number=last + 1, text=text, setting_key=setting_key,
                           added_version=version_number)
    session.add(clause)
    session.flush()
    return clause


def _summary(amendment: CharterAmendment, added: list[CharterClause], removed: list[CharterClause]) -> str:
    if amendment.action == ADOPT:
        return f"adopted the starting charter: clauses {added[0].number}–{added[-1].number}"
    if amendment.action == REMOVE:
        return f"removed clause {removed[0].number}: {removed[0].text}"
    if amendment.action == PROTECT:
        return f"protected the setting {amendment.setting_key} as clause {added[0].number}"
    if amendment.action == SETTING:
        return f"changed the protected setting {amendment.setting_key} to {amendment.setting_value}"
    verb = "added" if amendment.action == ADD else "amended"
    return f"{verb} clause {added[0].number}: {added[0].text}"


def sunset(session: Session, group_id: int, numbers: list[int], proposal: Proposal, now: datetime) -> int | None:
    """A renewal review did not keep these clauses: they end, as one new version (None: nothing to end)."""
    ended = [clause for clause in clauses(session, group_id) if clause.number in numbers]
    if not ended:
        return None
    number = version(session, group_id) + 1
    for clause in ended:
        clause.removed_version = number
    session.add(CharterVersion(group_id=group_id, version=number, proposal_id=proposal.id, change=SUNSET,
                               clauses=json.dumps([c.number for c in ended]),
                               summary="not renewed: clause" + ("s " if len(ended) > 1 else " ")
                               + ", ".join(str(c.number) for c in ended), changed_at=now))
    record.append(session, group_id, "charter.changed", {
        "version": number, "change": SUNSET, "proposal": proposal.number, "clauses": [],
        "removed": [c.number for c in ended]}, now)
    return number
