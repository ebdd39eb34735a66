"""Detection: real cheaters against the validator's re-checks, with a real (warm-started) tiny model.

Every case is a real run: the cheater generates or trains with the project's own code and changes one
thing; the validator replays with the honest weights and the default (calibrated) thresholds. Honest
rollouts and steps must never be flagged, at validator batch sizes 1, 4 and 16 and 1 or 2 threads.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import pytest
import torch

from trainer.checkpoint import model_weights
from trainer.config import InnerConfig, ModelConfig
from trainer.diloco import encode_update
from trainer.envs import get_env
from trainer.grpo import make_optimizer, train_step
from trainer.inner import run_inner_loop
from trainer.model import build_model
from trainer.rollout import Rollout, RolloutRequest, generate, make_requests
from trainer.state import load_state, state_bytes
from trainer.toploc import build_proofs
from trainer.verify import (
    ReplayStats,
    SubmissionContext,
    VerifyThresholds,
    check_rollout,
    check_step,
    check_update,
    decide,
    prefill_batch,
    replay_rollouts,
    verify_submission,
)
from trainer.warmstart import WarmStartConfig, warm_start

TRAINER = "0x" + "c3" * 20
THRESHOLDS = VerifyThresholds()
INNER = InnerConfig(steps=2, num_prompts=32, group_size=8, max_new_tokens=8)
CTX = SubmissionContext(task_id=11, round_=2, trainer=TRAINER, inner=INNER)


@dataclasses.dataclass
class World:
    env: Any
    tokenizer: Any
    model: Any
    requests: list[RolloutRequest]
    honest: list[Rollout]


@pytest.fixture(scope="module")
def world() -> World:
    torch.set_num_threads(2)
    env = get_env("addition", {"digits": 1})
    warm = warm_start(env, ModelConfig(), WarmStartConfig(target_accuracy=0.3, eval_size=50, eval_every=10))
    requests = make_requests(
        env, warm.tokenizer, task_id=11, round_=2, trainer=TRAINER, step=0, num_prompts=32, group_size=8
    )
    honest = _generate(warm.model, warm.tokenizer, env, requests, batch_size=48)
    return World(env, warm.tokenizer, warm.model, requests, honest)


def _generate(
    model: Any, tokenizer: Any, env: Any, requests: Sequence[RolloutRequest], **kw: Any
) -> list[Rollout]:
    return generate(
        model, tokenizer, env, requests, max_new_tokens=INNER.max_new_tokens, temperature=1.0, **kw
    )


def _flagged(rep: ReplayStats) -> bool:
    return (
        bool(rep.failures)
        or rep.proof is None
        or not rep.proof.passes(THRESHOLDS.toploc)
        or rep.max_gap > THRESHOLDS.max_sampling_gap
    )


def _cheap_failures(world: World, rollouts: Sequence[Rollout]) -> list[tuple[str, ...]]:
    vocab = int(world.model.config.vocab_size)
    return [check_rollout(r, CTX, world.env, world.tokenizer, vocab).failures for r in rollouts]


def _variant(model: Any, change: Callable[[torch.Tensor], object]) -> Any:
    other = copy.deepcopy(model)
    with torch.no_grad():
        for p in other.parameters():
            change(p)
    return other


def _rebuilt(world: World, r: Rollout, completion: Sequence[int]) -> Rollout:
    """A cheater who alters a completion and recomputes honest proofs for it (the strongest forger)."""
    eos = world.tokenizer.eos_token_id
    fake = dataclasses.replace(r, completion_ids=tuple(completion), finished=completion[-1] == eos)
    hidden, _ = prefill_batch(world.model, [fake])[0]
    return dataclasses.replace(fake, proofs=tuple(build_proofs(hidden)))


@pytest.fixture(scope="module")
def steps(world: World) -> dict[str, Any]:
    base = {k: v.clone() for k, v in model_weights(world.model).items()}
    states: dict[int, bytes] = {}
    result = run_inner_loop(
        copy.deepcopy(world.model),
        world.tokenizer,
        world.env,
        base,
        INNER,
        task_id=11,
        round_=2,
        trainer=TRAINER,
        state_sink=lambda j, data: states.__setitem__(j, data),
    )
    return {"base": base, "states": states, "result": result}


# --- honest ----------------------------------------------------------------------------------------------


def test_honest_rollouts_are_never_flagged(world: World) -> None:
    assert {r.reward for r in world.honest} == {0.0, 1.0}  # the warm start gives GRPO some signal
    assert _cheap_failures(world, world.honest) == [()] * len(world.honest)
    replayed = 0
    for batch_size in (1, 4, 16):
        for threads in (1, 2):
            torch.set_num_threads(threads)
            replays = replay_rollouts(world.model, world.honest, CTX, batch_size=batch_size)
            assert not any(_flagged(rep) for rep in replays), (batch_size, threads)
            replayed += len(replays)
    torch.set_num_threads(2)
    assert len(world.honest) >= 200
    assert replayed == 6 * len(world.honest)


def test_honest_submission_with_steps_is_accepted(world: World, steps: dict[str, Any]) -> None:
    base, states, result = steps["base"], steps["states"], steps["result"]
    assert states[1] != states[0]
    update = encode_update(result.delta, INNER.compression)
    for threads in (1, 2):
        torch.set_num_threads(threads)
        report = verify_submission(
            ctx=CTX,
            policy_config=world.model.config,
            tokenizer=world.tokenizer,
            env=world.env,
            base=base,
            rollouts=result.rollouts,
            sampled=list(range(0, 512, 9)),
            picked_steps=[0, 1],
            states=states,
            update=update,
            batch_size=16,
        )
        verdict = decide(report, THRESHOLDS)
        assert verdict.decision == "ACCEPT", verdict.reasons
        assert len(report.steps) == 2
    torch.set_num_threads(2)


# --- cheating on the model -------------------------------------------------------------------------------


def _int8(p: torch.Tensor) -> None:
    if p.dim() == 2:
        scale = p.abs().amax(dim=1, keepdim=True) / 127
        safe = torch.where(scale > 0, scale, torch.ones_like(scale))
        p.copy_(torch.round(p / safe).clamp(-127, 127) * safe)


@pytest.mark.parametrize(
    "cheat",
    ["different model", "weights perturbed by 1%", "int8-quantized weights"],
)
def test_a_cheaper_or_other_model_is_caught_by_toploc(world: World, cheat: str) -> None:
    gen = torch.Generator().manual_seed(5)
    if cheat == "different model":
        model = build_model(ModelConfig(init_seed=1234), world.tokenizer)
    elif cheat == "weights perturbed by 1%":
        model = _variant(world.model, lambda p: p.mul_(1 + 0.01 * torch.randn(p.shape, generator=gen)))
    else:
        model = _variant(world.model, _int8)
    cheated = _generate(model, world.tokenizer, world.env, world.requests[:64])
    replays = replay_rollouts(world.model, cheated, CTX, batch_size=16)
    toploc_flags = [rep.proof is None or not rep.proof.passes(THRESHOLDS.toploc) for rep in replays]
    assert all(toploc_flags), f"{sum(toploc_flags)}/{len(replays)} flagged"


# --- cheating on single rollouts -------------------------------------------------------------------------


def test_altered_prompt_is_caught(world: World) -> None:
    r = world.honest[0]
    other_prompt = world.requests[8].prompt_ids  # another prompt of the same task
    assert other_prompt != r.prompt_ids
    cheated = _generate(
        world.model,
        world.tokenizer,
        world.env,
        [dataclasses.replace(world.requests[0], prompt_ids=other_prompt)],
    )
    failures = _cheap_failures(world, cheated)[0]
    assert any("derived from the seed" in f for f in failures)


def test_one_tampered_token_is_caught_by_the_sampling_replay(world: World) -> None:
    # each of 32 rollouts gets one token replaced by the one the policy found least likely there
    cheated = []
    for r in world.honest[:32]:
        _, logits = prefill_batch(world.model, [r])[0]
        ids = list(r.completion_ids)
        t = len(ids) // 2
        candidates = logits[t].clone()
        candidates[world.tokenizer.eos_token_id] = float("inf")  # keep the termination rules intact
        ids[t] = int(candidates.argmin())
        cheated.append(_rebuilt(world, r, ids))
    replays = replay_rollouts(world.model, cheated, CTX, batch_size=16)
    assert all(rep.max_gap > THRESHOLDS.max_sampling_gap for rep in replays)
    assert all(
        rep.proof is not None and rep.proof.passes(THRESHOLDS.toploc) for rep in replays
    )  # proofs forged


def test_a_random_single_token_tamper_in_every_sampled_rollout_is_rejected(world: World) -> None:
    rng = torch.Generator().manual_seed(9)
    vocab = int(world.model.config.vocab_size)
    cheated = []
    for r in world.honest[:16]:
        ids = list(r.completion_ids)
        t = int(torch.randint(len(ids), (1,), generator=rng))
        ids[t] = (ids[t] + int(torch.randint(1, vocab, (1,), generator=rng))) % vocab
        if ids[t] == world.tokenizer.eos_token_id and t < len(ids) - 1:
            ids[t] = (ids[t] + 1) % vocab
        cheated.append(_rebuilt(world, r, ids))
    replays = replay_rollouts(world.model, cheated, CTX, batch_size=4)
    flagged = sum(_flagged(rep) for rep in replays)
    # per rollout, a replacement within 0.1 of the winning score can pass (docs/toploc.md); a bundle cannot
    assert flagged >= len(replays) - 2


def test_wrong_sampling_seed_is_caught(world: World) -> None:
    wrong = [dataclasses.replace(q, sample_seed=q.sample_seed[::-1]) for q in world.requests[:64]]
    cheated = _generate(world.model, world.tokenizer, world.env, wrong)
    changed = [c for c, h in zip(cheated, world.honest, strict=False) if c.completion_ids != h.completion_ids]
    assert len(changed) >= 32
    replays = replay_rollouts(world.model, changed, CTX, batch_size=16)
    flagged = sum(_flagged(rep) for rep in replays)
    assert flagged >= len(changed) - 2
    assert all(rep.proof is not None and rep.proof.passes(THRESHOLDS.toploc) for rep in replays)


def test_truncated_completion_is_caught(world: World) -> None:
    long_enough = [r for r in world.honest if len(r.completion_ids) >= 2][:16]
    for r in long_enough:
        ids = r.completion_ids[:-1]
        truncated = dataclasses.replace(
            r,
            completion_ids=ids,
            finished=False,
            proofs=tuple(
                build_proofs(prefill_batch(world.model, [dataclasses.replace(r, completion_ids=ids)])[0][0])
            ),
        )
        failures = _cheap_failures(world, [truncated])[0]
        assert any("without EOS" in f for f in failures), failures


def test_inflated_reward_is_caught(world: World) -> None:
    wrong = [r for r in world.honest if r.reward == 0.0][:16]
    assert wrong
    for failures in _cheap_failures(world, [dataclasses.replace(r, reward=1.0) for r in wrong]):
        assert any("recomputed" in f for f in failures)


def test_flipped_proof_bytes_are_caught(world: World) -> None:
    rng = torch.Generator().manual_seed(3)
    cheated = []
    for r in world.honest[:32]:
        proof = bytearray(r.proofs[0])
        byte = int(torch.randint(2, len(proof), (1,), generator=rng))  # a coefficient byte
        proof[byte] ^= 1 << int(torch.randint(8, (1,), generator=rng))
        cheated.append(dataclasses.replace(r, proofs=(bytes(proof), *r.proofs[1:])))
    replays = replay_rollouts(world.model, cheated, CTX, batch_size=16)
    assert all(rep.proof is not None and not rep.proof.passes(THRESHOLDS.toploc) for rep in replays)


# --- cheating on training --------------------------------------------------------------------------------


def _train(world: World, state: bytes, rollouts: Sequence[Rollout], lr_scale: float = 1.0) -> bytes:
    cfg = INNER.grpo.model_copy(update={"lr": INNER.grpo.lr * lr_scale})
    model = copy.deepcopy(world.model)
    optimizer = make_optimizer(model, cfg)
    load_state(state, model, optimizer)
    train_step(model, optimizer, rollouts, cfg)
    return state_bytes(model, optimizer)


def test_skipped_or_altered_step_is_caught(world: World, steps: dict[str, Any]) -> None:
    states, rollouts = steps["states"], steps["result"].rollouts
    step1 = [r for r in rollouts if r.step == 1]
    other = [dataclasses.replace(r, step=1) for r in rollouts if r.step == 0]
    config = world.model.config
    honest = check_step(config, 1, states[1], states[2], step1, INNER)
    assert honest.failures == ()
    assert honest.over(THRESHOLDS) == []
    cheats = {
        "skipped": states[1],
        "lr x 1.05": _train(world, states[1], step1, 1.05),
        "lr x 1.01": _train(world, states[1], step1, 1.01),
        "trained on other rollouts": _train(world, states[1], other),
        "trained on half the rollouts": _train(world, states[1], step1[: len(step1) // 2]),
    }
    for name, fake in cheats.items():
        stats = check_step(config, 1, states[1], fake, step1, INNER)
        assert stats.failures or stats.over(THRESHOLDS), name


def test_update_not_matching_the_states_is_caught(world: World, steps: dict[str, Any]) -> None:
    base, states, result = steps["base"], steps["states"], steps["result"]
    final = states[INNER.steps]
    assert check_update(base, final, encode_update(result.delta, INNER.compression), INNER).exact
    gen = torch.Generator().manual_seed(7)
    other_run = run_inner_loop(
        copy.deepcopy(world.model),
        world.tokenizer,
        world.env,
        base,
        INNER,
        task_id=11,
        round_=2,
        trainer="0x" + "d4" * 20,  # other rollouts: derived for another address
    )
    cheats = {
        "random": {k: torch.randn(v.shape, generator=gen) * 1e-3 for k, v in result.delta.items()},
        "scaled": {k: v * 1.01 for k, v in result.delta.items()},
        "trained on other rollouts": other_run.delta,
    }
    for name, delta in cheats.items():
        stats = check_update(base, final, encode_update(delta, INNER.compression), INNER)
        assert not stats.exact, name
        assert stats.max_abs > THRESHOLDS.max_update_abs, name
