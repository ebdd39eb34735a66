"""HoneypotRegistry: an initiator's committed known-bad submission, revealed after the ballot with its bait's
consent, slashes exactly the validators that revealed ACCEPT on it, when (and only when) the round decided
REJECT; every branch of commit, reveal and slashLazy, the window that ends when the validators' allocations
unlock, and the StakeManager's two slashers (with a court: test_honeypots_wait_for_the_appeal_court)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from chainworld import STAKE, UNBONDING, World, h, logs, reverts
from eth_account.messages import encode_defunct

from protocol.contracts import (
    BPS,
    ZERO_ADDRESS,
    ProtocolClient,
    TaskStatus,
    Verdict,
    honeypot_commitment,
    honeypot_consent_digest,
)

if TYPE_CHECKING:
    from protocol.chain import ChainClient
    from protocol.compile import CompiledContract

pytestmark = pytest.mark.chain

A, R, U = Verdict.ACCEPT, Verdict.REJECT, Verdict.UNAVAILABLE
SALT = h("honeypot salt")
MAX_UINT = 2**256 - 1


def joined_task(world: World, **overrides: object) -> int:
    """A task joined by the three trainers and three validators, not started yet (round 0 not open)."""
    task_id = world.create_task(**overrides)
    world.join(task_id, world.trainers, world.validators)
    return task_id


def honeypot_round(world: World, rows: dict[ProtocolClient, list[Verdict]], **overrides: object) -> int:
    """A one-round task (unless overridden) whose initiator committed, before the start, a honeypot by
    trainer 3 (the round's third submission, index 2); the task starts, the three trainers submit, the seed
    is drawn, the validators commit and reveal `rows`, and the ballot is closed (vote deadline passed)."""
    task_id = joined_task(world, **{"num_rounds": 1, **overrides})
    bait = world.trainers[2]
    world.initiator.commit_honeypot(task_id, 0, bait.address, SALT)
    world.start(task_id)
    world.submit_all(task_id, 0)
    world.draw(task_id)
    world.ballot(task_id, 0, rows)
    world.close_ballot(task_id, 0)
    return task_id


def consent(world: World, signer: ProtocolClient, task_id: int, round_: int, salt: bytes = SALT) -> bytes:
    """`signer`'s signature consenting to the reveal of `round_`'s honeypot (what a bait writes)."""
    registry = world.deployment.honeypot_registry.address
    digest = honeypot_consent_digest(world.chain.chain_id, registry, task_id, round_, salt)
    return bytes(signer.client.account.sign_message(encode_defunct(primitive=digest)).signature)


def lazy_rows(world: World, lazy: Verdict = A) -> dict[ProtocolClient, list[Verdict]]:
    """Two honest validators reject the honeypot (index 2); the third gives it `lazy`."""
    v0, v1, v2 = world.validators
    return {v0: [A, A, R], v1: [A, A, R], v2: [A, A, lazy]}


def test_a_validator_that_accepted_a_rejected_honeypot_is_slashed_once(world: World) -> None:
    task_id = honeypot_round(world, lazy_rows(world))
    v0, v1, lazy = world.validators
    bait = world.trainers[2]
    honeypots = world.deployment.honeypot_registry
    signature = consent(world, bait, task_id, 0)
    receipt = world.outsider.reveal_honeypot(task_id, 0, 2, bait.address, SALT, signature)
    assert logs(honeypots, "HoneypotRevealed", receipt) == [
        {"taskId": task_id, "round": 0, "index": 2, "submitter": bait.address, "salt": SALT, "decision": R}
    ]
    record = world.initiator.honeypot_of(task_id, 0)
    assert (record.submitter, record.index, record.revealed) == (bait.address, 2, True)

    allocation = lazy.allocation_of(task_id)
    bonded = lazy.stake_of()[0]
    burned = lazy.token_balance("0x000000000000000000000000000000000000dEaD")
    bps = world.initiator.lazy_slash_bps()
    receipt = world.chain.transact(honeypots.functions.slashLazy(task_id, 0, lazy.address))
    expected = allocation * bps // BPS
    assert logs(honeypots, "LazySlashed", receipt) == [
        {"taskId": task_id, "round": 0, "validator": lazy.address, "slashed": expected, "bps": bps}
    ]
    (slashed,) = logs(world.deployment.stake_manager, "Slashed", receipt)
    assert (slashed["staker"], slashed["taskId"], slashed["amount"]) == (lazy.address, task_id, expected)
    assert lazy.allocation_of(task_id) == allocation - expected
    assert lazy.stake_of()[0] == bonded - expected
    assert lazy.token_balance("0x000000000000000000000000000000000000dEaD") == burned + expected
    assert world.initiator.lazy_slashed(task_id, 0, lazy.address)

    reverts("AlreadySlashed", validator=lazy.address)(
        lambda: world.outsider.slash_lazy(task_id, 0, lazy.address)
    )
    for honest in (v0, v1):  # they rejected it: untouched
        reverts("NotLazy", validator=honest.address, verdict=R)(
            lambda honest=honest: world.outsider.slash_lazy(task_id, 0, honest.address)
        )
        assert honest.allocation_of(task_id) == STAKE // 2
        assert not world.initiator.lazy_slashed(task_id, 0, honest.address)
    world.assert_solvent()


def test_unavailable_is_never_slashed(world: World) -> None:
    task_id = honeypot_round(world, lazy_rows(world, lazy=U))
    lazy = world.validators[2]
    world.trainers[2].reveal_honeypot(task_id, 0, 2, world.trainers[2].address, SALT)
    reverts("NotLazy", validator=lazy.address, verdict=U)(
        lambda: world.outsider.slash_lazy(task_id, 0, lazy.address)
    )
    assert lazy.allocation_of(task_id) == STAKE // 2


def test_a_validator_that_did_not_reveal_is_not_lazy(world: World) -> None:
    v0, v1, silent = world.validators
    task_id = honeypot_round(world, {v0: [A, A, R], v1: [A, A, R]})
    world.trainers[2].reveal_honeypot(task_id, 0, 2, world.trainers[2].address, SALT)
    # (it is slashed by the escrow for not revealing, not here)
    reverts("NotLazy", validator=silent.address, verdict=Verdict.NONE)(
        lambda: world.outsider.slash_lazy(task_id, 0, silent.address)
    )


def test_an_initiator_cannot_frame_validators_with_good_work(world: World) -> None:
    # The "honeypot" was accepted by two thirds: the round says it was good work, so nobody is slashed.
    v0, v1, v2 = world.validators
    task_id = honeypot_round(world, {v0: [A, A, A], v1: [A, A, A], v2: [A, A, R]})
    receipt = world.trainers[2].reveal_honeypot(task_id, 0, 2, world.trainers[2].address, SALT)
    assert logs(world.deployment.honeypot_registry, "HoneypotRevealed", receipt)[0]["decision"] == A
    for v in (v0, v1):
        reverts("HoneypotNotRejected", decision=A)(
            lambda v=v: world.outsider.slash_lazy(task_id, 0, v.address)
        )
        assert v.allocation_of(task_id) == STAKE // 2


def test_an_undecided_honeypot_slashes_nobody(world: World) -> None:
    v0, v1, v2 = world.validators
    task_id = honeypot_round(world, {v0: [A, A, R], v1: [A, A, A], v2: [A, A, U]})
    world.trainers[2].reveal_honeypot(task_id, 0, 2, world.trainers[2].address, SALT)
    reverts("HoneypotNotRejected", decision=Verdict.NONE)(
        lambda: world.outsider.slash_lazy(task_id, 0, v1.address)
    )


def test_reveal_needs_the_preimage_and_the_submitters_index(world: World) -> None:
    task_id = honeypot_round(world, lazy_rows(world))
    bait, other = world.trainers[2], world.trainers[0]
    stored = honeypot_commitment(task_id, 0, bait.address, SALT)
    wrong = h("wrong salt")
    reverts(
        "CommitmentMismatch", committed=stored, computed=honeypot_commitment(task_id, 0, bait.address, wrong)
    )(lambda: bait.reveal_honeypot(task_id, 0, 2, bait.address, wrong))
    reverts("CommitmentMismatch", committed=stored)(
        lambda: other.reveal_honeypot(task_id, 0, 0, other.address, SALT)
    )
    reverts("NotTheSubmitter", index=0, trainer=other.address, submitter=bait.address)(
        lambda: bait.reveal_honeypot(task_id, 0, 0, bait.address, SALT)
    )
    reverts("NotTheSubmitter", index=7, trainer=ZERO_ADDRESS)(
        lambda: bait.reveal_honeypot(task_id, 0, 7, bait.address, SALT)
    )
    reverts("NotRevealed")(lambda: world.outsider.slash_lazy(task_id, 0, world.validators[2].address))
    reverts("NoHoneypot", round=1)(lambda: bait.reveal_honeypot(task_id, 1, 2, bait.address, SALT))
    bait.reveal_honeypot(task_id, 0, 2, bait.address, SALT)
    reverts("AlreadyRevealed")(lambda: bait.reveal_honeypot(task_id, 0, 2, bait.address, SALT))


def test_a_reveal_needs_the_named_trainers_consent(world: World) -> None:
    # The initiator committed to trainer 3's submission; trainer 3 never agreed to be a bait: nobody else can
    # name it (a cartel's REJECT of an honest trainer's work cannot be turned into a honeypot).
    task_id = honeypot_round(world, lazy_rows(world))
    bait, other = world.trainers[2], world.trainers[0]
    p = world.initiator
    for sender in (p, world.outsider, other):
        reverts("NoConsent", taskId=task_id, round=0, submitter=bait.address, signer=sender.address)(
            lambda sender=sender: sender.reveal_honeypot(task_id, 0, 2, bait.address, SALT)
        )
    for elsewhere in (consent(world, bait, task_id + 1, 0), consent(world, bait, task_id, 1)):
        reverts("NoConsent", submitter=bait.address)(  # the bait's consent to another honeypot
            lambda elsewhere=elsewhere: p.reveal_honeypot(task_id, 0, 2, bait.address, SALT, elsewhere)
        )
    reverts("NoConsent", submitter=bait.address, signer=ZERO_ADDRESS)(
        lambda: p.reveal_honeypot(task_id, 0, 2, bait.address, SALT, b"\x01" * 64)
    )
    reverts("NoConsent", submitter=bait.address, signer=p.address)(  # signed by the initiator
        lambda: p.reveal_honeypot(task_id, 0, 2, bait.address, SALT, consent(world, p, task_id, 0))
    )
    assert not p.honeypot_of(task_id, 0).revealed
    p.reveal_honeypot(task_id, 0, 2, bait.address, SALT, consent(world, bait, task_id, 0))
    assert p.honeypot_of(task_id, 0).revealed


def test_the_consent_digest_helper_matches_the_contract(world: World) -> None:
    registry = world.deployment.honeypot_registry
    call = world.chain.call(registry.functions.consentDigest(4, 2, SALT))
    assert bytes(call) == honeypot_consent_digest(world.chain.chain_id, registry.address, 4, 2, SALT)


def test_reveal_waits_for_the_closed_ballot(world: World) -> None:
    task_id = joined_task(world, num_rounds=1)
    bait = world.trainers[2]
    world.initiator.commit_honeypot(task_id, 0, bait.address, SALT)
    world.start(task_id)
    world.submit_all(task_id, 0)
    too_early = reverts("BallotNotClosed", taskId=task_id, round=0)
    too_early(lambda: bait.reveal_honeypot(task_id, 0, 2, bait.address, SALT))  # no ballot yet
    world.draw(task_id)
    rows = lazy_rows(world)
    world.commit(task_id, 0, rows)
    world.reveal(task_id, 0, rows)  # all revealed: the vote phase is open
    too_early(lambda: bait.reveal_honeypot(task_id, 0, 2, bait.address, SALT))
    world.close_ballot(task_id, 0)
    bait.reveal_honeypot(task_id, 0, 2, bait.address, SALT)


def test_commit_only_by_the_initiator_before_the_round_opens_once(world: World) -> None:
    task_id = joined_task(world, num_rounds=3)
    bait = world.trainers[2]
    commitment = honeypot_commitment(task_id, 0, bait.address, SALT)
    reverts("NotInitiator", caller=world.outsider.address)(
        lambda: world.outsider.commit_decoy(task_id, 0, commitment)
    )
    reverts("ZeroCommitment")(lambda: world.initiator.commit_decoy(task_id, 0, bytes(32)))
    reverts("TaskNotActive", status=TaskStatus.NONE)(lambda: world.initiator.commit_decoy(99, 0, commitment))
    reverts("NoSuchRound", taskId=task_id, round=3, numRounds=3)(
        lambda: world.initiator.commit_decoy(task_id, 3, h("past the end"))
    )
    receipt = world.initiator.commit_decoy(task_id, 0, commitment)  # before the task's start
    assert logs(world.deployment.honeypot_registry, "HoneypotCommitted", receipt) == [
        {"taskId": task_id, "round": 0, "commitment": commitment}
    ]
    reverts("AlreadyCommitted")(lambda: world.initiator.commit_decoy(task_id, 0, h("another")))
    world.initiator.commit_decoy(task_id, 2, h("two rounds ahead"))  # any round that has not opened


def test_a_round_is_committed_to_before_it_opens_and_not_after(world: World) -> None:
    task_id = joined_task(world, num_rounds=3)
    start = world.initiator.task_config(task_id).start_time
    world.start(task_id)  # round 0 opens at its start time: no submission yet, and still too late
    opened = reverts("RoundOpened", taskId=task_id, round=0, current=0, roundStart=start)
    opened(lambda: world.initiator.commit_decoy(task_id, 0, h("at the opening")))
    world.initiator.commit_decoy(task_id, 1, h("round 1, during round 0"))
    world.submit_all(task_id, 0)
    world.draw(task_id)
    v0, v1, v2 = world.validators
    world.ballot(task_id, 0, {v0: [A, A, A], v1: [A, A, A], v2: [A, A, A]})
    world.close_ballot(task_id, 0)
    world.outsider.finalize_round(task_id)  # round 1 opens
    state = world.initiator.task_state(task_id)
    assert state.round == 1
    reverts("RoundOpened", round=1, current=1, roundStart=state.round_start)(
        lambda: world.initiator.commit_decoy(task_id, 1, h("round 1, opened"))
    )  # (already committed, but the opening is checked first)
    reverts("RoundOpened", round=0, current=1, roundStart=state.round_start)(
        lambda: world.initiator.commit_decoy(task_id, 0, h("a past round"))
    )
    world.initiator.commit_decoy(task_id, 2, h("round 2, during round 1"))


def test_the_window_ends_when_the_allocations_unlock(world: World) -> None:
    task_id = honeypot_round(world, lazy_rows(world))
    lazy = world.validators[2]
    assert world.initiator.honeypot_window_end(task_id) == MAX_UINT
    world.outsider.finalize_round(task_id)
    state = world.initiator.task_state(task_id)
    assert state.status == TaskStatus.COMPLETED
    for v in world.validators:
        world.outsider.settle_validator(task_id, 0, v.address)
    end = state.ended_at + UNBONDING  # the deployment's settlement grace
    assert world.initiator.honeypot_window_end(task_id) == end
    assert lazy.locked_until(task_id) == end  # the lazy validator cannot leave before the window closes
    world.warp_to(end)
    bait = world.trainers[2]
    reverts("WindowClosed", windowEnd=end)(lambda: bait.reveal_honeypot(task_id, 0, 2, bait.address, SALT))
    lazy.deallocate(task_id, lazy.allocation_of(task_id))


def test_a_revealed_honeypot_cannot_slash_after_the_window(world: World) -> None:
    task_id = honeypot_round(world, lazy_rows(world))
    lazy = world.validators[2]
    world.trainers[2].reveal_honeypot(task_id, 0, 2, world.trainers[2].address, SALT)
    world.outsider.finalize_round(task_id)
    end = world.initiator.task_state(task_id).ended_at + UNBONDING
    world.warp_to(end)
    reverts("WindowClosed", windowEnd=end)(lambda: world.outsider.slash_lazy(task_id, 0, lazy.address))


def test_a_lazy_validator_is_slashed_before_it_can_leave(world: World) -> None:
    # Inside the window, slashing still works after the task ended and the validator settled its rounds.
    task_id = honeypot_round(world, lazy_rows(world))
    lazy = world.validators[2]
    world.outsider.finalize_round(task_id)
    world.outsider.settle_validator(task_id, 0, lazy.address)
    end = world.initiator.task_state(task_id).ended_at + UNBONDING
    reverts("AllocationLocked", lockedUntil=end)(lambda: lazy.deallocate(task_id, 1))
    world.trainers[2].reveal_honeypot(task_id, 0, 2, world.trainers[2].address, SALT)
    assert world.outsider.slash_lazy(task_id, 0, lazy.address) > 0
    world.assert_solvent()


def test_an_unrevealed_commitment_simply_expires(world: World) -> None:
    task_id = joined_task(world, num_rounds=1)
    world.initiator.commit_decoy(task_id, 0, h("decoy"))
    world.start(task_id)
    world.submit_all(task_id, 0, [world.trainers[0]])
    world.warp_to(world.initiator.task_state(task_id).submit_end)
    world.draw(task_id)
    v0, v1, v2 = world.validators
    world.ballot(task_id, 0, {v0: [A], v1: [A], v2: [A]})
    world.close_ballot(task_id, 0)
    world.outsider.finalize_round(task_id)
    for v in world.validators:
        world.outsider.settle_validator(task_id, 0, v.address)
    world.warp_to(world.initiator.task_state(task_id).ended_at + UNBONDING)
    for v in world.validators:
        v.deallocate(task_id, v.allocation_of(task_id))
    world.assert_solvent()


def test_the_stake_manager_accepts_slashes_from_its_two_slashers_only(
    chain: ChainClient, compiled: dict[str, CompiledContract], world: World
) -> None:
    escrow_account, honeypot_account, staker = world.people[8], world.people[6], world.people[7]
    stakes = chain.deploy(
        compiled["StakeManager"],
        world.deployment.token.address,
        escrow_account.address,
        honeypot_account.address,
        ZERO_ADDRESS,
        0,
    )
    assert chain.call(stakes.functions.honeypotRegistry()) == honeypot_account.address
    staker.approve(stakes.address, 1_000)
    staker.client.transact(stakes.functions.stake(1_000))
    staker.client.transact(stakes.functions.allocate(5, 300))
    escrow_account.client.transact(stakes.functions.slash(staker.address, 5, 100))
    honeypot_account.client.transact(stakes.functions.slash(staker.address, 5, 50))
    reverts("NotSlasher", caller=staker.address)(
        lambda: staker.client.transact(stakes.functions.slash(staker.address, 5, 1))
    )
    assert tuple(chain.call(stakes.functions.stakeOf(staker.address))) == (850, 150, 0, 0)


def test_deployment_wiring_and_slash_fraction(
    chain: ChainClient, compiled: dict[str, CompiledContract], world: World
) -> None:
    d = world.deployment
    assert chain.call(d.stake_manager.functions.honeypotRegistry()) == d.honeypot_registry.address
    assert chain.call(d.honeypot_registry.functions.taskEscrow()) == d.task_escrow.address
    for bps in (0, BPS + 1):
        reverts("InvalidSlashBps", bps=bps)(
            lambda bps=bps: chain.deploy(compiled["HoneypotRegistry"], d.task_escrow.address, bps)
        )


def test_the_commitment_helper_matches_the_contract(world: World) -> None:
    bait = world.trainers[2].address
    call = world.chain.call(world.deployment.honeypot_registry.functions.commitmentFor(4, 2, bait, SALT))
    assert bytes(call) == honeypot_commitment(4, 2, bait, SALT)
