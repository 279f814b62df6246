"""Lotteries in a group: opened with a commitment, fed by members, drawn in the open.

The rule itself is pure and lives in `bot.governance.lottery`; this module gives it a life in
the database and the group log:

- open: the candidates are frozen in the published order, a secret is generated, and its
  commitment (SHA-256) goes into the log ("lottery.committed") with the candidates and the
  time of the draw, `draw_window` from now. The secret is stored with the lottery from that
  moment, so a restart during the window changes nothing;
- add: until then any member adds randomness (any text, one line); each contribution is kept
  in order, with the contributor's name. The list starts with the bot's own line, public from
  the opening ("lottery #3 opened …"): without it, a lottery nobody added to would have the seed
  SHA-256(secret) — the published commitment — and its picks would be known from the start;
- draw: at `draws_at` the secret is revealed, the seed and the picks follow from the rule, the
  consequences are applied (seats for a role, the auditor of an audit) and the whole draw is
  one log entry ("lottery.drawn"), everything needed to recompute it included;
- `draw <role> now` opens and draws at once: nobody could add anything, so the seed rests on
  the bot alone, and the draw says so (`skipped_window`).

A ranked vote has a "tie" lottery that draws when the vote closes: its seed decides the ties
of the count (`ranked.lot_pick`), so members can add randomness to it while they vote.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Select, bindparam, func, select
from sqlmodel import Session

from bot.governance import lottery as rule
from bot.governance import record, roles
from bot.governance.errors import RuleViolation
from bot.governance.proposals import OPEN
from bot.governance.scope import Platforms, scoped, served
from bot.i18n import _
from storage.models import Assembly, Audit, Group, LedgerCheck, Lottery, Mandate, Member, Proposal, Role

ROLE, AUDITOR, TIE, LEDGER = "role", "auditor", "tie", "ledger"
FACILITATION, MINUTES = "facilitation", "minutes"  # an assembly's facilitator and note-taker
ASSEMBLY_JOBS = (FACILITATION, MINUTES)
BOT = "(the bot, at the opening)"  # the name on the bot's own contribution (logged and hashed: never translated)
MAX_CONTRIBUTION = 200  # characters of one contribution
# Contributions one member may add to one lottery. A cap per member, not on the total: a total cap
# would let one account fill the list and shut every other member out.
MAX_PER_MEMBER = 3


@dataclass(frozen=True)
class Drawn:
    """A lottery just drawn, and what it did."""

    lottery: Lottery
    role: Role | None
    candidates: list[tuple[int, str]]  # (member id, or option number for a tie; name) in the published order
    contributions: list[tuple[str, str]]  # (name, text) in order
    picks: list[int]  # in the order drawn
    seated: list[Mandate] = field(default_factory=list)  # a role draw: the mandates started
    unseated: list[tuple[int, str]] = field(default_factory=list)  # a pick that took no seat, and why
    auditor: Member | None = None  # an auditor draw: who audits
    assigned: Member | None = None  # an assembly job's draw: who facilitates or takes the minutes


# what a lottery holds -------------------------------------------------------------------

def candidates_of(lottery: Lottery) -> list[tuple[int, str]]:
    return [(item, name) for item, name in json.loads(lottery.candidates)]


def contributions_of(lottery: Lottery) -> list[tuple[str, str]]:
    """(name, text) in order; the stored rows also carry the contributor's id (for the per-member cap)."""
    return [(row[0], row[1]) for row in json.loads(lottery.contributions)]


def added_by_members(lottery: Lottery) -> int:
    return sum(1 for row in json.loads(lottery.contributions) if len(row) > 2)


def is_open(lottery: Lottery, now: datetime) -> bool:
    return lottery.drawn_at is None and now < lottery.draws_at


def _subject(session: Session, lottery: Lottery) -> dict[str, int | str | None]:
    """What a tie or an auditor lottery decides, by number, so a verifier can tie it to it
    (a ledger co-auditor lottery: the month whose books they check)."""
    proposal = session.get(Proposal, lottery.proposal_id) if lottery.proposal_id else None
    audit = session.get(Audit, lottery.audit_id) if lottery.audit_id else None
    subject = {"proposal": proposal.number if proposal else None, "audit": audit.number if audit else None}
    if lottery.purpose == LEDGER:
        check = ledger_check_of(session, lottery)
        subject["month"] = check.month if check else None
    if lottery.assembly_id is not None:
        subject["assembly"] = session.get(Assembly, lottery.assembly_id).number
    return subject


def ledger_check_of(session: Session, lottery: Lottery) -> LedgerCheck | None:
    return session.scalars(select(LedgerCheck).where(LedgerCheck.lottery_id == lottery.id)).first()


def role_name(session: Session, lottery: Lottery) -> str | None:
    return session.get(Role, lottery.role_id).name if lottery.role_id else None


# opening ----------------------------------------------------------------------------------

def _open(session: Session, group_id: int, purpose: str, candidates: list[tuple[int, str]], seats: int,
          now: datetime, draws_at: datetime, *, role: Role | None = None, audit_id: int | None = None,
          proposal_id: int | None = None, skipped_window: bool = False,
          ledger_check: LedgerCheck | None = None, assembly_id: int | None = None) -> Lottery:
    number = (session.scalar(select(func.max(Lottery.number)).where(Lottery.group_id == group_id)) or 0) + 1
    secret = rule.new_secret()
    # The first contribution is the bot's, public from the start: with no contribution at all the seed
    # would be SHA-256(secret), the commitment itself, and everyone would know the picks at the opening.
    opening = [BOT, f"lottery #{number} opened {record.stamp(now)}"]
    lottery = Lottery(group_id=group_id, number=number, purpose=purpose, role_id=role.id if role else None,
                      audit_id=audit_id, proposal_id=proposal_id, assembly_id=assembly_id, seats=seats,
                      candidates=json.dumps([list(c) for c in candidates], ensure_ascii=False),
                      commitment=rule.commitment(secret), secret=secret, contributions=json.dumps([opening]),
                      opened_at=now, draws_at=draws_at, skipped_window=skipped_window)
    session.add(lottery)
    session.flush()
    if ledger_check is not None:  # linked before the commitment is logged, which names its month
        ledger_check.lottery_id = lottery.id
    record.append(session, group_id, "lottery.committed", {
        "lottery": number, "purpose": purpose, "role": role.name if role else None, **_subject(session, lottery),
        "candidates": [list(c) for c in candidates], "seats": seats, "commitment": lottery.commitment,
        "draws_at": record.stamp(draws_at)}, now)
    return lottery


def role_candidates(session: Session, role: Role, now: datetime) -> list[tuple[int, str]]:
    """Eligible volunteers in the published order: by platform id, which everyone can see and nobody chooses."""
    return [(m.id, m.display_name) for m in sorted(roles.eligible(session, role, now), key=lambda m: m.user_id)]


def open_for_role(session: Session, role: Role) -> Lottery | None:
    return session.scalars(select(Lottery).where(Lottery.role_id == role.id, Lottery.drawn_at.is_(None))
                           .order_by(Lottery.id).limit(1)).first()


def open_role(session: Session, role: Role, now: datetime, window: timedelta, *,
              draws_at: datetime | None = None, skipped_window: bool = False) -> Lottery:
    """A lottery for every free seat of a role among its eligible volunteers, drawn after `window`."""
    free = roles.free_seats(session, role)
    if not free:
        raise RuleViolation(_("Every seat of {role} is taken; there is nothing to draw.").format(role=role.name))
    pending = open_for_role(session, role)
    if pending is not None:
        raise RuleViolation(_("Lottery #{number} for {role} is open already; it is drawn at the end of its window. "
                              "Add randomness to it with draw add <anything>.").format(number=pending.number,
                                                                                     role=role.name))
    candidates = role_candidates(session, role, now)
    if not candidates:
        raise RuleViolation(_("Nobody eligible is standing for {role}; volunteer with {command}.").format(
            role=role.name, command=f"volunteer {role.key}"))
    return _open(session, role.group_id, ROLE, candidates, len(free), now, draws_at or now + window, role=role,
                 skipped_window=skipped_window)


def draw_role_now(session: Session, role: Role, now: datetime, warnings: tuple[timedelta, ...]) -> Drawn:
    """`draw <role> now`: open and draw at once; the seed rests on the bot alone."""
    opened = open_role(session, role, now, timedelta(0), skipped_window=True)
    return reveal(session, opened, now, warnings)


def auditor_candidates(session: Session, group_id: int) -> list[tuple[int, str]]:
    """Active members who hold no role right now, in the published order (by platform id)."""
    holding = select(Mandate.member_id).where(Mandate.group_id == group_id, Mandate.ended_at.is_(None))
    pool = session.execute(select(Member.id, Member.display_name, Member.user_id)
                           .where(Member.group_id == group_id, Member.active, Member.id.not_in(holding))).all()
    return [(member_id, name) for member_id, name, __ in sorted(pool, key=lambda row: row[2])]


def outside_auditor_candidates(session: Session, group_id: int, other_group_ids: list[int]) -> list[tuple[int, str]]:
    """`audit_draw federation`: active members of the federation's other groups who hold no role in
    their own group and are not members of this one, one ticket per person, in the published order
    (by platform id). Their names say their group: `bob (North)` (logged: never translated)."""
    if not other_group_ids:
        return []
    holding = select(Mandate.member_id).where(Mandate.group_id.in_(other_group_ids), Mandate.ended_at.is_(None))
    insiders = set(session.execute(select(Member.platform, Member.user_id)
                                   .where(Member.group_id == group_id, Member.active)).all())
    pool = session.execute(select(Member.id, Member.display_name, Member.platform, Member.user_id, Group.title,
                                  Group.id)
                           .join(Group, Group.id == Member.group_id)
                           .where(Member.group_id.in_(other_group_ids), Member.active, Member.id.not_in(holding))
                           .order_by(Member.user_id, Group.id)).all()
    seen: set[tuple[str, str]] = set()
    candidates = []
    for member_id, name, platform, user_id, title, other_id in pool:
        if (platform, user_id) in insiders or (platform, user_id) in seen:
            continue  # outside eyes only; and one ticket for a person in two of those groups
        seen.add((platform, user_id))
        candidates.append((member_id, f"{name} ({title or f'#{other_id}'})"))
    return candidates


def drawn_outside(session: Session, lottery: Lottery) -> bool:
    """Are the lottery's candidates members of other groups (an auditor drawn by `audit_draw federation`)?"""
    first = next(iter(candidates_of(lottery)), None)
    member = session.get(Member, first[0]) if first is not None and lottery.purpose == AUDITOR else None
    return member is not None and member.group_id != lottery.group_id


def open_auditor(session: Session, audit: Audit, now: datetime, window: timedelta,
                 candidates: list[tuple[int, str]] | None = None) -> Lottery | None:
    """The auditor of an audit, drawn after `window` among `candidates` (by default the group's members
    who hold no role); None: nobody could audit."""
    candidates = auditor_candidates(session, audit.group_id) if candidates is None else candidates
    if not candidates:
        return None
    return _open(session, audit.group_id, AUDITOR, candidates, 1, now, now + window, audit_id=audit.id)


def open_ledger_checker(session: Session, check: LedgerCheck, now: datetime, window: timedelta) -> Lottery | None:
    """The co-auditor of a month's books, among members who hold no role, drawn after `window`
    (None: nobody could check)."""
    candidates = auditor_candidates(session, check.group_id)
    if not candidates:
        return None
    return _open(session, check.group_id, LEDGER, candidates, 1, now, now + window, ledger_check=check)


def open_tie(session: Session, proposal: Proposal, options: list[str], now: datetime) -> Lottery:
    """The lot of a ranked vote: its seed breaks the count's ties; drawn when the vote closes."""
    candidates = [(number, name) for number, name in enumerate(options, 1)]
    return _open(session, proposal.group_id, TIE, candidates, 1, now, proposal.closes_at, proposal_id=proposal.id)


def open_assembly_job(session: Session, assembly: Assembly, job: str, candidates: list[tuple[int, str]], seats: int,
                      now: datetime, draws_at: datetime, skipped_window: bool = False) -> Lottery:
    """The facilitator (`job` FACILITATION) or note-taker (MINUTES) of an assembly, among `candidates`."""
    return _open(session, assembly.group_id, job, candidates, seats, now, draws_at, assembly_id=assembly.id,
                 skipped_window=skipped_window)


def auditor_lottery(session: Session, audit: Audit) -> Lottery | None:
    return session.scalars(select(Lottery).where(Lottery.audit_id == audit.id, Lottery.purpose == AUDITOR)
                           .order_by(Lottery.id.desc()).limit(1)).first()


def tie_lottery(session: Session, proposal: Proposal) -> Lottery | None:
    return session.scalars(select(Lottery).where(Lottery.proposal_id == proposal.id, Lottery.purpose == TIE)
                           .order_by(Lottery.id).limit(1)).first()


def tie_seed(session: Session, proposal: Proposal, options: list[str], now: datetime) -> str:
    """The seed a ranked count breaks ties with: its lottery's, drawn now if it is not yet. A vote
    opened before ties had lotteries gets one drawn at once (its seed rests on the bot alone)."""
    found = tie_lottery(session, proposal)
    if found is None:
        found = _open(session, proposal.group_id, TIE, [(n, name) for n, name in enumerate(options, 1)], 1, now,
                      now, proposal_id=proposal.id, skipped_window=True)
    if found.drawn_at is None:
        reveal(session, found, now, ())
    return found.seed


# adding randomness -----------------------------------------------------------------------------

def open_lotteries(session: Session, group_id: int, now: datetime) -> list[Lottery]:
    """The group's lotteries still taking contributions (a tie lottery only while its vote is open)."""
    found = session.scalars(select(Lottery).where(Lottery.group_id == group_id, Lottery.drawn_at.is_(None),
                                                  Lottery.draws_at > now).order_by(Lottery.draws_at, Lottery.id))
    return [lottery for lottery in found if lottery.purpose != TIE or _vote_open(session, lottery)]


def _vote_open(session: Session, lottery: Lottery) -> bool:
    proposal = session.get(Proposal, lottery.proposal_id) if lottery.proposal_id else None
    return proposal is not None and proposal.status == OPEN


def find(session: Session, group_id: int, number: int) -> Lottery:
    found = session.scalars(select(Lottery).where(Lottery.group_id == group_id, Lottery.number == number)).first()
    if found is None:
        raise RuleViolation(_("There is no lottery #{number} in this group.").format(number=number))
    return found


def describe(session: Session, lottery: Lottery) -> str:
    """A lottery in a few words: `#3 (facilitator)`, `#4 (the auditor of audit #2)`, `#5 (ties of vote #7)`."""
    if lottery.purpose == ROLE:
        what = role_name(session, lottery) or _("a role")
    elif lottery.purpose == AUDITOR:
        audit = session.get(Audit, lottery.audit_id) if lottery.audit_id else None
        what = _("the auditor of audit #{number}").format(number=audit.number) if audit else _("an auditor")
    elif lottery.purpose == LEDGER:
        check = ledger_check_of(session, lottery)
        what = (_("the co-auditor of the {month} books").format(month=check.month) if check
                else _("a co-auditor of the books"))
    elif lottery.purpose in ASSEMBLY_JOBS:
        what = _assembly_job(session, lottery)
    else:
        proposal = session.get(Proposal, lottery.proposal_id) if lottery.proposal_id else None
        what = _("ties of vote #{number}").format(number=proposal.number) if proposal else _("ties of a vote")
    return f"#{lottery.number} ({what})"


def _assembly_job(session: Session, lottery: Lottery) -> str:
    assembly = session.get(Assembly, lottery.assembly_id) if lottery.assembly_id else None
    if lottery.purpose == FACILITATION:
        if assembly is None:
            return _("an assembly's facilitator")
        return _("the facilitator of assembly #{number}").format(number=assembly.number)
    if assembly is None:
        return _("an assembly's note-taker")
    return _("the note-taker of assembly #{number}").format(number=assembly.number)


def contribute(session: Session, group_id: int, member: Member, text: str, now: datetime,
               number: int | None = None) -> Lottery:
    """Add a member's randomness (any text, kept on one line) to the open lottery, or to lottery `number`."""
    text = " ".join(text.split())
    if not text:
        raise RuleViolation(_("Add some text: anything at all, like draw add my cat walked on the keyboard."))
    if len(text) > MAX_CONTRIBUTION:
        raise RuleViolation(_("Keep it under {count} characters; any text will do.").format(count=MAX_CONTRIBUTION))
    if number is None:
        found = open_lotteries(session, group_id, now)
        if not found:
            raise RuleViolation(_("No lottery is open in this group right now, so there is nothing to add to. "
                                  "draw <role> opens one."))
        if len(found) > 1:
            listing = ", ".join(describe(session, lottery) for lottery in found)
            raise RuleViolation(_("Several lotteries are open: {lotteries}. Say which one, like {command}.").format(
                lotteries=listing, command=f"draw add <anything> lottery={found[0].number}"))
        target = found[0]
    else:
        target = find(session, group_id, number)
        if target.drawn_at is not None:
            raise RuleViolation(_("Lottery #{number} has been drawn already; it takes no more randomness.").format(
                number=number))
        if not is_open(target, now) or (target.purpose == TIE and not _vote_open(session, target)):
            raise RuleViolation(_("Lottery #{number} is closed to contributions; it is being drawn.").format(
                number=number))
    rows = json.loads(target.contributions)
    if sum(1 for row in rows if len(row) > 2 and row[2] == member.id) >= MAX_PER_MEMBER:
        raise RuleViolation(_("You have added {count} contributions to lottery #{number}; that is as many as one "
                              "member may add.").format(count=MAX_PER_MEMBER, number=target.number))
    rows.append([member.display_name, text, member.id])
    target.contributions = json.dumps(rows, ensure_ascii=False)
    return target


# drawing ----------------------------------------------------------------------------------------

def reveal(session: Session, lottery: Lottery, at: datetime, warnings: tuple[timedelta, ...]) -> Drawn:
    """Reveal the secret, derive the seed and the picks, apply them, and log the draw (once)."""
    if lottery.drawn_at is not None:
        raise RuleViolation(_("Lottery #{number} has been drawn already.").format(number=lottery.number))
    candidates, contributions = candidates_of(lottery), contributions_of(lottery)
    seed = rule.seed(lottery.secret, [text for __, text in contributions])
    picks = rule.draw(seed, [item for item, __ in candidates], lottery.seats)
    lottery.seed, lottery.picks, lottery.drawn_at = seed, json.dumps(picks), at
    role = session.get(Role, lottery.role_id) if lottery.role_id else None
    record.append(session, lottery.group_id, "lottery.drawn", {  # the draw, then what it does (mandates …)
        "lottery": lottery.number, "purpose": lottery.purpose, "role": role.name if role else None,
        **_subject(session, lottery),
        "candidates": [list(c) for c in candidates], "seats": lottery.seats, "commitment": lottery.commitment,
        "secret": lottery.secret, "contributions": [list(c) for c in contributions], "seed": seed, "picks": picks,
        "skipped_window": lottery.skipped_window}, at)
    drawn = Drawn(lottery, role, candidates, contributions, picks)
    if lottery.purpose == ROLE:
        _seat_picks(session, drawn, at, warnings)
    elif lottery.purpose == AUDITOR:
        drawn = _set_auditor(session, drawn)
    elif lottery.purpose == LEDGER:
        drawn = _set_checker(session, drawn)
    elif lottery.purpose in ASSEMBLY_JOBS:
        drawn = _set_assembly_job(session, drawn)
    return drawn


def _seat_picks(session: Session, drawn: Drawn, at: datetime, warnings: tuple[timedelta, ...]) -> None:
    """Each pick takes a seat if they still can; one who cannot is reported, and their seat stays open."""
    role = drawn.role
    for member_id in drawn.picks:
        member = session.get(Member, member_id)
        if role is None or role.retired_at is not None:
            why = _("the role was retired")
        elif member is None or not member.active:
            why = _("they are no longer in the group")
        elif not roles.is_volunteer(session, role, member_id) and roles.mandate_of(session, role, member_id) is None:
            why = _("they stopped standing for {role}").format(role=role.name)
        else:
            try:
                drawn.seated.append(roles.seat(session, role, member_id, "lottery", at, warnings))
                continue
            except RuleViolation as refused:
                why = str(refused).rstrip(".")
                why = why[:1].lower() + why[1:]
        drawn.unseated.append((member_id, why))


def _set_auditor(session: Session, drawn: Drawn) -> Drawn:
    audit = session.get(Audit, drawn.lottery.audit_id) if drawn.lottery.audit_id else None
    for member_id in drawn.picks:
        member = session.get(Member, member_id)
        if audit is None or audit.closed_at is not None:
            drawn.unseated.append((member_id, _("the audit has closed")))
        elif member is None or not member.active:
            drawn.unseated.append((member_id, _("they are no longer in the group")))
        else:
            audit.auditor_id, audit.draw_seed = member_id, drawn.lottery.seed
            audit.draw_candidates = drawn.lottery.candidates
            return Drawn(drawn.lottery, drawn.role, drawn.candidates, drawn.contributions, drawn.picks,
                         auditor=member)
    return drawn


def _set_checker(session: Session, drawn: Drawn) -> Drawn:
    """The pick checks the month's books (announced by scheduler.ledger, which follows the draw)."""
    check = ledger_check_of(session, drawn.lottery)
    for member_id in drawn.picks:
        member = session.get(Member, member_id)
        if check is None:
            drawn.unseated.append((member_id, _("the check is gone")))
        elif member is None or not member.active:
            drawn.unseated.append((member_id, _("they are no longer in the group")))
        else:
            check.auditor_id = member_id
            return Drawn(drawn.lottery, drawn.role, drawn.candidates, drawn.contributions, drawn.picks,
                         auditor=member)
    return drawn


def _set_assembly_job(session: Session, drawn: Drawn) -> Drawn:
    """The first pick who can takes the job; the note-taker's lottery passes over the facilitator,
    so nobody does both in one meeting."""
    assembly = session.get(Assembly, drawn.lottery.assembly_id) if drawn.lottery.assembly_id else None
    facilitation = drawn.lottery.purpose == FACILITATION
    for member_id in drawn.picks:
        member = session.get(Member, member_id)
        if assembly is None or assembly.cancelled_at is not None:
            drawn.unseated.append((member_id, _("the assembly was cancelled")))
        elif member is None or not member.active:
            drawn.unseated.append((member_id, _("they are no longer in the group")))
        elif not facilitation and member_id == assembly.facilitator_id:
            drawn.unseated.append((member_id, _("they facilitate this assembly")))
        elif (assembly.facilitator_id if facilitation else assembly.note_taker_id) is not None:
            drawn.unseated.append((member_id, _("someone took the job meanwhile")))
        else:
            if facilitation:
                assembly.facilitator_id = member_id
            else:
                assembly.note_taker_id = member_id
            return Drawn(drawn.lottery, drawn.role, drawn.candidates, drawn.contributions, drawn.picks,
                         unseated=drawn.unseated, assigned=member)
    return drawn


# the scheduler's view ------------------------------------------------------------------------

_lotteries = Lottery.__table__.c
_NEXT_DUE = (select(_lotteries.id, _lotteries.draws_at)  # ix_lotteries_due: only undrawn rows
             .where(_lotteries.drawn_at.is_(None), _lotteries.draws_at <= bindparam("now"))
             .order_by(_lotteries.draws_at, _lotteries.id).limit(1))


def draws_due(platforms: Platforms = None) -> Select:
    return scoped(_NEXT_DUE, _lotteries.group_id, platforms)


def next_deadline(session: Session, platforms: Platforms = None) -> datetime | None:
    return session.scalar(select(func.min(Lottery.draws_at)).where(Lottery.drawn_at.is_(None),
                                                                   served(Lottery.group_id, platforms)))
