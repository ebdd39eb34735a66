"""A stopped validator's progress line (`ValidatorNode.pending`, what `trustrl validate` prints when it stops
before committing) counts the submissions it judges: every one without committees, only those it was drawn
for with them (the rule `judged` shares with the commit); drawn for none, it owes nothing and says so by
saying nothing. The chain is a small fake here: the draws and the ballot are what `ProtocolClient` would
read (tests/network/test_net_committees.py checks the real draws)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from protocol.contracts import Ballot, Phase, TaskStatus
from protocol.journal import Journal
from protocol.roles.validator import ValidatorNode, judged

ME = "0x" + "11" * 20


class FakeProto:
    def __init__(self, drawn: list[int] | None, submissions: int) -> None:
        self.drawn, self.submissions = drawn, submissions

    def ballot_of(self, task_id: int, round_: int) -> Ballot:
        return Ballot(
            commit_end=1_000, reveal_end=2_000, vote_commit_end=2_500, vote_end=3_000,
            submissions=self.submissions, expected=4, committed=0, revealed=0, vote_committed=0, voted=0,
            quorum=2, agreed=False, draws=0 if self.drawn is None else 3,
        )  # fmt: skip

    def phase_of(self, task_id: int, round_: int) -> Phase:
        return Phase.COMMIT

    def verdicts_of(self, task_id: int, round_: int) -> tuple[int, bool]:
        return 0, False  # nothing committed yet

    def drawn_multiplicities(self, task_id: int, round_: int, validator: str) -> list[int] | None:
        assert validator == ME
        return self.drawn

    def credit_of(self) -> int:
        return 0


def _node(tmp_path: Path, drawn: list[int] | None, submissions: int, checked: list[int]) -> ValidatorNode:
    node = ValidatorNode.__new__(ValidatorNode)
    node.task_id = 1
    node.session = SimpleNamespace(address=ME)  # type: ignore[assignment]
    node.journal = Journal(tmp_path / "journal.jsonl")
    node.journal.done("join", "2", from_round=0)
    for i in checked:
        node.journal.fact("verdict", f"3:{i}", verdict=1, reasons=[])
    state = SimpleNamespace(status=TaskStatus.ACTIVE, round=3, seed_drawn=True)
    node.view = SimpleNamespace(  # type: ignore[assignment]
        exists=lambda: True,
        state=lambda: state,
        config=SimpleNamespace(validator_slash_bps=500),
        now=lambda: 900,
        proto=FakeProto(drawn, submissions),
    )
    return node


def test_judged_is_every_submission_or_the_drawn_ones() -> None:
    assert judged(None, 4) == [0, 1, 2, 3]
    assert judged([0, 2, 0, 1, 0], 5) == [1, 3]
    assert judged([0, 0, 0], 3) == []


@pytest.mark.parametrize(
    ("drawn", "checked", "count"),
    [
        (None, [0, 4], "(2 of 5 submissions checked)"),
        ([0, 2, 0, 1, 0], [1], "(1 of the 2 submissions it was drawn for, of 5, checked)"),
        ([0, 2, 0, 1, 0], [1, 3], "(2 of the 2 submissions it was drawn for, of 5, checked)"),
    ],
)
def test_the_progress_line_counts_the_submissions_it_judges(
    tmp_path: Path, drawn: list[int] | None, checked: list[int], count: str
) -> None:
    [line] = _node(tmp_path, drawn, 5, checked).pending()
    assert line.startswith(f"round 3's verdicts are not committed {count}; restart before "), line
    assert "5% of this validator's allocation is slashed" in line


def test_a_validator_drawn_for_nothing_owes_nothing(tmp_path: Path) -> None:
    assert _node(tmp_path, [0, 0, 0, 0, 0], 5, []).pending() == []
