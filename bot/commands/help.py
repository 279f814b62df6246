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
    for head, members in _families(ctx.registry.visible()).items():
        main = next((member for member in members if member.name == head), None)
        if main is None:  # only compound commands (role add, role edit …): each on its line
            for member in members:
                text.line(f"{code(ctx.prefix + member.name)} — {escape(member.summary)}")
            continue
        subs = [member.name.split(" ", 1)[1] for member in members if member is not main]
        more = f" · also {escape(', '.join(subs))}" if subs else ""
        text.line(f"{code(ctx.prefix + head)} — {escape(main.summary)}{more}")
    text.line(i(f"{ctx.prefix}help <command> shows how to use one (and its family: {ctx.prefix}help agenda)."))
    ctx.reply(text.build())


def _families(commands: list) -> dict[str, list]:
    """Commands grouped by their first word (`agenda`, `agenda add`, `agenda close` …), in order:
    one line each keeps the list short enough for one phone screen and one Telegram message."""
    families: dict[str, list] = {}
    for declared in commands:
        families.setdefault(declared.name.split()[0], []).append(declared)
    return families


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
    for member in family:  # `help agenda`: the rest of the family too
        text.line(f"{code(member.usage(ctx.prefix))} — {escape(member.summary)}")
    return text.build()
