"""Stake-weighted committees (`committeeDraws` k > 0): the registry draws each submission's committee from
the round's seed exactly as protocol.committees does, checks verdict vectors against the draws, counts
verdicts and model votes by multiplicity, and the escrow pays per revealed draw, slashes only drawn
non-revealers and conserves every wei."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pytest
from chainworld import STAKE, World, h, logs, reverts

from protocol import committees
from protocol.contracts import (
    ProtocolClient,
    ValidatorOutcome,
    Verdict,
    decide,
    pack_verdicts,
)

pytestmark = pytest.mark.chain

A, R, U, N = Verdict.ACCEPT, Verdict.REJECT, Verdict.UNAVAILABLE, Verdict.NONE
UNIT = STAKE // 10  # the worlds' minimum validator stake: the weight unit


def committee_task(
    world: World, draws: int, weights: Sequence[int], quorum: int = 1, **overrides: object
) -> int:
    """A started task with committees of `draws`, joined by the three trainers and by validators 4.. with
    allocations of `weights` units, in that order."""
    task_id = world.create_task(committee_draws=draws, quorum=quorum, **overrides)
    world.join(task_id, world.trainers, allocation=UNIT)
    for p, w in zip(validators(world, len(weights)), weights, strict=True):
        world.join(task_id, validators=[p], allocation=w * UNIT)
    world.start(task_id)
    return task_id


def validators(world: World, count: int) -> list[ProtocolClient]:
    """Validators 4..8 (the world's three and the two spare staked accounts)."""
    return world.people[4 : 4 + count]


def mults(
    world: World, task_id: int, round_: int, vs: Sequence[ProtocolClient]
) -> dict[ProtocolClient, list[int]]:
    """Each validator's multiplicities from the contract, checked against the Python mirror."""
    out = {}
    for v in vs:
        on_chain = world.initiator.multiplicities_of(task_id, round_, v.address)
        assert world.initiator.drawn_multiplicities(task_id, round_, v.address) == on_chain
        out[v] = on_chain
    return out


def row_for(m: Sequence[int], verdicts: Sequence[Verdict]) -> list[Verdict]:
    """A validator's vector: `verdicts[i]` where it was drawn, NONE elsewhere."""
    return [v if k else N for k, v in zip(m, verdicts, strict=True)]


def one_submission_drawn_once(
    world: World,
) -> tuple[int, list[ProtocolClient], dict[ProtocolClient, list[int]]]:
    """A one-round task with k = 1 and three validators of weight 1, whose one submission's seed is drawn:
    the task, the validators and their multiplicities (exactly one of them is drawn)."""
    task_id = committee_task(world, 1, [1, 1, 1], num_rounds=1)
    world.submit_all(task_id, 0, trainers=world.trainers[:1])
    world.warp_to(world.initiator.task_state(task_id).submit_end)
    world.draw(task_id)
    vs = validators(world, 3)
    return task_id, vs, mults(world, task_id, 0, vs)


def test_weights_lay_out_a_line_and_the_draws_match_the_mirror(world: World) -> None:
    for draws, weights in ((1, [1, 1, 1]), (4, [1, 2, 3, 5]), (7, [3, 1]), (64, [1, 1, 1, 1, 1])):
        task_id = committee_task(world, draws, weights)
        vs = validators(world, len(weights))
        line = committees.line_of([(v.address, w, 0) for v, w in zip(vs, weights, strict=True)])
        for v, seat in zip(vs, line, strict=True):
            assert world.initiator.weight_of(task_id, v.address) == (seat.offset, seat.weight)
        world.submit_all(task_id, 0)
        seed = world.draw(task_id)
        assert world.initiator.committee_of(task_id, 0) == (draws, seed, sum(weights))
        ballot = world.initiator.ballot_of(task_id, 0)
        assert (ballot.draws, ballot.revealed_weight) == (draws, 0)
        m = mults(world, task_id, 0, vs)
        for i in range(3):
            # Every draw lands on exactly one validator: the multiplicities sum to k.
            assert sum(m[v][i] for v in vs) == draws
            assert committees.committee(line, seed, i, draws, 0) == {
                v.address: m[v][i] for v in vs if m[v][i]
            }
        # The membership test gives each validator its own: O(k) a submission, no search.
        for v in vs:
            standing = world.initiator.validator_standing(task_id, 0, v.address)
            assert standing == (True, False, False, sum(m[v]))


def test_weight_is_the_allocation_in_stake_units_capped() -> None:
    assert committees.weight_for(10 * UNIT + UNIT - 1, UNIT) == 10
    assert committees.weight_for(5, 0) == 1
    assert committees.weight_for(0, UNIT) == 1
    assert committees.weight_for(2**200, 1) == committees.MAX_WEIGHT


def test_task_rules_check_the_draws(world: World) -> None:
    for overrides in (
        {"committee_draws": 65},
        {"committee_draws": 2, "quorum": 3},
        {"committee_draws": 2, "quorum": 1, "min_validator_stake": 0},
    ):
        params = world.params().model_copy(update=overrides)  # past the Python checks, to the contract's
        value = overrides["committee_draws"]
        reverts("InvalidTaskParameter", name="committeeDraws", value=value)(
            lambda params=params: world.initiator.create_task(params)
        )
    with pytest.raises(ValueError, match="committee_draws"):
        world.params(committee_draws=2, quorum=3)


def test_a_vector_must_judge_exactly_the_drawn_submissions(world: World) -> None:
    """k = 1, one submission: the drawn validator must carry a verdict on it, the others must not."""
    task_id, vs, m = one_submission_drawn_once(world)
    (drawn,) = [v for v in vs if m[v][0]]
    undrawn = [v for v in vs if v is not drawn]
    rows = {drawn: [N], undrawn[0]: [A], undrawn[1]: [N]}
    world.commit(task_id, 0, rows)
    for v, row in rows.items():
        if v is undrawn[1]:
            continue
        word = pack_verdicts(row, allow_none=True)
        reverts("MalformedVerdicts", verdicts=word, submissions=1)(
            lambda v=v, word=word: v.reveal_verdicts(task_id, 0, word, world.salts[(task_id, 0, v.address)])
        )
    world.reveal(task_id, 0, {undrawn[1]: [N]})  # zeros where it has no draw: well formed
    ballot = world.initiator.ballot_of(task_id, 0)
    assert (ballot.revealed, ballot.revealed_weight) == (1, 0)
    assert world.initiator.decisions_of(task_id, 0) == [N]


def test_weighted_tallies_decide_and_pay_per_draw(world: World) -> None:
    """k = 4 over validators of weights 1, 2, 3, 5: every drawn validator but the heaviest reveals;
    honest verdicts ACCEPT, ACCEPT, REJECT. Decisions, the revealed weight, model agreement, the pay per
    draw, the slash of the drawn non-revealer, and conservation all follow the multiplicities."""
    weights = [1, 2, 3, 5]
    task_id = committee_task(world, 4, weights, quorum=2)
    world.submit_all(task_id, 0)
    world.draw(task_id)
    vs = validators(world, 4)
    m = mults(world, task_id, 0, vs)
    heavy = max((v for v in vs if sum(m[v])), key=vs.index)  # the heaviest drawn validator
    truth = [A, A, R]
    revealers = [v for v in vs if v is not heavy]
    rows = {v: row_for(m[v], truth) for v in revealers}
    world.commit(task_id, 0, rows)
    world.warp_to(world.initiator.ballot_of(task_id, 0).commit_end)
    world.reveal(task_id, 0, rows)
    registry = world.deployment.attestation_registry
    for i in range(3):
        counts = world.chain.call(registry.functions.tallyOf(task_id, 0, i))
        judged = sum(m[v][i] for v in revealers)
        assert sum(counts) == judged
        assert counts[[A, R, U].index(truth[i])] == judged
        assert world.initiator.decisions_of(task_id, 0)[i] == decide(*counts, revealed=judged, quorum=2)
    revealed_weight = sum(sum(m[v]) for v in revealers)
    assert world.initiator.ballot_of(task_id, 0).revealed_weight == revealed_weight
    _closed, revealed, *_ = world.chain.call(registry.functions.outcome(task_id, 0))
    assert revealed == revealed_weight
    # The model vote weighs each voter's draws: all revealers vote the same model.
    world.vote(task_id, 0, {v: h("m") for v in revealers})
    assert world.chain.call(registry.functions.modelVotesOf(task_id, 0, h("m"))) == revealed_weight
    agreed = revealed_weight >= 2
    assert world.initiator.ballot_of(task_id, 0).agreed == agreed
    world.close_ballot(task_id, 0)
    world.initiator.finalize_round(task_id)
    _, share, _ = world.initiator.round_result_of(task_id, 0)
    for v in vs:
        (event,) = logs(
            world.deployment.task_escrow,
            "ValidatorSettled",
            world.initiator.settle_validator(task_id, 0, v.address),
        )
        weight = sum(m[v])
        if weight == 0:
            assert (event["outcome"], event["amount"]) == (ValidatorOutcome.NOT_DRAWN, 0)
            assert world.initiator.allocation_of(task_id, v.address) == weights[vs.index(v)] * UNIT
        elif v is heavy:
            assert event["outcome"] == ValidatorOutcome.SLASHED
            assert event["amount"] == weights[vs.index(v)] * UNIT * 500 // 10_000
        else:
            want = ValidatorOutcome.REWARDED if agreed else ValidatorOutcome.FORFEITED
            assert (event["outcome"], event["amount"]) == (want, share * weight)
    world.assert_solvent()


def test_a_validator_without_draws_owes_nothing_and_its_stake_is_released(world: World) -> None:
    """k = 1 and one submission: exactly one validator is drawn; the two others neither commit nor are
    slashed, are settled as NOT_DRAWN and get their allocation back after the task."""
    task_id, vs, m = one_submission_drawn_once(world)
    (drawn,) = [v for v in vs if m[v][0]]
    world.ballot(task_id, 0, {drawn: [A]}, votes={drawn: h("m")})
    # A vector for an undrawn validator must be all NONE: an undrawn validator may commit zeros.
    assert world.initiator.decisions_of(task_id, 0) == [A]
    assert world.initiator.ballot_of(task_id, 0).agreed
    world.close_ballot(task_id, 0)
    world.initiator.finalize_round(task_id)
    _, share, _ = world.initiator.round_result_of(task_id, 0)
    assert share == 10**18 * 2_000 // 10_000  # the whole validator cut on the single draw
    for v in vs:
        (event,) = logs(
            world.deployment.task_escrow,
            "ValidatorSettled",
            world.initiator.settle_validator(task_id, 0, v.address),
        )
        if v is drawn:
            assert (event["outcome"], event["amount"]) == (ValidatorOutcome.REWARDED, share)
        else:
            assert (event["outcome"], event["amount"]) == (ValidatorOutcome.NOT_DRAWN, 0)
        assert world.initiator.validator_unsettled_of(task_id, v.address) == 0
    world.assert_solvent()


def test_an_undrawn_validator_may_commit_and_reveal_zeros(world: World) -> None:
    """An undrawn validator that commits zeros closes the commit phase early with the others, weighs
    nothing in the decisions and the vote, and is settled as NOT_DRAWN."""
    task_id, vs, m = one_submission_drawn_once(world)
    rows: Mapping[ProtocolClient, list[Verdict]] = {v: [R] if m[v][0] else [N] for v in vs}
    world.commit(task_id, 0, rows)
    assert world.initiator.ballot_of(task_id, 0).commit_end == world.now()  # everyone committed
    world.reveal(task_id, 0, rows)
    ballot = world.initiator.ballot_of(task_id, 0)
    assert (ballot.revealed, ballot.revealed_weight) == (3, 1)
    assert world.initiator.decisions_of(task_id, 0) == [R]
    world.vote(task_id, 0, {v: h("m") if m[v][0] else h("other") for v in vs})
    assert world.initiator.ballot_of(task_id, 0).agreed  # 1 of 1 draw; the two undrawn votes weigh 0
    world.close_ballot(task_id, 0)
    world.initiator.finalize_round(task_id)
    for v in vs:
        (event,) = logs(
            world.deployment.task_escrow,
            "ValidatorSettled",
            world.initiator.settle_validator(task_id, 0, v.address),
        )
        assert event["outcome"] == (ValidatorOutcome.REWARDED if m[v][0] else ValidatorOutcome.NOT_DRAWN)
    world.assert_solvent()


def test_revealers_short_of_the_quorum_per_submission_take_no_cut(world: World) -> None:
    """With committees the quorum counts one submission's revealed draws, so the round's validator cut needs
    `quorum` revealed draws per submission: revealers whose draws add up to the quorum but not to quorum x N
    (a lone revealer in a round the others missed) take no cut, which rolls over to the next round, while
    the drawn non-revealers are slashed as ever. (The revealers are the first subset of the five weight-1
    validators whose draws fall in [quorum, quorum x N): none exists only when one or two validators hold
    nearly all twelve draws, P ~ 1e-5.)"""
    quorum, n = 3, 3
    task_id = committee_task(world, 4, [1, 1, 1, 1, 1], quorum=quorum, num_rounds=2)
    world.submit_all(task_id, 0)
    world.draw(task_id)
    vs = validators(world, 5)
    m = mults(world, task_id, 0, vs)
    subsets = [[v for i, v in enumerate(vs) if bits >> i & 1] for bits in range(1, 32)]
    revealers = next(s for s in subsets if quorum <= sum(sum(m[v]) for v in s) < quorum * n)
    weight = sum(sum(m[v]) for v in revealers)
    rows = {v: row_for(m[v], [A] * n) for v in revealers}
    world.commit(task_id, 0, rows)
    world.warp_to(world.initiator.ballot_of(task_id, 0).commit_end)
    world.reveal(task_id, 0, rows)
    world.vote(task_id, 0, {v: h("m") for v in revealers})
    world.close_ballot(task_id, 0)
    (event,) = logs(world.deployment.task_escrow, "RoundFinalized", world.initiator.finalize_round(task_id))
    assert event["revealed"] == weight  # enough for the quorum of one submission, not of the round
    assert event["validatorShare"] == 0
    assert event["carry"] == event["budget"] - event["rate"] * event["acceptedWork"]
    for v in vs:
        (settled,) = logs(
            world.deployment.task_escrow,
            "ValidatorSettled",
            world.initiator.settle_validator(task_id, 0, v.address),
        )
        if v in revealers:
            assert settled["amount"] == 0, settled
        elif sum(m[v]):
            assert settled["outcome"] == ValidatorOutcome.SLASHED, settled
        else:
            assert settled["outcome"] == ValidatorOutcome.NOT_DRAWN, settled
    world.assert_solvent()
