"""`decisions export` (CSV) and `decisions export md` (Markdown): the whole decision log as a
file, with what members typed made inert (no formulas, no markup); on SQLite and PostgreSQL."""

import csv
import io
import json
import re
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from bot.actions import SendFile
from bot.events import ChatRef, CommandMessage, UserRef
from bot.render import exports
from storage.models import Decision, Proposal
from tests.harness import Room

ROOM = ChatRef(platform="console", chat_id="room")
HOSTILE = "| # <b> =cmd"
UTC = ZoneInfo("UTC")


@pytest.fixture
async def room(database_url):
    async with Room(database_url) as room:
        yield room


def export(room, arguments: str = "", event_id: str = "export") -> SendFile:
    [sent] = room.core.handle(CommandMessage(chat=ROOM, sender=UserRef(platform="console", user_id="dan"),
                                             sender_name="dan", text=f"!decisions export {arguments}".strip(),
                                             event_id=event_id))
    assert isinstance(sent, SendFile)
    return sent


def rows_of(sent: SendFile) -> list[dict]:
    return list(csv.DictReader(io.StringIO(sent.data.decode())))


async def test_the_log_as_csv_and_markdown(room):
    await room.say("!propose Rent the hall | for the assembly review=6mo closes=1d", as_="alice")
    await room.say("!vote 1 yes", as_="bob")
    await room.say("!vote 1 no", as_="carol")
    await room.say("!vote 1 yes", as_="dan")
    await room.say('!poll Meeting day options="Monday; Thursday evening" closes=1d', as_="alice")
    await room.say("!vote 2 2", as_="bob")
    await room.say("!propose Paint the door", as_="alice")
    await room.say("!withdraw 3", as_="alice")
    await room.wait("1d")

    sent = export(room)
    assert (sent.filename, sent.mime_type) == ("decision-log.csv", "text/csv")
    assert "3 decisions" in sent.caption.plain()
    rows = rows_of(sent)
    assert list(rows[0]) == list(exports.COLUMNS)
    assert [row["number"] for row in rows] == ["3", "1", "2"]  # oldest first: #3 was withdrawn at once
    withdrawn, hall, poll = rows
    assert hall == {"number": "1", "title": "Rent the hall", "outcome": "passed", "winners": "",
                    "counts": "2 yes · 1 no · 0 abstain · 0 block", "voters": "3", "members": "4",
                    "decided": "2026-03-03T09:00:00+00:00", "review": "2026-08-30T09:00:00+00:00", "lapsed": ""}
    assert (poll["outcome"], poll["winners"]) == ("chosen", "Thursday evening")
    assert poll["counts"] == "0 Monday · 1 Thursday evening · 0 abstain" and poll["review"] == ""
    assert withdrawn["outcome"] == "withdrawn" and withdrawn["counts"] == ""

    sent = export(room, "md", "export-md")
    assert (sent.filename, sent.mime_type) == ("decision-log.md", "text/markdown")
    text = sent.data.decode()
    assert text.startswith("# Decision log\n") or text.startswith("# Decision log: ")
    assert "| # | Title | Outcome | Counts | Voted | Decided | Review | Lapsed |" in text
    assert ("| 1 | Rent the hall | passed | 2 yes · 1 no · 0 abstain · 0 block | 3 of 4 | 2026-03-03 09:00 | "
            "2026-08-30 09:00 |  |") in text
    assert "| 2 | Meeting day | chose **Thursday evening** |" in text
    assert "| 3 | Paint the door | withdrawn |  |  |" in text
    assert export(room, "markdown", "export-md-2").filename == "decision-log.md"
    assert export(room, "csv", "export-csv").filename == "decision-log.csv"


async def test_a_lapsed_decision_and_a_review_in_the_export(room):
    await room.say("!propose Rent the hall review=1d closes=1h", as_="alice")
    await room.say("!vote 1 yes", as_="bob")
    await room.wait("1h")
    await room.wait("1d")  # brought back as #2, which nobody supports
    await room.wait("3d")
    hall, review = rows_of(export(room))
    assert hall["lapsed"] == "2026-03-06T10:00:00+00:00" and hall["review"] == ""
    assert review["title"] == "Keep #1 Rent the hall?" and review["outcome"] == "rejected"
    text = export(room, "md", "md").data.decode()
    assert "| 1 | Rent the hall | passed | 1 yes · 0 no · 0 abstain · 0 block | 1 of 2 | 2026-03-02 10:00 |  | " \
           "2026-03-06 10:00 |" in text


async def test_hostile_text_cannot_run_as_a_formula_nor_break_the_markdown(room):
    await room.say("!propose =HYPERLINK(\"http://evil.example\",\"x\") closes=1h", as_="alice")
    await room.say("!propose @SUM(A1) | details closes=1h", as_="alice")
    await room.say('!poll # <b>bold</b> *x* [a](http://evil.example) options="=1+1; -2" closes=1h',
                   as_="alice")
    await room.say("!vote 3 1", as_="bob")
    await room.wait("1h")
    rows = rows_of(export(room))
    assert rows[0]["title"] == "'=HYPERLINK(\"http://evil.example\",\"x\")"
    assert rows[1]["title"] == "'@SUM(A1)"
    assert rows[2]["title"] == "# <b>bold</b> *x* [a](http://evil.example)"  # CSV is data: kept as typed
    assert rows[2]["winners"] == "'=1+1"
    assert all(not cell.startswith(("=", "+", "-", "@")) for row in rows for cell in row.values())
    text = export(room, "md", "md").data.decode()
    assert "| 3 | \\# &lt;b&gt;bold&lt;/b&gt; \\*x\\* \\[a\\](http://evil.example) | chose **=1+1** |" in text
    assert "<b>" not in text and "[a]" not in text


def _row(title: str, outcome: str = "passed", counts: dict | None = None, winners: list[str] = ()) -> tuple:
    decided = datetime(2026, 3, 3, 9, tzinfo=timezone.utc)
    proposal = Proposal(number=7, title=title, group_id=1, author_id=1, rule="majority", quorum="0",
                        opened_at=decided, closes_at=decided)
    decision = Decision(group_id=1, proposal_id=1, outcome=outcome, voters=2, members=3, decided_at=decided,
                        counts=json.dumps({"counts": counts or {"yes": 2, "no": 0}, "winners": list(winners)}),
                        review_at=decided + timedelta(days=180))
    return decision, proposal


def test_a_title_cannot_break_the_table_or_run_in_a_spreadsheet():
    rows = [_row(HOSTILE + "\nsecond line\r\n# heading\u2028<script>alert(1)</script> `code` ~~s~~ \\"),
            _row("Pick", "chosen", {"| a": 1, "=b": 0, "abstain": 0}, ["| a"])]
    text = exports.markdown_file(rows, UTC, "Tenants | <i>Union</i>\n# x", datetime(2026, 4, 1, tzinfo=timezone.utc))
    lines = text.decode().split("\n")
    assert lines[0] == "# Decision log: Tenants \\| &lt;i&gt;Union&lt;/i&gt; # x"
    table = [line for line in lines if line.startswith("|")]
    assert len(table) == 4  # header, rule, two rows: no line break got through
    first = table[2]
    assert first.startswith("| 7 | \\| # &lt;b&gt; =cmd second line # heading &lt;script&gt;alert(1)&lt;/script&gt; "
                            "\\`code\\` \\~\\~s\\~\\~ \\\\ | passed |")
    assert all(re.sub(r"\\.", "", line).count("|") == 9 for line in table)  # nine cell borders, no more
    assert "| chose **\\| a** | 1 \\| a · 0 =b · 0 abstain |" in table[3]
    assert exports.md("# a heading") == "\\# a heading" and exports.md("#1 of 3") == "\\#1 of 3"
    assert exports.md("Keep #1 Rent the hall?") == "Keep #1 Rent the hall?"

    data = exports.csv_file(rows, UTC)
    parsed = list(csv.DictReader(io.StringIO(data.decode())))
    assert parsed[0]["title"].startswith(HOSTILE) and "\nsecond line" in parsed[0]["title"]  # quoted, intact
    assert parsed[1]["counts"] == "1 | a · 0 =b · 0 abstain"
    for hostile in ("=cmd", "+1", "-1", "@x", "\tx", "\rx"):
        assert exports.csv_cell(hostile) == "'" + hostile
    assert exports.csv_cell("| # <b> =cmd") == "| # <b> =cmd" and exports.csv_cell(5) == 5


async def test_an_empty_log_gives_files_with_only_their_headings(room):
    await room.say("!help", as_="alice")
    sent = export(room)
    assert sent.data.decode() == ",".join(exports.COLUMNS) + "\n"
    assert "No decisions yet" in sent.caption.plain()
    text = export(room, "md", "md").data.decode()
    assert "0 decisions" in text and "No decisions yet." in text and "| # |" not in text
    assert "not one of: csv, md" in await room.say("!decisions export pdf", as_="alice")


async def test_decisions_mentions_the_export(room):
    await room.say("!propose Rent the hall closes=1h", as_="alice")
    await room.wait("1h")
    assert "decisions export [md]" in await room.say("!decisions")
