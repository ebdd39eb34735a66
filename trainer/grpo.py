"""GRPO: group-normalized advantages and the clipped-ratio token-level loss (PRIME-RL / INTELLECT-2 style).

    A_i    = (r_i - mean(r_group)) / (std(r_group) + adv_eps)          std: population (ddof 0)
    rho_it = exp(logp_it - old_logp_it)
    l_it   = -min(rho_it * A_i, clip(rho_it, 1 - eps_low, 1 + eps_high) * A_i)
    loss   = sum_it(mask_it * l_it) / sum_it(mask_it)                    (token-level mean)

with logp = log_softmax(logits / T) of the completion tokens under the weights being trained, T the
sampling temperature, and old_logp the same quantity under the behaviour policy: the weights that
generated the rollouts.

Inner step j trains on the rollouts generated at step j0 = j - (j mod rollout_every) by theta_{j0}.

* j = j0 (always, with `rollout_every = 1`): the rollouts are the current policy's own, old_logp is
  logp detached, so rho = 1 exactly at the update and the clip is inactive by construction. The
  update is on-policy REINFORCE with a group-normalized baseline: grad = -mean_it(A_i grad logp_it).
* j > j0: old_logp is `behaviour_logprobs(theta_{j0}, rollouts)`, a deterministic forward of theta_{j0}
  on the step's rollouts; rho corrects for the policy having moved since, and the clip bounds it.

Either way one step is a function of (theta_j, its AdamW state, theta_{j0}'s weights, the step's
rollouts, GrpoConfig), which any validator can re-execute: no number the trainer reports is trusted.
The protocol has no KL term and no reference model.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from trainer.config import GrpoConfig
from trainer.errors import ConfigError
from trainer.rollout import Rollout

__all__ = [
    "advantages",
    "batch_tensors",
    "behaviour_logprobs",
    "group_advantages",
    "loss",
    "make_optimizer",
    "sort_rollouts",
    "token_logprobs",
    "train_step",
]


def advantages(rewards: torch.Tensor, eps: float = 1e-4) -> torch.Tensor:
    """Group-normalized advantages of rewards [num_groups, G]: (r - mean) / (std + eps), per row."""
    if rewards.dim() != 2 or rewards.shape[1] < 1:
        raise ConfigError(f"rewards must be [num_groups, G], got {tuple(rewards.shape)}")
    r = rewards.to(torch.float32)
    mean = r.mean(dim=1, keepdim=True)
    std = r.std(dim=1, correction=0, keepdim=True)
    return (r - mean) / (std + eps)


def loss(
    logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    adv: torch.Tensor,
    mask: torch.Tensor,
    *,
    clip_eps_low: float = 0.2,
    clip_eps_high: float = 0.2,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Token-level clipped-ratio loss. logprobs/old/mask: [N, T], adv: [N]. Returns (loss, metrics)."""
    if logprobs.shape != old_logprobs.shape or logprobs.shape != mask.shape:
        raise ConfigError(
            f"shape mismatch: logprobs {tuple(logprobs.shape)}, old {tuple(old_logprobs.shape)}, "
            f"mask {tuple(mask.shape)}"
        )
    if adv.shape != logprobs.shape[:1]:
        raise ConfigError(f"advantages must be [N]={logprobs.shape[0]}, got {tuple(adv.shape)}")
    m = mask.to(logprobs.dtype)
    tokens = m.sum()
    if float(tokens) == 0:
        raise ConfigError("the loss needs at least one completion token")
    ratio = torch.exp(logprobs - old_logprobs)
    a = adv[:, None].to(logprobs.dtype)
    unclipped = ratio * a
    clipped = torch.clamp(ratio, 1.0 - clip_eps_low, 1.0 + clip_eps_high) * a
    per_token = -torch.minimum(unclipped, clipped)
    total = (per_token * m).sum() / tokens
    with torch.no_grad():
        is_clipped = ((ratio < 1.0 - clip_eps_low) | (ratio > 1.0 + clip_eps_high)).to(m.dtype)
        metrics = {
            "loss/policy": float(total.detach()),
            "loss/clip_frac": float((is_clipped * m).sum() / tokens),
            "loss/ratio_mean": float((ratio * m).sum() / tokens),
            "loss/ratio_max": float(torch.where(m > 0, ratio, torch.zeros_like(ratio)).max()),
        }
    return total, metrics


def sort_rollouts(rollouts: Sequence[Rollout]) -> list[Rollout]:
    """Rollouts in canonical order (step, prompt_idx, g); duplicates are refused."""
    ordered = sorted(rollouts, key=lambda r: (r.step, r.prompt_idx, r.g))
    keys = [(r.step, r.prompt_idx, r.g) for r in ordered]
    if len(set(keys)) != len(keys):
        raise ConfigError("duplicate rollouts (same step, prompt_idx, g)")
    return ordered


def group_advantages(rollouts: Sequence[Rollout], eps: float) -> torch.Tensor:
    """Advantages [N] of rollouts in canonical order, normalized within each (step, prompt_idx) group."""
    out = torch.zeros(len(rollouts), dtype=torch.float32)
    start = 0
    while start < len(rollouts):
        key = (rollouts[start].step, rollouts[start].prompt_idx)
        end = start
        while end < len(rollouts) and (rollouts[end].step, rollouts[end].prompt_idx) == key:
            end += 1
        rewards = torch.tensor([[float(r.reward) for r in rollouts[start:end]]], dtype=torch.float32)
        out[start:end] = advantages(rewards, eps)[0]
        start = end
    return out


def batch_tensors(rollouts: Sequence[Rollout], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded ids [N, S] of prompt + completion and the mask [N, S-1] of completion targets.

    Target position s of row i predicts ids[i, s+1]; the mask is 1 where that is a completion token.
    """
    lengths = [len(r.prompt_ids) + len(r.completion_ids) for r in rollouts]
    S = max(lengths)
    ids = torch.full((len(rollouts), S), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rollouts), S - 1), dtype=torch.float32)
    for i, r in enumerate(rollouts):
        if not r.completion_ids:
            raise ConfigError(f"rollout (step {r.step}, prompt {r.prompt_idx}, g {r.g}) has no completion")
        seq = [*r.prompt_ids, *r.completion_ids]
        ids[i, : len(seq)] = torch.tensor(seq, dtype=torch.long)
        mask[i, len(r.prompt_ids) - 1 : len(seq) - 1] = 1.0
    return ids, mask


def token_logprobs(model: torch.nn.Module, ids: torch.Tensor, temperature: float) -> torch.Tensor:
    """log softmax(logits / T) of each next token: [N, S-1]. Right padding needs no attention mask."""
    logits = model(input_ids=ids, use_cache=False).logits[:, :-1, :].float()
    logp = torch.log_softmax(logits / temperature, dim=-1)
    return logp.gather(-1, ids[:, 1:, None]).squeeze(-1)


def make_optimizer(model: torch.nn.Module, cfg: GrpoConfig) -> torch.optim.AdamW:
    """AdamW over the model's trained parameters (all of them, or the LoRA adapters; single-tensor path, so
    results do not hinge on `foreach`)."""
    return torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad],
        lr=cfg.lr,
        betas=(cfg.beta1, cfg.beta2),
        eps=cfg.adam_eps,
        weight_decay=cfg.weight_decay,
        foreach=False,
        fused=False,
    )


def _canonical_batch(
    model: torch.nn.Module, rollouts: Sequence[Rollout]
) -> tuple[list[Rollout], torch.Tensor, torch.Tensor]:
    """Rollouts in canonical order and their right-padded ids and target mask on the model's device."""
    if not rollouts:
        raise ConfigError("a GRPO step needs rollouts")
    ordered = sort_rollouts(rollouts)
    pad_id = getattr(getattr(model, "config", None), "pad_token_id", None) or 0
    device = next(model.parameters()).device
    ids, mask = batch_tensors(ordered, int(pad_id))
    return ordered, ids.to(device), mask.to(device)


@torch.no_grad()
def behaviour_logprobs(model: torch.nn.Module, rollouts: Sequence[Rollout], cfg: GrpoConfig) -> torch.Tensor:
    """old_logp of `rollouts` under the weights `model` holds (theta_{j0}): [N, S-1], canonical order.

    The trainer calls it once per rollout batch, right after generating it; a validator calls it on
    theta_{j0} loaded from the committed state. Same function, same inputs, same numbers.
    """
    _, ids, _ = _canonical_batch(model, rollouts)
    model.eval()
    return token_logprobs(model, ids, cfg.temperature)


def train_step(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    rollouts: Sequence[Rollout],
    cfg: GrpoConfig,
    old_logprobs: torch.Tensor | None = None,
) -> dict[str, float]:
    """One GRPO step on `rollouts` (any order; sorted inside). Deterministic on CPU for fixed threads.

    `old_logprobs`: `behaviour_logprobs` of the rollouts under the policy that generated them, or None
    when that policy is the current one (on-policy: old_logp = logp detached, rho = 1).
    """
    ordered, ids, mask = _canonical_batch(model, rollouts)
    adv = group_advantages(ordered, cfg.adv_eps).to(ids.device)
    model.eval()  # no dropout: the step must be a pure function of its inputs
    optimizer.zero_grad(set_to_none=True)
    logp = token_logprobs(model, ids, cfg.temperature)
    if old_logprobs is None:
        old = logp.detach()
    elif old_logprobs.shape != logp.shape:
        raise ConfigError(
            f"old_logprobs {tuple(old_logprobs.shape)} do not match the batch {tuple(logp.shape)}"
        )
    else:
        old = old_logprobs.to(device=logp.device, dtype=logp.dtype)
    total, metrics = loss(
        logp, old, adv, mask, clip_eps_low=cfg.clip_eps_low, clip_eps_high=cfg.clip_eps_high
    )
    total.backward()
    if cfg.max_grad_norm is not None:
        grad_norm = float(
            torch.nn.utils.clip_grad_norm_(
                [p for p in model.parameters() if p.requires_grad], cfg.max_grad_norm, foreach=False
            )
        )
    else:
        grads = [p.grad.detach().norm() for p in model.parameters() if p.grad is not None]
        grad_norm = float(torch.stack(grads).norm()) if grads else 0.0
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    rewards = [float(r.reward) for r in ordered]
    metrics.update(
        {
            "reward/mean": sum(rewards) / len(rewards),
            "grad/norm": grad_norm if math.isfinite(grad_norm) else float("nan"),
            "batch/tokens": float(mask.sum()),
            "batch/rollouts": float(len(ordered)),
        }
    )
    return metrics
