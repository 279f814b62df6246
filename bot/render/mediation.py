"""How mediation reads. Only `under_way` is said in the group, and it names nobody."""

from __future__ import annotations

from bot.i18n import _
from bot.render.text import RichText, TextBuilder, b, code, escape, i, quote
from storage.models import Mediation, Member


def _names(members: list[Member]) -> str:
    names = [b(member.display_name) for member in members]
    text = names[0] if names else ""
    for name in names[1:]:
        text = _("{first} and {second}").format(first=text, second=name)
    return text


def _reference(mediation: Mediation, group_title: str | None) -> str:
    """`#3 in Garden Coop`, or `#3` when the group has no title."""
    if group_title:
        return _("#{number} in {group}").format(number=mediation.number, group=escape(group_title))
    return f"#{mediation.number}"


def requested(mediation: Mediation, mediators: list[Member], group_title: str | None, prefix: str) -> RichText:
    """To the requester, privately."""
    text = TextBuilder().line(_("🕊 Mediation {reference}: I drew {mediators} by lot among the members who stand as "
                                "mediators (never a party to it).").format(
                                    reference=_reference(mediation, group_title), mediators=_names(mediators)))
    if len(mediators) < 2:
        text.line(i(_("Only one mediator could be drawn: nobody else stands for it right now.")))
    text.line(_("They have my message and will get in touch. Only they see what you wrote; the group only learns "
                "that a mediation is under way, and the audit counts it."))
    text.line(i(_("You can also write to them yourself. They close it with {command} when it is settled.").format(
        command=f"{prefix}mediation done {mediation.number}")))
    return text.build()


def for_mediator(mediation: Mediation, requester: Member, other: Member | None, partner: Member | None,
                 group_title: str | None, prefix: str) -> RichText:
    """To each mediator, privately: who asked, about whom and what, and how to close it."""
    if other:
        asked = _("🕊 You were drawn by lot to mediate ({reference}): {requester} asked for mediation, about a "
                  "conflict with {other}.")
    else:
        asked = _("🕊 You were drawn by lot to mediate ({reference}): {requester} asked for mediation.")
    text = TextBuilder().line(asked.format(reference=_reference(mediation, group_title),
                                           requester=b(requester.display_name),
                                           other=b(other.display_name) if other else ""))
    if mediation.about:
        text.line(_("What they wrote (only you two see it):"))
        text.line(quote(mediation.about))
    text.line(_("Your co-mediator: {partner}.").format(partner=b(partner.display_name)) if partner
              else i(_("You mediate alone this time.")))
    text.line(_("Please reach out to them soon. Nothing about this goes to the group."))
    text.line(_("When it is settled: {command} (privately).").format(
        command=code(f"{prefix}mediation done {mediation.number} [note]")))
    return text.build()


def under_way() -> RichText:
    """The only thing the group hears: no names, no words, no number."""
    return RichText(html=_("🕊 A mediation is under way. Conflict is tended by peers here, privately; the audit "
                           "counts mediations, never who or what."))


def closed_for_mediator(mediation: Mediation) -> RichText:
    return RichText(html=_("🕊 Mediation #{number} is closed. Thank you for tending it.").format(
        number=mediation.number))


def closed_for_requester(mediation: Mediation, group_title: str | None) -> RichText:
    return RichText(html=_("🕊 Your mediators closed mediation {reference}. If something is still "
                           "open for you, you can ask again at any time.").format(
                               reference=_reference(mediation, group_title)))
