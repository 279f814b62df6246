"""`commons-bot`: run, console, db upgrade."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="commons-bot", description="Governance bot for group chats.")
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="run every configured chat platform")
    run.add_argument("--config", type=Path, required=True, help="TOML configuration file")
    run.add_argument("--log-level", default="INFO")

    console = commands.add_parser("console", help="a local group chat in the terminal (no account needed)")
    console.add_argument("--db", type=Path, default=Path("commons-console.db"), help="SQLite file")
    console.add_argument("--script", type=Path, help="replay a transcript of lines non-interactively")
    console.add_argument("--as", dest="member", default="alice", help="member to speak as first")

    db = commands.add_parser("db", help="database maintenance")
    db.add_argument("action", choices=["upgrade"])
    db.add_argument("--config", type=Path, help="TOML configuration file (for the database URL)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from bot.app import console, serve  # imported late so --help is instant
    from bot.config import ConfigError, load_config
    from storage.db import Database

    if args.command == "console":
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
        return asyncio.run(console(args.db, args.script, args.member, print))
    try:
        config = load_config(args.config)
    except ConfigError as error:  # a message saying what to change, not a traceback
        print(f"Configuration problem: {error}", file=sys.stderr)
        return 2
    if args.command == "db":
        Database(config.database.url).upgrade()
        print("database is up to date")
        return 0
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # httpx logs every request's URL at INFO, and a Telegram URL holds the bot's token.
    logging.getLogger("httpx").setLevel(max(logging.WARNING, logging.getLogger().level))
    return asyncio.run(serve(config))


if __name__ == "__main__":
    sys.exit(main())
