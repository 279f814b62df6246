"""Federations of groups: federation, federation create, federation code, federation join, federation leave,
and the delegate's mandate (mandate). Shared proposals are `propose … share=federation` (proposals.py)."""

from __future__ import annotations

from bot.commands.args import Text, Word
from bot.commands.base import command
from bot.commands.proposals import post_card
from bot.commands.registry import Positional
from bot.context import Context
from bot.governance import federation, roles
from bot.i18n import N_
from bot.render import federation as render
from storage.models import Federation


@command("federation", summary=N_("this group's federation: its groups, their delegates and mandates, the rule "
                                  "shared proposals pass by"),
         example=N_("federation"),
         details=N_("Federated groups stay independent: a shared proposal (propose … share=federation) is decided "
                    "in each group by its own rule and quorum, then the groups are counted. Delegates carry their "
                    "group's mandate and decide nothing."))
def show(ctx: Context) -> None:
    joined = federation.federation_of(ctx.session, ctx.group_id)
    if joined is None:
        ctx.reply(render.no_federation(ctx.prefix))
        return
    groups = [(group, ctx.directory.member_count(ctx.session, group))
              for group in federation.member_groups(ctx.session, joined.id)]
    rule = federation.rule_in_force(ctx.session, joined.id, _settings_of(ctx))
    ctx.reply(render.overview(joined, groups, federation.delegates(ctx.session, joined.id), rule, ctx.prefix))


@command("federation create", summary=N_("create a federation with this group in it, and get a code for other "
                                         "groups to join"),
         example=N_("federation create River valley commons"),
         params=(Positional("name", Text("name", max_length=federation.MAX_NAME), rest=True),))
def create(ctx: Context, name: str) -> None:
    founded = federation.found(ctx.session, name, ctx.group_id, ctx.now)
    ctx.post(render.created(founded, ctx.sender_name, _code(ctx, founded)))


@command("federation code", summary=N_("a fresh code for another group to join this group's federation"),
         example=N_("federation code"))
def fresh_code(ctx: Context) -> None:
    ctx.reply(_code(ctx, federation.require_federation(ctx.session, ctx.group_id)))


@command("federation join", summary=N_("propose that this group joins a federation, with the code a member group "
                                       "gave"),
         example=N_("federation join ABCD-EFGH-JKMN"),
         params=(Positional("code", Word("join-code"), label="join-code"),),
         details=N_("Joining is this group's decision: it opens a proposal, decided by the group's own rule and "
                    "quorum. When it passes, every group of the federation is told."))
def join_federation(ctx: Context, code: str) -> None:
    post_card(ctx, federation.open_join(ctx.session, ctx.group_id, ctx.member_id, code, ctx.settings, ctx.now))


@command("federation leave", summary=N_("propose that this group leaves its federation"),
         example=N_("federation leave"))
def leave(ctx: Context) -> None:
    post_card(ctx, federation.open_leave(ctx.session, ctx.group_id, ctx.member_id, ctx.settings, ctx.now))


@command("mandate", summary=N_("show the delegate's mandate, or propose a new one for the group to decide"),
         example=N_("mandate Support the shared tool library; no new dues without asking us"),
         params=(Positional("text", Text("mandate", max_length=federation.MAX_MANDATE), optional=True, rest=True),),
         details=N_("The group's delegate role (role add … delegate=yes) carries this mandate to the federation; it "
                    "is shown with every shared proposal. It belongs to the seat: a recalled delegate loses it."))
def mandate(ctx: Context, text: str | None) -> None:
    role = federation.require_delegate_role(ctx.session, ctx.group_id)
    if text is None:
        holders = [member.display_name for __, member in roles.holders(ctx.session, role)]
        ctx.reply(render.mandate_shown(role.name, holders, role.mandate, ctx.prefix))
        return
    post_card(ctx, federation.open_mandate(ctx.session, ctx.group_id, ctx.member_id, text, ctx.settings, ctx.now))


def _code(ctx: Context, joined: Federation):
    code = federation.new_code(ctx.session, joined, ctx.group_id, ctx.sender.platform, ctx.sender.user_id, ctx.now)
    return render.join_code(code, ctx.now + federation.CODE_LIFETIME, ctx.settings.timezone, ctx.prefix)


def _settings_of(ctx: Context):
    return lambda group_id: ctx.directory.settings(ctx.session, group_id)


