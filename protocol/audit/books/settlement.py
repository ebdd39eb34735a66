"""The TaskEscrow's settlements: a trainer's no-shows (count and slash), and, of a finalised round, each
submission (decision, reward `rate * workUnits`, slash `allocation * bps / 10000` of a REJECT or
UNAVAILABLE) and each validator expected in the ballot (REWARDED with its share when its reveal agreed
with every decision and it revealed a vote for the round's agreed model; FORFEITED when not, a round
without an agreed model included; SLASHED when it never revealed; with committees, the amount is its share
times its draws, and NOT_DRAWN, nothing, for one without a draw in the round). Each reward and each
forfeit after the task's end must be credited in the same transaction; each slash must match the
StakeManager's Slashed event of the same transaction. A submission whose ballot accepted it and whose
appeal overturned that must release, in the same transaction (RewardReleased), the `rate * workUnits` the
round reserved for it: back to `remaining` while the task is active, credited to the initiator (reason
Refund) once it has ended."""

from __future__ import annotations

from eth_utils.address import to_checksum_address

from protocol.audit.books.state import At, Books, Handler
from protocol.audit.discrepancy import Kind
from protocol.audit.events import ChainEvent
from protocol.audit.model import Finalization, RoundRecord, TaskRecord, ValidatorSettlement
from protocol.contracts import BPS, CreditReason, Role, TaskStatus, ValidatorOutcome, Verdict

__all__ = ["HANDLERS"]


def _check_slash(b: Books, at: At, staker: str, task_id: int, bps: int, reported: int, subject: str) -> None:
    """A settlement's slash: `allocation * bps / 10000` of the allocation before it, and the StakeManager's
    Slashed event of the same transaction must say the same."""
    pending = b.slashes.pop((staker, task_id), None)
    before = pending.allocation_before if pending else b.account(staker).allocations.get(task_id, 0)
    expected = min(before * bps // BPS, before)
    at.compare(Kind.SLASH, f"{subject} slashed", expected, reported)
    at.compare(Kind.SLASH, f"{subject}: Slashed event amount", expected, pending.amount if pending else 0)


def _settled_decision(rnd: RoundRecord, index: int) -> Verdict:
    """What the escrow settles a submission on: the recomputed decision, unless its appeal overturned it
    (an overturned acceptance settles as REJECT; an overturned rejection as NONE: the court pays it)."""
    appeal = rnd.appeals.get(index)
    decision = rnd.submissions[index].decision
    if appeal is None or not appeal.overturned:
        return decision
    return Verdict.REJECT if decision == Verdict.ACCEPT else Verdict.NONE


def submission_settled(b: Books, e: ChainEvent) -> None:
    """A finalised round's submission, settled once: its decision, reward and slash; its credit."""
    a = e.args
    round_no, index = int(a["round"]), int(a["index"])
    task = b.task_of(e, round_no)
    at = b.at(e, task.id, round_no)
    reward, slashed = int(a["reward"]), int(a["slashed"])
    released = 0
    with b.item("settlements"):
        rnd, finalization = b.finalized_round(e, task)
        if not 0 <= index < len(rnd.submissions):
            at.flag(Kind.EVENT_ORDER, "settled submission index", f"< {len(rnd.submissions)}", index)
            return
        sub = rnd.submissions[index]
        label = f"submission {index} ({sub.trainer})"
        if sub.settle_tx is not None:
            at.flag(Kind.EVENT_ORDER, f"second settlement of {label}", "one", "two")
            return
        at.compare(Kind.SETTLEMENT, f"trainer of {label}", sub.trainer, to_checksum_address(a["trainer"]))
        decision = Verdict(int(a["decision"]))
        tally = f"2/3 of {len(rnd.reveals)} revealed, tally {sub.tally}"
        want = _settled_decision(rnd, index)
        if want != sub.decision:
            tally += f"; its appeal overturned {sub.decision.name}"
        at.compare(Kind.DECISION, f"decision on {label} ({tally})", want, decision)
        rate = int(finalization.expected["rate"])
        want_reward = rate * sub.work_units if want == Verdict.ACCEPT else 0
        if sub.decision == Verdict.ACCEPT and want != Verdict.ACCEPT:
            released = rate * sub.work_units
        at.compare(Kind.SETTLEMENT, f"reward of {label}", want_reward, reward)
        if want in (Verdict.REJECT, Verdict.UNAVAILABLE):
            _check_slash(b, at, sub.trainer, task.id, task.param("trainerSlashBps"), slashed, label)
        elif slashed or (sub.trainer, task.id) in b.slashes:
            at.flag(Kind.SLASH, f"slash of {label}", 0, slashed)
            b.slashes.pop((sub.trainer, task.id), None)
        sub.settled_decision, sub.reward, sub.slashed, sub.settle_tx = decision, reward, slashed, e.tx_hash
    task.reserved -= reward
    if reward:
        b.expect(
            "Credited",
            (to_checksum_address(a["trainer"]), task.id, round_no, CreditReason.TRAINER_REWARD),
            {"amount": reward},
            task=task.id,
            round_=round_no,
            subject=f"reward of submission {index}",
        )
    if released:
        b.expect(
            "RewardReleased",
            (task.id, round_no, index),
            {"amount": released},
            task=task.id,
            round_=round_no,
            subject=f"reward reserved for submission {index}, whose acceptance was overturned",
        )


def reward_released(b: Books, e: ChainEvent) -> None:
    """The reward a round reserved for a submission whose acceptance an appeal overturned, called for by
    that submission's settlement, leaves the reserve: back to `remaining` while the task is active (it
    funds the rounds to come), credited to the initiator with reason Refund once it has ended."""
    a = e.args
    round_no, amount = int(a["round"]), int(a["amount"])
    task = b.task_of(e, round_no)
    with b.item("settlements"):
        b.take(e, Kind.SETTLEMENT)
    _release(b, task, round_no, amount, f"released reward of submission {int(a['index'])}")


def _validator_expectation(
    rnd: RoundRecord, finalization: Finalization, validator: str
) -> tuple[ValidatorOutcome, int]:
    """(outcome, amount) the rules give a validator of a finalised round; the amount of a slash is checked
    by `_check_slash`."""
    weight = rnd.weight(validator)
    if weight == 0:
        return ValidatorOutcome.NOT_DRAWN, 0
    reveal = rnd.reveals.get(validator)
    if reveal is None:
        return ValidatorOutcome.SLASHED, 0
    finals = [rnd.final_decision(sub.index) for sub in rnd.submissions]
    agreed = all(
        final == Verdict.NONE or reveal.verdicts[sub.index] in (Verdict.NONE, final)
        for sub, final in zip(rnd.submissions, finals, strict=True)
    )
    vote = rnd.votes.get(validator)
    right_vote = rnd.agreed is not None and vote is not None and vote[0] == rnd.agreed[0]
    paid = agreed and right_vote
    return (ValidatorOutcome.REWARDED if paid else ValidatorOutcome.FORFEITED), weight * int(
        finalization.expected["share"]
    )


def validator_settled(b: Books, e: ChainEvent) -> None:
    """A validator of a finalised round's ballot, settled once: its outcome, share or slash; its credit."""
    a = e.args
    round_no = int(a["round"])
    task = b.task_of(e, round_no)
    validator, at = to_checksum_address(a["validator"]), b.at(e, task.id, round_no)
    outcome, amount = ValidatorOutcome(int(a["outcome"])), int(a["amount"])
    with b.item("settlements"):
        rnd, finalization = b.finalized_round(e, task)
        label = f"validator {validator}"
        if rnd.voting is None or validator not in rnd.expected_validators:
            at.flag(
                Kind.EVENT_ORDER,
                f"settlement of {label}",
                "a validator expected in the ballot",
                "not expected",
            )
            return
        if validator in rnd.validator_settlements:
            at.flag(Kind.EVENT_ORDER, f"second settlement of {label}", "one", "two")
            return
        want_outcome, want_amount = _validator_expectation(rnd, finalization, validator)
        at.compare(Kind.SETTLEMENT, f"outcome of {label}", want_outcome, outcome)
        if want_outcome == ValidatorOutcome.SLASHED:
            _check_slash(b, at, validator, task.id, task.param("validatorSlashBps"), amount, label)
        else:
            at.compare(Kind.SETTLEMENT, f"share of {label}", want_amount, amount)
            if (validator, task.id) in b.slashes:
                at.flag(Kind.SLASH, f"slash of {label}", 0, b.slashes.pop((validator, task.id)).amount)
        rnd.validator_settlements[validator] = ValidatorSettlement(
            outcome, amount, want_outcome, want_amount, e.tx_hash
        )
    if outcome == ValidatorOutcome.REWARDED:
        task.reserved -= amount
        if amount:
            b.expect(
                "Credited",
                (validator, task.id, round_no, CreditReason.VALIDATOR_REWARD),
                {"amount": amount},
                task=task.id,
                round_=round_no,
                subject=f"share of {validator}",
            )
    elif outcome == ValidatorOutcome.FORFEITED:
        _release(b, task, round_no, amount, f"forfeited share of {validator}")


def _release(b: Books, task: TaskRecord, round_no: int, amount: int, what: str) -> None:
    """`amount` leaves the task's reserve (the escrow's `_release`): back to `remaining` while the task is
    active, else credited to the initiator as a Refund (unless 0)."""
    task.reserved -= amount
    if task.status == TaskStatus.ACTIVE:
        task.remaining += amount
    elif amount:
        b.expect(
            "Credited",
            (task.initiator, task.id, round_no, CreditReason.REFUND),
            {"amount": amount},
            task=task.id,
            round_=round_no,
            subject=f"{what} after the task ended",
        )


def no_shows_settled(b: Books, e: ChainEvent) -> None:
    """A trainer's no-shows (finalised rounds it was active in and did not submit to, not settled yet, as
    counted from its first round, its submissions and its freed seat) settled at once: the count, and a
    slash of `min(rounds * noShowSlashBps, 10000)` basis points of its allocation, matching the
    StakeManager's Slashed event of the same transaction."""
    a = e.args
    task = b.task_of(e, None)
    trainer = to_checksum_address(a["trainer"])
    at = b.at(e, task.id)
    rounds, slashed = int(a["rounds"]), int(a["slashed"])
    with b.item("no_shows"):
        if task.participants.get(trainer, (None, 0))[0] != Role.TRAINER:
            at.flag(Kind.EVENT_ORDER, f"no-shows of {trainer}", "a trainer of the task", "not one")
            return
        unsettled, _ = task.no_shows(trainer)
        at.compare(Kind.NO_SHOW, f"no-shows of {trainer} settled", unsettled, rounds)
        bps = min(rounds * task.param("noShowSlashBps"), BPS)
        _check_slash(b, at, trainer, task.id, bps, slashed, f"no-shows of {trainer}")
    task.no_shows_settled[trainer] = task.no_shows_settled.get(trainer, 0) + rounds


HANDLERS: dict[str, Handler] = {
    "NoShowsSettled": no_shows_settled,
    "RewardReleased": reward_released,
    "SubmissionSettled": submission_settled,
    "ValidatorSettled": validator_settled,
}
