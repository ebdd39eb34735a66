"""A lazy validator loses money through the initiator's honeypots, on a real anvil and IPFS with the role
classes: the initiator commits a honeypot in every round and its bait trainer submits known-bad work
(a NaN state, rejected whatever its rewards: `--cheat poison` of an update that saw no reward signal is
honest work); two honest validators reject the bait, the lazy one (`Behaviour.LAZY`) accepts everything
unchecked. After each round's ballot the initiator reveals the honeypot and slashes the lazy validator; the
honest validators and the honest trainer are never slashed, and the audit flags exactly the lazy one."""

from __future__ import annotations

import pytest
from netharness import Net, drive, events, finished, joined

from protocol.audit import Kind
from protocol.audit.runner import audit, open_target
from protocol.contracts import Role, Verdict
from protocol.roles.base import Output, RoleNode
from protocol.roles.honeypots import HoneypotTerms
from protocol.roles.initiator import InitiatorNode
from protocol.roles.trainer import TrainerNode
from protocol.roles.validator import Behaviour, ValidatorNode

pytestmark = [pytest.mark.chain, pytest.mark.ipfs, pytest.mark.slow]


def test_a_lazy_validator_is_slashed_by_a_honeypot_and_the_honest_ones_are_not(net: Net) -> None:
    task_id = net.create_task(1, num_rounds=2)
    bait = TrainerNode(net.session(2), task_id, out=Output("honeypot"), cheat="nan-state")
    honest = TrainerNode(net.session(3), task_id, out=Output("trainer"))
    validators = [ValidatorNode(net.session(i), task_id, out=Output(f"validator-{i}")) for i in (4, 5)]
    lazy = ValidatorNode(net.session(6), task_id, out=Output("lazy"), behaviour=Behaviour.LAZY)
    initiator = InitiatorNode(
        net.session(1), task_id, honeypots=HoneypotTerms(rate=1.0, trainer=bait.me), out=Output("initiator")
    )
    roles: list[RoleNode] = [initiator, bait, honest, *validators, lazy]
    drive(roles, joined([bait, honest, *validators, lazy]), timeout=60)
    net.warp_to_start(task_id)
    drive(roles, finished(roles), timeout=300)

    d = net.deployment
    committed = events(net, d.honeypot_registry, "HoneypotCommitted", taskId=task_id)
    assert sorted(e["round"] for e in committed) == [0, 1]
    revealed = events(net, d.honeypot_registry, "HoneypotRevealed", taskId=task_id)
    assert revealed  # round 0's for sure (while the task is active); round 1's within the grace
    for e in revealed:
        assert (e["submitter"], Verdict(e["decision"])) == (bait.me, Verdict.REJECT)
    lazy_slashes = events(net, d.honeypot_registry, "LazySlashed", taskId=task_id)
    assert {e["validator"] for e in lazy_slashes} == {lazy.me}
    assert sorted(e["round"] for e in lazy_slashes) == sorted(e["round"] for e in revealed)
    slashed = {e["staker"] for e in events(net, d.stake_manager, "Slashed", taskId=task_id)}
    assert lazy.me in slashed
    assert bait.me in slashed  # the honeypot's price: the bait's stake, by the ordinary rules
    assert not slashed & {honest.me, *(v.me for v in validators)}
    for e in events(net, d.task_escrow, "SubmissionSettled", taskId=task_id):
        want = Verdict.REJECT if e["trainer"] == bait.me else Verdict.ACCEPT
        assert Verdict(e["decision"]) == want
    proto = net.session(1).proto
    assert proto.participant_of(task_id, lazy.me)[0] == Role.VALIDATOR
    # The lazy validator's journal shows it never looked: every verdict ACCEPT, no report of a check.
    verdicts = [int(entry.data["verdict"]) for entry in lazy.journal.entries("verdict")]
    assert verdicts
    assert set(verdicts) == {int(Verdict.ACCEPT)}

    result = audit(open_target(net.anvil.rpc_url, d.addresses), task=task_id, gas=False)
    flags = [x for x in result.discrepancies if x.kind == Kind.LAZY_VALIDATOR]
    others = [x.line() for x in result.discrepancies if x.kind != Kind.LAZY_VALIDATOR]
    assert len(flags) == len(revealed)
    assert all(lazy.me in x.subject for x in flags)
    assert others == [], others
