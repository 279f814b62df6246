"""`commons-bot`: run, console, db upgrade, db backup, verify."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
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
    db.add_argument("action", choices=["upgrade", "backup"])
    db.add_argument("file", type=Path, nargs="?", metavar="FILE", help="backup: where to write the copy")
    db.add_argument("--force", action="store_true", help="backup: replace FILE if it exists")
    db.add_argument("--config", type=Path, help="TOML configuration file (for the database URL)")

    verify = commands.add_parser("verify", help="check an exported group log offline (no configuration needed)")
    verify.add_argument("file", type=Path, metavar="FILE", help="the export, JSON Lines (`log export`); - reads stdin")
    verify.add_argument("--head", type=_checkpoint, metavar="N:HASH",
                        help="a checkpoint you kept, like 1234:3f9a0c1b2d4e: entry N's hash must start with HASH")
    return parser


def _checkpoint(text: str) -> str:
    from bot.verify import parse_checkpoint

    try:
        parse_checkpoint(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return text


def _verify(file: Path, head: str | None) -> int:
    """Exit 0 when the log holds, 1 when it does not, 2 when the file cannot be read."""
    from bot.verify import verify

    try:
        if str(file) == "-":
            report = verify(sys.stdin.buffer, head)
        else:
            with file.open("rb") as lines:
                report = verify(lines, head)
    except OSError as error:
        print(f"Cannot read {file}: {error.strerror or error}", file=sys.stderr)
        return 2
    print(report.summary())
    return 0 if report.ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "db" and (args.action == "backup") != (args.file is not None):
        parser.error("db backup needs a FILE to write (and db upgrade takes none)")
    if args.command == "verify":  # offline, from the file alone: no configuration, no database
        return _verify(args.file, args.head)
    from bot.app import console, serve  # imported late so --help is instant
    from bot.config import ConfigError, load_config
    from bot.logs import setup_logging
    from bot.standby import FENCED_EXIT
    from storage.db import Database

    if args.command == "console":
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
        return asyncio.run(console(args.db, args.script, args.member, print))
    try:
        config = load_config(args.config)
    except ConfigError as error:  # a message saying what to change, not a traceback
        print(f"Configuration problem: {error}", file=sys.stderr)
        return 2
    if args.command == "db" and args.action == "backup":
        from storage.backup import BackupError, backup

        try:
            print(backup(config.database.url, args.file, args.force))
        except BackupError as error:  # one line saying what is wrong, not a traceback
            print(f"Backup failed: {error}", file=sys.stderr)
            return 2
        return 0
    if args.command == "db":
        Database(config.database.url).upgrade()
        print("database is up to date")
        return 0
    setup_logging(args.log_level, config.ops.log_format)
    # httpx logs every request's URL at INFO, and a Telegram URL holds the bot's token.
    logging.getLogger("httpx").setLevel(max(logging.WARNING, logging.getLogger().level))
    status = asyncio.run(serve(config))
    if status == FENCED_EXIT:
        # Fenced: leave now, even if a thread is stuck on the lost connection (its work is redone
        # by the process that took over).
        logging.shutdown()
        os._exit(status)
    return status


if __name__ == "__main__":
    sys.exit(main())
