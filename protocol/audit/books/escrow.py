"""The TaskEscrow's book of tasks and rounds: creation (parameters, deposit), joins, submissions, seeds, round
finalisation (budget from the task's own books, accepted work, rate, validator share, carry, next base, the
end of the task, with `protocol.contracts.round_payout`'s arithmetic), the end of a task and its refund.
Settlements are `protocol.audit.books.settlement`'s. A submission needs the minimum trainer stake allocated
for itself and for each of its trainer's submissions not yet settled."""

from __future__ import annotations

from eth_utils.address import to_checksum_address

from protocol import committees
from protocol.audit.books.state import Books, Handler
from protocol.audit.discrepancy import Kind
from protocol.audit.events import ChainEvent
from protocol.audit.model import Finalization, SubmissionRecord, TaskRecord
from protocol.contracts import CancelReason, CreditReason, Role, TaskStatus, cut_quorum, round_payout

__all__ = ["HANDLERS"]

_BLOCKHASH_WINDOW = 256
_MAX_WORK_UNITS = 2**32 - 1


def task_created(b: Books, e: ChainEvent) -> None:
    """A task: the next id, deposit = numRounds * rewardPerRound, 1 <= quorum <= maxValidators (with
    committees, revealed draws: 1 <= quorum <= committeeDraws)."""
    a = e.args
    task_id, params = int(a["taskId"]), dict(a["params"])
    b.scope(e, task_id, None)
    at = b.at(e, task_id)
    with b.item("tasks"):
        at.compare(Kind.EVENT_ORDER, "task id (one more than the last)", max(b.tasks, default=0) + 1, task_id)
        deposit = int(params["numRounds"]) * int(params["rewardPerRound"])
        at.compare(Kind.CREDIT, "deposit (numRounds * rewardPerRound)", deposit, a["deposit"])
        draws = int(params.get("committeeDraws", 0))
        bound = draws or int(params["maxValidators"])
        if not 1 <= int(params["quorum"]) <= bound:
            at.flag(Kind.EVENT_ORDER, "quorum", f"1..{bound}", params["quorum"])
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
    b.tasks[task_id] = task
    b.account(task.initiator).deposited += int(a["deposit"])
    b.expect(
        "Deposited",
        (task_id,),
        {"from": task.initiator, "amount": task.deposit},
        task=task_id,
        round_=None,
        subject="the task's deposit",
    )


def joined(b: Books, e: ChainEvent) -> None:
    """A trainer or validator joins an active task once, from round 0 or the next, within the caps, with the
    minimum stake allocated."""
    task = b.task_of(e, None)
    account, role, first = (
        to_checksum_address(e.args["account"]),
        int(e.args["role"]),
        int(e.args["fromRound"]),
    )
    at = b.at(e, task.id)
    with b.item("joins"):
        if task.status != TaskStatus.ACTIVE:
            at.flag(
                Kind.EVENT_ORDER, f"join of {account} to a task that is not active", "ACTIVE", task.status
            )
        if account in task.participants:
            at.flag(Kind.EVENT_ORDER, f"second join of {account}", "one join", task.participants[account][0])
            return
        if role not in (Role.TRAINER, Role.VALIDATOR):
            at.flag(Kind.EVENT_ORDER, f"role of {account}", "TRAINER or VALIDATOR", role)
            return
        if first not in (0, task.current_round + 1) or first >= task.num_rounds:
            expected = f"0 (before the start) or {task.current_round + 1}"
            at.flag(Kind.EVENT_ORDER, f"first round of {account}", expected, first)
        need = task.param("minTrainerStake" if role == Role.TRAINER else "minValidatorStake")
        held = b.account(account).allocations.get(task.id, 0)
        if held < need:
            at.flag(Kind.STAKE, f"allocation of {account} when joining", f">= {need}", held)
        cap = task.param("maxTrainers" if role == Role.TRAINER else "maxValidators")
        members = task.trainers if role == Role.TRAINER else task.validators
        if len(members) >= cap:
            at.flag(
                Kind.EVENT_ORDER, f"{Role(role).name.lower()}s of the task", f"<= {cap}", len(members) + 1
            )
    task.participants[account] = (Role(role), first)
    (task.trainers if role == Role.TRAINER else task.validators).append(account)
    if role == Role.VALIDATOR and (task.draws or b.appeal_params is not None):
        held = b.account(account).allocations.get(task.id, 0)
        task.weights[account] = committees.weight_for(held, task.param("minValidatorStake"))


def work_submitted(b: Books, e: ChainEvent) -> None:
    """A submission to the current round, by a trainer active in it, once, before the seed, with the minimum
    stake."""
    a = e.args
    round_no = int(a["round"])
    task = b.task_of(e, round_no)
    trainer = to_checksum_address(a["trainer"])
    with b.item("submissions"):
        rnd = b.active_round(e, task)
        at = b.at(e, task.id, round_no)
        at.compare(
            Kind.EVENT_ORDER, f"index of {trainer}'s submission", len(rnd.submissions), int(a["index"])
        )
        role, first = task.participants.get(trainer, (Role.NONE, 0))
        if role != Role.TRAINER or first > round_no:
            active = "a trainer active in the round"
            at.flag(Kind.EVENT_ORDER, f"submission by {trainer}", active, f"{role.name} from round {first}")
        if any(s.trainer == trainer for s in rnd.submissions):
            at.flag(Kind.EVENT_ORDER, f"second submission by {trainer}", "one", "two")
        if trainer in task.seats_freed:
            freed = f"its seat freed in round {task.seats_freed[trainer]}"
            at.flag(Kind.EVENT_ORDER, f"submission by {trainer}", "a trainer that holds its seat", freed)
        if rnd.seed is not None:
            at.flag(Kind.EVENT_ORDER, f"submission by {trainer} after the seed", "before the seed", "after")
        if not 1 <= int(a["workUnits"]) <= _MAX_WORK_UNITS:
            at.flag(Kind.EVENT_ORDER, "workUnits", f"1..{_MAX_WORK_UNITS}", a["workUnits"])
        unsettled = sum(
            1
            for r in task.rounds.values()
            for s in r.submissions
            if s.trainer == trainer and s.settle_tx is None
        )
        need = task.param("minTrainerStake") * (1 + unsettled)
        held = b.account(trainer).allocations.get(task.id, 0)
        if held < need:
            at.flag(Kind.STAKE, f"allocation of {trainer} when submitting", f">= {need}", held)
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


def seed_armed(b: Books, e: ChainEvent) -> None:
    """The seed block is the block + seedDelay."""
    task = b.task_of(e, int(e.args["round"]))
    with b.item("seeds"):
        rnd = b.active_round(e, task)
        at = b.at(e, task.id, rnd.number)
        if rnd.seed is not None:
            at.flag(Kind.SEED, "seed armed after it was drawn", "not armed", "armed")
        seed_block = int(e.args["seedBlock"])
        at.compare(Kind.SEED, "seedBlock (block + seedDelay)", e.block + task.param("seedDelay"), seed_block)
        rnd.armed.append(seed_block)


def seed_drawn(b: Books, e: ChainEvent) -> None:
    """The seed is the last armed block's hash, drawn within 256 blocks of it, in a round with submissions;
    it opens the ballot."""
    task = b.task_of(e, int(e.args["round"]))
    with b.item("seeds"):
        rnd = b.active_round(e, task)
        at = b.at(e, task.id, rnd.number)
        seed_block, seed = int(e.args["seedBlock"]), bytes(e.args["seed"])
        if rnd.seed is not None:
            at.flag(Kind.SEED, "second seed of the round", "one", "two")
        at.compare(
            Kind.SEED, "seedBlock (the last one armed)", rnd.armed[-1] if rnd.armed else None, seed_block
        )
        if not seed_block < e.block <= seed_block + _BLOCKHASH_WINDOW:
            window = f"in ({seed_block}, {seed_block + _BLOCKHASH_WINDOW}]"
            at.flag(Kind.SEED, "block of the draw", window, e.block)
        if b.blockhash is not None:
            at.compare(Kind.SEED, f"seed (blockhash of block {seed_block})", b.blockhash(seed_block), seed)
        if not rnd.submissions:
            at.flag(Kind.SEED, "seed of a round without submissions", "no seed", "drawn")
        rnd.seed_block, rnd.seed, rnd.seed_tx = seed_block, seed, e.tx_hash
        rnd.expected_validators = task.validators_in(rnd.number)
        if task.draws:
            rnd.multiplicities = committee_multiplicities(task, rnd.number, seed, len(rnd.submissions))
        b.expect(
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


def committee_multiplicities(task: TaskRecord, round_no: int, seed: bytes, n: int) -> dict[str, list[int]]:
    """Every validator's draws on the round's `n` submissions, from the seed and the line of weights in join
    order (protocol.committees: the registry's rule)."""
    line = committees.line_of([(v, task.weights.get(v, 1), task.participants[v][1]) for v in task.validators])
    total = committees.active_weight(line, round_no)
    return {
        s.validator: committees.multiplicities(seed, n, task.draws, total, s.offset, s.weight)
        if s.from_round <= round_no and total
        else [0] * n
        for s in line
    }


def _end_after(task: TaskRecord, round_no: int, accepted: int) -> tuple[TaskStatus, int]:
    """(the task's status after finalising `round_no` with `accepted` work units, its empty-round streak):
    COMPLETED after the last round, CANCELLED after `maxEmptyRounds` rounds in a row without accepted work
    (when nonzero), else ACTIVE."""
    empty = task.empty_rounds + 1 if accepted == 0 else 0
    max_empty = task.param("maxEmptyRounds")
    if round_no == task.num_rounds - 1:
        return TaskStatus.COMPLETED, empty
    if max_empty != 0 and empty >= max_empty:
        return TaskStatus.CANCELLED, empty
    return TaskStatus.ACTIVE, empty


def round_finalized(b: Books, e: ChainEvent) -> None:
    """Every number of the round's payout recomputed from the task's books and the reveals; the task's end and
    refund."""
    a = e.args
    round_no = int(a["round"])
    task = b.task_of(e, round_no)
    with b.item("finalizations"):
        rnd = b.active_round(e, task)
        at = b.at(e, task.id, round_no)
        if rnd.submissions and rnd.seed is None:
            at.flag(Kind.EVENT_ORDER, "finalisation of a round with submissions", "after the seed", "before")
        rnd.recount(task.param("quorum"))
        accepted, revealed = rnd.accepted_work, rnd.revealed_weight
        budget = task.remaining - task.param("rewardPerRound") * (task.num_rounds - round_no - 1)
        pay = round_payout(
            budget,
            task.param("validatorShareBps"),
            accepted,
            revealed,
            task.param("rewardPerRound"),
            cut_quorum(task.param("quorum"), task.draws, len(rnd.submissions)),
        )
        next_base = rnd.agreed[0] if rnd.agreed is not None else task.base
        end, empty = _end_after(task, round_no, accepted)
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
            at.compare(Kind.FINALIZATION, f"RoundFinalized.{name}", value, a[name])
        if (int(a["nextSubmitDeadline"]) == 0) != (end != TaskStatus.ACTIVE):
            deadline = "0 (the task ends)" if end != TaskStatus.ACTIVE else "a deadline (another round)"
            at.flag(Kind.FINALIZATION, "RoundFinalized.nextSubmitDeadline", deadline, a["nextSubmitDeadline"])
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
    if end == TaskStatus.ACTIVE:
        return
    task.status, task.ended_round = end, round_no
    if end == TaskStatus.COMPLETED:
        b.expect("TaskCompleted", (task.id,), {}, task=task.id, round_=round_no, subject="the last round")
    else:
        b.expect(
            "TaskCancelled",
            (task.id,),
            {"round": round_no, "reason": CancelReason.NO_ACCEPTED_WORK},
            task=task.id,
            round_=round_no,
            subject=f"{empty} rounds without accepted work",
        )
    _expect_refund(b, task, round_no)


def _expect_refund(b: Books, task: TaskRecord, round_no: int) -> None:
    """A task that ended refunds what remained to its initiator, in the same transaction."""
    if task.remaining > 0:
        b.expect(
            "Refunded",
            (task.id,),
            {"initiator": task.initiator, "amount": task.remaining},
            task=task.id,
            round_=round_no,
            subject="what remained when the task ended",
        )
        b.expect(
            "Credited",
            (task.initiator, task.id, round_no, CreditReason.REFUND),
            {"amount": task.remaining},
            task=task.id,
            round_=round_no,
            subject="the end-of-task refund",
        )


def task_completed(b: Books, e: ChainEvent) -> None:
    """The end that the last round's finalisation called for."""
    task = b.task_of(e, None)
    b.scope(e, task.id, task.ended_round)  # the end belongs to the last round
    with b.item("task_ends"):
        b.take(e, Kind.EVENT_ORDER)


def task_cancelled(b: Books, e: ChainEvent) -> None:
    """By the initiator: only before the start, then refunded; else the end that empty rounds called for."""
    round_no = int(e.args["round"])
    task = b.task_of(e, round_no)
    at = b.at(e, task.id)
    with b.item("task_ends"):
        if int(e.args["reason"]) != CancelReason.BY_INITIATOR:
            b.take(e, Kind.EVENT_ORDER)
            task.cancel_reason = CancelReason.NO_ACCEPTED_WORK
            return
        # cancelTask: only before the start, so before any round was finalised or submitted to.
        if task.status != TaskStatus.ACTIVE or task.current_round != 0 or task.rounds:
            actual = f"round {task.current_round}, {task.status.name}"
            at.flag(Kind.EVENT_ORDER, "cancellation by the initiator", "before the task started", actual)
        at.compare(Kind.EVENT_ORDER, "TaskCancelled.round", task.current_round, round_no)
        task.status = TaskStatus.CANCELLED
        task.ended_round = round_no
        task.cancel_reason = CancelReason.BY_INITIATOR
        _expect_refund(b, task, round_no)


def refunded(b: Books, e: ChainEvent) -> None:
    """What remained when the task ended goes back to the initiator."""
    task = b.task_of(e, None)
    b.scope(e, task.id, task.ended_round)  # the refund belongs to the last round
    with b.item("refunds"):
        b.take(e, Kind.REFUND)
    task.remaining -= int(e.args["amount"])
    task.refunded += int(e.args["amount"])


def seat_freed(b: Books, e: ChainEvent) -> None:
    """A seated trainer of an active task that missed `maxNoShows` (> 0) rounds in a row, counted from its
    first round, its submissions and the finalised rounds, loses its seat in the current round."""
    a = e.args
    round_no = int(a["round"])
    task = b.task_of(e, round_no)
    trainer = to_checksum_address(a["trainer"])
    at = b.at(e, task.id, round_no)
    with b.item("seats"):
        if task.status != TaskStatus.ACTIVE:
            at.flag(
                Kind.EVENT_ORDER,
                f"seat of {trainer} freed in a task that is not active",
                "ACTIVE",
                task.status,
            )
        at.compare(Kind.EVENT_ORDER, "SeatFreed.round (the current round)", task.current_round, round_no)
        role = task.participants.get(trainer, (Role.NONE, 0))[0]
        if role != Role.TRAINER or trainer in task.seats_freed:
            at.flag(Kind.EVENT_ORDER, f"seat of {trainer} freed", "a trainer that holds one", role.name)
            return
        _, in_a_row = task.no_shows(trainer)
        at.compare(Kind.NO_SHOW, f"rounds {trainer} missed in a row", in_a_row, int(a["missed"]))
        limit = task.param("maxNoShows")
        if limit == 0 or in_a_row < limit:
            at.flag(
                Kind.NO_SHOW,
                f"seat of {trainer} freed",
                f"after {limit or 'never'} missed in a row",
                in_a_row,
            )
    task.seats_freed[trainer] = round_no


HANDLERS: dict[str, Handler] = {
    "TaskCreated": task_created,
    "Joined": joined,
    "WorkSubmitted": work_submitted,
    "SeedArmed": seed_armed,
    "SeedDrawn": seed_drawn,
    "RoundFinalized": round_finalized,
    "TaskCompleted": task_completed,
    "TaskCancelled": task_cancelled,
    "Refunded": refunded,
    "SeatFreed": seat_freed,
}
