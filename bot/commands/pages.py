"""link, link reset, calendar, calendar reset: the members' page and the calendar feeds (adapters/web).

The addresses carry an unguessable token (bot.transparency): whoever has one reads the page, so
`link reset` and `calendar reset` replace them when one leaks. A member's own feed is given only in
a private chat, and that reply is sealed (blanked in the outbox once delivered).
"""

from __future__ import annotations

from bot import transparency
from bot.commands.base import command
from bot.context import Context
from bot.governance.errors import RuleViolation
from bot.i18n import N_, _
from bot.render.text import TextBuilder, b, escape, i


def _require_web() -> None:
    if transparency.public_url() is None:
        raise RuleViolation(_("The members' page and the calendar feeds are not switched on for this bot: whoever "
                              "runs it adds a [web] section (port and public_url) to its configuration. Nothing was "
                              "changed."))


def _feed_lines(text: TextBuilder, address: str) -> None:
    text.line(_("📅 Subscribe in a calendar app: {address}").format(address=escape(transparency.webcal(address))))
    text.line(_("Or add it by its address: {address}").format(address=escape(address)))


@command("link", summary=N_("the members' page: roles, proposals, decisions, needs, audits and books"),
         example=N_("link"),
         details=N_("The page is read-only and has a private address: anyone who has it can read the page, so keep "
                    "it among members. link reset replaces it if it leaks."))
def link(ctx: Context) -> None:
    _require_web()
    token, new = transparency.page_token(ctx.session, ctx.group_id, ctx.now)
    text = TextBuilder()
    if new:
        text.line(_("🔗 I made a members' page for this group: {address}").format(
            address=escape(transparency.page_address(token))))
    else:
        text.line(_("🔗 The members' page of this group: {address}").format(
            address=escape(transparency.page_address(token))))
    text.line(_("Anyone with this address can read it (no sign-in), so share it only with members."))
    _feed_lines(text, transparency.group_feed_address(token))
    text.line(i(_("{command} replaces the address if it leaks; the old one then opens nothing.").format(
        command=f"{ctx.prefix}link reset")))
    ctx.reply(text.build())


@command("link reset", summary=N_("give the members' page a new address; the old one stops working"),
         example=N_("link reset"))
def link_reset(ctx: Context) -> None:
    _require_web()
    token, _new = transparency.page_token(ctx.session, ctx.group_id, ctx.now, reset=True)
    text = TextBuilder()
    text.line(_("🔑 {name} replaced the address of the members' page: the old one (and its calendar feed) no "
                "longer opens anything.").format(name=escape(ctx.sender_name)))
    text.line(_("The new address: {address}").format(address=escape(transparency.page_address(token))))
    _feed_lines(text, transparency.group_feed_address(token))
    ctx.post(text.build())


@command("calendar", summary=N_("calendar feeds: the group's here, your own in a private chat with me"),
         example=N_("calendar"), where="any", aliases=("ical", "feed"),
         details=N_("In the group: the group's feed (terms, vote deadlines, audits, assemblies, reviews). In a "
                    "private chat: your own feed, with your terms and your groups' deadlines. calendar reset gives "
                    "your own feed a new address."))
def calendar(ctx: Context) -> None:
    _require_web()
    if ctx.is_private:
        _personal(ctx, reset=False)
        return
    token = transparency.existing_page_token(ctx.session, ctx.group_id)
    if token is None:
        raise RuleViolation(_("This group has no members' page yet, and its calendar feed comes with it: {command} "
                              "makes both.").format(command=f"{ctx.prefix}link"))
    text = TextBuilder().line(b(_("The calendar of this group")))
    _feed_lines(text, transparency.group_feed_address(token))
    text.line(i(_("Your own feed, with your terms and the deadlines of all your groups: send me {command} in a "
                  "private chat.").format(command="calendar")))
    ctx.reply(text.build())


@command("calendar reset", summary=N_("give your own calendar feed a new address; the old one stops working"),
         example=N_("calendar reset"), where="any")
def calendar_reset(ctx: Context) -> None:
    _require_web()
    if not ctx.is_private:
        raise RuleViolation(_("calendar reset replaces your own feed's address: send it to me in a private chat. "
                              "The group's feed changes with {command}.").format(command=f"{ctx.prefix}link reset"))
    _personal(ctx, reset=True)


def _personal(ctx: Context, reset: bool) -> None:
    if not ctx.directory.memberships(ctx.session, ctx.sender.platform, ctx.sender.user_id):
        raise RuleViolation(_("I don't know you from any group yet. Say something in your group (for example "
                              "needs), then write to me again."))
    token, new = transparency.feed_token(ctx.session, ctx.sender.platform, ctx.sender.user_id, ctx.now, reset=reset)
    ctx.sealed = True  # the address opens this member's feed: not kept in the outbox once delivered
    text = TextBuilder()
    if reset:
        text.line(_("🔑 Your calendar feed has a new address; the old one no longer opens anything."))
    text.line(b(_("Your calendar: your terms, and the vote deadlines and assemblies of your groups")))
    _feed_lines(text, transparency.personal_feed_address(token))
    text.line(i(_("Keep it to yourself. calendar reset gives it a new address.")))
    ctx.reply(text.build())
