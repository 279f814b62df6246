#!/usr/bin/env python
"""Load benchmark for the Telegram adapter: a burst of updates into one group, end to end.

The real `TelegramAdapter` (python-telegram-bot, production settings: edit_delay 2 s, the default
`CommonsRateLimiter`), a `Runtime` and a SQLite core talk over loopback HTTP to the in-process Bot API
emulator (`tests.telegram_emulator.BotApiEmulator`), wired like the `Rig` of
tests/test_telegram_adapter.py. One group, N users; a `/propose`, then a mix of button presses on
its card, typed `/vote`s and read commands, injected as a burst.

    python bench/telegram.py                        # 1,000 updates from 300 users (a few minutes)
    python bench/telegram.py --quick                # same burst, 8 read commands (under a minute)
    python bench/telegram.py --updates 1000 --users 300 --reads 50

See bench/README.md ("Telegram adapter benchmark") for what is measured and the targets.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# This file is called telegram.py. Run as `python bench/telegram.py`, bench/ is sys.path[0], and
# `import telegram` (python-telegram-bot, in adapters/telegram.py) would import this script instead.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # so `tests.telegram_emulator` imports

import argparse  # noqa: E402
import asyncio  # noqa: E402
import logging  # noqa: E402
import random  # noqa: E402
import resource  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections import Counter  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402

from sqlalchemy import text as sql_text  # noqa: E402

import bot.app  # noqa: E402
from adapters.telegram import SEND_METHODS, CommonsRateLimiter, TelegramAdapter  # noqa: E402
from bench import common  # noqa: E402
from bot.clock import SystemClock  # noqa: E402
from bot.config import DefaultsConfig, SchedulerConfig  # noqa: E402
from bot.durations import parse_duration  # noqa: E402
from bot.runtime import Runtime  # noqa: E402
from tests.telegram_emulator import BotApiEmulator  # noqa: E402

SEED = 42
GROUP = -1001234567890
FIRST_USER = 1000
TOKEN = "123456:TEST-TOKEN"

# Targets / limits (see README).
GROUP_MESSAGES_PER_MINUTE = 20  # Telegram: about 20 messages a minute in one group
WINDOW = 60.0
SLOW_PRESS = 15.0  # a press answer later than this: Telegram clients have long given up waiting

STANCES = ("yes", "no", "abstain", "block")
STANCE_WEIGHTS = (50, 25, 15, 10)
REASONS = ("I can help with this", "too expensive for now", "we discussed it last week",
           "fine by me", "needs more detail first", "let's try it for a month")
READS = ("/proposal 1", "/proposals", "/help")

PRESS, TYPED, READ = "button press", "typed /vote", "read command"
KINDS = (PRESS, TYPED, READ)


# --------------------------------------------------------------------------
# configuration and workload

@dataclass
class Config:
    updates: int  # including the /propose
    users: int
    reads: int
    burst_seconds: float  # the mix is injected over about this long
    batch: int = 10  # updates injected together, then a short sleep
    press_share: float = 0.70
    typed_share: float = 0.25


def make_config(args: argparse.Namespace) -> Config:
    updates = args.updates
    if updates < 10:
        raise SystemExit("--updates must be at least 10")
    mix = updates - 1
    reads = args.reads if args.reads is not None else (8 if args.quick else round(mix * 0.05))
    if not 0 <= reads < mix:
        raise SystemExit(f"--reads must be between 0 and {mix - 1}")
    if args.users < 1:
        raise SystemExit("--users must be at least 1")
    return Config(updates=updates, users=args.users, reads=reads, burst_seconds=args.burst)


@dataclass
class Item:
    kind: str
    user: int
    text: str  # the typed text, or the button's callback data
    choice: str | None = None  # for votes: the stance chosen
    # filled in while running
    injected: float = 0.0
    ref: str | int | None = None  # query id (press) or message id (typed)
    replied: float | None = None
    reply: str | None = None  # toast text, reply text


@dataclass
class Expected:
    final: dict = field(default_factory=dict)  # user -> last choice
    changes: int = 0
    unchanged: int = 0


def workload(cfg: Config, expected: Expected) -> list[Item]:
    """The mix after the /propose, in injection (= processing) order."""
    rng = random.Random(SEED)
    mix = cfg.updates - 1
    votes = mix - cfg.reads
    typed = round(votes * cfg.typed_share / (cfg.press_share + cfg.typed_share))
    kinds = [PRESS] * (votes - typed) + [TYPED] * typed + [READ] * cfg.reads
    rng.shuffle(kinds)
    users = [FIRST_USER + n for n in range(cfg.users)]
    # Everyone votes once (first votes spread over the burst); the remaining votes are people pressing
    # or typing again, mostly to change their minds.
    voters = list(users) if votes >= cfg.users else rng.sample(users, votes)
    voters += [rng.choice(users) for _ in range(votes - len(voters))]
    rng.shuffle(voters)
    items = []
    for kind in kinds:
        if kind == READ:
            items.append(Item(READ, rng.choice(users), rng.choice(READS)))
            continue
        user = voters.pop()
        current = expected.final.get(user)
        if current is not None and rng.random() < 0.85:
            pool = [s for s in STANCES if s != current]
            choice = rng.choices(pool, [STANCE_WEIGHTS[STANCES.index(s)] for s in pool])[0]
        else:
            choice = rng.choices(STANCES, STANCE_WEIGHTS)[0]
        if current is not None:
            expected.changes += current != choice
            expected.unchanged += current == choice
        expected.final[user] = choice
        if kind == PRESS:
            items.append(Item(PRESS, user, f"vote 1 {choice}", choice))
        else:
            text = f"/vote 1 {choice}"
            if rng.random() < 0.3:
                text += " " + rng.choice(REASONS)
            items.append(Item(TYPED, user, text, choice))
    return items


# --------------------------------------------------------------------------
# running

class WarningCount(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


class Replies:
    """Indexes what the bot did in the emulator, incrementally (the lists only grow)."""

    def __init__(self, emu: BotApiEmulator) -> None:
        self.emu = emu
        self.reactions: dict[int, float] = {}
        self.replies: dict[int, dict] = {}  # replied-to message id -> first message sent in reply
        self._seen_reactions = 0
        self._seen_sent = 0

    def update(self) -> None:
        for entry in self.emu.reactions[self._seen_reactions:]:
            if entry["chat_id"] == GROUP:
                self.reactions.setdefault(entry["message_id"], entry["at"])
        self._seen_reactions = len(self.emu.reactions)
        for entry in self.emu.sent[self._seen_sent:]:
            if entry["chat_id"] == GROUP and entry["reply_to"] is not None:
                self.replies.setdefault(entry["reply_to"], entry)
        self._seen_sent = len(self.emu.sent)

    def collect(self, items: list[Item]) -> int:
        """Fill in the reply times; return how many items still wait for theirs."""
        self.update()
        waiting = 0
        for item in items:
            if item.replied is not None:
                continue
            if item.kind == PRESS:
                answer = self.emu.answers.get(item.ref)
                if answer is not None:
                    item.replied, item.reply = answer["at"], answer["text"]
            elif item.kind == TYPED:
                if item.ref in self.reactions:
                    item.replied = self.reactions[item.ref]
                elif item.ref in self.replies:  # a refusal, or the reaction fallback
                    sent = self.replies[item.ref]
                    item.replied, item.reply = sent["at"], sent["plain"]
            elif item.ref in self.replies:
                sent = self.replies[item.ref]
                item.replied, item.reply = sent["at"], sent["plain"]
            if item.replied is None:
                waiting += 1
        return waiting


async def run(cfg: Config, enforce_limits: bool = False) -> tuple[dict, bool]:
    """Returns the measurements and whether every check passed."""
    problems: list[str] = []
    expected = Expected()
    items = workload(cfg, expected)
    warnings = WarningCount()
    logging.getLogger().addHandler(warnings)
    tmp = tempfile.TemporaryDirectory(prefix="commons-tg-bench-")
    url = f"sqlite:///{tmp.name}/bench.db"
    async with BotApiEmulator(token=TOKEN, enforce_rate_limits=enforce_limits) as emu:
        emu.add_chat(GROUP, "Bench group", member_count=cfg.users + 1)
        for n in range(cfg.users):
            emu.add_user(FIRST_USER + n, "Member", last_name=str(FIRST_USER + n))
        core = bot.app.build_core(url, SystemClock(), DefaultsConfig())
        adapter = TelegramAdapter(TOKEN, commands=bot.app.published_commands(), base_url=emu.base_url,
                                  base_file_url=emu.base_file_url, poll_timeout=1,
                                  rate_limiter=CommonsRateLimiter())  # the default one; edit_delay default
        runtime = Runtime(core, [adapter], parse_duration(SchedulerConfig().sweep_interval))
        await runtime.start()
        bot.app.freeze_start_up_objects()  # as `commons-bot run` does after start-up
        try:
            # 1. the proposal, and its card
            propose_at = time.monotonic()
            propose_id = emu.send_text(GROUP, FIRST_USER, "/propose Buy a chest freezer for the pantry | "
                                                          "Second-hand, about 300 EUR; see the thread. closes=7d")
            await emu.wait_for(lambda: any(s["reply_to"] == propose_id for s in emu.sent), timeout=30)
            card = next(s for s in emu.sent if s["reply_to"] == propose_id)
            card_id = card["message_id"]
            propose_latency = card["at"] - propose_at
            buttons = [b["callback_data"] for row in card["reply_markup"]["inline_keyboard"] for b in row]
            if buttons != [f"vote 1 {s}" for s in STANCES]:
                problems.append(f"unexpected card buttons {buttons!r}")

            # 2. the burst: `batch` updates at a time, on a fixed schedule
            replies = Replies(emu)
            interval = cfg.burst_seconds * cfg.batch / max(len(items), 1)
            started = time.monotonic()
            for start in range(0, len(items), cfg.batch):
                target = started + (start // cfg.batch) * interval
                delay = target - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                for item in items[start:start + cfg.batch]:
                    item.injected = time.monotonic()
                    if item.kind == PRESS:
                        item.ref = emu.press(GROUP, card_id, item.user, item.text)
                    else:
                        item.ref = emu.send_text(GROUP, item.user, item.text)
            injected = time.monotonic() - started

            # 3. wait for every reply (read replies trickle out at the group's message budget)
            group_messages = 1 + cfg.reads * 2  # upper bound: a reply may be split in two
            deadline = time.monotonic() + 60 + group_messages * WINDOW / GROUP_MESSAGES_PER_MINUTE
            last_note = time.monotonic()
            while (waiting := replies.collect(items)) and time.monotonic() < deadline:
                if time.monotonic() - last_note >= 15:
                    last_note = time.monotonic()
                    left = Counter(item.kind for item in items if item.replied is None)
                    print(f"  … {time.monotonic() - started:.0f} s: waiting for "
                          + ", ".join(f"{n} {kind}" for kind, n in sorted(left.items())), file=sys.stderr,
                          flush=True)
                await asyncio.sleep(0.05)
            if waiting:
                problems.append(f"{waiting} updates got no reply within the time allowed")
            await asyncio.sleep(0.5)  # a reply split in parts: let the last part land
            replies.collect(items)
            edits_before_flush = sum(1 for e in emu.edits if e["message_id"] == card_id
                                     and e["method"] == "editMessageText")
            await runtime.delivery.drain()  # pending tally edits go out now
            final_card = emu.message(GROUP, card_id)["text"]

            # 4. the database
            with core.db.engine.connect() as conn:
                rows = conn.execute(sql_text(
                    "SELECT m.user_id, b.choice FROM ballots b JOIN members m ON m.id = b.member_id "
                    "JOIN proposals p ON p.id = b.proposal_id WHERE p.number = 1")).all()
        finally:
            await runtime.stop()
            core.db.dispose()
            tmp.cleanup()
        errors = list(emu.errors)
        sent = [s for s in emu.sent if s["chat_id"] == GROUP and s["method"] in SEND_METHODS]
        edits = [e for e in emu.edits if e["message_id"] == card_id and e["method"] == "editMessageText"]
        calls = Counter(method for method, _ in emu.calls)
        # The longest time during the run in which the bot made no Bot API call but getUpdates.
        busy = [at for method, at in emu.calls if method not in ("getUpdates", "") and started <= at]
    logging.getLogger().removeHandler(warnings)

    # ---- checks
    stored = {int(user): choice for user, choice in rows}
    voters = len(expected.final)
    if len(rows) != voters:
        problems.append(f"{len(rows)} ballots in the database, expected one per distinct voter ({voters})")
    wrong = [u for u, c in expected.final.items() if stored.get(u) != c]
    if wrong:
        problems.append(f"{len(wrong)} stored ballots differ from the voter's last choice, e.g. user {wrong[0]}: "
                        f"stored {stored.get(wrong[0])!r}, expected {expected.final[wrong[0]]!r}")
    tally = Counter(expected.final.values())
    tally_text = " · ".join(f"{tally.get(s, 0)} {s}" for s in STANCES)
    if f"Tally: {tally_text}" not in final_card:
        shown = next((line for line in final_card.splitlines() if line.startswith("Tally:")), final_card[:200])
        problems.append(f"final card shows {shown!r}, expected 'Tally: {tally_text}'")
    bad_toasts = [i for i in items if i.kind == PRESS and i.reply is not None
                  and f"{i.choice} on #1" not in i.reply]
    if bad_toasts:
        problems.append(f"{len(bad_toasts)} press answers do not confirm the choice, e.g. {bad_toasts[0].reply!r}")
    typed_replied = [i for i in items if i.kind == TYPED and i.reply is not None]
    if typed_replied:
        problems.append(f"{len(typed_replied)} typed votes were answered with a group message instead of a "
                        f"reaction, e.g. {typed_replied[0].reply[:120]!r}")
    refused = [i for i in items if i.kind == READ and i.reply is not None and "⚠" in i.reply]
    if refused:
        problems.append(f"{len(refused)} read commands were refused, e.g. {refused[0].reply[:120]!r}")
    expected_sent = {card_id} | {i.ref for i in items if i.kind == READ}
    stray = [s for s in sent if s["message_id"] != card_id and s["reply_to"] not in expected_sent
             and not _continuation(s, sent)]
    if stray:
        problems.append(f"{len(stray)} unexpected messages in the group, e.g. {stray[0]['plain'][:120]!r}")

    times = sorted(s["at"] for s in sent)
    window_max, tightest = sliding_max(times, WINDOW), tightest_span(times, GROUP_MESSAGES_PER_MINUTE + 1)
    if window_max > GROUP_MESSAGES_PER_MINUTE:
        problems.append(f"{window_max} messages to the group within {WINDOW:.0f} s (limit "
                        f"{GROUP_MESSAGES_PER_MINUTE})")
    replied = [i for i in items if i.replied is not None]
    end = max((i.replied for i in replied), default=started)
    votes_end = max((i.replied for i in replied if i.kind != READ), default=started)
    busy = [at for at in busy if at <= votes_end]
    stall = max((b - a for a, b in zip(busy, busy[1:], strict=False)), default=0.0)
    result = dict(
        cfg=cfg, items=items, expected=expected, propose_latency=propose_latency, injected=injected,
        started=started, end=end, votes_end=votes_end, sent=sent, edits=edits, edits_before_flush=edits_before_flush,
        window_max=window_max, tightest=tightest, errors=errors, warnings=warnings.records, calls=calls,
        ballots=len(rows), voters=voters, tally_text=tally_text, final_card=final_card, problems=problems,
        split=sum(1 for s in sent if _continuation(s, sent)), stall=stall,
        enforced=enforce_limits,
    )
    return result, not problems


def _continuation(message: dict, sent: list[dict]) -> bool:
    """A later part of a split reply: no reply itself, sent right after a reply (or an earlier part)."""
    if message["reply_to"] is not None:
        return False
    index = next(n for n, s in enumerate(sent) if s is message)
    previous = sent[index - 1] if index > 0 else None
    return previous is not None and not previous.get("reply_markup") and (
        previous["reply_to"] is not None or _continuation(previous, sent))


def sliding_max(times: list[float], window: float) -> int:
    """The most timestamps in any half-open window [t, t + window)."""
    best, low = 0, 0
    for high, t in enumerate(times):
        while t - times[low] >= window:
            low += 1
        best = max(best, high - low + 1)
    return best


def tightest_span(times: list[float], count: int) -> float | None:
    """The shortest time covering `count` consecutive timestamps (must stay >= the window)."""
    spans = [times[n + count - 1] - times[n] for n in range(len(times) - count + 1)]
    return min(spans) if spans else None


# --------------------------------------------------------------------------
# reporting

def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    if not sorted_values:
        return float("nan")
    rank = max(1, -(-len(sorted_values) * q // 100))
    return sorted_values[int(rank) - 1]


def machine() -> list[str]:
    import aiohttp
    import telegram

    return common.machine({"python-telegram-bot": telegram.__version__, "aiohttp": aiohttp.__version__})


def report(r: dict) -> None:
    cfg: Config = r["cfg"]
    items: list[Item] = r["items"]
    out = print
    out(f"=== Telegram adapter: {cfg.updates:,} updates from {cfg.users} users into one group ===")
    out("setup: BotApiEmulator (in-process, loopback HTTP) <- TelegramAdapter (python-telegram-bot's Bot, its own "
        "getUpdates loop confirming an update only once applied, edit_delay 2.0 s, CommonsRateLimiter: 30 req/s "
        "overall, 20 messages/min per group) <- Runtime and outbox delivery <- core (SQLite file in a temp dir, WAL); "
        "gc.freeze() after start-up, as the app does; the emulator "
        + ("answers 429 past Telegram's limits (--enforce-limits)" if r["enforced"] else "does not enforce limits"))
    counts = Counter(i.kind for i in items)
    reads = ", ".join(f"{n} {t}" for t, n in sorted(Counter(i.text for i in items if i.kind == READ).items()))
    out(f"workload: 1 /propose, then {counts[PRESS]:,} button presses, {counts[TYPED]:,} typed /vote, "
        f"{counts[READ]:,} read commands ({reads}); "
        f"{len(r['expected'].final)} distinct voters, {r['expected'].changes:,} changed and "
        f"{r['expected'].unchanged:,} repeated votes; seed {SEED}")
    for line in machine():
        out(line)
    out(f"/propose -> card: {r['propose_latency'] * 1000:.0f} ms")
    out(f"burst: {len(items):,} updates injected in {r['injected']:.2f} s ({len(items) / r['injected']:,.0f}/s, "
        f"{cfg.batch} at a time)")
    total = r["end"] - r["started"]
    votes_total = r["votes_end"] - r["started"]
    out(f"all {len(items):,} updates handled (last reply) after {total:.2f} s: {len(items) / total:,.1f} updates/s")
    votes = counts[PRESS] + counts[TYPED]
    out(f"the {votes:,} votes (presses + typed) all answered after {votes_total:.2f} s: "
        f"{votes / votes_total:,.1f} votes/s")
    out("")
    header = f"{'update kind':<34}{'count':>7}{'p50 s':>9}{'p95 s':>9}{'p99 s':>9}{'max s':>9}"
    out("latency from injection to reply (press: answerCallbackQuery; typed vote: reaction; read: reply message)")
    out(header)
    out("-" * len(header))
    rows = [(f"{PRESS} (answer)", [i for i in items if i.kind == PRESS]),
            (f"{TYPED} (reaction)", [i for i in items if i.kind == TYPED]),
            (f"{READ} (rate-limited reply)", [i for i in items if i.kind == READ]),
            ("votes (press + typed)", [i for i in items if i.kind != READ]),
            ("all updates", items)]
    for label, group in rows:
        lat = sorted(i.replied - i.injected for i in group if i.replied is not None)
        missing = len(group) - len(lat)
        out(f"{label:<34}{len(group):>7,}{percentile(lat, 50):>9.3f}{percentile(lat, 95):>9.3f}"
            f"{percentile(lat, 99):>9.3f}{(lat[-1] if lat else float('nan')):>9.3f}"
            + (f"   ({missing} never answered)" if missing else ""))
    presses = [i.replied - i.injected for i in items if i.kind == PRESS and i.replied is not None]
    out(f"longest pause in Bot API calls (getUpdates aside) before the last vote was answered: {r['stall']:.3f} s")
    out(f"presses answered after more than 1 s: {sum(t > 1 for t in presses):,}; more than {SLOW_PRESS:.0f} s: "
        f"{sum(t > SLOW_PRESS for t in presses):,} (of {len(presses):,})")
    out("")
    sent = r["sent"]
    span = (sent[-1]["at"] - sent[0]["at"]) if sent else 0.0
    out(f"messages sent to the group: {len(sent)} (1 card + {counts[READ]} read replies, {r['split']} of them "
        f"split into a second part) over {span:.1f} s")
    tight = r["tightest"]
    ok = r["window_max"] <= GROUP_MESSAGES_PER_MINUTE
    out(f"max messages to the group in any {WINDOW:.0f} s window: {r['window_max']} (limit "
        f"{GROUP_MESSAGES_PER_MINUTE}: {'MET' if ok else 'EXCEEDED'})"
        + (f"; shortest span of {GROUP_MESSAGES_PER_MINUTE + 1} consecutive messages: {tight:.3f} s" if tight else ""))
    edits = r["edits"]
    out(f"card edits (editMessageText): {len(edits)} for {votes:,} votes ({r['edits_before_flush']} during the run, "
        f"{len(edits) - r['edits_before_flush']} at the final flush); max in any {WINDOW:.0f} s window: "
        f"{sliding_max(sorted(e['at'] for e in edits), WINDOW)}")
    calls = r["calls"]
    out("Bot API calls: " + ", ".join(f"{m} {n:,}" for m, n in sorted(calls.items(), key=lambda kv: -kv[1])))
    out(f"API errors returned by the emulator: {len(r['errors'])}"
        + (f" (e.g. {r['errors'][:3]!r})" if r["errors"] else ""))
    out(f"warnings logged: {len(r['warnings'])}"
        + (f" (e.g. {r['warnings'][0].getMessage()[:160]!r})" if r["warnings"] else ""))
    out(f"verified: {r['ballots']} ballots in the database for {r['voters']} distinct voters, each the voter's "
        "last choice; final card (after flush_edits) shows "
        f"'Tally: {r['tally_text']}'" if not r["problems"] else "CHECKS FAILED:")
    for problem in r["problems"]:
        out(f"  - {problem}")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    out(f"peak RSS: {rss:,.0f} MB (this Python process: bot, core and emulator)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--updates", type=int, default=1000, help="updates in all, the /propose included")
    parser.add_argument("--users", type=int, default=300)
    parser.add_argument("--reads", type=int, help="read commands in the mix (default 5%%; 8 with --quick)")
    parser.add_argument("--burst", type=float, default=10.0, help="seconds over which the mix is injected")
    parser.add_argument("--quick", action="store_true", help="only 8 read commands, so it ends in under a minute")
    parser.add_argument("--enforce-limits", action="store_true",
                        help="the emulator answers 429 past 30 messages/s or 20 per group per 60 s, as Telegram does")
    parser.add_argument("--verbose", action="store_true", help="log python-telegram-bot and adapter INFO lines")
    args = parser.parse_args(argv)
    cfg = make_config(args)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    print(f"Commons Telegram adapter benchmark — {time.strftime('%Y-%m-%d %H:%M:%S')}", flush=True)
    result, ok = asyncio.run(run(cfg, args.enforce_limits))
    report(result)
    return 0 if ok else 2


if __name__ == "__main__":
    sys.exit(main())
