"""propose, vote, proposals, proposal, withdraw, close, remind, decisions."""

from __future__ import annotations

from datetime import timedelta

from bot.actions import EditMessage
from bot.commands.args import Duration, Number, OneOf, OptionList, Quorum, QuorumArg, Text, Word
from bot.commands.base import command
from bot.commands.registry import Option, Positional
from bot.context import Context
from bot.governance import outcomes
from bot.governance import proposals as rules
from bot.governance.voting import RULE_ALIASES, RULES
from bot.render.proposals import (
    decision_line,
    outcome_announcement,
    outcome_headline,
    proposal_card,
    relative,
    tally_line,
    vote_choices,
    voters_list,
    when,
)
from bot.render.text import RichText, TextBuilder, b, escape, i, join, mention, plain
from storage.models import Proposal

MAX_TITLE = 200
MAX_DETAILS = 2000
MAX_MENTIONS = 50


@command(
    "propose",
    summary="open a proposal for the group to decide",
    example='propose Buy a chest freezer for the pantry | up to 300 EUR closes=2d rule=consent',
    params=(
        Positional("title", Text("title", max_length=MAX_TITLE + MAX_DETAILS + 3), rest=True,
                   label="<title> [| details]"),
        Option("closes", Duration(), aliases=("close", "closes_in", "duration")),
        Option("rule", OneOf(*RULES, aliases=RULE_ALIASES)),
        Option("quorum", QuorumArg()),
        Option("options", OptionList(), aliases=("choices",)),
    ),
    aliases=("poll",),
    details='Write details after a | . With options="A; B; C" it is a choice poll decided by the most votes.',
    gate="propose_role", task="opening proposals",
)
def propose(ctx: Context, title: str, closes: timedelta | None, rule: str | None, quorum: Quorum | None,
            options: list[str] | None) -> None:
    title, _, details = title.partition("|")
    title, details = title.strip(), details.strip() or None
    if not title:
        raise rules.RuleViolation("The title is empty; write it before the |.")
    if len(title) > MAX_TITLE:
        raise rules.RuleViolation(f"The title is {len(title):,} characters; keep it under {MAX_TITLE} "
                                  "and put the rest after a | as details.")
    if details and len(details) > MAX_DETAILS:
        raise rules.RuleViolation(f"The details are {len(details):,} characters; keep them under {MAX_DETAILS:,}.")
    settings = ctx.settings
    proposal = rules.open_proposal(
        ctx.session, group_id=ctx.group_id, author_id=ctx.member_id, title=title, details=details,
        rule=rule or settings.rule, quorum=quorum or settings.quorum, options=options, now=ctx.now,
        duration=closes or settings.vote_duration)
    ctx.reply(card(ctx, proposal), choices=vote_choices(proposal), track=message_key(proposal))


@command(
    "vote",
    summary="cast or change your ballot while a proposal is open",
    example="vote 3 yes I can pick it up on Friday",
    params=(Positional("number", Number(), label="#"),
            Positional("choice", Word(), label="yes|no|abstain|block|option"),
            Positional("reason", Text("reason", max_length=500), optional=True, rest=True)),
    details="Answer yes, no, abstain or block; for a choice poll give the option's number or name. "
            "Vote again to change your ballot.",
)
def vote(ctx: Context, number: int, choice: str, reason: str | None) -> None:
    proposal = rules.find(ctx.session, ctx.group_id, number)
    chosen, reason = rules.resolve_choice(proposal, f"{choice} {reason or ''}")
    change = rules.cast_ballot(ctx.session, proposal, ctx.member_id, chosen, reason, ctx.now)
    counts = rules.counts(ctx.session, proposal)
    if change.previous is None:
        verb = "counted"
    elif change.previous == change.current:
        verb = "unchanged"
    else:
        verb = f"changed from {escape(change.previous)}"
    ctx.ack(RichText(html=f"🗳 {escape(ctx.sender_name)}: {b(chosen)} on #{proposal.number} ({verb}). "
                          f"{tally_line(counts)}"))
    refresh_card(ctx, proposal, counts)


@command("proposals", summary="list the open proposals", example="proposals", aliases=("open",))
def list_open(ctx: Context) -> None:
    found = rules.open_in_group(ctx.session, ctx.group_id)
    if not found:
        ctx.reply(plain(f"No open proposals. Open one with {ctx.usage_of('propose').split(' [')[0]}."))
        return
    zone = ctx.settings.timezone
    text = TextBuilder().line(b(f"Open proposals ({len(found)})"))
    voted = rules.voter_counts(ctx.session, found)
    for proposal in found:
        text.line(f"#{proposal.number} {escape(proposal.title)} — {voted.get(proposal.id, 0)} voted, closes "
                  f"{when(proposal.closes_at, zone)} ({relative(proposal.closes_at, ctx.now)})")
    text.line(i(f"{ctx.prefix}proposal <#> shows one with its ballots."))
    ctx.reply(text.build())


@command("proposal", summary="show one proposal with its tally and who voted", example="proposal 3",
         params=(Positional("number", Number(), label="#"),), aliases=("show",))
def show(ctx: Context, number: int) -> None:
    proposal = rules.find(ctx.session, ctx.group_id, number)
    ballots = rules.ballots_with_voters(ctx.session, proposal)
    text = card(ctx, proposal)
    labels = list(rules.counts_template(proposal))
    lines = [f"{b('Ballots')} ({len(ballots)}):", *voters_list(ballots, labels)] if ballots \
        else [i("No ballots yet.")]
    decision = rules.decision_of(ctx.session, proposal)
    if decision is not None:
        lines.append(outcome_headline(proposal, decision))
    ctx.reply(join([text, *lines]))


@command("withdraw", summary="withdraw your own open proposal", example="withdraw 3",
         params=(Positional("number", Number(), label="#"),))
def withdraw(ctx: Context, number: int) -> None:
    proposal = rules.find(ctx.session, ctx.group_id, number)
    decision = rules.withdraw(ctx.session, proposal, ctx.member_id, ctx.now)
    ctx.reply(outcome_announcement(proposal, decision, ctx.settings.timezone))
    refresh_card(ctx, proposal)


@command("close", summary="close your proposal now and count the ballots", example="close 3",
         params=(Positional("number", Number(), label="#"),),
         details="The author can close early, and so can the holder of the role set as propose_role; "
                 "otherwise proposals close at their deadline.")
def close_early(ctx: Context, number: int) -> None:
    proposal = rules.find(ctx.session, ctx.group_id, number)
    members = ctx.directory.member_count(ctx.session, ctx.group)
    concluded = outcomes.close_early(ctx.session, proposal, ctx.member_id, ctx.now, members, ctx.settings,
                                     ctx.prefix)
    ctx.post(outcome_announcement(proposal, concluded.decision, ctx.settings.timezone, concluded.consequences))
    refresh_card(ctx, proposal)


@command("remind", summary="mention the members who have not voted yet", example="remind 3",
         params=(Positional("number", Number(), label="#"),))
def remind(ctx: Context, number: int) -> None:
    proposal = rules.find(ctx.session, ctx.group_id, number)
    if proposal.status != rules.OPEN:
        raise rules.RuleViolation(f"#{number} is no longer open.")
    missing = rules.non_voters(ctx.session, proposal)
    if not missing:
        ctx.reply(plain(f"Everyone the bot knows in this group has voted on #{number}."))
        return
    text = TextBuilder()
    names = ", ".join(mention(ctx.user_of(m), m.display_name) for m in missing[:MAX_MENTIONS])
    more = f" and {len(missing) - MAX_MENTIONS} more" if len(missing) > MAX_MENTIONS else ""
    text.line(f"⏰ {names}{more}: #{number} {b(proposal.title)} closes "
              f"{relative(proposal.closes_at, ctx.now)}.")
    text.line(f"Vote with <code>{escape(ctx.prefix)}vote {number} …</code>")
    ctx.post(text.build())


@command("decisions", summary="the decision log: outcomes, dates and counts", example="decisions 10",
         params=(Positional("count", Number(), optional=True),), aliases=("log",))
def decisions(ctx: Context, count: int | None) -> None:
    count = min(count or 10, 50)
    rows = rules.decision_log(ctx.session, ctx.group_id, count)
    if not rows:
        ctx.reply(plain("No decisions yet."))
        return
    zone = ctx.settings.timezone
    text = TextBuilder().line(b(f"Decision log (latest {len(rows)})"))
    for decision, proposal in rows:
        text.line(decision_line(proposal, decision, zone))
    ctx.reply(text.build())


def message_key(proposal: Proposal) -> str:
    return f"proposal:{proposal.number}"


def card(ctx: Context, proposal: Proposal, counts: dict[str, int] | None = None) -> RichText:
    counts = counts if counts is not None else rules.counts(ctx.session, proposal)
    return proposal_card(proposal, rules.author_name(ctx.session, proposal), counts, ctx.now,
                         ctx.settings.timezone, ctx.prefix)


def refresh_card(ctx: Context, proposal: Proposal, counts: dict[str, int] | None = None) -> None:
    """Edit the proposal's message so its tally stays current (the outbox keeps only the newest edit)."""
    keep_buttons = vote_choices(proposal) if proposal.status == rules.OPEN else ()
    ctx.actions.append(EditMessage(chat=ctx.chat, track=message_key(proposal), text=card(ctx, proposal, counts),
                                   choices=keep_buttons))

