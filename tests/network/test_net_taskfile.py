"""Task files: the shipped example and the demo's task parse; a malformed one names its field (a YAML error
its line and column); default size limits fit the artifacts they bound (no chain, no daemon)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from protocol.demo import DEMO_TASK
from protocol.errors import ConfigError
from protocol.roles.initiator import TaskFile, default_limits, load_task_file

REPO = Path(__file__).resolve().parents[2]


def test_the_example_and_the_demo_task_are_valid() -> None:
    example = load_task_file(REPO / "examples" / "task.yaml")
    assert example.chain.num_rounds == 8
    assert example.sample_rollouts == "all"
    demo = TaskFile.model_validate(DEMO_TASK)
    assert demo.inner.steps == 32
    assert demo.initial.warmstart is not None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"inner": {"steps": 0}}, "inner.steps: Input should be greater than or equal to 1"),
        ({"env": {"name": "chess"}}, "env: Value error, unknown environment 'chess'"),
        ({"chain": {"num_rounds": 1, "reward_per_round": 1, "surprise": 3}}, "chain.surprise: Extra inputs"),
        ({"sample_rollouts": "many"}, "sample_rollouts: Value error, must be 'all' or a number of rollouts"),
        ({"model": {"hidden_size": 30, "num_heads": 4}}, "model: Value error, num_heads=4 must divide"),
        (
            {"inner": {"grpo": {"lr": 1e-2}}},
            "<root>: Value error, inner.grpo.lr 0.01 is outside the calibrated range [1e-05, 0.001]",
        ),
        ({"inner": {"grpo": {"lr": 1e-6}}}, "inner.grpo.lr 1e-06 is outside the calibrated range"),
        (
            {"inner": {"grpo": {"lr": 3e-4}}},
            "inner.grpo.lr 0.0003 is above 0.0001, the largest the quality gate's verify.max_quality_drop",
        ),
        ({"inner": {"grpo": {"adam_eps": 1e-10}}}, "inner.grpo.adam_eps 1e-10 is below the calibrated 1e-08"),
        (
            {"verify": {"max_step_rel": 1e-4}},
            "verify.max_step_rel 0.0001 is tighter than the calibrated 0.01",
        ),
        (
            {"verify": {"toploc": {"max_exp_mismatches": 1}}},
            "verify.toploc.max_exp_mismatches 1 is tighter than the calibrated 4",
        ),
    ],
)
def test_a_malformed_task_file_names_its_field(
    tmp_path: Path, change: dict[str, object], message: str
) -> None:
    path = tmp_path / "task.yaml"
    path.write_text(yaml.safe_dump({**DEMO_TASK, **change}))
    with pytest.raises(ConfigError, match=r"task file .*task\.yaml: ") as info:
        load_task_file(path)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_a_learning_rate_above_the_quality_gates_needs_a_looser_gate(tmp_path: Path) -> None:
    """Steps are calibrated up to lr 1e-3, the quality gate's default limit only up to 1e-4: a task may train
    faster only by loosening the gate itself (its deterrence then rests on re-execution)."""
    path = tmp_path / "task.yaml"
    faster = {"inner": {"grpo": {"lr": 1e-3}}, "verify": {"max_quality_drop": 5}}
    path.write_text(yaml.safe_dump({**DEMO_TASK, **faster}))
    task = load_task_file(path)
    assert task.inner.grpo.lr == 1e-3
    assert task.verify.max_quality_drop == 5


def test_unreadable_task_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read task file"):
        load_task_file(tmp_path / "absent.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_task_file(tmp_path / "list.yaml")


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("env: [unclosed", "line 1, column 15: expected ',' or ']', but got '<stream end>'"),
        ("env:\n  name: addition\n   params: {digits: 2}\n", "line 3, column 10: mapping values are not"),
        ("chain:\n\tnum_rounds: 2\n", "line 2, column 1: found character '\\t'"),
    ],
)
def test_a_yaml_error_keeps_its_line_and_column(tmp_path: Path, text: str, where: str) -> None:
    (tmp_path / "broken.yaml").write_text(text)
    with pytest.raises(ConfigError) as info:
        load_task_file(tmp_path / "broken.yaml")
    message = str(info.value)
    assert message.startswith(f"task file {tmp_path / 'broken.yaml'} is not valid YAML: "), message
    assert where in message, message
    assert "\n" not in message


def test_default_limits_fit_the_artifacts() -> None:
    import torch

    from trainer.diloco import encode_update, global_checkpoint_bytes
    from trainer.envs import get_env
    from trainer.model import build_model
    from trainer.state import fresh_optimizer, state_bytes
    from trainer.tokenizer import build_tokenizer

    task = TaskFile.model_validate(DEMO_TASK)
    model = build_model(task.model, build_tokenizer(get_env("addition", {"digits": 2}).alphabet))
    checkpoint = global_checkpoint_bytes(dict(model.state_dict()))
    limits = default_limits(task, checkpoint)
    assert len(state_bytes(model, fresh_optimizer(model, task.inner.grpo))) <= limits.state
    delta = {k: torch.ones_like(v) for k, v in model.state_dict().items()}
    assert len(encode_update(delta, task.inner.compression)) <= limits.update
    assert len(checkpoint) <= limits.checkpoint
    assert limits.state < 2 * len(checkpoint) * 3  # bounded: a few times the model, not arbitrary
