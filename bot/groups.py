"""Groups and members: finding them for an event, creating them on first sight,
and reading a group's settings.

Ids are cached after commit (they never change), so the hot path of a vote
does not look up the same group and member over and over; the database stays
the only source of truth for everything that can change.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import bindparam, func, select
from sqlmodel import Session

from bot.events import ChatRef, UserRef
from bot.governance import audits
from bot.governance.settings import GroupSettings
from storage.models import BotMessage, Group, GroupSetting, Member, MemberLanguage

MAX_NAME = 120
_messages = BotMessage.__table__.c
_MESSAGE_ID = select(_messages.message_id).where(_messages.group_id == bindparam("group_id"),
                                                 _messages.key == bindparam("key"))


def clean_name(name: str) -> str:
    """Display names are labels: trimmed, single-line, bounded."""
    name = " ".join(name.split())[:MAX_NAME]
    return name or "someone"


class Membership(NamedTuple):
    group_id: int
    title: str | None
    chat: ChatRef
    member_id: int


# Built once, on the tables (no ORM objects): every command sent privately (a secret vote) runs it.
_groups, _members = Group.__table__.c, Member.__table__.c
_MEMBERSHIPS = (select(_groups.id, _groups.title, _groups.platform, _groups.chat_id, _members.id)
                .join_from(Group.__table__, Member.__table__, _members.group_id == _groups.id)
                .where(_groups.platform == bindparam("platform"), _members.user_id == bindparam("user_id"),
                       _members.active).order_by(_groups.id))


_SETTINGS = select(GroupSetting.key, GroupSetting.value).where(GroupSetting.group_id == bindparam("group_id"))


class Directory:
    def __init__(self, defaults: Mapping[str, str]) -> None:
        self.defaults = dict(defaults)
        self._groups: dict[tuple[str, str], int] = {}
        self._titles: dict[int, str | None] = {}
        self._members: dict[tuple[int, str], tuple[int, str, bool]] = {}
        self._settings: dict[int, GroupSettings] = {}
        self._languages: dict[tuple[str, str], str | None] = {}  # a person's own language, or None

    # groups -----------------------------------------------------------------

    def find_group(self, session: Session, chat: ChatRef) -> Group | None:
        cached = self._groups.get((chat.platform, chat.chat_id))
        if cached is not None:
            return session.get(Group, cached)
        group = session.scalars(
            select(Group).where(Group.platform == chat.platform, Group.chat_id == chat.chat_id)
        ).first()
        return group

    def group_id_for_event(self, session: Session, chat: ChatRef, title: str | None, now: datetime,
                           after_commit: Callable[[Callable[[], None]], None]) -> int:
        """The id of the group a message came from, creating the group on first sight.

        Loads the row only when it is new or its title changed."""
        title = title and clean_name(title)
        cached = self._groups.get((chat.platform, chat.chat_id))
        if cached is not None and (not title or self._titles.get(cached) == title):
            return cached
        group = self.group_for(session, chat, title, now)
        key, group_id = (chat.platform, chat.chat_id), group.id
        after_commit(lambda: (self._groups.__setitem__(key, group_id),
                              self._titles.__setitem__(group_id, group.title)))
        return group_id

    def group_for(self, session: Session, chat: ChatRef, title: str | None, now: datetime) -> Group:
        group = self.find_group(session, chat)
        if group is None:
            group = Group(platform=chat.platform, chat_id=chat.chat_id, title=title and clean_name(title),
                          created_at=now)
            session.add(group)
            session.flush()
            audits.schedule(session, group, self.settings(session, group.id), since=now)
        elif title and group.title != clean_name(title):
            group.title = clean_name(title)
        return group

    def group_id_for(self, session: Session, chat: ChatRef) -> int | None:
        cached = self._groups.get((chat.platform, chat.chat_id))
        if cached is not None:
            return cached
        group = self.find_group(session, chat)
        return group.id if group else None

    @staticmethod
    def chat_of(group: Group) -> ChatRef:
        return ChatRef(platform=group.platform, chat_id=group.chat_id)

    # members ----------------------------------------------------------------

    def member_for(self, session: Session, group_id: int, user: UserRef, name: str, now: datetime,
                   after_commit: Callable[[Callable[[], None]], None]) -> Member | int:
        """The member row for a user who just spoke (created or re-activated as needed).

        Returns only the id when the cache proves nothing changed, to spare a query."""
        name = clean_name(name)
        key = (group_id, user.user_id)
        cached = self._members.get(key)
        if cached is not None and cached[1] == name and cached[2]:
            return cached[0]
        member = session.scalars(
            select(Member).where(Member.group_id == group_id, Member.user_id == user.user_id)
        ).first()
        if member is None:
            member = Member(group_id=group_id, user_id=user.user_id, platform=user.platform, display_name=name,
                            joined_at=now)
            session.add(member)
            session.flush()
        else:
            member.display_name = name
            member.active = True
        entry = (member.id, name, True)
        after_commit(lambda: self._members.__setitem__(key, entry))
        return member

    def forget_member(self, group_id: int, user_id: str) -> None:
        self._members.pop((group_id, user_id), None)

    @staticmethod
    def find_member(session: Session, group_id: int, user_id: str) -> Member | None:
        return session.scalars(
            select(Member).where(Member.group_id == group_id, Member.user_id == user_id)
        ).first()

    @staticmethod
    def memberships(session: Session, platform: str, user_id: str) -> list[Membership]:
        """The groups where this user is an active member (to act on one from a private chat)."""
        rows = session.connection().execute(_MEMBERSHIPS, {"platform": platform, "user_id": user_id})
        return [Membership(group_id, title, ChatRef(platform=group_platform, chat_id=chat_id), member_id)
                for group_id, title, group_platform, chat_id, member_id in rows]

    @staticmethod
    def resolve_mention(session: Session, group_id: int, text: str) -> Member | None:
        """The member a mention names: by platform id first, then by a unique display name."""
        bare = text.strip().lstrip("@")
        for candidate in (text.strip(), bare):
            found = session.scalars(
                select(Member).where(Member.group_id == group_id, Member.user_id == candidate)
            ).first()
            if found is not None:
                return found
        named = session.scalars(
            select(Member).where(Member.group_id == group_id, func.lower(Member.display_name) == bare.lower())
        ).all()
        return named[0] if len(named) == 1 else None

    @staticmethod
    def member_count(session: Session, group: Group) -> int:
        """Members for quorum shares: the people we know, or the platform's count if larger."""
        known = session.scalar(
            select(func.count()).select_from(Member).where(Member.group_id == group.id, Member.active)
        )
        return max(known, group.reported_member_count or 0)

    @staticmethod
    def active_member_ids(session: Session, group_id: int) -> list[int]:
        return list(session.scalars(select(Member.id).where(Member.group_id == group_id, Member.active)))

    # bot messages -----------------------------------------------------------

    @staticmethod
    def message_id(session: Session, group_id: int, key: str) -> str | None:
        return session.connection().execute(_MESSAGE_ID, {"group_id": group_id, "key": key}).scalar()

    @staticmethod
    def remember_message(session: Session, group_id: int, key: str, message_id: str) -> None:
        row = session.get(BotMessage, (group_id, key))
        if row is None:
            session.add(BotMessage(group_id=group_id, key=key, message_id=message_id))
        else:
            row.message_id = message_id

    # settings ---------------------------------------------------------------

    def settings(self, session: Session, group_id: int) -> GroupSettings:
        cached = self._settings.get(group_id)
        if cached is not None:
            return cached
        settings = self._settings[group_id] = self.read_settings(session, group_id)
        return settings

    def read_settings(self, session: Session, group_id: int) -> GroupSettings:
        """The group's settings read afresh, leaving the cache alone (for a thread other than the
        core's: what it cached just after a `set` committed would stay stale for the core)."""
        rows = session.connection().execute(_SETTINGS, {"group_id": group_id}).all()
        return GroupSettings.from_values(self.defaults | dict(rows))

    def forget_settings(self, group_id: int) -> None:
        self._settings.pop(group_id, None)

    # a person's own language (for their private chat) -----------------------

    def language_of(self, session: Session, platform: str, user_id: str) -> str | None:
        key = (platform, user_id)
        if key not in self._languages:
            row = session.get(MemberLanguage, key)
            self._languages[key] = row.language if row is not None else None
        return self._languages[key]

    def remember_language(self, platform: str, user_id: str, language: str | None) -> None:
        """After `language` committed: the new choice (None: follows their groups)."""
        self._languages[(platform, user_id)] = language

    def reset(self) -> None:
        """Drop every cached id (after a failed transaction we cannot tell what stuck)."""
        self._groups.clear()
        self._titles.clear()
        self._members.clear()
        self._settings.clear()
        self._languages.clear()
