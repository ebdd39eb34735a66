"""Re-verify the work behind a replayed history, from IPFS, independently of every validator.

For each audited task (its spec fetched by the CID in TaskCreated and checked against the on-chain hash):

* **submissions** — every one, or `sample` per round chosen with the auditor's own seed: the update
  manifest and the rollout bundle must describe exactly what the chain committed (hashes, roots, work
  units, trainer, signature); then the validators' re-checks from the trainer package run on the
  rollouts and steps the round's seed picked (`trainer.verify.verify_submission` + `decide`). The
  auditor's verdict is compared with the chain's decision (recomputed from the reveals by the ledger);
* **aggregates** — every finalised round's next checkpoint is recomputed from the updates the chain
  accepted (`trainer.diloco.aggregate`, canonical bytes) and its sha256 and CID compared with what the
  validators agreed on;
* **held-out accuracy** of the initial model and of each round's global model (greedy decoding on the
  spec's held-out problems), for the report.

Every download is bounded by the spec's size limits and checked against its committed sha256. An artifact
that cannot be fetched makes the work **unverifiable** (a discrepancy), never "fine"; one that is there but
wrong (too large, other bytes, malformed, inconsistent with the chain) makes the submission a REJECT, as it
would for a validator.
"""

from __future__ import annotations

import hashlib
import random
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from pydantic import BaseModel, ValidationError

from protocol.audit.discrepancy import Discrepancy, Kind
from protocol.audit.ledger import Ledger, fmt
from protocol.audit.model import RoundRecord, SubmissionRecord, TaskRecord
from protocol.contracts import Verdict
from protocol.errors import ArtifactError, IpfsError
from trainer.errors import TrustrlError

if TYPE_CHECKING:
    import torch

    from protocol.wire import TaskSpec, UpdateManifest

__all__ = ["AggregateCheck", "ArtifactSource", "ReverifyResult", "SubmissionCheck", "reverify"]


class ArtifactSource(Protocol):
    """Where artifacts come from: an `protocol.ipfs.ArtifactStore`, or anything with its read methods."""

    def exists(self, cid: str, *, timeout: float | None = None) -> bool:
        """Whether the content can be found."""

    def size(self, cid: str) -> int:
        """The content's size in bytes."""

    def get_bytes(self, cid: str, *, max_size: int, expected_sha256: bytes | None = None) -> bytes:
        """The content, at most `max_size` bytes, checked against its CID (and `expected_sha256`)."""


@dataclass
class SubmissionCheck:
    """The auditor's own verdict on one submission next to the chain's decision."""

    task: int
    round: int
    index: int
    trainer: str
    chain: Verdict
    """The decision recomputed from the revealed verdicts."""
    auditor: Verdict | None
    """ACCEPT / REJECT / UNAVAILABLE (an artifact is gone); None when the check could not run at all."""
    reasons: list[str] = field(default_factory=list)
    seconds: float = 0.0


@dataclass
class AggregateCheck:
    """A round's finalised next checkpoint next to the one recomputed from the accepted updates."""

    task: int
    round: int
    agreed: bytes | None
    recomputed: bytes | None
    accepted: list[int]
    status: str
    """`match`, `mismatch`, `unverifiable` or `no agreement`."""


@dataclass
class ReverifyResult:
    """What re-verification found."""

    discrepancies: list[Discrepancy] = field(default_factory=list)
    verified: Counter[str] = field(default_factory=Counter)
    submissions: list[SubmissionCheck] = field(default_factory=list)
    aggregates: list[AggregateCheck] = field(default_factory=list)
    accuracy: dict[int, list[float | None]] = field(default_factory=dict)
    """Per task: held-out accuracy of the initial model, then of the global model after each round."""
    verify_s: float = 0.0
    """Seconds spent re-running the validators' checks."""


_M = TypeVar("_M", bound=BaseModel)


class _MissingError(Exception):
    """An artifact could not be fetched: the work behind it cannot be checked."""

    def __init__(self, message: str, cid: str) -> None:
        super().__init__(message)
        self.cid = cid


class _InvalidError(Exception):
    """An artifact is there but wrong: the publisher's fault."""


def _fetch(store: ArtifactSource, cid: str, sha256: bytes, limit: int, what: str) -> bytes:
    """`cid`'s bytes, at most `limit`, with sha256 `sha256`; `_MissingError` or `_InvalidError` otherwise."""
    try:
        if not store.exists(cid):
            raise _MissingError(f"{what} {cid} is not on IPFS", cid)
        size = store.size(cid)
        if size > limit:
            raise _InvalidError(f"{what} {cid} is {size} bytes, over the task's limit of {limit}")
        data = store.get_bytes(cid, max_size=limit, expected_sha256=sha256)
    except IpfsError as exc:
        raise _MissingError(f"{what} {cid}: {exc}", cid) from None
    except ArtifactError as exc:
        if "not found" in str(exc):
            raise _MissingError(f"{what} {cid}: {exc}", cid) from None
        raise _InvalidError(f"{what} {cid}: {exc}") from None
    if hashlib.sha256(data).digest() != sha256:  # a source that ignores expected_sha256
        raise _InvalidError(f"{what} {cid} does not have the committed sha256 {fmt(sha256)}")
    return data


def _parse(data: bytes, model: type[_M], what: str) -> _M:
    try:
        return model.model_validate_json(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "<root>"
        raise _InvalidError(f"{what} is not a valid {model.__name__}: {where}: {first['msg']}") from None


@dataclass
class _Task:
    """What re-verifying one task needs: its spec, its model and held-out problems, the checkpoints."""

    record: TaskRecord
    spec: TaskSpec
    env: Any
    tokenizer: Any
    hf: Any
    checkpoints: dict[bytes, bytes] = field(default_factory=dict)
    cids: dict[bytes, str] = field(default_factory=dict)
    heldout: list[Any] | None = None
    model: Any = None


class _Reverifier:
    def __init__(
        self,
        ledger: Ledger,
        store: ArtifactSource,
        *,
        chain_id: int,
        escrow: str,
        say: Callable[[str], None],
        accuracy: bool,
    ) -> None:
        self.ledger = ledger
        self.store = store
        self.chain_id = chain_id
        self.escrow = escrow
        self.say = say
        self.measure_accuracy = accuracy
        self.result = ReverifyResult()

    def flag(
        self,
        kind: Kind,
        task: int | None,
        round_: int | None,
        subject: str,
        expected: Any,
        actual: Any,
        evidence: str,
        detail: str = "",
    ) -> None:
        self.result.discrepancies.append(
            Discrepancy(
                kind=kind,
                task=task,
                round=round_,
                subject=subject,
                expected=fmt(expected),
                actual=fmt(actual),
                evidence=evidence,
                detail=detail[:2000],
            )
        )

    # ------------------------------------------------------------------ the task
    def open_task(self, record: TaskRecord) -> _Task | None:
        from protocol.wire import MAX_SPEC_BYTES, TaskSpec
        from trainer.envs import get_env
        from trainer.model import hf_config
        from trainer.tokenizer import build_tokenizer

        cid, digest = str(record.params["specCid"]), bytes(record.params["specHash"])
        try:
            spec = _parse(_fetch(self.store, cid, digest, MAX_SPEC_BYTES, "task spec"), TaskSpec, "task spec")
        except _MissingError as exc:
            self.flag(
                Kind.UNVERIFIABLE,
                record.id,
                None,
                "task spec",
                "on IPFS",
                "missing",
                exc.cid,
                f"{exc}; no submission or aggregate of the task can be re-verified",
            )
            return None
        except _InvalidError as exc:
            self.flag(
                Kind.UNVERIFIABLE, record.id, None, "task spec", "a valid TaskSpec", "invalid", cid, str(exc)
            )
            return None
        problems = []
        if spec.sample_rollouts != record.param("sampleRollouts"):
            problems.append(f"sample_rollouts {spec.sample_rollouts} != {record.param('sampleRollouts')}")
        if spec.sample_steps != record.param("sampleSteps"):
            problems.append(f"sample_steps {spec.sample_steps} != {record.param('sampleSteps')}")
        if spec.initial_checkpoint.digest != bytes(record.params["initialModelHash"]):
            problems.append("initial checkpoint sha256 differs from initialModelHash")
        if spec.initial_checkpoint.cid != str(record.params["initialModelCid"]):
            problems.append("initial checkpoint CID differs from initialModelCid")
        if problems:
            self.flag(
                Kind.UNVERIFIABLE,
                record.id,
                None,
                "task spec",
                "the on-chain parameters",
                "; ".join(problems),
                cid,
                "validators must refuse such a task",
            )
            return None
        try:
            env = get_env(spec.env.name, spec.env.params)
            tokenizer = build_tokenizer(env.alphabet)
            hf = hf_config(spec.model, tokenizer)
        except TrustrlError as exc:
            self.flag(
                Kind.UNVERIFIABLE,
                record.id,
                None,
                "task spec",
                "a model the trainer package builds",
                str(exc),
                cid,
            )
            return None
        task = _Task(record, spec, env, tokenizer, hf)
        task.cids[bytes(record.params["initialModelHash"])] = str(record.params["initialModelCid"])
        return task

    def checkpoint(self, task: _Task, model_hash: bytes) -> bytes:
        """A global checkpoint by hash (initial, agreed or recomputed); `_MissingError` / `_InvalidError`."""
        if model_hash in task.checkpoints:
            return task.checkpoints[model_hash]
        cid = task.cids.get(model_hash)
        if cid is None:
            raise _MissingError(f"no CID is known for checkpoint {fmt(model_hash)}", "-")
        data = _fetch(self.store, cid, model_hash, task.spec.limits.checkpoint, "checkpoint")
        task.checkpoints[model_hash] = data
        return data

    def base_weights(
        self, task: _Task, model_hash: bytes
    ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor] | None]:
        from trainer.diloco import load_global_checkpoint

        data = self.checkpoint(task, model_hash)
        try:
            return load_global_checkpoint(data, max_bytes=task.spec.limits.checkpoint)
        except TrustrlError as exc:
            raise _InvalidError(f"checkpoint {fmt(model_hash)} does not load: {exc}") from None

    # ------------------------------------------------------------------ one submission
    def manifest(self, task: _Task, sub: SubmissionRecord) -> UpdateManifest:
        from protocol.wire import UpdateManifest

        data = _fetch(
            self.store, sub.update_cid, sub.update_hash, task.spec.limits.manifest, "update manifest"
        )
        return _parse(data, UpdateManifest, "update manifest")

    def update(self, task: _Task, manifest: UpdateManifest) -> bytes:
        return _fetch(
            self.store, manifest.update.cid, manifest.update.digest, task.spec.limits.update, "update"
        )

    def check(
        self, task: _Task, rnd: RoundRecord, sub: SubmissionRecord, base: dict[str, torch.Tensor]
    ) -> tuple[Verdict, list[str], str | None]:
        """(verdict, reasons, the missing CID when UNAVAILABLE) of one submission."""
        from protocol.artifacts import bundle_problems, manifest_problems, rollout_from_record
        from protocol.wire import RolloutBundle, picked_steps, required_states, sampled_rollouts
        from trainer.verify import SubmissionContext, decide, verify_submission

        spec, limits = task.spec, task.spec.limits
        assert rnd.seed is not None
        try:
            manifest = self.manifest(task, sub)
            problems = manifest_problems(
                manifest,
                sub,
                chain_id=self.chain_id,
                escrow=self.escrow,
                task_id=task.record.id,
                base_hash=rnd.base,
                steps=task.spec.inner.steps,
                update_limit=task.spec.limits.update,
            )
            if problems:
                return Verdict.REJECT, problems, None
            bundle = _parse(
                _fetch(self.store, sub.bundle_cid, sub.bundle_hash, limits.bundle, "rollout bundle"),
                RolloutBundle,
                "rollout bundle",
            )
            problems = bundle_problems(bundle, manifest, sub)
            if problems:
                return Verdict.REJECT, problems, None
            update = self.update(task, manifest)
            sampled = sampled_rollouts(rnd.seed, sub.trainer, spec.sample_rollouts, len(bundle.rollouts))
            steps = picked_steps(rnd.seed, sub.trainer, spec.sample_steps, spec.inner.steps)
            needed = required_states(spec.inner, [bundle.rollouts[i].step for i in sampled], steps)
            states = {
                j: _fetch(
                    self.store,
                    manifest.states[j].cid,
                    manifest.states[j].digest,
                    limits.state,
                    f"training state {j}",
                )
                for j in needed
            }
        except _MissingError as exc:
            return Verdict.UNAVAILABLE, [str(exc)], exc.cid
        except _InvalidError as exc:
            return Verdict.REJECT, [str(exc)], None
        ctx = SubmissionContext(
            task_id=task.record.id, round_=rnd.number, trainer=sub.trainer, inner=spec.inner
        )
        started = time.perf_counter()
        report = verify_submission(
            ctx=ctx,
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
        self.result.verify_s += time.perf_counter() - started
        reasons = list(decide(report, spec.verify).reasons)
        if report.bundle.work_units != sub.work_units:
            reasons.append(
                f"workUnits {sub.work_units} on chain, {report.bundle.work_units} tokens in the bundle"
            )
        return (Verdict.REJECT if reasons else Verdict.ACCEPT), reasons, None

    def compare(
        self,
        task: _Task,
        rnd: RoundRecord,
        sub: SubmissionRecord,
        verdict: Verdict | None,
        reasons: list[str],
        missing: str | None,
        seconds: float,
    ) -> None:
        self.result.submissions.append(
            SubmissionCheck(
                task.record.id, rnd.number, sub.index, sub.trainer, sub.decision, verdict, reasons, seconds
            )
        )
        label = f"submission {sub.index} ({sub.trainer})"
        why = "; ".join(reasons[:5]) + (f" (+{len(reasons) - 5} more)" if len(reasons) > 5 else "")
        if verdict == Verdict.UNAVAILABLE or verdict is None:
            if sub.decision == Verdict.UNAVAILABLE:
                self.result.verified["unavailable_confirmed"] += 1
            else:
                self.flag(
                    Kind.UNVERIFIABLE,
                    task.record.id,
                    rnd.number,
                    label,
                    f"its artifacts on IPFS (the chain decided {sub.decision.name})",
                    "missing",
                    missing or sub.tx,
                    why,
                )
            return
        if sub.decision == Verdict.NONE:
            self.result.verified["undecided_rechecked"] += 1
            return
        if verdict != sub.decision:
            self.flag(
                Kind.VERDICT,
                task.record.id,
                rnd.number,
                label,
                verdict,
                sub.decision,
                sub.tx,
                f"re-verification says {verdict.name}"
                + (f": {why}" if why else "")
                + f"; update manifest {sub.update_cid}, bundle {sub.bundle_cid}",
            )
        else:
            self.result.verified["verdicts"] += 1

    # ------------------------------------------------------------------ one round
    def aggregate(self, task: _Task, rnd: RoundRecord, base_hash: bytes) -> None:
        """Recompute the round's next checkpoint from the accepted updates and compare."""
        from protocol.artifacts import unixfs_cid
        from trainer.diloco import TrainerUpdate, aggregate, decode_update

        f = rnd.finalization
        if f is None:
            return
        accepted = [s for s in rnd.submissions if s.decision == Verdict.ACCEPT]
        agreed = rnd.agreed
        record = AggregateCheck(
            task.record.id,
            rnd.number,
            agreed[0] if agreed else None,
            None,
            [s.index for s in accepted],
            "no agreement",
        )
        self.result.aggregates.append(record)
        if agreed is None:
            self.result.verified["rounds_without_agreement"] += 1
            return
        agreed_hash, agreed_cid, _ = agreed
        task.cids.setdefault(agreed_hash, agreed_cid)
        where = (task.record.id, rnd.number)
        try:
            if not accepted:
                recomputed = self.checkpoint(task, base_hash)  # nothing accepted: the model does not change
            else:
                weights, momentum = self.base_weights(task, base_hash)
                shapes = {k: v.shape for k, v in weights.items()}
                updates = []
                for sub in accepted:
                    data = self.update(task, self.manifest(task, sub))
                    try:
                        delta = decode_update(data, shapes, max_bytes=task.spec.limits.update)
                    except TrustrlError as exc:
                        raise _InvalidError(
                            f"accepted update of submission {sub.index} does not decode: {exc}"
                        ) from None
                    updates.append(TrainerUpdate(sub.trainer, sub.work_units, delta))
                recomputed = aggregate(weights, updates, task.spec.outer, momentum).to_bytes()
        except _MissingError as exc:
            record.status = "unverifiable"
            self.flag(
                Kind.UNVERIFIABLE,
                *where,
                "aggregate of the accepted updates",
                "every accepted update on IPFS",
                "missing",
                exc.cid,
                str(exc),
            )
            return
        except _InvalidError as exc:
            record.status = "mismatch"
            self.flag(
                Kind.AGGREGATE,
                *where,
                "aggregate of the accepted updates",
                "a checkpoint from valid updates",
                "an invalid accepted update",
                agreed_cid,
                str(exc),
            )
            return
        digest = hashlib.sha256(recomputed).digest()
        record.recomputed = digest
        task.checkpoints[digest] = recomputed
        task.cids.setdefault(digest, unixfs_cid(recomputed))
        if digest != agreed_hash:
            record.status = "mismatch"
            self.flag(
                Kind.AGGREGATE,
                *where,
                f"finalised checkpoint (aggregate of submissions {[s.index for s in accepted]})",
                digest,
                agreed_hash,
                agreed_cid,
                f"recomputed checkpoint CID {unixfs_cid(recomputed)}",
            )
            return
        cid = unixfs_cid(recomputed)
        if cid != agreed_cid:
            record.status = "mismatch"
            self.flag(
                Kind.AGGREGATE,
                *where,
                "CID of the finalised checkpoint",
                cid,
                agreed_cid,
                agreed_cid,
                "the hash matches but the CID does not locate those bytes",
            )
            return
        record.status = "match"
        self.result.verified["aggregates"] += 1

    def accuracy(self, task: _Task, model_hash: bytes) -> float | None:
        """Held-out accuracy of a global checkpoint (None when it cannot be had)."""
        if not self.measure_accuracy:
            return None
        from trainer.checkpoint import load_weights
        from trainer.derive import HELDOUT_DOMAIN
        from trainer.model import model_from_config
        from trainer.rollout import evaluate_accuracy
        from trainer.warmstart import problems

        try:
            weights, _ = self.base_weights(task, model_hash)
        except (_MissingError, _InvalidError):
            return None
        if task.model is None:
            task.model = model_from_config(task.hf)
            task.heldout = problems(task.env, HELDOUT_DOMAIN, task.spec.heldout_size)
        load_weights(task.model, weights)
        assert task.heldout is not None
        return float(
            evaluate_accuracy(
                task.model, task.tokenizer, task.env, task.heldout, max_new_tokens=task.env.max_answer_len + 1
            )
        )

    def run_task(self, record: TaskRecord, sample: int | None, seed: int) -> None:
        task = self.open_task(record)
        if task is None:
            return
        initial = bytes(record.params["initialModelHash"])
        curve: list[float | None] = [self.accuracy(task, initial)]
        for number in sorted(record.rounds):
            rnd = record.rounds[number]
            if rnd.submissions and rnd.seed is not None:
                chosen = list(rnd.submissions)
                if sample is not None and sample < len(chosen):
                    rng = random.Random(f"{seed}:{record.id}:{number}")
                    chosen = sorted(rng.sample(chosen, sample), key=lambda s: s.index)
                self.say(
                    f"task {record.id} round {number}: re-verifying {len(chosen)} of "
                    f"{len(rnd.submissions)} submissions"
                )
                try:
                    base, _ = self.base_weights(task, rnd.base)
                except (_MissingError, _InvalidError) as exc:
                    cid = exc.cid if isinstance(exc, _MissingError) else task.cids.get(rnd.base, "-")
                    for sub in chosen:
                        self.compare(task, rnd, sub, None, [f"the round's base: {exc}"], cid, 0.0)
                else:
                    for sub in chosen:
                        started = time.perf_counter()
                        verdict, reasons, missing = self.check(task, rnd, sub, base)
                        self.compare(task, rnd, sub, verdict, reasons, missing, time.perf_counter() - started)
            self.aggregate(task, rnd, rnd.base)
            if rnd.finalization is not None:
                curve.append(self.accuracy(task, rnd.finalization.next_base))
        self.result.accuracy[record.id] = curve


def reverify(
    ledger: Ledger,
    store: ArtifactSource,
    *,
    tasks: Sequence[int],
    sample: int | None,
    seed: int,
    chain_id: int,
    escrow: str,
    accuracy: bool = True,
    progress: Callable[[str], None] | None = None,
) -> ReverifyResult:
    """Re-verify the work of `tasks` of a replayed `ledger` from `store` (see the module docstring).
    `sample`: submissions re-verified per round (None: all), chosen with `seed`. `accuracy`: also measure
    the held-out accuracy of every global checkpoint."""
    worker = _Reverifier(
        ledger, store, chain_id=chain_id, escrow=escrow, say=progress or (lambda _m: None), accuracy=accuracy
    )
    for task_id in tasks:
        record = ledger.tasks.get(task_id)
        if record is not None:
            worker.run_task(record, sample, seed)
    return worker.result
