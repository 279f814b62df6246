"""The decision log as files: CSV for spreadsheets, Markdown to read or publish.

Everything members typed (titles, poll options, the group's name) is made inert: in
CSV a cell that a spreadsheet would run as a formula (starting with = + - @, or a tab
or carriage return) gets a leading apostrophe; in Markdown markup characters are
backslash-escaped (and a leading #), HTML becomes entities and line breaks become
spaces, so a title can neither break out of its table cell nor start a heading, a link
or a tag.
"""

from __future__ import annotations

import csv
import html
import io
import re
from datetime import datetime
from zoneinfo import ZoneInfo

from bot.governance import voting
from bot.i18n import N_, _, ngettext
from bot.render.common import csv_cell
from bot.render.proposals import and_list, decision_counts, outcome_word
from storage.models import Decision, Proposal

Row = tuple[Decision, Proposal]
COLUMNS = ("number", "title", "outcome", "winners", "counts", "voters", "members", "decided", "review", "lapsed")
# The Markdown table's headings, to read (the CSV's COLUMNS are keys for spreadsheets: never translated).
MD_COLUMNS = (N_("Title"), N_("Outcome"), N_("Counts"), N_("Voted"), N_("Decided"), N_("Review"), N_("Lapsed"))
_MARKUP = re.compile(r"([\\`*_\[\]|~])")  # emphasis, code, links, table cells, strikethrough


def counts_text(decision: Decision) -> str:
    """'3 yes · 1 no · 0 abstain · 0 block' (a ranked poll: first preferences); empty when withdrawn.
    The labels are the choices as members type them, in both files."""
    if decision.outcome == voting.WITHDRAWN:
        return ""
    return " · ".join(f"{n} {label}" for label, n in decision_counts(decision)["counts"].items())


def winners_of(decision: Decision) -> list[str]:
    return list(decision_counts(decision).get("winners") or [])


# CSV ----------------------------------------------------------------------------------------

def _stamp(moment: datetime | None, zone: ZoneInfo) -> str:
    return moment.astimezone(zone).isoformat(timespec="seconds") if moment else ""


def csv_file(rows: list[Row], zone: ZoneInfo) -> bytes:
    """One line per decision, oldest first; times in ISO 8601 in the group's time zone."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for decision, proposal in rows:
        writer.writerow([csv_cell(cell) for cell in (
            proposal.number, proposal.title, decision.outcome, "; ".join(winners_of(decision)),
            counts_text(decision), decision.voters, decision.members, _stamp(decision.decided_at, zone),
            _stamp(decision.review_at, zone), _stamp(decision.lapsed_at, zone))])
    return out.getvalue().encode("utf-8")


# Markdown -----------------------------------------------------------------------------------

def md(text: str) -> str:
    """User text made inert inside a Markdown table cell or heading."""
    flat = " ".join(text.split())  # every line break (\n, \r, \u2028 …) and run of blanks: one space
    escaped = html.escape(_MARKUP.sub(r"\\\1", flat), quote=False)  # then no tag, entity or autolink
    return "\\" + escaped if escaped.startswith("#") else escaped  # a heading marker only counts first


def _day(moment: datetime | None, zone: ZoneInfo) -> str:
    return f"{moment.astimezone(zone):%Y-%m-%d %H:%M}" if moment else ""


def _outcome(decision: Decision) -> str:
    winners = winners_of(decision)
    if decision.outcome == voting.CHOSEN and winners:
        return _("chose {winners}").format(winners=and_list([f"**{md(w)}**" for w in winners]))
    if decision.outcome == voting.TIE and winners:
        return _("tie between {winners}").format(winners=and_list([md(w) for w in winners]))
    return md(outcome_word(decision.outcome))


def markdown_file(rows: list[Row], zone: ZoneInfo, group_title: str | None, now: datetime) -> bytes:
    heading = _("Decision log: {group}").format(group=md(group_title)) if group_title else _("Decision log")
    summary = ngettext("{count} decision, exported {day} (times in {zone}).",
                       "{count} decisions, exported {day} (times in {zone}).", len(rows))
    lines = [f"# {heading}", "", summary.format(count=len(rows), day=_day(now, zone), zone=md(str(zone))), ""]
    if not rows:
        lines.append(_("No decisions yet."))
    else:
        lines += ["| # | " + " | ".join(_(column) for column in MD_COLUMNS) + " |",
                  "|---:|---|---|---|---|---|---|---|"]
        for decision, proposal in rows:
            voted = ("" if decision.outcome == voting.WITHDRAWN
                     else _("{voters} of {members}").format(voters=decision.voters, members=decision.members))
            lines.append(" | ".join([
                f"| {proposal.number}", md(proposal.title), _outcome(decision), md(counts_text(decision)), voted,
                _day(decision.decided_at, zone), _day(decision.review_at, zone),
                _day(decision.lapsed_at, zone)]) + " |")
    return ("\n".join(lines) + "\n").encode("utf-8")
