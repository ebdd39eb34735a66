"""`trainer.cheats.off_sample` (a honeypot bait's `every-rollout` defect) keeps every rule the cheap checks
hold a rollout to (termination, proof count, the reward of the forged tokens) and forges the first token
to the one the rollout's own sampler ranks last among ordinary tokens, whatever the completion: one ending
in EOS, a lone EOS (with room for EOS after the forged token, and without it when max_new_tokens is 1), one
of the full length without EOS."""

from __future__ import annotations

import pytest
import torch

from trainer.cheats import off_sample
from trainer.config import InnerConfig, ModelConfig
from trainer.derive import sample_seed
from trainer.envs import get_env
from trainer.model import hf_config, model_from_config
from trainer.rollout import Rollout, make_requests, prefill_hidden, reward_of
from trainer.sampling import gumbel_noise, scores
from trainer.tokenizer import build_tokenizer
from trainer.toploc import build_proofs, expected_proof_count
from trainer.verify import SubmissionContext, check_rollout

TRAINER = "0x" + "ab" * 20


@pytest.fixture(scope="module")
def world() -> tuple:
    torch.manual_seed(0)
    env = get_env("addition", {"digits": 1})
    tokenizer = build_tokenizer(env.alphabet)
    config = ModelConfig(hidden_size=32, num_layers=1, num_heads=2, num_kv_heads=2, intermediate_size=64,
                         max_position_embeddings=16)  # fmt: skip
    model = model_from_config(hf_config(config, tokenizer))
    return env, tokenizer, model


@pytest.mark.parametrize(
    ("completion", "max_new_tokens"),
    [("digit+eos", 3), ("eos", 3), ("eos", 1), ("full", 3)],
)
def test_the_forged_rollout_passes_the_cheap_checks(
    world: tuple, completion: str, max_new_tokens: int
) -> None:
    env, tokenizer, model = world
    eos = tokenizer.eos_token_id
    (request,) = make_requests(env, tokenizer, task_id=7, round_=1, trainer=TRAINER, step=0, num_prompts=1,
                               group_size=1)  # fmt: skip
    digit = tokenizer("5", add_special_tokens=False)["input_ids"][0]
    ids = {"digit+eos": (digit, eos), "eos": (eos,), "full": (digit,) * max_new_tokens}[completion]
    honest = Rollout(0, 0, 0, request.prompt_ids, ids, 0.0, (), ids[-1] == eos)
    seed = sample_seed(7, 1, TRAINER, 0, 0, 0)
    forged = off_sample(
        honest, env, tokenizer, model, seed=seed, max_new_tokens=max_new_tokens, temperature=1.0
    )

    _, logits = prefill_hidden(model, request.prompt_ids, (eos,))
    s = scores(logits[0], gumbel_noise(seed, max_new_tokens, logits.shape[-1])[0], 1.0)
    special = set(tokenizer.all_special_ids) | {eos}
    ordinary = [t for t in range(logits.shape[-1]) if t not in special]
    assert forged.completion_ids[0] == min(ordinary, key=lambda t: float(s[t]))
    assert forged.completion_ids[1:] == (ids[1:] or ((eos,) if max_new_tokens > 1 else ()))
    assert forged.reward == reward_of(env, tokenizer, request.prompt_ids, forged.completion_ids)
    assert len(forged.proofs) == expected_proof_count(len(forged.completion_ids))
    inner = InnerConfig(steps=1, num_prompts=1, group_size=2, max_new_tokens=max_new_tokens)
    ctx = SubmissionContext(task_id=7, round_=1, trainer=TRAINER, inner=inner)
    check = check_rollout(forged, ctx, env, tokenizer, int(logits.shape[-1]))
    assert check.failures == ()
    hidden, _ = prefill_hidden(model, request.prompt_ids, forged.completion_ids)
    assert forged.proofs == tuple(build_proofs(hidden))  # TOPLOC's replay rebuilds exactly these
