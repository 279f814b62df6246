"""The members' page: what a group's transparency page shows, read from storage into plain dataclasses,
and the unguessable addresses that open it.

The web adapter (adapters/web) renders these; it never queries storage itself, so the rules that
hide things hold there too: an anonymous need's author is never read (the query gives NULL in its
place, as `needs.listing` gives None), a secret ballot shows how many voted and never who chose
what, and mediations are not read here at all (not even the audit's counts of them).

Addresses. `link` gives a group its page at `<public_url>/g/<token>/` (the calendar feed beside it,
`calendar.ics`); `calendar` in a private chat gives a member `<public_url>/me/<token>/calendar.ics`.
A token is `secrets.token_urlsafe(32)`. Requests are looked up by its SHA-256 (an index lookup that
says nothing about how close a guess was) and the stored token is then compared with
`hmac.compare_digest`; a token that matches nothing still does a comparison, so a wrong address
costs the same work as a right one up to that point. `link reset` / `calendar reset` replace a
token: the old address then opens nothing.

Every read runs in a transaction of its own (`Reader`); the web adapter calls it on a thread.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import and_, bindparam, case, func, literal, null, select, union_all
from sqlalchemy.orm import aliased
from sqlmodel import Session

from bot import i18n
from bot.actions import Chart
from bot.clock import Clock
from bot.governance import assemblies, audits, federation, ledger, needs, record, reviews, roles, voting
from bot.governance import proposals as rules
from bot.governance.chain import Head
from bot.groups import Directory
from bot.i18n import N_
from bot.render import exports
from bot.render.proposals import OUTCOME_WORDS
from storage.db import Database
from storage.models import (
    Decision,
    FeedToken,
    Group,
    LedgerEntry,
    Mandate,
    Member,
    Need,
    PageToken,
    Proposal,
    Role,
    Trainee,
    Volunteer,
)

DECISIONS_SHOWN = 30  # the page lists the latest; the whole log is a download away
NEEDS_SHOWN = 25
AUDITS_SHOWN = 3
STATEMENTS_SHOWN = 2  # months of the books: this one so far and the last (older: `ledger statement`)
PAST_HOLDERS = 3
ASSEMBLIES_SHOWN = 10
REVIEWS_SHOWN = 10
WAIT_WINDOW = timedelta(days=90)  # needs met within this long are what "typically waited" is made of
MAX_TOKEN = 128  # longer is no token of ours (the comparison still runs)


# Where members reach the pages (set by the wiring from [web]; None: not served) -------------------

_public_url: str | None = None


def configure(public_url: str | None) -> None:
    """The address the pages are reached at, like https://commons.example.org (None: no pages)."""
    global _public_url
    _public_url = public_url.rstrip("/") if public_url else None


def public_url() -> str | None:
    return _public_url


def page_address(token: str) -> str:
    return f"{_public_url}/g/{token}/"


def group_feed_address(token: str) -> str:
    return page_address(token) + "calendar.ics"


def personal_feed_address(token: str) -> str:
    return f"{_public_url}/me/{token}/calendar.ics"


def webcal(address: str) -> str:
    """The same address for calendar apps that subscribe on a tap (webcal://, served over https)."""
    return re.sub(r"^https?://", "webcal://", address)


# Tokens ---------------------------------------------------------------------------------------------

def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


def new_token() -> tuple[str, str]:
    token = secrets.token_urlsafe(32)
    return token, token_hash(token)


_DECOY = secrets.token_urlsafe(32)  # what a token that matches nothing is compared with


def _confirmed(stored: str | None, given: str) -> bool:
    """The stored token equals the given one (compared in constant time; a miss compares a decoy)."""
    return hmac.compare_digest((stored or _DECOY).encode(), given.encode("utf-8", "replace")) and stored is not None


def page_token(session: Session, group_id: int, now: datetime, reset: bool = False) -> tuple[str, bool]:
    """The group's page token, made on first use or replaced with `reset`; True when it is new."""
    row = session.get(PageToken, group_id)
    if row is not None and not reset:
        return row.token, False
    token, digest = new_token()
    if row is None:
        session.add(PageToken(group_id=group_id, token=token, token_hash=digest, created_at=now))
    else:
        row.token, row.token_hash, row.created_at = token, digest, now
    session.flush()
    return token, True


def existing_page_token(session: Session, group_id: int) -> str | None:
    row = session.get(PageToken, group_id)
    return row.token if row is not None else None


def feed_token(session: Session, platform: str, user_id: str, now: datetime, reset: bool = False) -> tuple[str, bool]:
    """A member's personal feed token (per platform account), made on first use or replaced with `reset`."""
    row = session.get(FeedToken, (platform, user_id))
    if row is not None and not reset:
        return row.token, False
    token, digest = new_token()
    if row is None:
        session.add(FeedToken(platform=platform, user_id=user_id, token=token, token_hash=digest, created_at=now))
    else:
        row.token, row.token_hash, row.created_at = token, digest, now
    session.flush()
    return token, True


def group_for_token(session: Session, token: str) -> int | None:
    """The group a page token opens, or None."""
    given = token[:MAX_TOKEN]
    row = session.connection().execute(select(PageToken.group_id, PageToken.token)
                          .where(PageToken.token_hash == token_hash(given))).first()
    if not _confirmed(row.token if row else None, given) or len(token) > MAX_TOKEN:
        return None
    return row.group_id


def person_for_token(session: Session, token: str) -> tuple[str, str] | None:
    """The (platform, user id) a personal feed token belongs to, or None."""
    given = token[:MAX_TOKEN]
    row = session.connection().execute(select(FeedToken.platform, FeedToken.user_id, FeedToken.token)
                          .where(FeedToken.token_hash == token_hash(given))).first()
    if not _confirmed(row.token if row else None, given) or len(token) > MAX_TOKEN:
        return None
    return row.platform, row.user_id


# What the page shows -----------------------------------------------------------------------------
# Words stored as data (outcomes, rules, reasons …), marked for the catalog and translated where shown.

OUTCOMES = OUTCOME_WORDS  # as the chat's outcome lines name them
STANCES = {voting.YES: N_("yes"), voting.NO: N_("no"), voting.ABSTAIN: N_("abstain"), voting.BLOCK: N_("block")}
RULE_NAMES = {"majority": N_("majority"), "two-thirds": N_("two-thirds"), "consent": N_("consent"),
              "consensus": N_("consensus")}
FILLS = {"election": N_("election"), "lottery": N_("lottery"), "volunteer": N_("volunteers")}
END_REASONS = {roles.EXPIRED: N_("term ended"), roles.RECALLED: N_("recalled"),
               roles.STEPPED_DOWN: N_("stepped down"), roles.RETIRED: N_("role retired")}
KINDS = {"decision": N_("proposal"), "election": N_("election"), "appointment": N_("appointment"),
         "renewal": N_("renewal"), "recall": N_("recall"), "review": N_("review"),
         "renewal_review": N_("renewal review"), "charter": N_("charter")}
# What the bot measured at an audit's close, as the page lists it (no mediation figures: those stay
# in the chat's report).
MEASURED = (("needs_met", N_("needs met")), ("met_within_48h", N_("met within 48 hours")),
            ("median_hours_to_met", N_("median hours to met")), ("needs_posted", N_("needs posted")),
            ("decisions", N_("decisions taken")), ("participation", N_("average participation")),
            ("role_holders", N_("members who held a role")), ("lapsed_on_time", N_("mandates that lapsed on time")),
            ("extended", N_("mandates extended")), ("recalls", N_("recalls")))


@dataclass(frozen=True)
class Holder:
    name: str
    seat: int
    since: datetime  # holding the seat since
    term_started: datetime
    term_ends: datetime
    term_number: int
    filled_by: str


@dataclass(frozen=True)
class PastHolder:
    name: str
    started: datetime
    ended: datetime
    reason: str | None


@dataclass(frozen=True)
class RoleView:
    key: str  # the name, lower-cased: unique in the group
    name: str
    term: timedelta
    seats: int
    max_terms: int
    fill: str
    holders: list[Holder]
    free_seats: int
    volunteers: list[str]
    trainees: list[str]
    past: list[PastHolder]
    sunset_at: datetime | None


@dataclass(frozen=True)
class ProposalView:
    number: int
    title: str
    kind: str
    author: str
    opened_at: datetime
    closes_at: datetime
    rule: str
    quorum: str
    options: list[str] | None
    secret: bool
    ranked: bool
    voters: int


@dataclass(frozen=True)
class DecisionView:
    number: int
    title: str
    outcome: str
    counts: list[tuple[str, int, bool]]  # (label, ballots, whether the label is a word to translate)
    winners: list[str]
    voters: int
    members: int
    decided_at: datetime
    review_at: datetime | None
    lapsed_at: datetime | None

    @property
    def withdrawn(self) -> bool:
        return self.outcome == voting.WITHDRAWN


@dataclass(frozen=True)
class ReviewView:
    number: int
    title: str
    review_at: datetime


@dataclass(frozen=True)
class NeedView:
    number: int
    kind: str
    text: str
    category: str
    urgent: bool
    status: str
    author: str | None  # None: posted anonymously (never shown)
    claimer: str | None
    posted_at: datetime
    waiting: timedelta
    overdue: bool


@dataclass(frozen=True)
class NeedsView:
    open_needs: int
    overdue: int
    open_offers: int
    met_recently: int  # met within WAIT_WINDOW
    met_within_48h: int
    typical_wait: timedelta | None  # the median, over WAIT_WINDOW
    longest_wait: timedelta | None  # of the need waiting now the longest
    categories: list[tuple[str, int, int]]  # (category, open needs, open offers)
    listed: list[NeedView]
    total_active: int


@dataclass(frozen=True)
class AuditView:
    number: int
    period_start: datetime
    closed_at: datetime
    reported: list[tuple[str, int]]
    measured: list[tuple[str, str]]  # (label to translate, figure already formatted)
    challenge: dict | None
    auditor: str | None


@dataclass(frozen=True)
class OpenAuditView:
    number: int
    started_at: datetime
    closes_at: datetime
    areas: list[str]


@dataclass(frozen=True)
class StatementView:
    month: str
    first_day: datetime
    current: bool
    opening_cents: int
    in_cents: int
    out_cents: int
    closing_cents: int
    entries: int
    by_decision: list[tuple[int | None, str | None, int]]
    by_category: list[tuple[str | None, int, int]]


@dataclass(frozen=True)
class LedgerView:
    currency: str
    balance_cents: int
    entries: int
    statements: list[StatementView]


@dataclass(frozen=True)
class AssemblyView:
    number: int
    starts_at: datetime
    title: str | None
    place: str | None
    facilitator: str | None
    note_taker: str | None


@dataclass(frozen=True)
class Page:
    group_id: int
    title: str | None
    language: str  # the group's `language` setting
    zone: ZoneInfo
    now: datetime
    roles: list[RoleView]
    proposals: list[ProposalView]
    decisions: list[DecisionView]  # the latest DECISIONS_SHOWN
    reviews: list[ReviewView]
    more_reviews: bool
    renewal_at: datetime | None
    needs: NeedsView
    audits: list[AuditView]
    open_audit: OpenAuditView | None
    next_audit_at: datetime | None
    audit_chart: bool
    next_digest_at: datetime | None
    ledger: LedgerView | None
    assemblies: list[AssemblyView]
    head: Head
    exports: list[tuple[str, str]] = field(default_factory=list)  # (file name, label to translate)


EXPORTS = (("decisions.csv", N_("the decision log (CSV)")), ("decisions.md", N_("the decision log (Markdown)")),
           ("ledger.csv", N_("the books: every entry (CSV)")),
           ("log.jsonl", N_("the group log (JSON Lines, checked by commons-bot verify)")))


# The page's own queries, built once (a page runs some thirty): columns only, no objects to build.
_GROUP = bindparam("group_id")
_NAMES = select(Member.id, Member.display_name).where(Member.group_id == _GROUP)
# The roles `roles.active_roles` lists, and the people around them, in three queries however many
# roles (the `roles` command asks per role): the roles; their mandates, open and the latest ended
# (PAST_HOLDERS per role); their volunteers and trainees.
_ACTIVE = (Role.group_id == _GROUP, Role.retired_at.is_(None))
_ROLES = (select(Role.id, Role.key, Role.name, Role.term_seconds, Role.seats, Role.max_terms, Role.fill,
                 Role.sunset_at).where(*_ACTIVE).order_by(Role.key))
_MANDATE = (Mandate.role_id, Mandate.member_id, Mandate.seat, Mandate.started_at, Mandate.term_started_at,
            Mandate.ends_at, Mandate.term_number, Mandate.filled_by, Mandate.ended_at, Mandate.end_reason)
_ENDED = (select(*_MANDATE, func.row_number().over(partition_by=Mandate.role_id,
                                                   order_by=(Mandate.ended_at.desc(), Mandate.id.desc())).label("rank"))
          .where(Mandate.group_id == _GROUP, Mandate.ended_at.is_not(None)).subquery())
_MANDATES = union_all(
    select(*_MANDATE, literal(0).label("rank")).where(Mandate.group_id == _GROUP, Mandate.ended_at.is_(None)),
    select(*(_ENDED.c[column.key] for column in _MANDATE), _ENDED.c.rank).where(_ENDED.c.rank <= PAST_HOLDERS),
).subquery()
_HELD = select(_MANDATES).order_by(_MANDATES.c.role_id, _MANDATES.c.rank, _MANDATES.c.seat)
_PEOPLE = union_all(
    select(Volunteer.role_id, Volunteer.member_id, Volunteer.since, literal(False).label("trainee"))
    .join(Role, Role.id == Volunteer.role_id).where(*_ACTIVE),
    select(Trainee.role_id, Trainee.member_id, Trainee.since, literal(True).label("trainee"))
    .join(Role, Role.id == Trainee.role_id).where(*_ACTIVE),
).subquery()
_AROUND = select(_PEOPLE).order_by(_PEOPLE.c.since, _PEOPLE.c.member_id)
# Newest first by id: a decision is written when it is taken, so ids follow decided_at, and the
# group's index walks them backwards (sorting by decided_at would read every decision of the group).
_DECISIONS = (select(Proposal.number, Proposal.title, Proposal.options, Decision.outcome, Decision.counts,
                     Decision.voters, Decision.members, Decision.decided_at, Decision.review_at, Decision.lapsed_at)
              .join(Proposal, Proposal.id == Decision.proposal_id).where(Decision.group_id == _GROUP)
              .order_by(Decision.id.desc()).limit(DECISIONS_SHOWN))
# `reviews.coming`, as columns; `group_id + 0` walks the review dates' index (few rows), not every
# decision of the group.
_REVIEWS = (select(Proposal.number, Proposal.title, Decision.review_at)
            .join(Proposal, Proposal.id == Decision.proposal_id)
            .where((Decision.group_id + 0) == _GROUP, Decision.review_at.is_not(None))
            .order_by(Decision.review_at, Decision.id).limit(REVIEWS_SHOWN + 1))
_CATEGORIES = (select(Need.category, Need.kind, func.count(),
                      func.coalesce(func.sum(case((and_(Need.status == needs.OPEN,
                                                        Need.created_at <= bindparam("overdue")), 1), else_=0)), 0),
                      func.min(Need.created_at))
               .where(Need.group_id == _GROUP, Need.status.in_(needs.ACTIVE)).group_by(Need.category, Need.kind))
# The open needs and offers as the `needs` command lists them (urgent first, then oldest). The author of
# a need posted anonymously never leaves the database: the query gives NULL in its place.
_author, _claimer = aliased(Member), aliased(Member)
_LISTED = (select(Need.number, Need.kind, Need.text, Need.category, Need.urgent, Need.status, Need.created_at,
                  case((Need.anonymous, null()), else_=_author.display_name), _claimer.display_name)
           .outerjoin(_author, _author.id == Need.author_id).outerjoin(_claimer, _claimer.id == Need.claimer_id)
           .where(Need.group_id == _GROUP, Need.status.in_(needs.ACTIVE))
           .order_by(Need.urgent.desc(), Need.created_at, Need.id).limit(NEEDS_SHOWN))
# When the books start, and how many entries they hold (numbers count up from 1, never reused).
_BOOKS = select(func.min(LedgerEntry.recorded_at), func.max(LedgerEntry.number)).where(LedgerEntry.group_id == _GROUP)


def build_page(session: Session, directory: Directory, group_id: int, now: datetime) -> Page:
    """Everything the members' page shows, read in one transaction."""
    group = session.get(Group, group_id)
    settings = directory.read_settings(session, group_id)
    zone = settings.timezone
    connection, by_group = session.connection(), {"group_id": group_id}
    names = dict(connection.execute(_NAMES, by_group).all())
    reviewed = connection.execute(_REVIEWS, by_group).all()
    closed = audits.closed_audits(session, group_id)
    current_audit = audits.open_audit(session, group_id)
    return Page(
        group_id=group_id, title=group.title, language=settings.language, zone=zone, now=now,
        roles=_roles(connection, group_id, names, now),
        proposals=_proposals(session, group_id, names),
        decisions=_decisions(connection, group_id),
        reviews=[ReviewView(*row) for row in reviewed[:REVIEWS_SHOWN]], more_reviews=len(reviewed) > REVIEWS_SHOWN,
        renewal_at=group.next_renewal_at,
        needs=_needs(session, group_id, now),
        audits=[_audit(session, audit, names) for audit in reversed(closed[-AUDITS_SHOWN:])],
        open_audit=None if current_audit is None else OpenAuditView(
            current_audit.number, current_audit.started_at, current_audit.closes_at, audits.areas_of(current_audit)),
        next_audit_at=None if current_audit is not None else group.next_audit_at,
        audit_chart=bool(closed), next_digest_at=group.next_digest_at,
        ledger=_ledger(session, group_id, now, zone, settings.currency),
        assemblies=[AssemblyView(a.number, a.starts_at, a.title, a.place, names.get(a.facilitator_id),
                                 names.get(a.note_taker_id))
                    for a in assemblies.upcoming(session, group_id, now)[:ASSEMBLIES_SHOWN]],
        head=record.head(session, group_id),
        exports=list(EXPORTS),
    )


def _roles(connection, group_id: int, names: dict[int, str], now: datetime) -> list[RoleView]:
    by_group = {"group_id": group_id}
    found = connection.execute(_ROLES, by_group).all()
    if not found:
        return []
    holding: dict[int, list[Holder]] = {}
    past: dict[int, list[PastHolder]] = {}
    for (role_id, member_id, seat, started, term_started, ends, term_number, filled_by, ended, reason,
         _rank) in connection.execute(_HELD, by_group):
        name = names.get(member_id, "?")
        if ended is None:
            holding.setdefault(role_id, []).append(Holder(name, seat, started, term_started, ends, term_number,
                                                          filled_by))
        else:
            past.setdefault(role_id, []).append(PastHolder(name, started, ended, reason))
    standing: dict[int, list[str]] = {}
    learning: dict[int, list[tuple[int, datetime]]] = {}
    for role_id, member_id, since, trainee in connection.execute(_AROUND, by_group):
        if trainee:
            learning.setdefault(role_id, []).append((member_id, since))
        else:
            standing.setdefault(role_id, []).append(names.get(member_id, "?"))
    views = []
    for role in found:
        seated = holding.get(role.id, [])
        # Trainees of this term, as the `roles` command counts them.
        term = timedelta(seconds=role.term_seconds)
        since = min((holder.term_started for holder in seated), default=now - term)
        views.append(RoleView(
            key=role.key, name=role.name, term=term, seats=role.seats, max_terms=role.max_terms, fill=role.fill,
            holders=seated, free_seats=max(0, role.seats - len(seated)), volunteers=standing.get(role.id, []),
            trainees=[names.get(member_id, "?") for member_id, at in learning.get(role.id, []) if at >= since],
            past=past.get(role.id, []), sunset_at=role.sunset_at))
    return views


def _proposals(session: Session, group_id: int, names: dict[int, str]) -> list[ProposalView]:
    found = rules.open_in_group(session, group_id)
    voted = rules.voter_counts(session, found) if found else {}
    return [ProposalView(p.number, p.title, p.kind, _someone(session, names, p.author_id), p.opened_at, p.closes_at,
                         p.rule,
                         p.quorum, rules.options_of(p), p.secret, rules.is_ranked(p), voted.get(p.id, 0))
            for p in found]


def _decisions(connection, group_id: int) -> list[DecisionView]:
    """The latest decisions, as the `decisions` command lists them."""
    found = []
    for number, title, options, outcome, counts, voters, members, decided_at, review_at, lapsed_at in (
            connection.execute(_DECISIONS, {"group_id": group_id})):
        data = json.loads(counts)
        # Stances are words to translate; a poll's options are what members typed (its abstain is a stance).
        tally = [] if outcome == voting.WITHDRAWN else [
            (label, count, label in STANCES and (not options or label == voting.ABSTAIN))
            for label, count in data.get("counts", {}).items()]
        found.append(DecisionView(number, title, outcome, tally, list(data.get("winners") or []), voters, members,
                                  decided_at, review_at, lapsed_at))
    return found


def _needs(session: Session, group_id: int, now: datetime) -> NeedsView:
    # Open (and claimed) needs and offers per category, the needs nobody claimed within 48 hours and
    # the oldest need still waiting (`needs.open_counts` and `needs.longest_waiting`, in one query).
    by_category: dict[str, list[int]] = {}
    open_needs = overdue = open_offers = 0
    oldest: datetime | None = None
    connection = session.connection()
    for category, kind, count, late, first in connection.execute(
            _CATEGORIES, {"group_id": group_id, "overdue": now - needs.OVERDUE_AFTER}):
        if kind == needs.NEED:
            open_needs, overdue = open_needs + count, overdue + late
            oldest = first if oldest is None else min(oldest, first)
        else:
            open_offers += count
        by_category.setdefault(category, [0, 0])[0 if kind == needs.NEED else 1] += count
    waits = needs.times_to_met(session, group_id, now - WAIT_WINDOW, now)
    listed = [NeedView(number, kind, text, category, urgent, status, author, claimer, posted, now - posted,
                       kind == needs.NEED and status == needs.OPEN and now - posted >= needs.OVERDUE_AFTER)
              for number, kind, text, category, urgent, status, posted, author, claimer
              in connection.execute(_LISTED, {"group_id": group_id})]
    return NeedsView(
        open_needs=open_needs, overdue=overdue, open_offers=open_offers, met_recently=len(waits),
        met_within_48h=sum(1 for wait in waits if wait <= needs.OVERDUE_AFTER),
        typical_wait=needs.median_wait(waits), longest_wait=None if oldest is None else now - oldest,
        categories=sorted(((c, n, o) for c, (n, o) in by_category.items()), key=lambda row: (-row[1] - row[2], row[0])),
        listed=listed, total_active=open_needs + open_offers)


def _figure(key: str, value) -> str:
    if value is None:
        return "—"
    if key == "participation":
        return f"{round(100 * value)}%"
    return i18n.number(value)


def _someone(session: Session, names: dict[int, str], member_id: int) -> str:
    """A member's name; one of another group (a shared proposal's author, an outside auditor) with their group's."""
    if member_id in names:
        return names[member_id]
    member = session.get(Member, member_id)
    if member is None:
        return "?"
    return f"{member.display_name} ({federation.group_name(session.get(Group, member.group_id))})"


def _audit(session: Session, audit, names: dict[int, str]) -> AuditView:
    figures = audits.figures_of(audit)
    start = figures.get("period_start")
    return AuditView(
        number=audit.number, period_start=datetime.fromisoformat(start) if start else audit.period_start,
        closed_at=audit.closed_at, reported=list(figures.get("reported", {}).items()),
        measured=[(label, _figure(key, figures.get(key))) for key, label in MEASURED if key in figures],
        challenge=figures.get("challenge"),
        auditor=_someone(session, names, audit.auditor_id) if audit.auditor_id else None)


def _ledger(session: Session, group_id: int, now: datetime, zone: ZoneInfo, currency: str) -> LedgerView | None:
    first, entries = session.connection().execute(_BOOKS, {"group_id": group_id}).one()
    if not entries:
        return None
    this_month, statements = ledger.month_of(now, zone), []
    month = this_month
    while len(statements) < STATEMENTS_SHOWN and month >= ledger.month_of(first, zone):
        shown = ledger.statement(session, group_id, month, zone)
        statements.append(StatementView(month, ledger.month_start(month, zone), month == this_month,
                                        shown.opening_cents, shown.in_cents, shown.out_cents, shown.closing_cents,
                                        shown.entries, shown.by_decision, shown.by_category))
        month = ledger.shift(month, -1)
    # This month's closing figure is the balance now (no entry is dated later than it is written).
    balance = statements[0].closing_cents if statements else ledger.balance(session, group_id)
    return LedgerView(currency, balance, entries, statements)


# Downloads and charts under the page's address ---------------------------------------------------

@dataclass(frozen=True)
class Download:
    filename: str
    content_type: str
    data: bytes


_LEDGER_CHART = re.compile(r"ledger-(\d{4}-\d{2})")


def download(session: Session, directory: Directory, group_id: int, name: str, now: datetime) -> Download | None:
    """A file the page links to, as the commands make it: the decision log (`decisions export`), the
    books (`ledger csv`), the group log (`log export`)."""
    if name == "log.jsonl":
        data = "".join(line + "\n" for line in record.export_lines(session, group_id)).encode()
        head = record.head(session, group_id)
        return Download(f"commons-log-{group_id}-{head.seq}.jsonl", "application/jsonl", data)
    if name == "ledger.csv":
        from bot.render import ledger as render_ledger

        return Download(f"ledger-{group_id}.csv", "text/csv; charset=utf-8",
                        render_ledger.csv_file(ledger.all_lines(session, group_id)))
    if name not in ("decisions.csv", "decisions.md"):
        return None
    rows = reviews.whole_log(session, group_id)
    zone = directory.read_settings(session, group_id).timezone
    if name == "decisions.md":
        group = session.get(Group, group_id)
        return Download("decision-log.md", "text/markdown; charset=utf-8",
                        exports.markdown_file(rows, zone, group.title, now))
    return Download("decision-log.csv", "text/csv; charset=utf-8", exports.csv_file(rows, zone))


def chart(session: Session, directory: Directory, group_id: int, name: str, now: datetime) -> Chart | None:
    """A chart the page shows, described by its figures (drawn by the caller, off this thread):
    `audits` (the closed audits, as `audit report` draws them) or `ledger-YYYY-MM` (a month's books,
    as `ledger statement` draws them)."""
    from bot.render import audits as render_audits
    from bot.render import ledger as render_ledger

    group = session.get(Group, group_id)
    if name == "audits":
        closed = audits.closed_audits(session, group_id, limit=render_audits.MAX_CHART_AUDITS)
        return render_audits.chart(closed, group.title) if closed else None
    wanted = _LEDGER_CHART.fullmatch(name)
    if wanted is None or not 1 <= int(wanted[1][5:]) <= 12:
        return None
    settings = directory.read_settings(session, group_id)
    shown = ledger.statement(session, group_id, wanted[1], settings.timezone)
    if not shown.entries:
        return None
    return render_ledger.chart(shown, settings.currency, group.title)


# What the web adapter calls --------------------------------------------------------------------------

class Reader:
    """The read-only questions the web adapter may ask, each answered in a transaction of its own.
    Blocking: the adapter runs them on a thread. None means "no such page" (a 404)."""

    def __init__(self, db: Database, directory: Directory, clock: Clock) -> None:
        self.db, self.directory, self.clock = db, directory, clock

    def page(self, token: str) -> Page | None:
        with self.db.transaction() as session:
            group_id = group_for_token(session, token)
            if group_id is None:
                return None
            return build_page(session, self.directory, group_id, self.clock.now())

    def group_feed(self, token: str) -> bytes | None:
        from bot import calendar_feed

        with self.db.transaction() as session:
            group_id = group_for_token(session, token)
            if group_id is None:
                return None
            return calendar_feed.group_feed(session, self.directory, group_id, self.clock.now())

    def personal_feed(self, token: str) -> bytes | None:
        from bot import calendar_feed

        with self.db.transaction() as session:
            person = person_for_token(session, token)
            if person is None:
                return None
            return calendar_feed.personal_feed(session, self.directory, *person, self.clock.now())

    def download(self, token: str, name: str) -> Download | None:
        with self.db.transaction() as session:
            group_id = group_for_token(session, token)
            if group_id is None:
                return None
            return download(session, self.directory, group_id, name, self.clock.now())

    def chart(self, token: str, name: str) -> Chart | None:
        with self.db.transaction() as session:
            group_id = group_for_token(session, token)
            if group_id is None:
                return None
            return chart(session, self.directory, group_id, name, self.clock.now())
