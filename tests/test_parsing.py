"""Parsing: tokens, durations, typed arguments, usage lines, prefixes — and no
input string makes the parser raise anything but its own clear error."""

import re
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.commands.args import ArgError, Number, OptionList, Quorum, QuorumArg
from bot.commands.catalog import REGISTRY
from bot.commands.registry import CommandError, tokenize
from bot.durations import DurationError, format_duration, humanize, parse_duration


@pytest.mark.parametrize("text, expected", [
    ("30s", timedelta(seconds=30)), ("15m", timedelta(minutes=15)), ("12h", timedelta(hours=12)),
    ("3d", timedelta(days=3)), ("2w", timedelta(weeks=2)), ("1d12h", timedelta(hours=36)),
    (" 2H ", timedelta(hours=2)),
    # months (30 days) and years (365 days); m stays minutes
    ("6mo", timedelta(days=180)), ("1y", timedelta(days=365)), ("90m", timedelta(minutes=90)),
    ("1y6mo", timedelta(days=545)), ("6MO", timedelta(days=180)), ("1mo15d", timedelta(days=45)),
    ("10y", timedelta(days=3650)), ("2w", timedelta(days=14)), ("6m", timedelta(minutes=6)),
])
def test_durations_read_like_people_write_them(text, expected):
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "3", "d", "3x", "-3d", "0s", "3.5d", "1e9s", "99999999d", "3 days",
                                  "mo", "6o", "6mos", "1yr", "6 months", "y1", "0mo", "11y", "1.5y", "6mo1"])
def test_bad_durations_are_refused_with_a_sentence(text):
    with pytest.raises(DurationError) as error:
        parse_duration(text)
    assert len(str(error.value)) > 10


@pytest.mark.parametrize("text, complaint", [
    ("6 months", "write it like 30s, 15m, 12h, 3d, 2w, 6mo or 1y (m is minutes, mo months)"),
    ("0mo", "longer than zero"), ("11y", "at most ten years"),
])
def test_bad_durations_say_what_to_write(text, complaint):
    with pytest.raises(DurationError, match=re.escape(complaint)):
        parse_duration(text)


def test_durations_format_back_to_their_shortest_form():
    assert format_duration(timedelta(days=90)) == "90d"
    assert format_duration(timedelta(hours=36)) == "1d12h"
    assert format_duration(timedelta(days=14)) == "2w"
    # up to a quarter in days or weeks, as role terms are written; beyond it whole months and years
    assert format_duration(timedelta(days=30)) == "30d" and format_duration(timedelta(days=60)) == "60d"
    assert format_duration(timedelta(days=84)) == "12w"
    assert format_duration(timedelta(days=180)) == "6mo" and format_duration(timedelta(days=365)) == "1y"
    assert format_duration(timedelta(days=545)) == "1y6mo" and format_duration(timedelta(days=390)) == "13mo"
    assert format_duration(timedelta(days=400)) == "400d"
    assert format_duration(timedelta(days=180, hours=12)) == "180d12h"
    assert format_duration(timedelta(minutes=90)) == "1h30m"
    assert humanize(timedelta(minutes=59, seconds=59)) == "1 hour"
    assert humanize(timedelta(days=3)) == "3 days"


@given(st.integers(min_value=1, max_value=3660 * 86400))
@settings(max_examples=300)
def test_every_formatted_duration_parses_back_to_itself(seconds):
    value = timedelta(seconds=seconds)
    assert parse_duration(format_duration(value)) == value


def test_review_reads_months_not_minutes():
    values = REGISTRY.find("propose").parse("Rent the hall review=6mo closes=90m")
    assert values["review"] == timedelta(days=180) and values["closes"] == timedelta(minutes=90)
    with pytest.raises(CommandError) as error:
        REGISTRY.find("propose").parse("Rent the hall review=6months")
    assert "review=: “6months” is not a duration" in error.value.message


def test_tokens_keep_quoted_words_together_and_tolerate_stray_quotes():
    assert [t.value for t in tokenize('a "b c" “d e” 5" screen')] == ["a", "b c", "d e", '5"', "screen"]


def test_numbers_quorums_and_option_lists():
    assert Number().parse("#12") == 12
    with pytest.raises(ArgError):
        Number().parse("0")
    assert QuorumArg().parse("40%") == Quorum(40, True)
    assert Quorum(40, True).required(11) == 5  # rounds up: 4.4 people is not a quorum
    assert Quorum(3, False).required(100) == 3
    with pytest.raises(ArgError):
        QuorumArg().parse("150%")
    assert OptionList().parse("Mon; Tue ;Wed") == ["Mon", "Tue", "Wed"]
    for bad in ("Mon", "Mon; mon", "1; 2"):
        with pytest.raises(ArgError):
            OptionList().parse(bad)


def test_propose_reads_title_details_and_options_in_any_order():
    command = REGISTRY.find("propose")
    values = command.parse('closes=2d Paint the  "blue" door | before winter rule=2/3 quorum=50%')
    assert values["title"] == 'Paint the  "blue" door | before winter'
    assert values["closes"] == timedelta(days=2)
    assert values["rule"] == "two-thirds"
    assert values["quorum"] == Quorum(50, True)
    assert values["options"] is None


@pytest.mark.parametrize("arguments, complaint", [
    ("", "title is missing"),
    ("x closes=soon", "not a duration"),
    ("x rul=consent", "no option “rul=”"),
    ("x rule=unanimity", "not one of"),
    ('x options="only one"', "at least two options"),
])
def test_wrong_propose_says_what_was_wrong(arguments, complaint):
    with pytest.raises(CommandError) as error:
        REGISTRY.find("propose").parse(arguments)
    assert complaint in error.value.message


def test_usage_lines_are_generated_from_the_declaration():
    assert REGISTRY.find("vote").usage("!") == ("!vote <#> <yes|no|abstain|block|option> [reason…] [receipt=code] "
                                                "[group=group]")
    assert REGISTRY.find("propose").usage("/").startswith("/propose <title> [| details] [closes=duration]")
    assert "[rule=majority|two-thirds|consent|consensus]" in REGISTRY.find("propose").usage("!")


@pytest.mark.parametrize("text, name", [
    ("!vote 1 yes", "vote"), ("/vote 1 yes", "vote"), ("/VOTE@CommonsBot 1 yes", "vote"),
    ("!proposals", "proposals"), ("!poll Lunch options=\"a; b\"", "propose"),
])
def test_prefixes_and_bot_names(text, name):
    invocation = REGISTRY.parse_invocation(text, require_prefix=True, bot_username="commonsbot")
    assert invocation.command.name == name


def test_commands_for_other_bots_and_plain_chat_are_not_ours():
    assert REGISTRY.parse_invocation("/vote@OtherBot 1 yes", require_prefix=True, bot_username="commonsbot") is None
    assert REGISTRY.parse_invocation("vote 1 yes", require_prefix=True) is None
    assert REGISTRY.parse_invocation("vote 1 yes", require_prefix=False).command.name == "vote"


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=300))
def test_no_input_makes_the_parser_raise_anything_but_its_own_error(text):
    for line in (text, "!" + text, "!propose " + text, "!vote " + text, "!set " + text):
        invocation = REGISTRY.parse_invocation(line, require_prefix=True)
        if invocation is None or invocation.command is None:
            continue
        try:
            invocation.command.parse(invocation.arguments)
        except CommandError as error:
            assert error.message


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(["closes=", "rule=", "quorum=", "options=", '"', "“", "|", " ", "3d", "50%",
                                 "a;b", "consent", "#", "\n", "\x00", "=", "x"]), max_size=30).map("".join))
def test_option_syntax_soup_never_crashes(text):
    try:
        REGISTRY.find("propose").parse(text)
    except CommandError:
        pass


def test_mentions_parse_to_what_was_typed():
    from bot.commands.args import Mention, MentionArg

    assert MentionArg().parse(" @bob:example.org ") == Mention("@bob:example.org")
    with pytest.raises(ArgError):
        MentionArg().parse("@")
