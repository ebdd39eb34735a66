"""Validators and the auditor judge every submission the same way, because they run one pipeline
(`protocol.verification`): a round on a real network (anvil, js-ipfs, the role classes) with an honest
trainer, a NaN-state and a poisoning trainer, and forgers who publish, with otherwise consistent
commitments, a manifest other than the committed one, a bundle that is not JSON, an update over the
task's limit, a manifest that disagrees with the chain, a state with a tensor of the wrong dtype, a
truncated update, and a state nobody serves. Each validator's verdict and reasons, as it committed and
reported them, equal the auditor's re-verification of the recorded history, submission by submission."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable

import pytest
from forge import Forged, Honest, Tensors, publish, train, weights_of
from netharness import Net, drive, finished, joined

from protocol.audit.runner import audit, open_target
from protocol.contracts import Role, Verdict, WorkSubmission
from protocol.ipfs import ArtifactStore
from protocol.journal import Journal
from protocol.network import TaskView
from protocol.roles.base import Output, RoleNode, ensure_joined
from protocol.roles.initiator import InitiatorNode
from protocol.roles.trainer import TrainerNode
from protocol.roles.validator import ValidatorNode
from protocol.verification import TaskContext
from trainer.diloco import encode_update, load_global_checkpoint, pseudo_gradient

pytestmark = [pytest.mark.chain, pytest.mark.ipfs, pytest.mark.slow]

R, U = Verdict.REJECT, Verdict.UNAVAILABLE
Forgery = Callable[[TaskContext, bytes, Honest, object], tuple[Forged, set[str]]]
"""(task, base, honest work, account) -> (what to publish and commit, CIDs not to upload)."""


def _honest_update(task: TaskContext, base: bytes, honest: Honest) -> bytes:
    delta = pseudo_gradient(load_global_checkpoint(base)[0], weights_of(honest.states[task.spec.inner.steps]))
    return encode_update(delta, task.spec.inner.compression)


def _other_manifest(
    task: TaskContext, base: bytes, honest: Honest, account: object
) -> tuple[Forged, set[str]]:
    forged = publish(task, base, honest, account)  # type: ignore[arg-type]
    wrong = dataclasses.replace(forged.sub, update_hash=hashlib.sha256(b"another manifest").digest())
    return dataclasses.replace(forged, sub=wrong), set()


def _wrong_dtype(j: int, ts: Tensors) -> Tensors:
    name = sorted(ts)[0]
    return {**ts, name: ts[name].double()} if j == 1 else ts  # theta_1 is read whatever the seed picks (H=2)


def _withheld(task: TaskContext, base: bytes, honest: Honest, account: object) -> tuple[Forged, set[str]]:
    H = task.spec.inner.steps

    def unique(j: int, ts: Tensors) -> Tensors:
        # Without a perturbation, a theta_H whose steps saw no reward signal (every group's advantage 0)
        # is byte-identical to every other such trainer's, and the daemon serves it from their upload.
        name = sorted(k for k in ts if k.startswith("model/"))[0]
        if j == H:
            ts[name].view(-1)[0] += 1e-3
        return ts

    forged = publish(task, base, honest, account, states=unique)  # type: ignore[arg-type]
    manifest = json.loads(forged.artifacts[forged.sub.update_cid])
    return forged, {manifest["states"][-1]["cid"]}  # theta_H is always read (theta_0 is every trainer's)


def _simple(**edits: object) -> Forgery:
    def make(task: TaskContext, base: bytes, honest: Honest, account: object) -> tuple[Forged, set[str]]:
        resolved = {
            k: v(task, base, honest) if callable(v) and k == "update" else v for k, v in edits.items()
        }
        return publish(task, base, honest, account, **resolved), set()  # type: ignore[arg-type]

    return make


FORGERIES: dict[str, tuple[Forgery, Verdict, str]] = {
    "another manifest": (_other_manifest, R, "was committed"),
    "bundle not JSON": (_simple(bundle=b"{not json"), R, "not a valid RolloutBundle"),
    "update over the limit": (
        _simple(update=lambda t, b, h: b"\0" * (t.spec.limits.update + 1)),
        R,
        "exceeds the limit",
    ),
    "manifest disagrees": (_simple(manifest=lambda m: {**m, "round": 1}), R, "manifest round is 1"),
    "state of the wrong dtype": (_simple(states=_wrong_dtype), R, "theta_1 unusable"),
    "truncated update": (
        _simple(update=lambda t, b, h: _honest_update(t, b, h)[:-5]),
        R,
        "update unreadable",
    ),
    "state nobody serves": (_withheld, U, "not found"),
}


def test_validators_and_the_auditor_give_the_same_verdicts(net: Net) -> None:
    task_id = net.create_task(1, submit_duration=300, commit_duration=240, vote_duration=60)
    trainers = {
        "honest": TrainerNode(net.session(2), task_id, out=Output("honest")),
        "nan state": TrainerNode(net.session(3), task_id, out=Output("nan"), cheat="nan-state"),
        "poison": TrainerNode(net.session(4), task_id, out=Output("poison"), cheat="poison"),
    }
    validators = [
        ValidatorNode(net.session(i), task_id, out=Output(f"validator-{i}"), unavailable_margin=200)
        for i in (5, 6, 7)
    ]
    forgers = {name: TaskView(net.session(8 + n), task_id) for n, name in enumerate(FORGERIES)}
    for view in forgers.values():
        ensure_joined(view, Role.TRAINER, Journal(net.home / f"{view.proto.address}.jsonl"), Output("forger"))
    roles: list[RoleNode] = [InitiatorNode(net.session(1), task_id), *trainers.values(), *validators]
    drive(roles, joined(roles[1:]), timeout=90)
    net.warp_to_start(task_id)

    expected: dict[str, tuple[Verdict, str]] = {
        "honest": (Verdict.ACCEPT, ""), "nan state": (R, "NaN"), "poison": (R, "update"),
    }  # fmt: skip
    store = net.session(1).store
    for name, view in forgers.items():
        make, verdict, why = FORGERIES[name]
        session = view.session
        deployment = session.config.deployment
        task = TaskContext(session.chain_id, deployment.task_escrow, task_id, view.spec)
        base = view.checkpoint(view.proto.base_model_of(task_id))
        forged, withheld = make(task, base, train(task, base, view.proto.address), session.client.account)
        for cid, data in forged.artifacts.items():
            if cid not in withheld:
                assert store.put_bytes(data).cid == cid
        sub = forged.sub
        view.proto.submit_work(task_id, 0, WorkSubmission(
            bundle_hash=sub.bundle_hash, bundle_cid=sub.bundle_cid, update_hash=sub.update_hash,
            update_cid=sub.update_cid, proof_root=sub.proof_root, state_root=sub.state_root,
            work_units=sub.work_units,
        ))  # fmt: skip
        expected[name] = (verdict, why)
    drive(roles, finished(roles), timeout=600)

    who = {t.me: name for name, t in trainers.items()} | {v.proto.address: n for n, v in forgers.items()}
    subs = validators[0].view.submissions(0)
    assert sorted(who[s.trainer] for s in subs) == sorted(expected)
    with ArtifactStore(net.ipfs.api_url, retries=1, find_timeout=1.0) as audit_store:
        result = audit(
            open_target(net.anvil.rpc_url, net.deployment.addresses),
            task=task_id, store=audit_store, gas=False, accuracy=False,
        )  # fmt: skip
    assert result.reverify is not None
    auditor = {c.index: c for c in result.reverify.submissions}
    for sub in subs:
        name = who[sub.trainer]
        verdict, why = expected[name]
        check = auditor[sub.index]
        assert (check.chain, check.auditor) == (verdict, verdict), (name, check.reasons)
        assert any(why in r for r in check.reasons) or not why, (name, check.reasons)
        for v in validators:
            entry = v.journal.entry("verdict", f"0:{sub.index}")
            assert entry is not None
            assert Verdict(int(entry.data["verdict"])) == verdict, name
            reported = json.loads((v.dir / "round-0" / f"verdict-{sub.index}.json").read_text())["reasons"]
            if verdict != U:  # a missing artifact's message names how long the daemon looked
                assert reported == check.reasons[:50], name
