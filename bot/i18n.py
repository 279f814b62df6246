"""Every text a member reads, in their group's language (or their own, in a private chat).

Texts are written in English in the code, wrapped so Babel can extract them:

    _("The vote on #{number} is closed.").format(number=3)
    ngettext("{count} vote", "{count} votes", count).format(count=count)
    SUMMARY = N_("list the open proposals")   # marked here, translated where it is shown: _(SUMMARY)

Placeholders are always named, so a translation may reorder them. The language
is a context variable: the core sets it for each inbound event (the group's
`language` setting, or a member's own in a private chat) and the scheduler for
each due item, so rules deep in `bot/governance` raise their refusals already
translated, without passing a language around.

Catalogs are the `.po` files in `bot/locales/<lang>/LC_MESSAGES/commons.po`, read
directly (no build step, so a fresh `pip install` works): adding a language is
copying a catalog and translating it. Command words and option names are never
translated; they are the interface shared across languages.
"""

from __future__ import annotations

import gettext
import io
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from pathlib import Path

from babel import Locale
from babel.dates import format_datetime, format_timedelta
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal

LOCALES_DIR = Path(__file__).parent / "locales"
DOMAIN = "commons"
SOURCE_LANGUAGE = "en"
_current: ContextVar[str] = ContextVar("language", default=SOURCE_LANGUAGE)


@lru_cache(maxsize=1)
def available() -> tuple[str, ...]:
    """The languages the bot speaks: English and every shipped catalog."""
    found = sorted(path.parent.parent.name for path in LOCALES_DIR.glob(f"*/LC_MESSAGES/{DOMAIN}.po"))
    return (SOURCE_LANGUAGE, *(code for code in found if code != SOURCE_LANGUAGE))


def normalise(code: str) -> str | None:
    """A language as members type it (`pt`, `pt-br`, `ES`, `es_AR`) → a shipped one, or None."""
    wanted = code.strip().replace("-", "_")
    if not wanted or len(wanted) > 16:
        return None
    shipped = {language.casefold(): language for language in available()}
    if wanted.casefold() in shipped:
        return shipped[wanted.casefold()]
    base = wanted.split("_")[0].casefold()
    for language in available():  # `pt` → pt_BR, `es_AR` → es
        if language.split("_")[0].casefold() == base:
            return language
    return None


@lru_cache(maxsize=None)
def translations(language: str) -> gettext.NullTranslations:
    """The catalog of `language` (English: none needed, the texts are English)."""
    path = LOCALES_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po"
    if language == SOURCE_LANGUAGE or not path.exists():
        return gettext.NullTranslations()
    with path.open("rb") as po:
        catalog = read_po(po, locale=language)
    compiled = io.BytesIO()
    write_mo(compiled, catalog, use_fuzzy=False)  # a fuzzy (unchecked) translation falls back to English
    compiled.seek(0)
    return gettext.GNUTranslations(compiled)


def preload() -> None:
    """Read every shipped catalog now (at start-up), not on the first message in each language."""
    for language in available():
        translations(language)


def current() -> str:
    return _current.get()


@contextmanager
def speaking(language: str | None) -> Iterator[None]:
    """Texts made inside are in `language` (None: unchanged)."""
    if language is None:
        yield
        return
    token = _current.set(language if language in available() else SOURCE_LANGUAGE)
    try:
        yield
    finally:
        _current.reset(token)


def _(message: str) -> str:
    return translations(_current.get()).gettext(message)


def ngettext(singular: str, plural: str, count: int) -> str:
    """The form for `count` by the language's own plural rule (placeholders still to fill)."""
    return translations(_current.get()).ngettext(singular, plural, count)


def N_(message: str) -> str:
    """Marks a text for the catalog where it is defined; it is translated where shown, with _()."""
    return message


# Dates, numbers and money, by the locale's own conventions ---------------------------------------

def _locale() -> Locale:
    return Locale.parse(_current.get())


def _english() -> bool:
    return _current.get() == SOURCE_LANGUAGE


def moment(local: datetime, year: bool = False) -> str:
    """`Fri 5 Dec 19:00`, with `year` `Fri 5 Dec 2026 19:00` (a moment already in the group's zone;
    the caller adds its zone's name)."""
    if _english():  # as the bot always wrote it (Babel's English abbreviations differ: "Sept")
        clock = f"{local:%H:%M:%S}" if local.second else f"{local:%H:%M}"  # seconds only when they matter
        month = f"{local:%b %Y}" if year else f"{local:%b}"
        return f"{local:%a} {local.day} {month} {clock}"
    pattern = ("EEE d MMM y HH:mm" if year else "EEE d MMM HH:mm") + (":ss" if local.second else "")
    return format_datetime(local, pattern, tzinfo=local.tzinfo, locale=_locale())


def day(local: datetime) -> str:
    """`5 Dec 2026`."""
    if _english():
        return f"{local.day} {local:%b %Y}"
    return format_datetime(local, "d MMM y", tzinfo=local.tzinfo, locale=_locale())


def date(local: datetime, year: bool = True) -> str:
    """`05 Dec 2026`, or `05 Dec` without the year (a date already in the group's zone)."""
    if _english():
        return f"{local:%d %b %Y}" if year else f"{local:%d %b}"
    return format_datetime(local, "dd MMM y" if year else "dd MMM", tzinfo=local.tzinfo, locale=_locale())


def day_month(local: datetime) -> str:
    """`5 Mar`."""
    if _english():
        return f"{local.day} {local:%b}"
    return format_datetime(local, "d MMM", tzinfo=local.tzinfo, locale=_locale())


def month_year(local: datetime) -> str:
    """`Mar 26`: a month in short, on a chart's axis."""
    if _english():
        return f"{local:%b %y}"
    return format_datetime(local, "MMM yy", tzinfo=local.tzinfo, locale=_locale())


def number(value: int | float | Decimal) -> str:
    """`1,234` in English, `1.234` in Spanish, `1.234` in Portuguese."""
    if _english():
        return f"{value:,}"
    return format_decimal(value, locale=_locale())


def amount(cents: int) -> str | None:
    """`1.234,50` (Spanish, Portuguese): a sum of money in the language's own separators, or None in
    English, whose form the books have always used (`1 234.50`)."""
    if _english():
        return None
    return format_decimal(Decimal(cents) / 100, format="#,##0.00", locale=_locale())


def span(delta: timedelta) -> str:
    """`3 days`, `2 hours`: how long, in words (rounded, for people)."""
    return format_timedelta(delta, threshold=1.5, locale=_locale())
