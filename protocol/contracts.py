"""Typed access to trustrl's five contracts: deployment, transactions, views and the on-chain rules.

    deployment = deploy_protocol(client)                  # TestToken + the four contracts, wired
    alice = ProtocolClient(client.with_account(key), deployment)
    alice.approve(deployment.stake_manager.address, 10**21); alice.stake(10**21)
    task_id = initiator.create_task(TaskParams(...))

`ProtocolClient` wraps one account: every transaction waits for its receipt and raises
`protocol.errors.ContractRevert(name, values)` with the contract's custom error. The pure helpers
(`pack_verdicts`, `verdict_commitment`, `decide`, `round_payout`) state the contracts' rules in
Python, so that validators build their vectors and auditors recompute every number the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING, Any

import rlp
from eth_abi.abi import encode as abi_encode
from eth_utils.address import to_canonical_address, to_checksum_address
from eth_utils.crypto import keccak
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from web3.contract import Contract
from web3.logs import DISCARD
from web3.types import TxReceipt

from protocol import committees
from protocol.errors import ChainError, ConfigError

if TYPE_CHECKING:
    from protocol.chain import ChainClient
    from protocol.compile import CompiledContract

__all__ = [
    "BPS",
    "BURN_ADDRESS",
    "DEFAULT_LAZY_SLASH_BPS",
    "DEFAULT_UNBONDING_PERIOD",
    "MAX_SUBMISSIONS",
    "MAX_VALIDATORS",
    "ZERO_ADDRESS",
    "Appeal",
    "AppealParams",
    "Ballot",
    "CancelReason",
    "CreditReason",
    "Deployment",
    "DeploymentAddresses",
    "Honeypot",
    "NoShows",
    "Phase",
    "ProtocolClient",
    "Role",
    "RoundAppeals",
    "RoundPayout",
    "TaskConfig",
    "TaskParams",
    "TaskState",
    "TaskStatus",
    "ValidatorOutcome",
    "Verdict",
    "WorkSubmission",
    "appeal_commitment",
    "attach_protocol",
    "count_no_shows",
    "decide",
    "deploy_protocol",
    "honeypot_commitment",
    "honeypot_consent_digest",
    "index_mask",
    "no_show_slash",
    "pack_verdicts",
    "round_payout",
    "unpack_verdicts",
    "verdict_commitment",
    "vote_commitment",
]

BURN_ADDRESS = "0x000000000000000000000000000000000000dEaD"
BPS = 10_000
MAX_SUBMISSIONS = 128  # 2 bits per submission in a uint256 verdict vector
MAX_VALIDATORS = 255
MAX_COMMITTEE_DRAWS = 64  # TaskRules: k <= 64 (a tally counter holds a submission's k draws)
MAX_APPEAL_DRAWS = 1024  # AppealCourt: K_a <= 1024
MAX_WORK_UNITS = 2**32 - 1
DEFAULT_UNBONDING_PERIOD = 7 * 24 * 3600
DEFAULT_LAZY_SLASH_BPS = 2_000
"""The HoneypotRegistry's slash per accepted honeypot, 20% of the allocation (docs/protocol.md, "Laziness
does not pay", for the arithmetic)."""
ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"
_UINT128 = 2**128 - 1
_UINT120 = 2**120 - 1


class Verdict(IntEnum):
    """A validator's verdict on a submission; as a decision, NONE means undecided."""

    NONE = 0
    ACCEPT = 1
    REJECT = 2
    UNAVAILABLE = 3


class Role(IntEnum):
    """A task participant's role."""

    NONE = 0
    TRAINER = 1
    VALIDATOR = 2


class TaskStatus(IntEnum):
    """The life of a task."""

    NONE = 0
    ACTIVE = 1
    COMPLETED = 2
    CANCELLED = 3


class CancelReason(IntEnum):
    """Why a task was cancelled."""

    BY_INITIATOR = 0
    NO_ACCEPTED_WORK = 1


class ValidatorOutcome(IntEnum):
    """How a validator's round was settled."""

    REWARDED = 0
    FORFEITED = 1
    SLASHED = 2
    NOT_DRAWN = 3


class CreditReason(IntEnum):
    """Why the RewardDistributor credited an account."""

    TRAINER_REWARD = 0
    VALIDATOR_REWARD = 1
    REFUND = 2


class Phase(IntEnum):
    """Where a round's ballot stands."""

    NOT_OPEN = 0
    COMMIT = 1
    REVEAL = 2
    VOTE_COMMIT = 3
    VOTE_REVEAL = 4
    CLOSED = 5


# ---------------------------------------------------------------------------- rules in Python


def pack_verdicts(verdicts: Sequence[Verdict | int], *, allow_none: bool = False) -> int:
    """The uint256 verdict vector: verdict i at bits [2i, 2i+2). Every entry must be a verdict (1..3), or
    NONE too with `allow_none` (a committee member's vector: NONE where it was not drawn)."""
    if len(verdicts) > MAX_SUBMISSIONS:
        raise ConfigError(f"at most {MAX_SUBMISSIONS} verdicts fit in a vector, got {len(verdicts)}")
    word = 0
    allowed = (0, 1, 2, 3) if allow_none else (1, 2, 3)
    for i, verdict in enumerate(verdicts):
        code = int(verdict)
        if code not in allowed:
            raise ConfigError(f"verdict {i} must be ACCEPT, REJECT or UNAVAILABLE, got {verdict!r}")
        word |= code << (2 * i)
    return word


def unpack_verdicts(word: int, count: int) -> list[Verdict]:
    """The first `count` entries of a packed verdict (or decision) vector."""
    if not 0 <= count <= MAX_SUBMISSIONS:
        raise ConfigError(f"count must be in [0, {MAX_SUBMISSIONS}], got {count}")
    return [Verdict((word >> (2 * i)) & 3) for i in range(count)]


def verdict_commitment(task_id: int, round_: int, validator: str, verdicts: int, salt: bytes) -> bytes:
    """keccak256(abi.encode(taskId, round, validator, verdicts, salt)), what `commitVerdicts` stores."""
    if len(salt) != 32:
        raise ConfigError(f"salt must be 32 bytes, got {len(salt)}")
    encoded = abi_encode(
        ["uint256", "uint256", "address", "uint256", "bytes32"],
        [task_id, round_, to_checksum_address(validator), verdicts, salt],
    )
    return keccak(encoded)


def vote_commitment(
    task_id: int, round_: int, validator: str, model_hash: bytes, model_cid: str, salt: bytes
) -> bytes:
    """keccak256(abi.encode(taskId, round, validator, modelHash, keccak256(bytes(modelCid)), salt)), what
    `commitModelVote` stores."""
    if len(salt) != 32 or len(model_hash) != 32:
        raise ConfigError(f"salt and model hash must be 32 bytes, got {len(salt)} and {len(model_hash)}")
    encoded = abi_encode(
        ["uint256", "uint256", "address", "bytes32", "bytes32", "bytes32"],
        [task_id, round_, to_checksum_address(validator), model_hash, keccak(model_cid.encode()), salt],
    )
    return keccak(encoded)


def honeypot_consent_digest(chain_id: int, registry: str, task_id: int, round_: int, salt: bytes) -> bytes:
    """keccak256(abi.encode(chainid, registry, taskId, round, salt)): what a bait signs (EIP-191 personal
    message) so that `revealHoneypotFor` may name it as round `round_`'s honeypot (`consentDigest`)."""
    if len(salt) != 32:
        raise ConfigError(f"salt must be 32 bytes, got {len(salt)}")
    encoded = abi_encode(
        ["uint256", "address", "uint256", "uint256", "bytes32"],
        [chain_id, to_checksum_address(registry), task_id, round_, salt],
    )
    return keccak(encoded)


def honeypot_commitment(task_id: int, round_: int, submitter: str, salt: bytes) -> bytes:
    """keccak256(abi.encode(taskId, round, submitter, salt)), what `commitHoneypot` stores."""
    if len(salt) != 32:
        raise ConfigError(f"salt must be 32 bytes, got {len(salt)}")
    encoded = abi_encode(
        ["uint256", "uint256", "address", "bytes32"], [task_id, round_, to_checksum_address(submitter), salt]
    )
    return keccak(encoded)


def decide(accepts: int, rejects: int, unavailables: int, revealed: int, quorum: int) -> Verdict:
    """The decision on one submission: the verdict with at least two thirds of the revealed votes
    (`3 * count >= 2 * revealed`), provided `revealed >= quorum`; otherwise NONE (undecided)."""
    if revealed == 0 or revealed < quorum:
        return Verdict.NONE
    for verdict, count in (
        (Verdict.ACCEPT, accepts),
        (Verdict.REJECT, rejects),
        (Verdict.UNAVAILABLE, unavailables),
    ):
        if 3 * count >= 2 * revealed:
            return verdict
    return Verdict.NONE


@dataclass(frozen=True)
class RoundPayout:
    """A finalised round's money: `rate` per accepted work unit, `share` per revealing validator, and the
    `carry` that rolls over (`budget - rate * accepted_work - share * revealed`)."""

    budget: int
    rate: int
    share: int
    carry: int

    @property
    def reserved(self) -> int:
        """What the round reserved for payouts."""
        return self.budget - self.carry


def cut_quorum(quorum: int, committee_draws: int, submissions: int) -> int:
    """The revealed weight a round needs for its validator cut (`TaskEscrow._book`): `quorum` revealers, or
    with committees `quorum` revealed draws per submission (a lone revealer whose draws decide nothing
    takes no cut)."""
    return quorum * submissions if committee_draws and submissions else quorum


def round_payout(
    budget: int,
    validator_share_bps: int,
    accepted_work: int,
    revealed: int,
    reward_per_round: int | None = None,
    quorum: int = 1,
) -> RoundPayout:
    """`finalizeRound`'s arithmetic. The validator cut is `reward_per_round * bps // 10000` (never taken
    from the carry, `budget - reward_per_round`), and only when `revealed >= quorum`: otherwise nothing
    could be decided and the cut rolls over. It is split equally among the `revealed` validators; the
    rest of the budget is the trainers' pool, paid per accepted work unit if any work was accepted.

    `reward_per_round` defaults to `budget` (a round with no carry), `quorum` to 1 (paid if anyone
    revealed), so older callers that passed a carry-free budget get the same numbers."""
    reward = budget if reward_per_round is None else reward_per_round
    if min(budget, validator_share_bps, accepted_work, revealed, reward, quorum) < 0:
        raise ConfigError("round_payout takes no negative amount")
    if reward > budget:
        raise ConfigError(f"a round's budget ({budget}) includes its reward ({reward}): it cannot be less")
    if validator_share_bps > BPS:
        raise ConfigError(f"validator_share_bps must be at most {BPS}, got {validator_share_bps}")
    validator_cut = reward * validator_share_bps // BPS if revealed and revealed >= quorum else 0
    rate = (budget - validator_cut) // accepted_work if accepted_work else 0
    share = validator_cut // revealed if validator_cut else 0
    return RoundPayout(budget, rate, share, budget - rate * accepted_work - share * revealed)


# ---------------------------------------------------------------------------- typed data


def _bytes32(value: object, name: str) -> bytes:
    if isinstance(value, str):
        text = value[2:] if value.startswith(("0x", "0X")) else value
        try:
            value = bytes.fromhex(text)
        except ValueError:
            raise ValueError(f"{name} must be 32 bytes or 0x-hex of 32 bytes") from None
    if not isinstance(value, bytes | bytearray) or len(value) != 32:
        raise ValueError(f"{name} must be 32 bytes or 0x-hex of 32 bytes")
    return bytes(value)


class TaskParams(BaseModel):
    """Parameters of `createTask`; the bounds are the contract's, checked here before sending."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    spec_hash: bytes
    """sha256 of the task spec (canonical bytes)."""
    spec_cid: str
    """Where the spec lives on IPFS (only in the TaskCreated event)."""
    initial_model_hash: bytes
    """sha256 of round 0's base checkpoint."""
    initial_model_cid: str
    """Where the initial checkpoint lives on IPFS."""
    num_rounds: int = Field(ge=1, le=2**32 - 1)
    """Number of rounds."""
    reward_per_round: int = Field(ge=1, le=_UINT128)
    """Reward added to each round's budget; `num_rounds * reward_per_round` is escrowed."""
    validator_share_bps: int = Field(ge=0, le=BPS)
    """Validators' share of a round's budget, in basis points."""
    min_trainer_stake: int = Field(ge=0, le=_UINT128)
    """Allocation to the task a trainer needs to join (and to submit)."""
    min_validator_stake: int = Field(ge=0, le=_UINT128)
    """Allocation to the task a validator needs to join."""
    quorum: int = Field(ge=1, le=MAX_VALIDATORS)
    """Minimum revealed verdicts for any decision (with committees, revealed draws: at most
    `committee_draws`, and not bounded by `max_validators`)."""
    max_trainers: int = Field(ge=1, le=MAX_SUBMISSIONS)
    """At most 128: a verdict vector has 2 bits per submission."""
    max_validators: int = Field(ge=1, le=MAX_VALIDATORS)
    """At most 255."""
    submit_duration: int = Field(ge=1, le=2**32 - 1)
    """Seconds of the submit phase."""
    commit_duration: int = Field(ge=1, le=2**32 - 1)
    """Seconds from the seed to the commit deadline."""
    reveal_duration: int = Field(ge=1, le=2**32 - 1)
    """Seconds from the commit deadline to the reveal deadline."""
    vote_duration: int = Field(ge=2, le=2**32 - 1)
    """Seconds from the reveal deadline to the model-vote deadline (at least 2: the vote's commit and reveal
    get half each)."""
    seed_delay: int = Field(ge=1, le=256)
    """Blocks between the close of submissions and the seed block."""
    sample_rollouts: int = Field(ge=1, le=2**16 - 1)
    """Rollouts per submission that the seed picks for re-checking."""
    sample_steps: int = Field(ge=1, le=2**16 - 1)
    """Training steps per submission that the seed picks for re-execution."""
    trainer_slash_bps: int = Field(ge=0, le=BPS)
    """Fraction of its allocation a rejected or unavailable trainer loses."""
    validator_slash_bps: int = Field(ge=0, le=BPS)
    """Fraction of its allocation a validator that did not reveal loses."""
    max_empty_rounds: int = Field(ge=0, le=2**32 - 1)
    """Consecutive rounds without accepted work that cancel the task (0: never)."""
    start_time: int = Field(ge=0, le=(2**40 - 1) // 2)
    """Unix time at which round 0's submit phase opens (not in the past when the task is created)."""
    no_show_slash_bps: int = Field(default=0, ge=0, le=BPS)
    """Fraction of its allocation a trainer loses for each round it was active in and did not submit to
    (0: no-shows cost nothing)."""
    max_no_shows: int = Field(default=0, ge=0, le=255)
    """Consecutive no-shows after which anyone may free the trainer's seat (0: never)."""
    committee_draws: int = Field(default=0, ge=0, le=MAX_COMMITTEE_DRAWS)
    """Stake-weighted committee draws per submission (0: every validator judges every submission; see
    protocol.committees)."""

    @field_validator("spec_hash", "initial_model_hash", mode="before")
    @classmethod
    def _hash32(cls, value: object) -> bytes:
        return _bytes32(value, "a content hash")

    @model_validator(mode="after")
    def _consistent(self) -> TaskParams:
        if not self.committee_draws and self.quorum > self.max_validators:
            raise ValueError(f"quorum ({self.quorum}) cannot exceed max_validators ({self.max_validators})")
        if self.committee_draws and self.quorum > self.committee_draws:
            raise ValueError(f"quorum ({self.quorum}) cannot exceed committee_draws ({self.committee_draws})")
        if self.committee_draws and self.min_validator_stake == 0:
            raise ValueError(
                "committee_draws needs a nonzero min_validator_stake (the unit of a validator's weight)"
            )
        if self.spec_hash == bytes(32) or self.initial_model_hash == bytes(32):
            raise ValueError("spec_hash and initial_model_hash must not be zero")
        if self.num_rounds * self.reward_per_round > _UINT120:
            raise ValueError("num_rounds * reward_per_round (the deposit) must be below 2**120")
        return self

    @property
    def deposit(self) -> int:
        """The tokens `createTask` escrows."""
        return self.num_rounds * self.reward_per_round

    def as_tuple(self) -> tuple[Any, ...]:
        """The Solidity `TaskParams` struct, in field order."""
        return tuple(getattr(self, name) for name in type(self).model_fields)


class WorkSubmission(BaseModel):
    """What a trainer commits with `submitWork`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    bundle_hash: bytes
    """sha256 of the rollout bundle."""
    bundle_cid: str
    """IPFS CID of the rollout bundle."""
    update_hash: bytes
    """sha256 of the update (pseudo-gradient)."""
    update_cid: str
    """IPFS CID of the update."""
    proof_root: bytes
    """Merkle root over the rollout leaves."""
    state_root: bytes
    """Merkle root over the training states' content hashes."""
    work_units: int = Field(ge=1, le=MAX_WORK_UNITS)
    """Generated tokens (EOS included, padding not)."""

    @field_validator("bundle_hash", "update_hash", "proof_root", "state_root", mode="before")
    @classmethod
    def _hash32(cls, value: object) -> bytes:
        return _bytes32(value, "a hash or root")


@dataclass(frozen=True)
class TaskConfig:
    """A task's stored configuration (`TaskEscrow.taskConfig`), in the contract's field order."""

    reward_per_round: int
    num_rounds: int
    submit_duration: int
    max_empty_rounds: int
    validator_share_bps: int
    quorum: int
    max_trainers: int
    initiator: str
    trainer_slash_bps: int
    validator_slash_bps: int
    commit_duration: int
    seed_delay: int
    min_trainer_stake: int
    min_validator_stake: int
    start_time: int
    reveal_duration: int
    vote_duration: int
    sample_rollouts: int
    sample_steps: int
    max_validators: int
    no_show_slash_bps: int
    max_no_shows: int
    committee_draws: int
    spec_hash: bytes


@dataclass(frozen=True)
class TaskState:
    """A task's live state (`TaskEscrow.taskState`)."""

    round: int
    round_start: int
    submit_end: int
    submissions: int
    seed_block: int
    seed_drawn: bool
    status: TaskStatus
    empty_rounds: int
    ended_at: int
    trainers: int
    """Trainers active in the current round."""


@dataclass(frozen=True)
class NoShows:
    """A trainer's no-shows (`TaskEscrow.noShowsOf`)."""

    unsettled: int
    """Rounds it was active in, did not submit to, and that `settleNoShows` has not settled yet."""
    in_a_row: int
    """Finalised rounds it missed since it last submitted (or joined)."""
    seated: bool
    """Whether it still holds its seat (False once freed, or for an account that is not a trainer)."""


def count_no_shows(
    first_round: int, submitted: Sequence[int], settled: int, finalized: int, left_round: int | None = None
) -> tuple[int, int]:
    """`TaskEscrow.noShowsOf`'s count for a trainer active from `first_round`, that submitted in the rounds
    `submitted`, had `settled` no-shows settled, and whose seat was freed in `left_round` (None: it holds
    it); `finalized` rounds (0 .. finalized - 1) are over. Returns (unsettled no-shows, rounds missed in a
    row): it was expected in the finalised rounds from its first one until its seat was freed, and a
    round counts once whatever it submitted."""
    end = finalized if left_round is None else min(left_round, finalized)
    if end <= first_round:
        return 0, 0
    made = sum(1 for r in set(submitted) if first_round <= r < end)
    last = max(submitted, default=None)  # a submission in the round under way means none missed in a row
    since = first_round if last is None else max(first_round, last + 1)
    return end - first_round - made - settled, max(0, end - since)


def no_show_slash(allocation: int, rounds: int, no_show_slash_bps: int) -> int:
    """What `settleNoShows` slashes for `rounds` no-shows: `min(rounds * bps, 10000)` basis points of the
    allocation."""
    return allocation * min(rounds * no_show_slash_bps, BPS) // BPS


@dataclass(frozen=True)
class Honeypot:
    """A round's honeypot record (the HoneypotRegistry's `honeypotOf`)."""

    commitment: bytes
    submitter: str
    index: int
    revealed: bool


@dataclass(frozen=True)
class Appeal:
    """One appeal (`AppealCourt.appealOf`); `appellant` is the zero address when there is none."""

    appellant: str
    seed_block: int
    original: Verdict
    decided: bool
    overturned: bool
    attempt: int
    seed: bytes
    commit_end: int
    reveal_end: int
    total_weight: int
    committed_weight: int
    accept_weight: int
    other_weight: int
    bond: int
    per_draw: int
    victim_owed: int

    @property
    def filed(self) -> bool:
        """Whether an appeal was filed."""
        return self.appellant != ZERO_ADDRESS

    @property
    def drawn(self) -> bool:
        """Whether its committee was drawn."""
        return self.seed != bytes(32)


@dataclass(frozen=True)
class RoundAppeals:
    """A round's appeals (`AppealCourt.roundAppealsOf`): appealed indices, pending count, overturned fields
    and their final verdicts (packed like a decision vector)."""

    appealed: list[int]
    pending: int
    fields: int
    finals: int


def index_mask(indices: Sequence[int]) -> int:
    """The bitmask of submission `indices` (bit i: index i), as `settleJuror` takes a batch."""
    mask = 0
    for i in indices:
        if not 0 <= i < MAX_SUBMISSIONS:
            raise ConfigError(f"submission index {i} outside [0, {MAX_SUBMISSIONS})")
        mask |= 1 << i
    return mask


def appeal_commitment(task_id: int, round_: int, index: int, juror: str, verdict: int, salt: bytes) -> bytes:
    """keccak256(abi.encode(taskId, round, index, juror, uint8 verdict, salt)), what `commitAppeal` stores."""
    if len(salt) != 32:
        raise ConfigError(f"salt must be 32 bytes, got {len(salt)}")
    encoded = abi_encode(
        ["uint256", "uint256", "uint256", "address", "uint8", "bytes32"],
        [task_id, round_, index, to_checksum_address(juror), verdict, salt],
    )
    return keccak(encoded)


@dataclass(frozen=True)
class Ballot:
    """A round's ballot (`AttestationRegistry.ballotOf`)."""

    commit_end: int
    reveal_end: int
    vote_commit_end: int
    vote_end: int
    submissions: int
    expected: int
    committed: int
    revealed: int
    vote_committed: int
    voted: int
    quorum: int
    agreed: bool
    draws: int = 0
    """The task's committee draws per submission (0: no committees)."""
    revealed_weight: int = 0
    """With committees, the draws held by the validators that revealed."""


# ---------------------------------------------------------------------------- deployment


class AppealParams(BaseModel):
    """An AppealCourt's constructor parameters (docs/protocol.md "Appeals" sizes them)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    window: int = Field(default=600, gt=0)
    """Seconds after a round's ballot closed during which its decisions can be appealed; the round's
    settlement waits for it."""
    draws: int = Field(default=201, ge=1, le=MAX_APPEAL_DRAWS)
    """K_a, the appeal committee's stake-weighted draws."""
    bond: int = Field(default=10**18, gt=0, le=_UINT128)
    """What an appeal posts, in token units (> 0: a free appeal would be free spam, and an upheld one
    would pay its jurors nothing for the re-verification)."""
    commit_duration: int = Field(default=120, gt=0)
    """Seconds the drawn jurors have to commit, from the draw."""
    reveal_duration: int = Field(default=120, gt=0)
    """Seconds they have to reveal, after the commit phase."""
    slash_bps: int = Field(default=5_000, ge=1, le=BPS)
    """A losing validator's slash per overturned appeal, of what is left of its allocation."""
    reward_bps: int = Field(default=5_000, ge=0, le=BPS)
    """The appellant's part of an overturned appeal's slashes, after the wronged trainer's."""
    silence_bps: int = Field(default=500, ge=1, le=BPS)
    """A drawn juror's slash for not revealing, of its allocation: once a round, however many appeals of
    the round it was silent in (a missed ballot reveal's rate by default)."""

    def constructor_args(self) -> tuple[int, ...]:
        """The AppealCourt constructor's arguments after the escrow."""
        return (
            self.window, self.draws, self.bond, self.commit_duration, self.reveal_duration, self.slash_bps,
            self.reward_bps, self.silence_bps,
        )  # fmt: skip


class DeploymentAddresses(BaseModel):
    """Where a deployment lives; JSON-serialisable for the CLI and the auditor."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    chain_id: int
    """The chain's id."""
    block: int
    """The block of the first contract's deployment (the auditor's first block to scan)."""
    token: str
    """The ERC20 of stakes and rewards."""
    stake_manager: str
    """StakeManager."""
    reward_distributor: str
    """RewardDistributor."""
    attestation_registry: str
    """AttestationRegistry."""
    task_escrow: str
    """TaskEscrow."""
    honeypot_registry: str
    """HoneypotRegistry."""
    appeal_court: str | None = None
    """AppealCourt (None: a deployment without appeals)."""

    @field_validator(
        "token",
        "stake_manager",
        "reward_distributor",
        "attestation_registry",
        "task_escrow",
        "honeypot_registry",
        "appeal_court",
    )
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return to_checksum_address(value)
        except (ValueError, TypeError):
            raise ValueError(f"not an address: {value!r}") from None


@dataclass(frozen=True)
class Deployment:
    """The deployed contracts as web3 objects, and where they live."""

    addresses: DeploymentAddresses
    token: Contract
    stake_manager: Contract
    reward_distributor: Contract
    attestation_registry: Contract
    task_escrow: Contract
    honeypot_registry: Contract
    appeal_court: Contract | None = None

    @property
    def block(self) -> int:
        """The deployment block."""
        return self.addresses.block

    def contracts(self) -> dict[str, Contract]:
        """The contracts by role name (six, and the AppealCourt where there is one)."""
        contracts = {
            "token": self.token,
            "stake_manager": self.stake_manager,
            "reward_distributor": self.reward_distributor,
            "attestation_registry": self.attestation_registry,
            "task_escrow": self.task_escrow,
            "honeypot_registry": self.honeypot_registry,
        }
        if self.appeal_court is not None:
            contracts["appeal_court"] = self.appeal_court
        return contracts


def _create_address(sender: str, nonce: int) -> str:
    """The address of the contract `sender` creates with its transaction number `nonce` (CREATE)."""
    return to_checksum_address(keccak(rlp.encode([to_canonical_address(sender), nonce]))[12:])


def _compiled_or_default(compiled: dict[str, CompiledContract] | None) -> dict[str, CompiledContract]:
    if compiled is not None:
        return compiled
    from protocol.compile import compile_contracts

    return compile_contracts()


def deploy_protocol(
    client: ChainClient,
    token: str | Contract | None = None,
    *,
    unbonding_period: int = DEFAULT_UNBONDING_PERIOD,
    settlement_grace: int | None = None,
    lazy_slash_bps: int = DEFAULT_LAZY_SLASH_BPS,
    appeals: AppealParams | None = None,
    compiled: dict[str, CompiledContract] | None = None,
) -> Deployment:
    """Deploy StakeManager, RewardDistributor, AttestationRegistry, TaskEscrow and HoneypotRegistry from
    `client`'s account (and a TestToken first when `token` is None, and the TaskRules library the escrow
    links to), wired to each other through constructor arguments.

    The first three take the TaskEscrow's address (and the StakeManager the HoneypotRegistry's, its second
    slasher), computed from the deployer's nonce; the escrow and then the HoneypotRegistry (which reads the
    others from the escrow) are deployed last. The account must send nothing else meanwhile: the wiring is
    verified afterwards and a mismatch raises `ChainError`. `settlement_grace` (how long allocations
    stay locked after a task ends, so late settlements can still slash) defaults to `unbonding_period`.
    `lazy_slash_bps` is the fraction of its allocation a validator loses per honeypot it accepted.
    `appeals` deploys an AppealCourt last (the StakeManager's third slasher, consulted by the registry);
    None: no appeals, and settlement waits for nothing.
    """
    if not 0 < lazy_slash_bps <= BPS:
        raise ConfigError(f"lazy_slash_bps must be in 1..{BPS}, got {lazy_slash_bps}")
    if unbonding_period < 0:
        raise ConfigError(f"unbonding_period must be >= 0, got {unbonding_period}")
    grace = unbonding_period if settlement_grace is None else settlement_grace
    if grace < 0:
        raise ConfigError(f"settlement_grace must be >= 0, got {grace}")
    artifacts = _compiled_or_default(compiled)
    start_block = client.block_number() + 1
    if token is None:
        token_contract = client.deploy(artifacts["TestToken"])
    else:
        address = token if isinstance(token, str) else token.address
        token_contract = client.contract(artifacts["TestToken"], address)

    rules = client.deploy(artifacts["TaskRules"])
    escrow_code = artifacts["TaskEscrow"].linked({artifacts["TaskRules"].qualified_name: rules.address})
    nonce = int(client.w3.eth.get_transaction_count(client.account.address, "pending"))
    escrow_address = _create_address(client.address, nonce + 3)
    honeypots_address = _create_address(client.address, nonce + 4)
    court_address = _create_address(client.address, nonce + 5) if appeals is not None else ZERO_ADDRESS
    stakes = client.deploy(
        artifacts["StakeManager"],
        token_contract.address,
        escrow_address,
        honeypots_address,
        court_address,
        unbonding_period,
    )
    distributor = client.deploy(artifacts["RewardDistributor"], token_contract.address, escrow_address)
    registry = client.deploy(artifacts["AttestationRegistry"], escrow_address, court_address)
    escrow = client.deploy(
        escrow_code,
        token_contract.address,
        stakes.address,
        distributor.address,
        registry.address,
        grace,
    )
    if escrow.address != escrow_address:
        raise ChainError(
            f"TaskEscrow landed at {escrow.address}, not at the precomputed {escrow_address}: the deployer "
            "sent another transaction during the deployment; deploy again from an idle account"
        )
    honeypots = client.deploy(artifacts["HoneypotRegistry"], escrow.address, lazy_slash_bps)
    if honeypots.address != honeypots_address:
        raise ChainError(
            f"HoneypotRegistry landed at {honeypots.address}, not at the precomputed {honeypots_address}: "
            "the deployer sent another transaction during the deployment; deploy again from an idle account"
        )
    court: str | None = None
    if appeals is not None:
        court = client.deploy(artifacts["AppealCourt"], escrow.address, *appeals.constructor_args()).address
        if court != court_address:
            raise ChainError(
                f"AppealCourt landed at {court}, not at the precomputed {court_address}: the deployer sent "
                "another transaction during the deployment; deploy again from an idle account"
            )
    addresses = DeploymentAddresses(
        chain_id=client.chain_id,
        block=start_block,
        token=token_contract.address,
        stake_manager=stakes.address,
        reward_distributor=distributor.address,
        attestation_registry=registry.address,
        task_escrow=escrow.address,
        honeypot_registry=honeypots.address,
        appeal_court=court,
    )
    return attach_protocol(client, addresses, compiled=artifacts)


def attach_protocol(
    client: ChainClient,
    addresses: DeploymentAddresses,
    *,
    compiled: dict[str, CompiledContract] | None = None,
) -> Deployment:
    """Contract objects for an existing deployment; checks that the contracts point at each other."""
    artifacts = _compiled_or_default(compiled)
    if client.chain_id != addresses.chain_id:
        raise ConfigError(f"the deployment is on chain {addresses.chain_id}, the client on {client.chain_id}")
    deployment = Deployment(
        addresses=addresses,
        token=client.contract(artifacts["TestToken"], addresses.token),
        stake_manager=client.contract(artifacts["StakeManager"], addresses.stake_manager),
        reward_distributor=client.contract(artifacts["RewardDistributor"], addresses.reward_distributor),
        attestation_registry=client.contract(
            artifacts["AttestationRegistry"], addresses.attestation_registry
        ),
        task_escrow=client.contract(artifacts["TaskEscrow"], addresses.task_escrow),
        honeypot_registry=client.contract(artifacts["HoneypotRegistry"], addresses.honeypot_registry),
        appeal_court=(
            None
            if addresses.appeal_court is None
            else client.contract(artifacts["AppealCourt"], addresses.appeal_court)
        ),
    )
    for name in (
        "TestToken", "FeeToken", "NoReturnToken", "FalseReturnToken", "ReentrantToken", "BurnBlockToken",
    ):  # fmt: skip
        if name in artifacts:
            client.register_abi(artifacts[name])
    _verify_wiring(client, deployment)
    return deployment


def _verify_wiring(client: ChainClient, d: Deployment) -> None:
    escrow = d.addresses.task_escrow
    expected = {
        "StakeManager.taskEscrow": (d.stake_manager.functions.taskEscrow(), escrow),
        "StakeManager.token": (d.stake_manager.functions.token(), d.addresses.token),
        "StakeManager.honeypotRegistry": (
            d.stake_manager.functions.honeypotRegistry(),
            d.addresses.honeypot_registry,
        ),
        "HoneypotRegistry.taskEscrow": (d.honeypot_registry.functions.taskEscrow(), escrow),
        "StakeManager.appealCourt": (
            d.stake_manager.functions.appealCourt(),
            d.addresses.appeal_court or ZERO_ADDRESS,
        ),
        "AttestationRegistry.appealCourt": (
            d.attestation_registry.functions.appealCourt(),
            d.addresses.appeal_court or ZERO_ADDRESS,
        ),
        "RewardDistributor.taskEscrow": (d.reward_distributor.functions.taskEscrow(), escrow),
        "RewardDistributor.token": (d.reward_distributor.functions.token(), d.addresses.token),
        "AttestationRegistry.taskEscrow": (d.attestation_registry.functions.taskEscrow(), escrow),
        "TaskEscrow.stakeManager": (d.task_escrow.functions.stakeManager(), d.addresses.stake_manager),
        "TaskEscrow.rewardDistributor": (
            d.task_escrow.functions.rewardDistributor(),
            d.addresses.reward_distributor,
        ),
        "TaskEscrow.attestationRegistry": (
            d.task_escrow.functions.attestationRegistry(),
            d.addresses.attestation_registry,
        ),
        "TaskEscrow.token": (d.task_escrow.functions.token(), d.addresses.token),
    }
    if d.appeal_court is not None:
        expected["AppealCourt.taskEscrow"] = (d.appeal_court.functions.taskEscrow(), escrow)
    for what, (fn, want) in expected.items():
        try:
            got = to_checksum_address(client.call(fn))
        except ChainError as exc:
            raise ChainError(f"deployment check {what} failed: {exc}") from None
        if got != want:
            raise ChainError(f"deployment is miswired: {what} is {got}, expected {want}")


# ---------------------------------------------------------------------------- one account's view


def _event_args(contract: Contract, receipt: TxReceipt, event: str) -> list[dict[str, Any]]:
    logs = contract.events[event]().process_receipt(receipt, errors=DISCARD)
    return [dict(log["args"]) for log in logs]


class ProtocolClient:
    """One account's typed access to a deployment. Transactions wait for their receipt; reverts raise
    `ContractRevert` with the custom error's name and values."""

    def __init__(self, client: ChainClient, deployment: Deployment) -> None:
        self.client = client
        self.deployment = deployment
        self.token = deployment.token
        self.stakes = deployment.stake_manager
        self.distributor = deployment.reward_distributor
        self.registry = deployment.attestation_registry
        self.escrow = deployment.task_escrow
        self.honeypots = deployment.honeypot_registry
        self.court = deployment.appeal_court

    @property
    def address(self) -> str:
        """The account's address."""
        return self.client.address

    def as_account(self, client: ChainClient) -> ProtocolClient:
        """The same deployment seen from another client's account."""
        return ProtocolClient(client, self.deployment)

    # -------------------------------------------------------------- token
    def approve(self, spender: str, amount: int) -> TxReceipt:
        """ERC20 approve of the deployment's token."""
        return self.client.transact(self.token.functions.approve(spender, amount))

    def token_balance(self, account: str | None = None) -> int:
        """Token balance of `account` (default: this account)."""
        return int(self.client.call(self.token.functions.balanceOf(account or self.address)))

    # -------------------------------------------------------------- stakes
    def stake(self, amount: int) -> TxReceipt:
        """Bond `amount` (approve the StakeManager first)."""
        return self.client.transact(self.stakes.functions.stake(amount))

    def request_unstake(self, amount: int) -> TxReceipt:
        """Move `amount` of free stake to unbonding."""
        return self.client.transact(self.stakes.functions.requestUnstake(amount))

    def withdraw(self) -> TxReceipt:
        """Withdraw the whole unbonding amount after its release time."""
        return self.client.transact(self.stakes.functions.withdraw())

    def allocate(self, task_id: int, amount: int) -> TxReceipt:
        """Allocate free stake to a task."""
        return self.client.transact(self.stakes.functions.allocate(task_id, amount))

    def deallocate(self, task_id: int, amount: int) -> TxReceipt:
        """Release an unlocked allocation."""
        return self.client.transact(self.stakes.functions.deallocate(task_id, amount))

    def flush_burn(self) -> TxReceipt:
        """Send the slashed tokens the token refused to burn to the burn address (permissionless)."""
        return self.client.transact(self.stakes.functions.flushBurn())

    def unburned(self) -> int:
        """Slashed tokens the StakeManager still holds because the token refused the burn address."""
        return int(self.client.call(self.stakes.functions.unburned()))

    def stake_of(self, account: str | None = None) -> tuple[int, int, int, int]:
        """(bonded, allocated, unbonding, release time) of `account`."""
        bonded, allocated, unbonding, release = self.client.call(
            self.stakes.functions.stakeOf(account or self.address)
        )
        return int(bonded), int(allocated), int(unbonding), int(release)

    def free_stake_of(self, account: str | None = None) -> int:
        """Bonded minus allocated stake of `account`."""
        return int(self.client.call(self.stakes.functions.freeStakeOf(account or self.address)))

    def allocation_of(self, task_id: int, account: str | None = None) -> int:
        """`account`'s allocation to `task_id`."""
        return int(self.client.call(self.stakes.functions.allocationOf(account or self.address, task_id)))

    # -------------------------------------------------------------- tasks
    def create_task(self, params: TaskParams) -> int:
        """Create a task (approve the TaskEscrow for `params.deposit` first); returns its id."""
        receipt = self.client.transact(self.escrow.functions.createTask(params.as_tuple()))
        (created,) = _event_args(self.escrow, receipt, "TaskCreated")
        return int(created["taskId"])

    def cancel_task(self, task_id: int) -> TxReceipt:
        """Cancel a task before its start (initiator)."""
        return self.client.transact(self.escrow.functions.cancelTask(task_id))

    def join_task(self, task_id: int, role: Role) -> int:
        """Join as trainer or validator; returns the first round in which this account takes part."""
        receipt = self.client.transact(self.escrow.functions.joinTask(task_id, int(role)))
        (joined,) = _event_args(self.escrow, receipt, "Joined")
        return int(joined["fromRound"])

    def submit_work(self, task_id: int, round_: int, work: WorkSubmission) -> int:
        """Commit work for `round_`; returns the submission index."""
        receipt = self.client.transact(
            self.escrow.functions.submitWork(
                task_id,
                round_,
                work.bundle_hash,
                work.bundle_cid,
                work.update_hash,
                work.update_cid,
                work.proof_root,
                work.state_root,
                work.work_units,
            )
        )
        (submitted,) = _event_args(self.escrow, receipt, "WorkSubmitted")
        return int(submitted["index"])

    def draw_seed(self, task_id: int) -> bytes | None:
        """Arm or draw the current round's seed; returns the seed when drawn, None when (re-)armed."""
        receipt = self.client.transact(self.escrow.functions.drawSeed(task_id))
        drawn = _event_args(self.escrow, receipt, "SeedDrawn")
        return bytes(drawn[0]["seed"]) if drawn else None

    def finalize_round(self, task_id: int) -> TxReceipt:
        """Finalise the current round."""
        return self.client.transact(self.escrow.functions.finalizeRound(task_id))

    def settle_submission(self, task_id: int, round_: int, index: int) -> TxReceipt:
        """Settle one submission of a finalised round."""
        return self.client.transact(self.escrow.functions.settleSubmission(task_id, round_, index))

    def settle_no_shows(self, task_id: int, trainer: str) -> TxReceipt:
        """Settle a trainer's no-shows (and free its seat after `max_no_shows` in a row)."""
        return self.client.transact(self.escrow.functions.settleNoShows(task_id, trainer))

    def settle_validator(self, task_id: int, round_: int, validator: str) -> TxReceipt:
        """Settle one validator of a finalised round."""
        return self.client.transact(self.escrow.functions.settleValidator(task_id, round_, validator))

    def settle_round(
        self, task_id: int, round_: int, indices: Sequence[int], validators: Sequence[str]
    ) -> TxReceipt:
        """Settle submissions `indices` and validators `validators` of a finalised round in one transaction
        (those settled already are skipped; reverts NothingSettled when all were)."""
        return self.client.transact(
            self.escrow.functions.settleRound(task_id, round_, list(indices), list(validators))
        )

    # -------------------------------------------------------------- attestations
    def commit_verdicts(self, task_id: int, round_: int, verdicts: int, salt: bytes) -> TxReceipt:
        """Commit to the packed `verdicts` with `salt` (keep both to reveal)."""
        commitment = verdict_commitment(task_id, round_, self.address, verdicts, salt)
        return self.client.transact(self.registry.functions.commitVerdicts(task_id, round_, commitment))

    def reveal_verdicts(self, task_id: int, round_: int, verdicts: int, salt: bytes) -> TxReceipt:
        """Reveal the committed vector."""
        return self.client.transact(self.registry.functions.revealVerdicts(task_id, round_, verdicts, salt))

    def commit_model_vote(
        self, task_id: int, round_: int, model_hash: bytes, model_cid: str, salt: bytes
    ) -> TxReceipt:
        """Commit to a vote for the next global checkpoint (keep the hash, CID and salt to reveal)."""
        commitment = vote_commitment(task_id, round_, self.address, model_hash, model_cid, salt)
        return self.client.transact(self.registry.functions.commitModelVote(task_id, round_, commitment))

    def vote_model(
        self, task_id: int, round_: int, model_hash: bytes, model_cid: str, salt: bytes
    ) -> TxReceipt:
        """Reveal the committed vote: the sha256 (and CID) of the next global checkpoint, and the salt."""
        return self.client.transact(
            self.registry.functions.voteModel(task_id, round_, model_hash, model_cid, salt)
        )

    # -------------------------------------------------------------- rewards
    def claim(self) -> int:
        """Claim every credit of this account; returns the amount paid."""
        receipt = self.client.transact(self.distributor.functions.claim())
        (claimed,) = _event_args(self.distributor, receipt, "Claimed")
        return int(claimed["amount"])

    def credit_of(self, account: str | None = None) -> int:
        """Unclaimed credit of `account`."""
        return int(self.client.call(self.distributor.functions.creditOf(account or self.address)))

    # -------------------------------------------------------------- views
    def task_config(self, task_id: int) -> TaskConfig:
        """A task's configuration."""
        values = self.client.call(self.escrow.functions.taskConfig(task_id))
        config = TaskConfig(*values)
        return TaskConfig(
            **{
                **config.__dict__,
                "initiator": to_checksum_address(config.initiator),
                "spec_hash": bytes(config.spec_hash),
            }
        )

    def task_state(self, task_id: int) -> TaskState:
        """A task's live state."""
        values = list(self.client.call(self.escrow.functions.taskState(task_id)))
        values[6] = TaskStatus(values[6])
        return TaskState(*values)

    def funds_of(self, task_id: int) -> tuple[int, int]:
        """(remaining, reserved) of a task's escrow."""
        remaining, reserved = self.client.call(self.escrow.functions.fundsOf(task_id))
        return int(remaining), int(reserved)

    def participant_of(self, task_id: int, account: str | None = None) -> tuple[Role, int]:
        """(role, first round) of `account` in a task."""
        role, from_round = self.client.call(
            self.escrow.functions.participantOf(task_id, account or self.address)
        )
        return Role(role), int(from_round)

    def active_trainers(self, task_id: int, round_: int) -> int:
        """Trainers active in `round_` (the current round or a later one)."""
        return int(self.client.call(self.escrow.functions.activeTrainers(task_id, round_)))

    def locked_until(self, task_id: int, account: str | None = None) -> int:
        """Until when `account`'s allocation to the task is locked (2**256 - 1 while the task is active,
        while `account` has an unsettled submission, or while it has a finalised validator round not yet
        settled)."""
        return int(self.client.call(self.escrow.functions.lockedUntil(task_id, account or self.address)))

    def unsettled_of(self, task_id: int, account: str | None = None) -> int:
        """`account`'s submissions to the task not settled yet (they keep its allocation locked)."""
        return int(self.client.call(self.escrow.functions.unsettledOf(task_id, account or self.address)))

    def no_shows_of(self, task_id: int, trainer: str | None = None) -> NoShows:
        """A trainer's no-shows: unsettled ones, rounds missed in a row, whether it holds its seat."""
        unsettled, in_a_row, seated = self.client.call(
            self.escrow.functions.noShowsOf(task_id, trainer or self.address)
        )
        return NoShows(int(unsettled), int(in_a_row), bool(seated))

    def validator_unsettled_of(self, task_id: int, account: str | None = None) -> int:
        """Finalised rounds in which validator `account` was expected and that are not settled yet (after
        the task ended, they keep its allocation locked; `settle_validator` settles one)."""
        return int(
            self.client.call(self.escrow.functions.validatorUnsettledOf(task_id, account or self.address))
        )

    def expected_rounds_of(self, task_id: int, validator: str | None = None) -> int:
        """Rounds in which `validator` is expected: from its first round on, those whose ballot opened (the
        current one included once its seed is drawn)."""
        return int(
            self.client.call(self.registry.functions.expectedRoundsOf(task_id, validator or self.address))
        )

    def ballots_opened(self, task_id: int) -> int:
        """Rounds of the task whose ballot opened (whose seed was drawn)."""
        return int(self.client.call(self.registry.functions.ballotsOpened(task_id)))

    def validator_stake_of(self, task_id: int, account: str | None = None) -> tuple[int, int]:
        """(allocation, minimum validator stake) of `account` in the task: a reveal needs the first >= the
        second."""
        allocated, required = self.client.call(
            self.escrow.functions.validatorStakeOf(task_id, account or self.address)
        )
        return int(allocated), int(required)

    def base_model_of(self, task_id: int) -> bytes:
        """The current round's base checkpoint hash."""
        return bytes(self.client.call(self.escrow.functions.baseModelOf(task_id)))

    def seed_of(self, task_id: int, round_: int) -> bytes:
        """The round's seed (zero until drawn)."""
        return bytes(self.client.call(self.escrow.functions.seedOf(task_id, round_)))

    def submission_of(self, task_id: int, round_: int, index: int) -> tuple[str, int, bool]:
        """(trainer, work units, settled) of a submission."""
        trainer, work, settled = self.client.call(self.escrow.functions.submissionOf(task_id, round_, index))
        return to_checksum_address(trainer), int(work), bool(settled)

    def round_result_of(self, task_id: int, round_: int) -> tuple[int, int, bool]:
        """(rate per work unit, validator share, had a ballot) of a round."""
        rate, share, had_ballot = self.client.call(self.escrow.functions.roundResultOf(task_id, round_))
        return int(rate), int(share), bool(had_ballot)

    def ballot_of(self, task_id: int, round_: int) -> Ballot:
        """A round's ballot."""
        return Ballot(*self.client.call(self.registry.functions.ballotOf(task_id, round_)))

    def phase_of(self, task_id: int, round_: int) -> Phase:
        """Where a round's ballot stands now."""
        return Phase(self.client.call(self.registry.functions.phaseOf(task_id, round_)))

    def verdicts_of(self, task_id: int, round_: int, validator: str | None = None) -> tuple[int, bool]:
        """(stored word, revealed): the commitment before the reveal, the packed verdicts after."""
        word, revealed = self.client.call(
            self.registry.functions.verdictsOf(task_id, round_, validator or self.address)
        )
        return int.from_bytes(bytes(word), "big"), bool(revealed)

    def model_vote_of(self, task_id: int, round_: int, validator: str | None = None) -> tuple[bool, bool]:
        """(committed, revealed) of a validator's model vote in a round (its hash: its ModelVoted event)."""
        committed, revealed = self.client.call(
            self.registry.functions.modelVoteOf(task_id, round_, validator or self.address)
        )
        return bool(committed), bool(revealed)

    def validator_outcome(
        self, task_id: int, round_: int, validator: str | None = None
    ) -> tuple[bool, bool, bool]:
        """(expected, revealed, earned its share) of a validator in a round: the share is earned with verdicts
        that agree with every decided outcome and a revealed vote for the round's agreed model."""
        expected, revealed, agreed, _ = self.validator_standing(task_id, round_, validator)
        return expected, revealed, agreed

    def validator_standing(
        self, task_id: int, round_: int, validator: str | None = None
    ) -> tuple[bool, bool, bool, int]:
        """`validatorOutcome`: (expected, revealed, earned its share, weight). The weight is 1 without
        committees, its draws in the round with them (0: not drawn, nothing owed, nothing earned)."""
        expected, revealed, agreed, weight = self.client.call(
            self.registry.functions.validatorOutcome(task_id, round_, validator or self.address)
        )
        return bool(expected), bool(revealed), bool(agreed), int(weight)

    def committee_of(self, task_id: int, round_: int) -> tuple[int, bytes, int]:
        """(draws k, seed, active weight W_r) of a round (seed and weight 0 without committees)."""
        draws, seed, total = self.client.call(self.registry.functions.committeeOf(task_id, round_))
        return int(draws), bytes(seed), int(total)

    def multiplicities_of(self, task_id: int, round_: int, validator: str | None = None) -> list[int]:
        """A validator's multiplicity on each submission of a round, as the registry computes it
        (`multiplicitiesOf`; 1 everywhere without committees, 0 everywhere when not active)."""
        words, _ = self.client.call(
            self.registry.functions.multiplicitiesOf(task_id, round_, validator or self.address)
        )
        n = self.ballot_of(task_id, round_).submissions
        return [(int(words[i // 32]) >> (8 * (i % 32))) & 0xFF for i in range(n)]

    def drawn_multiplicities(
        self, task_id: int, round_: int, validator: str | None = None
    ) -> list[int] | None:
        """A validator's multiplicities in an opened round, computed here from the round's seed and weights
        (protocol.committees, the registry's rule); None without committees."""
        draws, seed, total = self.committee_of(task_id, round_)
        if draws == 0:
            return None
        n = self.ballot_of(task_id, round_).submissions
        offset, weight = self.weight_of(task_id, validator)
        if total == 0 or weight == 0:
            return [0] * n
        return committees.multiplicities(seed, n, draws, total, offset, weight)

    def weight_of(self, task_id: int, validator: str | None = None) -> tuple[int, int]:
        """(offset, weight): a validator's interval on the task's line of weights."""
        who = validator or self.address
        offset, weight = self.client.call(self.registry.functions.weightOf(task_id, who))
        return int(offset), int(weight)

    def decisions_of(self, task_id: int, round_: int) -> list[Verdict]:
        """The current decision on every submission of the round."""
        count = self.ballot_of(task_id, round_).submissions
        return unpack_verdicts(
            int(self.client.call(self.registry.functions.decisionsOf(task_id, round_))), count
        )

    # -------------------------------------------------------------- appeals (AppealCourt)
    def _court(self) -> Contract:
        if self.court is None:
            raise ConfigError("this deployment has no AppealCourt: appeals are not enabled on it")
        return self.court

    @property
    def appeals_enabled(self) -> bool:
        """Whether the deployment has an AppealCourt."""
        return self.court is not None

    def appeal_params(self) -> AppealParams:
        """The court's parameters."""
        values = [int(v) for v in self.client.call(self._court().functions.parameters())]
        names = ("window", "draws", "bond", "commit_duration", "reveal_duration", "slash_bps", "reward_bps",
                 "silence_bps")  # fmt: skip
        return AppealParams(**dict(zip(names, values, strict=True)))

    def appeal(self, task_id: int, round_: int, index: int) -> TxReceipt:
        """File an appeal of submission `index` of finalised `round_` (approve the court for the bond)."""
        return self.client.transact(self._court().functions.appeal(task_id, round_, index))

    def draw_appeal(self, task_id: int, round_: int, index: int) -> bytes | None:
        """Read the appeal's seed; None when it was re-armed (too late)."""
        receipt = self.client.transact(self._court().functions.drawAppeal(task_id, round_, index))
        events = _event_args(self._court(), receipt, "AppealDrawn")
        return bytes(events[0]["seed"]) if events else None

    def commit_appeal(
        self, task_id: int, round_: int, index: int, verdict: Verdict, salt: bytes
    ) -> TxReceipt:
        """Commit a drawn juror's verdict on the appeal."""
        commitment = appeal_commitment(task_id, round_, index, self.address, int(verdict), salt)
        return self.client.transact(self._court().functions.commitAppeal(task_id, round_, index, commitment))

    def reveal_appeal(
        self, task_id: int, round_: int, index: int, verdict: Verdict, salt: bytes
    ) -> TxReceipt:
        """Reveal the committed verdict."""
        return self.client.transact(
            self._court().functions.revealAppeal(task_id, round_, index, int(verdict), salt)
        )

    def settle_appeal(self, task_id: int, round_: int, index: int) -> TxReceipt:
        """Decide the appeal (after its reveals closed)."""
        return self.client.transact(self._court().functions.settleAppeal(task_id, round_, index))

    def settle_juror(
        self, task_id: int, round_: int, validator: str, indices: Sequence[int] | None = None
    ) -> TxReceipt:
        """Settle `validator`'s part in the round's appeals of `indices` (a batch; None: every appealed
        index not settled for it yet, in one transaction)."""
        if indices is None:
            done = set(self.juror_settled_indices(task_id, round_, validator))
            indices = [i for i in self.round_appeals(task_id, round_).appealed if i not in done]
        mask = index_mask(indices)
        return self.client.transact(self._court().functions.settleJuror(task_id, round_, validator, mask))

    def juror_settled_indices(self, task_id: int, round_: int, validator: str) -> list[int]:
        """The round's appealed indices already settled for `validator`."""
        mask = int(self.client.call(self._court().functions.jurorSettledIndices(task_id, round_, validator)))
        return [i for i in range(MAX_SUBMISSIONS) if mask >> i & 1]

    def claim_appeal_credit(self) -> int:
        """Withdraw this account's credits at the court; the amount."""
        receipt = self.client.transact(self._court().functions.claim())
        (event,) = _event_args(self._court(), receipt, "CourtClaimed")
        return int(event["amount"])

    def appeal_of(self, task_id: int, round_: int, index: int) -> Appeal:
        """The appeal of submission `index` (appellant zero: none)."""
        v = self.client.call(self._court().functions.appealOf(task_id, round_, index))
        return Appeal(
            to_checksum_address(v[0]), int(v[1]), Verdict(int(v[2])), bool(v[3]), bool(v[4]), int(v[5]),
            bytes(v[6]), *(int(x) for x in v[7:]),
        )  # fmt: skip

    def round_appeals(self, task_id: int, round_: int) -> RoundAppeals:
        """The round's appeals."""
        appealed, pending, fields, finals = self.client.call(
            self._court().functions.roundAppealsOf(task_id, round_)
        )
        mask = int(appealed)
        return RoundAppeals(
            [i for i in range(MAX_SUBMISSIONS) if mask >> i & 1], int(pending), int(fields), int(finals)
        )

    def appeal_draws_of(self, task_id: int, round_: int, index: int, validator: str | None = None) -> int:
        """A validator's draws in the appeal's committee (0 before the draw)."""
        who = validator or self.address
        return int(self.client.call(self._court().functions.drawsOf(task_id, round_, index, who)))

    def juror_of(self, task_id: int, round_: int, index: int, juror: str | None = None) -> tuple[bytes, bool]:
        """A juror's word (commitment, or its verdict once revealed) and whether it revealed."""
        word, revealed = self.client.call(
            self._court().functions.jurorOf(task_id, round_, index, juror or self.address)
        )
        return bytes(word), bool(revealed)

    def juror_settled(self, task_id: int, round_: int, validator: str) -> bool:
        """Whether the court settled `validator` for the round's appeals."""
        return bool(self.client.call(self._court().functions.jurorSettled(task_id, round_, validator)))

    def appeal_credit_of(self, account: str | None = None) -> int:
        """What the court owes `account`."""
        return int(self.client.call(self._court().functions.owedTo(account or self.address)))

    def appeal_window_end(self, task_id: int, round_: int) -> int:
        """When the round's appeal window closes (its ballot's vote end plus the window)."""
        return self.ballot_of(task_id, round_).vote_end + self.appeal_params().window

    # -------------------------------------------------------------- honeypots (HoneypotRegistry)
    def commit_honeypot(self, task_id: int, round_: int, submitter: str, salt: bytes) -> TxReceipt:
        """Commit to a honeypot by `submitter` in `round_` (the task's initiator, in the submit phase)."""
        commitment = honeypot_commitment(task_id, round_, submitter, salt)
        return self.client.transact(self.honeypots.functions.commitHoneypot(task_id, round_, commitment))

    def commit_decoy(self, task_id: int, round_: int, commitment: bytes) -> TxReceipt:
        """Commit a word that opens nothing (a round without a honeypot looks like one that has one)."""
        return self.client.transact(self.honeypots.functions.commitHoneypot(task_id, round_, commitment))

    def reveal_honeypot(
        self, task_id: int, round_: int, index: int, submitter: str, salt: bytes, consent: bytes | None = None
    ) -> TxReceipt:
        """Reveal `round_`'s honeypot: submission `index`, by `submitter` (after the ballot closed), sent by
        `submitter` itself, or with `consent`, its signature over `honeypot_consent_digest`."""
        fns = self.honeypots.functions
        if consent is None:
            return self.client.transact(fns.revealHoneypot(task_id, round_, index, submitter, salt))
        return self.client.transact(fns.revealHoneypotFor(task_id, round_, index, submitter, salt, consent))

    def slash_lazy(self, task_id: int, round_: int, validator: str) -> int:
        """Slash `validator` for accepting `round_`'s rejected honeypot; the amount slashed."""
        receipt = self.client.transact(self.honeypots.functions.slashLazy(task_id, round_, validator))
        (event,) = _event_args(self.honeypots, receipt, "LazySlashed")
        return int(event["slashed"])

    def honeypot_of(self, task_id: int, round_: int) -> Honeypot:
        """Round `round_`'s honeypot record."""
        commitment, submitter, index, revealed = self.client.call(
            self.honeypots.functions.honeypotOf(task_id, round_)
        )
        return Honeypot(bytes(commitment), to_checksum_address(submitter), int(index), bool(revealed))

    def lazy_slashed(self, task_id: int, round_: int, validator: str) -> bool:
        """Whether `validator` was slashed for `round_`'s honeypot."""
        return bool(self.client.call(self.honeypots.functions.lazySlashed(task_id, round_, validator)))

    def honeypot_window_end(self, task_id: int) -> int:
        """When reveals and lazy slashes of the task stop (2**256 - 1 while it is active)."""
        return int(self.client.call(self.honeypots.functions.windowEnd(task_id)))

    def lazy_slash_bps(self) -> int:
        """The deployment's slash per accepted honeypot, in basis points of the allocation."""
        return int(self.client.call(self.honeypots.functions.lazySlashBps()))
