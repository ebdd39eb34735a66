"""The history as the auditor rebuilds it from events: tasks, rounds, submissions, ballots, settlements and
every account's token flows. Plain records filled by the books of `protocol.audit.books`."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from protocol.audit.events import ChainEvent
from protocol.contracts import (
    CreditReason,
    Role,
    TaskStatus,
    ValidatorOutcome,
    Verdict,
    count_no_shows,
    decide,
)

__all__ = [
    "AccountBook",
    "AppealRecord",
    "Finalization",
    "HoneypotRecord",
    "Reveal",
    "RoundRecord",
    "SubmissionRecord",
    "TaskRecord",
    "ValidatorSettlement",
]


@dataclass
class SubmissionRecord:
    """One WorkSubmitted, with the decision recomputed from the reveals and its settlement."""

    task: int
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
    tx: str
    block: int
    decision: Verdict = Verdict.NONE
    """Recomputed from the revealed verdicts (2/3 of the revealed, at least `quorum` revealed)."""
    tally: tuple[int, int, int] = (0, 0, 0)
    """Revealed ACCEPT, REJECT and UNAVAILABLE verdicts."""
    settled_decision: Verdict | None = None
    reward: int | None = None
    slashed: int | None = None
    settle_tx: str | None = None


@dataclass
class Reveal:
    """A validator's revealed verdict vector."""

    validator: str
    word: int
    verdicts: list[Verdict]
    salt: bytes
    tx: str


@dataclass
class Finalization:
    """A RoundFinalized event as emitted, and the values the auditor recomputed."""

    budget: int
    accepted_work: int
    rate: int
    revealed: int
    share: int
    carry: int
    next_base: bytes
    next_deadline: int
    tx: str
    block: int
    expected: dict[str, Any] = field(default_factory=dict)


@dataclass
class ValidatorSettlement:
    """A ValidatorSettled event and what the rules give."""

    outcome: ValidatorOutcome
    amount: int
    expected_outcome: ValidatorOutcome
    expected_amount: int
    tx: str


@dataclass
class RoundRecord:
    """One round of a task."""

    task: int
    number: int
    base: bytes
    """The base checkpoint's sha256 (the initial model, or the previous round's agreed hash)."""
    submissions: list[SubmissionRecord] = field(default_factory=list)
    armed: list[int] = field(default_factory=list)
    """Seed blocks in the order armed."""
    seed_block: int | None = None
    seed: bytes | None = None
    seed_tx: str | None = None
    voting: dict[str, int] | None = None
    """VotingOpened's counts and deadlines."""
    expected_validators: list[str] = field(default_factory=list)
    multiplicities: dict[str, list[int]] | None = None
    """With committees, every expected validator's draws on each submission (recomputed from the seed and
    the weights: protocol.committees); None without."""
    commits: dict[str, tuple[bytes, str]] = field(default_factory=dict)
    reveals: dict[str, Reveal] = field(default_factory=dict)
    vote_commits: dict[str, tuple[bytes, str]] = field(default_factory=dict)
    """validator -> (model vote commitment, tx)."""
    votes: dict[str, tuple[bytes, str, str]] = field(default_factory=dict)
    """validator -> (model hash, CID, tx): the revealed model votes."""
    vote_counts: dict[bytes, int] = field(default_factory=dict)
    agreed: tuple[bytes, str, int] | None = None
    """Recomputed: the first hash to reach 2/3 of the revealed and the quorum (hash, CID, votes)."""
    agreed_tx: str | None = None
    finalization: Finalization | None = None
    validator_settlements: dict[str, ValidatorSettlement] = field(default_factory=dict)
    appeals: dict[int, AppealRecord] = field(default_factory=dict)
    """Submission index -> its appeal (a deployment with an AppealCourt)."""
    gas_used: int = 0
    """Gas of the transactions attributed to this round."""

    @property
    def decided(self) -> bool:
        """Whether the round was finalised."""
        return self.finalization is not None

    def decisions(self) -> list[Verdict]:
        """The recomputed decision of every submission, by index."""
        return [s.decision for s in self.submissions]

    def final_decision(self, index: int) -> Verdict:
        """A submission's decision as its appeal, if any, left it."""
        appeal = self.appeals.get(index)
        if appeal is not None and appeal.decided:
            return appeal.final
        return self.submissions[index].decision

    @property
    def accepted_work(self) -> int:
        """Work units of the submissions recomputed as accepted."""
        return sum(s.work_units for s in self.submissions if s.decision == Verdict.ACCEPT)

    def weight(self, validator: str) -> int:
        """A validator's weight in the round: 1 without committees, its draws with them."""
        if self.multiplicities is None:
            return 1
        return sum(self.multiplicities.get(validator, ()))

    @property
    def revealed_weight(self) -> int:
        """The revealers without committees, their draws with them."""
        return sum(self.weight(v) for v in self.reveals)

    def recount(self, quorum: int) -> None:
        """Recompute every submission's tally and decision from the reveals so far (each verdict counted its
        validator's multiplicity on the submission with committees; the judges of a submission are then the
        revealed draws on it)."""
        revealed = len(self.reveals)
        for sub in self.submissions:
            counts: Counter[Verdict] = Counter()
            for r in self.reveals.values():
                if sub.index < len(r.verdicts):
                    m = 1 if self.multiplicities is None else self.multiplicities[r.validator][sub.index]
                    counts[r.verdicts[sub.index]] += m
            sub.tally = (counts[Verdict.ACCEPT], counts[Verdict.REJECT], counts[Verdict.UNAVAILABLE])
            judges = revealed if self.multiplicities is None else sum(sub.tally)
            sub.decision = decide(*sub.tally, judges, quorum)


@dataclass
class AppealRecord:
    """One appeal (AppealCourt): filed, drawn, its jurors' commitments and verdicts, its decision."""

    appellant: str
    original: Verdict
    bond: int
    tx: str
    seed: bytes | None = None
    total_weight: int = 0
    commits: dict[str, tuple[bytes, int]] = field(default_factory=dict)
    """juror -> (commitment, its draws)."""
    verdicts: dict[str, tuple[Verdict, int]] = field(default_factory=dict)
    """juror -> (revealed verdict, its draws)."""
    decided: bool = False
    overturned: bool = False
    per_draw: int = 0
    victim_owed: int = 0
    silenced: set[str] = field(default_factory=set)
    """Jurors slashed for their silence in this appeal (at most once a round each)."""
    attempt: int = 0
    """How many attempts of the decision's appeal missed the reveal quorum before this one."""
    committee: tuple[bytes, int] | None = None
    """A new attempt's committee: the first attempt's seed and W_r, which its draw must keep."""
    silent_before: set[str] = field(default_factory=set)
    """Jurors drawn and silent in an attempt this one replaced (the same committee)."""

    @property
    def final(self) -> Verdict:
        """The decision as the appeal left it (ACCEPT / REJECT when overturned)."""
        if not self.overturned:
            return self.original
        return Verdict.REJECT if self.original == Verdict.ACCEPT else Verdict.ACCEPT

    def draws(self, juror: str) -> int:
        """The juror's draws as its commit (or reveal) showed them."""
        return self.commits.get(juror, (b"", 0))[1]


@dataclass
class HoneypotRecord:
    """A round's honeypot (HoneypotRegistry): its commitment, what its reveal showed, the lazy slashes."""

    commitment: bytes
    commit_tx: str
    index: int | None = None
    submitter: str | None = None
    decision: Verdict | None = None
    reveal_tx: str | None = None
    lazy: list[str] = field(default_factory=list)
    """Validators whose revealed verdict on it was ACCEPT while the round decided REJECT."""
    reveal_event: ChainEvent | None = None
    """The reveal: where the lazy flags point once the appeals are known (`flag_lazy`)."""
    slashed: dict[str, int] = field(default_factory=dict)
    """validator -> the amount slashLazy took from it."""


@dataclass
class TaskRecord:
    """A task: its parameters (from TaskCreated), participants, rounds and escrow books."""

    id: int
    initiator: str
    params: dict[str, Any]
    deposit: int
    tx: str
    block: int
    status: TaskStatus = TaskStatus.ACTIVE
    participants: dict[str, tuple[Role, int]] = field(default_factory=dict)
    validators: list[str] = field(default_factory=list)
    """In join order (the registry's validator index)."""
    weights: dict[str, int] = field(default_factory=dict)
    """With committees, each validator's weight (its allocation at the join in minimum-stake units)."""
    trainers: list[str] = field(default_factory=list)
    current_round: int = 0
    rounds: dict[int, RoundRecord] = field(default_factory=dict)
    remaining: int = 0
    reserved: int = 0
    empty_rounds: int = 0
    base: bytes = b""
    """The current base checkpoint hash (set from the initial model hash at creation)."""
    refunded: int = 0
    credited: dict[CreditReason, int] = field(default_factory=dict)
    """What the task's escrow credited, by reason."""
    ended_round: int | None = None
    cancel_reason: int | None = None
    no_shows_settled: dict[str, int] = field(default_factory=dict)
    """trainer -> its no-shows settled so far (NoShowsSettled)."""
    seats_freed: dict[str, int] = field(default_factory=dict)
    """trainer -> the round in which its seat was freed (SeatFreed)."""
    honeypots: dict[int, HoneypotRecord] = field(default_factory=dict)
    """round -> its honeypot (HoneypotCommitted, HoneypotRevealed, LazySlashed)."""

    def submitted_rounds(self, trainer: str) -> list[int]:
        """The rounds in which `trainer` submitted."""
        return [r.number for r in self.rounds.values() if any(s.trainer == trainer for s in r.submissions)]

    def no_shows(self, trainer: str) -> tuple[int, int]:
        """(unsettled no-shows, rounds missed in a row) of a trainer, as the contract counts them."""
        first = self.participants[trainer][1]
        return count_no_shows(
            first,
            self.submitted_rounds(trainer),
            self.no_shows_settled.get(trainer, 0),
            self.current_round,
            self.seats_freed.get(trainer),
        )

    def param(self, name: str) -> int:
        """An integer task parameter by its Solidity name (`numRounds`, ...)."""
        return int(self.params[name])

    @property
    def draws(self) -> int:
        """The task's committee draws per submission (0: no committees)."""
        return int(self.params.get("committeeDraws", 0))

    @property
    def num_rounds(self) -> int:
        """Rounds of the task."""
        return self.param("numRounds")

    def round(self, number: int) -> RoundRecord:
        """Round `number`, created on its first event with the current base (rounds run one after the
        other, so the base then is the round's base)."""
        if number not in self.rounds:
            self.rounds[number] = RoundRecord(task=self.id, number=number, base=self.base)
        return self.rounds[number]

    def validators_in(self, number: int) -> list[str]:
        """Validators active in round `number` (joined from a round <= it), in join order."""
        return [v for v in self.validators if self.participants[v][1] <= number]


@dataclass
class AccountBook:
    """One account's stake and credit, rebuilt from events, and its token flows with the protocol."""

    address: str
    bonded: int = 0
    allocated: int = 0
    unbonding: int = 0
    allocations: dict[int, int] = field(default_factory=dict)
    credit: int = 0
    staked: int = 0
    withdrawn: int = 0
    slashed: int = 0
    slashed_by_task: dict[int, int] = field(default_factory=dict)
    credited: dict[CreditReason, int] = field(default_factory=dict)
    credited_by_task: dict[int, int] = field(default_factory=dict)
    claimed: int = 0
    deposited: int = 0

    @property
    def paid_in(self) -> int:
        """Tokens the account sent to the protocol: stakes and task deposits."""
        return self.staked + self.deposited

    @property
    def held(self) -> int:
        """What the protocol holds for the account now: bonded + unbonding stake + unclaimed credit."""
        return self.bonded + self.unbonding + self.credit
