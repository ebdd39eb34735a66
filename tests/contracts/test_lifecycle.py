"""Whole tasks, round after round, with three trainers and three validators: every number is checked
against the rules (`round_payout`, two thirds) and the books against the token balances."""

from __future__ import annotations

import pytest
from chainworld import REWARD, STAKE, World, h, logs, reverts, work

from protocol.contracts import (
    BURN_ADDRESS,
    CancelReason,
    CreditReason,
    TaskStatus,
    ValidatorOutcome,
    Verdict,
    round_payout,
)

pytestmark = pytest.mark.chain

A, R, U, NONE = Verdict.ACCEPT, Verdict.REJECT, Verdict.UNAVAILABLE, Verdict.NONE
ALLOCATION = STAKE // 2


def test_accept_reject_unavailable_undecided_slash_rollover_autocancel_refund(world: World) -> None:
    escrow, distributor = world.deployment.task_escrow, world.deployment.reward_distributor
    task_id = world.setup_task(
        num_rounds=5,
        validator_share_bps=2_000,
        trainer_slash_bps=1_000,
        validator_slash_bps=500,
        max_empty_rounds=2,
        quorum=2,
    )
    t0, t1, t2 = world.trainers
    v0, v1, v2 = world.validators
    p = world.initiator
    credits = {x.address: 0 for x in world.people}
    burned_before = p.token_balance(BURN_ADDRESS)

    # Round 0: accept, reject, unavailable; v2 disagrees; the model vote agrees on m1.
    assert world.submit_all(task_id, 0, units=[1_000, 2_000, 3_000]) == [0, 1, 2]
    world.draw(task_id)
    rows = {v0: [A, R, U], v1: [A, R, U], v2: [A, A, A]}
    world.ballot(task_id, 0, rows, {v0: h("m1"), v1: h("m1"), v2: h("m9")})
    assert p.decisions_of(task_id, 0) == [A, R, U]
    receipt = p.finalize_round(task_id)
    pay0 = round_payout(REWARD, 2_000, 1_000, 3, reward_per_round=REWARD, quorum=2)
    (event,) = logs(escrow, "RoundFinalized", receipt)
    assert (event["budget"], event["acceptedWork"], event["rate"], event["revealed"]) == (
        REWARD,
        1_000,
        pay0.rate,
        3,
    )
    assert (event["validatorShare"], event["carry"], event["nextBase"]) == (pay0.share, pay0.carry, h("m1"))
    assert p.base_model_of(task_id) == h("m1")
    assert p.funds_of(task_id) == (5 * REWARD - pay0.reserved, pay0.reserved)
    world.assert_solvent()

    settled = [logs(escrow, "SubmissionSettled", p.settle_submission(task_id, 0, i))[0] for i in range(3)]
    assert [(s["trainer"], s["decision"], s["reward"]) for s in settled] == [
        (t0.address, A, 1_000 * pay0.rate),
        (t1.address, R, 0),
        (t2.address, U, 0),
    ]
    slash = ALLOCATION * 1_000 // 10_000
    assert [s["slashed"] for s in settled] == [0, slash, slash]
    assert t1.allocation_of(task_id) == ALLOCATION - slash
    assert p.token_balance(BURN_ADDRESS) == burned_before + 2 * slash
    credits[t0.address] += 1_000 * pay0.rate
    outcomes = [logs(escrow, "ValidatorSettled", p.settle_validator(task_id, 0, v.address))[0] for v in rows]
    assert [(o["outcome"], o["amount"]) for o in outcomes] == [
        (ValidatorOutcome.REWARDED, pay0.share),
        (ValidatorOutcome.REWARDED, pay0.share),
        (ValidatorOutcome.FORFEITED, pay0.share),
    ]
    credits[v0.address] += pay0.share
    credits[v1.address] += pay0.share
    # v2's forfeited share went back to the task: it is part of round 1's carry.
    remaining = 5 * REWARD - pay0.reserved + pay0.share
    assert p.funds_of(task_id) == (remaining, 0)
    world.assert_solvent()

    # Round 1: t2 does not submit (deadline close), v2 does not commit; t1 is undecided (1 of 2 votes);
    # the two model votes differ, so the base stays m1 and no validator earns the round's share.
    world.submit_all(task_id, 1, [t0, t1], units=[4_000, 5_000])
    world.warp_to(p.task_state(task_id).submit_end)
    world.draw(task_id)
    rows = {v0: [A, A], v1: [A, R]}
    world.ballot(task_id, 1, rows, {v0: h("m2a"), v1: h("m2b")})
    assert p.decisions_of(task_id, 1) == [A, NONE]
    budget1 = REWARD + pay0.carry + pay0.share
    receipt = p.finalize_round(task_id)
    pay1 = round_payout(budget1, 2_000, 4_000, 2, reward_per_round=REWARD, quorum=2)
    (event,) = logs(escrow, "RoundFinalized", receipt)
    assert (event["budget"], event["rate"], event["validatorShare"], event["carry"]) == (
        budget1,
        pay1.rate,
        pay1.share,
        pay1.carry,
    )
    assert event["nextBase"] == h("m1")
    settled = [logs(escrow, "SubmissionSettled", p.settle_submission(task_id, 1, i))[0] for i in range(2)]
    assert [(s["decision"], s["reward"], s["slashed"]) for s in settled] == [
        (A, 4_000 * pay1.rate, 0),
        (NONE, 0, 0),
    ]
    credits[t0.address] += 4_000 * pay1.rate
    outcomes = [
        logs(escrow, "ValidatorSettled", p.settle_validator(task_id, 1, v.address))[0] for v in (v0, v1, v2)
    ]
    validator_slash = ALLOCATION * 500 // 10_000
    assert [(o["outcome"], o["amount"]) for o in outcomes] == [
        (ValidatorOutcome.FORFEITED, pay1.share),
        (ValidatorOutcome.FORFEITED, pay1.share),
        (ValidatorOutcome.SLASHED, validator_slash),
    ]
    assert v2.allocation_of(task_id) == ALLOCATION - validator_slash
    # The two forfeited shares went back to the task: part of round 2's carry.
    forfeited = 2 * pay1.share
    world.assert_solvent()

    # Rounds 2 and 3: nobody submits. The second empty round in a row cancels the task.
    world.warp_to(p.task_state(task_id).submit_end)
    (event,) = logs(escrow, "RoundFinalized", p.finalize_round(task_id))
    assert event["budget"] == REWARD + pay1.carry + forfeited
    assert p.task_state(task_id).empty_rounds == 1
    world.warp_to(p.task_state(task_id).submit_end)
    remaining = p.funds_of(task_id)[0]
    receipt = p.finalize_round(task_id)
    assert logs(escrow, "TaskCancelled", receipt) == [
        {"taskId": task_id, "round": 3, "reason": CancelReason.NO_ACCEPTED_WORK}
    ]
    assert logs(escrow, "Refunded", receipt) == [
        {"taskId": task_id, "initiator": p.address, "amount": remaining}
    ]
    (credited,) = logs(distributor, "Credited", receipt)
    assert (credited["amount"], credited["reason"], credited["round"]) == (remaining, CreditReason.REFUND, 3)
    # Remaining at the cancel: the reward of rounds 2..4 plus round 1's carry and forfeits.
    assert remaining == 3 * REWARD + pay1.carry + forfeited
    credits[p.address] += remaining
    state = p.task_state(task_id)
    assert (state.status, state.round, state.empty_rounds) == (TaskStatus.CANCELLED, 4, 2)
    reverts("TaskNotActive", status=TaskStatus.CANCELLED)(lambda: t0.submit_work(task_id, 4, work("late")))
    world.assert_solvent()

    # Everyone claims exactly what was credited; the escrow of the task is empty.
    for person in world.people:
        assert person.credit_of() == credits[person.address]
        if credits[person.address]:
            before = person.token_balance()
            assert person.claim() == credits[person.address]
            assert person.token_balance() == before + credits[person.address]
    assert p.funds_of(task_id) == (0, 0)
    assert world.chain.call(distributor.functions.totalCredits()) == 0
    assert p.token_balance(distributor.address) == 0
    total_paid = sum(credits.values())
    assert total_paid == 5 * REWARD  # every token of the deposit reached someone
    world.assert_solvent()


def test_completed_task_refunds_dust_and_a_late_forfeit(world: World) -> None:
    escrow = world.deployment.task_escrow
    task_id = world.setup_task(num_rounds=2, validator_share_bps=3_333)
    p = world.initiator
    v0, v1, v2 = world.validators
    for round_ in range(2):
        world.submit_all(task_id, round_, units=[7, 11, 13])
        world.draw(task_id)
        rows = {v0: [A, A, A], v1: [A, A, A], v2: [R, A, A]}
        world.ballot(task_id, round_, rows, {v: h("model", round_ + 1) for v in rows})
        receipt = p.finalize_round(task_id)
    pay_first = round_payout(REWARD, 3_333, 31, 3)
    pay_last = round_payout(REWARD + pay_first.carry, 3_333, 31, 3, reward_per_round=REWARD)
    assert logs(escrow, "TaskCompleted", receipt) == [{"taskId": task_id}]
    assert logs(escrow, "Refunded", receipt)[0]["amount"] == pay_last.carry
    assert p.task_state(task_id).status == TaskStatus.COMPLETED
    assert p.base_model_of(task_id) == h("model", 2)
    # v2 disagreed in the last round; the task has ended, so its share goes to the initiator.
    receipt = p.settle_validator(task_id, 1, v2.address)
    assert logs(escrow, "ValidatorSettled", receipt)[0]["outcome"] == ValidatorOutcome.FORFEITED
    assert logs(escrow, "Refunded", receipt) == []  # Refunded is the end-of-task refund only
    (credited,) = logs(world.deployment.reward_distributor, "Credited", receipt)
    assert (credited["account"], credited["amount"], credited["reason"]) == (
        p.address,
        pay_last.share,
        CreditReason.REFUND,
    )
    assert p.credit_of() == pay_last.carry + pay_last.share
    for round_ in range(2):
        for i in range(3):
            p.settle_submission(task_id, round_, i)
        for v in (v0, v1):
            p.settle_validator(task_id, round_, v.address)
    # v2's round-0 forfeit, settled only now that the task has ended, is refunded too.
    p.settle_validator(task_id, 0, v2.address)
    assert p.funds_of(task_id) == (0, 0)
    assert p.credit_of() == pay_last.carry + pay_last.share + pay_first.share
    world.assert_solvent()


def test_slashed_trainer_must_top_up_to_submit_again(world: World) -> None:
    task_id = world.setup_task(trainer_slash_bps=9_000)
    t0 = world.trainers[0]
    p = world.initiator
    world.submit_all(task_id, 0)
    world.draw(task_id)
    rows = {v: [R, A, A] for v in world.validators}
    world.ballot(task_id, 0, rows, {v: h("m") for v in rows})
    p.finalize_round(task_id)
    p.settle_submission(task_id, 0, 0)
    left = ALLOCATION - ALLOCATION * 9_000 // 10_000
    assert t0.allocation_of(task_id) == left
    reverts("StakeTooLow", taskId=task_id, account=t0.address, allocated=left, required=STAKE // 10)(
        lambda: t0.submit_work(task_id, 1, work("late"))
    )
    t0.allocate(task_id, STAKE // 10)  # allowed while locked
    assert t0.submit_work(task_id, 1, work("late")) == 0
