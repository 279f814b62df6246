"""Needs and offers through the console room with a moved clock, on SQLite and PostgreSQL:
the lifecycle and who may do what, anonymous needs, nudges and the weekly digest."""

import logging
from datetime import timedelta

import pytest
from sqlalchemy import select

from bot.actions import DirectMessage, SendMessage
from bot.clock import ManualClock
from bot.events import ChatRef, CommandMessage, UserRef
from storage.models import Need, NeedEvent
from tests.harness import START, Room, group_messages, private_to


@pytest.fixture
async def room(database_url):
    async with Room(database_url) as room:
        yield room


def need_row(room, number):
    with room.core.db.transaction() as session:
        need = session.scalars(select(Need).where(Need.number == number)).one()
        session.expunge(need)
        return need


def events_of(room, number):
    with room.core.db.transaction() as session:
        need = session.scalars(select(Need).where(Need.number == number)).one()
        return [(e.action, e.at) for e in session.scalars(select(NeedEvent).where(NeedEvent.need_id == need.id)
                                                          .order_by(NeedEvent.id))]


async def test_a_need_is_posted_claimed_and_met_by_the_claimer_with_every_change_timestamped(room):
    posted = await room.say('!need "a ride to the clinic on Tuesday" category=transport urgent', as_="alice")
    assert "Need #1 (transport) ❗ urgent from alice" in posted and "a ride to the clinic on Tuesday" in posted
    assert '"' not in posted.split("\n")[1]  # the quotes only grouped the words
    await room.wait("2h")
    assert "#1 [transport] a ride to the clinic on Tuesday — ❗ urgent · 2 hours ago · by alice" in await room.say(
        "!needs", as_="bob")
    claimed = await room.say("!claim 1", as_="bob")
    assert "bob claimed need #1 (transport)" in claimed and "@alice, bob is on it." in claimed
    refused = await room.say("!met 1", as_="carol")
    assert "Only the author of #1 or whoever claimed it can mark it met" in refused
    assert need_row(room, 1).status == "claimed"
    await room.wait("1h")
    met = await room.say("!met 1", as_="bob")
    assert "Need #1 (transport) is met by bob, after 3 hours. Thank you, bob!" in met
    assert "Nothing open right now" in await room.say("!needs", as_="carol")
    assert "already met" in await room.say("!met 1", as_="alice")
    events = events_of(room, 1)
    assert [action for action, _ in events] == ["posted", "claimed", "met"]
    assert [at - START for _, at in events] == [timedelta(0), timedelta(hours=2), timedelta(hours=3)]
    row = need_row(room, 1)
    assert (row.claimed_at, row.met_at) == (START + timedelta(hours=2), START + timedelta(hours=3))


async def test_only_the_author_cancels_and_a_claim_can_be_given_back_or_released(room):
    await room.say("!need firewood category=housing", as_="alice")
    assert "#1 is your own need" in await room.say("!claim 1", as_="alice")
    await room.say("!claim 1", as_="bob")
    assert "already claimed by bob" in await room.say("!claim 1", as_="carol")
    assert "Only whoever claimed #1, or its author, can release it" in await room.say("!unclaim 1", as_="carol")
    released = await room.say("!unclaim 1", as_="bob")
    assert "bob released need #1 (housing); it is open again" in released
    await room.say("!claim 1", as_="carol")
    assert "alice released" in await room.say("!unclaim 1", as_="alice")  # the author may release a stale claim
    assert "Only the author of #1 can cancel it" in await room.say("!cancel 1", as_="bob")
    assert need_row(room, 1).status == "open"
    assert "Need #1 (housing) was withdrawn by its author" in await room.say("!cancel 1", as_="alice")
    assert "already cancelled" in await room.say("!claim 1", as_="bob")
    assert [a for a, _ in events_of(room, 1)] == ["posted", "claimed", "unclaimed", "claimed", "unclaimed",
                                                   "cancelled"]


async def test_an_offer_can_meet_a_need_and_the_match_is_recorded(room):
    await room.say("!need \"winter coat, size M\" category=other", as_="alice")
    offered = await room.say("!offer \"two warm coats\" category=other", as_="bob")
    assert "Offer #2 (other) from bob" in offered
    assert "There is no offer #1" in await room.say("!claim 2 with 1", as_="carol")
    assert "Match a need with an offer" in await room.say("!claim 2 with 2", as_="carol")
    assert "no offer #9" in await room.say("!claim 1 with 9", as_="bob")
    assert "Write the offer as with <offer#>, like with 3 (not “for 2”)" in await room.say("!claim 1 for 2", as_="bob")
    claimed = await room.say("!claim 1 with 2", as_="bob")
    assert "bob claimed need #1 (other) with offer #2 (other)" in claimed
    assert need_row(room, 1).offer_id == need_row(room, 2).id
    listing = await room.say("!needs")
    assert "claimed by bob with offer #2" in listing
    with room.core.db.transaction() as session:
        claim_event = session.scalars(select(NeedEvent).where(NeedEvent.action == "claimed")).one()
        assert claim_event.offer_id == need_row(room, 2).id


async def test_the_list_shows_urgent_first_then_oldest_with_age_and_claimer(room):
    await room.say("!need soup category=food", as_="alice")
    await room.wait("1d")
    await room.say("!offer \"spare bike\" category=transport", as_="bob")
    await room.wait("1h")
    await room.say("!need \"fix the boiler\" category=repair urgent", as_="carol")
    await room.say("!claim 2", as_="dan")
    listing = (await room.say("!needs", as_="erin")).split("\n")
    assert "Open needs and offers (3)" in listing[0]
    rows = [line for line in listing if "#" in line and "—" in line]
    assert "#3 [repair] fix the boiler — ❗ urgent · just now · by carol" in rows[0]
    assert "#1 [food] soup — 1 day ago · by alice" in rows[1]
    assert "#2 [transport] spare bike — 1 hour ago · by bob · claimed by dan" in rows[2]
    food = await room.say("!needs food")
    assert "soup" in food and "boiler" not in food
    assert "Nothing open in money" in await room.say("!needs money")


async def test_bad_input_gets_a_clear_reply_and_changes_nothing(room):
    assert "The text is missing" in await room.say("!need", as_="alice")
    assert "Usage: !need <text> [category=food|housing|…] [urgent] [group=<name or #>]" in await room.say("!need")
    assert "keep it under 500" in await room.say("!need " + "x" * 600)
    assert "is not a category" in await room.say("!need soup category=<b>")
    assert "There is no need or offer #4" in await room.say("!claim 4")
    assert "not a number" in await room.say("!claim four")
    assert "group= is for direct messages" in await room.say("!need soup group=#1")
    with room.core.db.transaction() as session:
        assert session.scalars(select(Need)).all() == []


async def test_user_text_is_escaped_in_what_the_bot_sends(database_url):
    clock = ManualClock(START)
    room = Room(database_url, clock)
    await room.start()
    chat = ChatRef(platform="console", chat_id="room")
    actions = room.core.handle(CommandMessage(
        chat=chat, sender=UserRef(platform="console", user_id="mallory"), sender_name="<i>mal</i>",
        text='!need "<script>alert(1)</script> & <b>rent</b>" category=money', event_id="x1"))
    await room.stop()
    html = actions[0].text.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &lt;b&gt;rent&lt;/b&gt;" in html
    assert "&lt;i&gt;mal&lt;/i&gt;" in html and "<script>" not in html


async def test_an_anonymous_need_never_reveals_its_author(room, caplog):
    caplog.set_level(logging.DEBUG)
    await room.say("!needs", as_="alice")  # alice is a member of the group
    await room.say("!needs", as_="bob")
    mark = len(room.output)
    receipt = await room.say(':dm need "help with rent this month" category=money urgent group=#1', as_="alice")
    assert "Posted in Console room as need #1 (money) without your name" in private_to(receipt, "alice")[0]
    public = group_messages(receipt)
    assert "Need #1 (money) ❗ urgent from a member (posted privately)" in public[0]
    assert "claim by" not in await room.say("!needs", as_="carol")
    refused = await room.say("!met 1", as_="carol")
    assert "Only the author of #1 or whoever claimed it can mark it met" in refused
    assert "Only the author of #1 can cancel it" in await room.say("!cancel 1", as_="carol")
    claimed = await room.say("!claim 1", as_="bob")
    assert "bob claimed need #1 (money)" in group_messages(claimed)[0]
    assert "bob claimed it and will help" in private_to(claimed, "alice")[0]
    released = await room.say("!unclaim 1", as_="bob")
    assert "the claim was released" in private_to(released, "alice")[0]
    nudged = await room.wait("1d")
    assert "Still waiting for help after 1 day" in group_messages(nudged)[0]
    assert "so I posted it again" in private_to(nudged, "alice")[0]
    await room.say("!claim 1", as_="carol")
    met = await room.say(":dm met 1", as_="alice")  # from her private chat, group inferred
    assert "Need #1 (money) is met, after 1 day. Thank you, carol!" in group_messages(met)[0]
    assert "Marked met" in private_to(met, "alice")[0]
    digest = await room.wait("6d")
    assert "Needs met this week: 1" in digest
    await room.say("!set audit_draw off", as_="carol")  # a lottery may rightly name alice as auditor
    await room.say("!audit", as_="carol")
    await room.wait("7d")
    everything_public = group_messages("\n".join(room.output[mark:]))
    assert len(everything_public) >= 10
    for message in everything_public:
        assert "alice" not in message.lower()
    assert "alice" not in caplog.text.lower()
    export = room.core.handle(CommandMessage(chat=ChatRef(platform="console", chat_id="room"),
                                             sender=UserRef(platform="console", user_id="carol"), sender_name="carol",
                                             text="!audit report csv", event_id="export-1"))
    assert export[0].data.split(b"\r\n")[1].startswith(b"1,2026-03-02T09:00:00+00:00,2026-03-16T09:00:00+00:00,1,1,")
    assert b"alice" not in export[0].data.lower()


async def test_a_private_need_must_name_one_of_the_senders_groups(database_url):
    room = Room(database_url)
    await room.start()
    core = room.core

    def say(chat_id, user, text, private=False):
        chat = ChatRef(platform="console", chat_id=chat_id)
        return core.handle(CommandMessage(chat=chat, sender=UserRef(platform="console", user_id=user),
                                          sender_name=user, text=text, event_id=f"{chat_id}-{user}-{text}",
                                          is_private=private, chat_title=None if private else chat_id.title()))
    say("tenants", "alice", "!needs")
    say("kitchen", "alice", "!needs")
    say("garden", "bob", "!needs")
    asked = say("dm-alice", "alice", "need soup", private=True)[0].text.plain()
    assert "Which group? Add group=<name or #>: Tenants (#1), Kitchen (#2)" in asked
    outsider = say("dm-alice", "alice", "need soup group=Garden", private=True)[0].text.plain()
    assert "You are not in a group called “Garden” that I know. Yours: Tenants (#1), Kitchen (#2)" in outsider
    stranger = say("dm-zoe", "zoe", "need soup group=#1", private=True)[0].text.plain()
    assert "I don't know you from any group yet" in stranger
    posted = say("dm-alice", "alice", "need soup group=kitchen", private=True)
    sends = [a for a in posted if isinstance(a, SendMessage)]
    assert {a.chat.chat_id for a in sends} == {"kitchen", "dm-alice"}
    assert not any(isinstance(a, DirectMessage) for a in posted)
    await room.stop()


async def test_an_unclaimed_need_is_nudged_once_and_a_claimed_one_never(room):
    await room.say("!need soup category=food", as_="alice")
    await room.say("!need \"ladder\" category=repair", as_="bob")
    await room.say("!claim 2", as_="carol")
    assert "Still waiting" not in await room.wait("23h")
    nudged = await room.wait("2h")
    assert nudged.count("Still waiting for help") == 1 and "need #1 (food)" in nudged
    assert "Still waiting" not in await room.wait("3d")
    await room.say("!unclaim 2", as_="carol")  # given back, never nudged before: nudged once later
    assert "Still waiting" not in await room.wait("23h")
    assert "need #2 (repair)" in await room.wait("1h")
    assert "Still waiting" not in await room.wait("7d")


async def test_a_nudge_due_while_the_bot_was_down_is_sent_once_at_start(database_url):
    clock = ManualClock(START)
    async with Room(database_url, clock) as room:
        await room.say("!need soup category=food", as_="alice")
    clock.advance(timedelta(days=2))
    again = Room(database_url, clock)
    assert "\n".join(await again.start()).count("Still waiting for help after 2 days") == 1
    await again.stop()
    third = Room(database_url, clock)
    assert "Still waiting" not in "\n".join(await third.start())
    await third.stop()


async def test_the_weekly_digest_comes_once_a_week_with_the_weeks_figures(room):
    await room.say("!need soup category=food", as_="alice")  # Monday 09:00
    await room.say("!need \"a ride\" category=transport", as_="bob")
    await room.say("!offer \"sewing\" category=repair", as_="dan")
    await room.wait("1d")
    await room.say("!claim 2", as_="carol")
    await room.wait("10h")
    await room.say("!met 2", as_="carol")  # met after 1 day 10 hours
    await room.say("!need rice category=food", as_="erin")  # Tuesday 19:00, under 48 hours old on Monday? no
    await room.wait("5d")
    assert "This week in mutual aid" not in await room.wait("12h")  # Monday 07:00
    digest = await room.wait("2h")  # Monday 09:00
    assert digest.count("This week in mutual aid") == 1
    assert "Needs met this week: 1, typically after 1 day" in digest
    assert "Open needs: 2, 2 ⏰ overdue (unclaimed for more than 48 hours) · 🎁 open offers: 1" in digest
    assert "#1 [food] soup — 7 days ago · by alice · ⏰ waiting over 48 hours" in digest
    assert "This week in mutual aid" not in await room.wait("6d")
    second = await room.wait("1d")
    assert "Needs met this week: 0" in second and second.count("This week in mutual aid") == 1


async def test_the_digest_follows_the_groups_day_time_and_zone_and_can_be_turned_off(room):
    await room.say("!need soup", as_="alice")
    await room.say("!set timezone America/Bogota", as_="alice")  # UTC-5
    assert "fri 18:00" in await room.say("!set digest Friday 18:00", as_="alice")
    assert "This week in mutual aid" not in await room.wait("4d")  # Fri 09:00 UTC
    assert "This week in mutual aid" not in await room.wait("13h")  # Fri 22:00 UTC = 17:00 Bogota
    assert "This week in mutual aid" in await room.wait("1h")
    assert "Give a day and a time like mon 09:00, or off" in await room.say("!set digest someday", as_="alice")
    await room.say("!set digest off", as_="alice")
    assert "This week in mutual aid" not in await room.wait("14d")


async def test_a_group_without_needs_gets_no_digest(room):
    await room.say("!help", as_="alice")
    assert "This week in mutual aid" not in await room.wait("8d")
