"""Which language a message is written in: the group's `language` setting for what is said in or
for a group, and a person's own choice (`language pt`) for their private chat with the bot.

Someone who chose nothing reads their private chat in their groups' language when all their groups
speak the same one, and in the configured default otherwise.
"""

from __future__ import annotations

from contextlib import AbstractContextManager

from sqlmodel import Session

from bot import i18n
from bot.events import UserRef
from bot.groups import Directory
from storage.models import MemberLanguage


def chosen(session: Session, platform: str, user_id: str) -> str | None:
    row = session.get(MemberLanguage, (platform, user_id))
    return row.language if row is not None else None


def choose(session: Session, platform: str, user_id: str, language: str | None) -> None:
    """Keep `language` as this person's own (None: follow their groups again)."""
    row = session.get(MemberLanguage, (platform, user_id))
    if language is None:
        if row is not None:
            session.delete(row)
        return
    if row is None:
        session.add(MemberLanguage(platform=platform, user_id=user_id, language=language))
    else:
        row.language = language


def of_groups(session: Session, directory: Directory, platform: str, user_id: str) -> str | None:
    """The language all of this person's groups speak, or None when they differ (or there are none)."""
    spoken = {directory.settings(session, membership.group_id).language
              for membership in directory.memberships(session, platform, user_id)}
    return spoken.pop() if len(spoken) == 1 else None


def speaking_to(session: Session, directory: Directory, user: UserRef) -> AbstractContextManager[None]:
    """Texts made inside are for `user` alone (a direct message): in their own language if they
    chose one, else in the language already spoken (their group's)."""
    return i18n.speaking(directory.language_of(session, user.platform, user.user_id))
