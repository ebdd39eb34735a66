"""A task spec's `lora` (rank, alpha, targets, init seed) reaches every role through
`protocol.verification.policy_of`; a spec without it keeps its bytes; the example task file parses; a task
file with nonsense LoRA settings is refused with one error naming the field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from protocol.artifacts import artifact_ref
from protocol.errors import ConfigError
from protocol.ipfs import canonical_json
from protocol.roles.initiator import load_task_file
from protocol.verification import TaskContext
from protocol.wire import EnvSpec, SizeLimits, TaskSpec
from trainer.config import InnerConfig, LoraConfig, ModelConfig, OuterConfig, VerifyThresholds
from trainer.lora import lora_of
from trainer.model import model_from_config

ROOT = Path(__file__).resolve().parents[1]
LIMITS = SizeLimits(checkpoint=1 << 22, state=1 << 22, update=1 << 22, bundle=1 << 20)
SMALL = ModelConfig(hidden_size=32, num_layers=1, num_heads=2, num_kv_heads=2, intermediate_size=64)


def _spec(lora: LoraConfig | None) -> TaskSpec:
    return TaskSpec(
        env=EnvSpec(name="addition", params={"digits": 1}),
        model=SMALL,
        inner=InnerConfig(),
        outer=OuterConfig(),
        initial_checkpoint=artifact_ref(b"weights"),
        verify=VerifyThresholds(),
        sample_rollouts=1,
        sample_steps=1,
        limits=LIMITS,
        lora=lora,
    )


def test_a_spec_without_lora_has_no_lora_key() -> None:
    data = canonical_json(_spec(None))
    assert b"lora" not in data
    assert lora_of(TaskContext(1, "0x" + "11" * 20, 1, _spec(None)).hf) is None


def test_lora_reaches_the_policy_every_role_builds() -> None:
    lora = LoraConfig(rank=2, targets=("q_proj", "down_proj"))
    spec = _spec(lora)
    data = canonical_json(spec)
    assert TaskSpec.model_validate_json(data) == spec
    ctx = TaskContext(1, "0x" + "11" * 20, 1, spec)
    assert lora_of(ctx.hf) == lora
    model = model_from_config(ctx.hf)
    trains = sorted(n for n, p in model.named_parameters() if p.requires_grad)
    assert trains == [
        "model.layers.0.mlp.down_proj.lora_A.default.weight",
        "model.layers.0.mlp.down_proj.lora_B.default.weight",
        "model.layers.0.self_attn.q_proj.lora_A.default.weight",
        "model.layers.0.self_attn.q_proj.lora_B.default.weight",
    ]


def test_the_example_task_file_parses() -> None:
    task = load_task_file(ROOT / "examples" / "task-lora.yaml")
    assert task.lora == LoraConfig(rank=8, alpha=16, targets=("q_proj", "k_proj", "v_proj", "o_proj"))
    assert task.initial.pretrained is not None


@pytest.mark.parametrize(
    ("lora", "error"),
    [
        ({"rank": 0}, "lora.rank: Input should be greater than or equal to 1"),
        ({"targets": ["lm_head"]}, "lora: Value error, lora.targets: unknown"),
        ({"rank": 4, "dropout": 0.1}, "lora.dropout: Extra inputs are not permitted"),
    ],
)
def test_nonsense_lora_in_a_task_file_is_refused(tmp_path: Path, lora: dict[str, object], error: str) -> None:
    data = yaml.safe_load((ROOT / "examples" / "task-lora.yaml").read_text())
    data["lora"] = lora
    path = tmp_path / "task.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match=error):
        load_task_file(path)
