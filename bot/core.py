"""The core: one inbound event in, a list of outbound actions out.

Every event runs in one transaction. A platform event id is recorded in the
same transaction as its effects, so a replay (Matrix re-sync, Telegram
redelivery, restart) is ignored. A command that cannot run changes nothing:
its transaction is rolled back and the member gets a reply saying why.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from functools import partial

from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from bot import i18n, languages, outbox
from bot.actions import Acknowledge, Action, EditMessage, Outgoing, SendMessage
from bot.clock import Clock
from bot.commands.catalog import REGISTRY
from bot.commands.proposals import card_choices, card_text
from bot.commands.registry import MAX_COMMAND_LENGTH, CommandError, Invocation, Registry
from bot.context import Context
from bot.events import ChatRef, ChoiceMade, CommandMessage, Inbound, MemberCount, MemberJoined, MemberLeft
from bot.governance import assemblies, cells, roles
from bot.governance import proposals as rules
from bot.governance.proposals import RuleViolation
from bot.groups import Directory
from bot.i18n import _
from bot.logs import log_context
from bot.metrics import COMMANDS
from bot.render.text import TextBuilder, code, escape
from storage.db import Database
from storage.models import Group, ProcessedEvent, Proposal

log = logging.getLogger(__name__)
TAPPABLE = ("vote", "ballot", "agenda")  # the commands a button or reaction may carry
LINKABLE = ("ballot",)  # the commands a link may carry: a link can be made by anyone, so none that acts
_CLAIM = insert(ProcessedEvent.__table__)  # built once: it runs for every event


class Replayed(Exception):
    """This platform event was applied before."""


class Core:
    def __init__(self, db: Database, clock: Clock, defaults: Mapping[str, str],
                 prefixes: Mapping[str, str] | None = None, registry: Registry = REGISTRY) -> None:
        self.db = db
        self.clock = clock
        self.registry = registry
        self.directory = Directory(defaults)
        # How commands are written on each platform, for usage lines and hints (configuration).
        self.prefixes = dict(prefixes or {})
        outbox.use_prefixes(self.prefixes, frozenset(name.split(" ")[0] for name in registry.commands))

    def prefix_for(self, platform: str) -> str:
        return self.prefixes.get(platform, "!")

    # inbound ----------------------------------------------------------------

    def handle(self, event: Inbound) -> list[Action]:
        """Apply one event; the actions it caused are recorded in the outbox and returned."""
        return [item.action for item in self.intake(event)]

    def intake(self, event: Inbound) -> list[Outgoing]:
        """Apply one event; returns the outbox rows its actions were recorded as."""
        # Log lines written while this event is applied (on the core's thread) say which it was. Not
        # a private chat's id: on Telegram it is the member's own id (an anonymous need's author).
        private = getattr(event, "is_private", False)
        with log_context(platform=event.chat.platform, chat_id="private" if private else event.chat.chat_id,
                         event_id=getattr(event, "event_id", None)), i18n.speaking(self.language_for(event)):
            if isinstance(event, CommandMessage):
                return self._command(event)
            if isinstance(event, ChoiceMade):
                COMMANDS.labels("choice").inc()
                return self._choice(event)
            COMMANDS.labels("membership").inc()
            return self._membership(event)

    def language_for(self, event: Inbound) -> str:
        """What the replies to `event` are written in: in a group, the group's language; in a
        private chat, the person's own choice, else their groups' language. Cached: no query
        for a known chat."""
        default = self.directory.defaults.get("language", i18n.SOURCE_LANGUAGE)
        with self.db.transaction() as session:
            if getattr(event, "is_private", False):
                user = event.sender
                own = self.directory.language_of(session, user.platform, user.user_id)
                return own or languages.of_groups(session, self.directory, user.platform, user.user_id) or default
            group_id = self.directory.group_id_for(session, event.chat)
            return default if group_id is None else self.directory.settings(session, group_id).language

    def group_language(self, session: Session, group_id: int | None) -> str | None:
        """The language of what the scheduler says in or for a group."""
        return None if group_id is None else self.directory.settings(session, group_id).language

    def _command(self, event: CommandMessage) -> list[Outgoing]:
        invocation = self.registry.parse_invocation(event.text, require_prefix=not event.is_private,
                                                    bot_username=event.bot_username)
        # A metric label: the command's name, never its words.
        COMMANDS.labels(invocation.command.name if invocation and invocation.command else "other").inc()
        if invocation is None:
            return []  # ordinary chat, or a command for another bot
        prefix = self.prefix_for(event.chat.platform)
        if len(event.text) > MAX_COMMAND_LENGTH:
            length, limit = i18n.number(len(event.text)), i18n.number(MAX_COMMAND_LENGTH)
            return self._refuse(event, _("That message is {length} characters long; a command can be at most "
                                         "{limit}. Nothing was changed.").format(length=length, limit=limit))
        if invocation.command is None:
            if not event.is_private and self.registry.closest(invocation.name) is None:
                # Probably another bot's command (groups often have several): stay quiet.
                return []
            hint = self.registry.suggest(invocation.name, prefix)
            return self._refuse(event, _("I don't know the command “{name}”.").format(name=invocation.name) + hint)
        if event.via_link and invocation.command.name not in LINKABLE:
            return self._refuse(event, _("A link can open a ballot, not run {command}; nothing was changed. Send "
                                         "the command yourself if you meant it.").format(
                                             command=invocation.command.name))
        return self._run(event, invocation, prefix, tapped=False)

    def _choice(self, event: ChoiceMade) -> list[Outgoing]:
        invocation = self.registry.parse_invocation(event.payload, require_prefix=False)
        if invocation is None or invocation.command is None or invocation.command.name not in TAPPABLE:
            # The name only: a payload's arguments may be a private choice.
            log.warning("ignored a choice with an unknown payload %r", event.payload.split(" ")[0][:20])
            return []
        message = CommandMessage(chat=event.chat, sender=event.sender, sender_name=event.sender_name,
                                 text=event.payload, event_id=event.event_id, is_private=event.is_private)
        if event.retracted:  # a reaction taken back (Matrix)
            if invocation.command.name == "agenda":
                return self._stop_backing(event, invocation)
            return self._retract(event, invocation) if invocation.command.name == "vote" else []
        return self._run(message, invocation, self.prefix_for(event.chat.platform), tapped=True,
                         tapped_message=event.message_id)

    def _run(self, event: CommandMessage, invocation: Invocation, prefix: str, tapped: bool,
             tapped_message: str | None = None) -> list[Outgoing]:
        command = invocation.command
        if command.where == "group" and event.is_private:
            return self._refuse(event, _("{command} works in a group chat, where everyone can see it.").format(
                command=prefix + command.name))
        now = self.clock.now()
        ctx: Context | None = None
        try:
            arguments = command.parse(invocation.arguments)
            with self.db.transaction() as session:
                self._claim(session, event.chat.platform, event.event_id, now)
                ctx = self._context(session, event, prefix, now, tapped)
                ctx.tapped_message = tapped_message
                if command.gate:
                    roles.require_role(session, ctx.group_id, getattr(ctx.settings, command.gate), ctx.member_id,
                                       command.task, prefix)
                command.handler(ctx, **arguments)
                outgoing = outbox.add_all(session, ctx.actions, group_id=ctx.group_id, now=now, sealed=ctx.sealed,
                                          origin=event.chat)
                for group_id, action, key in ctx.elsewhere:
                    outgoing += outbox.add_to_group(session, action, group_id=group_id, now=now, key=key)
        except Replayed:
            return []
        except CommandError as error:
            return self._refuse(event, error.message, command, tapped)
        except RuleViolation as error:
            return self._refuse(event, str(error), tapped=tapped)
        except Exception:
            # A private message's text is never logged: it may be a secret ballot.
            log.exception("command %r failed", command.name if event.is_private else event.text[:200])
            self.directory.reset()
            return self._refuse(event, _("Something went wrong on my side; nothing was changed. Please try again."),
                                tapped=tapped)
        for callback in ctx.after_commit:
            callback()
        return outgoing

    def _context(self, session: Session, event: CommandMessage, prefix: str, now: datetime,
                 tapped: bool) -> Context:
        ctx = Context(session=session, now=now, chat=event.chat, sender=event.sender,
                      sender_name=event.sender_name, event_id=event.event_id, is_private=event.is_private,
                      prefix=prefix, registry=self.registry, directory=self.directory, tapped=tapped,
                      prefixes=self.prefixes)
        if not event.is_private:
            ctx.group_id = self.directory.group_id_for_event(session, event.chat, event.chat_title, now,
                                                             ctx.after_commit.append)
            member = self.directory.member_for(session, ctx.group_id, event.sender, event.sender_name, now,
                                               ctx.after_commit.append)
            ctx.member_id = member if isinstance(member, int) else member.id
            if not isinstance(member, int):  # a member new (or back): the group may have grown past split_at
                self._suggest_split(session, session.get(Group, ctx.group_id), now, ctx.say_in)
        return ctx

    def _retract(self, event: ChoiceMade, invocation: Invocation) -> list[Outgoing]:
        now = self.clock.now()
        try:
            arguments = invocation.command.parse(invocation.arguments)
            with self.db.transaction() as session:
                self._claim(session, event.chat.platform, event.event_id, now)
                group = self.directory.find_group(session, event.chat)
                member = group and self.directory.find_member(session, group.id, event.sender)
                if member is None:
                    return []
                proposal = rules.find(session, group.id, arguments["number"])
                choice = arguments["choice"]
                if not rules.is_ranked(proposal):
                    choice, _ = rules.resolve_choice(proposal, f"{choice} ")
                if not rules.retract_ballot(session, proposal, member.id, choice, now):
                    return []
                # The tally on the card follows (the edit supersedes any pending one).
                return [outbox.add(session, self._card_edit(session, group, proposal), group_id=group.id, now=now)]
        except (Replayed, CommandError, RuleViolation):
            return []

    def _stop_backing(self, event: ChoiceMade, invocation: Invocation) -> list[Outgoing]:
        """An agenda item's reaction taken back: the member no longer backs it (quietly, like a vote's)."""
        now = self.clock.now()
        try:
            number, _ = invocation.command.parse(invocation.arguments)["backing"]
            with self.db.transaction() as session:
                self._claim(session, event.chat.platform, event.event_id, now)
                group = self.directory.find_group(session, event.chat)
                member = group and self.directory.find_member(session, group.id, event.sender)
                if member is not None:
                    assemblies.support(session, assemblies.find_item(session, group.id, number), member, now,
                                       back=False)
        except (Replayed, CommandError, RuleViolation, TypeError):
            pass
        return []

    def _claim(self, session: Session, platform: str, event_id: str, now: datetime) -> None:
        """Record the event id; a second attempt with the same id is a replay."""
        try:
            session.connection().execute(_CLAIM, {"platform": platform, "event_id": event_id[:255],
                                                  "processed_at": now})
        except IntegrityError:
            raise Replayed from None

    def _refuse(self, event: CommandMessage, message: str, command=None, tapped: bool = False) -> list[Outgoing]:
        """Reply with what was wrong (and the right form); record the event so a replay stays quiet.

        A refused tap is answered privately (a toast), not in front of the group."""
        action = self._refusal(event, message, command, tapped)
        now = self.clock.now()
        try:
            with self.db.transaction() as session:
                self._claim(session, event.chat.platform, event.event_id, now)
                group_id = None if event.is_private else self.directory.group_id_for(session, event.chat)
                # A refusal in a private chat may quote what was sent there (a secret vote's words).
                return [outbox.add(session, action, group_id=group_id, now=now, sealed=event.is_private)]
        except Replayed:
            return []

    def _refusal(self, event: CommandMessage, message: str, command, tapped: bool) -> Action:
        if command is not None:  # the parser's messages are sentence fragments
            message = message[:1].upper() + message[1:]
        if not message.endswith((".", "?", "!")):
            message += "."
        text = TextBuilder().line("⚠️ ", escape(message))
        if command is not None:
            prefix = self.prefix_for(event.chat.platform)
            text.line(_("Usage: {usage}").format(usage=code(command.usage(prefix))))
            text.line(_("Example: {example}").format(example=code(prefix + _(command.example))))
        if tapped:
            return Acknowledge(chat=event.chat, event_id=event.event_id, text=text.build(), problem=True)
        return SendMessage(chat=event.chat, text=text.build(), reply_to=event.event_id)

    def _membership(self, event: MemberJoined | MemberLeft | MemberCount) -> list[Outgoing]:
        now = self.clock.now()
        after_commit: list = []
        outgoing: list[Outgoing] = []
        try:
            with self.db.transaction() as session:
                if not isinstance(event, MemberCount):
                    self._claim(session, event.chat.platform, event.event_id, now)
                group = self.directory.group_for(session, event.chat, None, now)
                if isinstance(event, MemberCount):
                    self.directory.report_member_count(session, event.chat, group, event.count)
                elif isinstance(event, MemberJoined):
                    self.directory.member_for(session, group.id, event.user, event.display_name, now,
                                              after_commit.append)
                    def say(group_id: int, action: Action, key: str | None) -> None:
                        outgoing.extend(outbox.add_to_group(session, action, group_id=group_id, now=now, key=key))
                    self._suggest_split(session, group, now, say)
                else:
                    member = self.directory.find_member(session, group.id, event.user)
                    # Leaving one chat of a linked group, as the person's other account: still a member.
                    if member is not None and member.user_id == event.user.user_id:
                        member.active = False
                    after_commit.append(partial(self.directory.forget_member, group.id, event.user.user_id))
        except Replayed:
            return []
        for callback in after_commit:
            callback()
        return outgoing

    def _suggest_split(self, session: Session, group: Group, now: datetime, say) -> None:
        """Past `split_at`, once: suggest splitting into federated cells (`say(group_id, action, key)`)."""
        suggested = cells.split_suggestion(session, self.directory, group, now, self.prefix_for(group.platform))
        if suggested is not None:
            say(group.id, *suggested)

    # the outbox: what the delivery layer asks ------------------------------

    def refresh_card_later(self, session: Session, group: Group, proposal: Proposal) -> None:
        """Queue an edit of a closed proposal's message: final tally, buttons removed."""
        outbox.record(session, key=f"proposal:{proposal.id}:final-card", group_id=group.id, now=self.clock.now(),
                      action=self._card_edit(session, group, proposal))

    def _card_edit(self, session: Session, group: Group, proposal: Proposal) -> EditMessage:
        """The proposal's message as it should read now (its buttons kept while it is open)."""
        settings = self.directory.settings(session, group.id)
        text = card_text(session, proposal, self.clock.now(), settings.timezone, self.prefix_for(group.platform))
        choices = card_choices(session, proposal) if proposal.status == rules.OPEN else ()
        return EditMessage(chat=self.directory.chat_of(group), track=f"proposal:{proposal.number}", text=text,
                           choices=choices)

    def pending_outbox(self, platforms: list[str], limit: int = 500, after: int = 0) -> list[Outgoing]:
        with self.db.transaction() as session:
            return outbox.pending(session, platforms, limit, after)

    def delivered(self, ids: list[int], tracked: list[tuple[ChatRef, str, str]] = ()) -> None:
        """Mark actions sent; tracked messages' platform ids are kept in the same transaction (for edits)."""
        with self.db.transaction() as session:
            outbox.mark_sent(session, ids, self.clock.now())
            for chat, key, message_id in tracked:
                self.directory.remember_message(session, chat, key, message_id)

    def delivery_failed(self, item_id: int, error: str, permanent: bool, max_attempts: int) -> int:
        """Count a failed attempt; the last one allowed, or a permanent error, marks the action
        failed for good. Returns the attempts so far."""
        with self.db.transaction() as session:
            attempts = outbox.mark_attempt(session, item_id, error)
            if permanent or attempts >= max_attempts:
                outbox.mark_failed(session, item_id, error, self.clock.now())
            return attempts

    def tracked_message(self, chat: ChatRef, key: str) -> str | None:
        """The platform id of a tracked message, once it was sent."""
        with self.db.transaction() as session:
            return self.directory.message_id(session, chat, key)

    def awaits_send(self, target: str) -> bool:
        with self.db.transaction() as session:
            return outbox.is_pending_send(session, target)
