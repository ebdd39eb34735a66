"""The validator's re-checks on a real tiny model: each check's statistics and failure reasons."""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Any

import pytest
import torch

from trainer.cheats import poisoned_update
from trainer.checkpoint import canonical_bytes, load_tensors, model_weights
from trainer.config import Compression, InnerConfig, ModelConfig
from trainer.derive import sample_seed
from trainer.diloco import encode_update, pseudo_gradient
from trainer.envs import get_env
from trainer.grpo import make_optimizer, train_step
from trainer.inner import run_inner_loop
from trainer.model import build_model
from trainer.rollout import Rollout, generate, make_requests, prefill_hidden
from trainer.state import fresh_optimizer, load_state, reexecute_step, state_bytes
from trainer.tokenizer import build_tokenizer
from trainer.toploc import PROOF_BYTES
from trainer.verify import (
    StepStats,
    SubmissionContext,
    VerifyThresholds,
    check_bundle,
    check_initial_state,
    check_rollout,
    check_step,
    check_update,
    decide,
    expected_keys,
    prefill_batch,
    replay_rollouts,
    sampling_gaps,
    verify_submission,
)

TRAINER = "0x" + "5a" * 20
THRESHOLDS = VerifyThresholds()


@dataclasses.dataclass
class Setup:
    env: Any
    tokenizer: Any
    model: Any
    ctx: SubmissionContext
    rollouts: list[Rollout]


@pytest.fixture(scope="module")
def setup() -> Setup:
    torch.set_num_threads(2)
    env = get_env("addition")
    tokenizer = build_tokenizer(env.alphabet)
    model = build_model(ModelConfig(num_layers=2), tokenizer)
    inner = InnerConfig(steps=2, num_prompts=4, group_size=4, max_new_tokens=40)
    ctx = SubmissionContext(task_id=3, round_=1, trainer=TRAINER, inner=inner)
    requests = make_requests(
        env, tokenizer, task_id=3, round_=1, trainer=TRAINER, step=0, num_prompts=4, group_size=4
    )
    rollouts = generate(model, tokenizer, env, requests, max_new_tokens=40, temperature=1.0)
    return Setup(env, tokenizer, model, ctx, rollouts)


def _replace(r: Rollout, **changes: Any) -> Rollout:
    return dataclasses.replace(r, **changes)


def _vocab(s: Setup) -> int:
    return int(s.model.config.vocab_size)


# --- cheap checks --------------------------------------------------------------------------------------


def test_honest_rollouts_pass_the_cheap_checks(setup: Setup) -> None:
    for r in setup.rollouts:
        check = check_rollout(r, setup.ctx, setup.env, setup.tokenizer, _vocab(setup))
        assert check.failures == (), check
        assert check.recomputed_reward == r.reward


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda r, s: {"prompt_ids": (*r.prompt_ids[:-2], r.prompt_ids[-1], r.prompt_ids[-2])}, "derived"),
        (lambda r, s: {"step": 1}, "not a rollout step|derived"),
        (lambda r, s: {"prompt_idx": 4}, "outside"),
        (lambda r, s: {"g": -1}, "outside"),
        (lambda r, s: {"reward": 1.0 - r.reward}, "reward"),
        (lambda r, s: {"proofs": r.proofs[:-1]}, "proofs for"),
        (lambda r, s: {"proofs": (*r.proofs, r.proofs[0])}, "proofs for"),
        (lambda r, s: {"proofs": (r.proofs[0][:-1], *r.proofs[1:])}, f"not {PROOF_BYTES} bytes"),
        (lambda r, s: {"completion_ids": (), "proofs": ()}, "empty"),
        (lambda r, s: {"completion_ids": (*r.completion_ids[:-1], _vocab(s))}, "outside"),
        (lambda r, s: {"finished": not r.finished}, "finished"),
    ],
)
def test_cheap_checks_catch(setup: Setup, change: Any, reason: str) -> None:
    r = setup.rollouts[0]
    bad = _replace(r, **change(r, setup))
    check = check_rollout(bad, setup.ctx, setup.env, setup.tokenizer, _vocab(setup))
    assert any(re.search(reason, f) for f in check.failures), check.failures


def test_termination_checks(setup: Setup) -> None:
    eos = setup.tokenizer.eos_token_id
    digit = setup.tokenizer.convert_tokens_to_ids("1")
    limit = setup.ctx.inner.max_new_tokens

    def failures(ids: list[int]) -> tuple[str, ...]:
        r = _replace(
            setup.rollouts[0],
            completion_ids=tuple(ids),
            finished=ids[-1] == eos,
            proofs=(b"\0" * PROOF_BYTES,) * -(-len(ids) // 32),
        )
        return check_rollout(r, setup.ctx, setup.env, setup.tokenizer, _vocab(setup)).failures

    assert not any("EOS" in f or "max_new_tokens" in f for f in failures([digit, eos]))
    assert not any("EOS" in f or "max_new_tokens" in f for f in failures([digit] * limit))
    assert any("without EOS" in f for f in failures([digit] * (limit - 1)))  # truncated
    assert any("after EOS" in f for f in failures([digit, eos, digit, eos]))
    assert any("> max_new_tokens" in f for f in failures([digit] * limit + [eos]))


def test_bundle_coverage(setup: Setup) -> None:
    inner = InnerConfig(steps=4, rollout_every=2, num_prompts=2, group_size=2)
    ctx = SubmissionContext(task_id=3, round_=1, trainer=TRAINER, inner=inner)
    assert expected_keys(inner) == [(j, p, g) for j in (0, 2) for p in (0, 1) for g in (0, 1)]
    template = setup.rollouts[0]
    full = [_replace(template, step=j, prompt_idx=p, g=g) for j, p, g in expected_keys(inner)]
    ok = check_bundle(full, ctx)
    assert ok.failures == ()
    assert ok.work_units == len(full) * len(template.completion_ids)
    assert any("missing" in f for f in check_bundle(full[1:], ctx).failures)
    assert any("duplicated" in f for f in check_bundle([*full[1:], full[2]], ctx).failures)
    assert any("not prescribed" in f for f in check_bundle([*full, _replace(template, step=1)], ctx).failures)


# --- replay --------------------------------------------------------------------------------------------


def test_batched_prefill_matches_the_generation_convention(setup: Setup) -> None:
    rollouts = setup.rollouts
    for batch_size in (1, 3, 16):
        batched = prefill_batch(setup.model, rollouts, batch_size)
        for r, (hidden, logits) in zip(rollouts, batched, strict=True):
            ref_hidden, ref_logits = prefill_hidden(setup.model, r.prompt_ids, r.completion_ids)
            assert hidden.shape == (len(r.completion_ids), setup.model.config.hidden_size)
            assert torch.allclose(hidden, ref_hidden.float(), atol=1e-5)
            assert torch.allclose(logits, ref_logits, atol=1e-4)


def test_honest_replay_passes_at_every_batch_size(setup: Setup) -> None:
    for batch_size in (1, 4, 16):
        replays = replay_rollouts(setup.model, setup.rollouts, setup.ctx, batch_size=batch_size)
        assert [rep.key for rep in replays] == [(r.step, r.prompt_idx, r.g) for r in setup.rollouts]
        for rep in replays:
            assert rep.proof is not None
            assert rep.proof.passes(THRESHOLDS.toploc), rep
            assert rep.max_gap <= 0
            assert rep.gap_positions == 0
            assert rep.failures == ()


def test_sampling_gaps_mark_a_replaced_token(setup: Setup) -> None:
    r = next(r for r in setup.rollouts if len(r.completion_ids) >= 3)
    hidden_logits = prefill_batch(setup.model, [r])[0][1]
    seed = sample_seed(3, 1, TRAINER, r.step, r.prompt_idx, r.g)
    gaps = sampling_gaps(hidden_logits, r.completion_ids, seed, setup.ctx.inner.max_new_tokens, 1.0)
    assert bool((gaps <= 0).all())
    ids = list(r.completion_ids)
    ids[1] = (ids[1] + 1) % _vocab(setup)
    gaps = sampling_gaps(hidden_logits, ids, seed, setup.ctx.inner.max_new_tokens, 1.0)
    assert float(gaps[1]) > 0
    assert bool((gaps[[0, 2]] <= 0).all())
    greedy = sampling_gaps(hidden_logits, hidden_logits.argmax(dim=1).tolist(), seed, 8, 0.0)
    assert bool((greedy <= 0).all())


def test_unreplayable_rollouts_fail_without_crashing(setup: Setup) -> None:
    r = setup.rollouts[0]
    bad = [
        _replace(r, completion_ids=()),
        _replace(r, completion_ids=(_vocab(setup) + 5,)),
        _replace(r, completion_ids=(-1, 2)),
        _replace(r, completion_ids=(4,) * 200),
        _replace(r, prompt_ids=()),
        _replace(r, g=-1),
        _replace(r, prompt_idx=2**300),
    ]
    replays = replay_rollouts(setup.model, [*bad, r], setup.ctx, batch_size=4)
    assert len(replays) == len(bad) + 1
    for rep in replays[:-1]:
        assert rep.failures
        assert rep.proof is None
        assert math.isinf(rep.max_gap)
    assert replays[-1].failures == ()


# --- states, steps and the update ----------------------------------------------------------------------


def _inner_loop(
    setup: Setup, model: Any, base: dict[str, Any], inner: InnerConfig
) -> tuple[Any, dict[int, bytes]]:
    """Task 3, round 1's inner loop for TRAINER from `base`: its result and every state's bytes."""
    states: dict[int, bytes] = {}
    result = run_inner_loop(
        model, setup.tokenizer, setup.env, base, inner, task_id=3, round_=1, trainer=TRAINER,
        state_sink=states.__setitem__,
    )  # fmt: skip
    return result, states


@pytest.fixture(scope="module")
def submission(setup: Setup) -> dict[str, Any]:
    inner = InnerConfig(steps=2, num_prompts=2, group_size=4, max_new_tokens=8)
    ctx = SubmissionContext(task_id=3, round_=1, trainer=TRAINER, inner=inner)
    base = {k: v.clone() for k, v in model_weights(setup.model).items()}
    model = build_model(ModelConfig(num_layers=2), setup.tokenizer)
    result, states = _inner_loop(setup, model, base, inner)
    # rewards that differ within a group, so that a GRPO step moves the weights
    rollouts = [dataclasses.replace(r, reward=float(r.g % 2)) for r in result.rollouts]
    return {"ctx": ctx, "base": base, "states": states, "result": result, "rollouts": rollouts}


def test_initial_state_must_be_the_base(setup: Setup, submission: dict[str, Any]) -> None:
    config, base, states = setup.model.config, submission["base"], submission["states"]
    inner = submission["ctx"].inner
    assert check_initial_state(config, states[0], base, inner).exact
    other = {k: v + 1e-3 for k, v in base.items()}
    wrong = check_initial_state(config, states[0], other, inner)
    assert not wrong.exact
    assert wrong.failures
    assert math.isclose(wrong.max_abs, 1e-3, rel_tol=1e-2)
    assert check_initial_state(config, b"garbage", base, inner).failures


def test_step_reexecution(setup: Setup, submission: dict[str, Any]) -> None:
    config, states, inner = setup.model.config, submission["states"], submission["ctx"].inner
    rollouts = [r for r in submission["rollouts"] if r.step == 0]
    model = build_model(ModelConfig(num_layers=2), setup.tokenizer)
    opt = make_optimizer(model, inner.grpo)
    load_state(states[0], model, opt)
    train_step(model, opt, rollouts, inner.grpo)
    honest_next = state_bytes(model, opt)
    honest = check_step(config, 0, states[0], honest_next, rollouts, inner)
    assert honest.exact
    assert honest.failures == ()
    assert honest.over(THRESHOLDS) == []
    skipped = check_step(config, 0, states[0], states[0], rollouts, inner)
    assert not skipped.exact
    assert skipped.rel_l2 == pytest.approx(1.0)
    assert skipped.moment_rel == pytest.approx(1.0, rel=1e-3)
    assert math.isinf(skipped.adam_ulps)  # a step count of 0 is no AdamW output
    assert skipped.failures == ("the AdamW step counts differ from the re-execution",)
    assert len(skipped.over(THRESHOLDS)) >= 3
    assert check_step(config, 0, states[0], b"junk", rollouts, inner).failures
    assert check_step(config, 0, b"junk", honest_next, rollouts, inner).failures
    poisoned = [*rollouts[1:], dataclasses.replace(rollouts[0], completion_ids=(10**6,))]
    assert check_step(config, 0, states[0], honest_next, poisoned, inner).failures
    assert check_step(config, 0, states[0], honest_next, [], inner).failures


def _scaled_step(before: bytes, after: bytes, factor: float, prefixes: tuple[str, ...]) -> bytes:
    """theta_j + factor * (theta_j+1 - theta_j) on the tensors whose names start with `prefixes`."""
    a, b = load_tensors(before), load_tensors(after)
    out = {k: a[k] + factor * (b[k] - a[k]) if k.startswith(prefixes) else b[k] for k in b}
    return canonical_bytes(out)


def _with_value(data: bytes, name_part: str, value: float) -> bytes:
    tensors = load_tensors(data)
    name = next(k for k in sorted(tensors) if name_part in k)
    changed = tensors[name].clone()
    changed.view(-1)[0] = value
    return canonical_bytes({**tensors, name: changed})


@pytest.fixture(scope="module")
def honest_step(setup: Setup, submission: dict[str, Any]) -> tuple[list[Rollout], bytes]:
    """Step 0's rollouts (with rewards that give a gradient) and theta_1 re-executed from theta_0."""
    inner = submission["ctx"].inner
    rollouts = [r for r in submission["rollouts"] if r.step == 0]
    return rollouts, reexecute_step(setup.model.config, submission["states"][0], rollouts, inner.grpo)


def test_step_distances_are_in_the_step_s_own_units(
    setup: Setup, submission: dict[str, Any], honest_step: tuple[list[Rollout], bytes]
) -> None:
    """A 1% longer step is caught by AdamW consistency, 1% other moments by the moment check."""
    config, states, inner = setup.model.config, submission["states"], submission["ctx"].inner
    rollouts, honest_next = honest_step
    longer = check_step(
        config, 0, states[0], _scaled_step(states[0], honest_next, 1.01, ("model/",)), rollouts, inner
    )
    assert longer.rel_l2 == pytest.approx(0.01, rel=1e-3)
    assert longer.moment_rel == 0.0
    assert longer.adam_ulps > 100 * THRESHOLDS.max_step_ulps
    everything = _scaled_step(states[0], honest_next, 1.01, ("model/", "optim/"))
    everything = canonical_bytes(
        {
            k: (load_tensors(honest_next)[k] if k.endswith("/step") else v)
            for k, v in load_tensors(everything).items()
        }
    )
    scaled = check_step(config, 0, states[0], everything, rollouts, inner)
    assert scaled.moment_rel == pytest.approx(0.01, rel=0.01)
    assert scaled.over(THRESHOLDS)
    # the same step at another learning rate: every distance is the same number in its own units
    fast = inner.model_copy(update={"grpo": inner.grpo.model_copy(update={"lr": 1e-3})})
    fast_next = reexecute_step(config, states[0], rollouts, fast.grpo)
    fast_longer = check_step(
        config, 0, states[0], _scaled_step(states[0], fast_next, 1.01, ("model/",)), rollouts, fast
    )
    assert fast_longer.rel_l2 == pytest.approx(longer.rel_l2, rel=1e-3)
    assert fast_longer.max_abs_lr == pytest.approx(longer.max_abs_lr, rel=5e-2)  # float32 rounding of W


@pytest.mark.parametrize("value", [math.nan, math.inf])
@pytest.mark.parametrize("where", ["model/", "/exp_avg", "/exp_avg_sq", "/step"])
def test_a_non_finite_committed_state_never_passes(
    setup: Setup,
    submission: dict[str, Any],
    honest_step: tuple[list[Rollout], bytes],
    value: float,
    where: str,
) -> None:
    config, states, inner = setup.model.config, submission["states"], submission["ctx"].inner
    rollouts, honest_next = honest_step
    stats = check_step(config, 0, states[0], _with_value(honest_next, where, value), rollouts, inner)
    assert stats.failures or stats.over(THRESHOLDS), stats
    assert stats.failures or math.isinf(max(stats.rel_l2, stats.moment_rel, stats.adam_ulps))


def test_step_stats_with_nan_fail_every_limit() -> None:
    nan = math.nan
    stats = StepStats(
        step=0,
        exact=False,
        max_abs=nan,
        rel_l2=nan,
        max_abs_lr=nan,
        moment_rel=nan,
        adam_ulps=nan,
        failures=(),
    )
    assert len(stats.over(THRESHOLDS)) == 4
    loose = THRESHOLDS.model_copy(update={"max_step_rel": 1e300, "max_step_lr": 1e300})
    assert len(stats.over(loose)) == 4
    with pytest.raises(ValueError, match="finite"):
        VerifyThresholds(max_step_rel=math.inf)


def test_an_off_policy_step_needs_its_behaviour_state(setup: Setup) -> None:
    inner = InnerConfig(steps=2, rollout_every=2, num_prompts=2, group_size=4, max_new_tokens=8)
    model = build_model(ModelConfig(num_layers=2), setup.tokenizer)
    base = {k: v.clone() for k, v in model_weights(model).items()}
    result, states = _inner_loop(setup, model, base, inner)
    config, train_on = model.config, result.rollouts
    assert check_step(config, 1, states[1], states[2], train_on, inner, states[0]).exact
    withheld = check_step(config, 1, states[1], states[2], train_on, inner)
    assert withheld.failures == ("theta_0 (the rollouts' behaviour policy) withheld",)


@pytest.mark.parametrize(
    "compression", [Compression(), Compression(kind="int8"), Compression(kind="int8", granularity="tensor")]
)
def test_update_consistency(setup: Setup, submission: dict[str, Any], compression: Compression) -> None:
    inner = submission["ctx"].inner.model_copy(update={"compression": compression})
    base = submission["base"]
    gen = torch.Generator().manual_seed(1)
    # a committed theta_H some way from the base, and the update that describes it
    final = {k: v + 1e-3 * torch.randn(v.shape, generator=gen) for k, v in base.items()}
    model = build_model(ModelConfig(num_layers=2), setup.tokenizer)
    model.load_state_dict(final)
    state_h = state_bytes(model, fresh_optimizer(model, inner.grpo))
    delta = pseudo_gradient(base, final)
    update = encode_update(delta, compression)
    assert check_update(base, state_h, update, inner).exact
    scaled = check_update(
        base, state_h, encode_update({k: v * 1.01 for k, v in delta.items()}, compression), inner
    )
    assert not scaled.exact
    assert scaled.max_abs > 0
    assert scaled.rel_l2 == pytest.approx(0.01, rel=0.2)
    assert check_update(base, state_h, b"not an update", inner).failures
    assert check_update(base, b"not a state", update, inner).failures


@pytest.mark.parametrize(
    "compression", [Compression(), Compression(kind="int8"), Compression(kind="int8", granularity="tensor")]
)
def test_a_poisoned_update_is_rejected_even_when_training_moved_nothing(
    setup: Setup, submission: dict[str, Any], compression: Compression
) -> None:
    """`--cheat poison` (and the honeypot bait made from it) must never submit the honest update: where
    every group's advantage was 0, theta_H = base and -4 x 0 would be the honest (zero) update."""
    inner = submission["ctx"].inner.model_copy(update={"compression": compression})
    base = submission["base"]
    model = build_model(ModelConfig(num_layers=2), setup.tokenizer)
    model.load_state_dict(base)
    state_h = state_bytes(model, fresh_optimizer(model, inner.grpo))
    zero = pseudo_gradient(base, base)
    assert check_update(base, state_h, encode_update(zero, compression), inner).exact
    assert (
        check_update(
            base, state_h, encode_update({k: -4.0 * v for k, v in zero.items()}, compression), inner
        ).max_abs
        == 0
    )
    poisoned = check_update(
        base, state_h, encode_update(poisoned_update(zero, -4.0, seed=1), compression), inner
    )
    assert not poisoned.exact
    assert poisoned.max_abs > 0
    gen = torch.Generator().manual_seed(2)
    moved = {k: 1e-3 * torch.randn(v.shape, generator=gen) for k, v in zero.items()}
    assert all(torch.equal(p, -4.0 * moved[k]) for k, p in poisoned_update(moved, -4.0, seed=1).items())


def test_honest_submission_is_accepted_and_withholding_rejected(
    setup: Setup, submission: dict[str, Any]
) -> None:
    ctx, base, states, result = (
        submission["ctx"],
        submission["base"],
        submission["states"],
        submission["result"],
    )
    update = encode_update(result.delta, ctx.inner.compression)
    kwargs = dict(
        ctx=ctx,
        policy_config=setup.model.config,
        tokenizer=setup.tokenizer,
        env=setup.env,
        base=base,
        rollouts=result.rollouts,
        sampled=[0, 3, 9],
        picked_steps=[1],
        update=update,
        batch_size=4,
    )
    report = verify_submission(states=states, **kwargs)
    verdict = decide(report, THRESHOLDS)
    assert verdict.decision == "ACCEPT", verdict.reasons
    assert len(report.replays) == 3
    assert len(report.steps) == 1
    assert report.steps[0].exact
    partial = {j: b for j, b in states.items() if j != 2}
    withheld = decide(verify_submission(states=partial, **kwargs), THRESHOLDS)
    assert withheld.decision == "REJECT"
    assert any("withheld" in reason for reason in withheld.reasons)


def test_thresholds_model_is_strict() -> None:
    with pytest.raises(ValueError, match="extra"):
        VerifyThresholds.model_validate({"max_sampling_gap": 0.1, "unknown": 1})
    with pytest.raises(ValueError, match="greater than or equal"):
        VerifyThresholds(max_sampling_gap=-1)
    assert VerifyThresholds.model_validate_json(THRESHOLDS.model_dump_json()) == THRESHOLDS


def test_malicious_bundle_is_rejected_without_crashing(setup: Setup, submission: dict[str, Any]) -> None:
    ctx, base, states, result = (
        submission["ctx"],
        submission["base"],
        submission["states"],
        submission["result"],
    )
    rollouts = list(result.rollouts)
    rollouts[0] = dataclasses.replace(rollouts[0], completion_ids=(10**6, -3), g=-1, proofs=(b"x",))
    rollouts[1] = dataclasses.replace(rollouts[1], prompt_ids=(), proofs=("not bytes",))
    report = verify_submission(
        ctx=ctx,
        policy_config=setup.model.config,
        tokenizer=setup.tokenizer,
        env=setup.env,
        base=base,
        rollouts=rollouts,
        sampled=[0, 1, 2, 99],
        picked_steps=[0, 7],
        states=states,
        update=b"junk",
        batch_size=2,
    )
    verdict = decide(report, THRESHOLDS)
    assert verdict.decision == "REJECT"
    joined = "\n".join(verdict.reasons)
    for expected in (
        "outside the bundle",
        "picked step 7",
        "cannot re-execute",
        "update unreadable",
        "empty",
    ):
        assert expected in joined
