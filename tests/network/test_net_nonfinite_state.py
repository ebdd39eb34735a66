"""A trainer that writes NaN or +inf into its last training state theta_H (which is re-executed only when the
seed picks it) and submits the matching update base - theta_H, on a real network (anvil, js-ipfs, the role
classes): it is rejected for the non-finite values and slashed, no validator stops, the round agrees on the
aggregate of the honest updates, the honest trainers are paid, and the auditor reports the hostile values.
Even when a validator majority accepts such a submission, every validator leaves its update out of the
aggregate and the round still agrees on a model."""

from __future__ import annotations

import json

import pytest
from netharness import TRAINER_SLASH, Net, drive, events, finished, joined

from protocol.audit import Kind
from protocol.audit.runner import AuditResult, audit, open_target
from protocol.contracts import Verdict
from protocol.network import Submission
from protocol.roles.base import Output, RoleNode
from protocol.roles.initiator import InitiatorNode
from protocol.roles.trainer import TrainerNode
from protocol.roles.validator import ValidatorNode
from protocol.verification import Checked

pytestmark = [pytest.mark.chain, pytest.mark.ipfs, pytest.mark.slow]


class AcceptAll(ValidatorNode):
    """A validator that accepts every submission without looking (a cartel member)."""

    def _check(self, sub: Submission, seed: bytes, base_hash: bytes, commit_end: int) -> Checked | None:
        return Checked(Verdict.ACCEPT)


def _settled(net: Net, task_id: int) -> dict[str, tuple[Verdict, int, int]]:
    return {
        e["trainer"]: (Verdict(e["decision"]), int(e["reward"]), int(e["slashed"]))
        for e in events(net, net.deployment.task_escrow, "SubmissionSettled", taskId=task_id)
    }


def _play(net: Net, task_id: int, roles: list[RoleNode]) -> None:
    drive(roles, joined([r for r in roles if not isinstance(r, InitiatorNode)]), timeout=90)
    net.warp_to_start(task_id)
    drive(roles, finished(roles), timeout=300)  # any exception but a transient one fails the test


def _agreed(net: Net, task_id: int) -> bytes:
    (agreed,) = events(net, net.deployment.attestation_registry, "ModelAgreed", taskId=task_id)
    votes = events(net, net.deployment.attestation_registry, "ModelVoted", taskId=task_id)
    assert {bytes(v["modelHash"]) for v in votes} == {bytes(agreed["modelHash"])}  # every validator agreed
    return bytes(agreed["modelHash"])


def _audit(net: Net, task_id: int) -> AuditResult:
    from protocol.ipfs import ArtifactStore

    target = open_target(net.anvil.rpc_url, net.deployment.addresses)
    with ArtifactStore(net.ipfs.api_url, retries=1, find_timeout=1.0) as store:
        return audit(target, task=task_id, store=store, gas=False, accuracy=False)


def test_nan_and_inf_states_are_rejected_and_the_round_agrees_a_model(net: Net) -> None:
    task_id = net.create_task(1, commit_duration=90, vote_duration=40)
    honest = [TrainerNode(net.session(i), task_id, out=Output(f"trainer-{i}")) for i in (2, 3)]
    cheaters = [
        TrainerNode(net.session(4), task_id, out=Output("nan"), cheat="nan-state"),
        TrainerNode(net.session(5), task_id, out=Output("inf"), cheat="inf-state"),
    ]
    validators = [ValidatorNode(net.session(i), task_id, out=Output(f"validator-{i}")) for i in (6, 7, 8)]
    _play(net, task_id, [InitiatorNode(net.session(1), task_id), *honest, *cheaters, *validators])

    outcome = _settled(net, task_id)
    for t in honest:
        assert outcome[t.me][0] == Verdict.ACCEPT
        assert outcome[t.me][1] > 0
    for t, what in zip(cheaters, ("NaN", "infinite"), strict=True):
        assert outcome[t.me] == (Verdict.REJECT, 0, TRAINER_SLASH)
        for v in validators:
            index = next(s.index for s in v.view.submissions(0) if s.trainer == t.me)
            reasons = json.loads((v.dir / "round-0" / f"verdict-{index}.json").read_text())["reasons"]
            assert any("theta_2" in r and what in r for r in reasons), reasons
    _agreed(net, task_id)
    honest_indices = sorted(
        s.index for s in validators[0].view.submissions(0) if s.trainer in {t.me for t in honest}
    )
    for v in validators:
        entry = v.journal.entry("aggregate", "0")
        assert entry is not None
        assert sorted(entry.data["accepted"]) == honest_indices
    assert net.session(1).proto.funds_of(task_id) == (0, 0)  # everything paid out or refunded

    result = _audit(net, task_id)
    found = sorted((d.kind, d.subject) for d in result.discrepancies)
    assert [k for k, _ in found] == [Kind.HOSTILE_VALUES, Kind.HOSTILE_VALUES], found
    assert {t.me for t in cheaters} == {s.split("(")[1].rstrip(")") for _, s in found}
    assert result.verified["verdicts"] == 4  # the auditor's verdicts are the chain's
    assert [a.status for a in result.reverify.aggregates] == ["match"]  # type: ignore[union-attr]


def test_a_majority_accepting_a_nan_state_cannot_stop_the_round(net: Net) -> None:
    task_id = net.create_task(9, commit_duration=60, vote_duration=40)
    trainers = [TrainerNode(net.session(10), task_id, out=Output("trainer"))]
    cheater = TrainerNode(net.session(11), task_id, out=Output("nan"), cheat="nan-state")
    honest = ValidatorNode(net.session(12), task_id, out=Output("honest validator"))
    cartel = [AcceptAll(net.session(i), task_id, out=Output(f"cartel-{i}")) for i in (13, 14)]
    _play(net, task_id, [InitiatorNode(net.session(9), task_id), *trainers, cheater, honest, *cartel])

    outcome = _settled(net, task_id)
    assert outcome[cheater.me][0] == Verdict.ACCEPT  # the cartel had its way with the verdict ...
    agreed = _agreed(net, task_id)  # ... but not with the model: every validator left the NaN update out
    for v in (honest, *cartel):
        entry = v.journal.entry("aggregate", "0")
        assert entry is not None
        assert entry.data["hash"] == "0x" + agreed.hex()
        assert [s.trainer for s in v.view.submissions(0) if s.index in entry.data["accepted"]] == [
            trainers[0].me
        ]

    result = _audit(net, task_id)
    kinds = sorted(d.kind for d in result.discrepancies)
    assert kinds == sorted([Kind.VERDICT, Kind.HOSTILE_VALUES]), [d.line() for d in result.discrepancies]
    (agg,) = result.reverify.aggregates  # type: ignore[union-attr]
    assert agg.status == "match"
    assert len(agg.left_out) == 1
    assert "NaN" in agg.left_out[0]
