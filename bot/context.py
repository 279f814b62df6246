"""What a command handler works with: the transaction, the time, who spoke
where, and a list to put its replies in."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime

from sqlmodel import Session

from bot import languages
from bot.actions import Acknowledge, Action, Choice, DirectMessage, SendMessage
from bot.commands.registry import Registry
from bot.events import ChatRef, UserRef
from bot.governance.proposals import RuleViolation
from bot.governance.settings import GroupSettings
from bot.groups import Directory, Membership
from bot.i18n import _
from bot.render.text import RichText
from storage.models import Group, Member


@dataclass
class Context:
    session: Session
    now: datetime
    chat: ChatRef
    sender: UserRef
    sender_name: str
    event_id: str
    is_private: bool
    prefix: str
    registry: Registry
    directory: Directory
    group_id: int | None = None  # None in a private chat
    member_id: int | None = None
    tapped: bool = False  # a button/poll/reaction rather than a typed command
    tapped_message: str | None = None  # the platform id of the message whose button was tapped
    # The replies say what only this member may know (a secret ballot): the outbox blanks
    # them once delivered.
    sealed: bool = False
    # A command sent privately but acting on a group (`group=`): announcements go there.
    group_chat: ChatRef | None = None
    actions: list[Action] = field(default_factory=list)
    # What is said in other groups (a federation's): (group id, action, dedupe key or None), recorded
    # under that group's id, so it reaches every chat of it, and sent with this command's replies.
    # Group id None: said in the action's own chat only.
    elsewhere: list[tuple[int | None, Action, str | None]] = field(default_factory=list)
    after_commit: list[Callable[[], None]] = field(default_factory=list)
    prefixes: Mapping[str, str] = field(default_factory=dict)  # how each platform writes commands

    @property
    def group(self) -> Group:
        group = self.session.get(Group, self.group_id)
        assert group is not None
        return group

    @property
    def settings(self) -> GroupSettings:
        return self.directory.settings(self.session, self.group_id)

    def member(self) -> Member:
        member = self.session.get(Member, self.member_id)
        assert member is not None
        return member

    def user_of(self, member: Member) -> UserRef:
        """The account a member is reached at (in a group linked across platforms, maybe not this chat's)."""
        return account_of(member)

    def reply(self, text: RichText, choices: tuple[Choice, ...] = (), track: str | None = None,
              choices_do: str = "vote") -> None:
        self.actions.append(SendMessage(chat=self.chat, text=text, reply_to=self.event_id, choices=choices,
                                        track=track, choices_do=choices_do))

    def post(self, text: RichText, choices: tuple[Choice, ...] = (), track: str | None = None) -> None:
        """A message to the whole group, not as a reply (announcements)."""
        self.actions.append(SendMessage(chat=self.group_chat or self.chat, text=text, choices=choices, track=track))

    def ack(self, text: RichText, problem: bool = False) -> None:
        self.actions.append(Acknowledge(chat=self.chat, event_id=self.event_id, text=text, problem=problem))

    def tell_privately(self, text: RichText, choices: tuple[Choice, ...] = (),
                       fallback: RichText | None = None) -> None:
        """A direct message to the sender; if the platform cannot deliver it, `fallback` (which
        must say nothing private) goes to the group, mentioning them."""
        self.actions.append(DirectMessage(user=self.sender, text=text, choices=choices,
                                          fallback_chat=(self.group_chat or self.chat) if fallback else None,
                                          fallback_text=fallback))

    def speaking_to(self, user: UserRef) -> AbstractContextManager[None]:
        """`with ctx.speaking_to(user):` a direct message to `user` is written in their own language."""
        return languages.speaking_to(self.session, self.directory, user)

    def enter_group(self, named: str | None) -> None:
        """Make a private command act on one of the sender's groups (`group=<name or #>`).

        Only groups where the sender is an active member are considered, so this
        reveals nothing about groups they are not in."""
        if not self.is_private:
            # A button's payload names its group (#id); typed here, group= is a mistake.
            if named is not None and not (self.tapped and named.strip().lstrip("#") == str(self.group_id)):
                raise RuleViolation(_("group= is for direct messages; here you are in the group already."))
            return
        mine = everywhere = self.directory.memberships(self.session, self.chat.platform, self.sender.user_id)
        if not mine:
            raise RuleViolation(_("I don't know you from any group yet. Say something in your group (for example "
                                  "needs), then write to me again."))
        if named is not None:
            wanted = named.strip()
            mine = memberships_named(mine, wanted)
            if not mine:
                raise RuleViolation(_("You are not in a group called “{name}” that I know. Yours: {groups}.").format(
                    name=wanted[:40], groups=_group_list(everywhere)))
        if len(mine) > 1:
            raise RuleViolation(_("Which group? Add group=<name or #>: {groups}.").format(
                groups=_group_list(everywhere)))
        self.group_id, self.member_id, self.group_chat = mine[0].group_id, mine[0].member_id, mine[0].chat

    def say_in(self, group_id: int, action: Action, key: str | None = None) -> None:
        """Say something in another group (`key`: at most once, ever)."""
        self.elsewhere.append((group_id, action, key))

    def say_only_in(self, action: Action) -> None:
        """Say something in the action's chat alone, even in a group that has several (catching one chat up)."""
        self.elsewhere.append((None, action, None))

    def prefix_for(self, platform: str) -> str:
        """How commands are written on a platform (a federation's groups may be on another)."""
        return self.prefix if platform == self.chat.platform else self.prefixes.get(platform, "!")

    def usage_of(self, name: str) -> str:
        command = self.registry.find(name)
        return command.usage(self.prefix) if command else f"{self.prefix}{name}"


def account_of(member: Member) -> UserRef:
    return UserRef(platform=member.platform, user_id=member.user_id)


def memberships_named(memberships: list[Membership], wanted: str) -> list[Membership]:
    """The memberships in the group `group=` names: by its number (#3) or its title."""
    wanted = wanted.strip()
    return [m for m in memberships
            if wanted.lstrip("#") == str(m.group_id) or (m.title or "").casefold() == wanted.casefold()]


def _group_list(memberships: list[Membership]) -> str:
    return ", ".join(f"{m.title or _('untitled')} (#{m.group_id})" for m in memberships)
