"""TaskEscrow.settleRound: a finalised round's submissions and validators settled in one transaction, with
exactly the events, credits, slashes and books of the single calls; items settled already are skipped (a
batch cannot be blocked by a keeper that settled part of it first), items that cannot be settled revert
the whole batch with the single call's error, and a batch that settles nothing reverts NothingSettled."""

from __future__ import annotations

from typing import Any

import pytest
from chainworld import World, h, logs, reverts

from protocol.contracts import ProtocolClient, Verdict

pytestmark = pytest.mark.chain

A, R = Verdict.ACCEPT, Verdict.REJECT
SETTLE_EVENTS = (("task_escrow", "SubmissionSettled"), ("task_escrow", "ValidatorSettled"))


def two_rounds(world: World) -> int:
    """Round 0: v0 and v1 reveal [A, R, A], v2 reveals [A, A, A] (it disagrees: its share is forfeited);
    round 1: v0 and v1 reveal [A, A, R], v2 never commits (slashed). Both finalised, nothing settled."""
    task_id = world.setup_task(num_rounds=3, quorum=2)
    v0, v1, v2 = world.validators
    model = h("model", 1)
    world.submit_all(task_id, 0)
    world.draw(task_id)
    world.ballot(task_id, 0, {v0: [A, R, A], v1: [A, R, A], v2: [A, A, A]}, {v0: model, v1: model, v2: model})
    world.close_ballot(task_id, 0)
    world.initiator.finalize_round(task_id)
    world.submit_all(task_id, 1)
    world.draw(task_id)
    world.ballot(task_id, 1, {v0: [A, A, R], v1: [A, A, R]}, {v0: model, v1: model})
    world.close_ballot(task_id, 1)
    world.initiator.finalize_round(task_id)
    return task_id


def settled_events(world: World, receipts: list[Any]) -> list[tuple[str, dict[str, Any]]]:
    """The settlement events and the distributor's credits in `receipts`, in order."""
    d = world.deployment
    out = []
    for receipt in receipts:
        for contract, name in (*SETTLE_EVENTS, ("reward_distributor", "Credited")):
            out += [(name, e) for e in logs(getattr(d, contract), name, receipt)]
    return sorted(out, key=lambda item: repr(item))


def books(world: World, task_id: int) -> dict[str, Any]:
    """What a settlement changes: the task's funds, credits, allocations, counters."""
    p = world.initiator
    people = [p, *world.trainers, *world.validators]
    return {
        "funds": p.funds_of(task_id),
        "credits": [p.credit_of(x.address) for x in people],
        "allocations": [p.allocation_of(task_id, x.address) for x in people],
        "unsettled": [p.unsettled_of(task_id, t.address) for t in world.trainers],
        "validator_unsettled": [
            int(p.client.call(p.escrow.functions.validatorUnsettledOf(task_id, v.address)))
            for v in world.validators
        ],
    }


def test_a_batch_settles_exactly_as_the_single_calls_do(world: World) -> None:
    task_id = two_rounds(world)
    p = world.initiator
    validators = [v.address for v in world.validators]
    before = world.chain.snapshot()
    singles = []
    for round_ in (0, 1):
        singles += [p.settle_submission(task_id, round_, i) for i in range(3)]
        singles += [p.settle_validator(task_id, round_, v) for v in validators]
    single_events, single_books = settled_events(world, singles), books(world, task_id)
    world.assert_solvent()
    world.chain.revert(before)

    batches = [p.settle_round(task_id, round_, [0, 1, 2], validators) for round_ in (0, 1)]
    assert settled_events(world, batches) == single_events
    assert books(world, task_id) == single_books
    world.assert_solvent()
    outcomes = {
        (int(e["round"]), e["validator"]): int(e["outcome"]) for n, e in single_events if "outcome" in e
    }
    assert sorted(set(outcomes.values())) == [0, 1, 2]  # rewarded, forfeited and slashed are all covered
    decisions = {int(e["decision"]) for n, e in single_events if n == "SubmissionSettled"}
    assert decisions == {int(A), int(R)}
    assert all(p.submission_of(task_id, r, i)[2] for r in (0, 1) for i in range(3))


def test_a_batch_skips_what_is_settled_and_counts_what_it_settles(world: World) -> None:
    task_id = two_rounds(world)
    p = world.initiator
    v0, v1, v2 = (v.address for v in world.validators)
    p.settle_submission(task_id, 0, 0)
    p.settle_validator(task_id, 0, v1)
    settle = p.escrow.functions.settleRound
    # Index 1 twice, v1 settled already: 0 and v1 skipped, the duplicate settled once.
    assert p.client.call(settle(task_id, 0, [0, 1, 1, 2], [v0, v1, v2])) == 4
    receipt = p.settle_round(task_id, 0, [0, 1, 1, 2], [v0, v1, v2])
    assert [int(e["index"]) for e in logs(world.deployment.task_escrow, "SubmissionSettled", receipt)] == [
        1,
        2,
    ]
    assert [e["validator"] for e in logs(world.deployment.task_escrow, "ValidatorSettled", receipt)] == [
        v0,
        v2,
    ]
    reverts("NothingSettled", taskId=task_id, round=0)(lambda: p.settle_round(task_id, 0, [2, 0], [v2]))
    reverts("NothingSettled", taskId=task_id, round=1)(lambda: p.settle_round(task_id, 1, [], []))
    # Submissions only, or validators only.
    p.settle_round(task_id, 1, [0, 1, 2], [])
    p.settle_round(task_id, 1, [], [v0, v1, v2])
    assert p.unsettled_of(task_id, world.trainers[0].address) == 0
    world.assert_solvent()


def test_a_batch_reverts_whole_on_an_item_that_cannot_be_settled(world: World) -> None:
    task_id = two_rounds(world)
    p = world.initiator
    outsider = world.outsider.address
    validators = [v.address for v in world.validators]
    reverts("UnknownSubmission", taskId=task_id, round=0, index=3)(
        lambda: p.settle_round(task_id, 0, [0, 3], validators)
    )
    reverts("NotExpected", taskId=task_id, round=0, validator=outsider)(
        lambda: p.settle_round(task_id, 0, [0], [*validators, outsider])
    )
    assert not p.submission_of(task_id, 0, 0)[2]  # nothing of a reverted batch stays settled
    reverts("RoundNotFinalized", taskId=task_id, round=2)(lambda: p.settle_round(task_id, 2, [0], []))
    reverts("UnknownTask", taskId=31)(lambda: p.settle_round(31, 0, [0], []))
    # Round 2 without submissions ends at its deadline: no ballot, so no validator is expected in it.
    world.warp_to(p.task_state(task_id).submit_end)
    p.finalize_round(task_id)
    reverts("NotExpected", taskId=task_id, round=2, validator=validators[0])(
        lambda: p.settle_round(task_id, 2, [], validators[:1])
    )
    reverts("UnknownSubmission", taskId=task_id, round=2, index=0)(
        lambda: p.settle_round(task_id, 2, [0], [])
    )


def test_a_forfeited_share_after_the_end_is_refunded_by_a_batch_too(world: World) -> None:
    """The last round's forfeited share goes to the initiator once the task has ended (the status the
    batch passes to each validator's settlement)."""
    task_id = world.setup_task(num_rounds=1, quorum=2)
    v0, v1, v2 = world.validators
    world.submit_all(task_id, 0)
    world.draw(task_id)
    model = h("model", 1)
    rows = {v0: [A, R, A], v1: [A, R, A], v2: [A, A, A]}
    world.ballot(task_id, 0, rows, {v0: model, v1: model, v2: model})
    world.close_ballot(task_id, 0)
    p: ProtocolClient = world.initiator
    p.finalize_round(task_id)
    credit = p.credit_of()
    receipt = p.settle_round(task_id, 0, [0, 1, 2], [v.address for v in world.validators])
    (forfeit,) = [
        e for e in logs(world.deployment.task_escrow, "ValidatorSettled", receipt) if e["outcome"] == 1
    ]
    assert forfeit["validator"] == v2.address
    assert p.credit_of() == credit + forfeit["amount"] > credit
    assert p.funds_of(task_id) == (0, 0)
    world.assert_solvent()
