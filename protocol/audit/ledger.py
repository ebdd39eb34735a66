"""Replay a deployment's events into a pure-Python model and check every number against the rules.

The ledger trusts no contract: it recomputes, from the events alone,

* every decision from the revealed verdict vectors (2/3 of the revealed, at least `quorum` revealed),
  each reveal against its commitment, and the model-hash agreement from the votes;
* every RoundFinalized (budget from the task's own books, accepted work, rate, validator share, carry,
  next base) with `protocol.contracts.round_payout`'s arithmetic;
* every settlement (decision, reward = rate * work units, slash = allocation * bps / 10000, validator
  outcome and share), every credit the settlements and refunds imply, every claim and refund;
* every stake movement, and so every account's bonded / allocated / unbonding stake and credit.

The model follows the amounts the events report (they are what moved); each event is checked against
what the rules give, so one wrong number is one `Discrepancy`, not a cascade. Events the contracts emit
together in one transaction (a settlement and its credit, a finalisation and the refund) are expected
together: a missing or extra one is a discrepancy too. `reconcile` then compares the rebuilt totals with
the token balances the contracts hold and, last, with the contracts' own views.

    ledger = Ledger.replay(events, blockhash=lambda n: ...)
    reconcile(ledger, reader)
    ledger.discrepancies, ledger.verified
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, Protocol, TypedDict

from eth_abi.abi import encode as abi_encode
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from protocol.audit.discrepancy import Discrepancy, Kind
from protocol.audit.events import ChainEvent
from protocol.audit.model import (
    AccountBook,
    Finalization,
    Reveal,
    RoundRecord,
    SubmissionRecord,
    TaskRecord,
    ValidatorSettlement,
)
from protocol.contracts import (
    BPS,
    BURN_ADDRESS,
    MAX_SUBMISSIONS,
    CancelReason,
    CreditReason,
    Role,
    TaskStatus,
    ValidatorOutcome,
    Verdict,
    decide,
    round_payout,
)

__all__ = ["BalanceReader", "Ledger", "fmt", "reconcile"]

_BLOCKHASH_WINDOW = 256
_MAX_WORK_UNITS = 2**32 - 1
_ZERO32 = bytes(32)


def fmt(value: Any) -> str:
    """A value as the report shows it: bytes as 0x-hex, enums by name, the rest as str."""
    if isinstance(value, bytes | bytearray):
        return "0x" + bytes(value).hex()
    if isinstance(value, IntEnum):
        return value.name
    if isinstance(value, list | tuple):
        return "[" + ", ".join(fmt(v) for v in value) + "]"
    return str(value)


@dataclass
class _Expect:
    """An event that must follow in the same transaction, e.g. the Credited of a settlement."""

    name: str
    key: tuple[Any, ...]
    values: dict[str, Any]
    task: int | None
    round: int | None
    subject: str
    tx: str


@dataclass
class _PendingSlash:
    amount: int
    allocation_before: int
    event: ChainEvent


_HANDLERS = {
    name: "_on_" + re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()
    for name in (
        "Staked", "UnstakeRequested", "Withdrawn", "Allocated", "Deallocated", "Slashed", "Deposited",
        "Credited", "Claimed", "TaskCreated", "Joined", "WorkSubmitted", "SeedArmed", "SeedDrawn",
        "VotingOpened", "VerdictsCommitted", "VerdictsRevealed", "ModelVoted", "ModelAgreed",
        "RoundFinalized", "TaskCompleted", "TaskCancelled", "Refunded", "SubmissionSettled",
        "ValidatorSettled", "BurnDeferred", "BurnFlushed",
    )
}  # fmt: skip
"""Event name -> the Ledger method that applies it."""


class _Where(TypedDict):
    task: int | None
    round_: int | None


def _key(event: ChainEvent) -> tuple[Any, ...]:
    a = event.args
    if event.name == "Credited":
        return (a["account"], a["taskId"], a["round"], a["reason"])
    if event.name in ("ModelAgreed", "VotingOpened"):
        return (a["taskId"], a["round"])
    return (a["taskId"],)


@dataclass
class Ledger:
    """The replayed history: tasks, accounts, the distributor's escrow total, what was found and what was
    verified. `blockhash(n)`, when given, lets the ledger check every seed against the chain's block hash."""

    blockhash: Callable[[int], bytes | None] | None = None
    tasks: dict[int, TaskRecord] = field(default_factory=dict)
    accounts: dict[str, AccountBook] = field(default_factory=dict)
    escrowed: int = 0
    """The distributor's escrow total: deposits minus credits."""
    burned: int = 0
    """Tokens slashed (sent to the burn address, or kept as unburned until flushed)."""
    unburned: int = 0
    """Slashed tokens the StakeManager keeps because the token refused the burn (BurnDeferred)."""
    discrepancies: list[Discrepancy] = field(default_factory=list)
    verified: Counter[str] = field(default_factory=Counter)
    events: int = 0
    first_block: int | None = None
    last_block: int | None = None
    tx_scope: dict[str, tuple[int | None, int | None]] = field(default_factory=dict)
    """Per transaction: the (task, round) its events belong to; (task, None) for a task's set-up,
    (None, None) for stakes and claims."""
    _tx: str | None = None
    _expect: list[_Expect] = field(default_factory=list)
    _slashes: dict[tuple[str, int], _PendingSlash] = field(default_factory=dict)

    # ------------------------------------------------------------------ entry points
    @classmethod
    def replay(
        cls, events: Iterable[ChainEvent], *, blockhash: Callable[[int], bytes | None] | None = None
    ) -> Ledger:
        """Replay `events` (in chain order) and close the last transaction."""
        ledger = cls(blockhash=blockhash)
        for event in events:
            ledger.apply(event)
        ledger.finish()
        return ledger

    def apply(self, event: ChainEvent) -> None:
        """Apply one event (they must come in chain order)."""
        if self._tx is not None and event.tx_hash != self._tx:
            self._close_tx()
        self._tx = event.tx_hash
        self.events += 1
        if self.first_block is None:
            self.first_block = event.block
        self.last_block = event.block
        handler = getattr(self, _HANDLERS.get(event.name, "-"), None)
        if handler is None:
            return  # an event that moves nothing the auditor models
        handler(event)

    def finish(self) -> None:
        """Close the last transaction: report what it should have emitted and did not."""
        self._close_tx()
        self._tx = None

    # ------------------------------------------------------------------ helpers
    def account(self, address: str) -> AccountBook:
        """The book of `address` (created on first use)."""
        address = to_checksum_address(address)
        if address not in self.accounts:
            self.accounts[address] = AccountBook(address)
        return self.accounts[address]

    def flag(
        self,
        kind: Kind,
        event: ChainEvent | None,
        subject: str,
        expected: Any,
        actual: Any,
        *,
        task: int | None = None,
        round_: int | None = None,
        detail: str = "",
        evidence: str | None = None,
    ) -> None:
        self.discrepancies.append(
            Discrepancy(
                kind=kind,
                task=task,
                round=round_,
                subject=subject,
                expected=fmt(expected),
                actual=fmt(actual),
                evidence=evidence or (event.tx_hash if event is not None else "-"),
                detail=detail,
            )
        )

    def _compare(
        self, kind: Kind, event: ChainEvent, subject: str, expected: Any, actual: Any, **where: Any
    ) -> bool:
        if expected == actual:
            return True
        self.flag(kind, event, subject, expected, actual, **where)
        return False

    @contextmanager
    def _item(self, category: str) -> Iterator[None]:
        """Count the item as verified if checking it found nothing."""
        before = len(self.discrepancies)
        yield
        if len(self.discrepancies) == before:
            self.verified[category] += 1

    def _scope(self, event: ChainEvent, task: int | None, round_: int | None) -> None:
        current = self.tx_scope.get(event.tx_hash)
        if current is None or (current[1] is None and round_ is not None):
            self.tx_scope[event.tx_hash] = (task, round_)

    def _task(self, event: ChainEvent) -> TaskRecord | None:
        task_id = int(event.args["taskId"])
        task = self.tasks.get(task_id)
        if task is None:
            self.flag(
                Kind.EVENT_ORDER,
                event,
                f"{event.name} of an unknown task",
                "a created task",
                f"task {task_id}",
                task=task_id,
            )
        return task

    def _active_round(self, event: ChainEvent, task: TaskRecord) -> RoundRecord | None:
        """The event's round if it is the task's current round of an active task."""
        round_ = int(event.args["round"])
        if task.status != TaskStatus.ACTIVE:
            self.flag(
                Kind.EVENT_ORDER,
                event,
                f"{event.name} in a task that is not active",
                "ACTIVE",
                task.status,
                task=task.id,
                round_=round_,
            )
            return None
        if round_ != task.current_round:
            self.flag(
                Kind.EVENT_ORDER,
                event,
                f"{event.name} round",
                task.current_round,
                round_,
                task=task.id,
                round_=round_,
            )
            return None
        return task.round(round_)

    def _expect_event(
        self,
        name: str,
        key: tuple[Any, ...],
        values: dict[str, Any],
        *,
        task: int | None,
        round_: int | None,
        subject: str,
    ) -> None:
        assert self._tx is not None
        self._expect.append(_Expect(name, key, values, task, round_, subject, self._tx))

    def _take(self, event: ChainEvent, kind: Kind) -> _Expect | None:
        """Match `event` with what its transaction must emit; flag it when nothing called for it."""
        key = _key(event)
        for i, want in enumerate(self._expect):
            if want.name == event.name and want.key == key:
                del self._expect[i]
                for name, value in want.values.items():
                    self._compare(
                        kind,
                        event,
                        f"{event.name}.{name} ({want.subject})",
                        value,
                        event.args[name],
                        task=want.task,
                        round_=want.round,
                    )
                return want
        self.flag(
            kind,
            event,
            f"{event.name} that no rule calls for",
            "no such event",
            ", ".join(f"{k}={fmt(v)}" for k, v in event.args.items()),
            task=event.args.get("taskId"),
            round_=event.args.get("round"),
        )
        return None

    def _close_tx(self) -> None:
        kinds = {
            "Credited": Kind.CREDIT,
            "Refunded": Kind.REFUND,
            "ModelAgreed": Kind.MODEL_AGREEMENT,
            "VotingOpened": Kind.VOTING,
            "Deposited": Kind.CREDIT,
        }
        for want in self._expect:
            self.flag(
                kinds.get(want.name, Kind.EVENT_ORDER),
                None,
                f"missing {want.name} ({want.subject})",
                ", ".join(f"{k}={fmt(v)}" for k, v in want.values.items()) or "the event",
                "nothing",
                task=want.task,
                round_=want.round,
                evidence=want.tx,
            )
        self._expect.clear()
        for (staker, task_id), pending in self._slashes.items():
            self.flag(
                Kind.SLASH,
                pending.event,
                f"slash of {staker} that no settlement explains",
                0,
                pending.amount,
                task=task_id,
            )
        self._slashes.clear()

    def _slash_check(
        self,
        event: ChainEvent,
        task: TaskRecord,
        staker: str,
        bps: int,
        reported: int,
        round_: int,
        subject: str,
    ) -> None:
        """A settlement's slash: `allocation * bps / 10000` of the allocation before it, and the
        StakeManager's Slashed event of the same transaction must say the same."""
        pending = self._slashes.pop((staker, task.id), None)
        before = pending.allocation_before if pending else self.account(staker).allocations.get(task.id, 0)
        expected = min(before * bps // BPS, before)
        self._compare(
            Kind.SLASH, event, f"{subject} slashed", expected, reported, task=task.id, round_=round_
        )
        self._compare(
            Kind.SLASH,
            event,
            f"{subject}: Slashed event amount",
            expected,
            pending.amount if pending else 0,
            task=task.id,
            round_=round_,
        )

    # ------------------------------------------------------------------ StakeManager
    def _on_staked(self, e: ChainEvent) -> None:
        self._scope(e, None, None)
        book = self.account(e.args["staker"])
        book.bonded += e.args["amount"]
        book.staked += e.args["amount"]
        self.verified["stake_events"] += 1

    def _on_unstake_requested(self, e: ChainEvent) -> None:
        self._scope(e, None, None)
        book, amount = self.account(e.args["staker"]), int(e.args["amount"])
        with self._item("stake_events"):
            if amount > book.bonded - book.allocated:
                self.flag(
                    Kind.STAKE,
                    e,
                    f"unstake of {book.address} beyond its free stake",
                    f"<= {book.bonded - book.allocated}",
                    amount,
                )
        book.bonded -= amount
        book.unbonding += amount

    def _on_withdrawn(self, e: ChainEvent) -> None:
        self._scope(e, None, None)
        book, amount = self.account(e.args["staker"]), int(e.args["amount"])
        with self._item("stake_events"):
            self._compare(
                Kind.STAKE,
                e,
                f"withdrawal of {book.address} (its whole unbonding stake)",
                book.unbonding,
                amount,
            )
        book.unbonding -= amount
        book.withdrawn += amount

    def _on_allocated(self, e: ChainEvent) -> None:
        task_id = int(e.args["taskId"])
        self._scope(e, task_id, None)
        book, amount = self.account(e.args["staker"]), int(e.args["amount"])
        with self._item("stake_events"):
            if amount > book.bonded - book.allocated:
                self.flag(
                    Kind.STAKE,
                    e,
                    f"allocation of {book.address} beyond its free stake",
                    f"<= {book.bonded - book.allocated}",
                    amount,
                    task=task_id,
                )
        book.allocated += amount
        book.allocations[task_id] = book.allocations.get(task_id, 0) + amount

    def _on_deallocated(self, e: ChainEvent) -> None:
        task_id = int(e.args["taskId"])
        self._scope(e, task_id, None)
        book, amount = self.account(e.args["staker"]), int(e.args["amount"])
        with self._item("stake_events"):
            held = book.allocations.get(task_id, 0)
            if amount > held:
                self.flag(
                    Kind.STAKE,
                    e,
                    f"deallocation of {book.address} beyond its allocation",
                    f"<= {held}",
                    amount,
                    task=task_id,
                )
            task = self.tasks.get(task_id)
            unsettled = (
                0 if task is None else sum(1 for r in task.rounds.values() for sub in r.submissions
                                           if sub.trainer == book.address and sub.settle_tx is None)
            )  # fmt: skip
            # a validator's finalised rounds with a ballot it was expected in, not settled (they lock it too)
            owed_rounds = (
                0 if task is None else sum(1 for r in task.rounds.values()
                                           if r.finalization is not None and r.voting is not None
                                           and book.address in r.expected_validators
                                           and book.address not in r.validator_settlements)
            )  # fmt: skip
            if task is not None and book.address in task.participants and (unsettled or owed_rounds):
                what = f"{owed_rounds} unsettled rounds" if owed_rounds else ""
                what = f"{unsettled} unsettled submissions" if unsettled else what
                self.flag(
                    Kind.STAKE,
                    e,
                    f"deallocation of {book.address} with {what}",
                    "locked until they are settled",
                    "released",
                    task=task_id,
                )
            elif task is not None and book.address in task.participants and task.status == TaskStatus.ACTIVE:
                self.flag(
                    Kind.STAKE,
                    e,
                    f"deallocation of {book.address} while the task holds the lock",
                    "locked (task active)",
                    "released",
                    task=task_id,
                )
        book.allocated -= amount
        book.allocations[task_id] = book.allocations.get(task_id, 0) - amount

    def _on_slashed(self, e: ChainEvent) -> None:
        task_id = int(e.args["taskId"])
        book, amount = self.account(e.args["staker"]), int(e.args["amount"])
        before = book.allocations.get(task_id, 0)
        if amount > before:
            self.flag(
                Kind.SLASH,
                e,
                f"slash of {book.address} beyond its allocation",
                f"<= {before}",
                amount,
                task=task_id,
            )
        key = (book.address, task_id)
        if key in self._slashes:
            self.flag(
                Kind.SLASH,
                e,
                f"second slash of {book.address} in one transaction",
                "one",
                "two",
                task=task_id,
            )
        self._slashes[key] = _PendingSlash(amount, before, e)
        book.allocations[task_id] = before - amount
        book.allocated -= amount
        book.bonded -= amount
        book.slashed += amount
        book.slashed_by_task[task_id] = book.slashed_by_task.get(task_id, 0) + amount
        self.burned += amount

    def _on_burn_deferred(self, e: ChainEvent) -> None:
        task_id = int(e.args["taskId"])
        staker, amount = to_checksum_address(e.args["staker"]), int(e.args["amount"])
        with self._item("burns"):
            pending = self._slashes.get((staker, task_id))
            if pending is None or pending.event.tx_hash != e.tx_hash:
                self.flag(
                    Kind.SLASH,
                    e,
                    f"deferred burn of {staker} without its slash",
                    "a Slashed event first",
                    "none",
                    task=task_id,
                )
            else:
                self._compare(
                    Kind.SLASH,
                    e,
                    f"deferred burn of {staker} (its slash)",
                    pending.amount,
                    amount,
                    task=task_id,
                )
            self.unburned += amount
            self._compare(
                Kind.SLASH,
                e,
                "BurnDeferred.unburned (the total kept)",
                self.unburned,
                int(e.args["unburned"]),
                task=task_id,
            )

    def _on_burn_flushed(self, e: ChainEvent) -> None:
        self._scope(e, None, None)
        with self._item("burns"):
            self._compare(
                Kind.SLASH,
                e,
                "BurnFlushed.amount (the whole unburned total)",
                self.unburned,
                int(e.args["amount"]),
            )
        self.unburned -= int(e.args["amount"])

    # ------------------------------------------------------------------ RewardDistributor
    def _on_deposited(self, e: ChainEvent) -> None:
        with self._item("credits"):
            self._take(e, Kind.CREDIT)
        self.escrowed += int(e.args["amount"])

    def _on_credited(self, e: ChainEvent) -> None:
        task_id, round_ = int(e.args["taskId"]), int(e.args["round"])
        self._scope(e, task_id, round_)
        amount = int(e.args["amount"])
        with self._item("credits"):
            self._take(e, Kind.CREDIT)
            if amount > self.escrowed:
                self.flag(
                    Kind.CREDIT,
                    e,
                    "credit beyond the escrow",
                    f"<= {self.escrowed}",
                    amount,
                    task=task_id,
                    round_=round_,
                )
        book = self.account(e.args["account"])
        reason = CreditReason(int(e.args["reason"]))
        self.escrowed -= amount
        book.credit += amount
        book.credited[reason] = book.credited.get(reason, 0) + amount
        book.credited_by_task[task_id] = book.credited_by_task.get(task_id, 0) + amount
        task = self.tasks.get(task_id)
        if task is not None:
            task.credited[reason] = task.credited.get(reason, 0) + amount

    def _on_claimed(self, e: ChainEvent) -> None:
        self._scope(e, None, None)
        book, amount = self.account(e.args["account"]), int(e.args["amount"])
        with self._item("claims"):
            self._compare(Kind.CLAIM, e, f"claim of {book.address} (its whole credit)", book.credit, amount)
        book.credit -= amount
        book.claimed += amount

    # ------------------------------------------------------------------ TaskEscrow: tasks and joins
    def _on_task_created(self, e: ChainEvent) -> None:
        a = e.args
        task_id, params = int(a["taskId"]), dict(a["params"])
        self._scope(e, task_id, None)
        with self._item("tasks"):
            expected_id = max(self.tasks, default=0) + 1
            self._compare(
                Kind.EVENT_ORDER, e, "task id (one more than the last)", expected_id, task_id, task=task_id
            )
            deposit = int(params["numRounds"]) * int(params["rewardPerRound"])
            self._compare(
                Kind.CREDIT, e, "deposit (numRounds * rewardPerRound)", deposit, a["deposit"], task=task_id
            )
            if not 1 <= int(params["quorum"]) <= int(params["maxValidators"]):
                self.flag(
                    Kind.EVENT_ORDER,
                    e,
                    "quorum",
                    f"1..{params['maxValidators']}",
                    params["quorum"],
                    task=task_id,
                )
        task = TaskRecord(
            id=task_id,
            initiator=to_checksum_address(a["initiator"]),
            params=params,
            deposit=int(a["deposit"]),
            tx=e.tx_hash,
            block=e.block,
            remaining=int(a["deposit"]),
            base=bytes(params["initialModelHash"]),
        )
        self.tasks[task_id] = task
        self.account(task.initiator).deposited += int(a["deposit"])
        self._expect_event(
            "Deposited",
            (task_id,),
            {"from": task.initiator, "amount": task.deposit},
            task=task_id,
            round_=None,
            subject="the task's deposit",
        )

    def _on_joined(self, e: ChainEvent) -> None:
        task = self._task(e)
        if task is None:
            return
        self._scope(e, task.id, None)
        account, role, first = (
            to_checksum_address(e.args["account"]),
            int(e.args["role"]),
            int(e.args["fromRound"]),
        )
        with self._item("joins"):
            if task.status != TaskStatus.ACTIVE:
                self.flag(
                    Kind.EVENT_ORDER,
                    e,
                    f"join of {account} to a task that is not active",
                    "ACTIVE",
                    task.status,
                    task=task.id,
                )
            if account in task.participants:
                self.flag(
                    Kind.EVENT_ORDER,
                    e,
                    f"second join of {account}",
                    "one join",
                    task.participants[account][0],
                    task=task.id,
                )
                return
            if role not in (Role.TRAINER, Role.VALIDATOR):
                self.flag(
                    Kind.EVENT_ORDER, e, f"role of {account}", "TRAINER or VALIDATOR", role, task=task.id
                )
                return
            if first not in (0, task.current_round + 1) or first >= task.num_rounds:
                self.flag(
                    Kind.EVENT_ORDER,
                    e,
                    f"first round of {account}",
                    f"0 (before the start) or {task.current_round + 1}",
                    first,
                    task=task.id,
                )
            need = task.param("minTrainerStake" if role == Role.TRAINER else "minValidatorStake")
            held = self.account(account).allocations.get(task.id, 0)
            if held < need:
                self.flag(
                    Kind.STAKE, e, f"allocation of {account} when joining", f">= {need}", held, task=task.id
                )
            cap = task.param("maxTrainers" if role == Role.TRAINER else "maxValidators")
            members = task.trainers if role == Role.TRAINER else task.validators
            if len(members) >= cap:
                self.flag(
                    Kind.EVENT_ORDER,
                    e,
                    f"{Role(role).name.lower()}s of the task",
                    f"<= {cap}",
                    len(members) + 1,
                    task=task.id,
                )
        task.participants[account] = (Role(role), first)
        (task.trainers if role == Role.TRAINER else task.validators).append(account)

    # ------------------------------------------------------------------ TaskEscrow: rounds
    def _on_work_submitted(self, e: ChainEvent) -> None:
        task = self._task(e)
        if task is None:
            return
        a = e.args
        round_no = int(a["round"])
        self._scope(e, task.id, round_no)
        trainer = to_checksum_address(a["trainer"])
        with self._item("submissions"):
            rnd = self._active_round(e, task)
            if rnd is None:
                return
            where: _Where = {"task": task.id, "round_": round_no}
            self._compare(
                Kind.EVENT_ORDER,
                e,
                f"index of {trainer}'s submission",
                len(rnd.submissions),
                int(a["index"]),
                **where,
            )
            role, first = task.participants.get(trainer, (Role.NONE, 0))
            if role != Role.TRAINER or first > round_no:
                self.flag(
                    Kind.EVENT_ORDER,
                    e,
                    f"submission by {trainer}",
                    "a trainer active in the round",
                    f"{role.name} from round {first}",
                    **where,
                )
            if any(s.trainer == trainer for s in rnd.submissions):
                self.flag(Kind.EVENT_ORDER, e, f"second submission by {trainer}", "one", "two", **where)
            if rnd.seed is not None:
                self.flag(
                    Kind.EVENT_ORDER,
                    e,
                    f"submission by {trainer} after the seed",
                    "before the seed",
                    "after",
                    **where,
                )
            if not 1 <= int(a["workUnits"]) <= _MAX_WORK_UNITS:
                self.flag(Kind.EVENT_ORDER, e, "workUnits", f"1..{_MAX_WORK_UNITS}", a["workUnits"], **where)
            need, held = task.param("minTrainerStake"), self.account(trainer).allocations.get(task.id, 0)
            if held < need:
                self.flag(
                    Kind.STAKE, e, f"allocation of {trainer} when submitting", f">= {need}", held, **where
                )
            rnd.submissions.append(
                SubmissionRecord(
                    task=task.id,
                    round=round_no,
                    index=int(a["index"]),
                    trainer=trainer,
                    bundle_hash=bytes(a["bundleHash"]),
                    bundle_cid=str(a["bundleCid"]),
                    update_hash=bytes(a["updateHash"]),
                    update_cid=str(a["updateCid"]),
                    proof_root=bytes(a["proofRoot"]),
                    state_root=bytes(a["stateRoot"]),
                    work_units=int(a["workUnits"]),
                    tx=e.tx_hash,
                    block=e.block,
                )
            )

    def _on_seed_armed(self, e: ChainEvent) -> None:
        task = self._task(e)
        if task is None:
            return
        self._scope(e, task.id, int(e.args["round"]))
        with self._item("seeds"):
            rnd = self._active_round(e, task)
            if rnd is None:
                return
            where: _Where = {"task": task.id, "round_": rnd.number}
            if rnd.seed is not None:
                self.flag(Kind.SEED, e, "seed armed after it was drawn", "not armed", "armed", **where)
            self._compare(
                Kind.SEED,
                e,
                "seedBlock (block + seedDelay)",
                e.block + task.param("seedDelay"),
                int(e.args["seedBlock"]),
                **where,
            )
            rnd.armed.append(int(e.args["seedBlock"]))

    def _on_seed_drawn(self, e: ChainEvent) -> None:
        task = self._task(e)
        if task is None:
            return
        self._scope(e, task.id, int(e.args["round"]))
        with self._item("seeds"):
            rnd = self._active_round(e, task)
            if rnd is None:
                return
            where: _Where = {"task": task.id, "round_": rnd.number}
            seed_block, seed = int(e.args["seedBlock"]), bytes(e.args["seed"])
            if rnd.seed is not None:
                self.flag(Kind.SEED, e, "second seed of the round", "one", "two", **where)
            armed = rnd.armed[-1] if rnd.armed else None
            self._compare(Kind.SEED, e, "seedBlock (the last one armed)", armed, seed_block, **where)
            if not seed_block < e.block <= seed_block + _BLOCKHASH_WINDOW:
                self.flag(
                    Kind.SEED,
                    e,
                    "block of the draw",
                    f"in ({seed_block}, {seed_block + _BLOCKHASH_WINDOW}]",
                    e.block,
                    **where,
                )
            if self.blockhash is not None:
                self._compare(
                    Kind.SEED,
                    e,
                    f"seed (blockhash of block {seed_block})",
                    self.blockhash(seed_block),
                    seed,
                    **where,
                )
            if not rnd.submissions:
                self.flag(Kind.SEED, e, "seed of a round without submissions", "no seed", "drawn", **where)
            rnd.seed_block, rnd.seed, rnd.seed_tx = seed_block, seed, e.tx_hash
            rnd.expected_validators = task.validators_in(rnd.number)
            self._expect_event(
                "VotingOpened",
                (task.id, rnd.number),
                {
                    "submissions": len(rnd.submissions),
                    "expectedValidators": len(rnd.expected_validators),
                    "quorum": task.param("quorum"),
                },
                task=task.id,
                round_=rnd.number,
                subject="the ballot opened by the seed",
            )

    # ------------------------------------------------------------------ AttestationRegistry
    def _on_voting_opened(self, e: ChainEvent) -> None:
        task = self._task(e)
        if task is None:
            return
        self._scope(e, task.id, int(e.args["round"]))
        a = e.args
        with self._item("ballots"):
            self._take(e, Kind.VOTING)
            where: _Where = {"task": task.id, "round_": int(a["round"])}
            self._compare(
                Kind.VOTING,
                e,
                "revealDeadline - commitDeadline",
                task.param("revealDuration"),
                int(a["revealDeadline"]) - int(a["commitDeadline"]),
                **where,
            )
            self._compare(
                Kind.VOTING,
                e,
                "voteDeadline - revealDeadline",
                task.param("voteDuration"),
                int(a["voteDeadline"]) - int(a["revealDeadline"]),
                **where,
            )
        rnd = task.round(int(a["round"]))
        rnd.voting = {k: int(v) for k, v in a.items() if k not in ("taskId", "round")}

    def _ballot_round(self, e: ChainEvent, task: TaskRecord) -> RoundRecord | None:
        rnd = task.rounds.get(int(e.args["round"]))
        if rnd is None or rnd.voting is None:
            self.flag(
                Kind.EVENT_ORDER,
                e,
                f"{e.name} before the ballot opened",
                "an open ballot",
                "none",
                task=task.id,
                round_=int(e.args["round"]),
            )
            return None
        if rnd.finalization is not None:
            self.flag(
                Kind.EVENT_ORDER,
                e,
                f"{e.name} after the round was finalised",
                "before",
                "after",
                task=task.id,
                round_=rnd.number,
            )
            return None
        return rnd

    def _on_verdicts_committed(self, e: ChainEvent) -> None:
        task = self._task(e)
        if task is None:
            return
        self._scope(e, task.id, int(e.args["round"]))
        validator = to_checksum_address(e.args["validator"])
        with self._item("commits"):
            rnd = self._ballot_round(e, task)
            if rnd is None:
                return
            where: _Where = {"task": task.id, "round_": rnd.number}
            if validator not in rnd.expected_validators:
                self.flag(
                    Kind.EVENT_ORDER,
                    e,
                    f"commitment by {validator}",
                    "a validator active in the round",
                    "someone else",
                    **where,
                )
            if validator in rnd.commits:
                self.flag(Kind.EVENT_ORDER, e, f"second commitment by {validator}", "one", "two", **where)
                return
            if bytes(e.args["commitment"]) == _ZERO32:
                self.flag(Kind.COMMITMENT, e, f"commitment by {validator}", "nonzero", "zero", **where)
            rnd.commits[validator] = (bytes(e.args["commitment"]), e.tx_hash)

    def _on_verdicts_revealed(self, e: ChainEvent) -> None:
        task = self._task(e)
        if task is None:
            return
        self._scope(e, task.id, int(e.args["round"]))
        validator = to_checksum_address(e.args["validator"])
        word, salt = int(e.args["verdicts"]), bytes(e.args["salt"])
        with self._item("reveals"):
            rnd = self._ballot_round(e, task)
            if rnd is None:
                return
            where: _Where = {"task": task.id, "round_": rnd.number}
            committed = rnd.commits.get(validator)
            if committed is None:
                self.flag(Kind.COMMITMENT, e, f"reveal by {validator}", "a prior commitment", "none", **where)
                return
            if validator in rnd.reveals:
                self.flag(Kind.EVENT_ORDER, e, f"second reveal by {validator}", "one", "two", **where)
                return
            computed = keccak(
                abi_encode(
                    ["uint256", "uint256", "address", "uint256", "bytes32"],
                    [task.id, rnd.number, validator, word, salt],
                )
            )
            self._compare(
                Kind.COMMITMENT, e, f"commitment of {validator}'s reveal", committed[0], computed, **where
            )
            n = len(rnd.submissions)
            codes = [Verdict((word >> (2 * i)) & 3) for i in range(min(n, MAX_SUBMISSIONS))]
            if (n < MAX_SUBMISSIONS and word >> (2 * n)) or Verdict.NONE in codes:
                self.flag(
                    Kind.COMMITMENT,
                    e,
                    f"verdict vector of {validator}",
                    f"one verdict (1..3) for each of {n} submissions",
                    hex(word),
                    **where,
                )
                return
            need, held = task.param("minValidatorStake"), self.account(validator).allocations.get(task.id, 0)
            if held < need:
                self.flag(
                    Kind.STAKE, e, f"allocation of {validator} when revealing", f">= {need}", held, **where
                )
            rnd.reveals[validator] = Reveal(validator, word, codes, salt, e.tx_hash)
            self._recount(rnd, task)

    def _recount(self, rnd: RoundRecord, task: TaskRecord) -> None:
        """Recompute every submission's tally and decision from the reveals so far."""
        revealed, quorum = len(rnd.reveals), task.param("quorum")
        for sub in rnd.submissions:
            counts = Counter(
                r.verdicts[sub.index] for r in rnd.reveals.values() if sub.index < len(r.verdicts)
            )
            sub.tally = (counts[Verdict.ACCEPT], counts[Verdict.REJECT], counts[Verdict.UNAVAILABLE])
            sub.decision = decide(*sub.tally, revealed, quorum)

    def _on_model_voted(self, e: ChainEvent) -> None:
        task = self._task(e)
        if task is None:
            return
        self._scope(e, task.id, int(e.args["round"]))
        validator = to_checksum_address(e.args["validator"])
        model_hash, cid = bytes(e.args["modelHash"]), str(e.args["modelCid"])
        with self._item("model_votes"):
            rnd = self._ballot_round(e, task)
            if rnd is None:
                return
            where: _Where = {"task": task.id, "round_": rnd.number}
            if validator not in rnd.reveals:
                self.flag(
                    Kind.EVENT_ORDER,
                    e,
                    f"model vote by {validator}",
                    "a validator that revealed",
                    "one that did not",
                    **where,
                )
                return
            if validator in rnd.votes:
                self.flag(Kind.EVENT_ORDER, e, f"second model vote by {validator}", "one", "two", **where)
                return
            if model_hash == _ZERO32:
                self.flag(
                    Kind.MODEL_AGREEMENT, e, f"model hash voted by {validator}", "nonzero", "zero", **where
                )
            rnd.votes[validator] = (model_hash, cid, e.tx_hash)
            votes = rnd.vote_counts.get(model_hash, 0) + 1
            rnd.vote_counts[model_hash] = votes
            revealed = len(rnd.reveals)
            if rnd.agreed is None and votes >= task.param("quorum") and 3 * votes >= 2 * revealed:
                rnd.agreed = (model_hash, cid, votes)
                self._expect_event(
                    "ModelAgreed",
                    (task.id, rnd.number),
                    {"modelHash": model_hash, "modelCid": cid, "votes": votes},
                    task=task.id,
                    round_=rnd.number,
                    subject="two thirds of the revealed validators voted this hash",
                )

    def _on_model_agreed(self, e: ChainEvent) -> None:
        task = self._task(e)
        if task is None:
            return
        self._scope(e, task.id, int(e.args["round"]))
        with self._item("model_agreements"):
            if self._take(e, Kind.MODEL_AGREEMENT) is not None:
                task.round(int(e.args["round"])).agreed_tx = e.tx_hash

    # ------------------------------------------------------------------ TaskEscrow: finalisation
    def _on_round_finalized(self, e: ChainEvent) -> None:
        task = self._task(e)
        if task is None:
            return
        a = e.args
        round_no = int(a["round"])
        self._scope(e, task.id, round_no)
        with self._item("finalizations"):
            rnd = self._active_round(e, task)
            if rnd is None:
                return
            where: _Where = {"task": task.id, "round_": round_no}
            if rnd.submissions and rnd.seed is None:
                self.flag(
                    Kind.EVENT_ORDER,
                    e,
                    "finalisation of a round with submissions",
                    "after the seed",
                    "before",
                    **where,
                )
            self._recount(rnd, task)
            accepted, revealed = rnd.accepted_work, len(rnd.reveals)
            rounds_after = task.num_rounds - round_no - 1
            budget = task.remaining - task.param("rewardPerRound") * rounds_after
            pay = round_payout(
                budget,
                task.param("validatorShareBps"),
                accepted,
                revealed,
                task.param("rewardPerRound"),
                task.param("quorum"),
            )
            next_base = rnd.agreed[0] if rnd.agreed is not None else task.base
            empty = task.empty_rounds + 1 if accepted == 0 else 0
            max_empty = task.param("maxEmptyRounds")
            if rounds_after == 0:
                end: TaskStatus = TaskStatus.COMPLETED
            elif max_empty != 0 and empty >= max_empty:
                end = TaskStatus.CANCELLED
            else:
                end = TaskStatus.ACTIVE
            expected = {
                "budget": pay.budget,
                "acceptedWork": accepted,
                "rate": pay.rate,
                "revealed": revealed,
                "validatorShare": pay.share,
                "carry": pay.carry,
                "nextBase": next_base,
            }
            for name, value in expected.items():
                self._compare(Kind.FINALIZATION, e, f"RoundFinalized.{name}", value, a[name], **where)
            if (int(a["nextSubmitDeadline"]) == 0) != (end != TaskStatus.ACTIVE):
                self.flag(
                    Kind.FINALIZATION,
                    e,
                    "RoundFinalized.nextSubmitDeadline",
                    "0 (the task ends)" if end != TaskStatus.ACTIVE else "a deadline (another round)",
                    a["nextSubmitDeadline"],
                    **where,
                )
        rnd = task.round(round_no)
        rnd.finalization = Finalization(
            budget=int(a["budget"]),
            accepted_work=int(a["acceptedWork"]),
            rate=int(a["rate"]),
            revealed=int(a["revealed"]),
            share=int(a["validatorShare"]),
            carry=int(a["carry"]),
            next_base=bytes(a["nextBase"]),
            next_deadline=int(a["nextSubmitDeadline"]),
            tx=e.tx_hash,
            block=e.block,
            expected={
                "rate": pay.rate,
                "share": pay.share,
                "nextBase": next_base,
                "acceptedWork": accepted,
                "revealed": revealed,
                "budget": pay.budget,
                "carry": pay.carry,
            },
        )
        paid = int(a["budget"]) - int(a["carry"])
        task.remaining -= paid
        task.reserved += paid
        task.base = next_base
        task.empty_rounds = empty
        task.current_round = round_no + 1
        if end != TaskStatus.ACTIVE:
            task.status = end
            task.ended_round = round_no
            name = "TaskCompleted" if end == TaskStatus.COMPLETED else "TaskCancelled"
            values = (
                {}
                if end == TaskStatus.COMPLETED
                else {"round": round_no, "reason": CancelReason.NO_ACCEPTED_WORK}
            )
            self._expect_event(
                name,
                (task.id,),
                values,
                task=task.id,
                round_=round_no,
                subject="the last round"
                if end == TaskStatus.COMPLETED
                else f"{empty} rounds without accepted work",
            )
            self._expect_refund(task, round_no)

    def _expect_refund(self, task: TaskRecord, round_no: int) -> None:
        if task.remaining > 0:
            self._expect_event(
                "Refunded",
                (task.id,),
                {"initiator": task.initiator, "amount": task.remaining},
                task=task.id,
                round_=round_no,
                subject="what remained when the task ended",
            )
            self._expect_event(
                "Credited",
                (task.initiator, task.id, round_no, CreditReason.REFUND),
                {"amount": task.remaining},
                task=task.id,
                round_=round_no,
                subject="the end-of-task refund",
            )

    def _on_task_completed(self, e: ChainEvent) -> None:
        task = self._task(e)
        if task is None:
            return
        self._scope(e, task.id, task.ended_round)
        with self._item("task_ends"):
            self._take(e, Kind.EVENT_ORDER)

    def _on_task_cancelled(self, e: ChainEvent) -> None:
        task = self._task(e)
        if task is None:
            return
        self._scope(e, task.id, int(e.args["round"]))
        with self._item("task_ends"):
            if int(e.args["reason"]) == CancelReason.BY_INITIATOR:
                # cancelTask: only before the start, so before any round was finalised or submitted to.
                if task.status != TaskStatus.ACTIVE or task.current_round != 0 or task.rounds:
                    self.flag(
                        Kind.EVENT_ORDER,
                        e,
                        "cancellation by the initiator",
                        "before the task started",
                        f"round {task.current_round}, {task.status.name}",
                        task=task.id,
                    )
                self._compare(
                    Kind.EVENT_ORDER,
                    e,
                    "TaskCancelled.round",
                    task.current_round,
                    int(e.args["round"]),
                    task=task.id,
                )
                task.status = TaskStatus.CANCELLED
                task.ended_round = int(e.args["round"])
                task.cancel_reason = CancelReason.BY_INITIATOR
                self._expect_refund(task, int(e.args["round"]))
            else:
                self._take(e, Kind.EVENT_ORDER)
                task.cancel_reason = CancelReason.NO_ACCEPTED_WORK

    def _on_refunded(self, e: ChainEvent) -> None:
        task = self._task(e)
        if task is None:
            return
        self._scope(e, task.id, task.ended_round)
        with self._item("refunds"):
            self._take(e, Kind.REFUND)
        task.remaining -= int(e.args["amount"])
        task.refunded += int(e.args["amount"])

    # ------------------------------------------------------------------ TaskEscrow: settlement
    def _finalized_round(self, e: ChainEvent, task: TaskRecord) -> RoundRecord | None:
        rnd = task.rounds.get(int(e.args["round"]))
        if rnd is None or rnd.finalization is None:
            self.flag(
                Kind.EVENT_ORDER,
                e,
                f"{e.name} of a round not finalised",
                "a finalised round",
                "not",
                task=task.id,
                round_=int(e.args["round"]),
            )
            return None
        return rnd

    def _on_submission_settled(self, e: ChainEvent) -> None:
        task = self._task(e)
        if task is None:
            return
        a = e.args
        round_no, index = int(a["round"]), int(a["index"])
        self._scope(e, task.id, round_no)
        where: _Where = {"task": task.id, "round_": round_no}
        reward, slashed = int(a["reward"]), int(a["slashed"])
        with self._item("settlements"):
            rnd = self._finalized_round(e, task)
            if rnd is None:
                return
            if not 0 <= index < len(rnd.submissions):
                self.flag(
                    Kind.EVENT_ORDER,
                    e,
                    "settled submission index",
                    f"< {len(rnd.submissions)}",
                    index,
                    **where,
                )
                return
            sub = rnd.submissions[index]
            label = f"submission {index} ({sub.trainer})"
            if sub.settle_tx is not None:
                self.flag(Kind.EVENT_ORDER, e, f"second settlement of {label}", "one", "two", **where)
                return
            self._compare(
                Kind.SETTLEMENT,
                e,
                f"trainer of {label}",
                sub.trainer,
                to_checksum_address(a["trainer"]),
                **where,
            )
            decision = Verdict(int(a["decision"]))
            self._compare(
                Kind.DECISION,
                e,
                f"decision on {label} (2/3 of {len(rnd.reveals)} revealed, tally {sub.tally})",
                sub.decision,
                decision,
                **where,
            )
            rate = int(rnd.finalization.expected["rate"])  # type: ignore[union-attr]
            want_reward = rate * sub.work_units if sub.decision == Verdict.ACCEPT else 0
            self._compare(Kind.SETTLEMENT, e, f"reward of {label}", want_reward, reward, **where)
            if sub.decision in (Verdict.REJECT, Verdict.UNAVAILABLE):
                self._slash_check(
                    e, task, sub.trainer, task.param("trainerSlashBps"), slashed, round_no, label
                )
            elif slashed or (sub.trainer, task.id) in self._slashes:
                self.flag(Kind.SLASH, e, f"slash of {label}", 0, slashed, **where)
                self._slashes.pop((sub.trainer, task.id), None)
            sub.settled_decision, sub.reward, sub.slashed, sub.settle_tx = (
                decision,
                reward,
                slashed,
                e.tx_hash,
            )
        task.reserved -= reward
        if reward:
            self._expect_event(
                "Credited",
                (to_checksum_address(a["trainer"]), task.id, round_no, CreditReason.TRAINER_REWARD),
                {"amount": reward},
                task=task.id,
                round_=round_no,
                subject=f"reward of submission {index}",
            )

    def _validator_expectation(
        self, task: TaskRecord, rnd: RoundRecord, validator: str
    ) -> tuple[ValidatorOutcome, int]:
        """(outcome, amount) the rules give a validator of a finalised round; the amount of a slash is
        computed by `_slash_check`."""
        reveal = rnd.reveals.get(validator)
        share = int(rnd.finalization.expected["share"]) if rnd.finalization else 0
        if reveal is None:
            return ValidatorOutcome.SLASHED, 0
        agreed = all(
            sub.decision == Verdict.NONE or reveal.verdicts[sub.index] == sub.decision
            for sub in rnd.submissions
        )
        return (ValidatorOutcome.REWARDED if agreed else ValidatorOutcome.FORFEITED), share

    def _on_validator_settled(self, e: ChainEvent) -> None:
        task = self._task(e)
        if task is None:
            return
        a = e.args
        round_no, validator = int(a["round"]), to_checksum_address(a["validator"])
        self._scope(e, task.id, round_no)
        where: _Where = {"task": task.id, "round_": round_no}
        outcome, amount = ValidatorOutcome(int(a["outcome"])), int(a["amount"])
        with self._item("settlements"):
            rnd = self._finalized_round(e, task)
            if rnd is None:
                return
            label = f"validator {validator}"
            if rnd.voting is None or validator not in rnd.expected_validators:
                self.flag(
                    Kind.EVENT_ORDER,
                    e,
                    f"settlement of {label}",
                    "a validator expected in the ballot",
                    "not expected",
                    **where,
                )
                return
            if validator in rnd.validator_settlements:
                self.flag(Kind.EVENT_ORDER, e, f"second settlement of {label}", "one", "two", **where)
                return
            want_outcome, want_amount = self._validator_expectation(task, rnd, validator)
            self._compare(Kind.SETTLEMENT, e, f"outcome of {label}", want_outcome, outcome, **where)
            if want_outcome == ValidatorOutcome.SLASHED:
                self._slash_check(
                    e, task, validator, task.param("validatorSlashBps"), amount, round_no, label
                )
            else:
                self._compare(Kind.SETTLEMENT, e, f"share of {label}", want_amount, amount, **where)
                if (validator, task.id) in self._slashes:
                    self.flag(
                        Kind.SLASH,
                        e,
                        f"slash of {label}",
                        0,
                        self._slashes.pop((validator, task.id)).amount,
                        **where,
                    )
            rnd.validator_settlements[validator] = ValidatorSettlement(
                outcome, amount, want_outcome, want_amount, e.tx_hash
            )
        if outcome == ValidatorOutcome.REWARDED:
            task.reserved -= amount
            if amount:
                self._expect_event(
                    "Credited",
                    (validator, task.id, round_no, CreditReason.VALIDATOR_REWARD),
                    {"amount": amount},
                    task=task.id,
                    round_=round_no,
                    subject=f"share of {validator}",
                )
        elif outcome == ValidatorOutcome.FORFEITED:
            task.reserved -= amount
            if task.status == TaskStatus.ACTIVE:
                task.remaining += amount
            elif amount:
                self._expect_event(
                    "Credited",
                    (task.initiator, task.id, round_no, CreditReason.REFUND),
                    {"amount": amount},
                    task=task.id,
                    round_=round_no,
                    subject=f"forfeited share of {validator} after the task ended",
                )

    # ------------------------------------------------------------------ summaries
    def total_stake(self) -> int:
        """Bonded + unbonding stake of every account: what the StakeManager owes."""
        return sum(b.bonded + b.unbonding for b in self.accounts.values())

    def total_credits(self) -> int:
        """Unclaimed credits of every account."""
        return sum(b.credit for b in self.accounts.values())

    def counts(self) -> dict[str, int]:
        """What was verified, by category, plus the number of discrepancies."""
        out = dict(sorted(self.verified.items()))
        out["events"] = self.events
        return out


# ---------------------------------------------------------------------------- the contracts' balances


class BalanceReader(Protocol):
    """What `reconcile` reads from the chain, at one block: token balances, and the views (last)."""

    def token_balance(self, holder: str) -> int:
        """The deployment token's balanceOf(holder)."""

    def view(self, contract: str, function: str, *args: Any) -> Any:
        """A view of a protocol contract (role name, function name, arguments)."""


def reconcile(
    ledger: Ledger,
    reader: BalanceReader,
    addresses: Mapping[str, str],
    *,
    evidence: str,
    views: bool = True,
) -> None:
    """Compare the rebuilt books with the chain at the audited block.

    1. Token balances (the tokens are what is real): StakeManager must hold every bonded and unbonding
       stake, the RewardDistributor every escrowed reward and unclaimed credit; the burn address at
       least what was slashed. A surplus (tokens sent to a contract directly) is reported as well: the
       events do not explain it.
    2. With `views`, the contracts' own totals and per-account / per-task views, as a last cross-check.
    `evidence` names the block (e.g. `block 1234`) in the discrepancies.
    """

    def check(
        subject: str, expected: int, actual: int, kind: Kind = Kind.BALANCE, task: int | None = None
    ) -> None:
        if expected == actual:
            ledger.verified["balances" if kind == Kind.BALANCE else "views"] += 1
        else:
            ledger.flag(
                kind,
                None,
                subject,
                expected,
                actual,
                task=task,
                evidence=evidence,
                detail="surplus: tokens the events do not explain" if actual > expected else "",
            )

    check(
        "StakeManager token balance (bonded + unbonding stakes)",
        ledger.total_stake(),
        reader.token_balance(addresses["stake_manager"]),
    )
    check(
        "RewardDistributor token balance (escrow + unclaimed credits)",
        ledger.escrowed + ledger.total_credits(),
        reader.token_balance(addresses["reward_distributor"]),
    )
    burned = reader.token_balance(BURN_ADDRESS)
    if burned < ledger.burned - ledger.unburned:
        ledger.flag(
            Kind.BALANCE,
            None,
            "burn address token balance (at least every slash)",
            f">= {ledger.burned - ledger.unburned}",
            burned,
            evidence=evidence,
        )
    else:
        ledger.verified["balances"] += 1
    if not views:
        return
    v = Kind.VIEW
    check(
        "StakeManager.totalStake()", ledger.total_stake(), int(reader.view("stake_manager", "totalStake")), v
    )
    check(
        "RewardDistributor.totalEscrowed()",
        ledger.escrowed,
        int(reader.view("reward_distributor", "totalEscrowed")),
        v,
    )
    check(
        "RewardDistributor.totalCredits()",
        ledger.total_credits(),
        int(reader.view("reward_distributor", "totalCredits")),
        v,
    )
    for address, book in sorted(ledger.accounts.items()):
        bonded, allocated, unbonding, _ = reader.view("stake_manager", "stakeOf", address)
        check(f"stakeOf({address}).bonded", book.bonded, int(bonded), v)
        check(f"stakeOf({address}).allocated", book.allocated, int(allocated), v)
        check(f"stakeOf({address}).unbonding", book.unbonding, int(unbonding), v)
        check(
            f"creditOf({address})",
            book.credit,
            int(reader.view("reward_distributor", "creditOf", address)),
            v,
        )
        for task_id, amount in sorted(book.allocations.items()):
            check(
                f"allocationOf({address}, {task_id})",
                amount,
                int(reader.view("stake_manager", "allocationOf", address, task_id)),
                v,
                task_id,
            )
    for task_id, task in sorted(ledger.tasks.items()):
        remaining, reserved = reader.view("task_escrow", "fundsOf", task_id)
        check("fundsOf().remaining", task.remaining, int(remaining), v, task_id)
        check("fundsOf().reserved", task.reserved, int(reserved), v, task_id)
        state = reader.view("task_escrow", "taskState", task_id)
        check("taskState().round", task.current_round, int(state[0]), v, task_id)
        check("taskState().status", int(task.status), int(state[6]), v, task_id)
        for number, rnd in sorted(task.rounds.items()):
            if rnd.voting is None or not rnd.submissions:
                continue
            word = int(reader.view("attestation_registry", "decisionsOf", task_id, number))
            mine = sum(int(s.decision) << (2 * s.index) for s in rnd.submissions)
            if mine == word:
                ledger.verified["views"] += 1
            else:
                chain = [Verdict((word >> (2 * i)) & 3).name for i in range(len(rnd.submissions))]
                ledger.flag(
                    v,
                    None,
                    "decisionsOf()",
                    [s.decision.name for s in rnd.submissions],
                    chain,
                    task=task_id,
                    round_=number,
                    evidence=evidence,
                )
