"""The DiLoCo inner loop of one trainer in one round: H GRPO steps from the round's base.

    theta_0 = base weights + fresh AdamW state
    for j in 0..H-1:
        j0 = j - (j mod rollout_every)
        if j == j0:
            rollouts <- generate(theta_j, make_requests(task, round, trainer, step=j, P, G))
            old_logp <- behaviour_logprobs(theta_j, rollouts)          (only when rollout_every > 1)
            theta_{j+1} = train_step(theta_j, rollouts)                  on-policy: rho = 1
        else:
            theta_{j+1} = train_step(theta_j, rollouts, old_logp)        off-policy: rho = pi_j / pi_j0
    delta = base - theta_H                                  (trained weights only: all, or the LoRA adapters)

Every state theta_0..theta_H is serialized canonically (`trainer.state`) and hashed; the hashes are
the leaves of the submission's stateRoot. `state_sink(j, bytes)` lets the caller keep the states a
validator may later ask for (the seed picks them after the commitment). `edit_rollouts` and `edit_step`
exist for the cheat library (`trainer.cheats`): a dishonest trainer rewrites step j's rollouts before it
trains on them, or theta_{j+1} right after step j; an honest one passes neither.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from trainer.checkpoint import load_weights
from trainer.config import InnerConfig, rollout_step
from trainer.diloco import pseudo_gradient
from trainer.envs import Environment
from trainer.grpo import behaviour_logprobs, train_step
from trainer.rollout import GenerationStats, Rollout, generate, make_requests
from trainer.state import fresh_optimizer, state_bytes, state_digest, state_hash, trained_state_dict

__all__ = ["InnerResult", "RolloutEdit", "StepEdit", "rollout_step", "run_inner_loop", "step_rollouts"]

StateSink = Callable[[int, bytes], None]
RolloutEdit = Callable[[int, list[Rollout]], list[Rollout]]
"""(j, the rollouts generated at step j) -> the rollouts to train on and publish instead."""
StepEdit = Callable[[int, PreTrainedModel], None]
"""(j, the model holding theta_{j+1}) -> None, after changing the weights in place."""


@dataclass
class InnerResult:
    """What a trainer submits for a round (before encoding) and what it measured."""

    rollouts: list[Rollout]
    """Every rollout generated, in (step, prompt_idx, g) order: the bundle."""
    state_hashes: list[bytes]
    """sha256 of theta_0 .. theta_H (H + 1 leaves)."""
    delta: dict[str, torch.Tensor]
    """base - theta_H over the trained weights, fp32."""
    work_units: int
    """Generated tokens over all rollouts, EOS included."""
    metrics: list[dict[str, float]] = field(default_factory=list)
    """One dict per inner step."""
    generation: GenerationStats = field(default_factory=GenerationStats)
    """Time spent generating and proving."""
    train_s: float = 0.0
    """Time spent in GRPO steps."""
    state_s: float = 0.0
    """Time spent serializing and hashing states."""


def step_rollouts(rollouts: list[Rollout], j: int, rollout_every: int) -> list[Rollout]:
    """The rollouts of a bundle that inner step j trains on (what a validator re-executes with)."""
    source = rollout_step(j, rollout_every)
    return [r for r in rollouts if r.step == source]


def run_inner_loop(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    env: Environment,
    base: Mapping[str, torch.Tensor],
    cfg: InnerConfig,
    *,
    task_id: int,
    round_: int,
    trainer: str | bytes,
    build_proofs: bool = True,
    state_sink: StateSink | None = None,
    edit_rollouts: RolloutEdit | None = None,
    edit_step: StepEdit | None = None,
) -> InnerResult:
    """Run H inner steps of `trainer` from `base` (the model's weights are overwritten)."""
    load_weights(model, base)
    optimizer = fresh_optimizer(model, cfg.grpo)
    result = InnerResult(rollouts=[], state_hashes=[], delta={}, work_units=0)

    def record(j: int) -> None:
        t0 = time.perf_counter()
        if state_sink is not None:
            data = state_bytes(model, optimizer)
            result.state_hashes.append(state_hash(data))
            state_sink(j, data)
        else:
            result.state_hashes.append(state_digest(model, optimizer))
        result.state_s += time.perf_counter() - t0

    record(0)
    current: list[Rollout] = []
    old_logprobs: torch.Tensor | None = None
    for j in range(cfg.steps):
        on_policy = rollout_step(j, cfg.rollout_every) == j
        if on_policy:
            requests = make_requests(
                env,
                tokenizer,
                task_id=task_id,
                round_=round_,
                trainer=trainer,
                step=j,
                num_prompts=cfg.num_prompts,
                group_size=cfg.group_size,
            )
            current = generate(
                model,
                tokenizer,
                env,
                requests,
                max_new_tokens=cfg.max_new_tokens,
                temperature=cfg.grpo.temperature,
                build_proofs=build_proofs,
                stats=result.generation,
            )
            if edit_rollouts is not None:
                current = edit_rollouts(j, current)
            result.rollouts.extend(current)
        t0 = time.perf_counter()
        if on_policy and cfg.rollout_every > 1:
            old_logprobs = behaviour_logprobs(model, current, cfg.grpo)
        metrics = train_step(model, optimizer, current, cfg.grpo, None if on_policy else old_logprobs)
        result.train_s += time.perf_counter() - t0
        metrics["step"] = float(j)
        result.metrics.append(metrics)
        if edit_step is not None:
            with torch.no_grad():
                edit_step(j, model)
        record(j + 1)
    final = trained_state_dict(model)
    result.delta = pseudo_gradient({k: base[k] for k in final}, final)
    result.work_units = sum(r.work_units for r in result.rollouts)
    return result
