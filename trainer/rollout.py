"""Rollouts: batched seeded generation with the hidden states TOPLOC proves.

Conventions (docs/trainer.md repeats them; validators rely on them):

* A prompt is `encode_prompt(tokenizer, problem.prompt)` = BOS + one id per character.
* Completion token t (t = 0, 1, ...) is `argmax(logits_t / T + gumbel_noise(sample_seed, max_new_tokens,
  vocab)[t])`, where logits_t is the LM-head output at the position just before it: the prompt's last
  position for t = 0, completion token t-1 for t >= 1. Generation of a sequence stops after EOS or after
  `max_new_tokens` tokens (`finished` says whether EOS came). EOS, when emitted, is the last completion id.
* The hidden state proved for token t is the final normalized hidden state (the LM head's input,
  `hidden_states[-1]`) at that same position. A validator reproduces all of them with one prefill of
  `prompt_ids + completion_ids[:-1]` (no padding) and keeps positions `len(prompt)-1 ..
  len(prompt)+len(completion)-2`: see `prefill_hidden`.
* Batches are left-padded with the pad id, attention mask 0 on padding, position ids counted from each
  sequence's first real token, so padding does not change any sequence's result.
* workUnits of a rollout = len(completion_ids) (EOS included, padding never).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, overload

import torch
from transformers import DynamicCache, PreTrainedModel, PreTrainedTokenizerBase

from trainer.derive import prompt_seed, sample_seed
from trainer.envs import Environment, Problem
from trainer.errors import ConfigError, TrainerError
from trainer.sampling import gumbel_noise, select
from trainer.tokenizer import decode_completion, decode_prompt, encode_prompt

__all__ = [
    "GenerationStats",
    "Rollout",
    "RolloutRequest",
    "evaluate_accuracy",
    "generate",
    "make_requests",
    "prefill_hidden",
    "reward_of",
]

ProofBuilder = Callable[[Sequence[torch.Tensor]], list[list[bytes]]]


@dataclass(frozen=True)
class RolloutRequest:
    """One completion to generate: where it sits in the round, its prompt ids and its sampling seed."""

    step: int
    prompt_idx: int
    g: int
    prompt_ids: tuple[int, ...]
    sample_seed: bytes


@dataclass(frozen=True)
class Rollout:
    """A generated completion with its reward and TOPLOC proofs (one per 32 completion tokens)."""

    step: int
    prompt_idx: int
    g: int
    prompt_ids: tuple[int, ...]
    completion_ids: tuple[int, ...]
    reward: float
    proofs: tuple[bytes, ...]
    finished: bool

    @property
    def work_units(self) -> int:
        """Generated tokens, EOS included."""
        return len(self.completion_ids)


@dataclass
class GenerationStats:
    """Wall time spent generating and building proofs (accumulates over calls)."""

    generate_s: float = 0.0
    proof_s: float = 0.0
    tokens: int = 0
    sequences: int = 0
    calls: int = 0


def make_requests(
    env: Environment,
    tokenizer: PreTrainedTokenizerBase,
    *,
    task_id: int,
    round_: int,
    trainer: str | bytes,
    step: int,
    num_prompts: int,
    group_size: int,
) -> list[RolloutRequest]:
    """The P x G requests of inner step `step`, ordered by (prompt_idx, g); seeds from `trainer.derive`."""
    out: list[RolloutRequest] = []
    for p in range(num_prompts):
        problem = env.problem(prompt_seed(task_id, round_, trainer, step, p))
        ids = tuple(encode_prompt(tokenizer, problem.prompt))
        for g in range(group_size):
            out.append(RolloutRequest(step, p, g, ids, sample_seed(task_id, round_, trainer, step, p, g)))
    return out


def reward_of(
    env: Environment,
    tokenizer: PreTrainedTokenizerBase,
    prompt_ids: Sequence[int],
    completion_ids: Sequence[int],
) -> float:
    """The environment's reward of a completion, from token ids alone (the answer comes from the prompt)."""
    prompt = decode_prompt(tokenizer, prompt_ids)
    problem = Problem(prompt=prompt, answer=env.solve(prompt))
    return env.reward(problem, decode_completion(tokenizer, completion_ids))


def _proof_builder() -> ProofBuilder:
    """`trainer.toploc.build_proofs_many`, imported on first use (proofs are optional in tests)."""
    try:
        from trainer.toploc import build_proofs_many
    except ImportError as exc:
        raise TrainerError(f"TOPLOC proofs need trainer.toploc ({exc}); pass build_proofs=False") from None
    return build_proofs_many


def _check_requests(requests: Sequence[RolloutRequest], vocab: int, max_positions: int, max_new: int) -> None:
    for r in requests:
        if not r.prompt_ids:
            raise ConfigError(f"request (step {r.step}, prompt {r.prompt_idx}, g {r.g}) has an empty prompt")
        if min(r.prompt_ids) < 0 or max(r.prompt_ids) >= vocab:
            raise ConfigError(
                f"request (step {r.step}, prompt {r.prompt_idx}) has token ids outside [0, {vocab})"
            )
        if len(r.prompt_ids) + max_new > max_positions:
            raise ConfigError(
                f"prompt of {len(r.prompt_ids)} tokens + {max_new} new tokens exceeds the model's "
                f"{max_positions} positions"
            )


@torch.inference_mode()
def _generate_batch(
    model: PreTrainedModel,
    pad_id: int,
    eos_id: int,
    requests: Sequence[RolloutRequest],
    max_new_tokens: int,
    temperature: float,
) -> tuple[list[list[int]], list[torch.Tensor], list[bool]]:
    """Completion ids, hidden states [n_b, hidden] and finished flags of one left-padded batch."""
    device = next(model.parameters()).device
    B = len(requests)
    L = max(len(r.prompt_ids) for r in requests)
    input_ids = torch.full((B, L), pad_id, dtype=torch.long)
    mask = torch.zeros((B, L), dtype=torch.long)
    for b, r in enumerate(requests):
        input_ids[b, L - len(r.prompt_ids) :] = torch.tensor(r.prompt_ids, dtype=torch.long)
        mask[b, L - len(r.prompt_ids) :] = 1
    positions = (mask.cumsum(-1) - 1).clamp_(min=0)
    input_ids, mask, positions = input_ids.to(device), mask.to(device), positions.to(device)

    cache = DynamicCache(config=model.config)
    out = model(
        input_ids=input_ids,
        attention_mask=mask,
        position_ids=positions,
        past_key_values=cache,
        use_cache=True,
        output_hidden_states=True,
        logits_to_keep=1,
    )
    vocab = out.logits.shape[-1]
    noise = torch.stack([gumbel_noise(r.sample_seed, max_new_tokens, vocab) for r in requests])  # [B, T, V]
    noise = noise.to(device)
    completions: list[list[int]] = [[] for _ in range(B)]
    hidden_steps: list[torch.Tensor] = []  # each [B, hidden], the LM head's inputs at step t
    active = torch.ones(B, dtype=torch.bool, device=device)
    lengths = torch.zeros(B, dtype=torch.long)
    position = positions[:, -1:]
    for t in range(max_new_tokens):
        logits = out.logits[:, -1, :]  # [B, V]
        hidden_steps.append(out.hidden_states[-1][:, -1, :].detach())
        tokens = select(logits, noise[:, t, :], temperature)  # [B]
        tokens = torch.where(active, tokens, torch.full_like(tokens, pad_id))
        for b in torch.nonzero(active).flatten().tolist():
            completions[b].append(int(tokens[b]))
        lengths += active.cpu().long()
        active = active & (tokens != eos_id)
        if t == max_new_tokens - 1 or not bool(active.any()):
            break
        mask = torch.cat([mask, torch.ones((B, 1), dtype=mask.dtype, device=device)], dim=1)
        position = position + 1
        out = model(
            input_ids=tokens[:, None],
            attention_mask=mask,
            position_ids=position,
            past_key_values=cache,
            use_cache=True,
            output_hidden_states=True,
        )
    stacked = torch.stack(hidden_steps, dim=1)  # [B, steps, hidden]
    hidden = [stacked[b, : int(lengths[b])].clone() for b in range(B)]
    finished = [bool(c) and c[-1] == eos_id for c in completions]
    return completions, hidden, finished


@overload
def generate(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    env: Environment,
    requests: Sequence[RolloutRequest],
    *,
    max_new_tokens: int,
    temperature: float,
    build_proofs: bool = ...,
    return_hidden: Literal[False] = ...,
    batch_size: int | None = ...,
    stats: GenerationStats | None = ...,
) -> list[Rollout]: ...


@overload
def generate(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    env: Environment,
    requests: Sequence[RolloutRequest],
    *,
    max_new_tokens: int,
    temperature: float,
    build_proofs: bool = ...,
    return_hidden: Literal[True],
    batch_size: int | None = ...,
    stats: GenerationStats | None = ...,
) -> tuple[list[Rollout], list[torch.Tensor]]: ...


def generate(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    env: Environment,
    requests: Sequence[RolloutRequest],
    *,
    max_new_tokens: int,
    temperature: float,
    build_proofs: bool = True,
    return_hidden: bool = False,
    batch_size: int | None = None,
    stats: GenerationStats | None = None,
) -> list[Rollout] | tuple[list[Rollout], list[torch.Tensor]]:
    """Generate one rollout per request (same order), batched with left padding and a KV cache.

    Each rollout's reward comes from `env`; with `build_proofs` its TOPLOC proofs come from
    `trainer.toploc.build_proofs` over the hidden states of its completion tokens. With
    `return_hidden` the hidden states ([len(completion), hidden_size] per rollout) come back too.
    """
    if max_new_tokens < 1:
        raise ConfigError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
    if temperature < 0:
        raise ConfigError(f"temperature must be >= 0, got {temperature}")
    pad_id, eos_id = tokenizer.pad_token_id, tokenizer.eos_token_id
    if pad_id is None or eos_id is None:
        raise ConfigError("the tokenizer needs a pad and an eos token")
    vocab = int(model.config.vocab_size)
    max_positions = int(getattr(model.config, "max_position_embeddings", 1 << 30))
    _check_requests(requests, vocab, max_positions, max_new_tokens)
    builder = _proof_builder() if build_proofs else None
    step = batch_size or max(1, len(requests))

    rollouts: list[Rollout] = []
    hiddens: list[torch.Tensor] = []
    for start in range(0, len(requests), step):
        chunk = requests[start : start + step]
        t0 = time.perf_counter()
        completions, hidden, finished = _generate_batch(
            model, pad_id, eos_id, chunk, max_new_tokens, temperature
        )
        t1 = time.perf_counter()
        proofs = builder(hidden) if builder is not None else [[] for _ in chunk]
        t2 = time.perf_counter()
        for req, ids, hid, fin, prf in zip(chunk, completions, hidden, finished, proofs, strict=True):
            rollouts.append(
                Rollout(
                    step=req.step,
                    prompt_idx=req.prompt_idx,
                    g=req.g,
                    prompt_ids=req.prompt_ids,
                    completion_ids=tuple(ids),
                    reward=reward_of(env, tokenizer, req.prompt_ids, ids),
                    proofs=tuple(prf),
                    finished=fin,
                )
            )
            if return_hidden:
                hiddens.append(hid)
        if stats is not None:
            stats.generate_s += t1 - t0
            stats.proof_s += t2 - t1
            stats.tokens += sum(len(c) for c in completions)
            stats.sequences += len(chunk)
            stats.calls += 1
    if return_hidden:
        return rollouts, hiddens
    return rollouts


@torch.inference_mode()
def prefill_hidden(
    model: PreTrainedModel, prompt_ids: Sequence[int], completion_ids: Sequence[int]
) -> tuple[torch.Tensor, torch.Tensor]:
    """The validator's replay: (hidden [n, hidden_size], logits [n, vocab]) for the n completion tokens.

    One forward pass over prompt + completion[:-1]; row t is the position whose LM-head output chose
    completion token t, exactly the rows `generate` proves.
    """
    if not prompt_ids or not completion_ids:
        raise ConfigError("prefill needs a non-empty prompt and completion")
    device = next(model.parameters()).device
    ids = torch.tensor([[*prompt_ids, *completion_ids[:-1]]], dtype=torch.long, device=device)
    out = model(input_ids=ids, use_cache=False, output_hidden_states=True)
    first = len(prompt_ids) - 1
    n = len(completion_ids)
    return out.hidden_states[-1][0, first : first + n].clone(), out.logits[
        0, first : first + n
    ].float().clone()


def evaluate_accuracy(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    env: Environment,
    problems: Sequence[Problem],
    *,
    max_new_tokens: int | None = None,
    batch_size: int = 256,
) -> float:
    """Fraction of `problems` answered exactly (full credit) with greedy decoding."""
    if not problems:
        raise ConfigError("no problems to evaluate")
    budget = max_new_tokens or env.max_answer_len + 1
    requests = [
        RolloutRequest(0, i, 0, tuple(encode_prompt(tokenizer, p.prompt)), b"greedy")
        for i, p in enumerate(problems)
    ]
    rollouts = generate(
        model,
        tokenizer,
        env,
        requests,
        max_new_tokens=budget,
        temperature=0.0,
        build_proofs=False,
        batch_size=batch_size,
    )
    correct = sum(
        1
        for p, r in zip(problems, rollouts, strict=True)
        if env.reward(p, decode_completion(tokenizer, r.completion_ids)) == 1.0
    )
    return correct / len(problems)
