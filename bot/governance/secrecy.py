"""Secret ballots: a voter roll and a ballot box that nothing links.

- The roll says who may vote and who has; the box holds choices keyed by the
  SHA-256 of a random receipt, sorted by that hash (no member, no time, no
  order of arrival: see `storage.models.BallotBox`).
- The receipt goes to the voter privately, once. With it they can find their
  ballot (`ballot check`) or replace it before the close; without it nobody,
  the bot included, can tell which ballot is theirs.
- At the close the box is published, sorted by receipt hash, beside the list
  of members who voted: anyone can recount, and check the two numbers match.
"""

from __future__ import annotations

import bisect
import csv
import hashlib
import io
import json
import secrets
from dataclasses import dataclass

from sqlalchemy import and_, bindparam, case, func, insert, select, update
from sqlmodel import Session

from bot.governance.errors import RuleViolation
from bot.i18n import _
from bot.render.common import csv_cell
from storage.models import BallotBox, Member, Proposal, VoterRoll

# No 0/O, 1/I/L: a receipt is read off a phone screen and typed back.
RECEIPT_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
RECEIPT_LENGTH = 12  # 31^12 ≈ 2^59: not guessable through a chat
SMALL_ROLL = 5  # below this many voters a one-sided result shows how people voted
HASH_LENGTH = 32  # hex digits of the receipt's SHA-256 kept (128 bits)

# The statements of the secret vote path, built once (building one costs more than running it).
_roll, _boxes = VoterRoll.__table__, BallotBox.__table__
_THIS_VOTER = and_(_roll.c.proposal_id == bindparam("proposal"), _roll.c.member_id == bindparam("member"))
_HAS_VOTED = select(_roll.c.voted).where(_THIS_VOTER)
_MARK_VOTED = update(_roll).where(_THIS_VOTER, _roll.c.voted.is_(False)).values(voted=True)
_ADD_VOTER = insert(_roll).values(proposal_id=bindparam("proposal"), member_id=bindparam("member"), voted=True)
_ROLL_STATE = (select(func.count(), func.sum(case((_roll.c.voted, 1), else_=0)))
               .where(_roll.c.proposal_id == bindparam("proposal_id")))
_BOX = select(_boxes.c.ballots).where(_boxes.c.proposal_id == bindparam("proposal_id"))
# FOR UPDATE (PostgreSQL): two ballots cast at once must not both rewrite the box they read.
_BOX_LOCKED = _BOX.with_for_update()
_STORE = update(_boxes).where(_boxes.c.proposal_id == bindparam("proposal")).values(ballots=bindparam("sealed"))


@dataclass(frozen=True)
class Cast:
    receipt: str | None  # the new receipt, or None when a ballot was changed with one
    previous: str | None  # the choice replaced, when changed
    voted: int  # ballots in the box now


@dataclass(frozen=True)
class SecretState:
    """What the group may see of an open secret ballot."""

    voted: int  # members marked on the roll (as many as ballots in the box)
    roll: int | None  # members who may vote; None when not counted (known to be at least SMALL_ROLL)


def state(session: Session, proposal: Proposal, voted: int | None = None) -> SecretState | None:
    """`voted`, when the caller knows it (the box's size after a vote), saves counting the roll,
    unless the roll could be small enough to warn about."""
    if not proposal.secret:
        return None
    if voted is not None and voted >= SMALL_ROLL:
        return SecretState(voted, None)
    roll, marked = session.connection().execute(_ROLL_STATE, {"proposal_id": proposal.id}).one()
    return SecretState(marked or 0, roll)


def new_receipt() -> str:
    code = "".join(secrets.choice(RECEIPT_ALPHABET) for __ in range(RECEIPT_LENGTH))
    return "-".join(code[i:i + 4] for i in range(0, RECEIPT_LENGTH, 4))


def normalized(code: str) -> str:
    return "".join(c for c in code.upper() if c.isalnum())


def receipt_hash(code: str) -> str:
    """What the box and the published file key a ballot by: SHA-256 of the code (capitals, dashes
    left out), its first 128 bits in hex. Half the full hash's length keeps the box (rewritten
    whole by every vote) small, and 128 bits is more than any group's ballots can collide in."""
    return hashlib.sha256(normalized(code).encode()).hexdigest()[:HASH_LENGTH]


def open_roll(session: Session, proposal: Proposal, member_ids: list[int]) -> None:
    session.add(BallotBox(proposal_id=proposal.id, ballots=""))
    session.add_all(VoterRoll(proposal_id=proposal.id, member_id=member_id) for member_id in member_ids)
    session.flush()


def cast(session: Session, proposal: Proposal, member_id: int, choice: str, receipt: str | None) -> Cast:
    """Seal a member's ballot (they are marked on the roll, the choice goes in the box under a
    new receipt), or, with the receipt of their ballot, replace its choice."""
    connection = session.connection()
    keys = {"proposal": proposal.id, "member": member_id}
    ballots = _ballots_in(connection, proposal)
    if receipt is not None:
        if not connection.execute(_HAS_VOTED, keys).scalar():
            raise RuleViolation(_("You have not voted on #{number} yet; vote without a receipt.").format(
                number=proposal.number))
        return _change(connection, proposal, ballots, receipt, choice)
    if not connection.execute(_MARK_VOTED, keys).rowcount:
        if connection.execute(_HAS_VOTED, keys).scalar():
            raise RuleViolation(_("You have already voted on #{number}, and your ballot is sealed. To change it, "
                                  "vote again with the receipt I sent you: {command}.").format(
                number=proposal.number, command=f"vote {proposal.number} <choice> receipt=<code>"))
        connection.execute(_ADD_VOTER, keys)  # a member the bot met after the vote opened
    code = new_receipt()
    bisect.insort(ballots, _line(receipt_hash(code), choice))
    connection.execute(_STORE, {"proposal": proposal.id, "sealed": "\n".join(ballots)})
    return Cast(receipt=code, previous=None, voted=len(ballots))


def _change(connection, proposal: Proposal, ballots: list, receipt: str, choice: str) -> Cast:
    index = _find(ballots, receipt_hash(receipt))
    if index is None:
        raise RuleViolation(_("No ballot on #{number} has that receipt; check the code I sent you.").format(
            number=proposal.number))
    digest, previous = _parse(ballots[index])
    ballots[index] = _line(digest, choice)
    connection.execute(_STORE, {"proposal": proposal.id, "sealed": "\n".join(ballots)})
    return Cast(receipt=None, previous=previous, voted=len(ballots))


def check(session: Session, proposal: Proposal, receipt: str) -> str | None:
    """The choice on the ballot with this receipt, if there is one."""
    ballots = _ballots_in(session.connection(), proposal, lock=False)
    index = _find(ballots, receipt_hash(receipt))
    return None if index is None else _parse(ballots[index])[1]


def choices(session: Session, proposal: Proposal) -> list[str]:
    return [choice for __, choice in sealed_ballots(session, proposal)]


def sealed_ballots(session: Session, proposal: Proposal) -> list[tuple[str, str]]:
    """(receipt hash, choice), sorted by the hash."""
    return [_parse(line) for line in _ballots_in(session.connection(), proposal, lock=False)]


def voted_count(session: Session, proposal_ids: list[int]) -> dict[int, int]:
    rows = session.execute(select(VoterRoll.proposal_id, func.count()).where(
        VoterRoll.proposal_id.in_(proposal_ids), VoterRoll.voted).group_by(VoterRoll.proposal_id))
    return {proposal_id: number for proposal_id, number in rows}


def voters(session: Session, proposal: Proposal, voted: bool = True) -> list[Member]:
    """The members who have voted (or, with voted=False, those on the roll who have not), by name."""
    return list(session.scalars(
        select(Member).join(VoterRoll, VoterRoll.member_id == Member.id)
        .where(VoterRoll.proposal_id == proposal.id, VoterRoll.voted == voted).order_by(Member.display_name)))


def add_to_roll(session: Session, proposal: Proposal, member_id: int) -> None:
    """A member who joins while the ballot is open may vote too."""
    if session.get(VoterRoll, (proposal.id, member_id)) is None:
        session.add(VoterRoll(proposal_id=proposal.id, member_id=member_id))


def ballot_file(proposal: Proposal, ballots: list[tuple[str, str]], describe) -> bytes:
    """Every ballot as CSV, sorted by receipt hash; `describe` turns a stored choice into words."""
    out = io.StringIO()
    title = " ".join(proposal.title.split())  # one line: a newline in the title must not start a row
    heading = _("Proposal #{number}: {title}").format(number=proposal.number, title=title)
    how = _("One row per ballot, sorted by receipt_hash = the first 32 hex digits of the SHA-256 of the\n"
            "receipt code in capitals without dashes. Find yours: echo -n ABCDEFGHJKMN | sha256sum | cut -c1-32")
    out.write("".join(f"# {line}\n" for line in f"{heading}\n{how}".split("\n")))  # comment lines, not rows
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["receipt_hash", "choice"])
    for digest, choice in ballots:
        writer.writerow([digest, csv_cell(describe(choice))])
    return out.getvalue().encode()


def _ballots_in(connection, proposal: Proposal, lock: bool = True) -> list[str]:
    """The box's lines, "<receipt hash> <choice as JSON>", in hash order (the hashes have one length,
    so the lines sort as their hashes do). Lines rather than one JSON document: a vote re-reads and
    rewrites the whole box, and splitting lines costs a fraction of parsing them all."""
    found = connection.execute(_BOX_LOCKED if lock else _BOX, {"proposal_id": proposal.id}).scalar()
    if found is None:
        raise RuleViolation(_("#{number} has no ballot box; it is not a secret ballot.").format(number=proposal.number))
    return found.split("\n") if found else []


def _line(digest: str, choice: str) -> str:
    return f"{digest} {json.dumps(choice, ensure_ascii=False)}"


def _parse(line: str) -> tuple[str, str]:
    digest, __, choice = line.partition(" ")
    return digest, json.loads(choice)


def _find(ballots: list[str], digest: str) -> int | None:
    index = bisect.bisect_left(ballots, digest)
    return index if index < len(ballots) and ballots[index].startswith(digest + " ") else None

