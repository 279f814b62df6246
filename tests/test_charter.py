"""The charter: a template the group adopts by proposal, amendments under the charter rule,
one open amendment per clause (also when two arrive at once), its history, and settings the
charter protects. On SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from bot.governance import charter
from storage.models import CharterAmendment, GroupSetting, LogEntry, SettingChange
from tests.harness import Room, gather


@pytest.fixture
async def room(database_url):
    async with Room(database_url) as room:
        await gather(room, ["alice", "bob", "carol"])
        yield room


def log_bodies(room, kind: str) -> list[dict]:
    with room.core.db.transaction() as session:
        return [json.loads(body) for body in session.scalars(
            select(LogEntry.body).where(LogEntry.kind == kind).order_by(LogEntry.seq))]


async def adopt_template(room) -> None:
    await room.say("!charter adopt", as_="alice")
    for name in ("alice", "bob", "carol"):
        await room.say("!vote 1 yes", as_=name)
    assert "The charter is now at version 1." in await room.wait("3d")


async def test_a_group_adopts_the_template_by_proposal_and_amends_it_clause_by_clause(room):
    empty = await room.say("!charter", as_="bob")
    assert "no charter yet" in empty and "!charter template" in empty
    template = await room.say("!charter template", as_="bob")
    for topic in ("Purpose", "Voluntary association", "Rotation and term limits", "Open books",
                  "Recall at any time", "Transparency by default, secrecy by necessity"):
        assert topic in template
    card = await room.say("!charter adopt", as_="alice")
    assert "#1 Adopt the starting charter (6 clauses)" in card and "Rule: two-thirds" in card
    assert "[Yes] [No] [Abstain] [Block]" in card
    assert "no charter yet" in await room.say("!charter")  # nothing changes before the vote
    await room.say("!vote 1 yes", as_="alice")
    await room.say("!vote 1 yes", as_="bob")
    await room.say("!vote 1 no", as_="carol")
    closed = await room.wait("3d")
    assert "#1 Adopt the starting charter (6 clauses): passed" in closed
    assert "The charter is now at version 1." in closed and "5. Recall at any time" in closed
    shown = await room.say("!charter", as_="carol")
    assert "Our charter (version 1)" in shown and "6. Transparency by default" in shown

    await room.say("!charter amend 3 Roles last <b>six</b> months & rotate", as_="bob")
    await room.say("!charter remove 2", as_="carol")
    await room.say("!charter add Meetings start on time", as_="alice")
    for number in (2, 3, 4):
        await room.say(f"!vote {number} yes", as_="alice")
        await room.say(f"!vote {number} yes", as_="bob")
    await room.say("!vote 3 no", as_="carol")  # 2 of 3: two thirds, enough
    await room.say("!vote 4 no", as_="carol")
    await room.say("!vote 4 no", as_="bob")  # 1 of 3: the new clause fails
    decided = await room.wait("3d")
    assert "#2 Charter: amend clause 3: passed" in decided
    assert "#3 Charter: remove clause 2: passed" in decided
    assert "#4 Charter: add a clause: rejected" in decided
    shown = await room.say("!charter")
    assert "Our charter (version 3)" in shown
    assert "3. Roles last <b>six</b> months & rotate" in shown  # the console shows text as members see it
    assert "Voluntary association" not in shown and "Meetings start on time" not in shown
    with room.core.db.transaction() as session:
        amended = charter.find_clause(session, 1, 3)
        assert amended.text == "Roles last <b>six</b> months & rotate"
    history = await room.say("!charter history")
    assert "v1 2026-03-05: adopted the starting charter: clauses 1–6 — decision #1" in history
    assert "v2 2026-03-08: amended clause 3: Roles last <b>six</b> months & rotate — decision #2" in history
    assert "v3 2026-03-08: removed clause 2: Voluntary association" in history and "decision #3" in history
    changes = log_bodies(room, "charter.changed")
    assert [(c["version"], c["change"], c["proposal"]) for c in changes] == [
        (1, "adopt", 1), (2, "amend", 2), (3, "remove", 3)]
    assert changes[1]["clauses"] == [{"number": 3, "text": "Roles last <b>six</b> months & rotate", "setting": None}]
    assert changes[2]["removed"] == [2]


async def test_html_in_a_clause_is_escaped_in_what_the_bot_sends(room):
    await adopt_template(room)
    await room.say("!charter amend 1 <script>alert(1)</script> is not a purpose", as_="bob")
    with room.core.db.transaction() as session:
        from storage.models import OutboxItem
        sent = " ".join(session.scalars(select(OutboxItem.action)))
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in sent and "<script>" not in sent


async def test_two_amendments_of_one_clause_are_refused_until_the_first_closes(room):
    await adopt_template(room)
    await room.say("!charter amend 3 Roles last a year", as_="bob")
    refused = await room.say("!charter amend 3 Roles last a month", as_="carol")
    assert "Clause 3 is already under discussion in #2" in refused
    assert "already under discussion in #2" in await room.say("!charter remove 3", as_="carol")
    assert "#3" in await room.say("!charter amend 4 Books open to all", as_="carol")  # another clause is fine
    await room.say("!withdraw 2", as_="bob")
    assert "#4 Charter: amend clause 3" in await room.say("!charter amend 3 Roles last a month", as_="carol")


async def test_two_amendments_sent_at_once_open_one_proposal(room):
    await adopt_template(room)
    first, second = await asyncio.gather(room.say("!charter amend 5 Recall needs a reason", as_="bob"),
                                         room.say("!charter amend 5 Recall needs two members", as_="carol"))
    assert "Clause 5 is already under discussion in #2" in first + second  # (the outputs overlap)
    with room.core.db.transaction() as session:
        assert len(list(session.scalars(select(CharterAmendment).where(CharterAmendment.is_open)))) == 1
    assert "#3" not in await room.say("!proposals")


async def test_the_database_refuses_a_second_open_amendment_of_a_clause(room):
    """The backstop under the check: two writers that both passed it cannot both commit."""
    await adopt_template(room)
    await room.say("!charter amend 3 Roles last a year", as_="bob")
    with pytest.raises(IntegrityError):
        with room.core.db.transaction() as session:
            opened = session.scalars(select(CharterAmendment).where(CharterAmendment.is_open)).one()
            session.add(CharterAmendment(proposal_id=1, group_id=opened.group_id, action="amend", target="clause:3",
                                         clause=3, text="Roles last a day"))
            session.flush()


async def test_bad_amendments_get_a_clear_reply_and_change_nothing(room):
    assert "already" not in await room.say("!charter")
    assert "Clause 9 does not exist" in await room.say("!charter amend 9 Something", as_="bob")
    await adopt_template(room)
    assert "Clause 9 does not exist; the charter's clauses are: 1, 2, 3, 4, 5, 6." in await room.say(
        "!charter amend 9 Something", as_="bob")
    assert "The text is missing" in await room.say("!charter add", as_="bob")
    assert "is not a number" in await room.say("!charter remove three", as_="bob")
    huge = await room.say("!charter add " + "word " * 200, as_="bob")
    assert "keep it under 600" in huge
    assert "says exactly that already" in await room.say(f"!charter amend 1 {charter.TEMPLATE[0]}", as_="bob")
    assert "has a charter already" in await room.say("!charter adopt", as_="bob")
    assert "Our charter (version 1)" in await room.say("!charter")
    assert "No open proposals" in await room.say("!proposals")


async def test_a_protected_setting_changes_only_by_a_charter_decision(room):
    await room.say("!set protect rule", as_="alice")
    for name in ("alice", "bob"):
        await room.say("!vote 1 yes", as_=name)
    protected = await room.wait("3d")
    assert "#1 Charter: protect the setting rule (now majority): passed" in protected
    assert "1. The setting rule is majority" in protected
    assert "🔐" in await room.say("!charter")

    asked = await room.say("!set rule consensus", as_="bob")
    assert "rule is protected by the charter, so the group decides: I opened #2" in asked
    assert "#2 Charter: change the protected setting rule to consensus" in asked
    assert "rule = majority" in await room.say("!settings")  # not changed yet
    await room.say("!vote 2 yes", as_="bob")
    await room.say("!vote 2 no", as_="carol")  # 1 of 2: not two thirds
    assert "#2 Charter: change the protected setting rule to consensus: rejected" in await room.wait("3d")
    assert "rule = majority" in await room.say("!settings")

    await room.say("!set rule consensus", as_="bob")
    await room.say("!vote 3 yes", as_="bob")
    await room.say("!vote 3 yes", as_="carol")
    passed = await room.wait("3d")
    assert "rule is now consensus" in passed and "The setting rule is consensus" in passed
    assert "rule = consensus" in await room.say("!settings")
    opened = await room.say("!propose Paint the door", as_="alice")
    assert "Rule: consensus" in opened  # the new default applies at once
    with room.core.db.transaction() as session:
        change = session.scalars(select(SettingChange).where(SettingChange.key == "rule")).one()
        assert (change.old_value, change.new_value) == ("majority", "consensus")
        assert session.get(GroupSetting, (1, "rule")).value == "consensus"
    assert log_bodies(room, "setting.changed")[-1]["member"] == "decision #3"

    await room.say("!set unprotect rule", as_="carol")
    for name in ("alice", "bob", "carol"):
        await room.say("!vote 5 yes", as_=name)
    assert "#5 Charter: remove clause 1 (it protects the setting rule): passed" in await room.wait("3d")
    changed = await room.say("!set rule majority", as_="carol")
    assert "changed rule: consensus → majority" in changed


async def test_protecting_refuses_unknown_keys_and_what_is_protected_already(room):
    assert "There is no setting “colour”" in await room.say("!set protect colour", as_="bob")
    assert "is not protected" in await room.say("!set unprotect rule", as_="bob")
    await room.say("!set protect quorum", as_="bob")
    assert "already under discussion in #1" in await room.say("!set protect quorum", as_="carol")
    assert "No open proposals" not in await room.say("!proposals")
