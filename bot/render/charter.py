"""How the charter, its history and renewal reviews read in the chat."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from bot.actions import Choice
from bot.governance import charter
from bot.governance.renewals import Settled
from bot.i18n import _, ngettext
from bot.render.common import relative, when
from bot.render.proposals import OPTION_SYMBOLS, quorum_label
from bot.render.text import RichText, TextBuilder, b, code, escape, i
from storage.models import CharterClause, CharterVersion, Proposal, RenewalItem

MAX_TAPPABLE_ITEMS = 20  # two buttons an item; beyond this members type `renew keep 21`


def charter_text(clauses: list[CharterClause], version: int, prefix: str) -> RichText:
    if not clauses:
        return (TextBuilder().line(b(_("This group has no charter yet.")))
                .line(_("A charter is a short set of rules the group writes and amends itself. {template} shows a "
                        "starting point; {adopt} proposes it, and {add} proposes a clause of your own.").format(
                    template=code(prefix + "charter template"), adopt=code(prefix + "charter adopt"),
                    add=code(prefix + "charter add <text>"))).build())
    text = TextBuilder().line(b(_("Our charter (version {version})").format(version=version)))
    for clause in clauses:
        protected = " 🔐" if clause.setting_key else ""
        text.line(f"{clause.number}.{protected} {escape(clause.text)}")
    text.line(i(_("Change it with {add}, {amend} or {remove}: each is a proposal. {history} shows every version.")
                .format(add=f"{prefix}charter add <text>", amend=f"{prefix}charter amend <#> <text>",
                        remove=f"{prefix}charter remove <#>", history=f"{prefix}charter history")))
    return text.build()


def template_text(prefix: str) -> RichText:
    text = TextBuilder().line(_("<b>A starting charter</b> — plain words your group can adopt as they are, or change:"))
    for number, clause in enumerate(charter.TEMPLATE, 1):  # the clauses as the group would adopt them (not translated)
        text.line(f"{number}. {escape(clause)}")
    text.line(i(_("Adopting it is a proposal like any other: {command}. After that, amend it clause by clause.")
                .format(command=f"{prefix}charter adopt")))
    return text.build()


def history_text(rows: list[tuple[CharterVersion, Proposal | None]], zone: ZoneInfo) -> RichText:
    if not rows:
        return TextBuilder().line(_("The charter has no versions yet.")).build()
    text = TextBuilder().line(b(_("Charter history")))
    for version, proposal in rows:
        changed = f"{version.changed_at.astimezone(zone):%Y-%m-%d}"
        summary = escape(version.summary)  # stored with the version, in the words of the log
        if proposal is not None:
            text.line(_("v{version} {date}: {summary} — decision #{number}").format(
                version=version.version, date=changed, summary=summary, number=proposal.number))
        else:
            text.line(f"v{version.version} {changed}: {summary}")
    return text.build()


def change_lines(change: charter.Change | None, prefix: str) -> list[str]:
    """What the group is told when a charter proposal closes (escaped HTML lines)."""
    if change is None:
        return []
    lines = [_("📜 The charter is now at version {version}.").format(version=change.version)]
    for clause in change.clauses:
        lines.append(f"{clause.number}. {escape(clause.text)}")
    for clause in change.removed:
        lines.append(_("Removed: clause {number} ({text})").format(number=clause.number, text=escape(clause.text)))
    lines.append(i(_("{command} shows it whole.").format(command=f"{prefix}charter")))
    return lines


# renewal reviews -----------------------------------------------------------------------------------

def _tally(keep: int, drop: int) -> str:
    return _("{keep} keep · {drop} drop").format(keep=keep, drop=drop)


def renewal_card(proposal: Proposal, items: list[RenewalItem], ballots: list[dict[int, bool]], now: datetime,
                 zone: ZoneInfo, prefix: str) -> RichText:
    """The review's message: every item with its keeps and drops so far; edited as answers arrive."""
    text = TextBuilder().line("🌱 ", b(f"#{proposal.number} {proposal.title}"))
    text.line(_("Structures that are not renewed end. Keep what still serves us; let the rest go."))
    for item in items:
        keep = sum(1 for marks in ballots if marks.get(item.position) is True)
        drop = sum(1 for marks in ballots if marks.get(item.position) is False)
        if item.kept is None:
            line = "{position}. {item} — {tally}"
        else:
            line = _("{position}. {item} — {tally} — kept") if item.kept else _("{position}. {item} — {tally} — ends")
        text.line(line.format(position=item.position, item=escape(item.label), tally=_tally(keep, drop)))
    text.line(_("Rule for each item: {rule} · quorum {quorum} · {count} answered").format(
        rule=escape(proposal.rule), quorum=quorum_label(proposal.quorum), count=len(ballots)))
    if proposal.status == "open":
        text.line(_("Closes {when} ({relative})").format(when=when(proposal.closes_at, zone),
                                                         relative=relative(proposal.closes_at, now)))
        if len(items) == 1:
            how = _("Answer with {keep} or {drop}. What is not kept by the rule ends: roles are retired, clauses "
                    "removed.")
        else:
            how = _("Answer with one message, like {example} (or {all}). What is not kept by the rule ends: roles are "
                    "retired, clauses removed.")
        text.line(how.format(keep=code(prefix + "renew keep 1"), drop=code(prefix + "renew drop 1"),
                             example=code(prefix + "renew keep 1 3 drop 2"), all=code(prefix + "renew keep all")))
    else:
        text.line(_("Closed {when}").format(when=when(proposal.closed_at, zone)))
    return text.build()


def renewal_choices(proposal: Proposal, items: list[RenewalItem]) -> tuple[Choice, ...]:
    """Keep and drop for each item (Matrix: a number reaction keeps it; drop is typed)."""
    choices: list[Choice] = []
    for item in items[:MAX_TAPPABLE_ITEMS]:
        n = item.position
        symbol = OPTION_SYMBOLS[n - 1] if n <= len(OPTION_SYMBOLS) else None
        choices.append(Choice(label=_("✓ keep {number}").format(number=n),
                              payload=f"renew keep {n} review=#{proposal.number}", symbol=symbol))
        choices.append(Choice(label=_("✗ drop {number}").format(number=n),
                              payload=f"renew drop {n} review=#{proposal.number}"))
    return tuple(choices)


def answer_ack(name: str, proposal: Proposal, items: list[RenewalItem], marks: dict[int, bool]) -> RichText:
    kept = [str(n) for n, keep in sorted(marks.items()) if keep]
    dropped = [str(n) for n, keep in sorted(marks.items()) if not keep]
    # The answer as typed: keep and drop are command words, never translated.
    parts = ([f"keep {', '.join(kept)}"] if kept else []) + ([f"drop {', '.join(dropped)}"] if dropped else [])
    missing = len(items) - len(marks)
    if missing:
        ack = ngettext("🌱 {name} on #{number}: {answer}; {missing} item not answered yet.",
                       "🌱 {name} on #{number}: {answer}; {missing} items not answered yet.", missing)
    else:
        ack = _("🌱 {name} on #{number}: {answer}.")
    return TextBuilder().line(ack.format(name=escape(name), number=proposal.number, answer=b("; ".join(parts)),
                                         missing=missing)).build()


def settled_lines(settled: Settled, prefix: str) -> list[str]:
    """The consequences of a closed renewal review (escaped HTML lines)."""
    lines = []
    for item, outcome in settled.items:
        line = _("✅ kept: {item} ({tally})") if outcome.kept else _("🌅 ends: {item} ({tally})")
        lines.append(line.format(item=escape(item.label), tally=_tally(outcome.keep, outcome.drop)))
    for role, holders in settled.retired:
        retired = _("🌅 The role {role} is retired.").format(role=b(role.name))
        if holders:
            retired += " " + _("Thank you, {names}, for holding it.").format(names=escape(", ".join(holders)))
        lines.append(retired)
    if settled.charter_version is not None:
        lines.append(_("📜 The charter is now at version {version}; {command} shows it.")
                     .format(version=settled.charter_version, command=f"{prefix}charter"))
    if not any(outcome.kept for _item, outcome in settled.items):
        lines.append(i(_("Nothing was kept. The group can always start again: define a role, or propose a clause.")))
    return lines
