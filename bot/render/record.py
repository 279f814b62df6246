"""The group log as members read it: one short line per entry."""

from __future__ import annotations

import json
from collections.abc import Callable

from bot.i18n import N_, _
from bot.money import format_cents
from bot.render.proposals import outcome_word
from bot.render.text import b, code, escape
from storage.models import LogEntry


def entry_line(entry: LogEntry) -> str:
    body = json.loads(entry.body)
    describe = _DESCRIBE.get(entry.kind)
    what = describe(body) if describe else escape(entry.kind)
    return f"{code(str(entry.seq))} {what} <i>{escape(body.get('at', '')[:16].replace('T', ' '))}</i>"


def _mandate(template: str) -> Callable[[dict], str]:
    """`template` (marked N_) names the member and the role."""
    return lambda e: _(template).format(member=escape(e["member"]), role=b(e["role"])) + (
        f" ({escape(e['reason'])})" if e.get("reason") else "")


# A closed proposal's status, as the entry stores it (in English), in the reader's language.
_STATUS = {"closed": N_("closed"), "withdrawn": N_("withdrawn")}


def _closed(e: dict) -> str:
    status = _(_STATUS[e["status"]]) if e["status"] in _STATUS else e["status"]
    return _("#{number} {status}: {outcome} ({voters} of {members} voted)").format(
        number=e["proposal"], status=escape(status), outcome=b(outcome_word(e["outcome"])), voters=e["voters"],
        members=e["members"])


# The entries' bodies stay as logged (English keys and values, hashed); only these lines are translated.
_DESCRIBE: dict[str, Callable[[dict], str]] = {
    "proposal.opened": lambda e: _("#{number} opened: {title}").format(number=e["proposal"], title=b(e["title"])),
    "ballot.cast": lambda e: _("{member} voted on #{number}: {choice}").format(
        member=escape(e["member"]), number=e["proposal"], choice=b(e["choice"])),
    "ballot.retracted": lambda e: _("{member} took back their ballot on #{number}").format(
        member=escape(e["member"]), number=e["proposal"]),
    "proposal.closed": _closed,
    "mandate.started": _mandate(N_("{member} took a seat of {role}")),
    "mandate.renewed": _mandate(N_("{member} was renewed in {role}")),
    "mandate.ended": _mandate(N_("{member} left {role}")),
    "lottery.committed": lambda e: _("lottery {number} opened ({purpose}), commitment {commitment}").format(
        number=e["lottery"], purpose=escape(e["purpose"]), commitment=code(e["commitment"][:12])),
    "lottery.drawn": lambda e: _("lottery {number} drawn, seed {seed}").format(number=e["lottery"],
                                                                               seed=code(e["seed"][:12])),
    "setting.changed": lambda e: _("{member} set {setting}: {old} → {new}").format(
        member=escape(e["member"]), setting=code(e["key"]), old=escape(e["old"]), new=b(e["new"])),
    "need.met": lambda e: _("{kind} #{number} met").format(kind=escape(e["kind"]), number=e["need"]),
    "audit.closed": lambda e: _("audit #{number} closed").format(number=e["audit"]),
    "decision.lapsed": lambda e: _("#{number} lapsed (review #{review} did not keep it)").format(
        number=e["proposal"], review=e["review"]),
    "decision.kept": lambda e: _("#{number} kept (review #{review})").format(number=e["proposal"], review=e["review"]),
    "ledger.recorded": lambda e: _("ledger #{number}: {amount} {description}").format(
        number=e["entry"], amount=b(format_cents(e["amount_cents"], e["currency"], sign=True)),
        description=escape(e["description"])),
    "ledger.checked": lambda e: _("{member} checked the books of {month}: {verdict}").format(
        member=escape(e["member"]), month=escape(e["month"]), verdict=b(e["verdict"])),
    "charter.changed": lambda e: _("charter version {version} ({change}, #{number})").format(
        version=e["version"], change=escape(e["change"]), number=e["proposal"]),
    "renewal.opened": lambda e: _("renewal review #{number}: {count} items").format(number=e["proposal"],
                                                                                   count=len(e["items"])),
    "renewal.settled": lambda e: _("renewal review #{number}: {kept} kept, {ended} ended").format(
        number=e["proposal"], kept=len(e["kept"]), ended=len(e["ended"])),
}
