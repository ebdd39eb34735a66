"""The auditor's honeypot book: a commitment must come before its round opened (a later round than the
task's current one, or round 0 in a block older than the task's start, when the block times are known),
for a round the task has, once a round; anything else is flagged."""

from __future__ import annotations

from collections.abc import Callable

from protocol.audit import Kind
from protocol.audit.events import ChainEvent
from protocol.audit.ledger import Ledger
from protocol.audit.model import TaskRecord

START = 1_000
BLOCK_TIMES = {10: START - 5, 11: START, 12: START + 50}


def ledger(blocktime: Callable[[int], int] | None = BLOCK_TIMES.__getitem__, current: int = 0) -> Ledger:
    books = Ledger(blocktime=blocktime)
    task = TaskRecord(
        id=1, initiator="0x" + "11" * 20, params={"numRounds": 3, "startTime": START}, deposit=0, tx="0x0",
        block=1, current_round=current,
    )  # fmt: skip
    books.tasks[1] = task
    return books


def commit(round_: int, block: int, tx: str) -> ChainEvent:
    args = {"taskId": 1, "round": round_, "commitment": bytes([round_ + 1]) * 32}
    return ChainEvent("honeypot_registry", "HoneypotCommitted", block, 0, tx, args)


def flags(books: Ledger, *events: ChainEvent) -> list[tuple[Kind, int | None, str]]:
    for e in events:
        books.apply(e)
    books.finish()
    return [(d.kind, d.round, d.subject) for d in books.discrepancies]


def test_commitments_before_their_rounds_open_are_clean() -> None:
    books = ledger()
    assert flags(books, commit(0, 10, "0x01"), commit(1, 11, "0x02"), commit(2, 12, "0x03")) == []
    assert sorted(books.tasks[1].honeypots) == [0, 1, 2]
    assert books.verified["honeypots"] == 3


def test_a_commitment_after_its_round_opened_is_flagged() -> None:
    late = (Kind.HONEYPOT, 0, "honeypot commitment")
    assert flags(ledger(), commit(0, 11, "0x01")) == [late]  # in the block of the start: opened
    assert flags(ledger(current=1), commit(1, 12, "0x01")) == [(Kind.HONEYPOT, 1, "honeypot commitment")]
    assert flags(ledger(current=1), commit(0, 10, "0x01")) == [late]
    assert flags(ledger(), commit(3, 10, "0x01")) == [(Kind.HONEYPOT, 3, "honeypot commitment")]
    assert flags(ledger(), commit(1, 10, "0x01"), commit(1, 10, "0x02")) == [
        (Kind.HONEYPOT, 1, "second honeypot commitment of the round")
    ]


def test_round_zero_timing_is_checked_only_when_block_times_are_known() -> None:
    assert flags(ledger(blocktime=None), commit(0, 12, "0x01")) == []
