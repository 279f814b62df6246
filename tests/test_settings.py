"""Group settings: validated, announced, recorded, and used by what opens next."""

import pytest
from sqlalchemy import select

from storage.models import SettingChange
from tests.harness import Room


@pytest.fixture
async def room(database_url):
    async with Room(database_url) as room:
        yield room


async def test_a_change_is_announced_recorded_and_applied(room):
    announced = await room.say("!set vote_duration 45s", as_="alice")
    assert "alice changed vote_duration: 3d → 45s" in announced
    with room.core.db.transaction() as session:
        change = session.scalars(select(SettingChange)).one()
        assert (change.key, change.old_value, change.new_value) == ("vote_duration", "3d", "45s")
    opened = await room.say("!propose Short vote", as_="alice")
    assert "(in 45 seconds)" in opened
    assert "#1 Short vote: rejected" in await room.wait("45s")


async def test_rule_quorum_and_timezone_are_used_by_new_proposals(room):
    await room.say("!set rule consent", as_="alice")
    await room.say("!set quorum 2", as_="alice")
    await room.say("!set timezone America/Bogota", as_="alice")
    opened = await room.say("!propose Share the van", as_="alice")
    assert "Rule: consent · quorum 2" in opened
    assert "Closes Thu 5 Mar 04:00 -05" in opened  # 09:00 UTC in Bogotá
    settings = await room.say("!settings")
    assert "rule = consent" in settings and "timezone = America/Bogota" in settings


@pytest.mark.parametrize("line, complaint", [
    ("!set vote_duration forever", "not a duration"),
    ("!set rule dictatorship", "not a rule"),
    ("!set quorum 120%", "at most 100%"),
    ("!set timezone Mars/Olympus", "not a time zone"),
    ("!set mandate_warnings", "value is missing"),
    ("!set colour blue", "no setting “colour”"),
])
async def test_bad_values_are_refused_and_change_nothing(room, line, complaint):
    reply = await room.say(line, as_="alice")
    assert "⚠️" in reply and complaint in reply
    with room.core.db.transaction() as session:
        assert session.scalars(select(SettingChange)).all() == []


async def test_setting_the_same_value_is_not_a_change(room):
    assert "already" in await room.say("!set rule majority", as_="alice")
    assert "mandate_warnings = 7d 1d" in await room.say("!settings")
    assert "mandate_warnings: 7d 1d → 2w 3d 1d" in await room.say("!set mandate_warnings 1d, 3d 14d")
