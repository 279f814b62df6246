"""The one registry every command module declares into."""

from bot.commands.registry import Registry

REGISTRY = Registry()
command = REGISTRY.command
