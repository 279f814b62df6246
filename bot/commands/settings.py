"""settings and set: a group's own rules, changed in the open."""

from __future__ import annotations

from bot.commands.args import ArgError, Text, Word
from bot.commands.base import command
from bot.commands.charter import open_charter_proposal
from bot.commands.registry import Positional
from bot.context import Context
from bot.governance import assemblies, charter, ledger, roles, setting_changes
from bot.governance import settings as group_settings
from bot.governance.proposals import RuleViolation
from bot.render.common import when
from bot.render.text import TextBuilder, b, code, escape, i


@command("settings", summary="show this group's settings", example="settings")
def show_settings(ctx: Context) -> None:
    values = ctx.settings.raw
    text = TextBuilder().line(b("Settings of this group"))
    for key, spec in group_settings.SPECS.items():
        text.line(f"{code(key)} = {b(values[key])} — {escape(spec.summary)}")
    text.line(i(f"Change one with {ctx.prefix}set <key> <value>; every change is announced and recorded."))
    ctx.reply(text.build())


@command("set", summary="change one of this group's settings", example="set vote_duration 2d",
         params=(Positional("key", Word("key")), Positional("value", Text("value", max_length=250), rest=True)),
         details="Keys: " + ", ".join(f"{k} (e.g. {s.example})" for k, s in group_settings.SPECS.items())
         + ". set protect <key> proposes to write a setting into the charter, so that it changes only by a "
           "charter amendment; set unprotect <key> proposes to take it out.")
def set_setting(ctx: Context, key: str, value: str) -> None:
    key = key.lower()
    if key in ("protect", "unprotect"):
        _propose_protection(ctx, key == "protect", value.strip().lower())
        return
    new = _canonical(ctx, key, value)
    old = ctx.settings.raw[key]
    if new == old:
        ctx.reply(TextBuilder().line(f"{code(key)} is already {b(new)}.").build())
        return
    if key == "currency" and ledger.has_entries(ctx.session, ctx.group_id):
        raise RuleViolation(f"The books already have entries in {old}; the currency stays {old}, so every "
                            "amount in the ledger means what it meant.")
    if charter.protecting(ctx.session, ctx.group_id, key) is not None:
        draft = charter.draft_setting(ctx.session, ctx.group_id, key, old, new)
        open_charter_proposal(ctx, draft, f"{code(key)} is protected by the charter, so the group decides: ")
        return
    setting_changes.change(ctx.session, ctx.directory, ctx.group, key, new, ctx.member_id, ctx.sender_name, ctx.now)
    group_id = ctx.group_id
    ctx.after_commit.append(lambda: ctx.directory.forget_settings(group_id))
    text = TextBuilder().line(f"⚙️ {escape(ctx.sender_name)} changed {code(key)}: {escape(old)} → {b(new)}")
    text.line(i("Applies to what is opened from now on; recorded in the group's settings log."))
    if key == "assembly_every" and new != "off":
        coming = assemblies.next_assembly(ctx.session, ctx.group_id, ctx.now)
        text.line(f"Next assembly: #{coming.number}, {when(coming.starts_at, ctx.settings.timezone)}." if coming
                  else f"Schedule the first one with {code(ctx.prefix + 'assembly <when> [where]')}; the next "
                       "ones follow on this rhythm.")
    ctx.post(text.build())


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
        raise RuleViolation(f"There is no setting “{key[:40]}”; the settings are {', '.join(group_settings.SPECS)}.")
    if protect:
        draft = charter.draft_protect(ctx.session, ctx.group_id, key, ctx.settings.raw[key])
    else:
        clause = charter.protecting(ctx.session, ctx.group_id, key)
        if clause is None:
            raise RuleViolation(f"The setting {key} is not protected by the charter.")
        draft = charter.draft_remove(ctx.session, ctx.group_id, clause.number)
    open_charter_proposal(ctx, draft, "")

