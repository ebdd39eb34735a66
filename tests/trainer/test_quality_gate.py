"""The quality gate's statistic (`trainer.quality`): the problems come from the seed alone; the score is the
teacher-forced log-probability of the reference answer and EOS, the same through both forwards and any
thread count to float noise far below the threshold; an update of zeros drops nothing; negating the EOS row
(the issue's poisoned step) drops it by far more than the threshold."""

from __future__ import annotations

import math

import torch

from trainer.cheats import LM_HEAD
from trainer.checkpoint import model_weights
from trainer.config import ModelConfig, VerifyThresholds, WarmStartConfig
from trainer.envs import get_env
from trainer.model import build_model
from trainer.quality import QUALITY_PROMPTS, check_quality, quality_problems, reference_score
from trainer.tokenizer import build_tokenizer, encode_prompt
from trainer.warmstart import warm_start

ENV = get_env("addition", {"digits": 2})
TOKENIZER = build_tokenizer(ENV.alphabet)
CONFIG = ModelConfig(hidden_size=32, num_layers=1, num_heads=2, num_kv_heads=2, intermediate_size=64,
                     max_position_embeddings=16)  # fmt: skip


def _model() -> torch.nn.Module:
    return build_model(CONFIG, TOKENIZER)


def test_the_problems_are_the_seeds_alone() -> None:
    a, b = quality_problems(ENV, b"\x01" * 32), quality_problems(ENV, b"\x02" * 32)
    assert len(a) == QUALITY_PROMPTS
    assert a == quality_problems(ENV, b"\x01" * 32)
    assert a != b


def test_the_score_is_the_teacher_forced_log_probability_of_answer_and_eos() -> None:
    model = _model()
    problems = quality_problems(ENV, b"\x03" * 32)[:5]
    expected = []
    with torch.no_grad():
        for p in problems:
            prompt = encode_prompt(TOKENIZER, p.prompt)
            target = [*TOKENIZER(p.answer, add_special_tokens=False)["input_ids"], TOKENIZER.eos_token_id]
            logits = model(torch.tensor([prompt + target])).logits[0].double()
            logp = torch.log_softmax(logits, dim=-1)
            expected.append(
                sum(float(logp[len(prompt) - 1 + i, t]) for i, t in enumerate(target)) / len(target)
            )
    assert math.isclose(reference_score(model, TOKENIZER, problems), sum(expected) / 5, abs_tol=1e-5)


def test_float_noise_is_far_below_the_threshold() -> None:
    model = _model()
    problems = quality_problems(ENV, b"\x04" * 32)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = reference_score(model, TOKENIZER, problems)
        torch.set_num_threads(2)
        two = reference_score(model, TOKENIZER, problems)
    finally:
        torch.set_num_threads(threads)
    hf = reference_score(model, TOKENIZER, problems, engine="hf")
    assert max(abs(one - two), abs(one - hf)) < 1e-4 * VerifyThresholds().max_quality_drop


def test_no_update_drops_nothing_and_a_negated_eos_row_drops_far_more_than_the_threshold() -> None:
    env = get_env("addition", {"digits": 1})
    warm = warm_start(env, CONFIG, WarmStartConfig(lr=0.01, target_accuracy=0.3, batch_size=32, eval_size=50))
    base = {k: v.clone() for k, v in model_weights(warm.model).items()}
    seed = b"\x05" * 32
    zero = {k: torch.zeros_like(v) for k, v in base.items()}
    assert check_quality(warm.model.config, warm.tokenizer, env, base, zero, seed).drop == 0.0
    eos = warm.tokenizer.eos_token_id
    poison = {k: torch.zeros_like(v) for k, v in base.items()}
    poison[LM_HEAD][eos] = 2 * base[LM_HEAD][eos]  # base - poison negates the row: the model never stops
    check = check_quality(warm.model.config, warm.tokenizer, env, base, poison, seed)
    assert check.drop > 3 * VerifyThresholds().max_quality_drop
