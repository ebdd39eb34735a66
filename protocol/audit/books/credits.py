"""The RewardDistributor's book: the escrow total and every account's credit. Every deposit and every credit
must be called for by a rule of the same transaction (a task's creation; a settlement or refund), with the
same amount; a credit never exceeds the escrow; a claim pays the account's whole credit."""

from __future__ import annotations

from protocol.audit.books.state import Books, Handler
from protocol.audit.discrepancy import Kind
from protocol.audit.events import ChainEvent
from protocol.contracts import CreditReason

__all__ = ["HANDLERS"]


def deposited(b: Books, e: ChainEvent) -> None:
    """A task's deposit enters the escrow; its TaskCreated must call for it."""
    with b.item("credits"):
        b.take(e, Kind.CREDIT)
    b.escrowed += int(e.args["amount"])


def credited(b: Books, e: ChainEvent) -> None:
    """Escrow becomes an account's credit; a settlement or refund must call for it."""
    task_id, round_ = int(e.args["taskId"]), int(e.args["round"])
    b.scope(e, task_id, round_)
    amount = int(e.args["amount"])
    with b.item("credits"):
        b.take(e, Kind.CREDIT)
        if amount > b.escrowed:
            b.at(e, task_id, round_).flag(Kind.CREDIT, "credit beyond the escrow", f"<= {b.escrowed}", amount)
    book = b.account(e.args["account"])
    reason = CreditReason(int(e.args["reason"]))
    b.escrowed -= amount
    book.credit += amount
    book.credited[reason] = book.credited.get(reason, 0) + amount
    book.credited_by_task[task_id] = book.credited_by_task.get(task_id, 0) + amount
    task = b.tasks.get(task_id)
    if task is not None:
        task.credited[reason] = task.credited.get(reason, 0) + amount


def claimed(b: Books, e: ChainEvent) -> None:
    """An account claims its whole credit."""
    b.scope(e, None, None)
    book, amount = b.account(e.args["account"]), int(e.args["amount"])
    with b.item("claims"):
        b.at(e).compare(Kind.CLAIM, f"claim of {book.address} (its whole credit)", book.credit, amount)
    book.credit -= amount
    book.claimed += amount


HANDLERS: dict[str, Handler] = {
    "Deposited": deposited,
    "Credited": credited,
    "Claimed": claimed,
}
