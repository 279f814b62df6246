"""Matrix text in both directions (adapters/matrix/html.py): pure functions, no homeserver."""

from adapters.matrix.html import edit_content, message_content, read_text
from adapters.matrix.state import AdapterState, VoteReaction
from bot.events import UserRef
from bot.render.text import TextBuilder, b, plain

ANA = UserRef(platform="matrix", user_id="@ana:example.org")


def test_mentions_become_pills_listed_in_m_mentions():
    text = TextBuilder()
    text.line("⏰ ", text.mention(ANA, "Ana <3"), ": #1 closes soon")
    content = message_content(text.build())
    pill = '<a href="https://matrix.to/#/@ana:example.org">Ana &lt;3</a>'
    assert content["formatted_body"] == f"⏰ {pill}: #1 closes soon"
    assert content["body"] == "⏰ @Ana <3: #1 closes soon"
    assert content["m.mentions"] == {"user_ids": ["@ana:example.org"]}
    assert content["msgtype"] == "m.notice"


def test_newlines_are_line_breaks_except_in_preformatted_text():
    html = message_content(TextBuilder().line(b("a")).line("<pre>x\ny</pre>").line("c").build())["formatted_body"]
    assert html == "<b>a</b><br><pre>x\ny</pre><br>c"


def test_an_edit_carries_the_new_content_and_notifies_nobody_again():
    text = TextBuilder()
    text.line("tally for ", text.mention(ANA, "Ana"))
    content = edit_content("$card", text.build())
    assert content["m.relates_to"] == {"rel_type": "m.replace", "event_id": "$card"}
    assert content["m.mentions"] == {}
    assert content["m.new_content"]["m.mentions"] == {"user_ids": ["@ana:example.org"]}
    assert content["body"].startswith("* ")


def test_a_huge_message_falls_back_to_truncated_plain_text():
    content = message_content(plain("x" * 100_000))
    assert "formatted_body" not in content and len(content["body"]) < 30_000


def test_pills_are_read_as_user_ids_and_reply_fallbacks_dropped():
    typed = {"body": "!role assign facilitator Ana", "format": "org.matrix.custom.html",
             "formatted_body": '<mx-reply><blockquote>old <a href="https://matrix.to/#/@bo:x">Bo</a></blockquote>'
                               '</mx-reply>!role assign facilitator <a href="https://matrix.to/#/%40ana%3Aexample.org">'
                               'Ana</a>'}
    assert read_text(typed) == "!role assign facilitator @ana:example.org"
    assert read_text({"body": "> <@bo:x> !help\n> more\n\n!vote 1 yes"}) == "!vote 1 yes"
    assert read_text({"body": "!vote 1 <b>yes</b>", "format": "org.matrix.custom.html",
                      "formatted_body": "!vote 1 &lt;b&gt;yes&lt;/b&gt;"}) == "!vote 1 <b>yes</b>"
    assert read_text({"body": 42}) == ""


def test_the_adapter_state_survives_reopening(tmp_path):
    state = AdapterState(tmp_path / "store")
    state.save_sync_token("s1")
    state.save_choices("$card", {"👍": "vote 1 yes", "👎": "vote 1 no"})
    state.save_reaction("$r", VoteReaction("!room", "@ana:x", "$card", "vote 1 yes"))
    state.save_direct_room("!dm", "@ana:x")
    state.close()
    state = AdapterState(tmp_path / "store")
    assert state.sync_token() == "s1"
    assert state.choice("$card", "👍\ufe0f") == "vote 1 yes"  # with or without the variation selector
    assert state.choice("$card", "🎉") is None
    assert state.reaction("$r") == VoteReaction("!room", "@ana:x", "$card", "vote 1 yes")
    assert state.direct_room("@ana:x") == "!dm" and state.is_direct("!dm")
    assert (tmp_path / "store" / "commons-matrix.db").stat().st_mode & 0o077 == 0  # holds the access token
