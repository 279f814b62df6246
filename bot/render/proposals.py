"""How governance objects read in a chat: written once, in the HTML subset.

Every user-supplied string passes through `escape` (via the helpers in
bot.render.text); short enough to read on a phone.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from bot.actions import Choice
from bot.durations import format_duration
from bot.governance import voting
from bot.governance.proposals import OPEN, WITHDRAWN, is_ranked, options_of
from bot.governance.secrecy import SMALL_ROLL, SecretState
from bot.render.common import relative, when
from bot.render.text import RichText, TextBuilder, b, escape, i
from storage.models import Ballot, Decision, Lottery, Member, Proposal

ICONS = {voting.PASSED: "✅", voting.CHOSEN: "✅", voting.REJECTED: "❌", voting.BLOCKED: "✋",
         voting.NO_QUORUM: "⏸", voting.TIE: "⚖️", voting.WITHDRAWN: "↩️"}


def tally_line(counts: dict[str, int]) -> str:
    return " · ".join(f"{n} {escape(label)}" for label, n in counts.items())


def quorum_label(quorum: str) -> str:
    return "none" if quorum == "0" else escape(quorum)


def proposal_card(proposal: Proposal, author: str, counts: dict[str, int], now: datetime, zone: ZoneInfo,
                  prefix: str, secret: SecretState | None = None, tie: Lottery | None = None) -> RichText:
    """The message members vote on; edited in place as ballots arrive. While a secret ballot
    is open it shows only how many have voted (`secret`), never a running tally."""
    text = TextBuilder().line("🔒 " if proposal.secret else "📜 ", b(f"#{proposal.number} {proposal.title}"))
    if proposal.details:
        text.line(i(proposal.details))
    hidden = secret is not None and proposal.status == OPEN
    options = options_of(proposal)
    if options:
        if is_ranked(proposal) and not hidden:
            text.line(i("First preferences:"))
        for number, option in enumerate(options, 1):
            text.line(f"{number}. {escape(option)}" + ("" if hidden else f" — {counts.get(option, 0)}"))
        if not hidden:
            text.line(f"abstain — {counts.get(voting.ABSTAIN, 0)}")
    elif not hidden:
        text.line("Tally: ", tally_line(counts))
    text.line(f"Rule: {_rule_label(proposal)} · quorum {quorum_label(proposal.quorum)} · by {escape(author)}")
    if proposal.review_seconds:
        after = format_duration(timedelta(seconds=proposal.review_seconds))
        text.line(f"🔁 If it passes, it comes back for review {after} later; unless the group keeps it then, "
                  "it lapses.")
    if hidden:
        text.line(f"🔒 Secret ballot: {secret.voted} voted so far. Nobody sees who chose what, not even whoever "
                  "runs the bot; each voter gets a receipt to check their ballot.")
        if secret.roll is not None and secret.roll < SMALL_ROLL:
            text.line(i(f"Only {secret.roll} can vote: a unanimous or near-unanimous result will show "
                        "how people voted."))
    if proposal.status == OPEN:
        text.line(f"Closes {when(proposal.closes_at, zone)} ({relative(proposal.closes_at, now)})")
        text.line(_how_to_vote(proposal, prefix))
        if tie is not None:
            text.line(f"🎲 Ties are broken by lottery #{tie.number} (commitment <code>{tie.commitment[:12]}</code>); "
                      f"add randomness: <code>{escape(prefix)}draw add &lt;anything&gt; lottery={tie.number}</code>")
    else:
        text.line(f"{'Withdrawn' if proposal.status == WITHDRAWN else 'Closed'} "
                  f"{when(proposal.closed_at, zone)}")
    return text.build()


def _rule_label(proposal: Proposal) -> str:
    if is_ranked(proposal):
        seats = json.loads(proposal.candidates)["seats"] if proposal.candidates else 1
        return "ranked, instant runoff" if seats == 1 else f"ranked, STV for {seats} seats"
    return "choice poll, most votes wins" if options_of(proposal) else escape(proposal.rule)


def _how_to_vote(proposal: Proposal, prefix: str) -> str:
    number = proposal.number
    if is_ranked(proposal):
        how = f"<code>{escape(prefix)}vote {number} 2 1 3</code> (best first; names work too)"
    elif options_of(proposal):
        how = f"<code>{escape(prefix)}vote {number} &lt;number&gt;</code>"
    else:
        how = f"<code>{escape(prefix)}vote {number} yes|no|abstain|block [reason]</code>"
    if proposal.secret:
        return f"Vote privately: tap 🔒, or write to me in a direct chat: {how.replace(escape(prefix), '', 1)}"
    if is_ranked(proposal):
        return f"Rank: tap the options in order, or {how}"
    return f"Vote: {how}"


# One emoji per answer, for platforms where a vote is a reaction (Matrix).
STANCE_SYMBOLS = {voting.YES: "👍", voting.NO: "👎", voting.ABSTAIN: "🤷", voting.BLOCK: "✋"}
OPTION_SYMBOLS = ("1️⃣", "2️⃣", "3️⃣", "4️⃣", "5️⃣", "6️⃣", "7️⃣", "8️⃣", "9️⃣", "🔟")


PRIVATE_BALLOT = "🔒"


def vote_choices(proposal: Proposal) -> tuple[Choice, ...]:
    """The card's buttons (reactions on Matrix). A secret ballot has one, which opens the
    member's private ballot; a ranked poll's option buttons rank the next option."""
    options = options_of(proposal)
    if proposal.secret:
        return (Choice(label="🔒 Vote privately", payload=f"ballot {proposal.number} group=#{proposal.group_id}",
                       symbol=PRIVATE_BALLOT, private=True),)
    if is_ranked(proposal):
        return (*(Choice(label=f"{n}. {option[:36]}", payload=f"vote {proposal.number} +{n}",
                         symbol=OPTION_SYMBOLS[n - 1] if n <= len(OPTION_SYMBOLS) else None)
                  for n, option in enumerate(options, 1)),
                Choice(label="↩ Undo", payload=f"vote {proposal.number} undo"),
                Choice(label="✖ Clear", payload=f"vote {proposal.number} clear"))
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
        result = "chose " + " and ".join(b(w) for w in winners)
    elif decision.outcome == voting.TIE:
        result = "tie between " + " and ".join(b(w) for w in winners)
    else:
        result = b(result)
    return f"{icon} #{proposal.number} {escape(proposal.title)}: {result}"


def outcome_announcement(proposal: Proposal, decision: Decision, zone: ZoneInfo,
                         consequences: list[str] | None = None, secret_voters: list[str] | None = None,
                         checkpoint_line: str | None = None) -> RichText:
    """The result; a ranked count round by round; a secret ballot's voters (never their choices)."""
    data = decision_counts(decision)
    text = TextBuilder().line(outcome_headline(proposal, decision))
    if decision.outcome != voting.WITHDRAWN:
        first = "First preferences: " if is_ranked(proposal) else ""
        text.line(f"{first}{tally_line(data['counts'])} ({decision.voters} of {decision.members} members voted)")
    if data.get("explanation"):
        text.line(i(data["explanation"]))
    for line in count_lines(data.get("count")):
        text.line(line)
    if secret_voters is not None and decision.outcome != voting.WITHDRAWN:
        text.line(f"🔒 {len(secret_voters)} voted: {', '.join(escape(name) for name in secret_voters) or 'nobody'}.")
        text.line("Every ballot is in the file below, sorted by receipt hash; anyone can recount it. Find yours "
                  f"privately with <code>ballot check {proposal.number} &lt;receipt&gt;</code>.")
    for line in consequences or ():
        text.line(line)
    text.line(f"Decided {when(decision.decided_at, zone)}; recorded in the decision log.")
    if checkpoint_line:
        text.line(checkpoint_line)
    return text.build()


def decision_line(proposal: Proposal, decision: Decision, zone: ZoneInfo) -> str:
    local = decision.decided_at.astimezone(zone)
    counts = decision_counts(decision)["counts"]
    figures = "" if decision.outcome == voting.WITHDRAWN else f" — {tally_line(counts)}"
    return f"{local:%Y-%m-%d} {outcome_headline(proposal, decision)}{figures}"


def count_lines(count: dict | None) -> list[str]:
    """A ranked count in words, one line per round: who was excluded or elected, where votes went."""
    if not count:
        return []
    lines = []
    if count["method"] == "stv":
        lines.append(f"{count['valid']} valid ballots · quota {escape(count['quota'])} for {count['seats']} seats")
    for stage in count["stages"]:
        lines.append(f"{b('Round ' + str(stage['number']))}: {_stage_words(stage)}")
        if stage.get("tie"):
            lines.append(i(f"Tie: {stage['tie']}"))
    if any("lot" in (stage.get("tie") or "") for stage in count["stages"]):
        lines.append(i(f"Lot seed: {escape(count['seed'])} (SHA-256 of “seed:round”, modulo the tied, "
                       "names sorted)"))
    return lines


def _stage_words(stage: dict) -> str:
    totals = " · ".join(f"{escape(name)} {_figure(value)}" for name, value in stage["totals"].items())
    elected = f" — elected: {', '.join(b(name) for name in stage['elected'])}" if stage["elected"] else ""
    if stage["action"] == "first":
        return f"{totals}{elected}"
    moved = ", ".join(f"{_figure(value)} to {escape(name)}" for name, value in stage["transfers"].items())
    if _figure(stage["exhausted"]) != "0":
        exhausted = f"{_figure(stage['exhausted'])} exhausted"
        moved = f"{moved}, {exhausted}" if moved else exhausted
    subject = escape(stage["subject"] or "")
    what = {"exclude": f"{subject} excluded", "surplus": f"{subject}'s surplus transferred",
            "elect-remaining": "the remaining seats filled"}.get(stage["action"], escape(stage["action"]))
    return f"{what}{f' ({moved})' if moved else ''}. {totals}{elected}"


def _figure(value: str) -> str:
    """Whole votes without decimals; fractions as counted (STV, 5 places)."""
    return value.rstrip("0").rstrip(".") if "." in value else value


def private_ballot(proposal: Proposal, group_title: str | None, prefix: str, draft: list[int] = ()) -> RichText:
    """The ballot as a member sees it in their private chat with the bot."""
    text = TextBuilder().line("🔒 ", b(f"Secret ballot #{proposal.number}: {proposal.title}"))
    if group_title:
        text.line(i(f"in {group_title}"))
    if proposal.details:
        text.line(i(proposal.details))
    options = options_of(proposal)
    for number, option in enumerate(options or (), 1):
        text.line(f"{number}. {escape(option)}")
    if is_ranked(proposal):
        ranking = " > ".join(escape(options[n - 1]) for n in draft) or "nothing yet"
        text.line(f"Your ranking so far: {b(ranking) if draft else i(ranking)}")
        text.line(f"Write <code>{escape(prefix)}vote {proposal.number} 2 1 3</code> here, best first (where there "
                  "are buttons: tap the options in order, then Cast).")
    else:
        how = "&lt;number&gt;" if options else "yes|no|abstain|block"
        text.line(f"Write <code>{escape(prefix)}vote {proposal.number} {how}</code> here (or tap your answer, where "
                  "there are buttons).")
    text.line(i("Your ballot is sealed: you get a receipt to check it or change it; nobody can tell which "
                "ballot is yours without it."))
    return text.build()


def private_choices(proposal: Proposal, draft: list[int] = ()) -> tuple[Choice, ...]:
    """The private ballot's buttons. A ranking in progress lives in the buttons themselves (each
    carries the ranking so far), never in the database: until it is cast it is nobody's business."""
    number, group = proposal.number, f"group=#{proposal.group_id}"
    options = options_of(proposal)
    if not is_ranked(proposal):
        answers = ([(option[:40], str(n)) for n, option in enumerate(options, 1)] + [("Abstain", "abstain")]
                   if options else [(stance.capitalize(), stance) for stance in voting.STANCES])
        return tuple(Choice(label=label, payload=f"vote {number} {answer} {group}") for label, answer in answers)
    buttons = [Choice(label=f"{n}. {option[:36]}", payload=f"ballot {number} rank={'.'.join(map(str, [*draft, n]))} "
                      f"{group}") for n, option in enumerate(options, 1) if n not in draft]
    if draft:
        undo = f"rank={'.'.join(map(str, draft[:-1]))} " if len(draft) > 1 else ""
        buttons += [Choice(label="↩ Undo", payload=f"ballot {number} {undo}{group}"),
                    Choice(label="✖ Clear", payload=f"ballot {number} {group}"),
                    Choice(label="✅ Cast", payload=f"vote {number} {' '.join(map(str, draft))} {group}")]
    return tuple(buttons)


def secret_vote_receipt(proposal: Proposal, described: str, receipt: str, prefix: str) -> RichText:
    return (TextBuilder()
            .line("🔒 ", f"Your ballot on #{proposal.number} {b(proposal.title)} is in the box: {b(described)}.")
            .line("Receipt: ", f"<code>{escape(receipt)}</code>")
            .line(f"Keep it. <code>{escape(prefix)}ballot check {proposal.number} {escape(receipt)}</code> shows your "
                  f"ballot; <code>{escape(prefix)}vote {proposal.number} &lt;choice&gt; "
                  f"receipt={escape(receipt)}</code> "
                  "changes it until the close. Without the receipt nobody, not even me, can tell which ballot is "
                  "yours.")
            .build())
