"""Replay a deployment's events into the auditor's books and check every number against the rules.

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

The rules live in one book per contract (`protocol.audit.books`: `stake`, `credits`, `escrow` and
`settlement`, `ballots`), each a module of handlers, one per event, listed in its `HANDLERS`; `HANDLERS`
below, the one dispatcher, joins them. The books share their state and their flagging
(`protocol.audit.books.state.Books`, which `Ledger` extends with the replay).

    ledger = Ledger.replay(events, blockhash=lambda n: ...)
    reconcile(ledger, reader)
    ledger.discrepancies, ledger.verified
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

from protocol.audit.books import appeals, ballots, credits, escrow, honeypots, settlement, stake
from protocol.audit.books.state import Books, Handler, OutOfPlace
from protocol.audit.discrepancy import Kind, fmt
from protocol.audit.events import ChainEvent
from protocol.contracts import BURN_ADDRESS, Verdict

__all__ = ["BOOKS", "HANDLERS", "BalanceReader", "Ledger", "fmt", "reconcile"]

BOOKS = (stake, credits, escrow, settlement, ballots, honeypots, appeals)
"""The books, one module per contract (TaskEscrow's split in two: tasks and rounds, settlements)."""

HANDLERS: dict[str, Handler] = {name: handler for book in BOOKS for name, handler in book.HANDLERS.items()}
"""Event name -> the handler of its book: the one dispatcher. An event without one moves nothing the
auditor models."""


class Ledger(Books):
    """The books, replayed from a deployment's events in chain order."""

    @classmethod
    def replay(
        cls,
        events: Iterable[ChainEvent],
        *,
        blockhash: Callable[[int], bytes | None] | None = None,
        blocktime: Callable[[int], int] | None = None,
        appeal_params: tuple[int, ...] | None = None,
    ) -> Ledger:
        """Replay `events` (in chain order) and close the last transaction; `appeal_params`: the
        AppealCourt's `parameters()` (None: a deployment without one)."""
        ledger = cls(blockhash=blockhash, blocktime=blocktime, appeal_params=appeal_params)
        for event in events:
            ledger.apply(event)
        ledger.finish()
        return ledger

    def apply(self, event: ChainEvent) -> None:
        """Apply one event (they must come in chain order)."""
        self.begin_tx(event.tx_hash)
        self.events += 1
        if self.first_block is None:
            self.first_block = event.block
        self.last_block = event.block
        handler = HANDLERS.get(event.name)
        if handler is None:
            return
        try:
            handler(self, event)
        except OutOfPlace:
            return  # flagged by a guard: nothing more of this event applies

    def finish(self) -> None:
        """Close the last transaction (report what it should have emitted and did not), then flag the lazy
        validators of the honeypots whose REJECT stood."""
        self.close_tx()
        honeypots.flag_lazy(self)

    def total_stake(self) -> int:
        """Bonded + unbonding stake of every account: what the StakeManager owes."""
        return sum(b.bonded + b.unbonding for b in self.accounts.values())

    def total_credits(self) -> int:
        """Unclaimed credits of every account."""
        return sum(b.credit for b in self.accounts.values())

    def counts(self) -> dict[str, int]:
        """What was verified, by category, plus the number of events."""
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
        subject: str, expected: object, actual: object, kind: Kind = Kind.BALANCE, task: int | None = None
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
                detail="surplus: tokens the events do not explain"
                if isinstance(actual, int) and isinstance(expected, int) and actual > expected
                else "",
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
    if addresses.get("appeal_court"):
        check(
            "AppealCourt token balance (open bonds + what it owes)",
            ledger.court_bonds + sum(ledger.court_owed.values()),
            reader.token_balance(addresses["appeal_court"]),
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
        for trainer in task.trainers:
            unsettled, in_a_row, seated = reader.view("task_escrow", "noShowsOf", task_id, trainer)
            rebuilt = (*task.no_shows(trainer), trainer not in task.seats_freed)
            check(f"noShowsOf({trainer})", rebuilt, (int(unsettled), int(in_a_row), bool(seated)), v, task_id)
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
