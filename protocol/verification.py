"""One submission's verification and one round's aggregate, for validators and auditors alike.

`verify(fetch, task, sub, seed, base, profile=FULL)`, from the chain's commitments to a verdict:

    1. manifest = fetch(updateCid, updateHash)   an UpdateManifest that describes this submission
                                                 (`manifest_problems`: chain, escrow, task, round,
                                                 trainer, base, bundle, proofRoot, stateRoot, workUnits)
    2. bundle   = fetch(bundleCid, bundleHash)   a RolloutBundle with the same header, signed by the trainer,
                                                 whose leaves give proofRoot (`bundle_problems`)
    3. update   = fetch(manifest.update)         every fetched artifact has the size its reference states
    4. the seed's picks (`protocol.wire`); states = fetch(manifest.states[j]) for every required j
    5. report   = trainer.verify.verify_submission(...) (the tensor rules first, then every re-check);
       reasons  = decide(report, spec.verify) + the work-units rule (workUnits = the rollouts a bundle holds)
    6. the quality gate (`trainer.quality`): base - update must predict the reference answers of the
       round's seed-derived problems no worse than the base by more than `spec.verify.max_quality_drop`

`profile` says which checks run. An honest validator runs `FULL`. `SEMI_LAZY` is a dishonest validator's
(`trustrl validate --semi-lazy`, to measure what honeypots catch): it runs only the cheap checks (the
manifest and bundle rules, the tensor rules, every rollout's prompt, reward, termination and proof count,
theta_0 and the update equation, on theta_0 and theta_H alone) and skips the expensive ones (TOPLOC and
sampling replay of the rollouts, re-execution of the picked steps, the quality gate), which are most of
the CPU: docs/protocol.md, "Laziness does not pay".

Anything wrong with what the trainer published (too large, other bytes, malformed, inconsistent,
non-finite or absurd tensors, data the checks cannot digest) is a REJECT with its reasons. Missing data
raises `ArtifactUnavailableError` (naming the CID): a validator waits for it and votes UNAVAILABLE near
the deadline, an auditor reports the work unverifiable.

`aggregate_accepted(fetch, spec, base, accepted)`: the next global checkpoint from the updates the chain
accepted, each decoded under the tensor rules. One that breaks them (only validators that accepted it
unchecked can bring it here) is left out with its reason; with none left, or an aggregate that breaks the
rules, the model does not change. Every honest validator and the auditor get the same bytes. With LoRA
(`spec.lora`) updates, the aggregation and the outer momentum cover the adapters only; the frozen base is
carried over unchanged.

`fetch(cid, sha256, limit, what)` is `protocol.artifacts.fetch_verified` over a store (a validator's goes
through its disk cache).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from protocol.artifacts import (
    ArtifactInvalidError,
    ArtifactUnavailableError,
    CommittedWork,
    bundle_problems,
    manifest_problems,
    parse_wire,
    rollout_from_record,
)
from protocol.contracts import Verdict
from protocol.wire import (
    ArtifactRef,
    RolloutBundle,
    TaskSpec,
    UpdateManifest,
    bundle_size,
    picked_steps,
    required_states,
    sampled_rollouts,
)
from trainer.errors import TrainerError, TrustrlError

if TYPE_CHECKING:
    import torch

    from trainer.config import VerifyThresholds
    from trainer.quality import QualityCheck
    from trainer.verify import SubmissionReport

__all__ = [
    "CONTENT_ERRORS",
    "FULL",
    "MARGIN_CAP",
    "SEMI_LAZY",
    "Aggregate",
    "CheckProfile",
    "Checked",
    "Fetch",
    "TaskContext",
    "aggregate_accepted",
    "exact_failure",
    "fetch_manifest",
    "limit_ratio",
    "policy_of",
    "quality_gate",
    "tolerance_margin",
    "verify",
]

Fetch = Callable[[str, bytes, int, str], bytes]
"""(cid, sha256, size limit, what) -> the bytes; `ArtifactUnavailableError` or `ArtifactInvalidError`."""

CONTENT_ERRORS = (TrustrlError, ValueError, RuntimeError, ArithmeticError, LookupError)
"""What checking a stranger's data may raise: the project's refusals and what torch, pydantic and json
raise on data they cannot digest. Not running out of memory (the checker's problem, not the trainer's),
nor errors only a bug raises (TypeError, ...)."""


@dataclass(frozen=True)
class CheckProfile:
    """Which of the expensive checks a validator runs (the cheap ones always run)."""

    name: str
    replay: bool = True
    """TOPLOC and sampling replay of the sampled rollouts."""
    reexecute: bool = True
    """Re-execution of the picked steps."""
    quality: bool = True
    """The quality gate."""


FULL = CheckProfile("full")
"""Every check: what an honest validator and the auditor run."""
SEMI_LAZY = CheckProfile("semi-lazy", replay=False, reexecute=False, quality=False)
"""The cheap checks only (a dishonest validator's, for measurements and tests)."""


@dataclass
class TaskContext:
    """What checking a task's submissions needs: where it lives, its spec, and the model the spec builds
    (`TrustrlError` if it builds none)."""

    chain_id: int
    escrow: str
    task_id: int
    spec: TaskSpec
    fetch: Fetch | None = None
    """How the files of a pretrained model are fetched (only a spec with `pretrained` needs it)."""
    env: Any = field(init=False)
    tokenizer: Any = field(init=False)
    hf: Any = field(init=False)
    """The policy's Hugging Face config."""
    base_scores: dict[tuple[bytes, bytes], float] = field(init=False, default_factory=dict)
    """The quality gate's score of a base on a seed's problems, by (base sha256, seed)."""

    def __post_init__(self) -> None:
        self.env, self.tokenizer, self.hf = policy_of(self.spec, self.fetch)


def policy_of(spec: TaskSpec, fetch: Fetch | None) -> tuple[Any, Any, Any]:
    """(environment, tokenizer, Hugging Face config) of a task's policy, for every role.

    Without `spec.pretrained`: the tiny model `spec.model` describes, with the environment's character
    tokenizer. With it: config.json, tokenizer.json and tokenizer_config.json fetched by CID (each at most
    its pinned size, its sha256 checked) and loaded by `trainer.pretrained.load_pretrained_files`; a config
    whose float32 weights would exceed the task's checkpoint limit is refused before any model is built. A
    file that is missing raises `ArtifactUnavailableError`; one that is corrupt or does not load (or a model
    too large), `TrustrlError`. With `spec.lora` the config carries it (`trainer.lora.with_lora`).
    """
    from trainer.envs import get_env
    from trainer.lora import with_lora

    env = get_env(spec.env.name, spec.env.params)
    if spec.pretrained is None:
        from trainer.model import hf_config
        from trainer.tokenizer import build_tokenizer

        tokenizer = build_tokenizer(env.alphabet)
        return env, tokenizer, with_lora(hf_config(spec.model, tokenizer), spec.lora)
    from protocol.errors import ConfigError
    from trainer.pretrained import load_pretrained_files, parameter_count

    if fetch is None:
        raise ConfigError("a task with a pretrained model needs its files fetched from IPFS")
    files: dict[str, bytes] = {}
    for name, ref in spec.pretrained.files().items():
        try:
            files[name] = _fetch_ref(fetch, ref, ref.size, f"pretrained model file {name}")
        except ArtifactInvalidError as exc:
            raise ConfigError(f"the task's pretrained model is unusable: {exc}") from None
    try:
        config, pretrained_tokenizer = load_pretrained_files(files)
    except TrustrlError as exc:
        raise ConfigError(f"the task's pretrained model is unusable: {exc}") from None
    weight_bytes = 4 * parameter_count(config)
    if weight_bytes > spec.limits.checkpoint:
        raise ConfigError(
            f"the task's pretrained model is unusable: config.json describes {weight_bytes} bytes of float32"
            f" weights, over the task's checkpoint limit of {spec.limits.checkpoint}"
        )
    if config.model_type != spec.pretrained.arch:
        raise ConfigError(
            f"the task's pretrained model is unusable: config.json is {config.model_type!r}, the spec says "
            f"{spec.pretrained.arch!r}"
        )
    return env, pretrained_tokenizer, with_lora(config, spec.lora)


@dataclass
class Checked:
    """A verdict on one submission, why, and the statistics behind it."""

    verdict: Verdict
    reasons: list[str] = field(default_factory=list)
    report: dict[str, Any] | None = None
    """`trainer.verify.SubmissionReport` as JSON, when the re-checks ran."""
    hostile: list[str] = field(default_factory=list)
    """Non-finite or absurd values met in the artifacts."""
    verify_s: float = 0.0
    """Seconds spent in the re-checks."""
    margin: float | None = None
    """`tolerance_margin`: the largest metric / limit over the tolerance checks that ran (None: they did
    not run, the verdict came before them or without them)."""
    exact: bool = False
    """Whether a check no tolerance excuses failed (`exact_failure`, the manifest and bundle rules, the
    work-units rule, unreadable or malformed data)."""


def _reject(*reasons: str) -> Checked:
    return Checked(Verdict.REJECT, list(reasons), exact=True)


def _fetch_ref(fetch: Fetch, ref: ArtifactRef, limit: int, what: str) -> bytes:
    """The artifact a manifest references, which must have the size the reference states."""
    data = fetch(ref.cid, ref.digest, limit, what)
    if len(data) != ref.size:
        raise ArtifactInvalidError(f"{what} {ref.cid} is {len(data)} bytes, the manifest says {ref.size}")
    return data


def fetch_manifest(fetch: Fetch, spec: TaskSpec, sub: CommittedWork) -> UpdateManifest:
    """The submission's update manifest; `ArtifactInvalidError` / `ArtifactUnavailableError`."""
    what = f"update manifest of submission {sub.index}"
    return parse_wire(
        fetch(sub.update_cid, sub.update_hash, spec.limits.manifest, what), UpdateManifest, what
    )


def verify(
    fetch: Fetch,
    task: TaskContext,
    sub: CommittedWork,
    seed: bytes,
    base_hash: bytes,
    base: Mapping[str, torch.Tensor],
    profile: CheckProfile = FULL,
) -> Checked:
    """ACCEPT or REJECT one submission of a round with seed `seed` and base checkpoint `base_hash` (whose
    weights are `base`) by the checks of `profile`; see the module docstring. Raises
    `ArtifactUnavailableError` for missing data."""
    import torch

    try:
        return _verify(fetch, task, sub, seed, base_hash, base, profile)
    except (ArtifactUnavailableError, MemoryError, torch.OutOfMemoryError):
        raise
    except CONTENT_ERRORS as exc:
        return _reject(f"submission {sub.index} could not be checked: {type(exc).__name__}: {exc}")


def _verify(
    fetch: Fetch,
    task: TaskContext,
    sub: CommittedWork,
    seed: bytes,
    base_hash: bytes,
    base: Mapping[str, torch.Tensor],
    profile: CheckProfile,
) -> Checked:
    from trainer.verify import SubmissionContext, decide, verify_submission

    spec, limits, label = task.spec, task.spec.limits, f"of submission {sub.index}"
    try:
        manifest = fetch_manifest(fetch, spec, sub)
        problems = manifest_problems(
            manifest,
            sub,
            chain_id=task.chain_id,
            escrow=task.escrow,
            task_id=task.task_id,
            base_hash=base_hash,
            steps=spec.inner.steps,
            update_limit=limits.update,
        )
        if problems:
            return _reject(*problems)
        bundle_bytes = _fetch_ref(fetch, manifest.bundle, limits.bundle, f"rollout bundle {label}")
        bundle = parse_wire(bundle_bytes, RolloutBundle, f"rollout bundle {label}")
        problems = bundle_problems(bundle, manifest, sub)
        if problems:
            return _reject(*problems)
        update = _fetch_ref(fetch, manifest.update, limits.update, f"update {label}")
        sampled = sampled_rollouts(seed, sub.trainer, spec.sample_rollouts, len(bundle.rollouts))
        steps = picked_steps(seed, sub.trainer, spec.sample_steps, spec.inner.steps)
        sampled = sampled if profile.replay else []
        steps = steps if profile.reexecute else []
        needed = required_states(spec.inner, [bundle.rollouts[i].step for i in sampled], steps)
        states = {
            j: _fetch_ref(fetch, manifest.states[j], limits.state, f"training state {j} {label}")
            for j in needed
        }
    except ArtifactInvalidError as exc:
        return _reject(str(exc))
    started = time.perf_counter()
    report = verify_submission(
        ctx=SubmissionContext(task_id=task.task_id, round_=sub.round, trainer=sub.trainer, inner=spec.inner),
        policy_config=task.hf,
        tokenizer=task.tokenizer,
        env=task.env,
        base=base,
        rollouts=[rollout_from_record(r) for r in bundle.rollouts],
        sampled=sampled,
        picked_steps=steps,
        states=states,
        update=update,
    )
    reasons = list(decide(report, spec.verify).reasons)
    if sub.work_units != bundle_size(spec.inner):
        reasons.append(
            f"workUnits {sub.work_units} on chain, but a submission holds {bundle_size(spec.inner)} rollouts"
        )
    summary = json.loads(report.model_dump_json())
    quality = quality_gate(task, seed, base_hash, base, update) if profile.quality else None
    if quality is not None:
        summary["quality"] = quality.model_dump()
        limit = spec.verify.max_quality_drop
        if not quality.drop <= limit:
            reasons.append(
                f"quality: base - update predicts the reference answers of the round's {quality.problems} "
                f"seed-derived problems {quality.drop:.4g} nats/token worse than the base (limit {limit})"
            )
    return Checked(
        Verdict.REJECT if reasons else Verdict.ACCEPT,
        reasons,
        summary,
        list(report.hostile),
        time.perf_counter() - started,
        margin=tolerance_margin(report, spec.verify, quality),
        exact=exact_failure(report) or sub.work_units != bundle_size(spec.inner),
    )


MARGIN_CAP = 1e9
"""The largest `tolerance_margin` (an infinite or NaN ratio reads as it, and a journal's JSON holds it)."""


def limit_ratio(value: float, limit: float) -> float:
    """How far `value` is toward the limit of a tolerance check `value <= limit`, in units of the limit:
    0 for value <= 0, value / limit otherwise; `MARGIN_CAP` for a NaN or infinite value, or any value
    above 0 under a zero limit (outside it by any factor)."""
    if math.isnan(value):
        return MARGIN_CAP
    if value <= 0:
        return 0.0
    if limit <= 0:
        return MARGIN_CAP
    return min(value / limit, MARGIN_CAP)


def tolerance_margin(
    report: SubmissionReport, thresholds: VerifyThresholds, quality: QualityCheck | None
) -> float:
    """The largest `limit_ratio` over the tolerance checks `report` (and the quality gate's `quality`)
    measured: each replay's sampling gap, each TOPLOC chunk's four statistics against their limits scaled
    to its points (as `trainer.toploc.ChunkStats.failures` scales them), each re-executed step's four
    distances, the update's max |difference| and the quality drop; 0 when none was measured. Below 1 every
    tolerance passed; how far below or above says whether other hardware could have judged otherwise."""
    from trainer.toploc import TOPK

    t, tl = thresholds, thresholds.toploc
    ratios = [limit_ratio(report.update.max_abs, t.max_update_abs)]
    for rep in report.replays:
        ratios.append(limit_ratio(rep.max_gap, t.max_sampling_gap))
        for c in rep.proof.chunks if rep.proof is not None else ():
            scale = c.n_points / TOPK
            ratios += [
                limit_ratio(c.exp_mismatches, math.floor(tl.max_exp_mismatches * scale)),
                limit_ratio(c.sign_mismatches, math.floor(tl.max_sign_mismatches * scale)),
                limit_ratio(c.mant_err_mean, tl.max_mant_err_mean),
                limit_ratio(c.mant_err_median, tl.max_mant_err_median),
            ]
    for s in report.steps:
        ratios += [
            limit_ratio(s.rel_l2, t.max_step_rel),
            limit_ratio(s.max_abs_lr, t.max_step_lr),
            limit_ratio(s.moment_rel, t.max_step_moments),
            limit_ratio(s.adam_ulps, t.max_step_ulps),
        ]
    if quality is not None:
        ratios.append(limit_ratio(quality.drop, t.max_quality_drop))
    return max(ratios)


def exact_failure(report: SubmissionReport) -> bool:
    """Whether `report` holds a failure no tolerance excuses: missing or unusable artifacts, the bundle's
    coverage, a rollout's prompt, tokens, proof count or reward, a rollout that cannot be replayed or whose
    replay is not finite, malformed or missing TOPLOC proofs, a step that cannot be re-executed or whose
    AdamW step counts differ, theta_0, an unreadable update."""
    if report.failures or report.bundle.failures or report.initial_state.failures or report.update.failures:
        return True
    if any(c.failures for c in report.rollouts) or any(s.failures for s in report.steps):
        return True
    for rep in report.replays:
        proof = rep.proof
        if rep.failures or (proof is not None and (proof.format_errors or not proof.hidden_finite)):
            return True
        if proof is not None and len(proof.chunks) != proof.expected_proofs:
            return True
    return False


def quality_gate(
    task: TaskContext, seed: bytes, base_hash: bytes, base: Mapping[str, torch.Tensor], update: bytes
) -> QualityCheck | None:
    """The quality gate's statistics of an update (`trainer.quality`), or None when the update does not
    decode under the tensor rules (the re-checks reject it then). The base's score on a seed's problems is
    computed once per (base, seed)."""
    from trainer.diloco import decode_update
    from trainer.lora import trained
    from trainer.quality import check_quality

    try:
        delta = decode_update(
            update, {k: v.shape for k, v in trained(base, task.hf).items()}, max_bytes=task.spec.limits.update
        )
    except TrainerError:
        return None
    key = (base_hash, seed)
    check = check_quality(
        task.hf, task.tokenizer, task.env, base, delta, seed, base_score=task.base_scores.get(key)
    )
    task.base_scores[key] = check.base_score
    return check


@dataclass
class Aggregate:
    """The next global checkpoint of a round and what went into it."""

    checkpoint: bytes
    """Canonical bytes (the base's own when nothing was aggregated)."""
    used: list[tuple[CommittedWork, bytes]]
    """(submission, sha256 of its update) of every update aggregated."""
    left_out: list[str]
    """Why an accepted update, or the aggregate itself, was not used."""


def aggregate_accepted(
    fetch: Fetch, spec: TaskSpec, base: bytes, accepted: Sequence[CommittedWork]
) -> Aggregate:
    """The next global checkpoint from the base checkpoint's bytes and the accepted submissions (see the
    module docstring). Raises `ArtifactUnavailableError` while an accepted update is missing."""
    import hashlib

    from trainer.diloco import (
        TrainerUpdate,
        aggregate,
        decode_update,
        global_checkpoint_bytes,
        load_global_checkpoint,
    )
    from trainer.lora import is_trained

    weights, momentum = load_global_checkpoint(base, max_bytes=spec.limits.checkpoint)
    moving = {k: v for k, v in weights.items() if is_trained(k, spec.lora is not None)}
    shapes = {k: v.shape for k, v in moving.items()}
    updates: list[TrainerUpdate] = []
    used: list[tuple[CommittedWork, bytes]] = []
    left_out: list[str] = []
    for sub in accepted:
        try:
            manifest = fetch_manifest(fetch, spec, sub)
            data = _fetch_ref(fetch, manifest.update, spec.limits.update, f"update of submission {sub.index}")
            delta = decode_update(data, shapes, max_bytes=spec.limits.update)
        except (ArtifactInvalidError, TrainerError) as exc:
            left_out.append(f"accepted submission {sub.index} ({sub.trainer}) left out: {exc}")
            continue
        updates.append(TrainerUpdate(sub.trainer, sub.work_units, delta))
        used.append((sub, hashlib.sha256(data).digest()))
    if not updates:
        return Aggregate(base, [], left_out)
    try:
        state = aggregate(moving, updates, spec.outer, momentum)
        checkpoint = global_checkpoint_bytes({**weights, **state.weights}, state.momentum)
    except TrainerError as exc:
        left_out.append(f"the aggregate breaks the tensor rules ({exc}): the model does not change")
        return Aggregate(base, [], left_out)
    return Aggregate(checkpoint, used, left_out)
