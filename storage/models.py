"""The tables. Every row belongs to a group; rules that protect the vote
live here as constraints (one ballot per member per proposal, one processed
row per platform event, one announcement per dedupe key)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from storage.types import UTCDateTime


def _when(nullable: bool = False, index: bool = False):
    return Field(default=None, sa_column=Column(UTCDateTime(), nullable=nullable, index=index))


class Group(SQLModel, table=True):
    __tablename__ = "groups"
    __table_args__ = (UniqueConstraint("platform", "chat_id", name="uq_group_chat"),)

    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=32)
    chat_id: str = Field(max_length=255)
    title: str | None = Field(default=None, max_length=255)
    created_at: datetime = _when()
    # A platform's own head count (Telegram gives a count, not a list).
    reported_member_count: int | None = None


class Member(SQLModel, table=True):
    __tablename__ = "members"
    __table_args__ = (UniqueConstraint("group_id", "user_id", name="uq_member_user"),)

    id: int | None = Field(default=None, primary_key=True)
    group_id: int = Field(foreign_key="groups.id", index=True)
    user_id: str = Field(max_length=255)
    display_name: str = Field(max_length=255)
    active: bool = True
    joined_at: datetime = _when()


class GroupSetting(SQLModel, table=True):
    __tablename__ = "group_settings"

    group_id: int = Field(foreign_key="groups.id", primary_key=True)
    key: str = Field(primary_key=True, max_length=64)
    value: str = Field(max_length=255)


class SettingChange(SQLModel, table=True):
    """The record of every `set`: who changed what, from what, when."""

    __tablename__ = "setting_changes"

    id: int | None = Field(default=None, primary_key=True)
    group_id: int = Field(foreign_key="groups.id", index=True)
    member_id: int | None = Field(default=None, foreign_key="members.id")
    key: str = Field(max_length=64)
    old_value: str = Field(max_length=255)
    new_value: str = Field(max_length=255)
    changed_at: datetime = _when()


class Proposal(SQLModel, table=True):
    __tablename__ = "proposals"
    __table_args__ = (
        UniqueConstraint("group_id", "number", name="uq_proposal_number"),
        Index("ix_proposals_due", "status", "closes_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    group_id: int = Field(foreign_key="groups.id")
    number: int
    title: str = Field(sa_column=Column(Text, nullable=False))
    details: str | None = Field(default=None, sa_column=Column(Text))
    author_id: int = Field(foreign_key="members.id")
    rule: str = Field(max_length=16)
    quorum: str = Field(max_length=16)  # "0", "5" or "40%"
    # Choice polls: the options, one per line; None for yes/no proposals.
    options: str | None = Field(default=None, sa_column=Column(Text))
    status: str = Field(default="open", max_length=16)  # open | closed | withdrawn
    opened_at: datetime = _when()
    closes_at: datetime = _when()
    closed_at: datetime | None = _when(nullable=True)


class Ballot(SQLModel, table=True):
    __tablename__ = "ballots"
    __table_args__ = (UniqueConstraint("proposal_id", "member_id", name="uq_one_ballot_per_member"),)

    id: int | None = Field(default=None, primary_key=True)
    proposal_id: int = Field(foreign_key="proposals.id", index=True)
    member_id: int = Field(foreign_key="members.id")
    choice: str = Field(max_length=255)
    reason: str | None = Field(default=None, sa_column=Column(Text))
    cast_at: datetime = _when()
    changed_at: datetime = _when()


class Decision(SQLModel, table=True):
    """The public decision log: one row per proposal that ended."""

    __tablename__ = "decisions"

    id: int | None = Field(default=None, primary_key=True)
    group_id: int = Field(foreign_key="groups.id", index=True)
    proposal_id: int = Field(foreign_key="proposals.id", unique=True)
    outcome: str = Field(max_length=32)
    counts: str = Field(sa_column=Column(Text, nullable=False))  # JSON {"yes": 3, ...}
    voters: int
    members: int
    decided_at: datetime = _when()


class ProcessedEvent(SQLModel, table=True):
    """One row per platform event applied, so a replay is never applied twice."""

    __tablename__ = "processed_events"

    platform: str = Field(primary_key=True, max_length=32)
    event_id: str = Field(primary_key=True, max_length=255)
    processed_at: datetime = _when()


class Announcement(SQLModel, table=True):
    """The outbox: unprompted messages are recorded before they are sent.

    `dedupe_key` makes creating the same announcement twice impossible;
    `sent_at` stays empty until the adapter confirmed, so a crash in between
    sends it again once at start-up rather than never.
    """

    __tablename__ = "announcements"

    id: int | None = Field(default=None, primary_key=True)
    group_id: int | None = Field(default=None, foreign_key="groups.id", index=True)
    dedupe_key: str = Field(max_length=255, unique=True)
    action: str = Field(sa_column=Column(Text, nullable=False))  # JSON of a bot.actions.Action
    created_at: datetime = _when()
    sent_at: datetime | None = _when(nullable=True, index=True)
    attempts: int = 0


class BotMessage(SQLModel, table=True):
    """Platform ids of messages the bot posted and may edit later (live tallies)."""

    __tablename__ = "bot_messages"

    group_id: int = Field(foreign_key="groups.id", primary_key=True)
    key: str = Field(primary_key=True, max_length=64)
    message_id: str = Field(max_length=255)
