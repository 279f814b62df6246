"""Whatever members type, the core answers without an internal error and
renders their text escaped."""

import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.actions import SendMessage
from bot.app import build_core
from bot.clock import ManualClock
from bot.config import DefaultsConfig
from bot.events import ChatRef, CommandMessage, UserRef
from bot.render.text import RichText

ROOM = ChatRef(platform="console", chat_id="fuzz")
_ids = itertools.count()


@pytest.fixture(scope="module")
def core(tmp_path_factory):
    core = build_core(f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'fuzz.db'}", ManualClock(), DefaultsConfig())
    core.handle(say("!propose Standing proposal"))
    core.handle(say('!propose Standing poll options="Red; Green"'))
    yield core
    core.db.dispose()


def say(text, user="alice"):
    return CommandMessage(chat=ROOM, sender=UserRef(platform="console", user_id=user), sender_name=user,
                          text=text, event_id=f"fuzz-{next(_ids)}")


def well_formed(text: RichText) -> bool:
    from html.parser import HTMLParser

    class Check(HTMLParser):
        ok = True

        def handle_starttag(self, tag, attrs):
            self.ok &= tag in {"b", "i", "u", "s", "code", "pre", "a", "blockquote"}

    checker = Check()
    checker.feed(text.html)
    return checker.ok


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(command=st.sampled_from(["!propose ", "!vote 1 ", "!vote 2 ", "!set ", "!proposal ", "!help ", "!",
                                "!decisions ", "!close ", "!remind "]),
       text=st.text(max_size=200))
def test_no_text_causes_an_internal_error_or_leaks_markup(core, command, text):
    for action in core.handle(say(command + text, user="bob")):
        assert "went wrong on my side" not in action.text.plain()
        assert well_formed(action.text)
        if isinstance(action, SendMessage):
            assert "<script" not in action.text.html
