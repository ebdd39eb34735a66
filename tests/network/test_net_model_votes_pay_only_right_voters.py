"""A round on a real network (anvil, js-ipfs, the role classes) with three honest validators and one that
deviates in its model vote: it copies (votes are hidden until the vote commit closes, so it has nothing to
copy in time), votes a wrong hash, does not vote, or commits a vote and never reveals it. The honest
trainers and validators are paid, the deviant forfeits its share (it is not slashed: its verdicts were
right), nobody honest is slashed, and the auditor flags the deviant's vote and nothing else."""

from __future__ import annotations

import json

import pytest
from netharness import Net, drive, events, finished, joined

from protocol.audit import Kind
from protocol.audit.runner import audit, open_target
from protocol.contracts import ValidatorOutcome, Verdict
from protocol.ipfs import ArtifactStore
from protocol.roles.base import Output, RoleNode
from protocol.roles.initiator import InitiatorNode
from protocol.roles.trainer import TrainerNode
from protocol.roles.validator import Behaviour, ValidatorNode

pytestmark = [pytest.mark.chain, pytest.mark.ipfs]

ACTUAL = {
    Behaviour.WRONG_VOTE: None,  # the wrong hash itself
    Behaviour.COPY_VOTE: "no vote",
    Behaviour.NO_VOTE: "no vote",
    Behaviour.NON_REVEAL: "a committed vote never revealed",
}


@pytest.mark.parametrize(
    "behaviour",
    [
        Behaviour.WRONG_VOTE,
        pytest.param(Behaviour.COPY_VOTE, marks=pytest.mark.slow),
        pytest.param(Behaviour.NO_VOTE, marks=pytest.mark.slow),
        pytest.param(Behaviour.NON_REVEAL, marks=pytest.mark.slow),
    ],
)
def test_only_validators_that_vote_the_agreed_model_are_paid(net: Net, behaviour: Behaviour) -> None:
    # Phases with margins for a loaded machine (four validators verify in one thread); each closes early
    # once everyone has acted. 45 s for each half of the vote window.
    task_id = net.create_task(1, commit_duration=150, reveal_duration=60, vote_duration=90)
    trainers = [TrainerNode(net.session(i), task_id, out=Output(f"trainer-{i}")) for i in (2, 3)]
    honest = [ValidatorNode(net.session(i), task_id, out=Output(f"validator-{i}")) for i in (4, 5, 6)]
    deviant = ValidatorNode(net.session(7), task_id, out=Output(str(behaviour)), behaviour=behaviour)
    roles: list[RoleNode] = [InitiatorNode(net.session(1), task_id), *trainers, *honest, deviant]
    drive(roles, joined(roles[1:]), timeout=90)
    net.warp_to_start(task_id)
    # A deviant that does not commit or reveal its vote makes that phase run to its deadline (the seed +
    # 150 + 60 + 45 or + 90 s).
    drive(roles, finished(roles), timeout=600)

    d = net.deployment
    settled = {
        e["validator"]: (ValidatorOutcome(e["outcome"]), int(e["amount"]))
        for e in events(net, d.task_escrow, "ValidatorSettled", taskId=task_id)
    }
    share = settled[honest[0].me][1]
    assert share > 0
    assert settled == {
        **{v.me: (ValidatorOutcome.REWARDED, share) for v in honest},
        deviant.me: (ValidatorOutcome.FORFEITED, share),
    }
    for e in events(net, d.task_escrow, "SubmissionSettled", taskId=task_id):
        assert (Verdict(e["decision"]), e["slashed"]) == (Verdict.ACCEPT, 0)
        assert e["reward"] > 0
    (agreed,) = events(net, d.attestation_registry, "ModelAgreed", taskId=task_id)
    voted = events(net, d.attestation_registry, "ModelVoted", taskId=task_id)  # this case's task only
    votes = {e["validator"]: bytes(e["modelHash"]) for e in voted}
    assert all(votes[v.me] == bytes(agreed["modelHash"]) for v in honest)
    committed = {
        e["validator"] for e in events(net, d.attestation_registry, "ModelVoteCommitted", taskId=task_id)
    }
    if behaviour == Behaviour.WRONG_VOTE:
        assert votes[deviant.me] != bytes(agreed["modelHash"])
    else:
        assert deviant.me not in votes
        assert (deviant.me in committed) == (behaviour == Behaviour.NON_REVEAL)
    copied = deviant.journal.entry("copy", "0")
    if copied is not None:  # it saw a revealed vote before the round was finalised: too late to commit
        assert copied.data["refused"] == "VoteCommitPhaseNotOpen"
    shown = net.cli("task", "status", str(task_id), "--network", str(net.network_file), "--json", check=True)
    (status,) = json.loads(shown.stdout)["rounds"]
    winner = "0x" + bytes(agreed["modelHash"]).hex()
    assert status["model_votes"]["winner"] == winner
    assert status["model_votes"]["revealed_verdicts"] == 4
    assert set(status["model_votes"]["committed"]) == {v.me for v in honest} | (committed & {deviant.me})
    assert all(status["model_votes"]["revealed"][v.me] == winner for v in honest)
    proto = net.session(1).proto
    assert proto.funds_of(task_id) == (0, 0)
    assert proto.credit_of(deviant.me) == 0  # the others claimed what they were paid

    with ArtifactStore(net.ipfs.api_url, retries=1, find_timeout=1.0) as store:
        result = audit(
            open_target(net.anvil.rpc_url, d.addresses), task=task_id, store=store, gas=False, accuracy=False
        )
    (found,) = result.discrepancies
    assert (found.kind, found.round, found.subject) == (Kind.MODEL_VOTE, 0, f"model vote of {deviant.me}")
    assert found.expected == "0x" + bytes(agreed["modelHash"]).hex()  # the recomputed aggregate
    want = ACTUAL[behaviour] or "0x" + votes[deviant.me].hex()
    assert found.actual == want


class _Died(Exception):
    """Stands for a validator's process dying right after its vote commitment was mined."""


def test_a_validator_that_dies_after_its_vote_commit_reveals_after_the_restart(net: Net) -> None:
    """The vote's hash, CID and salt are journalled before `commitModelVote`: a validator that dies after
    the commitment is mined and before the journal records it reveals the vote once restarted, and is
    paid."""
    task_id = net.create_task(1, commit_duration=120, reveal_duration=60, vote_duration=90)
    trainers = [TrainerNode(net.session(i), task_id, out=Output(f"trainer-{i}")) for i in (8, 9)]
    validators = [ValidatorNode(net.session(i), task_id, out=Output(f"validator-{i}")) for i in (10, 11)]
    victim = validators[0]
    original = victim.journal.done

    def done(action: str, key: str, **data: object) -> None:
        if action == "vote-commit":
            victim.journal.done = original  # type: ignore[method-assign]
            raise _Died(key)
        original(action, key, **data)

    victim.journal.done = done  # type: ignore[method-assign]
    roles: list[RoleNode] = [InitiatorNode(net.session(1), task_id), *trainers, *validators]
    drive(roles, joined(roles[1:]), timeout=90)
    net.warp_to_start(task_id)
    with pytest.raises(_Died):
        drive(roles, finished(roles), timeout=300)
    roles[roles.index(victim)] = ValidatorNode(victim.session, task_id, out=victim.out)
    drive(roles, finished(roles), timeout=300)

    d = net.deployment
    commits = [
        e["validator"] for e in events(net, d.attestation_registry, "ModelVoteCommitted", taskId=task_id)
    ]
    votes = [e["validator"] for e in events(net, d.attestation_registry, "ModelVoted", taskId=task_id)]
    assert sorted(commits) == sorted(votes) == sorted(v.me for v in validators)  # once each
    settled = {
        e["validator"]: ValidatorOutcome(e["outcome"])
        for e in events(net, d.task_escrow, "ValidatorSettled", taskId=task_id)
    }
    assert settled == {v.me: ValidatorOutcome.REWARDED for v in validators}
