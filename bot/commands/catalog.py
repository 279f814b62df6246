"""Import every command module once, so each declares itself into the registry."""

from bot.commands import audits, ballots, charter, help, ledger, log, needs, proposals, roles, settings  # noqa: F401
from bot.commands.base import REGISTRY

__all__ = ["REGISTRY"]
