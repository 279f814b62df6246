"""Several bot accounts on one database: a second account's groups are kept apart
(platform "telegram.<account>"), and each process's scheduled work covers only
the groups of the accounts it serves — another process serves the rest."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from bot.app import build_core, served_accounts
from bot.clock import ManualClock
from bot.config import ConfigError, DefaultsConfig, load_config, platform_key
from bot.events import ChatRef, CommandMessage, UserRef
from scheduler import jobs
from tests.harness import START

MAIN, HOUSING = "telegram", platform_key("telegram", "housing")


def say(core, platform: str, text: str, number: int) -> None:
    core.handle(CommandMessage(chat=ChatRef(platform=platform, chat_id="-100"), sender=UserRef(platform=platform,
                user_id="7"), sender_name="Ana", text=text, event_id=f"{platform}-{number}", chat_title="Tenants"))


def outcomes(core, platform: str) -> list[str]:
    """The outcome announcements waiting to go out on this account (a card has buttons; they do not)."""
    return [item.action.text.plain() for item in core.pending_outbox([platform])
            if item.action.kind == "send" and not item.action.choices]


def test_each_process_closes_only_the_votes_of_its_own_accounts(database_url):
    clock = ManualClock(START)
    core = build_core(database_url, clock, DefaultsConfig(), migrate=False)
    try:
        # The same chat id on two bot accounts: two groups, each with its own proposal #1.
        say(core, MAIN, "/propose Paint the stairwell closes=1d", 1)
        say(core, HOUSING, "/propose Buy a ladder closes=2d", 1)
        [main_card], [housing_card] = core.pending_outbox([MAIN]), core.pending_outbox([HOUSING])
        assert "Paint the stairwell" in main_card.action.text.plain()
        assert "Buy a ladder" in housing_card.action.text.plain()
        clock.advance(timedelta(days=3))

        assert jobs.next_due(core, (MAIN,)) == START + timedelta(days=1)
        assert jobs.next_due(core, (HOUSING,)) == START + timedelta(days=2)
        assert jobs.run_due_work(core, platforms=(MAIN,)) >= 1
        assert any("Paint the stairwell" in text for text in outcomes(core, MAIN))
        assert not outcomes(core, HOUSING), "the other account's vote is left to its own process"
        assert jobs.next_due(core, (MAIN,)) is None or jobs.next_due(core, (MAIN,)) > clock.now()

        assert jobs.run_due_work(core, platforms=(HOUSING,)) >= 1
        assert any("Buy a ladder" in text for text in outcomes(core, HOUSING))
        assert jobs.run_due_work(core) == 0, "nothing was left, and nothing is done twice"
    finally:
        core.db.dispose()


def test_account_names_and_what_a_process_locks(tmp_path: Path):
    config = tmp_path / "commons.toml"
    config.write_text('[telegram]\naccount = "housing"\ntoken = "123456:secret-part"\n'
                      '[matrix]\nhomeserver = "http://localhost"\nuser_id = "@bot:localhost"\npassword = "pw"\n')
    loaded = load_config(config)
    assert served_accounts(loaded) == ["matrix", "matrix user @bot:localhost", "telegram.housing",
                                       "telegram bot 123456"]
    assert "secret-part" not in " ".join(served_accounts(loaded))
    config.write_text('[telegram]\naccount = "Housing Union"\ntoken = "1:x"\n')
    with pytest.raises(ConfigError, match=r"\[telegram\] account: got \"Housing Union\"; accepted: a short name"):
        load_config(config)
