"""The auditor's honeypot book on a real history: a revealed honeypot flags exactly the validator that
accepted it (`lazy_validator`), its lazy slash is recomputed and reconciles with the balances, and a
tampered honeypot event is caught."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from chainworld import World, h

from protocol.audit import Kind
from protocol.audit.runner import AuditTarget, audit, check_events
from protocol.contracts import Verdict

pytestmark = pytest.mark.chain

A, R = Verdict.ACCEPT, Verdict.REJECT
SALT = h("audit honeypot salt")


def _lines(found: list[Any]) -> str:
    return "\n".join(d.line() for d in found)


def lazy_history(world: World, *, slash: bool = True) -> int:
    """A one-round task, ended and settled: trainer 3 is the initiator's bait (a honeypot), validators 4
    and 5 reject it, validator 6 accepts everything; the honeypot is revealed and (with `slash`) 6 slashed."""
    task_id = world.create_task(num_rounds=1)
    world.join(task_id, world.trainers, world.validators)
    v0, v1, lazy = world.validators
    world.initiator.commit_honeypot(task_id, 0, world.trainers[2].address, SALT)
    world.start(task_id)
    world.submit_all(task_id, 0)
    world.draw(task_id)
    rows = {v0: [A, A, R], v1: [A, A, R], lazy: [A, A, A]}
    world.ballot(task_id, 0, rows, {v: h("model 1") for v in rows})
    world.close_ballot(task_id, 0)
    world.trainers[2].reveal_honeypot(task_id, 0, 2, world.trainers[2].address, SALT)  # the bait consents
    if slash:
        world.outsider.slash_lazy(task_id, 0, lazy.address)
    world.outsider.finalize_round(task_id)
    for i in range(3):
        world.outsider.settle_submission(task_id, 0, i)
    for v in world.validators:
        world.outsider.settle_validator(task_id, 0, v.address)
    return task_id


def test_the_lazy_validator_is_flagged_and_its_slash_reconciles(world: World, target: AuditTarget) -> None:
    task_id = lazy_history(world)
    lazy = world.validators[2].address
    result = audit(target, task=task_id, gas=False)
    kinds = [d.kind for d in result.discrepancies]
    assert kinds == [Kind.LAZY_VALIDATOR], _lines(result.discrepancies)
    (flag,) = result.discrepancies
    assert lazy in flag.subject
    assert (flag.expected, flag.actual) == ("REJECT", "ACCEPT")
    hp = result.ledger.tasks[task_id].honeypots[0]
    assert (hp.index, hp.submitter, hp.decision, hp.lazy) == (2, world.trainers[2].address, R, [lazy])
    assert hp.slashed[lazy] == result.ledger.accounts[lazy].slashed_by_task[task_id] > 0
    assert result.verified["lazy_slashes"] == 1
    assert result.verified["honeypots"] == 2
    assert result.verified["balances"] > 0


def test_an_unslashed_lazy_validator_is_flagged_all_the_same(world: World, target: AuditTarget) -> None:
    task_id = lazy_history(world, slash=False)
    result = audit(target, task=task_id, gas=False)
    assert [d.kind for d in result.discrepancies] == [Kind.LAZY_VALIDATOR], _lines(result.discrepancies)


def test_a_tampered_lazy_slash_is_caught(world: World, target: AuditTarget) -> None:
    task_id = lazy_history(world)
    result = audit(target, task=task_id, gas=False)
    events = [
        dataclasses.replace(e, args={**e.args, "slashed": int(e.args["slashed"]) + 1})
        if e.name == "LazySlashed"
        else e
        for e in result.events
    ]
    ledger = check_events(target, events, result.to_block, views=False)
    assert Kind.SLASH in {d.kind for d in ledger.discrepancies}, _lines(ledger.discrepancies)
    events = [
        dataclasses.replace(e, args={**e.args, "salt": h("forged")}) if e.name == "HoneypotRevealed" else e
        for e in result.events
    ]
    ledger = check_events(target, events, result.to_block, views=False)
    assert Kind.HONEYPOT in {d.kind for d in ledger.discrepancies}, _lines(ledger.discrepancies)
