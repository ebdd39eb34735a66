"""Re-verify the work behind a replayed history, from IPFS, independently of every validator.

For each audited task (its spec fetched by the CID in TaskCreated and checked against the on-chain hash):

* **submissions** — every one, or `sample` per round chosen with the auditor's own seed, through the
  validators' own pipeline (`protocol.verification.verify`: the manifest and bundle against the chain,
  the tensor rules, every re-check on what the round's seed picked). The auditor's verdict is compared
  with the chain's decision (recomputed from the reveals by the ledger); non-finite or absurd values in
  a submission's artifacts are reported whatever the chain decided (`hostile_values`);
* **aggregates** — every finalised round's next checkpoint is recomputed from the updates the chain
  accepted (`protocol.verification.aggregate_accepted`, canonical bytes, as validators compute it) and
  its sha256 and CID compared with what the validators agreed on; a round with submissions that ends
  without an agreed model is reported with the votes that failed to agree (`no_agreement`); every
  validator that revealed its verdicts and did not reveal a vote for the recomputed model (another hash,
  or no vote) is reported (`model_vote`);
* **held-out accuracy** of the initial model and of each round's global model (greedy decoding on the
  spec's held-out problems), for the report.

Every download is `protocol.artifacts.fetch_verified`: bounded by the spec's size limits and checked
against its committed sha256. An artifact that cannot be fetched makes the work **unverifiable** (a
discrepancy), never "fine"; one that is there but wrong makes the submission a REJECT, as it does for a
validator.
"""

from __future__ import annotations

import hashlib
import random
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

from protocol.artifacts import (
    ArtifactInvalidError,
    ArtifactSource,
    ArtifactUnavailableError,
    fetch_verified,
    parse_wire,
)
from protocol.audit.discrepancy import Discrepancy, Kind
from protocol.audit.ledger import Ledger, fmt
from protocol.audit.model import RoundRecord, SubmissionRecord, TaskRecord
from protocol.contracts import Verdict
from protocol.verification import Checked, TaskContext, aggregate_accepted, verify
from trainer.errors import AbsurdValueError, CheckpointError, TrustrlError

if TYPE_CHECKING:
    import torch

__all__ = ["AggregateCheck", "ArtifactSource", "ReverifyResult", "SubmissionCheck", "reverify"]


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
    left_out: list[str] = field(default_factory=list)
    """Accepted updates the aggregation left out (they break the tensor rules), and why."""


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


@dataclass
class _Task:
    """What re-verifying one task needs: its spec and model, its held-out problems, the checkpoints."""

    record: TaskRecord
    ctx: TaskContext
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
        self.fetch = partial(fetch_verified, store)
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
        from protocol.network import check_spec
        from protocol.wire import MAX_SPEC_BYTES, TaskSpec

        cid, digest = str(record.params["specCid"]), bytes(record.params["specHash"])
        try:
            spec = parse_wire(self.fetch(cid, digest, MAX_SPEC_BYTES, "task spec"), TaskSpec, "task spec")
        except ArtifactUnavailableError as exc:
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
        except ArtifactInvalidError as exc:
            self.flag(
                Kind.UNVERIFIABLE, record.id, None, "task spec", "a valid TaskSpec", "invalid", cid, str(exc)
            )
            return None
        try:
            check_spec(spec, record.params)
            task = _Task(record, TaskContext(self.chain_id, self.escrow, record.id, spec, self.fetch))
        except TrustrlError as exc:
            self.flag(
                Kind.UNVERIFIABLE, record.id, None, "task spec", "a task validators take", str(exc), cid
            )
            return None
        task.cids[bytes(record.params["initialModelHash"])] = str(record.params["initialModelCid"])
        return task

    def checkpoint(self, task: _Task, model_hash: bytes) -> bytes:
        """A global checkpoint by hash (initial, agreed or recomputed); `ArtifactUnavailableError` /
        `ArtifactInvalidError`."""
        if model_hash in task.checkpoints:
            return task.checkpoints[model_hash]
        cid = task.cids.get(model_hash)
        if cid is None:
            raise ArtifactUnavailableError(f"no CID is known for checkpoint {fmt(model_hash)}", "-")
        data = self.fetch(cid, model_hash, task.ctx.spec.limits.checkpoint, "checkpoint")
        task.checkpoints[model_hash] = data
        return data

    def base_weights(self, task: _Task, model_hash: bytes) -> dict[str, torch.Tensor]:
        """A global checkpoint's weights; also `CheckpointError` when they break the tensor rules."""
        from trainer.diloco import load_global_checkpoint

        data = self.checkpoint(task, model_hash)
        return load_global_checkpoint(data, max_bytes=task.ctx.spec.limits.checkpoint)[0]

    # ------------------------------------------------------------------ one submission
    def compare(
        self,
        task: _Task,
        rnd: RoundRecord,
        sub: SubmissionRecord,
        checked: Checked,
        missing: str,
        seconds: float,
    ) -> None:
        """Record the auditor's verdict on `sub` (UNAVAILABLE: `missing` names the CID) and flag what
        disagrees with the chain (the ballot's decision, or its appeal's when one was decided), and any
        non-finite or absurd values, whatever the chain decided."""
        verdict, reasons = checked.verdict, checked.reasons
        where = (task.record.id, rnd.number)
        decided = rnd.final_decision(sub.index)  # the ballot's, or its appeal's
        self.result.submissions.append(
            SubmissionCheck(*where, sub.index, sub.trainer, decided, verdict, reasons, seconds)
        )
        label = f"submission {sub.index} ({sub.trainer})"
        why = "; ".join(reasons[:5]) + (f" (+{len(reasons) - 5} more)" if len(reasons) > 5 else "")
        artifacts = f"update manifest {sub.update_cid}, bundle {sub.bundle_cid}"
        if checked.hostile:
            self.flag(
                Kind.HOSTILE_VALUES,
                *where,
                label,
                "finite values within the tensor rules",
                "; ".join(checked.hostile[:3]),
                sub.tx,
                f"the chain decided {decided.name}; {artifacts}",
            )
        if verdict == Verdict.UNAVAILABLE:
            if decided == Verdict.UNAVAILABLE:
                self.result.verified["unavailable_confirmed"] += 1
            else:
                self.flag(
                    Kind.UNVERIFIABLE,
                    *where,
                    label,
                    f"its artifacts on IPFS (the chain decided {decided.name})",
                    "missing",
                    missing or sub.tx,
                    why,
                )
        elif decided == Verdict.NONE:
            self.result.verified["undecided_rechecked"] += 1
        elif verdict != decided:
            detail = f"re-verification says {verdict.name}" + (f": {why}" if why else "")
            self.flag(Kind.VERDICT, *where, label, verdict, decided, sub.tx, f"{detail}; {artifacts}")
        else:
            self.result.verified["verdicts"] += 1

    def check(
        self, task: _Task, rnd: RoundRecord, sub: SubmissionRecord, base: dict[str, torch.Tensor]
    ) -> None:
        """Re-verify one submission through the validators' pipeline and compare."""
        assert rnd.seed is not None
        started = time.perf_counter()
        try:
            checked = verify(self.fetch, task.ctx, sub, rnd.seed, rnd.base, base)
            missing = ""
        except ArtifactUnavailableError as exc:
            checked, missing = Checked(Verdict.UNAVAILABLE, [str(exc)]), exc.cid
        self.result.verify_s += checked.verify_s
        self.compare(task, rnd, sub, checked, missing, time.perf_counter() - started)

    # ------------------------------------------------------------------ one round
    def aggregate(self, task: _Task, rnd: RoundRecord) -> None:
        """Recompute the round's next checkpoint from the accepted updates and compare."""
        from protocol.artifacts import unixfs_cid

        f = rnd.finalization
        if f is None:
            return
        accepted = [s for s in rnd.submissions if s.decision == Verdict.ACCEPT]
        agreed = rnd.agreed
        where = (task.record.id, rnd.number)
        record = AggregateCheck(*where, agreed[0] if agreed else None, None, [s.index for s in accepted], "")
        self.result.aggregates.append(record)
        subject = f"aggregate of the accepted updates {record.accepted}"
        try:
            result = aggregate_accepted(self.fetch, task.ctx.spec, self.checkpoint(task, rnd.base), accepted)
        except (ArtifactUnavailableError, ArtifactInvalidError, CheckpointError) as exc:
            record.status = "unverifiable"
            cid = exc.cid if isinstance(exc, ArtifactUnavailableError) else task.cids.get(rnd.base, "-")
            self.flag(Kind.UNVERIFIABLE, *where, subject, "its updates and base", "unusable", cid, str(exc))
            return
        digest = hashlib.sha256(result.checkpoint).digest()
        cid = unixfs_cid(result.checkpoint)
        record.recomputed, record.left_out = digest, result.left_out
        task.checkpoints[digest] = result.checkpoint
        task.cids.setdefault(digest, cid)
        self.agreement(task, rnd, record, digest, cid)
        self.votes(task, rnd, digest)

    def agreement(
        self, task: _Task, rnd: RoundRecord, record: AggregateCheck, digest: bytes, cid: str
    ) -> None:
        """Compare the recomputed next checkpoint (`digest`, `cid`) with the round's agreed one."""
        f = rnd.finalization
        assert f is not None
        agreed = rnd.agreed
        where = (task.record.id, rnd.number)
        subject = f"aggregate of the accepted updates {record.accepted}"
        if agreed is None:
            record.status = "no agreement"
            if rnd.submissions:
                self.flag(
                    Kind.NO_AGREEMENT, *where, "the next model", digest, "none", f.tx, self._why(task, rnd)
                )
            return
        agreed_hash, agreed_cid, _ = agreed
        task.cids.setdefault(agreed_hash, agreed_cid)
        if (digest, cid) == (agreed_hash, agreed_cid):
            record.status = "match"
            self.result.verified["aggregates"] += 1
            return
        record.status = "mismatch"
        if digest != agreed_hash:
            self.flag(
                Kind.AGGREGATE, *where, subject, digest, agreed_hash, agreed_cid, f"recomputed CID {cid}"
            )
        else:
            self.flag(
                Kind.AGGREGATE,
                *where,
                "CID of the finalised checkpoint",
                cid,
                agreed_cid,
                agreed_cid,
                "the hash matches but the CID does not locate those bytes",
            )

    def votes(self, task: _Task, rnd: RoundRecord, digest: bytes) -> None:
        """Flag every validator that revealed its verdicts and did not reveal a vote for `digest`, the
        recomputed next model (with its vote's transaction, or its commitment's, as the evidence)."""
        f = rnd.finalization
        assert f is not None
        for validator in sorted(rnd.reveals):
            vote = rnd.votes.get(validator)
            if vote is not None and vote[0] == digest:
                continue
            committed = rnd.vote_commits.get(validator)
            if vote is not None:
                actual, evidence = fmt(vote[0]), vote[2]
            elif committed is not None:
                actual, evidence = "a committed vote never revealed", committed[1]
            else:
                actual, evidence = "no vote", f.tx
            self.flag(
                Kind.MODEL_VOTE,
                task.record.id,
                rnd.number,
                f"model vote of {validator}",
                digest,
                actual,
                evidence,
                "a vote for another model than the aggregate of the accepted updates, or none, forfeits "
                "the validator's share",
            )

    @staticmethod
    def _why(task: _Task, rnd: RoundRecord) -> str:
        """Why a round's model vote agreed on nothing: who revealed, who voted what, what was needed."""
        votes = Counter(h for h, _, _ in rnd.votes.values())
        shown = ", ".join(f"{fmt(h)} x{n}" for h, n in votes.most_common()) or "no votes"
        need = max(task.record.param("quorum"), -(-2 * len(rnd.reveals) // 3))
        silent = sorted(set(rnd.reveals) - set(rnd.votes))
        return (
            f"{len(rnd.reveals)} of {len(rnd.expected_validators)} validators revealed; votes: {shown}; "
            f"agreement needs {need} votes for one hash (2/3 of the revealed, at least the quorum); "
            f"revealed but did not vote: {silent or 'none'}; the expected next model is the recomputed one"
        )

    def accuracy(self, task: _Task, model_hash: bytes) -> float | None:
        """Held-out accuracy of a global checkpoint (None when it cannot be had)."""
        if not self.measure_accuracy:
            return None
        from trainer.checkpoint import load_weights
        from trainer.derive import HELDOUT_DOMAIN
        from trainer.model import model_from_config
        from trainer.rollout import evaluate_accuracy
        from trainer.warmstart import problems

        ctx = task.ctx
        try:
            weights = self.base_weights(task, model_hash)
        except (ArtifactUnavailableError, ArtifactInvalidError, CheckpointError):
            return None
        if task.model is None:
            task.model = model_from_config(ctx.hf)
            task.heldout = problems(ctx.env, HELDOUT_DOMAIN, ctx.spec.heldout_size)
        load_weights(task.model, weights)
        assert task.heldout is not None
        return float(
            evaluate_accuracy(
                task.model, ctx.tokenizer, ctx.env, task.heldout, max_new_tokens=ctx.env.max_answer_len + 1
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
                    base = self.base_weights(task, rnd.base)
                except (ArtifactUnavailableError, ArtifactInvalidError, CheckpointError) as exc:
                    cid = (
                        exc.cid if isinstance(exc, ArtifactUnavailableError) else task.cids.get(rnd.base, "-")
                    )
                    if isinstance(exc, AbsurdValueError):
                        self.flag(
                            Kind.HOSTILE_VALUES,
                            *(record.id, number),
                            "the round's base",
                            "finite values within the tensor rules",
                            str(exc),
                            cid,
                            "validators agreed on this checkpoint",
                        )
                    for sub in chosen:
                        unusable = Checked(Verdict.UNAVAILABLE, [f"the round's base: {exc}"])
                        self.compare(task, rnd, sub, unusable, cid, 0.0)
                else:
                    for sub in chosen:
                        self.check(task, rnd, sub, base)
            self.aggregate(task, rnd)
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
