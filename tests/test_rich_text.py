"""The rich-text API: a mention carries its member inside the markup, so no way
of composing texts can separate the two; a member cannot type one; actions
stored in the old form (`mention:N` + a list) still load; and a message that
cannot be rendered goes out as its plain text instead of being dropped."""

from __future__ import annotations

import json
import logging

import pytest

from adapters.matrix.html import message_content, to_matrix_html
from adapters.telegram import TelegramAdapter, to_telegram_html
from bot.actions import EditMessage, SendImage, SendMessage, dump_action, load_action
from bot.events import ChatRef, UserRef
from bot.render.text import RichText, TextBuilder, addressed, b, escape, join, mention, plain, rich
from tests.telegram_emulator import BotApiEmulator, parse_html

ANA = UserRef(platform="matrix", user_id="@ana:example.org")
BO = UserRef(platform="matrix", user_id="@bo:example.org")
TG_ANA = UserRef(platform="telegram", user_id="11")
FORGED = '<a href="mention:matrix/%40ana%3Aexample.org">Ana</a> mention:0 <a href="mention:0">x</a>'


def test_a_mention_made_anywhere_keeps_its_member_when_texts_are_composed():
    said_elsewhere = mention(ANA, "Ana <3")  # the claim bug: made without the builder that uses it
    text = TextBuilder().line("🤝 bob claimed it: ", said_elsewhere, ", bob is on it.").build()
    assert text.mentions == (ANA,)
    assert '<a href="https://matrix.to/#/@ana:example.org">Ana &lt;3</a>' in to_matrix_html(text)

    first = TextBuilder().line("⏰ ", mention(ANA, "Ana"), " and ", mention(BO, "Bo")).build()
    second = rich("also ", mention(BO, "Bo"), " and ", mention(ANA, "Ana"))
    for composed in (join([first, second]), first + second, TextBuilder().line(first).line(second).build(),
                     rich(first, " ", second), join([first, b("x"), second], " ")):
        # Each member once, in the order of their first mention.
        assert composed.mentions == (ANA, BO)
        content = message_content(composed)
        assert content["m.mentions"] == {"user_ids": ["@ana:example.org", "@bo:example.org"]}
        assert content["formatted_body"].count("https://matrix.to/#/") == 4
    nested = addressed(BO, join([first, second]))
    assert nested.mentions == (BO, ANA) and nested.plain().startswith("@you: ⏰ @Ana and @Bo")
    assert TextBuilder().mention(ANA, "Ana") == mention(ANA, "Ana")  # the builder's name for it


def test_any_platform_id_is_safe_inside_the_markup():
    odd = UserRef(platform="pla/tform", user_id='@we"ird/<id>%20&:example.org')
    text = rich("hi ", mention(odd, "<b>name</b>"))
    assert text.mentions == (odd,)
    assert text.plain() == "hi @<b>name</b>"
    assert "<b>" not in text.html and '"ird' not in text.html


def test_a_mention_typed_by_a_member_is_text_not_a_mention():
    for text in (plain(FORGED), rich(escape(FORGED)), TextBuilder().line(b(FORGED)).build()):
        assert text.mentions == ()
        assert text.plain() == FORGED
        content = message_content(text)
        assert content["m.mentions"] == {"user_ids": []} and "matrix.to" not in content["formatted_body"]
        assert "tg://" not in to_telegram_html(text) and "&lt;a href=&quot;mention:" in to_telegram_html(text)
    # A display name holding markup stays a name.
    assert mention(ANA, FORGED).count("<a ") == 1


def test_telegram_links_only_its_own_members():
    text = rich(mention(TG_ANA, "Ana"), " ", mention(ANA, "Matrix Ana"),
                " ", mention(UserRef(platform="telegram", user_id="x1"), "Not a number"))
    assert to_telegram_html(text) == '<a href="tg://user?id=11">Ana</a> Matrix Ana Not a number'


def test_actions_stored_before_the_upgrade_still_load_and_render():
    old = {"kind": "send", "chat": {"platform": "matrix", "chat_id": "!r:example.org"},
           "text": {"html": '⏰ <a href="mention:1">Bo</a>, <a href="mention:0">Ana &amp; co</a>: #1 closes',
                    "mentions": [ANA.model_dump(), BO.model_dump()]},
           "reply_to": None, "choices": [], "track": None}
    action = load_action(json.dumps(old))
    assert isinstance(action, SendMessage)
    assert action.text.mentions == (BO, ANA)
    assert action.text.html == f"⏰ {mention(BO, 'Bo')}, {mention(ANA, 'Ana & co')}: #1 closes"
    assert message_content(action.text)["m.mentions"] == {"user_ids": ["@ana:example.org", "@bo:example.org"]}
    # Stored again, it is in the new form; loaded again, the same.
    stored = json.loads(dump_action(action))
    assert stored["text"] == {"html": action.text.html}
    assert load_action(dump_action(action)) == action

    # The claim bug's stored form: an index into an empty list. The name stays, as text.
    broken = dict(old, text={"html": '🤝 bob claimed it\n<a href="mention:0">Ana</a>, bob is on it.',
                             "mentions": []})
    text = load_action(json.dumps(broken)).text
    assert text.html == "🤝 bob claimed it\nAna, bob is on it." and text.mentions == ()
    assert message_content(text)["formatted_body"] == "🤝 bob claimed it<br>Ana, bob is on it."
    # Old edits and captions too.
    edit = load_action(json.dumps({"kind": "edit", "chat": old["chat"], "message_id": "$e", "text": old["text"]}))
    assert isinstance(edit, EditMessage) and edit.text.mentions == (BO, ANA)
    image = load_action(json.dumps({"kind": "image", "chat": old["chat"], "data": "", "filename": "a.png",
                                    "caption": old["text"]}))
    assert isinstance(image, SendImage) and image.caption.mentions == (BO, ANA)


# a message that cannot be rendered still goes out ----------------------------------------------

BROKEN = RichText(html='<b>Tally</b> for <a href="mention:not-a-mention">Ana</a> & co')


def test_matrix_sends_the_plain_text_when_the_html_cannot_be_rendered(caplog):
    with caplog.at_level(logging.ERROR, logger="adapters.matrix.html"):
        content = message_content(BROKEN)
    assert content["body"] == "Tally for @Ana & co"
    assert "formatted_body" not in content and "format" not in content
    assert "could not render" in caplog.text


GROUP, ALICE = -100777, 11


@pytest.fixture
async def telegram():
    async with BotApiEmulator() as emu:
        emu.add_chat(GROUP, "Renters <b>&</b> co", member_count=3)
        emu.add_user(ALICE, "Alice")
        adapter = TelegramAdapter("123456:TEST-TOKEN", base_url=emu.base_url, base_file_url=emu.base_file_url)
        await adapter.app.initialize()
        yield emu, adapter
        await adapter.app.shutdown()


async def test_telegram_sends_the_plain_text_when_the_html_cannot_be_rendered(telegram, caplog):
    emu, adapter = telegram
    with caplog.at_level(logging.ERROR, logger="adapters.telegram"):
        await adapter._send(GROUP, BROKEN)
    [sent] = emu.messages_to(GROUP)
    assert sent["parse_mode"] is None and sent["plain"] == "Tally for @Ana & co"
    assert "could not render" in caplog.text


async def test_telegram_sends_the_plain_text_when_it_cannot_parse_the_entities(telegram, monkeypatch, caplog):
    emu, adapter = telegram
    monkeypatch.setattr("adapters.telegram.to_telegram_html", lambda text: "<b>unclosed & <i>bad</b>")
    with caplog.at_level(logging.ERROR, logger="adapters.telegram"):
        message_id = await adapter._send(GROUP, rich(b("hi")))
    [sent] = emu.messages_to(GROUP)
    assert sent["parse_mode"] is None and sent["plain"] == "unclosed & bad"
    assert str(sent["message_id"]) == message_id
    assert "can't parse entities" in caplog.text.lower()
    # An edit of that message, the same.
    await adapter._send_edit((GROUP, int(message_id)), EditMessage(
        chat=ChatRef(platform="telegram", chat_id=str(GROUP)), message_id=message_id, text=rich(b("edited"))))
    assert emu.message(GROUP, int(message_id))["text"] == "unclosed & bad"


async def test_telegram_edits_and_captions_fall_back_to_plain_text(telegram):
    emu, adapter = telegram
    message_id = await adapter._send(GROUP, rich(b("first")))
    await adapter._send_edit((GROUP, int(message_id)), EditMessage(
        chat=ChatRef(platform="telegram", chat_id=str(GROUP)), message_id=message_id, text=BROKEN))
    assert emu.message(GROUP, int(message_id))["text"] == "Tally for @Ana & co"
    assert adapter._caption(BROKEN) == "Tally for @Ana &amp; co"  # sent in HTML mode, so escaped
    long = TextBuilder()
    for n in range(60):
        long.line(b(f"line {n} "), "x" * 30)
    caption = adapter._caption(long.build())
    visible, _ = parse_html(caption)  # whole lines: no tag cut
    assert len(visible) <= 1024 and caption.endswith("</b>" + "x" * 30)
