"""The ledger on real histories: an honest one replays with zero discrepancies and the books equal the
contracts'; a tampered event stream, or a chain whose balances the events do not explain, is caught with
the right kind of discrepancy."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import pytest
from audit_histories import A, R, U, rich_history, simple_round
from chainworld import REWARD, World

from protocol.audit import Kind
from protocol.audit.events import ChainEvent
from protocol.audit.runner import AuditTarget, audit, check_events
from protocol.contracts import CreditReason, TaskStatus, ValidatorOutcome, Verdict

pytestmark = pytest.mark.chain


def _lines(found: list[Any]) -> str:
    return "\n".join(d.line() for d in found)


def test_honest_history_replays_without_discrepancy(world: World, target: AuditTarget) -> None:
    task_id = rich_history(world)
    result = audit(target)
    assert result.discrepancies == [], _lines(result.discrepancies)
    assert result.ok
    ledger = result.ledger
    task = ledger.tasks[task_id]
    assert [s.decision for s in task.rounds[0].submissions] == [A, R, U]
    assert [s.decision for s in task.rounds[1].submissions] == [A, Verdict.NONE]
    assert (task.status, task.current_round, task.remaining, task.reserved) == (TaskStatus.CANCELLED, 4, 0, 0)
    assert task.rounds[0].agreed is not None
    assert task.rounds[1].agreed is None
    outcomes = {v: s.outcome for v, s in task.rounds[1].validator_settlements.items()}
    # Round 1 agreed on no model: no validator earns its share.
    assert sorted(outcomes.values()) == [
        ValidatorOutcome.FORFEITED,
        ValidatorOutcome.FORFEITED,
        ValidatorOutcome.SLASHED,
    ]
    cancelled = ledger.tasks[task_id + 1]
    assert (cancelled.status, cancelled.refunded) == (TaskStatus.CANCELLED, cancelled.deposit)
    # Every token of the main task's deposit was credited to someone.
    credited = sum(book.credited_by_task.get(task_id, 0) for book in ledger.accounts.values())
    assert credited == 5 * REWARD
    initiator = ledger.accounts[world.initiator.address]
    assert initiator.credited[CreditReason.REFUND] > 0
    assert initiator.credit == 0
    # Everything was checked: each category saw items, views included.
    for category in (
        "finalizations",
        "settlements",
        "reveals",
        "commits",
        "credits",
        "claims",
        "seeds",
        "balances",
        "views",
        "stake_events",
        "model_agreements",
        "task_ends",
        "refunds",
    ):
        assert result.verified.get(category, 0) > 0, category
    assert result.verified["events"] == len(result.events)
    gas = result.gas_by_round(task_id)
    assert gas["setup"] > 0
    assert gas["0"] > gas["2"] > 0


def _tamper(
    events: list[ChainEvent], name: str, pick: Callable[[ChainEvent], bool], **changes: Any
) -> list[ChainEvent]:
    """`events` with the first `name` event for which `pick` holds changed (or removed when no changes)."""
    for i, e in enumerate(events):
        if e.name == name and pick(e):
            if not changes:
                return events[:i] + events[i + 1 :]
            return [*events[:i], dataclasses.replace(e, args={**e.args, **changes}), *events[i + 1 :]]
    raise AssertionError(f"no {name} event to tamper with")


def _any(_e: ChainEvent) -> bool:
    return True


def _round(n: int) -> Callable[[ChainEvent], bool]:
    return lambda e: int(e.args.get("round", -1)) == n


CASES: dict[str, tuple[Callable[[list[ChainEvent], World], list[ChainEvent]], Kind, str]] = {
    "finalised rate": (
        lambda ev, w: _tamper(ev, "RoundFinalized", _round(0), rate=1), Kind.FINALIZATION,
        "RoundFinalized.rate"),
    "finalised next base": (
        lambda ev, w: _tamper(ev, "RoundFinalized", _round(1), nextBase=b"\x01" * 32), Kind.FINALIZATION,
        "nextBase"),
    "revealed vector": (
        lambda ev, w: _tamper(ev, "VerdictsRevealed", _round(0), verdicts=0b010101), Kind.COMMITMENT,
        "commitment of"),
    "settled decision": (
        lambda ev, w: _tamper(ev, "SubmissionSettled", lambda e: e.args["index"] == 1,
                              decision=int(Verdict.ACCEPT)), Kind.DECISION, "decision on submission 1"),
    "trainer reward": (
        lambda ev, w: _tamper(ev, "SubmissionSettled", lambda e: e.args["index"] == 0, reward=5),
        Kind.SETTLEMENT, "reward of submission 0"),
    "dropped credit": (
        lambda ev, w: _tamper(ev, "Credited", lambda e: e.args["reason"] == CreditReason.TRAINER_REWARD),
        Kind.CREDIT, "missing Credited"),
    "forged credit": (
        lambda ev, w: _tamper(ev, "Credited", lambda e: e.args["reason"] == CreditReason.VALIDATOR_REWARD,
                              account=w.people[8].address), Kind.CREDIT, "no rule calls for"),
    "claim": (
        lambda ev, w: _tamper(ev, "Claimed", _any, amount=10**9), Kind.CLAIM, "whole credit"),
    "model agreement": (
        lambda ev, w: _tamper(ev, "ModelAgreed", _any, modelHash=b"\x02" * 32), Kind.MODEL_AGREEMENT,
        "ModelAgreed.modelHash"),
    "validator outcome": (
        lambda ev, w: _tamper(ev, "ValidatorSettled", lambda e: e.args["outcome"] == ValidatorOutcome.SLASHED,
                              outcome=int(ValidatorOutcome.REWARDED)),
        Kind.SETTLEMENT, "outcome of validator"),
    "slash amount": (
        lambda ev, w: _tamper(ev, "Slashed", _any, amount=1), Kind.SLASH, "Slashed event amount"),
    "seed": (
        lambda ev, w: _tamper(ev, "SeedDrawn", _round(0), seed=b"\x03" * 32), Kind.SEED, "blockhash"),
    "stake": (
        lambda ev, w: _tamper(ev, "Staked", _any, amount=1), Kind.BALANCE, "StakeManager token balance"),
    "refund": (
        lambda ev, w: _tamper(ev, "Refunded", _any, amount=1), Kind.REFUND, "Refunded.amount"),
    "validator released with a round unsettled": (
        lambda ev, w: _tamper(ev, "ValidatorSettled",
                              lambda e: e.args["outcome"] == ValidatorOutcome.SLASHED),
        Kind.STAKE, "1 unsettled rounds"),
    "submission after the seed": (
        lambda ev, w: _move_after(ev, "WorkSubmitted", "SeedDrawn"), Kind.EVENT_ORDER, "after the seed"),
}  # fmt: skip


def _move_after(events: list[ChainEvent], name: str, anchor: str) -> list[ChainEvent]:
    i = next(k for k, e in enumerate(events) if e.name == name)
    j = next(k for k, e in enumerate(events) if e.name == anchor and k > i)
    moved = dataclasses.replace(
        events[i], block=events[j].block, log_index=events[j].log_index + 1, tx_hash=events[j].tx_hash
    )
    return [*events[:i], *events[i + 1 : j + 1], moved, *events[j + 1 :]]


@pytest.fixture(scope="module")
def honest(world: World, chain: Any, compiled: Any) -> tuple[list[ChainEvent], int]:
    """The rich history's events (made once for the module, outside any test's snapshot)."""
    from protocol.audit.runner import open_target

    rich_history(world)
    target = open_target(chain.rpc_url, world.deployment.addresses, compiled=compiled)
    result = audit(target, gas=False)
    assert result.ok, _lines(result.discrepancies)
    return result.events, result.to_block


@pytest.mark.parametrize("case", sorted(CASES))
def test_tampered_event_stream_is_caught(
    case: str, world: World, target: AuditTarget, honest: tuple[list[ChainEvent], int]
) -> None:
    events, block = honest
    tamper, kind, subject = CASES[case]
    ledger = check_events(target, tamper(list(events), world), block)
    matching = [d for d in ledger.discrepancies if d.kind == kind and subject in d.subject]
    assert matching, f"{case}: no {kind} about {subject!r} in:\n{_lines(ledger.discrepancies)}"
    assert all(d.evidence.startswith(("0x", "block ")) for d in ledger.discrepancies)


def test_tokens_the_events_do_not_explain_are_reported(world: World, target: AuditTarget) -> None:
    simple_round(world)
    distributor = world.deployment.reward_distributor.address
    world.initiator.client.transact(world.deployment.token.functions.transfer(distributor, 7))
    result = audit(target, gas=False)
    (found,) = result.discrepancies
    assert (found.kind, found.expected, found.actual) == (
        Kind.BALANCE,
        str(int(found.expected)),
        str(int(found.expected) + 7),
    )
    assert "RewardDistributor" in found.subject
    assert "surplus" in found.detail
    assert found.evidence == f"block {result.to_block}"


def test_rejected_submission_is_slashed_as_the_rules_say(world: World, target: AuditTarget) -> None:
    task_id = simple_round(world, reject_second=True)
    result = audit(target, task=task_id, gas=False)
    assert result.ok, _lines(result.discrepancies)
    sub = result.ledger.tasks[task_id].rounds[0].submissions[1]
    assert (sub.decision, sub.reward) == (Verdict.REJECT, 0)
    assert sub.slashed is not None
    assert sub.slashed > 0
    assert result.ledger.accounts[sub.trainer].slashed_by_task[task_id] == sub.slashed
