"""AttestationRegistry: commit-reveal of verdict vectors, two-thirds decisions, model votes, phases."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

import pytest
from chainworld import CID, COMMIT, REVEAL, SPARE, STAKE, VOTE, World, h, logs, reverts

from protocol.contracts import (
    ZERO_ADDRESS,
    Phase,
    ValidatorOutcome,
    Verdict,
    decide,
    pack_verdicts,
    unpack_verdicts,
    verdict_commitment,
    vote_commitment,
)

if TYPE_CHECKING:
    from protocol.chain import ChainClient
    from protocol.compile import CompiledContract
    from protocol.contracts import ProtocolClient

pytestmark = pytest.mark.chain

A, R, U = Verdict.ACCEPT, Verdict.REJECT, Verdict.UNAVAILABLE


def open_round(world: World, **overrides: object) -> int:
    """A started task whose round 0 has three submissions (work 1000, 2000, 3000) and a drawn seed."""
    task_id = world.setup_task(**overrides)
    world.submit_all(task_id, 0)
    world.draw(task_id)
    return task_id


def test_commit_records_and_the_last_expected_commit_closes_the_phase(world: World) -> None:
    task_id = open_round(world)
    v0, v1, v2 = world.validators
    registry = world.deployment.attestation_registry
    ballot = world.initiator.ballot_of(task_id, 0)
    assert (ballot.submissions, ballot.expected, ballot.quorum) == (3, 3, 2)
    assert world.initiator.phase_of(task_id, 0) == Phase.COMMIT
    salt = h("salt")
    word = pack_verdicts([A, R, U])
    commitment = verdict_commitment(task_id, 0, v0.address, word, salt)
    assert (
        world.chain.call(registry.functions.commitmentFor(task_id, 0, v0.address, word, salt)) == commitment
    )
    receipt = v0.commit_verdicts(task_id, 0, word, salt)
    assert logs(registry, "VerdictsCommitted", receipt) == [
        {"taskId": task_id, "round": 0, "validator": v0.address, "commitment": commitment}
    ]
    assert world.chain.call(registry.functions.verdictsOf(task_id, 0, v0.address)) == [commitment, False]
    v1.commit_verdicts(task_id, 0, word, salt)
    assert world.initiator.ballot_of(task_id, 0).commit_end == ballot.commit_end
    receipt = v2.commit_verdicts(task_id, 0, word, salt)
    closed_at = world.chain.w3.eth.get_block(receipt["blockNumber"])["timestamp"]
    ballot = world.initiator.ballot_of(task_id, 0)
    assert (ballot.committed, ballot.commit_end) == (3, closed_at)
    assert world.initiator.phase_of(task_id, 0) == Phase.REVEAL


def test_commit_reverts(world: World) -> None:
    task_id = world.setup_task()
    v0 = world.validators[0]
    registry = world.deployment.attestation_registry
    reverts("VotingNotOpen", taskId=task_id, round=0)(lambda: v0.commit_verdicts(task_id, 0, 1, h("s")))
    world.submit_all(task_id, 0)
    world.draw(task_id)
    reverts("ZeroHash")(lambda: v0.client.transact(registry.functions.commitVerdicts(task_id, 0, bytes(32))))
    for stranger in (world.trainers[0], world.outsider):
        reverts("NotValidator", taskId=task_id, round=0, account=stranger.address)(
            partial(stranger.commit_verdicts, task_id, 0, 1, h("s"))
        )
    v0.commit_verdicts(task_id, 0, 1, h("s"))
    reverts("AlreadyCommitted", taskId=task_id, round=0, validator=v0.address)(
        lambda: v0.commit_verdicts(task_id, 0, 1, h("t"))
    )
    commit_end = world.initiator.ballot_of(task_id, 0).commit_end
    world.warp_to(commit_end)
    v1 = world.validators[1]
    reverts("CommitPhaseClosed", taskId=task_id, round=0, commitEnd=commit_end)(
        lambda: v1.commit_verdicts(task_id, 0, 1, h("s"))
    )


def test_late_joining_validator_cannot_commit_in_the_current_round(world: World) -> None:
    task_id = world.setup_task()
    late = world.people[7]
    world.join(task_id, validators=[late])
    world.submit_all(task_id, 0)
    world.draw(task_id)
    assert world.initiator.ballot_of(task_id, 0).expected == 3
    reverts("NotValidator", account=late.address)(lambda: late.commit_verdicts(task_id, 0, 1, h("s")))


def finalized_work(world: World, task_id: int) -> int:
    """Close round 0's ballot, finalise it and return the accepted work its RoundFinalized reports."""
    world.close_ballot(task_id, 0)
    receipt = world.initiator.finalize_round(task_id)
    (finalized,) = logs(world.deployment.task_escrow, "RoundFinalized", receipt)
    return int(finalized["acceptedWork"])


def test_reveals_update_tallies_and_decisions(world: World) -> None:
    task_id = open_round(world)
    v0, v1, v2 = world.validators
    rows = {v0: [A, R, U], v1: [A, A, U], v2: [R, A, A]}
    world.commit(task_id, 0, rows)
    registry = world.deployment.attestation_registry
    assert world.chain.call(registry.functions.tallyOf(task_id, 0, 0)) == [0, 0, 0]

    world.reveal(task_id, 0, {v0: rows[v0]})
    # One revealed vote is below the quorum of 2: nothing is decided yet.
    assert world.initiator.decisions_of(task_id, 0) == [Verdict.NONE] * 3
    assert world.chain.call(registry.functions.tallyOf(task_id, 0, 1)) == [0, 1, 0]
    receipt = v1.reveal_verdicts(task_id, 0, pack_verdicts(rows[v1]), world.salts[(task_id, 0, v1.address)])
    assert logs(registry, "VerdictsRevealed", receipt) == [
        {
            "taskId": task_id,
            "round": 0,
            "validator": v1.address,
            "verdicts": pack_verdicts(rows[v1]),
            "salt": world.salts[(task_id, 0, v1.address)],
        }
    ]
    assert world.initiator.decisions_of(task_id, 0) == [A, Verdict.NONE, U]
    world.reveal(task_id, 0, {v2: rows[v2]})
    # 2 of 3 is two thirds: submission 1 becomes accepted, submission 0 stays accepted.
    assert world.initiator.decisions_of(task_id, 0) == [A, A, U]
    assert world.chain.call(registry.functions.tallyOf(task_id, 0, 1)) == [2, 1, 0]
    assert world.chain.call(registry.functions.decisionOf(task_id, 0, 2)) == U
    assert world.chain.call(registry.functions.decisionOf(task_id, 0, 3)) == Verdict.NONE  # no such index
    for i in range(3):
        accepts, rejects, unavailables = world.chain.call(registry.functions.tallyOf(task_id, 0, i))
        expected = decide(accepts, rejects, unavailables, revealed=3, quorum=2)
        assert Verdict(world.chain.call(registry.functions.decisionOf(task_id, 0, i))) == expected
    ballot = world.initiator.ballot_of(task_id, 0)
    assert ballot.revealed == 3
    assert world.initiator.phase_of(task_id, 0) == Phase.VOTE_COMMIT  # every committer revealed: early close
    assert v2.verdicts_of(task_id, 0) == (pack_verdicts(rows[v2]), True)
    outcomes = [world.chain.call(registry.functions.validatorOutcome(task_id, 0, v.address)) for v in rows]
    # The last field is the validator's weight: 1 each without committees.
    assert outcomes == [[True, True, False, 1]] * 3  # no model yet
    world.vote(task_id, 0, {v: h("m") for v in rows})
    outcomes = [world.chain.call(registry.functions.validatorOutcome(task_id, 0, v.address)) for v in rows]
    assert outcomes == [[True, True, False, 1], [True, True, True, 1], [True, True, False, 1]]
    assert v1.validator_outcome(task_id, 0) == (True, True, True)
    assert world.outsider.validator_outcome(task_id, 0) == (False, False, False)
    # Finalisation sums the work units of the accepted submissions (1000 + 2000).
    assert finalized_work(world, task_id) == 3_000


def test_the_next_round_reuses_the_tallies_and_keeps_the_decisions(world: World) -> None:
    task_id = open_round(world)
    rows = {v: [A, R, U] for v in world.validators}
    world.ballot(task_id, 0, rows, {v: h("m") for v in rows})
    registry = world.deployment.attestation_registry
    assert world.chain.call(registry.functions.tallyOf(task_id, 0, 0)) == [3, 0, 0]
    world.initiator.finalize_round(task_id)
    world.submit_all(task_id, 1)
    world.draw(task_id)
    assert world.chain.call(registry.functions.tallyOf(task_id, 0, 0)) == [0, 0, 0]  # no longer the latest
    assert world.chain.call(registry.functions.tallyOf(task_id, 1, 0)) == [0, 0, 0]  # nothing revealed yet
    rows = {v: [U, A, R] for v in world.validators[:2]}
    world.commit(task_id, 1, rows)
    world.warp_to(world.initiator.ballot_of(task_id, 1).commit_end)
    world.reveal(task_id, 1, rows)
    # Round 1 counts from zero, not from round 0's tallies; round 0's decisions stay.
    assert world.chain.call(registry.functions.tallyOf(task_id, 1, 0)) == [0, 0, 2]
    assert world.initiator.decisions_of(task_id, 1) == [U, A, R]
    assert world.initiator.decisions_of(task_id, 0) == [A, R, U]
    for i, decision in enumerate([A, R, U]):
        assert world.chain.call(registry.functions.decisionOf(task_id, 0, i)) == decision


def test_a_reveal_can_take_acceptance_away(world: World) -> None:
    task_id = open_round(world)
    v0, v1, v2 = world.validators
    rows = {v0: [A, A, A], v1: [A, A, A], v2: [R, R, R]}
    world.commit(task_id, 0, rows)
    world.reveal(task_id, 0, {v0: rows[v0], v1: rows[v1]})
    assert world.initiator.decisions_of(task_id, 0) == [A, A, A]
    world.reveal(task_id, 0, {v2: rows[v2]})  # 2 of 3 still accept
    assert world.initiator.decisions_of(task_id, 0) == [A, A, A]
    assert finalized_work(world, task_id) == 6_000
    task_id = open_round(world, quorum=1)
    rows = {v0: [A, A, A], v1: [R, R, A], v2: [R, R, A]}
    world.commit(task_id, 0, rows)
    world.reveal(task_id, 0, {v0: rows[v0]})
    assert world.initiator.decisions_of(task_id, 0) == [A, A, A]  # quorum 1: one vote decides
    world.reveal(task_id, 0, {v1: rows[v1]})  # 1 of 2 is less than two thirds: undecided again
    assert world.initiator.decisions_of(task_id, 0) == [Verdict.NONE, Verdict.NONE, A]
    world.reveal(task_id, 0, {v2: rows[v2]})
    assert world.initiator.decisions_of(task_id, 0) == [R, R, A]
    assert finalized_work(world, task_id) == 3_000


def test_reveal_reverts(world: World) -> None:
    task_id = open_round(world)
    v0, v1, v2 = world.validators
    good = pack_verdicts([A, A, A])
    v0.commit_verdicts(task_id, 0, good, h("s0"))
    ballot = world.initiator.ballot_of(task_id, 0)
    reverts(
        "RevealPhaseNotOpen", taskId=task_id, round=0, opensAt=ballot.commit_end, closesAt=ballot.reveal_end
    )(lambda: v0.reveal_verdicts(task_id, 0, good, h("s0")))
    # v1 copies v0's commitment: it is bound to v0's address, so v1 cannot reveal it.
    registry = world.deployment.attestation_registry
    copied = verdict_commitment(task_id, 0, v0.address, good, h("s0"))
    v1.client.transact(registry.functions.commitVerdicts(task_id, 0, copied))
    missing = pack_verdicts([A, A])  # no verdict for submission 2
    above = good | (1 << 6)  # a verdict for a fourth submission
    v2.commit_verdicts(task_id, 0, missing, h("s2"))
    world.warp_to(ballot.commit_end)
    reverts("CommitmentMismatch", committed=copied)(lambda: v1.reveal_verdicts(task_id, 0, good, h("s0")))
    reverts("CommitmentMismatch")(lambda: v0.reveal_verdicts(task_id, 0, good, h("wrong")))
    reverts("MalformedVerdicts", verdicts=missing, submissions=3)(
        lambda: v2.reveal_verdicts(task_id, 0, missing, h("s2"))
    )
    reverts("NotCommitted", taskId=task_id, round=0, validator=world.outsider.address)(
        lambda: world.outsider.reveal_verdicts(task_id, 0, good, h("s"))
    )
    v0.reveal_verdicts(task_id, 0, good, h("s0"))
    reverts("AlreadyRevealed", taskId=task_id, round=0, validator=v0.address)(
        lambda: v0.reveal_verdicts(task_id, 0, good, h("s0"))
    )
    reverts("VotingNotOpen", taskId=task_id, round=1)(lambda: v0.reveal_verdicts(task_id, 1, good, h("s0")))
    world.warp_to(ballot.reveal_end)
    reverts("RevealPhaseNotOpen", closesAt=ballot.reveal_end)(
        lambda: v2.reveal_verdicts(task_id, 0, missing, h("s2"))
    )
    # Bits above the last submission are refused too (checked with a fresh ballot).
    task_id = open_round(world)
    v0.commit_verdicts(task_id, 0, above, h("a"))
    world.warp_to(world.initiator.ballot_of(task_id, 0).commit_end)
    reverts("MalformedVerdicts", verdicts=above, submissions=3)(
        lambda: v0.reveal_verdicts(task_id, 0, above, h("a"))
    )


def revealed_round(world: World, **overrides: object) -> int:
    """`open_round` with every validator's verdicts [A, A, A] committed and revealed (vote commit open)."""
    task_id = open_round(world, **overrides)
    rows = {v: [A, A, A] for v in world.validators}
    world.commit(task_id, 0, rows)
    world.reveal(task_id, 0, rows)
    return task_id


def vote_salt(v: object) -> bytes:
    return h("vote salt", getattr(v, "address", v))


def test_model_votes_two_thirds_agree(world: World) -> None:
    task_id = open_round(world)
    v0, v1, v2 = world.validators
    rows = {v: [A, A, A] for v in world.validators}
    registry = world.deployment.attestation_registry
    world.commit(task_id, 0, rows)
    reverts("VoteCommitPhaseNotOpen", taskId=task_id, round=0)(
        lambda: v0.commit_model_vote(task_id, 0, h("m"), CID, vote_salt(v0))
    )
    world.reveal(task_id, 0, rows)
    reverts("VotePhaseNotOpen", taskId=task_id, round=0)(
        lambda: v0.vote_model(task_id, 0, h("m1"), CID, vote_salt(v0))
    )
    receipt = v0.commit_model_vote(task_id, 0, h("m1"), CID, vote_salt(v0))
    commitment = vote_commitment(task_id, 0, v0.address, h("m1"), CID, vote_salt(v0))
    assert logs(registry, "ModelVoteCommitted", receipt) == [
        {"taskId": task_id, "round": 0, "validator": v0.address, "commitment": commitment}
    ]
    pure = registry.functions.voteCommitmentFor(task_id, 0, v0.address, h("m1"), CID, vote_salt(v0))
    assert bytes(world.chain.call(pure)) == commitment
    reverts("AlreadyCommitted", taskId=task_id, round=0, validator=v0.address)(
        lambda: v0.commit_model_vote(task_id, 0, h("m1"), CID, vote_salt(v0))
    )
    reverts("ZeroHash")(lambda: v1.client.transact(registry.functions.commitModelVote(task_id, 0, bytes(32))))
    reverts("NotRevealed", validator=world.outsider.address)(
        lambda: world.outsider.commit_model_vote(task_id, 0, h("m1"), CID, vote_salt(0))
    )
    v1.commit_model_vote(task_id, 0, h("m1"), "bafy-other", vote_salt(v1))
    assert world.initiator.phase_of(task_id, 0) == Phase.VOTE_COMMIT
    # The vote is hidden until it is revealed: the chain holds its commitment only.
    assert v0.model_vote_of(task_id, 0) == (True, False)
    assert world.chain.call(registry.functions.modelVotesOf(task_id, 0, h("m1"))) == 0
    v2.commit_model_vote(task_id, 0, h("m2"), CID, vote_salt(v2))
    ballot = world.initiator.ballot_of(task_id, 0)
    assert (ballot.vote_committed, ballot.vote_commit_end) == (3, world.now())  # every revealer: early close
    assert world.initiator.phase_of(task_id, 0) == Phase.VOTE_REVEAL
    reverts("VoteCommitPhaseNotOpen", taskId=task_id, round=0)(
        lambda: v0.commit_model_vote(task_id, 0, h("m1"), CID, vote_salt(v0))
    )
    wrong = vote_commitment(task_id, 0, v0.address, h("m2"), CID, vote_salt(v0))
    stored = (int.from_bytes(commitment, "big") | 1).to_bytes(32, "big")  # the lowest bit marks a commitment
    reverts("CommitmentMismatch", committed=stored, computed=wrong)(
        lambda: v0.vote_model(task_id, 0, h("m2"), CID, vote_salt(v0))
    )
    reverts("CommitmentMismatch", committed=stored)(  # the CID is bound too
        lambda: v0.vote_model(task_id, 0, h("m1"), "bafy-other", vote_salt(v0))
    )
    reverts("ZeroHash")(lambda: v0.vote_model(task_id, 0, bytes(32), CID, vote_salt(v0)))
    reverts("NotCommitted", validator=world.outsider.address)(
        lambda: world.outsider.vote_model(task_id, 0, h("m1"), CID, vote_salt(0))
    )
    receipt = v0.vote_model(task_id, 0, h("m1"), CID, vote_salt(v0))
    assert logs(registry, "ModelVoted", receipt) == [
        {
            "taskId": task_id,
            "round": 0,
            "validator": v0.address,
            "modelHash": h("m1"),
            "modelCid": CID,
            "salt": vote_salt(v0),
        }
    ]
    assert logs(registry, "ModelAgreed", receipt) == []
    assert v0.model_vote_of(task_id, 0) == (True, True)
    reverts("AlreadyVoted", taskId=task_id, round=0, validator=v0.address)(
        lambda: v0.vote_model(task_id, 0, h("m1"), CID, vote_salt(v0))
    )
    receipt = v1.vote_model(task_id, 0, h("m1"), "bafy-other", vote_salt(v1))
    assert logs(registry, "ModelAgreed", receipt) == [
        {"taskId": task_id, "round": 0, "modelHash": h("m1"), "modelCid": "bafy-other", "votes": 2}
    ]
    v2.vote_model(task_id, 0, h("m2"), CID, vote_salt(v2))
    assert world.chain.call(registry.functions.modelVotesOf(task_id, 0, h("m1"))) == 2
    assert world.chain.call(registry.functions.outcome(task_id, 0)) == [
        True,
        3,
        True,
        h("m1"),
        pack_verdicts(rows[v0]),
    ]
    assert world.initiator.phase_of(task_id, 0) == Phase.CLOSED  # every vote committer revealed
    # Paid: the verdicts agree with every decision and the vote is the winner's; v2 voted another hash.
    assert [v.validator_outcome(task_id, 0)[2] for v in (v0, v1, v2)] == [True, True, False]


def test_vote_phases_split_the_vote_window(world: World) -> None:
    task_id = open_round(world)
    ballot = world.initiator.ballot_of(task_id, 0)
    assert ballot.vote_commit_end == ballot.reveal_end + (VOTE + 1) // 2
    assert ballot.vote_end == ballot.reveal_end + VOTE


def test_no_model_agreement_and_vote_deadlines(world: World) -> None:
    task_id = open_round(world)
    v0, v1, v2 = world.validators
    rows = {v0: [A, A, A], v1: [A, A, A], v2: [A, A, A]}
    world.commit(task_id, 0, rows)
    world.reveal(task_id, 0, {v0: rows[v0], v1: rows[v1]})
    ballot = world.initiator.ballot_of(task_id, 0)
    world.warp_to(ballot.reveal_end)  # v2 never reveals
    reverts("NotRevealed", validator=v2.address)(
        lambda: v2.commit_model_vote(task_id, 0, h("m"), CID, vote_salt(v2))
    )
    v0.commit_model_vote(task_id, 0, h("a"), CID, vote_salt(v0))
    assert world.initiator.phase_of(task_id, 0) == Phase.VOTE_COMMIT  # v1 has not committed
    world.warp_to(ballot.vote_commit_end)
    reverts("VoteCommitPhaseNotOpen", closesAt=ballot.vote_commit_end)(
        lambda: v1.commit_model_vote(task_id, 0, h("b"), CID, vote_salt(v1))
    )
    reverts("NotCommitted", validator=v1.address)(
        lambda: v1.vote_model(task_id, 0, h("b"), CID, vote_salt(v1))
    )
    assert world.initiator.phase_of(task_id, 0) == Phase.VOTE_REVEAL
    world.warp_to(ballot.vote_end)
    reverts("VotePhaseNotOpen", closesAt=ballot.vote_end)(
        lambda: v0.vote_model(task_id, 0, h("a"), CID, vote_salt(v0))
    )
    assert world.chain.call(world.deployment.attestation_registry.functions.outcome(task_id, 0)) == [
        True,
        2,
        False,
        bytes(32),
        pack_verdicts([A, A, A]),
    ]
    assert world.initiator.phase_of(task_id, 0) == Phase.CLOSED


def _settled(world: World, task_id: int, validators: list[ProtocolClient]) -> dict[str, tuple[int, int]]:
    """Finalise round 0 and settle `validators`: address -> (outcome, amount)."""
    escrow = world.deployment.task_escrow
    world.close_ballot(task_id, 0)
    world.initiator.finalize_round(task_id)
    out = {}
    for v in validators:
        (e,) = logs(escrow, "ValidatorSettled", world.initiator.settle_validator(task_id, 0, v.address))
        out[v.address] = (ValidatorOutcome(e["outcome"]), int(e["amount"]))
    return out


@pytest.mark.parametrize("deviant", ["wrong vote", "no vote"])
def test_a_wrong_or_missing_vote_forfeits_the_share(world: World, deviant: str) -> None:
    # Four validators: three vote the agreed model (3 of 4 is two thirds); v2 votes another hash or none.
    extra = world.people[SPARE[0]]
    task_id = world.create_task()
    validators = [*world.validators, extra]
    world.join(task_id, world.trainers, validators)
    world.start(task_id)
    world.submit_all(task_id, 0)
    world.draw(task_id)
    v0, v1, v2 = world.validators
    votes = {v0: h("m"), v1: h("m"), extra: h("m")} | ({v2: h("x")} if deviant == "wrong vote" else {})
    world.ballot(task_id, 0, {v: [A, A, A] for v in validators}, votes)
    outcomes = _settled(world, task_id, validators)
    _, share, _ = world.initiator.round_result_of(task_id, 0)
    assert share > 0
    assert outcomes == {
        v0.address: (ValidatorOutcome.REWARDED, share),
        v1.address: (ValidatorOutcome.REWARDED, share),
        v2.address: (ValidatorOutcome.FORFEITED, share),
        extra.address: (ValidatorOutcome.REWARDED, share),
    }
    assert world.initiator.base_model_of(task_id) == h("m")
    assert v2.credit_of() == 0
    world.assert_solvent()


def test_a_committed_vote_never_revealed_forfeits_the_share(world: World) -> None:
    task_id = revealed_round(world)
    v0, v1, v2 = world.validators
    world.commit_votes(task_id, 0, {v: h("m") for v in world.validators})
    world.reveal_votes(task_id, 0, {v0: h("m"), v1: h("m")})
    assert world.initiator.phase_of(task_id, 0) == Phase.VOTE_REVEAL  # v2 committed and did not reveal
    outcomes = _settled(world, task_id, world.validators)
    assert [outcomes[v.address][0] for v in (v0, v1, v2)] == [
        ValidatorOutcome.REWARDED,
        ValidatorOutcome.REWARDED,
        ValidatorOutcome.FORFEITED,
    ]
    world.assert_solvent()


def test_no_model_agreement_pays_no_validator(world: World) -> None:
    task_id = revealed_round(world)
    v0, v1, v2 = world.validators
    world.vote(task_id, 0, {v0: h("a"), v1: h("b"), v2: h("c")})
    assert world.initiator.phase_of(task_id, 0) == Phase.CLOSED
    world.initiator.finalize_round(task_id)
    remaining, reserved = world.initiator.funds_of(task_id)
    _, share, _ = world.initiator.round_result_of(task_id, 0)
    assert share > 0
    escrow = world.deployment.task_escrow
    for v in world.validators:
        (e,) = logs(escrow, "ValidatorSettled", world.initiator.settle_validator(task_id, 0, v.address))
        assert (e["outcome"], e["amount"]) == (ValidatorOutcome.FORFEITED, share)
    assert all(v.credit_of() == 0 for v in world.validators)
    # Every forfeited share went back to the task (it is still active): the next round's carry.
    assert world.initiator.funds_of(task_id) == (remaining + 3 * share, reserved - 3 * share)
    world.assert_solvent()


def test_deadlines_follow_the_seed(world: World) -> None:
    task_id = world.setup_task()
    world.submit_all(task_id, 0)
    world.draw(task_id)
    drawn_at = world.now()
    ballot = world.initiator.ballot_of(task_id, 0)
    assert (ballot.commit_end, ballot.reveal_end, ballot.vote_end) == (
        drawn_at + COMMIT,
        drawn_at + COMMIT + REVEAL,
        drawn_at + COMMIT + REVEAL + VOTE,
    )


def test_a_ballot_with_no_validator_closes_at_once(world: World) -> None:
    task_id = world.create_task()
    world.join(task_id, world.trainers)
    world.start(task_id)
    world.submit_all(task_id, 0)
    world.draw(task_id)
    assert world.initiator.phase_of(task_id, 0) == Phase.CLOSED
    world.initiator.finalize_round(task_id)


def test_reveal_verdicts_refuses_a_validator_slashed_below_the_minimum_stake(world: World) -> None:
    task_id = world.setup_task(num_rounds=3, validator_slash_bps=10_000, quorum=2)
    v0, v1, v2 = world.validators
    p = world.initiator
    world.submit_all(task_id, 0)
    world.draw(task_id)
    world.ballot(task_id, 0, {v0: [A, A, A], v1: [A, A, A]})  # v2 stays silent
    world.close_ballot(task_id, 0)
    p.finalize_round(task_id)
    p.settle_validator(task_id, 0, v2.address)  # its whole allocation is slashed
    assert v2.allocation_of(task_id) == 0

    world.submit_all(task_id, 1)
    world.draw(task_id)
    rows = {v0: [A, A, A], v1: [A, A, A], v2: [A, A, A]}
    world.commit(task_id, 1, rows)  # committing costs nothing to check and grants nothing
    salt = world.salts[(task_id, 1, v2.address)]
    reverts("StakeTooLow", taskId=task_id, account=v2.address, allocated=0, required=STAKE // 10)(
        lambda: v2.reveal_verdicts(task_id, 1, pack_verdicts(rows[v2]), salt)
    )
    assert v2.validator_stake_of(task_id) == (0, STAKE // 10)
    world.reveal(task_id, 1, {v0: rows[v0], v1: rows[v1]})
    world.close_ballot(task_id, 1)
    assert p.ballot_of(task_id, 1).revealed == 2
    p.finalize_round(task_id)
    # Treated as a non-revealer: no share, settled as Slashed (nothing left to take).
    (event,) = logs(
        world.deployment.task_escrow, "ValidatorSettled", p.settle_validator(task_id, 1, v2.address)
    )
    assert (event["outcome"], event["amount"]) == (ValidatorOutcome.SLASHED, 0)
    assert v2.credit_of() == 0


def test_escrow_only_functions(
    chain: ChainClient, compiled: dict[str, CompiledContract], world: World
) -> None:
    registry = world.deployment.attestation_registry
    mallory = world.people[7]
    for fn in (
        registry.functions.initTask(1, 8, 0),
        registry.functions.registerValidator(1, mallory.address, 0, 5, 1, 1),
        registry.functions.openRound(1, 0, 1, 1, 10**10, 10**10, 10**10, bytes(32)),
    ):
        reverts("OnlyTaskEscrow", caller=mallory.address)(partial(mallory.client.transact, fn))
    # A registry whose escrow is a plain account shows the checks the real escrow never trips.
    escrow = world.people[8]
    harness = chain.deploy(compiled["AttestationRegistry"], escrow.address, ZERO_ADDRESS)
    escrow.client.transact(harness.functions.registerValidator(1, mallory.address, 0, 1, 1, 1))
    reverts("AlreadyRegistered", taskId=1, validator=mallory.address)(
        lambda: escrow.client.transact(harness.functions.registerValidator(1, mallory.address, 0, 1, 1, 1))
    )
    reverts("TooManyValidators", taskId=1, maxValidators=1)(
        lambda: escrow.client.transact(harness.functions.registerValidator(1, escrow.address, 0, 1, 1, 1))
    )
    escrow.client.transact(harness.functions.openRound(1, 0, 11, 1, 10**10, 10**10, 10**10, bytes(32)))
    reverts("VotingAlreadyOpen", taskId=1, round=0)(
        lambda: escrow.client.transact(
            harness.functions.openRound(1, 0, 11, 1, 10**10, 10**10, 10**10, bytes(32))
        )
    )


def test_verdict_vectors_round_trip() -> None:
    row = [A, R, U, A] * 32
    assert unpack_verdicts(pack_verdicts(row), 128) == row
    assert pack_verdicts([A, R]) == 0b1001
