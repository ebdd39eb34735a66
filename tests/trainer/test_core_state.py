"""Training states: canonical bytes of weights + AdamW state, round trip, single-step re-execution."""

from __future__ import annotations

import pytest
import torch
from core_helpers import TRAINER_A, one_thread, tiny_policy

from trainer.checkpoint import load_tensors, model_weights
from trainer.config import GrpoConfig, InnerConfig
from trainer.envs import Addition, AdditionParams, Problem
from trainer.errors import CheckpointError
from trainer.grpo import make_optimizer, train_step
from trainer.inner import rollout_step, run_inner_loop, step_rollouts
from trainer.state import (
    fresh_optimizer,
    load_state,
    max_abs_diff,
    reexecute_step,
    state_bytes,
    state_digest,
    state_hash,
    state_weights,
)

pytestmark = pytest.mark.usefixtures(one_thread.__name__)


class _EvenStart(Addition):
    """Addition prompts with a reward a random policy often earns: the first character's code is even."""

    def reward(self, problem: Problem, completion: str) -> float:
        return 1.0 if completion and ord(completion[0]) % 2 == 0 else 0.0


def _policy():  # type: ignore[no-untyped-def]
    return tiny_policy(_EvenStart(AdditionParams(digits=2)))


CFG = InnerConfig(
    steps=3, rollout_every=2, num_prompts=2, group_size=3, max_new_tokens=4, grpo=GrpoConfig(lr=1e-2)
)


def test_state_layout_and_fresh_state() -> None:
    model, _, _ = _policy()
    opt = fresh_optimizer(model, CFG.grpo)
    tensors = load_tensors(state_bytes(model, opt), require_canonical=True)
    names = dict(model.named_parameters())
    assert {k for k in tensors if k.startswith("model/")} == {f"model/{n}" for n in model.state_dict()}
    for n, p in names.items():
        assert torch.equal(tensors[f"optim/{n}/exp_avg"], torch.zeros_like(p))
        assert torch.equal(tensors[f"optim/{n}/exp_avg_sq"], torch.zeros_like(p))
        assert tensors[f"optim/{n}/step"].shape == ()
        assert float(tensors[f"optim/{n}/step"]) == 0.0
    # a lazily initialised AdamW serializes to the same bytes as the materialized fresh one
    assert state_bytes(model, make_optimizer(model, CFG.grpo)) == state_bytes(model, opt)
    assert state_digest(model, opt) == state_hash(state_bytes(model, opt))


def _rollouts(model, tok, env, step: int = 0):  # type: ignore[no-untyped-def]
    from trainer.rollout import generate, make_requests

    reqs = make_requests(
        env, tok, task_id=3, round_=1, trainer=TRAINER_A, step=step, num_prompts=3, group_size=4
    )
    return generate(model, tok, env, reqs, max_new_tokens=4, temperature=1.0, build_proofs=False)


def test_round_trip_and_reexecution_are_bit_exact() -> None:
    model, tok, env = _policy()
    opt = fresh_optimizer(model, CFG.grpo)
    rollouts = _rollouts(model, tok, env)
    train_step(model, opt, rollouts, CFG.grpo)  # a non-trivial optimizer state
    theta_1 = state_bytes(model, opt)
    rollouts_1 = _rollouts(model, tok, env, step=1)
    train_step(model, opt, rollouts_1, CFG.grpo)
    theta_2 = state_bytes(model, opt)

    # load theta_1 into a fresh model + optimizer: same bytes back out
    other, _, _ = _policy()
    with torch.no_grad():
        for p in other.parameters():
            p.add_(1.0)
    other_opt = make_optimizer(other, CFG.grpo)
    load_state(theta_1, other, other_opt)
    assert state_bytes(other, other_opt) == theta_1

    replay = reexecute_step(model.config, theta_1, list(reversed(rollouts_1)), CFG.grpo)
    assert replay == theta_2
    # a different step's rollouts give a different state
    assert 0 < sum(r.reward for r in rollouts_1) < len(rollouts_1)  # the step has a gradient
    assert reexecute_step(model.config, theta_1, rollouts, CFG.grpo) != theta_2
    assert max_abs_diff(state_weights(theta_2), state_weights(theta_1)) > 0


def test_load_state_rejects_mismatches() -> None:
    model, _, _ = _policy()
    opt = fresh_optimizer(model, CFG.grpo)
    data = state_bytes(model, opt)
    tensors = load_tensors(data)
    name = next(k for k in tensors if k.endswith("/step"))
    from trainer.checkpoint import canonical_bytes

    for bad in (
        {k: v for k, v in tensors.items() if k != name},
        {**tensors, name: torch.tensor(-1.0)},
        {**tensors, name: torch.tensor(0.5)},
        {**tensors, "model/extra": torch.zeros(1)},
        {
            **tensors,
            name.replace("/step", "/exp_avg"): torch.full_like(
                tensors[name.replace("/step", "/exp_avg")], float("nan")
            ),
        },
    ):
        with pytest.raises(CheckpointError):
            load_state(canonical_bytes(bad), model, make_optimizer(model, CFG.grpo))
    with pytest.raises(CheckpointError):
        load_state(data[:-3], model, opt)


def test_inner_loop_states_rollouts_and_delta() -> None:
    model, tok, env = _policy()
    base = {k: v.clone() for k, v in model_weights(model).items()}
    kept: dict[int, bytes] = {}
    result = run_inner_loop(
        model,
        tok,
        env,
        base,
        CFG,
        task_id=3,
        round_=1,
        trainer=TRAINER_A,
        build_proofs=False,
        state_sink=kept.__setitem__,
    )
    assert sorted(kept) == [0, 1, 2, 3]
    assert result.state_hashes == [state_hash(kept[j]) for j in range(4)]
    assert len(set(result.state_hashes)) == 4
    assert 0 < sum(r.reward for r in result.rollouts) < len(result.rollouts)
    # theta_0 is the base with a fresh optimizer
    base_model, _, _ = _policy()
    base_model.load_state_dict(base)
    assert kept[0] == state_bytes(base_model, fresh_optimizer(base_model, CFG.grpo))
    # rollouts regenerated at steps 0 and 2 (rollout_every = 2), P x G each, from the derived seeds
    assert sorted({r.step for r in result.rollouts}) == [0, 2]
    assert len(result.rollouts) == 2 * 2 * 3
    assert [rollout_step(j, 2) for j in range(5)] == [0, 0, 2, 2, 4]
    assert result.work_units == sum(r.work_units for r in result.rollouts)
    # every step re-executes from its state, the rollouts it trained on and, off-policy, theta_j0
    for j in range(3):
        j0 = rollout_step(j, 2)
        behaviour = kept[j0] if j0 != j else None
        train_on = step_rollouts(result.rollouts, j, 2)
        assert reexecute_step(model.config, kept[j], train_on, CFG.grpo, behaviour) == kept[j + 1]
    # step 1 reuses step 0's rollouts: its ratio is against theta_0, not 1 (and without theta_0 it differs)
    assert [m["loss/ratio_mean"] == 1.0 for m in result.metrics] == [True, False, True]
    assert reexecute_step(model.config, kept[1], step_rollouts(result.rollouts, 1, 2), CFG.grpo) != kept[2]
    # delta = base - theta_H
    final = state_weights(kept[3])
    for name, d in result.delta.items():
        assert torch.equal(d, base[name] - final[name])
    # no sink: the same hashes, streamed
    again = run_inner_loop(
        model, tok, env, base, CFG, task_id=3, round_=1, trainer=TRAINER_A, build_proofs=False
    )
    assert again.state_hashes == result.state_hashes
