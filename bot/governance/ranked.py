"""Counting ranked ballots: instant runoff (one seat) and STV with the Scottish rules (several seats).

Pure functions: no storage, no time, no I/O. Every figure is a `Decimal`, so a count can be
published and checked by hand.

Ballots. A ballot ranks candidate names, most preferred first; it may rank only some of them.
Names that are not candidates, and repeats of a name already ranked, are skipped (later
preferences still count). A ballot with no valid preference is not valid and counts for nobody.

IRV. Each round every valid ballot counts 1 for its highest-ranked continuing candidate. A
candidate with more than half of the votes for continuing candidates wins (exhausted ballots are
left out). Otherwise the candidate with the fewest votes is excluded and their ballots go to each
ballot's next continuing preference: one exclusion per stage, zero-vote candidates included.

STV. The Scottish Local Government Elections Order 2007 (SSI 2007/42), schedule 1, rules 45–52:
Droop quota floor(valid / (seats + 1)) + 1; a candidate reaching the quota is elected; surpluses
are transferred largest first by the weighted inclusive Gregory method (every ballot the elected
candidate holds moves on at value × surplus / total, truncated to 5 decimal places, and what does
not move — ballots with no next continuing preference plus truncation — is non-transferable);
when no surplus is left the lowest candidate is excluded and all their ballots move on at the
value they have, in one stage; when the continuing candidates are no more than the seats left they
are all elected, with no further transfer (rule 52).

Stages. Stage 1 shows first preferences in `totals`; its `transfers` is empty and its `exhausted`
is 0 (ballots with no valid preference are not counted at all). An "elect-remaining" stage moves
nothing. `exhausted` summed over the stages plus the last totals is exactly `valid`.

Ties (one rule for both methods, rules 49(2) and 51(2)): among candidates tied for exclusion
(or with equal surpluses), the one with the fewest (most) votes at the most recent preceding
stage where they had unequal votes is excluded (transferred first); if they were equal at
every stage, `lot_pick(seed, stage number, tied)` decides, where the stage number is that of the
stage being decided. Who is elected together at one stage is ordered by total, highest first
(equal totals by the same look-back, then by the candidates' given order): that order is only for
display, it never changes who wins.
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal, localcontext

PLACES = Decimal("0.00001")  # the Scottish rules compute transfer values to 5 decimal places

_CONTINUING, _ELECTED, _EXCLUDED = 0, 1, 2


@dataclass(frozen=True)
class Stage:
    number: int  # 1 = first preferences
    action: str  # "first" | "surplus" | "exclude" | "elect-remaining"
    subject: str | None  # whose surplus is transferred / who is excluded (None for "first")
    transfers: dict[str, Decimal]  # value each continuing candidate gained at this stage (only nonzero entries)
    exhausted: Decimal  # value that went to no one at this stage (no further preference), incl. truncation loss
    totals: dict[str, Decimal]  # every candidate's value after this stage, in the candidates' given order
    elected: tuple[str, ...]  # candidates elected at this stage, in order of election
    tie: str | None = None  # if a tie decided this stage: how, in words


@dataclass(frozen=True)
class Count:
    method: str  # "irv" | "stv"
    seats: int
    quota: Decimal  # IRV: the majority threshold of the final round (informational); STV: Droop quota
    valid: int  # ballots with at least one valid preference
    stages: tuple[Stage, ...]
    winners: tuple[str, ...]  # in order of election; may be shorter than seats if candidates ran out


def lot_pick(seed: str, stage: int, tied: Sequence[str]) -> str:
    """The published lot: anyone can redo it from the seed, the stage number and the tied names."""
    ordered = sorted(tied)
    if not ordered:
        raise ValueError("lot_pick needs at least one name")
    return ordered[int(hashlib.sha256(f"{seed}:{stage}".encode()).hexdigest(), 16) % len(ordered)]


# --- ballots ---------------------------------------------------------------------------------------

def _candidate_index(candidates: Sequence[str]) -> dict[str, int]:
    index: dict[str, int] = {}
    for name in candidates:
        if name in index:
            raise ValueError(f"candidate {name!r} is listed twice")
        index[name] = len(index)
    return index


def _clean(ballots: Iterable[Sequence[str]], index: dict[str, int]) -> tuple[Counter[tuple[int, ...]], int]:
    """Each ballot as a tuple of candidate indices (unknown names and repeats dropped), identical
    ballots counted together so that later stages move groups rather than single ballots."""
    groups: Counter[tuple[int, ...]] = Counter()
    for ballot in ballots:
        if isinstance(ballot, str):  # a bare name would be read letter by letter
            raise TypeError("a ballot is a sequence of names, not a string")
        ranking: list[int] = []
        for name in ballot:
            position = index.get(name)
            if position is not None and position not in ranking:
                ranking.append(position)
        if ranking:
            groups[tuple(ranking)] += 1
    return groups, sum(groups.values())


# --- the tally: who holds which ballots, at what value ----------------------------------------------

# A parcel is (ranking, position, count): `count` identical ballots now credited to ranking[position].
_Parcel = tuple[tuple[int, ...], int, int]


class _Tally:
    """Working state of one count. Each candidate's ballots are kept in parcels grouped by value,
    so a transfer multiplies a value by a number of ballots once per (value, receiver)."""

    def __init__(self, names: list[str], groups: Counter[tuple[int, ...]], places: Decimal | None):
        self.names = names
        self.places = places  # None for IRV (whole votes)
        self.status = [_CONTINUING] * len(names)
        self.piles: list[dict[Decimal, list[_Parcel]]] = [defaultdict(list) for _ in names]
        self.history: list[list[Decimal]] = []  # totals at the end of each stage
        self.stages: list[Stage] = []
        self.winners: list[int] = []
        one = Decimal(1)
        counts = [0] * len(names)
        for ranking, count in groups.items():
            self.piles[ranking[0]][one].append((ranking, 0, count))
            counts[ranking[0]] += count
        self.totals = [Decimal(n) for n in counts]

    def continuing(self) -> list[int]:
        return [c for c, state in enumerate(self.status) if state == _CONTINUING]

    def move(self, parcels: list[_Parcel], value: Decimal) -> tuple[dict[int, int], int]:
        """Send parcels on to their next continuing preference at `value` each. Returns the
        number of ballots each candidate received and the number that had nowhere to go."""
        status, piles = self.status, self.piles
        received: dict[int, int] = defaultdict(int)
        exhausted = 0
        for ranking, position, count in parcels:
            position += 1
            while position < len(ranking) and status[ranking[position]] != _CONTINUING:
                position += 1
            if position == len(ranking):
                exhausted += count
            else:
                receiver = ranking[position]
                piles[receiver][value].append((ranking, position, count))
                received[receiver] += count
        return received, exhausted

    def exclude(self, c: int) -> tuple[dict[int, Decimal], Decimal]:
        """Rule 50: every ballot of the excluded candidate moves on at the value it has."""
        self.status[c] = _EXCLUDED
        gained: dict[int, Decimal] = defaultdict(Decimal)
        exhausted = Decimal(0)
        for value, parcels in self.piles[c].items():
            received, lost = self.move(parcels, value)
            for receiver, n in received.items():
                gained[receiver] += value * n
            exhausted += value * lost
        self.piles[c] = defaultdict(list)
        self._credit(gained)
        self.totals[c] = Decimal(0)
        return gained, exhausted

    def transfer_surplus(self, c: int, quota: Decimal) -> tuple[dict[int, Decimal], Decimal]:
        """Rule 48, weighted inclusive Gregory: every ballot the candidate holds moves on at
        truncate5(value × surplus / total); the candidate keeps exactly the quota."""
        total = self.totals[c]
        surplus = total - quota
        gained: dict[int, Decimal] = defaultdict(Decimal)
        for value, parcels in self.piles[c].items():
            new_value = _transfer_value(value, surplus, total)
            received, _ = self.move(parcels, new_value)
            for receiver, n in received.items():
                gained[receiver] += new_value * n
        self.piles[c] = defaultdict(list)
        self._credit(gained)
        self.totals[c] = quota
        # Non-transferable: ballots with nowhere to go plus what truncation cut off.
        return gained, surplus - sum(gained.values(), Decimal(0))

    def _credit(self, gained: dict[int, Decimal]) -> None:
        for receiver, value in gained.items():
            self.totals[receiver] += value

    def figure(self, value: Decimal) -> Decimal:
        """A figure as published: whole votes for IRV, 5 decimal places for STV (exact either way)."""
        return value if self.places is None else value.quantize(self.places)

    def record(self, action: str, subject: int | None, gained: dict[int, Decimal], exhausted: Decimal,
               elected: Sequence[int], tie: str | None) -> None:
        self.history.append(list(self.totals))
        self.winners.extend(elected)
        names = self.names
        self.stages.append(Stage(
            number=len(self.stages) + 1,
            action=action,
            subject=None if subject is None else names[subject],
            transfers={names[c]: self.figure(gained[c]) for c in range(len(names)) if gained.get(c)},
            exhausted=self.figure(exhausted),
            totals={name: self.figure(total) for name, total in zip(names, self.totals, strict=True)},
            elected=tuple(names[c] for c in elected),
            tie=tie,
        ))

    def order_of_election(self, chosen: Iterable[int]) -> list[int]:
        """Highest total first; equal totals by the look-back at earlier stages, then given order.
        Display order only: everyone in `chosen` is elected at the same stage either way."""
        stages = self.history[::-1]
        return sorted(chosen, key=lambda c: (-self.totals[c], *(-totals[c] for totals in stages), c))


def _transfer_value(value: Decimal, surplus: Decimal, total: Decimal) -> Decimal:
    """value × surplus / total to 5 decimal places, any remainder ignored (rule 48(3)). The
    division runs at a precision far above what the inputs can need, so truncation is exact."""
    with localcontext() as context:
        context.prec = 60
        return (value * surplus / total).quantize(PLACES, rounding=ROUND_DOWN)


# --- ties --------------------------------------------------------------------------------------------

def _break_tie(tally: _Tally, tied: list[int], fewest: bool, seed: str, stage: int) -> tuple[int, str]:
    """Pick one of `tied` (equal now). Going back through the stages from the latest, keep at each
    stage where they differ only those with the fewest (most) votes there, until one is left;
    if several are equal at every stage, the published lot for this stage number decides."""
    names = tally.names
    word = "fewer" if fewest else "more"
    parts = [f"{_join(names[c] for c in tied)} tied with {_show(tally.totals[tied[0]])}"]
    numbered = list(enumerate(tally.history, start=1))[::-1]  # the most recent stage first
    group = list(tied)
    for number, totals in numbered:
        extreme = (min if fewest else max)(totals[c] for c in group)
        narrowed = [c for c in group if totals[c] == extreme]
        if len(narrowed) < len(group):
            group = narrowed
            parts.append(f"{_join(names[c] for c in group)} had {word} at stage {number}")
            if len(group) == 1:
                return group[0], "; ".join(parts)
    picked = lot_pick(seed, stage, [names[c] for c in group])
    shown_seed = seed if len(seed) <= 8 else seed[:8] + "…"
    lot = f"lot with seed {shown_seed} picked {picked}"
    if len(group) == len(tied):
        text = f"{_join(names[c] for c in tied)} tied at every stage; {lot}"
    else:
        text = "; ".join(parts) + f" and were equal at every other stage; {lot}"
    return names.index(picked), text


def _join(items: Iterable[str]) -> str:
    items = list(items)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _show(value: Decimal) -> str:
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _pick(tally: _Tally, candidates: list[int], fewest: bool, seed: str) -> tuple[int, str | None]:
    """The candidate with the fewest (or most) votes now, ties broken by `_break_tie`."""
    extreme = (min if fewest else max)(tally.totals[c] for c in candidates)
    tied = sorted(c for c in candidates if tally.totals[c] == extreme)  # named in the given order
    if len(tied) == 1:
        return tied[0], None
    return _break_tie(tally, tied, fewest, seed, len(tally.stages) + 1)


# --- IRV ---------------------------------------------------------------------------------------------

def irv(ballots: Sequence[Sequence[str]], candidates: Sequence[str], seed: str) -> Count:
    """Instant runoff for one winner. `quota` is the majority threshold of the final round."""
    index = _candidate_index(candidates)
    groups, valid = _clean(ballots, index)
    tally = _Tally(list(candidates), groups, places=None)
    no_change: dict[int, Decimal] = {}
    if not index or not valid:
        tally.record("first", None, no_change, Decimal(0), (), None)
        return _irv_count(tally, valid, Decimal(0))
    action, subject, gained, exhausted, tie = "first", None, no_change, Decimal(0), None
    while True:
        continuing = tally.continuing()
        votes = sum((tally.totals[c] for c in continuing), Decimal(0))
        leader = max(continuing, key=lambda c: tally.totals[c])
        # More than half of the votes still in play; a lone candidate wins whatever they hold.
        won = 2 * tally.totals[leader] > votes or len(continuing) == 1
        tally.record(action, subject, gained, exhausted, (leader,) if won else (), tie)
        if won:
            return _irv_count(tally, valid, votes)
        subject, tie = _pick(tally, continuing, fewest=True, seed=seed)
        action = "exclude"
        gained, exhausted = tally.exclude(subject)


def _irv_count(tally: _Tally, valid: int, final_votes: Decimal) -> Count:
    return Count(method="irv", seats=1, quota=Decimal(int(final_votes) // 2 + 1), valid=valid,
                 stages=tuple(tally.stages), winners=tuple(tally.names[c] for c in tally.winners))


# --- STV (Scottish rules) ----------------------------------------------------------------------------

def stv(ballots: Sequence[Sequence[str]], candidates: Sequence[str], seats: int, seed: str) -> Count:
    """STV by SSI 2007/42 schedule 1 rules 45–52 (see the module docstring)."""
    if seats < 1:
        raise ValueError("seats must be at least 1")
    index = _candidate_index(candidates)
    groups, valid = _clean(ballots, index)
    quota = Decimal(valid // (seats + 1) + 1)  # rule 46: fraction ignored, then plus one
    tally = _Tally(list(candidates), groups, places=PLACES)
    no_change: dict[int, Decimal] = {}
    if not index or not valid:
        tally.record("first", None, no_change, Decimal(0), (), None)
        return _stv_count(tally, seats, quota, valid)
    tally.record("first", None, no_change, Decimal(0), _reaching(tally, quota), None)
    while len(tally.winners) < seats:
        continuing = tally.continuing()
        if len(continuing) <= seats - len(tally.winners):
            # Rule 52: the continuing candidates fill the last seats; no further transfer.
            if continuing:
                for c in continuing:
                    tally.status[c] = _ELECTED
                tally.record("elect-remaining", None, no_change, Decimal(0),
                             tally.order_of_election(continuing), None)
            break
        with_surplus = [c for c in tally.winners if tally.totals[c] > quota]
        if with_surplus:
            # Rule 49: the largest surplus first (equal surpluses mean equal totals).
            subject, tie = _pick(tally, with_surplus, fewest=False, seed=seed)
            gained, exhausted = tally.transfer_surplus(subject, quota)
            action = "surplus"
        else:
            # Rules 50–51: exclude the lowest continuing candidate.
            subject, tie = _pick(tally, continuing, fewest=True, seed=seed)
            gained, exhausted = tally.exclude(subject)
            action = "exclude"
        tally.record(action, subject, gained, exhausted, _reaching(tally, quota), tie)
    return _stv_count(tally, seats, quota, valid)


def _reaching(tally: _Tally, quota: Decimal) -> list[int]:
    """Rule 47: continuing candidates at or over the quota are elected now."""
    reached = [c for c in tally.continuing() if tally.totals[c] >= quota]
    for c in reached:
        tally.status[c] = _ELECTED
    return tally.order_of_election(reached)


def _stv_count(tally: _Tally, seats: int, quota: Decimal, valid: int) -> Count:
    return Count(method="stv", seats=seats, quota=quota, valid=valid, stages=tuple(tally.stages),
                 winners=tuple(tally.names[c] for c in tally.winners))
