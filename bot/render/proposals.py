"""How governance objects read in a chat: written once, in the HTML subset.

Every user-supplied string passes through `escape` (via the helpers in
bot.render.text); short enough to read on a phone.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from bot.actions import Choice
from bot.durations import format_duration
from bot.governance import voting
from bot.governance.proposals import OPEN, WITHDRAWN, is_ranked, options_of
from bot.governance.secrecy import SMALL_ROLL, SecretState
from bot.i18n import N_, _, ngettext
from bot.render.common import relative, when
from bot.render.text import RichText, TextBuilder, b, escape, i
from storage.models import Ballot, Decision, Lottery, Member, Proposal

ICONS = {voting.PASSED: "✅", voting.CHOSEN: "✅", voting.REJECTED: "❌", voting.BLOCKED: "✋",
         voting.NO_QUORUM: "⏸", voting.TIE: "⚖️", voting.WITHDRAWN: "↩️"}
# A decision's outcome as members read it (stored in English as the key; translated where shown).
OUTCOME_WORDS = {voting.PASSED: N_("passed"), voting.REJECTED: N_("rejected"), voting.BLOCKED: N_("blocked"),
                 voting.NO_QUORUM: N_("no quorum"), voting.CHOSEN: N_("chosen"), voting.TIE: N_("tie"),
                 voting.WITHDRAWN: N_("withdrawn")}


def outcome_word(outcome: str) -> str:
    """A stored outcome (`passed`, `no quorum` …) in the reader's language (not escaped)."""
    return _(OUTCOME_WORDS[outcome]) if outcome in OUTCOME_WORDS else outcome


def and_list(items: list[str]) -> str:
    """`A and B and C` (items already escaped)."""
    text = items[0] if items else ""
    for item in items[1:]:
        text = _("{items} and {item}").format(items=text, item=item)
    return text


def tally_line(counts: dict[str, int]) -> str:
    return " · ".join(f"{n} {escape(label)}" for label, n in counts.items())


def quorum_label(quorum: str) -> str:
    return _("none") if quorum == "0" else escape(quorum)


# Why a decision came out as it did is stored with it, in English, and hashed into the group log;
# it is translated when shown. The fixed reasons (voting.py, renewals, a withdrawal) …
_REASONS = (N_("nobody chose an option"), N_("more yes than no"), N_("nobody voted yes"), N_("a tie does not pass"),
            N_("more no than yes"), N_("at least two thirds said yes"), N_("fewer than two thirds said yes"),
            N_("no one blocked"), N_("consensus needs no one against"), N_("nobody said yes"),
            N_("everyone who voted agreed"), N_("nobody ranked an option"), N_("nobody kept it"),
            N_("nothing was kept"), N_("withdrawn by its author"))
# … and the ones with figures in them, read back from the stored English.
_FIGURED = (
    (re.compile(r"(\d+) of the (\d+) ballots needed"),
     lambda m: _("{voters} of the {needed} ballots needed").format(voters=m[1], needed=m[2])),
    (re.compile(r"(\d+) blocks?"),
     lambda m: ngettext("{count} block", "{count} blocks", int(m[1])).format(count=m[1])),
    (re.compile(r"instant runoff, (\d+) rounds?"),
     lambda m: ngettext("instant runoff, {count} round", "instant runoff, {count} rounds", int(m[1])).format(
         count=m[1])),
    (re.compile(r"STV \(Scottish rules\), quota (\S+) for (\d+) seats"),
     lambda m: _("STV (Scottish rules), quota {quota} for {seats} seats").format(quota=m[1], seats=m[2])),
)


def explained(reason: str) -> str:
    """A decision's stored reason in the reader's language (as stored when it is not one we know); plain
    text, to be escaped by whoever shows it."""
    if reason in _REASONS:
        return _(reason)
    for pattern, translate in _FIGURED:
        match = pattern.fullmatch(reason)
        if match:
            return translate(match)
    return reason


def proposal_card(proposal: Proposal, author: str, counts: dict[str, int], now: datetime, zone: ZoneInfo,
                  prefix: str, secret: SecretState | None = None, tie: Lottery | None = None,
                  shared: list[str] | None = None) -> RichText:
    """The message members vote on; edited in place as ballots arrive. While a secret ballot
    is open it shows only how many have voted (`secret`), never a running tally. `shared`: the
    lines of a federation's shared question (bot.render.federation.shared_lines)."""
    text = TextBuilder().line("🔒 " if proposal.secret else "📜 ", b(f"#{proposal.number} {proposal.title}"))
    if proposal.details:
        text.line(i(proposal.details))
    hidden = secret is not None and proposal.status == OPEN
    options = options_of(proposal)
    if options:
        if is_ranked(proposal) and not hidden:
            text.line(i(_("First preferences:")))
        for number, option in enumerate(options, 1):
            text.line(f"{number}. {escape(option)}" + ("" if hidden else f" — {counts.get(option, 0)}"))
        if not hidden:
            text.line(f"abstain — {counts.get(voting.ABSTAIN, 0)}")
    elif not hidden:
        text.line(_("Tally: {tally}").format(tally=tally_line(counts)))
    text.line(_("Rule: {rule} · quorum {quorum} · by {author}").format(
        rule=_rule_label(proposal), quorum=quorum_label(proposal.quorum), author=escape(author)))
    for line in shared or ():
        text.line(line)
    if proposal.review_seconds:
        after = format_duration(timedelta(seconds=proposal.review_seconds))
        text.line(_("🔁 If it passes, it comes back for review {after} later; unless the group keeps it then, "
                    "it lapses.").format(after=after))
    if hidden:
        text.line(_("🔒 Secret ballot: {count} voted so far. Nobody sees who chose what, not even whoever "
                    "runs the bot; each voter gets a receipt to check their ballot.").format(count=secret.voted))
        if secret.roll is not None and secret.roll < SMALL_ROLL:
            text.line(i(_("Only {count} can vote: a unanimous or near-unanimous result will show "
                          "how people voted.").format(count=secret.roll)))
    if proposal.status == OPEN:
        text.line(_("Closes {when} ({relative})").format(when=when(proposal.closes_at, zone),
                                                          relative=relative(proposal.closes_at, now)))
        text.line(_how_to_vote(proposal, prefix))
        if tie is not None:
            text.line(_("🎲 Ties are broken by lottery #{number} (commitment <code>{commitment}</code>); "
                        "add randomness: <code>{command}</code>").format(
                number=tie.number, commitment=tie.commitment[:12],
                command=f"{escape(prefix)}draw add &lt;anything&gt; lottery={tie.number}"))
    else:
        closed = _("Withdrawn {when}") if proposal.status == WITHDRAWN else _("Closed {when}")
        text.line(closed.format(when=when(proposal.closed_at, zone)))
    return text.build()


def _rule_label(proposal: Proposal) -> str:
    if is_ranked(proposal):
        seats = json.loads(proposal.candidates)["seats"] if proposal.candidates else 1
        if seats == 1:
            return _("ranked, instant runoff")
        return ngettext("ranked, STV for {count} seat", "ranked, STV for {count} seats", seats).format(count=seats)
    return _("choice poll, most votes wins") if options_of(proposal) else escape(proposal.rule)


def _how_to_vote(proposal: Proposal, prefix: str) -> str:
    if proposal.secret:  # in the private chat, where no prefix is needed
        return _("Vote privately: tap 🔒, or write to me in a direct chat: {how}").format(
            how=_vote_command(proposal, ""))
    if is_ranked(proposal):
        return _("Rank: tap the options in order, or {how}").format(how=_vote_command(proposal, prefix))
    return _("Vote: {how}").format(how=_vote_command(proposal, prefix))


def _vote_command(proposal: Proposal, prefix: str) -> str:
    number = proposal.number
    if is_ranked(proposal):
        return _("{command} (best first; names work too)").format(
            command=f"<code>{escape(prefix)}vote {number} 2 1 3</code>")
    if options_of(proposal):
        return f"<code>{escape(prefix)}vote {number} &lt;number&gt;</code>"
    return f"<code>{escape(prefix)}vote {number} yes|no|abstain|block [reason]</code>"


# One emoji per answer, for platforms where a vote is a reaction (Matrix).
STANCE_SYMBOLS = {voting.YES: "👍", voting.NO: "👎", voting.ABSTAIN: "🤷", voting.BLOCK: "✋"}
OPTION_SYMBOLS = ("1️⃣", "2️⃣", "3️⃣", "4️⃣", "5️⃣", "6️⃣", "7️⃣", "8️⃣", "9️⃣", "🔟")


PRIVATE_BALLOT = "🔒"


def vote_choices(proposal: Proposal) -> tuple[Choice, ...]:
    """The card's buttons (reactions on Matrix). A secret ballot has one, which opens the
    member's private ballot; a ranked poll's option buttons rank the next option."""
    options = options_of(proposal)
    if proposal.secret:
        return (Choice(label=_("🔒 Vote privately"), payload=f"ballot {proposal.number} group=#{proposal.group_id}",
                       symbol=PRIVATE_BALLOT, private=True),)
    if is_ranked(proposal):
        return (*(Choice(label=f"{n}. {option[:36]}", payload=f"vote {proposal.number} +{n}",
                         symbol=OPTION_SYMBOLS[n - 1] if n <= len(OPTION_SYMBOLS) else None)
                  for n, option in enumerate(options, 1)),
                Choice(label=_("↩ Undo"), payload=f"vote {proposal.number} undo"),
                Choice(label=_("✖ Clear"), payload=f"vote {proposal.number} clear"))
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
        lines.append(b(_("Reasons")))
        for ballot, member in reasons[:MAX_REASONS]:
            lines.append(f"• {escape(member.display_name)} ({escape(ballot.choice)}): {i(ballot.reason)}")
        if len(reasons) > MAX_REASONS:
            lines.append(i(_("and {count} more").format(count=len(reasons) - MAX_REASONS)))
    return lines


def decision_counts(decision: Decision) -> dict:
    return json.loads(decision.counts)


def outcome_headline(proposal: Proposal, decision: Decision) -> str:
    data = decision_counts(decision)
    icon = ICONS.get(decision.outcome, "•")
    winners = data.get("winners") or []
    if decision.outcome == voting.CHOSEN:
        result = _("chose {winners}").format(winners=and_list([b(w) for w in winners]))
    elif decision.outcome == voting.TIE:
        result = _("tie between {winners}").format(winners=and_list([b(w) for w in winners]))
    else:
        result = b(outcome_word(decision.outcome))
    return f"{icon} #{proposal.number} {escape(proposal.title)}: {result}"


def outcome_announcement(proposal: Proposal, decision: Decision, zone: ZoneInfo,
                         consequences: list[str] | None = None, secret_voters: list[str] | None = None,
                         checkpoint_line: str | None = None) -> RichText:
    """The result; a ranked count round by round; a secret ballot's voters (never their choices)."""
    data = decision_counts(decision)
    text = TextBuilder().line(outcome_headline(proposal, decision))
    if decision.outcome != voting.WITHDRAWN:
        turnout = (_("First preferences: {tally} ({voters} of {members} members voted)") if is_ranked(proposal)
                   else _("{tally} ({voters} of {members} members voted)"))
        text.line(turnout.format(tally=tally_line(data["counts"]), voters=decision.voters, members=decision.members))
    if data.get("explanation"):
        text.line(i(explained(data["explanation"])))
    for line in count_lines(data.get("count")):
        text.line(line)
    if secret_voters is not None and decision.outcome != voting.WITHDRAWN:
        text.line(_secret_voters_line(secret_voters))
        text.line(_("Every ballot is in the file below, sorted by receipt hash; anyone can recount it. Find yours "
                    "privately with <code>{command}</code>.").format(
            command=f"ballot check {proposal.number} &lt;receipt&gt;"))
    for line in consequences or ():
        text.line(line)
    text.line(_("Decided {when}; recorded in the decision log.").format(when=when(decision.decided_at, zone)))
    if checkpoint_line:
        text.line(checkpoint_line)
    return text.build()


def _secret_voters_line(names: list[str]) -> str:
    if not names:
        return _("🔒 {count} voted: nobody.").format(count=0)
    return _("🔒 {count} voted: {names}.").format(count=len(names), names=", ".join(escape(name) for name in names))


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
        lines.append(_("{valid} valid ballots · quota {quota} for {seats} seats").format(
            valid=count["valid"], quota=escape(count["quota"]), seats=count["seats"]))
    for stage in count["stages"]:
        lines.append(_("<b>Round {number}</b>: {stage}").format(number=stage["number"], stage=_stage_words(stage)))
        if stage.get("tie"):  # how the tie was decided, as counted and logged: English
            lines.append(i(_("Tie: {tie}").format(tie=stage["tie"])))
    if any("lot" in (stage.get("tie") or "") for stage in count["stages"]):
        lines.append(i(_("Lot seed: {seed} (SHA-256 of “seed:round”, modulo the tied, names sorted)").format(
            seed=escape(count["seed"]))))
    return lines


def _stage_words(stage: dict) -> str:
    totals = " · ".join(f"{escape(name)} {_figure(value)}" for name, value in stage["totals"].items())
    if stage["elected"]:
        totals = _("{totals} — elected: {names}").format(totals=totals,
                                                         names=", ".join(b(name) for name in stage["elected"]))
    if stage["action"] == "first":
        return totals
    moved = ", ".join(_("{votes} to {name}").format(votes=_figure(value), name=escape(name))
                      for name, value in stage["transfers"].items())
    if _figure(stage["exhausted"]) != "0":
        exhausted = _("{votes} exhausted").format(votes=_figure(stage["exhausted"]))
        moved = f"{moved}, {exhausted}" if moved else exhausted
    what = _stage_action(stage["action"], escape(stage["subject"] or ""))
    return f"{what}{f' ({moved})' if moved else ''}. {totals}"


def _stage_action(action: str, subject: str) -> str:
    if action == "exclude":
        return _("{name} excluded").format(name=subject)
    if action == "surplus":
        return _("{name}'s surplus transferred").format(name=subject)
    if action == "elect-remaining":
        return _("the remaining seats filled")
    return escape(action)


def _figure(value: str) -> str:
    """Whole votes without decimals; fractions as counted (STV, 5 places)."""
    return value.rstrip("0").rstrip(".") if "." in value else value


def private_ballot(proposal: Proposal, group_title: str | None, prefix: str, draft: list[int] = ()) -> RichText:
    """The ballot as a member sees it in their private chat with the bot."""
    text = TextBuilder().line("🔒 ", b(_("Secret ballot #{number}: {title}").format(number=proposal.number,
                                                                                   title=proposal.title)))
    if group_title:
        text.line(i(_("in {group}").format(group=group_title)))
    if proposal.details:
        text.line(i(proposal.details))
    options = options_of(proposal)
    for number, option in enumerate(options or (), 1):
        text.line(f"{number}. {escape(option)}")
    if is_ranked(proposal):
        ranking = b(" > ".join(escape(options[n - 1]) for n in draft)) if draft else i(_("nothing yet"))
        text.line(_("Your ranking so far: {ranking}").format(ranking=ranking))
        text.line(_("Write <code>{command}</code> here, best first (where there are buttons: tap the options in "
                    "order, then Cast).").format(command=f"{escape(prefix)}vote {proposal.number} 2 1 3"))
    else:
        how = "&lt;number&gt;" if options else "yes|no|abstain|block"
        text.line(_("Write <code>{command}</code> here (or tap your answer, where there are buttons).").format(
            command=f"{escape(prefix)}vote {proposal.number} {how}"))
    text.line(i(_("Your ballot is sealed: you get a receipt to check it or change it; nobody can tell which "
                  "ballot is yours without it.")))
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
        buttons += [Choice(label=_("↩ Undo"), payload=f"ballot {number} {undo}{group}"),
                    Choice(label=_("✖ Clear"), payload=f"ballot {number} {group}"),
                    Choice(label=_("✅ Cast"), payload=f"vote {number} {' '.join(map(str, draft))} {group}")]
    return tuple(buttons)


def secret_vote_receipt(proposal: Proposal, described: str, receipt: str, prefix: str) -> RichText:
    return (TextBuilder()
            .line("🔒 ", _("Your ballot on #{number} {title} is in the box: {choice}.").format(
                number=proposal.number, title=b(proposal.title), choice=b(described)))
            .line(_("Receipt: {receipt}").format(receipt=f"<code>{escape(receipt)}</code>"))
            .line(_("Keep it. <code>{check}</code> shows your ballot; <code>{change}</code> changes it until the "
                    "close. Without the receipt nobody, not even me, can tell which ballot is yours.").format(
                check=f"{escape(prefix)}ballot check {proposal.number} {escape(receipt)}",
                change=f"{escape(prefix)}vote {proposal.number} &lt;choice&gt; receipt={escape(receipt)}"))
            .build())
