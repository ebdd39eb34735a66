"""Wire models: what trustrl's roles put on IPFS and what the chain commits to.

Every model is pydantic v2, frozen, `extra="forbid"`, versioned (`version: Literal[1]`), and travels as
canonical JSON (`protocol.ipfs.canonical_json`: keys sorted, no whitespace, UTF-8); its content hash is
the sha256 of those bytes. Byte strings travel as lower-case `0x`-hex, addresses as checksum strings.

    TaskSpec           the task: environment, model, GRPO/DiLoCo hyper-parameters, initial checkpoint,
                       verification thresholds, sample sizes, artifact size limits, held-out size
    RolloutBundle      one trainer's rollouts of one round (every step), signed by the trainer (EIP-191)
    UpdateManifest     the trainer's submission: bundle + pseudo-gradient refs and the CIDs of ALL its
                       training states theta_0..theta_H (computed without storing them)
    ValidationReport   one validator's verdicts of a round, with reasons and statistics
    AggregateManifest  how a validator computed the next global checkpoint

On chain (`submitWork`): `bundleHash`/`bundleCid` are the RolloutBundle's, `updateHash`/`updateCid` the
UpdateManifest's, `proofRoot` the Merkle root over the rollout leaves, `stateRoot` the Merkle root over
the states' sha256 (protocol.merkle), `workUnits` the number of rollouts in the bundle (`bundle_size`: the
same for every complete submission, so a model that never stops cannot inflate its pay or its weight).

The seed of a round picks, per submission, the rollouts to replay and the steps to re-execute with
`pick_indices` (one function for trainers and validators; docs/network.md states it exactly).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from typing import Annotated, Any, ClassVar, Literal

from eth_abi.abi import encode as abi_encode
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
    model_validator,
)

from protocol.errors import WireFormatError
from trainer.config import (
    MAX_MODEL_FILE_BYTES,
    InnerConfig,
    LoraConfig,
    ModelConfig,
    OuterConfig,
    VerifyThresholds,
    outside_calibration,
    rollout_step,
)

__all__ = [
    "MAX_SPEC_BYTES",
    "PICK_ROLLOUTS_DOMAIN",
    "PICK_STEPS_DOMAIN",
    "WIRE_VERSION",
    "AcceptedUpdate",
    "AggregateManifest",
    "ArtifactRef",
    "EnvChoice",
    "EnvSpec",
    "PretrainedSpec",
    "RolloutBundle",
    "RolloutRecord",
    "SizeLimits",
    "SubmissionVerdict",
    "TaskSpec",
    "UpdateManifest",
    "ValidationReport",
    "bundle_size",
    "bytes_to_hex",
    "check_env",
    "hex_to_bytes",
    "pick_indices",
    "picked_steps",
    "required_states",
    "sampled_rollouts",
]

WIRE_VERSION = 1
MAX_SPEC_BYTES = 1 << 20
"""A task spec is fetched before any limit is known: this bounds it."""

_HEX32 = re.compile(r"^0x[0-9a-f]{64}$")
_HEX = re.compile(r"^0x(?:[0-9a-f]{2})*$")
_UINT32 = 2**32 - 1


def _hex32(value: str) -> str:
    if not isinstance(value, str) or not _HEX32.match(value):
        raise ValueError("must be 0x followed by 64 lower-case hex digits")
    return value


def _hexbytes(value: str) -> str:
    if not isinstance(value, str) or not _HEX.match(value):
        raise ValueError("must be 0x followed by an even number of lower-case hex digits")
    return value


def _address(value: str) -> str:
    if not isinstance(value, str) or not re.match(r"^0x[0-9a-fA-F]{40}$", value):
        raise ValueError("must be an address: 0x followed by 40 hex digits")
    return str(to_checksum_address(value))


def _cid(value: str) -> str:
    from protocol.ipfs import parse_cid

    try:
        parse_cid(value)
    except ValueError as exc:  # ArtifactError is a ValueError
        raise ValueError(str(exc)) from None
    return value


Hex32 = Annotated[str, AfterValidator(_hex32)]
"""A 32-byte value as 0x + 64 lower-case hex digits."""
HexBytes = Annotated[str, AfterValidator(_hexbytes)]
"""Bytes as 0x + lower-case hex."""
Address = Annotated[str, AfterValidator(_address)]
"""An Ethereum address, normalised to its checksum form."""
Cid = Annotated[str, AfterValidator(_cid)]
"""An IPFS CID string."""


def bytes_to_hex(data: bytes) -> str:
    """0x + lower-case hex of `data`."""
    return "0x" + bytes(data).hex()


def hex_to_bytes(text: str) -> bytes:
    """The bytes of a 0x-hex string (wire models have validated it already)."""
    try:
        return bytes.fromhex(text[2:] if text.startswith(("0x", "0X")) else text)
    except ValueError:
        raise WireFormatError(f"not hex: {text[:80]!r}") from None


class _Wire(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ArtifactRef(_Wire):
    """Where an artifact lives and what it is: its CID (how to fetch it), the sha256 of its bytes (what
    it must be) and its size in bytes."""

    cid: Cid
    """CIDv1 of the content (raw leaves, 256 KiB chunks)."""
    sha256: Hex32
    """sha256 of the content."""
    size: int = Field(ge=0)
    """Content size in bytes."""

    @property
    def digest(self) -> bytes:
        """The sha256 as bytes."""
        return hex_to_bytes(self.sha256)


class _EnvRef(_Wire):
    """An environment's name, parameters and pin (package, version, code_hash: `trainer.envs.env_pin`)."""

    require_pin: ClassVar[bool] = True

    name: str = Field(min_length=1, max_length=200)
    """Environment name (`addition`), an entry point of `trustrl.envs`, or a module path `pkg.mod:Class`."""
    params: dict[str, Any] = Field(default_factory=dict)
    """Its parameters, e.g. `{"digits": 2}`."""
    package: str | None = Field(default=None, min_length=1, max_length=200)
    """The distribution that provides it ("-": none)."""
    version: str | None = Field(default=None, min_length=1, max_length=100)
    """That distribution's version ("-": none)."""
    code_hash: Hex32 | None = None
    """sha256 of its code (`trainer.envs.registry.code_hash`)."""

    @model_serializer(mode="wrap")
    def _no_empty_pin(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        return {k: v for k, v in data.items() if v is not None or k not in _PIN}

    @model_validator(mode="after")
    def _known(self) -> _EnvRef:
        check_env(self, require_pin=self.require_pin)
        return self

    def pinned(self) -> EnvSpec:
        """This environment with the installed environment's pin (what a new task spec records)."""
        from trainer.envs import env_pin

        pin = env_pin(self.name)
        return EnvSpec(
            name=self.name,
            params=self.params,
            package=pin.package,
            version=pin.version,
            code_hash=pin.code_hash,
        )

    def environment(self) -> Any:
        """The `trainer.envs.Environment` this names (checked by `check_env` when it was parsed)."""
        from trainer.envs import get_env

        return get_env(self.name, self.params)


class EnvSpec(_EnvRef):
    """A task spec's environment: its name, parameters and pin (docs/environments.md).

    A spec whose pin differs from the installed environment does not parse (`check_env`), so trainers,
    validators and the auditor refuse it alike, with one line. A spec without a pin is accepted for the
    environments of before pins (`trainer.envs.registry.LEGACY_UNPINNED`) only.
    """


class EnvChoice(_EnvRef):
    """A task file's environment: the pin is optional (checked when given); the initiator adds the installed
    one (`pinned`)."""

    require_pin: ClassVar[bool] = False


_PIN = ("package", "version", "code_hash")


def check_env(spec: _EnvRef, *, require_pin: bool = True) -> None:
    """Refuse (`ValueError`, one line) an environment that is not installed, has bad parameters, is not
    pinned (when `require_pin`, but for the legacy built-ins) or whose pin differs from what is installed.
    Every spec and task file passes here when it is parsed: trainers, validators, the auditor, the
    initiator."""
    from trainer.envs import env_pin, get_env
    from trainer.envs.registry import LEGACY_UNPINNED
    from trainer.errors import TrustrlError

    given = [getattr(spec, k) for k in _PIN]
    try:
        get_env(spec.name, spec.params)
        if all(v is None for v in given):
            if spec.name in LEGACY_UNPINNED or not require_pin:
                return
            raise ValueError(
                f"environment {spec.name!r} is not pinned: give package, version and code_hash "
                "(EnvSpec.pinned(), docs/environments.md)"
            )
        if any(v is None for v in given):
            raise ValueError(
                f"environment {spec.name!r}: give all of package, version and code_hash, or none"
            )
        pin = env_pin(spec.name)
    except TrustrlError as exc:
        raise ValueError(str(exc)) from None
    if (pin.package, pin.version, pin.code_hash) != tuple(given):
        raise ValueError(
            f"environment {spec.name!r} does not match the installed one: package {spec.package} "
            f"version {spec.version} code_hash {spec.code_hash} expected, installed package {pin.package} "
            f"version {pin.version} code_hash {pin.code_hash}"
        )


class SizeLimits(_Wire):
    """The largest artifact of each kind a participant downloads (every fetch is bounded)."""

    checkpoint: int = Field(ge=1, le=1 << 40)
    """A global checkpoint (weights [+ outer momentum])."""
    state: int = Field(ge=1, le=1 << 40)
    """A training state (weights + AdamW state)."""
    update: int = Field(ge=1, le=1 << 40)
    """A pseudo-gradient."""
    bundle: int = Field(ge=1, le=1 << 40)
    """A rollout bundle (JSON)."""
    manifest: int = Field(default=1 << 20, ge=1, le=1 << 30)
    """An update manifest (JSON)."""
    report: int = Field(default=4 << 20, ge=1, le=1 << 30)
    """A validation report or aggregate manifest (JSON)."""


class PretrainedSpec(_Wire):
    """A task's own Hugging Face model (`trainer.pretrained`): the files that define the policy, pinned by
    CID, sha256 and size. Its weights are the task's initial checkpoint."""

    arch: Literal["llama", "qwen2"]
    """config.json's `model_type` (checked again when the config is loaded)."""
    config: ArtifactRef
    """config.json."""
    tokenizer: ArtifactRef
    """tokenizer.json (read by the `tokenizers` library)."""
    tokenizer_config: ArtifactRef
    """tokenizer_config.json (special tokens)."""

    @model_validator(mode="after")
    def _small(self) -> PretrainedSpec:
        for name in ("config", "tokenizer", "tokenizer_config"):
            ref: ArtifactRef = getattr(self, name)
            if ref.size > MAX_MODEL_FILE_BYTES:
                raise ValueError(f"{name} is {ref.size} bytes, over {MAX_MODEL_FILE_BYTES}")
        return self

    def files(self) -> dict[str, ArtifactRef]:
        """File name -> its reference (the names of `trainer.pretrained.MODEL_FILES`)."""
        return {
            "config.json": self.config,
            "tokenizer.json": self.tokenizer,
            "tokenizer_config.json": self.tokenizer_config,
        }


class TaskSpec(_Wire):
    """Everything a trainer needs to train and a validator to re-check; its sha256 is on chain."""

    version: Literal[1] = 1
    """Wire format version."""
    description: str = Field(default="", max_length=2000)
    """Free text for people."""
    env: EnvSpec
    """The environment and its reward function."""
    model: ModelConfig
    """The policy architecture (the tokenizer follows from the environment's alphabet); with `pretrained`
    it must be left at its default and is not used."""
    inner: InnerConfig
    """H, rollout_every, P, G, max_new_tokens, GRPO and the update's compression."""
    outer: OuterConfig
    """The validators' aggregation."""
    initial_checkpoint: ArtifactRef
    """Round 0's base: a global checkpoint (`trainer.diloco.global_checkpoint_bytes`)."""
    verify: VerifyThresholds
    """TOPLOC, sampling, re-execution and update tolerances."""
    sample_rollouts: int = Field(ge=1, le=2**16 - 1)
    """Rollouts the seed picks per submission for replay (must equal the task's on-chain value)."""
    sample_steps: int = Field(ge=1, le=2**16 - 1)
    """Inner steps the seed picks per submission for re-execution (must equal the on-chain value)."""
    limits: SizeLimits
    """Download limits per artifact kind."""
    heldout_size: int = Field(default=500, ge=1, le=100_000)
    """Held-out problems (`HELDOUT_DOMAIN`) on which the global checkpoint's accuracy is reported."""
    pretrained: PretrainedSpec | None = None
    """The task's own Hugging Face model (docs/models.md); None: the tiny model `model` builds with the
    environment's character tokenizer. Left out of the canonical JSON when None, so a spec without it has
    the bytes it always had."""
    lora: LoraConfig | None = None
    """LoRA adapters trained on the frozen policy (`trainer.lora`, docs/models.md): a round's states and
    updates hold the adapters only; the initial checkpoint holds base and adapters. Left out of the
    canonical JSON when None."""

    @model_validator(mode="after")
    def _calibrated(self) -> TaskSpec:
        problem = outside_calibration(self.inner, self.verify)
        if problem:
            raise ValueError(problem)
        if self.pretrained is not None and self.model != ModelConfig():
            raise ValueError(
                "model must be left at its default with pretrained (config.json defines the policy)"
            )
        return self

    @model_serializer(mode="wrap")
    def _without_absent_pretrained(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        for name in ("pretrained", "lora"):
            if getattr(self, name) is None:
                data.pop(name, None)
        return data


class RolloutRecord(_Wire):
    """One rollout as it travels (`trainer.rollout.Rollout`); the leaf uses `reward_micros(reward)`."""

    step: int = Field(ge=0, le=_UINT32)
    """Inner step whose weights generated it."""
    prompt_idx: int = Field(ge=0, le=_UINT32)
    """Prompt index 0..P-1."""
    g: int = Field(ge=0, le=_UINT32)
    """Completion index 0..G-1."""
    prompt_ids: list[Annotated[int, Field(ge=0, le=_UINT32)]]
    """Prompt token ids."""
    completion_ids: list[Annotated[int, Field(ge=0, le=_UINT32)]]
    """Generated token ids, EOS included."""
    reward: float
    """The environment's reward (finite)."""
    finished: bool
    """Whether the completion ended with EOS."""
    proofs: list[HexBytes]
    """TOPLOC proofs, one per 32 completion tokens."""

    @field_validator("reward")
    @classmethod
    def _finite(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError("reward must be finite")
        return value


class _RoundWire(_Wire):
    """The fields every per-round artifact starts with: which deployment, task and round it belongs to."""

    version: Literal[1] = 1
    """Wire format version."""
    chain_id: int = Field(ge=1)
    """Chain of the task."""
    escrow: Address
    """TaskEscrow of the deployment."""
    task_id: int = Field(ge=1)
    """On-chain task id."""
    round: int = Field(ge=0)
    """Round number."""


class RolloutBundle(_RoundWire):
    """A trainer's rollouts of one round, in (step, prompt_idx, g) order, signed by the trainer."""

    trainer: Address
    """The trainer; every seed is derived for it."""
    base_hash: Hex32
    """sha256 of the round's base checkpoint."""
    rollouts: list[RolloutRecord]
    """Every rollout of every rollout step."""
    signature: HexBytes = "0x"
    """EIP-191 signature by `trainer` of `signing_hash()` (65 bytes)."""

    def signing_hash(self) -> bytes:
        """keccak256 of the canonical JSON of the bundle with an empty signature."""
        from protocol.ipfs import canonical_json

        return bytes(keccak(canonical_json(self.model_copy(update={"signature": "0x"}))))


class UpdateManifest(_RoundWire):
    """A trainer's submission; its sha256 and CID are `updateHash` and `updateCid` on chain."""

    trainer: Address
    """The submitting trainer."""
    base_hash: Hex32
    """sha256 of the round's base checkpoint."""
    bundle: ArtifactRef
    """The rollout bundle (also `bundleHash`/`bundleCid` on chain)."""
    update: ArtifactRef
    """The pseudo-gradient base - theta_H, encoded as the task's compression says."""
    states: list[ArtifactRef]
    """theta_0..theta_H: CIDs known before upload; only the states the seed picks are uploaded."""
    proof_root: Hex32
    """Merkle root over the rollout leaves (= on-chain proofRoot)."""
    state_root: Hex32
    """Merkle root over the states' sha256 (= on-chain stateRoot)."""
    work_units: int = Field(ge=1, le=_UINT32)
    """Rollouts in the bundle, `bundle_size(inner)` (= on-chain workUnits)."""


class SubmissionVerdict(_Wire):
    """A validator's verdict on one submission and why."""

    index: int = Field(ge=0)
    """The submission's index in the round."""
    trainer: Address
    """Its trainer."""
    verdict: Literal["ACCEPT", "REJECT", "UNAVAILABLE"]
    """What the validator committed."""
    reasons: list[str] = Field(default_factory=list)
    """Why it is not ACCEPT (empty for ACCEPT)."""
    report: dict[str, Any] | None = None
    """The statistics (`trainer.verify.SubmissionReport` as JSON; infinities as null)."""


class ValidationReport(_RoundWire):
    """One validator's verdicts for a round (published to IPFS for auditors)."""

    validator: Address
    """Who checked."""
    seed: Hex32
    """The round's seed (it picked what was re-checked)."""
    submissions: list[SubmissionVerdict]
    """One verdict per submission, by index."""


class AcceptedUpdate(_Wire):
    """One accepted update that went into an aggregate."""

    index: int = Field(ge=0)
    """Submission index."""
    trainer: Address
    """Its trainer."""
    work_units: int = Field(ge=1)
    """Its weight."""
    update_sha256: Hex32
    """sha256 of the pseudo-gradient used."""


class AggregateManifest(_RoundWire):
    """How the next global checkpoint of a round was computed (published to IPFS for auditors)."""

    base_hash: Hex32
    """sha256 of the round's base checkpoint."""
    accepted: list[AcceptedUpdate]
    """The accepted updates, sorted by trainer address (the aggregation order)."""
    outer: OuterConfig
    """The aggregation's hyper-parameters."""
    model: ArtifactRef
    """The next global checkpoint (what the validator votes)."""


# ------------------------------------------------------------------------------------------ the seed's picks

PICK_ROLLOUTS_DOMAIN = bytes(keccak(b"trustrl.pick.rollouts.v1"))
"""Domain tag of the rollouts picked for replay."""
PICK_STEPS_DOMAIN = bytes(keccak(b"trustrl.pick.steps.v1"))
"""Domain tag of the inner steps picked for re-execution."""


def pick_indices(domain: bytes, seed: bytes, trainer: str, count: int, n: int) -> list[int]:
    """The first `count` distinct values of
    `uint256(keccak256(abi.encode(bytes32 domain, bytes32 seed, address trainer, uint256 i))) mod n`
    for i = 0, 1, 2, ... (in draw order); all of 0..n-1 when `count >= n`, none when n == 0."""
    if len(domain) != 32 or len(seed) != 32:
        raise WireFormatError("domain and seed must be 32 bytes")
    if count < 0 or n < 0:
        raise WireFormatError(f"count and n must be >= 0, got {count}, {n}")
    if n == 0:
        return []
    if count >= n:
        return list(range(n))
    address = to_checksum_address(trainer)
    out: list[int] = []
    seen: set[int] = set()
    i = 0
    while len(out) < count:
        word = keccak(abi_encode(["bytes32", "bytes32", "address", "uint256"], [domain, seed, address, i]))
        value = int.from_bytes(word, "big") % n
        if value not in seen:
            seen.add(value)
            out.append(value)
        i += 1
    return out


def sampled_rollouts(seed: bytes, trainer: str, count: int, n_rollouts: int) -> list[int]:
    """Indices into the bundle's canonical rollout list that validators replay, sorted."""
    return sorted(pick_indices(PICK_ROLLOUTS_DOMAIN, seed, trainer, count, n_rollouts))


def picked_steps(seed: bytes, trainer: str, count: int, steps: int) -> list[int]:
    """Inner steps j (0..H-1) whose theta_j -> theta_j+1 validators re-execute, sorted."""
    return sorted(pick_indices(PICK_STEPS_DOMAIN, seed, trainer, count, steps))


def bundle_size(inner: InnerConfig) -> int:
    """Rollouts in a submission's bundle: P x G at every `rollout_every`-th of the H steps. It is also the
    submission's workUnits: pay and aggregation weight count prescribed rollouts, not generated tokens,
    so a model that never emits EOS earns no more than one that answers and stops."""
    return math.ceil(inner.steps / inner.rollout_every) * inner.num_prompts * inner.group_size


def required_states(inner: InnerConfig, rollout_steps: Iterable[int], steps: Sequence[int]) -> list[int]:
    """The training states a trainer uploads after the seed: theta_0 and theta_H, theta_j of every
    sampled rollout's step j, and theta_j0, theta_j, theta_j+1 of every picked step j, where theta_j0
    (j0 = j - j mod rollout_every) generated the rollouts step j trains on (sorted)."""
    needed = {0, inner.steps}
    needed.update(j for j in rollout_steps if 0 <= j <= inner.steps)
    for j in steps:
        if 0 <= j < inner.steps:
            needed.update((rollout_step(j, inner.rollout_every), j, j + 1))
    return sorted(needed)
