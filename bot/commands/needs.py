"""Mutual aid commands: need, offer, needs, claim, unclaim, met, cancel.

Sent privately with `group=<name or #>`, a need is posted without the
author's name; its author then hears about every change by direct message.
Whenever the author of an anonymous need acts, what the group sees says
"its author", never who.

With `share=federation` a need (or an offer) also goes to every other group of
the group's federation, as a copy with that group's own number. Acting on a
copy acts on the need itself; the need's own group, and the claimer's, hear of
what was done from another group.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from bot import i18n
from bot.actions import DirectMessage, SendMessage
from bot.commands.args import ArgError, ArgType, Number, OneOf, Text, Word
from bot.commands.base import command
from bot.commands.registry import Flag, Option, Positional, tokenize
from bot.context import Context, account_of
from bot.governance import federation, needs
from bot.governance.proposals import RuleViolation
from bot.i18n import N_, _
from bot.render import needs as render_needs
from bot.render.needs import cancelled, claimed, listing, met, posted, private_receipt, private_update, unclaimed
from bot.render.text import RichText, TextBuilder, code, escape, mention
from storage.models import Group, Member, Need

GROUP = Option("group", Text("group", max_length=120), label="<name or #>")
CATEGORY = Option("category", Word("category"), aliases=("cat",), label="food|housing|…")
SHARE = Option("share", OneOf("federation"))
NUMBER = Positional("number", Number())
LIST_LIMIT = 15
# Help texts are whole messages for the catalog (the common categories are needs.CATEGORIES).
CATEGORY_HELP = N_("Categories are free words; common ones: food, housing, childcare, transport, health, money, "
                   "repair, legal, other.")
NEED_HELP = N_("Categories are free words; common ones: food, housing, childcare, transport, health, money, repair, "
               "legal, other. Sent to me by direct message with group=<name or #>, it is posted without your name, "
               "and I tell you privately about every change. With share=federation it reaches every group of your "
               "group's federation too.")
OFFER_HELP = N_("Categories are free words; common ones: food, housing, childcare, transport, health, money, "
                "repair, legal, other. With share=federation it reaches every group of your group's federation too.")


class WithOffer(ArgType):
    """`with <offer#>` after a need's number."""

    metavar = "with <offer#>"

    def parse(self, raw: str) -> int:
        match = re.fullmatch(r"with\s+#?(\d{1,9})", raw.strip(), re.I)
        if not match or int(match[1]) < 1:
            raise ArgError(_("write the offer as with <offer#>, like with 3 (not “{text}”)").format(text=raw[:30]))
        return int(match[1])


@command("need", summary=N_("ask the group for help (privately: anonymous)"),
         example=N_('need "a ride to the clinic on Tuesday" category=transport urgent'),
         params=(Positional("text", Text("text", max_length=needs.MAX_TEXT), rest=True), CATEGORY, Flag("urgent"),
                 GROUP, SHARE),
         where="any", details=NEED_HELP)
def need(ctx: Context, text: str, category: str | None, urgent: bool, group: str | None, share: str | None) -> None:
    _post(ctx, needs.NEED, text, category, urgent, group, share)


@command("offer", summary=N_("offer something to the group"),
         example=N_('offer "I can fix bikes on Saturdays" category=repair'),
         params=(Positional("text", Text("text", max_length=needs.MAX_TEXT), rest=True), CATEGORY, GROUP, SHARE),
         where="any", details=OFFER_HELP)
def offer(ctx: Context, text: str, category: str | None, group: str | None, share: str | None) -> None:
    _post(ctx, needs.OFFER, text, category, False, group, share)


def _post(ctx: Context, kind: str, text: str, category: str | None, urgent: bool, group: str | None,
          share: str | None) -> None:
    ctx.enter_group(group)
    words = tokenize(text)
    if len(words) == 1:  # `need "a ride on Tuesday"`: the quotes only group the words
        text = words[0].value.strip() or text
    others = _federated_groups(ctx) if share else []
    anonymous = ctx.is_private
    author = None if anonymous else ctx.sender_name
    item = needs.post(ctx.session, group_id=ctx.group_id, author_id=ctx.member_id, kind=kind, text=text,
                      category=needs.category_of(category), urgent=urgent, anonymous=anonymous, now=ctx.now,
                      nudge_after=ctx.settings.need_nudge_after)
    for copy, other in zip(needs.share(ctx.session, item, others, ctx.now), others, strict=True):
        _announce_in(ctx, copy, lambda copy, other=other: posted(copy, author, ctx.prefix_for(other.platform),
                                                                 shared_by=federation.group_name(ctx.group)))
    shared_with = [federation.group_name(other) for other in others] if share else None
    announcement = posted(item, author, ctx.prefix, shared_with=shared_with)
    if anonymous:
        ctx.post(announcement)
        ctx.reply(private_receipt(item, ctx.group.title, ctx.prefix, shared_with))
        ctx.sealed = True  # the receipt names the author's private chat: blanked from the outbox once sent
    else:
        ctx.reply(announcement)


def _federated_groups(ctx: Context) -> list[Group]:
    """The groups a need shared with the federation goes to, besides its own."""
    if federation.federation_of(ctx.session, ctx.group_id) is None:
        raise RuleViolation(_("{group} is in no federation, so there is nobody to share with; post it without "
                              "share=federation, or start one with federation create <name>.")
                            .format(group=federation.group_name(ctx.group)))
    return federation.other_groups(ctx.session, ctx.group_id)


@command("needs", summary=N_("open needs and offers: urgent first, then oldest"), example=N_("needs food"),
         params=(Positional("category", Word("category"), optional=True), GROUP), where="any",
         aliases=("offers",))
def show_needs(ctx: Context, category: str | None, group: str | None) -> None:
    ctx.enter_group(group)
    wanted = needs.category_of(category) if category else None
    entries, total = needs.listing(ctx.session, ctx.group_id, wanted, LIST_LIMIT)
    if not total:
        nothing = _("Nothing open in {category} right now.") if wanted else _("Nothing open right now.")
        in_use = needs.categories_in_use(ctx.session, ctx.group_id) if wanted else []
        text = TextBuilder().line(escape(nothing.format(category=wanted)))
        if in_use:
            text.line(escape(_("Open categories: {categories}.").format(categories=", ".join(in_use))))
        text.line(_("Ask for help: {need} · offer something: {offer}").format(
            need=code(f"{ctx.prefix}need <text>"), offer=code(f"{ctx.prefix}offer <text>")))
        ctx.reply(text.build())
        return
    ctx.reply(listing(entries, total, wanted, ctx.now, ctx.prefix, f"#{ctx.group_id}"))


@command("claim", summary=N_("take on a need or an offer (optionally meeting a need with an offer)"),
         example=N_("claim 5 with 3"),
         params=(NUMBER, Positional("offer", WithOffer(), optional=True, rest=True, label="[with <offer#>]")),
         aliases=("take",))
def claim(ctx: Context, number: int, offer: int | None) -> None:
    item = needs.find(ctx.session, ctx.group_id, number)
    matched = needs.find(ctx.session, ctx.group_id, offer, needs.OFFER) if offer is not None else None
    needs.claim(ctx.session, item, ctx.member_id, ctx.now, matched)
    mentioned = _author_mention(ctx, item)
    # A copy's author is of another group: they hear of it there (or privately), not in this chat.
    ctx.reply(claimed(item, ctx.sender_name, matched, None if item.shared_of else mentioned))
    # Texts for another group or the author are made in their language: the callbacks run inside it.
    _announce_elsewhere(ctx, item, item.claimer_id,
                        lambda need: claimed(need, _sender_and_group(ctx), None, mentioned))
    if needs.original_of(ctx.session, item).group_id == ctx.group_id:
        _tell_author(ctx, item, lambda: _("{name} claimed it and will help. You can reach them in the group.")
                     .format(name=ctx.sender_name))
    else:
        _tell_author(ctx, item, lambda: _("{name} claimed it and will help. You can reach them in {group}.")
                     .format(name=_sender_and_group(ctx), group=federation.group_name(ctx.group)))


@command("unclaim", summary=N_("give back a need you claimed (or, as its author, release it)"),
         example=N_("unclaim 5"),
         params=(NUMBER, GROUP), where="any", aliases=("release",))
def unclaim(ctx: Context, number: int, group: str | None) -> None:
    ctx.enter_group(group)
    item = needs.find(ctx.session, ctx.group_id, number)
    claimer_id = item.claimer_id
    original = needs.original_of(ctx.session, item)
    nudge_after = ctx.directory.settings(ctx.session, original.group_id).need_nudge_after
    needs.unclaim(ctx.session, item, ctx.member_id, ctx.now, nudge_after)
    ctx.post(unclaimed(item, _public_name(ctx, item)))
    _announce_elsewhere(ctx, item, claimer_id, lambda need: unclaimed(need, _public_name(ctx, item, elsewhere=True)))
    _reply_privately(ctx, _("Released; it is open again."))
    _tell_author(ctx, item, lambda: _("the claim was released; it is open again."))


@command("met", summary=N_("mark a need met (its author or whoever claimed it)"), example=N_("met 5"),
         params=(NUMBER, GROUP), where="any", aliases=("done",))
def mark_met(ctx: Context, number: int, group: str | None) -> None:
    ctx.enter_group(group)
    item = needs.find(ctx.session, ctx.group_id, number)
    needs.mark_met(ctx.session, item, ctx.member_id, ctx.now)
    claimer = needs.name_of(ctx.session, item.claimer_id) if item.claimer_id else None
    by_author = needs.is_author(ctx.session, item, ctx.member_id)  # the author's name is never needed here
    ctx.post(met(item, None if by_author else ctx.sender_name, claimer))
    _announce_elsewhere(ctx, item, item.claimer_id,
                        lambda need: met(need, None if by_author else _sender_and_group(ctx), claimer))
    _reply_privately(ctx, _("Marked met. Thank you for telling the group."))
    _tell_author(ctx, item, lambda: _("marked met by {name}. 🌱").format(name=ctx.sender_name))


@command("cancel", summary=N_("withdraw your own need or offer"), example=N_("cancel 5"), params=(NUMBER, GROUP),
         where="any")
def cancel(ctx: Context, number: int, group: str | None) -> None:
    ctx.enter_group(group)
    item = needs.find(ctx.session, ctx.group_id, number)
    needs.cancel(ctx.session, item, ctx.member_id, ctx.now)
    ctx.post(cancelled(item))
    _announce_elsewhere(ctx, item, item.claimer_id, cancelled)
    _reply_privately(ctx, _("Withdrawn."))


# helpers ---------------------------------------------------------------------------

def _public_name(ctx: Context, item: Need, elsewhere: bool = False) -> str:
    """Who did it, as a group is told (`elsewhere`: another group than the sender's): never the name
    of an anonymous author."""
    if item.anonymous and needs.is_author(ctx.session, item, ctx.member_id):
        return _("its author")
    return _sender_and_group(ctx) if elsewhere else ctx.sender_name


def _sender_and_group(ctx: Context) -> str:
    """`bob of North`: the sender as another group of the federation is told."""
    return render_needs.from_group(ctx.sender_name, ctx.group)


def _author_mention(ctx: Context, item: Need) -> str | None:
    """The author, mentioned when someone else claims their need (never an anonymous one)."""
    if item.anonymous or needs.is_author(ctx.session, item, ctx.member_id):
        return None
    author = ctx.session.get(Member, item.author_id)
    return mention(account_of(author), author.display_name)


def _announce_elsewhere(ctx: Context, item: Need, claimer_id: int | None, make: Callable[[Need], RichText]) -> None:
    """A shared need acted on: its own group, and the group of whoever claimed it, hear of it when
    it happened in another group (each with its own number, in its own language). The other
    groups holding a copy see it change in their list, without a message each."""
    groups = {needs.original_of(ctx.session, item).group_id}
    claimer = ctx.session.get(Member, claimer_id) if claimer_id is not None else None
    if claimer is not None:
        groups.add(claimer.group_id)
    for need in needs.family(ctx.session, item):
        if need.group_id in groups and need.group_id != ctx.group_id:
            _announce_in(ctx, need, make)


def _announce_in(ctx: Context, need: Need, make: Callable[[Need], RichText]) -> None:
    """Say something in the group `need` is in (not the sender's): made in that group's language, and
    recorded with that group's id so it reaches every chat of it."""
    group = ctx.session.get(Group, need.group_id)
    with i18n.speaking(ctx.directory.settings(ctx.session, group.id).language):
        text = make(need)
    ctx.say_in(group.id, SendMessage(chat=ctx.directory.chat_of(group), text=text))


def _reply_privately(ctx: Context, text: str) -> None:
    if ctx.is_private:
        ctx.reply(TextBuilder().line(f"✔️ {text}").build())
        ctx.sealed = True  # it names the sender's private chat, maybe an anonymous author's


def _tell_author(ctx: Context, item: Need, event: Callable[[], str]) -> None:
    """The author of an anonymous need hears about every change by direct message (unless it was them),
    in their own language (`event` says what happened, made in it).

    No fallback to the group: a mention there would reveal them."""
    if not item.anonymous or needs.is_author(ctx.session, item, ctx.member_id):
        return
    original = needs.original_of(ctx.session, item)  # the need as its author knows it: number and group
    author = ctx.user_of(ctx.session.get(Member, item.author_id))
    title = ctx.session.get(Group, original.group_id).title
    with ctx.speaking_to(author):
        ctx.actions.append(DirectMessage(user=author, text=private_update(original, title, event())))
    ctx.sealed = True  # a message to the author says who they are: blanked from the outbox once sent
