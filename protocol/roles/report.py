"""What happened in a task, read from chain events only: per round, each submission's decision, reward and
slash, each validator's outcome, and the round's money. Used by `trustrl task status` and the demo."""

from __future__ import annotations

from dataclasses import dataclass, field

from protocol.contracts import ValidatorOutcome, Verdict
from protocol.network import TaskView

__all__ = ["RoundSummary", "SubmissionSummary", "summarize_rounds"]


@dataclass
class SubmissionSummary:
    """One submission and how it was settled."""

    index: int
    trainer: str
    work_units: int
    decision: Verdict | None = None
    """The decision (None while the round's verdicts are not revealed; NONE: undecided)."""
    settled: bool = False
    """Whether its reward or slash was settled."""
    reward: int = 0
    slashed: int = 0


@dataclass
class RoundSummary:
    """One round as the events tell it."""

    round: int
    submissions: list[SubmissionSummary] = field(default_factory=list)
    validators: dict[str, tuple[ValidatorOutcome, int]] = field(default_factory=dict)
    finalized: bool = False
    budget: int = 0
    """The round's reward plus what earlier rounds carried over (dust, unspent pools, forfeited shares)."""
    rate: int = 0
    carry: int = 0
    """What the round did not pay out: it stays in the escrow for later rounds (or the initiator's refund)."""
    next_base: bytes = b""

    @property
    def accepted(self) -> int:
        """Submissions settled as ACCEPT."""
        return sum(1 for s in self.submissions if s.decision == Verdict.ACCEPT)

    @property
    def rejected(self) -> int:
        """Submissions decided REJECT (the work was checked and found wrong)."""
        return sum(1 for s in self.submissions if s.decision == Verdict.REJECT)

    @property
    def unavailable(self) -> int:
        """Submissions decided UNAVAILABLE (what the validators had to fetch was not served in time)."""
        return sum(1 for s in self.submissions if s.decision == Verdict.UNAVAILABLE)

    @property
    def undecided(self) -> int:
        """Submissions settled with no decision."""
        return sum(1 for s in self.submissions if s.decision == Verdict.NONE)

    @property
    def paid(self) -> int:
        """Rewards credited to trainers and validators for this round."""
        return sum(s.reward for s in self.submissions) + sum(
            amount for outcome, amount in self.validators.values() if outcome == ValidatorOutcome.REWARDED
        )

    @property
    def slashed(self) -> int:
        """Stake slashed for this round (trainers and validators)."""
        return sum(s.slashed for s in self.submissions) + sum(
            amount for outcome, amount in self.validators.values() if outcome == ValidatorOutcome.SLASHED
        )

    @property
    def settled(self) -> bool:
        """Whether every submission of the finalised round is settled."""
        return self.finalized and all(s.settled for s in self.submissions)


def summarize_rounds(view: TaskView) -> list[RoundSummary]:
    """Every round that has started, from the task's events."""
    rounds: dict[int, RoundSummary] = {}

    def get(r: int) -> RoundSummary:
        if r not in rounds:
            rounds[r] = RoundSummary(r)
        return rounds[r]

    for e in view.events("task_escrow", "WorkSubmitted"):
        get(int(e["round"])).submissions.append(
            SubmissionSummary(int(e["index"]), str(e["trainer"]), int(e["workUnits"]))
        )
    for e in view.events("task_escrow", "RoundFinalized"):
        summary = get(int(e["round"]))
        summary.finalized = True
        summary.budget, summary.rate, summary.carry = int(e["budget"]), int(e["rate"]), int(e["carry"])
        summary.next_base = bytes(e["nextBase"])
    for e in view.events("task_escrow", "SubmissionSettled"):
        summary = get(int(e["round"]))
        for sub in summary.submissions:
            if sub.index == int(e["index"]):
                sub.decision, sub.settled = Verdict(int(e["decision"])), True
                sub.reward, sub.slashed = int(e["reward"]), int(e["slashed"])
    for e in view.events("task_escrow", "ValidatorSettled"):
        get(int(e["round"])).validators[str(e["validator"])] = (
            ValidatorOutcome(int(e["outcome"])),
            int(e["amount"]),
        )
    state = view.state()
    for r in range(min(state.round + 1, view.config.num_rounds)):
        get(r)
    for summary in rounds.values():
        summary.submissions.sort(key=lambda s: s.index)
        if summary.finalized and summary.submissions and not all(s.settled for s in summary.submissions):
            decisions = view.proto.decisions_of(view.task_id, summary.round)
            for sub in summary.submissions:
                if not sub.settled and sub.index < len(decisions):
                    sub.decision = decisions[sub.index]
    return [rounds[r] for r in sorted(rounds)]
