"""How the charter, its history and renewal reviews read in the chat."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from bot.actions import Choice
from bot.governance import charter
from bot.governance.renewals import Settled
from bot.render.common import relative, when
from bot.render.proposals import OPTION_SYMBOLS, quorum_label
from bot.render.text import RichText, TextBuilder, b, code, escape, i
from storage.models import CharterClause, CharterVersion, Proposal, RenewalItem

MAX_TAPPABLE_ITEMS = 20  # two buttons an item; beyond this members type `renew keep 21`


def charter_text(clauses: list[CharterClause], version: int, prefix: str) -> RichText:
    if not clauses:
        return (TextBuilder().line(b("This group has no charter yet."))
                .line(f"A charter is a short set of rules the group writes and amends itself. "
                      f"{code(prefix + 'charter template')} shows a starting point; "
                      f"{code(prefix + 'charter adopt')} proposes it, and {code(prefix + 'charter add <text>')} "
                      "proposes a clause of your own.").build())
    text = TextBuilder().line(b(f"Our charter (version {version})"))
    for clause in clauses:
        protected = " 🔐" if clause.setting_key else ""
        text.line(f"{clause.number}.{protected} {escape(clause.text)}")
    text.line(i(f"Change it with {prefix}charter add <text>, {prefix}charter amend <#> <text> or "
                f"{prefix}charter remove <#>: each is a proposal. {prefix}charter history shows every version."))
    return text.build()


def template_text(prefix: str) -> RichText:
    text = TextBuilder().line(b("A starting charter"), " — plain words your group can adopt as they are, or change:")
    for number, clause in enumerate(charter.TEMPLATE, 1):
        text.line(f"{number}. {escape(clause)}")
    text.line(i(f"Adopting it is a proposal like any other: {prefix}charter adopt. After that, amend it clause "
                "by clause."))
    return text.build()


def history_text(rows: list[tuple[CharterVersion, Proposal | None]], zone: ZoneInfo) -> RichText:
    if not rows:
        return TextBuilder().line("The charter has no versions yet.").build()
    text = TextBuilder().line(b("Charter history"))
    for version, proposal in rows:
        decided = f" — decision #{proposal.number}" if proposal is not None else ""
        text.line(f"v{version.version} {version.changed_at.astimezone(zone):%Y-%m-%d}: "
                  f"{escape(version.summary)}{decided}")
    return text.build()


def change_lines(change: charter.Change | None, prefix: str) -> list[str]:
    """What the group is told when a charter proposal closes (escaped HTML lines)."""
    if change is None:
        return []
    lines = [f"📜 The charter is now at version {change.version}."]
    for clause in change.clauses:
        lines.append(f"{clause.number}. {escape(clause.text)}")
    for clause in change.removed:
        lines.append(f"Removed: clause {clause.number} ({escape(clause.text)})")
    lines.append(i(f"{prefix}charter shows it whole."))
    return lines


# renewal reviews -----------------------------------------------------------------------------------

def renewal_card(proposal: Proposal, items: list[RenewalItem], ballots: list[dict[int, bool]], now: datetime,
                 zone: ZoneInfo, prefix: str) -> RichText:
    """The review's message: every item with its keeps and drops so far; edited as answers arrive."""
    text = TextBuilder().line("🌱 ", b(f"#{proposal.number} {proposal.title}"))
    text.line("Structures that are not renewed end. Keep what still serves us; let the rest go.")
    for item in items:
        keep = sum(1 for marks in ballots if marks.get(item.position) is True)
        drop = sum(1 for marks in ballots if marks.get(item.position) is False)
        verdict = "" if item.kept is None else (" — kept" if item.kept else " — ends")
        text.line(f"{item.position}. {escape(item.label)} — {keep} keep · {drop} drop{verdict}")
    text.line(f"Rule for each item: {escape(proposal.rule)} · quorum {quorum_label(proposal.quorum)} · "
              f"{len(ballots)} answered")
    if proposal.status == "open":
        text.line(f"Closes {when(proposal.closes_at, zone)} ({relative(proposal.closes_at, now)})")
        how = (f"{code(prefix + 'renew keep 1')} or {code(prefix + 'renew drop 1')}" if len(items) == 1 else
               f"one message, like {code(prefix + 'renew keep 1 3 drop 2')} (or {code(prefix + 'renew keep all')})")
        text.line(f"Answer with {how}. What is not kept by the rule ends: roles are retired, clauses removed.")
    else:
        text.line(f"Closed {when(proposal.closed_at, zone)}")
    return text.build()


def renewal_choices(proposal: Proposal, items: list[RenewalItem]) -> tuple[Choice, ...]:
    """Keep and drop for each item (Matrix: a number reaction keeps it; drop is typed)."""
    choices: list[Choice] = []
    for item in items[:MAX_TAPPABLE_ITEMS]:
        n = item.position
        symbol = OPTION_SYMBOLS[n - 1] if n <= len(OPTION_SYMBOLS) else None
        choices.append(Choice(label=f"✓ keep {n}", payload=f"renew keep {n} review=#{proposal.number}",
                              symbol=symbol))
        choices.append(Choice(label=f"✗ drop {n}", payload=f"renew drop {n} review=#{proposal.number}"))
    return tuple(choices)


def answer_ack(name: str, proposal: Proposal, items: list[RenewalItem], marks: dict[int, bool]) -> RichText:
    kept = [str(n) for n, keep in sorted(marks.items()) if keep]
    dropped = [str(n) for n, keep in sorted(marks.items()) if not keep]
    parts = ([f"keep {', '.join(kept)}"] if kept else []) + ([f"drop {', '.join(dropped)}"] if dropped else [])
    missing = len(items) - len(marks)
    rest = f"; {missing} item{'s' if missing != 1 else ''} not answered yet" if missing else ""
    return TextBuilder().line(f"🌱 {escape(name)} on #{proposal.number}: {b('; '.join(parts))}{rest}.").build()


def settled_lines(settled: Settled, prefix: str) -> list[str]:
    """The consequences of a closed renewal review (escaped HTML lines)."""
    lines = []
    for item, outcome in settled.items:
        figures = f"{outcome.keep} keep · {outcome.drop} drop"
        mark = "✅ kept" if outcome.kept else "🌅 ends"
        lines.append(f"{mark}: {escape(item.label)} ({figures})")
    for role, holders in settled.retired:
        thanks = f" Thank you, {escape(', '.join(holders))}, for holding it." if holders else ""
        lines.append(f"🌅 The role {b(role.name)} is retired.{thanks}")
    if settled.charter_version is not None:
        lines.append(f"📜 The charter is now at version {settled.charter_version}; {prefix}charter shows it.")
    if not any(outcome.kept for _, outcome in settled.items):
        lines.append(i("Nothing was kept. The group can always start again: define a role, or propose a clause."))
    return lines

