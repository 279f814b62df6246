"""How mediation reads. Only `under_way` is said in the group, and it names nobody."""

from __future__ import annotations

from bot.render.text import RichText, TextBuilder, b, code, escape, i, quote
from storage.models import Mediation, Member


def _names(members: list[Member]) -> str:
    return " and ".join(b(member.display_name) for member in members)


def requested(mediation: Mediation, mediators: list[Member], group_title: str | None, prefix: str) -> RichText:
    """To the requester, privately."""
    where = f" in {escape(group_title)}" if group_title else ""
    text = TextBuilder().line(f"🕊 Mediation #{mediation.number}{where}: I drew {_names(mediators)} by lot among "
                              "the members who stand as mediators (never a party to it).")
    if len(mediators) < 2:
        text.line(i("Only one mediator could be drawn: nobody else stands for it right now."))
    text.line("They have my message and will get in touch. Only they see what you wrote; the group only learns "
              "that a mediation is under way, and the audit counts it.")
    text.line(i(f"You can also write to them yourself. They close it with {prefix}mediation done "
                f"{mediation.number} when it is settled."))
    return text.build()


def for_mediator(mediation: Mediation, requester: Member, other: Member | None, partner: Member | None,
                 group_title: str | None, prefix: str) -> RichText:
    """To each mediator, privately: who asked, about whom and what, and how to close it."""
    where = f" in {escape(group_title)}" if group_title else ""
    with_whom = f", about a conflict with {b(other.display_name)}" if other else ""
    text = TextBuilder().line(f"🕊 You were drawn by lot to mediate (#{mediation.number}{where}): "
                              f"{b(requester.display_name)} asked for mediation{with_whom}.")
    if mediation.about:
        text.line("What they wrote (only you two see it):")
        text.line(quote(mediation.about))
    text.line(f"Your co-mediator: {b(partner.display_name)}." if partner else i("You mediate alone this time."))
    text.line("Please reach out to them soon. Nothing about this goes to the group.")
    text.line(f"When it is settled: {code(f'{prefix}mediation done {mediation.number} [note]')} (privately).")
    return text.build()


def under_way() -> RichText:
    """The only thing the group hears: no names, no words, no number."""
    return RichText(html="🕊 A mediation is under way. Conflict is tended by peers here, privately; the audit "
                         "counts mediations, never who or what.")


def closed_for_mediator(mediation: Mediation) -> RichText:
    return RichText(html=f"🕊 Mediation #{mediation.number} is closed. Thank you for tending it.")


def closed_for_requester(mediation: Mediation, group_title: str | None) -> RichText:
    where = f" in {escape(group_title)}" if group_title else ""
    return RichText(html=f"🕊 Your mediators closed mediation #{mediation.number}{where}. If something is still "
                         "open for you, you can ask again at any time.")
