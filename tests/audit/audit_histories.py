"""Histories for the audit tests, made with the contract tests' `World` (real transactions on anvil)."""

from __future__ import annotations

from chainworld import REWARD, STAKE, World, h

from protocol.contracts import Verdict

A, R, U = Verdict.ACCEPT, Verdict.REJECT, Verdict.UNAVAILABLE


def rich_history(world: World) -> int:
    """Every kind of event: two tasks, one cancelled by its initiator before its start; in the other,
    accepted, rejected, unavailable and undecided submissions, a validator that disagrees (forfeits), one
    that never reveals (slashed), an agreed and a failed model vote, two empty rounds that cancel the task,
    a forfeit settled after the end (refunded), claims, an unstake and a withdrawal, a trainer's and a
    validator's deallocation after the settlement grace. Returns the main task's id."""
    p = world.initiator
    t0, t1, _ = world.trainers
    v0, v1, v2 = world.validators
    spare = world.people[7]
    task_id = world.setup_task(num_rounds=5, max_empty_rounds=2, quorum=2, validator_share_bps=2_000)

    # A second task, cancelled before its start: refunded at once.
    other = world.create_task(start_time=world.now() + 10_000)
    p.cancel_task(other)

    # Round 0: ACCEPT, REJECT, UNAVAILABLE; v2 disagrees; the model vote agrees on m1 (2 of 3).
    world.submit_all(task_id, 0, units=[1_000, 2_000, 3_000])
    world.draw(task_id)
    world.ballot(
        task_id, 0, {v0: [A, R, U], v1: [A, R, U], v2: [A, A, A]}, {v0: h("m1"), v1: h("m1"), v2: h("m9")}
    )
    p.finalize_round(task_id)
    for i in range(3):
        p.settle_submission(task_id, 0, i)
    for v in (v0, v1):
        p.settle_validator(task_id, 0, v.address)
    # v2's forfeit is settled later, after the task ended.

    # Round 1: t2 misses the deadline; v2 commits but never reveals (slashed); t1 undecided; votes differ.
    world.submit_all(task_id, 1, [t0, t1], units=[4_000, 5_000])
    world.warp_to(p.task_state(task_id).submit_end)
    world.draw(task_id)
    world.commit(task_id, 1, {v0: [A, A], v1: [A, R], v2: [R, R]})
    world.reveal(task_id, 1, {v0: [A, A], v1: [A, R]})
    world.warp_to(p.ballot_of(task_id, 1).reveal_end)
    world.vote(task_id, 1, {v0: h("m2a"), v1: h("m2b")})
    p.finalize_round(task_id)
    for i in range(2):
        p.settle_submission(task_id, 1, i)
    for v in (v0, v1, v2):
        p.settle_validator(task_id, 1, v.address)

    # Rounds 2 and 3: nobody submits; the second empty round in a row cancels the task (refund).
    for _ in range(2):
        world.warp_to(p.task_state(task_id).submit_end)
        p.finalize_round(task_id)
    p.settle_validator(task_id, 0, v2.address)  # forfeit after the end: credited to the initiator

    # Claims, an unstake and a withdrawal, a deallocation once the settlement grace is over.
    for person in (p, t0, v0, v1):
        person.claim()
    spare.request_unstake(STAKE // 4)
    world.warp_to(world.now() + 4_000)
    spare.withdraw()
    t1.deallocate(task_id, t1.allocation_of(task_id))
    v2.deallocate(task_id, v2.allocation_of(task_id))  # settled (and slashed) in both its rounds first
    assert REWARD > 0
    return task_id


def simple_round(world: World, *, reject_second: bool = False) -> int:
    """A one-round task with three submissions all accepted (or the second rejected), settled and claimed."""
    p = world.initiator
    v0, v1, v2 = world.validators
    task_id = world.setup_task(num_rounds=1)
    world.submit_all(task_id, 0)
    world.draw(task_id)
    row = [A, R, A] if reject_second else [A, A, A]
    world.ballot(task_id, 0, {v: row for v in (v0, v1, v2)}, {v: h("next") for v in (v0, v1, v2)})
    p.finalize_round(task_id)
    for i in range(3):
        p.settle_submission(task_id, 0, i)
    for v in (v0, v1, v2):
        p.settle_validator(task_id, 0, v.address)
    return task_id
