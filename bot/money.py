"""Money as members type it and as the bot shows it: exact, in cents, never a float.

`+120`, `-45.50`, `45,50` (a decimal comma, as typed in much of the world) and `1 200.00`
are read; three decimals, a thousands separator we cannot tell from a decimal one, or
anything that is not a number is refused with a sentence saying what to type.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from bot import i18n
from bot.i18n import _

MAX_CENTS = 10**13  # a hundred billion: far above any group's books, far below a BIGINT
_AMOUNT = re.compile(r"([+-]?)(\d{1,3}(?:[ _ ]\d{3})+|\d+)(?:[.,](\d+))?")
CURRENCY = re.compile(r"[A-Z]{3}")


class MoneyError(ValueError):
    """An amount the bot cannot read; the message is shown to the member."""


def parse_cents(text: str, *, signed: bool = True) -> int:
    """`-45.50` → -4550. `signed=False`: no sign allowed (a limit)."""
    raw = text.strip()
    match = _AMOUNT.fullmatch(raw)
    if not match or (match[1] and not signed):
        message = (_("“{amount}” is not an amount; write it like +120 or -45.50") if signed
                   else _("“{amount}” is not an amount; write it like 200 or 49.99"))
        raise MoneyError(message.format(amount=raw[:20]))
    whole, fraction = re.sub(r"[ _ ]", "", match[2]), match[3] or ""
    if len(fraction) > 2:
        raise MoneyError(_("“{amount}” has more than two decimals; amounts are in cents, like 45.50")
                         .format(amount=raw[:20]))
    try:
        cents = int(Decimal(f"{whole}.{fraction or '0'}") * 100)
    except InvalidOperation:  # pragma: no cover - the pattern only lets digits through
        raise MoneyError(_("“{amount}” is not an amount").format(amount=raw[:20])) from None
    if cents >= MAX_CENTS:
        raise MoneyError(_("that amount is too large for the books"))
    return -cents if match[1] == "-" else cents


def format_cents(cents: int, currency: str, *, sign: bool = False) -> str:
    """4550 → `45.50 EUR`; with `sign`, `+45.50 EUR` / `−45.50 EUR` (a true minus, readable on phones)."""
    whole, rest = divmod(abs(cents), 100)
    # In English a thin space groups thousands; other languages write their own separators (1.234,50).
    shown = i18n.amount(abs(cents)) or f"{whole:,}.{rest:02d}".replace(",", " ")
    if cents < 0:
        prefix = "−"
    else:
        prefix = "+" if sign and cents > 0 else ""
    return f"{prefix}{shown} {currency}"
