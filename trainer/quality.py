"""The quality gate: a trainer's model must still predict the task's reference answers about as well as the
round's base did, on problems nobody knew when the trainer committed.

    problems   = env.problem(indexed_seed(QUALITY_DOMAIN, i, salt=uint256(seed)))   i = 0..QUALITY_PROMPTS-1
                 (the round's seed: drawn after every submission was committed)
    score(W)   = mean over problems of the mean log-probability W gives the reference answer's tokens and
                 EOS, teacher-forced (`log_softmax(logits)` of one right-padded fp32 prefill over
                 prompt + answer + EOS; temperature 1, no sampling)
    W_trainer  = fp32(base - update)          the model the trainer's update alone would make
    drop       = score(base) - score(W_trainer)
    the submission fails the gate when not drop <= max_quality_drop   (NaN fails)

Why this statistic: it is smooth in the weights (a change of the weights by float rounding moves it by
~1e-6, while the calibrated margin is thousands of times larger: `scripts/calibrate_quality.py`, so
validators on other hardware agree), it needs no sampling (no argmax ties), and every environment of the
project has a reference answer (`Environment.solve`). It measures what an accuracy-destroying update
destroys: the probability of the right answer and of stopping after it (an update that removes EOS, or
that reverses training, drops it by far more than honest training ever does). An update that passes it
can still be harmful in subtler ways; the robust aggregation (`trainer.diloco`, clipping to a multiple
of the median norm) bounds what such an update does to the next model.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
from pydantic import BaseModel, ConfigDict
from transformers import PretrainedConfig, PreTrainedModel, PreTrainedTokenizerBase

from trainer.checkpoint import load_weights
from trainer.config import QUALITY_MAX_LR
from trainer.derive import domain_tag, indexed_seed
from trainer.envs import Environment, Problem
from trainer.model import model_from_config
from trainer.replay import Engine, prefill_logits
from trainer.tokenizer import encode_prompt

__all__ = [
    "QUALITY_DOMAIN",
    "QUALITY_MAX_LR",
    "QUALITY_PROMPTS",
    "QualityCheck",
    "check_quality",
    "quality_problems",
    "reference_score",
    "trainer_weights",
]

QUALITY_DOMAIN = domain_tag("trustrl.quality.v1")
"""Domain of the gate's problems (no training prompt or held-out problem comes from it)."""
QUALITY_PROMPTS = 64
"""Problems per gate evaluation (the margin in `VerifyThresholds.max_quality_drop` is calibrated for it)."""


class QualityCheck(BaseModel):
    """The gate's statistics for one submission."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    problems: int
    base_score: float
    """score(base): mean log-probability per reference token (nats, <= 0)."""
    score: float
    """score(base - update)."""
    drop: float
    """base_score - score; positive when the trainer's model predicts the references worse."""


def quality_problems(env: Environment, seed: bytes, count: int = QUALITY_PROMPTS) -> list[Problem]:
    """The gate's problems of a round: `indexed_seed(QUALITY_DOMAIN, i, salt=uint256(seed))`."""
    salt = int.from_bytes(seed, "big")
    return [env.problem(indexed_seed(QUALITY_DOMAIN, i, salt)) for i in range(count)]


@torch.inference_mode()
def reference_score(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    problems: Sequence[Problem],
    engine: Engine = "auto",
) -> float:
    """Mean over `problems` of the mean log-probability of the answer's tokens and EOS (teacher forcing);
    `engine` picks the forward (`trainer.replay`)."""
    seqs: list[tuple[list[int], int]] = []
    for p in problems:
        prompt = encode_prompt(tokenizer, p.prompt)
        answer = [*tokenizer(p.answer, add_special_tokens=False)["input_ids"], tokenizer.eos_token_id]
        seqs.append(([*prompt, *answer], len(prompt)))
    S = max(len(s) for s, _ in seqs)
    ids = torch.full((len(seqs), S), int(tokenizer.pad_token_id), dtype=torch.long)
    for b, (s, _) in enumerate(seqs):
        ids[b, : len(s)] = torch.tensor(s, dtype=torch.long)
    lengths = torch.tensor([len(s) for s, _ in seqs], dtype=torch.long)
    _, logits = prefill_logits(model, ids, lengths, engine)  # [B, S, V]; right padding is never looked at
    logp = torch.log_softmax(logits.float(), dim=-1)
    per_problem: list[float] = []
    for b, (s, n_prompt) in enumerate(seqs):
        positions = torch.arange(n_prompt - 1, len(s) - 1)
        targets = torch.tensor(s[n_prompt:], dtype=torch.long)
        per_problem.append(float(logp[b, positions, targets].double().mean()))
    return math.fsum(per_problem) / len(per_problem)


def trainer_weights(
    base: Mapping[str, torch.Tensor], delta: Mapping[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """fp32(base - delta): the model a trainer's update makes on its own. A weight the update does not name
    (the frozen base under LoRA, `trainer.lora`) is the base's."""
    return {k: (base[k] - delta[k]).contiguous() if k in delta else base[k] for k in base}


def check_quality(
    policy_config: PretrainedConfig,
    tokenizer: PreTrainedTokenizerBase,
    env: Environment,
    base: Mapping[str, torch.Tensor],
    delta: Mapping[str, torch.Tensor],
    seed: bytes,
    *,
    base_score: float | None = None,
    count: int = QUALITY_PROMPTS,
) -> QualityCheck:
    """The gate's statistics of the update `delta` (decoded, checked) in the round with seed `seed`.
    `base_score` is `reference_score` of the base on the same problems, when already known."""
    problems = quality_problems(env, seed, count)
    model = model_from_config(policy_config)
    if base_score is None:
        load_weights(model, base)
        base_score = reference_score(model, tokenizer, problems)
    load_weights(model, trainer_weights(base, delta))
    score = reference_score(model, tokenizer, problems)
    drop = base_score - score
    return QualityCheck(
        problems=len(problems),
        base_score=base_score,
        score=score if math.isfinite(score) else -math.inf,
        drop=drop if math.isfinite(drop) else math.inf,
    )
