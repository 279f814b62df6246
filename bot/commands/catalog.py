"""Import every command module once, so each declares itself into the registry."""

from bot.commands import (  # noqa: F401
    assemblies,
    audits,
    ballots,
    charter,
    federation,
    help,
    language,
    ledger,
    log,
    mediation,
    needs,
    pages,
    platforms,
    proposals,
    roles,
    settings,
)
from bot.commands.base import REGISTRY

__all__ = ["REGISTRY"]
