"""A task whose policy is its own Hugging Face model, on a real network (anvil, js-ipfs, the role classes):
the initiator pins the directory's config and tokenizer on IPFS and publishes its weights as round 0's
checkpoint; two trainers and two validators load the model from IPFS alone; one round is accepted,
aggregated and audited with 0 discrepancies.

Two cases: the whole model trains (`full`: the agreed model is the base moved by the updates), and LoRA
(`lora`: round 0's checkpoint is the model plus seeded adapters, the states and updates are adapter-only,
the agreed model moves the adapters only and the frozen base is byte for byte the same)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from netharness import TINY_TASK, WARMSTART, Net, any_update_moves, drive, events, finished, joined

from protocol.audit.runner import audit, open_target
from protocol.contracts import Verdict
from protocol.ipfs import ArtifactStore
from protocol.roles.base import Output, RoleNode
from protocol.roles.initiator import InitiatorNode, TaskFile, create_task
from protocol.roles.trainer import TrainerNode
from protocol.roles.validator import ValidatorNode
from trainer.config import WarmStartConfig
from trainer.diloco import load_global_checkpoint
from trainer.envs import get_env
from trainer.lora import is_trained
from trainer.pretrained import make_offline_model

pytestmark = [pytest.mark.chain, pytest.mark.ipfs, pytest.mark.slow]

LORA = {"rank": 2, "alpha": 4, "targets": ["q_proj", "v_proj", "up_proj"]}


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny Qwen2 (the network tests' model size) with a BPE tokenizer, warm-started (~3 s) so that rewards
    differ within groups and the round's updates are most likely not zero."""
    env = get_env("addition", {"digits": 1})
    warm = WarmStartConfig.model_validate(WARMSTART)
    size = {"hidden_size": 32, "num_layers": 1, "num_heads": 2, "num_kv_heads": 2, "intermediate_size": 64}
    directory = tmp_path_factory.mktemp("hf") / "qwen2"
    return make_offline_model(
        directory, env, arch="qwen2", warmstart=warm, max_position_embeddings=32, **size
    )


@pytest.mark.parametrize("lora", [None, LORA], ids=["full", "lora"])
def test_a_round_with_a_pretrained_model_is_accepted_aggregated_and_audited(
    net: Net, model_dir: Path, lora: dict[str, Any] | None
) -> None:
    data = {k: v for k, v in TINY_TASK.items() if k != "model"}
    data["initial"] = {"pretrained": str(model_dir)}
    data["inner"] = {**TINY_TASK["inner"], "max_new_tokens": 4}
    if lora is not None:
        data["lora"] = lora
    task = TaskFile.model_validate(data)
    task_id = create_task(net.session(1), task, Output("initiator"))
    view = InitiatorNode(net.session(1), task_id).view
    spec = view.spec
    assert spec.pretrained is not None
    assert spec.pretrained.arch == "qwen2"
    if lora is not None:
        assert spec.lora is not None
        assert spec.lora.rank == 2
        margin = 1 << 16  # `default_limits`: exact state sizes plus this
        assert spec.limits.state - margin < spec.initial_checkpoint.size // 4  # adapters + moments only

    trainers = [TrainerNode(net.session(i), task_id, out=Output(f"trainer-{i}")) for i in (2, 3)]
    validators = [ValidatorNode(net.session(i), task_id, out=Output(f"validator-{i}")) for i in (4, 5)]
    roles: list[RoleNode] = [InitiatorNode(net.session(1), task_id), *trainers, *validators]
    drive(roles, joined(roles[1:]), timeout=60)
    net.warp_to_start(task_id)
    drive(roles, finished(roles), timeout=300)

    d = net.deployment
    settled = events(net, d.task_escrow, "SubmissionSettled", taskId=task_id)
    assert {e["trainer"] for e in settled} == {t.me for t in trainers}
    assert {Verdict(e["decision"]) for e in settled} == {Verdict.ACCEPT}
    (agreed,) = events(net, d.attestation_registry, "ModelAgreed", taskId=task_id)
    with ArtifactStore(net.ipfs.api_url, find_timeout=5.0) as store:
        limit = spec.limits.checkpoint
        before = load_global_checkpoint(store.get_bytes(spec.initial_checkpoint.cid, max_size=limit))[0]
        after = load_global_checkpoint(store.get_bytes(agreed["modelCid"], max_size=limit))[0]
        result = audit(open_target(net.anvil.rpc_url, d.addresses), task=task_id, store=store, accuracy=False)
    assert set(before) == set(after)
    moved = {k for k in before if not torch.equal(before[k], after[k])}
    assert bool(moved) == any_update_moves(view, view.submissions(0))  # zero updates leave the base
    assert all(is_trained(k, lora is not None) for k in moved)
    if lora is not None and moved:
        assert any(".lora_B." in k for k in moved)
    assert result.reverify is not None
    assert [c.auditor for c in result.reverify.submissions] == [Verdict.ACCEPT, Verdict.ACCEPT]
    assert result.ok, [str(x) for x in result.discrepancies]
