"""The tables. Every row belongs to a group; rules that protect the vote
live here as constraints (one ballot per member per proposal, one processed
row per platform event, one announcement per dedupe key)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column, Index, Text, UniqueConstraint, text
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
    # When the weekly needs digest and the next sovereignty audit fall due
    # (None: digest off / not scheduled); kept here so "what is due" is an index lookup.
    next_digest_at: datetime | None = _when(nullable=True, index=True)
    next_audit_at: datetime | None = _when(nullable=True, index=True)
    # The monthly ledger statement (start of each month, group time zone) and the renewal review
    # (`renewal_every`); None: not scheduled yet / renewal off.
    next_statement_at: datetime | None = _when(nullable=True, index=True)
    next_renewal_at: datetime | None = _when(nullable=True, index=True)


class Member(SQLModel, table=True):
    __tablename__ = "members"
    __table_args__ = (UniqueConstraint("group_id", "user_id", name="uq_member_user"),)

    id: int | None = Field(default=None, primary_key=True)
    group_id: int = Field(foreign_key="groups.id", index=True)
    user_id: str = Field(max_length=255)
    # The platform of `user_id`: a group linked across platforms has members from each. (User ids of
    # different platforms never look alike — "@ana:example.org", "123456" — so the unique key stays
    # (group_id, user_id).)
    platform: str = Field(default="", max_length=32, sa_column_kwargs={"server_default": ""})
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
    # What passing it does: "decision" (nothing more), or a role matter:
    # "election", "appointment", "renewal", "recall".
    kind: str = Field(default="decision", max_length=16, sa_column_kwargs={"server_default": "decision"})
    role_id: int | None = Field(default=None, foreign_key="roles.id")
    subject_member_id: int | None = Field(default=None, foreign_key="members.id")
    # Elections: the member id behind each option, one per line, aligned with `options`.
    candidates: str | None = Field(default=None, sa_column=Column(Text))
    # Secret ballots go into a BallotBox, with the VoterRoll beside it, never into `ballots`.
    secret: bool = Field(default=False, sa_column_kwargs={"server_default": text("false")})
    # "plain": one answer per ballot; "ranked": a ranking, counted by instant runoff
    # (one seat) or STV (several).
    method: str = Field(default="plain", max_length=8, sa_column_kwargs={"server_default": "plain"})
    # A sunset clause: if this passes, the decision comes back for review this long after it is taken.
    review_seconds: int | None = None
    # A review ("Keep #12 …?"): the proposal whose decision it reviews.
    review_of: int | None = Field(default=None, foreign_key="proposals.id")
    # This group's copy of a question put to the whole federation (`share=federation`).
    question_id: int | None = Field(default=None, foreign_key="federation_questions.id", index=True)
    # `federation join` / `federation leave` / `mandate`: the federation it is about.
    federation_id: int | None = Field(default=None, foreign_key="federations.id")


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


class VoterRoll(SQLModel, table=True):
    """Who may vote in a secret ballot and whether they have. Nothing here says what
    anyone chose, and nothing in the ballot box says who: the two are never joined."""

    __tablename__ = "voter_roll"

    proposal_id: int = Field(foreign_key="proposals.id", primary_key=True)
    member_id: int = Field(foreign_key="members.id", primary_key=True)
    voted: bool = False


class BallotBox(SQLModel, table=True):
    """The ballots of one secret vote, in one row: a line per ballot, "<receipt hash> <choice
    as JSON>", kept sorted by the hash, so the box has no order but the hashes' (random) one.

    One row rather than one per ballot because PostgreSQL hands rows back, and dumps
    them, in the order they were written: a ballot table would keep the voting order,
    which the voter roll's own order and the times members wrote to the bot could
    then be matched against. No member, no time, no serial id here."""

    __tablename__ = "ballot_boxes"

    proposal_id: int = Field(foreign_key="proposals.id", primary_key=True)
    ballots: str = Field(default="", sa_column=Column(Text, nullable=False))


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
    # Sunset clauses: when the decision comes back for review (None: never, or done), and
    # when it lapsed because the group did not keep it.
    review_at: datetime | None = _when(nullable=True, index=True)
    lapsed_at: datetime | None = _when(nullable=True)


class LogEntry(SQLModel, table=True):
    """The group's log: every governance event, appended in the transaction of the event, each
    entry chained to the one before by its hash (see bot.governance.record)."""

    __tablename__ = "log_entries"
    # SQLite: the rows live in the primary key's own b-tree (one write per entry, not two).
    __table_args__ = {"sqlite_with_rowid": False}

    group_id: int = Field(foreign_key="groups.id", primary_key=True)
    seq: int = Field(primary_key=True)  # 1, 2, 3 … per group: a second writer of one seq fails
    kind: str = Field(max_length=32)
    body: str = Field(sa_column=Column(Text, nullable=False))  # canonical JSON
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)


class Lottery(SQLModel, table=True):
    """A draw nobody can steer: the bot commits to a secret when it opens (SHA-256 published),
    members add randomness until `draws_at`, then the secret is revealed and the seed is the
    hash of the secret and every contribution (bot.governance.lottery)."""

    __tablename__ = "lotteries"
    __table_args__ = (
        UniqueConstraint("group_id", "number", name="uq_lottery_number"),
        Index("ix_lotteries_due", "draws_at", "id",
              sqlite_where=text("drawn_at IS NULL"), postgresql_where=text("drawn_at IS NULL")),
    )

    id: int | None = Field(default=None, primary_key=True)
    group_id: int = Field(foreign_key="groups.id")
    number: int
    purpose: str = Field(max_length=16)  # role | auditor | tie | ledger | facilitation | minutes
    role_id: int | None = Field(default=None, foreign_key="roles.id")
    audit_id: int | None = Field(default=None, foreign_key="audits.id")
    proposal_id: int | None = Field(default=None, foreign_key="proposals.id")
    assembly_id: int | None = Field(default=None, foreign_key="assemblies.id")  # its facilitator or note-taker
    seats: int = 1
    candidates: str = Field(sa_column=Column(Text, nullable=False))  # JSON [[member_id, name], ...] in order
    commitment: str = Field(max_length=64)
    secret: str = Field(max_length=64)  # revealed (published) at the draw
    contributions: str = Field(default="[]", sa_column=Column(Text, nullable=False))  # JSON [[name, text], ...]
    opened_at: datetime = _when()
    draws_at: datetime = _when()
    drawn_at: datetime | None = _when(nullable=True)
    seed: str | None = Field(default=None, max_length=64)
    picks: str | None = Field(default=None, sa_column=Column(Text))  # JSON [member_id, ...]
    # `draw <role> now`: no window for contributions, so the seed rests on the bot alone.
    skipped_window: bool = False


class ProcessedEvent(SQLModel, table=True):
    """One row per platform event applied, so a replay is never applied twice."""

    __tablename__ = "processed_events"

    platform: str = Field(primary_key=True, max_length=32)
    event_id: str = Field(primary_key=True, max_length=255)
    processed_at: datetime = _when()


PENDING = "sent_at IS NULL AND failed_at IS NULL"
TRACKED_PENDING = f"target IS NOT NULL AND {PENDING}"


class OutboxItem(SQLModel, table=True):
    """The outbox: the one way out. Every action the bot takes in a chat (replies,
    acknowledgements, card edits, direct messages, images, files, announcements)
    is written here in the same transaction as the change that caused it, and
    delivered from here.

    `sent_at` stays empty until the platform confirmed, so a crash in between
    delivers it after the restart instead of losing it; `failed_at` and `error`
    record an action the platform refused for good. `dedupe_key` (announcements
    only) makes creating the same announcement twice impossible. `target` names
    the message an edit changes (or a tracked message will be), so only the
    newest pending edit of a message is kept.
    """

    __tablename__ = "outbox"
    # Few, partial indexes: a vote writes two rows, and every index page it touches is written
    # again at its commit (and once more when they are marked sent).
    __table_args__ = (
        Index("ix_outbox_pending", "platform", "id", sqlite_where=text(PENDING), postgresql_where=text(PENDING)),
        # Only the newest pending edit of a message is kept (see bot.outbox).
        Index("ux_outbox_pending_edit", "target", unique=True, sqlite_where=text(f"kind = 'edit' AND {PENDING}"),
              postgresql_where=text(f"kind = 'edit' AND {PENDING}")),
        # A tracked message still on its way (an edit of it waits for its platform id).
        Index("ix_outbox_pending_tracked", "target", sqlite_where=text(f"kind <> 'edit' AND {TRACKED_PENDING}"),
              postgresql_where=text(f"kind <> 'edit' AND {TRACKED_PENDING}")),
        # The same announcement is never recorded twice.
        Index("ux_outbox_dedupe_key", "dedupe_key", unique=True, sqlite_where=text("dedupe_key IS NOT NULL"),
              postgresql_where=text("dedupe_key IS NOT NULL")),
        # Ids are never reused (a superseded edit is deleted): the delivery layer tells rows apart by id.
        {"sqlite_autoincrement": True},
    )

    id: int | None = Field(default=None, primary_key=True)
    group_id: int | None = Field(default=None, foreign_key="groups.id")
    platform: str = Field(max_length=32)
    kind: str = Field(max_length=8)  # the action's kind: send, edit, ack, image, file, dm
    target: str | None = Field(default=None, max_length=400)
    dedupe_key: str | None = Field(default=None, max_length=255)
    action: str = Field(sa_column=Column(Text, nullable=False))  # JSON of a bot.actions.Action
    created_at: datetime = _when()
    sent_at: datetime | None = _when(nullable=True)
    failed_at: datetime | None = _when(nullable=True)
    attempts: int = 0
    error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    # Random, with the id it makes the row's delivery key: a platform transaction id that a
    # restored or another database can never repeat.
    token: str = Field(default="", max_length=16)
    # Says something only its member may know (a secret ballot's receipt and choice): the
    # action is blanked as soon as it is delivered or given up, so it does not stay at rest.
    sealed: bool = Field(default=False, sa_column_kwargs={"server_default": text("false")})


class BotMessage(SQLModel, table=True):
    """Platform ids of messages the bot posted and may edit later (live tallies)."""

    __tablename__ = "bot_messages"

    group_id: int = Field(foreign_key="groups.id", primary_key=True)
    key: str = Field(primary_key=True, max_length=64)
    message_id: str = Field(max_length=255)


class Role(SQLModel, table=True):
    """A role the group rotates. Every role has a term; mandates end on their own."""

    __tablename__ = "roles"
    __table_args__ = (UniqueConstraint("group_id", "key", name="uq_role_name"),)

    id: int | None = Field(default=None, primary_key=True)
    group_id: int = Field(foreign_key="groups.id", index=True)
    key: str = Field(max_length=32)  # the name, lower-cased: what members type
    name: str = Field(max_length=32)
    term_seconds: int
    seats: int = 1
    max_terms: int = 1  # consecutive terms one person may hold
    fill: str = Field(default="election", max_length=16)  # election | lottery | volunteer
    handover: str | None = Field(default=None, sa_column=Column(Text))
    trainees_required: int = 0
    created_at: datetime = _when()
    retired_at: datetime | None = _when(nullable=True)
    # `role add … sunset=6mo`: at this date the role goes to a renewal review of its own, and is
    # retired unless the group keeps it (bot.governance.renewals).
    sunset_at: datetime | None = _when(nullable=True, index=True)
    # `delegate=yes`: the holder speaks for the group in its federation, within `mandate`
    # (set by a group decision; ends with the holder's mandate, a recall included).
    delegate: bool = Field(default=False, sa_column_kwargs={"server_default": text("false")})
    mandate: str | None = Field(default=None, sa_column=Column(Text))


class Mandate(SQLModel, table=True):
    """One person holding one seat of a role, from start until it ends.

    A renewal extends `ends_at` by one term and counts up `term_number` (the
    consecutive terms held). The partial unique index makes two open mandates
    on one seat impossible, whatever the code does."""

    __tablename__ = "mandates"
    __table_args__ = (
        Index("uq_open_seat", "role_id", "seat", unique=True,
              sqlite_where=text("ended_at IS NULL"), postgresql_where=text("ended_at IS NULL")),
        # Only open mandates are ever due: partial indexes keep "what is due next" an
        # index lookup on PostgreSQL too (a two-column index made it scan every row).
        Index("ix_mandates_open_ends", "ends_at", "id",
              sqlite_where=text("ended_at IS NULL"), postgresql_where=text("ended_at IS NULL")),
        Index("ix_mandates_open_warning", "next_warning_at", "id",
              sqlite_where=text("ended_at IS NULL"), postgresql_where=text("ended_at IS NULL")),
    )

    id: int | None = Field(default=None, primary_key=True)
    group_id: int = Field(foreign_key="groups.id", index=True)
    role_id: int = Field(foreign_key="roles.id")
    member_id: int = Field(foreign_key="members.id")
    seat: int
    filled_by: str = Field(max_length=16)  # election | lottery | volunteer
    term_number: int = 1
    renewals: int = 0
    started_at: datetime = _when()
    term_started_at: datetime = _when()
    ends_at: datetime = _when()
    next_warning_at: datetime | None = _when(nullable=True)
    ended_at: datetime | None = _when(nullable=True)
    end_reason: str | None = Field(default=None, max_length=16)  # expired | recalled | stepped down | retired


class Volunteer(SQLModel, table=True):
    __tablename__ = "volunteers"

    role_id: int = Field(foreign_key="roles.id", primary_key=True)
    member_id: int = Field(foreign_key="members.id", primary_key=True)
    since: datetime = _when()


class Trainee(SQLModel, table=True):
    """A member shadowing a role to learn it (skills circulate)."""

    __tablename__ = "trainees"

    role_id: int = Field(foreign_key="roles.id", primary_key=True)
    member_id: int = Field(foreign_key="members.id", primary_key=True)
    since: datetime = _when()


class RoleChange(SQLModel, table=True):
    """The log of role definitions: added, edited, retired."""

    __tablename__ = "role_changes"

    id: int | None = Field(default=None, primary_key=True)
    group_id: int = Field(foreign_key="groups.id", index=True)
    role_id: int = Field(foreign_key="roles.id")
    member_id: int | None = Field(default=None, foreign_key="members.id")
    action: str = Field(max_length=16)
    summary: str = Field(sa_column=Column(Text, nullable=False))
    changed_at: datetime = _when()


class Need(SQLModel, table=True):
    """A need or an offer (mutual aid), numbered per group.

    `anonymous` needs were posted by direct message: the author is stored (to
    send them updates and let them mark it met) but never shown to anyone."""

    __tablename__ = "needs"
    __table_args__ = (
        UniqueConstraint("group_id", "number", name="uq_need_number"),
        Index("ix_needs_listing", "group_id", "status", "urgent", "created_at"),
        Index("ix_needs_nudge", "nudge_at", "id",
              sqlite_where=text("nudge_at IS NOT NULL"), postgresql_where=text("nudge_at IS NOT NULL")),
        Index("ix_needs_met", "group_id", "met_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    group_id: int = Field(foreign_key="groups.id")
    number: int
    kind: str = Field(max_length=8)  # need | offer
    text: str = Field(sa_column=Column(Text, nullable=False))
    category: str = Field(max_length=32)
    urgent: bool = False
    author_id: int = Field(foreign_key="members.id")
    anonymous: bool = False
    status: str = Field(default="open", max_length=16)  # open | claimed | met | cancelled
    claimer_id: int | None = Field(default=None, foreign_key="members.id")
    # `claim <need> with <offer>`: the offer that meets this need.
    offer_id: int | None = Field(default=None, foreign_key="needs.id")
    created_at: datetime = _when()
    claimed_at: datetime | None = _when(nullable=True)
    met_at: datetime | None = _when(nullable=True)
    cancelled_at: datetime | None = _when(nullable=True)
    # When an unclaimed need is posted again (once); cleared when claimed or closed.
    nudge_at: datetime | None = _when(nullable=True)
    nudged_at: datetime | None = _when(nullable=True)
    # `share=federation`: this group's copy of another group's need (claims go to the original).
    shared_of: int | None = Field(default=None, foreign_key="needs.id", index=True)


class NeedEvent(SQLModel, table=True):
    """Every state change of a need, timestamped: posted, claimed, unclaimed, met, cancelled, nudged."""

    __tablename__ = "need_events"

    id: int | None = Field(default=None, primary_key=True)
    need_id: int = Field(foreign_key="needs.id", index=True)
    action: str = Field(max_length=16)
    member_id: int | None = Field(default=None, foreign_key="members.id")
    offer_id: int | None = Field(default=None, foreign_key="needs.id")
    at: datetime = _when()


class Audit(SQLModel, table=True):
    """One sovereignty audit: a window in which members report what the group
    provided itself, closed by a report. `figures` (JSON) is what the bot measured
    at the close, kept so every later chart and CSV shows the same numbers."""

    __tablename__ = "audits"
    __table_args__ = (
        UniqueConstraint("group_id", "number", name="uq_audit_number"),
        Index("ix_audits_open_closes", "closes_at", "id",
              sqlite_where=text("closed_at IS NULL"), postgresql_where=text("closed_at IS NULL")),
        Index("ix_audits_open_reminder", "remind_at", "id",
              sqlite_where=text("closed_at IS NULL"), postgresql_where=text("closed_at IS NULL")),
    )

    id: int | None = Field(default=None, primary_key=True)
    group_id: int = Field(foreign_key="groups.id")
    number: int
    period_start: datetime = _when()  # the period the report covers starts here (the previous close)
    started_at: datetime = _when()
    closes_at: datetime = _when()
    remind_at: datetime | None = _when(nullable=True)  # the halfway reminder; None once sent
    closed_at: datetime | None = _when(nullable=True)
    areas: str = Field(sa_column=Column(Text, nullable=False))  # JSON list, as tracked when it started
    started_by: int | None = Field(default=None, foreign_key="members.id")  # None: the schedule
    auditor_id: int | None = Field(default=None, foreign_key="members.id")
    draw_seed: str | None = Field(default=None, max_length=64)
    draw_candidates: str | None = Field(default=None, sa_column=Column(Text))  # JSON [[member_id, name], ...]
    figures: str | None = Field(default=None, sa_column=Column(Text))


class AuditEntry(SQLModel, table=True):
    """A member's report for one area in one audit; reporting the area again replaces it."""

    __tablename__ = "audit_entries"
    __table_args__ = (UniqueConstraint("audit_id", "member_id", "area", name="uq_audit_entry"),)

    id: int | None = Field(default=None, primary_key=True)
    audit_id: int = Field(foreign_key="audits.id", index=True)
    member_id: int = Field(foreign_key="members.id")
    area: str = Field(max_length=40)
    count: int
    note: str | None = Field(default=None, sa_column=Column(Text))
    reported_at: datetime = _when()


class LedgerEntry(SQLModel, table=True):
    """One line of the group's books, numbered per group, never edited: a correction is a new
    entry that reverses an old one. `balance_cents` is the balance after this entry, so the
    balance and a month's opening figure are one row away."""

    __tablename__ = "ledger_entries"
    __table_args__ = (
        UniqueConstraint("group_id", "number", name="uq_ledger_number"),
        Index("ix_ledger_time", "group_id", "recorded_at", "number"),
        # An entry is reversed at most once, whatever the code does.
        Index("ux_ledger_reversal", "reverses_id", unique=True,
              sqlite_where=text("reverses_id IS NOT NULL"), postgresql_where=text("reverses_id IS NOT NULL")),
    )

    id: int | None = Field(default=None, primary_key=True)
    group_id: int = Field(foreign_key="groups.id")
    number: int
    amount_cents: int = Field(sa_column=Column(BigInteger, nullable=False))  # + in, - out; exact, in cents
    currency: str = Field(max_length=3)
    description: str = Field(sa_column=Column(Text, nullable=False))
    category: str | None = Field(default=None, max_length=32)
    proposal_id: int | None = Field(default=None, foreign_key="proposals.id")  # for=#N: the decision it spends on
    need_id: int | None = Field(default=None, foreign_key="needs.id")  # for=need N
    reverses_id: int | None = Field(default=None, foreign_key="ledger_entries.id")
    member_id: int = Field(foreign_key="members.id")
    recorded_at: datetime = _when()
    balance_cents: int = Field(sa_column=Column(BigInteger, nullable=False))


class LedgerCheck(SQLModel, table=True):
    """A month of the books, checked by a member drawn by lot (not a role holder)."""

    __tablename__ = "ledger_checks"
    __table_args__ = (
        UniqueConstraint("group_id", "month", name="uq_ledger_check_month"),
        Index("ix_ledger_checks_remind", "remind_at", "id",
              sqlite_where=text("remind_at IS NOT NULL"), postgresql_where=text("remind_at IS NOT NULL")),
    )

    id: int | None = Field(default=None, primary_key=True)
    group_id: int = Field(foreign_key="groups.id")
    month: str = Field(max_length=7)  # "2026-11"
    lottery_id: int | None = Field(default=None, foreign_key="lotteries.id")
    auditor_id: int | None = Field(default=None, foreign_key="members.id")
    opened_at: datetime = _when()
    remind_at: datetime | None = _when(nullable=True)  # the one reminder, while unanswered
    answered_at: datetime | None = _when(nullable=True)
    verdict: str | None = Field(default=None, max_length=16)  # ok | concern
    note: str | None = Field(default=None, sa_column=Column(Text))


class CharterClause(SQLModel, table=True):
    """A clause of the group's charter. Numbers are never reused, so a decision that cites
    clause 3 still means the same clause later. A clause with `setting_key` protects that
    setting: it changes only through a charter proposal."""

    __tablename__ = "charter_clauses"
    __table_args__ = (UniqueConstraint("group_id", "number", name="uq_charter_clause"),)

    id: int | None = Field(default=None, primary_key=True)
    group_id: int = Field(foreign_key="groups.id", index=True)
    number: int
    text: str = Field(sa_column=Column(Text, nullable=False))
    setting_key: str | None = Field(default=None, max_length=64)
    added_version: int
    removed_version: int | None = None


class CharterVersion(SQLModel, table=True):
    """Each version of the charter: what changed and which decision changed it."""

    __tablename__ = "charter_versions"

    group_id: int = Field(foreign_key="groups.id", primary_key=True)
    version: int = Field(primary_key=True)
    proposal_id: int | None = Field(default=None, foreign_key="proposals.id")
    change: str = Field(max_length=16)  # adopt | add | amend | remove | protect | setting | sunset
    clauses: str = Field(sa_column=Column(Text, nullable=False))  # JSON [numbers touched]
    summary: str = Field(sa_column=Column(Text, nullable=False))
    changed_at: datetime = _when()


class CharterAmendment(SQLModel, table=True):
    """What a charter proposal changes if it passes. `target` names what it touches
    ("clause:3", "setting:rule", "charter" for adopting the template; None for a new clause);
    the partial unique index refuses a second open amendment of the same target, even in a race."""

    __tablename__ = "charter_amendments"
    __table_args__ = (
        Index("ux_charter_open_target", "group_id", "target", unique=True,
              sqlite_where=text("is_open AND target IS NOT NULL"),
              postgresql_where=text("is_open AND target IS NOT NULL")),
    )

    proposal_id: int = Field(foreign_key="proposals.id", primary_key=True)
    group_id: int = Field(foreign_key="groups.id")
    action: str = Field(max_length=16)  # adopt | add | amend | remove | protect | setting
    target: str | None = Field(default=None, max_length=80)
    clause: int | None = None
    text: str | None = Field(default=None, sa_column=Column(Text))
    setting_key: str | None = Field(default=None, max_length=64)
    setting_value: str | None = Field(default=None, max_length=255)
    is_open: bool = True


class RenewalItem(SQLModel, table=True):
    """One item of a renewal review: a role or a charter clause members keep or drop."""

    __tablename__ = "renewal_items"

    proposal_id: int = Field(foreign_key="proposals.id", primary_key=True)
    position: int = Field(primary_key=True)  # 1, 2, … as shown on the card
    role_id: int | None = Field(default=None, foreign_key="roles.id")
    clause: int | None = None  # a charter clause number
    label: str = Field(max_length=255)
    kept: bool | None = None  # set when the review closes


class Assembly(SQLModel, table=True):
    """A scheduled meeting of the group. `next_due_at` is the next step the scheduler owes it
    (a reminder, the draw of its facilitator and note-taker, the agenda's freeze, the start),
    so "what is due" stays one index lookup; the step flags say which are done."""

    __tablename__ = "assemblies"
    __table_args__ = (
        UniqueConstraint("group_id", "number", name="uq_assembly_number"),
        Index("ix_assemblies_due", "next_due_at", "id",
              sqlite_where=text("next_due_at IS NOT NULL"), postgresql_where=text("next_due_at IS NOT NULL")),
        Index("ix_assemblies_group_start", "group_id", "starts_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    group_id: int = Field(foreign_key="groups.id")
    number: int
    starts_at: datetime = _when()
    place: str | None = Field(default=None, max_length=300)
    title: str | None = Field(default=None, max_length=200)
    created_by: int | None = Field(default=None, foreign_key="members.id")  # None: scheduled by the rhythm
    created_at: datetime = _when()
    next_due_at: datetime | None = _when(nullable=True)
    reminded_through: datetime | None = _when(nullable=True)  # the latest reminder time dealt with
    drawn_at: datetime | None = _when(nullable=True)  # when the lotteries for its two jobs were opened
    frozen_at: datetime | None = _when(nullable=True)  # the agenda's freeze
    started_at: datetime | None = _when(nullable=True)  # the agenda was posted: the meeting is on
    cancelled_at: datetime | None = _when(nullable=True)
    facilitator_id: int | None = Field(default=None, foreign_key="members.id")
    note_taker_id: int | None = Field(default=None, foreign_key="members.id")
    # What whoever held each job leaves for the next one (`assembly notes`).
    facilitator_notes: str | None = Field(default=None, sa_column=Column(Text))
    note_taker_notes: str | None = Field(default=None, sa_column=Column(Text))
    minutes: str | None = Field(default=None, sa_column=Column(Text))
    minutes_done_at: datetime | None = _when(nullable=True)


class AgendaItem(SQLModel, table=True):
    """An item for the next assembly. It belongs to no assembly until an agenda freezes: then
    every open item is bound to that assembly in the order of support, then age."""

    __tablename__ = "agenda_items"
    __table_args__ = (
        UniqueConstraint("group_id", "number", name="uq_agenda_number"),
        Index("ix_agenda_pending", "group_id", "assembly_id", "withdrawn_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    group_id: int = Field(foreign_key="groups.id")
    number: int
    text: str = Field(sa_column=Column(Text, nullable=False))
    author_id: int = Field(foreign_key="members.id")
    created_at: datetime = _when()
    support: int = 0  # members who back it (one row each in agenda_supports)
    assembly_id: int | None = Field(default=None, foreign_key="assemblies.id")
    position: int | None = None  # its place on the frozen agenda
    withdrawn_at: datetime | None = _when(nullable=True)
    proposal_id: int | None = Field(default=None, foreign_key="proposals.id")  # `agenda propose`


class AgendaSupport(SQLModel, table=True):
    """One member backs one item once, whatever the code does."""

    __tablename__ = "agenda_supports"

    item_id: int = Field(foreign_key="agenda_items.id", primary_key=True)
    member_id: int = Field(foreign_key="members.id", primary_key=True)
    supported_at: datetime = _when()


class TaskVolunteer(SQLModel, table=True):
    """A member standing for a recurring task that is not a role: facilitating assemblies,
    taking their minutes, mediating conflicts."""

    __tablename__ = "task_volunteers"

    group_id: int = Field(foreign_key="groups.id", primary_key=True)
    task: str = Field(primary_key=True, max_length=16)  # facilitation | minutes | mediation
    member_id: int = Field(foreign_key="members.id", primary_key=True)
    since: datetime = _when()


class Mediation(SQLModel, table=True):
    """A private request for peer mediation. Nothing here is ever shown to the group, logged
    or exported: only how many were opened and closed (the audit's figure)."""

    __tablename__ = "mediations"
    __table_args__ = (UniqueConstraint("group_id", "number", name="uq_mediation_number"),)

    id: int | None = Field(default=None, primary_key=True)
    group_id: int = Field(foreign_key="groups.id", index=True)
    number: int
    requester_id: int = Field(foreign_key="members.id")
    other_party_id: int | None = Field(default=None, foreign_key="members.id")
    about: str | None = Field(default=None, sa_column=Column(Text))
    first_mediator_id: int = Field(foreign_key="members.id")
    second_mediator_id: int | None = Field(default=None, foreign_key="members.id")
    seed: str = Field(max_length=64)  # the draw's seed, kept so the mediators can be shown it was by lot
    opened_at: datetime = _when()
    closed_at: datetime | None = _when(nullable=True)
    closed_by: int | None = Field(default=None, foreign_key="members.id")
    note: str | None = Field(default=None, sa_column=Column(Text))


class MemberLanguage(SQLModel, table=True):
    """The language a person chose for their direct messages (`language pt`), whichever groups they are in."""

    __tablename__ = "member_languages"

    platform: str = Field(primary_key=True, max_length=32)
    user_id: str = Field(primary_key=True, max_length=255)
    language: str = Field(max_length=16)


class PageToken(SQLModel, table=True):
    """A group's transparency page and calendar feed are reached with an unguessable token, which
    `link` shows again and `link reset` replaces. Requests are looked up by the token's SHA-256, so
    how long a lookup takes says nothing about how close a guess was."""

    __tablename__ = "page_tokens"

    group_id: int = Field(foreign_key="groups.id", primary_key=True)
    token: str = Field(max_length=64)
    token_hash: str = Field(max_length=64, sa_column_kwargs={"unique": True})
    created_at: datetime = _when()


class FeedToken(SQLModel, table=True):
    """A member's personal calendar feed (`calendar` in a private chat), reached with its own token."""

    __tablename__ = "feed_tokens"

    platform: str = Field(primary_key=True, max_length=32)
    user_id: str = Field(primary_key=True, max_length=255)
    token: str = Field(max_length=64)
    token_hash: str = Field(max_length=64, sa_column_kwargs={"unique": True})
    created_at: datetime = _when()


class GroupChat(SQLModel, table=True):
    """A further chat of one group: a Telegram group linked to a Matrix room (`link platform`).
    The group's first chat stays on its `groups` row."""

    __tablename__ = "group_chats"

    platform: str = Field(primary_key=True, max_length=32)
    chat_id: str = Field(primary_key=True, max_length=255)
    group_id: int = Field(foreign_key="groups.id", index=True)
    linked_at: datetime = _when()
    reported_member_count: int | None = None  # this chat's own head count (Group has the first chat's)


class LinkedAccount(SQLModel, table=True):
    """One person's accounts on several platforms (`link me`): accounts with the same `person`
    are one member wherever they meet."""

    __tablename__ = "linked_accounts"

    platform: str = Field(primary_key=True, max_length=32)
    user_id: str = Field(primary_key=True, max_length=255)
    person: str = Field(max_length=32, index=True)
    linked_at: datetime = _when()


class LinkCode(SQLModel, table=True):
    """A code given out to be typed elsewhere: to link a chat, an account or to join a federation.
    Only its hash is kept; it works until `expires_at`, once (`used_at`) unless `reusable`."""

    __tablename__ = "link_codes"

    code_hash: str = Field(primary_key=True, max_length=64)
    purpose: str = Field(max_length=16)  # platform | account | federation
    platform: str = Field(max_length=32)  # where it was given
    user_id: str = Field(max_length=255)  # to whom
    group_id: int | None = Field(default=None, foreign_key="groups.id")
    federation_id: int | None = Field(default=None, foreign_key="federations.id")
    created_at: datetime = _when()
    expires_at: datetime = _when()
    used_at: datetime | None = _when(nullable=True)


class Federation(SQLModel, table=True):
    """Independent groups that put questions to each other and send recallable delegates."""

    __tablename__ = "federations"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=120)
    created_at: datetime = _when()


class FederationGroup(SQLModel, table=True):
    """A group's place in a federation (one federation per group)."""

    __tablename__ = "federation_groups"

    group_id: int = Field(foreign_key="groups.id", primary_key=True)
    federation_id: int = Field(foreign_key="federations.id", index=True)
    joined_at: datetime = _when()


class FederationQuestion(SQLModel, table=True):
    """A question put to every group of a federation: each group decides its own copy (a
    proposal with `question_id`) by its own rule; the federation's outcome counts the groups."""

    __tablename__ = "federation_questions"

    id: int | None = Field(default=None, primary_key=True)
    federation_id: int = Field(foreign_key="federations.id", index=True)
    origin_group_id: int = Field(foreign_key="groups.id")
    title: str = Field(sa_column=Column(Text, nullable=False))
    rule: str = Field(max_length=16)  # of groups: majority | two-thirds | consensus
    opened_at: datetime = _when()
    decided_at: datetime | None = _when(nullable=True)
    outcome: str | None = Field(default=None, max_length=32)
    groups_for: int | None = None
    groups_total: int | None = None
