"""StakeManager: stake, unbonding, allocations and their lazy lock, slashing to the burn address (or to
`unburned` when the token refuses it)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest
from chainworld import OUTSIDER, REWARD, STAKE, UNBONDING, World, h, logs, make_world, reverts

from protocol.contracts import BURN_ADDRESS, ZERO_ADDRESS, Role, TaskStatus, ValidatorOutcome, Verdict

if TYPE_CHECKING:
    from protocol.chain import ChainClient
    from protocol.compile import CompiledContract
    from protocol.contracts import ProtocolClient

pytestmark = pytest.mark.chain

A, R = Verdict.ACCEPT, Verdict.REJECT
MAX = 2**256 - 1  # lockedUntil while the allocation is locked for good


def test_stake_bonds_tokens_and_emits(world: World) -> None:
    p = world.people[7]
    before = p.token_balance()
    receipt = p.stake(123)
    (event,) = logs(world.deployment.stake_manager, "Staked", receipt)
    assert event["staker"] == p.address
    assert event["amount"] == 123
    assert p.stake_of() == (STAKE + 123, 0, 0, 0)
    assert p.token_balance() == before - 123
    world.assert_solvent()


def test_stake_reverts(world: World) -> None:
    reverts("ZeroAmount")(lambda: world.people[7].stake(0))
    outsider = world.outsider
    reverts(
        "ERC20InsufficientAllowance", spender=world.deployment.stake_manager.address, allowance=0, needed=5
    )(lambda: outsider.stake(5))


def test_request_unstake_and_withdraw(world: World) -> None:
    p = world.people[7]
    receipt = p.request_unstake(400)
    (event,) = logs(world.deployment.stake_manager, "UnstakeRequested", receipt)
    release = event["releaseTime"]
    assert release == world.chain.w3.eth.get_block(receipt["blockNumber"])["timestamp"] + UNBONDING
    assert p.stake_of() == (STAKE - 400, 0, 400, release)
    reverts("StillUnbonding", staker=p.address, releaseTime=release)(p.withdraw)

    world.warp_to(release)
    before = p.token_balance()
    receipt = p.withdraw()
    (event,) = logs(world.deployment.stake_manager, "Withdrawn", receipt)
    assert event["amount"] == 400
    assert p.token_balance() == before + 400
    assert p.stake_of()[2] == 0
    reverts("NothingToWithdraw", staker=p.address)(p.withdraw)
    world.assert_solvent()


def test_request_unstake_reverts(world: World) -> None:
    p = world.people[7]
    reverts("ZeroAmount")(lambda: p.request_unstake(0))
    p.allocate(42, STAKE - 10)
    reverts("InsufficientFreeStake", staker=p.address, free=10, needed=11)(lambda: p.request_unstake(11))


def test_each_unstake_request_restarts_the_period(world: World) -> None:
    p = world.people[7]
    p.request_unstake(1)
    world.chain.increase_time(UNBONDING // 2)
    p.request_unstake(2)
    _, _, unbonding, release = p.stake_of()
    assert unbonding == 3
    assert release >= world.now() + UNBONDING - 5


def test_allocate_and_deallocate_unjoined_task(world: World) -> None:
    p = world.people[7]
    receipt = p.allocate(77, 300)
    (event,) = logs(world.deployment.stake_manager, "Allocated", receipt)
    assert (event["staker"], event["taskId"], event["amount"]) == (p.address, 77, 300)
    assert p.allocation_of(77) == 300
    assert p.stake_of()[:2] == (STAKE, 300)
    assert p.free_stake_of() == STAKE - 300
    receipt = p.deallocate(77, 100)
    (event,) = logs(world.deployment.stake_manager, "Deallocated", receipt)
    assert event["amount"] == 100
    assert p.allocation_of(77) == 200


def test_allocation_reverts(world: World) -> None:
    p = world.people[7]
    reverts("ZeroAmount")(lambda: p.allocate(1, 0))
    reverts("InsufficientFreeStake", free=STAKE, needed=STAKE + 1)(lambda: p.allocate(1, STAKE + 1))
    reverts("ZeroAmount")(lambda: p.deallocate(1, 0))
    p.allocate(1, 5)
    reverts("InsufficientAllocation", staker=p.address, taskId=1, allocated=5, needed=6)(
        lambda: p.deallocate(1, 6)
    )


def test_allocation_is_locked_while_joined_and_active_then_for_the_grace(world: World) -> None:
    task_id = world.create_task(num_rounds=1)
    trainer = world.trainers[0]
    world.join(task_id, [trainer])
    reverts("AllocationLocked", staker=trainer.address, taskId=task_id, lockedUntil=2**256 - 1)(
        lambda: trainer.deallocate(task_id, 1)
    )
    trainer.allocate(task_id, 10)  # topping up stays possible while locked
    world.start(task_id)
    world.warp_to(world.initiator.task_state(task_id).submit_end)
    world.initiator.finalize_round(task_id)  # the only round: the task completes
    ended = world.initiator.task_state(task_id).ended_at
    assert trainer.locked_until(task_id) == ended + UNBONDING
    assert world.people[7].locked_until(task_id) == 0  # never joined
    reverts("AllocationLocked", lockedUntil=ended + UNBONDING)(lambda: trainer.deallocate(task_id, 1))
    world.warp_to(ended + UNBONDING)
    trainer.deallocate(task_id, trainer.allocation_of(task_id))
    assert trainer.allocation_of(task_id) == 0


def test_cancelled_before_start_unlocks_at_once(world: World) -> None:
    task_id = world.create_task()
    trainer = world.trainers[0]
    world.join(task_id, [trainer])
    world.initiator.cancel_task(task_id)
    trainer.deallocate(task_id, trainer.allocation_of(task_id))


def test_slash_only_by_a_slasher(world: World) -> None:
    stakes = world.deployment.stake_manager
    p = world.people[7]
    reverts("NotSlasher", caller=p.address)(
        lambda: p.client.transact(stakes.functions.slash(p.address, 1, 1))
    )


def test_slash_takes_at_most_the_allocation_and_burns_it(
    chain: ChainClient, compiled: dict[str, CompiledContract], world: World
) -> None:
    # A StakeManager whose "escrow" is a plain account, to call slash directly.
    escrow_account = world.people[8]
    stakes = chain.deploy(
        compiled["StakeManager"],
        world.deployment.token.address,
        escrow_account.address,
        ZERO_ADDRESS,
        ZERO_ADDRESS,
        0,
    )
    staker = world.people[7]
    staker.approve(stakes.address, 1_000)
    staker.client.transact(stakes.functions.stake(1_000))
    staker.client.transact(stakes.functions.allocate(5, 300))
    burned = staker.token_balance(BURN_ADDRESS)

    receipt = escrow_account.client.transact(stakes.functions.slash(staker.address, 5, 120))
    (event,) = logs(stakes, "Slashed", receipt)
    assert (event["staker"], event["taskId"], event["amount"]) == (staker.address, 5, 120)
    receipt = escrow_account.client.transact(stakes.functions.slash(staker.address, 5, 10**30))
    (event,) = logs(stakes, "Slashed", receipt)
    assert event["amount"] == 180
    receipt = escrow_account.client.transact(stakes.functions.slash(staker.address, 5, 1))  # nothing left
    assert logs(stakes, "Slashed", receipt) == []

    assert staker.token_balance(BURN_ADDRESS) == burned + 300
    assert tuple(chain.call(stakes.functions.stakeOf(staker.address))) == (700, 0, 0, 0)
    assert chain.call(stakes.functions.totalStake()) == 700
    assert staker.token_balance(stakes.address) == 700


def test_views(world: World) -> None:
    stakes = world.deployment.stake_manager
    call = world.chain.call
    assert call(stakes.functions.token()) == world.deployment.token.address
    assert call(stakes.functions.taskEscrow()) == world.deployment.task_escrow.address
    assert call(stakes.functions.unbondingPeriod()) == UNBONDING
    assert call(stakes.functions.BURN_ADDRESS()) == BURN_ADDRESS
    assert call(stakes.functions.totalStake()) == 8 * STAKE
    assert world.people[OUTSIDER].stake_of() == (0, 0, 0, 0)


def test_slash_keeps_a_burn_the_token_refuses_as_unburned_until_flushed(
    chain: ChainClient, compiled: dict[str, CompiledContract], world: World
) -> None:
    token = chain.deploy(compiled["BurnBlockToken"])
    escrow_account, staker = world.people[8], world.people[7]
    stakes = chain.deploy(
        compiled["StakeManager"], token.address, escrow_account.address, ZERO_ADDRESS, ZERO_ADDRESS, 0
    )
    chain.transact(token.functions.mint(staker.address, 1_000))
    staker.client.transact(token.functions.approve(stakes.address, 1_000))
    staker.client.transact(stakes.functions.stake(1_000))
    staker.client.transact(stakes.functions.allocate(5, 300))

    receipt = escrow_account.client.transact(stakes.functions.slash(staker.address, 5, 120))
    assert logs(stakes, "Slashed", receipt)[0]["amount"] == 120  # deducted from the staker all the same
    (deferred,) = logs(stakes, "BurnDeferred", receipt)
    assert (deferred["staker"], deferred["taskId"], deferred["amount"], deferred["unburned"]) == (
        staker.address,
        5,
        120,
        120,
    )
    receipt = escrow_account.client.transact(stakes.functions.slash(staker.address, 5, 30))
    assert logs(stakes, "BurnDeferred", receipt)[0]["unburned"] == 150
    assert tuple(chain.call(stakes.functions.stakeOf(staker.address))) == (850, 150, 0, 0)
    assert (chain.call(stakes.functions.totalStake()), chain.call(stakes.functions.unburned())) == (850, 150)
    assert int(chain.call(token.functions.balanceOf(stakes.address))) == 850 + 150

    anyone = world.people[OUTSIDER]
    flush = stakes.functions.flushBurn
    reverts("BurnRefused", amount=150)(lambda: anyone.client.transact(flush()))
    chain.transact(token.functions.setBlockBurn(False))
    (flushed,) = logs(stakes, "BurnFlushed", anyone.client.transact(flush()))
    assert flushed["amount"] == 150
    assert int(chain.call(token.functions.balanceOf(BURN_ADDRESS))) == 150
    assert int(chain.call(token.functions.balanceOf(stakes.address))) == 850
    assert chain.call(stakes.functions.unburned()) == 0
    reverts("NothingToBurn")(lambda: anyone.client.transact(flush()))


def test_settle_slashes_without_reverting_when_the_token_refuses_the_burn(
    chain: ChainClient, client_for: Callable[[int], ChainClient], compiled: dict[str, CompiledContract]
) -> None:
    token = chain.deploy(compiled["BurnBlockToken"])
    w = make_world(chain, client_for, token=token.address)
    task_id = w.setup_task(num_rounds=2, quorum=2)
    v0, v1, v2 = w.validators
    p = w.initiator
    w.submit_all(task_id, 0)
    w.draw(task_id)
    w.ballot(task_id, 0, {v0: [A, R, A], v1: [A, R, A]})  # v2 does not reveal
    w.close_ballot(task_id, 0)
    p.finalize_round(task_id)
    stakes = w.deployment.stake_manager
    trainer_slash = logs(stakes, "BurnDeferred", p.settle_submission(task_id, 0, 1))[0]["amount"]
    validator_slash = logs(stakes, "BurnDeferred", p.settle_validator(task_id, 0, v2.address))[0]["amount"]
    assert trainer_slash > 0
    assert validator_slash > 0
    assert p.unburned() == trainer_slash + validator_slash
    w.assert_solvent()  # tokens held == stakes + unburned + escrow + credits, and the events rebuild it
    chain.transact(token.functions.setBlockBurn(False))
    p.flush_burn()
    assert p.unburned() == 0
    assert p.token_balance(BURN_ADDRESS) == trainer_slash + validator_slash
    w.assert_solvent()


def test_deallocate_stays_locked_until_the_trainer_settles_its_submissions(world: World) -> None:
    task_id = world.setup_task(num_rounds=1)
    t0, t1, _ = world.trainers
    v0, v1, v2 = world.validators
    p = world.initiator
    world.submit_all(task_id, 0)
    world.draw(task_id)
    world.ballot(task_id, 0, {v: [A, R, A] for v in (v0, v1, v2)})
    world.close_ballot(task_id, 0)
    p.finalize_round(task_id)  # the only round: the task completes
    ended = p.task_state(task_id).ended_at
    world.warp_to(ended + UNBONDING)
    # Nobody settled the rejected t1 within the grace: it still cannot leave with its stake.
    assert t1.locked_until(task_id) == 2**256 - 1
    reverts("AllocationLocked", staker=t1.address, taskId=task_id, lockedUntil=2**256 - 1)(
        lambda: t1.deallocate(task_id, 1)
    )
    assert v0.locked_until(task_id) == 2**256 - 1  # its round is not settled either (tests below)
    v0.settle_validator(task_id, 0, v0.address)
    assert v0.locked_until(task_id) == ended + UNBONDING  # no submission, its round settled: the grace alone
    assert t1.unsettled_of(task_id) == 1
    (settled,) = logs(world.deployment.task_escrow, "SubmissionSettled", t1.settle_submission(task_id, 0, 1))
    assert settled["slashed"] == STAKE // 2 * 1_000 // 10_000
    assert (t1.unsettled_of(task_id), t1.locked_until(task_id)) == (0, ended + UNBONDING)
    t1.deallocate(task_id, t1.allocation_of(task_id))
    assert t0.locked_until(task_id) == 2**256 - 1  # an accepted, unsettled submission locks too
    world.assert_solvent()


def test_deallocate_stays_locked_until_the_validator_settles_its_rounds(world: World) -> None:
    """A validator that never revealed cannot leave unslashed because nobody settled it within the grace:
    settling its own rounds is how it unlocks (slashing itself); an honest one collects its reward doing
    so."""
    task_id = world.setup_task(num_rounds=2, max_empty_rounds=0)
    v0, v1, v2 = world.validators
    p, escrow = world.initiator, world.deployment.task_escrow
    allocation = v2.allocation_of(task_id)
    for round_ in (0, 1):
        world.submit_all(task_id, round_)
        world.draw(task_id)
        votes = {v0: h("model", round_), v1: h("model", round_)}
        world.ballot(task_id, round_, {v0: [A, R, A], v1: [A, R, A]}, votes)  # v2 never commits nor reveals
        world.close_ballot(task_id, round_)
        p.finalize_round(task_id)
    ended = p.task_state(task_id).ended_at
    world.warp_to(ended + UNBONDING + 1)
    for v in (v0, v1, v2):
        assert (v.expected_rounds_of(task_id), v.validator_unsettled_of(task_id)) == (2, 2)
        assert v.locked_until(task_id) == MAX
    reverts("AllocationLocked", staker=v2.address, taskId=task_id, lockedUntil=MAX)(
        lambda: v2.deallocate(task_id, 1)
    )

    # The silent validator settles its own rounds: each one slashes it; it unlocks after the last.
    (first,) = logs(escrow, "ValidatorSettled", v2.settle_validator(task_id, 0, v2.address))
    assert (first["outcome"], first["amount"]) == (ValidatorOutcome.SLASHED, allocation * 500 // 10_000)
    assert (v2.validator_unsettled_of(task_id), v2.locked_until(task_id)) == (1, MAX)
    reverts("AllocationLocked", lockedUntil=MAX)(lambda: v2.deallocate(task_id, 1))
    (second,) = logs(escrow, "ValidatorSettled", v2.settle_validator(task_id, 1, v2.address))
    assert second["outcome"] == ValidatorOutcome.SLASHED
    assert second["amount"] == (allocation - first["amount"]) * 500 // 10_000
    assert (v2.validator_unsettled_of(task_id), v2.locked_until(task_id)) == (0, ended + UNBONDING)
    left = v2.allocation_of(task_id)
    assert left == allocation - first["amount"] - second["amount"]
    v2.deallocate(task_id, left)

    # An honest validator settles its rounds and is paid for each; anyone may settle for another.
    share = REWARD * 2_000 // 10_000 // 2
    credit = v0.credit_of()
    for round_ in (0, 1):
        (event,) = logs(escrow, "ValidatorSettled", v0.settle_validator(task_id, round_, v0.address))
        assert (event["outcome"], event["amount"]) == (ValidatorOutcome.REWARDED, share)
    assert v0.credit_of() == credit + 2 * share
    assert (v0.validator_unsettled_of(task_id), v0.locked_until(task_id)) == (0, ended + UNBONDING)
    v0.deallocate(task_id, v0.allocation_of(task_id))
    p.settle_validator(task_id, 0, v1.address)
    assert (v1.validator_unsettled_of(task_id), v1.locked_until(task_id)) == (1, MAX)
    p.settle_validator(task_id, 1, v1.address)
    v1.deallocate(task_id, v1.allocation_of(task_id))
    assert v0.validator_unsettled_of(task_id, world.trainers[0].address) == 0  # not a validator
    world.assert_solvent()


def test_a_validator_is_expected_from_its_first_round_in_the_rounds_with_a_ballot(world: World) -> None:
    """Validators that join mid-task count only the ballots of their rounds: one joins after the current
    round's ballot opened, one before it opens (that ballot opens after the join and must not count), one
    in a round that never gets a ballot; rounds without a ballot count for nobody."""
    task_id = world.create_task(num_rounds=4, max_empty_rounds=0)
    t0, t1, t2 = world.trainers
    v0, v1, v2 = world.validators
    early_ballot, late_ballot = world.people[7], world.people[8]
    p = world.initiator
    world.join(task_id, world.trainers, [v0, v1])
    world.start(task_id)
    expected = {v: lambda v=v: (v.expected_rounds_of(task_id), v.validator_unsettled_of(task_id))
                for v in (v0, v1, v2, early_ballot, late_ballot)}  # fmt: skip

    def full_round(round_: int, rows: dict[ProtocolClient, list[Verdict]]) -> None:
        world.ballot(task_id, round_, rows)
        world.close_ballot(task_id, round_)
        p.finalize_round(task_id)

    # Round 0: the ballot opens, then early_ballot joins (from round 1).
    world.submit_all(task_id, 0)
    world.draw(task_id)
    world.join(task_id, validators=[early_ballot])
    assert early_ballot.participant_of(task_id) == (Role.VALIDATOR, 1)
    assert expected[v0]() == (1, 0)  # the open ballot is expected, not yet settleable
    assert expected[early_ballot]() == (0, 0)
    full_round(0, {v0: [A, A, A], v1: [A, A, A]})
    assert expected[v0]() == (1, 1)

    # Round 1: late_ballot joins in the submit phase (from round 2); round 1's ballot opens after it.
    world.join(task_id, validators=[late_ballot])
    assert late_ballot.participant_of(task_id) == (Role.VALIDATOR, 2)
    world.submit_all(task_id, 1)
    world.draw(task_id)
    assert (expected[early_ballot](), expected[late_ballot]()) == ((1, 0), (0, 0))
    full_round(1, {v0: [A, A, A], v1: [A, A, A], early_ballot: [A, A, A]})
    assert p.ballots_opened(task_id) == 2

    # Round 2: nobody submits, so it has no ballot; v2 joins during it (from round 3).
    world.join(task_id, validators=[v2])
    world.warp_to(p.task_state(task_id).submit_end)
    p.finalize_round(task_id)
    assert p.round_result_of(task_id, 2)[2] is False  # no ballot
    reverts("NotExpected", round=2, validator=v0.address)(lambda: p.settle_validator(task_id, 2, v0.address))
    assert (expected[v0](), expected[early_ballot](), expected[late_ballot](), expected[v2]()) == (
        (2, 2), (1, 1), (0, 0), (0, 0)
    )  # fmt: skip

    # Round 3, the last: late_ballot and v2 stay silent.
    world.submit_all(task_id, 3)
    world.draw(task_id)
    full_round(3, {v0: [A, A, A], v1: [A, A, A], early_ballot: [A, A, A]})
    assert p.task_state(task_id).status == TaskStatus.COMPLETED
    assert p.ballots_opened(task_id) == 3
    counts = {v0: 3, v1: 3, early_ballot: 2, late_ballot: 1, v2: 1}
    assert {v: expected[v]() for v in counts} == {v: (n, n) for v, n in counts.items()}
    ended = p.task_state(task_id).ended_at
    world.warp_to(ended + UNBONDING + 1)
    for v, first in ((early_ballot, 1), (late_ballot, 3), (v2, 3)):
        reverts("NotExpected", round=first - 1, validator=v.address)(
            lambda v=v, first=first: p.settle_validator(task_id, first - 1, v.address)
        )
    for v, rounds in (
        (v0, (0, 1, 3)),
        (v1, (0, 1, 3)),
        (early_ballot, (1, 3)),
        (late_ballot, (3,)),
        (v2, (3,)),
    ):
        assert v.locked_until(task_id) == MAX
        for round_ in rounds:
            v.settle_validator(task_id, round_, v.address)
        assert expected[v]() == (counts[v], 0)
        assert v.locked_until(task_id) == ended + UNBONDING
        v.deallocate(task_id, v.allocation_of(task_id))
    for round_ in (0, 1, 3):
        for index in range(3):
            p.settle_submission(task_id, round_, index)
    for t in (t0, t1, t2):
        t.deallocate(task_id, t.allocation_of(task_id))
    world.assert_solvent()


def test_a_task_cancelled_for_no_accepted_work_locks_the_validators_of_its_ballots(world: World) -> None:
    """A task auto-cancelled by a round that had a ballot (everything rejected): that round is finalised
    and its validators must be settled before they leave."""
    task_id = world.setup_task(num_rounds=3, max_empty_rounds=1)
    v0, v1, v2 = world.validators
    p = world.initiator
    world.submit_all(task_id, 0)
    world.draw(task_id)
    world.ballot(task_id, 0, {v0: [R, R, R], v1: [R, R, R]})
    world.close_ballot(task_id, 0)
    p.finalize_round(task_id)
    state = p.task_state(task_id)
    assert state.status == TaskStatus.CANCELLED
    world.warp_to(state.ended_at + UNBONDING + 1)
    for v in (v0, v1, v2):
        assert (v.validator_unsettled_of(task_id), v.locked_until(task_id)) == (1, MAX)
    (event,) = logs(
        world.deployment.task_escrow, "ValidatorSettled", v2.settle_validator(task_id, 0, v2.address)
    )
    assert event["outcome"] == ValidatorOutcome.SLASHED
    assert v2.locked_until(task_id) == state.ended_at + UNBONDING
    v2.deallocate(task_id, v2.allocation_of(task_id))
    world.assert_solvent()


def test_a_validator_expected_in_no_round_is_locked_for_the_grace_only(world: World) -> None:
    """Rounds without a ballot expect nobody: a task auto-cancelled after an empty round, and a task
    cancelled before its start, lock their validators for the grace (none for the latter) and no longer."""
    task_id = world.setup_task(num_rounds=3, max_empty_rounds=1)
    v0 = world.validators[0]
    p = world.initiator
    world.warp_to(p.task_state(task_id).submit_end)
    p.finalize_round(task_id)  # round 0 had no submission: the task is cancelled
    ended = p.task_state(task_id).ended_at
    assert p.task_state(task_id).status == TaskStatus.CANCELLED
    assert (v0.expected_rounds_of(task_id), v0.validator_unsettled_of(task_id)) == (0, 0)
    assert v0.locked_until(task_id) == ended + UNBONDING
    reverts("AllocationLocked", lockedUntil=ended + UNBONDING)(lambda: v0.deallocate(task_id, 1))
    world.warp_to(ended + UNBONDING)
    v0.deallocate(task_id, v0.allocation_of(task_id))

    cancelled = world.create_task()
    world.join(cancelled, validators=[v0])
    p.cancel_task(cancelled)
    assert v0.validator_unsettled_of(cancelled) == 0
    v0.deallocate(cancelled, v0.allocation_of(cancelled))
    world.assert_solvent()
