"""Settlement and the permissionless upkeep of a task: draw seeds, finalise rounds, free the seats of
trainers that stopped submitting, settle, claim.

Any participant may run a `Keeper`; everyone does (the initiator waits for everything to be settled,
the others for their own part, trainers also draw seeds). Every call is only sent when the chain says it is
due, and its gas is estimated first on the pending state, so a call that the chain, or another keeper's
pending transaction, already made pointless reverts at the estimate and costs nothing.

What is left is the race of keepers that see the same duty due and send in the same block: all but one
revert, mined. Duties are therefore taken in turn (`rotation`): the candidates of a duty (for a seed:
the initiator, the trainers and the validators; for a finalisation: the initiator and the validators;
for a round's settlement: the initiator and those with something to settle in it, its submitters and its
validators) are sorted and rotated by keccak(task, round, duty), and the k-th in that order acts only
once the duty has been due for k `slot`s (measured locally from when this keeper first saw it due), so
the next one steps in when the designated keeper is late or gone. A slot is two block intervals (the
median of the last 8) plus two poll intervals (2 s to 60 s): time for the designated keeper to notice the
duty and get its transaction mined. The reverts that still happen when a late keeper and its fallback
meet in one block (SeedAlreadyDrawn, NothingSettled, ...) are expected and ignored.

A round is settled in one `settleRound` transaction (at most `MAX_BATCH` items each) by the keeper whose
turn it is, for everyone: one transaction instead of one per submission and per validator, whose shared
reads are paid once (about a quarter of the gas). Its sender pays for the round; the rotation spreads
that duty over the round's participants.

Appeals (a deployment with an AppealCourt, docs/protocol.md "Appeals"): a round is settled only once its
appeal window has closed (`voteEnd + window`); meanwhile any keeper draws the seed of an appeal that is due
and decides an appeal whose reveals have closed (races are ignored like the others). Once the window is
closed, the keeper's batch leaves out the appealed submissions still pending, and the round's validators
while any appeal of the round is pending; once every appeal of the round is decided, it settles each
validator's part in them at the court (`settleJuror`, before the escrow can settle that validator: per
validator, batches of appealed indices, each sized by `juror_batches` to fit `JUROR_BATCH_GAS`), then the
rest as usual. So one pending appeal holds its own submission and the
round's validators, for at most its seed delay, commit and reveal phases, never the other submissions.

Claims: once a task has ended, its participants are paid out once (`upkeep`), not every round, and in
one `claimFor` batch: the first keeper of the task's "claim" rotation (the initiator and every participant)
pays everyone with credit once every round is settled (~16k gas an account instead of a ~47k `claim`
each); any other keeper still credited `CLAIM_WAIT` slots after it first saw the task ended (the designated
keeper late or gone, or a credit that arrived after its batch) claims its own. The designated keeper pays
whoever has credit after the same wait even if something is still unsettled. The credit is safe in the
RewardDistributor meanwhile (`trustrl claim` takes it at any time).
"""

from __future__ import annotations

import functools
import itertools
import time
from collections.abc import Sequence

from eth_utils.crypto import keccak
from web3.logs import DISCARD

from protocol.contracts import Phase, Role, TaskState, TaskStatus, count_no_shows
from protocol.errors import ContractRevert
from protocol.journal import Journal
from protocol.network import Session, Submission, TaskView
from protocol.roles.base import Output

__all__ = [
    "CLAIM_WAIT",
    "JUROR_BATCH_GAS",
    "MAX_BATCH",
    "MAX_CLAIMS",
    "MAX_SLOT",
    "MIN_SLOT",
    "RACE_ERRORS",
    "Keeper",
    "claim_credit",
    "claim_for",
    "juror_batch_gas",
    "juror_batches",
    "rotation",
]

MIN_SLOT = 2.0
"""Shortest keeper slot (seconds)."""

MAX_SLOT = 60.0
"""Longest keeper slot (seconds): the k-th fallback acts at most k minutes after a duty fell due."""

MAX_BATCH = 128
"""Most submissions and validators settled by one `settleRound` transaction (~25-45k gas each)."""

JUROR_BATCH_GAS = 8_000_000
"""The keeper's gas budget for one `settleJuror` batch (well under a 30M block, and under the 16.7M
per-transaction cap of EIP-7825): the appealed indices are split into batches whose `juror_batch_gas`
estimate fits it."""

JUROR_BASE_GAS = 160_000
"""`settleJuror`'s cost outside its loop (the checks, the registry and escrow reads, the seize): about 154k
measured (scripts/bench_gas.py --appeals 1 and 128, K_a = 201: 357k for one index, 7.86M for 38), rounded
up."""

JUROR_INDEX_GAS = 50_000
"""Per appealed index of a batch, beyond the draws: the appeal's slots, the registry's `lineOf`, and the
costliest outcome (a slash that pays the wronged trainer and the appellant); with `JUROR_DRAW_GAS`, about
203k an index measured at K_a = 201, estimated 211k."""

JUROR_DRAW_GAS = 800
"""Per draw K_a of each appealed index (the juror's multiplicity is recomputed by hashing, ~0.75k a draw),
rounded up."""


def juror_batch_gas(indices: int, draws: int) -> int:
    """An upper estimate of a `settleJuror` batch of `indices` appealed indices with K_a = `draws`:
    `JUROR_BASE_GAS + indices * (JUROR_INDEX_GAS + JUROR_DRAW_GAS * draws)`."""
    return JUROR_BASE_GAS + indices * (JUROR_INDEX_GAS + JUROR_DRAW_GAS * draws)


def juror_batches(indices: Sequence[int], draws: int, budget: int = JUROR_BATCH_GAS) -> list[list[int]]:
    """`indices` (ascending) split into consecutive batches of the largest size whose `juror_batch_gas`
    fits `budget` (at least one index a batch, whatever the budget)."""
    per_batch = max(1, (budget - JUROR_BASE_GAS) // (JUROR_INDEX_GAS + JUROR_DRAW_GAS * draws))
    ordered = sorted(indices)
    return [ordered[i : i + per_batch] for i in range(0, len(ordered), per_batch)]

MAX_CLAIMS = 128
"""Most accounts paid by one `claimFor` transaction (~16k gas each)."""

CLAIM_WAIT = 3
"""Slots a keeper other than the designated one waits, once the task has ended, before claiming its own."""

RACE_ERRORS = frozenset(
    {
        "SeedAlreadyDrawn",
        "SeedTooEarly",
        "SubmitPhaseOpen",
        "VotingNotClosed",
        "SeedNotDrawn",
        "SubmissionAlreadySettled",
        "ValidatorAlreadySettled",
        "NothingSettled",
        "NothingToClaim",
        "NothingToClaimFor",
        "TaskNotActive",
        "NoSubmissions",
        "WrongRound",
        "RoundNotFinalized",
        "NothingToSettle",
        "AlreadyDrawn",
        "AlreadyDecidedAppeal",
        "JurorAlreadySettled",
        "AppealOpen",
        "AppealsPending",
        "AppealPending",
        "AppealWindowOpen",
    }
)
"""Reverts that only mean another keeper acted first (or the chain moved on meanwhile)."""


def claim_credit(session: Session, out: Output) -> int:
    """Claim this account's whole credit if it has one, and what the AppealCourt owes it (a deployment with
    appeals); returns the amount paid (0 if none)."""
    proto = session.proto
    paid = 0
    for owed, take, what in (
        (proto.credit_of, proto.claim, "tokens"),
        (proto.appeal_credit_of, proto.claim_appeal_credit, "tokens from the appeal court"),
    ):
        if what != "tokens" and not proto.appeals_enabled:
            continue
        if owed() == 0:
            continue
        try:
            amount = take()
        except ContractRevert as exc:
            if exc.error != "NothingToClaim":
                raise
            continue
        paid += amount
        balance = proto.token_balance()
        out.log(f"claimed {session.tokens(amount)} {what}; wallet balance {session.tokens(balance)}")
    return paid


def claim_for(session: Session, accounts: Sequence[str]) -> int:
    """Pay `accounts` their whole credit in one `claimFor` (those without credit are skipped); returns the
    amount paid."""
    proto = session.proto
    receipt = proto.client.transact(proto.distributor.functions.claimFor(list(accounts)))
    return sum(
        int(e["args"]["amount"])
        for e in proto.distributor.events.Claimed().process_receipt(receipt, errors=DISCARD)
    )


def rotation(task_id: int, round_: int, duty: str, candidates: Sequence[str]) -> list[str]:
    """The order in which `candidates` (addresses) take `duty` in round `round_` of the task: sorted (by
    lower-case address, duplicates dropped), then rotated left by keccak256("task:round:duty") mod their
    number, so every keeper computes the same order and the first place moves from round to round."""
    unique = sorted({c.lower(): c for c in candidates}.items())
    ordered = [address for _, address in unique]
    if not ordered:
        return []
    offset = int.from_bytes(keccak(text=f"{task_id}:{round_}:{duty}"), "big") % len(ordered)
    return ordered[offset:] + ordered[:offset]


class Keeper:
    """Does the task's due upkeep. `settle_all`: see that every submission and validator is settled (else
    only this account's own: a round it has nothing in is left to the others); `draw_seeds`, `finalize`:
    whether to draw seeds and finalise rounds; `in_turn`: whether settlements wait for this keeper's turn
    (a one-shot command settles at once)."""

    def __init__(
        self,
        view: TaskView,
        journal: Journal,
        out: Output,
        *,
        settle_all: bool = False,
        draw_seeds: bool = True,
        finalize: bool = True,
        in_turn: bool = True,
    ) -> None:
        self.view = view
        self.journal = journal
        self.out = out
        self.settle_all = settle_all
        self.draw_seeds = draw_seeds
        self.finalize = finalize
        self.in_turn = in_turn
        self._due_since: dict[tuple[str, int], float] = {}
        self._slot: float | None = None
        self._batch_refused = False
        """Whether a `claimFor` of this keeper's was refused (then it claims only its own credit)."""
        self._juror_draws: int | None = None
        """The court's K_a, read once (it sizes the `settleJuror` batches)."""
        self.waiting = False
        """Whether the last `step` left a due duty to a keeper before this one in its turn (so the
        keeper's work is not done although it sent nothing)."""

    @property
    def me(self) -> str:
        """This keeper's address."""
        return self.view.proto.address

    @property
    def slot(self) -> float:
        """Seconds each keeper of a rotation waits after the one before it: two block intervals and two
        poll intervals, between `MIN_SLOT` and `MAX_SLOT`. The block interval is the median of the last 8
        blocks' intervals: one long gap (an idle automining node, a warped test clock) must not stretch
        every fallback keeper's wait."""
        if self._slot is None:
            client = self.view.session.client
            latest = client.block_number()
            first = max(0, latest - 8)
            stamps = [client.block_timestamp(n) for n in range(first, latest + 1)]
            gaps = sorted(b - a for a, b in itertools.pairwise(stamps))
            interval = float(gaps[len(gaps) // 2]) if gaps else 0.0
            raw = 2 * interval + 2 * self.view.session.poll_interval
            self._slot = min(MAX_SLOT, max(MIN_SLOT, raw))
        return self._slot

    def order(self, duty: str, round_: int) -> list[str]:
        """The `rotation` of the keepers of `duty` in round `round_`: the initiator and the validators, and
        for a seed ("arm", "draw@...") the trainers too (those taking part in the round)."""
        view = self.view
        roles = (Role.VALIDATOR,) if duty == "finalize" else (Role.TRAINER, Role.VALIDATOR)
        candidates = [str(view.created["initiator"])]
        for role in roles:
            candidates += [a for a, first in view.participants(role) if first <= round_]
        return rotation(view.task_id, round_, duty, candidates)

    def my_turn(self, duty: str, round_: int, order: Sequence[str]) -> bool:
        """Whether this keeper may send `duty` of `round_` now: its place in `order` times `slot` has passed
        since it first saw the duty due (one not in `order` comes last)."""
        mine = [i for i, a in enumerate(order) if a.lower() == self.me.lower()]
        rank = mine[0] if mine else len(order)
        if rank == 0:
            return True
        since = self._due_since.setdefault((duty, round_), time.monotonic())
        if time.monotonic() - since >= rank * self.slot:
            return True
        self.waiting = True
        return False

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
        self.waiting = False
        state = view.state()
        did = False
        if state.status == TaskStatus.ACTIVE:
            now = view.now()
            round_ = state.round
            if self.draw_seeds and not state.seed_drawn and state.submissions > 0:
                arm = state.seed_block == 0 and now >= state.submit_end
                draw = state.seed_block != 0 and proto.client.block_number() > state.seed_block
                duty = "arm" if arm else f"draw@{state.seed_block}"
                if (arm or draw) and self.my_turn(duty, round_, self.order(duty, round_)):
                    did = self._try(
                        f"drew the seed of round {round_}", lambda: proto.draw_seed(self.view.task_id)
                    )
            elif self.finalize and state.seed_drawn:
                if proto.phase_of(view.task_id, round_) == Phase.CLOSED and self.my_turn(
                    "finalize", round_, self.order("finalize", round_)
                ):
                    did = self._try(
                        f"finalised round {round_}", lambda: proto.finalize_round(self.view.task_id)
                    )
            elif self.finalize and state.submissions == 0 and now >= state.round_start:
                # The contract's rule: a round nobody trains in may end before its deadline when a trainer
                # waits for a later round (it starts sooner) or an earlier round had accepted work; at the
                # start of a task, before anyone has joined, it runs to its deadline.
                freed = {str(e["trainer"]) for e in view.events("task_escrow", "SeatFreed")}
                waiting = any(t not in freed for t, _ in view.participants(Role.TRAINER))
                early = state.trainers == 0 and (waiting or round_ > state.empty_rounds)
                due = now >= state.submit_end or early
                if due and self.my_turn("finalize", round_, self.order("finalize", round_)):
                    did = self._try(
                        f"finalised round {round_} (no submissions)",
                        lambda: proto.finalize_round(view.task_id),
                    )
        # Rounds 0 .. state.round - 1 are finalised, whether the task is active, completed or cancelled.
        return self._settle_up_to(state.round) or self._no_shows(state) or did

    def upkeep(self) -> bool:
        """Send the next due upkeep transaction (`step`); else, once the task has ended and nothing of this
        keeper's is left to settle, the claims (`claims`); True if either did something."""
        if self.step():
            return True
        state = self.view.state()
        if self.waiting or state.status == TaskStatus.ACTIVE:
            return False
        return self.claims(state.round)

    def claims(self, end: int) -> bool:
        """The task's claims once it has ended (`end`: its round count so far; module docstring): the first
        keeper of the "claim" rotation pays everyone with credit in `claimFor` batches once every round is
        settled (or `CLAIM_WAIT` slots after it saw the task ended); the others claim their own credit
        after `CLAIM_WAIT` slots if it is still there. A batch the chain refuses (e.g. a token that will not
        pay one of the accounts) is not retried: every keeper then claims its own. True if a transaction
        was sent."""
        view, proto = self.view, self.view.proto
        candidates = [str(view.created["initiator"])]
        candidates += [a for role in (Role.TRAINER, Role.VALIDATOR) for a, _ in view.participants(role)]
        order = rotation(view.task_id, end, "claim", candidates)
        since = self._due_since.setdefault(("claim", end), time.monotonic())
        waited = time.monotonic() - since >= CLAIM_WAIT * self.slot
        if order and order[0].lower() == self.me.lower() and not self._batch_refused:
            if not waited and any(a or b for a, b in map(self._pending, range(end))):
                self.waiting = True
                return False
            owed = [a for a in order if proto.credit_of(a) > 0][:MAX_CLAIMS]
            if not owed:
                return False
            try:
                return self._try(f"paid out {len(owed)} accounts", lambda: claim_for(view.session, owed))
            except ContractRevert as exc:
                self._batch_refused = True
                self.out.log(
                    f"claimFor of {len(owed)} accounts refused ({exc.error}): claiming only this one's"
                )
        # What the AppealCourt owes this account is its own to claim (no batch pays it).
        if proto.credit_of() == 0 and not (proto.appeals_enabled and proto.appeal_credit_of() > 0):
            return False
        if not waited:
            self.waiting = True
            return False
        return claim_credit(view.session, self.out) > 0

    def _settle_up_to(self, end: int) -> bool:
        """Settle what is due in the finalised rounds before `end` (one transaction per call): a round's
        unsettled submissions and validators together (`settleRound`), by the keepers of the round in turn
        (`settlers`). Without `settle_all`, a round in which this account has nothing left unsettled is
        left to the others."""
        for round_ in range(end):
            key = f"{round_}:{'all' if self.settle_all else 'own'}"
            if self.journal.is_done("settled", key):
                continue
            indices, validators = self._pending(round_)
            held = False
            if self.view.proto.appeals_enabled:
                sent, open_window, held_indices, held_validators = self._appeals(round_, validators)
                if sent:
                    return True
                concerned = self.settle_all or self._concerned(round_, indices, validators)
                if open_window:
                    self.waiting = self.waiting or concerned
                    if concerned:
                        continue
                held = concerned and (bool(held_indices) or bool(held_validators))
                indices = [s for s in indices if s.index not in held_indices]
                validators = [v for v in validators if v not in held_validators]
                self.waiting = self.waiting or held
            me = self.me.lower()
            owners = [s.trainer for s in indices] + validators
            if not owners or not (self.settle_all or any(a.lower() == me for a in owners)):
                if not held:
                    self.journal.done("settled", key)
                continue
            order = self.settlers(round_, owners)
            if self.in_turn and not self.my_turn("settle", round_, order):
                continue
            batch = [s.index for s in indices][:MAX_BATCH]
            others = validators[: MAX_BATCH - len(batch)]
            what = f"settled round {round_}: {len(batch)} submissions, {len(others)} validators"
            proto = self.view.proto
            self._try(what, functools.partial(proto.settle_round, self.view.task_id, round_, batch, others))
            return True
        return False

    def _appeals(self, round_: int, validators: Sequence[str]) -> tuple[bool, bool, set[int], set[str]]:
        """The round's appeal upkeep: draw a due appeal seed, decide an appeal whose reveals closed, settle a
        validator's part at the court (one transaction); returns (sent one, the window is still open, the
        indices and the validators to leave out of the batch)."""
        view, proto = self.view, self.view.proto
        task_id = view.task_id
        now = view.now()
        everyone = set(validators)
        filed = [
            int(e["index"]) for e in view.events("appeal_court", "AppealFiled") if int(e["round"]) == round_
        ]
        pending: set[int] = set()
        for index in filed:
            a = proto.appeal_of(task_id, round_, index)
            if a.decided:
                continue
            pending.add(index)
            if not a.drawn and proto.client.block_number() > a.seed_block:
                what = f"drew the committee of the appeal of round {round_}, submission {index}"
                if self._try(what, functools.partial(proto.draw_appeal, task_id, round_, index)):
                    return True, False, pending, everyone
            elif a.drawn and now >= a.commit_end:
                closed = now >= a.reveal_end or a.accept_weight + a.other_weight == a.committed_weight
                what = f"decided the appeal of round {round_}, submission {index}"
                if closed and self._try(what, functools.partial(proto.settle_appeal, task_id, round_, index)):
                    return True, False, pending, everyone
        if now < proto.appeal_window_end(task_id, round_):
            return False, True, pending, everyone
        if pending:
            return False, False, pending, everyone
        if not filed:
            return False, False, pending, set()
        unsettled = {v for v in validators if not proto.juror_settled(task_id, round_, v)}
        appealed = proto.round_appeals(task_id, round_).appealed if unsettled else []
        for validator in sorted(unsettled):
            if not self.settle_all and validator.lower() != self.me.lower():
                continue
            done = set(proto.juror_settled_indices(task_id, round_, validator))
            left = [i for i in appealed if i not in done]
            if not left:
                continue
            if self._juror_draws is None:
                self._juror_draws = proto.appeal_params().draws
            batch = juror_batches(left, self._juror_draws)[0]
            what = (
                f"settled {validator}'s part in {len(batch)} of the {len(left)} appeals of round {round_} "
                "left to it"
            )
            if self._try(what, functools.partial(proto.settle_juror, task_id, round_, validator, batch)):
                return True, False, pending, everyone
        return False, False, pending, unsettled

    def _concerned(self, round_: int, indices: Sequence[Submission], validators: Sequence[str]) -> bool:
        """Whether this keeper's account has something in the round's settlement or its appeals to wait for:
        an unsettled submission or validator seat of its own, an appeal it filed, or an appealed submission
        of its own (the court pays a wronged trainer out of the jurors' slashes)."""
        me = self.me.lower()
        if any(s.trainer.lower() == me for s in indices) or any(v.lower() == me for v in validators):
            return True
        for e in self.view.events("appeal_court", "AppealFiled"):
            if int(e["round"]) != round_:
                continue
            if str(e["appellant"]).lower() == me:
                return True
            subs = [s for s in self.view.submissions(round_) if s.index == int(e["index"])]
            if subs and subs[0].trainer.lower() == me:
                return True
        return False

    def settlers(self, round_: int, owners: Sequence[str]) -> list[str]:
        """The `rotation` of the keepers of round `round_`'s settlement: the initiator and the `owners` of
        what is left to settle in it (its submitters and validators)."""
        return rotation(self.view.task_id, round_, "settle", [str(self.view.created["initiator"]), *owners])

    def _no_shows(self, state: TaskState) -> bool:
        """Free a seat or settle no-shows (one transaction per call). While the task is active: the seat of a
        trainer that missed `maxNoShows` rounds in a row, by the finalising keepers in turn (its no-shows
        are settled with it). Once it has ended: this account's own no-shows (they keep its stake locked),
        and with `settle_all` everyone's once its owner had a slot. Counted from events
        (`protocol.contracts.count_no_shows`, the contract's rule)."""
        view, proto = self.view, self.view.proto
        config = view.config
        active = state.status == TaskStatus.ACTIVE
        if active and (config.max_no_shows == 0 or not self.finalize):
            return False  # no seat to free (or this keeper does not keep the rounds going)
        if not active and config.no_show_slash_bps == 0:
            return False  # no-shows that cost nothing (and lock nothing)
        submitted: dict[str, list[int]] = {}
        for e in view.events("task_escrow", "WorkSubmitted"):
            submitted.setdefault(str(e["trainer"]), []).append(int(e["round"]))
        left = {str(e["trainer"]): int(e["round"]) for e in view.events("task_escrow", "SeatFreed")}
        settled: dict[str, int] = {}
        for e in view.events("task_escrow", "NoShowsSettled"):
            settled[str(e["trainer"])] = settled.get(str(e["trainer"]), 0) + int(e["rounds"])
        for trainer, first in view.participants(Role.TRAINER):
            missed, in_a_row = count_no_shows(
                first, submitted.get(trainer, []), settled.get(trainer, 0), state.round, left.get(trainer)
            )
            if active:
                if trainer in left or in_a_row < config.max_no_shows:
                    continue
                duty, order = f"seat:{trainer}", self.order("finalize", state.round)
                what = f"freed the seat of {trainer} ({in_a_row} rounds missed in a row)"
            else:
                if missed == 0 or (not self.settle_all and trainer != self.me):
                    continue
                duty, order = f"noshow:{trainer}", [trainer]
                what = f"settled {missed} no-shows of {trainer}"
            if self.my_turn(duty, state.round, order):
                return self._try(what, lambda t=trainer: proto.settle_no_shows(view.task_id, t))
        return False

    def _pending(self, round_: int) -> tuple[list[Submission], list[str]]:
        """The submissions and validators of a finalised round not settled yet (from the task's events; a
        round without a ballot has no validator to settle)."""
        view, proto = self.view, self.view.proto
        try:
            _, _, had_ballot = proto.round_result_of(view.task_id, round_)
        except ContractRevert:
            return [], []
        settled = {
            int(e["index"])
            for e in view.events("task_escrow", "SubmissionSettled")
            if int(e["round"]) == round_
        }
        indices = [s for s in view.submissions(round_) if s.index not in settled]
        if not had_ballot:
            return indices, []
        done = {
            str(e["validator"]).lower()
            for e in view.events("task_escrow", "ValidatorSettled")
            if int(e["round"]) == round_
        }
        validators = [
            v for v, first in view.participants(Role.VALIDATOR) if first <= round_ and v.lower() not in done
        ]
        return indices, validators
