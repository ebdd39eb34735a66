"""What the tests of a Hugging Face model share (tests/trainer/test_pretrained_models_are_verified.py and
test_lora_adapters_are_verified.py): one world of the model with its honest rollouts, a 1%-perturbed
model's rollouts, an honest submission and its verification."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable
from typing import Any

import torch

from trainer.checkpoint import load_weights
from trainer.config import InnerConfig
from trainer.diloco import encode_update
from trainer.envs import get_env
from trainer.inner import run_inner_loop
from trainer.model import model_from_config
from trainer.rollout import Rollout, generate, make_requests
from trainer.verify import SubmissionContext, SubmissionReport, VerifyThresholds, decide, verify_submission

TRAINER = "0x" + "7e" * 20
THRESHOLDS = VerifyThresholds()
INNER = InnerConfig(steps=2, num_prompts=4, group_size=4, max_new_tokens=6)
CTX = SubmissionContext(task_id=5, round_=0, trainer=TRAINER, inner=INNER)


@dataclasses.dataclass
class World:
    env: Any
    tokenizer: Any
    config: Any
    model: Any
    base: dict[str, torch.Tensor]
    honest: list[Rollout]


def _rollouts(model: Any, tokenizer: Any, env: Any) -> list[Rollout]:
    requests = make_requests(
        env, tokenizer, task_id=5, round_=0, trainer=TRAINER, step=0, num_prompts=4, group_size=4
    )
    return generate(model, tokenizer, env, requests, max_new_tokens=INNER.max_new_tokens, temperature=1.0)


def make_world(tokenizer: Any, config: Any, base: dict[str, torch.Tensor]) -> World:
    """The model of `config` holding `base`, on the addition task, with 16 honest rollouts of step 0."""
    torch.set_num_threads(2)
    env = get_env("addition", {"digits": 1})
    model = model_from_config(config)
    load_weights(model, base)
    return World(env, tokenizer, config, model, base, _rollouts(model, tokenizer, env))


def perturbed_rollouts(world: World, perturbs: Callable[[str], bool] = lambda _: True) -> list[Rollout]:
    """Rollouts of a copy of the model whose parameters named so that `perturbs(name)` are each off by 1%."""
    gen = torch.Generator().manual_seed(5)
    other = copy.deepcopy(world.model)
    with torch.no_grad():
        for name, p in other.named_parameters():
            if perturbs(name):
                p.mul_(1 + 0.01 * torch.randn(p.shape, generator=gen))
    return _rollouts(other, world.tokenizer, world.env)


def honest_submission(world: World) -> dict[str, Any]:
    """An honest inner loop from the world's base: its result and the states it wrote, by step."""
    states: dict[int, bytes] = {}
    result = run_inner_loop(
        model_from_config(world.config),
        world.tokenizer,
        world.env,
        world.base,
        INNER,
        task_id=5,
        round_=0,
        trainer=TRAINER,
        state_sink=lambda j, data: states.__setitem__(j, data),
    )
    return {"states": states, "result": result}


def verify_honest(world: World, submission: dict[str, Any]) -> SubmissionReport:
    """Verify `submission` as a validator would (every third rollout, both steps); asserts it is accepted."""
    result = submission["result"]
    report = verify_submission(
        ctx=CTX,
        policy_config=world.config,
        tokenizer=world.tokenizer,
        env=world.env,
        base=world.base,
        rollouts=result.rollouts,
        sampled=list(range(0, len(result.rollouts), 3)),
        picked_steps=[0, 1],
        states=submission["states"],
        update=encode_update(result.delta, INNER.compression),
        batch_size=8,
    )
    verdict = decide(report, THRESHOLDS)
    assert verdict.decision == "ACCEPT", verdict.reasons
    assert len(report.steps) == 2
    return report


def step_rollouts(submission: dict[str, Any]) -> list[Rollout]:
    """Step 0's rollouts of `submission` with rewards that differ within a group, so that a step moves."""
    rollouts = submission["result"].rollouts
    return [dataclasses.replace(r, reward=float(r.g % 2)) for r in rollouts if r.step == 0]
