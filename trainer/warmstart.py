"""The initial model: a short supervised warm start so that RL starts with signal.

A task initiator runs this once to make the round-0 checkpoint. From a random initialisation
(`ModelConfig.init_seed`) it trains on `prompt -> answer<eos>` examples (loss on the answer and EOS
only) drawn from `indexed_seed(WARMSTART_DOMAIN, i, salt=seed)`, and stops as soon as the greedy
accuracy on a separate evaluation set (`EVAL_DOMAIN`) reaches `target_accuracy`, leaving room for RL
to improve (GRPO needs groups whose rewards differ). Everything is deterministic given the configs
(on a fixed machine and thread count).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from trainer.config import ModelConfig, WarmStartConfig
from trainer.derive import EVAL_DOMAIN, WARMSTART_DOMAIN, indexed_seed
from trainer.envs import Environment, Problem
from trainer.model import build_model
from trainer.rollout import evaluate_accuracy
from trainer.tokenizer import build_tokenizer, encode_prompt

__all__ = ["WarmStartConfig", "WarmStartResult", "problems", "warm_start"]


@dataclass
class WarmStartResult:
    """The initial policy and how it got there."""

    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    steps: int
    eval_accuracy: float
    wall_s: float
    curve: list[tuple[int, float]]


def problems(env: Environment, domain: bytes, count: int, salt: int = 0) -> list[Problem]:
    """`count` problems from `indexed_seed(domain, i, salt)`, i = 0..count-1."""
    return [env.problem(indexed_seed(domain, i, salt)) for i in range(count)]


def _batch(tokenizer: PreTrainedTokenizerBase, items: list[Problem]) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded ids [N, S] and target mask [N, S-1] (1 on answer tokens and EOS)."""
    seqs: list[tuple[list[int], int]] = []
    for p in items:
        prompt = encode_prompt(tokenizer, p.prompt)
        answer = tokenizer(p.answer, add_special_tokens=False)["input_ids"]
        seqs.append(([*prompt, *answer, tokenizer.eos_token_id], len(prompt)))
    S = max(len(s) for s, _ in seqs)
    ids = torch.full((len(seqs), S), tokenizer.pad_token_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), S - 1))
    for i, (s, n_prompt) in enumerate(seqs):
        ids[i, : len(s)] = torch.tensor(s)
        mask[i, n_prompt - 1 : len(s) - 1] = 1.0
    return ids, mask


def warm_start(
    env: Environment,
    model_cfg: ModelConfig,
    cfg: WarmStartConfig = WarmStartConfig(),
    *,
    log: Callable[[str], None] | None = None,
) -> WarmStartResult:
    """Build the tokenizer and the initial policy for `env`, trained until `target_accuracy`."""
    t_start = time.perf_counter()
    tokenizer = build_tokenizer(env.alphabet)
    model = build_model(model_cfg, tokenizer)
    step, accuracy, curve = supervise(model, tokenizer, env, cfg, log=log)
    return WarmStartResult(
        model=model,
        tokenizer=tokenizer,
        steps=step,
        eval_accuracy=accuracy,
        wall_s=time.perf_counter() - t_start,
        curve=curve,
    )


def supervise(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    env: Environment,
    cfg: WarmStartConfig,
    *,
    log: Callable[[str], None] | None = None,
) -> tuple[int, float, list[tuple[int, float]]]:
    """Train `model` in place on reference answers (AdamW, masked cross-entropy on answer tokens and EOS)
    until `cfg.target_accuracy` or `cfg.max_steps`; returns (steps, eval accuracy, curve). Eval mode after."""
    eval_set = problems(env, EVAL_DOMAIN, cfg.eval_size, cfg.seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, foreach=False)
    budget = env.max_answer_len + 1
    curve: list[tuple[int, float]] = []
    accuracy = evaluate_accuracy(model, tokenizer, env, eval_set, max_new_tokens=budget)
    curve.append((0, accuracy))
    step = 0
    while accuracy < cfg.target_accuracy and step < cfg.max_steps:
        first = step * cfg.batch_size
        batch = [
            env.problem(indexed_seed(WARMSTART_DOMAIN, first + i, cfg.seed)) for i in range(cfg.batch_size)
        ]
        ids, mask = _batch(tokenizer, batch)
        logits = model(input_ids=ids, use_cache=False).logits[:, :-1, :]
        nll = torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1), reduction="none"
        )
        loss = (nll * mask.reshape(-1)).sum() / mask.sum()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        step += 1
        if step % cfg.eval_every == 0 or step == cfg.max_steps:
            accuracy = evaluate_accuracy(model, tokenizer, env, eval_set, max_new_tokens=budget)
            curve.append((step, accuracy))
            if log is not None:
                log(f"warm start step {step}: loss {float(loss.detach()):.3f}, eval accuracy {accuracy:.3f}")
    optimizer.zero_grad(set_to_none=True)
    model.eval()
    return step, accuracy, curve
