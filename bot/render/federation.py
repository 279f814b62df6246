"""How federations read in a chat: the overview, join codes, shared questions and their outcome,
delegates and their mandates. User text (names, titles, mandates) is always escaped."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from bot import i18n
from bot.governance.federation import ADOPTED, Copy, Delegate, group_name
from bot.i18n import N_, _, ngettext
from bot.render.common import when
from bot.render.proposals import outcome_word
from bot.render.text import RichText, TextBuilder, b, code, escape, i
from storage.models import Federation, FederationQuestion, Group, Proposal

# The federation's rule, in words (stored as the setting's value).
GROUP_RULE_WORDS = {"majority": N_("majority of groups"), "two-thirds": N_("two-thirds of groups"),
                    "consensus": N_("consensus of groups")}


def group_rule(rule: str) -> str:
    """A federation rule in the reader's language (not escaped)."""
    return _(GROUP_RULE_WORDS[rule]) if rule in GROUP_RULE_WORDS else rule


def created(federation: Federation, founder: str, code_text: RichText) -> RichText:
    return (TextBuilder()
            .line("🤝 ", _("{member} created the federation {name}, with this group in it.").format(
                member=escape(founder), name=b(federation.name)))
            .line(code_text)
            .build())


def join_code(code_value: str, expires_at: datetime, zone: ZoneInfo, prefix: str) -> RichText:
    """The code, shown once (only its hash is kept)."""
    return (TextBuilder()
            .line(_("To bring another group in, send this in its chat: {command}").format(
                command=code(f"{prefix}federation join {code_value}")))
            .line(i(_("The code works until {date}, for any number of groups; each decides by its own vote. "
                      "A fresh one: {command}").format(date=when(expires_at, zone),
                                                       command=f"{prefix}federation code")))
            .build())


def no_federation(prefix: str) -> RichText:
    return (TextBuilder()
            .line(_("This group is in no federation."))
            .line(_("Start one: {command} — it gives a code for other groups.").format(
                command=code(f"{prefix}federation create <name>")))
            .line(_("Join one: {command} with the code a member group gives you; this group decides by a "
                    "vote.").format(command=code(f"{prefix}federation join <join-code>")))
            .build())


def overview(federation: Federation, groups: list[tuple[Group, int]], found: list[Delegate], rule: str,
             prefix: str) -> RichText:
    """`federation`: its groups, their delegates and mandates, and the rule shared questions are counted by."""
    text = TextBuilder().line("🤝 ", b(federation.name))
    text.line(b(ngettext("{count} group", "{count} groups", len(groups)).format(count=len(groups))))
    for group, members in groups:
        text.line("• ", ngettext("{group} — {count} member", "{group} — {count} members", members).format(
            group=escape(group_name(group)), count=members))
    text.line(b(_("Delegates")))
    for line in delegate_lines(found):
        text.line(line)
    text.line(_("Shared proposals pass with a {rule}: each group decides its copy by its own rule, then the "
                "groups are counted (the strictest federation_rule of the groups applies).").format(
        rule=b(group_rule(rule))))
    text.line(i(_("Share one: {propose} · a new code: {code} · leave: {leave}").format(
        propose=f"{prefix}propose … share=federation", code=f"{prefix}federation code",
        leave=f"{prefix}federation leave")))
    return text.build()


def delegate_lines(found: list[Delegate]) -> list[str]:
    """One line per group: its delegate(s) and the mandate they carry. Delegates decide nothing: the
    groups do."""
    lines = []
    for delegate in found:
        group = escape(group_name(delegate.group))
        if delegate.role is None:
            continue  # a group without a delegate role: nothing to show (a big federation has many)
        if not delegate.holders:
            lines.append("• " + _("{group}: the {role} seat is empty, so no mandate is carried").format(
                group=group, role=b(delegate.role.name)))
        else:
            names = ", ".join(escape(member.display_name) for member in delegate.holders)
            mandate = (_("mandate: {mandate}").format(mandate=i(delegate.mandate)) if delegate.mandate
                       else _("no mandate set yet"))
            lines.append("• " + _("{group}: {names} ({role}) — {mandate}").format(
                group=group, names=names, role=escape(delegate.role.name), mandate=mandate))
    return lines


def shared_lines(proposal: Proposal, federation: Federation, origin: Group, author: str, groups: int,
                 question: FederationQuestion, found: list[Delegate]) -> list[str]:
    """What a shared proposal's card says in every group: where it comes from, how it is decided here
    and across the federation, and the delegates who speak to it."""
    lines = [_("🤝 Shared with the federation {name}: decided here by {rule}, then counted across {count} groups "
               "({group_rule}).").format(name=b(federation.name), rule=escape(proposal.rule), count=groups,
                                         group_rule=group_rule(question.rule)),
             i(_("Proposed by {author} of {group}.").format(author=author, group=group_name(origin)))]
    if any(delegate.role is not None for delegate in found):
        lines.append(_("Delegates (they carry mandates; they decide nothing):"))
        lines += delegate_lines(found)
    return lines


def question_outcome(question: FederationQuestion, federation: Federation, own: Proposal, copies: list[Copy],
                     found: list[Delegate]) -> RichText:
    """The federation's outcome, once in every group that got the question (with that group's number)."""
    icon = "✅" if question.outcome == ADOPTED else "❌"
    result = _("adopted") if question.outcome == ADOPTED else _("not adopted")
    text = TextBuilder().line(icon, " ", _("Federation {name}: #{number} {title} — {result}: passed in {count} of "
                                          "{total} groups ({rule}).").format(
        name=b(federation.name), number=own.number, title=b(question.title), result=b(result),
        count=question.groups_for, total=question.groups_total, rule=group_rule(question.rule)))
    for copy in copies:
        text.line("• ", _("{group}: {outcome}").format(group=escape(group_name(copy.group)),
                                                      outcome=escape(outcome_word(copy.outcome))))
    if any(delegate.role is not None for delegate in found):
        text.line(_("Delegates now:"))
        for line in delegate_lines(found):
            text.line(line)
    return text.build()


def joined_line(federation: Federation, others: list[Group]) -> str:
    """In the group that joined (a consequence of its decision)."""
    names = ", ".join(escape(group_name(group)) for group in others) or "—"
    return _("🤝 This group is now in the federation {name}, with {groups}.").format(name=b(federation.name),
                                                                                  groups=names)


def joined_notice(federation: Federation, joining: Group, count: int) -> RichText:
    return RichText(html=_("🤝 {group} joined the federation {name} by a decision of its members: {count} groups "
                           "now.").format(group=b(group_name(joining)), name=b(federation.name), count=count))


def left_line(federation: Federation) -> str:
    return _("👋 This group has left the federation {name}.").format(name=b(federation.name))


def left_notice(federation: Federation, leaving: Group, count: int) -> RichText:
    return RichText(html=ngettext(
        "👋 {group} left the federation {name} by a decision of its members: {count} group remains.",
        "👋 {group} left the federation {name} by a decision of its members: {count} groups remain.",
        count).format(group=b(group_name(leaving)), name=b(federation.name), count=count))


def not_changed_line() -> str:
    return _("This group is in a federation already by now; nothing changes.")


def mandate_line(role_name: str, mandate: str) -> str:
    return _("📜 The delegate ({role}) now carries this mandate: {mandate}").format(role=b(role_name),
                                                                                  mandate=i(mandate))


def mandate_shown(role_name: str, holders: list[str], mandate: str | None, prefix: str) -> RichText:
    """`mandate` alone: the current one."""
    who = ", ".join(escape(name) for name in holders) or _("nobody holds it now")
    text = TextBuilder().line("📜 ", _("{role} ({holders})").format(role=b(role_name), holders=who))
    if mandate:
        text.line(_("Mandate: {mandate}").format(mandate=i(mandate)))
    else:
        text.line(_("No mandate yet."))
    text.line(i(_("The group sets it by a decision: {command}").format(command=f"{prefix}mandate <text>")))
    return text.build()


def delegate_recalled(name: str, group: Group) -> RichText:
    return RichText(html=_("⚠️ {name} is no longer {group}'s delegate: recalled by their group. Their mandate has "
                           "ended.").format(name=b(name), group=escape(group_name(group))))


def split_suggestion(members: int, threshold: int, prefix: str) -> RichText:
    """The suggestion, in five short lines: why, then how (create, join, a delegate, shared questions)."""
    return (TextBuilder()
            .line(_("🌱 <b>We are {members} now</b>, past the {threshold} this group set (split_at): too many to "
                    "know each other. Consider splitting into cells that federate:")
                  .format(members=i18n.number(members), threshold=i18n.number(threshold)))
            .line(_("1. One cell starts the federation with {create}; each other cell, in its own chat, proposes "
                    "{join} with the code it gives.").format(create=code(f"{prefix}federation create <name>"),
                                                             join=code(f"{prefix}federation join <join-code>")))
            .line(_("2. Each cell makes a delegate role, {role}, and decides its delegate's mandate with {mandate}.")
                  .format(role=code(f"{prefix}role add delegate term=6mo delegate=yes"),
                          mandate=code(f"{prefix}mandate <text>")))
            .line(_("3. A question for all goes to every cell with {share}; each decides it by its own rule.")
                  .format(share=code(f"{prefix}propose <title> share=federation")))
            .line(i(_("Not yet? Raise the size with {command}, or turn this off with {off}.")
                    .format(command=f"{prefix}set split_at <number>", off=f"{prefix}set split_at off")))
            .build())
