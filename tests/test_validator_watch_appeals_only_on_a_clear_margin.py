"""The watch appeals a decision only on a verdict clear of every tolerance's edge (docs/protocol.md "Who
appeals"): a trainer can aim a submission at a tolerance's limit so that honest validators on different
hardware split, and an appeal before a court with another hardware mix would slash the honest other side.
A REJECT is clear when a check no tolerance excuses failed, or a tolerance metric reached 4x its limit; an
ACCEPT when every tolerance metric stayed within 1/4 of its limit. A verdict fact without the record (an
older journal) has no clear margin. The validator journals the record with its verdict; the watch reads it
(the chain is a small fake, tests/watch_fakes.py)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from watch_fakes import FakeProto, watch_of

from protocol.contracts import Verdict
from protocol.journal import Journal
from protocol.network import Submission
from protocol.roles.validator import ValidatorNode
from protocol.roles.watch import ACCEPT_MARGIN, CLEAR_MARGIN, Watch, clear_margin
from protocol.verification import Checked

A, R, U, N = Verdict.ACCEPT, Verdict.REJECT, Verdict.UNAVAILABLE, Verdict.NONE


@pytest.mark.parametrize(
    ("mine", "fact", "clear"),
    [
        (R, {"margin": None, "exact": True}, True),  # a hash, the update's bytes, a reward, NaN, ...
        (R, {"margin": 0.5, "exact": True}, True),
        (R, {"margin": CLEAR_MARGIN, "exact": False}, True),
        (R, {"margin": 1000.0, "exact": False}, True),  # a bait's defect
        (R, {"margin": CLEAR_MARGIN - 0.01, "exact": False}, False),
        (R, {"margin": 17 / 16, "exact": False}, False),  # one ulp over max_step_ulps
        (A, {"margin": 0.0, "exact": False}, True),  # bit-exact on every tolerance
        (A, {"margin": 0.095 / 0.3, "exact": False}, True),  # the quality gate's honest worst measured
        (A, {"margin": ACCEPT_MARGIN, "exact": False}, True),
        (A, {"margin": ACCEPT_MARGIN + 0.01, "exact": False}, False),
        (A, {"margin": 0.95, "exact": False}, False),  # accepted on a tolerance's edge
        (A, {"margin": None, "exact": False}, False),  # not checked (a lazy ACCEPT)
        (A, {"exact": False, "margin": True}, False),  # not a number
        (R, {}, False),  # an older journal
        (A, {}, False),
        (U, {"margin": 0.0, "exact": True}, False),
        (N, {"margin": 0.0, "exact": True}, False),
    ],
)
def test_clear_margin(mine: Verdict, fact: dict[str, object], clear: bool) -> None:
    assert clear_margin(mine, {"verdict": int(mine), "reasons": [], **fact}) is clear


def fact(verdict: Verdict, **record: object) -> dict[str, object]:
    return {"verdict": int(verdict), "reasons": [], **record}


def test_the_watch_files_only_the_clear_contradictions(tmp_path: Path) -> None:
    # Decisions ACCEPT, ACCEPT, REJECT, UNAVAILABLE; this validator REJECTed the first on an exact check and
    # the second one ulp over a tolerance, ACCEPTed the third bit-exactly and the fourth on an edge.
    proto = FakeProto([R, R, A, A], [A, A, R, U])
    facts = [
        fact(R, margin=0.0, exact=True),
        fact(R, margin=17 / 16, exact=False),
        fact(A, margin=0.0, exact=False),
        fact(A, margin=0.9, exact=False),
    ]
    watch, log = watch_of(proto, tmp_path / "j.jsonl", facts)
    while watch.step():
        pass
    assert proto.filed == [0, 2]
    said = log.getvalue()
    assert said.count("no clear margin") == 2
    assert "not appealing the ACCEPT decision on submission 1 of round 0" in said
    assert "not appealing the UNAVAILABLE decision on submission 3 of round 0" in said
    assert "trustrl appeal --task 1 --round 0 --index 3" in said  # what is left: an appeal by hand


def test_an_older_journal_without_the_record_appeals_nothing(tmp_path: Path) -> None:
    proto = FakeProto([A, R], [R, A])
    watch, log = watch_of(proto, tmp_path / "j.jsonl", [fact(A), fact(R)])
    assert not watch.step()
    assert proto.filed == []
    assert log.getvalue().count("no clear margin") == 2
    entry = watch.journal.entry(Watch.ROUND, "0")
    assert entry is not None
    assert entry.is_done  # nothing left to watch in the round


def test_the_validator_journals_the_record_with_its_verdict(tmp_path: Path) -> None:
    node = ValidatorNode.__new__(ValidatorNode)
    node.dir = tmp_path
    node.journal = Journal(tmp_path / "journal.jsonl")
    node.out = SimpleNamespace(log=lambda message: None)  # type: ignore[assignment]
    sub = Submission(0, 2, "0x" + "33" * 20, b"", "", b"", "", b"", b"", 1, 0)
    node._record(0, sub, Checked(R, ["step 3: re-execution ulps 17 > 16"], margin=17 / 16, exact=False))
    entry = node.journal.entry("verdict", "0:2")
    assert entry is not None
    assert (entry.data["margin"], entry.data["exact"]) == (17 / 16, False)
    assert not clear_margin(R, entry.data)
    node._record(1, sub, Checked(U, ["missing"]))
    entry = node.journal.entry("verdict", "1:2")
    assert entry is not None
    assert (entry.data["margin"], entry.data["exact"]) == (None, False)
