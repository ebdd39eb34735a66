"""Every strategy of the cheat library (`protocol.cheats`) against the real verification pipeline, in process
on a small task: with every step picked, every dishonest submission is rejected (or, withholding its states,
unavailable) with a reason that names the check the library says catches it, and the honest one is accepted;
with the task's own picks, a strategy that alters one step is caught exactly when the seed picks that step or
the quality gate fails it. The aggregate of the honest updates and any accepted cheat stays within the tensor
rules."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any

import pytest
import torch
from eth_account import Account

from protocol.artifacts import ArtifactUnavailableError, artifact_ref, fetch_verified
from protocol.cheats import STRATEGIES, Arena, MemoryStore, Submission
from protocol.contracts import Verdict
from protocol.verification import Checked, TaskContext, verify
from protocol.wire import EnvSpec, SizeLimits, TaskSpec, picked_steps
from trainer.config import (
    GrpoConfig,
    InnerConfig,
    ModelConfig,
    OuterConfig,
    VerifyThresholds,
    WarmStartConfig,
)
from trainer.diloco import global_checkpoint_bytes, load_global_checkpoint

pytestmark = pytest.mark.slow

SEEDS = [hashlib.sha256(f"library seed {i}".encode()).digest() for i in range(6)]

# Words of the reasons the check that should catch each strategy gives (trainer.verify.decide,
# protocol.verification).
CAUGHT_BY: dict[str, str | tuple[str, ...]] = {
    "nan-state": "NaN",
    "inf-state": "inf",
    "poisoned-step": "step 0:",
    "scaled-consistent": "step 3:",
    "skipped-step": "step 3:",
    "lazy": "step ",
    "poison-update": "update:",
    "random-update": "update:",
    "stale-update": "update:",
    "copied-update": "update:",
    "fabricated-rollouts": "toploc",
    "fabricated-rebuilt-proofs": "sampling",
    "tampered-token": ("rollout", "toploc", "sampling"),
    "int8-generator": "toploc",
    "bf16-generator": "toploc",
    "stale-rollouts": "toploc",
    "forged-rewards": "rollout",
    "inflated-work-units": "workUnits",
    "tampered-proof": "toploc",
    "replayed-submission": "manifest round",
    "copied-submission": "rollout",
    "gate-tuned-eos": "step 3:",
    "gate-tuned-reverse": "step 3:",
    "gate-tuned-wrong-answer": "step 3:",
    "gate-tuned-random": "step 3:",
    "every-step": ("step 0:", "step 1:", "step 2:", "step 3:"),
    "every-rollout": "sampling",
}


@dataclass
class World:
    task: TaskContext
    base: bytes
    arena: Arena

    def check(self, sub: Submission, seed: bytes, task: TaskContext | None = None) -> Checked | None:
        """The verdict, or None for missing data (UNAVAILABLE)."""
        fetch = partial(fetch_verified, MemoryStore(sub.artifacts))
        weights = load_global_checkpoint(self.base)[0]
        try:
            return verify(
                fetch, task or self.task, sub.commitment, seed, hashlib.sha256(self.base).digest(), weights
            )
        except ArtifactUnavailableError:
            return None


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    from trainer.checkpoint import model_weights
    from trainer.envs import get_env
    from trainer.warmstart import warm_start

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    env_spec = EnvSpec(name="addition", params={"digits": 1})
    model = ModelConfig(hidden_size=32, num_layers=1, num_heads=2, num_kv_heads=2, intermediate_size=64,
                        max_position_embeddings=16)  # fmt: skip
    env = get_env(env_spec.name, env_spec.params)
    ws = warm_start(env, model, WarmStartConfig(lr=0.01, target_accuracy=0.3, batch_size=32, eval_size=50,
                                                max_steps=400))  # fmt: skip
    base = global_checkpoint_bytes(model_weights(ws.model))
    inner = InnerConfig(steps=4, num_prompts=4, group_size=4, max_new_tokens=3, grpo=GrpoConfig(lr=1e-4))
    n = len(base)
    spec = TaskSpec(
        env=env_spec, model=model, inner=inner, outer=OuterConfig(clip=1.0), verify=VerifyThresholds(),
        initial_checkpoint=artifact_ref(base), sample_rollouts=64, sample_steps=2, heldout_size=8,
        limits=SizeLimits(checkpoint=2 * n, state=4 * n, update=2 * n, bundle=1 << 21),
    )  # fmt: skip
    task = TaskContext(31337, "0x" + "11" * 20, 7, spec)
    other = Account.from_key(hashlib.sha256(b"library other").digest())
    attacker = Account.from_key(hashlib.sha256(b"library attacker").digest())
    other_arena = Arena(task, base, 1, other)
    earlier = Arena(task, base, 0, attacker)
    previous = earlier.publish(earlier.honest())
    arena = Arena(task, base, 1, attacker, [(other.address, other_arena.honest())], previous)
    yield World(task, base, arena)
    torch.set_num_threads(threads)


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_every_strategy_is_rejected_when_every_step_is_picked(world: World, name: str) -> None:
    strategy = STRATEGIES[name]
    sub = strategy.build(world.arena)
    every_step = TaskContext(world.task.chain_id, world.task.escrow, world.task.task_id,
                             world.task.spec.model_copy(update={"sample_steps": 4}))  # fmt: skip
    checked = world.check(sub, SEEDS[0], every_step)
    if strategy.honest:
        assert checked is not None
        assert checked.verdict == Verdict.ACCEPT, checked.reasons
        return
    if name == "withheld-states":
        assert checked is None  # UNAVAILABLE, slashed like a REJECT
        return
    assert checked is not None
    assert checked.verdict == Verdict.REJECT
    words = CAUGHT_BY[name]
    assert any(w in r for r in checked.reasons for w in ((words,) if isinstance(words, str) else words)), (
        checked.reasons
    )


@pytest.mark.parametrize("name", ["skipped-step", "gate-tuned-random", "poisoned-step"])
def test_a_one_step_cheat_is_caught_when_its_step_is_picked_or_the_gate_fails_it(
    world: World, name: str
) -> None:
    sub = STRATEGIES[name].build(world.arena)
    spec = world.task.spec
    altered = 0 if name == "poisoned-step" else spec.inner.steps - 1
    for seed in SEEDS:
        checked = world.check(sub, seed)
        assert checked is not None
        picked = altered in picked_steps(seed, sub.commitment.trainer, spec.sample_steps, spec.inner.steps)
        gate = any(r.startswith("quality:") for r in checked.reasons)
        assert (checked.verdict == Verdict.REJECT) == (picked or gate), (seed.hex(), checked.reasons)
        if name == "poisoned-step":
            assert gate  # the wrecked model never passes the gate


def test_the_gate_tuned_attacker_reports_its_scale(world: World) -> None:
    sub: Any = STRATEGIES["gate-tuned-reverse"].build(world.arena)
    assert sub.notes["alpha"] >= 0
