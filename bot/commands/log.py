"""log, log export: the group's hash-chained record, to read and to keep."""

from __future__ import annotations

from bot import i18n
from bot.actions import SendFile
from bot.commands.args import Number
from bot.commands.base import command
from bot.commands.registry import Positional
from bot.context import Context
from bot.governance import record
from bot.i18n import N_, _
from bot.render.record import entry_line
from bot.render.text import TextBuilder, escape, i, plain

MAX_SHOWN = 30


@command("log", summary=N_("the group's record: its checkpoint and the latest entries"), example=N_("log 20"),
         params=(Positional("count", Number(), optional=True),),
         details=N_("Every governance event is in the log, each entry chained to the one before by its hash. "
                    "Keep a checkpoint (size:hash); `log export` gives the whole chain to check offline."))
def show_log(ctx: Context, count: int | None) -> None:
    head = record.head(ctx.session, ctx.group_id)
    if not head.seq:
        ctx.reply(plain(_("The log is empty: nothing has been decided here yet.")))
        return
    entries = record.latest(ctx.session, ctx.group_id, min(count or 10, MAX_SHOWN))
    text = TextBuilder().line(_("<b>📒 Group log: {count} entries</b> · checkpoint <code>{checkpoint}</code>").format(
        count=escape(i18n.number(head.seq)), checkpoint=escape(head.short())))
    for entry in entries:
        text.line(entry_line(entry))
    text.line(i(_("{command}: the whole chain as a file; commons-bot verify checks it.").format(
        command=f"{ctx.prefix}log export")))
    ctx.reply(text.build())


@command("log export", summary=N_("the whole group log as a JSON Lines file, to check with commons-bot verify"),
         example=N_("log export"))
def export_log(ctx: Context) -> None:
    head = record.head(ctx.session, ctx.group_id)
    data = "".join(line + "\n" for line in record.export_lines(ctx.session, ctx.group_id)).encode()
    ctx.actions.append(SendFile(
        chat=ctx.chat, filename=f"commons-log-{ctx.group_id}-{head.seq}.jsonl", data=data,
        mime_type="application/jsonl",
        caption=plain(_("{count} entries, checkpoint {checkpoint}. Check it offline: {command}").format(
            count=i18n.number(head.seq), checkpoint=head.short(),
            command=f"commons-bot verify commons-log-{ctx.group_id}-{head.seq}.jsonl --head {head.short()}"))))
