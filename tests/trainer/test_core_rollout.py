"""Rollout generation: batching and padding never change results; hidden states match a prefill replay."""

from __future__ import annotations

import pytest
import torch
from core_helpers import TINY, TRAINER_A, TRAINER_B, one_thread, tiny_policy

from trainer.envs import get_env
from trainer.errors import ConfigError
from trainer.rollout import (
    GenerationStats,
    RolloutRequest,
    evaluate_accuracy,
    generate,
    make_requests,
    prefill_hidden,
    reward_of,
)
from trainer.sampling import gumbel_noise, scores
from trainer.tokenizer import WithoutEos, decode_completion, encode_prompt
from trainer.toploc import PROOF_BYTES

pytestmark = pytest.mark.usefixtures(one_thread.__name__)


@pytest.fixture(scope="module")
def policy():  # type: ignore[no-untyped-def]
    return tiny_policy(get_env("sort_digits", {"min_len": 1, "max_len": 9}))


def _requests(policy, n_prompts: int = 4, group: int = 3, step: int = 0):  # type: ignore[no-untyped-def]
    _, tok, env = policy
    return make_requests(
        env, tok, task_id=1, round_=0, trainer=TRAINER_A, step=step, num_prompts=n_prompts, group_size=group
    )


def test_make_requests_groups_share_a_prompt_and_seeds_differ(policy) -> None:  # type: ignore[no-untyped-def]
    reqs = _requests(policy)
    assert [(r.prompt_idx, r.g) for r in reqs] == [(p, g) for p in range(4) for g in range(3)]
    for p in range(4):
        assert len({r.prompt_ids for r in reqs if r.prompt_idx == p}) == 1
    assert len({r.sample_seed for r in reqs}) == len(reqs)
    _, tok, env = policy
    other = make_requests(
        env, tok, task_id=1, round_=0, trainer=TRAINER_B, step=0, num_prompts=4, group_size=3
    )
    assert {r.sample_seed for r in other}.isdisjoint({r.sample_seed for r in reqs})


def test_batched_equals_one_by_one_and_padding_changes_nothing(policy) -> None:  # type: ignore[no-untyped-def]
    model, tok, env = policy
    reqs = _requests(policy)
    assert len({len(r.prompt_ids) for r in reqs}) > 1  # the batch really is padded
    batched, h_batched = generate(
        model, tok, env, reqs, max_new_tokens=12, temperature=1.0, build_proofs=False, return_hidden=True
    )
    single, h_single = generate(
        model,
        tok,
        env,
        reqs,
        max_new_tokens=12,
        temperature=1.0,
        build_proofs=False,
        return_hidden=True,
        batch_size=1,
    )
    assert batched == single
    for a, b in zip(h_batched, h_single, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    # one long prompt in the batch pads the others more; nothing changes for them
    long = RolloutRequest(0, 99, 0, tuple(encode_prompt(tok, "987654321:")), b"long")
    padded = generate(model, tok, env, [long, *reqs], max_new_tokens=12, temperature=1.0, build_proofs=False)
    assert padded[1:] == batched
    again = generate(model, tok, env, reqs, max_new_tokens=12, temperature=1.0, build_proofs=False)
    assert again == batched


def test_hidden_states_and_tokens_replay_with_one_prefill(policy) -> None:  # type: ignore[no-untyped-def]
    model, tok, env = policy
    reqs = _requests(policy, 3, 2)
    rollouts, hidden = generate(
        model, tok, env, reqs, max_new_tokens=10, temperature=0.7, build_proofs=False, return_hidden=True
    )
    for req, ro, h in zip(reqs, rollouts, hidden, strict=True):
        assert h.shape == (len(ro.completion_ids), TINY.hidden_size)
        replay_h, replay_logits = prefill_hidden(model, ro.prompt_ids, ro.completion_ids)
        torch.testing.assert_close(replay_h, h, atol=1e-5, rtol=1e-5)
        noise = gumbel_noise(req.sample_seed, 10, replay_logits.shape[-1])[: len(ro.completion_ids)]
        assert scores(replay_logits, noise, 0.7).argmax(-1).tolist() == list(ro.completion_ids)


def test_termination_work_units_and_rewards(policy) -> None:  # type: ignore[no-untyped-def]
    model, tok, env = policy
    stats = GenerationStats()
    rollouts = generate(
        model,
        tok,
        env,
        _requests(policy, 6, 4),
        max_new_tokens=5,
        temperature=1.5,
        build_proofs=False,
        stats=stats,
    )
    for ro in rollouts:
        assert 1 <= ro.work_units == len(ro.completion_ids) <= 5
        assert ro.finished == (ro.completion_ids[-1] == tok.eos_token_id)
        assert tok.eos_token_id not in ro.completion_ids[:-1]
        if not ro.finished:
            assert ro.work_units == 5
        assert ro.reward == reward_of(env, tok, ro.prompt_ids, ro.completion_ids)
    assert stats.tokens == sum(r.work_units for r in rollouts)
    assert stats.sequences == 24


def test_without_eos_every_completion_runs_to_the_end(policy) -> None:  # type: ignore[no-untyped-def]
    model, tok, env = policy
    requests = _requests(policy, 6, 4)
    normal = generate(model, tok, env, requests, max_new_tokens=12, temperature=1.5, build_proofs=False)
    assert any(r.finished for r in normal)  # this policy does stop early at T = 1.5
    fixed = generate(
        model, WithoutEos(tok), env, requests, max_new_tokens=12, temperature=1.5, build_proofs=False
    )
    assert all(len(r.completion_ids) == 12 and not r.finished for r in fixed)
    # until its first EOS a completion is the same: the sampling does not depend on the EOS id
    for a, b in zip(normal, fixed, strict=True):
        assert b.completion_ids[: len(a.completion_ids)] == a.completion_ids


def test_rewards_of_correct_completions(policy) -> None:  # type: ignore[no-untyped-def]
    _, tok, env = policy
    ids = encode_prompt(tok, "3142:")
    answer = tok("1234", add_special_tokens=False)["input_ids"]
    assert reward_of(env, tok, ids, [*answer, tok.eos_token_id]) == 1.0
    assert reward_of(env, tok, ids, answer) == 1.0  # cut by the budget, still the answer's text
    assert reward_of(env, tok, ids, [*answer[:-1], tok.eos_token_id]) == 0.0
    assert decode_completion(tok, [*answer, tok.eos_token_id]) == "1234"


def test_proofs_cover_every_32_tokens() -> None:
    model, tok, env = tiny_policy()
    reqs = make_requests(
        env, tok, task_id=2, round_=1, trainer=TRAINER_A, step=0, num_prompts=2, group_size=2
    )
    rollouts = generate(model, tok, env, reqs, max_new_tokens=40, temperature=1.0)
    for ro in rollouts:
        assert len(ro.proofs) == -(-ro.work_units // 32)
        assert all(len(p) == PROOF_BYTES for p in ro.proofs)


def test_qwen2_policies_generate_too() -> None:
    env = get_env("addition")
    model, tok, _ = tiny_policy(env, TINY.model_copy(update={"arch": "qwen2"}))
    assert type(model).__name__ == "Qwen2ForCausalLM"
    reqs = make_requests(
        env, tok, task_id=1, round_=0, trainer=TRAINER_A, step=0, num_prompts=3, group_size=2
    )
    a = generate(model, tok, env, reqs, max_new_tokens=4, temperature=1.0, build_proofs=False)
    b = generate(model, tok, env, reqs, max_new_tokens=4, temperature=1.0, build_proofs=False, batch_size=1)
    assert a == b


def test_greedy_accuracy_matches_its_definition(policy) -> None:  # type: ignore[no-untyped-def]
    model, tok, env = policy
    problems = [env.problem(bytes([i]) * 8) for i in range(10)]
    reqs = [
        RolloutRequest(0, i, 0, tuple(encode_prompt(tok, p.prompt)), b"any") for i, p in enumerate(problems)
    ]
    greedy = generate(
        model, tok, env, reqs, max_new_tokens=env.max_answer_len + 1, temperature=0.0, build_proofs=False
    )
    expected = sum(r.reward for r in greedy) / len(problems)
    assert evaluate_accuracy(model, tok, env, problems) == expected


def test_bad_requests_are_config_errors(policy) -> None:  # type: ignore[no-untyped-def]
    model, tok, env = policy
    with pytest.raises(ConfigError, match="empty"):
        generate(
            model,
            tok,
            env,
            [RolloutRequest(0, 0, 0, (), b"s")],
            max_new_tokens=2,
            temperature=1.0,
            build_proofs=False,
        )
    with pytest.raises(ConfigError, match="outside"):
        generate(
            model,
            tok,
            env,
            [RolloutRequest(0, 0, 0, (1, 999), b"s")],
            max_new_tokens=2,
            temperature=1.0,
            build_proofs=False,
        )
    with pytest.raises(ConfigError, match="positions"):
        generate(
            model,
            tok,
            env,
            [RolloutRequest(0, 0, 0, (1, 5), b"s")],
            max_new_tokens=100,
            temperature=1.0,
            build_proofs=False,
        )
    with pytest.raises(ConfigError):
        generate(model, tok, env, _requests(policy), max_new_tokens=0, temperature=1.0, build_proofs=False)
