"""Property: under any sequence of commands and clock moves, no role has more
holders than seats, and nobody holds a seat beyond max_terms terms in a row.

The second half is checked independently of the bot's own bookkeeping: from
the stored mandates (start, end, renewals) a streak is recomputed."""

import itertools
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from bot.app import build_core
from bot.clock import ManualClock
from bot.config import DefaultsConfig
from bot.durations import parse_duration
from bot.events import ChatRef, ChoiceMade, CommandMessage, UserRef
from scheduler import jobs
from storage.models import Group, Mandate, Proposal, Role

MEMBERS = ["ana", "ben", "cy", "di"]
ROLE_NAMES = ["host", "keeper"]
_ids = itertools.count()


@pytest.fixture(scope="module")
def core(tmp_path_factory):
    core = build_core(f"sqlite:///{tmp_path_factory.mktemp('prop') / 'rotation.db'}", ManualClock(),
                      # The clock runs on across examples; groups from earlier examples would otherwise hold
                      # audits (each with a chart) and digests that have nothing to do with rotation.
                      DefaultsConfig(vote_duration="2d", digest="off", audit_every="3650d"))
    yield core
    core.db.dispose()


# Weighted so that seats actually fill, renew and rotate within a short sequence.
ACTIONS = (["volunteer {r}"] * 4 + ["draw {r}"] * 2 + ["draw {r} now"] * 2 + ["renew {r}"] * 3 + ["vote {n} yes"] * 5
           + ["elect {r}", "draw add {r}", "unvolunteer {r}", "recall {r}", "stepdown {r}", "shadow {r}", "vote {n} no",
              "vote {n} 1", "vote {n} 2", "close {n}"]
           + ["wait 12h", "wait 2d", "wait 2d", "wait 9d"])
commands = st.tuples(st.sampled_from(MEMBERS), st.sampled_from(ACTIONS), st.sampled_from(ROLE_NAMES),
                     st.integers(1, 4))


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(commands, min_size=25, max_size=80), seats=st.integers(1, 2), max_terms=st.integers(1, 2),
       auto_draw=st.booleans())
def test_seats_and_consecutive_terms_are_never_exceeded(core, steps, seats, max_terms, auto_draw):
    chat = ChatRef(platform="prop", chat_id=f"g{next(_ids)}")
    say = _sayer(core, chat)
    for name in ROLE_NAMES:
        say("ana", f"!role add {name} term=7d seats={seats} max_terms={max_terms} fill=lottery")
    if auto_draw:
        say("ana", "!set auto_draw on")
    for who, template, role, number in steps:
        if template.startswith("wait"):
            core.clock.advance(parse_duration(template.split()[1]))
            jobs.run_due_work(core)
        elif template.startswith("vote") and number % 2:
            core.handle(ChoiceMade(chat=chat, sender=UserRef(platform="prop", user_id=who), sender_name=who,
                                   payload=template.format(n=number), event_id=f"tap-{next(_ids)}"))
        else:
            say(who, "!" + template.format(r=role, n=number))
        _check_invariants(core, chat)


def _sayer(core, chat):
    def say(who, text):
        return core.handle(CommandMessage(chat=chat, sender=UserRef(platform="prop", user_id=who), sender_name=who,
                                          text=text, event_id=f"e-{next(_ids)}"))
    return say


def _check_invariants(core, chat):
    with core.db.transaction() as session:
        group = session.scalars(select(Group).where(Group.chat_id == chat.chat_id)).one()
        for role in session.scalars(select(Role).where(Role.group_id == group.id)):
            open_count = session.scalar(select(func.count()).select_from(Mandate).where(
                Mandate.role_id == role.id, Mandate.ended_at.is_(None)))
            assert open_count <= role.seats, f"{role.key}: {open_count} holders for {role.seats} seats"
            _check_streaks(session, role)
        # Every open role proposal refers to a role that exists in this group.
        for proposal in session.scalars(select(Proposal).where(Proposal.group_id == group.id,
                                                               Proposal.role_id.is_not(None))):
            assert session.get(Role, proposal.role_id).group_id == group.id


def _check_streaks(session, role):
    term = timedelta(seconds=role.term_seconds)
    mandates = session.scalars(select(Mandate).where(Mandate.role_id == role.id)
                               .order_by(Mandate.member_id, Mandate.started_at)).all()
    for _, held in itertools.groupby(mandates, key=lambda m: m.member_id):
        streak, previous_end = 0, None
        for mandate in held:
            continues = previous_end is not None and mandate.started_at - previous_end < term
            streak = (streak if continues else 0) + 1 + mandate.renewals
            assert streak <= role.max_terms, f"a member held {role.key} {streak} terms in a row"
            previous_end = mandate.ended_at or mandate.ends_at
