"""Group settings: what each key means, how it is validated, and its canonical form.

A group starts with the configured `[defaults]`; `set <key> <value>` stores a
row per changed key. Values are stored canonical (`3d`, `50%`, `7d 1d`) so the
record of changes reads well.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from bot import i18n
from bot.commands.args import ArgError, Quorum, QuorumArg
from bot.durations import DurationError, format_duration, parse_duration
from bot.governance.voting import RULE_ALIASES, RULES
from bot.i18n import N_, _
from bot.money import CURRENCY, MoneyError, parse_cents

GROUP_RULES = ("majority", "two-thirds", "consensus")  # how many of a federation's groups must pass


def _duration(text: str) -> str:
    try:
        return format_duration(parse_duration(text))
    except DurationError as error:
        raise ArgError(str(error)) from None


def _durations(text: str) -> str:
    parts = [part for part in text.replace(",", " ").split() if part]
    if not parts:
        raise ArgError(_("give at least one duration, like 7d 1d"))
    if len(parts) > 5:
        raise ArgError(_("at most five warnings"))
    values = sorted({parse_or_fail(part) for part in parts}, reverse=True)
    return " ".join(format_duration(value) for value in values)


def parse_or_fail(text: str) -> timedelta:
    try:
        return parse_duration(text)
    except DurationError as error:
        raise ArgError(str(error)) from None


def _rule(text: str) -> str:
    value = text.strip().lower()
    value = RULE_ALIASES.get(value, value)
    if value not in RULES:
        raise ArgError(_("“{value}” is not a rule; choose one of {rules}").format(value=text[:40],
                                                                                rules=", ".join(RULES)))
    return value


def _quorum(text: str) -> str:
    return str(QuorumArg().parse(text))


def _role_or_anyone(text: str) -> str:
    value = text.strip().lower()
    if value in ("anyone", "everyone", "all", "none", "off"):
        return "anyone"
    if not re.fullmatch(r"[^\W_][\w-]{0,31}", value):
        raise ArgError(_("give a role name, or anyone"))
    return value


def _on_off(text: str) -> str:
    value = text.strip().lower()
    if value in ("on", "yes", "true", "1"):
        return "on"
    if value in ("off", "no", "false", "0"):
        return "off"
    raise ArgError(_("answer on or off"))


def _timezone(text: str) -> str:
    name = text.strip()
    if name.upper() in ("UTC", "GMT", "Z"):
        return "UTC"
    if len(name) > 64 or name not in _zone_names():
        raise ArgError(_("“{value}” is not a time zone name; use one like Europe/Berlin or America/Bogota").format(
            value=name[:40]))
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ArgError(_("the time zone “{value}” is not available").format(value=name[:40])) from None
    return name


WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_AREAS = 12
MAX_AREA = 32


def _weekly(text: str) -> str:
    """A weekly moment like `mon 09:00` (in the group's time zone), or off."""
    value = " ".join(text.strip().lower().split())
    if value in ("off", "no", "none", "0"):
        return "off"
    match = re.fullmatch(r"([a-z]{3})[a-z]*\s+(\d{1,2})(?::(\d{2}))?", value)
    if not match or match[1] not in WEEKDAYS or int(match[2]) > 23 or int(match[3] or 0) > 59:
        raise ArgError(_("give a day and a time like mon 09:00, or off"))
    return f"{match[1]} {int(match[2]):02d}:{int(match[3] or 0):02d}"


def _areas(text: str) -> str:
    """The areas of life audits ask about, comma-separated: `food, housing, conflict resolution`."""
    areas = list(dict.fromkeys(" ".join(part.lower().split()) for part in text.split(",") if part.strip()))
    if not areas:
        raise ArgError(_("give the areas separated by commas, like food, housing, childcare"))
    if len(areas) > MAX_AREAS:
        raise ArgError(_("at most {count} areas").format(count=MAX_AREAS))
    for area in areas:
        if len(area) > MAX_AREA or not re.fullmatch(r"[^\W\d_][\w' -]*", area):
            raise ArgError(_("“{value}” is not an area name (words, up to {count} characters)").format(
                value=area[:40], count=MAX_AREA))
    return ", ".join(areas)


def _currency(text: str) -> str:
    value = text.strip().upper()
    if not CURRENCY.fullmatch(value):
        raise ArgError(_("“{value}” is not a currency code; use three letters like EUR, USD or BRL").format(
            value=text[:20]))
    return value


def _limit(text: str) -> str:
    """A spending limit: `0` (none) or an amount, stored with two decimals."""
    if text.strip().lower() in ("0", "off", "none", "no"):
        return "0"
    try:
        cents = parse_cents(text, signed=False)
    except MoneyError as error:
        raise ArgError(str(error)) from None
    return "0" if cents == 0 else f"{cents // 100}.{cents % 100:02d}"


MIN_RENEWAL = timedelta(days=7)


def _duration_or_off(text: str) -> str:
    if text.strip().lower() in ("off", "no", "none", "0"):
        return "off"
    value = parse_or_fail(text)
    if value < MIN_RENEWAL:
        raise ArgError(_("renew at most once a week (7d); months are written mo, like 6mo, years y"))
    return format_duration(value)


@dataclass(frozen=True)
class Rhythm:
    """How often assemblies come round: whole days, or calendar months (same day of the month)."""

    days: int = 0
    months: int = 0

    @classmethod
    def parse(cls, value: str) -> Rhythm | None:
        if value == "off":
            return None
        count, unit = int(value[:-2] if value.endswith("mo") else value[:-1]), value.lstrip("0123456789")
        return cls(months=count) if unit == "mo" else cls(days=count * (7 if unit == "w" else 1))


def _rhythm(text: str) -> str:
    """`2w`, `10d`, `1mo` or off: assemblies meet on the wall clock, so whole days or months only."""
    value = text.strip().lower()
    if value in ("off", "no", "none", "0"):
        return "off"
    match = re.fullmatch(r"(\d{1,3})\s*(d|w|mo)", value)
    if not match or int(match[1]) == 0:
        raise ArgError(_("give whole days, weeks or months, like 2w, 10d or 1mo, or off"))
    count, unit = int(match[1]), match[2]
    if count * {"d": 1, "w": 7, "mo": 31}[unit] > 366:
        raise ArgError(_("at most a year between assemblies"))
    return f"{count}{unit}"


def _durations_or_off(text: str) -> str:
    if text.strip().lower() in ("off", "no", "none", "0"):
        return "off"
    return _durations(text)


def _audit_draw(text: str) -> str:
    """on, off, or federation: the auditor drawn among the members of the federation's other groups."""
    value = text.strip().lower()
    if value == "federation":
        return value
    try:
        return _on_off(value)
    except ArgError:
        raise ArgError(_("say on, off or federation")) from None


def _group_rule(text: str) -> str:
    value = text.strip().lower()
    if value not in GROUP_RULES:
        raise ArgError(_("choose one of {rules}").format(rules=", ".join(GROUP_RULES)))
    return value


def _split_at(text: str) -> str:
    value = text.strip().lower()
    if value in ("off", "no", "none", "0"):
        return "off"
    if not value.isdigit() or not 10 <= int(value) <= 100_000:
        raise ArgError(_("give a number of members from 10 up, like 150, or off"))
    return str(int(value))


def _language(text: str) -> str:
    language = i18n.normalise(text)
    if language is None:
        raise ArgError(_("I don't speak “{language}” yet; choose one of {languages}").format(
            language=text[:20], languages=", ".join(i18n.available())))
    return language


_ZONES: set[str] = set()


def _zone_names() -> set[str]:
    if not _ZONES:
        _ZONES.update(available_timezones())
    return _ZONES


@dataclass(frozen=True)
class SettingSpec:
    key: str
    summary: str
    example: str
    canonical: Callable[[str], str]  # raises ArgError on a bad value
    names_role: bool = False  # the value must be one of the group's roles (checked by `set`)


SPECS: dict[str, SettingSpec] = {
    spec.key: spec
    for spec in (
        SettingSpec("timezone", N_("time zone for dates the bot shows"), "Europe/Lisbon", _timezone),
        SettingSpec("vote_duration", N_("how long a proposal stays open by default"), "3d", _duration),
        SettingSpec("rule", N_("default decision rule"), "consent", _rule),
        SettingSpec("quorum", N_("ballots a decision needs: a count or a share of members"), "40%", _quorum),
        SettingSpec("mandate_warnings", N_("reminders before a mandate ends"), "7d 1d", _durations),
        SettingSpec("need_nudge_after", N_("when an unclaimed need is posted again"), "24h", _duration),
        SettingSpec("audit_every", N_("how often the sovereignty audit comes round"), "90d", _duration),
        SettingSpec("propose_role", N_("who may open proposals: anyone, or the holders of a role"), "facilitator",
                    _role_or_anyone, names_role=True),
        SettingSpec("auto_draw", N_("draw a successor by lot as soon as a lottery seat lapses"), "on", _on_off),
        SettingSpec("digest", N_("when the weekly needs digest is posted (group time zone), or off"), "mon 09:00",
                    _weekly),
        SettingSpec("audit_window", N_("how long members have to report figures for an audit"), "7d", _duration),
        SettingSpec("audit_areas", N_("the areas of life audits ask about"), "food, housing, childcare", _areas),
        SettingSpec("audit_draw", N_("draw an auditor by lot for each audit (not a current role holder): on, off, "
                                     "or federation to draw among the federation's other groups"), "federation",
                    _audit_draw),
        SettingSpec("draw_window", N_("how long members may add randomness to a lottery before it is drawn"), "10m",
                    _duration),
        SettingSpec("currency", N_("the currency of the group's books"), "EUR", _currency),
        SettingSpec("ledger_role", N_("who records money in the ledger: anyone, or the holders of a role"), "treasurer",
                    _role_or_anyone, names_role=True),
        SettingSpec("spend_limit", N_("spending above this needs for=#N of a passed decision (0: no limit)"), "200",
                    _limit),
        SettingSpec("charter_rule", N_("the rule charter amendments and renewal reviews are decided by"), "two-thirds",
                    _rule),
        SettingSpec("renewal_every", N_("how often every role and charter clause must be renewed, or off"), "1y",
                    _duration_or_off),
        SettingSpec("assembly_every", N_("schedule the next assembly this long after each one (2w, 1mo), or off"), "2w",
                    _rhythm),
        SettingSpec("assembly_reminders", N_("reminders before each assembly, or off"), "2d 1h", _durations_or_off),
        SettingSpec("language", N_("the language the bot speaks in the group"), "es", _language),
        SettingSpec("rotation_prefers_new", N_("members who never facilitated or took minutes are drawn first"), "on",
                    _on_off),
        SettingSpec("federation_rule", N_("how many of a federation's groups must pass a shared proposal (the "
                                          "strictest of its groups' choices applies)"), "two-thirds", _group_rule),
        SettingSpec("split_at", N_("suggest splitting into federated cells when the group passes this many members, "
                                   "or off"), "150", _split_at),
    )
}


@dataclass(frozen=True)
class GroupSettings:
    """A group's settings, typed: the defaults overlaid with the group's own choices."""

    timezone: ZoneInfo
    vote_duration: timedelta
    rule: str
    quorum: Quorum
    mandate_warnings: tuple[timedelta, ...]
    need_nudge_after: timedelta
    audit_every: timedelta
    propose_role: str
    auto_draw: bool
    digest: tuple[int, int, int] | None  # (weekday 0=Monday, hour, minute); None: off
    audit_window: timedelta
    audit_areas: tuple[str, ...]
    audit_draw: bool
    audit_from_federation: bool  # `audit_draw federation`: the auditor comes from another group
    draw_window: timedelta
    currency: str
    ledger_role: str
    spend_limit_cents: int  # 0: no limit
    charter_rule: str
    renewal_every: timedelta | None  # None: off
    assembly_every: Rhythm | None  # None: off
    assembly_reminders: tuple[timedelta, ...]  # longest first; () when off
    rotation_prefers_new: bool
    language: str
    federation_rule: str  # majority | two-thirds | consensus (of groups)
    split_at: int | None  # None: off
    raw: Mapping[str, str]

    @classmethod
    def from_values(cls, values: Mapping[str, str]) -> GroupSettings:
        return cls(
            timezone=ZoneInfo(values["timezone"]),
            vote_duration=parse_duration(values["vote_duration"]),
            rule=values["rule"],
            quorum=Quorum.parse(values["quorum"]),
            mandate_warnings=tuple(parse_duration(v) for v in values["mandate_warnings"].split()),
            need_nudge_after=parse_duration(values["need_nudge_after"]),
            audit_every=parse_duration(values["audit_every"]),
            propose_role=values["propose_role"],
            auto_draw=values["auto_draw"] == "on",
            digest=_weekly_parts(values["digest"]),
            audit_window=parse_duration(values["audit_window"]),
            audit_areas=tuple(values["audit_areas"].split(", ")),
            audit_draw=values["audit_draw"] in ("on", "federation"),
            audit_from_federation=values["audit_draw"] == "federation",
            draw_window=parse_duration(values["draw_window"]),
            currency=values["currency"],
            ledger_role=values["ledger_role"],
            spend_limit_cents=parse_cents(values["spend_limit"], signed=False),
            charter_rule=values["charter_rule"],
            renewal_every=None if values["renewal_every"] == "off" else parse_duration(values["renewal_every"]),
            assembly_every=Rhythm.parse(values["assembly_every"]),
            assembly_reminders=() if values["assembly_reminders"] == "off" else tuple(
                parse_duration(v) for v in values["assembly_reminders"].split()),
            rotation_prefers_new=values["rotation_prefers_new"] == "on",
            language=values["language"],
            federation_rule=values["federation_rule"],
            split_at=None if values["split_at"] == "off" else int(values["split_at"]),
            raw=dict(values),
        )


def canonical(key: str, value: str) -> str:
    spec = SPECS.get(key)
    if spec is None:
        raise ArgError(_("there is no setting “{key}”; the settings are {keys}").format(key=key[:40],
                                                                                      keys=", ".join(SPECS)))
    return spec.canonical(value)


def _weekly_parts(value: str) -> tuple[int, int, int] | None:
    if value == "off":
        return None
    day, clock = value.split()
    hour, minute = clock.split(":")
    return WEEKDAYS.index(day), int(hour), int(minute)
