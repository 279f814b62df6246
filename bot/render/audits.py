"""How sovereignty audits read: the prompt, the halfway reminder, and the
report — a story a group can read aloud, ending with one unmet need in bold —
plus the figures as CSV. Reports are rendered from the figures stored at the
close, so showing one again later tells the same story."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from bot import i18n
from bot.actions import Chart
from bot.charts import describe
from bot.context import account_of
from bot.governance import audits, draws
from bot.i18n import N_, _, ngettext
from bot.render.common import relative, when
from bot.render.needs import from_group, short, waited
from bot.render.roles import how_to_add, numbered, task_draw_tail
from bot.render.text import RichText, TextBuilder, b, code, escape, i, mention
from storage.models import Audit, AuditEntry, Group, Member

MAX_NOTES = 3
MAX_CHART_AUDITS = 20
# `audit_draw federation`, but the auditor comes from the group itself: why (audits.own_auditor_because).
OWN_BECAUSE = {
    audits.NO_FEDERATION: N_("(audit_draw is federation, but this group is in no federation with other groups, "
                             "so the auditor is drawn among its own members.)"),
    audits.NOBODY_OUTSIDE: N_("(audit_draw is federation, but no member of the federation's other groups is free to "
                              "audit, so the auditor is drawn among this group's own members.)"),
}


def day(moment: datetime, zone: ZoneInfo) -> str:
    return i18n.day(moment.astimezone(zone))


def prompt(audit: Audit, prefix: str, zone: ZoneInfo, now: datetime, draw: audits.AuditorDraw) -> RichText:
    """The audit opens; with a lottery, its auditor is drawn at the end of the lottery's window (among the
    federation's other groups, or, though the group asked for that, among its own members: say why)."""
    lottery, others_open, outside, own_because = draw
    areas = audits.areas_of(audit)
    text = TextBuilder()
    text.line(_("🧭 <b>Sovereignty audit #{number}</b> is open until {when}.")
              .format(number=audit.number, when=when(audit.closes_at, zone)))
    text.line(_("Since {day}, what did we provide ourselves — without asking the state or the market? Report a "
                "figure per area:").format(day=day(audit.period_start, zone)))
    note = _("community kitchen every Friday")  # the example's note: any words a member might write
    example = f'{prefix}audit {areas[0]} 12 "{note}"'
    text.line(_("{usage} — e.g. {example}").format(usage=code(f"{prefix}audit <area> <count> [note]"),
                                                    example=code(example)))
    text.line(_("Areas: {areas}").format(areas=" · ".join(b(area) for area in areas)))
    if lottery is not None and outside:
        candidates = draws.candidates_of(lottery)
        text.line(ngettext("🎲 Outside eyes: the auditor — who checks the figures and reads the report to the group — "
                           "is drawn {when} ({relative}) by <b>lottery #{number}</b> among the {count} member of the "
                           "federation's other groups who holds no role there: {candidates} (in order of their "
                           "platform id).",
                           "🎲 Outside eyes: the auditor — who checks the figures and reads the report to the group — "
                           "is drawn {when} ({relative}) by <b>lottery #{number}</b> among the {count} members of the "
                           "federation's other groups who hold no role there: {candidates} (in order of their "
                           "platform id).", len(candidates))
                  .format(when=when(lottery.draws_at, zone), relative=relative(lottery.draws_at, now),
                          number=lottery.number, count=len(candidates), candidates=numbered(candidates)))
    elif lottery is not None:
        candidates = draws.candidates_of(lottery)
        text.line(ngettext("🎲 The auditor — who checks the figures and reads the report to the group — is drawn "
                           "{when} ({relative}) by <b>lottery #{number}</b> among the {count} member who hold no "
                           "role: {candidates} (in order of their platform id).",
                           "🎲 The auditor — who checks the figures and reads the report to the group — is drawn "
                           "{when} ({relative}) by <b>lottery #{number}</b> among the {count} members who hold no "
                           "role: {candidates} (in order of their platform id).", len(candidates))
                  .format(when=when(lottery.draws_at, zone), relative=relative(lottery.draws_at, now),
                          number=lottery.number, count=len(candidates), candidates=numbered(candidates)))
        if own_because is not None:
            text.line(i(_(OWN_BECAUSE[own_because])))
        text.line(_("Commitment: {commitment} (SHA-256 of the secret I reveal at the draw). Until then anyone may "
                    "add randomness: {how}").format(commitment=code(lottery.commitment),
                                                    how=how_to_add(lottery, prefix, others_open)))
    text.line(i(_("I remind you halfway; the report comes at the close, with a chart. Start one early: {command}")
                .format(command=f"{prefix}audit")))
    return text.build()


def auditor_drawn(audit: Audit | None, drawn: draws.Drawn, prefix: str, outside_group: Group | None = None
                  ) -> RichText:
    """The auditor lottery drawn: who audits (`outside_group`: the other group of the federation they are
    from), and everything needed to recompute it."""
    text = TextBuilder()
    if drawn.auditor is not None:
        who = mention(account_of(drawn.auditor), auditor_name(drawn.auditor, outside_group))
        message = (_("🎲 <b>Lottery #{lottery}</b>: the auditor of audit #{audit} is {name}. They check the figures "
                     "and read the report to the group.") if audit else
                   _("🎲 <b>Lottery #{lottery}</b>: the auditor of the audit is {name}. They check the figures and "
                     "read the report to the group."))
    else:
        who = ""
        message = (_("🎲 <b>Lottery #{lottery}</b> for the auditor of audit #{audit}: drawn, but nobody takes the "
                     "task.") if audit else
                   _("🎲 <b>Lottery #{lottery}</b> for the auditor of the audit: drawn, but nobody takes the task."))
    text.line(message.format(lottery=drawn.lottery.number, audit=audit.number if audit else "", name=who))
    for line in task_draw_tail(drawn, "audit", f"{prefix}audit"):
        text.line(line)
    return text.build()


def auditor_name(auditor: Member, outside_group: Group | None) -> str:
    """`bob`, or `bob of North` for an auditor from another group of the federation (raw text)."""
    return auditor.display_name if outside_group is None else from_group(auditor.display_name, outside_group)


def told_auditor(audit: Audit, group_title: str, zone: ZoneInfo) -> RichText:
    """What an auditor drawn from another group of the federation is told privately."""
    return (TextBuilder()
            .line(_("🎲 You were drawn by lot as the auditor of sovereignty audit #{number} of {group}, a group of "
                    "your federation: outside eyes on what they provide themselves.")
                  .format(number=audit.number, group=b(group_title)))
            .line(_("Its members report their figures until {when}. Then I send you the report here, so you can "
                    "check the figures and read it with them.").format(when=when(audit.closes_at, zone)))
            .build())


def report_for_auditor(report_text: RichText, group_title: str) -> RichText:
    """The closing report, sent privately to an auditor from another group of the federation."""
    return (TextBuilder().line(_("📖 The report of the audit you were drawn for, in {group}:")
                               .format(group=b(group_title)))
            .line(report_text).build())


def reminder(audit: Audit, rows: list[tuple[AuditEntry, str]], prefix: str, zone: ZoneInfo) -> RichText:
    totals = audits.reported_totals(audit, rows)
    reporters = len({entry.member_id for entry, _name in rows})
    text = TextBuilder().line(_("⏳ Halfway through <b>audit #{number}</b>: it closes {when}.")
                              .format(number=audit.number, when=when(audit.closes_at, zone)))
    reported = [f"{escape(area)} {n}" for area, n in totals.items() if any(e.area == area for e, _name in rows)]
    missing = [area for area in totals if not any(e.area == area for e, _name in rows)]
    if reported:
        text.line(ngettext("So far {count} member reported: {figures}", "So far {count} members reported: {figures}",
                           reporters).format(count=reporters, figures=" · ".join(reported)))
    else:
        text.line(_("Nobody has reported a figure yet."))
    if missing:
        text.line(_("Still nothing for: {areas}").format(areas=", ".join(b(area) for area in missing)))
    text.line(code(f"{prefix}audit <area> <count> [note]"))
    return text.build()


def report(audit: Audit, rows: list[tuple[AuditEntry, str]], zone: ZoneInfo, auditor: Member | None,
           outside_group: Group | None = None) -> RichText:
    figures = audits.figures_of(audit)
    start = datetime.fromisoformat(figures["period_start"])
    text = TextBuilder().line(_("📖 <b>Sovereignty audit #{number}</b> — what we did for ourselves, {start} to {end}")
                              .format(number=audit.number, start=day(start, zone), end=day(audit.closes_at, zone)))
    text.line("")
    text.line(b(_("What members reported")))
    for line in _reported_lines(figures, rows):
        text.line(line)
    text.line("")
    text.line(b(_("What the bot saw")))
    for line in measured_lines(figures):
        text.line(f"• {line}")
    text.line("")
    text.line(b(_("The challenge until the next audit")))
    challenge = figures.get("challenge")
    if challenge:
        posted = datetime.fromisoformat(challenge["posted"])
        text.line(b(_("Need #{number} ({category}): “{text}” — waiting since {day}.").format(
            number=challenge["number"], category=challenge["category"], text=short(challenge["text"], 200),
            day=day(posted, zone))))
        text.line(i(_("Can we meet it before the next audit?")))
    else:
        text.line(i(_("No need is waiting. Which need have we not yet dared to name?")))
    if auditor is not None:
        text.line(_("Auditor: {name}.").format(name=escape(auditor_name(auditor, outside_group))))
    return text.build()


def _reported_lines(figures: dict, rows: list[tuple[AuditEntry, str]]) -> list[str]:
    lines = []
    for area, total in figures.get("reported", {}).items():
        notes = [(entry, name) for entry, name in rows if entry.area == area and entry.note]
        said = "; ".join(f"{escape(name)}: {i(short(entry.note, 100))}" for entry, name in notes[:MAX_NOTES])
        counted = sum(1 for entry, _name in rows if entry.area == area)
        if not counted:
            lines.append(_("• {area}: nobody reported").format(area=escape(area)))
            continue
        lines.append(f"• {escape(area)}: {b(i18n.number(total))}" + (f" — {said}" if said else ""))
    return lines or [_("• no areas tracked")]


def measured_lines(figures: dict) -> list[str]:
    met, quick = figures.get("needs_met", 0), figures.get("met_within_48h", 0)
    lines = []
    if met:
        share = round(100 * quick / met)
        typical = waited(timedelta(hours=figures.get("median_hours_to_met") or 0))
        lines.append(ngettext("🌱 <b>{count} need</b> met, {quick} of them within 48 hours ({share}%); typically "
                              "after {duration}.",
                              "🌱 <b>{count} needs</b> met, {quick} of them within 48 hours ({share}%); typically "
                              "after {duration}.", met).format(count=met, quick=quick, share=share, duration=typical))
    else:
        lines.append(_("🌱 No need was marked met this period."))
    posted = figures.get("needs_posted", 0)
    lines.append(ngettext("🆘 {count} need posted.", "🆘 {count} needs posted.", posted).format(count=posted))
    lines.append(_decisions_line(figures.get("decisions", 0), figures.get("participation")))
    lines.append(_roles_line(figures.get("role_holders", 0), figures.get("lapsed_on_time", 0),
                             figures.get("extended", 0), figures.get("recalls", 0)))
    if "mediations_opened" in figures:  # audits closed before mediation existed have no such figure
        opened = figures["mediations_opened"]
        lines.append(ngettext("🕊 Conflict resolution: <b>{count} mediation</b> asked for, {closed} closed by peer "
                              "mediators.",
                              "🕊 Conflict resolution: <b>{count} mediations</b> asked for, {closed} closed by peer "
                              "mediators.", opened).format(count=opened, closed=figures["mediations_closed"]))
    return lines


def _decisions_line(decisions: int, participation: float | None) -> str:
    if participation is None:
        return ngettext("🗳 <b>{count} decision</b> taken.", "🗳 <b>{count} decisions</b> taken.",
                        decisions).format(count=decisions)
    return ngettext("🗳 <b>{count} decision</b> taken, with on average {share}% of members voting.",
                    "🗳 <b>{count} decisions</b> taken, with on average {share}% of members voting.",
                    decisions).format(count=decisions, share=round(100 * participation))


def _roles_line(holders: int, lapsed: int, extended: int, recalls: int) -> str:
    """Three counts in one sentence: each counted phrase takes its own plural form (ngettext counts one)."""
    return _("🔁 {holders} held a role; {lapsed} lapsed on time, {extended} extended, {recalls}.").format(
        holders=b(ngettext("{count} different member", "{count} different members", holders).format(count=holders)),
        lapsed=ngettext("{count} mandate", "{count} mandates", lapsed).format(count=lapsed),
        extended=extended,
        recalls=ngettext("{count} recall", "{count} recalls", recalls).format(count=recalls))


def csv_file(closed: list[Audit]) -> bytes:
    """Every closed audit's figures, one row per audit, for spreadsheets."""
    areas = list(dict.fromkeys(area for audit in closed for area in audits.figures_of(audit).get("reported", {})))
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["audit", "period_start", "period_end", *(key for key, _label in audits.FIGURES),
                     *(f"reported: {area}" for area in areas), "challenge_need"])
    for audit in closed:
        figures = audits.figures_of(audit)
        challenge = figures.get("challenge") or {}
        writer.writerow([audit.number, figures.get("period_start", ""), figures.get("period_end", ""),
                         *(_cell(figures.get(key)) for key, _label in audits.FIGURES),
                         *(_cell(figures.get("reported", {}).get(area)) for area in areas),
                         f"#{challenge['number']} {challenge['text']}" if challenge else ""])
    return out.getvalue().encode("utf-8")


def _cell(value) -> str:
    return "" if value is None else str(value)


def chart(closed: list[Audit], group_title: str | None) -> Chart:
    """The chart of the latest closed audits (oldest first), drawn on delivery."""
    shown = closed[-MAX_CHART_AUDITS:]
    labelled = [(f"#{a.number} {i18n.month_year(a.closes_at)}", audits.figures_of(a)) for a in shown]
    return describe("audit", audits=labelled, group_title=group_title)
