"""Tasks members stand for that are not roles: facilitating an assembly, taking its minutes,
mediating a conflict. Nobody holds them for a term; whoever stands is in the pool a lottery
draws from (bot.governance.assemblies, bot.governance.mediation).

`volunteer facilitation` reads like `volunteer treasurer`, so the words are shared with role
names: the three task names are reserved (no role may take them), and their looser aliases
(`mediator`, `notes` …) mean the task only where no role has that name.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select
from sqlmodel import Session

from bot.i18n import N_
from storage.models import Member, Role, TaskVolunteer

FACILITATION, MINUTES, MEDIATION = "facilitation", "minutes", "mediation"
TASKS = (FACILITATION, MINUTES, MEDIATION)
_ALIASES = {"facilitating": FACILITATION, "facilitate": FACILITATION, "notes": MINUTES, "note-taking": MINUTES,
            "notetaking": MINUTES, "note-taker": MINUTES, "mediator": MEDIATION, "mediators": MEDIATION,
            "mediating": MEDIATION, "mediate": MEDIATION}
# Shown to members (translate where shown: _(NAMES[task]), _(DOING[task])).
NAMES = {FACILITATION: N_("facilitation"), MINUTES: N_("minutes"), MEDIATION: N_("mediation")}
DOING = {FACILITATION: N_("facilitating assemblies"), MINUTES: N_("taking the minutes of assemblies"),
         MEDIATION: N_("mediating conflicts between members")}


def task_named(session: Session, group_id: int, word: str) -> str | None:
    """The task a word names here, or None when it names a role (or nothing we know)."""
    key = word.strip().lower()
    if key in TASKS:
        return key
    task = _ALIASES.get(key)
    if task is None:
        return None
    role = session.scalars(select(Role.id).where(Role.group_id == group_id, Role.key == key,
                                                 Role.retired_at.is_(None))).first()
    return None if role is not None else task


def is_reserved(name: str) -> bool:
    return name.strip().lower() in TASKS


def stands(session: Session, group_id: int, task: str, member_id: int) -> bool:
    return session.get(TaskVolunteer, (group_id, task, member_id)) is not None


def stand(session: Session, group_id: int, task: str, member_id: int, now: datetime) -> bool:
    """Add a member to a task's pool; False if they stood already."""
    if stands(session, group_id, task, member_id):
        return False
    session.add(TaskVolunteer(group_id=group_id, task=task, member_id=member_id, since=now))
    session.flush()
    return True


def stand_down(session: Session, group_id: int, task: str, member_id: int) -> bool:
    """Leave a task's pool; False if they were not in it."""
    gone = session.execute(delete(TaskVolunteer).where(TaskVolunteer.group_id == group_id,
                                                       TaskVolunteer.task == task,
                                                       TaskVolunteer.member_id == member_id))
    return gone.rowcount > 0


def pool(session: Session, group_id: int, task: str) -> list[Member]:
    """Active members standing for a task, in the published order (platform id: visible, chosen by nobody)."""
    return list(session.scalars(select(Member).join(TaskVolunteer, TaskVolunteer.member_id == Member.id)
                                .where(TaskVolunteer.group_id == group_id, TaskVolunteer.task == task,
                                       Member.active).order_by(Member.user_id)))
