"""Griefing with seats and empty rounds: nobody can end a task's rounds before its trainers have joined, a
trainer that holds a seat and does not submit pays for every round it misses (counted in O(1), settled
by anyone), and after `maxNoShows` rounds missed in a row its seat is freed for another."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from chainworld import STAKE, UNBONDING, World, logs, reverts

from protocol.contracts import (
    BPS,
    NoShows,
    ProtocolClient,
    Role,
    TaskStatus,
    Verdict,
    count_no_shows,
    no_show_slash,
)

pytestmark = pytest.mark.chain

A = Verdict.ACCEPT
ALLOCATION = STAKE // 2


def finish_round(world: World, task_id: int, round_: int, submitters: int | Sequence[ProtocolClient]) -> None:
    """Submit with `submitters` (or the first so many trainers; the round waits for its deadline when
    others are active), accept everything and finalise."""
    chosen = world.trainers[:submitters] if isinstance(submitters, int) else list(submitters)
    if chosen:
        world.submit_all(task_id, round_, chosen)
        state = world.initiator.task_state(task_id)
        if state.seed_block == 0:  # someone active did not submit: the phase runs to its deadline
            world.warp_to(state.submit_end)
        world.draw(task_id)
        rows = {v: [A] * len(chosen) for v in world.validators}
        world.commit(task_id, round_, rows)
        world.reveal(task_id, round_, rows)
        world.close_ballot(task_id, round_)
    else:
        world.warp_to(world.initiator.task_state(task_id).submit_end)
    world.initiator.finalize_round(task_id)


def test_nobody_can_end_a_task_before_its_trainers_have_joined(world: World) -> None:
    task_id = world.create_task(max_empty_rounds=3)
    world.start(task_id)
    state = world.initiator.task_state(task_id)
    assert state.trainers == 0
    # No trainer has joined: the empty round runs to its deadline, whoever asks.
    reverts("SubmitPhaseOpen", taskId=task_id, round=0, submitEnd=state.submit_end)(
        lambda: world.outsider.finalize_round(task_id)
    )
    world.warp_to(state.submit_end)
    world.outsider.finalize_round(task_id)
    state = world.initiator.task_state(task_id)
    assert (state.round, state.status, state.empty_rounds) == (1, TaskStatus.ACTIVE, 1)
    reverts("SubmitPhaseOpen", round=1)(lambda: world.outsider.finalize_round(task_id))


def test_an_empty_round_ends_at_once_when_a_trainer_waits_for_the_next(world: World) -> None:
    task_id = world.create_task()
    world.start(task_id)
    world.join(task_id, world.trainers[:1])  # from round 1: nobody is active in round 0
    world.outsider.finalize_round(task_id)
    assert world.initiator.task_state(task_id).round == 1
    assert world.initiator.task_state(task_id).trainers == 1


def test_after_accepted_work_a_round_nobody_holds_a_seat_in_ends_at_once(world: World) -> None:
    task_id = world.create_task(num_rounds=4, max_no_shows=1, max_empty_rounds=0)
    t0 = world.trainers[0]
    world.join(task_id, [t0], world.validators)
    world.start(task_id)
    finish_round(world, task_id, 0, 1)  # accepted work
    finish_round(world, task_id, 1, 0)  # t0 is active: the empty round waits for its deadline
    assert t0.no_shows_of(task_id) == NoShows(1, 1, True)
    world.outsider.settle_no_shows(task_id, t0.address)  # frees its seat
    state = world.initiator.task_state(task_id)
    assert (state.round, state.trainers) == (2, 0)
    world.outsider.finalize_round(task_id)  # nobody holds a seat, and the task had work: at once
    assert world.initiator.task_state(task_id).round == 3


def test_no_shows_are_counted_and_slashed_once(world: World) -> None:
    task_id = world.create_task(num_rounds=3, no_show_slash_bps=1_500, max_empty_rounds=0)
    t0, t1 = world.trainers[:2]
    world.join(task_id, [t0, t1], world.validators, allocation=ALLOCATION)
    world.start(task_id)
    escrow = world.deployment.task_escrow
    finish_round(world, task_id, 0, 1)  # t1 misses round 0
    assert t1.no_shows_of(task_id) == NoShows(1, 1, True)
    assert t0.no_shows_of(task_id) == NoShows(0, 0, True)
    reverts("NothingToSettle", taskId=task_id, trainer=t0.address, missed=0, maxNoShows=0)(
        lambda: world.outsider.settle_no_shows(task_id, t0.address)
    )
    finish_round(world, task_id, 1, 2)  # both submit: a submission ends the row, not the debt
    assert t1.no_shows_of(task_id) == NoShows(1, 0, True)
    finish_round(world, task_id, 2, 1)  # t1 misses the last round
    assert world.initiator.task_state(task_id).status == TaskStatus.COMPLETED
    assert t1.no_shows_of(task_id) == NoShows(2, 1, True)
    # After the end, unsettled no-shows keep the allocation locked, past the grace.
    world.warp_to(world.now() + UNBONDING + 1)
    for r in range(3):
        for index in range(len(world.initiator.decisions_of(task_id, r))):
            world.outsider.settle_submission(task_id, r, index)
        for v in world.validators:
            world.outsider.settle_validator(task_id, r, v.address)
    assert t1.locked_until(task_id) == 2**256 - 1
    assert t0.locked_until(task_id) < 2**256 - 1
    before = t1.allocation_of(task_id)
    receipt = world.outsider.settle_no_shows(task_id, t1.address)
    expected = no_show_slash(before, 2, 1_500)
    assert expected == before * 3_000 // BPS
    assert logs(escrow, "NoShowsSettled", receipt) == [
        {"taskId": task_id, "trainer": t1.address, "rounds": 2, "slashed": expected}
    ]
    assert logs(escrow, "SeatFreed", receipt) == []  # maxNoShows 0: never
    assert t1.allocation_of(task_id) == before - expected
    assert t1.no_shows_of(task_id) == NoShows(0, 1, True)
    assert t1.locked_until(task_id) < 2**256 - 1
    reverts("NothingToSettle", trainer=t1.address, missed=1)(
        lambda: world.outsider.settle_no_shows(task_id, t1.address)
    )
    reverts("NotTrainer", account=world.validators[0].address)(
        lambda: world.outsider.settle_no_shows(task_id, world.validators[0].address)
    )
    reverts("UnknownTask", taskId=99)(lambda: world.outsider.settle_no_shows(99, t1.address))
    world.assert_solvent()


def test_a_slash_for_many_no_shows_takes_at_most_the_allocation(world: World) -> None:
    task_id = world.create_task(num_rounds=3, no_show_slash_bps=4_000, max_empty_rounds=0)
    t0 = world.trainers[0]
    world.join(task_id, [t0], world.validators, allocation=ALLOCATION)
    world.start(task_id)
    for r in range(3):
        finish_round(world, task_id, r, 0)
    assert t0.no_shows_of(task_id) == NoShows(3, 3, True)
    world.outsider.settle_no_shows(task_id, t0.address)  # 3 x 40% is capped at all of it
    assert t0.allocation_of(task_id) == 0
    world.assert_solvent()


def test_a_seat_is_freed_after_max_no_shows_in_a_row(world: World) -> None:
    task_id = world.create_task(
        num_rounds=5, max_trainers=2, no_show_slash_bps=500, max_no_shows=2, max_empty_rounds=0
    )
    t0, squatter, newcomer = world.trainers
    world.join(task_id, [t0, squatter], world.validators, allocation=ALLOCATION)
    world.start(task_id)
    escrow = world.deployment.task_escrow
    newcomer.allocate(task_id, ALLOCATION)
    reverts("TooManyTrainers", maxTrainers=2)(lambda: newcomer.join_task(task_id, Role.TRAINER))
    finish_round(world, task_id, 0, 1)
    assert squatter.no_shows_of(task_id) == NoShows(1, 1, True)
    finish_round(world, task_id, 1, 1)
    assert squatter.no_shows_of(task_id) == NoShows(2, 2, True)
    # Round 2: t0 submits, the phase waits for the squatter; freeing its seat closes it.
    world.submit_all(task_id, 2, [t0])
    assert world.initiator.task_state(task_id).seed_block == 0
    before = squatter.allocation_of(task_id)
    receipt = world.outsider.settle_no_shows(task_id, squatter.address)
    assert logs(escrow, "NoShowsSettled", receipt) == [
        {"taskId": task_id, "trainer": squatter.address, "rounds": 2, "slashed": before * 1_000 // BPS}
    ]
    assert logs(escrow, "SeatFreed", receipt) == [
        {"taskId": task_id, "trainer": squatter.address, "round": 2, "missed": 2}
    ]
    (armed,) = logs(escrow, "SeedArmed", receipt)
    state = world.initiator.task_state(task_id)
    assert (state.trainers, state.seed_block) == (1, armed["seedBlock"])
    assert squatter.no_shows_of(task_id) == NoShows(0, 2, False)
    assert world.initiator.active_trainers(task_id, 3) == 1
    # The seat is free: another trainer joins (from the next round); the squatter cannot come back.
    assert newcomer.join_task(task_id, Role.TRAINER) == 3
    reverts("AlreadyJoined", account=squatter.address)(lambda: squatter.join_task(task_id, Role.TRAINER))
    world.draw(task_id)
    rows = {v: [A] for v in world.validators}
    world.commit(task_id, 2, rows)
    world.reveal(task_id, 2, rows)
    world.close_ballot(task_id, 2)
    world.initiator.finalize_round(task_id)
    reverts("NotTrainer", account=squatter.address)(lambda: world.submit_all(task_id, 3, [squatter]))
    assert world.initiator.task_state(task_id).trainers == 2
    # Its freed seat ends its count: rounds after it are not no-shows.
    finish_round(world, task_id, 3, [t0, newcomer])
    assert squatter.no_shows_of(task_id) == NoShows(0, 2, False)
    world.assert_solvent()


@pytest.mark.parametrize(
    ("first", "submitted", "settled", "finalized", "left", "expected"),
    [
        (0, [], 0, 0, None, (0, 0)),
        (0, [], 0, 3, None, (3, 3)),
        (1, [1, 2], 0, 4, None, (1, 1)),
        (0, [0, 3], 0, 3, None, (2, 0)),  # a submission in the round under way ends the row
        (0, [0], 1, 4, 2, (0, 1)),  # the seat was freed in round 2: rounds 2 and 3 do not count
        (5, [], 0, 3, None, (0, 0)),  # joined for a round not reached
    ],
)
def test_count_no_shows_follows_the_contract_rule(
    first: int,
    submitted: list[int],
    settled: int,
    finalized: int,
    left: int | None,
    expected: tuple[int, int],
) -> None:
    assert count_no_shows(first, submitted, settled, finalized, left) == expected
