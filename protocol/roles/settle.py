"""Settlement and the permissionless upkeep of a task: draw seeds, finalise rounds, settle, claim.

Any participant may run a `Keeper`; validators and the initiator do (the initiator settles everything,
the others their own part, trainers also draw seeds). Every call is safe to repeat and to race with
another keeper: it is only sent when the chain says it is due, and the reverts that mean "someone was
faster" (SeedAlreadyDrawn, SubmissionAlreadySettled, ...) are expected and ignored.
"""

from __future__ import annotations

from protocol.contracts import Phase, Role, TaskStatus
from protocol.errors import ContractRevert
from protocol.journal import Journal
from protocol.network import Session, TaskView
from protocol.roles.base import Output

__all__ = ["RACE_ERRORS", "Keeper", "claim_credit"]

RACE_ERRORS = frozenset(
    {
        "SeedAlreadyDrawn",
        "SeedTooEarly",
        "SubmitPhaseOpen",
        "VotingNotClosed",
        "SeedNotDrawn",
        "SubmissionAlreadySettled",
        "ValidatorAlreadySettled",
        "NothingToClaim",
        "TaskNotActive",
        "NoSubmissions",
        "WrongRound",
        "RoundNotFinalized",
    }
)
"""Reverts that only mean another keeper acted first (or the chain moved on meanwhile)."""


def claim_credit(session: Session, out: Output) -> int:
    """Claim this account's whole credit if it has one; returns the amount paid (0 if none)."""
    proto = session.proto
    if proto.credit_of() == 0:
        return 0
    try:
        amount = proto.claim()
    except ContractRevert as exc:
        if exc.error != "NothingToClaim":
            raise
        return 0
    balance = proto.token_balance()
    out.log(f"claimed {session.tokens(amount)} tokens; wallet balance {session.tokens(balance)}")
    return amount


class Keeper:
    """Does the task's due upkeep. `settle_all`: settle every submission and validator (else only this
    account's own); `draw_seeds`, `finalize`: whether to draw seeds and finalise rounds."""

    def __init__(
        self,
        view: TaskView,
        journal: Journal,
        out: Output,
        *,
        settle_all: bool = False,
        draw_seeds: bool = True,
        finalize: bool = True,
    ) -> None:
        self.view = view
        self.journal = journal
        self.out = out
        self.settle_all = settle_all
        self.draw_seeds = draw_seeds
        self.finalize = finalize

    @property
    def me(self) -> str:
        """This keeper's address."""
        return self.view.proto.address

    def _try(self, what: str, action: object) -> bool:
        try:
            action()  # type: ignore[operator]
        except ContractRevert as exc:
            # A mined transaction that reverted but does not revert when replayed on its parent block lost a
            # race within that block (its replay has no revert data): the same as a race error.
            if exc.error in RACE_ERRORS or (exc.error == "UnknownError" and exc.tx is not None):
                return False
            raise
        self.out.log(what)
        return True

    def step(self) -> bool:
        """Send the next due upkeep transaction, if any; True if one was sent."""
        view, proto = self.view, self.view.proto
        state = view.state()
        did = False
        if state.status == TaskStatus.ACTIVE:
            now = view.now()
            round_ = state.round
            if self.draw_seeds and not state.seed_drawn and state.submissions > 0:
                due = (state.seed_block == 0 and now >= state.submit_end) or (
                    state.seed_block != 0 and proto.client.block_number() > state.seed_block
                )
                if due:
                    did = self._try(
                        f"drew the seed of round {round_}", lambda: proto.draw_seed(self.view.task_id)
                    )
            elif self.finalize and state.seed_drawn:
                if proto.phase_of(view.task_id, round_) == Phase.CLOSED:
                    did = self._try(
                        f"finalised round {round_}", lambda: proto.finalize_round(self.view.task_id)
                    )
            elif self.finalize and state.submissions == 0 and now >= state.round_start:
                active = int(proto.client.call(proto.escrow.functions.activeTrainers(view.task_id, round_)))
                # A round nobody trains in may end at once, which lets trainers that joined during it start
                # sooner; with nobody waiting for the next round either, it runs to its deadline instead of
                # burning the task's rounds before anyone arrives.
                waiting = any(first <= round_ + 1 for _, first in view.participants(Role.TRAINER))
                if now >= state.submit_end or (active == 0 and waiting):
                    did = self._try(
                        f"finalised round {round_} (no submissions)",
                        lambda: proto.finalize_round(view.task_id),
                    )
        # Rounds 0 .. state.round - 1 are finalised, whether the task is active, completed or cancelled.
        return self._settle_up_to(state.round) or did

    def _settle_up_to(self, end: int) -> bool:
        """Settle what is due in the finalised rounds before `end` (one transaction per call)."""
        for round_ in range(end):
            key = f"{round_}:{'all' if self.settle_all else 'own'}"
            if self.journal.is_done("settled", key):
                continue
            pending = self._pending(round_)
            if not pending:
                self.journal.done("settled", key)
                continue
            what, action = pending[0]
            self._try(what, action)
            return True
        return False

    def _pending(self, round_: int) -> list[tuple[str, object]]:
        """The settlements of a finalised round that this keeper should still send."""
        view, proto = self.view, self.view.proto
        task = view.task_id
        out: list[tuple[str, object]] = []
        try:
            _, _, had_ballot = proto.round_result_of(task, round_)
        except ContractRevert:
            return out
        for sub in view.submissions(round_):
            if not self.settle_all and sub.trainer != self.me:
                continue
            _, _, settled = proto.submission_of(task, round_, sub.index)
            if not settled:
                out.append(
                    (
                        f"settled submission {sub.index} of round {round_} ({sub.trainer})",
                        lambda i=sub.index: proto.settle_submission(task, round_, i),
                    )
                )
        if had_ballot:
            for validator, first in view.participants(Role.VALIDATOR):
                if first > round_ or (not self.settle_all and validator != self.me):
                    continue
                done = bool(
                    proto.client.call(proto.escrow.functions.validatorSettled(task, round_, validator))
                )
                if not done:
                    out.append(
                        (
                            f"settled validator {validator} for round {round_}",
                            lambda v=validator: proto.settle_validator(task, round_, v),
                        )
                    )
        return out
