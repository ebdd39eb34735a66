"""AppealCourt: a decision appealed within its window, with a bond, to K_a stake-weighted draws whose
commit-revealed majority stands. Every call's reverts; an overturned rejection (the honest trainer paid by
the court out of the cartel's slashes, the cartel slashed, the appellant repaid with a reward), an
overturned acceptance (the cheater slashed by the escrow), an upheld appeal (the bond paid to the winning
draws), an appeal nobody answers (the bond back, the silent jurors slashed); settlement gated by the window
and by pending appeals; and every token accounted for.

The cartel (validators 4 and 5) holds one minimum stake each, the honest validator 6 ten: the appeal's
draws are stake-weighted, so the cartel's two seats out of three (which decide the ballot) weigh 2/12 of
the appeal committee. The review's findings (issue 12) each have a test here: settleJuror in batches,
silence slashed once a round, a failed quorum costing its appellant, a new appeal after it, the wronged
trainer of a round that accepted nothing, a juror below the minimum stake, a zero bond; and the second
review's: a new attempt meets the same committee (a 40% cartel's silence re-draws nothing and loses its
bonds), silence in a replaced attempt is slashed once, and a batch that slashes a juror below the minimum
does not spare its silence in a later batch."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from pathlib import Path

import pytest
from chainworld import COURT, STAKE, World, h, judge_appeal, logs, make_world, reverts
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from protocol.audit.books.appeals import appeal_reward
from protocol.audit.events import ChainEvent
from protocol.chain import ChainClient
from protocol.contracts import (
    BPS,
    BURN_ADDRESS,
    ZERO_ADDRESS,
    AppealParams,
    ProtocolClient,
    ValidatorOutcome,
    Verdict,
    index_mask,
)
from protocol.roles.settle import JUROR_BATCH_GAS, juror_batch_gas, juror_batches

pytestmark = pytest.mark.chain

A, R = Verdict.ACCEPT, Verdict.REJECT
PARAMS = COURT
MIN = STAKE // 10
MODEL = h("model", 1)


@pytest.fixture(scope="module")
def world(chain: ChainClient, client_for: Callable[[int], ChainClient]) -> World:
    """A deployment with an AppealCourt (overrides conftest's)."""
    return make_world(chain, client_for, appeals=PARAMS, approve_court=True)


def PARAMS_COURT(world: World) -> str:  # noqa: N802 - reads as the court's address
    court = world.deployment.appeal_court
    assert court is not None
    return str(court.address)


def cartel_round(world: World, rows: dict[int, list[Verdict]] | None = None, finalize: bool = True) -> int:
    """A task whose round 0 is decided by the cartel (4, 5: [A, R, A]) against the honest 6 ([A, A, A]):
    the honest trainer 2 (index 1) rejected. Finalised (unless not `finalize`); the appeal window open."""
    task_id = world.create_task(num_rounds=2, quorum=2)
    v4, v5, v6 = world.validators
    world.join(task_id, world.trainers)
    world.join(task_id, validators=[v4, v5], allocation=MIN)
    world.join(task_id, validators=[v6], allocation=10 * MIN)
    world.start(task_id)
    world.submit_all(task_id, 0)
    world.draw(task_id)
    verdicts = rows or {4: [A, R, A], 5: [A, R, A], 6: [A, A, A]}
    people = world.people
    world.ballot(
        task_id, 0, {people[i]: row for i, row in verdicts.items()}, {people[i]: MODEL for i in verdicts}
    )
    world.close_ballot(task_id, 0)
    if finalize:
        world.initiator.finalize_round(task_id)
    return task_id


def drawn(world: World, task_id: int, index: int, appellant: ProtocolClient) -> dict[ProtocolClient, int]:
    """File the appeal, mine past its seed block, draw it; the validators' draws."""
    appellant.appeal(task_id, 0, index)
    world.chain.mine(2)
    assert appellant.draw_appeal(task_id, 0, index) is not None
    draws = {v: appellant.appeal_draws_of(task_id, 0, index, v.address) for v in world.validators}
    assert sum(draws.values()) == PARAMS.draws
    return draws


def overturn_cartel_rejection(world: World, task_id: int, appellant: ProtocolClient) -> None:
    """`appellant` appeals the cartel's (v4, v5) rejection of submission 1 of round 0; its drawn jurors
    judge as they did (the cartel REJECT, the rest ACCEPT), and the overturn is decided."""
    v4, v5, _ = world.validators
    draws = drawn(world, task_id, 1, appellant)
    judge_appeal(world, task_id, 1, {v: (R if v in (v4, v5) else A) for v, d in draws.items() if d})
    appellant.settle_appeal(task_id, 0, 1)


def court_balance(world: World) -> int:
    return world.initiator.token_balance(PARAMS_COURT(world))


def assert_court_solvent(world: World, pending_bonds: int = 0) -> None:
    """The court holds exactly what it owes (credits of every account that may have one) and open bonds."""
    p = world.initiator
    owed = sum(p.appeal_credit_of(x.address) for x in world.people)
    assert court_balance(world) == owed + pending_bonds
    world.assert_solvent()


def assert_audit_clean(world: World, task_id: int) -> None:
    """The auditor, replaying every event (the court's included), finds nothing: it recomputes the draws,
    the decision, every juror's slash or pay, the settlements on the appeals' results, the balances."""
    from protocol.audit.runner import audit, open_target

    target = open_target(world.chain.rpc_url, world.deployment.addresses)
    result = audit(target, task=task_id, store=None, gas=False, accuracy=False)
    assert [d.line() for d in result.ledger.discrepancies] == []
    assert result.ledger.verified["appeals"] > 0


def settle_all(world: World, task_id: int, validators: list[ProtocolClient] | None = None) -> None:
    """After the round's appeals are decided: past the window, every validator's part at the court, the
    round at the escrow; the court and every contract solvent, the audit clean."""
    p = world.initiator
    everyone = world.validators if validators is None else validators
    world.warp_to(p.appeal_window_end(task_id, 0))
    for v in everyone:
        if not p.juror_settled(task_id, 0, v.address):
            p.settle_juror(task_id, 0, v.address)
    p.settle_round(task_id, 0, [0, 1, 2], [v.address for v in everyone])
    assert_court_solvent(world)
    assert_audit_clean(world, task_id)


# ---------------------------------------------------------------- filing


def test_an_appeal_is_filed_once_within_the_window_with_its_bond(world: World) -> None:
    task_id = cartel_round(world)
    appellant, p = world.people[6], world.initiator
    before = appellant.token_balance()
    receipt = appellant.appeal(task_id, 0, 1)
    (filed,) = logs(world.deployment.appeal_court, "AppealFiled", receipt)
    assert (filed["original"], filed["bond"], filed["appellant"]) == (R, PARAMS.bond, appellant.address)
    assert appellant.token_balance() == before - PARAMS.bond
    a = p.appeal_of(task_id, 0, 1)
    assert (a.filed, a.drawn, a.original, a.bond) == (True, False, R, PARAMS.bond)
    assert (p.round_appeals(task_id, 0).appealed, p.round_appeals(task_id, 0).pending) == ([1], 1)
    reverts("AlreadyAppealed", taskId=task_id, round=0, index=1)(
        lambda: world.people[7].appeal(task_id, 0, 1)
    )
    assert_court_solvent(world, pending_bonds=PARAMS.bond)


def test_an_appeal_needs_a_finalised_round_a_decision_an_open_window_and_the_bond(world: World) -> None:
    task_id = world.setup_task(num_rounds=2, quorum=2)
    appellant = world.people[7]
    reverts("RoundNotFinalized", taskId=task_id, round=0)(lambda: appellant.appeal(task_id, 0, 0))
    world.submit_all(task_id, 0)
    world.draw(task_id)
    v4, v5, v6 = world.validators
    world.ballot(task_id, 0, {v4: [A, R, A], v5: [A, A, A], v6: [A, R, R]}, {v: MODEL for v in (v4, v5, v6)})
    world.close_ballot(task_id, 0)
    world.initiator.finalize_round(task_id)
    # Index 1 got 2 REJECT against 1 ACCEPT (decided); index 2: 1 R, 2 A (decided A). Index 3 does not exist.
    reverts("NotDecided", taskId=task_id, round=0, index=3)(lambda: appellant.appeal(task_id, 0, 3))
    # The bond is pulled with transferFrom: an account without the tokens or the allowance cannot appeal.
    reverts("ERC20InsufficientAllowance")(lambda: world.outsider.appeal(task_id, 0, 1))
    end = world.initiator.appeal_window_end(task_id, 0)
    world.warp_to(end)
    reverts("AppealWindowClosed", taskId=task_id, round=0, closesAt=end)(
        lambda: appellant.appeal(task_id, 0, 1)
    )


def test_an_undecided_submission_cannot_be_appealed(world: World) -> None:
    task_id = cartel_round(world, {4: [A, R, A], 5: [A, A, A]})  # index 1: one A, one R: undecided
    reverts("NotDecided", taskId=task_id, round=0, index=1)(lambda: world.people[6].appeal(task_id, 0, 1))


# ---------------------------------------------------------------- settlement gates


def test_settlement_waits_for_the_window_and_then_runs_as_without_appeals(world: World) -> None:
    task_id = cartel_round(world)
    p = world.initiator
    end = p.appeal_window_end(task_id, 0)
    reverts("AppealWindowOpen", taskId=task_id, round=0, closesAt=end)(
        lambda: p.settle_submission(task_id, 0, 1)
    )
    v6 = world.people[6]
    reverts("AppealWindowOpen", closesAt=end)(lambda: p.settle_validator(task_id, 0, v6.address))
    reverts("AppealWindowOpen")(lambda: p.settle_round(task_id, 0, [0, 1, 2], [v6.address]))
    world.warp_to(end)
    p.settle_round(task_id, 0, [0, 1, 2], [v.address for v in world.validators])
    assert p.submission_of(task_id, 0, 1)[2]
    assert p.validator_outcome(task_id, 0, v6.address) == (True, True, False)  # outvoted, no appeal
    world.assert_solvent()


def test_a_pending_appeal_holds_its_submission_and_the_rounds_validators_only(world: World) -> None:
    task_id = cartel_round(world)
    p, v6 = world.initiator, world.people[6]
    v6.appeal(task_id, 0, 1)
    world.warp_to(p.appeal_window_end(task_id, 0))
    reverts("AppealPending", taskId=task_id, round=0, index=1)(lambda: p.settle_submission(task_id, 0, 1))
    reverts("AppealsPending", pending=1)(lambda: p.settle_validator(task_id, 0, v6.address))
    # The keeper's batch leaves the appealed index and the validators out; the rest settles.
    p.settle_round(task_id, 0, [0, 2], [])
    assert [p.submission_of(task_id, 0, i)[2] for i in range(3)] == [True, False, True]


# ---------------------------------------------------------------- draw, commit, reveal


def test_the_draw_waits_for_its_seed_block_once_and_rearms_when_late(world: World) -> None:
    task_id = cartel_round(world)
    appellant = world.people[6]
    reverts("NoAppeal", taskId=task_id, round=0, index=1)(lambda: appellant.draw_appeal(task_id, 0, 1))
    appellant.appeal(task_id, 0, 1)
    seed_block = world.initiator.appeal_of(task_id, 0, 1).seed_block
    if world.chain.block_number() < seed_block:
        reverts("SeedTooEarly", seedBlock=seed_block)(lambda: appellant.draw_appeal(task_id, 0, 1))
    world.chain.mine(300)
    assert appellant.draw_appeal(task_id, 0, 1) is None  # more than 256 blocks late: re-armed
    assert world.initiator.appeal_of(task_id, 0, 1).seed_block > seed_block
    world.chain.mine(2)
    assert appellant.draw_appeal(task_id, 0, 1) is not None
    reverts("AlreadyDrawn", taskId=task_id, round=0, index=1)(lambda: appellant.draw_appeal(task_id, 0, 1))


def test_only_drawn_jurors_commit_and_reveal_within_their_phases(world: World) -> None:
    task_id = cartel_round(world)
    v4, v5, v6 = world.validators
    salt = h("salt")
    v6.appeal(task_id, 0, 1)
    reverts("NotDrawn", taskId=task_id, round=0, index=1)(lambda: v6.commit_appeal(task_id, 0, 1, A, salt))
    world.chain.mine(2)
    v6.draw_appeal(task_id, 0, 1)
    a = world.initiator.appeal_of(task_id, 0, 1)
    # A trainer (not a validator) and an outsider hold no draw.
    for nobody in (world.trainers[0], world.outsider):
        reverts("NotJuror", account=nobody.address)(partial(nobody.commit_appeal, task_id, 0, 1, A, salt))
    court = world.deployment.appeal_court
    assert court is not None
    # 0 is "not committed" and 1..7 are revealed words (verdict, + 4 for an earlier silence): a commitment
    # among them would read as a reveal, sparing its juror the silence slash and paying it unbacked shares.
    for word in (w.to_bytes(32, "big") for w in range(8)):
        reverts("InvalidCommitment", commitment=word)(
            lambda word=word: v6.client.transact(court.functions.commitAppeal(task_id, 0, 1, word))
        )
    juror = next(v for v in (v6, v4, v5) if world.initiator.appeal_draws_of(task_id, 0, 1, v.address))
    juror.commit_appeal(task_id, 0, 1, A, salt)
    reverts("AlreadyCommitted", juror=juror.address)(lambda: juror.commit_appeal(task_id, 0, 1, A, salt))
    reverts("RevealPhaseNotOpen", opensAt=a.commit_end)(lambda: juror.reveal_appeal(task_id, 0, 1, A, salt))
    world.warp_to(a.commit_end)
    late = next(
        v
        for v in (v4, v5, v6)
        if v is not juror and world.initiator.appeal_draws_of(task_id, 0, 1, v.address)
    )
    reverts("CommitPhaseClosed", commitEnd=a.commit_end)(lambda: late.commit_appeal(task_id, 0, 1, A, salt))
    reverts("NotCommitted", juror=late.address)(lambda: late.reveal_appeal(task_id, 0, 1, A, salt))
    reverts("InvalidVerdict", verdict=0)(lambda: juror.reveal_appeal(task_id, 0, 1, Verdict.NONE, salt))
    reverts("CommitmentMismatch")(lambda: juror.reveal_appeal(task_id, 0, 1, R, salt))
    reverts("AppealOpen", taskId=task_id)(lambda: juror.settle_appeal(task_id, 0, 1))
    receipt = juror.reveal_appeal(task_id, 0, 1, A, salt)
    (revealed,) = logs(court, "AppealRevealed", receipt)
    assert revealed["weight"] == world.initiator.appeal_draws_of(task_id, 0, 1, juror.address)
    # Every committed draw revealed: the reveals close early.
    assert world.initiator.appeal_of(task_id, 0, 1).reveal_end == world.now()
    reverts("RevealPhaseNotOpen")(lambda: juror.reveal_appeal(task_id, 0, 1, A, salt))


# ---------------------------------------------------------------- outcomes


def test_an_overturned_rejection_pays_the_victim_and_the_appellant_out_of_the_cartels_stake(
    world: World,
) -> None:
    task_id = cartel_round(world)
    p = world.initiator
    v4, v5, v6 = world.validators
    victim = world.trainers[1]
    appellant = world.people[7]  # a staker that is not even a validator of the task
    draws = drawn(world, task_id, 1, appellant)
    assert draws[v6] * 2 > PARAMS.draws, draws  # P(the cartel's 2/12 of the weight holds half) < 1e-4
    judge_appeal(world, task_id, 1, {v: (R if v in (v4, v5) else A) for v, d in draws.items() if d})
    receipt = appellant.settle_appeal(task_id, 0, 1)
    (decided,) = logs(world.deployment.appeal_court, "AppealDecided", receipt)
    rate, _, _ = p.round_result_of(task_id, 0)
    config = p.task_config(task_id)
    work_units = p.submission_of(task_id, 0, 1)[1]
    # Its acceptance would have diluted the others': less than the round's rate times its work.
    owed_to_victim = appeal_reward(rate, work_units, config.reward_per_round, config.validator_share_bps)
    assert 0 < owed_to_victim < rate * work_units
    assert (decided["overturned"], decided["finalVerdict"], decided["paidBack"]) == (True, A, PARAMS.bond)
    assert decided["victimOwed"] == owed_to_victim > 0
    reverts("AlreadyDecidedAppeal")(lambda: appellant.settle_appeal(task_id, 0, 1))
    world.warp_to(p.appeal_window_end(task_id, 0))
    reverts("JurorUnsettled", validator=v4.address)(lambda: p.settle_validator(task_id, 0, v4.address))

    allocations = {v: p.allocation_of(task_id, v.address) for v in world.validators}
    burned_before = p.token_balance(BURN_ADDRESS)
    slashed = 0
    for v in (v4, v5, v6):
        receipt = p.settle_juror(task_id, 0, v.address)
        for e in logs(world.deployment.appeal_court, "JurorSettled", receipt):
            slashed += e["slashed"]
    reverts("JurorAlreadySettled")(lambda: p.settle_juror(task_id, 0, v4.address, [1]))
    for v in (v4, v5):  # both sides lost, original and appeal: slashed once each
        assert (
            p.allocation_of(task_id, v.address) == allocations[v] - allocations[v] * PARAMS.slash_bps // BPS
        )
    assert p.allocation_of(task_id, v6.address) == allocations[v6]
    victim_left, to_victim, reward = owed_to_victim, 0, 0
    for v in (v4, v5):  # the rule, in settlement order: the victim first, then rewardBps of the rest
        amount = allocations[v] * PARAMS.slash_bps // BPS
        part = min(amount, victim_left)
        victim_left -= part
        to_victim += part
        reward += (amount - part) * PARAMS.reward_bps // BPS
    assert p.appeal_credit_of(victim.address) == to_victim
    assert p.appeal_credit_of(appellant.address) == PARAMS.bond + reward
    assert p.token_balance(BURN_ADDRESS) - burned_before == slashed - to_victim - reward

    # The escrow settles the victim as undecided (no pay through it, no slash), the round's others as
    # before; the cartel forfeits its shares, the honest validator is paid its own.
    receipt = p.settle_round(task_id, 0, [0, 1, 2], [v.address for v in world.validators])
    settled = {
        e["index"]: (e["decision"], e["reward"], e["slashed"])
        for e in logs(p.escrow, "SubmissionSettled", receipt)
    }
    assert settled[1] == (Verdict.NONE, 0, 0)
    outcomes = {e["validator"]: e["outcome"] for e in logs(p.escrow, "ValidatorSettled", receipt)}
    assert outcomes == {
        v4.address: ValidatorOutcome.FORFEITED,
        v5.address: ValidatorOutcome.FORFEITED,
        v6.address: ValidatorOutcome.REWARDED,
    }
    paid = victim.claim_appeal_credit()
    assert paid == to_victim
    reverts("NothingToClaim", account=victim.address)(lambda: victim.claim_appeal_credit())
    assert_court_solvent(world)
    assert_audit_clean(world, task_id)


def test_an_overturned_acceptance_slashes_the_cheater_through_the_escrow(world: World) -> None:
    task_id = cartel_round(world, {4: [R, A, A], 5: [R, A, A], 6: [R, R, A]})  # trainer 2's forgery accepted
    p = world.initiator
    v4, v5, v6 = world.validators
    cheater = world.trainers[1]
    draws = drawn(world, task_id, 1, v6)
    assert draws[v6] * 2 > PARAMS.draws, draws
    judge_appeal(world, task_id, 1, {v: (A if v in (v4, v5) else R) for v, d in draws.items() if d})
    v6.settle_appeal(task_id, 0, 1)
    assert p.appeal_of(task_id, 0, 1).victim_owed == 0
    world.warp_to(p.appeal_window_end(task_id, 0))
    for v in world.validators:
        p.settle_juror(task_id, 0, v.address)
    allocation = p.allocation_of(task_id, cheater.address)
    remaining_before, reserved_before = p.funds_of(task_id)
    rate, _, _ = p.round_result_of(task_id, 0)
    receipt = p.settle_submission(task_id, 0, 1)
    (settled,) = logs(p.escrow, "SubmissionSettled", receipt)
    trainer_slash = allocation * p.task_config(task_id).trainer_slash_bps // BPS
    assert (settled["decision"], settled["reward"], settled["slashed"]) == (R, 0, trainer_slash)
    # The round reserved the cheater's pay: released back to the active task (its next round's carry).
    released = rate * p.submission_of(task_id, 0, 1)[1]
    assert released > 0
    assert [e["amount"] for e in logs(p.escrow, "RewardReleased", receipt)] == [released]
    assert p.funds_of(task_id) == (remaining_before + released, reserved_before - released)
    assert p.appeal_credit_of(v6.address) > PARAMS.bond  # bond back plus its reward
    assert_court_solvent(world)
    assert_audit_clean(world, task_id)


def test_an_upheld_appeal_pays_the_bond_to_the_winning_draws(world: World) -> None:
    task_id = cartel_round(world)
    p = world.initiator
    v4, v5, _ = world.validators
    appellant = world.people[8]  # appeals index 0, accepted by everyone: frivolous
    draws = drawn(world, task_id, 0, appellant)
    jurors = {v: A for v, d in draws.items() if d}
    dissenter = next((v for v in (v4, v5) if draws[v]), None)
    if dissenter is not None:
        jurors[dissenter] = R  # outvoted: neither paid nor slashed
    judge_appeal(world, task_id, 0, jurors)
    receipt = appellant.settle_appeal(task_id, 0, 0)
    (decided,) = logs(world.deployment.appeal_court, "AppealDecided", receipt)
    winners = sum(d for v, d in draws.items() if jurors.get(v) == A)
    per_draw = PARAMS.bond // winners
    assert (decided["overturned"], decided["perDraw"]) == (False, per_draw)
    assert decided["paidBack"] == PARAMS.bond - per_draw * winners
    allocations = {v: p.allocation_of(task_id, v.address) for v in world.validators}
    world.warp_to(p.appeal_window_end(task_id, 0))
    for v in world.validators:
        p.settle_juror(task_id, 0, v.address)
        assert p.allocation_of(task_id, v.address) == allocations[v]
        assert p.appeal_credit_of(v.address) == (draws[v] * per_draw if jurors.get(v) == A else 0)
    assert p.appeal_credit_of(appellant.address) == PARAMS.bond - per_draw * winners
    world.warp_to(p.appeal_window_end(task_id, 0))
    p.settle_round(task_id, 0, [0, 1, 2], [v.address for v in world.validators])
    assert_court_solvent(world)
    assert_audit_clean(world, task_id)


def test_an_appeal_nobody_answers_burns_the_bond_and_slashes_the_silent_draws_at_the_silence_rate(
    world: World,
) -> None:
    task_id = cartel_round(world)
    p = world.initiator
    appellant = world.people[6]
    draws = drawn(world, task_id, 1, appellant)
    a = p.appeal_of(task_id, 0, 1)
    world.warp_to(a.reveal_end)
    burned = p.token_balance(BURN_ADDRESS)
    receipt = appellant.settle_appeal(task_id, 0, 1)
    (decided,) = logs(world.deployment.appeal_court, "AppealDecided", receipt)
    # Nobody revealed: no share of the bond comes back, all of it is burned.
    assert (decided["overturned"], decided["paidBack"], decided["burned"]) == (False, 0, PARAMS.bond)
    assert p.token_balance(BURN_ADDRESS) - burned == PARAMS.bond
    burned = p.token_balance(BURN_ADDRESS)
    total = 0
    world.warp_to(p.appeal_window_end(task_id, 0))
    for v in world.validators:
        before = p.allocation_of(task_id, v.address)
        p.settle_juror(task_id, 0, v.address)
        cut = before * PARAMS.silence_bps // BPS if draws[v] else 0
        assert p.allocation_of(task_id, v.address) == before - cut
        total += cut
    assert p.token_balance(BURN_ADDRESS) - burned == total  # an upheld appeal's slashes pay nobody
    assert_court_solvent(world)
    assert_audit_clean(world, task_id)


def test_a_failed_quorum_returns_only_the_revealed_draws_share_and_the_decision_can_be_appealed_again(
    world: World,
) -> None:
    """Finding 3(b) and 4: the honest juror stays silent, one cartel juror reveals: no quorum. The appellant
    gets back `bond x revealed / K_a`, the rest is burned, and the rejection can be appealed again: a new
    attempt before the same committee, drawn by the filing itself, which overturns it. The honest juror's
    silence in the replaced attempt costs it `silenceBps` once, and it is still paid nothing more or less
    than its side's outcome (here an overturn: no pay, no loss)."""
    task_id = cartel_round(world)
    p = world.initiator
    v4, v5, v6 = world.validators
    cartel_appellant, honest = world.people[4], world.people[7]
    draws = drawn(world, task_id, 1, cartel_appellant)  # the cartel pre-empts the honest appeal
    first = p.appeal_of(task_id, 0, 1)
    revealer = max((v4, v5), key=lambda v: draws[v])
    assert 0 < 2 * draws[revealer] < PARAMS.draws, draws
    judge_appeal(world, task_id, 1, {revealer: R})
    world.warp_to(p.appeal_of(task_id, 0, 1).reveal_end)
    receipt = p.settle_appeal(task_id, 0, 1)
    (decided,) = logs(world.deployment.appeal_court, "AppealDecided", receipt)
    back = PARAMS.bond * draws[revealer] // PARAMS.draws
    assert (decided["overturned"], decided["paidBack"], decided["burned"]) == (
        False,
        back,
        PARAMS.bond - back,
    )
    assert p.appeal_credit_of(cartel_appellant.address) == back

    # The second attempt: the same seed and committee, drawn at the filing; the jurors' words of the first
    # do not carry over.
    refiled = honest.appeal(task_id, 0, 1)
    (filed,) = logs(world.deployment.appeal_court, "AppealFiled", refiled)
    (redrawn,) = logs(world.deployment.appeal_court, "AppealDrawn", refiled)
    a = p.appeal_of(task_id, 0, 1)
    assert (a.attempt, a.decided, a.appellant.lower()) == (1, False, honest.address.lower())
    assert (a.seed, a.total_weight, a.seed_block) == (first.seed, first.total_weight, first.seed_block)
    assert (bytes(redrawn["seed"]), filed["seedBlock"]) == (first.seed, first.seed_block)
    assert a.commit_end == world.now() + PARAMS.commit_duration
    assert p.juror_of(task_id, 0, 1, revealer.address) == (bytes(32), False)
    reverts("AlreadyDrawn", index=1)(lambda: honest.draw_appeal(task_id, 0, 1))
    assert {v: p.appeal_draws_of(task_id, 0, 1, v.address) for v in world.validators} == draws
    assert draws[v6] * 2 > PARAMS.draws, draws
    judge_appeal(world, task_id, 1, {v: (R if v in (v4, v5) else A) for v, d in draws.items() if d})
    honest.settle_appeal(task_id, 0, 1)
    assert p.appeal_of(task_id, 0, 1).overturned
    reverts("AlreadyAppealed", index=1)(lambda: honest.appeal(task_id, 0, 1))  # judged: final
    world.warp_to(p.appeal_window_end(task_id, 0))
    before = p.allocation_of(task_id, v6.address)
    p.settle_juror(task_id, 0, v6.address)
    assert p.allocation_of(task_id, v6.address) == before - before * PARAMS.silence_bps // BPS
    settle_all(world, task_id)
    # The auditor holds a new attempt to the first attempt's committee: a forged second draw is named.
    lines = audit_with(world, lambda e: _forged_seed(e, int(refiled["blockNumber"])))
    assert any("attempt 1 of the appeal of submission 1: the first attempt's seed" in x for x in lines), lines


def _forged_seed(e: ChainEvent, block: int) -> ChainEvent:
    """The new attempt's AppealDrawn (in `block`) with another seed."""
    if e.name != "AppealDrawn" or e.block != block:
        return e
    return replace(e, args={**e.args, "seed": h("another seed")})


def audit_with(world: World, edit: Callable[[ChainEvent], ChainEvent]) -> list[str]:
    """The auditor's discrepancies over the deployment's events, each passed through `edit` first."""
    from protocol.audit.events import PROTOCOL_CONTRACTS, fetch_events
    from protocol.audit.runner import check_events, open_target

    target = open_target(world.chain.rpc_url, world.deployment.addresses)
    roles = (*PROTOCOL_CONTRACTS, "appeal_court")
    end = world.chain.block_number()
    events = fetch_events(target.client, {r: target.contracts[r] for r in roles}, target.addresses.block, end)
    ledger = check_events(target, [edit(e) for e in events], end, views=False)
    return [d.line() for d in ledger.discrepancies]


def test_silence_is_slashed_once_a_round_whatever_the_appeals_and_batches(world: World) -> None:
    """Finding 3(a): a griefer's flood of appeals nobody answers costs a silent juror `silenceBps` once,
    not `slashBps` compounded per appeal, even settled one index a batch."""
    task_id = cartel_round(world)
    p = world.initiator
    appellant = world.people[7]
    v6 = world.people[6]
    draws = {index: drawn(world, task_id, index, appellant) for index in (0, 2)}
    assert all(d[v6] for d in draws.values())
    for index in (0, 2):
        world.warp_to(p.appeal_of(task_id, 0, index).reveal_end)
        p.settle_appeal(task_id, 0, index)
    world.warp_to(p.appeal_window_end(task_id, 0))
    before = p.allocation_of(task_id, v6.address)
    p.settle_juror(task_id, 0, v6.address, [0])
    p.settle_juror(task_id, 0, v6.address, [2])
    assert p.allocation_of(task_id, v6.address) == before - before * PARAMS.silence_bps // BPS
    for v in world.validators[:2]:
        p.settle_juror(task_id, 0, v.address)
    assert_court_solvent(world)
    assert_audit_clean(world, task_id)


def test_a_cartel_silent_before_a_committee_it_does_not_like_meets_it_again_and_loses_its_bonds(
    world: World,
) -> None:
    """Finding 1 of the second review (re-drawing by silence): a cartel with 40% of the stake (4 and 5, two
    minimum stakes each, against 6 and 7, three each) appeals a correct REJECT. Its committee does not
    favour it (at most half of the draws), and one honest juror is offline, so its silence keeps the appeal
    from the reveal quorum. It re-files at once: the new attempt meets the same committee (the first
    attempt's seed, the same draws per juror), the honest jurors reveal, and the appeal is upheld. The cartel
    lost the unrevealed share of its first bond and the whole of its second, and each member `silenceBps`
    of its allocation (once) for the silence; the offline honest juror pays the same silence rate and is
    paid its winning draws."""
    v4, v5, v6 = world.validators
    v7 = world.people[7]
    k = PARAMS.draws
    task_id = world.create_task(num_rounds=2, quorum=2)
    world.join(task_id, world.trainers)
    world.join(task_id, validators=[v4, v5], allocation=2 * MIN)
    world.join(task_id, validators=[v6, v7], allocation=3 * MIN)
    world.start(task_id)
    world.submit_all(task_id, 0)
    world.draw(task_id)
    rows = {v4: [A, A, A], v5: [R, R, R], v6: [R, R, R], v7: [R, R, R]}
    world.ballot(task_id, 0, rows, {v: MODEL for v in rows})
    world.close_ballot(task_id, 0)
    p = world.initiator
    p.finalize_round(task_id)
    assert p.decisions_of(task_id, 0) == [R, R, R]
    everyone = [v4, v5, v6, v7]
    found, lapsed = None, []
    for index in range(3):  # a committee that favours the cartel (about 6% at K_a = 48) is let lapse
        v4.appeal(task_id, 0, index)
        world.chain.mine(2)
        v4.draw_appeal(task_id, 0, index)
        draws = {v: p.appeal_draws_of(task_id, 0, index, v.address) for v in everyone}
        if 2 * (draws[v4] + draws[v5]) <= k and 0 < 2 * draws[v6] < k and draws[v7]:
            found = index, draws
            break
        lapsed.append(index)
    assert found is not None
    index, draws = found
    first = p.appeal_of(task_id, 0, index)
    judge_appeal(world, task_id, index, {v6: R})  # 7 is offline, the cartel silent
    world.warp_to(p.appeal_of(task_id, 0, index).reveal_end)
    v5.settle_appeal(task_id, 0, index)
    back = PARAMS.bond * draws[v6] // k
    assert p.appeal_credit_of(v4.address) == back  # the rest of the first bond burned

    v5.appeal(task_id, 0, index)  # the second attempt: the same committee, drawn by the filing
    again = p.appeal_of(task_id, 0, index)
    assert (again.attempt, again.seed, again.total_weight) == (1, first.seed, first.total_weight)
    assert {v: p.appeal_draws_of(task_id, 0, index, v.address) for v in everyone} == draws
    reverts("AlreadyDrawn", index=index)(lambda: v5.draw_appeal(task_id, 0, index))
    judge_appeal(world, task_id, index, {v: (A if v in (v4, v5) else R) for v in everyone if draws[v]})
    receipt = v5.settle_appeal(task_id, 0, index)
    (decided,) = logs(world.deployment.appeal_court, "AppealDecided", receipt)
    winners = draws[v6] + draws[v7]
    per_draw = PARAMS.bond // winners
    assert (decided["overturned"], decided["perDraw"]) == (False, per_draw)
    assert p.appeal_credit_of(v5.address) == PARAMS.bond - per_draw * winners  # the second bond: dust back
    reverts("AlreadyAppealed", index=index)(lambda: v4.appeal(task_id, 0, index))
    for i in lapsed:
        world.warp_to(p.appeal_of(task_id, 0, i).reveal_end)
        p.settle_appeal(task_id, 0, i)
    for i in range(index + 1, 3):  # the other submissions' appeals, untouched by the cartel
        assert p.appeal_of(task_id, 0, i).appellant == ZERO_ADDRESS
    world.warp_to(p.appeal_window_end(task_id, 0))
    before = {v: p.allocation_of(task_id, v.address) for v in everyone}
    credit7 = p.appeal_credit_of(v7.address)
    for v in everyone:
        p.settle_juror(task_id, 0, v.address)
    for v in (v4, v5, v7):  # silent in an attempt: `silenceBps` once (the cartel's members drawn in it)
        cut = before[v] * PARAMS.silence_bps // BPS if draws[v] else 0
        assert p.allocation_of(task_id, v.address) == before[v] - cut, v.address
    assert p.appeal_credit_of(v7.address) - credit7 == draws[v7] * per_draw
    if index == 0:  # no lapsed appeal: 6 revealed in every attempt it was drawn in
        assert p.allocation_of(task_id, v6.address) == before[v6]
    settle_all(world, task_id, everyone)


def test_a_batch_that_slashes_a_juror_below_the_minimum_does_not_spare_its_silence_in_a_later_batch(
    world: World,
) -> None:
    """Finding 3 of the second review: a cartel juror, slashed below the minimum by the overturn of its
    rejection in a first batch, was at the minimum while the other appeal it was drawn in ran (it could
    have revealed there): its silence there is slashed in a later batch, as in one batch of both."""
    task_id = cartel_round(world)
    p = world.initiator
    v4, v5, v6 = world.validators
    honest = world.people[7]
    overturn_cartel_rejection(world, task_id, honest)
    other = drawn(world, task_id, 0, honest)
    silent = next(v for v in (v4, v5) if other[v])
    judge_appeal(world, task_id, 0, {v6: A})
    world.warp_to(p.appeal_of(task_id, 0, 0).reveal_end)
    honest.settle_appeal(task_id, 0, 0)
    world.warp_to(p.appeal_window_end(task_id, 0))
    p.settle_juror(task_id, 0, silent.address, [1])
    left = p.allocation_of(task_id, silent.address)
    assert left < MIN  # slashed below the minimum stake by the first batch
    p.settle_juror(task_id, 0, silent.address, [0])
    assert p.allocation_of(task_id, silent.address) == left - left * PARAMS.silence_bps // BPS
    for v in world.validators:
        if v is not silent:
            p.settle_juror(task_id, 0, v.address)
    assert_court_solvent(world)
    assert_audit_clean(world, task_id)


def test_a_juror_below_the_minimum_stake_while_an_appeal_runs_is_not_slashed_for_silence(
    world: World,
) -> None:
    """Finding 8: a cartel juror slashed below the minimum by round 0's overturned appeal is drawn in an
    appeal of round 1 (its draw weight is its join-time allocation) but cannot reveal there (StakeTooLow):
    its silence costs nothing, in every batch of the round."""
    task_id = cartel_round(world)
    p = world.initiator
    v4, v5, v6 = world.validators
    honest = world.people[7]
    overturn_cartel_rejection(world, task_id, honest)
    world.warp_to(world.now() + 400)  # round 1's window must outlast round 0's (inside its submit phase)
    world.submit_all(task_id, 1)
    world.draw(task_id)
    world.ballot(
        task_id, 1, {v: [A, A, A] for v in world.validators}, {v: h("model", 2) for v in world.validators}
    )
    world.close_ballot(task_id, 1)
    p.finalize_round(task_id)
    world.warp_to(p.appeal_window_end(task_id, 0))
    for v in world.validators:
        p.settle_juror(task_id, 0, v.address)
    assert all(p.allocation_of(task_id, v.address) < MIN for v in (v4, v5))
    assert world.now() < p.appeal_window_end(task_id, 1)
    honest.appeal(task_id, 1, 0)
    world.chain.mine(2)
    honest.draw_appeal(task_id, 1, 0)
    draws = {v: p.appeal_draws_of(task_id, 1, 0, v.address) for v in world.validators}
    below = [v for v in (v4, v5) if draws[v]]
    assert below, draws
    assert draws[v6], draws
    salt = h("round 1 appeal salt")
    for v in [*below, v6]:
        v.commit_appeal(task_id, 1, 0, A, salt)
    world.warp_to(p.appeal_of(task_id, 1, 0).commit_end)
    v6.reveal_appeal(task_id, 1, 0, A, salt)
    for v in below:
        reverts("StakeTooLow")(lambda v=v: v.reveal_appeal(task_id, 1, 0, A, salt))
    world.warp_to(p.appeal_of(task_id, 1, 0).reveal_end)
    honest.settle_appeal(task_id, 1, 0)
    world.warp_to(p.appeal_window_end(task_id, 1))
    for v in world.validators:
        before = p.allocation_of(task_id, v.address)
        p.settle_juror(task_id, 1, v.address)
        assert p.allocation_of(task_id, v.address) == before, v.address
    assert_court_solvent(world)
    assert_audit_clean(world, task_id)


def test_no_juror_is_settled_before_the_window_closes(world: World) -> None:
    """A cartel's decoy: it appeals a decision it did not get wrong, lets it be upheld at once and settles
    its members at the court before the window closes, so that the victim's appeal, filed later in the
    window, would find them settled (never slashed, the victim never paid). Refused: `AppealWindowOpen`
    until the window closes; the victim's appeal is still filed and decided after the decoy."""
    task_id = cartel_round(world)
    p = world.initiator
    cartel, honest = world.people[4], world.people[6]
    draws = drawn(world, task_id, 0, cartel)  # the decoy: submission 0, ACCEPT by everyone, and right
    judge_appeal(world, task_id, 0, {v: A for v, d in draws.items() if d})
    world.warp_to(p.appeal_of(task_id, 0, 0).reveal_end)
    cartel.settle_appeal(task_id, 0, 0)
    end = p.appeal_window_end(task_id, 0)
    for v in (world.people[4], world.people[5]):
        reverts("AppealWindowOpen", closesAt=end)(lambda v=v: cartel.settle_juror(task_id, 0, v.address))
    drawn(world, task_id, 1, honest)  # the real appeal, later in the window
    assert p.appeal_of(task_id, 0, 1).appellant.lower() == honest.address.lower()


def test_juror_settlement_runs_in_batches_and_the_gate_waits_for_every_index(world: World) -> None:
    """Finding 2: `settleJuror` settles the appealed indices it is given (a batch, O(batch x K_a) gas), once
    each; the escrow settles the validator only once every appealed index is."""
    task_id = cartel_round(world)
    p = world.initiator
    v4 = world.people[4]
    court = world.deployment.appeal_court
    assert court is not None
    for index in (0, 2):
        drawn(world, task_id, index, world.people[7])
        world.warp_to(p.appeal_of(task_id, 0, index).reveal_end)
        p.settle_appeal(task_id, 0, index)
    world.warp_to(p.appeal_window_end(task_id, 0))
    for mask in (0, index_mask([1]), index_mask([0, 1])):  # none, or one that was not appealed
        reverts("NotAppealedIndices", indices=mask)(
            lambda mask=mask: p.client.transact(court.functions.settleJuror(task_id, 0, v4.address, mask))
        )
    p.settle_juror(task_id, 0, v4.address, [2])
    assert (p.juror_settled_indices(task_id, 0, v4.address), p.juror_settled(task_id, 0, v4.address)) == (
        [2],
        False,
    )
    reverts("JurorUnsettled", validator=v4.address)(lambda: p.settle_validator(task_id, 0, v4.address))
    reverts("JurorAlreadySettled")(lambda: p.settle_juror(task_id, 0, v4.address, [0, 2]))
    p.settle_juror(task_id, 0, v4.address, [0])
    assert p.juror_settled(task_id, 0, v4.address)
    reverts("JurorAlreadySettled")(lambda: p.settle_juror(task_id, 0, v4.address, [0]))
    p.settle_validator(task_id, 0, v4.address)


def test_the_keepers_batches_fit_its_gas_budget() -> None:
    """The keeper's batches of a round's 128 appeals: every index once, in order, each batch's estimate
    within the budget (the estimate is pinned against measured gas by `--appeals 128` of bench_gas.py)."""
    indices = list(range(128))
    for draws in (1, 201, 1024):
        batches = juror_batches(indices, draws)
        assert [i for b in batches for i in b] == indices
        assert all(juror_batch_gas(len(b), draws) <= JUROR_BATCH_GAS for b in batches)
        assert len(batches) == -(-128 // len(batches[0]))  # as few as the budget allows
    assert len(juror_batches(indices, 201)) > 1
    assert juror_batches([5, 3], 1024, budget=1) == [[3], [5]]  # at least one index a batch


def test_an_overturned_rejection_in_a_round_that_accepted_nothing_owes_the_trainer_the_pool(
    world: World,
) -> None:
    """Finding 5: the cartel rejects every submission (rate 0); the overturn owes the wronged trainer the
    round's trainer pool (its work the only accepted one), not 0."""
    task_id = cartel_round(world, {4: [R, R, R], 5: [R, R, R], 6: [A, A, A]})
    p = world.initiator
    v4, v5, _ = world.validators
    assert p.round_result_of(task_id, 0)[0] == 0
    appellant = world.people[7]
    draws = drawn(world, task_id, 1, appellant)
    judge_appeal(world, task_id, 1, {v: (R if v in (v4, v5) else A) for v, d in draws.items() if d})
    receipt = appellant.settle_appeal(task_id, 0, 1)
    (decided,) = logs(world.deployment.appeal_court, "AppealDecided", receipt)
    config = p.task_config(task_id)
    pool = config.reward_per_round - config.reward_per_round * config.validator_share_bps // BPS
    assert decided["victimOwed"] == pool > 0
    world.warp_to(p.appeal_window_end(task_id, 0))
    for v in world.validators:
        p.settle_juror(task_id, 0, v.address)
    assert_court_solvent(world)
    assert_audit_clean(world, task_id)


def test_what_a_wronged_trainer_is_owed_is_diluted_and_capped_by_the_pool() -> None:
    """`P * w / (P / rate + w)`, at most `rate * w`; at most P whatever w it declared; P when nothing was
    accepted."""
    pool = 80 * 10**18
    assert appeal_reward(0, 7, 10**20, 2_000) == pool
    assert appeal_reward(10**16, 1_000, 10**20, 2_000) == pool * 1_000 // (8_000 + 1_000)
    assert appeal_reward(10**16, 2**32 - 1, 10**20, 2_000) < pool
    assert appeal_reward(10**18, 1, 10**20, 2_000) == pool // 81 < 10**18  # diluted among 80 + 1 units
    assert appeal_reward(0, 0, 10**20, 2_000) == 0


def test_juror_settlement_needs_decided_appeals_in_the_round(world: World) -> None:
    task_id = cartel_round(world)
    p = world.initiator
    reverts("NoAppeals", taskId=task_id, round=0)(lambda: p.settle_juror(task_id, 0, world.people[4].address))
    world.people[6].appeal(task_id, 0, 1)
    reverts("AppealsPending", pending=1)(lambda: p.settle_juror(task_id, 0, world.people[4].address))
    reverts("NoAppeal", index=2)(lambda: p.settle_appeal(task_id, 0, 2))


# ---------------------------------------------------------------- wiring


def test_only_the_court_seizes_and_its_parameters_are_checked(world: World, chain: ChainClient) -> None:
    p = world.initiator
    reverts("NotSlasher", caller=p.address)(
        lambda: p.client.transact(p.stakes.functions.seize(p.address, 1, 1, 0))
    )
    assert p.appeal_params() == PARAMS
    compiled_court = world.deployment.appeal_court
    assert compiled_court is not None
    from protocol.compile import compile_contracts

    art = compile_contracts()["AppealCourt"]
    for bad in (
        AppealParams.model_construct(**{**PARAMS.model_dump(), "window": 0}),
        AppealParams.model_construct(**{**PARAMS.model_dump(), "draws": 1025}),
        AppealParams.model_construct(**{**PARAMS.model_dump(), "slash_bps": 0}),
        AppealParams.model_construct(**{**PARAMS.model_dump(), "reward_bps": BPS + 1}),
        AppealParams.model_construct(**{**PARAMS.model_dump(), "silence_bps": 0}),
    ):
        reverts("InvalidAppealParams")(partial(chain.deploy, art, p.escrow.address, *bad.constructor_args()))
    free = AppealParams.model_construct(**{**PARAMS.model_dump(), "bond": 0})
    reverts("InvalidBond", bond=0)(partial(chain.deploy, art, p.escrow.address, *free.constructor_args()))
    with pytest.raises(ValidationError):
        AppealParams(bond=0)
    assert compiled_court.address != ZERO_ADDRESS


# ---------------------------------------------------------------- random outcomes


ROWS = st.sampled_from([[A, R, A], [A, A, A], [R, A, A], [A, R, R]])
JUROR = st.sampled_from([A, R, Verdict.UNAVAILABLE, None])  # None: silent


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows=st.tuples(ROWS, ROWS, ROWS),
    index=st.integers(0, 2),
    jurors=st.tuples(JUROR, JUROR, JUROR),
    appellant=st.sampled_from([4, 6, 7]),
)
def test_any_appeal_conserves_every_token_and_the_audit_recomputes_it(
    world: World,
    chain: ChainClient,
    rows: tuple[list[Verdict], ...],
    index: int,
    jurors: tuple[Verdict | None, ...],
    appellant: int,
) -> None:
    """Random ballots, an appeal of a random submission, random juror verdicts (silence included): whatever
    the outcome, the court holds exactly the open bonds plus what it owes, every other contract balances,
    and the auditor's replay (draws, decision, slashes, pay, settlements) finds nothing."""
    snapshot = chain.snapshot()
    try:
        task_id = cartel_round(world, dict(zip((4, 5, 6), rows, strict=True)))
        p = world.initiator
        decided = p.decisions_of(task_id, 0)
        if decided[index] == Verdict.NONE:
            return
        draws = drawn(world, task_id, index, world.people[appellant])
        verdicts = {v: j for v, j in zip(world.validators, jurors, strict=True) if draws[v] and j is not None}
        if verdicts:
            judge_appeal(world, task_id, index, verdicts)
        world.warp_to(p.appeal_of(task_id, 0, index).reveal_end)
        p.settle_appeal(task_id, 0, index)
        settle_all(world, task_id)
    finally:
        chain.revert(snapshot)


@pytest.mark.slow
def test_128_appeals_settle_in_batches_each_under_its_target(tmp_path: Path) -> None:
    """Finding 2 at scale: 128 appeals of one round at K_a = 201 (scripts/bench_gas.py --appeals 128, its
    own anvil): every validator is settled in the keeper's batches, several of them, each under the
    `appeal_targets_at_128_appeals` target, and the other court calls keep their one-appeal targets."""
    root = Path(__file__).resolve().parents[2]
    out = tmp_path / "gas.json"
    done = subprocess.run(
        [sys.executable, str(root / "scripts" / "bench_gas.py"), "--appeals", "128", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=1_800,  # ~4 min on an idle machine
        cwd=root,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    gas = json.loads(out.read_text())
    targets = json.loads((root / "contracts" / "gas-targets.json").read_text())
    assert gas["settleJuror"] <= targets["appeal_targets_at_128_appeals"]["settleJuror"] == JUROR_BATCH_GAS
    assert gas["settleJuror"] > 10 * targets["appeal_targets"]["settleJuror"]  # a batch of many indices
    assert "batches of 37, 37, 37, 17 indices" in done.stdout


def test_trustrl_appeal_finalises_the_round_first(
    world: World, accounts: list[tuple[str, str]], tmp_path: Path
) -> None:
    """Finding 9: nobody finalised the round (the task's last, say) and its window runs from the ballot's
    close: `trustrl appeal` finalises it, then files the appeal."""
    from typer.testing import CliRunner

    from protocol.chain import save_keystore_account
    from protocol.cli import app
    from protocol.network import NetworkConfig

    task_id = cartel_round(world, finalize=False)
    p = world.initiator
    assert p.task_state(task_id).round == 0  # not finalised
    network = tmp_path / "network.json"
    config = NetworkConfig(
        rpc_url=world.chain.rpc_url, deployment=world.deployment.addresses, ipfs_api="http://127.0.0.1:9"
    )
    network.write_text(config.model_dump_json())
    keystore = tmp_path / "key.json"
    save_keystore_account(accounts[7][1], keystore, "pw", iterations=1 << 10)
    result = CliRunner().invoke(
        app,
        [
            "appeal",
            "--network",
            str(network),
            "--keystore",
            str(keystore),
            "--task",
            str(task_id),
            "--round",
            "0",
            "--index",
            "1",
            "--home",
            str(tmp_path / "home"),
        ],
        env={"TRUSTRL_PASSWORD": "pw"},
    )
    assert result.exit_code == 0, result.output
    assert p.task_state(task_id).round == 1
    assert p.appeal_of(task_id, 0, 1).appellant.lower() == accounts[7][0].lower()
