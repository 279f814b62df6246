"""The bot in the group's own language, through the console room on SQLite and PostgreSQL: the
group's setting, a member's own language for their private chat, the default from [defaults],
scheduled announcements, dates and numbers by locale, and command words that stay the same in
every language. Expected texts are looked up in the shipped catalogs (`_` inside `speaking`), and
each is checked to differ from the English, so a missing translation fails here too."""

from __future__ import annotations

from datetime import datetime, timezone

from bot import i18n
from bot.app import published_commands
from bot.config import DefaultsConfig
from bot.i18n import _, ngettext
from bot.money import format_cents
from tests.harness import Room, group_messages, private_to


def said(speaking: str, english: str, **values) -> str:
    """`english` as the bot says it in the language `speaking` (and proof it is translated at all)."""
    with i18n.speaking(speaking):
        text = _(english)
    assert text != english, f"“{english}” has no {speaking} translation"
    return text.format(**values) if values else text


async def test_a_group_switches_to_spanish_and_everything_follows(database_url):
    async with Room(database_url) as room:
        await room.say("!help", as_="ana")
        changed = await room.say("!set language es", as_="ana")
        assert "language" in changed and "es" in changed  # the key and value stay as typed
        assert said("es", "Applies to what is opened from now on; recorded in the group's settings log.") in changed

        helped = await room.say("!help", as_="bea")
        assert "!propose" in helped and "!vote" in helped  # command words are the same in every language
        assert said("es", "open a proposal for the group to decide") in helped

        opened = await room.say("!propose Comprar una nevera closes=2d", as_="ana")
        assert "#1" in opened and "Comprar una nevera" in opened
        with i18n.speaking("es"):
            closes = i18n.moment(datetime(2026, 3, 4, 9, 0, tzinfo=timezone.utc))
        assert closes.split()[0].lower().startswith("mié") and closes in opened  # Wednesday, in Spanish

        refused = await room.say("!vote 9 yes", as_="bea")
        assert said("es", "There is no proposal #{number} in this group.", number=9) in refused
        refused = await room.say("!vote", as_="bea")  # the usage line stays as the parser writes it
        assert said("es", "Usage: {usage}", usage="").strip() in refused and "!vote <#>" in refused

        await room.say("!vote 1 yes", as_="bea")
        [announced] = [message for message in group_messages(await room.wait("2d")) if "#1" in message]
        # The scheduler's announcement is in Spanish too, and so is the reason stored in English with the decision.
        assert said("es", "more yes than no") in announced and "más" in announced


async def test_a_member_reads_their_private_chat_in_their_own_language(database_url):
    async with Room(database_url) as room:
        await room.say("!set language es", as_="ana")
        own = await room.say(":dm language pt", as_="ana")
        assert said("pt_BR", "🌐 From now on I write to you in {language}.", language="Português (Brasil)") in own
        [reply] = private_to(await room.say(":dm frobnicate", as_="ana"), "ana")
        assert said("pt_BR", "I don't know the command “{name}”.", name="frobnicate") in reply
        # The group still speaks Spanish, to her too.
        assert said("es", "I don't know the command “{name}”.", name="propse") in await room.say(
            "!propse", as_="ana")

        # Someone who chose nothing reads their private chat in their group's language.
        await room.say("!help", as_="bea")
        [reply] = private_to(await room.say(":dm frobnicate", as_="bea"), "bea")
        assert said("es", "I don't know the command “{name}”.", name="frobnicate") in reply

        refused = await room.say(":dm language klingon", as_="ana")
        assert "klingon" in refused and "pt_BR" in refused and "es" in refused
        in_group = await room.say("!language pt", as_="ana")
        assert "set language" in in_group  # points to the group's setting, changes nothing
        back = await room.say(":dm language default", as_="ana")
        assert said("es", "🌐 I will write to you in your groups' language.") in back


async def test_the_default_language_comes_from_the_configuration(database_url):
    async with Room(database_url, defaults=DefaultsConfig(language="pt_BR")) as room:
        shown = await room.say("!settings", as_="ana")
        assert "language" in shown and "pt_BR" in shown
        assert said("pt_BR", "I don't know the command “{name}”.", name="propse") in await room.say(
            "!propse", as_="ana")
        refused = await room.say("!set language xx", as_="ana")
        assert "xx" in refused and "⚠️" in refused
        assert "pt_BR" in await room.say("!settings", as_="ana")  # unchanged


def test_plurals_numbers_and_dates_follow_the_language():
    for language in ("es", "pt_BR"):
        with i18n.speaking(language):
            one = ngettext("{count} day", "{count} days", 1).format(count=1)
            two = ngettext("{count} day", "{count} days", 2).format(count=2)
            assert one != two and "1" in one and "2" in two and "day" not in two
            assert i18n.number(12345) == "12.345"
            assert format_cents(123450, "EUR", sign=True) == "+1.234,50 EUR"
    with i18n.speaking("en"):
        assert i18n.number(12345) == "12,345"
        assert ngettext("{count} day", "{count} days", 2).format(count=2) == "2 days"
        assert format_cents(123450, "EUR", sign=True) == "+1 234.50 EUR"
    friday = datetime(2026, 12, 4, 19, 0, tzinfo=timezone.utc)
    with i18n.speaking("pt_BR"):
        assert i18n.moment(friday).lower().startswith("sex")  # sexta-feira
    with i18n.speaking("en"):
        assert i18n.moment(friday) == "Fri 4 Dec 19:00"


def test_the_telegram_menu_is_published_in_each_language():
    menus = published_commands()
    assert {None, "en", "es", "pt"} <= set(menus)
    words = [word for word, _summary in menus[None]]
    for code in ("es", "pt"):
        assert [word for word, _summary in menus[code]] == words  # the same commands …
        assert dict(menus[code])["propose"] != dict(menus["en"])["propose"]  # … explained in the language
    assert dict(menus[None]) == dict(menus["en"])
    spanish_default = published_commands(default_language="es")
    assert dict(spanish_default[None]) == dict(menus["es"])
