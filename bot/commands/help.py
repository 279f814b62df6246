"""help: generated from the registry, so it cannot drift from the parser."""

from __future__ import annotations

from bot.commands.args import Word
from bot.commands.base import command
from bot.commands.registry import Positional
from bot.context import Context
from bot.render.text import TextBuilder, b, code, escape, i


@command("help", summary="list the commands, or explain one", example="help vote",
         params=(Positional("command", Word("command"), optional=True, rest=True),), aliases=("start",),
         where="any")
def show_help(ctx: Context, command: str | None) -> None:
    if command:
        ctx.reply(_one(ctx, command.strip().lstrip("!/").lower()))
        return
    text = TextBuilder().line(b("Commons"), " — proposals and votes for this group. Commands:")
    for declared in ctx.registry.visible():
        text.line(f"{code(ctx.prefix + declared.name)} — {escape(declared.summary)}")
    text.line(i(f"{ctx.prefix}help <command> shows how to use one."))
    ctx.reply(text.build())


def _one(ctx: Context, name: str):
    declared = ctx.registry.find(name) or ctx.registry.find(" ".join(name.split()[:2]))
    family = [c for c in ctx.registry.visible() if c.name.startswith(name + " ")]
    if declared is None and family:
        text = TextBuilder()
        for member in family:
            text.line(f"{code(member.usage(ctx.prefix))} — {escape(member.summary)}")
        return text.build()
    if declared is None:
        hint = escape(ctx.registry.suggest(name, ctx.prefix))
        return TextBuilder().line(f"There is no command “{escape(name[:40])}”.{hint}").build()
    text = TextBuilder().line(code(declared.usage(ctx.prefix)))
    text.line(escape(declared.summary[:1].upper() + declared.summary[1:]) + ".")
    if declared.details:
        text.line(escape(declared.details))
    if declared.aliases:
        text.line("Also: " + ", ".join(code(ctx.prefix + alias) for alias in declared.aliases))
    text.line("Example: ", code(ctx.prefix + declared.example))
    return text.build()
