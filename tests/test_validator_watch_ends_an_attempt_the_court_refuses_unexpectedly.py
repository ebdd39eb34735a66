"""A revert of `appeal` the watch does not expect (a Panic, such as the court's attempt counter overflowing,
or any other custom error) ends that attempt, logged and journalled, and is not raised: raised, it would
recur on every upkeep and starve the keeper's. Transport errors still propagate. The chain is a small fake
(tests/watch_fakes.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from watch_fakes import FakeProto, watch_of

from protocol.contracts import Verdict
from protocol.errors import ChainError, ContractRevert
from protocol.roles.watch import Watch

A, R = Verdict.ACCEPT, Verdict.REJECT
FACTS = [{"verdict": int(A), "reasons": [], "margin": 0.0, "exact": False}]  # a clear ACCEPT


@pytest.mark.parametrize(
    ("revert", "sent"),
    [
        (ContractRevert("Panic", {"code": 0x11, "reason": "arithmetic overflow"}), False),
        (ContractRevert("Panic", {"code": 0x11, "reason": "arithmetic overflow"}, tx="0xabc"), True),
        (ContractRevert("SomethingNew", {"x": 1}), False),
        (ContractRevert("UnknownError"), False),
    ],
)
def test_an_unexpected_revert_ends_the_attempt(tmp_path: Path, revert: ContractRevert, sent: bool) -> None:
    proto = FakeProto([A], [R])
    proto.revert = revert
    watch, log = watch_of(proto, tmp_path / "j.jsonl", FACTS)
    assert watch.step() is sent
    assert proto.filed == [0]
    entry = watch.journal.entry(Watch.ACTION, "0:0:0")
    assert entry is not None
    assert entry.is_done
    assert entry.data["refused"] == revert.error
    assert f"the court refused it unexpectedly ({revert.error}" in log.getvalue()
    for _ in range(3):  # later upkeeps do not file it again, nor raise
        assert not watch.step()
    assert proto.filed == [0]


def test_a_transport_error_propagates_and_the_intent_stays_open(tmp_path: Path) -> None:
    proto = FakeProto([A], [R])

    def down(task_id: int, round_: int, index: int) -> None:
        raise ChainError("the node does not answer")

    proto.appeal = down  # type: ignore[method-assign]
    watch, _ = watch_of(proto, tmp_path / "j.jsonl", FACTS)
    with pytest.raises(ChainError):
        watch.step()
    entry = watch.journal.entry(Watch.ACTION, "0:0:0")
    assert entry is not None
    assert not entry.is_done
