"""How needs and offers read in a chat: posted, claimed, met, nudged, listed,
and the weekly digest. An anonymous need never carries its author's name:
these functions are never given it."""

from __future__ import annotations

from datetime import datetime, timedelta

from bot import i18n
from bot.durations import humanize
from bot.governance import federation, needs
from bot.governance.needs import Listed
from bot.i18n import _
from bot.render.text import RichText, TextBuilder, b, code, escape, i
from storage.models import Group, Need

ICONS = {needs.NEED: "🆘", needs.OFFER: "🎁"}
SHORT = 80


def short(text: str, limit: int = SHORT) -> str:
    """A need's text trimmed for lists (escaped by the caller)."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def label(need: Need) -> str:
    """`need #5 (food)` — how a need is named in a sentence (raw text: b() escapes it)."""
    named = _("need #{number} ({category})") if need.kind == needs.NEED else _("offer #{number} ({category})")
    return named.format(number=need.number, category=need.category)


def from_group(name: str, group: Group) -> str:
    """`bob of North`: a member named in another group than their own (raw text: escape it)."""
    return _("{name} of {group}").format(name=name, group=federation.group_name(group))


def age(since: datetime, now: datetime) -> str:
    delta = now - since
    return _("just now") if delta < timedelta(minutes=1) else _("{duration} ago").format(duration=humanize(delta))


def waited(delta: timedelta) -> str:
    return _("under a minute") if delta < timedelta(minutes=1) else humanize(delta)


def posted(need: Need, author: str | None, prefix: str, shared_by: str | None = None,
           shared_with: list[str] | None = None) -> RichText:
    """The announcement in the group; `author` is None for an anonymous need. `shared_by`: a copy of
    another group's need (`share=federation`); `shared_with`: the groups the need was shared with."""
    text = TextBuilder()
    if shared_by:
        text.line(_("🤝 Shared by {group}:").format(group=b(shared_by)))
    text.line(f"{ICONS[need.kind]} {_posted_by(need, author)}")
    text.line(escape(need.text))
    claim = code(f"{prefix}claim {need.number}")
    if need.kind == needs.NEED:
        text.line(_("<i>Can you help? </i>{claim}").format(claim=claim))
    else:
        text.line(_("<i>Want it? </i>{claim}<i> · meets a need? </i>{match}")
                  .format(claim=claim, match=code(f"{prefix}claim <need#> with {need.number}")))
    if shared_with is not None:
        text.line(i(_shared_with(shared_with)))
    return text.build()


def _shared_with(groups: list[str]) -> str:
    if not groups:
        return _("Shared with the federation, whose other groups are none yet.")
    return _("Shared with the federation's other groups too: {groups}.").format(groups=", ".join(groups))


def _posted_by(need: Need, author: str | None) -> str:
    """`Need #5 (food) ❗ urgent from Ana:`, or from a member who posted privately."""
    if author:
        message = _("{need} ❗ urgent from {name}:") if need.urgent else _("{need} from {name}:")
    else:
        message = (_("{need} ❗ urgent from a member (posted privately):") if need.urgent
                   else _("{need} from a member (posted privately):"))
    return message.format(need=b(label(need).capitalize()), name=escape(author or ""))


def private_receipt(need: Need, group_title: str | None, prefix: str, shared_with: list[str] | None = None
                    ) -> RichText:
    """`shared_with`: the groups of the federation the need went to as well (None: not shared)."""
    receipt = (_("🔒 Posted in {group} as {need} without your name.") if group_title
               else _("🔒 Posted in the group as {need} without your name."))
    text = TextBuilder().line(receipt.format(group=b(group_title or ""), need=b(label(need))))
    if shared_with is not None:
        text.line(escape(_shared_with(shared_with)))
    return (text.line(_("Nobody will be told it was you; I will write to you here when someone claims it."))
            .line(_("<i>When it is sorted: </i>{met}<i> · to withdraw it: </i>{cancel}")
                  .format(met=code(f"{prefix}met {need.number}"), cancel=code(f"{prefix}cancel {need.number}")))
            .build())


def need_line(entry: Listed, now: datetime) -> str:
    need = entry.need
    parts = [f"{ICONS[need.kind]} {b(f'#{need.number}')} [{escape(need.category)}] {escape(short(need.text))}"]
    facts = [age(need.created_at, now)]
    if need.urgent:
        facts.insert(0, _("❗ urgent"))
    if entry.shared_by:
        facts.append(_("shared by {group}").format(group=escape(entry.shared_by)))
    if entry.author:
        facts.append(_("by {name}").format(name=escape(entry.author)))
    if entry.claimer:
        claimed_by = (_("claimed by {name} with offer #{offer}") if entry.offer_number
                      else _("claimed by {name}"))
        facts.append(claimed_by.format(name=escape(entry.claimer), offer=entry.offer_number))
    elif needs.is_overdue(need, now):
        facts.append(_("⏰ waiting over 48 hours"))
    return f"{parts[0]} — {' · '.join(facts)}"


def listing(entries: list[Listed], total: int, category: str | None, now: datetime, prefix: str,
            group_ref: str) -> RichText:
    title = (_("Open needs and offers in {category} ({count})") if category
             else _("Open needs and offers ({count})"))
    text = TextBuilder().line(b(title.format(category=escape(category or ""), count=total)))
    for entry in entries:
        text.line(need_line(entry, now))
    if total > len(entries):
        text.line(i(_("…and {count} more; narrow it with {command} <category>.")
                    .format(count=i18n.number(total - len(entries)), command=f"{prefix}needs")))
    text.line(_("<i>Claim one: </i>{claim}<i> · ask privately: message me </i>{ask}")
              .format(claim=code(f"{prefix}claim <#>"), ask=code(f"need <text> group={group_ref}")))
    return text.build()


def claimed(need: Need, claimer: str, offer: Need | None, author_mention: str | None) -> RichText:
    message = (_("🤝 {name} claimed {need} with {offer}: {text}") if offer is not None
               else _("🤝 {name} claimed {need}: {text}"))
    text = TextBuilder().line(message.format(name=escape(claimer), need=b(label(need)),
                                             offer=b(label(offer)) if offer is not None else "",
                                             text=escape(short(need.text))))
    if author_mention:
        text.line(_("{author}, {name} is on it.").format(author=author_mention, name=escape(claimer)))
    return text.build()


def private_update(need: Need, group_title: str | None, event: str) -> RichText:
    """What the anonymous author is told by direct message."""
    update = _("🔒 Your {need} in {group}: {event}") if group_title else _("🔒 Your {need}: {event}")
    return (TextBuilder().line(update.format(need=b(label(need)), group=b(group_title or ""), event=escape(event)))
            .line(i(short(need.text))).build())


def unclaimed(need: Need, by: str) -> RichText:
    return (TextBuilder().line(_("↩️ {name} released {need}; it is open again: {text}")
                               .format(name=escape(by), need=b(label(need)), text=escape(short(need.text))))
            .build())


def met(need: Need, by: str | None, claimer: str | None) -> RichText:
    """`by` is None when the anonymous author marked it met."""
    message = (_("🌱 {need} is met by {name}, after {duration}.") if by
               else _("🌱 {need} is met, after {duration}."))
    line = message.format(need=b(label(need).capitalize()), name=escape(by or ""),
                          duration=waited(need.met_at - need.created_at))
    if claimer:
        line += " " + _("Thank you, {name}!").format(name=escape(claimer))
    return TextBuilder().line(line).line(i(short(need.text))).build()


def cancelled(need: Need) -> RichText:
    return TextBuilder().line(_("✖️ {need} was withdrawn by its author.")
                              .format(need=b(label(need).capitalize()))).build()


def nudge(need: Need, now: datetime, prefix: str) -> RichText:
    waiting = (_("🔔 Still waiting for help after {duration}: {need} ❗ urgent") if need.urgent
               else _("🔔 Still waiting for help after {duration}: {need}"))
    return (TextBuilder()
            .line(waiting.format(duration=waited(now - need.created_at), need=b(label(need))))
            .line(escape(short(need.text, 200)))
            .line(_("<i>Can you take it on? </i>{claim}").format(claim=code(f"{prefix}claim {need.number}")))
            .build())


def digest(entries: list[Listed], open_needs: int, overdue: int, open_offers: int, met_count: int,
           typical: timedelta | None, now: datetime, prefix: str) -> RichText:
    text = TextBuilder().line(b(_("🗓 This week in mutual aid")))
    met_line = (_("🌱 Needs met this week: {count}, typically after {duration}.") if typical is not None
                else _("🌱 Needs met this week: {count}."))
    text.line(met_line.format(count=b(str(met_count)), duration=waited(typical) if typical is not None else ""))
    open_line = (_("🆘 Open needs: {needs}, {overdue} ⏰ overdue (unclaimed for more than 48 hours) · 🎁 open offers: "
                   "{offers}") if overdue else _("🆘 Open needs: {needs} · 🎁 open offers: {offers}"))
    text.line(open_line.format(needs=b(str(open_needs)), overdue=b(str(overdue)), offers=open_offers))
    for entry in entries:
        text.line(need_line(entry, now))
    if open_needs + open_offers > len(entries):
        text.line(i(_("The full list: {command}").format(command=f"{prefix}needs")))
    return text.build()
