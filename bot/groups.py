"""Groups and members: finding them for an event, creating them on first sight,
and reading a group's settings.

Ids are cached after commit (they never change), so the hot path of a vote
does not look up the same group and member over and over; the database stays
the only source of truth for everything that can change.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import bindparam, func, select
from sqlmodel import Session

from bot.events import ChatRef, UserRef
from bot.governance import audits
from bot.governance.settings import GroupSettings
from storage.models import BotMessage, Group, GroupChat, GroupSetting, LinkedAccount, Member, MemberLanguage

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
_groups, _members, _chats = Group.__table__.c, Member.__table__.c, GroupChat.__table__.c
_accounts = LinkedAccount.__table__
# A person's accounts: this one, and those linked to it (`link me`).
_PERSON = (select(_accounts.c.person).where(_accounts.c.platform == bindparam("platform"),
                                            _accounts.c.user_id == bindparam("user_id")).scalar_subquery())
_SAME_PERSON = select(_accounts.c.user_id).where(_accounts.c.person == _PERSON)
_MEMBERSHIPS = (select(_groups.id, _groups.title, _groups.platform, _groups.chat_id, _members.id)
                .join_from(Group.__table__, Member.__table__, _members.group_id == _groups.id)
                .where(_members.active,
                       (_members.user_id == bindparam("user_id"))
                       | _members.user_id.in_(_SAME_PERSON))
                .order_by(_groups.id))
_LINKED_MEMBER = (select(Member).where(Member.group_id == bindparam("group_id"),
                                       Member.user_id.in_(_SAME_PERSON))
                  .order_by(Member.active.desc(), Member.id))
# A chat linked to a group (`link platform`), and a group's further chats.
_LINKED_GROUP = select(_chats.group_id).where(_chats.platform == bindparam("platform"),
                                              _chats.chat_id == bindparam("chat_id"))
_FURTHER_CHATS = (select(_chats.platform, _chats.chat_id).where(_chats.group_id == bindparam("group_id"))
                  .order_by(_chats.linked_at, _chats.platform))


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
        """The group a chat belongs to: a chat linked to another group's belongs to that one (its
        own group row, if it had one before, stays behind with nothing left in it)."""
        cached = self._groups.get((chat.platform, chat.chat_id))
        if cached is not None:
            return session.get(Group, cached)
        linked = session.connection().execute(_LINKED_GROUP, {"platform": chat.platform,
                                                              "chat_id": chat.chat_id}).scalar()
        if linked is not None:
            return session.get(Group, linked)
        return self.own_group(session, chat)

    @staticmethod
    def own_group(session: Session, chat: ChatRef) -> Group | None:
        """The group row first made for this chat, linked elsewhere since or not."""
        return session.scalars(
            select(Group).where(Group.platform == chat.platform, Group.chat_id == chat.chat_id)
        ).first()

    @staticmethod
    def chats_of(session: Session, group: Group) -> list[ChatRef]:
        """Every chat of a group: its first, then those linked to it."""
        further = session.connection().execute(_FURTHER_CHATS, {"group_id": group.id})
        return [ChatRef(platform=group.platform, chat_id=group.chat_id)] + [
            ChatRef(platform=platform, chat_id=chat_id) for platform, chat_id in further]

    def forget_chat(self, chat: ChatRef) -> None:
        """After a link or unlink committed: the chat may belong to another group now."""
        group_id = self._groups.pop((chat.platform, chat.chat_id), None)
        self._settings.pop(group_id, None)

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
        member = self.find_member(session, group_id, user)
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

    def forget_members(self) -> None:
        """After accounts were linked: which member row an account speaks as may have changed."""
        self._members.clear()

    @staticmethod
    def find_member(session: Session, group_id: int, user: UserRef) -> Member | None:
        """The member an account is in a group: its own row, else the row of an account linked to it
        (`link me`: one person, one member, whichever account they speak from)."""
        linked = session.scalars(_LINKED_MEMBER, {"group_id": group_id, "platform": user.platform,
                                                  "user_id": user.user_id}).first()
        if linked is not None:  # the person's one member row (the others were retired when linked)
            return linked
        return session.scalars(
            select(Member).where(Member.group_id == group_id, Member.user_id == user.user_id)
        ).first()

    def memberships(self, session: Session, platform: str, user_id: str) -> list[Membership]:
        """The groups where this person is an active member, from any of their linked accounts (to
        act on one from a private chat). The chat named is the group's chat on this platform when
        it has one there."""
        rows = session.connection().execute(_MEMBERSHIPS, {"platform": platform, "user_id": user_id}).all()
        found = []
        for group_id, title, group_platform, chat_id, member_id in rows:
            chat = ChatRef(platform=group_platform, chat_id=chat_id)
            if group_platform != platform:
                group = session.get(Group, group_id)
                chat = next((c for c in self.chats_of(session, group) if c.platform == platform), chat)
            found.append(Membership(group_id, title, chat, member_id))
        return found

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
        """Members for quorum shares: the people we know (each once, linked accounts being one
        member), or a platform's own count if larger. Of a group in several chats, the largest
        chat's count: a head count cannot tell who is in both chats, but there are at least that many."""
        known = session.scalar(
            select(func.count()).select_from(Member).where(Member.group_id == group.id, Member.active)
        )
        linked = session.scalar(select(func.max(GroupChat.reported_member_count)).where(GroupChat.group_id == group.id))
        return max(known, group.reported_member_count or 0, linked or 0)

    def report_member_count(self, session: Session, chat: ChatRef, group: Group, count: int) -> None:
        """A platform's head count of one chat of the group."""
        if (group.platform, group.chat_id) == (chat.platform, chat.chat_id):
            group.reported_member_count = count
            return
        linked = session.get(GroupChat, (chat.platform, chat.chat_id))
        if linked is not None:
            linked.reported_member_count = count

    @staticmethod
    def active_member_ids(session: Session, group_id: int) -> list[int]:
        return list(session.scalars(select(Member.id).where(Member.group_id == group_id, Member.active)))

    # bot messages -----------------------------------------------------------

    def message_id(self, session: Session, chat: ChatRef, key: str) -> str | None:
        """The platform id of the bot's message `key` in this chat (a card posted in each of a
        linked group's chats has one id per chat)."""
        stored = self._message_key(session, chat, key)
        if stored is None:
            return None
        return session.connection().execute(_MESSAGE_ID, {"group_id": stored[0], "key": stored[1]}).scalar()

    def remember_message(self, session: Session, chat: ChatRef, key: str, message_id: str) -> None:
        stored = self._message_key(session, chat, key)
        if stored is None:
            return
        row = session.get(BotMessage, stored)
        if row is None:
            session.add(BotMessage(group_id=stored[0], key=stored[1], message_id=message_id))
        else:
            row.message_id = message_id

    def _message_key(self, session: Session, chat: ChatRef, key: str) -> tuple[int, str] | None:
        group = self.find_group(session, chat)
        if group is None:
            return None
        if (group.platform, group.chat_id) == (chat.platform, chat.chat_id):
            return group.id, key
        # A linked chat's messages: the key tagged with the chat (short: keys are at most 64 characters).
        tag = hashlib.sha256(f"{chat.platform}/{chat.chat_id}".encode()).hexdigest()[:10]
        return group.id, f"{key}@{tag}"

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
