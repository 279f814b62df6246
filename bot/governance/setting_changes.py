"""Changing one of a group's settings: the row, the record of the change, the group log, and
whatever the new value moves (warnings, the digest and audit dates, the renewal date).

`set` calls it directly; a charter proposal that changes a protected setting calls it when it
passes. The caller announces the change and forgets the cached settings after the commit.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from bot.governance import assemblies, audits, record, renewals, roles
from storage.models import Group, GroupSetting, SettingChange

RESCHEDULES_GROUP = ("digest", "timezone", "audit_every")  # keys that move the digest or the next audit


def change(session: Session, directory, group: Group, key: str, new: str, member_id: int | None,
           member_name: str, now: datetime) -> str:
    """Store `key = new` (canonical) for the group and apply what it moves; returns the old value."""
    old = directory.settings(session, group.id).raw[key]
    row = session.get(GroupSetting, (group.id, key))
    if row is None:
        session.add(GroupSetting(group_id=group.id, key=key, value=new))
    else:
        row.value = new
    session.add(SettingChange(group_id=group.id, member_id=member_id, key=key, old_value=old, new_value=new,
                              changed_at=now))
    record.append(session, group.id, "setting.changed",
                  {"key": key, "old": old, "new": new, "member_id": member_id, "member": member_name}, now)
    session.flush()
    directory.forget_settings(group.id)
    settings = directory.settings(session, group.id)
    if key == "mandate_warnings":
        roles.reschedule_warnings(session, group.id, settings.mandate_warnings, now)
    if key in RESCHEDULES_GROUP:
        audits.schedule(session, group, settings, since=now)
    if key == "renewal_every":
        renewals.schedule(session, group, settings, now)
    if key == "assembly_reminders":
        assemblies.reschedule(session, group.id, settings, now)
    if key == "assembly_every":
        assemblies.keep_rhythm(session, group.id, settings, now)
    return old
