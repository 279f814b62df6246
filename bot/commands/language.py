"""language: the language of a member's own private chat with the bot (a group's is `set language`)."""

from __future__ import annotations

from bot import i18n, languages
from bot.commands.args import Word
from bot.commands.base import command
from bot.commands.registry import Positional
from bot.context import Context
from bot.governance.proposals import RuleViolation
from bot.i18n import N_, _
from bot.render.text import TextBuilder, b, code, escape

# How each language names itself, so a member finds theirs whatever the bot speaks now.
NAMES = {"en": "English", "es": "Español", "pt_BR": "Português (Brasil)"}
FOLLOW_GROUPS = ("default", "group", "auto", "off")


@command("language", summary=N_("choose the language of your private chat with me"), example=N_("language es"),
         params=(Positional("language", Word("language"), optional=True),), where="any", aliases=("lang",),
         details=N_("In a private chat: language es, language pt or language en; language default follows your "
                    "groups again. A group's own language is changed with set language."))
def choose_language(ctx: Context, language: str | None) -> None:
    if not ctx.is_private:
        raise RuleViolation(_("This sets the language of your private chat with me. The group's language is a "
                              "setting the group changes in the open: {command}").format(
                                  command=f"{ctx.prefix}set language <code>"))
    if language is None:
        ctx.reply(_current(ctx))
        return
    if language.lower() in FOLLOW_GROUPS:
        languages.choose(ctx.session, ctx.sender.platform, ctx.sender.user_id, None)
        following = languages.of_groups(ctx.session, ctx.directory, ctx.sender.platform, ctx.sender.user_id)
        _after_commit_remember(ctx, None)
        with i18n.speaking(following or ctx.directory.defaults.get("language", i18n.SOURCE_LANGUAGE)):
            ctx.reply(TextBuilder().line(_("🌐 I will write to you in your groups' language.")).build())
        return
    chosen = i18n.normalise(language)
    if chosen is None:
        raise RuleViolation(_("I don't speak “{language}” yet. I speak: {languages}.").format(
            language=language[:20], languages=_spoken()))
    languages.choose(ctx.session, ctx.sender.platform, ctx.sender.user_id, chosen)
    _after_commit_remember(ctx, chosen)
    with i18n.speaking(chosen):  # the confirmation already in the new language
        ctx.reply(TextBuilder().line(_("🌐 From now on I write to you in {language}.").format(
            language=b(NAMES.get(chosen, chosen)))).build())


def _current(ctx: Context):
    own = languages.chosen(ctx.session, ctx.sender.platform, ctx.sender.user_id)
    text = TextBuilder()
    if own is None:
        text.line(_("🌐 You have not chosen a language: I write to you in your groups' language."))
    else:
        text.line(_("🌐 I write to you in {language}.").format(language=b(NAMES.get(own, own))))
    text.line(_("I speak: {languages}. Choose with {command}.").format(
        languages=escape(_spoken()), command=code(f"{ctx.prefix}language <code>")))
    return text.build()


def _spoken() -> str:
    return ", ".join(f"{code} ({NAMES.get(code, code)})" for code in i18n.available())


def _after_commit_remember(ctx: Context, language: str | None) -> None:
    """The directory keeps each person's choice in memory; it learns the new one once it is stored."""
    sender = ctx.sender
    ctx.after_commit.append(lambda: ctx.directory.remember_language(sender.platform, sender.user_id, language))
