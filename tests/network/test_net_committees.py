"""Stake-weighted committees on a real network (anvil, js-ipfs, the role objects): four validators of
unequal stake and committees of two draws per submission. Each validator checks only the submissions it
was drawn for (and commits NONE elsewhere); the honest trainers are paid, the cheater is rejected and
slashed, no honest participant is slashed, each drawn validator is paid per draw, and the audit (which
recomputes the draws) is clean."""

from __future__ import annotations

import json

import pytest
from netharness import TOKENS, TRAINER_SLASH, Net, drive, events, finished, joined

from protocol import committees
from protocol.contracts import TaskStatus, ValidatorOutcome, Verdict
from protocol.roles.base import Output, RoleNode
from protocol.roles.initiator import InitiatorNode
from protocol.roles.trainer import TrainerNode
from protocol.roles.validator import ValidatorNode

pytestmark = [pytest.mark.chain, pytest.mark.ipfs]

DRAWS = 2
ALLOCATIONS = {5: 10, 6: 20, 7: 10, 8: 30}
"""Validator account -> tokens allocated before joining (the minimum is 10: weights 1, 2, 1, 3)."""


def test_committees_check_only_their_draws_and_pay_per_draw(net: Net) -> None:
    from protocol.audit.runner import audit, open_target
    from protocol.ipfs import ArtifactStore

    task_id = net.create_task(1, warm_start=True, committee_draws=DRAWS, quorum=2, commit_duration=120)
    honest = [TrainerNode(net.session(i), task_id, out=Output(f"trainer-{i}")) for i in (2, 3)]
    cheater = TrainerNode(net.session(4), task_id, out=Output("cheater"), cheat="forge-rewards")
    for i, tokens in ALLOCATIONS.items():
        net.session(i).proto.allocate(task_id, tokens * TOKENS)
    validators = [ValidatorNode(net.session(i), task_id, out=Output(f"validator-{i}")) for i in ALLOCATIONS]
    roles: list[RoleNode] = [InitiatorNode(net.session(1), task_id), *honest, cheater, *validators]
    drive(roles[1:], joined(roles[1:]), timeout=60)
    net.warp_to_start(task_id)
    drive(roles, finished(roles), timeout=300)

    proto, d = net.session(1).proto, net.deployment
    assert proto.task_state(task_id).status == TaskStatus.COMPLETED
    draws, seed, total = proto.committee_of(task_id, 0)
    assert (draws, total) == (DRAWS, sum(ALLOCATIONS.values()) // 10)
    n = proto.ballot_of(task_id, 0).submissions
    assert n == 3
    line = committees.line_of(
        [(v.me, ALLOCATIONS[i] // 10, 0) for i, v in zip(ALLOCATIONS, validators, strict=True)]
    )
    mults = {s.validator: committees.multiplicities(seed, n, draws, total, s.offset, s.weight) for s in line}
    for v in validators:
        assert proto.multiplicities_of(task_id, 0, v.me) == mults[v.me]
        # Checked exactly its draws: a journalled verdict for those, none for the others.
        checked = [i for i in range(n) if v.journal.entry("verdict", f"0:{i}") is not None]
        assert checked == committees.drawn_fields(mults[v.me]), v.me
    assert sum(sum(m) for m in mults.values()) == n * DRAWS

    outcome = {
        e["trainer"]: (Verdict(e["decision"]), int(e["reward"]), int(e["slashed"]))
        for e in events(net, d.task_escrow, "SubmissionSettled", taskId=task_id)
    }
    for t in honest:
        verdict, reward, slashed = outcome[t.me]
        assert (verdict, slashed) == (Verdict.ACCEPT, 0)
        assert reward > 0
    assert outcome[cheater.me] == (Verdict.REJECT, 0, TRAINER_SLASH)
    (finalized,) = events(net, d.task_escrow, "RoundFinalized", taskId=task_id)
    assert finalized["revealed"] == n * DRAWS  # every draw revealed: the pool is split per draw
    share = int(finalized["validatorShare"])
    settled = {e["validator"]: e for e in events(net, d.task_escrow, "ValidatorSettled", taskId=task_id)}
    assert set(settled) == {v.me for v in validators}
    for v in validators:
        e, weight = settled[v.me], sum(mults[v.me])
        got = (ValidatorOutcome(e["outcome"]), int(e["amount"]))
        if weight:
            assert got == (ValidatorOutcome.REWARDED, share * weight)
        else:
            assert got == (ValidatorOutcome.NOT_DRAWN, 0)
    slashed = {e["staker"] for e in events(net, d.stake_manager, "Slashed", taskId=task_id)}
    assert slashed == {cheater.me}
    with ArtifactStore(net.ipfs.api_url, find_timeout=5.0) as store:
        result = audit(open_target(net.anvil.rpc_url, d.addresses), task=task_id, store=store, accuracy=False)
    assert result.ok, [str(x) for x in result.discrepancies]
    # `trustrl task status --json` lists each submission's committee with its draws.
    done = net.cli("task", "status", str(task_id), "--network", str(net.network_file), "--json", check=True)
    status = json.loads(done.stdout)
    assert status["committee_draws"] == DRAWS
    (round0,) = status["rounds"]
    want = [{v: m[i] for v, m in mults.items() if m[i]} for i in range(n)]
    assert [c["validators"] for c in round0["committees"]] == want
