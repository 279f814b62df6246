"""log, log export: the group's hash-chained record, to read and to keep."""

from __future__ import annotations

from bot.actions import SendFile
from bot.commands.args import Number
from bot.commands.base import command
from bot.commands.registry import Positional
from bot.context import Context
from bot.governance import record
from bot.render.record import entry_line
from bot.render.text import TextBuilder, b, code, i, plain

MAX_SHOWN = 30


@command("log", summary="the group's record: its checkpoint and the latest entries", example="log 20",
         params=(Positional("count", Number(), optional=True),),
         details="Every governance event is in the log, each entry chained to the one before by its hash. "
                 "Keep a checkpoint (size:hash); `log export` gives the whole chain to check offline.")
def show_log(ctx: Context, count: int | None) -> None:
    head = record.head(ctx.session, ctx.group_id)
    if not head.seq:
        ctx.reply(plain("The log is empty: nothing has been decided here yet."))
        return
    entries = record.latest(ctx.session, ctx.group_id, min(count or 10, MAX_SHOWN))
    text = TextBuilder().line(b(f"📒 Group log: {head.seq:,} entries"), " · checkpoint ", code(head.short()))
    for entry in entries:
        text.line(entry_line(entry))
    text.line(i(f"{ctx.prefix}log export: the whole chain as a file; commons-bot verify checks it."))
    ctx.reply(text.build())


@command("log export", summary="the whole group log as a JSON Lines file, to check with commons-bot verify",
         example="log export")
def export_log(ctx: Context) -> None:
    head = record.head(ctx.session, ctx.group_id)
    data = "".join(line + "\n" for line in record.export_lines(ctx.session, ctx.group_id)).encode()
    ctx.actions.append(SendFile(
        chat=ctx.chat, filename=f"commons-log-{ctx.group_id}-{head.seq}.jsonl", data=data,
        mime_type="application/jsonl",
        caption=plain(f"{head.seq:,} entries, checkpoint {head.short()}. Check it offline: "
                      f"commons-bot verify commons-log-{ctx.group_id}-{head.seq}.jsonl --head {head.short()}")))
