"""How sovereignty audits read: the prompt, the halfway reminder, and the
report — a story a group can read aloud, ending with one unmet need in bold —
plus the figures as CSV. Reports are rendered from the figures stored at the
close, so showing one again later tells the same story."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from bot.actions import Chart
from bot.charts import describe
from bot.durations import plural
from bot.events import UserRef
from bot.governance import audits, draws
from bot.render.common import relative, when
from bot.render.needs import short, waited
from bot.render.roles import how_to_add, numbered, task_draw_tail
from bot.render.text import RichText, TextBuilder, b, code, escape, i, mention
from storage.models import Audit, AuditEntry, Lottery, Member

MAX_NOTES = 3
MAX_CHART_AUDITS = 20


def day(moment: datetime, zone: ZoneInfo) -> str:
    local = moment.astimezone(zone)
    return f"{local.day} {local:%b %Y}"


def prompt(audit: Audit, lottery: Lottery | None, prefix: str, zone: ZoneInfo, now: datetime,
           others_open: bool = False) -> RichText:
    """The audit opens; with `lottery`, its auditor is drawn at the end of the lottery's window."""
    areas = audits.areas_of(audit)
    text = TextBuilder()
    text.line(f"🧭 {b(f'Sovereignty audit #{audit.number}')} is open until "
                              f"{when(audit.closes_at, zone)}.")
    text.line(f"Since {day(audit.period_start, zone)}, what did we provide ourselves — without asking the state "
              "or the market? Report a figure per area:")
    text.line(code(f"{prefix}audit <area> <count> [note]") + " — e.g. "
              + code(f'{prefix}audit {areas[0]} 12 "community kitchen every Friday"'))
    text.line("Areas: " + " · ".join(b(area) for area in areas))
    if lottery is not None:
        candidates = draws.candidates_of(lottery)
        text.line(f"🎲 The auditor — who checks the figures and reads the report to the group — is drawn "
                  f"{when(lottery.draws_at, zone)} ({relative(lottery.draws_at, now)}) by "
                  f"{b(f'lottery #{lottery.number}')} among the {plural(len(candidates), 'member')} who hold no role: "
                  f"{numbered(candidates)} (in order of their platform id).")
        text.line(f"Commitment: {code(lottery.commitment)} (SHA-256 of the secret I reveal at the draw). Until then "
                  f"anyone may add randomness: {how_to_add(lottery, prefix, others_open)}")
    text.line(i(f"I remind you halfway; the report comes at the close, with a chart. Start one early: {prefix}audit"))
    return text.build()


def auditor_drawn(audit: Audit | None, drawn: draws.Drawn, platform: str, prefix: str) -> RichText:
    """The auditor lottery drawn: who audits, and everything needed to recompute it."""
    number = f"audit #{audit.number}" if audit else "the audit"
    text = TextBuilder()
    if drawn.auditor is not None:
        who = mention(UserRef(platform=platform, user_id=drawn.auditor.user_id), drawn.auditor.display_name)
        text.line(f"🎲 {b(f'Lottery #{drawn.lottery.number}')}: the auditor of {number} is {who}. They check the "
                  "figures and read the report to the group.")
    else:
        text.line(f"🎲 {b(f'Lottery #{drawn.lottery.number}')} for the auditor of {number}: drawn, but nobody "
                  "takes the task.")
    for line in task_draw_tail(drawn, "audit", f"{prefix}audit"):
        text.line(line)
    return text.build()


def reminder(audit: Audit, rows: list[tuple[AuditEntry, str]], prefix: str, zone: ZoneInfo) -> RichText:
    totals = audits.reported_totals(audit, rows)
    reporters = len({entry.member_id for entry, _ in rows})
    text = TextBuilder().line(f"⏳ Halfway through {b(f'audit #{audit.number}')}: it closes "
                              f"{when(audit.closes_at, zone)}.")
    reported = [f"{escape(area)} {n}" for area, n in totals.items() if any(e.area == area for e, _ in rows)]
    missing = [area for area in totals if not any(e.area == area for e, _ in rows)]
    if reported:
        text.line(f"So far {plural(reporters, 'member')} reported: " + " · ".join(reported))
    else:
        text.line("Nobody has reported a figure yet.")
    if missing:
        text.line("Still nothing for: " + ", ".join(b(area) for area in missing))
    text.line(code(f"{prefix}audit <area> <count> [note]"))
    return text.build()


def report(audit: Audit, rows: list[tuple[AuditEntry, str]], zone: ZoneInfo, auditor: Member | None) -> RichText:
    figures = audits.figures_of(audit)
    start = datetime.fromisoformat(figures["period_start"])
    text = TextBuilder().line(f"📖 {b(f'Sovereignty audit #{audit.number}')} — what we did for ourselves, "
                              f"{day(start, zone)} to {day(audit.closes_at, zone)}")
    text.line("")
    text.line(b("What members reported"))
    for line in _reported_lines(figures, rows):
        text.line(line)
    text.line("")
    text.line(b("What the bot saw"))
    for line in measured_lines(figures):
        text.line(f"• {line}")
    text.line("")
    text.line(b("The challenge until the next audit"))
    challenge = figures.get("challenge")
    if challenge:
        posted = datetime.fromisoformat(challenge["posted"])
        text.line(b(f"Need #{challenge['number']} ({challenge['category']}): “{short(challenge['text'], 200)}” — "
                    f"waiting since {day(posted, zone)}."))
        text.line(i("Can we meet it before the next audit?"))
    else:
        text.line(i("No need is waiting. Which need have we not yet dared to name?"))
    if auditor is not None:
        text.line(f"Auditor: {escape(auditor.display_name)}.")
    return text.build()


def _reported_lines(figures: dict, rows: list[tuple[AuditEntry, str]]) -> list[str]:
    lines = []
    for area, total in figures.get("reported", {}).items():
        notes = [(entry, name) for entry, name in rows if entry.area == area and entry.note]
        said = "; ".join(f"{escape(name)}: {i(short(entry.note, 100))}" for entry, name in notes[:MAX_NOTES])
        counted = sum(1 for entry, _ in rows if entry.area == area)
        if not counted:
            lines.append(f"• {escape(area)}: nobody reported")
            continue
        lines.append(f"• {escape(area)}: {b(f'{total:,}')}" + (f" — {said}" if said else ""))
    return lines or ["• no areas tracked"]


def measured_lines(figures: dict) -> list[str]:
    met, quick = figures.get("needs_met", 0), figures.get("met_within_48h", 0)
    lines = []
    if met:
        share = round(100 * quick / met)
        typical = waited(timedelta(hours=figures.get("median_hours_to_met") or 0))
        lines.append(f"🌱 {b(plural(met, 'need'))} met, {quick} of them within 48 hours ({share}%); "
                     f"typically after {typical}.")
    else:
        lines.append("🌱 No need was marked met this period.")
    lines.append(f"🆘 {plural(figures.get('needs_posted', 0), 'need')} posted.")
    decisions, participation = figures.get("decisions", 0), figures.get("participation")
    turnout = f", with on average {round(100 * participation)}% of members voting" if participation is not None else ""
    lines.append(f"🗳 {b(plural(decisions, 'decision'))} taken{turnout}.")
    holders = figures.get("role_holders", 0)
    lines.append(f"🔁 {b(plural(holders, 'different member'))} held a role; "
                 f"{plural(figures.get('lapsed_on_time', 0), 'mandate')} lapsed on time, "
                 f"{figures.get('extended', 0)} extended, {plural(figures.get('recalls', 0), 'recall')}.")
    if "mediations_opened" in figures:  # audits closed before mediation existed have no such figure
        lines.append(f"🕊 Conflict resolution: {b(plural(figures['mediations_opened'], 'mediation'))} asked for, "
                     f"{figures['mediations_closed']} closed by peer mediators.")
    return lines


def csv_file(closed: list[Audit]) -> bytes:
    """Every closed audit's figures, one row per audit, for spreadsheets."""
    areas = list(dict.fromkeys(area for audit in closed for area in audits.figures_of(audit).get("reported", {})))
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["audit", "period_start", "period_end", *(key for key, _ in audits.FIGURES),
                     *(f"reported: {area}" for area in areas), "challenge_need"])
    for audit in closed:
        figures = audits.figures_of(audit)
        challenge = figures.get("challenge") or {}
        writer.writerow([audit.number, figures.get("period_start", ""), figures.get("period_end", ""),
                         *(_cell(figures.get(key)) for key, _ in audits.FIGURES),
                         *(_cell(figures.get("reported", {}).get(area)) for area in areas),
                         f"#{challenge['number']} {challenge['text']}" if challenge else ""])
    return out.getvalue().encode("utf-8")


def _cell(value) -> str:
    return "" if value is None else str(value)


def chart(closed: list[Audit], group_title: str | None) -> Chart:
    """The chart of the latest closed audits (oldest first), drawn on delivery."""
    shown = closed[-MAX_CHART_AUDITS:]
    return describe("audit", audits=[(f"#{a.number} {a.closes_at:%b %y}", audits.figures_of(a)) for a in shown],
                    group_title=group_title)
