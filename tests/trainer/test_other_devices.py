"""Honest work made on a GPU is accepted by a CPU validator, and CPU work by a GPU validator (needs CUDA).

For the demo's model and examples/task.yaml's: a trainer runs the inner loop on CUDA (float32, TF32 off:
the numerics the thresholds were calibrated for) at lr 1e-3 with rollouts every second step; a CPU
validator replays every rollout (TOPLOC, sampling) and re-executes every step with `verify_submission`
and the default thresholds. Then the reverse: the trainer on the CPU, the validator's replays and
re-executions on CUDA. `scripts/calibrate.py` measures the same pairings, TF32 on included, with the
`cuda` and `cuda-tf32` profiles.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

from trainer.checkpoint import load_tensors, load_weights, model_weights
from trainer.config import GrpoConfig, InnerConfig, ModelConfig, VerifyThresholds, rollout_step
from trainer.diloco import encode_update
from trainer.envs import get_env
from trainer.inner import run_inner_loop, step_rollouts
from trainer.model import build_model
from trainer.rollout import Rollout
from trainer.verify import (
    SubmissionContext,
    SubmissionReport,
    Verdict,
    check_step,
    decide,
    replay_rollouts,
    verify_submission,
)
from trainer.warmstart import WarmStartConfig, warm_start

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (none here)"),
]

ROOT = Path(__file__).resolve().parents[2]
DEMO_MODEL = ModelConfig(
    hidden_size=64,
    num_layers=2,
    num_heads=4,
    num_kv_heads=4,
    intermediate_size=128,
    max_position_embeddings=32,
)  # protocol/demo.py's DEMO_TASK
TRAINER = "0x" + "c5" * 20
INNER = InnerConfig(
    steps=3, rollout_every=2, num_prompts=8, group_size=8, max_new_tokens=4, grpo=GrpoConfig(lr=1e-3)
)
CTX = SubmissionContext(task_id=9, round_=0, trainer=TRAINER, inner=INNER)


def _example_model() -> ModelConfig:
    task = yaml.safe_load((ROOT / "examples" / "task.yaml").read_text())
    return ModelConfig.model_validate(task["model"])


@dataclasses.dataclass
class World:
    env: Any
    tokenizer: Any
    model_cfg: ModelConfig
    config: Any
    """The Hugging Face config the validator builds models from."""
    base: dict[str, torch.Tensor]


@pytest.fixture(autouse=True)
def fp32_matmuls() -> Iterator[None]:
    """Full float32 on the GPU (TF32 off), restored afterwards."""
    before = (torch.backends.cuda.matmul.allow_tf32, torch.get_float32_matmul_precision())
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")
    yield
    torch.backends.cuda.matmul.allow_tf32 = before[0]
    torch.set_float32_matmul_precision(before[1])


@pytest.fixture(scope="module", params=["demo", "example"])
def world(request: pytest.FixtureRequest) -> World:
    env = get_env("addition", {"digits": 2})
    model_cfg = DEMO_MODEL if request.param == "demo" else _example_model()
    warm = warm_start(env, model_cfg, WarmStartConfig(lr=1e-3, target_accuracy=0.3, max_steps=1000))
    base = {k: v.clone() for k, v in model_weights(warm.model).items()}
    return World(env, warm.tokenizer, model_cfg, warm.model.config, base)


def _train(world: World, device: str) -> tuple[list[Rollout], dict[int, bytes], bytes]:
    model = build_model(world.model_cfg, world.tokenizer).to(device)
    states: dict[int, bytes] = {}
    result = run_inner_loop(
        model,
        world.tokenizer,
        world.env,
        world.base,
        INNER,
        task_id=CTX.task_id,
        round_=CTX.round_,
        trainer=TRAINER,
        state_sink=states.__setitem__,
    )
    return result.rollouts, states, encode_update(result.delta, INNER.compression)


def _verify_on_cpu(world: World, rollouts: list[Rollout], states: dict[int, bytes], update: bytes) -> Verdict:
    report = verify_submission(
        ctx=CTX,
        policy_config=world.config,
        tokenizer=world.tokenizer,
        env=world.env,
        base=world.base,
        rollouts=rollouts,
        sampled=range(len(rollouts)),
        picked_steps=range(INNER.steps),
        states=states,
        update=update,
        batch_size=16,
    )
    return decide(report, VerifyThresholds())


def _verify_on_cuda(
    world: World, rollouts: list[Rollout], states: dict[int, bytes], update: bytes
) -> Verdict:
    cpu: SubmissionReport = verify_submission(
        ctx=CTX,
        policy_config=world.config,
        tokenizer=world.tokenizer,
        env=world.env,
        base=world.base,
        rollouts=rollouts,
        sampled=(),
        picked_steps=(),
        states=states,
        update=update,
    )  # the cheap checks, theta_0 and the update; the replays and the steps below, on the GPU
    model = build_model(world.model_cfg, world.tokenizer).to("cuda")
    replays = []
    for j in sorted({r.step for r in rollouts}):
        weights = {
            k[len("model/") :]: v for k, v in load_tensors(states[j]).items() if k.startswith("model/")
        }
        load_weights(model, weights)
        replays += replay_rollouts(model, [r for r in rollouts if r.step == j], CTX, batch_size=16)
    steps = [
        check_step(
            world.config,
            j,
            states[j],
            states[j + 1],
            step_rollouts(rollouts, j, INNER.rollout_every),
            INNER,
            states[rollout_step(j, INNER.rollout_every)],
            device="cuda",
        )
        for j in range(INNER.steps)
    ]
    report = cpu.model_copy(update={"replays": tuple(replays), "steps": tuple(steps)})
    assert len(report.replays) == len(rollouts)
    return decide(report, VerifyThresholds())


def test_gpu_trainer_cpu_validator(world: World) -> None:
    rollouts, states, update = _train(world, "cuda")
    verdict = _verify_on_cpu(world, rollouts, states, update)
    assert verdict.decision == "ACCEPT", verdict.reasons


def test_cpu_trainer_gpu_validator(world: World) -> None:
    rollouts, states, update = _train(world, "cpu")
    verdict = _verify_on_cuda(world, rollouts, states, update)
    assert verdict.decision == "ACCEPT", verdict.reasons
