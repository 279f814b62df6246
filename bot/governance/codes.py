"""Codes given out in one place to be typed in another: to link two chats, two accounts of one
person, or to join a federation.

A code is short enough to type on a phone (8 letters and digits, no look-alikes: 40 bits) and
kept only as its hash. It works until it expires and, unless reusable, once.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlmodel import Session

from bot.events import UserRef
from bot.governance.errors import RuleViolation
from bot.i18n import _
from storage.models import LinkCode

ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I
LENGTH = 8


def _hash(code: str) -> str:
    return hashlib.sha256(normalise(code).encode()).hexdigest()


def normalise(code: str) -> str:
    """What members type back: any case, with or without the dash."""
    return "".join(code.split()).replace("-", "").upper()


def issue(session: Session, purpose: str, user: UserRef, now: datetime, lifetime: timedelta, *,
          group_id: int | None = None, federation_id: int | None = None) -> str:
    """A new code (shown once, as XXXX-XXXX)."""
    code = "".join(secrets.choice(ALPHABET) for __ in range(LENGTH))
    session.add(LinkCode(code_hash=_hash(code), purpose=purpose, platform=user.platform, user_id=user.user_id,
                         group_id=group_id, federation_id=federation_id, created_at=now, expires_at=now + lifetime))
    session.flush()
    return f"{code[:4]}-{code[4:]}"


def redeem(session: Session, purpose: str, code: str, now: datetime, *, once: bool = True) -> LinkCode:
    """The code's row, used up (if `once`); a clear refusal when it is unknown, used or expired."""
    row = session.get(LinkCode, _hash(code)) if len(normalise(code)) == LENGTH else None
    if row is None or row.purpose != purpose:
        raise RuleViolation(_("I don't know the code {code}; check it, or ask for a new one. Nothing was "
                              "changed.").format(code=normalise(code)[:LENGTH + 4]))
    if row.used_at is not None:
        raise RuleViolation(_("That code was used already; ask for a new one. Nothing was changed."))
    if row.expires_at <= now:
        raise RuleViolation(_("That code has expired; ask for a new one. Nothing was changed."))
    if once:
        row.used_at = now
    return row
