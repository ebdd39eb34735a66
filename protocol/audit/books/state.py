"""The books the auditor rebuilds from events, and the one place that checks them and flags what disagrees.

`Books` holds every book of a deployment as `protocol.audit.model` records (the tasks with their rounds,
ballots and escrow; every account's stake and credit; the RewardDistributor's escrow total; the burns)
and what every handler in `protocol.audit.books` checks with:

* `at(event, task, round)` -> `At`: `flag` a discrepancy there, or `compare` what the rules give with what
  the event says; the event's transaction is the evidence;
* `item(category)`: a checked item counts as verified when checking it flagged nothing;
* the guards `task_of`, `active_round`, `ballot_round`, `finalized_round`: an event of a task never created,
  or of a round not in the state the event needs, is flagged and abandoned (`OutOfPlace`, which the
  dispatcher catches: nothing more of that event is applied);
* `expect` / `take`: the events one rule makes a transaction emit together (a settlement and its credit, a
  finalisation and the refund); `close_tx` flags each one expected that never came, and each slash no
  settlement explained.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from eth_utils.address import to_checksum_address

from protocol.audit.discrepancy import Discrepancy, Kind, fmt
from protocol.audit.events import ChainEvent
from protocol.audit.model import AccountBook, Finalization, RoundRecord, TaskRecord
from protocol.contracts import TaskStatus

__all__ = ["At", "Books", "Handler", "OutOfPlace", "PendingSlash"]

_MISSING_KIND = {
    "Credited": Kind.CREDIT,
    "Refunded": Kind.REFUND,
    "ModelAgreed": Kind.MODEL_AGREEMENT,
    "VotingOpened": Kind.VOTING,
    "Deposited": Kind.CREDIT,
    "RewardReleased": Kind.SETTLEMENT,
}
"""The kind of discrepancy when an expected event never came (EVENT_ORDER for the others)."""


class OutOfPlace(Exception):
    """Raised by a guard that flagged an event as out of place: the dispatcher applies no more of it."""


@dataclass
class PendingSlash:
    """A Slashed event waiting, until the end of its transaction, for the settlement that explains it."""

    amount: int
    allocation_before: int
    event: ChainEvent


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


def _expect_key(event: ChainEvent) -> tuple[Any, ...]:
    """What tells an expected event from another of the same name in one transaction."""
    a = event.args
    if event.name == "Credited":
        return (a["account"], a["taskId"], a["round"], a["reason"])
    if event.name in ("ModelAgreed", "VotingOpened"):
        return (a["taskId"], a["round"])
    if event.name == "RewardReleased":
        return (a["taskId"], a["round"], a["index"])
    return (a["taskId"],)


@dataclass(frozen=True)
class At:
    """Where a handler checks: an event (its transaction is the evidence), its task and round."""

    books: Books
    event: ChainEvent
    task: int | None = None
    round: int | None = None

    def flag(self, kind: Kind, subject: str, expected: Any, actual: Any) -> None:
        """Record a discrepancy here."""
        self.books.flag(kind, self.event, subject, expected, actual, task=self.task, round_=self.round)

    def compare(self, kind: Kind, subject: str, expected: Any, actual: Any) -> bool:
        """Flag unless `expected == actual`; returns whether they are equal."""
        if expected == actual:
            return True
        self.flag(kind, subject, expected, actual)
        return False


Handler = Callable[["Books", ChainEvent], None]
"""Applies one event to the books, checking it against the rules."""


@dataclass
class Books:
    """The replayed history: tasks, accounts, the distributor's escrow total, what was found and what was
    verified. `blockhash(n)`, when given, lets the seeds be checked against the chain's block hashes."""

    blockhash: Callable[[int], bytes | None] | None = None
    blocktime: Callable[[int], int] | None = None
    """A block's timestamp, when given: lets the honeypot book check that round 0's commitments precede
    the task's start."""
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
    slashes: dict[tuple[str, int], PendingSlash] = field(default_factory=dict)
    """(staker, task) -> the slash of the current transaction that its settlement has yet to explain."""
    appeal_params: tuple[int, ...] | None = None
    """The AppealCourt's (window, draws, bond, commit, reveal, slashBps, rewardBps); None without one."""
    court_owed: dict[str, int] = field(default_factory=dict)
    """What the court owes each account (credited, not claimed)."""
    court_bonds: int = 0
    """Bonds the court holds for appeals not decided yet."""
    juror_slashes: dict[tuple[str, int], list[int]] = field(default_factory=dict)
    """(validator, task) -> [slashed, kept] of the JurorSettled events of the current transaction."""
    juror_exempt: dict[tuple[str, int, int], bool] = field(default_factory=dict)
    """(validator, task, round) -> below the minimum stake at its first juror batch of the round (then never
    slashed for silence in the round)."""
    _tx: str | None = None
    _expect: list[_Expect] = field(default_factory=list)

    def account(self, address: str) -> AccountBook:
        """The book of `address` (created on first use)."""
        address = to_checksum_address(address)
        if address not in self.accounts:
            self.accounts[address] = AccountBook(address)
        return self.accounts[address]

    # ------------------------------------------------------------------ flagging
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
        """Record a discrepancy; its evidence is `evidence`, else the event's transaction."""
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

    def at(self, event: ChainEvent, task: int | None = None, round_: int | None = None) -> At:
        """Where to flag what `event` shows about `task` and `round_`."""
        return At(self, event, task, round_)

    @contextmanager
    def item(self, category: str) -> Iterator[None]:
        """Count the item as verified if checking it found nothing."""
        before = len(self.discrepancies)
        yield
        if len(self.discrepancies) == before:
            self.verified[category] += 1

    def scope(self, event: ChainEvent, task: int | None, round_: int | None) -> None:
        """Attribute the event's transaction to (task, round_) for the gas per round; the first event of a
        transaction that names a round decides."""
        current = self.tx_scope.get(event.tx_hash)
        if current is None or (current[1] is None and round_ is not None):
            self.tx_scope[event.tx_hash] = (task, round_)

    # ------------------------------------------------------------------ guards
    def task_of(self, event: ChainEvent, round_: int | None) -> TaskRecord:
        """The event's task (its transaction then belongs to (task, `round_`)); out of place when no
        TaskCreated came first."""
        task_id = int(event.args["taskId"])
        task = self.tasks.get(task_id)
        if task is None:
            self.at(event, task_id).flag(
                Kind.EVENT_ORDER, f"{event.name} of an unknown task", "a created task", f"task {task_id}"
            )
            raise OutOfPlace
        self.scope(event, task.id, round_)
        return task

    def active_round(self, event: ChainEvent, task: TaskRecord) -> RoundRecord:
        """The event's round; out of place unless it is the current round of an active task."""
        round_ = int(event.args["round"])
        at = self.at(event, task.id, round_)
        if task.status != TaskStatus.ACTIVE:
            at.flag(Kind.EVENT_ORDER, f"{event.name} in a task that is not active", "ACTIVE", task.status)
            raise OutOfPlace
        if not at.compare(Kind.EVENT_ORDER, f"{event.name} round", task.current_round, round_):
            raise OutOfPlace
        return task.round(round_)

    def ballot_round(self, event: ChainEvent, task: TaskRecord) -> RoundRecord:
        """The event's round; out of place unless its ballot is open and it is not finalised."""
        rnd = task.rounds.get(int(event.args["round"]))
        at = self.at(event, task.id, int(event.args["round"]))
        if rnd is None or rnd.voting is None:
            at.flag(Kind.EVENT_ORDER, f"{event.name} before the ballot opened", "an open ballot", "none")
            raise OutOfPlace
        if rnd.finalization is not None:
            at.flag(Kind.EVENT_ORDER, f"{event.name} after the round was finalised", "before", "after")
            raise OutOfPlace
        return rnd

    def finalized_round(self, event: ChainEvent, task: TaskRecord) -> tuple[RoundRecord, Finalization]:
        """The event's round and its finalisation; out of place unless it is finalised."""
        rnd = task.rounds.get(int(event.args["round"]))
        if rnd is None or rnd.finalization is None:
            self.at(event, task.id, int(event.args["round"])).flag(
                Kind.EVENT_ORDER, f"{event.name} of a round not finalised", "a finalised round", "not"
            )
            raise OutOfPlace
        return rnd, rnd.finalization

    # ------------------------------------------------------------------ events emitted together
    def expect(
        self,
        name: str,
        key: tuple[Any, ...],
        values: dict[str, Any],
        *,
        task: int | None,
        round_: int | None,
        subject: str,
    ) -> None:
        """The current transaction must also emit `name` (told apart by `key`) with these `values`."""
        assert self._tx is not None
        self._expect.append(_Expect(name, key, values, task, round_, subject, self._tx))

    def take(self, event: ChainEvent, kind: Kind) -> bool:
        """Match `event` with what its transaction must emit and compare its values; flag it when nothing
        called for it. Returns whether something did."""
        key = _expect_key(event)
        for i, want in enumerate(self._expect):
            if want.name == event.name and want.key == key:
                del self._expect[i]
                at = self.at(event, want.task, want.round)
                for name, value in want.values.items():
                    at.compare(kind, f"{event.name}.{name} ({want.subject})", value, event.args[name])
                return True
        self.at(event, event.args.get("taskId"), event.args.get("round")).flag(
            kind,
            f"{event.name} that no rule calls for",
            "no such event",
            ", ".join(f"{k}={fmt(v)}" for k, v in event.args.items()),
        )
        return False

    def begin_tx(self, tx: str) -> None:
        """Start applying the events of transaction `tx` (closing the previous one)."""
        if self._tx is not None and tx != self._tx:
            self.close_tx()
        self._tx = tx

    def close_tx(self) -> None:
        """End the current transaction: flag every event it should have emitted and did not, and every
        slash no settlement explained."""
        for want in self._expect:
            self.flag(
                _MISSING_KIND.get(want.name, Kind.EVENT_ORDER),
                None,
                f"missing {want.name} ({want.subject})",
                ", ".join(f"{k}={fmt(v)}" for k, v in want.values.items()) or "the event",
                "nothing",
                task=want.task,
                round_=want.round,
                evidence=want.tx,
            )
        self._expect.clear()
        for (staker, task_id), pending in self.slashes.items():
            self.at(pending.event, task_id).flag(
                Kind.SLASH, f"slash of {staker} that no settlement explains", 0, pending.amount
            )
        self.slashes.clear()
        self._tx = None
