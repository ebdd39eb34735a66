"""A task whose policy is its own Hugging Face model, on a real network (anvil, js-ipfs, the role classes):
the initiator pins the directory's config and tokenizer on IPFS and publishes its weights as round 0's
checkpoint; two trainers and two validators load the model from IPFS alone; one round is accepted,
aggregated (the agreed model is the base moved by the updates) and audited with 0 discrepancies."""

from __future__ import annotations

from pathlib import Path

import pytest
from netharness import TINY_TASK, WARMSTART, Net, drive, events, finished, joined

from protocol.audit.runner import audit, open_target
from protocol.contracts import Verdict
from protocol.ipfs import ArtifactStore
from protocol.roles.base import Output, RoleNode
from protocol.roles.initiator import InitiatorNode, TaskFile, create_task
from protocol.roles.trainer import TrainerNode
from protocol.roles.validator import ValidatorNode
from trainer.config import WarmStartConfig
from trainer.envs import get_env
from trainer.pretrained import make_offline_model

pytestmark = [pytest.mark.chain, pytest.mark.ipfs, pytest.mark.slow]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny Qwen2 (the network tests' model size) with a BPE tokenizer, warm-started (~3 s) so that rewards
    differ within groups and the round's updates are not zero."""
    env = get_env("addition", {"digits": 1})
    warm = WarmStartConfig.model_validate(WARMSTART)
    size = {"hidden_size": 32, "num_layers": 1, "num_heads": 2, "num_kv_heads": 2, "intermediate_size": 64}
    directory = tmp_path_factory.mktemp("hf") / "qwen2"
    return make_offline_model(
        directory, env, arch="qwen2", warmstart=warm, max_position_embeddings=32, **size
    )


def test_a_round_with_a_pretrained_model_is_accepted_aggregated_and_audited(
    net: Net, model_dir: Path
) -> None:
    data = {k: v for k, v in TINY_TASK.items() if k != "model"}
    data["initial"] = {"pretrained": str(model_dir)}
    data["inner"] = {**TINY_TASK["inner"], "max_new_tokens": 4}
    task = TaskFile.model_validate(data)
    task_id = create_task(net.session(1), task, Output("initiator"))
    view_spec = InitiatorNode(net.session(1), task_id).view.spec
    assert view_spec.pretrained is not None
    assert view_spec.pretrained.arch == "qwen2"

    trainers = [TrainerNode(net.session(i), task_id, out=Output(f"trainer-{i}")) for i in (2, 3)]
    validators = [ValidatorNode(net.session(i), task_id, out=Output(f"validator-{i}")) for i in (4, 5)]
    roles: list[RoleNode] = [InitiatorNode(net.session(1), task_id), *trainers, *validators]
    drive(roles, joined(roles[1:]), timeout=60)
    net.warp_to_start(task_id)
    drive(roles, finished(roles), timeout=240)

    d = net.deployment
    settled = events(net, d.task_escrow, "SubmissionSettled", taskId=task_id)
    assert {e["trainer"] for e in settled} == {t.me for t in trainers}
    assert {Verdict(e["decision"]) for e in settled} == {Verdict.ACCEPT}
    agreed = events(net, d.attestation_registry, "ModelAgreed", taskId=task_id)
    assert len(agreed) == 1
    assert bytes(agreed[0]["modelHash"]) != bytes.fromhex(view_spec.initial_checkpoint.sha256[2:])
    with ArtifactStore(net.ipfs.api_url, find_timeout=5.0) as store:
        result = audit(open_target(net.anvil.rpc_url, d.addresses), task=task_id, store=store, accuracy=False)
    assert result.reverify is not None
    assert [c.auditor for c in result.reverify.submissions] == [Verdict.ACCEPT, Verdict.ACCEPT]
    assert result.ok, [str(x) for x in result.discrepancies]
