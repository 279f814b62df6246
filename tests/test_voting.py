"""Every decision rule, quorum and ties — the pure functions in bot.governance.voting."""

import pytest

from bot.commands.args import Quorum
from bot.governance.voting import BLOCKED, CHOSEN, NO_QUORUM, PASSED, REJECTED, TIE, count_ballots, decide

NONE = Quorum(0, False)


def tally(yes=0, no=0, abstain=0, block=0):
    return {"yes": yes, "no": no, "abstain": abstain, "block": block}


@pytest.mark.parametrize("counts, result", [
    (tally(yes=3, no=2), PASSED),
    (tally(yes=2, no=2), REJECTED),       # a tie does not pass
    (tally(yes=1, no=2), REJECTED),
    (tally(yes=2, no=1, block=1), REJECTED),  # under majority a block counts as no
    (tally(abstain=5), REJECTED),
])
def test_majority(counts, result):
    assert decide("majority", NONE, 10, counts).result == result


@pytest.mark.parametrize("counts, result", [
    (tally(yes=2, no=1), PASSED),          # exactly two thirds passes
    (tally(yes=3, no=2), REJECTED),        # 60 % does not
    (tally(yes=6, no=3, abstain=10), PASSED),  # abstentions do not count against
    (tally(), REJECTED),
])
def test_two_thirds(counts, result):
    assert decide("two-thirds", NONE, 10, counts).result == result


@pytest.mark.parametrize("counts, result", [
    (tally(yes=1, no=4), PASSED),          # objections are heard, but only a block stops consent
    (tally(), PASSED),                     # consent by silence, when no quorum is required
    (tally(yes=9, block=1), BLOCKED),
])
def test_consent(counts, result):
    assert decide("consent", NONE, 10, counts).result == result


@pytest.mark.parametrize("counts, result", [
    (tally(yes=5, abstain=2), PASSED),
    (tally(yes=5, no=1), REJECTED),
    (tally(yes=5, block=1), BLOCKED),
    (tally(abstain=3), REJECTED),
])
def test_consensus(counts, result):
    assert decide("consensus", NONE, 10, counts).result == result


def test_abstain_counts_for_quorum_only():
    assert decide("majority", Quorum(4, False), 10, tally(yes=2, no=1)).result == NO_QUORUM
    assert decide("majority", Quorum(4, False), 10, tally(yes=2, no=1, abstain=1)).result == PASSED


def test_percentage_quorum_is_a_share_of_members_rounded_up():
    outcome = decide("majority", Quorum(50, True), 9, tally(yes=4))
    assert outcome.result == NO_QUORUM and "4 of the 5" in outcome.explanation
    assert decide("majority", Quorum(50, True), 9, tally(yes=4, no=1)).result == PASSED


def test_choice_polls_are_decided_by_plurality_and_ties_are_reported():
    options = ["Mon", "Tue", "Wed"]
    counts = count_ballots(["Tue", "Tue", "Mon", "abstain"], options)
    assert counts == {"Mon": 1, "Tue": 2, "Wed": 0, "abstain": 1}
    outcome = decide("majority", NONE, 10, counts, options)
    assert (outcome.result, outcome.winners) == (CHOSEN, ("Tue",))
    tie = decide("majority", NONE, 10, count_ballots(["Mon", "Wed"], options), options)
    assert (tie.result, tie.winners) == (TIE, ("Mon", "Wed"))
    assert decide("majority", NONE, 10, count_ballots(["abstain"], options), options).result == REJECTED


def test_elections_for_several_seats_take_the_top_and_leave_boundary_ties_open():
    options = ["Ana", "Ben", "Cy", "Di"]
    top = decide("majority", NONE, 10, {"Ana": 4, "Ben": 3, "Cy": 1, "Di": 0, "abstain": 0}, options, seats=2)
    assert (top.result, top.winners) == (CHOSEN, ("Ana", "Ben"))
    tied = decide("majority", NONE, 10, {"Ana": 4, "Ben": 2, "Cy": 2, "Di": 0, "abstain": 0}, options, seats=2)
    assert (tied.result, tied.winners) == (CHOSEN, ("Ana",))  # Ben and Cy tie for the last seat
    all_tied = decide("majority", NONE, 10, {"Ana": 1, "Ben": 1, "Cy": 1, "Di": 0, "abstain": 0}, options, seats=2)
    assert all_tied.result == TIE
    few = decide("majority", NONE, 10, {"Ana": 1, "Ben": 0, "Cy": 0, "Di": 0, "abstain": 0}, options, seats=3)
    assert (few.result, few.winners) == (CHOSEN, ("Ana",))
