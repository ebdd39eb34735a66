"""TaskEscrow: task creation and cancellation, joins, submissions, finalisation, settlement errors."""

from __future__ import annotations

from functools import partial
from typing import Any

import pytest
from chainworld import CID, REWARD, STAKE, SUBMIT, World, h, logs, reverts, work

from protocol.contracts import (
    CancelReason,
    CreditReason,
    Role,
    TaskParams,
    TaskStatus,
    Verdict,
    round_payout,
)

pytestmark = pytest.mark.chain

A, R = Verdict.ACCEPT, Verdict.REJECT


def raw_create(world: World, **overrides: Any) -> Any:
    """createTask with parameters that skip the Python-side validation (to reach the contract's)."""
    params: TaskParams = world.params().model_copy(update=overrides)
    return world.initiator.client.transact(
        world.deployment.task_escrow.functions.createTask(params.as_tuple())
    )


# ------------------------------------------------------------------------------------------ createTask


def test_create_task_escrows_the_deposit(world: World) -> None:
    params = world.params(num_rounds=4, reward_per_round=250)
    before = world.initiator.token_balance()
    receipt = world.initiator.client.transact(
        world.deployment.task_escrow.functions.createTask(params.as_tuple())
    )
    (created,) = logs(world.deployment.task_escrow, "TaskCreated", receipt)
    task_id = created["taskId"]
    assert task_id == 1
    assert created["initiator"] == world.initiator.address
    assert created["deposit"] == 1_000
    assert tuple(created["params"].values()) == params.as_tuple()  # CIDs included
    (deposited,) = logs(world.deployment.reward_distributor, "Deposited", receipt)
    assert deposited == {"taskId": task_id, "from": world.initiator.address, "amount": 1_000}

    assert world.initiator.token_balance() == before - 1_000
    assert world.initiator.funds_of(task_id) == (1_000, 0)
    assert world.initiator.base_model_of(task_id) == params.initial_model_hash
    config = world.initiator.task_config(task_id)
    assert (config.initiator, config.num_rounds, config.reward_per_round, config.quorum) == (
        world.initiator.address,
        4,
        250,
        params.quorum,
    )
    assert (config.start_time, config.seed_delay, config.spec_hash) == (
        params.start_time,
        2,
        params.spec_hash,
    )
    state = world.initiator.task_state(task_id)
    assert (state.round, state.status, state.submissions) == (0, TaskStatus.ACTIVE, 0)
    assert (state.round_start, state.submit_end) == (params.start_time, params.start_time + SUBMIT)
    world.assert_solvent()


BAD_PARAMS = [
    ("spec_hash", bytes(32), "specHash", 0),
    ("initial_model_hash", bytes(32), "initialModelHash", 0),
    ("num_rounds", 0, "numRounds", 0),
    ("reward_per_round", 0, "rewardPerRound", 0),
    ("reward_per_round", 2**120, "rewardPerRound", 2**120),
    ("validator_share_bps", 10_001, "validatorShareBps", 10_001),
    ("trainer_slash_bps", 10_001, "trainerSlashBps", 10_001),
    ("validator_slash_bps", 10_001, "validatorSlashBps", 10_001),
    ("max_trainers", 0, "maxTrainers", 0),
    ("max_trainers", 129, "maxTrainers", 129),
    ("max_validators", 0, "maxValidators", 0),
    ("quorum", 0, "quorum", 0),
    ("quorum", 9, "quorum", 9),
    ("submit_duration", 0, "submitDuration", 0),
    ("commit_duration", 0, "commitDuration", 0),
    ("reveal_duration", 0, "revealDuration", 0),
    ("vote_duration", 0, "voteDuration", 0),
    ("vote_duration", 1, "voteDuration", 1),  # the vote's reveal half would be empty
    ("seed_delay", 0, "seedDelay", 0),
    ("seed_delay", 257, "seedDelay", 257),
    ("sample_rollouts", 0, "sampleRollouts", 0),
    ("sample_steps", 0, "sampleSteps", 0),
    ("start_time", 2**40, "startTime", 2**40),
]


@pytest.mark.parametrize(("field", "value", "name", "reported"), BAD_PARAMS)
def test_create_task_rejects_bad_parameters(
    world: World, field: str, value: Any, name: str, reported: int
) -> None:
    reverts("InvalidTaskParameter", name=name, value=reported)(lambda: raw_create(world, **{field: value}))


def test_create_task_rejects_a_start_in_the_past(world: World) -> None:
    past = world.now() - 10
    reverts("InvalidTaskParameter", name="startTime", value=past)(lambda: raw_create(world, start_time=past))


def test_with_committees_the_quorum_counts_draws_not_validators(world: World) -> None:
    # 32 revealed draws of 40 with at most 8 validators: one validator holding many draws cannot decide alone.
    task_id = world.create_task(committee_draws=40, quorum=32, max_validators=8)
    assert world.initiator.task_config(task_id).quorum == 32
    reverts("InvalidTaskParameter", name="committeeDraws", value=40)(
        lambda: raw_create(world, committee_draws=40, quorum=41)
    )
    reverts("InvalidTaskParameter", name="quorum", value=9)(
        lambda: raw_create(world, quorum=9, max_validators=8)
    )
    with pytest.raises(ValueError, match="max_validators"):
        world.params(quorum=9, max_validators=8)


def test_python_params_check_the_same_bounds() -> None:
    base = {
        "spec_hash": h("s"),
        "spec_cid": CID,
        "initial_model_hash": h("m"),
        "initial_model_cid": CID,
        "num_rounds": 1,
        "reward_per_round": 1,
        "validator_share_bps": 0,
        "min_trainer_stake": 0,
        "min_validator_stake": 0,
        "quorum": 3,
        "max_trainers": 1,
        "max_validators": 2,
        "submit_duration": 1,
        "commit_duration": 1,
        "reveal_duration": 1,
        "vote_duration": 2,
        "seed_delay": 1,
        "sample_rollouts": 1,
        "sample_steps": 1,
        "trainer_slash_bps": 0,
        "validator_slash_bps": 0,
        "max_empty_rounds": 0,
        "start_time": 0,
    }
    with pytest.raises(ValueError, match="quorum"):
        TaskParams(**base)
    with pytest.raises(ValueError, match="max_trainers"):
        TaskParams(**{**base, "quorum": 1, "max_trainers": 129})
    with pytest.raises(ValueError, match="extra"):
        TaskParams(**{**base, "quorum": 1, "colour": "blue"})
    with pytest.raises(ValueError, match="vote_duration"):
        TaskParams(**{**base, "quorum": 1, "vote_duration": 1})


# ------------------------------------------------------------------------------------------ cancelTask


def test_cancel_before_start_refunds_everything(world: World) -> None:
    task_id = world.create_task(num_rounds=2)
    receipt = world.initiator.cancel_task(task_id)
    escrow = world.deployment.task_escrow
    assert logs(escrow, "TaskCancelled", receipt) == [
        {"taskId": task_id, "round": 0, "reason": CancelReason.BY_INITIATOR}
    ]
    assert logs(escrow, "Refunded", receipt) == [
        {"taskId": task_id, "initiator": world.initiator.address, "amount": 2 * REWARD}
    ]
    (credited,) = logs(world.deployment.reward_distributor, "Credited", receipt)
    assert (credited["account"], credited["amount"], credited["reason"]) == (
        world.initiator.address,
        2 * REWARD,
        CreditReason.REFUND,
    )
    assert world.initiator.task_state(task_id).status == TaskStatus.CANCELLED
    assert world.initiator.funds_of(task_id) == (0, 0)
    before = world.initiator.token_balance()
    assert world.initiator.claim() == 2 * REWARD
    assert world.initiator.token_balance() == before + 2 * REWARD
    world.assert_solvent()


def test_cancel_reverts(world: World) -> None:
    reverts("UnknownTask", taskId=99)(lambda: world.initiator.cancel_task(99))
    task_id = world.create_task()
    stranger = world.trainers[0]
    reverts("NotInitiator", taskId=task_id, caller=stranger.address)(lambda: stranger.cancel_task(task_id))
    start = world.initiator.task_config(task_id).start_time
    world.start(task_id)
    reverts("TaskAlreadyStarted", taskId=task_id, startTime=start)(
        lambda: world.initiator.cancel_task(task_id)
    )
    other = world.create_task()
    world.initiator.cancel_task(other)
    reverts("TaskNotActive", taskId=other, status=TaskStatus.CANCELLED)(
        lambda: world.initiator.cancel_task(other)
    )


# ------------------------------------------------------------------------------------------ joinTask


def test_join_before_start_counts_for_round_zero_after_for_the_next(world: World) -> None:
    task_id = world.create_task()
    early, late = world.trainers[0], world.trainers[1]
    early.allocate(task_id, STAKE // 2)
    receipt = early.client.transact(world.deployment.task_escrow.functions.joinTask(task_id, Role.TRAINER))
    assert logs(world.deployment.task_escrow, "Joined", receipt) == [
        {"taskId": task_id, "account": early.address, "role": Role.TRAINER, "fromRound": 0}
    ]
    world.start(task_id)
    late.allocate(task_id, STAKE // 2)
    assert late.join_task(task_id, Role.TRAINER) == 1
    validator = world.validators[0]
    validator.allocate(task_id, STAKE // 2)
    assert validator.join_task(task_id, Role.VALIDATOR) == 1
    assert (world.initiator.active_trainers(task_id, 0), world.initiator.active_trainers(task_id, 1)) == (
        1,
        2,
    )
    assert world.initiator.task_state(task_id).trainers == 1  # the round under way counts the early one
    assert late.participant_of(task_id) == (Role.TRAINER, 1)
    assert early.participant_of(task_id) == (Role.TRAINER, 0)
    assert world.outsider.participant_of(task_id) == (Role.NONE, 0)
    registry = world.deployment.attestation_registry
    assert world.chain.call(registry.functions.validatorInfo(task_id, validator.address)) == [True, 0, 1]
    assert world.chain.call(registry.functions.expectedValidators(task_id, 0)) == 0
    assert world.chain.call(registry.functions.expectedValidators(task_id, 1)) == 1
    # Round 0 passes without a submission; round 1 counts both.
    world.warp_to(world.initiator.task_state(task_id).submit_end)
    world.initiator.finalize_round(task_id)
    assert world.initiator.task_state(task_id).trainers == 2


def test_join_reverts(world: World) -> None:
    task_id = world.create_task(max_trainers=1, max_validators=1, quorum=1, num_rounds=1)
    t0, t1, v0, v1 = world.trainers[0], world.trainers[1], world.validators[0], world.validators[1]
    escrow = world.deployment.task_escrow
    reverts("InvalidRole")(lambda: t0.client.transact(escrow.functions.joinTask(task_id, 0)))
    reverts("UnknownTask", taskId=77)(lambda: t0.join_task(77, Role.TRAINER))
    reverts("StakeTooLow", taskId=task_id, account=t0.address, allocated=0, required=STAKE // 10)(
        lambda: t0.join_task(task_id, Role.TRAINER)
    )
    world.join(task_id, [t0], [v0])
    reverts("AlreadyJoined", taskId=task_id, account=t0.address, role=Role.TRAINER)(
        lambda: t0.join_task(task_id, Role.VALIDATOR)
    )
    t1.allocate(task_id, STAKE // 2)
    reverts("TooManyTrainers", taskId=task_id, maxTrainers=1)(lambda: t1.join_task(task_id, Role.TRAINER))
    v1.allocate(task_id, STAKE // 2)
    reverts("TooManyValidators", taskId=task_id, maxValidators=1)(
        lambda: v1.join_task(task_id, Role.VALIDATOR)
    )
    world.start(task_id)
    reverts("NoRoundsLeft", taskId=task_id, fromRound=1, numRounds=1)(
        lambda: t1.join_task(task_id, Role.TRAINER)
    )
    cancelled = world.create_task()
    world.initiator.cancel_task(cancelled)
    reverts("TaskNotActive", taskId=cancelled, status=TaskStatus.CANCELLED)(
        lambda: t1.join_task(cancelled, Role.TRAINER)
    )


# ------------------------------------------------------------------------------------------ submitWork


def test_submissions_take_arrival_order_and_the_last_closes_the_phase(world: World) -> None:
    task_id = world.setup_task()
    escrow = world.deployment.task_escrow
    t0, t1, t2 = world.trainers
    w = work("a", units=777)
    receipt = t1.client.transact(
        escrow.functions.submitWork(
            task_id,
            0,
            w.bundle_hash,
            w.bundle_cid,
            w.update_hash,
            w.update_cid,
            w.proof_root,
            w.state_root,
            777,
        )
    )
    assert logs(escrow, "WorkSubmitted", receipt) == [
        {
            "taskId": task_id,
            "round": 0,
            "trainer": t1.address,
            "index": 0,
            "bundleHash": w.bundle_hash,
            "bundleCid": CID,
            "updateHash": w.update_hash,
            "updateCid": CID,
            "proofRoot": w.proof_root,
            "stateRoot": w.state_root,
            "workUnits": 777,
        }
    ]
    assert logs(escrow, "SeedArmed", receipt) == []
    assert t2.submit_work(task_id, 0, work("b")) == 1
    receipt = t0.client.transact(
        escrow.functions.submitWork(
            task_id, 0, w.bundle_hash, CID, w.update_hash, CID, w.proof_root, w.state_root, 5
        )
    )
    # Every active trainer submitted: the phase closes now and the seed block is fixed.
    (armed,) = logs(escrow, "SeedArmed", receipt)
    assert armed == {"taskId": task_id, "round": 0, "seedBlock": receipt["blockNumber"] + 2}
    state = world.initiator.task_state(task_id)
    assert state.submissions == 3
    assert state.seed_block == receipt["blockNumber"] + 2
    assert state.submit_end == world.chain.w3.eth.get_block(receipt["blockNumber"])["timestamp"]
    assert world.initiator.submission_of(task_id, 0, 0) == (t1.address, 777, False)
    assert world.initiator.submission_of(task_id, 0, 2) == (t0.address, 5, False)
    assert state.trainers == 3


def test_submit_reverts(world: World) -> None:
    task_id = world.create_task()
    world.join(task_id, world.trainers[:2], world.validators[:1])
    t0, t1 = world.trainers[0], world.trainers[1]
    config = world.initiator.task_config(task_id)
    reverts(
        "SubmitPhaseNotOpen",
        taskId=task_id,
        round=0,
        opensAt=config.start_time,
        closesAt=config.start_time + SUBMIT,
    )(lambda: t0.submit_work(task_id, 0, work(1)))
    world.start(task_id)
    late = world.trainers[2]
    world.join(task_id, [late])
    reverts("NotTrainer", taskId=task_id, round=0, account=late.address)(
        lambda: late.submit_work(task_id, 0, work(1))
    )
    v0 = world.validators[0]
    reverts("NotTrainer", account=v0.address)(lambda: v0.submit_work(task_id, 0, work(1)))
    reverts("NotTrainer", account=world.outsider.address)(
        lambda: world.outsider.submit_work(task_id, 0, work(1))
    )
    reverts("WrongRound", taskId=task_id, current=0, given=1)(lambda: t0.submit_work(task_id, 1, work(1)))
    reverts("UnknownTask", taskId=55)(lambda: t0.submit_work(55, 0, work(1)))
    escrow = world.deployment.task_escrow
    w = work(1)
    for units in (0, 2**32):
        fn = escrow.functions.submitWork(
            task_id, 0, w.bundle_hash, CID, w.update_hash, CID, w.proof_root, w.state_root, units
        )
        reverts("InvalidWorkUnits", workUnits=units)(partial(t0.client.transact, fn))
    t0.submit_work(task_id, 0, work(1))
    reverts("AlreadySubmitted", taskId=task_id, round=0, trainer=t0.address)(
        lambda: t0.submit_work(task_id, 0, work(2))
    )
    world.warp_to(config.start_time + SUBMIT)
    reverts("SubmitPhaseNotOpen", taskId=task_id, round=0)(lambda: t1.submit_work(task_id, 0, work(3)))


# ------------------------------------------------------------------------------------------ finalizeRound


def test_empty_round_finalizes_after_its_deadline_and_rolls_everything_over(world: World) -> None:
    task_id = world.setup_task(num_rounds=3, max_empty_rounds=0)
    state = world.initiator.task_state(task_id)
    reverts("SubmitPhaseOpen", taskId=task_id, round=0, submitEnd=state.submit_end)(
        lambda: world.initiator.finalize_round(task_id)
    )
    world.warp_to(state.submit_end)
    receipt = world.initiator.finalize_round(task_id)
    (event,) = logs(world.deployment.task_escrow, "RoundFinalized", receipt)
    now = world.chain.w3.eth.get_block(receipt["blockNumber"])["timestamp"]
    assert event == {
        "taskId": task_id,
        "round": 0,
        "budget": REWARD,
        "acceptedWork": 0,
        "rate": 0,
        "revealed": 0,
        "validatorShare": 0,
        "carry": REWARD,
        "nextBase": h("model", 0),
        "nextSubmitDeadline": now + SUBMIT,
    }
    state = world.initiator.task_state(task_id)
    assert (state.round, state.round_start, state.submit_end, state.empty_rounds) == (1, now, now + SUBMIT, 1)
    assert world.initiator.funds_of(task_id) == (3 * REWARD, 0)
    # Round 1's budget includes round 0's reward.
    world.warp_to(state.submit_end)
    (event,) = logs(world.deployment.task_escrow, "RoundFinalized", world.initiator.finalize_round(task_id))
    assert event["budget"] == 2 * REWARD


def test_round_without_trainers_ends_early_once_started_if_a_trainer_waits(world: World) -> None:
    task_id = world.create_task()
    reverts("SubmitPhaseOpen", taskId=task_id, round=0)(lambda: world.initiator.finalize_round(task_id))
    world.start(task_id)
    reverts("SubmitPhaseOpen", taskId=task_id, round=0)(lambda: world.initiator.finalize_round(task_id))
    world.join(task_id, world.trainers[:1])  # from round 1
    world.initiator.finalize_round(task_id)
    assert world.initiator.task_state(task_id).round == 1


def test_finalize_waits_for_seed_and_ballot(world: World) -> None:
    task_id = world.setup_task()
    world.submit_all(task_id, 0)
    reverts("SeedNotDrawn", taskId=task_id, round=0)(lambda: world.initiator.finalize_round(task_id))
    world.draw(task_id)
    reverts("VotingNotClosed", taskId=task_id, round=0)(lambda: world.initiator.finalize_round(task_id))
    world.close_ballot(task_id, 0)
    world.initiator.finalize_round(task_id)
    reverts("UnknownTask", taskId=404)(lambda: world.initiator.finalize_round(404))


def test_last_round_completes_the_task_and_refunds_the_rest(world: World) -> None:
    task_id = world.setup_task(num_rounds=1, validator_share_bps=1_000)
    world.submit_all(task_id, 0, units=[1_000, 2_000, 4_000])
    world.draw(task_id)
    v0, v1, v2 = world.validators
    rows = {v0: [A, A, A], v1: [A, A, A], v2: [A, A, A]}
    world.ballot(task_id, 0, rows, {v: h("model", 1) for v in rows})
    receipt = world.initiator.finalize_round(task_id)
    escrow = world.deployment.task_escrow
    payout = round_payout(REWARD, 1_000, 7_000, 3)
    (event,) = logs(escrow, "RoundFinalized", receipt)
    assert (event["rate"], event["validatorShare"], event["carry"], event["nextBase"]) == (
        payout.rate,
        payout.share,
        payout.carry,
        h("model", 1),
    )
    assert event["nextSubmitDeadline"] == 0
    assert logs(escrow, "TaskCompleted", receipt) == [{"taskId": task_id}]
    assert logs(escrow, "Refunded", receipt) == [
        {"taskId": task_id, "initiator": world.initiator.address, "amount": payout.carry}
    ]
    state = world.initiator.task_state(task_id)
    assert (state.status, state.round) == (TaskStatus.COMPLETED, 1)
    assert world.initiator.funds_of(task_id) == (0, payout.reserved)
    assert world.initiator.base_model_of(task_id) == h("model", 1)
    assert world.initiator.credit_of() == payout.carry
    reverts("TaskNotActive", taskId=task_id, status=TaskStatus.COMPLETED)(
        lambda: world.initiator.finalize_round(task_id)
    )
    world.assert_solvent()


def lone_reveal_rounds(world: World, task_id: int, rounds: int, row: list[Verdict]) -> list[dict[str, Any]]:
    """Run `rounds` rounds where every trainer submits and only the first validator commits and reveals
    `row`; returns the RoundFinalized events."""
    v0 = world.validators[0]
    p = world.initiator
    events = []
    for round_ in range(rounds):
        world.submit_all(task_id, round_)
        world.draw(task_id)
        world.commit(task_id, round_, {v0: row})
        world.warp_to(p.ballot_of(task_id, round_).commit_end)
        world.reveal(task_id, round_, {v0: row})
        world.vote(task_id, round_, {v0: h("model", round_ + 1)})
        world.close_ballot(task_id, round_)
        events += logs(world.deployment.task_escrow, "RoundFinalized", p.finalize_round(task_id))
    return events


def test_finalize_round_takes_the_validator_cut_from_the_reward_not_the_carry(world: World) -> None:
    # quorum 1: the lone revealer decides; it rejects everything, so each trainer pool rolls over.
    task_id = world.setup_task(num_rounds=3, quorum=1, max_empty_rounds=0, validator_share_bps=2_000)
    events = lone_reveal_rounds(world, task_id, 3, [R, R, R])
    budget = REWARD
    for event in events:
        payout = round_payout(budget, 2_000, 0, 1, reward_per_round=REWARD, quorum=1)
        assert event["budget"] == budget
        assert (event["validatorShare"], event["carry"]) == (payout.share, payout.carry)
        assert event["validatorShare"] == REWARD * 2_000 // 10_000  # never a share of the carry
        budget = REWARD + payout.carry
    v0 = world.validators[0]
    for round_ in range(3):
        world.initiator.settle_validator(task_id, round_, v0.address)
    assert v0.credit_of() == 3 * REWARD * 2_000 // 10_000  # the design's validator pool, no more
    assert world.initiator.credit_of() == 3 * REWARD - v0.credit_of()  # the rest is refunded
    world.assert_solvent()


def test_finalize_round_pays_no_validator_share_below_the_quorum(world: World) -> None:
    # One reveal, quorum 2: nothing can be decided, and the validator cut rolls over with the rest.
    task_id = world.setup_task(num_rounds=2, quorum=2, max_empty_rounds=0, validator_share_bps=2_000)
    events = lone_reveal_rounds(world, task_id, 2, [A, A, A])
    assert [(e["revealed"], e["validatorShare"], e["carry"]) for e in events] == [
        (1, 0, REWARD),
        (1, 0, 2 * REWARD),
    ]
    assert round_payout(2 * REWARD, 2_000, 0, 1, reward_per_round=REWARD, quorum=2).carry == 2 * REWARD
    assert world.initiator.credit_of() == 2 * REWARD  # the whole deposit back
    world.assert_solvent()


# ------------------------------------------------------------------------------------------ settlement errors


def test_settlement_reverts(world: World) -> None:
    task_id = world.setup_task()
    world.submit_all(task_id, 0)
    p = world.initiator
    v0 = world.validators[0]
    reverts("RoundNotFinalized", taskId=task_id, round=0)(lambda: p.settle_submission(task_id, 0, 0))
    reverts("RoundNotFinalized", taskId=task_id, round=0)(lambda: p.settle_validator(task_id, 0, v0.address))
    reverts("UnknownTask", taskId=31)(lambda: p.settle_submission(31, 0, 0))
    world.draw(task_id)
    world.close_ballot(task_id, 0)
    p.finalize_round(task_id)
    reverts("UnknownSubmission", taskId=task_id, round=0, index=3)(lambda: p.settle_submission(task_id, 0, 3))
    p.settle_submission(task_id, 0, 0)
    reverts("SubmissionAlreadySettled", taskId=task_id, round=0, index=0)(
        lambda: p.settle_submission(task_id, 0, 0)
    )
    p.settle_validator(task_id, 0, v0.address)
    reverts("ValidatorAlreadySettled", taskId=task_id, round=0, validator=v0.address)(
        lambda: p.settle_validator(task_id, 0, v0.address)
    )
    reverts("NotExpected", taskId=task_id, round=0, validator=world.outsider.address)(
        lambda: p.settle_validator(task_id, 0, world.outsider.address)
    )
    # A validator that joined during round 1 was not expected in round 1's predecessor, and an empty round
    # (no ballot) expects nobody.
    late = world.people[7]
    world.join(task_id, validators=[late])
    world.warp_to(p.task_state(task_id).submit_end)
    p.finalize_round(task_id)
    reverts("NotExpected", round=1, validator=late.address)(
        lambda: p.settle_validator(task_id, 1, late.address)
    )
    reverts("NotExpected", round=1, validator=v0.address)(lambda: p.settle_validator(task_id, 1, v0.address))


def test_views_of_a_missing_task_are_empty(world: World) -> None:
    escrow = world.deployment.task_escrow
    call = world.chain.call
    assert call(escrow.functions.lockedUntil(12, world.trainers[0].address)) == 0
    assert call(escrow.functions.taskCount()) == 0
    assert call(escrow.functions.settlementGrace()) > 0
    assert world.initiator.task_state(12).status == TaskStatus.NONE
    assert world.initiator.round_result_of(12, 0) == (0, 0, False)
    assert world.initiator.seed_of(12, 0) == bytes(32)


def test_every_unsettled_submission_needs_a_minimum_of_stake_of_its_own(world: World) -> None:
    """A slash takes a fraction of the allocation when the submission is settled: a trainer whose round-0
    submission is not settled yet must have twice the minimum allocated to submit in round 1, or the second
    rejected submission would find the allocation already emptied by the first."""
    minimum = STAKE // 10
    task_id = world.create_task(num_rounds=2, trainer_slash_bps=10_000)
    t0, t1, t2 = world.trainers
    world.join(task_id, [t0], world.validators, allocation=minimum)
    world.join(task_id, [t1, t2], allocation=minimum)
    world.start(task_id)
    world.submit_all(task_id, 0)
    world.draw(task_id)
    world.ballot(task_id, 0, {v: [R, A, A] for v in world.validators})
    world.close_ballot(task_id, 0)
    world.initiator.finalize_round(task_id)
    assert t0.unsettled_of(task_id) == 1
    reverts("StakeTooLow", taskId=task_id, account=t0.address, allocated=minimum, required=2 * minimum)(
        lambda: t0.submit_work(task_id, 1, work((task_id, 1, 0)))
    )
    t1.settle_submission(task_id, 0, 1)  # settled: one minimum is enough again
    t1.submit_work(task_id, 1, work((task_id, 1, 1)))
    t0.allocate(task_id, minimum)
    t0.submit_work(task_id, 1, work((task_id, 1, 0)))
    (settled,) = logs(world.deployment.task_escrow, "SubmissionSettled", t0.settle_submission(task_id, 0, 0))
    assert settled["slashed"] == 2 * minimum  # the whole allocation: the fraction is of what is allocated
    world.assert_solvent()
