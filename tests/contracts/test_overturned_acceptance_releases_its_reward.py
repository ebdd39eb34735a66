"""An acceptance overturned on appeal releases the reward its round reserved (docs/protocol.md "Appeals",
issue 12's finding 6): the escrow reads the ballot's own decision when the settled one is not ACCEPT, and a
ballot ACCEPT settled as anything else takes its `rate * workUnits` out of `reserved` (RewardReleased):
back to `remaining` while the task is active, where it funds the rounds to come; credited to the
initiator with reason Refund once the task has ended (its `remaining` was refunded then, so nothing is
left there). An upheld acceptance still pays its trainer, an overturned rejection and a plain one release
nothing. Every test also checks the deployment's tokens (`World.assert_solvent`: held == owed, and every
balance rebuilt from the events), the task's deposit against its credits and its escrow, and the
auditor's replay, which must find nothing."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest
from chainworld import COURT, REWARD, STAKE, World, h, judge_appeal, logs, make_world

from protocol.audit import Kind
from protocol.chain import ChainClient
from protocol.contracts import BPS, CreditReason, ProtocolClient, TaskStatus, Verdict

pytestmark = pytest.mark.chain

A, R = Verdict.ACCEPT, Verdict.REJECT
MIN = STAKE // 10
MODEL = h("model", 1)
FORGERY = {4: [A, A, R], 5: [A, A, R], 6: [A, R, R]}
"""The cartel (validators 4 and 5, one minimum stake each) accepts trainer 2's forgery (index 1) against
the honest validator 6 (ten minimum stakes): the ballot accepts indices 0 and 1 and rejects index 2."""


@pytest.fixture(scope="module")
def world(chain: ChainClient, client_for: Callable[[int], ChainClient]) -> World:
    """A deployment with an AppealCourt (overrides conftest's)."""
    return make_world(chain, client_for, appeals=COURT, approve_court=True)


def decided_round(world: World, num_rounds: int, rows: dict[int, list[Verdict]]) -> int:
    """A task of `num_rounds` whose round 0 the three trainers submitted to and `rows` decided; finalised
    (its appeal window open)."""
    task_id = world.create_task(num_rounds=num_rounds, quorum=2)
    v4, v5, v6 = world.validators
    world.join(task_id, world.trainers)
    world.join(task_id, validators=[v4, v5], allocation=MIN)
    world.join(task_id, validators=[v6], allocation=10 * MIN)
    world.start(task_id)
    world.submit_all(task_id, 0)
    world.draw(task_id)
    people = world.people
    world.ballot(task_id, 0, {people[i]: row for i, row in rows.items()}, {people[i]: MODEL for i in rows})
    world.close_ballot(task_id, 0)
    world.initiator.finalize_round(task_id)
    return task_id


def appeal(world: World, task_id: int, index: int, appellant: ProtocolClient, honest: Verdict) -> bool:
    """Round 0's appeal of `index`, filed by `appellant` and judged by the drawn jurors: the honest
    validator 6 votes `honest`, the cartel the other way; settled. Whether it overturned the decision."""
    v4, v5, _ = world.validators
    appellant.appeal(task_id, 0, index)
    world.chain.mine(2)
    assert appellant.draw_appeal(task_id, 0, index) is not None
    draws = {v: appellant.appeal_draws_of(task_id, 0, index, v.address) for v in world.validators}
    other = R if honest == A else A
    jurors = {v: other if v in (v4, v5) else honest for v, d in draws.items() if d}
    judge_appeal(world, task_id, index, jurors)
    world.warp_to(world.initiator.appeal_of(task_id, 0, index).reveal_end)
    appellant.settle_appeal(task_id, 0, index)
    return world.initiator.appeal_of(task_id, 0, index).overturned


def close_window(world: World, task_id: int) -> None:
    """Past round 0's appeal window, every juror settled at the court (the escrow's settlement waits)."""
    p = world.initiator
    world.warp_to(p.appeal_window_end(task_id, 0))
    for v in world.validators:
        p.settle_juror(task_id, 0, v.address)


def settle_all(world: World, task_id: int, round_: int) -> None:
    """Every submission and validator of a finalised round not settled yet, in one settleRound (which
    skips those settled)."""
    world.initiator.settle_round(task_id, round_, [0, 1, 2], [v.address for v in world.validators])


def credited_by_task(world: World, task_id: int) -> int:
    """Everything the RewardDistributor credited out of the task's escrow, from its Credited events."""
    d = world.deployment
    return sum(
        int(log["args"]["amount"])
        for log in world.chain.get_logs(d.reward_distributor, "Credited", d.block)
        if int(log["args"]["taskId"]) == task_id
    )


def assert_conserved_and_clean(world: World, task_id: int, appealed: bool = True) -> None:
    """The deposit is what the task credited plus what its escrow holds; the deployment balances; the
    auditor's replay of every event finds nothing (the releases included, and the appeals if any)."""
    from protocol.audit.runner import audit, open_target

    p = world.initiator
    assert p.task_config(task_id).num_rounds * REWARD == credited_by_task(world, task_id) + sum(
        p.funds_of(task_id)
    )
    world.assert_solvent()
    target = open_target(world.chain.rpc_url, world.deployment.addresses)
    result = audit(target, task=task_id, store=None, gas=False, accuracy=False)
    assert [d.line() for d in result.ledger.discrepancies] == []
    assert (result.ledger.verified["appeals"] > 0) == appealed


def test_an_overturned_acceptance_in_an_active_task_funds_its_next_round(world: World) -> None:
    p = world.initiator
    task_id = decided_round(world, 2, FORGERY)
    cheater = world.trainers[1]
    rate, _, _ = p.round_result_of(task_id, 0)
    released = rate * p.submission_of(task_id, 0, 1)[1]
    assert released > 0
    world.submit_all(task_id, 1)  # round 1 opened with round 0's finalisation
    assert appeal(world, task_id, 1, world.validators[2], honest=R)
    close_window(world, task_id)
    remaining, reserved = p.funds_of(task_id)
    allocation = p.allocation_of(task_id, cheater.address)

    receipt = p.settle_submission(task_id, 0, 1)

    (settled,) = logs(p.escrow, "SubmissionSettled", receipt)
    slash = allocation * p.task_config(task_id).trainer_slash_bps // BPS
    assert (settled["decision"], settled["reward"], settled["slashed"]) == (R, 0, slash)
    (release,) = logs(p.escrow, "RewardReleased", receipt)
    assert (release["taskId"], release["round"], release["index"]) == (task_id, 0, 1)
    assert release["amount"] == released
    assert logs(world.deployment.reward_distributor, "Credited", receipt) == []
    assert p.funds_of(task_id) == (remaining + released, reserved - released)
    assert p.task_state(task_id).status == TaskStatus.ACTIVE

    # Round 1, the last, is paid from everything that remains: the released reward included. (The
    # cartel's jurors, slashed by the court below the minimum stake, top their allocations up to reveal.)
    for v in world.validators[:2]:
        v.allocate(task_id, MIN)
    world.draw(task_id)
    everyone = {v: [A, A, A] for v in world.validators}
    world.ballot(task_id, 1, everyone, dict.fromkeys(world.validators, h("model", 2)))
    world.close_ballot(task_id, 1)
    (finalized,) = logs(p.escrow, "RoundFinalized", p.finalize_round(task_id))
    assert finalized["budget"] == remaining + released
    assert finalized["budget"] - finalized["carry"] > REWARD  # round 1 pays more than its own reward
    settle_all(world, task_id, 0)
    world.warp_to(p.appeal_window_end(task_id, 1))
    settle_all(world, task_id, 1)
    assert p.funds_of(task_id) == (0, 0)
    assert_conserved_and_clean(world, task_id)


def ended_and_overturned(world: World) -> int:
    """A one-round task, ended by its finalisation, whose ballot's acceptance of the forgery (index 1) was
    then overturned; the window closed."""
    task_id = decided_round(world, 1, FORGERY)
    assert world.initiator.task_state(task_id).status == TaskStatus.COMPLETED
    assert appeal(world, task_id, 1, world.validators[2], honest=R)
    close_window(world, task_id)
    return task_id


def test_an_overturned_acceptance_in_the_last_round_is_refunded_to_the_initiator(world: World) -> None:
    p = world.initiator
    task_id = ended_and_overturned(world)
    rate, _, _ = p.round_result_of(task_id, 0)
    released = rate * p.submission_of(task_id, 0, 1)[1]
    remaining, reserved = p.funds_of(task_id)
    assert remaining == 0  # refunded when the task ended
    credit = p.credit_of(p.address)

    receipt = p.settle_submission(task_id, 0, 1)

    (release,) = logs(p.escrow, "RewardReleased", receipt)
    assert (release["index"], release["amount"]) == (1, released)
    (refund,) = logs(world.deployment.reward_distributor, "Credited", receipt)
    assert (refund["account"], refund["amount"], refund["taskId"], refund["round"], refund["reason"]) == (
        p.address,
        released,
        task_id,
        0,
        CreditReason.REFUND,
    )
    assert p.funds_of(task_id) == (0, reserved - released)  # nothing stranded in remaining either
    assert p.credit_of(p.address) == credit + released
    settle_all(world, task_id, 0)
    assert p.funds_of(task_id) == (0, 0)
    assert_conserved_and_clean(world, task_id)


def test_the_auditor_catches_a_release_missing_or_wrong(world: World) -> None:
    from protocol.audit.runner import audit, check_events, open_target

    p = world.initiator
    task_id = ended_and_overturned(world)
    p.settle_submission(task_id, 0, 1)
    target = open_target(world.chain.rpc_url, world.deployment.addresses)
    honest = audit(target, gas=False)
    assert honest.discrepancies == []
    events = list(honest.events)
    (at,) = [i for i, e in enumerate(events) if e.name == "RewardReleased"]
    dropped = check_events(target, events[:at] + events[at + 1 :], honest.to_block)
    subjects = {(d.kind, d.subject) for d in dropped.discrepancies}
    assert any(k == Kind.SETTLEMENT and "missing RewardReleased" in s for k, s in subjects), subjects
    assert any(k == Kind.CREDIT and "no rule calls for" in s for k, s in subjects), subjects
    assert any(k == Kind.VIEW and "fundsOf().reserved" in s for k, s in subjects), subjects
    wrong = dataclasses.replace(events[at], args={**events[at].args, "amount": 1})
    lied = check_events(target, [*events[:at], wrong, *events[at + 1 :]], honest.to_block)
    subjects = {(d.kind, d.subject) for d in lied.discrepancies}
    assert any(k == Kind.SETTLEMENT and "RewardReleased.amount" in s for k, s in subjects), subjects


def test_an_upheld_acceptance_and_an_overturned_rejection_release_nothing(world: World) -> None:
    p = world.initiator
    # The cartel rejects the honest trainer 2 (index 1); everyone accepts index 0.
    task_id = decided_round(world, 2, {4: [A, R, A], 5: [A, R, A], 6: [A, A, A]})
    assert not appeal(world, task_id, 0, world.people[8], honest=A)  # frivolous: upheld
    assert appeal(world, task_id, 1, world.validators[2], honest=A)  # the rejection overturned
    close_window(world, task_id)
    rate, _, _ = p.round_result_of(task_id, 0)
    remaining, reserved = p.funds_of(task_id)

    upheld = p.settle_submission(task_id, 0, 0)
    (settled,) = logs(p.escrow, "SubmissionSettled", upheld)
    reward = rate * p.submission_of(task_id, 0, 0)[1]
    assert (settled["decision"], settled["reward"], settled["slashed"]) == (A, reward, 0)
    assert logs(p.escrow, "RewardReleased", upheld) == []
    assert p.funds_of(task_id) == (remaining, reserved - reward)

    overturned = p.settle_submission(task_id, 0, 1)
    (settled,) = logs(p.escrow, "SubmissionSettled", overturned)
    assert (settled["decision"], settled["reward"], settled["slashed"]) == (Verdict.NONE, 0, 0)
    assert logs(p.escrow, "RewardReleased", overturned) == []
    assert p.funds_of(task_id) == (remaining, reserved - reward)  # the round reserved nothing for it

    settle_all(world, task_id, 0)
    assert_conserved_and_clean(world, task_id)


def test_a_rejection_nobody_appealed_releases_nothing(world: World) -> None:
    p = world.initiator
    task_id = decided_round(world, 2, FORGERY)
    world.warp_to(p.appeal_window_end(task_id, 0))
    remaining, reserved = p.funds_of(task_id)
    receipt = p.settle_submission(task_id, 0, 2)
    (settled,) = logs(p.escrow, "SubmissionSettled", receipt)
    assert (settled["decision"], settled["reward"]) == (R, 0)
    assert settled["slashed"] > 0
    assert logs(p.escrow, "RewardReleased", receipt) == []
    assert p.funds_of(task_id) == (remaining, reserved)
    settle_all(world, task_id, 0)
    assert_conserved_and_clean(world, task_id, appealed=False)
