"""The AttestationRegistry's book: each round's ballot (opened by the seed), the validators' commitments and
reveals, the decisions recomputed from them, and the model-hash votes (commit, then reveal) and agreement.

A reveal must hash to its commitment (`keccak(abi.encode(task, round, validator, verdicts, salt))`) and hold
one verdict (1..3) per submission, from a validator still holding the minimum stake; every decision is the
verdict with `3 * count >= 2 * revealed` once `revealed >= quorum` (`RoundRecord.recount`); a model vote
is committed by a validator that revealed and revealed once, hashing to its commitment
(`keccak(abi.encode(task, round, validator, modelHash, keccak(cid), salt))`); the model is agreed by the
first hash with `votes >= quorum` and `3 * votes >= 2 * revealed`. Whether a vote was the right one is
the re-verification's to say (`protocol.audit.reverify`: it recomputes the aggregate). With committees
(`committeeDraws` k > 0) the draws are recomputed from the seed and the join-time weights
(protocol.committees): a reveal holds a verdict exactly on its validator's drawn submissions, each verdict
counts its draws there, `revealed` is the revealed draws, and a model vote weighs its voter's draws."""

from __future__ import annotations

from eth_abi.abi import encode as abi_encode
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from protocol import committees
from protocol.audit.books.state import Books, Handler
from protocol.audit.discrepancy import Kind
from protocol.audit.events import ChainEvent
from protocol.audit.model import Reveal
from protocol.contracts import MAX_SUBMISSIONS, Verdict, vote_commitment

__all__ = ["HANDLERS"]

_ZERO32 = bytes(32)


def voting_opened(b: Books, e: ChainEvent) -> None:
    """The ballot the seed called for, with the task's reveal and vote durations."""
    a = e.args
    task = b.task_of(e, int(a["round"]))
    with b.item("ballots"):
        b.take(e, Kind.VOTING)
        at = b.at(e, task.id, int(a["round"]))
        commit, reveal, vote = int(a["commitDeadline"]), int(a["revealDeadline"]), int(a["voteDeadline"])
        at.compare(
            Kind.VOTING, "revealDeadline - commitDeadline", task.param("revealDuration"), reveal - commit
        )
        at.compare(Kind.VOTING, "voteDeadline - revealDeadline", task.param("voteDuration"), vote - reveal)
    rnd = task.round(int(a["round"]))
    rnd.voting = {k: int(v) for k, v in a.items() if k not in ("taskId", "round")}


def verdicts_committed(b: Books, e: ChainEvent) -> None:
    """A nonzero commitment by a validator of the round, once, while the ballot is open."""
    task = b.task_of(e, int(e.args["round"]))
    validator = to_checksum_address(e.args["validator"])
    with b.item("commits"):
        rnd = b.ballot_round(e, task)
        at = b.at(e, task.id, rnd.number)
        if validator not in rnd.expected_validators:
            at.flag(
                Kind.EVENT_ORDER,
                f"commitment by {validator}",
                "a validator active in the round",
                "someone else",
            )
        if validator in rnd.commits:
            at.flag(Kind.EVENT_ORDER, f"second commitment by {validator}", "one", "two")
            return
        if bytes(e.args["commitment"]) == _ZERO32:
            at.flag(Kind.COMMITMENT, f"commitment by {validator}", "nonzero", "zero")
        rnd.commits[validator] = (bytes(e.args["commitment"]), e.tx_hash)


def verdicts_revealed(b: Books, e: ChainEvent) -> None:
    """A reveal that hashes to its commitment, one verdict per submission, with the minimum stake; the
    decisions recounted."""
    task = b.task_of(e, int(e.args["round"]))
    validator = to_checksum_address(e.args["validator"])
    word, salt = int(e.args["verdicts"]), bytes(e.args["salt"])
    with b.item("reveals"):
        rnd = b.ballot_round(e, task)
        at = b.at(e, task.id, rnd.number)
        committed = rnd.commits.get(validator)
        if committed is None:
            at.flag(Kind.COMMITMENT, f"reveal by {validator}", "a prior commitment", "none")
            return
        if validator in rnd.reveals:
            at.flag(Kind.EVENT_ORDER, f"second reveal by {validator}", "one", "two")
            return
        computed = keccak(
            abi_encode(
                ["uint256", "uint256", "address", "uint256", "bytes32"],
                [task.id, rnd.number, validator, word, salt],
            )
        )
        at.compare(Kind.COMMITMENT, f"commitment of {validator}'s reveal", committed[0], computed)
        n = len(rnd.submissions)
        codes = [Verdict((word >> (2 * i)) & 3) for i in range(min(n, MAX_SUBMISSIONS))]
        mine = None if rnd.multiplicities is None else rnd.multiplicities.get(validator, [0] * n)
        shaped = (
            Verdict.NONE not in codes
            if mine is None
            else all((code != Verdict.NONE) == (m > 0) for code, m in zip(codes, mine, strict=True))
        )
        if (n < MAX_SUBMISSIONS and word >> (2 * n)) or not shaped:
            one_each = (
                f"one verdict (1..3) for each of {n} submissions"
                if mine is None
                else f"a verdict (1..3) exactly on its drawn submissions {committees.drawn_fields(mine)}"
            )
            at.flag(Kind.COMMITMENT, f"verdict vector of {validator}", one_each, hex(word))
            return
        need, held = task.param("minValidatorStake"), b.account(validator).allocations.get(task.id, 0)
        if held < need:
            at.flag(Kind.STAKE, f"allocation of {validator} when revealing", f">= {need}", held)
        rnd.reveals[validator] = Reveal(validator, word, codes, salt, e.tx_hash)
        rnd.recount(task.param("quorum"))


def model_vote_committed(b: Books, e: ChainEvent) -> None:
    """A nonzero model vote commitment by a validator that revealed its verdicts, once."""
    task = b.task_of(e, int(e.args["round"]))
    validator = to_checksum_address(e.args["validator"])
    with b.item("vote_commits"):
        rnd = b.ballot_round(e, task)
        at = b.at(e, task.id, rnd.number)
        if validator not in rnd.reveals:
            at.flag(
                Kind.EVENT_ORDER,
                f"model vote commitment by {validator}",
                "a validator that revealed",
                "one that did not",
            )
            return
        if validator in rnd.vote_commits:
            at.flag(Kind.EVENT_ORDER, f"second model vote commitment by {validator}", "one", "two")
            return
        if bytes(e.args["commitment"]) == _ZERO32:
            at.flag(Kind.COMMITMENT, f"model vote commitment by {validator}", "nonzero", "zero")
        rnd.vote_commits[validator] = (bytes(e.args["commitment"]), e.tx_hash)


def model_voted(b: Books, e: ChainEvent) -> None:
    """A model vote revealed once by a validator that committed to it (the hash, CID and salt of the
    reveal's transaction hash to the commitment); the first hash with enough votes is agreed."""
    task = b.task_of(e, int(e.args["round"]))
    validator = to_checksum_address(e.args["validator"])
    model_hash, cid = bytes(e.args["modelHash"]), str(e.args["modelCid"])
    with b.item("model_votes"):
        rnd = b.ballot_round(e, task)
        at = b.at(e, task.id, rnd.number)
        committed = rnd.vote_commits.get(validator)
        if committed is None:
            at.flag(Kind.COMMITMENT, f"model vote by {validator}", "a prior vote commitment", "none")
            return
        if validator in rnd.votes:
            at.flag(Kind.EVENT_ORDER, f"second model vote by {validator}", "one", "two")
            return
        if model_hash == _ZERO32:
            at.flag(Kind.MODEL_AGREEMENT, f"model hash voted by {validator}", "nonzero", "zero")
        computed = vote_commitment(task.id, rnd.number, validator, model_hash, cid, bytes(e.args["salt"]))
        at.compare(Kind.COMMITMENT, f"commitment of {validator}'s model vote", committed[0], computed)
        rnd.votes[validator] = (model_hash, cid, e.tx_hash)
        votes = rnd.vote_counts.get(model_hash, 0) + rnd.weight(validator)
        rnd.vote_counts[model_hash] = votes
        revealed = rnd.revealed_weight
        if rnd.agreed is None and votes >= task.param("quorum") and 3 * votes >= 2 * revealed:
            rnd.agreed = (model_hash, cid, votes)
            b.expect(
                "ModelAgreed",
                (task.id, rnd.number),
                {"modelHash": model_hash, "modelCid": cid, "votes": votes},
                task=task.id,
                round_=rnd.number,
                subject="two thirds of the revealed validators voted this hash",
            )


def model_agreed(b: Books, e: ChainEvent) -> None:
    """The agreement the votes called for."""
    task = b.task_of(e, int(e.args["round"]))
    with b.item("model_agreements"):
        if b.take(e, Kind.MODEL_AGREEMENT):
            task.round(int(e.args["round"])).agreed_tx = e.tx_hash


HANDLERS: dict[str, Handler] = {
    "VotingOpened": voting_opened,
    "VerdictsCommitted": verdicts_committed,
    "VerdictsRevealed": verdicts_revealed,
    "ModelVoteCommitted": model_vote_committed,
    "ModelVoted": model_voted,
    "ModelAgreed": model_agreed,
}
