"""How roles read in a chat: the rotation calendar, lottery results, warnings
and lapses. Written once in the HTML subset; user text always escaped."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from bot.durations import format_duration
from bot.events import UserRef
from bot.governance import roles
from bot.render.common import relative, when
from bot.render.text import RichText, TextBuilder, b, code, escape, i, mention, quote
from storage.models import Mandate, Member, Role


def names(members: list[Member]) -> str:
    return ", ".join(escape(m.display_name) for m in members) or "none"


def role_header(role: Role) -> str:
    limit = f"max {role.max_terms} term{'s' if role.max_terms != 1 else ''} in a row"
    return (f"🔁 {b(role.name)} · {format_duration(roles.term_of(role))} term · {role.seats} seat"
            f"{'s' if role.seats != 1 else ''} · {escape(role.fill)} · {limit}")


def calendar_entry(role: Role, holders: list[tuple[Mandate, Member]], volunteers: list[Member],
                   trainees: list[Member], before: list[tuple[Mandate, Member]], learned: dict[int, int],
                   now: datetime, zone: ZoneInfo) -> list[str]:
    """One role in the rotation calendar; `learned` counts trainees per mandate this term."""
    lines = [role_header(role)]
    for mandate, member in holders:
        flag = ""
        if role.trainees_required and learned.get(mandate.id, 0) < role.trainees_required:
            flag = f" ⚠️ {learned.get(mandate.id, 0)}/{role.trainees_required} trainees, not renewable yet"
        lines.append(f"   {escape(member.display_name)} — until {when(mandate.ends_at, zone)} "
                     f"({relative(mandate.ends_at, now)}), term {mandate.term_number}{flag}")
    empty = role.seats - len(holders)
    if empty:
        lines.append(f"   {'empty seat' if empty == 1 else f'{empty} empty seats'}")
    lines.append(f"   volunteers: {names(volunteers)} · trainees: {names(trainees)}")
    if before:
        past = ", ".join(f"{escape(member.display_name)} ({escape(mandate.end_reason or '')} "
                         f"{mandate.ended_at.astimezone(zone):%d %b})" for mandate, member in before)
        lines.append(f"   before: {past}")
    return lines


def history_lines(role: Role, current: list[tuple[Mandate, Member]], past: list[tuple[Mandate, Member]],
                  zone: ZoneInfo) -> list[str]:
    lines = [f"{b(role.name)} — who held it"]
    for mandate, member in current:
        lines.append(f"• {escape(member.display_name)}: since {mandate.started_at.astimezone(zone):%d %b %Y}, "
                     f"by {escape(mandate.filled_by)}, term {mandate.term_number}, until "
                     f"{mandate.ends_at.astimezone(zone):%d %b %Y}")
    for mandate, member in past:
        renewed = f", renewed {mandate.renewals}×" if mandate.renewals else ""
        lines.append(f"• {escape(member.display_name)}: {mandate.started_at.astimezone(zone):%d %b %Y} – "
                     f"{mandate.ended_at.astimezone(zone):%d %b %Y}, by {escape(mandate.filled_by)}{renewed}, "
                     f"{escape(mandate.end_reason or '')}")
    return lines


def draw_announcement(role: Role, result: roles.DrawResult, zone: ZoneInfo) -> RichText:
    text = TextBuilder().line(f"🎲 Lottery for {b(role.name)}")
    text.line("Candidates, in order of their platform id: " + ", ".join(
        f"{n}. {escape(name)}" for n, (_, name) in enumerate(result.candidates, 1)))
    text.line(f"Seed: {code(result.draw.seed)}")
    left = [member_id for member_id, _ in result.candidates]
    chosen = dict(result.candidates)
    for seat_number, ((index, member_id), mandate) in enumerate(zip(result.picks, result.mandates, strict=True), 1):
        text.line(f"Seat {seat_number}: SHA-256(\"{escape(result.draw.seed)}:{seat_number}\") mod {len(left)} = "
                  f"{index} → {b(chosen[member_id])}, until {when(mandate.ends_at, zone)}")
        left.remove(member_id)
    text.line(i("Anyone can recompute this: take the list, drop each pick before the next seat."))
    return text.build()


def handover_block(role: Role) -> str:
    if role.handover:
        return f"Handover note for {escape(role.name)}:\n{quote(role.handover)}"
    return i(f"{role.name} has no handover note yet; whoever holds it can write one with role edit "
             f"{role.key} handover=\"…\"")


def warning(role: Role, mandate: Mandate, holder: Member, volunteers: list[Member], now: datetime,
            zone: ZoneInfo, prefix: str, user: UserRef) -> RichText:
    text = TextBuilder()
    text.line(f"⏳ {mention(user, holder.display_name)}'s term as {b(role.name)} ends "
              f"{when(mandate.ends_at, zone)} ({relative(mandate.ends_at, now)}).")
    text.line(f"Volunteers for the next term: {names(volunteers)}.")
    text.line(f"To renew: {code(f'{prefix}renew {role.key}')} · to stand: {code(f'{prefix}volunteer {role.key}')}"
              f" · the handover note: {code(f'{prefix}handover {role.key}')}")
    return text.build()


def private_warning(role: Role, mandate: Mandate, group_title: str | None, now: datetime,
                    zone: ZoneInfo) -> RichText:
    where = f" in {escape(group_title)}" if group_title else ""
    return RichText(html=f"⏳ Your term as {b(role.name)}{where} ends {when(mandate.ends_at, zone)} "
                         f"({relative(mandate.ends_at, now)}). Thank you for carrying it; think about who "
                         f"you will hand it over to.")


def lapse(role: Role, holder: Member, eligible: list[Member], next_hint: str) -> RichText:
    return _seat_opened(f"⌛ {b(holder.display_name)}'s term as {b(role.name)} has ended, as every mandate "
                        "does. Thank you!", role, eligible, next_hint)


def stepped_down(role: Role, member: Member, eligible: list[Member], next_hint: str) -> RichText:
    return _seat_opened(f"🌱 {b(member.display_name)} steps down from {b(role.name)} — thank you for the work, "
                        "and for making room. Rotation is how a group stays healthy.", role, eligible, next_hint)


def _seat_opened(headline: str, role: Role, eligible: list[Member], next_hint: str) -> RichText:
    """A seat just opened: who may take it, how, and the handover note."""
    text = TextBuilder().line(headline)
    text.line(f"The seat is open. Eligible volunteers: {names(eligible)}. {next_hint}")
    text.line(handover_block(role))
    return text.build()
