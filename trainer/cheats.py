"""The ML side of the project's cheat library: how a dishonest trainer changes its rollouts, its training
steps and its update. `protocol.cheats` turns these into whole submissions (and `scripts/bench_security.py`
runs every one against the real checks); the trainer node's `--cheat` modes use them too.

Everything here is deliberately wrong. Each function says what it forges and which check is meant to
catch it (docs/protocol.md, "Why cheating does not pay").

    suppress_eos(model)            theta_{j+1}: the EOS row of the LM head negated (the issue's poisoned
                                   step: completions run to the length limit; accuracy falls to 0)
    fabricated(rollout, ...)       "answer + EOS", reward 1, with junk proofs (TOPLOC fails on replay) or
                                   proofs rebuilt from an honest prefill of the forged tokens (the sampling
                                   replay fails: the forged tokens are not what the seed's noise picks)
    quantized(weights, kind)       the weights a cheaper generator would use (bf16 or int8 per row): its
                                   rollouts carry proofs of another precision
    poisoned_update(delta, scale)  `scale` x an honest pseudo-gradient, never equal to it (the trainer
                                   node's `--cheat poison` and the honeypot bait built from it: the
                                   exact update check rejects it)
    perturbed_step(model, j, size) theta_{j+1}: the first weight of every trained tensor moved by
                                   (-1)^j x size after the honest step (a bait's `every-step` defect:
                                   re-execution of any step fails by size / lr, the update stays base -
                                   theta_H)
    off_sample(rollout, ...)       the first completion token replaced by the one the rollout's own
                                   sampler ranks last, proofs rebuilt, reward recomputed (a bait's
                                   `every-rollout` defect: only the sampling replay fails)
    poison_direction(...)          a direction that hurts the model (EOS suppression, reversed training,
                                   a wrong-answer bias, random); `gate_tuned_scale` finds the largest
                                   multiple of it that still passes the attacker's own estimate of the
                                   quality gate: the adaptive attacker that tunes itself to the gate
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Literal

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from trainer.envs import Environment
from trainer.rollout import Rollout, prefill_hidden
from trainer.tokenizer import decode_prompt
from trainer.toploc import PROOF_BYTES, build_proofs, expected_proof_count

__all__ = [
    "LM_HEAD",
    "Direction",
    "combined",
    "fabricated",
    "gate_tuned_scale",
    "junk_proofs",
    "off_sample",
    "perturbed_step",
    "poison_direction",
    "poisoned_update",
    "quantized",
    "scaled",
    "suppress_eos",
    "total_norm",
]

LM_HEAD = "lm_head.weight"
"""The output layer's weight ([vocab, hidden]) in the project's models (embeddings are not tied)."""

Tensors = Mapping[str, torch.Tensor]
Direction = Literal["eos", "reverse", "wrong-answer", "random"]


def suppress_eos(model: PreTrainedModel, eos_id: int) -> None:
    """Negate the LM head's EOS row in place: the model stops emitting EOS, so every completion runs to
    `max_new_tokens` (more tokens, and exact-match rewards of 0)."""
    weight = dict(model.named_parameters())[LM_HEAD]
    with torch.no_grad():
        weight[eos_id].neg_()


def junk_proofs(n_tokens: int, salt: bytes) -> tuple[bytes, ...]:
    """ceil(n/32) proofs of 258 pseudo-random bytes: the right count and size, meaningless content."""
    out = []
    for i in range(expected_proof_count(n_tokens)):
        stream = b"".join(hashlib.sha256(salt + bytes([i, k])).digest() for k in range(9))
        out.append(stream[:PROOF_BYTES])
    return tuple(out)


def fabricated(
    rollout: Rollout,
    env: Environment,
    tokenizer: PreTrainedTokenizerBase,
    *,
    proofs: Literal["junk", "rebuilt"] = "junk",
    model: PreTrainedModel | None = None,
) -> Rollout:
    """`rollout` with its completion replaced by the right answer and EOS, reward 1. Its proofs are junk,
    or (`rebuilt`, needs `model` = the weights that should have generated it) rebuilt from a prefill of
    the forged tokens, so that TOPLOC matches and only the sampling replay can tell."""
    answer = env.solve(decode_prompt(tokenizer, rollout.prompt_ids))
    ids = (*tokenizer(answer, add_special_tokens=False)["input_ids"], tokenizer.eos_token_id)
    if proofs == "rebuilt":
        if model is None:
            raise ValueError("rebuilt proofs need the model")
        hidden, _ = prefill_hidden(model, rollout.prompt_ids, ids)
        proof_bytes = tuple(build_proofs(hidden))
    else:
        proof_bytes = junk_proofs(len(ids), bytes(rollout.prompt_ids) + bytes([rollout.g % 256]))
    return dataclasses.replace(rollout, completion_ids=ids, reward=1.0, proofs=proof_bytes, finished=True)


def perturbed_step(model: PreTrainedModel, j: int, size: float) -> None:
    """After training step j: add (-1)^j x `size` to the first element of every trained tensor, in place.

    The committed theta_{j+1} then differs from what re-executing step j from theta_j gives by `size` in
    those elements, whatever the data (by at least `size` minus the step's own rounding), so re-execution
    fails on every step the seed may pick; the alternating sign keeps the weights near the honest ones
    (theta_H is within `size` of honest training's), and the update is still base - theta_H."""
    with torch.no_grad():
        for param in model.parameters():
            if param.requires_grad and param.numel():
                param.view(-1)[0] += size if j % 2 == 0 else -size


def off_sample(
    rollout: Rollout,
    env: Environment,
    tokenizer: PreTrainedTokenizerBase,
    model: PreTrainedModel,
    *,
    seed: bytes,
    max_new_tokens: int,
    temperature: float,
) -> Rollout:
    """`rollout` with its first completion token replaced by the ordinary token (not EOS, not special)
    that its own sampler scores lowest at that position (score = logits/T + the rollout's Gumbel noise,
    `trainer.sampling`), the rest of the completion kept (a lone EOS becomes that token and EOS, or that
    token alone where max_new_tokens is 1), the reward recomputed and the proofs rebuilt from a prefill
    of the forged tokens on `model` (the weights that should have generated it). So every cheap check and
    TOPLOC pass, and the sampling replay fails at token 0 by the gap between the best and the worst score,
    far above any float noise."""
    from trainer.rollout import reward_of
    from trainer.sampling import gumbel_noise, scores

    eos = tokenizer.eos_token_id
    model.eval()
    with torch.no_grad():
        _, logits = prefill_hidden(model, rollout.prompt_ids, (eos,))
        vocab = logits.shape[-1]
        s = scores(logits[0], gumbel_noise(seed, max_new_tokens, vocab)[0], temperature)
        banned = [t for t in {eos, *tokenizer.all_special_ids} if t is not None and 0 <= t < vocab]
        s[banned] = float("inf")
        ids = (int(s.argmin()), *rollout.completion_ids[1:])
        if ids[-1] != eos and len(ids) < max_new_tokens:
            ids = (*ids, eos)  # a lone EOS replaced: terminate again
        hidden, _ = prefill_hidden(model, rollout.prompt_ids, ids)
    return dataclasses.replace(
        rollout,
        completion_ids=ids,
        reward=reward_of(env, tokenizer, rollout.prompt_ids, ids),
        proofs=tuple(build_proofs(hidden)),
        finished=ids[-1] == eos,
    )


def quantized(weights: Tensors, kind: Literal["bf16", "int8"]) -> dict[str, torch.Tensor]:
    """The fp32 weights after a round trip through bf16, or symmetric int8 with one scale per row."""
    out: dict[str, torch.Tensor] = {}
    for name, w in weights.items():
        if kind == "bf16":
            out[name] = w.to(torch.bfloat16).to(torch.float32)
            continue
        rows = w.reshape(w.shape[0], -1) if w.dim() >= 2 else w.reshape(1, -1)
        scale = rows.abs().amax(dim=1, keepdim=True) / 127.0
        safe = torch.where(scale > 0, scale, torch.ones_like(scale))
        out[name] = (torch.round(rows / safe).clamp(-127, 127) * scale).reshape(w.shape).contiguous()
    return out


def poison_direction(
    kind: Direction,
    base: Tensors,
    honest_delta: Tensors,
    *,
    eos_id: int,
    wrong_token: int,
    seed: int = 0,
) -> dict[str, torch.Tensor]:
    """A unit-norm (over all elements) pseudo-gradient direction d that harms the model when the update
    `honest_delta + alpha * d` is applied (theta = base - update):

    * `eos`: d = +W_lm[eos] on the EOS row only: lowers the EOS logit wherever the final hidden state
      points along the row (the model forgets to stop);
    * `reverse`: d = -honest_delta: undoes training;
    * `wrong-answer`: d = -W_lm[eos] on the row of `wrong_token`: raises that token's logit wherever
      the EOS logit is high (the model appends a wrong digit where it would stop);
    * `random`: a seeded Gaussian direction.
    """
    d = {k: torch.zeros_like(v) for k, v in base.items()}
    if kind == "eos":
        d[LM_HEAD][eos_id] = base[LM_HEAD][eos_id]
    elif kind == "reverse":
        d = {k: -v.clone() for k, v in honest_delta.items()}
    elif kind == "wrong-answer":
        d[LM_HEAD][wrong_token] = -base[LM_HEAD][eos_id]
    else:
        gen = torch.Generator().manual_seed(seed)
        d = {k: torch.randn(v.shape, generator=gen) for k, v in base.items()}
    norm = math.sqrt(sum(float(v.double().square().sum()) for v in d.values()))
    if norm == 0:
        return d
    return {k: (v / norm).to(torch.float32) for k, v in d.items()}


def poisoned_update(delta: Tensors, scale: float, *, seed: int) -> dict[str, torch.Tensor]:
    """`scale` x the honest pseudo-gradient `delta` (scale != 1). Where training moved no weight (every
    group's advantage was 0, so delta = 0 and any multiple of it IS the honest update), a random unit
    direction seeded by `seed` instead (the caller's per-submission seed, so two such updates differ and a
    validator cannot recognise one by its bytes): the result always differs from the honest update, so the
    exact update check (base - theta_H) rejects it. A honeypot's bait relies on that: a bait that honest
    validators accept is decided ACCEPT, so no lazy validator is slashed and the bait is paid."""
    if scale == 1.0:
        raise ValueError("a poisoned update needs a scale other than 1")
    out = {k: v * scale for k, v in delta.items()}
    if any(bool(v.any()) for v in out.values()):
        return out
    return poison_direction("random", delta, delta, eos_id=0, wrong_token=0, seed=seed)


def gate_tuned_scale(passes: Callable[[float], bool], *, limit: float, steps: int = 12) -> float:
    """The largest alpha in [0, limit] for which `passes(alpha)` holds, by bisection (assuming that
    passing is monotone in alpha; 0 when even a tiny alpha fails). `passes` is the attacker's own
    estimate of the quality gate (on problems of its own choosing: it does not know the seed's) and of
    the clipping (a norm within the limit it expects)."""
    if passes(limit):
        return limit
    low, high = 0.0, limit
    for _ in range(steps):
        mid = (low + high) / 2
        if passes(mid):
            low = mid
        else:
            high = mid
    return low


def scaled(delta: Tensors, factor: float) -> dict[str, torch.Tensor]:
    """factor x delta (fp32)."""
    return {k: (v * factor).contiguous() for k, v in delta.items()}


def combined(delta: Tensors, direction: Tensors, alpha: float) -> dict[str, torch.Tensor]:
    """delta + alpha x direction (fp32)."""
    return {k: (delta[k] + alpha * direction[k]).contiguous() for k in delta}


def total_norm(delta: Tensors | Sequence[torch.Tensor]) -> float:
    """The L2 norm over every element (fp64; for the attacker's estimates, not for the protocol)."""
    values = delta.values() if isinstance(delta, Mapping) else delta
    return math.sqrt(sum(float(v.double().square().sum()) for v in values))
