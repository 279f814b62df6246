"""link platform, unlink platform, link me: one group across Matrix and Telegram, one member across
accounts (rules in bot.governance.linking)."""

from __future__ import annotations

from bot.actions import EditMessage, SendMessage
from bot.commands.args import Word
from bot.commands.base import command
from bot.commands.proposals import card_choices, card_in, message_key
from bot.commands.registry import Positional
from bot.context import Context
from bot.governance import codes, federation, linking
from bot.governance import proposals as rules
from bot.governance.errors import RuleViolation
from bot.i18n import N_, _
from bot.render import platforms as render
from storage.models import Group

CODE = Positional("code", Word("link-code"), optional=True, label="link-code")


@command("link platform", summary=N_("make this chat and a chat on another platform one group"),
         example=N_("link platform"), params=(CODE,), gate="propose_role", task=N_("linking chats"),
         details=N_("Without a code: I send you a code privately. Typed with the code in the group chat on the other "
                    "platform, it joins the two chats into one group: proposals, votes, roles, needs, audits and "
                    "settings are shared. Two groups that both have a history are merged only when nothing "
                    "collides. unlink platform splits them again."))
def link_platform(ctx: Context, code: str | None) -> None:
    if code is None:
        given = codes.issue(ctx.session, linking.PLATFORM, ctx.sender, ctx.now, linking.CODE_LIFETIME,
                            group_id=ctx.group_id)
        ctx.sealed = True  # the code does not stay in the outbox once delivered
        ctx.tell_privately(render.chat_code(given, ctx.prefix), fallback=render.chat_code_not_sent())
        ctx.reply(render.chat_code_sent(ctx.sender_name))
        return
    row = codes.redeem(ctx.session, linking.PLATFORM, code, ctx.now)
    issuing = ctx.directory.chats_of(ctx.session, ctx.session.get(Group, row.group_id))
    group = linking.link_chats(ctx.session, ctx.directory, row, ctx.chat, ctx.now)
    ctx.group_id = group.id
    ctx.actions.append(SendMessage(chat=ctx.directory.chat_of(group),
                                   text=render.chats_linked(ctx.sender_name, ctx.chat.platform, ctx.prefix)))
    # The chats new to the group that stays: this one, or (when this chat's record stays) the code's.
    _catch_up(ctx, group, [ctx.chat] if group.id == row.group_id else issuing)
    _forget_chats(ctx, group)


def _catch_up(ctx: Context, group: Group, chats: list) -> None:
    """The group's open votes, posted in the chats that just joined it (they never had their cards)."""
    for proposal in rules.open_in_group(ctx.session, group.id):
        for chat in chats:
            ctx.say_only_in(SendMessage(chat=chat, text=card_in(ctx, group, proposal, chat),
                                        choices=card_choices(ctx.session, proposal), track=message_key(proposal)))


@command("unlink platform", summary=N_("split this group's chats on different platforms again"),
         example=N_("unlink platform"), gate="propose_role", task=N_("linking chats"),
         aliases=("unlink",))  # nothing else unlinks: a menu's bare /unlink means this
def unlink_platform(ctx: Context) -> None:
    group = ctx.group
    chats = ctx.directory.chats_of(ctx.session, group)
    split = linking.unlink(ctx.session, ctx.directory, ctx.chat, ctx.now)
    text = render.chats_unlinked(ctx.sender_name, [chat.platform for chat, __ in split])
    for chat in chats:  # said in every chat, the ones leaving too
        ctx.actions.append(SendMessage(chat=chat, text=text))
    _forget_chats(ctx, group, [chat for chat, __ in split])


def _forget_chats(ctx: Context, group: Group, extra=()) -> None:
    """Once committed, the chats' groups are read afresh: they may belong to another one now."""
    chats = [*ctx.directory.chats_of(ctx.session, group), *extra]
    directory = ctx.directory

    def forget() -> None:
        for chat in chats:
            directory.forget_chat(chat)
    ctx.after_commit.append(forget)


@command("link me", summary=N_("make your accounts on two platforms one member (in a private chat with me)"),
         example=N_("link me"), params=(CODE,), where="any",
         details=N_("Send link me privately from one account: I give you a code. Send link me <code> from your "
                    "other account. From then on they are one member in every group: one vote, whichever you vote "
                    "from. Until then, someone in both chats of a linked group counts as two members."))
def link_me(ctx: Context, code: str | None) -> None:
    if not ctx.is_private:
        raise RuleViolation(_("Send {command} to me in a private chat: the code is yours alone.").format(
            command=f"{ctx.prefix}link me"))
    ctx.sealed = True  # the code, and which accounts are one person, are nobody else's business
    if code is None:
        given = codes.issue(ctx.session, linking.ACCOUNT, ctx.sender, ctx.now, linking.CODE_LIFETIME)
        ctx.reply(render.account_code(given, ctx.prefix))
        return
    row = codes.redeem(ctx.session, linking.ACCOUNT, code, ctx.now)
    merged = linking.link_accounts(ctx.session, row, ctx.sender, ctx.now)
    groups = [ctx.session.get(Group, group_id) for group_id in merged]
    ctx.reply(render.accounts_linked([federation.group_name(group) for group in groups]))
    for group in groups:
        _refresh_open_cards(ctx, group)
    directory = ctx.directory
    ctx.after_commit.append(directory.forget_members)


def _refresh_open_cards(ctx: Context, group: Group) -> None:
    """Two ballots may have become one: the group's open cards show the tally as it is now."""
    for proposal in rules.open_in_group(ctx.session, group.id):
        ctx.say_in(group.id, EditMessage(chat=ctx.directory.chat_of(group), track=message_key(proposal),
                                         text=card_in(ctx, group, proposal),
                                         choices=card_choices(ctx.session, proposal)))
