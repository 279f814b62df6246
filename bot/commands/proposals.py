"""propose, vote, proposals, proposal, withdraw, close, remind, decisions, decisions export."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from bot import i18n
from bot.actions import EditMessage, SendFile, SendMessage
from bot.commands.args import Duration, Number, OneOf, OptionList, Quorum, QuorumArg, Text, Word
from bot.commands.base import command
from bot.commands.registry import Option, Positional
from bot.context import Context
from bot.events import ChatRef
from bot.governance import draws, federation, outcomes, renewals, reviews, secrecy
from bot.governance import proposals as rules
from bot.governance.voting import RULE_ALIASES, RULES
from bot.i18n import N_, _, ngettext
from bot.render import exports
from bot.render import federation as render_federation
from bot.render.charter import renewal_card, renewal_choices
from bot.render.proposals import (
    decision_line,
    outcome_announcement,
    outcome_headline,
    private_ballot,
    private_choices,
    proposal_card,
    relative,
    secret_vote_receipt,
    tally_line,
    vote_choices,
    voters_list,
    when,
)
from bot.render.text import RichText, TextBuilder, b, escape, i, join, mention, plain
from storage.models import Group, Proposal

METHOD = OneOf(rules.PLAIN, rules.RANKED, aliases={"ranked": rules.RANKED, "irv": rules.RANKED, "stv": rules.RANKED,
                                                  "rcv": rules.RANKED, "plurality": rules.PLAIN})
SECRET = OneOf("yes", "no", aliases={"secret": "yes", "true": "yes", "y": "yes", "open": "no", "false": "no",
                                     "n": "no"})
SHARE = OneOf("federation", aliases={"fed": "federation", "federated": "federation"})
MAX_TITLE = 200
MAX_DETAILS = 2000
MAX_MENTIONS = 50
MAX_RANKINGS_SHOWN = 100
MAX_REVIEWS_SHOWN = 10


@command(
    "propose",
    summary=N_("open a proposal for the group to decide"),
    example=N_('propose Buy a chest freezer for the pantry | up to 300 EUR closes=2d rule=consent'),
    params=(
        Positional("title", Text("title", max_length=MAX_TITLE + MAX_DETAILS + 3), rest=True,
                   label="<title> [| details]"),
        Option("closes", Duration(), aliases=("close", "closes_in", "duration")),
        Option("rule", OneOf(*RULES, aliases=RULE_ALIASES)),
        Option("quorum", QuorumArg()),
        Option("options", OptionList(), aliases=("choices",)),
        Option("method", METHOD),
        Option("secret", SECRET, aliases=("ballot",)),
        Option("review", Duration(), aliases=("sunset",)),
        Option("share", SHARE),
    ),
    aliases=("poll",),
    details=N_('Write details after a | . With options="A; B; C" it is a choice poll decided by the most votes; '
               'add method=ranked to let members rank them (counted by instant runoff). secret=yes makes it a '
               'secret ballot: members vote privately and get a receipt. review=6mo (or 1y, 90d; at least a day) '
               'is a sunset clause: if it passes, it comes back that long after as "Keep #n …?", and lapses '
               'unless the group keeps it. share=federation puts the same question to every group of the '
               'federation: each decides by its own rule and quorum, then the groups are counted.'),
    gate="propose_role", task="opening proposals",
)
def propose(ctx: Context, title: str, closes: timedelta | None, rule: str | None, quorum: Quorum | None,
            options: list[str] | None, method: str | None, secret: str | None, review: timedelta | None,
            share: str | None) -> None:
    title, __, details = title.partition("|")
    title, details = title.strip(), details.strip() or None
    if not title:
        raise rules.RuleViolation(_("The title is empty; write it before the |."))
    if len(title) > MAX_TITLE:
        raise rules.RuleViolation(_("The title is {length} characters; keep it under {limit} and put the rest after "
                                    "a | as details.").format(length=i18n.number(len(title)), limit=MAX_TITLE))
    if details and len(details) > MAX_DETAILS:
        raise rules.RuleViolation(_("The details are {length} characters; keep them under {limit}.").format(
            length=i18n.number(len(details)), limit=i18n.number(MAX_DETAILS)))
    if review is not None:
        reviews.check_delay(review)
    if share is not None:
        if options is not None or method is not None or rule is not None or quorum is not None:
            raise rules.RuleViolation(_("A shared proposal is a yes/no question that each group decides by its own "
                                        "rule and quorum: leave out options=, method=, rule= and quorum=."))
        _share(ctx, title, details, closes, secret == "yes", review)
        return
    settings = ctx.settings
    proposal = rules.open_proposal(
        ctx.session, group_id=ctx.group_id, author_id=ctx.member_id, title=title, details=details,
        rule=rule or settings.rule, quorum=quorum or settings.quorum, options=options, now=ctx.now,
        duration=closes or settings.vote_duration, method=method or rules.PLAIN, secret=secret == "yes",
        electorate=ctx.directory.active_member_ids(ctx.session, ctx.group_id), review=review)
    ctx.reply(card(ctx, proposal), choices=vote_choices(proposal), track=message_key(proposal))


def _share(ctx: Context, title: str, details: str | None, closes: timedelta | None, secret: bool,
           review: timedelta | None) -> None:
    """`share=federation`: the same question in every group of the federation, each card posted in its
    own chat and language; each group decides its copy, then the groups are counted."""
    question, copies = federation.open_question(
        ctx.session, origin_group_id=ctx.group_id, author_id=ctx.member_id, title=title, details=details,
        duration=closes or ctx.settings.vote_duration, secret=secret, review=review, now=ctx.now,
        settings_of=lambda group_id: ctx.directory.settings(ctx.session, group_id),
        electorate_of=lambda group_id: ctx.directory.active_member_ids(ctx.session, group_id))
    own, *others = copies
    ctx.reply(card(ctx, own), choices=vote_choices(own), track=message_key(own))
    for copy in others:
        group = ctx.session.get(Group, copy.group_id)
        ctx.say_in(group.id, SendMessage(chat=ctx.directory.chat_of(group), track=message_key(copy),
                                         text=card_in(ctx, group, copy), choices=card_choices(ctx.session, copy)))


def post_card(ctx: Context, proposal: Proposal) -> None:
    """A proposal the bot opened (a role's, a federation's), announced to the group with its buttons."""
    ctx.post(card(ctx, proposal), choices=vote_choices(proposal), track=message_key(proposal))


def card_in(ctx: Context, group: Group, proposal: Proposal, chat: ChatRef | None = None) -> RichText:
    """A proposal's card as another group (or one chat of it) shows it: in its language and time zone,
    with the commands written as its platform writes them."""
    settings = ctx.directory.settings(ctx.session, group.id)
    platform = (chat or ctx.directory.chat_of(group)).platform
    with i18n.speaking(settings.language):
        return card_text(ctx.session, proposal, ctx.now, settings.timezone, ctx.prefix_for(platform))


def tell_groups(ctx: Context, notices: list[federation.Notice]) -> None:
    """What a command's outcome tells a federation's groups (this one's after its own replies). Each is
    decided once (a question's outcome is settled under a lock), so no dedupe key is needed here."""
    for notice in notices:
        ctx.say_in(notice.group_id, notice.action, notice.key)


@command(
    "vote",
    summary=N_("cast or change your ballot while a proposal is open"),
    example=N_("vote 3 yes I can pick it up on Friday"),
    params=(Positional("number", Number(), label="#"),
            Positional("choice", Word(), label="yes|no|abstain|block|option"),
            Positional("reason", Text("reason", max_length=500), optional=True, rest=True),
            Option("receipt", Word("code")),
            Option("group", Text("group", max_length=80))),
    where="any",
    details=N_("Answer yes, no, abstain or block; for a choice poll give the option's number or name; for a ranked "
               "poll list the options best first (vote 3 2 1 4). Vote again to change your ballot. A secret ballot "
               "is cast in a private chat with me; change it with the receipt I sent you (receipt=…)."),
)
def vote(ctx: Context, number: int, choice: str, reason: str | None, receipt: str | None,
         group: str | None) -> None:
    ctx.enter_group(group)
    proposal = rules.find(ctx.session, ctx.group_id, number)
    words = f"{choice} {reason or ''}".strip()
    if proposal.kind == renewals.KIND:
        raise rules.RuleViolation(_("#{number} is a renewal review: answer with renew keep 1 3 drop 2 "
                                    "(item numbers from its message).").format(number=number))
    if proposal.secret:
        _vote_secretly(ctx, proposal, words, receipt)
        return
    if ctx.is_private:
        raise rules.RuleViolation(_("#{number} is an open vote: vote in the group, where everyone sees it.").format(
            number=number))
    if receipt is not None:
        raise rules.RuleViolation(_("#{number} is an open vote; receipts are for secret ballots.").format(
            number=number))
    if rules.is_ranked(proposal):
        _rank_openly(ctx, proposal, words)
        return
    chosen, reason = rules.resolve_choice(proposal, words)
    change = rules.cast_ballot(ctx.session, proposal, ctx.member_id, chosen, reason, ctx.now, ctx.sender_name)
    counts = rules.counts(ctx.session, proposal)
    ctx.ack(RichText(html=_voted(change).format(name=escape(ctx.sender_name), choice=b(chosen),
                                               number=proposal.number, previous=escape(change.previous or ""),
                                               tally=tally_line(counts))))
    refresh_card(ctx, proposal, counts)


def _voted(change: rules.BallotChange) -> str:
    """The vote's acknowledgement, by what the ballot did (placeholders still to fill)."""
    if change.previous is None:
        return _("🗳 {name}: {choice} on #{number} (counted). {tally}")
    if change.previous == change.current:
        return _("🗳 {name}: {choice} on #{number} (unchanged). {tally}")
    return _("🗳 {name}: {choice} on #{number} (changed from {previous}). {tally}")


TAPS = ("undo", "clear")


def _rank_openly(ctx: Context, proposal: Proposal, words: str) -> None:
    """A typed ranking replaces the ballot; a tap (+2, undo, clear) changes the ranking so far."""
    if words.startswith("+") or words.lower() in TAPS:
        current = rules.current_choice(ctx.session, proposal, ctx.member_id)
        chosen = rules.tapped_ranking(proposal, current, words.lower())
    else:
        chosen = rules.resolve_ranking(proposal, words)
    change = rules.cast_ballot(ctx.session, proposal, ctx.member_id, chosen, None, ctx.now, ctx.sender_name)
    shown = rules.describe_choice(proposal, chosen) if chosen else _("cleared")
    ranks = (_("🗳 {name} ranks #{number}: {ranking}") if change.previous or not chosen
             else _("🗳 {name} ranks #{number}: {ranking} (counted)"))
    ctx.ack(RichText(html=ranks.format(name=escape(ctx.sender_name), number=proposal.number, ranking=b(shown))))
    refresh_card(ctx, proposal, rules.counts(ctx.session, proposal))


def _vote_secretly(ctx: Context, proposal: Proposal, words: str, receipt: str | None) -> None:
    """Only in the private chat; in the group the member gets their ballot privately instead,
    and nothing of what they typed or tapped is repeated there."""
    if proposal.status != rules.OPEN:
        raise rules.RuleViolation(_("#{number} is closed; votes are no longer accepted.").format(
            number=proposal.number))
    if not ctx.is_private:
        send_private_ballot(ctx, proposal, refused=True)
        return
    ctx.sealed = True
    if rules.is_ranked(proposal):
        chosen, reason = rules.resolve_ranking(proposal, words), None
    else:
        chosen, reason = rules.resolve_choice(proposal, words)
    cast = rules.cast_secret(ctx.session, proposal, ctx.member_id, chosen, receipt, ctx.now)
    described = rules.describe_choice(proposal, chosen)
    if cast.receipt is not None:
        ctx.reply(secret_vote_receipt(proposal, described, cast.receipt, ctx.prefix))
    else:
        ctx.reply(TextBuilder().line("🔒 ", _("Your ballot on #{number} now says {choice} (it said {previous}). "
                                              "Your receipt stays the same.").format(
            number=proposal.number, choice=b(described),
            previous=escape(rules.describe_choice(proposal, cast.previous)))).build())
    if reason:
        ctx.reply(plain(_("Your reason was not kept: on a secret ballot it could tell who you are.")))
    if ctx.tapped:
        ctx.ack(plain(_("🔒 Ballot sealed; your receipt is in this chat.")))
    refresh_card(ctx, proposal, secret=secrecy.state(ctx.session, proposal, voted=cast.voted))


def send_private_ballot(ctx: Context, proposal: Proposal, refused: bool = False) -> None:
    """The secret ballot, in the member's private chat with its buttons."""
    text = private_ballot(proposal, ctx.group.title, ctx.prefix)
    if refused:
        text = join([plain(_("#{number} is a secret ballot, so nothing you send in the group counts. "
                             "Vote here instead:").format(number=proposal.number)), text])
    fallback = plain(_("#{number} is a secret ballot: I could not write to you privately. Open a chat with "
                       "me (tap 🔒 Vote privately on the proposal) and vote there.").format(number=proposal.number))
    if ctx.tapped:
        ctx.ack(plain(_("🔒 Secret ballot: I sent it to you privately.") if refused
                      else _("🔒 Your ballot is in your private chat with me.")), problem=refused)
    ctx.tell_privately(text, private_choices(proposal), fallback=fallback)


@command("proposals", summary=N_("list the open proposals"), example=N_("proposals"), aliases=("open",))
def list_open(ctx: Context) -> None:
    found = rules.open_in_group(ctx.session, ctx.group_id)
    if not found:
        ctx.reply(plain(_("No open proposals. Open one with {usage}.").format(
            usage=ctx.usage_of("propose").split(" [")[0])))
        return
    zone = ctx.settings.timezone
    text = TextBuilder().line(b(_("Open proposals ({count})").format(count=len(found))))
    voted = rules.voter_counts(ctx.session, found)
    for proposal in found:
        text.line(_("#{number} {title} — {voted} voted, closes {when} ({relative})").format(
            number=proposal.number, title=escape(proposal.title), voted=voted.get(proposal.id, 0),
            when=when(proposal.closes_at, zone), relative=relative(proposal.closes_at, ctx.now)))
    text.line(i(_("{command} shows one with its ballots.").format(command=f"{ctx.prefix}proposal <#>")))
    ctx.reply(text.build())


@command("proposal", summary=N_("show one proposal with its tally and who voted"), example=N_("proposal 3"),
         params=(Positional("number", Number(), label="#"),), aliases=("show",))
def show(ctx: Context, number: int) -> None:
    proposal = rules.find(ctx.session, ctx.group_id, number)
    text = card(ctx, proposal)
    if proposal.secret:  # who voted, never what
        voted = [escape(m.display_name) for m in secrecy.voters(ctx.session, proposal)]
        lines = [_("<b>Voted</b> ({count}): {names}").format(count=len(voted), names=", ".join(voted)) if voted
                 else i(_("No ballots yet."))]
    else:
        ballots = rules.ballots_with_voters(ctx.session, proposal)
        lines = [_("<b>Ballots</b> ({count}):").format(count=len(ballots)), *_ballot_lines(proposal, ballots)] \
            if ballots else [i(_("No ballots yet."))]
    decision = rules.decision_of(ctx.session, proposal)
    if decision is not None:
        lines.append(outcome_headline(proposal, decision))
    ctx.reply(join([text, *lines]))


def _ballot_lines(proposal: Proposal, ballots: list) -> list[str]:
    if rules.is_ranked(proposal):
        return [f"• {escape(member.display_name)}: {escape(rules.describe_choice(proposal, ballot.choice))}"
                for ballot, member in ballots[:MAX_RANKINGS_SHOWN]]
    return voters_list(ballots, list(rules.counts_template(proposal)))


@command("withdraw", summary=N_("withdraw your own open proposal"), example=N_("withdraw 3"),
         params=(Positional("number", Number(), label="#"),))
def withdraw(ctx: Context, number: int) -> None:
    proposal = rules.find(ctx.session, ctx.group_id, number)
    decision = rules.withdraw(ctx.session, proposal, ctx.member_id, ctx.now)
    ctx.reply(outcome_announcement(proposal, decision, ctx.settings.timezone))
    refresh_card(ctx, proposal)
    tell_groups(ctx, outcomes.shared_outcome(ctx.session, proposal, ctx.now, ctx.directory))  # counts as not passed


@command("close", summary=N_("close your proposal now and count the ballots"), example=N_("close 3"),
         params=(Positional("number", Number(), label="#"),),
         details=N_("The author can close early, and so can the holder of the role set as propose_role; "
                    "otherwise proposals close at their deadline."))
def close_early(ctx: Context, number: int) -> None:
    proposal = rules.find(ctx.session, ctx.group_id, number)
    members = ctx.directory.member_count(ctx.session, ctx.group)
    concluded = outcomes.close_early(ctx.session, proposal, ctx.member_id, ctx.now, members, ctx.settings,
                                     ctx.prefix, ctx.directory)
    group_id = ctx.group_id
    ctx.after_commit.append(lambda: ctx.directory.forget_settings(group_id))  # a charter may change a setting
    ctx.actions.extend(outcomes.announcement(ctx.session, proposal, concluded, ctx.group_chat or ctx.chat,
                                             ctx.settings.timezone, ctx.prefix))
    refresh_card(ctx, proposal)
    tell_groups(ctx, concluded.notices)


@command("remind", summary=N_("mention the members who have not voted yet"), example=N_("remind 3"),
         params=(Positional("number", Number(), label="#"),))
def remind(ctx: Context, number: int) -> None:
    proposal = rules.find(ctx.session, ctx.group_id, number)
    if proposal.status != rules.OPEN:
        raise rules.RuleViolation(_("#{number} is no longer open.").format(number=number))
    missing = rules.non_voters(ctx.session, proposal)
    if not missing:
        ctx.reply(plain(_("Everyone the bot knows in this group has voted on #{number}.").format(number=number)))
        return
    text = TextBuilder()
    names = ", ".join(mention(ctx.user_of(m), m.display_name) for m in missing[:MAX_MENTIONS])
    reminder = (_("⏰ {names} and {more} more: #{number} {title} closes {relative}.") if len(missing) > MAX_MENTIONS
                else _("⏰ {names}: #{number} {title} closes {relative}."))
    text.line(reminder.format(names=names, more=len(missing) - MAX_MENTIONS, number=number, title=b(proposal.title),
                              relative=relative(proposal.closes_at, ctx.now)))
    text.line(_("Vote with <code>{command}</code>").format(command=f"{escape(ctx.prefix)}vote {number} …"))
    ctx.post(text.build())


@command("decisions", summary=N_("the decision log: outcomes, dates and counts"), example=N_("decisions 10"),
         params=(Positional("count", Number(), optional=True),))
def decisions(ctx: Context, count: int | None) -> None:
    count = min(count or 10, 50)
    rows = rules.decision_log(ctx.session, ctx.group_id, count)
    if not rows:
        ctx.reply(plain(_("No decisions yet.")))
        return
    zone = ctx.settings.timezone
    text = TextBuilder().line(b(_("Decision log (latest {count})").format(count=len(rows))))
    for decision, proposal in rows:
        lapsed = (" · " + _("⌛ lapsed {date}").format(date=f"{decision.lapsed_at.astimezone(zone):%Y-%m-%d}")
                  if decision.lapsed_at else "")
        text.line(decision_line(proposal, decision, zone) + lapsed)
    coming, total = reviews.coming(ctx.session, ctx.group_id, MAX_REVIEWS_SHOWN)
    if coming:
        text.line(b(_("Coming reviews")))
        for decision, proposal in coming:
            text.line(_("🔁 Review of #{number} {title} on {when} ({relative})").format(
                number=proposal.number, title=escape(proposal.title), when=when(decision.review_at, zone),
                relative=relative(decision.review_at, ctx.now)))
        if total > len(coming):
            text.line(i(_("and {count} more").format(count=total - len(coming))))
    text.line(i(_("{command}: the whole log as a CSV or Markdown file.").format(
        command=f"{ctx.prefix}decisions export [md]")))
    ctx.reply(text.build())


EXPORT_FORMAT = OneOf("csv", "md", aliases={"markdown": "md", "spreadsheet": "csv"})


@command("decisions export", summary=N_("the whole decision log as a file: CSV, or md for Markdown"),
         example=N_("decisions export md"),
         params=(Positional("form", EXPORT_FORMAT, optional=True, label="[csv|md]"),))
def export_decisions(ctx: Context, form: str | None) -> None:
    rows = reviews.whole_log(ctx.session, ctx.group_id)
    zone = ctx.settings.timezone
    if form == "md":
        data = exports.markdown_file(rows, zone, ctx.group.title, ctx.now)
        filename, mime_type = "decision-log.md", "text/markdown"
    else:
        data, filename, mime_type = exports.csv_file(rows, zone), "decision-log.csv", "text/csv"
    caption = (ngettext("The decision log: {count} decision, oldest first.",
                        "The decision log: {count} decisions, oldest first.", len(rows)).format(count=len(rows))
               if rows else _("No decisions yet: the file has only its headings."))
    ctx.actions.append(SendFile(chat=ctx.chat, filename=filename, data=data, mime_type=mime_type,
                                caption=plain(caption)))


def message_key(proposal: Proposal) -> str:
    return f"proposal:{proposal.number}"


def card(ctx: Context, proposal: Proposal, counts: dict[str, int] | None = None,
         secret: secrecy.SecretState | None = None) -> RichText:
    return card_text(ctx.session, proposal, ctx.now, ctx.settings.timezone, ctx.prefix, counts, secret)


def card_text(session, proposal: Proposal, now: datetime, zone: ZoneInfo, prefix: str,
              counts: dict[str, int] | None = None, secret: secrecy.SecretState | None = None) -> RichText:
    """The proposal's message as it reads now (commands and the core's own card edits)."""
    if proposal.kind == renewals.KIND:
        return renewal_card(proposal, renewals.items_of(session, proposal), renewals.tally(session, proposal), now,
                            zone, prefix)
    if proposal.secret and proposal.status == rules.OPEN:  # no running tally, ever
        counts = rules.counts_template(proposal)
    counts = counts if counts is not None else rules.counts(session, proposal)
    return proposal_card(proposal, rules.author_name(session, proposal), counts, now, zone, prefix,
                         secret or secrecy.state(session, proposal), open_tie_lottery(session, proposal),
                         shared_lines(session, proposal))


def shared_lines(session, proposal: Proposal) -> list[str] | None:
    """A federation's shared question on its copy's card: where from, how decided, the delegates."""
    view = federation.shared_view(session, proposal)
    if view is None:
        return None
    return render_federation.shared_lines(proposal, view.federation, view.origin, rules.author_name(session, proposal),
                                          view.groups, view.question, view.delegates)


def card_choices(session, proposal: Proposal) -> tuple:
    """The buttons (reactions) under a proposal's message: a renewal review's keep/drop per item."""
    if proposal.kind == renewals.KIND:
        return renewal_choices(proposal, renewals.items_of(session, proposal))
    return vote_choices(proposal)


def open_tie_lottery(session, proposal: Proposal):
    """A ranked vote's tie lottery while members may still add to it (shown on its card)."""
    if not rules.is_ranked(proposal) or proposal.status != rules.OPEN:
        return None
    found = draws.tie_lottery(session, proposal)
    return found if found is not None and found.drawn_at is None else None


def refresh_card(ctx: Context, proposal: Proposal, counts: dict[str, int] | None = None,
                 secret: secrecy.SecretState | None = None) -> None:
    """Edit the proposal's message so its tally stays current (the outbox keeps only the newest edit).
    A secret ballot's card is in the group even when the ballot was cast privately."""
    keep_buttons = card_choices(ctx.session, proposal) if proposal.status == rules.OPEN else ()
    ctx.actions.append(EditMessage(chat=ctx.group_chat or ctx.chat, track=message_key(proposal),
                                   text=card(ctx, proposal, counts, secret), choices=keep_buttons))

