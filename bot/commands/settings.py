"""settings and set: a group's own rules, changed in the open."""

from __future__ import annotations

from bot import i18n
from bot.commands.args import ArgError, Text, Word
from bot.commands.base import command
from bot.commands.charter import open_charter_proposal
from bot.commands.registry import Positional
from bot.context import Context
from bot.governance import assemblies, charter, ledger, roles, setting_changes
from bot.governance import settings as group_settings
from bot.governance.proposals import RuleViolation
from bot.i18n import N_, _
from bot.render.common import when
from bot.render.text import TextBuilder, b, code, escape, i


@command("settings", summary=N_("show this group's settings"), example=N_("settings"))
def show_settings(ctx: Context) -> None:
    values = ctx.settings.raw
    text = TextBuilder().line(b(_("Settings of this group")))
    for key, spec in group_settings.SPECS.items():
        text.line(f"{code(key)} = {b(values[key])} — {escape(_(spec.summary))}")
    text.line(i(_("Change one with {command}; every change is announced and recorded.").format(
        command=f"{ctx.prefix}set <key> <value>")))
    ctx.reply(text.build())


@command("set", summary=N_("change one of this group's settings"), example=N_("set vote_duration 2d"),
         params=(Positional("key", Word("key")), Positional("value", Text("value", max_length=250), rest=True)),
         details=N_("settings lists every key, what it means and its value now. set protect <key> proposes to "
                    "write a setting into the charter, so that it changes only by a charter amendment; set "
                    "unprotect <key> proposes to take it out."))
def set_setting(ctx: Context, key: str, value: str) -> None:
    key = key.lower()
    if key in ("protect", "unprotect"):
        _propose_protection(ctx, key == "protect", value.strip().lower())
        return
    new = _canonical(ctx, key, value)
    old = ctx.settings.raw[key]
    if new == old:
        ctx.reply(TextBuilder().line(_("{key} is already {value}.").format(key=code(key), value=b(new))).build())
        return
    if key == "currency" and ledger.has_entries(ctx.session, ctx.group_id):
        raise RuleViolation(_("The books already have entries in {currency}; the currency stays {currency}, so "
                              "every amount in the ledger means what it meant.").format(currency=old))
    if charter.protecting(ctx.session, ctx.group_id, key) is not None:
        draft = charter.draft_setting(ctx.session, ctx.group_id, key, old, new)
        open_charter_proposal(ctx, draft, _("{key} is protected by the charter, so the group decides:").format(
            key=code(key)) + " ")
        return
    setting_changes.change(ctx.session, ctx.directory, ctx.group, key, new, ctx.member_id, ctx.sender_name, ctx.now)
    group_id = ctx.group_id
    ctx.after_commit.append(lambda: ctx.directory.forget_settings(group_id))
    # A new language is announced in that language: the first thing the group reads in it.
    with i18n.speaking(new if key == "language" else None):
        text = TextBuilder().line(_("⚙️ {member} changed {key}: {old} → {new}").format(
            member=escape(ctx.sender_name), key=code(key), old=escape(old), new=b(new)))
        text.line(i(_("Applies to what is opened from now on; recorded in the group's settings log.")))
        if key == "assembly_every" and new != "off":
            text.line(_next_assembly(ctx))
        ctx.post(text.build())


def _next_assembly(ctx: Context) -> str:
    coming = assemblies.next_assembly(ctx.session, ctx.group_id, ctx.now)
    if coming:
        return _("Next assembly: #{number}, {date}.").format(number=coming.number,
                                                             date=when(coming.starts_at, ctx.settings.timezone))
    return _("Schedule the first one with {command}; the next ones follow on this rhythm.").format(
        command=code(ctx.prefix + "assembly <when> [where]"))


def _canonical(ctx: Context, key: str, value: str) -> str:
    try:
        new = group_settings.canonical(key, value)
    except ArgError as error:
        raise RuleViolation(str(error)[:1].upper() + str(error)[1:] + ".") from None
    if group_settings.SPECS[key].names_role and new != "anyone":
        new = roles.find_role(ctx.session, ctx.group_id, new).key
    return new


def _propose_protection(ctx: Context, protect: bool, key: str) -> None:
    if key not in group_settings.SPECS:
        raise RuleViolation(_("There is no setting “{key}”; the settings are {keys}.").format(
            key=key[:40], keys=", ".join(group_settings.SPECS)))
    if protect:
        draft = charter.draft_protect(ctx.session, ctx.group_id, key, ctx.settings.raw[key])
    else:
        clause = charter.protecting(ctx.session, ctx.group_id, key)
        if clause is None:
            raise RuleViolation(_("The setting {key} is not protected by the charter.").format(key=key))
        draft = charter.draft_remove(ctx.session, ctx.group_id, clause.number)
    open_charter_proposal(ctx, draft, "")

