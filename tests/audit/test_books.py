"""The ledger's dispatcher: every event the protocol contracts (the AppealCourt included) can emit has
exactly one handler, in one book; an event a guard finds out of place is flagged once and applies nothing
more (no cascade)."""

from __future__ import annotations

from typing import Any

from protocol.audit import Kind
from protocol.audit.events import ChainEvent
from protocol.audit.ledger import BOOKS, HANDLERS, Ledger

CONTRACTS = (
    "StakeManager", "RewardDistributor", "AttestationRegistry", "TaskEscrow", "HoneypotRegistry",
    "AppealCourt",
)  # fmt: skip


def test_every_protocol_event_has_exactly_one_handler(compiled: dict[str, Any]) -> None:
    emitted = {
        entry["name"] for name in CONTRACTS for entry in compiled[name].abi if entry.get("type") == "event"
    }
    assert set(HANDLERS) == emitted
    assert sum(len(book.HANDLERS) for book in BOOKS) == len(HANDLERS), "an event is handled by two books"


def _event(name: str, tx: str = "0x01", **args: Any) -> ChainEvent:
    return ChainEvent("task_escrow", name, block=10, log_index=0, tx_hash=tx, args=args)


def test_an_event_of_an_unknown_task_is_flagged_once_and_not_applied() -> None:
    submission = _event(
        "WorkSubmitted", taskId=7, round=0, index=0, trainer="0x" + "11" * 20, workUnits=1,
        bundleHash=bytes(32), bundleCid="", updateHash=bytes(32), updateCid="", proofRoot=bytes(32),
        stateRoot=bytes(32),
    )  # fmt: skip
    ledger = Ledger.replay([submission, _event("SeedArmed", "0x02", taskId=7, round=0, seedBlock=12)])
    assert [(d.kind, d.task, d.subject) for d in ledger.discrepancies] == [
        (Kind.EVENT_ORDER, 7, "WorkSubmitted of an unknown task"),
        (Kind.EVENT_ORDER, 7, "SeedArmed of an unknown task"),
    ]
    assert ledger.tasks == {}
    assert ledger.tx_scope == {}
    assert ledger.counts() == {"events": 2}
