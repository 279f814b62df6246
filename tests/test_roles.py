"""Role rotation through the console room with a moved clock, on SQLite and PostgreSQL."""

import hashlib
import re

import pytest
from sqlalchemy import func, select

from storage.models import Lottery, Mandate, Role, Volunteer
from tests.harness import Room


@pytest.fixture
async def room(database_url):
    async with Room(database_url) as room:
        yield room


def open_mandates(room):
    with room.core.db.transaction() as session:
        return session.scalar(select(func.count()).select_from(Mandate).where(Mandate.ended_at.is_(None)))


async def volunteers(room, role, *names):
    for name in names:
        assert "stands for" in await room.say(f"!volunteer {role}", as_=name)


def recomputed_holder(drawn, candidates):
    """The pick of a one-seat draw, from the announcement alone (the rule written out again here)."""
    secret = re.search(r"Secret, revealed now: (\w+)", drawn)[1]
    texts = re.findall(r"^ +\d+\. .+?: (.*)$", drawn, re.M)
    seed = hashlib.sha256("\n".join([secret, *texts]).encode()).hexdigest()
    assert f"Seed: {seed}" in drawn
    counter = 0
    while True:
        number = int(hashlib.sha256(f"{seed}:{counter}".encode()).hexdigest(), 16)
        counter += 1
        if number < 2 ** 256 - 2 ** 256 % len(candidates):
            return candidates[number % len(candidates)]


async def test_a_full_rotation_cycle_with_a_verifiable_lottery(room):
    added = await room.say("!role add facilitator term=30d fill=lottery handover=\"Start on time\"", as_="alice")
    assert "defined the role facilitator: term 30d, 1 seat, max 1 term in a row, fill by lottery" in added
    await volunteers(room, "facilitator", "alice", "bob", "carol")
    opened = await room.say("!draw facilitator", as_="dan")
    assert "Candidates, in order of their platform id: 1. alice, 2. bob, 3. carol" in opened
    assert "Drawn Mon 2 Mar 09:10 UTC (in 10 minutes)" in opened and "!draw add <anything>" in opened
    assert "Lottery #1 for facilitator is open already" in await room.say("!draw facilitator")
    await room.say("!draw add the kettle just boiled", as_="erin")
    drawn = await room.wait("10m")
    holder = recomputed_holder(drawn, ["alice", "bob", "carol"])  # anyone can recompute it
    assert f"Seat 1 → {holder}" in drawn and "1. (the bot, at the opening): lottery #1 opened" in drawn
    assert "2. erin: the kettle just boiled" in drawn
    assert "every seat of facilitator is taken" in (await room.say("!draw facilitator")).lower()
    with room.core.db.transaction() as session:
        stored = session.scalars(select(Lottery)).one()
        assert holder in stored.candidates and stored.seed in drawn and stored.drawn_at is not None

    warned = await room.wait("23d")
    assert f"@{holder}'s term as facilitator ends" in warned and "(in 7 days)" in warned
    assert f"bot → {holder} (private)" in warned
    assert "@" + holder not in await room.wait("5d")  # nothing new until the 1-day warning
    assert "(in 1 day)" in await room.wait("1d")
    lapsed = await room.wait("1d")
    assert f"{holder}'s term as facilitator has ended" in lapsed and "Start on time" in lapsed
    assert "ends" not in await room.wait("3d")  # each warning and the lapse exactly once
    assert open_mandates(room) == 0

    await room.say("!volunteer facilitator", as_=holder)
    redrawn = await room.say("!draw facilitator")
    candidates = re.search(r"Candidates, in order of their platform id: (.*)", redrawn)[1]
    assert holder not in candidates  # nobody facilitates twice in a row
    assert "calendar" in (await room.say("!roles")).lower()


async def test_an_election_seats_its_winner_when_it_closes(room):
    await room.say("!role add treasurer term=90d", as_="alice")
    await volunteers(room, "treasurer", "bob", "carol")
    opened = await room.say("!elect treasurer", as_="alice")
    assert "Election: treasurer (1 seat)" in opened and "1. bob — 0" in opened and "2. carol — 0" in opened
    assert "already open" in await room.say("!elect treasurer", as_="dan")
    await room.say("!vote 1 carol", as_="alice")
    await room.say("!vote 1 2", as_="dan")
    await room.say("!vote 1 1", as_="dan")  # a changed ballot, never two
    await room.say("!vote 1 2", as_="erin")
    closed = await room.wait("3d")
    assert "chose carol" in closed and "carol now holds treasurer" in closed
    calendar = await room.say("!roles")
    assert "carol — until" in calendar and "term 1" in calendar


async def test_renewal_is_allowed_within_max_terms_and_refused_beyond(room):
    await room.say("!role add treasurer term=30d max_terms=2", as_="alice")
    await volunteers(room, "treasurer", "bob")
    await room.say("!draw treasurer now")
    opened = await room.say("!renew treasurer", as_="alice")
    assert "Renew bob as treasurer for another term" in opened
    await room.say("!vote 1 yes", as_="carol")
    renewed = await room.wait("3d")
    assert "bob holds treasurer for another term" in renewed and "term 2 in a row" in renewed
    refused = await room.say("!renew treasurer @bob", as_="carol")
    assert "held treasurer for 2 terms in a row and max_terms is 2" in refused
    with room.core.db.transaction() as session:
        mandate = session.scalars(select(Mandate)).one()
        assert (mandate.term_number, mandate.renewals) == (2, 1)
        assert (mandate.ends_at - mandate.started_at).days == 60


async def test_a_renewal_vote_closes_before_the_mandate_ends(room):
    await room.say("!role add host term=2d max_terms=3", as_="alice")
    await volunteers(room, "host", "bob")
    await room.say("!draw host now")
    await room.wait("1d")
    opened = await room.say("!renew host", as_="bob")
    assert "(in 1 day)" in opened  # not the default 3 days, which would come after the end
    await room.say("!vote 1 yes", as_="carol")
    result = await room.wait("1d")
    assert "bob holds host for another term" in result and "has ended" not in result


async def test_recall_passing_ends_the_mandate_at_once_and_failing_keeps_it(room):
    await room.say("!role add treasurer term=90d", as_="alice")
    await volunteers(room, "treasurer", "bob")
    await room.say("!draw treasurer now")
    await room.say("!recall treasurer missed two reports", as_="carol")
    await room.say("!vote 1 no", as_="dan")
    kept = await room.wait("3d")
    assert "rejected" in kept and "bob stays in treasurer" in kept
    assert open_mandates(room) == 1
    opened = await room.say("!recall treasurer @bob still no reports", as_="carol")
    assert "Recall bob from treasurer" in opened and "still no reports" in opened
    await room.say("!vote 2 yes", as_="carol")
    await room.say("!vote 2 yes", as_="dan")
    recalled = await room.wait("3d")
    assert "bob is recalled from treasurer; the seat is open" in recalled and "Next: !elect treasurer" in recalled
    assert open_mandates(room) == 0


async def test_stepping_down_is_celebrated_and_opens_the_seat(room):
    await room.say("!role add cook term=30d", as_="alice")
    await volunteers(room, "cook", "bob")
    await room.say("!draw cook now")
    stepped = await room.say("!stepdown cook", as_="bob")
    assert "bob steps down from cook — thank you" in stepped and "The seat is open" in stepped
    assert open_mandates(room) == 0
    assert "has ended" not in await room.wait("31d")  # no lapse for a mandate already ended


async def test_trainees_gate_renewal_and_flag_the_seat(room):
    await room.say("!role add keeper term=30d max_terms=3 trainees_required=2", as_="alice")
    await volunteers(room, "keeper", "bob")
    await room.say("!draw keeper now")
    refused = await room.say("!renew keeper", as_="alice")
    assert "needs 2 trainees to have shadowed it this term" in refused and "so far 0" in refused
    assert "0/2 trainees, not renewable yet" in await room.say("!roles")
    await room.say("!shadow keeper", as_="carol")
    await room.say("!shadow keeper", as_="dan")
    assert "trainees: carol, dan" in await room.say("!roles")
    assert "Renew bob as keeper" in await room.say("!renew keeper", as_="alice")
    assert "hold keeper yourself" in await room.say("!shadow keeper", as_="bob")


async def test_a_lone_volunteer_is_seated_only_after_the_objection_window(room):
    await room.say("!role add greeter term=30d fill=volunteer", as_="alice")
    offered = await room.say("!volunteer greeter", as_="bob")
    assert "Nobody is appointed silently" in offered and "Seat bob as greeter" in offered
    assert open_mandates(room) == 0
    seated = await room.wait("3d")
    assert "passed" in seated and "bob now holds greeter" in seated

    await room.say("!stepdown greeter", as_="bob")
    await room.say("!volunteer greeter", as_="carol")
    await room.say("!vote 2 block I'd rather we talk first", as_="dan")
    blocked = await room.wait("3d")
    assert "blocked" in blocked and "The seat stays open" in blocked
    assert open_mandates(room) == 0


async def test_auto_draw_opens_a_lottery_for_a_lapsed_lottery_seat_at_once(room):
    await room.say("!role add facilitator term=7d fill=lottery", as_="alice")
    await room.say("!set auto_draw on", as_="alice")
    await volunteers(room, "facilitator", "bob")
    assert "seed rests on the bot alone" in await room.say("!draw facilitator now")
    await volunteers(room, "facilitator", "carol")
    lapsed = await room.wait("7d")
    assert "bob's term as facilitator has ended" in lapsed and "🎲 Lottery #2 for facilitator: 1 seat" in lapsed
    assert "Candidates, in order of their platform id: 1. carol" in lapsed
    assert open_mandates(room) == 0
    drawn = await room.wait("10m")
    assert "Lottery #2 for facilitator: drawn" in drawn and "→ carol" in drawn
    assert open_mandates(room) == 1


async def test_opening_proposals_can_be_the_facilitators_task(room):
    await room.say("!role add facilitator term=30d", as_="alice")
    assert "no role “chair”" in await room.say("!set propose_role chair", as_="alice")
    await room.say("!set propose_role facilitator", as_="alice")
    assert "#1" in await room.say("!propose Nobody holds it yet, so anyone may", as_="bob")
    await volunteers(room, "facilitator", "carol")
    await room.say("!elect facilitator", as_="bob")
    await room.say("!vote 2 1", as_="bob")
    await room.wait("3d")
    refused = await room.say("!propose Paint the hall", as_="bob")
    assert "opening proposals is the facilitator's task (held by carol)" in refused
    assert "!volunteer facilitator" in refused
    assert "#3 Paint the hall" in await room.say("!propose Paint the hall", as_="carol")


async def test_role_definitions_are_edited_and_retired_in_the_open(room):
    await room.say("!role add scribe term=30d", as_="alice")
    edited = await room.say("!role edit scribe term=60d max_terms=2", as_="bob")
    assert "bob changed scribe (term, max_terms): term 60d, 1 seat, max 2 terms in a row" in edited
    await volunteers(room, "scribe", "carol")
    await room.say("!draw scribe now")
    retired = await room.say("!role remove scribe", as_="alice")
    assert "retired the role scribe; 1 mandate ended" in retired
    assert "No roles yet" in await room.say("!roles")
    assert "defined the role scribe" in await room.say("!role add scribe term=10d", as_="alice")


BAD = [
    ("!volunteer wizard", "There is no role “wizard”"),
    ("!draw facilitator", "Nobody eligible is standing for facilitator"),
    ("!elect facilitator", "Nobody eligible is standing"),
    ("!recall facilitator", "Nobody holds facilitator right now"),
    ("!renew facilitator", "Nobody holds facilitator right now"),
    ("!stepdown facilitator", "You do not hold facilitator"),
    ("!unvolunteer facilitator", "You are not standing for facilitator"),
    ("!role add facilitator term=3d", "exists already"),
    ("!role add cook", "term= is required"),
    ("!role add cook term=3d seats=0", "whole number from 1 to 50"),
    ("!role add <b>x</b> term=3d", "one word of letters"),
    ("!role edit facilitator", "Nothing to change"),
    ("!renew", "role is missing"),
]


@pytest.mark.parametrize("line, complaint", BAD)
async def test_bad_role_commands_get_a_clear_reply_and_change_nothing(room, line, complaint):
    await room.say("!role add facilitator term=30d", as_="alice")
    with room.core.db.transaction() as session:
        before = [session.scalar(select(func.count()).select_from(t)) for t in (Role, Mandate, Volunteer)]
    reply = await room.say(line, as_="bob")
    assert "⚠️" in reply and complaint in reply
    with room.core.db.transaction() as session:
        assert [session.scalar(select(func.count()).select_from(t)) for t in (Role, Mandate, Volunteer)] == before


async def test_recall_of_a_non_holder_and_a_full_seat_are_refused(room):
    await room.say("!role add treasurer term=30d", as_="alice")
    await volunteers(room, "treasurer", "bob", "carol")
    await room.say("!draw treasurer now")
    holder = "bob" if "bob — until" in await room.say("!roles") else "carol"
    other = "carol" if holder == "bob" else "bob"
    assert f"{other} does not hold treasurer" in await room.say(f"!recall treasurer @{other}", as_="dan")
    assert "Every seat of treasurer is taken" in await room.say("!elect treasurer", as_="dan")


async def test_the_history_shows_who_held_a_role_and_how_it_ended(room):
    await room.say("!role add host term=7d max_terms=2", as_="alice")
    await volunteers(room, "host", "bob")
    await room.say("!draw host now")
    await room.wait("8d")
    await volunteers(room, "host", "carol")
    await room.say("!draw host now")
    await room.say("!stepdown host", as_="carol")
    shown = await room.say("!role history host")
    assert "carol: 10 Mar 2026 – 10 Mar 2026, by lottery, stepped down" in shown
    assert "bob: 02 Mar 2026 – 09 Mar 2026, by lottery, expired" in shown


async def test_a_standing_volunteer_is_offered_a_seat_that_opens_later(room):
    await room.say("!role add greeter term=30d fill=volunteer", as_="alice")
    await room.say("!volunteer greeter", as_="bob")
    await room.wait("3d")
    await room.say("!volunteer greeter", as_="carol")  # no free seat: carol waits, standing
    await room.say("!recall greeter @bob", as_="dan")
    await room.say("!vote 2 yes", as_="dan")
    assert "bob is recalled" in await room.wait("3d")
    offered = await room.say("!volunteer greeter", as_="carol")
    assert "Seat carol as greeter" in offered
    assert "already standing" in await room.say("!volunteer greeter", as_="carol")


async def test_the_facilitator_may_close_a_proposal_early(room):
    await room.say("!role add facilitator term=30d", as_="alice")
    await room.say("!set propose_role facilitator", as_="alice")
    await room.say("!propose Paint the hall", as_="bob")  # nobody facilitates yet: anyone may propose
    assert "Only bob, who proposed #1, can close it early" in await room.say("!close 1", as_="carol")
    await volunteers(room, "facilitator", "carol")
    await room.say("!draw facilitator now")
    assert "#1 Paint the hall: rejected" in await room.say("!close 1", as_="carol")
