"""help: generated from the registry, so it cannot drift from the parser."""

from __future__ import annotations

from bot.commands.args import Word
from bot.commands.base import command
from bot.commands.registry import Positional
from bot.context import Context
from bot.i18n import N_, _
from bot.render.text import TextBuilder, b, code, escape, i


@command("help", summary=N_("list the commands, or explain one"), example=N_("help vote"),
         params=(Positional("command", Word("command"), optional=True, rest=True),), aliases=("start",),
         where="any")
def show_help(ctx: Context, command: str | None) -> None:
    if command:
        ctx.reply(_one(ctx, command.strip().lstrip("!/").lower()))
        return
    text = TextBuilder().line(_("{name} — proposals and votes for this group. Commands:").format(name=b("Commons")))
    for head, members in _families(ctx.registry.visible()).items():
        main = next((member for member in members if member.name == head), None)
        if main is None:  # only compound commands (role add, role edit …): each on its line
            for member in members:
                text.line(f"{code(ctx.prefix + member.name)} — {escape(_(member.summary))}")
            continue
        subs = [member.name.split(" ", 1)[1] for member in members if member is not main]
        more = " · " + _("also {commands}").format(commands=escape(", ".join(subs))) if subs else ""
        text.line(f"{code(ctx.prefix + head)} — {escape(_(main.summary))}{more}")
    text.line(i(_("{usage} shows how to use one (and its family: {example}).").format(
        usage=f"{ctx.prefix}help <command>", example=f"{ctx.prefix}help agenda")))
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
            text.line(f"{code(member.usage(ctx.prefix))} — {escape(_(member.summary))}")
        return text.build()
    if declared is None:
        hint = escape(ctx.registry.suggest(name, ctx.prefix))
        return TextBuilder().line(_("There is no command “{name}”.").format(name=escape(name[:40])) + hint).build()
    text = TextBuilder().line(code(declared.usage(ctx.prefix)))
    summary = _(declared.summary)
    text.line(escape(summary[:1].upper() + summary[1:]) + ".")
    if declared.details:
        text.line(escape(_(declared.details)))
    if declared.aliases:
        text.line(_("Also: {aliases}").format(aliases=", ".join(code(ctx.prefix + alias)
                                                                 for alias in declared.aliases)))
    text.line(_("Example: {example}").format(example=code(ctx.prefix + _(declared.example))))
    for member in family:  # `help agenda`: the rest of the family too
        text.line(f"{code(member.usage(ctx.prefix))} — {escape(_(member.summary))}")
    return text.build()
