"""Lotteries nobody can steer: the published rule, pure functions.

1. When a draw opens the bot generates a secret and publishes its commitment,
   SHA-256(secret), with the frozen, ordered list of candidates.
2. Until the window closes, members add randomness (any text).
3. At the draw the secret is revealed; the seed is SHA-256 of the secret and
   every contribution, one per line, in the order they came.
4. Picks come from a SHA-256 counter stream: block i is SHA-256("seed:i") read
   as a 256-bit number; a pick among n candidates left takes the next block
   below the largest multiple of n (rejection sampling, so every candidate is
   equally likely), modulo n; the picked candidate leaves the list.

Anyone can recompute every step from the announcement. Whoever runs the bot
cannot choose the seed after seeing the contributions (the commitment binds
the secret), and no member can choose it without knowing the secret.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterator, Sequence
from typing import TypeVar

T = TypeVar("T")
SPACE = 2 ** 256


def new_secret() -> str:
    return secrets.token_hex(32)


def commitment(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def seed(secret: str, contributions: Sequence[str]) -> str:
    return hashlib.sha256("\n".join([secret, *contributions]).encode()).hexdigest()


def stream(seed_hex: str) -> Iterator[int]:
    """SHA-256("seed:0"), SHA-256("seed:1"), … as 256-bit numbers."""
    counter = 0
    while True:
        yield int.from_bytes(hashlib.sha256(f"{seed_hex}:{counter}".encode()).digest(), "big")
        counter += 1


def draw(seed_hex: str, candidates: Sequence[T], seats: int) -> list[T]:
    """`seats` of the candidates (fewer if there are fewer), in the order drawn."""
    left, picked, numbers = list(candidates), [], stream(seed_hex)
    while left and len(picked) < seats:
        limit = SPACE - SPACE % len(left)  # below this, every remainder is equally likely
        number = next(numbers)
        while number >= limit:
            number = next(numbers)
        picked.append(left.pop(number % len(left)))
    return picked
