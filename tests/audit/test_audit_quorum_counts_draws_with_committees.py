"""The auditor checks a task's quorum as TaskRules does: 1..maxValidators without committees, revealed draws
1..committeeDraws with them (so a quorum above the seats, e.g. the demo's 32 of 63 draws, is not a
discrepancy, and one above the draws is)."""

from __future__ import annotations

from typing import Any

import pytest

from protocol.audit import Kind
from protocol.audit.events import ChainEvent
from protocol.audit.ledger import Ledger


def _created(quorum: int, draws: int) -> ChainEvent:
    params: dict[str, Any] = {
        "numRounds": 1, "rewardPerRound": 100, "quorum": quorum, "maxValidators": 8,
        "committeeDraws": draws, "initialModelHash": bytes(32),
    }  # fmt: skip
    args = {"taskId": 1, "initiator": "0x" + "11" * 20, "params": params, "deposit": 100}
    return ChainEvent("task_escrow", "TaskCreated", block=10, log_index=0, tx_hash="0x01", args=args)


@pytest.mark.parametrize(
    ("quorum", "draws", "flagged"),
    [(2, 0, None), (8, 0, None), (9, 0, "1..8"), (32, 63, None), (63, 63, None), (64, 63, "1..63")],
)
def test_the_quorum_bound(quorum: int, draws: int, flagged: str | None) -> None:
    ledger = Ledger.replay([_created(quorum, draws)])
    found = [(d.kind, d.expected, d.actual) for d in ledger.discrepancies if d.subject == "quorum"]
    assert found == ([] if flagged is None else [(Kind.EVENT_ORDER, flagged, str(quorum))])
