"""Sovereignty audit commands: audit (start one now, or report a figure) and audit report [csv]."""

from __future__ import annotations

from bot import i18n
from bot.actions import SendFile, SendImage
from bot.commands.args import ArgError, ArgType
from bot.commands.base import command
from bot.commands.registry import Flag, Positional, tokenize
from bot.context import Context
from bot.governance import audits
from bot.governance.proposals import RuleViolation
from bot.i18n import N_, _, ngettext
from bot.render.audits import MAX_CHART_AUDITS, chart, csv_file, prompt, report
from bot.render.common import when
from bot.render.text import TextBuilder, plain
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
                    raise ArgError(_("{count} is too large a count").format(count=token.value[:12]))
                area = " ".join(t.value for t in tokens[:index])
                note = raw[token.end:].strip().strip('"“”') or None
                if note is not None and len(note) > audits.MAX_NOTE:
                    raise ArgError(_("keep the note under {maximum} characters").format(maximum=audits.MAX_NOTE))
                return area, int(token.value), note
        raise ArgError(_("write the area, then a whole number, like: audit food 12 \"kitchen on Fridays\""))


@command("audit", summary=N_("start a sovereignty audit now, or report what the group provided itself"),
         example=N_('audit food 12 "community kitchen every Friday"'),
         params=(Positional("figure", AuditFigure(), optional=True, rest=True, label="[<area> <count> [note]]"),),
         details=N_("Without arguments it starts an audit now (if none is open). While one is open, report one "
                    "figure per area; reporting an area again replaces your figure."))
def audit(ctx: Context, figure: tuple[str, int, str | None] | None) -> None:
    if figure is None:
        _start(ctx)
        return
    current = audits.open_audit(ctx.session, ctx.group_id)
    if current is None:
        raise RuleViolation(_("No audit is open right now. {next} Start one now with {command}")
                            .format(next=_next_audit(ctx), command=f"{ctx.prefix}audit"))
    area, count, note = figure
    area = audits.area_named(current, area)
    replaced = audits.report(ctx.session, current, ctx.member_id, area, count, note, ctx.now)
    recorded = (_("Recorded for audit #{number}: {area} {count} (replaces your earlier figure).") if replaced
                else _("Recorded for audit #{number}: {area} {count}."))
    ctx.ack(plain(recorded.format(number=current.number, area=area, count=i18n.number(count))))


def _start(ctx: Context) -> None:
    started = audits.start(ctx.session, ctx.group, ctx.settings, ctx.now, ctx.member_id)
    ctx.post(prompt(started, ctx.prefix, ctx.settings.timezone, ctx.now,
                    audits.auditor_draw(ctx.session, started, ctx.settings, ctx.now)))


def _next_audit(ctx: Context) -> str:
    due = ctx.group.next_audit_at
    return _("The next one is due {when}.").format(when=when(due, ctx.settings.timezone)) if due else ""


@command("audit report", summary=N_("the latest audit report again, with its chart (csv: the figures as a file)"),
         example=N_("audit report csv"), params=(Flag("csv"),))
def audit_report(ctx: Context, csv: bool) -> None:
    closed = audits.closed_audits(ctx.session, ctx.group_id, limit=10_000 if csv else MAX_CHART_AUDITS)
    if not closed:
        current = audits.open_audit(ctx.session, ctx.group_id)
        when_text = _next_audit(ctx)
        if current:
            when_text = _("Audit #{number} is open until {when}.").format(
                number=current.number, when=when(current.closes_at, ctx.settings.timezone))
        raise RuleViolation(_("No audit has closed yet. {next}").format(next=when_text))
    if csv:
        caption = ngettext("Figures of {count} audit(s).", "Figures of {count} audit(s).", len(closed))
        ctx.actions.append(SendFile(chat=ctx.chat, filename="sovereignty-audits.csv", data=csv_file(closed),
                                    mime_type="text/csv", caption=plain(caption.format(count=len(closed)))))
        return
    latest = closed[-1]
    auditor = ctx.session.get(Member, latest.auditor_id) if latest.auditor_id else None
    ctx.reply(report(latest, audits.entries(ctx.session, latest), ctx.settings.timezone, auditor,
                     audits.outside_group(ctx.session, latest)))
    ctx.actions.append(SendImage(chat=ctx.chat, filename=f"audit-{latest.number}.png",
                                 chart=chart(closed, ctx.group.title),
                                 caption=TextBuilder().line(_("<b>Audit #{number}</b> and the ones before it")
                                                            .format(number=latest.number)).build()))
