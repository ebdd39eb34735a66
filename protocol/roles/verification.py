"""A validator's check of one submission, from the chain's commitments to a verdict.

1. The update manifest (`updateCid`, must hash to `updateHash`) must describe this submission: chain,
   escrow, task, round, trainer, base, the bundle of `bundleCid`/`bundleHash`, `proofRoot`, `stateRoot`
   (recomputed from its H + 1 state hashes) and `workUnits`.
2. The rollout bundle (`bundleCid`, must hash to `bundleHash`) must carry the same header, be signed by the
   trainer, and its leaves must give `proofRoot`.
3. The seed picks the rollouts to replay and the steps to re-execute (`protocol.wire`); the states they
   need are fetched by the CIDs in the manifest and must hash to the committed state hashes.
4. `trainer.verify.verify_submission` runs every re-check; `decide` applies the task's thresholds.

Anything wrong with what the trainer published (too large, wrong hash, malformed, inconsistent) is a
REJECT. What cannot be fetched raises `ArtifactUnavailableError`: the caller waits for it until shortly before
the commit deadline and then votes UNAVAILABLE.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from protocol.artifacts import (
    ArtifactInvalidError,
    bundle_problems,
    manifest_problems,
    parse_wire,
    rollout_from_record,
)
from protocol.contracts import Verdict
from protocol.network import Submission, TaskView
from protocol.wire import (
    RolloutBundle,
    UpdateManifest,
    picked_steps,
    required_states,
    sampled_rollouts,
)
from trainer.errors import TrainerError

__all__ = ["Checked", "check_submission", "fetch_update"]


@dataclass
class Checked:
    """A verdict on one submission, why, and the statistics behind it."""

    verdict: Verdict
    reasons: list[str] = field(default_factory=list)
    report: dict[str, Any] | None = None


def _reject(*reasons: str) -> Checked:
    return Checked(Verdict.REJECT, list(reasons))


def fetch_manifest(view: TaskView, sub: Submission) -> UpdateManifest:
    """The submission's update manifest (cached); raises `ArtifactInvalidError`/`ArtifactUnavailableError`."""
    data = view.cache.fetch(
        view.session.store,
        sub.update_cid,
        sub.update_hash,
        view.spec.limits.manifest,
        f"update manifest of submission {sub.index}",
    )
    return parse_wire(data, UpdateManifest, f"update manifest of submission {sub.index}")


def fetch_update(view: TaskView, sub: Submission) -> bytes:
    """The submission's pseudo-gradient bytes (cached), as its manifest references them."""
    manifest = fetch_manifest(view, sub)
    return view.cache.fetch(
        view.session.store,
        manifest.update.cid,
        manifest.update.digest,
        view.spec.limits.update,
        f"update of submission {sub.index}",
    )


def check_submission(view: TaskView, sub: Submission, seed: bytes, base_hash: bytes) -> Checked:
    """ACCEPT or REJECT one submission (see the module docstring); raises `ArtifactUnavailableError`."""
    from trainer.diloco import load_global_checkpoint
    from trainer.verify import SubmissionContext, decide, verify_submission

    spec = view.spec
    store, cache, limits = view.session.store, view.cache, spec.limits
    try:
        manifest = fetch_manifest(view, sub)
        problems = manifest_problems(
            manifest,
            sub,
            chain_id=view.session.chain_id,
            escrow=view.session.config.deployment.task_escrow,
            task_id=view.task_id,
            base_hash=base_hash,
            steps=view.spec.inner.steps,
            update_limit=view.spec.limits.update,
        )
        if problems:
            return _reject(*problems)
        bundle_bytes = cache.fetch(
            store, sub.bundle_cid, sub.bundle_hash, limits.bundle, f"rollout bundle of submission {sub.index}"
        )
        bundle = parse_wire(bundle_bytes, RolloutBundle, f"rollout bundle of submission {sub.index}")
        problems = bundle_problems(bundle, manifest, sub)
        if problems:
            return _reject(*problems)
        update = fetch_update(view, sub)
        n = len(bundle.rollouts)
        sampled = sampled_rollouts(seed, sub.trainer, spec.sample_rollouts, n)
        steps = picked_steps(seed, sub.trainer, spec.sample_steps, spec.inner.steps)
        needed = required_states(spec.inner, [bundle.rollouts[i].step for i in sampled], steps)
        states = {
            j: cache.fetch(
                store,
                manifest.states[j].cid,
                manifest.states[j].digest,
                limits.state,
                f"training state {j} of submission {sub.index}",
            )
            for j in needed
        }
    except ArtifactInvalidError as exc:
        return _reject(str(exc))
    env, tokenizer, hf = view.ml()
    base, _ = load_global_checkpoint(view.checkpoint(base_hash), max_bytes=limits.checkpoint)
    ctx = SubmissionContext(task_id=view.task_id, round_=sub.round, trainer=sub.trainer, inner=spec.inner)
    try:
        report = verify_submission(
            ctx=ctx,
            policy_config=hf,
            tokenizer=tokenizer,
            env=env,
            base=base,
            rollouts=[rollout_from_record(r) for r in bundle.rollouts],
            sampled=sampled,
            picked_steps=steps,
            states=states,
            update=update,
        )
    except TrainerError as exc:  # the re-checks report bad data as failures; this is a last resort
        return _reject(f"submission {sub.index} could not be re-checked: {exc}")
    reasons = list(decide(report, spec.verify).reasons)
    if report.bundle.work_units != sub.work_units:
        reasons.append(
            f"workUnits {sub.work_units} on chain, {report.bundle.work_units} tokens in the bundle"
        )
    stats = json.loads(report.model_dump_json())
    return Checked(Verdict.ACCEPT if not reasons else Verdict.REJECT, reasons, stats)
