"""Two stealthy cheaters on a real network (anvil, js-ipfs, the role classes): one poisons training step 0
(the LM head's EOS row negated, then honest training; re-executed only when the seed picks step 0), one
replaces a rollout per step by "answer + EOS" with reward 1 and junk proofs and trains on it. Both are
rejected and slashed whatever the seed picks (the poisoned step by its re-execution or, when the seed spares
it, by the quality gate; the fabricated rollouts by the TOPLOC replay of every rollout), no validator stops,
the round agrees on the aggregate of the honest updates, the honest trainers are paid, nothing is lost, and
the auditor reproduces every verdict and the aggregate."""

from __future__ import annotations

import json

import pytest
from netharness import TRAINER_SLASH, Net, drive, events, finished, joined

from protocol.audit.runner import audit, open_target
from protocol.contracts import Verdict
from protocol.roles.base import Output, RoleNode
from protocol.roles.initiator import InitiatorNode
from protocol.roles.trainer import TrainerNode
from protocol.roles.validator import ValidatorNode
from protocol.wire import picked_steps

pytestmark = [pytest.mark.chain, pytest.mark.ipfs, pytest.mark.slow]


def _reasons(v: ValidatorNode, trainer: str) -> list[str]:
    index = next(s.index for s in v.view.submissions(0) if s.trainer == trainer)
    return list(json.loads((v.dir / "round-0" / f"verdict-{index}.json").read_text())["reasons"])


def test_a_poisoned_step_and_fabricated_rollouts_are_rejected_and_the_round_agrees(net: Net) -> None:
    task_id = net.create_task(1, commit_duration=120, vote_duration=40)
    honest = [TrainerNode(net.session(i), task_id, out=Output(f"trainer-{i}")) for i in (2, 3)]
    poisoner = TrainerNode(net.session(4), task_id, out=Output("poison-step"), cheat="poison-step")
    fabricator = TrainerNode(net.session(5), task_id, out=Output("fabricate"), cheat="fabricate")
    validators = [ValidatorNode(net.session(i), task_id, out=Output(f"validator-{i}")) for i in (6, 7, 8)]
    roles: list[RoleNode] = [
        InitiatorNode(net.session(1), task_id),
        *honest,
        poisoner,
        fabricator,
        *validators,
    ]
    drive(roles, joined([r for r in roles if not isinstance(r, InitiatorNode)]), timeout=90)
    net.warp_to_start(task_id)
    drive(roles, finished(roles), timeout=400)  # any exception but a transient one fails the test

    settled = {
        e["trainer"]: (Verdict(e["decision"]), int(e["reward"]), int(e["slashed"]))
        for e in events(net, net.deployment.task_escrow, "SubmissionSettled", taskId=task_id)
    }
    for t in honest:
        assert settled[t.me][0] == Verdict.ACCEPT
        assert settled[t.me][1] > 0
        assert settled[t.me][2] == 0
    for t in (poisoner, fabricator):
        assert settled[t.me] == (Verdict.REJECT, 0, TRAINER_SLASH)

    seed = net.session(1).proto.seed_of(task_id, 0)
    spec = validators[0].view.spec
    step_0_picked = 0 in picked_steps(seed, poisoner.me, spec.sample_steps, spec.inner.steps)
    for v in validators:
        reasons = _reasons(v, poisoner.me)
        if step_0_picked:
            assert any(r.startswith("step 0:") for r in reasons), reasons
        assert any(r.startswith("quality:") for r in reasons), reasons  # whatever the seed picked
        assert any(r.startswith("toploc") for r in _reasons(v, fabricator.me))

    (agreed,) = events(net, net.deployment.attestation_registry, "ModelAgreed", taskId=task_id)
    votes = events(net, net.deployment.attestation_registry, "ModelVoted", taskId=task_id)
    assert {bytes(v["modelHash"]) for v in votes} == {bytes(agreed["modelHash"])}
    honest_indices = sorted(
        s.index for s in validators[0].view.submissions(0) if s.trainer in {t.me for t in honest}
    )
    for v in validators:
        entry = v.journal.entry("aggregate", "0")
        assert entry is not None
        assert sorted(entry.data["accepted"]) == honest_indices
    proto = net.session(1).proto
    assert proto.funds_of(task_id) == (0, 0)
    assert all(proto.credit_of(r.me) == 0 for r in roles)

    from protocol.ipfs import ArtifactStore

    target = open_target(net.anvil.rpc_url, net.deployment.addresses)
    with ArtifactStore(net.ipfs.api_url, retries=1, find_timeout=1.0) as store:
        result = audit(target, task=task_id, store=store, gas=False, accuracy=False)
    assert result.discrepancies == [], [d.line() for d in result.discrepancies]
    assert result.verified["verdicts"] == 4
    assert [a.status for a in result.reverify.aggregates] == ["match"]  # type: ignore[union-attr]
