"""What an audit finds: a `Discrepancy` is one disagreement between what the rules and the evidence say
and what the chain (or IPFS) shows, with the transaction or CID that shows it."""

from __future__ import annotations

from enum import IntEnum, StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict

__all__ = ["Discrepancy", "Kind", "fmt"]


def fmt(value: Any) -> str:
    """A value as a discrepancy shows it: bytes as 0x-hex, enums by name, the rest as str."""
    if isinstance(value, bytes | bytearray):
        return "0x" + bytes(value).hex()
    if isinstance(value, IntEnum):
        return value.name
    if isinstance(value, list | tuple):
        return "[" + ", ".join(fmt(v) for v in value) + "]"
    return str(value)


class Kind(StrEnum):
    """The kinds of discrepancy, one per rule the auditor checks."""

    EVENT_ORDER = "event_order"
    """An event the rules do not allow where it stands (wrong round, twice, by someone not entitled)."""
    COMMITMENT = "commitment"
    """A revealed verdict vector does not hash to its commitment, or is malformed."""
    SEED = "seed"
    """A seed block or seed that is not what the rules give."""
    VOTING = "voting"
    """A ballot opened with other counts or deadlines than the task and its participants give."""
    DECISION = "decision"
    """A decision differs from the one recomputed from the revealed verdicts (2/3 + quorum)."""
    MODEL_AGREEMENT = "model_agreement"
    """A model-hash agreement the votes do not give, or one they give that the chain did not record."""
    FINALIZATION = "finalization"
    """A RoundFinalized number (budget, accepted work, rate, share, carry, next base) not recomputed."""
    SETTLEMENT = "settlement"
    """A settlement's decision, reward or outcome that is not recomputed."""
    SLASH = "slash"
    """A slash of another amount than the rules give, or one no settlement explains."""
    CREDIT = "credit"
    """A credit nobody earned, or an earned credit that never arrived."""
    CLAIM = "claim"
    """A claim that pays other than the account's whole credit."""
    REFUND = "refund"
    """An end-of-task refund of another amount than what remained."""
    STAKE = "stake"
    """A stake movement the stake rules do not allow."""
    BALANCE = "balance"
    """A contract's token balance differs from what the events say it owes."""
    VIEW = "view"
    """A contract view differs from the state rebuilt from events."""
    VERDICT = "verdict"
    """Re-verifying a submission gives another verdict than the chain decided."""
    AGGREGATE = "aggregate"
    """The finalised checkpoint is not the aggregate of the accepted updates."""
    UNVERIFIABLE = "unverifiable"
    """An artifact needed to re-verify is missing or unreadable: the work cannot be checked."""
    HOSTILE_VALUES = "hostile_values"
    """An artifact holds non-finite or absurd values (NaN, an infinity, beyond the tensor rules' bound):
    an attack or a broken node, reported whatever the chain decided."""
    NO_SHOW = "no_show"
    """A trainer's no-shows settled, or its seat freed, other than its rounds and submissions give."""
    NO_AGREEMENT = "no_agreement"
    """A round with submissions ended without an agreed model (the detail says why)."""
    MODEL_VOTE = "model_vote"
    """A validator that revealed its verdicts did not reveal a vote for the recomputed next model: it voted
    another hash, or none (its share of the round is forfeited, or was paid for a wrong agreed model)."""
    HONEYPOT = "honeypot"
    """A honeypot commit, reveal or lazy slash the HoneypotRegistry's rules do not allow."""
    APPEAL = "appeal"
    """An appeal, a juror's draws, commitment or verdict, an appeal's decision or pay, or a juror's settlement
    that the AppealCourt's rules do not give."""
    LAZY_VALIDATOR = "lazy_validator"
    """A validator revealed ACCEPT on a revealed honeypot the round decided REJECT: it accepted known-bad
    work (a participant's misbehaviour, reported whether or not `slashLazy` slashed it)."""


class Discrepancy(BaseModel):
    """One disagreement. `evidence` is the transaction hash or CID that shows it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Kind
    """Which rule."""
    task: int | None
    """The task (None for deployment-wide findings such as a contract's balance)."""
    round: int | None
    """The round, when the finding is about one."""
    subject: str
    """What disagrees, e.g. `RoundFinalized.rate` or `submission 2 (0xabc...)`."""
    expected: str
    """What the rules and the evidence give."""
    actual: str
    """What the chain (or IPFS) shows."""
    evidence: str
    """The transaction hash or CID that shows it."""
    detail: str = ""
    """More explanation, when useful."""

    def line(self) -> str:
        """A one-line description."""
        where = (
            ""
            if self.task is None
            else f"task {self.task}" + ("" if self.round is None else f" round {self.round}")
        )
        head = f"[{self.kind.value}] {where}: " if where else f"[{self.kind.value}] "
        tail = f" — {self.detail}" if self.detail else ""
        return f"{head}{self.subject}: expected {self.expected}, got {self.actual} ({self.evidence}){tail}"
