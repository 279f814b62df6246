"""Check an exported group log offline: the chain, the recounts, the lotteries.

`verify(lines)` reads an export (JSON Lines, oldest first, see bot.governance.record) one line at
a time and stops at the first entry that does not hold:

- the chain: `seq` counts 1, 2, 3 …; each `hash` is SHA-256(prev + canonical body) and each
  `prev` is the hash of the entry before (64 zeros for the first);
- the outcomes: every closed proposal whose opening is in the log is recounted from its ballots
  (an open vote: each member's latest `ballot.cast` before the close, less those taken back; a
  secret vote: the ballot box published at the close) with the bot's own pure functions,
  `bot.governance.voting`; a withdrawn proposal is not counted;
- the lotteries: the revealed secret must match the commitment published when the draw opened,
  the seed must follow from the secret and the contributions, the picks from the seed
  (`bot.governance.lottery`);
- a checkpoint a member kept (`N:HASH`): entry N must be in the file and its hash start with HASH.

Memory holds what recounts need: the ballots of proposals still open at that point of the log,
and the lotteries committed but not drawn yet. No database, no network.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

from bot.commands.args import Quorum
from bot.governance import lottery, voting
from bot.governance.chain import GENESIS, Head, canonical, entry_hash

RANK_SEPARATOR = ">"
METHODS = ("plain", "ranked")
RENEWAL = "renewal_review"  # a proposal kind whose ballots keep or drop items (voting.decide_items)
# What the close repeats of the opening: a recount uses the opening's, and they must agree.
PARAMETERS = ("rule", "quorum", "options", "method", "seats", "secret")
_HEX = re.compile(r"[0-9a-f]{64}")
_CHECKPOINT = re.compile(r"\s*#?(\d{1,12})\s*:\s*([0-9a-fA-F]{8,64})\s*")


@dataclass(frozen=True)
class Report:
    ok: bool
    entries: int  # entries that held (all of them when ok)
    head: Head  # the last entry that held: (seq, hash)
    recounted: int  # closed proposals whose outcome was recounted
    lotteries: int  # draws re-derived
    problem: str | None = None  # the first entry that does not hold, in words
    checkpoint: str | None = None  # the checkpoint checked, as given

    def summary(self) -> str:
        if not self.ok:
            return f"FAILED: {self.problem}"
        line = (f"OK: {_plural(self.entries, 'entry', 'entries')}, head {self.head.short()}; "
                f"{_plural(self.recounted, 'outcome')} recounted, "
                f"{_plural(self.lotteries, 'lottery', 'lotteries')} re-derived")
        return line + (f"; checkpoint {self.checkpoint} matches" if self.checkpoint else "")


class Checkpoint(NamedTuple):
    seq: int
    prefix: str  # lower-case hex, at least 8 digits

    def __str__(self) -> str:
        return f"{self.seq}:{self.prefix}"


def parse_checkpoint(text: str) -> Checkpoint:
    """`1234:3f9a0c1b2d4e` (the entry number, a colon, at least 8 hex digits of its hash)."""
    match = _CHECKPOINT.fullmatch(text)
    if not match or int(match[1]) < 1:
        raise ValueError(f"“{text[:80]}” is not a checkpoint; write it like 1234:3f9a0c1b2d4e "
                         "(the entry number, a colon, at least 8 hex digits of its hash)")
    return Checkpoint(int(match[1]), match[2].lower())


class _Broken(Exception):
    """The first thing in the file that does not hold (the message names it)."""


class _Problem(Exception):
    """What is wrong with one entry's content (the caller adds "entry N (kind): ")."""


def verify(lines: Iterable[str] | Iterable[bytes], head: str | None = None) -> Report:
    """Check an export, read line by line; `head` is a checkpoint "N:HASH" a member kept."""
    checkpoint = parse_checkpoint(head) if head is not None else None
    ledger = _Ledger()
    seq, digest = 0, GENESIS
    rest = _numbered(lines)
    try:
        for line_number, entry in rest:
            expected = seq + 1
            if entry.seq != expected:
                raise _Broken(_sequence_problem(expected, entry.seq, line_number, rest))
            if entry_hash(entry.prev, canonical(entry.body)) != entry.hash:
                raise _Broken(f"{_name(entry)}: its hash does not match its content")
            if entry.prev != digest:
                raise _Broken(f"{_name(entry)}: {_link_problem(expected, digest, rest)}")
            try:
                ledger.apply(entry.seq, entry.kind, entry.body)
            except _Problem as problem:
                raise _Broken(f"{_name(entry)}: {problem}") from None
            except (KeyError, TypeError, ValueError, IndexError, AttributeError) as error:
                raise _Broken(f"{_name(entry)}: its body is not a well-formed {entry.kind} ({error})") from None
            seq, digest = entry.seq, entry.hash
            if checkpoint and seq == checkpoint.seq and not digest.startswith(checkpoint.prefix):
                raise _Broken(f"{_name(entry)}: its hash {digest[:len(checkpoint.prefix)]} does not match the "
                              f"checkpoint {checkpoint} (the log was rewritten after that checkpoint was taken)")
        if checkpoint and seq < checkpoint.seq:
            gone = f"entry {checkpoint.seq}" if seq + 1 == checkpoint.seq else f"entries {seq + 1} to {checkpoint.seq}"
            raise _Broken(f"{gone}: missing at the end (the file stops at entry {seq}; "
                          f"the checkpoint {checkpoint} is further on)")
    except _Broken as broken:
        return Report(False, seq, Head(seq, digest), ledger.recounted, ledger.lotteries, str(broken),
                      str(checkpoint) if checkpoint else None)
    return Report(True, seq, Head(seq, digest), ledger.recounted, ledger.lotteries, None,
                  str(checkpoint) if checkpoint else None)


# --- reading --------------------------------------------------------------------------------------

class _Entry(NamedTuple):
    seq: int
    kind: str
    prev: str
    hash: str
    body: dict[str, Any]


def _numbered(lines: Iterable[str] | Iterable[bytes]) -> Iterator[tuple[int, _Entry]]:
    """Each entry with its line number; blank lines are skipped, a bad line stops the check."""
    for line_number, raw in enumerate(lines, 1):
        text = _text(raw, line_number)
        if line_number == 1:
            text = text.removeprefix("\ufeff")
        if not text.strip():
            continue
        try:
            data = json.loads(text)
        except ValueError:
            raise _Broken(f"line {line_number}: not valid JSON") from None
        yield line_number, _entry(data, line_number)


def _name(entry: _Entry) -> str:
    return f"entry {entry.seq} ({entry.kind})"


def _text(raw: str | bytes, line_number: int) -> str:
    if isinstance(raw, str):
        return raw
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _Broken(f"line {line_number}: not valid UTF-8") from None


def _entry(data: Any, line_number: int) -> _Entry:
    if type(data) is dict:  # the usual case, quickly
        seq, kind, prev, digest, body = (data.get("seq"), data.get("kind"), data.get("prev"), data.get("hash"),
                                         data.get("body"))
        if type(seq) is int and type(kind) is str and type(prev) is str and type(digest) is str and type(body) is dict:
            return _Entry(seq, kind, prev, digest, body)
    else:
        raise _Broken(f"line {line_number}: not a log entry (a JSON object with seq, kind, prev, hash and body)")
    for key, kind in _FIELDS.items():
        value = data.get(key)
        if not isinstance(value, kind) or isinstance(value, bool):
            where = f"entry {data['seq']}" if _is_int(data.get("seq")) else f"line {line_number}"
            wrong = f"it has no {key}" if value is None else f"its {key} is not {_FIELD_KINDS[kind]}"
            raise _Broken(f"{where}: not a log entry ({wrong})")
    return _Entry(data["seq"], data["kind"], data["prev"], data["hash"], data["body"])


_FIELDS = {"seq": int, "kind": str, "prev": str, "hash": str, "body": dict}
_FIELD_KINDS = {int: "a whole number", str: "text", dict: "a JSON object"}


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _sequence_problem(expected: int, seq: int, line_number: int, rest: Iterator[tuple[int, _Entry]]) -> str:
    """Entry `seq` stands where entry `expected` should: a duplicate, a swap, or a gap."""
    if seq == expected - 1:
        return f"entry {seq}: appears twice (again on line {line_number})"
    if seq < expected:
        return f"entry {seq}: out of order (it comes after entry {expected - 1})"
    if _later(rest, lambda entry: entry.seq == expected):
        return f"entry {expected}: out of order (entry {seq} came before it)"
    before = f"entry {expected - 1} is followed by entry {seq}" if expected > 1 else f"the file starts with entry {seq}"
    gone = f"entry {expected}" if seq == expected + 1 else f"entries {expected} to {seq - 1}"
    return f"{gone}: missing ({before})"


def _link_problem(expected: int, digest: str, rest: Iterator[tuple[int, _Entry]]) -> str:
    """The entry numbered `expected` does not follow the one before: moved (renumbered), or the
    chain was rewritten before it."""
    if expected == 1:
        return "its prev is not the start of a chain (64 zeros): entries before it are missing"
    if _later(rest, lambda entry: entry.prev == digest):
        return f"out of order (the entry that follows entry {expected - 1} comes later in the file)"
    return f"its prev is not the hash of entry {expected - 1} (an entry up to {expected - 1} was rewritten)"


def _later(rest: Iterator[tuple[int, _Entry]], wanted) -> bool:
    """Whether an entry further down is `wanted` (reads the rest of the file, once, on failure)."""
    try:
        return any(wanted(entry) for _, entry in rest)
    except _Broken:  # a bad line further down: it was not found before it
        return False


# --- what the entries mean ------------------------------------------------------------------------

@dataclass
class _Open:
    """A proposal opened in the log and not closed yet."""

    seq: int  # of its proposal.opened entry
    parameters: dict[str, Any]
    ballots: dict[int, str]  # member id -> their latest choice
    items: list[str] | None = None  # a renewal review's items (its renewal.opened entry)


@dataclass
class _Committed:
    seq: int
    body: dict[str, Any]


class _Ledger:
    def __init__(self) -> None:
        self.open: dict[int, _Open] = {}
        self.closed: dict[int, int] = {}  # proposal number -> seq of its close
        self.committed: dict[int, _Committed] = {}
        self.drawn: dict[int, int] = {}  # lottery number -> seq of its draw
        self.tie_seeds: dict[int, str] = {}  # proposal number -> the seed its tie lottery drew
        self.recounted = 0
        self.lotteries = 0

    def apply(self, seq: int, kind: str, body: dict[str, Any]) -> None:
        handler = _HANDLERS.get(kind)
        if handler is not None:
            handler(self, seq, body)

    # proposals and ballots

    def opened(self, seq: int, body: dict[str, Any]) -> None:
        number = _int(body, "proposal")
        if number in self.open:
            raise _Problem(f"proposal #{number} was already opened at entry {self.open[number].seq}")
        if number in self.closed:
            raise _Problem(f"proposal #{number} was opened again after it closed at entry {self.closed[number]}")
        self.open[number] = _Open(seq, _parameters(body), {})
        self.open[number].parameters["kind"] = body.get("kind")

    def renewal_opened(self, seq: int, body: dict[str, Any]) -> None:
        proposal = self.open.get(_int(body, "proposal"))
        items = body.get("items")
        if not isinstance(items, list) or not items or not all(isinstance(item, str) for item in items):
            raise _Problem("its items are not a list of names")
        if proposal is not None:
            if proposal.parameters.get("kind") != RENEWAL or proposal.items is not None:
                raise _Problem(f"#{body['proposal']} is not a renewal review waiting for its items")
            proposal.items = items

    def cast(self, seq: int, body: dict[str, Any]) -> None:
        proposal = self._voting_on(body)
        choice = _str(body, "choice")
        if proposal is not None:
            if proposal.parameters.get("kind") == RENEWAL:
                self._check_marks(choice, proposal, body)
            elif not _is_choice(choice, proposal.parameters):
                raise _Problem(f"{_who(body)}'s ballot on #{body['proposal']}, “{_show(choice, 40)}”, "
                               "is not one of its choices")
            proposal.ballots[body["member_id"]] = choice

    @staticmethod
    def _check_marks(choice: str, proposal: _Open, body: dict[str, Any]) -> None:
        marks = voting.decode_marks(choice)
        if marks is None or proposal.items is None or not all(1 <= n <= len(proposal.items) for n in marks):
            raise _Problem(f"{_who(body)}'s answer on #{body['proposal']}, “{_show(choice, 40)}”, does not keep or "
                           "drop its items")

    def retracted(self, seq: int, body: dict[str, Any]) -> None:
        proposal = self._voting_on(body)
        if proposal is not None and proposal.ballots.pop(_int(body, "member_id"), None) is None:
            raise _Problem(f"{_who(body)} takes back a ballot on #{body['proposal']} they had not cast")

    def _voting_on(self, body: dict[str, Any]) -> _Open | None:
        number = _int(body, "proposal")
        _int(body, "member_id")
        if number in self.closed:
            raise _Problem(f"a ballot by {_who(body)} on #{number} after it closed at entry {self.closed[number]}")
        proposal = self.open.get(number)
        if proposal is not None and proposal.parameters["secret"]:
            raise _Problem(f"a named ballot by {_who(body)} on #{number}, a secret vote")
        return proposal  # None: opened before the log began, so it cannot be recounted

    def closed_entry(self, seq: int, body: dict[str, Any]) -> None:
        number = _int(body, "proposal")
        if number in self.closed:
            raise _Problem(f"proposal #{number} was already closed at entry {self.closed[number]}")
        proposal = self.open.pop(number, None)
        self.closed[number] = seq
        status = body["status"]
        if status not in ("closed", "withdrawn"):
            raise _Problem(f"its status “{status}” is neither closed nor withdrawn")
        if proposal is not None:
            for key in PARAMETERS:
                if body.get(key) != proposal.parameters[key]:
                    raise _Problem(f"its {key} ({_show(body.get(key))}) differs from the {key} #{number} opened with "
                                   f"at entry {proposal.seq} ({_show(proposal.parameters[key])})")
        if status == "withdrawn":
            return
        count = body.get("count")
        if isinstance(count, dict) and number in self.tie_seeds and count.get("seed") != self.tie_seeds[number]:
            raise _Problem(f"its count breaks ties with the seed {_show(count.get('seed'), 16)}, not the seed its "
                           "tie lottery drew")
        if proposal is not None and proposal.parameters.get("kind") == RENEWAL:
            _recount_renewal(body, proposal)
        elif proposal is not None:
            secret = proposal.parameters["secret"]
            _recount(body, proposal.parameters, None if secret else list(proposal.ballots.values()))
        elif body.get("secret") is True:  # opened before the log began: the box is all a recount needs
            _recount(body, _parameters(body), None)
        else:
            return  # opened before the log began: its first ballots are not in the log
        self.recounted += 1

    # lotteries

    def lottery_committed(self, seq: int, body: dict[str, Any]) -> None:
        number = _int(body, "lottery")
        if number in self.committed or number in self.drawn:
            first = self.committed[number].seq if number in self.committed else self.drawn[number]
            raise _Problem(f"lottery #{number} was already opened (entry {first})")
        _hex(body, "commitment")
        self.committed[number] = _Committed(seq, body)

    def lottery_drawn(self, seq: int, body: dict[str, Any]) -> None:
        number = _int(body, "lottery")
        if number in self.drawn:
            raise _Problem(f"lottery #{number} was already drawn at entry {self.drawn[number]}")
        self.drawn[number] = seq
        secret, commitment = _str(body, "secret"), _hex(body, "commitment")
        if lottery.commitment(secret) != commitment:
            raise _Problem("the secret does not match its commitment")
        committed = self.committed.pop(number, None)
        if committed is not None:
            for key in ("commitment", "candidates", "seats", "purpose", "role", "proposal", "audit", "month",
                        "assembly"):
                if body.get(key) != committed.body.get(key):
                    raise _Problem(f"it changes the {key} published when lottery #{number} opened "
                                   f"(entry {committed.seq})")
        contributions = [contribution[1] for contribution in body["contributions"]]  # [name, text]
        if not all(isinstance(text, str) for text in contributions):
            raise _Problem("a contribution is not text")
        seed = lottery.seed(secret, contributions)
        if seed != body["seed"]:
            raise _Problem("the seed does not follow from the secret and the contributions")
        candidates = [(member_id, name) for member_id, name in body["candidates"]]
        picks = [member_id for member_id, _ in lottery.draw(seed, candidates, _int(body, "seats"))]
        if picks != body["picks"]:
            raise _Problem("the picks do not follow from the seed")
        if body.get("purpose") == "tie" and _is_int(body.get("proposal")):
            self.tie_seeds[body["proposal"]] = seed  # the ranked count of that proposal must use it
        self.lotteries += 1


_HANDLERS = {
    "proposal.opened": _Ledger.opened,
    "ballot.cast": _Ledger.cast,
    "ballot.retracted": _Ledger.retracted,
    "proposal.closed": _Ledger.closed_entry,
    "renewal.opened": _Ledger.renewal_opened,
    "lottery.committed": _Ledger.lottery_committed,
    "lottery.drawn": _Ledger.lottery_drawn,
}


def _parameters(body: dict[str, Any]) -> dict[str, Any]:
    """How a proposal is counted, checked enough that a recount cannot trip on it."""
    parameters = {key: body.get(key) for key in PARAMETERS}
    if parameters["rule"] not in voting.RULES:
        raise _Problem(f"its rule “{_show(parameters['rule'])}” is not one of {', '.join(voting.RULES)}")
    if not isinstance(parameters["quorum"], str):
        raise _Problem("its quorum is not text like 5 or 40%")
    Quorum.parse(parameters["quorum"])  # ArgError (a ValueError) says what is wrong
    if parameters["method"] not in METHODS:
        raise _Problem(f"its method “{_show(parameters['method'])}” is neither plain nor ranked")
    options = parameters["options"]
    if options is not None and not (isinstance(options, list) and all(isinstance(o, str) for o in options)):
        raise _Problem("its options are not a list of names")
    if options is not None and len(set(options)) != len(options):
        raise _Problem("two of its options have the same name")
    if parameters["method"] == "ranked" and not options:
        raise _Problem("a ranked poll without options")
    _int(body, "seats", low=1)
    if not isinstance(parameters["secret"], bool):
        raise _Problem("its secret is neither true nor false")
    return parameters


def _recount(body: dict[str, Any], parameters: dict[str, Any], choices: list[str] | None) -> None:
    """Count the ballots again and compare with what the close says. `choices` is None for a
    secret vote: its ballots are the box the close published."""
    members, voters = _int(body, "members", low=0), _int(body, "voters", low=0)
    if choices is None:
        choices = _box(body, voters, parameters)
    options, seats = parameters["options"], parameters["seats"]
    quorum = Quorum.parse(parameters["quorum"])
    stored_count = body.get("count")
    if parameters["method"] == "ranked":
        rankings = [_ranking(choice, options) or [] for choice in choices]  # every choice checked already
        counts = voting.count_ballots([ranking[0] if ranking else voting.ABSTAIN for ranking in rankings], options)
        seed = ""  # no record: no quorum or no ranking, where the count needs no seed (the recount shows it)
        if stored_count is not None:
            if not isinstance(stored_count, dict) or not isinstance(stored_count.get("seed"), str):
                raise _Problem("its ranked count has no seed")
            seed = stored_count["seed"]
        outcome, count = voting.decide_ranked(quorum, members, rankings, options, seats, seed=seed)
    else:
        counts = voting.count_ballots(choices, options)
        outcome, count = voting.decide(parameters["rule"], quorum, members, counts, options, seats), None
    if outcome.result != body["outcome"]:
        raise _Problem(f"the recount gives {outcome.result}, the log says {_show(body['outcome'])}")
    if list(outcome.winners) != body["winners"]:
        raise _Problem(f"the recount's winners are {_names(outcome.winners)}, the log says {_names(body['winners'])}")
    if counts != body["counts"]:
        raise _Problem(f"the recount counts {_tally(counts)}, the log says {_tally(body['counts'], counts)}")
    if voters != sum(counts.values()):
        raise _Problem(f"it says {voters} voted, the recount finds {sum(counts.values())} ballots")
    if parameters["method"] == "ranked" and count != stored_count:
        raise _Problem(f"the recount's rounds differ from the log's ({_first_difference(count, stored_count)})")


def _recount_renewal(body: dict[str, Any], proposal: _Open) -> None:
    """A renewal review: each item decided again under its rule, the kept ones compared with the log's."""
    if proposal.items is None:
        raise _Problem("a renewal review closed without the items it listed")
    members = _int(body, "members", low=0)
    ballots = [voting.decode_marks(choice) for choice in proposal.ballots.values()]
    quorum = Quorum.parse(proposal.parameters["quorum"])
    decided = voting.decide_items(proposal.parameters["rule"], quorum, members, ballots,
                                  list(range(1, len(proposal.items) + 1)))
    outcome, counts = voting.renewal_outcome(ballots, proposal.items, decided, quorum, members)
    if outcome.result != body["outcome"]:
        raise _Problem(f"the recount gives {outcome.result}, the log says {_show(body['outcome'])}")
    if list(outcome.winners) != body["winners"]:
        raise _Problem(f"the recount keeps {_names(outcome.winners)}, the log says {_names(body['winners'])}")
    if counts != body["counts"]:
        raise _Problem(f"the recount counts {_tally(counts)}, the log says {_tally(body['counts'], counts)}")


def _box(body: dict[str, Any], voters: int, parameters: dict[str, Any]) -> list[str]:
    """The choices in a secret vote's published box, after checking it against who voted."""
    box, names = body.get("ballots"), body.get("voter_names")
    if not isinstance(box, list) or not isinstance(names, list):
        raise _Problem("a secret vote closed without its ballot box and the names of who voted")
    if not len(box) == len(names) == voters:
        raise _Problem(f"its ballot box holds {len(box)} ballot{'s' if len(box) != 1 else ''} for "
                       f"{len(names)} named voter{'s' if len(names) != 1 else ''} and {voters} counted")
    receipts = [receipt for receipt, _ in box]
    if len(set(receipts)) != len(receipts):
        raise _Problem("its ballot box holds one receipt twice")
    choices = [choice for _, choice in box]
    for choice in choices:
        if not isinstance(choice, str) or not _is_choice(choice, parameters):
            raise _Problem(f"a ballot in its box, “{_show(choice, 40)}”, is not one of its choices")
    return choices


def _is_choice(choice: str, parameters: dict[str, Any]) -> bool:
    """Whether the bot could have stored this choice: a stance, an option's name or abstain, or a ranking."""
    options = parameters["options"]
    if parameters["method"] == "ranked":
        return choice == voting.ABSTAIN or _ranking(choice, options) is not None
    return (choice in options or choice == voting.ABSTAIN) if options else choice in voting.STANCES


def _ranking(choice: str, options: list[str]) -> list[str] | None:
    """A stored ranking ("3>1>2", "abstain") as option names, best first; None if it is not one."""
    if choice == voting.ABSTAIN:
        return []
    parts = choice.split(RANK_SEPARATOR)
    if not all(part.isascii() and part.isdigit() and 1 <= int(part) <= len(options) for part in parts):
        return None
    numbers = [int(part) for part in parts]
    return [options[n - 1] for n in numbers] if len(set(numbers)) == len(numbers) else None


def _first_difference(ours: dict | None, theirs: Any) -> str:
    if ours is None or not isinstance(theirs, dict):
        return "the log has no rounds" if theirs is None else "the recount has no rounds"
    for key in ours:
        if key != "stages" and ours[key] != theirs.get(key):
            return f"{key}: {_show(ours[key])} against {_show(theirs.get(key))}"
    stages, logged = ours["stages"], theirs.get("stages") or []
    for index, stage in enumerate(stages):
        if index >= len(logged) or stage != logged[index]:
            return f"round {index + 1}"
    return f"the log has {len(logged)} rounds, the recount {len(stages)}"


# --- small helpers --------------------------------------------------------------------------------

def _int(body: dict[str, Any], key: str, low: int = 1) -> int:
    value = body.get(key)
    if not _is_int(value) or value < low:
        raise _Problem(f"its {key} is not a whole number" + (" from 1" if low == 1 else ""))
    return value


def _str(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str):
        raise _Problem(f"its {key} is not text")
    return value


def _hex(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not _HEX.fullmatch(value):
        raise _Problem(f"its {key} is not 64 hex digits")
    return value


def _who(body: dict[str, Any]) -> str:
    member = body.get("member")
    return member if isinstance(member, str) and member else f"member {body.get('member_id')}"


def _show(value: Any, limit: int = 60) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _names(names: Any) -> str:
    return ", ".join(map(str, names)) if isinstance(names, (list, tuple)) and names else "none"


def _tally(counts: Any, order: dict[str, int] | None = None) -> str:
    """Counts as "yes 3, no 1, …"; the log's (keys sorted) in the order of the recount's labels."""
    if not isinstance(counts, dict):
        return _show(counts)
    labels = [label for label in order or () if label in counts] + [label for label in counts
                                                                     if label not in (order or ())]
    return ", ".join(f"{label} {_show(counts[label])}" for label in labels)


def _plural(number: int, word: str, plural: str | None = None) -> str:
    return f"{number} {word if number == 1 else plural or word + 's'}"
