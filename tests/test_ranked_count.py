"""Ranked counts (bot.governance.ranked): instant runoff and STV with the Scottish rules.

Published examples, hand-worked ties and edge cases, then property tests that cross-check
random elections against implementations that live only here: pyrankvote for IRV, and a
second STV written as a plain per-ballot loop in integer units of 0.00001.
"""

from __future__ import annotations

import hashlib
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from bot.governance.ranked import Count, irv, lot_pick, stv

try:
    import pyrankvote
except ImportError:  # a test extra: pip install -e '.[test]'
    pyrankvote = None

D = Decimal


def totals_at(count: Count, stage: int) -> dict[str, Decimal]:
    return count.stages[stage - 1].totals


# --- published examples ------------------------------------------------------------------------------

FOOD = ["Oranges", "Pears", "Chocolate", "Strawberries", "Hamburgers"]
FOOD_BALLOTS = ([["Oranges"]] * 4 + [["Pears", "Oranges"]] * 2 + [["Chocolate", "Strawberries"]] * 8
                + [["Chocolate", "Hamburgers"]] * 4 + [["Strawberries"]] + [["Hamburgers"]])


def test_wikipedia_food_election_stv():
    """en.wikipedia.org/wiki/Single_transferable_vote, the food example: 20 voters, 3 seats."""
    count = stv(FOOD_BALLOTS, FOOD, 3, "seed")
    assert (count.method, count.seats, count.quota, count.valid) == ("stv", 3, D(6), 20)
    assert count.winners == ("Chocolate", "Oranges", "Strawberries")
    first, surplus, pears, hamburgers, last = count.stages
    assert first.action == "first" and first.elected == ("Chocolate",)
    assert first.totals == {"Oranges": D(4), "Pears": D(2), "Chocolate": D(12), "Strawberries": D(1),
                            "Hamburgers": D(1)}
    # Chocolate's surplus of 6 over 12 ballots: every ballot moves on at 0.5.
    assert (surplus.action, surplus.subject) == ("surplus", "Chocolate")
    assert surplus.transfers == {"Strawberries": D(4), "Hamburgers": D(2)}
    assert surplus.exhausted == 0
    assert surplus.totals == {"Oranges": D(4), "Pears": D(2), "Chocolate": D(6), "Strawberries": D(5),
                              "Hamburgers": D(3)}
    assert (pears.action, pears.subject, pears.transfers, pears.elected) == (
        "exclude", "Pears", {"Oranges": D(2)}, ("Oranges",))
    # Hamburgers' ballots: four at 0.5 (Chocolate > Hamburgers) and one at 1, none with a next preference.
    assert (hamburgers.action, hamburgers.subject, hamburgers.transfers) == ("exclude", "Hamburgers", {})
    assert hamburgers.exhausted == D(3)
    assert (last.action, last.elected, last.transfers) == ("elect-remaining", ("Strawberries",), {})
    assert last.totals["Strawberries"] == D(5)
    assert all(stage.tie is None for stage in count.stages)


TENNESSEE = ["Memphis", "Nashville", "Chattanooga", "Knoxville"]
TENNESSEE_BALLOTS = ([["Memphis", "Nashville", "Chattanooga", "Knoxville"]] * 42
                     + [["Nashville", "Chattanooga", "Knoxville", "Memphis"]] * 26
                     + [["Chattanooga", "Knoxville", "Nashville", "Memphis"]] * 15
                     + [["Knoxville", "Chattanooga", "Nashville", "Memphis"]] * 17)


def test_wikipedia_tennessee_irv():
    """en.wikipedia.org/wiki/Instant-runoff_voting, the Tennessee capital example."""
    count = irv(TENNESSEE_BALLOTS, TENNESSEE, "seed")
    assert (count.method, count.seats, count.valid) == ("irv", 1, 100)
    assert count.winners == ("Knoxville",)
    assert [(s.action, s.subject) for s in count.stages] == [
        ("first", None), ("exclude", "Chattanooga"), ("exclude", "Nashville")]
    assert totals_at(count, 1) == {"Memphis": 42, "Nashville": 26, "Chattanooga": 15, "Knoxville": 17}
    assert count.stages[1].transfers == {"Knoxville": D(15)}
    assert count.stages[2].transfers == {"Knoxville": D(26)}  # through Chattanooga, already out
    assert totals_at(count, 3) == {"Memphis": 42, "Nashville": 0, "Chattanooga": 0, "Knoxville": 58}
    assert count.stages[2].elected == ("Knoxville",)
    assert count.quota == 51  # majority of the 100 votes still in play in the final round


# --- ties ----------------------------------------------------------------------------------------------

def test_lot_pick_is_the_published_rule():
    tied = ["Carol", "alice", "Bob"]
    index = int(hashlib.sha256(b"abc123:4").hexdigest(), 16) % 3
    assert lot_pick("abc123", 4, tied) == sorted(tied)[index]
    assert lot_pick("abc123", 4, tied) == lot_pick("abc123", 4, list(reversed(tied)))  # order given is irrelevant
    assert {lot_pick(f"seed{i}", 2, ["A", "B"]) for i in range(20)} == {"A", "B"}


def test_exclusion_tie_broken_by_an_earlier_stage():
    # Stage 1: A 5, B 3, C 2, D 1. D goes out, to C: B and C tie with 3; C had fewer at stage 1.
    ballots = [["A"]] * 5 + [["B"]] * 3 + [["C", "B"]] * 2 + [["D", "C", "B"]]
    count = irv(ballots, ["A", "B", "C", "D"], "seed")
    assert [s.subject for s in count.stages[1:]] == ["D", "C"]
    assert count.stages[2].tie == "B and C tied with 3; C had fewer at stage 1"
    assert count.winners == ("B",)  # B 6 of 11
    assert count.stages[1].tie is None


def test_tie_looks_at_the_most_recent_stage_where_they_differed():
    """X and Y tie with 6 at stage 3; X had fewer at stage 1 but more at stage 2. SSI 2007/42
    rule 51(2) looks at the most recent preceding stage where they differed: Y goes, X wins."""
    ballots = ([["A"]] * 11 + [["Y", "X"]] * 5 + [["X", "Y"]] * 4 + [["P", "X", "Y"]] * 2
               + [["Q", "Y", "X"]] + [["Q"]] * 2)
    count = irv(ballots, ["A", "X", "Y", "P", "Q"], "seed")
    assert [s.subject for s in count.stages[1:]] == ["P", "Q", "Y"]
    assert totals_at(count, 3) == {"A": 11, "X": 6, "Y": 6, "P": 0, "Q": 0}
    assert count.stages[3].tie == "X and Y tied with 6; Y had fewer at stage 2"
    assert count.winners == ("X",)
    same_in_stv = stv(ballots, ["A", "X", "Y", "P", "Q"], 1, "seed")
    assert [s.subject for s in same_in_stv.stages[1:4]] == ["P", "Q", "Y"]
    assert same_in_stv.stages[3].tie == "X and Y tied with 6; Y had fewer at stage 2"


def test_tie_at_every_stage_is_drawn_by_lot():
    ballots = [["A"], ["A"], ["B"], ["B"]]
    outcomes = set()
    for seed in ("alpha", "beta", "gamma", "delta", "0123456789abcdef"):
        count = irv(ballots, ["A", "B"], seed)
        excluded = lot_pick(seed, 2, ["A", "B"])
        other = "B" if excluded == "A" else "A"
        assert count.stages[1].subject == excluded
        assert count.winners == (other,)
        shown = seed if len(seed) <= 8 else seed[:8] + "…"
        assert count.stages[1].tie == f"A and B tied at every stage; lot with seed {shown} picked {excluded}"
        outcomes.add(other)
    assert outcomes == {"A", "B"}  # a different seed can give the other result


def test_lot_among_three_tied_at_every_stage():
    # Stage 1: A 5, B 2, C 1, D 1, E 0, F 1. E goes (fewest), then C, D and F are equal at both stages.
    ballots = [["A"]] * 5 + [["B"]] * 2 + [["C"]] + [["D"]] + [["F", "B"]]
    count = irv(ballots, ["A", "B", "C", "D", "E", "F"], "s1")
    assert count.stages[1].subject == "E" and count.stages[1].tie is None
    picked = lot_pick("s1", 3, ["C", "D", "F"])
    assert count.stages[2].subject == picked
    assert count.stages[2].tie == f"C, D and F tied at every stage; lot with seed s1 picked {picked}"


def test_three_way_tie_narrowed_by_an_earlier_stage_then_lot():
    # Stage 1: A 10, B 4, C 3, D 3, E 2. E goes, one to C and one to D: B, C and D tie with 4.
    # C and D had fewer at stage 1 and were equal at stage 2, so the lot (stage 3) picks between them.
    ballots = [["A"]] * 10 + [["B"]] * 4 + [["C"]] * 3 + [["D"]] * 3 + [["E", "C"]] + [["E", "D"]]
    count = irv(ballots, ["A", "B", "C", "D", "E"], "s2")
    assert count.stages[1].subject == "E"
    picked = lot_pick("s2", 3, ["C", "D"])
    assert count.stages[2].subject == picked
    assert count.stages[2].tie == (f"B, C and D tied with 4; C and D had fewer at stage 1 and were equal at every "
                                   f"other stage; lot with seed s2 picked {picked}")


def test_equal_surpluses_by_lot_and_by_an_earlier_stage():
    # 3 seats, 14 ballots, quota 4. A and B both 5: equal surpluses at every stage → lot.
    ballots = [["A", "C"]] * 5 + [["B", "D"]] * 5 + [["C"]] * 2 + [["D"]] * 2
    thirds = set()
    for seed in ("alpha", "beta", "gamma", "delta", "epsilon"):
        count = stv(ballots, ["A", "B", "C", "D"], 3, seed)
        first = lot_pick(seed, 2, ["A", "B"])
        assert count.quota == 4 and count.stages[0].elected == ("A", "B")
        assert (count.stages[1].action, count.stages[1].subject) == ("surplus", first)
        assert count.stages[1].tie.startswith("A and B tied at every stage; lot with seed ")
        # The first surplus lifts C (or D) to 3 a stage earlier, which then settles C against D.
        fed = "C" if first == "A" else "D"
        starved = "D" if fed == "C" else "C"
        assert count.stages[3].subject == starved
        assert count.stages[3].tie == f"C and D tied with 3; {starved} had fewer at stage 2"
        assert count.winners == ("A", "B", fed)
        thirds.add(fed)
    assert thirds == {"C", "D"}


def test_equal_surpluses_settled_by_an_earlier_stage_and_truncation():
    # 4 seats, 37 ballots, quota 8. A's surplus (8 of 16, value 0.5) lifts B 3→9 and C 7→9.
    ballots = ([["A", "B", "F"]] * 12 + [["A", "C", "E"]] * 4 + [["B", "E"]] * 3 + [["C", "D"]] * 7
               + [["D"]] * 5 + [["E"]] * 4 + [["F"]] * 2)
    count = stv(ballots, ["A", "B", "C", "D", "E", "F"], 4, "seed")
    assert count.quota == 8
    assert count.stages[1].elected == ("C", "B")  # equal 9: C had more at stage 1
    third = count.stages[2]
    assert (third.action, third.subject) == ("surplus", "C")
    assert third.tie == "B and C tied with 9; C had more at stage 1"
    # C's surplus 1 over a total of 9: value-1 ballots move at 0.11111, the 0.5 ones at 0.05555.
    assert third.transfers == {"D": D("0.77777"), "E": D("0.22220")}
    assert third.exhausted == D("0.00003")
    assert third.totals["C"] == D(8)


# --- truncation, exhaustion, dirty ballots, edges ---------------------------------------------------

def test_surplus_truncated_to_five_places():
    # 2 seats, 4 ballots, quota 2: A's surplus of 1 over 3 ballots gives each 1/3 → 0.33333.
    ballots = [["A", "B"], ["A", "C"], ["A", "D"], ["E"]]
    count = stv(ballots, ["A", "B", "C", "D", "E"], 2, "seed")
    surplus = count.stages[1]
    assert surplus.transfers == {"B": D("0.33333"), "C": D("0.33333"), "D": D("0.33333")}
    assert surplus.exhausted == D("0.00001")  # what truncation cut off
    assert surplus.totals == {"A": D(2), "B": D("0.33333"), "C": D("0.33333"), "D": D("0.33333"), "E": D(1)}
    assert str(surplus.totals["B"]) == "0.33333"
    assert count.winners == ("A", "E")


def test_partial_rankings_exhaust_and_leave_the_majority():
    ballots = [["A"]] * 6 + [["B"]] * 4 + [["C", "B"]] + [["C"]] * 2
    count = irv(ballots, ["A", "B", "C"], "seed")
    assert count.stages[0].elected == ()  # A 6 of 13 is no majority
    assert (count.stages[1].subject, count.stages[1].transfers, count.stages[1].exhausted) == (
        "C", {"B": D(1)}, D(2))
    assert count.winners == ("A",) and count.stages[1].elected == ("A",)  # 6 of the 11 still in play
    assert count.quota == 6


def test_invalid_names_and_repeats_are_skipped():
    dirty = [["X", "A", "A", "B"], ["B", "B", "Nobody", "C"], ["X"], [], ["Nobody", "Nobody"], ["C", "A", "C"]]
    clean = [["A", "B"], ["B", "C"], ["C", "A"]]
    for count_fn in (lambda b: irv(b, ["A", "B", "C"], "s"), lambda b: stv(b, ["A", "B", "C"], 2, "s")):
        assert count_fn(dirty) == count_fn(clean)
        assert count_fn(dirty).valid == 3


def test_no_ballots_and_no_candidates():
    for count in (irv([], ["A", "B"], "s"), irv([["X"], []], ["A", "B"], "s"), stv([], ["A", "B"], 2, "s")):
        assert count.winners == () and count.valid == 0 and len(count.stages) == 1
        assert count.stages[0].totals == {"A": 0, "B": 0} and count.stages[0].action == "first"
    assert irv([["A"]], [], "s").winners == ()
    assert stv([["A"]], [], 2, "s").winners == ()


def test_one_candidate():
    assert irv([["A"], ["A", "B"]], ["A"], "s").winners == ("A",)
    count = stv([["A"]] * 3, ["A"], 2, "s")
    assert count.winners == ("A",) and count.quota == 2 and len(count.stages) == 1


def test_more_seats_than_candidates():
    count = stv([["A"]] * 3 + [["B"]], ["A", "B"], 3, "s")
    assert count.quota == 2 and count.winners == ("A", "B")
    assert [(s.action, s.elected) for s in count.stages] == [("first", ("A",)), ("elect-remaining", ("B",))]
    # Rule 52: continuing candidates fill the seats left even without votes.
    assert stv([["A"]], ["A", "B", "C"], 5, "s").winners == ("A", "B", "C")


def test_last_seats_filled_without_transferring_the_surplus():
    # 2 seats; A elected at stage 1, and only B is left for the last seat: rule 52, no transfer.
    count = stv([["A", "B"]] * 5 + [["B"]], ["A", "B"], 2, "s")
    assert [(s.action, s.elected) for s in count.stages] == [("first", ("A",)), ("elect-remaining", ("B",))]
    assert count.stages[1].totals["A"] == D(5)


def test_bad_input():
    with pytest.raises(ValueError):
        irv([["A"]], ["A", "A"], "s")
    with pytest.raises(ValueError):
        stv([["A"]], ["A"], 0, "s")
    with pytest.raises(TypeError):
        irv(["AB"], ["A", "B"], "s")


# --- independent implementations (only here) ---------------------------------------------------------

UNIT = 100_000  # 1 vote = 100,000 units of 0.00001


def reference_clean(ballots, candidates):
    """Candidate indices in ranked order, first mention only."""
    position = {name: i for i, name in enumerate(candidates)}
    return [list(dict.fromkeys(position[name] for name in ballot if name in position)) for ballot in ballots]


def reference_break_tie(tied, history, fewest, seed, stage, names):
    """The published tie rule, written out again: the most recent differing stage, then the lot."""
    for snapshot in reversed(history):
        best = min(snapshot[c] for c in tied) if fewest else max(snapshot[c] for c in tied)
        tied = [c for c in tied if snapshot[c] == best]
        if len(tied) == 1:
            return tied[0]
    by_name = sorted(names[c] for c in tied)
    return names.index(by_name[int(hashlib.sha256(f"{seed}:{stage}".encode()).hexdigest(), 16) % len(by_name)])


def reference_choose(pool, totals, history, fewest, seed, stage, names):
    """(chosen, was_tied)."""
    target = min(totals[c] for c in pool) if fewest else max(totals[c] for c in pool)
    tied = [c for c in pool if totals[c] == target]
    if len(tied) == 1:
        return tied[0], False
    return reference_break_tie(tied, history, fewest, seed, stage, names), True


def reference_irv(ballots, candidates, seed):
    """Plain per-ballot IRV in integers. Returns (winner, excluded in order, totals per round, tied)."""
    names = list(candidates)
    rankings = [r for r in reference_clean(ballots, names) if r]
    out: set[int] = set()
    history, excluded, tied_any = [], [], False
    while True:
        totals = [0] * len(names)
        for ranking in rankings:
            live = [c for c in ranking if c not in out]
            if live:
                totals[live[0]] += 1
        history.append(totals)
        pool = [c for c in range(len(names)) if c not in out]
        top = max(pool, key=lambda c: totals[c])
        if 2 * totals[top] > sum(totals) or len(pool) == 1:
            return names[top], excluded, history, tied_any
        loser, tied = reference_choose(pool, totals, history, True, seed, len(history) + 1, names)
        tied_any |= tied
        out.add(loser)
        excluded.append(names[loser])


def reference_stv(ballots, candidates, seats, seed):
    """Scottish STV as a plain loop over single ballots, values in integer units of 0.00001.
    Returns a list of stages (action, subject, totals, exhausted) in units, the winners, and
    whether any tie (exclusion, surplus, or order of election) had to be broken."""
    names = list(candidates)
    n = len(names)
    papers = [[r, 0, UNIT] for r in reference_clean(ballots, names) if r]  # ranking, position, value
    valid = len(papers)
    quota = (valid // (seats + 1) + 1) * UNIT
    HOPEFUL, ELECTED, OUT = "hopeful", "elected", "out"
    state = [HOPEFUL] * n
    totals = [0] * n
    for ranking, _, value in papers:
        totals[ranking[0]] += value
    history, stages, winners = [], [], []
    ties = False

    def snapshot(action, subject, exhausted):
        history.append(list(totals))
        stages.append((action, subject, list(totals), exhausted))

    def elect(pool):
        nonlocal ties
        ordered = sorted(pool, key=lambda c: (-totals[c], *(-h[c] for h in reversed(history)), c))
        for a, b in zip(ordered, ordered[1:], strict=False):
            ties |= totals[a] == totals[b]
        for c in ordered:
            state[c] = ELECTED
            winners.append(names[c])

    if valid == 0 or n == 0:
        snapshot("first", None, 0)
        return stages, winners, ties
    elect([c for c in range(n) if totals[c] >= quota])
    snapshot("first", None, 0)
    while len(winners) < seats:
        hopeful = [c for c in range(n) if state[c] == HOPEFUL]
        if len(hopeful) <= seats - len(winners):
            if hopeful:
                elect(hopeful)
                snapshot("elect-remaining", None, 0)
            break
        pending = [names.index(w) for w in winners if totals[names.index(w)] > quota]
        stage = len(stages) + 1
        if pending:
            c, tied = reference_choose(pending, totals, history, False, seed, stage, names)
            surplus, total = totals[c] - quota, totals[c]
            action, moved = "surplus", 0
            for paper in papers:
                if paper[0][paper[1]] == c and paper[2] >= 0:
                    paper[2] = paper[2] * surplus // total  # truncated to 5 places
                    moved += paper[2]
            totals[c] = quota
            exhausted = surplus - moved  # corrected below for papers that find no one
        else:
            c, tied = reference_choose(hopeful, totals, history, True, seed, stage, names)
            state[c] = OUT
            action, exhausted = "exclude", 0
            totals[c] = 0
        ties |= tied
        for paper in papers:
            ranking, position, value = paper
            if value < 0 or ranking[position] != c:
                continue
            position += 1
            while position < len(ranking) and state[ranking[position]] != HOPEFUL:
                position += 1
            if position == len(ranking):
                exhausted += value
                paper[2] = -1  # gone for good
            else:
                paper[1] = position
                totals[ranking[position]] += value
        elect([h for h in range(n) if state[h] == HOPEFUL and totals[h] >= quota])
        snapshot(action, names[c], exhausted)
    return stages, winners, ties


# --- property tests --------------------------------------------------------------------------------------

NAMES = "ABCDEFGH"


@st.composite
def elections(draw, min_candidates=3, max_candidates=8, max_ballots=60):
    candidates = list(NAMES[:draw(st.integers(min_candidates, max_candidates))])
    ballot = st.tuples(st.permutations(candidates), st.integers(0, len(candidates))).map(lambda t: t[0][:t[1]])
    ballots = draw(st.lists(ballot, min_size=1, max_size=max_ballots))
    seed = draw(st.text("0123456789abcdef", min_size=1, max_size=12))
    return candidates, ballots, seed


# Sizes chosen to keep this file under 10 s on the project's 2-core machines.
PROPERTY = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])


def units(value: Decimal) -> int:
    scaled = value * UNIT
    assert scaled == scaled.to_integral_value(), value  # never more than 5 decimal places
    return int(scaled)


@pytest.mark.skipif(pyrankvote is None, reason="pyrankvote is not installed (pip install -e '.[test]')")
@PROPERTY
@given(elections())
def test_irv_agrees_with_pyrankvote_when_no_tie(election):
    """pyrankvote breaks ties differently (second choices, then random) and elects on ≥ half,
    so only counts without a tie in any round are compared: they must name the same winner."""
    candidates, ballots, seed = election
    winner, _, _, tied = reference_irv(ballots, candidates, seed)
    assume(not tied and any(ballots))
    people = {name: pyrankvote.Candidate(name) for name in candidates}
    theirs = pyrankvote.instant_runoff_voting(
        list(people.values()), [pyrankvote.Ballot([people[n] for n in b]) for b in ballots])
    assert [c.name for c in theirs.get_winners()] == [winner]
    assert irv(ballots, candidates, seed).winners == (winner,)


@PROPERTY
@given(elections())
def test_irv_agrees_with_the_reference_round_by_round(election):
    candidates, ballots, seed = election
    winner, excluded, history, tied = reference_irv(ballots, candidates, seed)
    event("tie" if tied else "no tie")
    count = irv(ballots, candidates, seed)
    if not any(ballots):
        assert count.winners == () and len(count.stages) == 1
        return
    assert count.winners == (winner,)
    assert [s.subject for s in count.stages[1:]] == excluded
    assert [list(s.totals.values()) for s in count.stages] == history
    assert any(s.tie for s in count.stages) == tied


@PROPERTY
@given(elections(), st.integers(2, 3))
def test_stv_agrees_with_the_reference(election, seats):
    candidates, ballots, seed = election
    stages, winners, tied = reference_stv(ballots, candidates, seats, seed)
    event("tie" if tied else "no tie")
    count = stv(ballots, candidates, seats, seed)
    assert list(count.winners) == winners
    assert len(count.stages) == len(stages)
    for ours, (action, subject, totals, exhausted) in zip(count.stages, stages, strict=True):
        assert (ours.action, ours.subject) == (action, subject)
        assert [units(v) for v in ours.totals.values()] == totals
        assert units(ours.exhausted) == exhausted


def check_invariants(count: Count, candidates: list[str]) -> None:
    cumulative_exhausted = D(0)
    previous = None
    winners: list[str] = []
    gone: set[str] = set()  # elected or excluded: receives nothing more
    for number, stage in enumerate(count.stages, start=1):
        assert stage.number == number
        assert (stage.action == "first") == (number == 1)
        assert list(stage.totals) == candidates
        assert all(v >= 0 for v in stage.totals.values()) and stage.exhausted >= 0
        assert all(v > 0 for v in stage.transfers.values())
        cumulative_exhausted += stage.exhausted
        assert sum(stage.totals.values(), D(0)) + cumulative_exhausted == count.valid  # exactly
        if previous is not None:
            assert not (set(stage.transfers) & gone)
            for name in candidates:
                if name != stage.subject:
                    assert stage.totals[name] - previous[name] == stage.transfers.get(name, 0)
            if stage.subject is not None:
                moved = previous[stage.subject] - stage.totals[stage.subject]
                assert moved == sum(stage.transfers.values(), D(0)) + stage.exhausted
                gone.add(stage.subject)
        for name in stage.elected:
            if stage.action != "elect-remaining":
                assert stage.totals[name] >= count.quota
        winners.extend(stage.elected)
        gone.update(stage.elected)
        previous = stage.totals
    assert tuple(winners) == count.winners
    assert len(set(winners)) == len(winners)


@PROPERTY
@given(elections(min_candidates=1), st.integers(1, 5))
def test_stv_invariants(election, seats):
    candidates, ballots, seed = election
    count = stv(ballots, candidates, seats, seed)
    assert count.quota == count.valid // (seats + 1) + 1
    check_invariants(count, candidates)
    expected = min(seats, len(candidates)) if count.valid else 0
    assert len(count.winners) == expected
    for stage in count.stages:
        for value in (*stage.totals.values(), *stage.transfers.values(), stage.exhausted):
            units(value)  # exactly 5 decimal places at most
        if stage.action == "surplus":
            assert stage.totals[stage.subject] == count.quota


@PROPERTY
@given(elections(min_candidates=1))
def test_irv_invariants(election):
    candidates, ballots, seed = election
    count = irv(ballots, candidates, seed)
    check_invariants(count, candidates)
    if not count.valid:
        assert count.winners == ()
        return
    final = count.stages[-1]
    in_play = sum(final.totals.values(), D(0))
    assert len(count.winners) == 1 and 2 * final.totals[count.winners[0]] > in_play
    assert count.quota == int(in_play) // 2 + 1
    excluded: set[str] = set()
    for before, stage in zip(count.stages, count.stages[1:], strict=False):
        assert not before.elected and stage.action == "exclude"
        # The one excluded had the fewest votes among those still in.
        assert before.totals[stage.subject] == min(v for name, v in before.totals.items() if name not in excluded)
        excluded.add(stage.subject)


@settings(PROPERTY, max_examples=50)
@given(elections(), st.data())
def test_junk_names_and_repeats_change_nothing(election, data):
    candidates, ballots, seed = election
    dirty = []
    for ballot in ballots:
        ballot = list(ballot)
        for _ in range(data.draw(st.integers(0, 3))):
            extra = data.draw(st.sampled_from(["zz", "", "a", *ballot[:1]]))  # unknown, or a repeat
            ballot.insert(data.draw(st.integers(0, len(ballot))), extra)
        dirty.append(ballot)
    assert irv(dirty, candidates, seed) == irv(ballots, candidates, seed)
    assert stv(dirty, candidates, 2, seed) == stv(ballots, candidates, 2, seed)

