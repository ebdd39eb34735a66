"""The initiator's honeypots (contracts/HoneypotRegistry.sol, docs/protocol.md "Laziness does not pay"):
known-bad work planted among a round's submissions so that a validator that accepts without checking is
slashed.

Which rounds hold a honeypot, and which bait of the pool submits it, is the bait plan's pseudo-random
choice (`protocol.baits`): a secret file shared by this planner and its bait trainers (`trustrl train
--bait-secret PATH --cheat bait`, the defect rotated by the plan over the expensive checks' defects, or one
of `protocol.baits.BAIT_DEFECTS` fixed), which train honestly in every other round. Nothing on chain tells a
bait from an honest trainer until a reveal.

`HoneypotKeeper.step()`, one transaction per call, in the initiator's loop:
* commit: every round is committed to once, before it opens (during the round before it, or before the
  task's start for round 0): keccak(task, round, bait, salt) in the plan's honeypot rounds, otherwise a
  decoy word nobody can open, so the rounds look alike on chain; the choice, salt and word are journalled
  *before* the transaction (a restart reconciles with `honeypotOf`, and recomputes them from the plan);
* reveal: a real honeypot whose bait submitted is revealed once the round's ballot is closed **and** the
  bait has no honeypot left in the task (the ballot of its last honeypot round closed, or the task ended):
  a revealed bait is burnt, so a bait's honeypots are revealed together, when it is spent (its index read
  from the WorkSubmitted events). The registry needs the bait's consent: the bait's signature, which it
  writes beside the plan file when it submits the honeypot (`protocol.baits.write_consent`); without it
  the reveal waits (and, past the window, is given up: nobody is slashed);
* slash: then every validator whose revealed verdict on it is ACCEPT, when the round decided REJECT
  (`slashLazy`, once each). With an AppealCourt the court-settled decision must be REJECT as well: while
  the round's appeal window is open or an appeal of the honeypot is pending (`AppealWindowOpen`,
  `AppealPending`) the slash waits; a REJECT the court overturned slashes nobody.
Reveals and slashes are due until the task's end plus the settlement grace (`windowEnd`): after that the
validators' allocations unlock, and what was not done is given up.
"""

from __future__ import annotations

from pathlib import Path

from eth_utils.address import to_checksum_address
from pydantic import BaseModel, ConfigDict, Field, field_validator

from protocol.baits import (
    BaitPlan,
    RoundScope,
    decoy_word,
    honeypot_bait,
    honeypot_salt,
    read_consent,
    schedule,
)
from protocol.contracts import Phase, Role, TaskStatus, Verdict, honeypot_commitment, unpack_verdicts
from protocol.errors import ContractRevert
from protocol.journal import Journal
from protocol.network import TaskView
from protocol.roles.base import Output
from protocol.wire import bytes_to_hex, hex_to_bytes

__all__ = ["NOT_YET", "HoneypotKeeper", "HoneypotTerms", "lazy_validators"]

NOT_YET = ("AppealWindowOpen", "AppealPending")
"""`slashLazy`'s reverts (from the court's settled decision) that mean "later", not "never"."""


def _address(value: str) -> str:
    try:
        return to_checksum_address(value)
    except (ValueError, TypeError):
        raise ValueError(f"not an address: {value!r}") from None


class HoneypotTerms(BaseModel):
    """A task file's `honeypots` section (private to the initiator: it is not part of the task spec)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rate: float = Field(default=0.0, ge=0.0, le=1.0)
    """Fraction of rounds with a real honeypot (0: no honeypots, no commitments)."""
    trainer: str | None = None
    """The bait, when there is one: the address of the initiator's own trainer identity (or `trainers`)."""
    trainers: tuple[str, ...] = ()
    """The bait pool: the plan picks which of them submits each honeypot."""
    secret: Path | None = None
    """The bait plan file (`protocol.baits`), created on first use (`--honeypot-secret`)."""

    @field_validator("trainer")
    @classmethod
    def _one(cls, value: str | None) -> str | None:
        return None if value is None else _address(value)

    @field_validator("trainers")
    @classmethod
    def _pool(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        out = tuple(_address(v) for v in value)
        if len(set(out)) != len(out):
            raise ValueError("a bait is named twice")
        return out

    @property
    def baits(self) -> tuple[str, ...]:
        """The bait pool: `trainers`, else the one `trainer`."""
        if self.trainers:
            return self.trainers
        return (self.trainer,) if self.trainer is not None else ()

    @property
    def enabled(self) -> bool:
        """Whether the initiator plants honeypots."""
        return self.rate > 0 and bool(self.baits)


def lazy_validators(verdict_words: dict[str, tuple[int, bool]], index: int, submissions: int) -> list[str]:
    """The validators whose revealed verdict on submission `index` is ACCEPT, from their
    (verdict word, revealed) of the round: those `slashLazy` slashes when the round decided REJECT."""
    return [
        v
        for v, (word, revealed) in verdict_words.items()
        if revealed and unpack_verdicts(word, submissions)[index] == Verdict.ACCEPT
    ]


class HoneypotKeeper:
    """Commits, reveals and slashes for one task (see the module docstring)."""

    def __init__(self, view: TaskView, journal: Journal, out: Output, plan: BaitPlan | None) -> None:
        self.view = view
        self.journal = journal
        self.out = out
        self.plan = plan
        self.waiting = False
        """Whether something is still due (a reveal or a slash whose ballot has not closed yet)."""

    @property
    def task_id(self) -> int:
        return self.view.task_id

    @property
    def scope(self) -> RoundScope:
        """The PRF's scope of this task."""
        session = self.view.session
        return RoundScope(session.chain_id, session.config.deployment.task_escrow, self.task_id)

    def step(self) -> bool:
        """Send the next due honeypot transaction; True if one was sent."""
        self.waiting = False
        if self.plan is None or self.plan.rate == 0:
            return False
        state = self.view.state()
        if state.status == TaskStatus.ACTIVE:
            for round_ in (state.round, state.round + 1):
                if round_ < self.view.config.num_rounds and self._commit(round_):
                    return True
        for round_ in self._real_rounds():
            if self._reveal_and_slash(round_):
                return True
        self.waiting = bool(self._real_rounds())
        return False

    # ------------------------------------------------------------------ commit
    def _commit(self, round_: int) -> bool:
        """Commit round `round_`'s honeypot or decoy, once, before the round opens."""
        assert self.plan is not None
        key = str(round_)
        entry = self.journal.entry("honeypot", key)
        if entry is not None and entry.is_done:
            return False
        proto = self.view.proto
        state = self.view.state()
        if round_ == state.round and self.view.now() >= state.round_start:
            if entry is not None and proto.honeypot_of(self.task_id, round_).commitment == hex_to_bytes(
                str(entry.data["commitment"])
            ):  # sent before a restart
                self.journal.done("honeypot", key, reconciled=True)
                return True
            self.journal.done("honeypot", key, missed="RoundOpened")
            self.out.log(f"round {round_} opened before its honeypot commitment was sent; it has none")
            return True
        if entry is None:
            bait = honeypot_bait(self.plan, self.scope, round_)
            salt = honeypot_salt(self.plan, self.scope, round_)
            word = (
                honeypot_commitment(self.task_id, round_, bait, salt)
                if bait is not None
                else decoy_word(self.plan, self.scope, round_)
            )
            self.journal.intent(
                "honeypot",
                key,
                real=bait is not None,
                submitter=bait,
                salt=bytes_to_hex(salt),
                commitment=bytes_to_hex(word),
            )
            entry = self.journal.entry("honeypot", key)
            assert entry is not None
        commitment = hex_to_bytes(str(entry.data["commitment"]))
        try:
            proto.commit_decoy(self.task_id, round_, commitment)
        except ContractRevert as exc:
            if (
                exc.error == "AlreadyCommitted"
                and proto.honeypot_of(self.task_id, round_).commitment == commitment
            ):
                self.journal.done("honeypot", key, reconciled=True)
                return True
            if exc.error in ("RoundOpened", "NoSuchRound", "TaskNotActive", "AlreadyCommitted"):
                self.journal.done("honeypot", key, missed=exc.error)
                self.out.log(f"round {round_}: the honeypot commitment was not sent ({exc.error})")
                return True
            raise
        self.journal.done("honeypot", key)
        self.out.log(f"round {round_}: committed a honeypot commitment (before the round opened)")
        return True

    # ------------------------------------------------------------------ reveal and slash
    def _real_rounds(self) -> list[int]:
        """The rounds with a real honeypot on chain whose reveal-and-slash work is not finished."""
        rounds = []
        for entry in self.journal.entries("honeypot"):
            real = entry.is_done and entry.data.get("real") and "missed" not in entry.data
            if real and not self.journal.is_done("honeypot-finished", entry.key):
                rounds.append(int(entry.key))
        return sorted(rounds)

    def _spent(self, bait: str) -> bool:
        """Whether `bait` has no honeypot left to submit in the task: the ballot of its last honeypot round
        closed, that round is over, or the task ended."""
        assert self.plan is not None
        plan = schedule(self.plan, self.scope, self.view.config.num_rounds)
        mine = [r for r, b in plan.items() if b == bait]
        state = self.view.state()
        last = max(mine, default=-1)
        return (
            state.status != TaskStatus.ACTIVE
            or state.round > last
            or self.view.proto.phase_of(self.task_id, last) == Phase.CLOSED
        )

    def _reveal_and_slash(self, round_: int) -> bool:
        proto, key = self.view.proto, str(round_)
        current = self.view.state().round
        if self.view.now() >= proto.honeypot_window_end(self.task_id):
            self.journal.done("honeypot-finished", key, expired=True)
            self.out.log(f"round {round_}: the honeypot window closed before its work was done")
            return False
        phase = proto.phase_of(self.task_id, round_)
        if phase != Phase.CLOSED:
            if phase == Phase.NOT_OPEN and current > round_:  # finalised without a ballot (no submission)
                self.journal.done("honeypot-finished", key, no_ballot=True)
            else:
                self.waiting = True
            return False
        entry = self.journal.entry("honeypot", key)
        assert entry is not None
        bait, salt = str(entry.data["submitter"]), hex_to_bytes(str(entry.data["salt"]))
        mine = [s for s in self.view.submissions(round_) if s.trainer == bait]
        if not mine:
            self.journal.done("honeypot-finished", key, bait_did_not_submit=True)
            self.out.log(f"round {round_}: the bait did not submit; the honeypot stays closed")
            return False
        index = mine[0].index
        record = proto.honeypot_of(self.task_id, round_)
        if not record.revealed:
            if not self._spent(bait):
                self.waiting = True  # revealed with the bait's last honeypot: a revealed bait is burnt
                return False
            consent = None
            if bait != proto.address:
                assert self.plan is not None
                consent = read_consent(self.plan, self.scope, round_)
                if consent is None:  # the bait has not written it (yet)
                    self.waiting = True
                    return False
            try:
                proto.reveal_honeypot(self.task_id, round_, index, bait, salt, consent)
            except ContractRevert as exc:
                if exc.error != "AlreadyRevealed":  # the bait (or anyone with its consent) was first
                    raise
            decision = proto.decisions_of(self.task_id, round_)[index]
            self.out.log(
                f"round {round_}: revealed the honeypot (submission {index}, decided {decision.name})"
            )
            return True
        decisions = proto.decisions_of(self.task_id, round_)
        if decisions[index] != Verdict.REJECT:
            self.journal.done("honeypot-finished", key, decision=decisions[index].name)
            return False
        words = {
            v: proto.verdicts_of(self.task_id, round_, v)
            for v, first in self.view.participants(Role.VALIDATOR)
            if first <= round_
        }
        for validator in lazy_validators(words, index, len(decisions)):
            if proto.lazy_slashed(self.task_id, round_, validator):
                continue
            try:
                slashed = proto.slash_lazy(self.task_id, round_, validator)
            except ContractRevert as exc:
                if exc.error == "AlreadySlashed":  # another caller was first
                    return True
                if exc.error in NOT_YET:  # the round's appeal window or an appeal of the honeypot
                    self.waiting = True
                    return False
                if exc.error == "HoneypotNotRejected":  # the court overturned the REJECT
                    self.journal.done("honeypot-finished", key, decision="overturned")
                    self.out.log(f"round {round_}: the court overturned the honeypot's REJECT; no slash")
                    return False
                raise
            self.out.log(
                f"round {round_}: slashed {self.view.session.tokens(slashed)} tokens of validator "
                f"{validator}, which accepted the honeypot"
            )
            return True
        self.journal.done("honeypot-finished", key, decision=Verdict.REJECT.name)
        return False
