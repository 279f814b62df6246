"""How a vote is decided. Pure functions: no storage, no time, no text.

- majority: passes when yes > no.
- two-thirds: passes when yes ≥ 2/3 of (yes + no).
- consent: passes unless someone blocks (objections by "no" are recorded, not blocking).
- consensus: passes when nobody blocks, nobody says no, and at least one says yes.
- Under majority and two-thirds a block counts as a no.
- abstain counts toward quorum only.
- choice polls (options=…) are decided by plurality; an equal top is a tie.
- elections for several seats take the options with the most votes; a tie across
  the last seat leaves the tied seats unfilled.
- ranked polls are counted by instant runoff (one seat) or STV with the Scottish
  rules (several seats), see bot.governance.ranked; abstentions count toward
  quorum only, and a tie no earlier round settles is drawn by the published lot.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from bot.commands.args import Quorum
from bot.governance import ranked

YES, NO, ABSTAIN, BLOCK = "yes", "no", "abstain", "block"
STANCES = (YES, NO, ABSTAIN, BLOCK)
RULES = ("majority", "two-thirds", "consent", "consensus")
RULE_ALIASES = {"2/3": "two-thirds", "twothirds": "two-thirds", "two_thirds": "two-thirds",
                "supermajority": "two-thirds", "simple": "majority"}
STANCE_ALIASES = {
    "yes": YES, "y": YES, "aye": YES, "for": YES, "+1": YES, "👍": YES, "agree": YES,
    "no": NO, "n": NO, "nay": NO, "against": NO, "-1": NO, "👎": NO,
    "abstain": ABSTAIN, "a": ABSTAIN, "pass": ABSTAIN, "abs": ABSTAIN,
    "block": BLOCK, "veto": BLOCK, "✋": BLOCK,
}

PASSED, REJECTED, BLOCKED, NO_QUORUM, CHOSEN, TIE, WITHDRAWN = (
    "passed", "rejected", "blocked", "no quorum", "chosen", "tie", "withdrawn")


@dataclass(frozen=True)
class Outcome:
    result: str  # one of PASSED … TIE
    winners: tuple[str, ...] = ()
    explanation: str = ""

    @property
    def carried(self) -> bool:
        return self.result in (PASSED, CHOSEN)


def count_ballots(choices: Sequence[str], options: Sequence[str] | None) -> dict[str, int]:
    """Counts per stance (or per option, then abstain), in display order, zeros included."""
    labels = [*options, ABSTAIN] if options else list(STANCES)
    counts = dict.fromkeys(labels, 0)
    for choice in choices:
        if choice in counts:
            counts[choice] += 1
    return counts


def decide(rule: str, quorum: Quorum, members: int, counts: Mapping[str, int],
           options: Sequence[str] | None = None, seats: int = 1) -> Outcome:
    voters = sum(counts.values())
    needed = quorum.required(members)
    if voters < needed:
        return Outcome(NO_QUORUM, explanation=f"{voters} of the {needed} ballots needed")
    if options:
        return _plurality(counts, options) if seats == 1 else _top(counts, options, seats)
    return _RULES[rule](counts.get(YES, 0), counts.get(NO, 0), counts.get(BLOCK, 0))


def _plurality(counts: Mapping[str, int], options: Sequence[str]) -> Outcome:
    top = max(counts.get(option, 0) for option in options)
    if top == 0:
        return Outcome(REJECTED, explanation="nobody chose an option")
    leaders = tuple(option for option in options if counts.get(option, 0) == top)
    if len(leaders) > 1:
        return Outcome(TIE, leaders, f"{len(leaders)} options tied with {top} each")
    return Outcome(CHOSEN, leaders, f"{top} ballot{'s' if top != 1 else ''}")


def _top(counts: Mapping[str, int], options: Sequence[str], seats: int) -> Outcome:
    """Several seats: the `seats` options with the most votes; a tie across the last
    place leaves those seats unfilled rather than picking arbitrarily."""
    ranked = sorted((o for o in options if counts.get(o, 0) > 0), key=lambda o: -counts[o])
    if not ranked:
        return Outcome(REJECTED, explanation="nobody chose an option")
    if len(ranked) <= seats:
        return Outcome(CHOSEN, tuple(ranked), f"{len(ranked)} chosen for {seats} seats")
    boundary = counts[ranked[seats - 1]]
    if counts[ranked[seats]] != boundary:
        return Outcome(CHOSEN, tuple(ranked[:seats]), f"the {seats} with the most votes")
    clear = tuple(o for o in ranked if counts[o] > boundary)
    tied = tuple(o for o in ranked if counts[o] == boundary)
    if not clear:
        return Outcome(TIE, tied, f"{len(tied)} tied with {boundary} each")
    return Outcome(CHOSEN, clear, f"{len(tied)} tied for the remaining seats")


def _majority(yes: int, no: int, block: int) -> Outcome:
    against = no + block
    if yes > against:
        return Outcome(PASSED, explanation="more yes than no")
    if yes == against == 0:
        return Outcome(REJECTED, explanation="nobody voted yes")
    return Outcome(REJECTED, explanation="a tie does not pass" if yes == against else "more no than yes")


def _two_thirds(yes: int, no: int, block: int) -> Outcome:
    against = no + block
    if yes > 0 and 3 * yes >= 2 * (yes + against):
        return Outcome(PASSED, explanation="at least two thirds said yes")
    return Outcome(REJECTED, explanation="fewer than two thirds said yes")


def _consent(yes: int, no: int, block: int) -> Outcome:
    if block:
        return Outcome(BLOCKED, explanation=f"{block} block{'s' if block != 1 else ''}")
    return Outcome(PASSED, explanation="no one blocked")


def _consensus(yes: int, no: int, block: int) -> Outcome:
    if block:
        return Outcome(BLOCKED, explanation=f"{block} block{'s' if block != 1 else ''}")
    if no:
        return Outcome(REJECTED, explanation="consensus needs no one against")
    if not yes:
        return Outcome(REJECTED, explanation="nobody said yes")
    return Outcome(PASSED, explanation="everyone who voted agreed")


_RULES = {"majority": _majority, "two-thirds": _two_thirds, "consent": _consent, "consensus": _consensus}


def decide_ranked(quorum: Quorum, members: int, rankings: Sequence[Sequence[str]], options: Sequence[str],
                  seats: int, seed: str) -> tuple[Outcome, dict | None]:
    """Count ranked ballots (an empty ranking is an abstention); returns the outcome and the
    count's record, round by round, for the announcement, the chart and the decision log."""
    needed = quorum.required(members)
    if len(rankings) < needed:
        return Outcome(NO_QUORUM, explanation=f"{len(rankings)} of the {needed} ballots needed"), None
    ranked_ballots = [ranking for ranking in rankings if ranking]
    if not ranked_ballots:
        return Outcome(REJECTED, explanation="nobody ranked an option"), None
    if seats == 1:
        count = ranked.irv(ranked_ballots, options, seed)
        how = f"instant runoff, {len(count.stages)} round{'s' if len(count.stages) != 1 else ''}"
    else:
        count = ranked.stv(ranked_ballots, options, seats, seed)
        how = f"STV (Scottish rules), quota {count.quota} for {seats} seats"
    if not count.winners:
        return Outcome(REJECTED, explanation=how), count_record(count, seed)
    return Outcome(CHOSEN, count.winners, how), count_record(count, seed)


def count_record(count: ranked.Count, seed: str) -> dict:
    """A ranked count as plain JSON (decimals as strings, so nothing is rounded on the way)."""
    return {"method": count.method, "seats": count.seats, "quota": str(count.quota), "valid": count.valid,
            "seed": seed, "winners": list(count.winners),
            "stages": [{"number": stage.number, "action": stage.action, "subject": stage.subject,
                        "transfers": {name: str(value) for name, value in stage.transfers.items()},
                        "exhausted": str(stage.exhausted),
                        "totals": {name: str(value) for name, value in stage.totals.items()},
                        "elected": list(stage.elected), "tie": stage.tie} for stage in count.stages]}


# Renewal reviews: one ballot keeps or drops several items at once ----------------------------

KEEP, DROP = "+", "-"


def encode_marks(marks: Mapping[int, bool]) -> str:
    """A renewal ballot as stored: `+1 -2 +4` (item positions, kept +, dropped -), in order."""
    return " ".join(f"{KEEP if kept else DROP}{position}" for position, kept in sorted(marks.items()))


def decode_marks(choice: str) -> dict[int, bool] | None:
    """`+1 -2 +4` → {1: True, 2: False, 4: True}; None if it is not a renewal ballot."""
    marks: dict[int, bool] = {}
    for word in choice.split():
        sign, number = word[:1], word[1:]
        if sign not in (KEEP, DROP) or not number.isdigit() or not number.isascii() or int(number) in marks:
            return None
        marks[int(number)] = sign == KEEP
    return marks or None


@dataclass(frozen=True)
class ItemOutcome:
    position: int
    keep: int
    drop: int
    outcome: Outcome

    @property
    def kept(self) -> bool:
        return self.outcome.carried


def decide_items(rule: str, quorum: Quorum, members: int, ballots: Sequence[Mapping[int, bool]],
                 positions: Sequence[int]) -> list[ItemOutcome]:
    """Each item of a renewal review decided on its own under `rule`: keep is yes, drop is no,
    and a ballot that leaves an item out abstains on it (so it counts toward quorum). Renewal
    is earned: an item nobody kept is not kept, whatever the rule (consent would keep it)."""
    decided = []
    for position in positions:
        keep = sum(1 for marks in ballots if marks.get(position) is True)
        drop = sum(1 for marks in ballots if marks.get(position) is False)
        counts = {YES: keep, NO: drop, ABSTAIN: len(ballots) - keep - drop, BLOCK: 0}
        outcome = decide(rule, quorum, members, counts)
        if outcome.carried and keep == 0:
            outcome = Outcome(REJECTED, explanation="nobody kept it")
        decided.append(ItemOutcome(position, keep, drop, outcome))
    return decided


def renewal_outcome(ballots: Sequence[Mapping[int, bool]], labels: Sequence[str], decided: Sequence[ItemOutcome],
                    quorum: Quorum, members: int) -> tuple[Outcome, dict[str, int]]:
    """A renewal review as one decision: its counts are the ballots, its winners the items kept."""
    counts = {"ballots": len(ballots)}
    needed = quorum.required(members)
    kept = tuple(labels[item.position - 1] for item in decided if item.kept)
    if len(ballots) < needed:
        return Outcome(NO_QUORUM, kept, f"{len(ballots)} of the {needed} ballots needed; nothing was renewed"), counts
    if not kept:
        return Outcome(REJECTED, kept, "nothing was kept"), counts
    return Outcome(PASSED, kept, f"kept {len(kept)} of {len(labels)}"), counts
