"""The group log as members read it: one short line per entry."""

from __future__ import annotations

import json
from collections.abc import Callable

from bot.money import format_cents
from bot.render.text import b, code, escape
from storage.models import LogEntry


def entry_line(entry: LogEntry) -> str:
    body = json.loads(entry.body)
    describe = _DESCRIBE.get(entry.kind)
    what = describe(body) if describe else escape(entry.kind)
    return f"{code(str(entry.seq))} {what} <i>{escape(body.get('at', '')[:16].replace('T', ' '))}</i>"


def _mandate(verb: str) -> Callable[[dict], str]:
    return lambda e: f"{escape(e['member'])} {verb} {b(e['role'])}" + (
        f" ({escape(e['reason'])})" if e.get("reason") else "")


_DESCRIBE: dict[str, Callable[[dict], str]] = {
    "proposal.opened": lambda e: f"#{e['proposal']} opened: {b(e['title'])}",
    "ballot.cast": lambda e: f"{escape(e['member'])} voted on #{e['proposal']}: {b(e['choice'])}",
    "ballot.retracted": lambda e: f"{escape(e['member'])} took back their ballot on #{e['proposal']}",
    "proposal.closed": lambda e: f"#{e['proposal']} {escape(e['status'])}: {b(e['outcome'])} "
                                 f"({e['voters']} of {e['members']} voted)",
    "mandate.started": _mandate("took a seat of"),
    "mandate.renewed": _mandate("was renewed in"),
    "mandate.ended": _mandate("left"),
    "lottery.committed": lambda e: f"lottery {e['lottery']} opened ({escape(e['purpose'])}), commitment "
                                   f"{code(e['commitment'][:12])}",
    "lottery.drawn": lambda e: f"lottery {e['lottery']} drawn, seed {code(e['seed'][:12])}",
    "setting.changed": lambda e: f"{escape(e['member'])} set {code(e['key'])}: {escape(e['old'])} → "
                                 f"{b(e['new'])}",
    "need.met": lambda e: f"{escape(e['kind'])} #{e['need']} met",
    "audit.closed": lambda e: f"audit #{e['audit']} closed",
    "decision.lapsed": lambda e: f"#{e['proposal']} lapsed (review #{e['review']} did not keep it)",
    "decision.kept": lambda e: f"#{e['proposal']} kept (review #{e['review']})",
    "ledger.recorded": lambda e: f"ledger #{e['entry']}: {b(format_cents(e['amount_cents'], e['currency'], sign=True))}"
                                 f" {escape(e['description'])}",
    "ledger.checked": lambda e: f"{escape(e['member'])} checked the books of {escape(e['month'])}: {b(e['verdict'])}",
    "charter.changed": lambda e: f"charter version {e['version']} ({escape(e['change'])}, #{e['proposal']})",
    "renewal.opened": lambda e: f"renewal review #{e['proposal']}: {len(e['items'])} items",
    "renewal.settled": lambda e: f"renewal review #{e['proposal']}: {len(e['kept'])} kept, {len(e['ended'])} ended",
}
