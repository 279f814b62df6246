"""How governance objects read in a chat: written once, in the HTML subset.

Every user-supplied string passes through `escape` (via the helpers in
bot.render.text); short enough to read on a phone.
"""

from __future__ import annotations

import json
from datetime import datetime
from zoneinfo import ZoneInfo

from bot.actions import Choice
from bot.governance import voting
from bot.governance.proposals import OPEN, WITHDRAWN, options_of
from bot.render.common import relative, when
from bot.render.text import RichText, TextBuilder, b, escape, i
from storage.models import Ballot, Decision, Member, Proposal

ICONS = {voting.PASSED: "✅", voting.CHOSEN: "✅", voting.REJECTED: "❌", voting.BLOCKED: "✋",
         voting.NO_QUORUM: "⏸", voting.TIE: "⚖️", voting.WITHDRAWN: "↩️"}


def tally_line(counts: dict[str, int]) -> str:
    return " · ".join(f"{n} {escape(label)}" for label, n in counts.items())


def quorum_label(quorum: str) -> str:
    return "none" if quorum == "0" else escape(quorum)


def proposal_card(proposal: Proposal, author: str, counts: dict[str, int], now: datetime, zone: ZoneInfo,
                  prefix: str) -> RichText:
    """The message members vote on; edited in place as ballots arrive."""
    text = TextBuilder().line("📜 ", b(f"#{proposal.number} {proposal.title}"))
    if proposal.details:
        text.line(i(proposal.details))
    options = options_of(proposal)
    if options:
        for number, option in enumerate(options, 1):
            text.line(f"{number}. {escape(option)} — {counts.get(option, 0)}")
        text.line(f"abstain — {counts.get(voting.ABSTAIN, 0)}")
    else:
        text.line("Tally: ", tally_line(counts))
    rule = "choice poll, most votes wins" if options else escape(proposal.rule)
    text.line(f"Rule: {rule} · quorum {quorum_label(proposal.quorum)} · by {escape(author)}")
    if proposal.status == OPEN:
        text.line(f"Closes {when(proposal.closes_at, zone)} ({relative(proposal.closes_at, now)})")
        how = "&lt;number&gt;" if options else "yes|no|abstain|block"
        text.line(f"Vote: <code>{escape(prefix)}vote {proposal.number} {how} [reason]</code>")
    else:
        text.line(f"{'Withdrawn' if proposal.status == WITHDRAWN else 'Closed'} "
                  f"{when(proposal.closed_at, zone)}")
    return text.build()


# One emoji per answer, for platforms where a vote is a reaction (Matrix).
STANCE_SYMBOLS = {voting.YES: "👍", voting.NO: "👎", voting.ABSTAIN: "🤷", voting.BLOCK: "✋"}
OPTION_SYMBOLS = ("1️⃣", "2️⃣", "3️⃣", "4️⃣", "5️⃣", "6️⃣", "7️⃣", "8️⃣", "9️⃣", "🔟")


def vote_choices(proposal: Proposal) -> tuple[Choice, ...]:
    options = options_of(proposal)
    if options:
        buttons = [Choice(label=option[:40], payload=f"vote {proposal.number} {n}",
                          symbol=OPTION_SYMBOLS[n - 1] if n <= len(OPTION_SYMBOLS) else None)
                   for n, option in enumerate(options, 1)]
        return (*buttons, Choice(label="Abstain", payload=f"vote {proposal.number} abstain",
                                 symbol=STANCE_SYMBOLS[voting.ABSTAIN]))
    return tuple(Choice(label=stance.capitalize(), payload=f"vote {proposal.number} {stance}",
                        symbol=STANCE_SYMBOLS[stance])
                 for stance in voting.STANCES)


MAX_REASONS = 20


def voters_list(rows: list[tuple[Ballot, Member]], labels: list[str]) -> list[str]:
    """Who voted what, one line per choice (short on a phone even with 200 ballots),
    then the reasons given, latest first."""
    names: dict[str, list[str]] = {label: [] for label in labels}
    for ballot, member in rows:
        names.setdefault(ballot.choice, []).append(escape(member.display_name))
    lines = [f"{b(choice)} ({len(voters)}): {', '.join(voters)}" for choice, voters in names.items() if voters]
    reasons = [(ballot, member) for ballot, member in reversed(rows) if ballot.reason]
    if reasons:
        lines.append(b("Reasons"))
        for ballot, member in reasons[:MAX_REASONS]:
            lines.append(f"• {escape(member.display_name)} ({escape(ballot.choice)}): {i(ballot.reason)}")
        if len(reasons) > MAX_REASONS:
            lines.append(i(f"and {len(reasons) - MAX_REASONS} more"))
    return lines


def decision_counts(decision: Decision) -> dict:
    return json.loads(decision.counts)


def outcome_headline(proposal: Proposal, decision: Decision) -> str:
    data = decision_counts(decision)
    icon = ICONS.get(decision.outcome, "•")
    winners = data.get("winners") or []
    result = decision.outcome
    if decision.outcome == voting.CHOSEN:
        result = f"chose {b(winners[0])}"
    elif decision.outcome == voting.TIE:
        result = "tie between " + " and ".join(b(w) for w in winners)
    else:
        result = b(result)
    return f"{icon} #{proposal.number} {escape(proposal.title)}: {result}"


def outcome_announcement(proposal: Proposal, decision: Decision, zone: ZoneInfo,
                         consequences: list[str] | None = None) -> RichText:
    data = decision_counts(decision)
    text = TextBuilder().line(outcome_headline(proposal, decision))
    if decision.outcome != voting.WITHDRAWN:
        text.line(f"{tally_line(data['counts'])} ({decision.voters} of {decision.members} members voted)")
    if data.get("explanation"):
        text.line(i(data["explanation"]))
    for line in consequences or ():
        text.line(line)
    text.line(f"Decided {when(decision.decided_at, zone)}; recorded in the decision log.")
    return text.build()


def decision_line(proposal: Proposal, decision: Decision, zone: ZoneInfo) -> str:
    local = decision.decided_at.astimezone(zone)
    counts = decision_counts(decision)["counts"]
    figures = "" if decision.outcome == voting.WITHDRAWN else f" — {tally_line(counts)}"
    return f"{local:%Y-%m-%d} {outcome_headline(proposal, decision)}{figures}"
