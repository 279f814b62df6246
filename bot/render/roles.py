"""How roles read in a chat: the rotation calendar, lottery results, warnings
and lapses. Written once in the HTML subset; user text always escaped."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from bot import i18n
from bot.durations import format_duration
from bot.events import UserRef
from bot.governance import draws, roles
from bot.i18n import N_, _, ngettext
from bot.render.common import relative, when
from bot.render.text import RichText, TextBuilder, b, code, escape, i, mention, quote
from storage.models import Lottery, Mandate, Member, Role

# How a mandate ended (stored as these words; shown translated).
END_REASONS = {roles.EXPIRED: N_("expired"), roles.RENEWED: N_("renewed"), roles.RECALLED: N_("recalled"),
               roles.STEPPED_DOWN: N_("stepped down"), roles.RETIRED: N_("retired")}


def names(members: list[Member]) -> str:
    return ", ".join(escape(m.display_name) for m in members) or _("none")


def end_reason(mandate: Mandate) -> str:
    reason = mandate.end_reason or ""
    return escape(_(END_REASONS[reason]) if reason in END_REASONS else reason)


def role_header(role: Role) -> str:
    term = _("{duration} term").format(duration=format_duration(roles.term_of(role)))
    seats = ngettext("{count} seat", "{count} seats", role.seats).format(count=role.seats)
    limit = ngettext("max {count} term in a row", "max {count} terms in a row", role.max_terms).format(
        count=role.max_terms)
    delegate = " · 🤝 " + _("delegate to the federation") if role.delegate else ""
    return f"🔁 {b(role.name)} · {term} · {seats} · {escape(role.fill)} · {limit}{delegate}"


def role_terms(role: Role) -> str:
    """How a role is filled, in words (plain text): what `role add` and `role edit` announce.
    The role's change log keeps the English of `roles.describe`."""
    parts = [_("term {term}").format(term=format_duration(timedelta(seconds=role.term_seconds))),
             ngettext("{count} seat", "{count} seats", role.seats).format(count=role.seats),
             ngettext("max {count} term in a row", "max {count} terms in a row", role.max_terms).format(
                 count=role.max_terms),
             _("fill by {fill}").format(fill=role.fill)]
    if role.trainees_required:
        parts.append(ngettext("{count} trainee before renewal", "{count} trainees before renewal",
                              role.trainees_required).format(count=role.trainees_required))
    if role.delegate:
        parts.append(_("delegate to the federation"))
    return ", ".join(parts)


def calendar_entry(role: Role, holders: list[tuple[Mandate, Member]], volunteers: list[Member],
                   trainees: list[Member], before: list[tuple[Mandate, Member]], learned: dict[int, int],
                   now: datetime, zone: ZoneInfo) -> list[str]:
    """One role in the rotation calendar; `learned` counts trainees per mandate this term."""
    lines = [role_header(role)]
    lines += [f"   {holder_line(role, mandate, member, learned.get(mandate.id, 0), now, zone)}"
              for mandate, member in holders]
    empty = role.seats - len(holders)
    if empty:
        lines.append("   " + ngettext("empty seat", "{count} empty seats", empty).format(count=empty))
    lines.append("   " + _("volunteers: {volunteers} · trainees: {trainees}").format(volunteers=names(volunteers),
                                                                                     trainees=names(trainees)))
    if before:
        past = ", ".join(f"{escape(member.display_name)} ({end_reason(mandate)} "
                         f"{i18n.date(mandate.ended_at.astimezone(zone), year=False)})" for mandate, member in before)
        lines.append("   " + _("before: {mandates}").format(mandates=past))
    if role.delegate:
        lines.append("   " + (_("mandate: {mandate}").format(mandate=i(role.mandate)) if role.mandate
                              else _("no mandate set yet")))
    if role.sunset_at is not None:
        lines.append("   " + _("🌅 sunset {date} ({relative}): the group keeps it then, or it is retired").format(
            date=when(role.sunset_at, zone), relative=relative(role.sunset_at, now)))
    return lines


def holder_line(role: Role, mandate: Mandate, member: Member, learned: int, now: datetime, zone: ZoneInfo) -> str:
    """A holder in the calendar, flagged when too few trainees shadowed them this term to renew."""
    values = {"name": escape(member.display_name), "date": when(mandate.ends_at, zone),
              "relative": relative(mandate.ends_at, now), "term": mandate.term_number}
    if role.trainees_required and learned < role.trainees_required:
        return _("{name} — until {date} ({relative}), term {term} ⚠️ {learned}/{required} trainees, not renewable "
                 "yet").format(learned=learned, required=role.trainees_required, **values)
    return _("{name} — until {date} ({relative}), term {term}").format(**values)


def history_lines(role: Role, current: list[tuple[Mandate, Member]], past: list[tuple[Mandate, Member]],
                  zone: ZoneInfo) -> list[str]:
    lines = [_("{role} — who held it").format(role=b(role.name))]
    for mandate, member in current:
        lines.append(_("• {name}: since {start}, by {fill}, term {term}, until {end}").format(
            name=escape(member.display_name), start=i18n.date(mandate.started_at.astimezone(zone)),
            fill=escape(mandate.filled_by), term=mandate.term_number,
            end=i18n.date(mandate.ends_at.astimezone(zone))))
    for mandate, member in past:
        values = {"name": escape(member.display_name), "start": i18n.date(mandate.started_at.astimezone(zone)),
                  "end": i18n.date(mandate.ended_at.astimezone(zone)), "fill": escape(mandate.filled_by),
                  "reason": end_reason(mandate)}
        if mandate.renewals:
            lines.append(_("• {name}: {start} – {end}, by {fill}, renewed {count}×, {reason}").format(
                count=mandate.renewals, **values))
        else:
            lines.append(_("• {name}: {start} – {end}, by {fill}, {reason}").format(**values))
    return lines


RULE = N_("seed = SHA-256(secret + each contribution, one per line); pick = next SHA-256(seed:i) below the largest "
          "multiple of n, modulo n")
BY_PLATFORM_ID = N_("Candidates, in order of their platform id")  # a candidates label: translated where shown


def numbered(candidates: list[tuple[int, str]]) -> str:
    return ", ".join(f"{n}. {escape(name)}" for n, (__, name) in enumerate(candidates, 1)) or _("none")


def how_to_add(lottery: Lottery, prefix: str, others_open: bool) -> str:
    """`!draw add <anything>`, naming the lottery when several are open."""
    return code(f"{prefix}draw add <anything>" + (f" lottery={lottery.number}" if others_open else ""))


def lottery_opened(lottery: Lottery, what: str, now: datetime, zone: ZoneInfo, prefix: str, others_open: bool,
                   candidates_label: str = BY_PLATFORM_ID) -> RichText:
    """A lottery opens: the frozen candidates, the commitment, when it is drawn and how to add randomness.
    `what` is markup (escaped already), like <b>facilitator</b>."""
    candidates = draws.candidates_of(lottery)
    seats = ngettext("{count} seat", "{count} seats", lottery.seats).format(count=lottery.seats)
    text = TextBuilder().line(ngettext("🎲 <b>Lottery #{number}</b> for {what}: {seats} among {count} candidate.",
                                       "🎲 <b>Lottery #{number}</b> for {what}: {seats} among {count} candidates.",
                                       len(candidates)).format(number=lottery.number, what=what, seats=seats,
                                                               count=len(candidates)))
    text.line(f"{_(candidates_label)}: {numbered(candidates)}")
    text.line(_("Commitment: {commitment} (SHA-256 of a secret I just generated; I reveal it at the draw, so anyone "
                "can check I did not change it).").format(commitment=code(lottery.commitment)))
    text.line(_("Drawn {date} ({relative}). Until then anyone may add randomness: {command}").format(
        date=when(lottery.draws_at, zone), relative=relative(lottery.draws_at, now),
        command=how_to_add(lottery, prefix, others_open)))
    return text.build()


def lottery_details(drawn: draws.Drawn, candidates_label: str = BY_PLATFORM_ID) -> list[str]:
    """Everything needed to recompute a draw: commitment, secret, contributions, seed, candidates."""
    lottery = drawn.lottery
    lines = [_("Commitment, published when it opened: {commitment}").format(commitment=code(lottery.commitment)),
             _("Secret, revealed now: {secret}").format(secret=code(lottery.secret))]
    if drawn.contributions:
        lines.append(_("Contributions, in order ({count}):").format(count=len(drawn.contributions)))
        lines += [f"  {n}. {escape(name)}: {code(text)}" for n, (name, text) in enumerate(drawn.contributions, 1)]
    else:
        lines.append(_("Contributions: none."))
    lines.append(_("Seed: {seed}").format(seed=code(lottery.seed or "")))
    lines.append(f"{_(candidates_label)}: {numbered(drawn.candidates)}")
    return lines


NON_HOLDERS = N_("Candidates (members who hold no role), in order of their platform id")


# A pick that cannot take the task, per task lottery (`task_draw_tail`'s `cannot`).
CANNOT = {"audit": N_("⚠️ <b>{name}</b> was drawn but cannot audit: {reason}."),
          "check": N_("⚠️ <b>{name}</b> was drawn but cannot check: {reason}.")}


def task_draw_tail(drawn: draws.Drawn, cannot: str, command: str) -> list[str]:
    """The end of a task lottery's announcement (an auditor, a co-auditor): picks that could not take
    the task and why (`cannot`: "audit" or "check", a key of CANNOT), then everything needed to
    recompute the draw."""
    names = dict(drawn.candidates)
    lines = [_(CANNOT[cannot]).format(name=escape(names[member_id]), reason=escape(why))
             for member_id, why in drawn.unseated]
    return lines + lottery_details(drawn, NON_HOLDERS) + rule_lines(drawn, command)


def rule_lines(drawn: draws.Drawn, command: str) -> list[str]:
    """The rule in one line, and — when the window was skipped — whose seed it is."""
    lines = []
    if drawn.lottery.skipped_window:
        lines.append(_("⚠️ Drawn at once ({command}): nobody could add randomness, so this seed rests on the bot "
                       "alone.").format(command=escape(command)))
    lines.append(i(_("Recompute it: {rule}; each pick leaves the list before the next.").format(rule=_(RULE))))
    return lines


def draw_announcement(drawn: draws.Drawn, zone: ZoneInfo, prefix: str) -> RichText:
    """A role's lottery drawn: the details, who takes which seat, and any pick who could not."""
    role = drawn.role
    name = role.name if role else _("a role")
    text = TextBuilder().line(_("🎲 <b>Lottery #{number}</b> for <b>{role}</b>: drawn").format(
        number=drawn.lottery.number, role=escape(name)))
    for line in lottery_details(drawn):
        text.line(line)
    names = dict(drawn.candidates)
    numbers = {member_id: n for n, (member_id, __) in enumerate(drawn.candidates, 1)}
    for mandate in drawn.seated:
        text.line(_("Seat {seat} → <b>{name}</b> (candidate {number}), until {date}").format(
            seat=mandate.seat, name=escape(names[mandate.member_id]), number=numbers[mandate.member_id],
            date=when(mandate.ends_at, zone)))
    for member_id, why in drawn.unseated:
        text.line(_("⚠️ <b>{name}</b> was drawn but takes no seat: {reason}.").format(name=escape(names[member_id]),
                                                                                     reason=escape(why)))
    if drawn.unseated and role is not None and role.retired_at is None:
        text.line(_("The seat stays open: {command} draws again.").format(command=code(f"{prefix}draw {role.key}")))
    if not drawn.picks:
        text.line(_("Nobody was drawn."))
    for line in rule_lines(drawn, f"{prefix}draw {role.key if role else ''} now"):
        text.line(line)
    return text.build()


def handover_block(role: Role) -> str:
    if role.handover:
        return _("Handover note for {role}:").format(role=escape(role.name)) + f"\n{quote(role.handover)}"
    return i(_("{role} has no handover note yet; whoever holds it can write one with {command}").format(
        role=role.name, command=f'role edit {role.key} handover="…"'))


def warning(role: Role, mandate: Mandate, holder: Member, volunteers: list[Member], now: datetime,
            zone: ZoneInfo, prefix: str, user: UserRef) -> RichText:
    text = TextBuilder()
    text.line(_("⏳ {holder}'s term as {role} ends {date} ({relative}).").format(
        holder=mention(user, holder.display_name), role=b(role.name), date=when(mandate.ends_at, zone),
        relative=relative(mandate.ends_at, now)))
    text.line(_("Volunteers for the next term: {volunteers}.").format(volunteers=names(volunteers)))
    text.line(_("To renew: {renew} · to stand: {volunteer} · the handover note: {handover}").format(
        renew=code(f"{prefix}renew {role.key}"), volunteer=code(f"{prefix}volunteer {role.key}"),
        handover=code(f"{prefix}handover {role.key}")))
    return text.build()


def private_warning(role: Role, mandate: Mandate, group_title: str | None, now: datetime,
                    zone: ZoneInfo) -> RichText:
    values = {"role": b(role.name), "date": when(mandate.ends_at, zone), "relative": relative(mandate.ends_at, now)}
    if group_title:
        return RichText(html=_("⏳ Your term as {role} in {group} ends {date} ({relative}). Thank you for carrying "
                               "it; think about who you will hand it over to.").format(group=escape(group_title),
                                                                                      **values))
    return RichText(html=_("⏳ Your term as {role} ends {date} ({relative}). Thank you for carrying it; think about "
                           "who you will hand it over to.").format(**values))


def lapse(role: Role, holder: Member, eligible: list[Member], next_hint: str) -> RichText:
    headline = _("⌛ {holder}'s term as {role} has ended, as every mandate does. Thank you!").format(
        holder=b(holder.display_name), role=b(role.name))
    return _seat_opened(headline, role, eligible, next_hint)


def stepped_down(role: Role, member: Member, eligible: list[Member], next_hint: str) -> RichText:
    headline = _("🌱 {member} steps down from {role} — thank you for the work, and for making room. Rotation is how "
                 "a group stays healthy.").format(member=b(member.display_name), role=b(role.name))
    return _seat_opened(headline, role, eligible, next_hint)


def _seat_opened(headline: str, role: Role, eligible: list[Member], next_hint: str) -> RichText:
    """A seat just opened: who may take it, how, and the handover note."""
    text = TextBuilder().line(headline)
    text.line(_("The seat is open. Eligible volunteers: {volunteers}. {next_step}").format(
        volunteers=names(eligible), next_step=next_hint))
    text.line(handover_block(role))
    return text.build()
