"""(being written)"""

from __future__ import annotations

DUE_WORK: tuple = ()


def next_due(session):
    return None
