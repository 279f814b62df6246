"""Typed arguments. Each type parses one piece of a command and names itself
for the generated usage line; a bad value raises `ArgError` with a sentence a
member can act on."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from bot import i18n
from bot.durations import DurationError, parse_duration
from bot.i18n import _


class ArgError(ValueError):
    """A value that does not fit its argument; the message is shown to the member."""


class ArgType:
    metavar = "value"

    def parse(self, raw: str) -> Any:
        raise NotImplementedError


class Number(ArgType):
    """A per-group number, written `3` or `#3`."""

    metavar = "#"

    def parse(self, raw: str) -> int:
        text = raw.strip().lstrip("#")
        if not text.isascii() or not text.isdigit() or len(text) > 9 or int(text) < 1:
            raise ArgError(_("“{value}” is not a number like 3 or #3").format(value=_short(raw)))
        return int(text)


class Word(ArgType):
    def __init__(self, metavar: str = "word") -> None:
        self.metavar = metavar

    def parse(self, raw: str) -> str:
        return raw


class Text(ArgType):
    def __init__(self, metavar: str = "text", max_length: int = 200) -> None:
        self.metavar = metavar
        self.max_length = max_length

    def parse(self, raw: str) -> str:
        text = raw.strip()
        if not text:
            raise ArgError(_("the {name} is empty").format(name=self.metavar))
        if len(text) > self.max_length:
            raise ArgError(_("the {name} is {length} characters long; keep it under {limit}").format(
                name=self.metavar, length=i18n.number(len(text)), limit=i18n.number(self.max_length)))
        return text


class Count(ArgType):
    """A whole number within bounds (seats=2, max_terms=3)."""

    def __init__(self, low: int, high: int) -> None:
        self.low, self.high = low, high
        self.metavar = "N"

    def parse(self, raw: str) -> int:
        text = raw.strip()
        if not text.isascii() or not text.isdigit() or not self.low <= int(text) <= self.high:
            raise ArgError(_("“{value}” is not a whole number from {low} to {high}").format(
                value=_short(raw), low=self.low, high=self.high))
        return int(text)


class Duration(ArgType):
    metavar = "duration"

    def parse(self, raw: str) -> timedelta:
        try:
            return parse_duration(raw)
        except DurationError as error:
            raise ArgError(str(error)) from None


class OneOf(ArgType):
    """One of a fixed set of words, with aliases (`2/3` for `two-thirds`)."""

    def __init__(self, *values: str, aliases: dict[str, str] | None = None) -> None:
        self.values = values
        self.aliases = {value: value for value in values} | (aliases or {})
        self.metavar = "|".join(values)

    def parse(self, raw: str) -> str:
        value = self.aliases.get(raw.strip().lower())
        if value is None:
            raise ArgError(_("“{value}” is not one of: {choices}").format(value=_short(raw),
                                                                         choices=", ".join(self.values)))
        return value


@dataclass(frozen=True)
class Quorum:
    """How many ballots a decision needs: a count, or a percentage of members."""

    amount: int
    percent: bool

    def required(self, members: int) -> int:
        if not self.percent:
            return self.amount
        return -(-self.amount * members // 100)  # ceiling without floats

    def __str__(self) -> str:
        return f"{self.amount}%" if self.percent else str(self.amount)

    @classmethod
    def parse(cls, raw: str) -> Quorum:
        return QuorumArg().parse(raw)


class QuorumArg(ArgType):
    metavar = "5|50%"

    def parse(self, raw: str) -> Quorum:
        match = re.fullmatch(r"\s*(\d{1,6})\s*(%?)\s*", raw)
        if not match:
            raise ArgError(_("“{value}” is not a quorum; write a count like 5 or a share like 50%").format(
                value=_short(raw)))
        amount, percent = int(match[1]), bool(match[2])
        if percent and amount > 100:
            raise ArgError(_("a quorum can be at most 100%"))
        return Quorum(amount, percent)


class OptionList(ArgType):
    """The choices of a poll: `"A; B; C"`."""

    metavar = '"A; B; C"'
    MAX_OPTIONS = 20
    MAX_LENGTH = 100

    def parse(self, raw: str) -> list[str]:
        options = [part.strip() for part in raw.split(";") if part.strip()]
        if len(options) < 2:
            raise ArgError(_('a poll needs at least two options separated by semicolons, like options="Mon; Tue"'))
        if len(options) > self.MAX_OPTIONS:
            raise ArgError(_("a poll can have at most {count} options").format(count=self.MAX_OPTIONS))
        if any(len(option) > self.MAX_LENGTH for option in options):
            raise ArgError(_("each option must be under {count} characters").format(count=self.MAX_LENGTH))
        folded = [option.casefold() for option in options]
        if len(set(folded)) != len(folded):
            raise ArgError(_("two options have the same name"))
        if any(option.isdigit() for option in options):
            raise ArgError(_("an option cannot be just a number (numbers pick options when voting)"))
        return options


@dataclass(frozen=True)
class Mention:
    """A member as typed: `@bob`, a platform id like `@bob:example.org`, or a name.

    Resolved against the group's members by `Directory.resolve_mention`."""

    text: str


class MentionArg(ArgType):
    metavar = "@member"

    def parse(self, raw: str) -> Mention:
        text = raw.strip()
        if not text.lstrip("@"):
            raise ArgError(_("name a member, like @bob"))
        if len(text) > 255:
            raise ArgError(_("that member name is too long"))
        return Mention(text)


def _short(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
