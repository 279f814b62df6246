"""`commons-bot verify`: an exported group log checked offline (bot.verify).

Exports are built here, entry by entry, the way bot.governance.record chains them. Outcomes the
builder records are checked against results written by hand in each test, so a recount that
merely agreed with itself would not pass.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace

import pytest

from bot import cli
from bot.commands.args import Quorum
from bot.governance import lottery, record, voting
from bot.verify import parse_checkpoint, verify

ROOT = Path(__file__).resolve().parents[1]
START = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
NAMES = {1: "Ada", 2: "Bea", 3: "Cy", 4: "Dee", 5: "Eli", 6: "Fox", 7: "Gus", 8: "Hal", 9: "Ivy", 10: "Jo"}


# --- the builder ----------------------------------------------------------------------------------

def chain(entries: list[dict], start: int = 0) -> list[dict]:
    """Recompute prev and hash from entries[start] on (what a forger rewriting the log would do)."""
    for index in range(start, len(entries)):
        entry = entries[index]
        entry["prev"] = entries[index - 1]["hash"] if index else record.GENESIS
        entry["hash"] = record.entry_hash(entry["prev"], record.canonical(entry["body"]))
    return entries


def line_of(entry: dict) -> str:
    return record.export_line(SimpleNamespace(seq=entry["seq"], kind=entry["kind"], prev_hash=entry["prev"],
                                              hash=entry["hash"], body=record.canonical(entry["body"])))


def receipt_hash(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()[:32]


class Log:
    """One group's log, built as the bot appends it."""

    def __init__(self) -> None:
        self.entries: list[dict] = []
        self.clock = START
        self.proposals: dict[int, dict] = {}
        self.ballots: dict[int, dict[int, str]] = {}

    def add(self, kind: str, body: dict) -> dict:
        self.clock += timedelta(minutes=7)
        body = {**body, "at": record.stamp(self.clock)}
        prev = self.entries[-1]["hash"] if self.entries else record.GENESIS
        entry = {"seq": len(self.entries) + 1, "kind": kind, "prev": prev,
                 "hash": record.entry_hash(prev, record.canonical(body)), "body": body}
        self.entries.append(entry)
        return entry

    def lines(self) -> list[str]:
        return [line_of(entry) for entry in self.entries]

    def seq_of(self, kind: str, nth: int = 0, **fields) -> int:
        found = [e["seq"] for e in self.entries
                 if e["kind"] == kind and all(e["body"].get(k) == v for k, v in fields.items())]
        return found[nth]

    def open(self, number: int, *, rule: str = "majority", quorum: str = "0", options: list[str] | None = None,
             method: str = "plain", secret: bool = False, kind: str = "decision", seats: int = 1,
             author_id: int = 1) -> dict:
        parameters = {"rule": rule, "quorum": quorum, "options": options, "method": method, "secret": secret,
                      "seats": seats}
        self.proposals[number], self.ballots[number] = parameters, {}
        return self.add("proposal.opened", {
            "proposal": number, "title": f"Proposal {number}", "details": None, "author": NAMES[author_id],
            "author_id": author_id, **parameters, "kind": kind,
            "closes_at": record.stamp(self.clock + timedelta(days=3)), "review": None, "review_of": None})

    def vote(self, number: int, member_id: int, choice: str, reason: str | None = None) -> dict:
        self.ballots[number][member_id] = choice
        return self.add("ballot.cast", {"proposal": number, "member_id": member_id, "member": NAMES[member_id],
                                        "choice": choice, "reason": reason})

    def retract(self, number: int, member_id: int) -> dict:
        del self.ballots[number][member_id]
        return self.add("ballot.retracted", {"proposal": number, "member_id": member_id, "member": NAMES[member_id]})

    def close(self, number: int, members: int, expect: str, winners: list[str] | None = None,
              box: list[str] | None = None, seed: str = "5eed0f1a2b3c4d5e", forge: dict | None = None) -> dict:
        """Count as the bot does; `expect` and `winners` are the result worked out by hand.
        A secret vote's `box` holds its choices (voters 1, 2, … in order); `forge` changes the body."""
        p = self.proposals[number]
        sealed = None
        if p["secret"]:
            sealed = sorted([receipt_hash(f"RECEIPT{number}X{i}"), choice] for i, choice in enumerate(box or []))
            choices = [choice for _, choice in sealed]
        else:
            choices = list(self.ballots[number].values())
        quorum = Quorum.parse(p["quorum"])
        if p["method"] == "ranked":
            rankings = [[] if c == "abstain" else [p["options"][int(n) - 1] for n in c.split(">")] for c in choices]
            counts = voting.count_ballots([r[0] if r else "abstain" for r in rankings], p["options"])
            outcome, count = voting.decide_ranked(quorum, members, rankings, p["options"], p["seats"], seed=seed)
        else:
            counts = voting.count_ballots(choices, p["options"])
            outcome, count = voting.decide(p["rule"], quorum, members, counts, p["options"], p["seats"]), None
        assert (outcome.result, list(outcome.winners)) == (expect, winners or []), outcome
        body = {"proposal": number, "status": "closed", "outcome": outcome.result, "counts": counts,
                "winners": list(outcome.winners), "explanation": outcome.explanation,
                "voters": sum(counts.values()), "members": members, **p, "count": count,
                "ballots": sealed, "voter_names": [NAMES[i + 1] for i in range(len(box))] if p["secret"] else None}
        return self.add("proposal.closed", {**body, **(forge or {})})

    def withdraw(self, number: int) -> dict:
        p = self.proposals[number]
        counts = voting.count_ballots(list(self.ballots[number].values()), p["options"])
        return self.add("proposal.closed", {
            "proposal": number, "status": "withdrawn", "outcome": "withdrawn", "counts": counts, "winners": [],
            "explanation": "withdrawn by its author", "voters": sum(counts.values()), "members": 0, **p,
            "count": None, "ballots": None, "voter_names": None})

    def lottery(self, number: int, candidates: list[int], seats: int, contributions: list[tuple[str, str]],
                purpose: str = "role", role: str | None = "facilitator", committed: bool = True,
                forged: dict | None = None) -> tuple[dict | None, dict]:
        secret = hashlib.sha256(f"the secret of lottery {number}".encode()).hexdigest()
        published = {"lottery": number, "purpose": purpose, "role": role,
                     "candidates": [[i, NAMES[i]] for i in candidates], "seats": seats,
                     "commitment": lottery.commitment(secret)}
        opened = None
        if committed:
            opened = self.add("lottery.committed", {**published,
                                                    "draws_at": record.stamp(self.clock + timedelta(hours=24))})
        seed = lottery.seed(secret, [text for _, text in contributions])
        picks = [i for i, _ in lottery.draw(seed, published["candidates"], seats)]
        drawn = self.add("lottery.drawn", {**published, "secret": secret,
                                           "contributions": [list(c) for c in contributions], "seed": seed,
                                           "picks": picks, "skipped_window": False, **(forged or {})})
        return opened, drawn


def realistic() -> Log:
    """A few weeks of a group: votes changed and taken back, a poll, a secret vote, a ranked poll,
    a lottery, a withdrawn proposal, and a vote still open at the end."""
    log = Log()
    log.add("mandate.started", {"role": "treasurer", "member_id": 2, "member": "Bea"})
    log.open(1, rule="majority", quorum="40%")
    for member_id, choice in [(1, "yes"), (2, "no"), (3, "yes"), (4, "yes"), (5, "abstain")]:
        log.vote(1, member_id, choice, reason="we need it" if member_id == 1 else None)
    log.vote(1, 2, "yes")  # Bea changes her mind
    log.retract(1, 5)  # Eli takes back the abstention
    log.vote(1, 6, "no")
    log.open(2, rule="majority", options=["Mon", "Tue", "Wed"])
    for member_id, choice in [(1, "Tue"), (2, "Mon"), (3, "Tue"), (4, "abstain")]:
        log.vote(2, member_id, choice)
    log.close(1, members=10, expect="passed")
    log.add("setting.changed", {"key": "quorum", "value": "5", "member": "Ada"})
    log.close(2, members=10, expect="chosen", winners=["Tue"])
    log.open(3, rule="consent", secret=True)
    log.open(4, rule="majority", options=["Chess", "Go", "Bridge"], method="ranked")
    for member_id, choice in [(1, "1>2"), (2, "1"), (3, "2>1"), (4, "3>2"), (5, "1>3>2"), (6, "abstain")]:
        log.vote(4, member_id, choice)
    log.close(3, members=10, expect="passed", box=["yes", "yes", "abstain", "no"])
    log.lottery(1, candidates=[1, 3, 4, 7, 9], seats=1, contributions=[("Ada", "pineapple"), ("Cy", "42")])
    log.close(4, members=10, expect="chosen", winners=["Chess"])
    log.open(5)
    log.vote(5, 3, "block")
    log.withdraw(5)
    log.add("mandate.started", {"role": "facilitator", "member_id": 7, "member": "Gus"})
    log.open(6, rule="consensus")
    log.vote(6, 1, "yes")
    log.vote(6, 2, "yes")
    return log


def check(log_or_lines, head: str | None = None):
    lines = log_or_lines.lines() if isinstance(log_or_lines, Log) else log_or_lines
    return verify(iter(lines), head)


def problem(log_or_lines, head: str | None = None) -> str:
    report = check(log_or_lines, head)
    assert not report.ok, report
    return report.problem


# --- a valid chain --------------------------------------------------------------------------------

def test_a_valid_chain_passes_with_every_outcome_and_lottery_counted():
    log = realistic()
    report = check(log)
    assert report.ok, report.problem
    assert report.entries == len(log.entries) == log.entries[-1]["seq"]
    assert report.head == (len(log.entries), log.entries[-1]["hash"])
    assert (report.recounted, report.lotteries) == (4, 1)  # #5 was withdrawn, #6 is still open
    assert report.summary() == (f"OK: {len(log.entries)} entries, head {report.head.short()}; "
                                "4 outcomes recounted, 1 lottery re-derived")


def test_the_file_is_read_as_bytes_with_blank_lines_and_a_bom():
    lines = [(line + "\n").encode() for line in realistic().lines()]
    lines[0] = b"\xef\xbb\xbf" + lines[0]
    lines.insert(3, b"\n")
    assert verify(iter(lines)).ok


def test_the_file_is_streamed_and_reading_stops_at_the_first_problem():
    log = realistic()
    log.entries[4]["body"]["choice"] = "no"
    read = []

    def lines():
        for line in log.lines():
            read.append(line)
            yield line

    assert verify(lines()).problem.startswith("entry 5 (ballot.cast)")
    assert len(read) == 5


def test_an_empty_log_holds_nothing_and_passes():
    report = verify([])
    assert report.ok and report.entries == 0 and report.head.short() == "0:000000000000"


def test_the_cli_verifies_without_any_configuration(tmp_path):
    log = realistic()
    path = tmp_path / "log.jsonl"
    path.write_text("".join(line + "\n" for line in log.lines()), encoding="utf-8")
    head = record.Head(len(log.entries), log.entries[-1]["hash"]).short()
    env = {key: value for key, value in os.environ.items() if not key.startswith("COMMONS_")}
    kept = f"10:{log.entries[9]['hash'][:8]}"
    done = subprocess.run([sys.executable, "-m", "bot.cli", "verify", str(path), "--head", kept],
                          cwd=tmp_path, env={**env, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout == (f"OK: {len(log.entries)} entries, head {head}; 4 outcomes recounted, "
                           f"1 lottery re-derived; checkpoint {kept} matches\n")


def test_the_cli_exit_codes(tmp_path, capsys):
    log = realistic()
    good, bad = tmp_path / "good.jsonl", tmp_path / "bad.jsonl"
    good.write_text("\n".join(log.lines()) + "\n")
    log.entries[4]["body"]["choice"] = "no"
    bad.write_text("\n".join(log.lines()) + "\n")
    assert cli.main(["verify", str(good)]) == 0
    assert capsys.readouterr().out.startswith(f"OK: {len(log.entries)} entries")
    assert cli.main(["verify", str(bad)]) == 1
    assert capsys.readouterr().out == "FAILED: entry 5 (ballot.cast): its hash does not match its content\n"
    assert cli.main(["verify", str(tmp_path / "nowhere.jsonl")]) == 2
    assert "Cannot read" in capsys.readouterr().err
    assert cli.main(["verify", str(tmp_path)]) == 2  # a directory
    with pytest.raises(SystemExit) as exit_:
        cli.main(["verify", str(good), "--head", "12:abc"])  # fewer than 8 hex digits
    assert exit_.value.code == 2
    assert "not a checkpoint" in capsys.readouterr().err


# --- tampering ------------------------------------------------------------------------------------

def test_a_changed_field_names_its_entry():
    log = realistic()
    seq = log.seq_of("ballot.cast", member_id=3, proposal=1)
    log.entries[seq - 1]["body"]["choice"] = "no"
    assert problem(log) == f"entry {seq} (ballot.cast): its hash does not match its content"


def test_a_changed_entry_with_its_own_hash_redone_breaks_the_next_link():
    log = realistic()
    seq = log.seq_of("proposal.opened", proposal=2)
    log.entries[seq - 1]["body"]["title"] = "Something else"
    chain(log.entries[:seq], seq - 1)
    kind = log.entries[seq]["kind"]
    assert problem(log) == (f"entry {seq + 1} ({kind}): its prev is not the hash of entry {seq} "
                            f"(an entry up to {seq} was rewritten)")


def test_a_rewritten_chain_is_caught_by_the_recount():
    log = realistic()
    seq = log.seq_of("ballot.cast", member_id=4, proposal=1)
    log.entries[seq - 1]["body"]["choice"] = "no"  # still passed, 3 to 2: the counts give it away
    chain(log.entries, seq - 1)
    closed = log.seq_of("proposal.closed", proposal=1)
    assert problem(log) == (f"entry {closed} (proposal.closed): the recount counts yes 3, no 2, abstain 0, block 0, "
                            "the log says yes 4, no 1, abstain 0, block 0")


def test_a_rewritten_chain_is_caught_by_a_checkpoint_kept_before():
    log = realistic()
    kept = record.Head(20, log.entries[19]["hash"]).short()
    log.entries[2]["body"]["reason"] = "a reason nobody gave"  # no outcome depends on it
    chain(log.entries, 2)
    assert check(log).ok
    assert problem(log, kept) == (f"entry 20 ({log.entries[19]['kind']}): its hash {log.entries[19]['hash'][:12]} "
                                  f"does not match the checkpoint {kept} "
                                  "(the log was rewritten after that checkpoint was taken)")


def test_a_deleted_entry_is_named():
    lines = realistic().lines()
    del lines[8]
    assert problem(lines) == "entry 9: missing (entry 8 is followed by entry 10)"
    del lines[8:11]
    assert problem(lines) == "entries 9 to 12: missing (entry 8 is followed by entry 13)"
    assert problem(lines[1:]) == "entry 1: missing (the file starts with entry 2)"


def test_two_swapped_entries_are_named():
    lines = realistic().lines()
    lines[11], lines[12] = lines[12], lines[11]
    assert problem(lines) == "entry 12: out of order (entry 13 came before it)"
    lines = realistic().lines()
    lines[11], lines[14] = lines[14], lines[11]
    assert problem(lines) == "entry 12: out of order (entry 15 came before it)"


def test_two_swapped_and_renumbered_entries_are_named():
    log = realistic()
    first, second = log.entries[11], log.entries[12]
    first["seq"], second["seq"] = 13, 12
    lines = log.lines()
    lines[11], lines[12] = lines[12], lines[11]
    assert problem(lines) == (f"entry 12 ({second['kind']}): out of order "
                              "(the entry that follows entry 11 comes later in the file)")


def test_a_repeated_entry_and_a_bad_line_are_named():
    lines = realistic().lines()
    assert problem([*lines[:5], lines[4], *lines[5:]]) == "entry 5: appears twice (again on line 6)"
    assert problem([*lines[:2], '{"seq":3,', *lines[3:]]) == "line 3: not valid JSON"
    assert problem([*lines[:2], '{"seq":3}', *lines[3:]]) == "entry 3: not a log entry (it has no kind)"
    assert problem([*lines[:2], "[1, 2]"]) == (
        "line 3: not a log entry (a JSON object with seq, kind, prev, hash and body)")
    assert verify([*map(str.encode, lines[:2]), b"\xff\xfe"]).problem == "line 3: not valid UTF-8"


def test_a_chain_that_does_not_start_at_genesis():
    log = realistic()
    log.entries[0]["prev"] = "1" * 64
    log.entries[0]["hash"] = record.entry_hash("1" * 64, record.canonical(log.entries[0]["body"]))
    assert problem(log).startswith("entry 1 (mandate.started): its prev is not the start of a chain")


# --- checkpoints ----------------------------------------------------------------------------------

def test_checkpoints():
    log = realistic()
    last = len(log.entries)
    matching = f"25:{log.entries[24]['hash'][:12]}"
    report = check(log, matching)
    assert report.ok and report.summary().endswith(f"; checkpoint {matching} matches")
    assert check(log, f"#{last}: {log.entries[-1]['hash'].upper()}").ok  # full hash, any case
    wrong = f"25:{'0' if log.entries[24]['hash'][0] != '0' else '1'}{log.entries[24]['hash'][1:12]}"
    assert problem(log, wrong).startswith(f"entry 25 ({log.entries[24]['kind']}): its hash ")
    assert problem(log, f"{last + 1}:3f9a0c1b") == (f"entry {last + 1}: missing at the end (the file stops at "
                                                    f"entry {last}; the checkpoint {last + 1}:3f9a0c1b is further on)")
    assert problem(log, f"{last + 5}:3f9a0c1b").startswith(f"entries {last + 1} to {last + 5}: missing at the end")
    for malformed in ("12", "12:3f9a0c1", "0:3f9a0c1b", "x:3f9a0c1b2d", "12:3f9a0c1g"):
        with pytest.raises(ValueError):
            parse_checkpoint(malformed)
    with pytest.raises(ValueError, match="not a checkpoint"):
        check(log, "12:3f9a")


def test_a_log_cut_short_is_caught_only_with_a_checkpoint():
    log = realistic()
    kept = record.Head(len(log.entries), log.entries[-1]["hash"]).short()
    cut = log.lines()[:-3]
    assert check(cut).ok
    assert problem(cut, kept).startswith(f"entries {len(log.entries) - 2} to {len(log.entries)}: missing at the end")


# --- recounts -------------------------------------------------------------------------------------

PLAIN = [
    # rule, quorum, members, options, seats, choices, outcome, winners
    ("majority", "0", 5, None, 1, ["yes", "yes", "no"], "passed", []),
    ("majority", "0", 5, None, 1, ["yes", "no", "abstain"], "rejected", []),  # a tie does not pass
    ("majority", "0", 5, None, 1, ["yes", "block"], "rejected", []),  # a block counts as a no
    ("two-thirds", "0", 5, None, 1, ["yes", "yes", "no"], "passed", []),
    ("two-thirds", "0", 9, None, 1, ["yes", "yes", "no", "no", "yes"], "rejected", []),
    ("consent", "0", 5, None, 1, ["yes", "yes", "no", "block"], "blocked", []),
    ("consent", "0", 5, None, 1, ["no", "abstain"], "passed", []),
    ("consensus", "0", 5, None, 1, ["yes", "yes", "yes", "no"], "rejected", []),
    ("consensus", "0", 5, None, 1, ["yes", "abstain"], "passed", []),
    ("majority", "40%", 10, None, 1, ["yes", "yes", "yes"], "no quorum", []),  # 4 needed
    ("majority", "5", 10, None, 1, ["yes", "yes", "yes", "yes", "no"], "passed", []),
    ("majority", "5", 10, None, 1, ["yes", "yes", "yes", "yes"], "no quorum", []),
    ("majority", "0", 5, ["Mon", "Tue", "Wed"], 1, ["Mon", "Tue", "Mon", "abstain"], "chosen", ["Mon"]),
    ("majority", "0", 5, ["Mon", "Tue", "Wed"], 1, ["Mon", "Tue", "Wed", "Tue", "Wed"], "tie", ["Tue", "Wed"]),
    ("majority", "0", 5, ["Mon", "Tue", "Wed"], 1, ["abstain"], "rejected", []),
    ("majority", "0", 9, ["Ada", "Bea", "Cy"], 2, ["Ada", "Bea", "Ada", "Cy", "Bea"], "chosen", ["Ada", "Bea"]),
]


@pytest.mark.parametrize("rule, quorum, members, options, seats, choices, outcome, winners", PLAIN)
@pytest.mark.parametrize("secret", [False, True], ids=["open", "secret"])
def test_plain_outcomes_are_recounted(rule, quorum, members, options, seats, choices, outcome, winners, secret):
    log = Log()
    log.open(7, rule=rule, quorum=quorum, options=options, seats=seats, secret=secret,
             kind="election" if seats > 1 else "decision")
    if not secret:
        for member_id, choice in enumerate(choices, 1):
            log.vote(7, member_id, choice)
    log.close(7, members=members, expect=outcome, winners=winners, box=choices if secret else None)
    report = check(log)
    assert report.ok, report.problem
    assert report.recounted == 1
    closed = log.entries[-1]["body"]
    forged = {"passed": "rejected", "rejected": "passed", "blocked": "passed", "no quorum": "passed",
              "chosen": "tie", "tie": "chosen"}[outcome]
    closed["outcome"] = forged
    chain(log.entries, len(log.entries) - 1)
    assert problem(log) == (f"entry {len(log.entries)} (proposal.closed): the recount gives {outcome}, "
                            f"the log says {forged}")


def test_later_ballots_replace_earlier_ones_and_retracted_ones_do_not_count():
    log = Log()
    log.open(1, rule="majority")
    log.vote(1, 1, "no")
    log.vote(1, 2, "no")
    log.vote(1, 3, "yes")
    log.vote(1, 1, "yes")  # Ada changes her mind
    log.retract(1, 2)  # Bea takes hers back
    log.vote(1, 4, "no")
    log.retract(1, 4)
    log.vote(1, 4, "abstain")  # and Dee votes again
    log.close(1, members=5, expect="passed")
    assert log.entries[-1]["body"]["counts"] == {"yes": 2, "no": 0, "abstain": 1, "block": 0}
    assert check(log).ok


def test_forged_counts_winners_and_voters_are_caught():
    def forged(**changes) -> str:
        log = Log()
        log.open(1, options=["Mon", "Tue"])
        for member_id, choice in enumerate(["Mon", "Tue", "Mon"], 1):
            log.vote(1, member_id, choice)
        log.close(1, members=5, expect="chosen", winners=["Mon"], forge=changes)
        return problem(log)

    assert forged(winners=["Tue"]) == "entry 5 (proposal.closed): the recount's winners are Mon, the log says Tue"
    assert forged(counts={"Mon": 2, "Tue": 0, "abstain": 0}) == (
        "entry 5 (proposal.closed): the recount counts Mon 2, Tue 1, abstain 0, the log says Mon 2, Tue 0, abstain 0")
    assert forged(voters=4) == "entry 5 (proposal.closed): it says 4 voted, the recount finds 3 ballots"
    assert forged(quorum="5") == ("entry 5 (proposal.closed): its quorum (5) differs from the quorum #1 opened with "
                                  "at entry 1 (0)")


def test_a_secret_box_that_does_not_match_its_voters_is_caught():
    log = Log()
    log.open(1, rule="majority", secret=True)
    log.close(1, members=5, expect="passed", box=["yes", "yes", "no"],
              forge={"voter_names": ["Ada", "Bea", "Cy", "Dee"]})
    assert problem(log) == ("entry 2 (proposal.closed): its ballot box holds 3 ballots for 4 named voters "
                            "and 3 counted")
    log = Log()
    log.open(1, rule="majority", secret=True)
    closed = log.close(1, members=5, expect="rejected", box=["yes", "no", "no"])
    closed["body"]["ballots"][0][1] = "yes"  # a ballot changed in the published box
    chain(log.entries, 1)
    assert problem(log) == "entry 2 (proposal.closed): the recount gives passed, the log says rejected"


def test_a_named_ballot_on_a_secret_vote_and_a_ballot_after_the_close_are_caught():
    log = Log()
    log.open(1, secret=True)
    log.vote(1, 1, "yes")
    assert problem(log) == "entry 2 (ballot.cast): a named ballot by Ada on #1, a secret vote"
    log = Log()
    log.open(1)
    log.vote(1, 1, "yes")
    log.close(1, members=3, expect="passed")
    log.vote(1, 2, "no")
    assert problem(log) == "entry 4 (ballot.cast): a ballot by Bea on #1 after it closed at entry 3"


def test_a_number_opened_twice_and_a_ballot_taken_back_twice_are_caught():
    log = Log()
    log.open(1)
    log.open(1)
    assert problem(log) == "entry 2 (proposal.opened): proposal #1 was already opened at entry 1"
    log = Log()
    log.open(1)
    log.vote(1, 2, "yes")
    log.retract(1, 2)
    log.ballots[1][2] = "yes"
    log.retract(1, 2)
    assert problem(log) == "entry 4 (ballot.retracted): Bea takes back a ballot on #1 they had not cast"


def test_a_proposal_opened_before_the_log_began_is_chain_checked_only():
    log = Log()
    log.open(3)
    log.vote(3, 1, "yes")
    log.close(3, members=3, expect="passed")
    del log.entries[0]
    for seq, entry in enumerate(log.entries, 1):
        entry["seq"] = seq
    chain(log.entries)
    report = check(log)
    assert report.ok and report.recounted == 0


def test_ranked_instant_runoff_is_recounted():
    log = Log()
    log.open(1, options=["Chess", "Go", "Bridge"], method="ranked")
    # First preferences Chess 3, Go 2, Bridge 1: Bridge is excluded and goes to Go (3 and 3); Go had
    # fewer at the round before, so Go is excluded and its ballots go to Chess.
    for member_id, choice in enumerate(["1>2", "1>2", "1", "2>1", "2>1", "3>2", "abstain"], 1):
        log.vote(1, member_id, choice)
    closed = log.close(1, members=9, expect="chosen", winners=["Chess"])
    assert closed["body"]["counts"] == {"Chess": 3, "Go": 2, "Bridge": 1, "abstain": 1}
    assert [stage["action"] for stage in closed["body"]["count"]["stages"]] == ["first", "exclude", "exclude"]
    report = check(log)
    assert report.ok and report.recounted == 1, report.problem
    closed["body"]["count"]["stages"][1]["totals"]["Go"] = "4"
    chain(log.entries, len(log.entries) - 1)
    assert problem(log) == (f"entry {closed['seq']} (proposal.closed): "
                            "the recount's rounds differ from the log's (round 2)")


def test_a_ranked_tie_is_drawn_by_the_published_seed():
    log = Log()
    log.open(1, options=["Chess", "Go"], method="ranked")
    log.vote(1, 1, "1")
    log.vote(1, 2, "2")
    winner = voting.decide_ranked(Quorum.parse("0"), 3, [["Chess"], ["Go"]], ["Chess", "Go"], 1, seed="abc")[0]
    closed = log.close(1, members=3, expect="chosen", winners=list(winner.winners), seed="abc")
    assert check(log).ok
    loser = "Go" if winner.winners == ("Chess",) else "Chess"
    for seed in map(str, range(50)):  # another seed that would have picked the other one
        if voting.decide_ranked(Quorum.parse("0"), 3, [["Chess"], ["Go"]], ["Chess", "Go"], 1,
                                seed=seed)[0].winners == (loser,):
            break
    closed["body"]["count"]["seed"] = seed
    chain(log.entries, len(log.entries) - 1)
    assert problem(log).startswith(f"entry 4 (proposal.closed): the recount's winners are {loser}")


def test_a_ranked_count_must_break_ties_with_the_seed_its_tie_lottery_drew():
    log = Log()
    log.open(1, options=["Chess", "Go"], method="ranked")
    log.vote(1, 1, "1")
    log.vote(1, 2, "2")
    _, drawn = log.lottery(1, [1, 2], 1, [("the bot", "lottery #1 opened")], purpose="tie", role=None,
                           committed=False, forged={"proposal": 1, "audit": None})
    seed = drawn["body"]["seed"]
    winner = voting.decide_ranked(Quorum.parse("0"), 3, [["Chess"], ["Go"]], ["Chess", "Go"], 1, seed=seed)[0]
    log.close(1, members=3, expect="chosen", winners=list(winner.winners), seed=seed)
    assert check(log).ok
    forged = Log()
    forged.open(1, options=["Chess", "Go"], method="ranked")
    forged.vote(1, 1, "1")
    forged.vote(1, 2, "2")
    forged.lottery(1, [1, 2], 1, [("the bot", "lottery #1 opened")], purpose="tie", role=None,
                   committed=False, forged={"proposal": 1, "audit": None})
    other = voting.decide_ranked(Quorum.parse("0"), 3, [["Chess"], ["Go"]], ["Chess", "Go"], 1, seed="chosen")[0]
    closed = forged.close(1, members=3, expect="chosen", winners=list(other.winners), seed="chosen")
    assert problem(forged).startswith(f"entry {closed['seq']} (proposal.closed): its count breaks ties with the "
                                      "seed chosen")


def test_ranked_stv_is_recounted():
    log = Log()
    log.open(1, options=["Ada", "Bea", "Cy", "Dee"], method="ranked", seats=2, kind="election")
    # 9 ballots, quota 4: Ada reaches it at once; with no surplus, Dee (0) then Bea (2) are excluded,
    # Bea's ballots have no continuing preference left, and Cy is elected for the last seat.
    rankings = ["1>2"] * 4 + ["3>4"] * 3 + ["2>1"] * 2
    for member_id, choice in enumerate(rankings, 1):
        log.vote(1, member_id, choice)
    closed = log.close(1, members=10, expect="chosen", winners=["Ada", "Cy"])
    assert closed["body"]["count"]["quota"] == "4"
    assert check(log).ok
    closed["body"]["outcome"], closed["body"]["winners"] = "chosen", ["Ada", "Bea"]
    chain(log.entries, len(log.entries) - 1)
    assert problem(log) == (f"entry {closed['seq']} (proposal.closed): the recount's winners are Ada, Cy, "
                            "the log says Ada, Bea")


def test_a_secret_ranked_poll_is_recounted_from_its_box():
    log = Log()
    log.open(1, options=["Chess", "Go", "Bridge"], method="ranked", secret=True)
    log.close(1, members=5, expect="chosen", winners=["Go"], box=["2>1", "2", "1>2", "abstain"])
    assert check(log).recounted == 1
    log = Log()
    log.open(1, options=["Chess", "Go"], method="ranked", secret=True)
    closed = log.close(1, members=5, expect="chosen", winners=["Go"], box=["2>1"])
    closed["body"]["ballots"][0][1] = "2>3"
    chain(log.entries, 1)
    assert problem(log) == "entry 2 (proposal.closed): a ballot in its box, “2>3”, is not one of its choices"


@pytest.mark.parametrize("options, method, choice", [
    (None, "plain", "maybe"), (None, "plain", "Yes"), (["Mon", "Tue"], "plain", "yes"),
    (["Mon", "Tue"], "ranked", "Mon"), (["Mon", "Tue"], "ranked", "1>1"), (["Mon", "Tue"], "ranked", "0>1"),
])
def test_a_ballot_the_bot_could_not_have_taken_is_caught(options, method, choice):
    log = Log()
    log.open(1, options=options, method=method)
    log.vote(1, 3, choice)
    assert problem(log) == f"entry 2 (ballot.cast): Cy's ballot on #1, “{choice}”, is not one of its choices"


# --- lotteries ------------------------------------------------------------------------------------

def lottery_log(**forged) -> Log:
    log = Log()
    log.add("mandate.ended", {"role": "auditor", "member_id": 2, "member": "Bea"})
    log.lottery(4, candidates=[1, 2, 3, 5, 8, 9, 10], seats=2, purpose="auditor", role=None,
                contributions=[("Ada", "blue"), ("Jo", "🐢 slow and steady")], forged=forged)
    return log


def test_a_lottery_is_re_derived():
    report = check(lottery_log())
    assert report.ok and report.lotteries == 1
    log = Log()
    log.lottery(1, candidates=[1, 2, 3], seats=1, contributions=[], committed=False)  # opened before the log
    assert check(log).lotteries == 1


def test_a_secret_that_does_not_match_its_commitment_is_caught():
    assert problem(lottery_log(secret="00" * 32)) == "entry 3 (lottery.drawn): the secret does not match its commitment"
    # A new secret with its commitment redone in the draw: the commitment published first gives it away.
    secret = "11" * 32
    seed = lottery.seed(secret, ["blue", "🐢 slow and steady"])
    candidates = [[i, NAMES[i]] for i in [1, 2, 3, 5, 8, 9, 10]]
    log = lottery_log(secret=secret, commitment=lottery.commitment(secret), seed=seed,
                      picks=[i for i, _ in lottery.draw(seed, candidates, 2)])
    assert problem(log) == ("entry 3 (lottery.drawn): it changes the commitment published when lottery #4 opened "
                            "(entry 2)")


def test_changed_picks_seed_or_candidates_are_caught():
    picks = lottery_log().entries[-1]["body"]["picks"]
    other = next(i for i in [1, 2, 3, 5, 8, 9, 10] if i not in picks)
    wrong_picks = "entry 3 (lottery.drawn): the picks do not follow from the seed"
    assert problem(lottery_log(picks=[picks[0], other])) == wrong_picks
    assert problem(lottery_log(picks=picks[::-1])) == wrong_picks
    assert problem(lottery_log(contributions=[["Ada", "blue"]])) == (
        "entry 3 (lottery.drawn): the seed does not follow from the secret and the contributions")
    assert problem(lottery_log(candidates=[[1, "Ada"], [2, "Bea"]])) == (
        "entry 3 (lottery.drawn): it changes the candidates published when lottery #4 opened (entry 2)")


def test_a_lottery_drawn_twice_is_caught():
    log = lottery_log()
    log.lottery(4, candidates=[1, 2, 3, 5, 8, 9, 10], seats=2, purpose="auditor", role=None,
                contributions=[("Ada", "red")], committed=False)
    assert problem(log) == "entry 4 (lottery.drawn): lottery #4 was already drawn at entry 3"


def picks_by_the_published_rule(secret: str, contributions: list[str], candidates: list, seats: int) -> list:
    """Written from bot/governance/lottery.py's docstring alone: seed = SHA-256 of the secret and each
    contribution, one per line; block i = SHA-256("seed:i") as a 256-bit number; a pick among n
    takes the next block below the largest multiple of n, modulo n; the pick leaves the list."""
    seed = hashlib.sha256("\n".join([secret, *contributions]).encode()).hexdigest()
    left, picks, block = list(candidates), [], 0
    while left and len(picks) < seats:
        n = len(left)
        largest_multiple = (2 ** 256 // n) * n
        while True:
            number = int(hashlib.sha256(f"{seed}:{block}".encode()).hexdigest(), 16)
            block += 1
            if number < largest_multiple:
                break
        picks.append(left.pop(number % n))
    return picks


@pytest.mark.parametrize("size", [1, 2, 3, 7, 12, 40])
def test_lottery_picks_follow_the_published_rule(size):
    candidates = [[i, f"member {i}"] for i in range(100, 100 + size)]
    for trial in range(25):
        secret = hashlib.sha256(f"trial {trial}".encode()).hexdigest()
        contributions = [f"text {trial}", "🎲"][: trial % 3]
        seed = lottery.seed(secret, contributions)
        for seats in (1, 3, size + 2):
            expected = picks_by_the_published_rule(secret, contributions, candidates, seats)
            assert lottery.draw(seed, candidates, seats) == expected
            assert len(expected) == min(seats, size)
