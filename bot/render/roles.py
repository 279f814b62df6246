"""How roles read in a chat: the rotation calendar, lottery results, warnings
and lapses. Written once in the HTML subset; user text always escaped."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from bot.durations import format_duration
from bot.events import UserRef
from bot.governance import draws, roles
from bot.render.common import relative, when
from bot.render.text import RichText, TextBuilder, b, code, escape, i, mention, quote
from storage.models import Lottery, Mandate, Member, Role


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
    if role.sunset_at is not None:
        lines.append(f"   🌅 sunset {when(role.sunset_at, zone)} ({relative(role.sunset_at, now)}): the group keeps it "
                     "then, or it is retired")
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


RULE = ("seed = SHA-256(secret + each contribution, one per line); pick = next SHA-256(seed:i) below the largest "
        "multiple of n, modulo n")
BY_PLATFORM_ID = "Candidates, in order of their platform id"


def numbered(candidates: list[tuple[int, str]]) -> str:
    return ", ".join(f"{n}. {escape(name)}" for n, (_, name) in enumerate(candidates, 1)) or "none"


def how_to_add(lottery: Lottery, prefix: str, others_open: bool) -> str:
    """`!draw add <anything>`, naming the lottery when several are open."""
    return code(f"{prefix}draw add <anything>" + (f" lottery={lottery.number}" if others_open else ""))


def lottery_opened(lottery: Lottery, what: str, now: datetime, zone: ZoneInfo, prefix: str, others_open: bool,
                   candidates_label: str = BY_PLATFORM_ID) -> RichText:
    """A lottery opens: the frozen candidates, the commitment, when it is drawn and how to add randomness.
    `what` is markup (escaped already), like <b>facilitator</b>."""
    candidates = draws.candidates_of(lottery)
    seats = f"{lottery.seats} seat{'s' if lottery.seats != 1 else ''}"
    text = TextBuilder().line(f"🎲 {b(f'Lottery #{lottery.number}')} for {what}: {seats} among "
                              f"{len(candidates)} candidate{'s' if len(candidates) != 1 else ''}.")
    text.line(f"{candidates_label}: {numbered(candidates)}")
    text.line(f"Commitment: {code(lottery.commitment)} (SHA-256 of a secret I just generated; I reveal it at the "
              "draw, so anyone can check I did not change it).")
    text.line(f"Drawn {when(lottery.draws_at, zone)} ({relative(lottery.draws_at, now)}). Until then anyone may "
              f"add randomness: {how_to_add(lottery, prefix, others_open)}")
    return text.build()


def lottery_details(drawn: draws.Drawn, candidates_label: str = BY_PLATFORM_ID) -> list[str]:
    """Everything needed to recompute a draw: commitment, secret, contributions, seed, candidates."""
    lottery = drawn.lottery
    lines = [f"Commitment, published when it opened: {code(lottery.commitment)}",
             f"Secret, revealed now: {code(lottery.secret)}"]
    if drawn.contributions:
        lines.append(f"Contributions, in order ({len(drawn.contributions)}):")
        lines += [f"  {n}. {escape(name)}: {code(text)}" for n, (name, text) in enumerate(drawn.contributions, 1)]
    else:
        lines.append("Contributions: none.")
    lines.append(f"Seed: {code(lottery.seed or '')}")
    lines.append(f"{candidates_label}: {numbered(drawn.candidates)}")
    return lines


NON_HOLDERS = "Candidates (members who hold no role), in order of their platform id"


def task_draw_tail(drawn: draws.Drawn, cannot: str, command: str) -> list[str]:
    """The end of a task lottery's announcement (an auditor, a co-auditor): picks that could not take
    the task and why (`cannot`: "audit"), then everything needed to recompute the draw."""
    names = dict(drawn.candidates)
    lines = [f"⚠️ {b(names[member_id])} was drawn but cannot {cannot}: {escape(why)}."
             for member_id, why in drawn.unseated]
    return lines + lottery_details(drawn, NON_HOLDERS) + rule_lines(drawn, command)


def rule_lines(drawn: draws.Drawn, command: str) -> list[str]:
    """The rule in one line, and — when the window was skipped — whose seed it is."""
    lines = []
    if drawn.lottery.skipped_window:
        lines.append(f"⚠️ Drawn at once ({escape(command)}): nobody could add randomness, so this seed rests on "
                     "the bot alone.")
    lines.append(i(f"Recompute it: {RULE}; each pick leaves the list before the next."))
    return lines


def draw_announcement(drawn: draws.Drawn, zone: ZoneInfo, prefix: str) -> RichText:
    """A role's lottery drawn: the details, who takes which seat, and any pick who could not."""
    role = drawn.role
    name = role.name if role else "a role"
    text = TextBuilder().line(f"🎲 {b(f'Lottery #{drawn.lottery.number}')} for {b(name)}: drawn")
    for line in lottery_details(drawn):
        text.line(line)
    names = dict(drawn.candidates)
    numbers = {member_id: n for n, (member_id, _) in enumerate(drawn.candidates, 1)}
    for mandate in drawn.seated:
        text.line(f"Seat {mandate.seat} → {b(names[mandate.member_id])} (candidate {numbers[mandate.member_id]}), "
                  f"until {when(mandate.ends_at, zone)}")
    for member_id, why in drawn.unseated:
        text.line(f"⚠️ {b(names[member_id])} was drawn but takes no seat: {escape(why)}.")
    if drawn.unseated and role is not None and role.retired_at is None:
        text.line(f"The seat stays open: {code(f'{prefix}draw {role.key}')} draws again.")
    if not drawn.picks:
        text.line("Nobody was drawn.")
    for line in rule_lines(drawn, f"{prefix}draw {role.key if role else ''} now"):
        text.line(line)
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
