"""How needs and offers read in a chat: posted, claimed, met, nudged, listed,
and the weekly digest. An anonymous need never carries its author's name:
these functions are never given it."""

from __future__ import annotations

from datetime import datetime, timedelta

from bot.durations import humanize
from bot.governance import needs
from bot.governance.needs import Listed
from bot.render.text import RichText, TextBuilder, b, code, escape, i
from storage.models import Need

ICONS = {needs.NEED: "🆘", needs.OFFER: "🎁"}
SHORT = 80


def short(text: str, limit: int = SHORT) -> str:
    """A need's text trimmed for lists (escaped by the caller)."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def label(need: Need) -> str:
    """`need #5 (food)` — how a need is named in a sentence (raw text: b() escapes it)."""
    return f"{need.kind} #{need.number} ({need.category})"


def age(since: datetime, now: datetime) -> str:
    delta = now - since
    return "just now" if delta < timedelta(minutes=1) else f"{humanize(delta)} ago"


def waited(delta: timedelta) -> str:
    return "under a minute" if delta < timedelta(minutes=1) else humanize(delta)


def posted(need: Need, author: str | None, prefix: str) -> RichText:
    """The announcement in the group; `author` is None for an anonymous need."""
    who = escape(author) if author else "a member (posted privately)"
    urgent = " ❗ urgent" if need.urgent else ""
    text = TextBuilder().line(f"{ICONS[need.kind]} {b(label(need).capitalize())}{urgent} from {who}:")
    text.line(escape(need.text))
    if need.kind == needs.NEED:
        text.line(i("Can you help? ") + code(f"{prefix}claim {need.number}"))
    else:
        text.line(i("Want it? ") + code(f"{prefix}claim {need.number}") +
                  i(" · meets a need? ") + code(f"{prefix}claim <need#> with {need.number}"))
    return text.build()


def private_receipt(need: Need, group_title: str | None, prefix: str) -> RichText:
    where = b(group_title) if group_title else "the group"
    return (TextBuilder()
            .line(f"🔒 Posted in {where} as {b(label(need))} without your name.")
            .line("Nobody will be told it was you; I will write to you here when someone claims it.")
            .line(i("When it is sorted: ") + code(f"{prefix}met {need.number}") + i(" · to withdraw it: ")
                  + code(f"{prefix}cancel {need.number}"))
            .build())


def need_line(entry: Listed, now: datetime) -> str:
    need = entry.need
    parts = [f"{ICONS[need.kind]} {b(f'#{need.number}')} [{escape(need.category)}] {escape(short(need.text))}"]
    facts = [age(need.created_at, now)]
    if need.urgent:
        facts.insert(0, "❗ urgent")
    if entry.author:
        facts.append(f"by {escape(entry.author)}")
    if entry.claimer:
        offer = f" with offer #{entry.offer_number}" if entry.offer_number else ""
        facts.append(f"claimed by {escape(entry.claimer)}{offer}")
    elif needs.is_overdue(need, now):
        facts.append("⏰ waiting over 48 hours")
    return f"{parts[0]} — {' · '.join(facts)}"


def listing(entries: list[Listed], total: int, category: str | None, now: datetime, prefix: str,
            group_ref: str) -> RichText:
    title = f"Open needs and offers{f' in {escape(category)}' if category else ''}"
    text = TextBuilder().line(b(f"{title} ({total})"))
    for entry in entries:
        text.line(need_line(entry, now))
    if total > len(entries):
        text.line(i(f"…and {total - len(entries):,} more; narrow it with {prefix}needs <category>."))
    text.line(i("Claim one: ") + code(f"{prefix}claim <#>") + i(" · ask privately: message me ")
              + code(f"need <text> group={group_ref}"))
    return text.build()


def claimed(need: Need, claimer: str, offer: Need | None, author_mention: str | None) -> RichText:
    offer_text = f" with {b(label(offer))}" if offer is not None else ""
    text = TextBuilder().line(f"🤝 {escape(claimer)} claimed {b(label(need))}{offer_text}: "
                              f"{escape(short(need.text))}")
    if author_mention:
        text.line(f"{author_mention}, {escape(claimer)} is on it.")
    return text.build()


def private_update(need: Need, group_title: str | None, event: str) -> RichText:
    """What the anonymous author is told by direct message."""
    where = f" in {b(group_title)}" if group_title else ""
    return (TextBuilder().line(f"🔒 Your {b(label(need))}{where}: {escape(event)}")
            .line(i(short(need.text))).build())


def unclaimed(need: Need, by: str) -> RichText:
    return (TextBuilder().line(f"↩️ {escape(by)} released {b(label(need))}; it is open again: "
                               f"{escape(short(need.text))}").build())


def met(need: Need, by: str | None, claimer: str | None) -> RichText:
    """`by` is None when the anonymous author marked it met."""
    thanks = f" Thank you, {escape(claimer)}!" if claimer else ""
    who = f" by {escape(by)}" if by else ""
    return (TextBuilder().line(f"🌱 {b(label(need).capitalize())} is met{who}, "
                               f"after {waited(need.met_at - need.created_at)}.{thanks}")
            .line(i(short(need.text))).build())


def cancelled(need: Need) -> RichText:
    return TextBuilder().line(f"✖️ {b(label(need).capitalize())} was withdrawn by its author.").build()


def nudge(need: Need, now: datetime, prefix: str) -> RichText:
    return (TextBuilder()
            .line(f"🔔 Still waiting for help after {waited(now - need.created_at)}: {b(label(need))}"
                  f"{' ❗ urgent' if need.urgent else ''}")
            .line(escape(short(need.text, 200)))
            .line(i("Can you take it on? ") + code(f"{prefix}claim {need.number}"))
            .build())


def digest(entries: list[Listed], open_needs: int, overdue: int, open_offers: int, met_count: int,
           typical: timedelta | None, now: datetime, prefix: str) -> RichText:
    text = TextBuilder().line(b("🗓 This week in mutual aid"))
    speed = f", typically after {waited(typical)}" if typical is not None else ""
    text.line(f"🌱 Needs met this week: {b(str(met_count))}{speed}.")
    text.line(f"🆘 Open needs: {b(str(open_needs))}"
              + (f", {b(str(overdue))} ⏰ overdue (unclaimed for more than 48 hours)" if overdue else "")
              + f" · 🎁 open offers: {open_offers}")
    for entry in entries:
        text.line(need_line(entry, now))
    if open_needs + open_offers > len(entries):
        text.line(i(f"The full list: {prefix}needs"))
    return text.build()
