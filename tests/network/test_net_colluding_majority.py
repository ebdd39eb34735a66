"""Two of three validators collude on a real network (anvil, js-ipfs, the role classes): they accept a
cheater's forged work and reject an honest trainer's. With the whole pool judging every submission (no
committees) two thirds of the seats decide alone, so the cartel wins on chain: the
cheater is paid, the honest victim slashed, the colluders paid and the one honest validator forfeits its
share. What answers it today is the audit, which re-verifies every submission and names both wrong
decisions with the evidence an appeal would carry (`scripts/bench_security.py` prints this row OPEN; the
docs' "Collusion" section says what committees change). This test pins that state: when an on-chain answer
lands, its expectations flip."""

from __future__ import annotations

import pytest
from netharness import TRAINER_SLASH, Net, drive, events, finished, joined

from protocol.audit import Kind
from protocol.audit.runner import audit, open_target
from protocol.contracts import ValidatorOutcome, Verdict
from protocol.ipfs import ArtifactStore
from protocol.network import Submission
from protocol.roles.base import Output, RoleNode
from protocol.roles.initiator import InitiatorNode
from protocol.roles.trainer import TrainerNode
from protocol.roles.validator import ValidatorNode
from protocol.verification import Checked

pytestmark = [pytest.mark.chain, pytest.mark.ipfs, pytest.mark.slow]


class Colluder(ValidatorNode):
    """A cartel member: ACCEPTs its accomplice unchecked, REJECTs its victim unchecked, checks the rest."""

    accomplice = ""
    victim = ""

    def _check(self, sub: Submission, seed: bytes, base_hash: bytes, commit_end: int) -> Checked | None:
        if sub.trainer == self.accomplice:
            return Checked(Verdict.ACCEPT, ["the cartel's accomplice"])
        if sub.trainer == self.victim:
            return Checked(Verdict.REJECT, ["the cartel's victim"])
        return super()._check(sub, seed, base_hash, commit_end)


def test_a_colluding_two_thirds_decides_on_chain_and_the_audit_names_it(net: Net) -> None:
    task_id = net.create_task(1, commit_duration=120, reveal_duration=60, vote_duration=60)
    bystander, victim = (TrainerNode(net.session(i), task_id, out=Output(f"trainer-{i}")) for i in (2, 3))
    cheater = TrainerNode(net.session(4), task_id, out=Output("cheater"), cheat="forge-rewards")
    cartel = [Colluder(net.session(i), task_id, out=Output(f"colluder-{i}")) for i in (5, 6)]
    for member in cartel:
        member.accomplice, member.victim = cheater.me, victim.me
    honest = ValidatorNode(net.session(7), task_id, out=Output("validator-7"))
    roles: list[RoleNode] = [
        InitiatorNode(net.session(1), task_id),
        bystander,
        victim,
        cheater,
        *cartel,
        honest,
    ]
    drive(roles, joined(roles[1:]), timeout=90)
    net.warp_to_start(task_id)
    drive(roles, finished(roles), timeout=300)

    d = net.deployment
    settled = {
        e["trainer"]: (Verdict(e["decision"]), int(e["reward"]), int(e["slashed"]))
        for e in events(net, d.task_escrow, "SubmissionSettled", taskId=task_id)
    }
    decision, reward, slashed = settled[cheater.me]
    assert (decision, slashed) == (Verdict.ACCEPT, 0)
    assert reward > 0
    assert settled[victim.me] == (Verdict.REJECT, 0, TRAINER_SLASH)
    assert settled[bystander.me][0] == Verdict.ACCEPT
    outcomes = {
        e["validator"]: ValidatorOutcome(e["outcome"])
        for e in events(net, d.task_escrow, "ValidatorSettled", taskId=task_id)
    }
    assert outcomes == {
        cartel[0].me: ValidatorOutcome.REWARDED,
        cartel[1].me: ValidatorOutcome.REWARDED,
        honest.me: ValidatorOutcome.FORFEITED,  # its verdicts were right; the decisions were not
    }

    with ArtifactStore(net.ipfs.api_url, retries=1, find_timeout=1.0) as store:
        result = audit(
            open_target(net.anvil.rpc_url, d.addresses), task=task_id, store=store, gas=False, accuracy=False
        )
    index = {e["trainer"]: e["index"] for e in events(net, d.task_escrow, "WorkSubmitted", taskId=task_id)}
    found = sorted((f.kind, f.round, f.subject, f.expected, f.actual) for f in result.discrepancies)
    assert found == sorted(
        [
            (Kind.VERDICT, 0, f"submission {index[victim.me]} ({victim.me})", "ACCEPT", "REJECT"),
            (Kind.VERDICT, 0, f"submission {index[cheater.me]} ({cheater.me})", "REJECT", "ACCEPT"),
        ]
    )
