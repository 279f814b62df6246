"""settings and set: a group's own rules, changed in the open."""

from __future__ import annotations

from bot.commands.args import ArgError, Text, Word
from bot.commands.base import command
from bot.commands.registry import Positional
from bot.context import Context
from bot.governance import audits, record, roles
from bot.governance import settings as group_settings
from bot.governance.proposals import RuleViolation
from bot.render.text import TextBuilder, b, code, escape, i
from storage.models import GroupSetting, SettingChange

RESCHEDULES_GROUP = ("digest", "timezone", "audit_every")  # keys that move the digest or the next audit


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
         details="Keys: " + ", ".join(f"{k} (e.g. {s.example})" for k, s in group_settings.SPECS.items()))
def set_setting(ctx: Context, key: str, value: str) -> None:
    key = key.lower()
    try:
        new = group_settings.canonical(key, value)
    except ArgError as error:
        raise RuleViolation(str(error)[:1].upper() + str(error)[1:] + ".") from None
    if group_settings.SPECS[key].names_role and new != "anyone":
        new = roles.find_role(ctx.session, ctx.group_id, new).key
    old = ctx.settings.raw[key]
    if new == old:
        ctx.reply(TextBuilder().line(f"{code(key)} is already {b(new)}.").build())
        return
    row = ctx.session.get(GroupSetting, (ctx.group_id, key))
    if row is None:
        ctx.session.add(GroupSetting(group_id=ctx.group_id, key=key, value=new))
    else:
        row.value = new
    ctx.session.add(SettingChange(group_id=ctx.group_id, member_id=ctx.member_id, key=key, old_value=old,
                                  new_value=new, changed_at=ctx.now))
    record.append(ctx.session, ctx.group_id, "setting.changed",
                  {"key": key, "old": old, "new": new, "member_id": ctx.member_id, "member": ctx.sender_name}, ctx.now)
    group_id = ctx.group_id
    ctx.directory.forget_settings(group_id)
    if key == "mandate_warnings":
        roles.reschedule_warnings(ctx.session, group_id, ctx.settings.mandate_warnings, ctx.now)
    if key in RESCHEDULES_GROUP:
        audits.schedule(ctx.session, ctx.group, ctx.settings, since=ctx.now)
    ctx.after_commit.append(lambda: ctx.directory.forget_settings(group_id))
    ctx.post(TextBuilder().line(
        f"⚙️ {escape(ctx.sender_name)} changed {code(key)}: {escape(old)} → {b(new)}"
    ).line(i("Applies to what is opened from now on; recorded in the group's settings log.")).build())
