"""GRPO pure functions (advantages, clipped loss, batching) and a deterministic train step."""

from __future__ import annotations

import math

import pytest
import torch
from core_helpers import TRAINER_A, one_thread, tiny_policy

from trainer.config import GrpoConfig
from trainer.errors import ConfigError
from trainer.grpo import (
    advantages,
    batch_tensors,
    behaviour_logprobs,
    group_advantages,
    loss,
    make_optimizer,
    sort_rollouts,
    token_logprobs,
    train_step,
)
from trainer.rollout import Rollout, generate, make_requests

pytestmark = pytest.mark.usefixtures(one_thread.__name__)


def _ro(
    step: int, p: int, g: int, reward: float, prompt: tuple[int, ...] = (1, 5), comp: tuple[int, ...] = (6, 2)
) -> Rollout:
    return Rollout(step, p, g, prompt, comp, reward, (), True)


def test_advantages_are_group_normalized() -> None:
    rewards = torch.tensor([[1.0, 0.0, 0.0, 1.0], [1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 0.0, 3.0]])
    adv = advantages(rewards, eps=0.0 + 1e-6)
    torch.testing.assert_close(adv[0], torch.tensor([1.0, -1.0, -1.0, 1.0]), atol=1e-5, rtol=0)
    assert torch.equal(adv[1], torch.zeros(4))  # no signal in a uniform group
    std = math.sqrt(((0 - 0.75) ** 2 * 3 + (3 - 0.75) ** 2) / 4)  # population std
    torch.testing.assert_close(adv[2], (rewards[2] - 0.75) / (std + 1e-6))
    torch.testing.assert_close(adv.sum(dim=1), torch.zeros(3), atol=1e-5, rtol=0)
    with pytest.raises(ConfigError):
        advantages(torch.zeros(4))


def test_group_advantages_follow_step_and_prompt() -> None:
    ros = sort_rollouts([_ro(0, 1, 1, 0.0), _ro(0, 0, 0, 1.0), _ro(0, 1, 0, 1.0), _ro(0, 0, 1, 1.0)])
    assert [(r.prompt_idx, r.g) for r in ros] == [(0, 0), (0, 1), (1, 0), (1, 1)]
    adv = group_advantages(ros, 1e-4)
    assert adv[:2].tolist() == [0.0, 0.0]
    assert adv[2] > 0 > adv[3]
    with pytest.raises(ConfigError, match="duplicate"):
        sort_rollouts([_ro(0, 0, 0, 1.0), _ro(0, 0, 0, 0.0)])


def test_loss_unclipped_is_policy_gradient() -> None:
    logp = torch.tensor([[-1.0, -2.0], [-0.5, -0.1]], requires_grad=True)
    mask = torch.tensor([[1.0, 1.0], [1.0, 0.0]])
    adv = torch.tensor([2.0, -1.0])
    total, metrics = loss(logp, logp.detach(), adv, mask)
    assert float(total.detach()) == pytest.approx(-(2 + 2 - 1) / 3)  # ratio 1: -(sum A over tokens) / tokens
    total.backward()
    assert logp.grad is not None
    torch.testing.assert_close(logp.grad, torch.tensor([[-2 / 3, -2 / 3], [1 / 3, 0.0]]))
    assert metrics["loss/clip_frac"] == 0.0
    assert metrics["loss/ratio_mean"] == pytest.approx(1.0)


def test_loss_clips_the_ratio_in_the_direction_of_the_advantage() -> None:
    old = torch.zeros(1, 4)
    logp = torch.log(torch.tensor([[1.5, 0.5, 1.5, 0.5]])).requires_grad_()
    mask = torch.ones(1, 4)
    pos, _ = loss(logp, old, torch.tensor([1.0]), mask, clip_eps_low=0.2, clip_eps_high=0.2)
    # A > 0: min(r, clip(r)) -> 1.2 for r = 1.5, 0.5 for r = 0.5
    assert float(pos.detach()) == pytest.approx(-(1.2 + 0.5 + 1.2 + 0.5) / 4)
    pos.backward()
    assert logp.grad is not None
    assert logp.grad[0, 0] == 0.0
    assert logp.grad[0, 1] != 0.0
    logp.grad = None
    neg, metrics = loss(logp, old, torch.tensor([-1.0]), mask, clip_eps_low=0.2, clip_eps_high=0.2)
    # A < 0: -min(-r, -clip(r)) = max(r, clip(r)) -> 1.5, 0.8
    assert float(neg.detach()) == pytest.approx((1.5 + 0.8 + 1.5 + 0.8) / 4)
    assert metrics["loss/clip_frac"] == 1.0
    neg.backward()
    assert logp.grad is not None
    assert logp.grad[0, 0] != 0.0
    assert logp.grad[0, 1] == 0.0


def test_loss_refuses_mismatched_shapes_and_empty_masks() -> None:
    logp = torch.tensor([[-1.0, -1.0]])
    with pytest.raises(ConfigError):
        loss(logp, logp, torch.tensor([0.0, 1.0]), torch.ones(1, 2))
    with pytest.raises(ConfigError):
        loss(logp, logp, torch.tensor([0.0]), torch.zeros(1, 2))
    with pytest.raises(ConfigError):
        loss(logp, torch.zeros(1, 3), torch.tensor([0.0]), torch.ones(1, 2))


def test_batch_tensors_mask_completion_targets() -> None:
    ids, mask = batch_tensors(
        [_ro(0, 0, 0, 1.0, (1, 5, 6), (7, 2)), _ro(0, 0, 1, 0.0, (1, 5), (2,))], pad_id=0
    )
    assert ids.tolist() == [[1, 5, 6, 7, 2], [1, 5, 2, 0, 0]]
    assert mask.tolist() == [[0, 0, 1, 1], [0, 1, 0, 0]]


def test_token_logprobs_match_a_manual_softmax() -> None:
    model, _, _ = tiny_policy()
    ids = torch.tensor([[1, 5, 6, 7]])
    with torch.no_grad():
        lp = token_logprobs(model, ids, 0.5)
        logits = model(input_ids=ids).logits[0, :-1] / 0.5
    manual = torch.log_softmax(logits, -1)[torch.arange(3), ids[0, 1:]]
    torch.testing.assert_close(lp[0], manual)


def test_train_step_is_deterministic_and_learns_from_advantages() -> None:
    model, tok, env = tiny_policy()
    cfg = GrpoConfig(lr=1e-2, temperature=1.0)
    reqs = make_requests(
        env, tok, task_id=1, round_=0, trainer=TRAINER_A, step=0, num_prompts=3, group_size=4
    )
    rollouts = generate(model, tok, env, reqs, max_new_tokens=4, temperature=1.0, build_proofs=False)
    # synthetic rewards so that every group has signal: reward the first completion of each group
    rollouts = [
        Rollout(r.step, r.prompt_idx, r.g, r.prompt_ids, r.completion_ids, float(r.g == 0), (), r.finished)
        for r in rollouts
    ]
    start = {k: v.clone() for k, v in model.state_dict().items()}
    ids, mask = batch_tensors(sort_rollouts(rollouts), 0)
    with torch.no_grad():
        before = (token_logprobs(model, ids, 1.0) * mask).sum(1)

    results = []
    for order in (rollouts, list(reversed(rollouts))):
        model.load_state_dict(start)
        opt = make_optimizer(model, cfg)
        metrics = train_step(model, opt, order, cfg)
        results.append({k: v.clone() for k, v in model.state_dict().items()})
    for name in start:
        assert torch.equal(results[0][name], results[1][name])  # order-independent, bit-exact
    assert any(not torch.equal(results[0][n], start[n]) for n in start)
    assert metrics["batch/rollouts"] == 12
    assert metrics["reward/mean"] == pytest.approx(0.25)
    with torch.no_grad():
        after = (token_logprobs(model, ids, 1.0) * mask).sum(1)
    rewarded = torch.tensor([r.g == 0 for r in sort_rollouts(rollouts)])
    assert float((after - before)[rewarded].mean()) > float((after - before)[~rewarded].mean())
    with pytest.raises(ConfigError):
        train_step(model, make_optimizer(model, cfg), [], cfg)


def _signal_rollouts(model, tok, env, step: int = 0) -> list[Rollout]:  # type: ignore[no-untyped-def]
    """P x G rollouts of `model` with synthetic rewards that give every group signal."""
    reqs = make_requests(
        env, tok, task_id=1, round_=0, trainer=TRAINER_A, step=step, num_prompts=3, group_size=4
    )
    rollouts = generate(model, tok, env, reqs, max_new_tokens=4, temperature=1.0, build_proofs=False)
    return [
        Rollout(r.step, r.prompt_idx, r.g, r.prompt_ids, r.completion_ids, float(r.g == 0), (), r.finished)
        for r in rollouts
    ]


def test_on_policy_step_has_ratio_one_and_no_clipping() -> None:
    model, tok, env = tiny_policy()
    cfg = GrpoConfig(lr=1e-2)
    rollouts = _signal_rollouts(model, tok, env)
    metrics = train_step(model, make_optimizer(model, cfg), rollouts, cfg)
    assert metrics["loss/ratio_mean"] == 1.0
    assert metrics["loss/ratio_max"] == 1.0
    assert metrics["loss/clip_frac"] == 0.0


def test_behaviour_logprobs_are_the_training_forward_detached() -> None:
    model, tok, env = tiny_policy()
    rollouts = _signal_rollouts(model, tok, env)
    old = behaviour_logprobs(model, list(reversed(rollouts)), GrpoConfig())
    ids, _ = batch_tensors(sort_rollouts(rollouts), 0)
    assert torch.equal(old, token_logprobs(model, ids, 1.0).detach())  # canonical order, bit for bit
    assert not old.requires_grad


def test_off_policy_step_corrects_with_the_ratio_and_clips() -> None:
    """Steps after the rollout step train on theta_j0's rollouts: rho = pi_j / pi_j0 moves and is clipped."""
    model, tok, env = tiny_policy()
    cfg = GrpoConfig(lr=3e-2)
    rollouts = _signal_rollouts(model, tok, env)
    old = behaviour_logprobs(model, rollouts, cfg)
    optimizer = make_optimizer(model, cfg)
    first = train_step(model, optimizer, rollouts, cfg)  # j = j0: on-policy
    second = train_step(model, optimizer, rollouts, cfg, old)  # j = j0 + 1: same rollouts, theta moved
    assert first["loss/ratio_mean"] == 1.0
    assert second["loss/ratio_max"] > 1.0 + cfg.clip_eps_high
    assert second["loss/clip_frac"] > 0.0
    # behaviour log-probabilities of another batch are refused before anything changes
    again = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ConfigError, match="old_logprobs"):
        train_step(model, optimizer, rollouts, cfg, old[:, :-1])
    assert all(torch.equal(again[k], v) for k, v in model.state_dict().items())
