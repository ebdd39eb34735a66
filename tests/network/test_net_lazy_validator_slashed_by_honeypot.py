"""A lazy validator loses money through the initiator's honeypots, on a real anvil and IPFS with the role
classes, and the bait cannot be told from an honest trainer before the reveal: the initiator's bait plan
(a 0600 secret file, `protocol.baits`) picks round 1 of 3 as the only honeypot round; the bait trainer
reads the same file, trains honestly (and is paid) in rounds 0 and 2 and submits known-bad work in round 1
(`--cheat poison`, the only cheat a bait may use: the exact update check rejects it every time), with its
signed consent to the reveal beside the plan. The initiator commits every round before it opens (a decoy
for rounds 0 and 2). Two honest validators reject the bait in round 1, the lazy one (`Behaviour.LAZY`)
accepts everything unchecked; after round 1's ballot the initiator reveals the honeypot (with the bait's
consent) and slashes the lazy validator. The honest validators
and trainers are never slashed, and the audit flags exactly the lazy one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from netharness import Net, drive, events, finished, joined

from protocol.audit import Kind
from protocol.audit.runner import audit, open_target
from protocol.baits import BaitPlan, RoundScope, create_plan, load_plan, schedule
from protocol.contracts import Role, Verdict
from protocol.roles.base import Output, RoleNode
from protocol.roles.initiator import InitiatorNode
from protocol.roles.trainer import TrainerNode
from protocol.roles.validator import Behaviour, ValidatorNode

pytestmark = [pytest.mark.chain, pytest.mark.ipfs, pytest.mark.slow]

ROUNDS = 3


def plan_with_honeypot_in_round_1(directory: Path, scope: RoundScope, bait: str) -> Path:
    """A bait plan file (rate 1/2) whose only honeypot round of the task is round 1: fresh plans are drawn
    until one picks exactly that (1 in 8)."""
    for attempt in range(200):
        path = directory / f"plan-{attempt}.json"
        plan = create_plan(path, 0.5, [bait])
        if schedule(plan, scope, ROUNDS) == {1: bait}:
            return path
    raise AssertionError("no plan with a honeypot in round 1 only in 200 draws")


def log_position(net: Net, contract: Any, name: str, **filters: Any) -> list[tuple[int, int]]:
    """(block, log index) of each such event."""
    logs = net.deployer.get_logs(contract, name, net.deployment.addresses.block, **filters)
    return [(int(e["blockNumber"]), int(e["logIndex"])) for e in logs]


def test_a_lazy_validator_is_slashed_by_a_honeypot_and_the_honest_ones_are_not(
    net: Net, tmp_path: Path
) -> None:
    task_id = net.create_task(1, num_rounds=ROUNDS)
    bait_session = net.session(2)
    scope = RoundScope(bait_session.chain_id, net.deployment.addresses.task_escrow, task_id)
    secret = plan_with_honeypot_in_round_1(tmp_path, scope, bait_session.client.address)
    plan: BaitPlan = load_plan(secret)  # the same file for the initiator and its bait
    bait = TrainerNode(bait_session, task_id, out=Output("bait"), cheat="poison", bait_plan=plan)
    assert [bait.cheat_in(r) for r in range(ROUNDS)] == [None, "poison", None]
    honest = TrainerNode(net.session(3), task_id, out=Output("trainer"))
    validators = [ValidatorNode(net.session(i), task_id, out=Output(f"validator-{i}")) for i in (4, 5)]
    lazy = ValidatorNode(net.session(6), task_id, out=Output("lazy"), behaviour=Behaviour.LAZY)
    initiator = InitiatorNode(net.session(1), task_id, honeypots=plan, out=Output("initiator"))
    roles: list[RoleNode] = [initiator, bait, honest, *validators, lazy]
    drive(roles, joined([bait, honest, *validators, lazy]), timeout=60)
    net.warp_to_start(task_id)
    proto = net.session(1).proto
    drive(roles, lambda: proto.task_state(task_id).round >= 1, timeout=300)
    # The initiator restarts in round 1 (round 2's commitment may or may not be sent yet): its journal and
    # the plan give the same choices, nothing is committed twice.
    roles[0] = InitiatorNode(net.session(1), task_id, honeypots=load_plan(secret), out=Output("initiator"))
    drive(roles, finished(roles), timeout=600)

    d = net.deployment
    committed = events(net, d.honeypot_registry, "HoneypotCommitted", taskId=task_id)
    assert sorted(e["round"] for e in committed) == list(range(ROUNDS))  # decoys included: alike on chain
    # Each round was committed to before it opened: round 0 before the first submission, round r > 0
    # before round r-1 was finalised.
    commits = dict(
        zip(
            (e["round"] for e in committed),
            log_position(net, d.honeypot_registry, "HoneypotCommitted", taskId=task_id),
            strict=True,
        )
    )
    finalized = log_position(net, d.task_escrow, "RoundFinalized", taskId=task_id)
    submitted = log_position(net, d.task_escrow, "WorkSubmitted", taskId=task_id)
    assert commits[0] < min(submitted)
    for r in range(1, ROUNDS):
        assert commits[r] < finalized[r - 1]

    revealed = events(net, d.honeypot_registry, "HoneypotRevealed", taskId=task_id)
    assert [(e["round"], e["submitter"], Verdict(e["decision"])) for e in revealed] == [
        (1, bait.me, Verdict.REJECT)
    ]
    lazy_slashes = events(net, d.honeypot_registry, "LazySlashed", taskId=task_id)
    assert [(e["round"], e["validator"]) for e in lazy_slashes] == [(1, lazy.me)]
    slashed = {e["staker"] for e in events(net, d.stake_manager, "Slashed", taskId=task_id)}
    assert lazy.me in slashed
    assert bait.me in slashed  # the honeypot's price: the bait's stake, by the ordinary rules (round 1 only)
    assert not slashed & {honest.me, *(v.me for v in validators)}
    settled = events(net, d.task_escrow, "SubmissionSettled", taskId=task_id)
    by_bait = {e["round"]: (Verdict(e["decision"]), e["reward"]) for e in settled if e["trainer"] == bait.me}
    assert by_bait[1] == (Verdict.REJECT, 0)
    for r in (0, 2):  # an ordinary, paid trainer outside its honeypot round
        assert by_bait[r][0] == Verdict.ACCEPT, by_bait
        assert by_bait[r][1] > 0, by_bait
    others = [Verdict(e["decision"]) for e in settled if e["trainer"] != bait.me]
    assert set(others) == {Verdict.ACCEPT}
    assert proto.participant_of(task_id, lazy.me)[0] == Role.VALIDATOR
    # The lazy validator's journal shows it never looked: every verdict ACCEPT, no report of a check.
    verdicts = [int(entry.data["verdict"]) for entry in lazy.journal.entries("verdict")]
    assert verdicts
    assert set(verdicts) == {int(Verdict.ACCEPT)}

    result = audit(open_target(net.anvil.rpc_url, d.addresses), task=task_id, gas=False)
    flags = [x for x in result.discrepancies if x.kind == Kind.LAZY_VALIDATOR]
    unexpected = [x.line() for x in result.discrepancies if x.kind != Kind.LAZY_VALIDATOR]
    assert len(flags) == 1
    assert lazy.me in flags[0].subject
    assert unexpected == [], unexpected
