"""A hard crash loses no Matrix vote and counts none twice.

`commons-bot run` runs as a child process against the test Synapse; 60 members of
one room vote on a proposal within two seconds, half by tapping 👍 on the card, half
by typing `!vote 1 yes`. When about half the ballots are in the database, the whole
process group gets SIGKILL (no shutdown code runs); the bot is restarted on the same
database and Matrix store. Every vote must then be counted exactly once: the adapter
confirms a sync batch (saves its token) only after every event of it was applied, and
the core's processed-event record ignores events applied before the crash.
(tests/bot_process.py has the scenario; bench/matrix_crash.py times it.)
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import uuid
from collections import Counter

import pytest

from tests.bot_process import ACK, BotProcess, MatrixHttp, Watcher, crash_burst, register_many

VOTERS = 60
TIME_LIMIT = 300.0


async def test_a_sigkill_in_a_burst_of_votes_loses_none_and_counts_none_twice(synapse, tmp_path):
    bots: list[BotProcess] = []
    try:
        result = await asyncio.wait_for(crash_burst(synapse, tmp_path, voters=VOTERS, burst_seconds=2.0,
                                                    kill_share=0.5, on_bot=bots.append), TIME_LIMIT)
        print(f"killed at {result.counted_at_kill} ballots ({result.counted_after_kill} once dead; "
              f"{result.unconfirmed} votes after the saved sync token, {result.replayed} of them applied), "
              f"{result.sent_at_kill} of {VOTERS} votes sent; restart -> reply {result.restart_to_reply:.2f} s, "
              f"-> all counted {result.restart_to_counted:.2f} s")
        # The kill landed in the middle of the burst, not before or after it.
        assert 0 < result.counted_after_kill < VOTERS, result
        assert result.unconfirmed >= VOTERS - result.counted_after_kill  # the restart had votes to catch up on
        # Exactly one ballot per voter, each the vote they cast; nobody else voted.
        voters = [user for user, _ in result.ballots]
        assert len(result.ballots) == VOTERS
        assert sorted(voters) == sorted(result.members)
        assert Counter(choice for _, choice in result.ballots) == {"yes": VOTERS}
        assert result.processed == VOTERS  # every vote event applied (and recorded) once
        # The restarted bot answers from the same record: every voter is listed.
        assert f"yes ({VOTERS})" in result.detail_reply, result.detail_reply
        missing = [name for name in result.voter_names if name not in result.detail_reply]
        assert not missing, f"not listed by `!proposal 1`: {missing}"
        assert result.final_tally.startswith(f"Tally: {VOTERS} yes"), result.final_tally
        # Nothing said twice: the command sent during the restart is answered once, and no typed
        # vote got two ✅.
        assert result.replies_to_proposals == 1
        assert max(result.acks.values()) <= 1, {k: n for k, n in result.acks.items() if n > 1}
    except BaseException:
        for bot in bots:
            print(bot.log_text())
        raise
    finally:
        for bot in bots:
            bot.kill()


async def test_replies_committed_but_not_sent_at_a_sigkill_are_sent_once_after_the_restart(synapse, tmp_path):
    """The homeserver holds the bot to one message a second, so five answers wait in the outbox
    (committed with their commands) when the bot is killed; the restarted bot sends each once."""
    bot_user, owner = await register_many(synapse, [(f"commons-{uuid.uuid4().hex[:6]}", "Commons"),
                                                    (f"owner-{uuid.uuid4().hex[:6]}", "Olga")])
    bot = BotProcess(tmp_path, synapse.url, bot_user)
    http = MatrixHttp(synapse.url)
    watcher = Watcher(http, owner)
    limited = False
    try:
        async with asyncio.timeout(TIME_LIMIT):
            bot.start()
            await watcher.start()
            room = await http.create_room(owner.access_token, "Tenants' Union", [bot_user.user_id])
            first = await http.say(owner.access_token, room, "!help")
            await watcher.wait_for(lambda: watcher.replies(room, bot_user.user_id, first), 60, "a first answer")

            synapse.override_ratelimit(bot_user.user_id, messages_per_second=1, burst_count=1)
            limited = True
            commands = [await http.say(owner.access_token, room, text)
                        for text in ("!proposals", "!decisions", "!roles", "!needs", "!help vote")]
            while len(bot.processed_ids(commands)) < len(commands):  # all five answers are committed
                assert bot.running, "the bot exited"
                await asyncio.sleep(0.01)
            bot.kill()
            answered = [c for c in commands if watcher.replies(room, bot_user.user_id, c)]
            assert len(answered) < len(commands) - 1, "the homeserver's limit did not hold the answers back"
            synapse.delete_ratelimit_override(bot_user.user_id)
            limited = False

            bot.start()
            await watcher.wait_for(lambda: all(watcher.replies(room, bot_user.user_id, c) for c in commands), 60,
                                   "an answer to every command")
            await asyncio.sleep(3.0)  # a duplicate would show by now
            counts = [len(watcher.replies(room, bot_user.user_id, c)) for c in commands]
            print(f"answered before the kill: {len(answered)} of {len(commands)}; after the restart: {counts}")
            assert counts == [1] * len(commands)
            # In order, as they were asked.
            arrivals = [watcher.replies(room, bot_user.user_id, c)[0][1]["origin_server_ts"] for c in commands]
            assert arrivals == sorted(arrivals)
    except BaseException:
        print(bot.log_text())
        raise
    finally:
        bot.kill()
        if limited:
            synapse.delete_ratelimit_override(bot_user.user_id)
        await watcher.stop()
        await http.close()


async def test_a_reply_accepted_but_not_yet_marked_sent_at_a_sigkill_is_not_sent_again(synapse, tmp_path):
    """The window between the homeserver accepting a reply and the outbox row being marked sent:
    the bot is frozen (SIGSTOP) at random moments while it answers forty commands, until a
    reply is visible in the room while its outbox row is still unsent; then it gets SIGKILL."""
    bot_user, owner = await register_many(synapse, [(f"commons-{uuid.uuid4().hex[:6]}", "Commons"),
                                                    (f"owner-{uuid.uuid4().hex[:6]}", "Olga")])
    bot = BotProcess(tmp_path, synapse.url, bot_user)
    http = MatrixHttp(synapse.url)
    watcher = Watcher(http, owner)
    try:
        async with asyncio.timeout(TIME_LIMIT):
            bot.start()
            await watcher.start()
            room = await http.create_room(owner.access_token, "Tenants' Union", [bot_user.user_id])
            first = await http.say(owner.access_token, room, "!help")
            await watcher.wait_for(lambda: watcher.replies(room, bot_user.user_id, first), 60, "a first answer")
            commands = [await http.say(owner.access_token, room, "!help") for _ in range(40)]
            caught = None
            for _ in range(100):
                os.killpg(bot.process.pid, signal.SIGSTOP)
                await asyncio.sleep(0.3)  # whatever the homeserver was handling for the bot is done now
                unsent = {json.loads(action).get("reply_to")
                          for action, in bot.query("SELECT action FROM outbox WHERE sent_at IS NULL")}
                caught = next((c for c in commands if c in unsent and watcher.replies(room, bot_user.user_id, c)),
                              None)
                if caught:
                    break
                os.killpg(bot.process.pid, signal.SIGCONT)
                await asyncio.sleep(random.uniform(0.002, 0.03))
            bot.kill()
            if caught is None:
                pytest.skip("the bot was never caught between a send and its mark")
            bot.start()
            await watcher.wait_for(lambda: all(watcher.replies(room, bot_user.user_id, c) for c in commands), 60,
                                   "an answer to every command")
            await asyncio.sleep(3.0)
            twice = [c for c in commands if len(watcher.replies(room, bot_user.user_id, c)) > 1]
            assert not twice, f"{len(twice)} commands answered twice (caught: {caught})"
    except BaseException as error:
        if not isinstance(error, AssertionError):
            print(bot.log_text())
        raise
    finally:
        bot.kill()
        await watcher.stop()
        await http.close()


async def test_acknowledgements_committed_but_not_sent_at_a_sigkill_are_sent_after_the_restart(synapse, tmp_path):
    """The homeserver holds the bot to one event a second, so the ✅ of five typed votes wait when
    the bot is killed; after the restart each vote has its ✅."""
    tag = uuid.uuid4().hex[:6]
    users = await register_many(synapse, [(f"commons-{tag}", "Commons"), (f"owner-{tag}", "Olga"),
                                          *((f"v{n}-{tag}", f"Voter {n}") for n in range(5))])
    bot_user, owner, voters = users[0], users[1], users[2:]
    bot = BotProcess(tmp_path, synapse.url, bot_user)
    http = MatrixHttp(synapse.url)
    watcher = Watcher(http, owner)
    limited = False
    try:
        async with asyncio.timeout(TIME_LIMIT):
            bot.start()
            await watcher.start()
            room = await http.create_room(owner.access_token, "Tenants' Union",
                                          [bot_user.user_id, *(v.user_id for v in voters)])
            for voter in voters:
                await http.join(voter.access_token, room)
            command = await http.say(owner.access_token, room, "!propose Rent strike closes=1d")
            _, card = (await watcher.wait_for(lambda: watcher.replies(room, bot_user.user_id, command), 60,
                                              "the card"))[0]
            await watcher.wait_for(lambda: len(watcher.reactions(room, bot_user.user_id, card["event_id"])) >= 4,
                                   30, "the seeded reactions")
            synapse.override_ratelimit(bot_user.user_id, messages_per_second=1, burst_count=1)
            limited = True
            votes = [await http.say(voter.access_token, room, "!vote 1 yes") for voter in voters]
            while len(bot.processed_ids(votes)) < len(votes):
                assert bot.running, "the bot exited"
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.5)
            bot.kill()
            synapse.delete_ratelimit_override(bot_user.user_id)
            limited = False
            bot.start()
            asked = await http.say(owner.access_token, room, "!proposals")
            await watcher.wait_for(lambda: watcher.replies(room, bot_user.user_id, asked), 60, "an answer")
            await asyncio.sleep(3.0)
            acks = [watcher.reactions(room, bot_user.user_id, vote).count(ACK) for vote in votes]
            assert acks == [1] * len(votes)
    except BaseException as error:
        if not isinstance(error, AssertionError):
            print(bot.log_text())
        raise
    finally:
        bot.kill()
        if limited:
            synapse.delete_ratelimit_override(bot_user.user_id)
        await watcher.stop()
        await http.close()
