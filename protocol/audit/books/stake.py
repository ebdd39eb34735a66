"""The StakeManager's book: every account's bonded, allocated (per task) and unbonding stake, its slashes and
the burns. A stake never moves more than is free; an allocation is not released while its task holds it
(task active, a trainer's unsettled submission, a validator's unsettled round); a slash waits, until the end
of its transaction, for the settlement that explains it (`protocol.audit.books.settlement`)."""

from __future__ import annotations

from eth_utils.address import to_checksum_address

from protocol.audit.books.state import Books, Handler, PendingSlash
from protocol.audit.discrepancy import Kind
from protocol.audit.events import ChainEvent
from protocol.audit.model import TaskRecord
from protocol.contracts import TaskStatus

__all__ = ["HANDLERS"]


def staked(b: Books, e: ChainEvent) -> None:
    """Bonded stake grows."""
    b.scope(e, None, None)
    book = b.account(e.args["staker"])
    book.bonded += e.args["amount"]
    book.staked += e.args["amount"]
    b.verified["stake_events"] += 1


def unstake_requested(b: Books, e: ChainEvent) -> None:
    """Free stake (bonded - allocated) moves to unbonding; never more than is free."""
    b.scope(e, None, None)
    book, amount = b.account(e.args["staker"]), int(e.args["amount"])
    with b.item("stake_events"):
        if amount > book.bonded - book.allocated:
            b.at(e).flag(
                Kind.STAKE,
                f"unstake of {book.address} beyond its free stake",
                f"<= {book.bonded - book.allocated}",
                amount,
            )
    book.bonded -= amount
    book.unbonding += amount


def withdrawn(b: Books, e: ChainEvent) -> None:
    """The whole unbonding stake leaves."""
    b.scope(e, None, None)
    book, amount = b.account(e.args["staker"]), int(e.args["amount"])
    with b.item("stake_events"):
        b.at(e).compare(
            Kind.STAKE, f"withdrawal of {book.address} (its whole unbonding stake)", book.unbonding, amount
        )
    book.unbonding -= amount
    book.withdrawn += amount


def allocated(b: Books, e: ChainEvent) -> None:
    """Free stake is allocated to a task; never more than is free."""
    task_id = int(e.args["taskId"])
    b.scope(e, task_id, None)
    book, amount = b.account(e.args["staker"]), int(e.args["amount"])
    with b.item("stake_events"):
        if amount > book.bonded - book.allocated:
            b.at(e, task_id).flag(
                Kind.STAKE,
                f"allocation of {book.address} beyond its free stake",
                f"<= {book.bonded - book.allocated}",
                amount,
            )
    book.allocated += amount
    book.allocations[task_id] = book.allocations.get(task_id, 0) + amount


def _locks(task: TaskRecord, address: str) -> tuple[int, int]:
    """What still locks `address`'s allocation to `task`: (its unsettled submissions, the finalised rounds
    whose ballot expected it that settled it not yet)."""
    submissions = sum(
        1
        for r in task.rounds.values()
        for sub in r.submissions
        if sub.trainer == address and sub.settle_tx is None
    )
    rounds = sum(
        1
        for r in task.rounds.values()
        if r.finalization is not None
        and r.voting is not None
        and address in r.expected_validators
        and address not in r.validator_settlements
    )
    return submissions, rounds


def deallocated(b: Books, e: ChainEvent) -> None:
    """An allocation is released: never more than it holds, never while the task holds it."""
    task_id = int(e.args["taskId"])
    b.scope(e, task_id, None)
    book, amount = b.account(e.args["staker"]), int(e.args["amount"])
    at = b.at(e, task_id)
    with b.item("stake_events"):
        held = book.allocations.get(task_id, 0)
        if amount > held:
            at.flag(Kind.STAKE, f"deallocation of {book.address} beyond its allocation", f"<= {held}", amount)
        task = b.tasks.get(task_id)
        if task is not None and book.address in task.participants:
            unsettled, owed_rounds = _locks(task, book.address)
            if unsettled or owed_rounds:
                what = (
                    f"{unsettled} unsettled submissions" if unsettled else f"{owed_rounds} unsettled rounds"
                )
                subject = f"deallocation of {book.address} with {what}"
                at.flag(Kind.STAKE, subject, "locked until they are settled", "released")
            elif task.status == TaskStatus.ACTIVE:
                subject = f"deallocation of {book.address} while the task holds the lock"
                at.flag(Kind.STAKE, subject, "locked (task active)", "released")
    book.allocated -= amount
    book.allocations[task_id] = book.allocations.get(task_id, 0) - amount


def slashed(b: Books, e: ChainEvent) -> None:
    """An allocation is slashed (burned); its settlement must explain it within the transaction."""
    task_id = int(e.args["taskId"])
    book, amount = b.account(e.args["staker"]), int(e.args["amount"])
    at = b.at(e, task_id)
    before = book.allocations.get(task_id, 0)
    if amount > before:
        at.flag(Kind.SLASH, f"slash of {book.address} beyond its allocation", f"<= {before}", amount)
    key = (book.address, task_id)
    if key in b.slashes:
        at.flag(Kind.SLASH, f"second slash of {book.address} in one transaction", "one", "two")
    b.slashes[key] = PendingSlash(amount, before, e)
    book.allocations[task_id] = before - amount
    book.allocated -= amount
    book.bonded -= amount
    book.slashed += amount
    book.slashed_by_task[task_id] = book.slashed_by_task.get(task_id, 0) + amount
    b.burned += amount


def burn_deferred(b: Books, e: ChainEvent) -> None:
    """A slash the token refused to burn is kept as unburned; it must follow its Slashed event."""
    task_id = int(e.args["taskId"])
    staker, amount = to_checksum_address(e.args["staker"]), int(e.args["amount"])
    at = b.at(e, task_id)
    with b.item("burns"):
        pending = b.slashes.get((staker, task_id))
        if pending is None or pending.event.tx_hash != e.tx_hash:
            at.flag(
                Kind.SLASH, f"deferred burn of {staker} without its slash", "a Slashed event first", "none"
            )
        else:
            at.compare(Kind.SLASH, f"deferred burn of {staker} (its slash)", pending.amount, amount)
        b.unburned += amount
        at.compare(Kind.SLASH, "BurnDeferred.unburned (the total kept)", b.unburned, int(e.args["unburned"]))


def burn_flushed(b: Books, e: ChainEvent) -> None:
    """The whole unburned total is burned."""
    b.scope(e, None, None)
    with b.item("burns"):
        at = b.at(e)
        at.compare(
            Kind.SLASH, "BurnFlushed.amount (the whole unburned total)", b.unburned, int(e.args["amount"])
        )
    b.unburned -= int(e.args["amount"])


HANDLERS: dict[str, Handler] = {
    "Staked": staked,
    "UnstakeRequested": unstake_requested,
    "Withdrawn": withdrawn,
    "Allocated": allocated,
    "Deallocated": deallocated,
    "Slashed": slashed,
    "BurnDeferred": burn_deferred,
    "BurnFlushed": burn_flushed,
}
