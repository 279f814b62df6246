"""One group across platforms, one member across accounts.

- **Chats.** `link platform` gives a code in one chat; typed in a chat on another platform, it
  makes both chats one group (bot.groups finds the group for either; the outbox copies what is
  said to the group into every chat). Linking two chats that both have a group merges them only
  when nothing would collide: every group's record is one hash chain, so two groups that both
  have one cannot be merged honestly, and numbers (#3) must keep meaning one thing. Otherwise
  the link is refused with the reasons.
- **Unlinking** gives the chat that leaves a group of its own again, holding a copy of the
  shared history: the log (the same chain, so both verify), the decisions, roles, charter,
  settings and members.
- **Accounts.** `link me` joins two accounts of one person: in every group where both were
  members the older member row stays, the other is retired, and a ballot in an open vote cast
  from either is kept once (the later one).
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select, update
from sqlmodel import Session, SQLModel

from bot.events import ChatRef, UserRef, platform_kind
from bot.governance import audits, record
from bot.governance.errors import RuleViolation
from bot.groups import Directory
from bot.i18n import N_, _
from storage.models import (
    AgendaItem,
    Assembly,
    Audit,
    Ballot,
    CharterClause,
    CharterVersion,
    Decision,
    FederationGroup,
    Group,
    GroupChat,
    GroupSetting,
    LedgerCheck,
    LedgerEntry,
    LinkCode,
    LinkedAccount,
    LogEntry,
    Lottery,
    Mediation,
    Member,
    Need,
    Proposal,
    Role,
)

CODE_LIFETIME = timedelta(minutes=15)
PLATFORM, ACCOUNT = "platform", "account"  # the codes' purposes

# What is numbered per group, and how a refusal says both have the same numbers (whole sentences,
# so each translates as one).
NUMBERED: dict[type[SQLModel], str] = {
    Proposal: N_("both have proposals numbered {numbers}"),
    Need: N_("both have needs or offers numbered {numbers}"),
    Audit: N_("both have audits numbered {numbers}"),
    LedgerEntry: N_("both have ledger entries numbered {numbers}"),
    CharterClause: N_("both have charter clauses numbered {numbers}"),
    Assembly: N_("both have assemblies numbered {numbers}"),
    AgendaItem: N_("both have agenda items numbered {numbers}"),
    Mediation: N_("both have mediations numbered {numbers}"),
    Lottery: N_("both have lotteries numbered {numbers}"),
}
# A group's own bookkeeping, not its history: the absorbed group's is dropped, not moved.
_NOT_MOVED = {"groups", "group_settings", "bot_messages", "page_tokens", "outbox", "link_codes", "group_chats"}


# chats ------------------------------------------------------------------------------------------

def link_chats(session: Session, directory: Directory, code: LinkCode, chat: ChatRef,
               now: datetime) -> Group:
    """Make `chat` a chat of the group the code was given in (merging this chat's own group into it,
    or it into this one's, when nothing collides). Returns the group both chats now are."""
    issuing = session.get(Group, code.group_id)
    here = directory.find_group(session, chat)
    if here is not None and here.id == issuing.id:
        raise RuleViolation(_("This chat is already part of that group. Nothing was changed."))
    kind = platform_kind(chat.platform)
    if any(platform_kind(c.platform) == kind for c in directory.chats_of(session, issuing)):
        raise RuleViolation(_("That group has a chat on {platform} already: link platform joins chats on different "
                              "platforms, one of each. Nothing was changed.").format(platform=kind.capitalize()))
    keep = issuing
    if here is not None:
        if len(directory.chats_of(session, here)) > 1:
            raise RuleViolation(_("This chat is linked with another already; unlink platform first. Nothing was "
                                  "changed."))
        reasons = collisions(session, issuing, here)
        if reasons:
            raise RuleViolation(_("I can't merge these two groups: {reasons}. Both keep their own history. Link a "
                                  "new, empty chat instead, or federate the two groups (federation create). Nothing "
                                  "was changed.").format(reasons="; ".join(reasons)))
        # The group with a record stays (its chain cannot move onto another's); the other joins it.
        keep, other = (here, issuing) if _has_log(session, here) and not _has_log(session, issuing) else (issuing, here)
        _absorb(session, keep, other)
        for other_chat in directory.chats_of(session, other):
            session.add(GroupChat(platform=other_chat.platform, chat_id=other_chat.chat_id, group_id=keep.id,
                                  linked_at=now))
    else:
        session.add(GroupChat(platform=chat.platform, chat_id=chat.chat_id, group_id=keep.id, linked_at=now))
    session.flush()
    record.append(session, keep.id, "chats linked", {"platform": chat.platform, "chat": chat.chat_id,
                                                     "with": code.platform}, now)
    return keep


def collisions(session: Session, one: Group, other: Group) -> list[str]:
    """Why two groups cannot become one (empty: they can)."""
    reasons = []
    if _has_log(session, one) and _has_log(session, other):
        reasons.append(_("both have a group log, and each log is one chain of its own"))
    for model, sentence in NUMBERED.items():
        shared = sorted(_numbers(session, model.number, model.group_id, one.id)
                        & _numbers(session, model.number, model.group_id, other.id))
        if shared:
            reasons.append(_(sentence).format(
                numbers=", ".join(f"#{n}" for n in shared[:5]) + (" …" if len(shared) > 5 else "")))
    roles = sorted(_numbers(session, Role.key, Role.group_id, one.id) & _numbers(session, Role.key, Role.group_id,
                                                                                   other.id))
    if roles:
        reasons.append(_("both have a role called {names}").format(names=", ".join(roles[:5])))
    for model, column, sentence in ((CharterVersion, CharterVersion.version, N_("both have charter versions")),
                                    (LedgerCheck, LedgerCheck.month, N_("both have checked the books of a month"))):
        if _numbers(session, column, model.group_id, one.id) & _numbers(session, column, model.group_id, other.id):
            reasons.append(_(sentence))
    if session.get(FederationGroup, one.id) and session.get(FederationGroup, other.id):
        reasons.append(_("both belong to a federation"))
    return reasons


def _numbers(session: Session, column, group_column, group_id: int) -> set:
    return set(session.scalars(select(column).where(group_column == group_id)))


def _has_log(session: Session, group: Group) -> bool:
    return bool(session.scalar(select(func.count()).select_from(LogEntry).where(LogEntry.group_id == group.id)))


def _absorb(session: Session, keep: Group, other: Group) -> None:
    """Move everything `other` has (collisions were ruled out) into `keep`; `other` stays as an empty row."""
    connection = session.connection()
    for table in SQLModel.metadata.sorted_tables:
        if "group_id" in table.c and table.name not in _NOT_MOVED:
            connection.execute(update(table).where(table.c.group_id == other.id).values(group_id=keep.id))
    connection.execute(delete(GroupSetting.__table__).where(GroupSetting.group_id == other.id))
    session.expire_all()


def unlink(session: Session, directory: Directory, chat: ChatRef, now: datetime) -> list[tuple[ChatRef, Group]]:
    """Split the chat off its group (from the group's first chat: split the others off). Each chat
    that leaves gets a group of its own with a copy of the shared history."""
    group = directory.find_group(session, chat)
    chats = directory.chats_of(session, group)
    if len(chats) == 1:
        raise RuleViolation(_("This chat is not linked with another. Nothing was changed."))
    leaving = [chat] if chat != chats[0] else chats[1:]
    split = []
    for gone in leaving:
        session.execute(delete(GroupChat).where(GroupChat.platform == gone.platform, GroupChat.chat_id == gone.chat_id))
        own = directory.own_group(session, gone) or _new_group(session, gone, group, now)
        _copy_history(session, directory, group, own, gone.platform)
        head = record.head(session, group.id)
        body = {"platform": gone.platform, "chat": gone.chat_id, "head": head.hash, "seq": head.seq}
        record.append(session, group.id, "chats unlinked", body, now)
        record.append(session, own.id, "chats unlinked", body, now)
        split.append((gone, own))
    return split


def _new_group(session: Session, chat: ChatRef, shared: Group, now: datetime) -> Group:
    group = Group(platform=chat.platform, chat_id=chat.chat_id, title=shared.title, created_at=now)
    session.add(group)
    session.flush()
    return group


def _copy_history(session: Session, directory: Directory, shared: Group, own: Group, platform: str) -> None:
    """The shared history, copied to the group a chat takes with it: settings, members (those of its
    platform active), roles, charter, decided proposals with their decisions, and the log itself."""
    for setting in session.scalars(select(GroupSetting).where(GroupSetting.group_id == shared.id)):
        session.merge(GroupSetting(group_id=own.id, key=setting.key, value=setting.value))
    members = _copy_rows(session, Member, Member.group_id == shared.id, own.id,
                         lambda row: {"active": row.active and row.platform == platform})
    roles = _copy_rows(session, Role, Role.group_id == shared.id, own.id, lambda row: {})
    _copy_rows(session, CharterClause, CharterClause.group_id == shared.id, own.id, lambda row: {})
    proposals: dict[int, int] = {}
    decided = (Proposal.group_id == shared.id) & (Proposal.status != "open")
    for old in session.scalars(select(Proposal).where(decided).order_by(Proposal.id)).all():
        copy = Proposal(**(old.model_dump(exclude={"id"}) | {
            "group_id": own.id, "author_id": members[old.author_id], "role_id": roles.get(old.role_id),
            "subject_member_id": members.get(old.subject_member_id), "review_of": proposals.get(old.review_of),
            "question_id": None, "federation_id": None}))
        session.add(copy)
        session.flush()
        proposals[old.id] = copy.id
    for decision in session.scalars(select(Decision).where(Decision.group_id == shared.id)).all():
        if decision.proposal_id in proposals:
            session.add(Decision(**(decision.model_dump(exclude={"id"}) | {
                "group_id": own.id, "proposal_id": proposals[decision.proposal_id]})))
    for entry in session.scalars(select(LogEntry).where(LogEntry.group_id == shared.id).order_by(LogEntry.seq)):
        session.add(LogEntry(**(entry.model_dump() | {"group_id": own.id})))
    session.flush()
    audits.schedule(session, own, directory.read_settings(session, own.id), since=own.created_at)


def _copy_rows(session: Session, model: type[SQLModel], where, group_id: int, changes) -> dict[int, int]:
    """Copies of a group's rows for another group; returns old id → new id."""
    ids = {}
    for row in session.scalars(select(model).where(where).order_by(model.id)).all():
        copy = model(**(row.model_dump(exclude={"id"}) | {"group_id": group_id} | changes(row)))
        session.add(copy)
        session.flush()
        ids[row.id] = copy.id
    return ids


# accounts ---------------------------------------------------------------------------------------

def person_of(session: Session, user: UserRef) -> str | None:
    row = session.get(LinkedAccount, (user.platform, user.user_id))
    return row.person if row else None


def link_accounts(session: Session, code: LinkCode, user: UserRef, now: datetime) -> list[int]:
    """Make the code's account and `user` one person; returns the groups where two member rows became one."""
    issuer = UserRef(platform=code.platform, user_id=code.user_id)
    if issuer == user:
        raise RuleViolation(_("That code is for your other account: send it to me from there. Nothing was changed."))
    mine, theirs = person_of(session, issuer), person_of(session, user)
    if mine is not None and mine == theirs:
        raise RuleViolation(_("These two accounts are linked already. Nothing was changed."))
    person = mine or theirs or secrets.token_hex(8)
    if mine and theirs:  # each was linked to others before: all of them become one person
        session.execute(update(LinkedAccount).where(LinkedAccount.person == theirs).values(person=person))
    for account in (issuer, user):
        row = session.get(LinkedAccount, (account.platform, account.user_id))
        if row is None:
            session.add(LinkedAccount(platform=account.platform, user_id=account.user_id, person=person,
                                      linked_at=now))
        else:
            row.person = person
    session.flush()
    return _merge_members(session, person, now)


def _merge_members(session: Session, person: str, now: datetime) -> list[int]:
    accounts = select(LinkedAccount.user_id).where(LinkedAccount.person == person)
    rows = session.scalars(select(Member).where(Member.user_id.in_(accounts)).order_by(Member.group_id, Member.id))
    by_group: dict[int, list[Member]] = {}
    for member in rows:
        by_group.setdefault(member.group_id, []).append(member)
    merged = []
    for group_id, members in by_group.items():
        if len(members) < 2:
            continue
        keep, *others = members
        keep.active = keep.active or any(m.active for m in others)
        for other in others:
            _merge_ballots(session, keep, other)
            other.active = False
        record.append(session, group_id, "accounts linked", {"member": keep.id, "retired": [m.id for m in others]},
                      now)
        merged.append(group_id)
    return merged


def _merge_ballots(session: Session, keep: Member, other: Member) -> None:
    """In each open vote both accounts voted in, the later ballot stays, as the member's one ballot."""
    open_votes = select(Proposal.id).where(Proposal.status == "open", Proposal.secret.is_(False))
    for ballot in session.scalars(select(Ballot).where(Ballot.member_id == other.id,
                                                       Ballot.proposal_id.in_(open_votes))).all():
        mine = session.scalars(select(Ballot).where(Ballot.member_id == keep.id,
                                                    Ballot.proposal_id == ballot.proposal_id)).first()
        if mine is not None and mine.changed_at >= ballot.changed_at:
            session.delete(ballot)
            continue
        if mine is not None:
            session.delete(mine)
            session.flush()
        ballot.member_id = keep.id
    session.flush()
