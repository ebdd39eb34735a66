"""A simulated network in one process: several trainers, several rounds, the protocol's own rules.

Per round r, each trainer (an address) runs the DiLoCo inner loop from the global base with its own
derived prompts and seeds (`trainer.inner.run_inner_loop`: H steps, rollouts regenerated every
`rollout_every` steps, states theta_0..theta_H hashed), encodes its pseudo-gradient as it would upload
it, and the "validators" decode the updates and aggregate them deterministically, weighted by work
units, in address order (`trainer.diloco.aggregate`). The global model's held-out accuracy (greedy
decoding on `HELDOUT_DOMAIN` problems, a domain no trainer's prompt comes from) is measured after the
warm start and after every round. No chain, no IPFS, no verification: this measures learning.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, Field

from trainer import diloco
from trainer.checkpoint import content_hash, load_weights, model_weights
from trainer.config import GrpoConfig, InnerConfig, ModelConfig, OuterConfig
from trainer.derive import HELDOUT_DOMAIN, address_bytes, domain_tag
from trainer.envs import get_env
from trainer.inner import run_inner_loop
from trainer.model import num_parameters
from trainer.rollout import evaluate_accuracy
from trainer.warmstart import WarmStartConfig, problems, warm_start

__all__ = ["SimulationConfig", "SimulationResult", "run_simulation", "trainer_addresses"]


class SimulationConfig(BaseModel):
    """Everything the learning demonstration depends on."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    env: str = "addition"
    """Environment name."""
    env_params: dict[str, Any] = Field(default_factory=lambda: {"digits": 2})
    """Environment parameters."""
    model: ModelConfig = ModelConfig()
    """The policy."""
    warmstart: WarmStartConfig = WarmStartConfig(lr=1e-3, target_accuracy=0.3)
    """The supervised warm start that makes the initial model."""
    inner: InnerConfig = InnerConfig(
        steps=32, rollout_every=1, num_prompts=16, group_size=8, max_new_tokens=4, grpo=GrpoConfig(lr=1e-4)
    )
    """Each trainer's round."""
    outer: OuterConfig = OuterConfig()
    """Aggregation (plain averaging by default)."""
    trainers: int = Field(3, ge=1, le=64)
    """Simulated trainers."""
    rounds: int = Field(8, ge=0, le=1000)
    """Rounds after the warm start."""
    task_id: int = Field(1, ge=0)
    """Task id that goes into every seed."""
    heldout_size: int = Field(500, ge=1)
    """Held-out problems for the accuracy curve."""
    build_proofs: bool = True
    """Build TOPLOC proofs for every rollout, as a real trainer does."""


@dataclass
class RoundRecord:
    """What happened in one round."""

    round: int
    accuracy: float
    wall_s: float
    mean_reward: float
    work_units: dict[str, int]
    aggregation_order: list[str]
    state_hash_counts: dict[str, int]
    checkpoint_hash: str
    generate_s: float
    proof_s: float
    train_s: float
    state_s: float
    clip_frac: float = 0.0
    """Mean over every inner step of the share of completion tokens whose ratio was clipped."""
    ratio_max: float = 1.0
    """Largest probability ratio pi_j / pi_j0 at any update of the round (1 when every step is on-policy)."""


@dataclass
class SimulationResult:
    """The learning curve: accuracy[0] is the initial model, accuracy[r] the global model after round r."""

    config: SimulationConfig
    accuracy: list[float]
    rounds: list[RoundRecord] = field(default_factory=list)
    initial_eval_accuracy: float = 0.0
    warmstart_steps: int = 0
    warmstart_s: float = 0.0
    parameters: int = 0
    wall_s: float = 0.0
    threads: int = 0

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready summary."""
        proof_s = sum(r.proof_s for r in self.rounds)
        gen_s = sum(r.generate_s for r in self.rounds)
        return {
            "rounds": len(self.rounds),
            "accuracy": self.accuracy,
            "gain": self.accuracy[-1] - self.accuracy[0] if self.accuracy else 0.0,
            "config": self.config.model_dump(mode="json"),
            "wall_s": self.wall_s,
            "warmstart": {"steps": self.warmstart_steps, "wall_s": self.warmstart_s},
            "parameters": self.parameters,
            "threads": self.threads,
            "proof_overhead": proof_s / gen_s if gen_s else 0.0,
            "per_round": [
                {
                    "round": r.round,
                    "accuracy": r.accuracy,
                    "wall_s": r.wall_s,
                    "mean_reward": r.mean_reward,
                    "work_units": r.work_units,
                    "aggregation_order": r.aggregation_order,
                    "checkpoint_sha256": r.checkpoint_hash,
                    "generate_s": r.generate_s,
                    "proof_s": r.proof_s,
                    "train_s": r.train_s,
                    "state_s": r.state_s,
                    "clip_frac": r.clip_frac,
                    "ratio_max": r.ratio_max,
                }
                for r in self.rounds
            ],
        }


def trainer_addresses(n: int) -> list[str]:
    """n deterministic, distinct, unsorted trainer addresses (the last 20 bytes of a keccak)."""
    return ["0x" + domain_tag(f"trustrl.sim.trainer.{i}")[12:].hex() for i in range(n)]


def run_simulation(
    cfg: SimulationConfig = SimulationConfig(), *, log: Callable[[str], None] | None = None
) -> SimulationResult:
    """Warm start, then `cfg.rounds` rounds of `cfg.trainers` trainers; returns the accuracy curve."""
    say = log or (lambda _msg: None)
    t_start = time.perf_counter()
    env = get_env(cfg.env, cfg.env_params)
    ws = warm_start(env, cfg.model, cfg.warmstart)
    model, tokenizer = ws.model, ws.tokenizer
    heldout = problems(env, HELDOUT_DOMAIN, cfg.heldout_size)
    budget = env.max_answer_len + 1

    def accuracy() -> float:
        return evaluate_accuracy(model, tokenizer, env, heldout, max_new_tokens=budget)

    result = SimulationResult(
        config=cfg,
        accuracy=[accuracy()],
        initial_eval_accuracy=ws.eval_accuracy,
        warmstart_steps=ws.steps,
        warmstart_s=ws.wall_s,
        parameters=num_parameters(model),
        threads=torch.get_num_threads(),
    )
    say(f"warm start: {ws.steps} steps in {ws.wall_s:.1f} s; held-out accuracy {result.accuracy[0]:.3f}")
    weights = {k: v.clone() for k, v in model_weights(model).items()}
    shapes = {k: v.shape for k, v in weights.items()}
    momentum: dict[str, torch.Tensor] | None = None
    addresses = trainer_addresses(cfg.trainers)
    for r in range(cfg.rounds):
        t_round = time.perf_counter()
        updates: list[diloco.TrainerUpdate] = []
        record = RoundRecord(
            round=r + 1,
            accuracy=0.0,
            wall_s=0.0,
            mean_reward=0.0,
            work_units={},
            aggregation_order=[],
            state_hash_counts={},
            checkpoint_hash="",
            generate_s=0.0,
            proof_s=0.0,
            train_s=0.0,
            state_s=0.0,
        )
        rewards: list[float] = []
        step_metrics: list[dict[str, float]] = []
        for address in addresses:
            inner = run_inner_loop(
                model,
                tokenizer,
                env,
                weights,
                cfg.inner,
                task_id=cfg.task_id,
                round_=r,
                trainer=address,
                build_proofs=cfg.build_proofs,
            )
            update_bytes = diloco.encode_update(inner.delta, cfg.inner.compression)
            delta = diloco.decode_update(update_bytes, shapes)
            updates.append(diloco.TrainerUpdate(address, inner.work_units, delta))
            record.work_units[address] = inner.work_units
            record.state_hash_counts[address] = len(inner.state_hashes)
            record.generate_s += inner.generation.generate_s
            record.proof_s += inner.generation.proof_s
            record.train_s += inner.train_s
            record.state_s += inner.state_s
            rewards.extend(ro.reward for ro in inner.rollouts)
            step_metrics.extend(inner.metrics)
        updates.sort(key=lambda u: address_bytes(u.address))
        record.aggregation_order = [str(u.address) for u in updates]
        new_state = diloco.aggregate(weights, updates, cfg.outer, momentum)
        record.checkpoint_hash = content_hash(new_state.to_bytes()).hex()
        weights, momentum = new_state.weights, new_state.momentum
        load_weights(model, weights)
        record.accuracy = accuracy()
        record.mean_reward = sum(rewards) / len(rewards) if rewards else 0.0
        if step_metrics:
            record.clip_frac = sum(m["loss/clip_frac"] for m in step_metrics) / len(step_metrics)
            record.ratio_max = max(m["loss/ratio_max"] for m in step_metrics)
        record.wall_s = time.perf_counter() - t_round
        result.rounds.append(record)
        result.accuracy.append(record.accuracy)
        say(
            f"round {r + 1}: accuracy {record.accuracy:.3f}, mean reward {record.mean_reward:.3f}, "
            f"{record.wall_s:.1f} s"
        )
    result.wall_s = time.perf_counter() - t_start
    return result
