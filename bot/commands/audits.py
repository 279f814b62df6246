"""Sovereignty audit commands: audit (start one now, or report a figure) and audit report [csv]."""

from __future__ import annotations

from bot.actions import SendFile, SendImage
from bot.commands.args import ArgError, ArgType
from bot.commands.base import command
from bot.commands.registry import Flag, Positional, tokenize
from bot.context import Context
from bot.governance import audits, draws
from bot.governance.proposals import RuleViolation
from bot.render.audits import MAX_CHART_AUDITS, chart, csv_file, prompt, report
from bot.render.common import when
from bot.render.text import TextBuilder, b, plain
from storage.models import Member


class AuditFigure(ArgType):
    """`<area> <count> [note]`: the area may be several words (conflict resolution)."""

    metavar = "area count note"

    def parse(self, raw: str) -> tuple[str, int, str | None]:
        tokens = tokenize(raw)
        for index, token in enumerate(tokens):
            if token.value.isascii() and token.value.isdigit():
                if index == 0:
                    break
                if len(token.value) > 7:
                    raise ArgError(f"{token.value[:12]} is too large a count")
                area = " ".join(t.value for t in tokens[:index])
                note = raw[token.end:].strip().strip('"“”') or None
                if note is not None and len(note) > audits.MAX_NOTE:
                    raise ArgError(f"keep the note under {audits.MAX_NOTE} characters")
                return area, int(token.value), note
        raise ArgError("write the area, then a whole number, like: audit food 12 \"kitchen on Fridays\"")


@command("audit", summary="start a sovereignty audit now, or report what the group provided itself",
         example='audit food 12 "community kitchen every Friday"',
         params=(Positional("figure", AuditFigure(), optional=True, rest=True, label="[<area> <count> [note]]"),),
         details="Without arguments it starts an audit now (if none is open). While one is open, report one "
                 "figure per area; reporting an area again replaces your figure.")
def audit(ctx: Context, figure: tuple[str, int, str | None] | None) -> None:
    if figure is None:
        _start(ctx)
        return
    current = audits.open_audit(ctx.session, ctx.group_id)
    if current is None:
        raise RuleViolation(f"No audit is open right now. {_next_audit(ctx)} Start one now with {ctx.prefix}audit")
    area, count, note = figure
    area = audits.area_named(current, area)
    replaced = audits.report(ctx.session, current, ctx.member_id, area, count, note, ctx.now)
    ctx.ack(plain(f"Recorded for audit #{current.number}: {area} {count:,}"
                  + (" (replaces your earlier figure)." if replaced else ".")))


def _start(ctx: Context) -> None:
    started = audits.start(ctx.session, ctx.group, ctx.settings, ctx.now, ctx.member_id)
    others = len(draws.open_lotteries(ctx.session, ctx.group_id, ctx.now)) > 1
    ctx.post(prompt(started, draws.auditor_lottery(ctx.session, started), ctx.prefix, ctx.settings.timezone, ctx.now,
                    others))


def _next_audit(ctx: Context) -> str:
    due = ctx.group.next_audit_at
    return f"The next one is due {when(due, ctx.settings.timezone)}." if due else ""


@command("audit report", summary="the latest audit report again, with its chart (csv: the figures as a file)",
         example="audit report csv", params=(Flag("csv"),))
def audit_report(ctx: Context, csv: bool) -> None:
    closed = audits.closed_audits(ctx.session, ctx.group_id, limit=10_000 if csv else MAX_CHART_AUDITS)
    if not closed:
        current = audits.open_audit(ctx.session, ctx.group_id)
        when_text = (f"Audit #{current.number} is open until {when(current.closes_at, ctx.settings.timezone)}."
                     if current else _next_audit(ctx))
        raise RuleViolation(f"No audit has closed yet. {when_text}")
    if csv:
        ctx.actions.append(SendFile(chat=ctx.chat, filename="sovereignty-audits.csv", data=csv_file(closed),
                                    mime_type="text/csv", caption=plain(f"Figures of {len(closed)} audit(s).")))
        return
    latest = closed[-1]
    auditor = ctx.session.get(Member, latest.auditor_id) if latest.auditor_id else None
    ctx.reply(report(latest, audits.entries(ctx.session, latest), ctx.settings.timezone, auditor))
    ctx.actions.append(SendImage(chat=ctx.chat, filename=f"audit-{latest.number}.png",
                                 chart=chart(closed, ctx.group.title),
                                 caption=TextBuilder().line(b(f"Audit #{latest.number}"), " and the ones before it")
                                 .build()))
