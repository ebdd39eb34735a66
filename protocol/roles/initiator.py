"""The task initiator: turn a task file into a task spec and an initial checkpoint on IPFS and a funded task
on chain; then keep the task moving (seeds, finalisation, every settlement) and claim the refund.

A task file (YAML) holds the spec's parts (environment, model, inner and outer loop, thresholds, sample
sizes, limits, held-out size), how to make the initial model (a supervised warm start, or a checkpoint
file), and the on-chain terms (rounds, reward, stakes, quorum, phase durations, slashing). Token amounts
are in tokens, converted with the deployment token's own `decimals()`. `create_task` is idempotent: the
journal remembers which task a task file made, and an interrupted creation is reconciled with the
TaskCreated events.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from protocol.artifacts import upload_bytes, upload_json
from protocol.baits import ROTATION, BaitPlan, ensure_plan
from protocol.contracts import TaskParams, TaskStatus
from protocol.deterrence import BPS, Deterrence, Terms, deterrence, laziness_refusal
from protocol.display import when
from protocol.errors import ConfigError
from protocol.ipfs import canonical_json
from protocol.journal import Journal
from protocol.network import Session, yaml_error
from protocol.roles.base import Output, RoleNode
from protocol.roles.honeypots import HoneypotKeeper, HoneypotTerms
from protocol.roles.settle import Keeper
from protocol.wire import EnvChoice, PretrainedSpec, SizeLimits, TaskSpec, bundle_size, bytes_to_hex
from trainer.config import (
    InnerConfig,
    LoraConfig,
    ModelConfig,
    OuterConfig,
    VerifyThresholds,
    WarmStartConfig,
    outside_calibration,
)

__all__ = [
    "ChainTerms",
    "InitialModel",
    "InitiatorNode",
    "TaskFile",
    "create_task",
    "default_limits",
    "honeypot_plan",
    "honeypot_refusal",
    "honeypot_terms",
    "load_task_file",
    "make_initial_checkpoint",
    "pretrained_parts",
    "upload_pretrained",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ChainTerms(_Strict):
    """The task's on-chain terms."""

    num_rounds: int = Field(ge=1, le=100_000)
    """Rounds of training."""
    reward_per_round: Decimal = Field(gt=0)
    """Tokens paid per round (trainers and validators)."""
    validator_share_bps: int = Field(default=2_000, ge=0, le=10_000)
    """Validators' share of a round's budget (basis points)."""
    min_trainer_stake: Decimal = Field(default=Decimal(10), ge=0)
    """Tokens a trainer must allocate to the task (what a slash takes a fraction of)."""
    min_validator_stake: Decimal = Field(default=Decimal(10), ge=0)
    """Tokens a validator must allocate to the task."""
    quorum: int = Field(default=2, ge=1, le=255)
    """Minimum revealed verdicts for any decision (with committees, revealed draws, up to
    `committee_draws`: one validator's draws must not reach it, or it decides alone when the others are
    late)."""
    max_trainers: int = Field(default=16, ge=1, le=128)
    """Most trainers."""
    max_validators: int = Field(default=16, ge=1, le=255)
    """Most validators."""
    submit_duration: int = Field(default=600, ge=1)
    """Seconds of a round's submit phase (it closes early when every trainer submitted)."""
    commit_duration: int = Field(default=300, ge=1)
    """Seconds from the seed to the commit deadline (verification happens in it)."""
    reveal_duration: int = Field(default=120, ge=1)
    """Seconds of the reveal phase."""
    vote_duration: int = Field(default=120, ge=2)
    """Seconds of the model vote, at least 2: its commit and its reveal get half each (TaskRules)."""
    seed_delay: int = Field(default=2, ge=1, le=256)
    """Blocks between the close of submissions and the seed block."""
    trainer_slash_bps: int = Field(default=1_000, ge=0, le=10_000)
    """Share of its allocation a rejected or unavailable trainer loses."""
    validator_slash_bps: int = Field(default=500, ge=0, le=10_000)
    """Share of its allocation a validator that does not reveal loses."""
    max_empty_rounds: int = Field(default=3, ge=0)
    """Consecutive rounds without accepted work that cancel the task (0: never)."""
    no_show_slash_bps: int = Field(default=500, ge=0, le=10_000)
    """Share of its allocation a trainer loses for each round it holds a seat in and does not submit to."""
    max_no_shows: int = Field(default=2, ge=0, le=255)
    """Rounds missed in a row after which a trainer's seat is freed for another (0: never)."""
    committee_draws: int = Field(default=0, ge=0, le=64)
    """Stake-weighted committee draws per submission (0: every validator judges every submission; k > 0:
    a validator judges ~N x k / V submissions; at least `quorum`; docs/protocol.md, 'Committees')."""
    start_delay: int = Field(default=60, ge=0, le=30 * 24 * 3600)
    """Seconds from creation to round 0 (joins before it count for round 0)."""

    @model_validator(mode="after")
    def _committees(self) -> ChainTerms:
        if self.committee_draws and self.quorum > self.committee_draws:
            raise ValueError(f"quorum ({self.quorum}) cannot exceed committee_draws ({self.committee_draws})")
        if self.committee_draws and self.min_validator_stake == 0:
            raise ValueError(
                "committee_draws needs a nonzero min_validator_stake (the unit of a validator's weight)"
            )
        return self


class InitialModel(_Strict):
    """Where round 0's checkpoint comes from: a supervised warm start, a file, or a pretrained model."""

    warmstart: WarmStartConfig | None = None
    """Warm start settings (the default when nothing else is given)."""
    checkpoint: Path | None = None
    """A canonical checkpoint file (`model/<name>` tensors, or a policy's plain weights)."""
    pretrained: Path | None = None
    """A local Hugging Face causal LM directory (`trainer.pretrained`, docs/models.md): its config and
    tokenizer define the policy (pinned in the spec), its safetensors weights are round 0's checkpoint."""

    @model_validator(mode="after")
    def _one(self) -> InitialModel:
        given = [n for n in ("warmstart", "checkpoint", "pretrained") if getattr(self, n) is not None]
        if len(given) > 1:
            raise ValueError(f"give one of warmstart, checkpoint and pretrained, not {' and '.join(given)}")
        return self


class TaskFile(_Strict):
    """A task file: the spec's parts, the initial model and the on-chain terms."""

    description: str = ""
    """Free text."""
    env: EnvChoice
    """Environment and parameters (and optionally its pin; the spec gets the installed one)."""
    model: ModelConfig = ModelConfig()
    """Policy architecture."""
    lora: LoraConfig | None = None
    """Train LoRA adapters on the frozen policy (`trainer.lora`, docs/models.md); None: every weight."""
    inner: InnerConfig = InnerConfig()
    """Trainer's round."""
    outer: OuterConfig = OuterConfig(clip=1.0)
    """Aggregation (by default each accepted update clipped to the median norm: docs/protocol.md)."""
    verify: VerifyThresholds = VerifyThresholds()
    """Validators' thresholds."""
    sample_rollouts: int | Literal["all"] = Field(default="all")
    """Rollouts replayed per submission: `all` (the default: a fabricated or altered rollout is always
    caught) or a number (at most 65535)."""
    sample_steps: int = Field(default=1, ge=1, le=2**16 - 1)
    """Steps re-executed per submission (P(one altered step is caught) = sample_steps / H)."""
    heldout_size: int = Field(default=500, ge=1, le=100_000)
    """Held-out problems for accuracy reports."""
    limits: SizeLimits | None = None
    """Download limits (default: computed from the model)."""
    initial: InitialModel = InitialModel()
    """How to make round 0's checkpoint."""
    chain: ChainTerms
    """On-chain terms."""
    honeypots: HoneypotTerms = HoneypotTerms()
    """The initiator's honeypots (`protocol.roles.honeypots`): off unless a rate, the bait(s) and the bait
    plan's file are given. Private to the initiator (not in the spec)."""

    @field_validator("sample_rollouts", mode="before")
    @classmethod
    def _sample_rollouts(cls, value: object) -> object:
        if value == "all" or (
            isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 2**16 - 1
        ):
            return value
        raise ValueError(f"must be 'all' or a number of rollouts in 1..65535, got {value!r}")

    @property
    def replayed_rollouts(self) -> int:
        """The number of rollouts the seed picks for replay (`all`: every rollout of a bundle)."""
        if self.sample_rollouts != "all":
            return int(self.sample_rollouts)
        n = bundle_size(self.inner)
        if n > 2**16 - 1:
            raise ConfigError(f"sample_rollouts: all = {n} rollouts is over the on-chain limit of 65535")
        return n

    def deterrence(self) -> Deterrence:
        """The deterrence arithmetic of this task's terms (`protocol.deterrence`)."""
        return deterrence(
            Terms(
                steps=self.inner.steps,
                sample_steps=self.sample_steps,
                rollouts=bundle_size(self.inner),
                sample_rollouts=self.replayed_rollouts,
                reward_per_round=self.chain.reward_per_round,
                validator_share_bps=self.chain.validator_share_bps,
                min_trainer_stake=self.chain.min_trainer_stake,
                trainer_slash_bps=self.chain.trainer_slash_bps,
            )
        )

    @field_validator("initial", mode="before")
    @classmethod
    def _none_is_default(cls, value: object) -> object:
        return {} if value is None else value

    @model_validator(mode="after")
    def _calibrated(self) -> TaskFile:
        problem = outside_calibration(self.inner, self.verify)
        if problem:
            raise ValueError(problem)
        if self.initial.pretrained is not None and "model" in self.model_fields_set:
            raise ValueError(
                "leave model out with initial.pretrained: the directory's config.json defines the policy"
            )
        return self


def with_committee_draws(task: TaskFile, draws: int) -> TaskFile:
    """`task` with `chain.committee_draws` set to `draws` (checked like the file's own value)."""
    try:
        terms = ChainTerms.model_validate({**task.chain.model_dump(), "committee_draws": draws})
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "committee_draws"
        raise ConfigError(f"--committee-draws: {where}: {err['msg']}") from None
    return task.model_copy(update={"chain": terms})


def load_task_file(path: Path) -> TaskFile:
    """Parse a task file; a malformed one raises `ConfigError` naming the first bad field."""
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read task file {path}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"task file {path} is not valid YAML: {yaml_error(exc)}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"task file {path} must be a mapping with env, chain, ... at the top level")
    try:
        task = TaskFile.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "<root>"
        more = f" (and {exc.error_count() - 1} more problems)" if exc.error_count() > 1 else ""
        raise ConfigError(f"task file {path}: {where}: {err['msg']}{more}") from None
    initial = task.initial
    if initial.checkpoint is not None and not initial.checkpoint.is_absolute():
        task = task.model_copy(
            update={"initial": InitialModel(checkpoint=Path(path).parent / initial.checkpoint)}
        )
    if initial.pretrained is not None and not initial.pretrained.is_absolute():
        task = task.model_copy(
            update={"initial": InitialModel(pretrained=Path(path).parent / initial.pretrained)}
        )
    return task


def honeypot_terms(
    task: TaskFile,
    *,
    rate: float | None = None,
    trainer: str | None = None,
    secret: Path | None = None,
) -> HoneypotTerms:
    """The task file's honeypot terms with the command line's `rate`, `trainer` (one bait, replacing the
    pool) and `secret` over them; `ConfigError` when the result is invalid, or has a rate without a bait
    or without the bait plan's file."""
    values = task.honeypots.model_dump()
    if rate is not None:
        values["rate"] = rate
    if trainer is not None:
        values["trainer"], values["trainers"] = trainer, ()
    if secret is not None:
        values["secret"] = secret
    try:
        terms = HoneypotTerms.model_validate(values)
    except ValidationError as exc:
        err = exc.errors()[0]
        raise ConfigError(f"honeypots: {'.'.join(str(p) for p in err['loc'])}: {err['msg']}") from None
    if terms.rate > 0 and not terms.baits:
        raise ConfigError(
            "honeypots: a rate needs the bait's address (honeypots.trainers, honeypots.trainer or "
            "--honeypot-trainer)"
        )
    if terms.rate > 0 and terms.secret is None:
        raise ConfigError(
            "honeypots: a rate needs the bait plan's file, shared with the bait trainers "
            "(honeypots.secret or --honeypot-secret PATH; created with mode 0600 when missing)"
        )
    return terms


def honeypot_refusal(
    task: TaskFile,
    terms: HoneypotTerms,
    *,
    lazy_slash_bps: int,
    settlement_grace: int,
    appeal_span: int = 0,
) -> str:
    """One line why a deployment (its `lazy_slash_bps`, `settlement_grace` and, with an AppealCourt,
    `appeal_span` = its appeal window + an appeal's commit and reveal durations) cannot run `task`'s
    honeypots usefully, empty when it can or when there are none: a grace of 0 leaves no window to reveal
    and slash once the task has ended (the registry refuses the commitments: `NoSettlementGrace`); a grace
    not above the appeal span lets the last round's honeypot expire before the court settles its REJECT
    (`slashLazy` waits for it: a safe failure, nobody is slashed, but the last honeypots deter nothing);
    and terms under which laziness still pays (`protocol.deterrence.laziness_refusal`) for the validator
    that skips one expensive check class: a honeypot's defect rotates over `protocol.baits.ROTATION`, one
    defect per class, so it is caught on 1 / len(ROTATION) of the honeypots (catch), and terms that deter
    it deter the lazy and the semi-lazy validator, caught on every one."""
    if not terms.enabled:
        return ""
    if settlement_grace == 0:
        return (
            "honeypots need a deployment with a settlement grace > 0: this one's is 0, so no honeypot could "
            "be revealed or slashed once the task has ended (its last round's, or a bait's deferred "
            "reveals), and the HoneypotRegistry refuses every commitment (NoSettlementGrace); deploy with a "
            "grace (`deploy_protocol(settlement_grace=...)`, by default the unbonding period) or plant no "
            "honeypots"
        )
    if settlement_grace <= appeal_span:
        return (
            f"honeypots need a settlement grace longer than the AppealCourt's window plus an appeal's commit "
            f"and reveal ({appeal_span} s): this deployment's is {settlement_grace} s, so the last round's "
            "honeypot would expire before the court settles its REJECT (slashLazy waits for that) and a lazy "
            "validator would go unslashed; deploy with a longer grace or plant no honeypots"
        )
    c = task.chain
    return laziness_refusal(
        cut=float(c.reward_per_round * c.validator_share_bps / BPS),
        draws=c.committee_draws,
        honeypot_rate=terms.rate,
        min_validator_stake=float(c.min_validator_stake),
        lazy_slash_bps=lazy_slash_bps,
        submissions=c.max_trainers,
        num_rounds=c.num_rounds,
        catch=1 / len(ROTATION),
    )


def honeypot_plan(terms: HoneypotTerms) -> BaitPlan | None:
    """The bait plan of enabled terms (`protocol.baits.ensure_plan`: created when its file is missing),
    None when the initiator plants no honeypots."""
    if not terms.enabled:
        return None
    assert terms.secret is not None
    return ensure_plan(terms.secret, terms.rate, terms.baits)


def pretrained_parts(directory: Path) -> tuple[dict[str, bytes], Any, Any]:
    """(the files of `trainer.pretrained.MODEL_FILES`, config, tokenizer) of a pretrained directory, loaded
    the way every node loads them from IPFS (`ConfigError` when they do not load)."""
    from trainer.errors import TrustrlError
    from trainer.pretrained import load_pretrained_files, read_pretrained_files

    try:
        files = read_pretrained_files(directory)
        config, tokenizer = load_pretrained_files(files)
    except TrustrlError as exc:
        raise ConfigError(f"pretrained model {directory}: {exc}") from None
    return files, config, tokenizer


def make_initial_checkpoint(task: TaskFile, out: Output) -> bytes:
    """Round 0's checkpoint bytes (canonical `model/<name>` tensors), by warm start or from the file; with
    `task.lora`, the policy's weights plus round 0's adapters (`trainer.lora.adapt`)."""
    from trainer.checkpoint import load_weights, model_weights
    from trainer.diloco import global_checkpoint_bytes
    from trainer.errors import TrustrlError
    from trainer.lora import adapt

    weights = _initial_weights(task, out)
    if task.lora is None:
        return global_checkpoint_bytes(weights)
    model = _plain_policy(task)
    try:
        load_weights(model, weights)
        adapt(model, task.lora)
    except TrustrlError as exc:
        raise ConfigError(f"lora: {exc}") from None
    return global_checkpoint_bytes(model_weights(model))


def _plain_policy(task: TaskFile) -> Any:
    """The task's policy without adapters, freshly initialised (its config and tokenizer, as every node's)."""
    from trainer.envs import get_env
    from trainer.model import build_model, model_from_config
    from trainer.tokenizer import build_tokenizer

    if task.initial.pretrained is not None:
        return model_from_config(pretrained_parts(task.initial.pretrained)[1])
    return build_model(task.model, build_tokenizer(get_env(task.env.name, task.env.params).alphabet))


def _initial_weights(task: TaskFile, out: Output) -> dict[str, Any]:
    """The policy's round-0 weights, by warm start, from the file or the pretrained directory."""
    from trainer.checkpoint import load_tensors, load_weights, model_weights
    from trainer.diloco import load_global_checkpoint
    from trainer.envs import get_env
    from trainer.errors import TrustrlError
    from trainer.model import build_model
    from trainer.tokenizer import build_tokenizer
    from trainer.warmstart import warm_start

    env = get_env(task.env.name, task.env.params)
    if task.initial.pretrained is not None:
        from trainer.pretrained import pretrained_weights

        config = pretrained_parts(task.initial.pretrained)[1]
        try:
            return pretrained_weights(task.initial.pretrained, config)
        except TrustrlError as exc:
            raise ConfigError(f"pretrained model {task.initial.pretrained}: {exc}") from None
    if task.initial.checkpoint is None:
        cfg = task.initial.warmstart or WarmStartConfig()
        what = f"warm start (to accuracy {cfg.target_accuracy}, at most {cfg.max_steps} steps)"
        with out.progress(what, None) as step:
            result = warm_start(
                env, task.model, cfg, log=lambda line: step.note(line.removeprefix("warm start "))
            )
        out.log(
            f"warm start: {result.steps} steps, accuracy {result.eval_accuracy:.3f}, {result.wall_s:.1f} s"
        )
        return model_weights(result.model)
    path = task.initial.checkpoint
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read the initial checkpoint {path}: {exc.strerror or exc}") from None
    try:
        tensors = load_tensors(data)
        weights = load_global_checkpoint(data)[0] if any(k.startswith("model/") for k in tensors) else tensors
        model = build_model(task.model, build_tokenizer(env.alphabet))
        load_weights(model, weights)
    except TrustrlError as exc:
        raise ConfigError(f"initial checkpoint {path} does not fit the task's model: {exc}") from None
    return model_weights(model)


def default_limits(task: TaskFile, checkpoint: bytes) -> SizeLimits:
    """Download limits that fit this task's artifacts: exact sizes for states and updates (they depend only
    on the model), a bound for bundles from the rollout counts and lengths."""
    import torch

    from trainer.diloco import encode_update
    from trainer.lora import inject
    from trainer.state import fresh_optimizer, state_bytes, trained_state_dict

    model = _plain_policy(task)
    if task.lora is not None:
        inject(model, task.lora)
    positions = int(model.config.max_position_embeddings)
    state = len(state_bytes(model, fresh_optimizer(model, task.inner.grpo)))
    zeros = {k: torch.zeros_like(v) for k, v in trained_state_dict(model).items()}
    update = len(encode_update(zeros, task.inner.compression))
    inner = task.inner
    rollouts = bundle_size(inner)
    proofs = math.ceil(inner.max_new_tokens / 32)
    per_rollout = 400 + 11 * positions + 520 * proofs
    margin = 1 << 16
    return SizeLimits(
        checkpoint=2 * len(checkpoint) + margin,
        state=state + margin,
        update=update + margin,
        bundle=rollouts * per_rollout + margin,
    )


def upload_pretrained(session: Session, directory: Path) -> PretrainedSpec:
    """Put a pretrained directory's config and tokenizer files on IPFS and pin them (their weights travel
    as the initial checkpoint)."""
    files, config, _ = pretrained_parts(directory)
    refs = {name: upload_bytes(session.store, data) for name, data in files.items()}
    return PretrainedSpec(
        arch=config.model_type,
        config=refs["config.json"],
        tokenizer=refs["tokenizer.json"],
        tokenizer_config=refs["tokenizer_config.json"],
    )


def _params(
    task: TaskFile,
    units: Callable[[Decimal], int],
    spec_hash: bytes,
    spec_cid: str,
    checkpoint_sha: bytes,
    checkpoint_cid: str,
    start_time: int,
) -> TaskParams:
    terms = task.chain
    try:
        return TaskParams(
            spec_hash=spec_hash,
            spec_cid=spec_cid,
            initial_model_hash=checkpoint_sha,
            initial_model_cid=checkpoint_cid,
            num_rounds=terms.num_rounds,
            reward_per_round=units(terms.reward_per_round),
            validator_share_bps=terms.validator_share_bps,
            min_trainer_stake=units(terms.min_trainer_stake),
            min_validator_stake=units(terms.min_validator_stake),
            quorum=terms.quorum,
            max_trainers=terms.max_trainers,
            max_validators=terms.max_validators,
            submit_duration=terms.submit_duration,
            commit_duration=terms.commit_duration,
            reveal_duration=terms.reveal_duration,
            vote_duration=terms.vote_duration,
            seed_delay=terms.seed_delay,
            sample_rollouts=task.replayed_rollouts,
            sample_steps=task.sample_steps,
            trainer_slash_bps=terms.trainer_slash_bps,
            validator_slash_bps=terms.validator_slash_bps,
            max_empty_rounds=terms.max_empty_rounds,
            start_time=start_time,
            no_show_slash_bps=terms.no_show_slash_bps,
            max_no_shows=terms.max_no_shows,
            committee_draws=terms.committee_draws,
        )
    except ValidationError as exc:
        err = exc.errors()[0]
        raise ConfigError(f"task terms: {'.'.join(str(p) for p in err['loc'])}: {err['msg']}") from None


def create_task(session: Session, task: TaskFile, out: Output) -> int:
    """Make the initial checkpoint, upload it and the spec, approve and create the funded task; returns its
    id. Run again with the same task file, it returns the task it created before."""
    proto = session.proto
    key = hashlib.sha256(canonical_json(task)).hexdigest()[:32]
    journal = Journal(session.chain_dir() / f"initiator-{session.address}.jsonl")
    entry = journal.entry("create", key)
    if entry is not None and entry.is_done:
        out.log(f"this task file already created task {entry.data['task_id']}")
        return int(entry.data["task_id"])
    if entry is not None and "spec_hash" in entry.data:
        for event in session.client.get_logs(
            proto.escrow, "TaskCreated", session.config.deployment.block, initiator=session.address
        ):
            if bytes(event["args"]["params"]["specHash"]) == bytes.fromhex(str(entry.data["spec_hash"])[2:]):
                task_id = int(event["args"]["taskId"])
                journal.done("create", key, task_id=task_id, reconciled=True)
                out.log(f"task {task_id} was created before the interruption")
                return task_id
    check = task.deterrence()
    for line in check.lines():
        out.log(line)
    if not check.ok:
        raise ConfigError(check.refusal())
    tokens = session.tokens
    deposit = task.chain.num_rounds * session.units(task.chain.reward_per_round)
    balance = proto.token_balance()
    if balance < deposit:
        raise ConfigError(
            f"{session.address} holds {tokens(balance)} tokens; the task escrows {tokens(deposit)} "
            f"({task.chain.num_rounds} rounds x {task.chain.reward_per_round})"
        )
    checkpoint = make_initial_checkpoint(task, out)
    with out.progress("uploading the initial checkpoint and the task spec", 2) as advance:
        checkpoint_ref = upload_bytes(session.store, checkpoint)
        pretrained = (
            None if task.initial.pretrained is None else upload_pretrained(session, task.initial.pretrained)
        )
        advance(1)
        spec = TaskSpec(
            description=task.description,
            env=task.env.pinned(),
            model=task.model,
            inner=task.inner,
            outer=task.outer,
            initial_checkpoint=checkpoint_ref,
            verify=task.verify,
            sample_rollouts=task.replayed_rollouts,
            sample_steps=task.sample_steps,
            limits=task.limits or default_limits(task, checkpoint),
            heldout_size=task.heldout_size,
            pretrained=pretrained,
            lora=task.lora,
        )
        spec_ref = upload_json(session.store, spec)
        advance(1)
    out.log(
        f"task spec {spec_ref.cid}, initial checkpoint {checkpoint_ref.cid} ({checkpoint_ref.size} bytes)"
    )
    start_time = session.client.timestamp() + task.chain.start_delay + 3
    params = _params(
        task,
        session.units,
        spec_ref.digest,
        spec_ref.cid,
        checkpoint_ref.digest,
        checkpoint_ref.cid,
        start_time,
    )
    allowance = int(
        session.client.call(proto.token.functions.allowance(session.address, proto.escrow.address))
    )
    if allowance < deposit:
        proto.approve(proto.escrow.address, deposit)
    journal.intent("create", key, spec_hash=bytes_to_hex(spec_ref.digest), spec_cid=spec_ref.cid)
    task_id = proto.create_task(params)
    journal.done("create", key, task_id=task_id)
    out.log(
        f"created task {task_id}: rounds 0 to {task.chain.num_rounds - 1}, {tokens(deposit)} tokens escrowed "
        f"({deposit} base units), round 0 opens {when(start_time, session.client.timestamp())}"
    )
    return task_id


class InitiatorNode(RoleNode):
    """Keeps a task moving until it ends: draws seeds, finalises rounds, settles everyone, claims refunds;
    with `honeypots` enabled, also commits, reveals and slashes for its honeypots (first, each step)."""

    role_name = "initiator"

    def __init__(
        self,
        session: Session,
        task_id: int,
        *,
        out: Output | None = None,
        wait: bool = True,
        honeypots: BaitPlan | None = None,
    ) -> None:
        super().__init__(session, task_id, out=out, wait=wait)
        self.keeper = Keeper(self.view, self.journal, self.out, settle_all=True)
        self.honeypots = HoneypotKeeper(self.view, self.journal, self.out, honeypots)

    def pending(self) -> list[str]:
        """What is left of the keeper's work (any participant can do it, so nothing is lost; it only waits),
        and the refund to claim."""
        lines = super().pending()
        view = self.view
        if not view.exists():
            return lines
        state, config, now = view.state(), view.config, view.now()
        if state.status == TaskStatus.ACTIVE:
            lines.append(
                f"task {self.task_id} is in round {state.round} (rounds 0 to {config.num_rounds - 1}); this "
                "node draws seeds, finalises rounds and settles everyone. The participants' keepers do the "
                "same, so nothing is lost, but restart it to keep the task moving "
                f"(round {state.round}'s submissions close {when(state.submit_end, now)})"
            )
        credit = view.proto.credit_of()
        if credit:
            lines.append(
                f"{self.session.tokens(credit)} tokens are credited and not claimed (no deadline: "
                "`trustrl claim`)"
            )
        return lines

    def step(self) -> bool:
        """Do the next due upkeep; finished once the task ended, everything is settled and claimed."""
        if not self.task_ready():
            return False
        did = self.honeypots.step() or self.upkeep()
        if not did:
            state = self.view.state()
            if state.status != TaskStatus.ACTIVE and not self.keeper.waiting and not self.honeypots.waiting:
                self.out.status(f"task {self.task_id} is {state.status.name.lower()}; all settled")
                self._finished = True
            else:
                self.out.status(f"task {self.task_id}: round {state.round}")
        return did
