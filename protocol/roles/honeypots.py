"""The initiator's honeypots (contracts/HoneypotRegistry.sol, docs/protocol.md "Laziness does not pay"):
known-bad work planted among a round's submissions so that a validator that accepts without checking is
slashed.

The bait is a trainer identity the initiator runs with a cheat that the checks always reject (the demo runs
`trustrl train --cheat poison` with it: the update is -4 x the real one, caught whatever the seed picks by
`update = base - theta_H`). It takes part like any trainer; its slashed stake is the honeypots' price.

`HoneypotKeeper.step()`, one transaction per call, in the initiator's loop:
* commit: in each round's submit phase (before it closes), once: with probability `rate` a real commitment
  keccak(task, round, bait, salt), otherwise a decoy (a random word nobody can open), so that the rounds
  look alike on chain; the salt and the choice are journalled *before* the transaction (a restart
  reconciles with `honeypotOf`);
* reveal: once the round's ballot is closed, a real honeypot whose bait submitted in that round is revealed
  (its index read from the WorkSubmitted events);
* slash: then every validator whose revealed verdict on it is ACCEPT, when the round decided REJECT
  (`slashLazy`, once each).
Reveals and slashes are due until the task's end plus the settlement grace (`windowEnd`): after that the
validators' allocations unlock, and what was not done is given up.
"""

from __future__ import annotations

import os
import secrets

from eth_utils.address import to_checksum_address
from pydantic import BaseModel, ConfigDict, Field, field_validator

from protocol.contracts import Phase, Role, TaskStatus, Verdict, honeypot_commitment, unpack_verdicts
from protocol.errors import ContractRevert
from protocol.journal import Journal
from protocol.network import TaskView
from protocol.roles.base import Output
from protocol.wire import bytes_to_hex, hex_to_bytes

__all__ = ["RATE_SCALE", "HoneypotKeeper", "HoneypotTerms", "lazy_validators"]

RATE_SCALE = 1_000_000
"""A round is a real honeypot when a uniform draw in [0, RATE_SCALE) is below rate x RATE_SCALE."""


class HoneypotTerms(BaseModel):
    """A task file's `honeypots` section (private to the initiator: it is not part of the task spec)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rate: float = Field(default=0.0, ge=0.0, le=1.0)
    """Fraction of rounds whose commitment is a real honeypot (0: no honeypots, no commitments)."""
    trainer: str | None = None
    """The bait: the address of the initiator's own trainer identity that submits known-bad work."""

    @field_validator("trainer")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return to_checksum_address(value)
        except (ValueError, TypeError):
            raise ValueError(f"not an address: {value!r}") from None

    @property
    def enabled(self) -> bool:
        """Whether the initiator plants honeypots."""
        return self.rate > 0 and self.trainer is not None


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

    def __init__(self, view: TaskView, journal: Journal, out: Output, terms: HoneypotTerms) -> None:
        self.view = view
        self.journal = journal
        self.out = out
        self.terms = terms
        self.waiting = False
        """Whether something is still due (a reveal or a slash whose ballot has not closed yet)."""

    @property
    def task_id(self) -> int:
        return self.view.task_id

    def step(self) -> bool:
        """Send the next due honeypot transaction; True if one was sent."""
        self.waiting = False
        if not self.terms.enabled:
            return False
        state = self.view.state()
        if state.status == TaskStatus.ACTIVE and self._commit(state.round):
            return True
        for round_ in self._real_rounds():
            if self._reveal_and_slash(round_, state.round):
                return True
        self.waiting = bool(self._real_rounds())
        return False

    # ------------------------------------------------------------------ commit
    def _commit(self, round_: int) -> bool:
        """Commit round `round_`'s honeypot or decoy, once, while its submit phase is open."""
        key = str(round_)
        entry = self.journal.entry("honeypot", key)
        if entry is not None and entry.is_done:
            return False
        proto = self.view.proto
        state = self.view.state()
        if state.seed_block != 0 or self.view.now() >= state.submit_end:
            return False
        if entry is None:
            real = secrets.randbelow(RATE_SCALE) < round(self.terms.rate * RATE_SCALE)
            salt = os.urandom(32)
            assert self.terms.trainer is not None
            word = (
                honeypot_commitment(self.task_id, round_, self.terms.trainer, salt)
                if real
                else os.urandom(32)
            )
            self.journal.intent(
                "honeypot",
                key,
                real=real,
                submitter=self.terms.trainer,
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
            if exc.error in ("SubmitPhaseClosed", "WrongRound", "TaskNotActive", "AlreadyCommitted"):
                self.journal.done("honeypot", key, missed=exc.error)
                self.out.log(f"round {round_}: the honeypot commitment was not sent ({exc.error})")
                return True
            raise
        self.journal.done("honeypot", key)
        self.out.log(f"round {round_}: committed a honeypot commitment")
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

    def _reveal_and_slash(self, round_: int, current: int) -> bool:
        proto, key = self.view.proto, str(round_)
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
            proto.reveal_honeypot(self.task_id, round_, index, bait, salt)
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
                raise
            self.out.log(
                f"round {round_}: slashed {self.view.session.tokens(slashed)} tokens of validator "
                f"{validator}, which accepted the honeypot"
            )
            return True
        self.journal.done("honeypot-finished", key, decision=Verdict.REJECT.name)
        return False
