"""Each defect a honeypot's bait rotates through (`protocol.baits.BAIT_DEFECTS`: the node's `poison`, the
library's `every-step` and `every-rollout`) is REJECTed by the full verification (`protocol.verification`)
whatever the round's seed picks, with the reason of its own check, at 1 and 2 torch threads; the semi-lazy
profile (`SEMI_LAZY`: cheap checks only) REJECTs `poison` and ACCEPTs the other two, as it ACCEPTs honest
work: the honeypots that catch the semi-lazy validator. Margins: scripts/bench_bait_margins.py."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial

import pytest
import torch
from eth_account import Account

from protocol.artifacts import artifact_ref, fetch_verified
from protocol.cheats import STRATEGIES, Arena, MemoryStore, Submission, Work
from protocol.contracts import Verdict
from protocol.roles.trainer import POISON_SCALE
from protocol.verification import FULL, SEMI_LAZY, Checked, CheckProfile, TaskContext, verify
from protocol.wire import EnvSpec, SizeLimits, TaskSpec
from trainer.cheats import poisoned_update
from trainer.config import (
    GrpoConfig,
    InnerConfig,
    ModelConfig,
    OuterConfig,
    VerifyThresholds,
    WarmStartConfig,
)
from trainer.diloco import encode_update, global_checkpoint_bytes, load_global_checkpoint

SEEDS = [hashlib.sha256(f"bait defect seed {i}".encode()).digest() for i in range(3)]
REASON = {"poison": "update:", "every-step": "step ", "every-rollout": "sampling "}
"""The reason each defect's own check gives; it is the only kind of reason the defect earns."""


@dataclass
class World:
    task: TaskContext
    base: bytes
    arena: Arena

    def check(self, sub: Submission, seed: bytes, profile: CheckProfile) -> Checked:
        fetch = partial(fetch_verified, MemoryStore(sub.artifacts))
        weights = load_global_checkpoint(self.base)[0]
        return verify(
            fetch, self.task, sub.commitment, seed, hashlib.sha256(self.base).digest(), weights, profile
        )


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
        initial_checkpoint=artifact_ref(base), sample_rollouts=64, sample_steps=1, heldout_size=8,
        limits=SizeLimits(checkpoint=2 * n, state=4 * n, update=2 * n, bundle=1 << 21),
    )  # fmt: skip
    task = TaskContext(31337, "0x" + "11" * 20, 7, spec)
    attacker = Account.from_key(hashlib.sha256(b"bait defects").digest())
    yield World(task, base, Arena(task, base, 1, attacker))
    torch.set_num_threads(threads)


def _poison(arena: Arena) -> Submission:
    """The trainer node's `--cheat poison` (`TrainerNode.prepare`): honest work, -4 x its update."""
    work = arena.honest()
    delta = poisoned_update(work.delta(arena.weights), POISON_SCALE, seed=1)
    return arena.publish(
        Work(work.records, work.states, encode_update(delta, arena.task.spec.inner.compression))
    )


@pytest.fixture(scope="module")
def submissions(world: World) -> dict[str, Submission]:
    return {
        "honest": STRATEGIES["honest"].build(world.arena),
        "poison": _poison(world.arena),
        "every-step": STRATEGIES["every-step"].build(world.arena),
        "every-rollout": STRATEGIES["every-rollout"].build(world.arena),
    }


@pytest.mark.parametrize("defect", ["poison", "every-step", "every-rollout"])
@pytest.mark.parametrize("threads", [1, 2])
def test_the_full_checks_reject_every_defect_whatever_the_seed_picks(
    world: World, submissions: dict[str, Submission], defect: str, threads: int
) -> None:
    torch.set_num_threads(threads)
    try:
        for seed in SEEDS:  # one step of four re-executed: a different one per seed
            checked = world.check(submissions[defect], seed, FULL)
            assert checked.verdict == Verdict.REJECT, (defect, seed.hex())
            assert checked.reasons
            assert all(r.startswith(REASON[defect]) for r in checked.reasons), checked.reasons
    finally:
        torch.set_num_threads(1)


def test_every_rollout_of_the_rollout_defect_fails_only_its_sampling_replay(
    world: World, submissions: dict[str, Submission]
) -> None:
    checked = world.check(submissions["every-rollout"], SEEDS[0], FULL)
    assert checked.report is not None
    replays = checked.report["replays"]
    assert len(replays) == 4 * 16  # every rollout of every step
    gap = world.task.spec.verify.max_sampling_gap
    assert all(r["max_gap"] > 20 * gap and r["gap_positions"] >= 1 for r in replays)
    assert not any(r.startswith(("toploc", "replay")) for r in checked.reasons)  # proofs rebuilt on theta_j


def test_the_step_defect_fails_every_step_by_a_thousand_lr(
    world: World, submissions: dict[str, Submission]
) -> None:
    every_step = TaskContext(world.task.chain_id, world.task.escrow, world.task.task_id,
                             world.task.spec.model_copy(update={"sample_steps": 4}))  # fmt: skip
    fetch = partial(fetch_verified, MemoryStore(submissions["every-step"].artifacts))
    weights = load_global_checkpoint(world.base)[0]
    checked = verify(fetch, every_step, submissions["every-step"].commitment, SEEDS[0],
                     hashlib.sha256(world.base).digest(), weights)  # fmt: skip
    assert checked.report is not None
    steps = checked.report["steps"]
    assert [s["step"] for s in steps] == [0, 1, 2, 3]
    assert all(999 < s["max_abs_lr"] < 1001 for s in steps), steps  # threshold max_step_lr = 1


@pytest.mark.parametrize(
    ("name", "verdict"),
    [("honest", "ACCEPT"), ("poison", "REJECT"), ("every-step", "ACCEPT"), ("every-rollout", "ACCEPT")],
)
def test_the_semi_lazy_profile_catches_only_the_poison(
    world: World, submissions: dict[str, Submission], name: str, verdict: str
) -> None:
    checked = world.check(submissions[name], SEEDS[0], SEMI_LAZY)
    assert checked.verdict == Verdict[verdict], checked.reasons
    assert checked.report is not None
    assert checked.report["replays"] == []  # the expensive checks skipped
    assert checked.report["steps"] == []
    assert "quality" not in checked.report


def test_the_full_checks_accept_honest_work(world: World, submissions: dict[str, Submission]) -> None:
    for seed in SEEDS:
        checked = world.check(submissions["honest"], seed, FULL)
        assert checked.verdict == Verdict.ACCEPT, checked.reasons
