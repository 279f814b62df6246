"""What the bot says about linking chats across platforms and accounts of one person."""

from __future__ import annotations

from bot.governance.linking import CODE_LIFETIME
from bot.i18n import _
from bot.render.text import RichText, TextBuilder, b, code, escape, i

_MINUTES = int(CODE_LIFETIME.total_seconds() // 60)


def _platform_name(platform: str) -> str:
    return platform.split(".", 1)[0].capitalize()


def chat_code_sent(name: str) -> RichText:
    return TextBuilder().line(_("🔗 {name} asked for a code to link this chat with a chat on another platform; I sent "
                                "it privately. It works once, for {minutes} minutes.").format(
                                    name=escape(name), minutes=_MINUTES)).build()


def chat_code(given: str, prefix: str) -> RichText:
    text = TextBuilder()
    text.line(_("Your code to link the group: {code}").format(code=b(given)))
    text.line(_("Type this in the group chat on the other platform (Telegram or Matrix) within {minutes} minutes; "
                "on Telegram commands start with / instead of !:").format(minutes=_MINUTES))
    text.line(code(f"{prefix}link platform {given}"))
    text.line(i(_("From then on the two chats are one group: proposals, votes, roles, needs, audits and settings "
                  "are shared.")))
    return text.build()


def chat_code_not_sent() -> RichText:
    return TextBuilder().line(_("I could not write to you privately, so I kept the code. Start a private chat with "
                                "me, then ask again.")).build()


def chats_linked(name: str, platform: str, prefix: str) -> RichText:
    text = TextBuilder()
    text.line(_("🔗 {name} linked this group with its {platform} chat: from now on both chats are one group. "
                "Proposals, votes, roles, needs, audits and settings are shared, and what I announce goes to both "
                "chats.").format(name=escape(name), platform=_platform_name(platform)))
    text.line(_("Someone in both chats counts as two members until they link their accounts: send me {command} "
                "privately.").format(command=code(f"{prefix}link me")))
    return text.build()


def chats_unlinked(name: str, platforms: list[str]) -> RichText:
    shown = ", ".join(_platform_name(platform) for platform in platforms)
    return TextBuilder().line(_("✂️ {name} unlinked the {platforms} chat: each chat is a group of its own again. Both "
                                "keep the shared history: the log up to now, decisions, roles, charter, settings and "
                                "members. What is still open stays with this group.").format(
                                    name=escape(name), platforms=shown)).build()


def account_code(given: str, prefix: str) -> RichText:
    text = TextBuilder()
    text.line(_("Your code to link your accounts: {code}").format(code=b(given)))
    text.line(_("Send this to me privately from your other account (Telegram or Matrix) within {minutes} minutes:")
              .format(minutes=_MINUTES))
    text.line(code(f"{prefix}link me {given}"))
    text.line(i(_("Then both accounts are one member wherever they meet: one vote, whichever you vote from.")))
    return text.build()


def accounts_linked(groups: list[str]) -> RichText:
    text = TextBuilder().line(_("✅ Your two accounts are one member now: a vote from either replaces the other."))
    if groups:
        text.line(_("In {groups} you were a member twice; now once. Where both accounts had voted in an open vote, "
                    "the later ballot counts (a secret ballot cannot be told apart, so an earlier secret one stays "
                    "counted).").format(groups=", ".join(escape(title) for title in groups)))
    return text.build()
