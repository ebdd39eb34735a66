"""The HoneypotRegistry's book: each round's honeypot commitment (made before the round opened: during an
earlier round, or before the task's start for round 0), its reveal (the preimage hashes to the commitment,
the named submission is the submitter's, the decision is the one recomputed from the reveals), the
validators it shows to be lazy (revealed ACCEPT on a honeypot the round decided REJECT, unless an appeal
overturned that REJECT: flagged as `lazy_validator` once the history is replayed, slashed or not), and
each lazy slash (only of such a validator, once, of a REJECT that stood, `allocation * bps / 10000` of its
allocation before it, matching the StakeManager's Slashed event of the same transaction)."""

from __future__ import annotations

from eth_abi.abi import encode as abi_encode
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from protocol.audit.books.state import Books, Handler
from protocol.audit.discrepancy import Kind
from protocol.audit.events import ChainEvent
from protocol.audit.model import HoneypotRecord
from protocol.contracts import BPS, TaskStatus, Verdict

__all__ = ["HANDLERS"]


def honeypot_committed(b: Books, e: ChainEvent) -> None:
    """A commitment of an active task for one of its rounds that had not opened yet (a later round than
    the current one, or round 0 in a block before the task's start time, checked when the block times are
    known); once per round."""
    round_no = int(e.args["round"])
    task = b.task_of(e, round_no)
    with b.item("honeypots"):
        at = b.at(e, task.id, round_no)
        if task.status != TaskStatus.ACTIVE:
            at.flag(Kind.EVENT_ORDER, "HoneypotCommitted in a task that is not active", "ACTIVE", task.status)
            return
        if round_no >= task.num_rounds:
            at.flag(Kind.HONEYPOT, "honeypot commitment", f"a round below {task.num_rounds}", round_no)
            return
        current = task.current_round
        before_start = b.blocktime is None or b.blocktime(e.block) < task.param("startTime")
        if round_no < current or (round_no == current and (current > 0 or not before_start)):
            at.flag(
                Kind.HONEYPOT,
                "honeypot commitment",
                "before its round opened",
                f"in round {current}, after round {round_no} opened",
            )
        if round_no in task.honeypots:
            at.flag(Kind.HONEYPOT, "second honeypot commitment of the round", "one", "two")
            return
        task.honeypots[round_no] = HoneypotRecord(bytes(e.args["commitment"]), e.tx_hash)


def honeypot_revealed(b: Books, e: ChainEvent) -> None:
    """A reveal that opens the round's commitment and names the submitter's submission; its decision is
    the recomputed one. Every validator whose reveal accepted it while the round rejected it is flagged."""
    a = e.args
    round_no, index = int(a["round"]), int(a["index"])
    task = b.task_of(e, round_no)
    at = b.at(e, task.id, round_no)
    submitter, salt = to_checksum_address(a["submitter"]), bytes(a["salt"])
    with b.item("honeypots"):
        hp = task.honeypots.get(round_no)
        rnd = task.rounds.get(round_no)
        if hp is None or rnd is None or hp.reveal_tx is not None:
            at.flag(
                Kind.HONEYPOT, "honeypot reveal", "one of a committed honeypot", "none committed or twice"
            )
            return
        opened = keccak(
            abi_encode(["uint256", "uint256", "address", "bytes32"], [task.id, round_no, submitter, salt])
        )
        at.compare(Kind.HONEYPOT, "honeypot commitment opened by the reveal", hp.commitment, opened)
        if rnd.voting is None or not 0 <= index < len(rnd.submissions):
            at.flag(Kind.HONEYPOT, "revealed honeypot submission", "a judged submission", f"index {index}")
            return
        sub = rnd.submissions[index]
        at.compare(Kind.HONEYPOT, f"trainer of honeypot submission {index}", sub.trainer, submitter)
        decision = Verdict(int(a["decision"]))
        at.compare(Kind.DECISION, f"decision on honeypot submission {index}", sub.decision, decision)
        hp.index, hp.submitter, hp.decision, hp.reveal_tx = index, submitter, sub.decision, e.tx_hash
        hp.reveal_event = e
    if sub.decision != Verdict.REJECT:
        return
    hp.lazy = [v for v, reveal in rnd.reveals.items() if reveal.verdicts[index] == Verdict.ACCEPT]


def flag_lazy(b: Books) -> None:
    """Once the whole history is replayed: every validator that revealed ACCEPT on a honeypot whose REJECT
    stood (the ballot's, and the court's where an appeal decided it) is flagged `lazy_validator`. A REJECT
    that an appeal overturned shows nobody lazy: the acceptors were right (HoneypotRegistry refuses to slash
    them)."""
    for task in b.tasks.values():
        for round_no, hp in sorted(task.honeypots.items()):
            rnd = task.rounds.get(round_no)
            if hp.reveal_event is None or hp.index is None or rnd is None:
                continue
            if rnd.final_decision(hp.index) != Verdict.REJECT:
                continue
            at = b.at(hp.reveal_event, task.id, round_no)
            for validator in hp.lazy:
                at.flag(
                    Kind.LAZY_VALIDATOR,
                    f"validator {validator}'s verdict on honeypot submission {hp.index} (known-bad work)",
                    Verdict.REJECT,
                    Verdict.ACCEPT,
                )


def lazy_slashed(b: Books, e: ChainEvent) -> None:
    """A slash of a validator the reveal showed lazy, once per honeypot: `allocation * bps / 10000`."""
    a = e.args
    round_no = int(a["round"])
    task = b.task_of(e, round_no)
    at = b.at(e, task.id, round_no)
    validator, reported, bps = to_checksum_address(a["validator"]), int(a["slashed"]), int(a["bps"])
    with b.item("lazy_slashes"):
        pending = b.slashes.pop((validator, task.id), None)
        hp = task.honeypots.get(round_no)
        if hp is None or hp.reveal_tx is None or validator not in hp.lazy:
            at.flag(
                Kind.HONEYPOT,
                f"lazy slash of {validator}",
                "a validator that accepted a rejected honeypot",
                "not",
            )
            return
        if validator in hp.slashed:
            at.flag(Kind.HONEYPOT, f"second lazy slash of {validator}", "one", "two")
            return
        rnd = task.rounds.get(round_no)
        if hp.index is not None and rnd is not None and rnd.final_decision(hp.index) != Verdict.REJECT:
            at.flag(Kind.HONEYPOT, f"lazy slash of {validator}", "a REJECT the court upheld", "overturned")
            return
        before = pending.allocation_before if pending else b.account(validator).allocations.get(task.id, 0)
        expected = min(before * bps // BPS, before)
        at.compare(Kind.SLASH, f"lazy slash of {validator}", expected, reported)
        at.compare(
            Kind.SLASH,
            f"lazy slash of {validator}: Slashed event amount",
            expected,
            pending.amount if pending else 0,
        )
        hp.slashed[validator] = reported


HANDLERS: dict[str, Handler] = {
    "HoneypotCommitted": honeypot_committed,
    "HoneypotRevealed": honeypot_revealed,
    "LazySlashed": lazy_slashed,
}
