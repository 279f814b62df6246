"""Mutual aid commands: need, offer, needs, claim, unclaim, met, cancel.

Sent privately with `group=<name or #>`, a need is posted without the
author's name; its author then hears about every change by direct message.
Whenever the author of an anonymous need acts, what the group sees says
"its author", never who.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from bot.actions import DirectMessage
from bot.commands.args import ArgError, ArgType, Number, Text, Word
from bot.commands.base import command
from bot.commands.registry import Flag, Option, Positional, tokenize
from bot.context import Context
from bot.governance import needs
from bot.i18n import N_, _
from bot.render.needs import cancelled, claimed, listing, met, posted, private_receipt, private_update, unclaimed
from bot.render.text import TextBuilder, code, escape, mention
from storage.models import Member, Need

GROUP = Option("group", Text("group", max_length=120), label="<name or #>")
CATEGORY = Option("category", Word("category"), aliases=("cat",), label="food|housing|…")
NUMBER = Positional("number", Number())
LIST_LIMIT = 15
# Help texts are whole messages for the catalog (the common categories are needs.CATEGORIES).
CATEGORY_HELP = N_("Categories are free words; common ones: food, housing, childcare, transport, health, money, "
                   "repair, legal, other.")
NEED_HELP = N_("Categories are free words; common ones: food, housing, childcare, transport, health, money, repair, "
               "legal, other. Sent to me by direct message with group=<name or #>, it is posted without your name, "
               "and I tell you privately about every change.")


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
                 GROUP),
         where="any", details=NEED_HELP)
def need(ctx: Context, text: str, category: str | None, urgent: bool, group: str | None) -> None:
    _post(ctx, needs.NEED, text, category, urgent, group)


@command("offer", summary=N_("offer something to the group"),
         example=N_('offer "I can fix bikes on Saturdays" category=repair'),
         params=(Positional("text", Text("text", max_length=needs.MAX_TEXT), rest=True), CATEGORY, GROUP),
         where="any", details=CATEGORY_HELP)
def offer(ctx: Context, text: str, category: str | None, group: str | None) -> None:
    _post(ctx, needs.OFFER, text, category, False, group)


def _post(ctx: Context, kind: str, text: str, category: str | None, urgent: bool, group: str | None) -> None:
    ctx.enter_group(group)
    words = tokenize(text)
    if len(words) == 1:  # `need "a ride on Tuesday"`: the quotes only group the words
        text = words[0].value.strip() or text
    anonymous = ctx.is_private
    item = needs.post(ctx.session, group_id=ctx.group_id, author_id=ctx.member_id, kind=kind, text=text,
                      category=needs.category_of(category), urgent=urgent, anonymous=anonymous, now=ctx.now,
                      nudge_after=ctx.settings.need_nudge_after)
    announcement = posted(item, None if anonymous else ctx.sender_name, ctx.prefix)
    if anonymous:
        ctx.post(announcement)
        ctx.reply(private_receipt(item, ctx.group.title, ctx.prefix))
    else:
        ctx.reply(announcement)


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
    author = ctx.session.get(Member, item.author_id)
    author_mention = None
    if not item.anonymous and author.id != ctx.member_id:
        author_mention = mention(ctx.user_of(author), author.display_name)
    ctx.reply(claimed(item, ctx.sender_name, matched, author_mention))
    _tell_author(ctx, item, lambda: _("{name} claimed it and will help. You can reach them in the group.")
                 .format(name=ctx.sender_name))


@command("unclaim", summary=N_("give back a need you claimed (or, as its author, release it)"),
         example=N_("unclaim 5"),
         params=(NUMBER, GROUP), where="any", aliases=("release",))
def unclaim(ctx: Context, number: int, group: str | None) -> None:
    ctx.enter_group(group)
    item = needs.find(ctx.session, ctx.group_id, number)
    needs.unclaim(ctx.session, item, ctx.member_id, ctx.now, ctx.settings.need_nudge_after)
    ctx.post(unclaimed(item, _public_name(ctx, item)))
    _reply_privately(ctx, _("Released; it is open again."))
    _tell_author(ctx, item, lambda: _("the claim was released; it is open again."))


@command("met", summary=N_("mark a need met (its author or whoever claimed it)"), example=N_("met 5"),
         params=(NUMBER, GROUP), where="any", aliases=("done",))
def mark_met(ctx: Context, number: int, group: str | None) -> None:
    ctx.enter_group(group)
    item = needs.find(ctx.session, ctx.group_id, number)
    needs.mark_met(ctx.session, item, ctx.member_id, ctx.now)
    claimer = needs.name_of(ctx.session, item.claimer_id) if item.claimer_id else None
    ctx.post(met(item, ctx.sender_name if ctx.member_id != item.author_id else None, claimer))
    _reply_privately(ctx, _("Marked met. Thank you for telling the group."))
    _tell_author(ctx, item, lambda: _("marked met by {name}. 🌱").format(name=ctx.sender_name))


@command("cancel", summary=N_("withdraw your own need or offer"), example=N_("cancel 5"), params=(NUMBER, GROUP),
         where="any")
def cancel(ctx: Context, number: int, group: str | None) -> None:
    ctx.enter_group(group)
    item = needs.find(ctx.session, ctx.group_id, number)
    needs.cancel(ctx.session, item, ctx.member_id, ctx.now)
    ctx.post(cancelled(item))
    _reply_privately(ctx, _("Withdrawn."))


# helpers ---------------------------------------------------------------------------

def _public_name(ctx: Context, item: Need) -> str:
    """Who did it, as the group is told: never the name of an anonymous author."""
    return _("its author") if item.anonymous and ctx.member_id == item.author_id else ctx.sender_name


def _reply_privately(ctx: Context, text: str) -> None:
    if ctx.is_private:
        ctx.reply(TextBuilder().line(f"✔️ {text}").build())


def _tell_author(ctx: Context, item: Need, event: Callable[[], str]) -> None:
    """The author of an anonymous need hears about every change by direct message (unless it was them),
    in their own language (`event` says what happened, made in it).

    No fallback to the group: a mention there would reveal them."""
    if not item.anonymous or ctx.member_id == item.author_id:
        return
    author = ctx.user_of(ctx.session.get(Member, item.author_id))
    with ctx.speaking_to(author):
        ctx.actions.append(DirectMessage(user=author, text=private_update(item, ctx.group.title, event())))
