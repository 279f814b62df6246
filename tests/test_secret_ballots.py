"""Secret ballots and ranked polls through the console room, on SQLite and PostgreSQL:
voting privately, receipts, changing a ballot, the published file, and what the
database and the logs keep (nothing that links a member to a choice)."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import re
import uuid

import pytest
from sqlalchemy import MetaData, select

from bot.actions import DirectMessage, SendMessage
from bot.events import ChatRef, ChoiceMade, CommandMessage, UserRef
from storage.models import BallotBox, Decision
from tests.harness import Room, gather, image_of, recorded

RECEIPT = re.compile(r"[A-Z2-9]{4}-[A-Z2-9]{4}-[A-Z2-9]{4}")
ROOM = ChatRef(platform="console", chat_id="room")


@pytest.fixture
async def room(database_url):
    async with Room(database_url) as room:
        yield room


async def vote_privately(room, name, text):
    reply = await room.say(f":dm {text}", as_=name)
    found = RECEIPT.search(reply)
    return reply, found and found[0]


def tap(room, name, payload, private=False, message_id="41"):
    chat = ChatRef(platform="console", chat_id=f"dm-{name}") if private else ROOM
    return room.core.handle(ChoiceMade(chat=chat, sender=UserRef(platform="console", user_id=name),
                                       sender_name=name, payload=payload, event_id=uuid.uuid4().hex,
                                       message_id=message_id, is_private=private))


async def test_a_secret_ballot_is_cast_privately_with_a_receipt_and_published_at_the_close(room):
    await gather(room, ["alice", "bob", "carol", "dan", "erin"])
    card = await room.say("!propose Rent strike in March secret=yes closes=1d", as_="alice")
    assert "Secret ballot: 0 voted so far" in card and "Tally" not in card and "[🔒 Vote privately]" in card
    assert "will show how people voted" not in card  # five on the roll: no small-group warning

    in_group = await room.say("!vote 1 no", as_="bob")
    assert "bob (private)" in in_group and "secret ballot" in in_group
    assert "no" not in in_group.split("(private)")[0]  # nothing in the group itself
    bob_reply, bob_code = await vote_privately(room, "bob", "vote 1 no")
    assert bob_code and "is in the box: no" in bob_reply
    _, carol_code = await vote_privately(room, "carol", "vote 1 yes")
    _, dan_code = await vote_privately(room, "dan", "vote 1 yes")
    shown = await room.say("!proposal 1", as_="erin")
    assert "3 voted so far" in shown and "Voted (3): bob, carol, dan" in shown
    assert "yes" not in shown.split("Voted (3)")[1]

    again = await room.say(":dm vote 1 yes", as_="bob")
    assert "already voted" in again and not RECEIPT.search(again)
    changed = await room.say(f":dm vote 1 yes receipt={bob_code}", as_="bob")
    assert "now says yes" in changed and "it said no" in changed
    wrong = await room.say(":dm vote 1 no receipt=AAAA-BBBB-CCCC", as_="bob")
    assert "No ballot on #1 has that receipt" in wrong
    stranger = await room.say(f":dm vote 1 no receipt={bob_code}", as_="erin")
    assert "have not voted" in stranger
    assert "says yes" in await room.say(f":dm ballot check 1 {bob_code.lower()}", as_="bob")
    checked_in_group = await room.say(f"!ballot check 1 {carol_code}", as_="carol")
    assert "carol (private)" in checked_in_group and "says" not in checked_in_group

    closed = await room.wait("1d")
    assert "#1 Rent strike in March: passed" in closed
    assert "3 yes · 0 no" in closed and "3 voted: bob, carol, dan" in closed
    [ballots] = [f for f in recorded(room, "file") if f.filename == "ballots-1.csv"]
    rows = list(csv.reader(line for line in io.StringIO(ballots.data.decode())
                           if not line.startswith("#")))
    assert rows[0] == ["receipt_hash", "choice"]
    digests = [row[0] for row in rows[1:]]
    assert digests == sorted(digests) and len(digests) == 3
    for code in (bob_code, carol_code, dan_code):
        digest = hashlib.sha256(code.replace("-", "").encode()).hexdigest()[:32]
        assert [digest, "yes"] in rows
    assert "counted in the result" in await room.say(f":dm ballot check 1 {dan_code}", as_="dan")
    assert "closed" in await room.say(f":dm vote 1 no receipt={dan_code}", as_="dan")
    assert "#1 is closed" in await room.say(":dm ballot 1", as_="erin")


async def test_a_link_can_open_a_ballot_but_not_cast_one(room):
    await gather(room, ["alice", "bob", "carol"])
    await room.say("!propose Rent strike secret=yes", as_="alice")
    chat = ChatRef(platform="console", chat_id="dm-bob")
    linked = CommandMessage(chat=chat, sender=UserRef(platform="console", user_id="bob"), sender_name="bob",
                            text="vote 1 yes group=#1", event_id="link-1", is_private=True, via_link=True)
    [refusal] = room.core.handle(linked)
    assert "A link can open a ballot" in refusal.text.plain()
    [ballot] = room.core.handle(linked.model_copy(update={"text": "ballot 1 group=#1", "event_id": "link-2"}))
    assert "Secret ballot #1" in ballot.text.plain() and ballot.choices
    assert "0 voted so far" in await room.say("!proposal 1", as_="carol")


async def test_small_groups_are_warned_and_open_votes_refuse_private_ballots(room):
    await gather(room, ["alice", "bob"])
    card = await room.say("!propose Paint the door red secret=yes", as_="alice")
    assert "Only 2 can vote" in card
    await room.say("!propose Open question", as_="alice")
    assert "open vote" in await room.say(":dm vote 2 yes", as_="bob")
    assert "open vote" in await room.say(":dm ballot 2", as_="bob")
    assert "receipts are for secret ballots" in await room.say("!vote 2 yes receipt=ABCD-EFGH-JKMN", as_="bob")
    assert "no proposal #9" in await room.say(":dm vote 9 yes", as_="bob")
    assert "is not a vote" in await room.say(":dm vote 1 perhaps", as_="bob")


async def test_a_tapped_vote_in_the_group_is_refused_privately_and_counts_nothing(room):
    await gather(room, ["alice", "bob", "carol"])
    await room.say("!propose Join the federation secret=yes", as_="alice")
    actions = tap(room, "bob", "vote 1 yes")
    kinds = {type(a).__name__ for a in actions}
    assert kinds == {"Acknowledge", "DirectMessage"}
    ack = next(a for a in actions if type(a).__name__ == "Acknowledge")
    assert "yes" not in ack.text.html
    dm = next(a for a in actions if isinstance(a, DirectMessage))
    assert all(choice.payload.endswith("group=#1") for choice in dm.choices) and dm.choices
    assert "yes" not in dm.fallback_text.html
    # The private ballot's buttons vote from the private chat.
    private = tap(room, "bob", dm.choices[0].payload, private=True)
    assert any(RECEIPT.search(a.text.html) for a in private if isinstance(a, SendMessage))
    assert "1 voted so far" in await room.say("!proposal 1", as_="carol")


async def test_nothing_at_rest_links_a_member_to_their_choice(room):
    names = ["ann", "ben", "cat", "dov", "eve", "fay", "gus", "hal"]
    options = ["Aubergine plan", "Beetroot plan", "Celery plan"]
    await gather(room, names)
    await room.say(f'!propose Which garden plan options="{"; ".join(options)}" secret=yes', as_="ann")
    chosen, receipts = {}, {}
    for index, name in enumerate(names):
        choice = options[index % 3] if index != 4 else options[0]
        _, receipts[name] = await vote_privately(room, name, f"vote 1 {choice}")
        chosen[name] = choice
    _, new_code = await vote_privately(room, "ben", f"vote 1 {options[2]} receipt={receipts['ben']}")
    chosen["ben"] = options[2]
    await room.say("!proposal 1", as_="cat")

    dump = _dump(room)
    with room.core.db.transaction() as session:
        members = {m.display_name: m for m in session.scalars(select(_member_model()))}
    for name in names:
        member = members[name]
        digest = hashlib.sha256(receipts[name].replace("-", "").encode()).hexdigest()[:32]
        for table, row in dump:
            text = " ".join(str(value) for value in row.values())
            assert receipts[name] not in text and digest not in text or table == "ballot_boxes", (table, row)
            if not _mentions(row, member):
                continue
            named = {option for option in options if option in text}
            # A row about a member may list every option (the ballot they were sent), never single one out.
            assert not named or named == set(options), (table, row)
    [box] = [row for table, row in dump if table == "ballot_boxes"]
    entries = [(line.split(" ", 1)[0], json.loads(line.split(" ", 1)[1])) for line in box["ballots"].split("\n")]
    assert [digest for digest, _ in entries] == sorted(digest for digest, _ in entries)
    voting_order = [hashlib.sha256(receipts[name].replace("-", "").encode()).hexdigest()[:32] for name in names]
    assert [digest for digest, _ in entries] != voting_order
    assert sorted(choice for _, choice in entries) == sorted(chosen.values())
    sealed = [row for table, row in dump if table == "outbox" and row["sealed"]]
    assert sealed and all(row["action"] == "" for row in sealed)  # delivered, then blanked


async def test_no_log_line_holds_a_secret_choice_or_receipt(room, caplog):
    caplog.set_level(logging.DEBUG)
    await gather(room, ["alice", "bob", "carol"])
    await room.say('!propose Pick a colour options="Vermilion; Ultramarine" secret=yes', as_="alice")
    _, code = await vote_privately(room, "bob", "vote 1 Vermilion because it is warm")
    await vote_privately(room, "carol", "vote 1 Ultramarine")
    await room.say(f":dm vote 1 Ultramarine receipt={code}", as_="bob")
    await room.say(":dm vote 1 Ultramarine", as_="bob")  # refused: already voted
    await room.say(f":dm ballot check 1 {code}", as_="bob")
    await room.wait("7d")
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert caplog.records  # the bot did log (at DEBUG); just nothing private
    for secret in ("Vermilion", "Ultramarine", code, code.replace("-", ""), "warm"):
        assert secret not in logged


async def test_a_ranked_poll_is_ranked_by_typing_and_tapping_and_counted_by_instant_runoff(room):
    await gather(room, ["alice", "bob", "carol", "dan", "erin"])
    card = await room.say('!propose Meeting night options="Monday; Tuesday; Wednesday" method=ranked closes=1d',
                          as_="alice")
    assert "ranked, instant runoff" in card and "[1. Monday]" in card and "[↩ Undo]" in card
    assert "Ties are broken by lottery #1" in card and "draw add <anything> lottery=1" in card
    assert "Monday > Wednesday" in await room.say("!vote 1 Monday Wednesday", as_="alice")
    assert "Monday > Tuesday" in await room.say("!vote 1 1, 2", as_="bob")
    assert "ranked twice" in await room.say("!vote 1 2 2", as_="carol")
    assert "not an option" in await room.say("!vote 1 Friday", as_="carol")
    for payload in ("vote 1 +3", "vote 1 +1", "vote 1 +2", "vote 1 undo"):
        [ack] = tap(room, "carol", payload)[:1]
    assert "Wednesday &gt; Monday" in ack.text.html
    assert "already" in tap(room, "carol", "vote 1 +3")[0].text.html
    tap(room, "dan", "vote 1 +2")
    tap(room, "dan", "vote 1 clear")
    await room.say("!vote 1 Tuesday Wednesday", as_="dan")
    await room.say("!vote 1 Wednesday Tuesday", as_="erin")
    shown = await room.say("!proposal 1")
    assert "carol: Wednesday > Monday" in shown and "First preferences" in shown
    # First preferences: Monday 2, Wednesday 2, Tuesday 1 → Tuesday out, dan's vote goes to Wednesday.
    closed = await room.wait("1d")
    assert "chose Wednesday" in closed
    assert "Round 2" in closed and "Tuesday excluded (1 to Wednesday)" in closed
    with room.core.db.transaction() as session:
        record = json.loads(session.scalar(select(Decision.counts)))
    assert record["count"]["winners"] == ["Wednesday"]
    assert "📎 count-1.png" in closed and "the count, round by round" in closed
    [chart] = recorded(room, "image")
    assert image_of(chart).startswith(b"\x89PNG")


async def test_a_secret_ranked_poll_is_cast_from_the_private_ballots_buttons(room):
    await gather(room, ["alice", "bob", "carol"])
    await room.say('!propose Where to meet options="Library; Cafe; Park" method=ranked secret=yes', as_="alice")
    opened = tap(room, "bob", "ballot 1 group=#1", private=True, message_id=None)
    [ballot] = [a for a in opened if isinstance(a, SendMessage)]
    assert "nothing yet" in ballot.text.html
    step = next(c for c in ballot.choices if c.label == "3. Park")
    edited = tap(room, "bob", step.payload, private=True)
    edit = next(a for a in edited if a.kind == "edit")
    assert "Park" in edit.text.html and all(len(c.payload.encode()) <= 64 for c in edit.choices)
    step = next(c for c in edit.choices if c.label == "1. Library")
    edit = next(a for a in tap(room, "bob", step.payload, private=True) if a.kind == "edit")
    cast = next(c for c in edit.choices if c.label == "✅ Cast")
    sealed = tap(room, "bob", cast.payload, private=True)
    assert any("Park &gt; Library" in a.text.html and RECEIPT.search(a.text.html)
               for a in sealed if isinstance(a, SendMessage))
    with room.core.db.transaction() as session:
        assert session.scalar(select(BallotBox.ballots)).endswith(' "3>1"')


async def test_an_stv_election_fills_several_seats(room):
    names = ["ann", "ben", "cat", "dov", "eve", "fay", "gus"]
    await gather(room, names)
    await room.say("!role add stewards term=90d seats=2 fill=election", as_="ann")
    for name in ("ann", "ben", "cat"):
        await room.say("!volunteer stewards", as_=name)
    opened = await room.say("!elect stewards", as_="ann")  # two seats: ranked, STV by default
    assert "STV for 2 seats" in opened
    for name, ranking in zip(names, ["ann ben", "ann cat", "ann ben", "ann ben", "cat", "cat ben", "ben"],
                             strict=True):
        assert "counted" in await room.say(f"!vote 1 {ranking}", as_=name)
    closed = await room.wait("7d")
    # 7 ballots, 2 seats: quota 3. ann 4 → elected, surplus 1 → ben; then cat/ben…
    assert "quota 3" in closed and "now holds" in closed
    with room.core.db.transaction() as session:
        record = json.loads(session.scalar(select(Decision.counts)))
    assert len(record["count"]["winners"]) == 2 and record["count"]["winners"][0] == "ann"


def _member_model():
    from storage.models import Member
    return Member


def _mentions(row: dict, member) -> bool:
    for key, value in row.items():
        if key.endswith("member_id") or key in ("author_id", "claimer_id", "started_by", "auditor_id"):
            if value == member.id:
                return True
        elif isinstance(value, str) and (member.user_id in value.split("-") or f'"{member.user_id}"' in value
                                         or f"dm-{member.user_id}" in value):
            return True
    return False


def _dump(room) -> list[tuple[str, dict]]:
    """Every row of every table, as the database returns it."""
    metadata = MetaData()
    with room.core.db.engine.connect() as connection:
        metadata.reflect(connection)
        return [(table.name, dict(row._mapping)) for table in metadata.sorted_tables
                for row in connection.execute(table.select())]
