"""The validator's re-checks of one submission: pure functions that return statistics, and the verdict.

A validator checks, for one trainer's submission of a round (DESIGN.md, "Verify"):

* every rollout, cheaply (`check_rollout`, `check_bundle`): the prompt is the one derived from the
  seed, the indices are in range and complete, the completion terminates properly (EOS last, or
  exactly `max_new_tokens` tokens), the proofs are ceil(n/32) well-formed 258-byte blobs, and the
  reward is what the environment gives;
* the sampled rollouts, by replay on theta_j of their step (`replay_rollouts`): ONE batched prefill
  gives the hidden states (TOPLOC, `trainer.toploc.verify_proofs`) and the logits, from which the
  Gumbel-max sampling is replayed with the rollout's own seed: each generated token must be the
  argmax of logits/T + noise up to a tolerance on the score gap;
* the picked steps, by re-execution (`check_step`): theta_j -> one GRPO step -> distance to the
  committed theta_j+1;
* the ends of the inner loop (`check_initial_state`, `check_update`): theta_0 is the base with a fresh
  optimizer, and the submitted update is base - theta_H in the task's encoding.

`verify_submission` runs all of them, after holding every revealed state to the tensor rules
(`usable_states`; `trainer.checkpoint`: the layout of theta_0, finite values, |x| <= MAX_ABS): a state
that breaks them is a failure and no check runs on it. `decide` turns the report into ACCEPT or REJECT
with reasons, applying `VerifyThresholds`. Nothing here raises on a trainer's bad data: it becomes a
failure in the report. Statistics are floats compared only against thresholds, written so that NaN fails
(`not x <= limit`); verdicts are exact.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict, Field
from transformers import PretrainedConfig, PreTrainedModel, PreTrainedTokenizerBase

from trainer.checkpoint import canonical_bytes, load_tensors, load_weights
from trainer.config import InnerConfig, VerifyThresholds, rollout_step
from trainer.derive import prompt_seed, sample_seed
from trainer.diloco import decode_update, encode_update, pseudo_gradient
from trainer.envs import Environment, Problem
from trainer.errors import AbsurdValueError, TrainerError
from trainer.inner import step_rollouts
from trainer.lora import trained
from trainer.model import model_from_config
from trainer.replay import Engine, prefill_logits
from trainer.rollout import Rollout
from trainer.sampling import gumbel_noise, scores
from trainer.state import fresh_optimizer, reexecute_step, state_tensors, step_distances
from trainer.tokenizer import decode_completion, encode_prompt
from trainer.toploc import (
    PROOF_BYTES,
    ProofStats,
    expected_proof_count,
    verify_proofs_many,
)

__all__ = [
    "BundleCheck",
    "ReplayStats",
    "RolloutCheck",
    "StateCheck",
    "StepStats",
    "SubmissionContext",
    "SubmissionReport",
    "UpdateCheck",
    "Verdict",
    "VerifyThresholds",
    "check_bundle",
    "check_initial_state",
    "check_rollout",
    "check_step",
    "check_update",
    "decide",
    "expected_keys",
    "initial_state",
    "prefill_batch",
    "replay_rollouts",
    "sampling_gaps",
    "usable_states",
    "verify_submission",
]

Key = tuple[int, int, int]
"""(step, prompt_idx, g) of a rollout."""

_MAX_LISTED = 8  # keys listed per failure message; the count is always given


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SubmissionContext(_Frozen):
    """What every derivation of a submission depends on: the task, the round, the trainer, the loop."""

    task_id: int = Field(ge=0)
    """On-chain task id."""
    round_: int = Field(ge=0)
    """Round number."""
    trainer: str
    """The trainer's address (0x-hex): the seeds are derived for it alone."""
    inner: InnerConfig
    """H, rollout_every, P, G, max_new_tokens, temperature, compression (from the task spec)."""


class RolloutCheck(_Frozen):
    """The cheap checks of one rollout."""

    key: Key
    n_tokens: int
    recomputed_reward: float | None
    """The environment's reward of the completion (None when the prompt itself is wrong)."""
    failures: tuple[str, ...]


class BundleCheck(_Frozen):
    """Coverage of the bundle: exactly one rollout per (step, prompt, g) the task prescribes."""

    n_rollouts: int
    work_units: int
    """Generated tokens over all rollouts (EOS included): what `workUnits` must equal."""
    failures: tuple[str, ...]


class ReplayStats(_Frozen):
    """Replay of one rollout on theta_j of its step: TOPLOC statistics and the sampling replay."""

    key: Key
    n_tokens: int
    proof: ProofStats | None
    """None when the rollout could not be replayed at all (see failures)."""
    max_gap: float
    """max over tokens of (best other score - chosen score); <= 0 when every token is the argmax."""
    gap_positions: int
    """Tokens that are not the argmax of their replayed scores (gap > 0)."""
    failures: tuple[str, ...]


class StepStats(_Frozen):
    """Re-execution of inner step j: theta_j -> theta_j+1, compared with the committed theta_j+1.

    The distances are `trainer.state.StepDistances` (each in the step's own units; inf when not
    finite or not computable); `failures` holds what no threshold can excuse.
    """

    step: int
    exact: bool
    """Byte-identical to the committed state."""
    max_abs: float
    """Largest |difference| over every tensor (reports only; no threshold: it scales with lr)."""
    rel_l2: float
    """||W_o - W_c|| / ||W_o - W_j|| over the weights."""
    max_abs_lr: float
    """max |W_o - W_c| / lr."""
    moment_rel: float
    """The AdamW moments' distance in units of the step's own gradient term."""
    adam_ulps: float
    """|committed weights - AdamW(committed moments)| in float32 ulps."""
    failures: tuple[str, ...]

    def over(self, thresholds: VerifyThresholds) -> list[str]:
        """The distances outside `thresholds` (a NaN or inf is outside every limit)."""
        limits = (
            ("weights relative L2", self.rel_l2, thresholds.max_step_rel),
            ("weights max |diff| / lr", self.max_abs_lr, thresholds.max_step_lr),
            ("AdamW moments relative L2", self.moment_rel, thresholds.max_step_moments),
            ("weights vs AdamW(committed moments), ulps", self.adam_ulps, thresholds.max_step_ulps),
        )
        return [
            f"re-execution {name} {value:.3g} > {limit:g}"
            for name, value, limit in limits
            if not value <= limit
        ]


class StateCheck(_Frozen):
    """theta_0 against the base with a fresh optimizer."""

    exact: bool
    max_abs: float
    failures: tuple[str, ...]


class UpdateCheck(_Frozen):
    """The submitted update against base - theta_H, encoded as the task says."""

    exact: bool
    max_abs: float
    """Largest |decoded update - decoded expected update|."""
    rel_l2: float
    """||decoded update - expected|| / ||expected||."""
    failures: tuple[str, ...]


class SubmissionReport(_Frozen):
    """Everything a validator measured for one submission (the validation report's body)."""

    bundle: BundleCheck
    rollouts: tuple[RolloutCheck, ...]
    replays: tuple[ReplayStats, ...]
    steps: tuple[StepStats, ...]
    initial_state: StateCheck
    update: UpdateCheck
    failures: tuple[str, ...] = ()
    """Missing or unusable artifacts (a withheld state is a fault)."""
    hostile: tuple[str, ...] = ()
    """Non-finite or absurd values found in the artifacts (also among `failures`): an attack or a broken
    node, which an auditor reports whatever the verdict."""


class Verdict(_Frozen):
    """ACCEPT or REJECT, and why."""

    decision: Literal["ACCEPT", "REJECT"]
    reasons: tuple[str, ...]


# --- cheap checks --------------------------------------------------------------------------------------


def _key(r: Rollout) -> Key:
    return (r.step, r.prompt_idx, r.g)


def _listed(keys: Iterable[Key]) -> str:
    items = sorted(keys)
    shown = ", ".join(str(k) for k in items[:_MAX_LISTED])
    return shown + (f" and {len(items) - _MAX_LISTED} more" if len(items) > _MAX_LISTED else "")


def expected_keys(inner: InnerConfig) -> list[Key]:
    """Every (step, prompt_idx, g) a bundle must hold: rollouts at each `rollout_every`-th step."""
    return [
        (j, p, g)
        for j in range(0, inner.steps, inner.rollout_every)
        for p in range(inner.num_prompts)
        for g in range(inner.group_size)
    ]


def check_bundle(rollouts: Sequence[Rollout], ctx: SubmissionContext) -> BundleCheck:
    """Exactly one rollout per prescribed (step, prompt, g): none missing, duplicated or extra."""
    counts = Counter(_key(r) for r in rollouts)
    expected = set(expected_keys(ctx.inner))
    failures = []
    missing = expected - set(counts)
    if missing:
        failures.append(f"{len(missing)} rollouts missing: {_listed(missing)}")
    extra = set(counts) - expected
    if extra:
        failures.append(f"{len(extra)} rollouts not prescribed by the task: {_listed(extra)}")
    duplicated = {k for k, n in counts.items() if n > 1}
    if duplicated:
        failures.append(f"{len(duplicated)} rollouts duplicated: {_listed(duplicated)}")
    return BundleCheck(
        n_rollouts=len(rollouts),
        work_units=sum(len(r.completion_ids) for r in rollouts),
        failures=tuple(failures),
    )


PromptCache = dict[tuple[int, int], "tuple[Problem, tuple[int, ...]] | str"]
"""(step, prompt_idx) -> (derived problem, its prompt ids), or why it cannot be derived."""


def _derive_prompt(
    ctx: SubmissionContext,
    env: Environment,
    tokenizer: PreTrainedTokenizerBase,
    step: int,
    prompt_idx: int,
    cache: PromptCache | None,
) -> tuple[Problem, tuple[int, ...]] | str:
    key = (step, prompt_idx)
    if cache is not None and key in cache:
        return cache[key]
    derived: tuple[Problem, tuple[int, ...]] | str
    try:
        problem = env.problem(prompt_seed(ctx.task_id, ctx.round_, ctx.trainer, step, prompt_idx))
        derived = (problem, tuple(encode_prompt(tokenizer, problem.prompt)))
    except (TrainerError, ValueError) as exc:  # e.g. a negative index the derivation refuses
        derived = str(exc)
    if cache is not None:
        cache[key] = derived
    return derived


def check_rollout(
    rollout: Rollout,
    ctx: SubmissionContext,
    env: Environment,
    tokenizer: PreTrainedTokenizerBase,
    vocab_size: int,
    prompts: PromptCache | None = None,
) -> RolloutCheck:
    """Prompt derivation, indices, token range, termination, proof count and size, reward.

    `prompts` caches the derived prompts across the rollouts of a bundle (G completions share one).
    """
    inner = ctx.inner
    failures: list[str] = []
    r = rollout
    if not (0 <= r.step < inner.steps and r.step % inner.rollout_every == 0):
        failures.append(f"step {r.step} is not a rollout step of {inner.steps} (every {inner.rollout_every})")
    if not 0 <= r.prompt_idx < inner.num_prompts:
        failures.append(f"prompt index {r.prompt_idx} outside [0, {inner.num_prompts})")
    if not 0 <= r.g < inner.group_size:
        failures.append(f"completion index {r.g} outside [0, {inner.group_size})")

    derived = _derive_prompt(ctx, env, tokenizer, r.step, r.prompt_idx, prompts)
    prompt_ok = False
    if isinstance(derived, str):
        failures.append(f"prompt cannot be derived: {derived}")
    else:
        prompt_ok = derived[1] == tuple(r.prompt_ids)
        if not prompt_ok:
            failures.append("prompt ids differ from the prompt derived from the seed")

    ids = list(r.completion_ids)
    eos = tokenizer.eos_token_id
    n = len(ids)
    in_vocab = all(isinstance(t, int) and 0 <= t < vocab_size for t in ids)
    if not in_vocab:
        failures.append(f"completion ids outside [0, {vocab_size})")
    if n == 0:
        failures.append("empty completion")
    elif n > inner.max_new_tokens:
        failures.append(f"{n} completion tokens > max_new_tokens {inner.max_new_tokens}")
    else:
        if eos in ids[:-1]:
            failures.append(f"tokens after EOS (EOS at {ids.index(eos)} of {n})")
        ends_with_eos = ids[-1] == eos
        if not ends_with_eos and n != inner.max_new_tokens:
            failures.append(
                f"completion stops after {n} tokens without EOS (max_new_tokens {inner.max_new_tokens})"
            )
        if r.finished != ends_with_eos:
            failures.append(
                f"finished={r.finished} but the completion {'ends' if ends_with_eos else 'lacks'} EOS"
            )

    expected = expected_proof_count(n)
    if len(r.proofs) != expected:
        failures.append(f"{len(r.proofs)} proofs for {n} tokens, expected {expected}")
    bad_sizes = [i for i, p in enumerate(r.proofs) if not isinstance(p, bytes) or len(p) != PROOF_BYTES]
    if bad_sizes:
        failures.append(f"proofs {bad_sizes[:_MAX_LISTED]} are not {PROOF_BYTES} bytes")

    recomputed: float | None = None
    if prompt_ok and in_vocab and not isinstance(derived, str):
        try:
            # the derived problem's reward: what `rollout.reward_of` computes from the same prompt ids
            recomputed = float(env.reward(derived[0], decode_completion(tokenizer, ids)))
        except (TrainerError, ValueError) as exc:
            failures.append(f"reward cannot be recomputed: {exc}")
        else:
            if not (isinstance(r.reward, int | float) and float(r.reward) == recomputed):
                failures.append(f"reward {r.reward!r} != recomputed {recomputed}")
    return RolloutCheck(key=_key(r), n_tokens=n, recomputed_reward=recomputed, failures=tuple(failures))


# --- replay: one batched prefill, TOPLOC and sampling ------------------------------------------------


@torch.inference_mode()
def prefill_batch(
    model: PreTrainedModel, rollouts: Sequence[Rollout], batch_size: int = 16, engine: Engine = "auto"
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(hidden [n, hidden_size], logits [n, vocab]) in fp32 for each rollout's n completion tokens.

    One forward pass per batch of `batch_size` rollouts over prompt + completion[:-1], right-padded
    (a causal model never looks at later positions, so padding changes no real position), rows
    len(prompt)-1 .. len(prompt)+n-2: the positions whose LM-head output chose each token
    (docs/trainer.md). Rollouts are batched in order of length to keep padding small. `engine`
    picks the forward (`trainer.replay`: the lean one for Llama/Qwen2 by default).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    device = next(model.parameters()).device
    pad = int(getattr(model.config, "pad_token_id", None) or 0)
    order = sorted(
        range(len(rollouts)), key=lambda i: len(rollouts[i].prompt_ids) + len(rollouts[i].completion_ids)
    )
    out: list[tuple[torch.Tensor, torch.Tensor]] = [(torch.empty(0), torch.empty(0))] * len(rollouts)
    for start in range(0, len(order), batch_size):
        members = order[start : start + batch_size]
        seqs = [[*rollouts[i].prompt_ids, *rollouts[i].completion_ids[:-1]] for i in members]
        S = max(len(s) for s in seqs)
        ids = torch.full((len(seqs), S), pad, dtype=torch.long)
        for b, s in enumerate(seqs):
            ids[b, : len(s)] = torch.tensor(s, dtype=torch.long)
        lengths = torch.tensor([len(s) for s in seqs], dtype=torch.long)
        hidden, logits = prefill_logits(model, ids.to(device), lengths, engine)  # hidden: the LM head's input
        for b, i in enumerate(members):
            first = len(rollouts[i].prompt_ids) - 1
            n = len(rollouts[i].completion_ids)
            out[i] = (
                hidden[b, first : first + n].float().cpu().clone(),
                logits[b, first : first + n].float().cpu().clone(),
            )
    return out


def sampling_gaps(
    logits: torch.Tensor, completion_ids: Sequence[int], seed: bytes, max_new_tokens: int, temperature: float
) -> torch.Tensor:
    """Per token t: max over other tokens of score - score of the chosen token, score = logits/T + noise[t].

    The noise is the rollout's own (`gumbel_noise(seed, max_new_tokens, vocab)`); <= 0 means the token
    was the argmax, a small positive value is float noise between generation and replay.
    """
    n, vocab = logits.shape
    noise = gumbel_noise(seed, max_new_tokens, vocab)[:n]
    s = scores(logits, noise, temperature)  # [n, vocab] fp32
    chosen = torch.tensor(list(completion_ids), dtype=torch.long)[:, None]
    chosen_score = s.gather(1, chosen)[:, 0]
    others = s.scatter(1, chosen, float("-inf"))
    return others.max(dim=1).values - chosen_score


def replay_rollouts(
    model: PreTrainedModel,
    rollouts: Sequence[Rollout],
    ctx: SubmissionContext,
    *,
    batch_size: int = 16,
    engine: Engine = "auto",
) -> list[ReplayStats]:
    """TOPLOC and sampling replay of rollouts generated with the weights `model` holds (theta_j).

    All rollouts must come from the same step j (the caller loads theta_j). Rollouts that cannot be
    replayed (empty, ids outside the vocabulary, longer than the model's positions) get a failure
    instead of a crash.
    """
    vocab = int(model.config.vocab_size)
    max_positions = int(getattr(model.config, "max_position_embeddings", 1 << 30))
    temperature = ctx.inner.grpo.temperature
    stats: list[ReplayStats | None] = [None] * len(rollouts)
    runnable: list[int] = []
    seeds: dict[int, bytes] = {}
    for i, r in enumerate(rollouts):
        problem = _unreplayable(r, vocab, max_positions, ctx.inner.max_new_tokens)
        if not problem:
            try:
                seeds[i] = sample_seed(ctx.task_id, ctx.round_, ctx.trainer, r.step, r.prompt_idx, r.g)
            except TrainerError as exc:  # indices the derivation refuses (negative, too large)
                problem = f"no sampling seed: {exc}"
        if problem:
            stats[i] = ReplayStats(
                key=_key(r),
                n_tokens=len(r.completion_ids),
                proof=None,
                max_gap=math.inf,
                gap_positions=0,
                failures=(problem,),
            )
        else:
            runnable.append(i)
    replayed = prefill_batch(model, [rollouts[i] for i in runnable], batch_size, engine)
    proofs = verify_proofs_many(
        [(list(rollouts[i].proofs), hidden) for i, (hidden, _) in zip(runnable, replayed, strict=True)]
    )
    for i, (_, logits), proof in zip(runnable, replayed, proofs, strict=True):
        r = rollouts[i]
        gaps = sampling_gaps(logits, r.completion_ids, seeds[i], ctx.inner.max_new_tokens, temperature)
        failures: tuple[str, ...] = ()
        max_gap = float(gaps.max())
        if not (bool(torch.isfinite(logits).all()) and math.isfinite(max_gap)):
            failures, max_gap = ("the replayed logits are not finite",), math.inf
        stats[i] = ReplayStats(
            key=_key(r),
            n_tokens=len(r.completion_ids),
            proof=proof,
            max_gap=max_gap,
            gap_positions=int((gaps > 0).sum()),
            failures=failures,
        )
    return [s for s in stats if s is not None]


def _unreplayable(r: Rollout, vocab: int, max_positions: int, max_new_tokens: int) -> str:
    ids = [*r.prompt_ids, *r.completion_ids]
    if not r.prompt_ids or not r.completion_ids:
        return "nothing to replay: empty prompt or completion"
    if len(r.completion_ids) > max_new_tokens:
        return f"{len(r.completion_ids)} completion tokens > max_new_tokens {max_new_tokens}"
    if len(ids) - 1 > max_positions:
        return f"{len(ids)} tokens exceed the model's {max_positions} positions"
    if not all(isinstance(t, int) and 0 <= t < vocab for t in ids):
        return f"token ids outside [0, {vocab})"
    return ""


# --- training states and the update ------------------------------------------------------------------


def _weights_of(tensors: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k[len("model/") :]: v for k, v in tensors.items() if k.startswith("model/")}


def _finite_or_inf(value: float) -> float:
    """`value`, or inf when it is NaN or infinite: a statistic that NaN touched fails every threshold."""
    return value if math.isfinite(value) else math.inf


def _max_abs(a: Mapping[str, torch.Tensor], b: Mapping[str, torch.Tensor]) -> float:
    """max |a - b| over every element (fp64); inf when the names or shapes differ or a NaN/inf is met."""
    if set(a) != set(b) or any(a[k].shape != b[k].shape for k in a):
        return math.inf
    worst = 0.0
    for k in a:
        if a[k].numel():
            diff = _finite_or_inf(float((a[k].double() - b[k].double()).abs().max()))
            worst = diff if diff > worst else worst
    return worst


def _l2(a: Mapping[str, torch.Tensor], b: Mapping[str, torch.Tensor]) -> float:
    """||a - b|| over every element (fp64); inf when a NaN/inf is met."""
    total = 0.0
    for k in a:
        total += float(((a[k].double() - b[k].double()) ** 2).sum())
    return _finite_or_inf(math.sqrt(total))


def _exceeds(value: float, limit: float) -> bool:
    """`value` is not within `limit` (NaN never is)."""
    return not value <= limit


def _step_failure(step: int, reason: str) -> StepStats:
    inf = math.inf
    return StepStats(
        step=step,
        exact=False,
        max_abs=inf,
        rel_l2=inf,
        max_abs_lr=inf,
        moment_rel=inf,
        adam_ulps=inf,
        failures=(reason,),
    )


def check_step(
    policy_config: PretrainedConfig,
    step: int,
    state_j: bytes,
    state_j1: bytes,
    rollouts_j: Sequence[Rollout],
    inner: InnerConfig,
    state_j0: bytes | None = None,
    *,
    base: Mapping[str, torch.Tensor] | None = None,
    device: str | torch.device | None = None,
) -> StepStats:
    """Re-execute inner step `step` from theta_j on its rollouts and compare with the committed theta_j+1.

    `state_j0` is theta_{j0}, the behaviour policy of the step's rollouts (j0 = step - step mod
    rollout_every); it is needed, and only read, when j0 < step. `base`: the round's weights (a LoRA
    policy's frozen base; `trainer.state.reexecute_step`). `device`: where the step re-runs (None: the
    process's compute device, `trainer.device`).
    """
    vocab = int(policy_config.vocab_size)
    max_positions = int(getattr(policy_config, "max_position_embeddings", 1 << 30))
    for r in rollouts_j:
        problem = _unreplayable(r, vocab, max_positions, inner.max_new_tokens)
        if problem:
            return _step_failure(step, f"cannot re-execute on rollout {_key(r)}: {problem}")
    j0 = rollout_step(step, inner.rollout_every)
    if j0 != step and state_j0 is None:
        return _step_failure(step, f"theta_{j0} (the rollouts' behaviour policy) withheld")
    try:
        recomputed = reexecute_step(
            policy_config,
            state_j,
            rollouts_j,
            inner.grpo,
            state_j0 if j0 != step else None,
            base=base,
            device=device,
        )
    except TrainerError as exc:
        return _step_failure(step, f"cannot re-execute: {exc}")
    if recomputed == state_j1:
        return StepStats(
            step=step,
            exact=True,
            max_abs=0.0,
            rel_l2=0.0,
            max_abs_lr=0.0,
            moment_rel=0.0,
            adam_ulps=0.0,
            failures=(),
        )
    try:
        committed = load_tensors(state_j1, require_canonical=True)
    except TrainerError as exc:
        return _step_failure(step, f"theta_j+1 unreadable: {exc}")
    ours = load_tensors(recomputed)
    if set(ours) != set(committed) or any(ours[k].shape != committed[k].shape for k in ours):
        return _step_failure(step, "theta_j+1 has other tensors")
    d = step_distances(load_tensors(state_j), ours, committed, inner.grpo)
    failures = () if d.step_counts_match else ("the AdamW step counts differ from the re-execution",)
    return StepStats(
        step=step,
        exact=False,
        max_abs=d.max_abs,
        rel_l2=d.rel_l2,
        max_abs_lr=d.max_abs_lr,
        moment_rel=d.moment_rel,
        adam_ulps=d.adam_ulps,
        failures=failures,
    )


def initial_state(
    policy_config: PretrainedConfig, base: Mapping[str, torch.Tensor], inner: InnerConfig
) -> dict[str, torch.Tensor]:
    """theta_0's tensors: the base weights with a fresh AdamW state (every state has its layout)."""
    model = model_from_config(policy_config)
    load_weights(model, base)
    return state_tensors(model, fresh_optimizer(model, inner.grpo))


def check_initial_state(
    policy_config: PretrainedConfig, state_0: bytes, base: Mapping[str, torch.Tensor], inner: InnerConfig
) -> StateCheck:
    """theta_0 must be the base weights with a fresh AdamW state, byte for byte."""
    try:
        expected = initial_state(policy_config, base, inner)
    except TrainerError as exc:
        return StateCheck(exact=False, max_abs=math.inf, failures=(f"base does not fit the model: {exc}",))
    if canonical_bytes(expected) == state_0:
        return StateCheck(exact=True, max_abs=0.0, failures=())
    try:
        got = load_tensors(state_0, require_canonical=True)
    except TrainerError as exc:
        return StateCheck(exact=False, max_abs=math.inf, failures=(f"theta_0 unreadable: {exc}",))
    max_abs = _max_abs(expected, got)
    return StateCheck(
        exact=False,
        max_abs=max_abs,
        failures=(f"theta_0 is not the base with a fresh optimizer (max |diff| {max_abs:.3g})",),
    )


def check_update(
    base: Mapping[str, torch.Tensor], state_h: bytes, update: bytes, inner: InnerConfig
) -> UpdateCheck:
    """The submitted update must decode to encode(base - theta_H) in the task's compression; decoding it
    as an aggregator will (names and shapes of the base's trained weights, the tensor rules) comes first,
    so that an accepted update is always one that aggregation can use. `base`: the trained part of the
    round's weights (`trainer.lora.trained`)."""
    try:
        got = decode_update(update, {k: v.shape for k, v in base.items()})
    except TrainerError as exc:
        return UpdateCheck(
            exact=False, max_abs=math.inf, rel_l2=math.inf, failures=(f"update unreadable: {exc}",)
        )
    try:
        final = _weights_of(load_tensors(state_h))
        expected_bytes = encode_update(pseudo_gradient(base, final), inner.compression)
        expected = decode_update(expected_bytes)
    except TrainerError as exc:
        return UpdateCheck(
            exact=False, max_abs=math.inf, rel_l2=math.inf, failures=(f"theta_H unusable: {exc}",)
        )
    if expected_bytes == update:
        return UpdateCheck(exact=True, max_abs=0.0, rel_l2=0.0, failures=())
    max_abs = _max_abs(got, expected)
    norm = _l2(expected, {k: torch.zeros_like(v) for k, v in expected.items()})
    diff = _l2(got, expected)
    rel = diff / norm if norm > 0 else (0.0 if diff == 0 else math.inf)
    return UpdateCheck(exact=False, max_abs=max_abs, rel_l2=rel, failures=())


# --- the whole submission ----------------------------------------------------------------------------


def verify_submission(
    *,
    ctx: SubmissionContext,
    policy_config: PretrainedConfig,
    tokenizer: PreTrainedTokenizerBase,
    env: Environment,
    base: Mapping[str, torch.Tensor],
    rollouts: Sequence[Rollout],
    sampled: Sequence[int],
    picked_steps: Sequence[int],
    states: Mapping[int, bytes],
    update: bytes,
    batch_size: int = 16,
) -> SubmissionReport:
    """All re-checks of one submission.

    `sampled` indexes `rollouts` (the rollouts the seed picked for replay); `picked_steps` are the inner
    steps j to re-execute; `states` maps j to the revealed theta_j bytes and must hold 0, H, the steps
    of the sampled rollouts and j0, j, j+1 of every picked step j, j0 = j - j mod rollout_every (a
    missing one is a failure). Every state is held to the tensor rules first (`usable_states`); one that
    breaks them is a failure and is not used. Run with the thread count the calibration used
    (docs/toploc.md).
    """
    inner = ctx.inner
    failures: list[str] = []
    vocab = int(policy_config.vocab_size)
    bundle = check_bundle(rollouts, ctx)
    prompts: PromptCache = {}
    checks = tuple(check_rollout(r, ctx, env, tokenizer, vocab, prompts) for r in rollouts)

    needed = {0, inner.steps}
    picked = sorted(set(picked_steps))
    sample_idx = sorted({i for i in sampled if 0 <= i < len(rollouts)})
    if len(sample_idx) != len(set(sampled)):
        failures.append("sampled rollout indices outside the bundle")
    for j in picked:
        if not 0 <= j < inner.steps:
            failures.append(f"picked step {j} outside [0, {inner.steps})")
    for j in picked:
        if 0 <= j < inner.steps:
            needed |= {rollout_step(j, inner.rollout_every), j, j + 1}
    needed |= {rollouts[i].step for i in sample_idx if 0 <= rollouts[i].step <= inner.steps}
    withheld = sorted(needed - set(states))
    if withheld:
        failures.append(f"training states withheld: {withheld}")
    usable, problems, hostile = usable_states(policy_config, base, inner, states)
    failures += problems
    base_trained = trained(base, policy_config)
    try:
        decode_update(update, {k: v.shape for k, v in base_trained.items()})
    except AbsurdValueError as exc:
        hostile.append(f"update: {exc}")
    except TrainerError:
        pass  # `check_update` reports it

    replays: list[ReplayStats] = []
    by_step: dict[int, list[Rollout]] = {}
    for i in sample_idx:
        by_step.setdefault(rollouts[i].step, []).append(rollouts[i])
    model = model_from_config(policy_config)
    for j, group in sorted(by_step.items()):
        if j in usable:
            load_weights(model, {**base, **_weights_of(usable[j])})
            replays.extend(replay_rollouts(model, group, ctx, batch_size=batch_size))

    steps: list[StepStats] = []
    for j in picked:
        if j in usable and j + 1 in usable:
            train_on = step_rollouts(list(rollouts), j, inner.rollout_every)
            j0 = rollout_step(j, inner.rollout_every)
            behaviour = states[j0] if j0 in usable else None
            try:
                stats = check_step(
                    policy_config, j, states[j], states[j + 1], train_on, inner, behaviour, base=base
                )
                steps.append(stats)
            except TrainerError as exc:  # e.g. a re-executed state that breaks the tensor rules
                failures.append(f"step {j} cannot be re-executed: {exc}")

    def unusable(j: int) -> str:
        return "state unusable" if j in states else "state withheld"

    initial = (
        check_initial_state(policy_config, states[0], base, inner)
        if 0 in usable
        else StateCheck(exact=False, max_abs=math.inf, failures=(unusable(0),))
    )
    if inner.steps in usable:
        update_check = check_update(base_trained, states[inner.steps], update, inner)
    else:
        update_check = UpdateCheck(
            exact=False, max_abs=math.inf, rel_l2=math.inf, failures=(f"theta_H: {unusable(inner.steps)}",)
        )
    return SubmissionReport(
        bundle=bundle,
        rollouts=checks,
        replays=tuple(replays),
        steps=tuple(steps),
        initial_state=initial,
        update=update_check,
        failures=tuple(failures),
        hostile=tuple(hostile),
    )


def usable_states(
    policy_config: PretrainedConfig,
    base: Mapping[str, torch.Tensor],
    inner: InnerConfig,
    states: Mapping[int, bytes],
) -> tuple[dict[int, dict[str, torch.Tensor]], list[str], list[str]]:
    """(the states that obey the tensor rules, loaded; why the others do not; the non-finite or absurd
    values among those reasons). The layout every state must have is theta_0's."""
    try:
        layout = initial_state(policy_config, base, inner)
    except TrainerError as exc:
        return {}, [f"no state can be checked: the base does not fit the model: {exc}"], []
    usable: dict[int, dict[str, torch.Tensor]] = {}
    problems: list[str] = []
    hostile: list[str] = []
    for j in sorted(states):
        try:
            usable[j] = load_tensors(states[j], like=layout)
        except TrainerError as exc:
            problems.append(f"theta_{j} unusable: {exc}")
            if isinstance(exc, AbsurdValueError):
                hostile.append(f"theta_{j}: {exc}")
    return usable, problems, hostile


def decide(report: SubmissionReport, thresholds: VerifyThresholds) -> Verdict:
    """ACCEPT only when every check passes `thresholds`; otherwise REJECT with every reason found."""
    reasons = [f"submission: {f}" for f in report.failures]
    reasons += [f"bundle: {f}" for f in report.bundle.failures]
    for c in report.rollouts:
        reasons += [f"rollout {c.key}: {f}" for f in c.failures]
    for rep in report.replays:
        reasons += [f"replay {rep.key}: {f}" for f in rep.failures]
        if rep.proof is not None:
            reasons += [f"toploc {rep.key}: {f}" for f in rep.proof.failures(thresholds.toploc)]
        if _exceeds(rep.max_gap, thresholds.max_sampling_gap):
            reasons.append(
                f"sampling {rep.key}: score gap {rep.max_gap:.3g} > {thresholds.max_sampling_gap}"
                f" ({rep.gap_positions} tokens not the argmax)"
            )
    for s in report.steps:
        reasons += [f"step {s.step}: {f}" for f in (*s.failures, *s.over(thresholds))]
    reasons += [f"theta_0: {f}" for f in report.initial_state.failures]
    reasons += [f"update: {f}" for f in report.update.failures]
    if _exceeds(report.update.max_abs, thresholds.max_update_abs):
        reasons.append(
            f"update: max |update - (base - theta_H)| {report.update.max_abs:.3g}"
            f" > {thresholds.max_update_abs}"
        )
    return Verdict(decision="REJECT" if reasons else "ACCEPT", reasons=tuple(reasons))
