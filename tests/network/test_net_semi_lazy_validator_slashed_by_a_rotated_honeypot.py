"""A semi-lazy validator (`Behaviour.SEMI_LAZY`, `trustrl validate --semi-lazy`: the cheap checks only, no
replay, no re-execution, no quality gate) is slashed by every rotated honeypot, on a real anvil and IPFS
with the role classes (the set-up of test_net_lazy_validator_slashed_by_honeypot.py). The bait's defect
rotates over the defects only an expensive check sees (`protocol.baits.ROTATION`: `every-step`, seen by the
re-execution of the picked steps, and `every-rollout`, by the sampling replay), so the cheap checks see
none of them. The bait plan puts honeypots in rounds 1 and 2 of 3, one of each defect; the bait runs
`--cheat bait` and trains honestly in round 0. Two honest validators reject both honeypots and are never
slashed; the semi-lazy one accepts both and is slashed for each. The audit flags exactly it, once per
honeypot."""

from __future__ import annotations

from pathlib import Path

import pytest
from netharness import Net, drive, events, finished, joined

from protocol.audit import Kind
from protocol.audit.runner import audit, open_target
from protocol.baits import (
    EXPENSIVE_DEFECTS,
    ROTATION,
    BaitPlan,
    RoundScope,
    create_plan,
    honeypot_defect,
    load_plan,
    schedule,
)
from protocol.contracts import Verdict
from protocol.roles.base import Output, RoleNode
from protocol.roles.initiator import InitiatorNode
from protocol.roles.trainer import TrainerNode
from protocol.roles.validator import Behaviour, ValidatorNode

pytestmark = [pytest.mark.chain, pytest.mark.ipfs, pytest.mark.slow]

ROUNDS = 3
GRACE = 300
"""The settlement grace of the test's own deployment: round 2's honeypot is revealed and its lazy slash
sent after the task ended, within the grace (the network tests' shared deployment has 1 s, a race on a
loaded machine: the initiator found "the honeypot window closed" in a CI run)."""


@pytest.fixture
def graced_net(net: Net, tmp_path: Path) -> Net:
    """A deployment of its own with `GRACE`, on the network tests' anvil and IPFS."""
    return net.own_deployment(tmp_path, settlement_grace=GRACE)


def plan_with_both_rotated_defects(directory: Path, scope: RoundScope, bait: str) -> Path:
    """A bait plan file (rate 1/2) whose honeypots are rounds 1 and 2, one with each defect of `ROTATION`:
    fresh plans are drawn until one does (1 in 16)."""
    for attempt in range(1000):
        path = directory / f"plan-{attempt}.json"
        plan = create_plan(path, 0.5, [bait])
        if schedule(plan, scope, ROUNDS) == {1: bait, 2: bait} and sorted(
            honeypot_defect(plan, scope, r) for r in (1, 2)
        ) == sorted(ROTATION):
            return path
        path.unlink()
    raise AssertionError("no such plan in 1000 draws")


def test_a_semi_lazy_validator_is_slashed_by_every_rotated_honeypot(graced_net: Net, tmp_path: Path) -> None:
    net = graced_net
    task_id = net.create_task(1, num_rounds=ROUNDS)
    bait_session = net.session(2)
    scope = RoundScope(bait_session.chain_id, net.deployment.addresses.task_escrow, task_id)
    secret = plan_with_both_rotated_defects(tmp_path, scope, bait_session.client.address)
    plan: BaitPlan = load_plan(secret)
    bait = TrainerNode(bait_session, task_id, out=Output("bait"), cheat="bait", bait_plan=plan)
    assert set(ROTATION) == set(EXPENSIVE_DEFECTS)
    defects = [bait.cheat_in(r) for r in range(ROUNDS)]
    assert defects[0] is None
    assert sorted(d for d in defects[1:] if d is not None) == sorted(ROTATION)
    honest = TrainerNode(net.session(3), task_id, out=Output("trainer"))
    validators = [ValidatorNode(net.session(i), task_id, out=Output(f"validator-{i}")) for i in (4, 5)]
    semi = ValidatorNode(net.session(6), task_id, out=Output("semi-lazy"), behaviour=Behaviour.SEMI_LAZY)
    initiator = InitiatorNode(net.session(1), task_id, honeypots=plan, out=Output("initiator"))
    roles: list[RoleNode] = [initiator, bait, honest, *validators, semi]
    drive(roles, joined([bait, honest, *validators, semi]), timeout=60)
    net.warp_to_start(task_id)
    drive(roles, finished(roles), timeout=900)

    d = net.deployment
    revealed = events(net, d.honeypot_registry, "HoneypotRevealed", taskId=task_id)
    assert sorted((e["round"], e["submitter"], Verdict(e["decision"])) for e in revealed) == [
        (1, bait.me, Verdict.REJECT),
        (2, bait.me, Verdict.REJECT),
    ]
    lazy_slashes = events(net, d.honeypot_registry, "LazySlashed", taskId=task_id)
    assert sorted((e["round"], e["validator"]) for e in lazy_slashes) == [(1, semi.me), (2, semi.me)]
    slashed = {e["staker"] for e in events(net, d.stake_manager, "Slashed", taskId=task_id)}
    assert semi.me in slashed
    assert not slashed & {honest.me, *(v.me for v in validators)}
    settled = events(net, d.task_escrow, "SubmissionSettled", taskId=task_id)
    by_bait = {e["round"]: Verdict(e["decision"]) for e in settled if e["trainer"] == bait.me}
    assert by_bait == {0: Verdict.ACCEPT, 1: Verdict.REJECT, 2: Verdict.REJECT}
    assert {Verdict(e["decision"]) for e in settled if e["trainer"] != bait.me} == {Verdict.ACCEPT}
    # It looked, cheaply, and saw neither defect: it accepted both baits.
    mine = {
        tuple(int(x) for x in entry.key.split(":")[:2]): int(entry.data["verdict"])
        for entry in semi.journal.entries("verdict")
    }
    bait_index = {e["round"]: e["index"] for e in events(net, d.task_escrow, "WorkSubmitted", taskId=task_id)
                  if e["trainer"] == bait.me}  # fmt: skip
    assert mine[(1, bait_index[1])] == int(Verdict.ACCEPT)
    assert mine[(2, bait_index[2])] == int(Verdict.ACCEPT)

    result = audit(open_target(net.anvil.rpc_url, d.addresses), task=task_id, gas=False)
    flags = [x for x in result.discrepancies if x.kind == Kind.LAZY_VALIDATOR]
    unexpected = [x.line() for x in result.discrepancies if x.kind != Kind.LAZY_VALIDATOR]
    assert len(flags) == 2
    assert all(semi.me in x.subject for x in flags)
    assert unexpected == [], unexpected
