"""The project's cheat library: dishonest strategies, each building a whole submission (every artifact it
uploads and what it commits on chain) the way an attacker who controls all of it would, to be run against
the real checks (`protocol.verification`) by `scripts/bench_security.py`, the tests, and the trainer node's
`--cheat` modes (`node_edits`).

    arena = Arena(task, base, round_, account, others)     one round as an attacker sees it
    sub = STRATEGIES["fabricated-rollouts"].build(arena)   the attacker's artifacts and commitment
    verify(fetch over sub.artifacts, task, sub.commitment, seed, ...)   what the validators decide

Each `Strategy` says what it forges, which check is meant to catch it (`caught_by`), and how many of the H
steps it alters (`altered_steps`, for the closed form P = 1 - C(H-k, s)/C(H, s); 0 when every submission
is caught whatever the seed picks). Strategies marked `gate` are tuned to pass the quality gate
(`trainer.quality`) on the attacker's own estimate: what they do to the model when they pass is what the
robust aggregation has to bound. The roles other than "trainer" (validators, keepers) and collusions are
for the validators' work to add as more rows.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any, Literal

from eth_account.signers.local import LocalAccount

from protocol.artifacts import artifact_ref, proof_root, record_from_rollout, sign_bundle, state_root
from protocol.errors import ArtifactError
from protocol.ipfs import canonical_json
from protocol.verification import TaskContext
from protocol.wire import (
    RolloutBundle,
    RolloutRecord,
    UpdateManifest,
    bundle_size,
    bytes_to_hex,
    hex_to_bytes,
)

if TYPE_CHECKING:
    import torch

    from trainer.inner import RolloutEdit, StepEdit
    from trainer.rollout import Rollout

__all__ = [
    "ALL_STEPS",
    "NODE_CHEATS",
    "STEP_DEFECT_LR",
    "STRATEGIES",
    "Arena",
    "Commitment",
    "MemoryStore",
    "RoundWork",
    "Strategy",
    "Submission",
    "Work",
    "every_rollout_edits",
    "every_step_edit",
    "node_edits",
    "publish",
    "train",
]

Role = Literal["trainer", "validator", "keeper"]
ALL_STEPS = -1
"""`Strategy.altered_steps` of a strategy that alters every step."""


@dataclass(frozen=True)
class Commitment:
    """What a WorkSubmitted event holds (`protocol.artifacts.CommittedWork`)."""

    round: int
    index: int
    trainer: str
    bundle_hash: bytes
    bundle_cid: str
    update_hash: bytes
    update_cid: str
    proof_root: bytes
    state_root: bytes
    work_units: int


@dataclass
class Submission:
    """What a trainer uploaded (CID -> bytes) and committed."""

    artifacts: dict[str, bytes]
    commitment: Commitment
    notes: dict[str, float] = field(default_factory=dict)
    """What the strategy chose (e.g. a gate-tuned attacker's scale), for reports."""


class MemoryStore:
    """An `ArtifactSource` over a dict, failing as `ArtifactStore.get_bytes` does (not found, too large)."""

    def __init__(self, artifacts: Mapping[str, bytes]) -> None:
        self.artifacts = dict(artifacts)

    def get_bytes(self, cid: str, *, max_size: int, expected_sha256: bytes | None = None) -> bytes:
        """The content of `cid`, or `ArtifactError` as a daemon would answer."""
        if cid not in self.artifacts:
            raise ArtifactError(f"artifact {cid} not found within 0 s")
        data = self.artifacts[cid]
        if len(data) > max_size:
            raise ArtifactError(f"artifact {cid} is {len(data)} bytes, over the limit of {max_size} bytes")
        return data


@dataclass
class Work:
    """A trainer's work of one round before it is published: rollouts, every state, the update."""

    records: list[RolloutRecord]
    states: dict[int, bytes]
    update: bytes

    def delta(self, base: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The decoded update (`base` gives the names and shapes)."""
        from trainer.diloco import decode_update

        return decode_update(self.update, {k: v.shape for k, v in base.items()})


def train(
    task: TaskContext,
    base: Mapping[str, torch.Tensor],
    trainer: str,
    round_: int,
    *,
    edit_rollouts: RolloutEdit | None = None,
    edit_step: StepEdit | None = None,
) -> Work:
    """The inner loop of `trainer` from `base` (honest unless an edit is given)."""
    from trainer.diloco import encode_update
    from trainer.inner import run_inner_loop
    from trainer.model import model_from_config

    states: dict[int, bytes] = {}
    result = run_inner_loop(
        model_from_config(task.hf),
        task.tokenizer,
        task.env,
        base,
        task.spec.inner,
        task_id=task.task_id,
        round_=round_,
        trainer=trainer,
        state_sink=states.__setitem__,
        edit_rollouts=edit_rollouts,
        edit_step=edit_step,
    )
    records = [record_from_rollout(r) for r in result.rollouts]
    return Work(records, states, encode_update(result.delta, task.spec.inner.compression))


def publish(
    task: TaskContext,
    base_hash: bytes,
    round_: int,
    account: LocalAccount,
    work: Work,
    *,
    index: int = 0,
    work_units: int | None = None,
    withheld: Iterable[int] = (),
) -> Submission:
    """Sign, hash and commit `work` as `account` would for round `round_`. Every state is committed; the
    `withheld` ones are not uploaded."""
    H = task.spec.inner.steps
    header = {
        "chain_id": task.chain_id,
        "escrow": task.escrow,
        "task_id": task.task_id,
        "round": round_,
        "trainer": account.address,
        "base_hash": bytes_to_hex(base_hash),
    }
    bundle = RolloutBundle(**header, rollouts=work.records)
    bundle_bytes = canonical_json(sign_bundle(bundle, account))
    refs = [artifact_ref(work.states[j]) for j in range(H + 1)]
    manifest = UpdateManifest(
        **header,
        bundle=artifact_ref(bundle_bytes),
        update=artifact_ref(work.update),
        states=refs,
        proof_root=bytes_to_hex(proof_root(work.records)),
        state_root=bytes_to_hex(state_root([r.digest for r in refs])),
        work_units=work_units if work_units is not None else bundle_size(task.spec.inner),
    )
    manifest_bytes = canonical_json(manifest)
    manifest_ref = artifact_ref(manifest_bytes)
    hidden = set(withheld)
    uploaded = [bundle_bytes, work.update, manifest_bytes]
    uploaded += [data for j, data in work.states.items() if j not in hidden]
    commitment = Commitment(
        round=round_,
        index=index,
        trainer=account.address,
        bundle_hash=manifest.bundle.digest,
        bundle_cid=manifest.bundle.cid,
        update_hash=manifest_ref.digest,
        update_cid=manifest_ref.cid,
        proof_root=hex_to_bytes(manifest.proof_root),
        state_root=hex_to_bytes(manifest.state_root),
        work_units=manifest.work_units,
    )
    return Submission({artifact_ref(b).cid: b for b in uploaded}, commitment)


# ------------------------------------------------------------------------------------------ one round


@dataclass
class Arena:
    """One round of a task as the attacker sees it: the base, its key, and what others published."""

    task: TaskContext
    base: bytes
    """The round's base checkpoint (canonical bytes)."""
    round: int
    account: LocalAccount
    others: Sequence[tuple[str, Work]] = ()
    """(address, work) of other trainers of the round (to copy from)."""
    previous: Submission | None = None
    """The attacker's own submission of an earlier round (to replay)."""
    gate_margin: float = 0.8
    """A gate-tuned attacker keeps its own estimate of the gate's drop below this fraction of the limit."""
    _honest: Work | None = field(default=None, init=False, repr=False)

    @property
    def base_hash(self) -> bytes:
        return hashlib.sha256(self.base).digest()

    @property
    def weights(self) -> dict[str, torch.Tensor]:
        from trainer.diloco import load_global_checkpoint

        return load_global_checkpoint(self.base)[0]

    @property
    def address(self) -> str:
        return str(self.account.address)

    def honest(self) -> Work:
        """The attacker's own honest work of the round (computed once)."""
        if self._honest is None:
            self._honest = train(self.task, self.weights, self.address, self.round)
        return self._honest

    def train(self, *, edit_rollouts: RolloutEdit | None = None, edit_step: StepEdit | None = None) -> Work:
        """The attacker's inner loop with edits."""
        return train(
            self.task,
            self.weights,
            self.address,
            self.round,
            edit_rollouts=edit_rollouts,
            edit_step=edit_step,
        )

    def publish(self, work: Work, **options: Any) -> Submission:
        """`publish` as the attacker, in this round."""
        return publish(self.task, self.base_hash, self.round, self.account, work, **options)


@dataclass(frozen=True)
class Strategy:
    """One dishonest (or the honest) way to take part in a round."""

    name: str
    description: str
    caught_by: str
    """The check meant to catch it."""
    build: Callable[[Arena], Submission]
    role: Role = "trainer"
    altered_steps: int = 0
    """Steps whose re-execution fails: 0 when something else catches it whatever the seed picks (or it is
    honest), `ALL_STEPS` when every step does."""
    gate: bool = False
    """Tuned to pass the quality gate: what it does when it passes is what the aggregation bounds."""
    honest: bool = False


# ----------------------------------------------------------------------------------------- states and updates


def _tensors(data: bytes) -> dict[str, torch.Tensor]:
    from trainer.checkpoint import load_tensors

    return {k: v.clone() for k, v in load_tensors(data).items()}


def _with_final_weights(arena: Arena, work: Work, weights: Mapping[str, torch.Tensor]) -> Work:
    """`work` with theta_H's weights replaced by `weights` (its AdamW state kept) and the update that
    matches them: the last step altered, every commitment consistent."""
    from trainer.checkpoint import canonical_bytes
    from trainer.diloco import encode_update, pseudo_gradient

    H = arena.task.spec.inner.steps
    state = _tensors(work.states[H])
    for name, w in weights.items():
        state[f"model/{name}"] = w.contiguous()
    states = {**work.states, H: canonical_bytes(state)}
    update = encode_update(pseudo_gradient(arena.weights, dict(weights)), arena.task.spec.inner.compression)
    return Work(work.records, states, update)


def _nonfinite(value: float, arena: Arena) -> Submission:
    """One NaN / +inf in every tensor of theta_H, with the matching update (fp32 updates only)."""
    from trainer.checkpoint import canonical_bytes
    from trainer.diloco import pseudo_gradient

    work = arena.honest()
    H = arena.task.spec.inner.steps
    state = _tensors(work.states[H])
    for t in state.values():
        t.view(-1)[0] = value
    weights = {k[len("model/") :]: v for k, v in state.items() if k.startswith("model/")}
    delta = pseudo_gradient(arena.weights, weights)
    update = canonical_bytes({f"delta/{k}": v for k, v in delta.items()})
    return arena.publish(Work(work.records, {**work.states, H: canonical_bytes(state)}, update))


def _update_replaced(make: Callable[[Arena, dict[str, torch.Tensor]], Any], arena: Arena) -> Submission:
    """Honest states, another update (`make(arena, honest delta)` -> delta or raw bytes)."""
    from trainer.diloco import encode_update

    work = arena.honest()
    out = make(arena, work.delta(arena.weights))
    update = out if isinstance(out, bytes) else encode_update(out, arena.task.spec.inner.compression)
    return arena.publish(Work(work.records, work.states, update))


def _scaled_update(factor: float, arena: Arena, delta: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    from trainer.cheats import scaled

    return scaled(delta, factor)


def _random_update(arena: Arena, delta: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    import torch

    from trainer.cheats import scaled, total_norm

    gen = torch.Generator().manual_seed(int.from_bytes(arena.base_hash[:4], "big"))
    noise = {k: torch.randn(v.shape, generator=gen) for k, v in delta.items()}
    return scaled(noise, total_norm(delta) / total_norm(noise))


def _zero_update(arena: Arena, delta: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    import torch

    return {k: torch.zeros_like(v) for k, v in delta.items()}


def _copied_update(arena: Arena, delta: dict[str, torch.Tensor]) -> bytes:
    if not arena.others:
        raise ValueError("copying needs another trainer's work")
    return arena.others[0][1].update


def _scaled_consistent(factor: float, arena: Arena) -> Submission:
    """theta_H := base - factor x (base - theta_H): the last step altered, states and update consistent."""
    from trainer.cheats import scaled
    from trainer.quality import trainer_weights

    work = arena.honest()
    delta = work.delta(arena.weights)
    return arena.publish(
        _with_final_weights(arena, work, trainer_weights(arena.weights, scaled(delta, factor)))
    )


def _skipped_step(arena: Arena) -> Submission:
    """theta_H := theta_H-1: the last step not done (its work saved; rollouts and states consistent)."""
    work = arena.honest()
    H = arena.task.spec.inner.steps
    weights = {
        k[len("model/") :]: v for k, v in _tensors(work.states[H - 1]).items() if k.startswith("model/")
    }
    return arena.publish(_with_final_weights(arena, work, weights))


def _poisoned_step(arena: Arena) -> Submission:
    """The issue's attack: after step 0 the EOS row of the LM head is negated; then honest training."""
    return arena.publish(arena.train(edit_step=partial(_suppress_at, 0, arena.task.tokenizer.eos_token_id)))


def _suppress_at(step: int, eos: int, j: int, model: Any) -> None:
    from trainer.cheats import suppress_eos

    if j == step:
        suppress_eos(model, eos)


def _lazy(arena: Arena) -> Submission:
    """No training at all: every state is theta_0, every rollout generated by the base (the update is 0)."""
    from trainer.diloco import encode_update, pseudo_gradient

    work = arena.honest()
    H = arena.task.spec.inner.steps
    records = _regenerated(arena, arena.weights, work.records)
    update = encode_update(pseudo_gradient(arena.weights, arena.weights), arena.task.spec.inner.compression)
    return arena.publish(Work(records, dict.fromkeys(range(H + 1), work.states[0]), update))


def _regenerated(
    arena: Arena, weights: Mapping[str, torch.Tensor], records: Sequence[RolloutRecord]
) -> list[RolloutRecord]:
    """Every rollout of `records` generated again, with its own prompt and seed, by `weights`."""
    from trainer.checkpoint import load_weights
    from trainer.derive import sample_seed
    from trainer.model import model_from_config
    from trainer.rollout import RolloutRequest, generate

    task = arena.task
    model = model_from_config(task.hf)
    load_weights(model, weights)
    requests = [
        RolloutRequest(
            r.step,
            r.prompt_idx,
            r.g,
            tuple(r.prompt_ids),
            sample_seed(task.task_id, arena.round, arena.address, r.step, r.prompt_idx, r.g),
        )
        for r in records
    ]
    rollouts = generate(
        model,
        task.tokenizer,
        task.env,
        requests,
        max_new_tokens=task.spec.inner.max_new_tokens,
        temperature=task.spec.inner.grpo.temperature,
    )
    return [record_from_rollout(r) for r in rollouts]


# ------------------------------------------------------------------------------------------ rollouts


def _fabricate(
    env: Any,
    tokenizer: Any,
    per_step: int,
    proofs: Literal["junk", "rebuilt"],
    model: Any,
    j: int,
    rollouts: list[Rollout],
) -> list[Rollout]:
    """Step j's rollouts with the first `per_step` wrong ones replaced by "answer + EOS", reward 1."""
    from trainer.cheats import fabricated

    out: list[Rollout] = []
    done = 0
    for r in rollouts:
        if done < per_step and r.reward == 0:
            out.append(fabricated(r, env, tokenizer, proofs=proofs, model=model))
            done += 1
        else:
            out.append(r)
    return out


def fabricate_edit(env: Any, tokenizer: Any, per_step: int = 1) -> RolloutEdit:
    """A `RolloutEdit` that fabricates `per_step` rollouts of every step with junk proofs (trained on)."""
    return partial(_fabricate, env, tokenizer, per_step, "junk", None)


def _fabricated(per_step: int, proofs: Literal["junk", "rebuilt"], arena: Arena) -> Submission:
    holder = _Follower(arena.task.hf, arena.weights)
    edit = partial(_fabricate_live, arena.task.env, arena.task.tokenizer, per_step, proofs, holder)
    return arena.publish(arena.train(edit_rollouts=edit, edit_step=holder.follow))


class _Follower:
    """Follows the trainer's weights: holds theta_j (a model and its weights) while step j's rollouts are
    edited, for edits that need the model that should have generated them."""

    def __init__(self, hf: Any, weights: Mapping[str, torch.Tensor]) -> None:
        from trainer.checkpoint import load_weights
        from trainer.model import model_from_config

        self.weights = dict(weights)
        self.model = model_from_config(hf)
        load_weights(self.model, self.weights)

    def follow(self, j: int, model: Any) -> None:
        from trainer.checkpoint import load_weights, model_weights

        self.weights = {k: v.clone() for k, v in model_weights(model).items()}
        load_weights(self.model, self.weights)


def _fabricate_live(
    env: Any, tokenizer: Any, per_step: int, proofs: Literal["junk", "rebuilt"], holder: _Follower, j: int,
    rollouts: list[Rollout],
) -> list[Rollout]:  # fmt: skip
    return _fabricate(env, tokenizer, per_step, proofs, holder.model, j, rollouts)


def _cheap_generator(kind: Literal["bf16", "int8"], arena: Arena) -> Submission:
    """Every step's rollouts generated by a quantized copy of theta_j (cheaper inference), proofs included;
    then honest training on them."""
    holder = _Follower(arena.task.hf, arena.weights)
    edit = partial(_regenerate_quantized, arena, kind, holder)
    return arena.publish(arena.train(edit_rollouts=edit, edit_step=holder.follow))


def _regenerate_quantized(
    arena: Arena, kind: Literal["bf16", "int8"], holder: _Follower, j: int, rollouts: list[Rollout]
) -> list[Rollout]:
    from trainer.cheats import quantized

    return _regenerate_with(arena, quantized(holder.weights, kind), j, rollouts)


def _stale_rollouts(arena: Arena) -> Submission:
    """Every step's rollouts generated by the base (theta_0) in one batch, then honest training on them."""
    edit = partial(_regenerate_with, arena, arena.weights)
    return arena.publish(arena.train(edit_rollouts=edit))


def _regenerate_with(
    arena: Arena, weights: Mapping[str, torch.Tensor], j: int, rollouts: list[Rollout]
) -> list[Rollout]:
    from protocol.artifacts import rollout_from_record

    records = _regenerated(arena, weights, [record_from_rollout(r) for r in rollouts])
    return [rollout_from_record(r) for r in records]


def _records_edited(edit: Callable[[int, RolloutRecord], RolloutRecord], arena: Arena) -> Submission:
    """Honest work, every rollout record rewritten by `edit(i, record)` after training."""
    work = arena.honest()
    records = [edit(i, r) for i, r in enumerate(work.records)]
    return arena.publish(Work(records, work.states, work.update))


def _forge_reward(i: int, r: RolloutRecord) -> RolloutRecord:
    return r.model_copy(update={"reward": 1.0})


def _tamper_proof(i: int, r: RolloutRecord) -> RolloutRecord:
    data = bytearray(hex_to_bytes(r.proofs[0]))
    data[100] ^= 0x01
    return r.model_copy(update={"proofs": [bytes_to_hex(bytes(data)), *r.proofs[1:]]})


def _tamper_token(i: int, r: RolloutRecord) -> RolloutRecord:
    """The first completion token replaced by the next id (a forged sample; proofs kept)."""
    ids = list(r.completion_ids)
    ids[0] = 4 + (ids[0] - 3) % 10 if ids[0] >= 4 else 4
    return r.model_copy(update={"completion_ids": ids})


# ------------------------------------------------------------------------------------------ whole submissions


def _inflated(arena: Arena) -> Submission:
    return arena.publish(arena.honest(), work_units=2 * bundle_size(arena.task.spec.inner))


def _withheld(arena: Arena) -> Submission:
    return arena.publish(arena.honest(), withheld=range(arena.task.spec.inner.steps + 1))


def _replayed(arena: Arena) -> Submission:
    """The attacker's submission of the previous round submitted again (its documents name that round)."""
    previous = arena.previous
    if previous is None:
        raise ValueError("replaying needs an earlier submission")
    return Submission(previous.artifacts, dataclasses.replace(previous.commitment, round=arena.round))


def _copied_bundle(arena: Arena) -> Submission:
    """Another trainer's rollouts (and states and update) re-signed as the attacker's own."""
    if not arena.others:
        raise ValueError("copying needs another trainer's work")
    return arena.publish(arena.others[0][1])


def _gate_tuned(kind: Any, arena: Arena) -> Submission:
    """The adaptive attacker: the honest update plus alpha x a harmful direction, alpha as large as its own
    estimate of the quality gate allows (on problems of its own: it does not know the seed's), with the
    last step altered to match (caught when that step is picked)."""
    from trainer.cheats import combined, gate_tuned_scale, poison_direction, total_norm
    from trainer.quality import check_quality, trainer_weights

    task = arena.task
    work = arena.honest()
    base = arena.weights
    delta = work.delta(base)
    digits = task.tokenizer("0123456789", add_special_tokens=False)["input_ids"]
    direction = poison_direction(
        kind, base, delta, eos_id=task.tokenizer.eos_token_id, wrong_token=digits[0] if digits else 4
    )
    limit = task.spec.verify.max_quality_drop * arena.gate_margin
    own_seeds = [hashlib.sha256(arena.base_hash + bytes([i])).digest() for i in range(4)]
    scores: dict[bytes, float] = {}

    def passes(alpha: float) -> bool:
        candidate = combined(delta, direction, alpha)
        for seed in own_seeds:
            check = check_quality(
                task.hf, task.tokenizer, task.env, base, candidate, seed, base_score=scores.get(seed)
            )
            scores[seed] = check.base_score
            if not check.drop <= limit:
                return False
        return True

    norm = max(total_norm(delta), 1e-6)
    alpha = gate_tuned_scale(passes, limit=20 * norm)
    final = trainer_weights(base, combined(delta, direction, alpha))
    sub = arena.publish(_with_final_weights(arena, work, final))
    sub.notes = {"alpha": alpha, "alpha_over_update_norm": alpha / norm}
    return sub


def _honest(arena: Arena) -> Submission:
    return arena.publish(arena.honest())


# ------------------------------------------------------------------------------------------ a bait's defects

STEP_DEFECT_LR = 1000.0
"""The `every-step` defect's size in units of the inner lr: re-execution's max |W_o - W_c| / lr is then
~1000, against `VerifyThresholds.max_step_lr` = 1 (docs/protocol.md: the measured margins)."""


@dataclass(frozen=True)
class RoundWork:
    """What the edits of a bait's defects need besides the environment: the round's trainer, its base
    weights and the task's model and inner loop."""

    hf: Any
    inner: Any
    """`trainer.config.InnerConfig`."""
    base: Mapping[str, torch.Tensor]
    task_id: int
    round: int
    trainer: str


def every_step_edit(work: RoundWork) -> StepEdit:
    """The `every-step` defect: every training step perturbed (`trainer.cheats.perturbed_step`, by
    `STEP_DEFECT_LR` x lr), states and update consistent: only re-execution sees it, on any picked step."""
    return partial(_perturb, STEP_DEFECT_LR * work.inner.grpo.lr)


def _perturb(size: float, j: int, model: Any) -> None:
    from trainer.cheats import perturbed_step

    perturbed_step(model, j, size)


def every_rollout_edits(work: RoundWork, env: Any, tokenizer: Any) -> tuple[RolloutEdit, StepEdit]:
    """The `every-rollout` defect: every rollout off-sample (`trainer.cheats.off_sample`, proofs rebuilt
    on theta_j of its step) and trained on, states and update consistent: only the sampling replay sees
    it, on any sampled rollout. Returns (the rollout edit, the step edit that keeps theta_j at hand)."""
    holder = _Follower(work.hf, work.base)
    return partial(_off_sample_all, work, env, tokenizer, holder), holder.follow


def _off_sample_all(
    work: RoundWork, env: Any, tokenizer: Any, holder: _Follower, j: int, rollouts: list[Rollout]
) -> list[Rollout]:
    from trainer.cheats import off_sample
    from trainer.derive import sample_seed

    inner = work.inner
    return [
        off_sample(
            r,
            env,
            tokenizer,
            holder.model,
            seed=sample_seed(work.task_id, work.round, work.trainer, r.step, r.prompt_idx, r.g),
            max_new_tokens=inner.max_new_tokens,
            temperature=inner.grpo.temperature,
        )
        for r in rollouts
    ]


def _round_work(arena: Arena) -> RoundWork:
    task = arena.task
    return RoundWork(task.hf, task.spec.inner, arena.weights, task.task_id, arena.round, arena.address)


def _every_step(arena: Arena) -> Submission:
    return arena.publish(arena.train(edit_step=every_step_edit(_round_work(arena))))


def _every_rollout(arena: Arena) -> Submission:
    rollouts, step = every_rollout_edits(_round_work(arena), arena.task.env, arena.task.tokenizer)
    return arena.publish(arena.train(edit_rollouts=rollouts, edit_step=step))


STRATEGIES: dict[str, Strategy] = {
    s.name: s
    for s in (
        Strategy("honest", "trains as the task says", "-", _honest, honest=True),
        Strategy("nan-state", "one NaN in every tensor of theta_H, the update matching it", "tensor rules",
                 partial(_nonfinite, float("nan"))),
        Strategy("inf-state", "+inf in every tensor of theta_H, the update matching it", "tensor rules",
                 partial(_nonfinite, float("inf"))),
        Strategy("poisoned-step", "after step 0 the LM head's EOS row negated, then honest training (the "
                 "issue's attack: no EOS, every completion to the length limit)",
                 "re-execution of step 0 / quality gate", _poisoned_step, altered_steps=1),
        Strategy("scaled-consistent", "theta_H := base - 4 x (base - theta_H): the last step altered, every "
                 "commitment consistent", "re-execution of step H-1 / quality gate",
                 partial(_scaled_consistent, -4.0), altered_steps=1),
        Strategy("skipped-step", "the last step not done (theta_H = theta_H-1)", "re-execution of step H-1",
                 _skipped_step, altered_steps=1),
        Strategy("lazy", "no training: every state theta_0, rollouts of the base, a zero update",
                 "re-execution of every step", _lazy, altered_steps=ALL_STEPS),
        Strategy("poison-update", "-4 x its update (the old demo cheater)", "update = base - theta_H",
                 partial(_update_replaced, partial(_scaled_update, -4.0))),
        Strategy("random-update", "a random update as large as the honest one", "update = base - theta_H",
                 partial(_update_replaced, _random_update)),
        Strategy("stale-update", "a zero update (nothing learned)", "update = base - theta_H",
                 partial(_update_replaced, _zero_update)),
        Strategy("copied-update", "another trainer's update with its own rollouts and states",
                 "update = base - theta_H", partial(_update_replaced, _copied_update)),
        Strategy("fabricated-rollouts", "one rollout per step replaced by 'answer + EOS', reward 1, junk "
                 "proofs, trained on (the issue's attack)", "TOPLOC replay of every rollout",
                 partial(_fabricated, 1, "junk")),
        Strategy("fabricated-rebuilt-proofs", "the same, with proofs rebuilt from a prefill of the forged "
                 "tokens", "sampling replay of every rollout", partial(_fabricated, 1, "rebuilt")),
        Strategy("tampered-token", "the first token of every completion changed after generation",
                 "TOPLOC and sampling replay, reward", partial(_records_edited, _tamper_token)),
        Strategy("int8-generator", "rollouts generated by an int8 copy of theta_j (proofs of another "
                 "precision)", "TOPLOC replay", partial(_cheap_generator, "int8")),
        Strategy("bf16-generator", "rollouts generated by a bf16 copy of theta_j", "TOPLOC replay",
                 partial(_cheap_generator, "bf16")),
        Strategy("stale-rollouts", "every step's rollouts generated by the base (another model than theta_j)",
                 "TOPLOC replay", _stale_rollouts),
        Strategy("forged-rewards", "reward 1 claimed for every rollout", "reward recomputed",
                 partial(_records_edited, _forge_reward)),
        Strategy("inflated-work-units", "twice the work units on chain", "workUnits = rollouts", _inflated),
        Strategy("withheld-states", "never uploads the picked states", "UNAVAILABLE (slashed alike)",
                 _withheld),
        Strategy("tampered-proof", "one bit of one proof of every rollout flipped", "TOPLOC replay",
                 partial(_records_edited, _tamper_proof)),
        Strategy("replayed-submission", "its previous round's submission again", "manifest round and base",
                 _replayed),
        Strategy("copied-submission", "another trainer's rollouts, states and update, re-signed",
                 "prompts and seeds derived for the trainer", _copied_bundle),
        Strategy("gate-tuned-eos", "honest update + the largest EOS-suppressing direction its own gate "
                 "estimate lets through (last step altered)", "re-execution of step H-1 / quality gate",
                 partial(_gate_tuned, "eos"), altered_steps=1, gate=True),
        Strategy("gate-tuned-reverse", "honest update + the largest reversal of it the gate lets through",
                 "re-execution of step H-1 / quality gate", partial(_gate_tuned, "reverse"),
                 altered_steps=1, gate=True),
        Strategy("gate-tuned-wrong-answer", "honest update + the largest push towards a wrong digit the gate "
                 "lets through", "re-execution of step H-1 / quality gate",
                 partial(_gate_tuned, "wrong-answer"), altered_steps=1, gate=True),
        Strategy("every-step", "every training step perturbed after the fact (a bait's defect: 1000 x lr "
                 "on one weight of each tensor), states and update consistent", "re-execution of any step",
                 _every_step, altered_steps=ALL_STEPS),
        Strategy("every-rollout", "every rollout's first token replaced by the one its sampler ranks last (a "
                 "bait's defect), proofs rebuilt, trained on", "sampling replay of any rollout",
                 _every_rollout),
        Strategy("gate-tuned-random", "honest update + the largest random direction the gate lets through",
                 "re-execution of step H-1 / quality gate", partial(_gate_tuned, "random"),
                 altered_steps=1, gate=True),
    )
}  # fmt: skip


# ------------------------------------------------------------------------------------------ the trainer node

NODE_CHEATS: tuple[str, ...] = ("poison-step", "fabricate", "stealthy", "every-step", "every-rollout")
"""The trainer node's `--cheat` modes from this library (besides its own)."""


def node_edits(
    cheat: str, env: Any, tokenizer: Any, work: RoundWork | None = None
) -> tuple[RolloutEdit | None, StepEdit | None]:
    """The inner-loop edits of a trainer node's `--cheat` mode: `poison-step` (the EOS row negated after step
    0), `fabricate` (one fabricated rollout per step with junk proofs), `stealthy` (both: the demo's
    cheater), and the baits' defects `every-step` and `every-rollout` (which need the round's `work`)."""
    if cheat in ("every-step", "every-rollout"):
        if work is None:
            raise ValueError(f"the {cheat} cheat needs the round's work")
        if cheat == "every-step":
            return None, every_step_edit(work)
        return every_rollout_edits(work, env, tokenizer)
    rollouts = fabricate_edit(env, tokenizer) if cheat in ("fabricate", "stealthy") else None
    step = partial(_suppress_at, 0, tokenizer.eos_token_id) if cheat in ("poison-step", "stealthy") else None
    return rollouts, step
