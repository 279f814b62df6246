"""The command registry: every command declared once, with typed arguments.

The declaration drives parsing, the usage line in error replies, `help`,
and the command lists adapters publish (Telegram's setMyCommands), so they
cannot drift apart.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bot.commands.args import ArgError, ArgType
from bot.i18n import _

PREFIXES = ("!", "/")
MAX_COMMAND_LENGTH = 4000
_QUOTES = {'"': '"', "“": "”", "„": "“", "«": "»", "”": "”"}
_OPTION = re.compile(r"([a-z_]{2,32})=(.*)", re.S)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


class CommandError(Exception):
    """A command that cannot run as typed; nothing was changed. Shown with the usage line."""

    def __init__(self, message: str, command: Command | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.command = command


@dataclass(frozen=True)
class Positional:
    name: str
    type: ArgType
    optional: bool = False
    rest: bool = False  # takes all remaining words, verbatim
    label: str = ""  # how the usage line names it; "<…>" or "[…]" is used as written

    def usage(self) -> str:
        label = self.label or self.name
        if label[:1] in "<[":
            return label
        label = f"{label}…" if self.rest and self.optional else label
        return f"[{label}]" if self.optional else f"<{label}>"


@dataclass(frozen=True)
class Option:
    key: str
    type: ArgType
    aliases: tuple[str, ...] = ()
    required: bool = False
    label: str = ""  # how the usage line shows the value, if not the type's metavar

    def usage(self) -> str:
        shown = f"{self.key}={self.label or self.type.metavar}"
        return shown if self.required else f"[{shown}]"


@dataclass(frozen=True)
class Flag:
    word: str

    def usage(self) -> str:
        return f"[{self.word}]"


Param = Positional | Option | Flag


@dataclass(frozen=True)
class Token:
    value: str  # quotes removed
    start: int
    end: int


def tokenize(text: str) -> list[Token]:
    """Split on white space; double quotes (also typographic ones phones insert)
    group words. An unmatched quote is an ordinary character, so titles like
    `5" screen` still work."""
    tokens: list[Token] = []
    index, length = 0, len(text)
    while index < length:
        if text[index].isspace():
            index += 1
            continue
        start, value = index, []
        while index < length and not text[index].isspace():
            char = text[index]
            closing = _QUOTES.get(char)
            end = text.find(closing, index + 1) if closing else -1
            if closing and end != -1:
                value.append(text[index + 1 : end])
                index = end + 1
            else:
                value.append(char)
                index += 1
        tokens.append(Token("".join(value), start, index))
    return tokens


Handler = Callable[..., None]


@dataclass
class Command:
    name: str
    summary: str
    example: str
    handler: Handler
    params: tuple[Param, ...] = ()
    aliases: tuple[str, ...] = ()
    where: str = "group"  # "group": only in a group chat; "any": also in private
    details: str = ""
    # A group setting naming the role whose holders alone may run this command
    # (e.g. "propose_role"); the group decides, default anyone.
    gate: str | None = None
    task: str = ""  # how the gated action is named in the refusal

    @property
    def positionals(self) -> list[Positional]:
        return [p for p in self.params if isinstance(p, Positional)]

    @property
    def options(self) -> dict[str, Option]:
        found: dict[str, Option] = {}
        for param in self.params:
            if isinstance(param, Option):
                for key in (param.key, *param.aliases):
                    found[key] = param
        return found

    @property
    def flags(self) -> dict[str, Flag]:
        return {p.word: p for p in self.params if isinstance(p, Flag)}

    def usage(self, prefix: str = "!") -> str:
        return " ".join([f"{prefix}{self.name}", *(param.usage() for param in self.params)])

    def parse(self, text: str) -> dict[str, Any]:
        """Arguments text → keyword arguments for the handler, or CommandError."""
        values: dict[str, Any] = {}
        words: list[tuple[int, Token]] = []
        for index, token in enumerate(tokenize(text)):
            raw = text[token.start : token.end]
            option = _OPTION.fullmatch(raw)
            if option and self.options:
                values.update(self._parse_option(option[1].lower(), token.value.split("=", 1)[1]))
            elif raw.lower() in self.flags:
                values[self.flags[raw.lower()].word] = True
            else:
                words.append((index, token))
        for flag in self.flags:
            values.setdefault(flag, False)
        for option in self.options.values():
            if option.required and option.key not in values:
                raise CommandError(_("the option {option}= is required").format(option=option.key), self)
            values.setdefault(option.key, None)
        values.update(self._parse_positionals(text, words))
        return values

    def _parse_option(self, key: str, raw_value: str) -> dict[str, Any]:
        option = self.options.get(key)
        if option is None:
            known = ", ".join(f"{o.key}=" for o in dict.fromkeys(self.options.values()))
            raise CommandError(_("{command} has no option “{option}=”; its options are {options}").format(
                command=self.name, option=key, options=known), self)
        try:
            return {option.key: option.type.parse(raw_value)}
        except ArgError as error:
            raise CommandError(f"{option.key}=: {error}", self) from None

    def _parse_positionals(self, text: str, words: list[tuple[int, Token]]) -> dict[str, Any]:
        values: dict[str, Any] = {}
        position = 0
        for param in self.positionals:
            if position >= len(words):
                if not param.optional:
                    raise CommandError(_("the {name} is missing").format(name=param.name), self)
                values[param.name] = None
                continue
            if param.rest:
                raw = _verbatim(text, words[position:])
                position = len(words)
            else:
                raw = words[position][1].value
                position += 1
            try:
                values[param.name] = param.type.parse(raw)
            except ArgError as error:
                raise CommandError(str(error)[:1].upper() + str(error)[1:], self) from None
        if position < len(words):
            extra = _verbatim(text, words[position:])
            raise CommandError(_("I did not expect “{extra}” here").format(extra=extra[:60]), self)
        return values


def _verbatim(text: str, words: list[tuple[int, Token]]) -> str:
    """The words as typed (quotes and spacing kept), minus options and flags between them."""
    pieces: list[str] = []
    previous: tuple[int, Token] | None = None
    for index, token in words:
        if previous is not None:
            adjacent = previous[0] + 1 == index
            pieces.append(text[previous[1].end : token.start] if adjacent else " ")
        pieces.append(text[token.start : token.end])
        previous = (index, token)
    return "".join(pieces)


@dataclass(frozen=True)
class Invocation:
    command: Command | None  # None: unknown name (see `name`)
    name: str
    arguments: str
    prefix: str


@dataclass
class Registry:
    commands: dict[str, Command] = field(default_factory=dict)
    _lookup: dict[str, Command] = field(default_factory=dict)

    def command(self, name: str, *, summary: str, example: str, params: tuple[Param, ...] = (),
                aliases: tuple[str, ...] = (), where: str = "group", details: str = "",
                gate: str | None = None, task: str = "") -> Callable[[Handler], Handler]:
        """Decorator: declare a command and its arguments once."""

        def register(handler: Handler) -> Handler:
            declared = Command(name, summary, example, handler, params, aliases, where, details, gate, task)
            self.commands[name] = declared
            for key in (name, *aliases):
                if key in self._lookup:
                    raise ValueError(f"command name {key!r} declared twice")
                self._lookup[key] = declared
            return handler

        return register

    def find(self, name: str) -> Command | None:
        return self._lookup.get(name.lower())

    def parse_invocation(self, text: str, *, require_prefix: bool, bot_username: str | None = None,
                         ) -> Invocation | None:
        """Recognise `!cmd args`, `/cmd args` and `/cmd@BotName args`.

        Returns None when the message is not meant for this bot (no prefix in a
        group, or addressed to another bot)."""
        text = _CONTROL.sub("", text).strip()
        prefix = text[:1] if text[:1] in PREFIXES else ""
        if not prefix and require_prefix:
            return None
        body = text[len(prefix) :]
        head, __, rest = body.partition(" ")
        head, newline, after = head.partition("\n")
        if newline:
            rest = after + (" " + rest if rest else "")
        name, __, addressee = head.partition("@")
        if addressee and bot_username and addressee.lower() != bot_username.lower():
            return None
        if not name or not re.fullmatch(r"[\w-]{1,32}", name):
            return None if prefix or require_prefix else Invocation(None, name[:32], rest, prefix)
        name = name.lower()
        sub, __, sub_rest = rest.strip().partition(" ")
        if sub and (compound := self.find(f"{name} {sub.lower()}")):
            return Invocation(compound, compound.name, sub_rest, prefix)
        return Invocation(self.find(name), name, rest, prefix)

    def closest(self, name: str) -> str | None:
        close = difflib.get_close_matches(name.lower(), list(self._lookup), n=1, cutoff=0.6)
        return close[0] if close else None

    def suggest(self, name: str, prefix: str) -> str:
        """' Did you mean !vote?' for a near miss, else a pointer to help."""
        close = self.closest(name)
        if close:
            return " " + _("Did you mean {command}?").format(command=f"{prefix}{close}")
        return " " + _("Send {command} for the list.").format(command=f"{prefix}help")

    def visible(self) -> list[Command]:
        return sorted(self.commands.values(), key=lambda c: c.name)


__all__ = ["Registry", "Command", "CommandError", "Positional", "Option", "Flag", "Invocation",
           "tokenize", "PREFIXES", "MAX_COMMAND_LENGTH", "ArgError"]
