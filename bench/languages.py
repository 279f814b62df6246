"""Languages: what the catalogs cost at start-up and per reply.

1. start-up, side by side, each in a cold child process, alternated `--rounds` times: what
   `commons-bot run` does before its adapters connect (imports, `build_core`, `Runtime.start`
   without adapters, `gc.freeze`), with the three catalogs read (`i18n.preload`, as `serve` does)
   (`freeze_start_up_objects` calls `i18n.preload`) and with English only (preload skipped: no
   catalog read, as for a bot whose groups all speak English). Time from the
   child's first line to ready, and its peak RSS (VmHWM).
2. per reply: the same commands answered in an English group and in a Spanish one (`help`, the
   longest reply, and `proposals`), through `Core.handle` on SQLite: p50 and p99.

    python bench/languages.py [--rounds 5] [--replies 300]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

STARTED = time.perf_counter()
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def child(mode: str, url: str) -> None:
    """One cold start-up (run in its own process)."""
    import asyncio

    import bot.app
    from bench.common import vm_hwm_mb
    from bot import i18n
    from bot.clock import SystemClock
    from bot.config import DefaultsConfig
    from bot.runtime import Runtime

    imported = time.perf_counter()

    async def main() -> dict:
        core = bot.app.build_core(url, SystemClock(), DefaultsConfig())
        runtime = Runtime(core, [], __import__("datetime").timedelta(minutes=1))
        runtime.platforms = ("telegram",)
        await runtime.start()
        if mode == "en":  # English only: no catalog is read (a bot whose groups all speak English)
            i18n.preload = lambda: None
        loaded = time.perf_counter()
        i18n.preload()
        catalogs = time.perf_counter() - loaded
        bot.app.freeze_start_up_objects()  # reads the catalogs itself, as `commons-bot run` does
        ready = time.perf_counter()
        await runtime.stop()
        return {"imports": imported - STARTED, "ready": ready - STARTED, "catalogs": catalogs}

    result = asyncio.run(main())
    result["hwm_mb"] = vm_hwm_mb()
    print("RESULT " + json.dumps(result))


def start_ups(rounds: int, url: str) -> dict[str, list[dict]]:
    found: dict[str, list[dict]] = {"all": [], "en": []}
    for _round in range(rounds):
        for mode in ("en", "all"):  # alternated, so a busy moment of the machine hits both
            out = subprocess.run([sys.executable, __file__, "--child", mode, "--url", url],
                                 capture_output=True, text=True, check=True).stdout
            found[mode].append(json.loads(next(line for line in out.splitlines()
                                                if line.startswith("RESULT "))[7:]))
    return found


def replies(count: int, url: str) -> dict[str, dict[str, float]]:
    from bot.app import build_core
    from bot.clock import SystemClock
    from bot.config import DefaultsConfig
    from bot.events import ChatRef, CommandMessage, UserRef

    core = build_core(url, SystemClock(), DefaultsConfig())
    numbers = iter(range(10**9))

    def say(chat: str, text: str) -> None:
        core.handle(CommandMessage(chat=ChatRef(platform="telegram", chat_id=chat),
                                   sender=UserRef(platform="telegram", user_id="1"), sender_name="Ana",
                                   text=text, event_id=f"e{next(numbers)}"))

    say("en", "!propose Buy a freezer")
    say("es", "!set language es")
    say("es", "!propose Comprar un congelador")
    timings: dict[str, dict[str, float]] = {}
    for command in ("!help", "!proposals"):
        for chat in ("en", "es"):
            samples = []
            for _i in range(count):
                t = time.perf_counter()
                say(chat, command)
                samples.append((time.perf_counter() - t) * 1000)
            samples.sort()
            timings[f"{command} {chat}"] = {"p50": statistics.median(samples),
                                           "p99": samples[int(len(samples) * 0.99) - 1]}
    return timings


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--replies", type=int, default=300)
    parser.add_argument("--child")
    parser.add_argument("--url")
    args = parser.parse_args()
    if args.child:
        child(args.child, args.url)
        return 0
    import babel

    from bench.common import machine
    from bot import i18n
    from storage.db import Database

    for line in machine({"Babel": babel.__version__}):
        print(line)
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{folder}/bench.db"
        database = Database(url)
        database.upgrade()
        database.dispose()
        found = start_ups(args.rounds, url)
        print(f"start-up to ready, {args.rounds} cold processes each, alternated (median; min–max):")
        for mode, label in (("en", "English only"), ("all", f"{len(i18n.available())} languages")):
            ready = [r["ready"] for r in found[mode]]
            hwm = [r["hwm_mb"] for r in found[mode]]
            catalogs = [r["catalogs"] * 1000 for r in found[mode]]
            print(f"  {label:13} ready {statistics.median(ready):.2f} s ({min(ready):.2f}–{max(ready):.2f}), "
                  f"catalogs read {statistics.median(catalogs):.0f} ms, peak RSS {statistics.median(hwm):.1f} MB "
                  f"({min(hwm):.1f}–{max(hwm):.1f})")
        ready_ratio = (statistics.median(r["ready"] for r in found["all"])
                       / statistics.median(r["ready"] for r in found["en"]))
        hwm_delta = (statistics.median(r["hwm_mb"] for r in found["all"])
                     - statistics.median(r["hwm_mb"] for r in found["en"]))
        print(f"  all languages / English only: start-up ×{ready_ratio:.2f}, peak RSS {hwm_delta:+.1f} MB")
        timings = replies(args.replies, url)
    print(f"per reply through Core.handle on SQLite, {args.replies} each (ms):")
    for command in ("!help", "!proposals"):
        en, es = timings[f"{command} en"], timings[f"{command} es"]
        print(f"  {command:11} English p50 {en['p50']:.2f} p99 {en['p99']:.2f} · Spanish p50 {es['p50']:.2f} "
              f"p99 {es['p99']:.2f} · ×{es['p50'] / en['p50']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
