"""The AppealCourt's book (docs/protocol.md "Appeals"): each appeal filed on a decided submission of a
finalised round, its draw, its jurors' commitments (their draws recomputed from the seed and the round's line
of weights: protocol.committees, the court's rule) and reveals (hashing to the commitment), its decision
recomputed from the revealed draws (overturned iff at least ceil(K_a / 2) revealed and the opposite side holds
more than half), what it pays back (without the quorum only the revealed draws' share, the rest burned;
the decision may then be appealed again, before the same committee: a new attempt keeps the first's seed
and W_r) and owes; each validator's settlement, in batches of appealed indices (on the losing side of an
overturn `slashBps` of what the round's earlier slashes left; drawn and silent in some attempt
`silenceBps`, once a round and not when below the minimum stake at its first batch of the round; the
wronged trainer paid first, then
`rewardBps` of the rest to the appellant; paid `draws x perDraw` as a winning juror of an upheld appeal),
the StakeManager's single Slashed/Seized of each batch, and the court's claims. The settlement book reads
the appeals' results (`RoundRecord.final_decision`)."""

from __future__ import annotations

from eth_utils.address import to_checksum_address

from protocol import committees
from protocol.audit.books.state import At, Books, Handler
from protocol.audit.discrepancy import Kind
from protocol.audit.events import ChainEvent
from protocol.audit.model import AppealRecord, RoundRecord, TaskRecord
from protocol.contracts import BPS, Verdict, appeal_commitment

__all__ = ["HANDLERS", "appeal_draws", "appeal_reward"]


def appeal_reward(rate: int, work_units: int, reward_per_round: int, validator_share_bps: int) -> int:
    """What the trainer of an overturned rejection is owed (the court's `_reward`): with P the round's trainer
    pool `rewardPerRound - rewardPerRound * validatorShareBps // 10000` (the carry not counted) and
    A = P // rate the accepted work it implies (0 when the round accepted nothing), `P * w // (A + w)`, and
    never more than `rate * w` when rate > 0: the submission's acceptance dilutes the others', and no
    declared `w` makes it more than P."""
    pool = reward_per_round - reward_per_round * validator_share_bps // BPS
    implied = pool // rate if rate else 0
    if implied + work_units == 0:
        return 0
    owed = pool * work_units // (implied + work_units)
    return min(owed, rate * work_units) if rate else owed


def _line(task: TaskRecord) -> list[committees.Seat]:
    """The task's line of validator weights, in join order (the registry's `lineOf`)."""
    return committees.line_of([(v, task.weights.get(v, 1), task.participants[v][1]) for v in task.validators])


def appeal_draws(task: TaskRecord, round_no: int, index: int, seed: bytes, draws: int) -> dict[str, int]:
    """Every validator's draws in an appeal: K_a points (the committees' formula with the appeal's seed and
    the submission's index) on the line of the validators active in the round, in join order."""
    line = _line(task)
    total = committees.active_weight(line, round_no)
    if total == 0:
        return {}
    points = committees.draw_points(seed, index, draws, total)
    return {
        s.validator: sum(1 for x in points if s.offset <= x < s.offset + s.weight)
        for s in line
        if s.from_round <= round_no
    }


def _no_quorum(b: Books, appeal: AppealRecord) -> bool:
    """The appeal's reveals missed the quorum: fewer than ceil(K_a / 2) draws revealed."""
    k = b.appeal_params[1] if b.appeal_params is not None else 0
    return 2 * sum(w for _, w in appeal.verdicts.values()) < k


def _appeal(b: Books, e: ChainEvent) -> tuple[TaskRecord, RoundRecord, AppealRecord, At] | None:
    task = b.task_of(e, int(e.args["round"]))
    at = b.at(e, task.id, int(e.args["round"]))
    rnd = task.rounds.get(int(e.args["round"]))
    appeal = None if rnd is None else rnd.appeals.get(int(e.args["index"]))
    if rnd is None or appeal is None:
        at.flag(Kind.APPEAL, f"{e.name} of an appeal never filed", "AppealFiled first", "none")
        return None
    return task, rnd, appeal, at


def appeal_filed(b: Books, e: ChainEvent) -> None:
    """An appeal of a decided submission of a finalised round, once, with the deployment's bond."""
    a = e.args
    round_no, index = int(a["round"]), int(a["index"])
    task = b.task_of(e, round_no)
    at = b.at(e, task.id, round_no)
    bond = int(a["bond"])
    with b.item("appeals"):
        rnd = task.rounds.get(round_no)
        if rnd is None or rnd.finalization is None:
            at.flag(Kind.APPEAL, "appeal of a round not finalised", "a finalised round", "not")
            return
        if not 0 <= index < len(rnd.submissions) or rnd.submissions[index].decision == Verdict.NONE:
            at.flag(Kind.APPEAL, f"appeal of submission {index}", "a decided submission", "none")
            return
        previous = rnd.appeals.get(index)
        if previous is not None and not (previous.decided and _no_quorum(b, previous)):
            at.flag(Kind.APPEAL, f"second appeal of submission {index}", "one, or one a failed quorum", "two")
            return
        at.compare(Kind.APPEAL, f"original decision of submission {index}", rnd.submissions[index].decision,
                   Verdict(int(a["original"])))  # fmt: skip
        if b.appeal_params is not None:
            at.compare(Kind.APPEAL, f"bond of the appeal of submission {index}", b.appeal_params[2], bond)
        appellant = to_checksum_address(a["appellant"])
        record = AppealRecord(appellant, Verdict(int(a["original"])), bond, e.tx_hash)
        if previous is not None:
            record.attempt = previous.attempt + 1
            record.committee = (previous.seed or b"", previous.total_weight)
            record.silent_before = previous.silent_before | _silent(b, task, round_no, index, previous)
        rnd.appeals[index] = record
    b.court_bonds += bond


def _silent(b: Books, task: TaskRecord, round_no: int, index: int, appeal: AppealRecord) -> set[str]:
    """The jurors drawn in the appeal's attempt that did not reveal in it."""
    if appeal.seed is None or b.appeal_params is None:
        return set()
    draws = appeal_draws(task, round_no, index, appeal.seed, b.appeal_params[1])
    return {v for v, d in draws.items() if d and v not in appeal.verdicts}


def appeal_seed_armed(b: Books, e: ChainEvent) -> None:
    """An appeal's seed re-armed (the draw came more than 256 blocks late): only an undrawn appeal."""
    found = _appeal(b, e)
    if found is None:
        return
    _, _, appeal, at = found
    with b.item("appeals"):
        if appeal.seed is not None:
            at.flag(Kind.APPEAL, "appeal seed re-armed after its draw", "an undrawn appeal", "drawn")


def appeal_drawn(b: Books, e: ChainEvent) -> None:
    """The appeal's seed (a block hash after the filing) and the round's weight; a new attempt's (drawn by
    its filing) the first attempt's, so that silence cannot re-draw the committee."""
    found = _appeal(b, e)
    if found is None:
        return
    task, _, appeal, at = found
    with b.item("appeals"):
        if appeal.seed is not None:
            at.flag(Kind.APPEAL, "second draw of an appeal", "one", "two")
        appeal.seed, appeal.total_weight = bytes(e.args["seed"]), int(e.args["totalWeight"])
        at.compare(Kind.APPEAL, "appeal's W_r", committees.active_weight(_line(task), int(e.args["round"])),
                   appeal.total_weight)  # fmt: skip
        if appeal.committee is not None:
            kept_seed, kept_weight = appeal.committee
            label = f"attempt {appeal.attempt} of the appeal of submission {int(e.args['index'])}"
            at.compare(Kind.APPEAL, f"{label}: the first attempt's seed", "0x" + kept_seed.hex(),
                       "0x" + appeal.seed.hex())  # fmt: skip
            at.compare(Kind.APPEAL, f"{label}: the first attempt's W_r", kept_weight, appeal.total_weight)


def appeal_committed(b: Books, e: ChainEvent) -> None:
    """A juror's commitment: its draws as recomputed."""
    found = _appeal(b, e)
    if found is None:
        return
    task, _, appeal, at = found
    juror, weight = to_checksum_address(e.args["juror"]), int(e.args["weight"])
    with b.item("appeals"):
        if appeal.seed is None or b.appeal_params is None:
            at.flag(Kind.APPEAL, "juror commitment before the draw", "a drawn appeal", "not drawn")
            return
        draws = appeal_draws(
            task, int(e.args["round"]), int(e.args["index"]), appeal.seed, b.appeal_params[1]
        )
        at.compare(Kind.APPEAL, f"draws of juror {juror}", draws.get(juror, 0), weight)
        appeal.commits[juror] = (bytes(e.args["commitment"]), weight)


def appeal_revealed(b: Books, e: ChainEvent) -> None:
    """A juror's verdict: it hashes to its commitment and weighs its draws."""
    found = _appeal(b, e)
    if found is None:
        return
    task, _, appeal, at = found
    a = e.args
    juror, verdict = to_checksum_address(a["juror"]), Verdict(int(a["verdict"]))
    with b.item("appeals"):
        commitment, weight = appeal.commits.get(juror, (b"", 0))
        computed = appeal_commitment(
            task.id, int(a["round"]), int(a["index"]), juror, int(verdict), bytes(a["salt"])
        )
        at.compare(Kind.APPEAL, f"appeal reveal of {juror} (its commitment)", "0x" + commitment.hex(),
                   "0x" + computed.hex())  # fmt: skip
        at.compare(Kind.APPEAL, f"weight of the appeal verdict of {juror}", weight, int(a["weight"]))
        appeal.verdicts[juror] = (verdict, weight)


def appeal_decided(b: Books, e: ChainEvent) -> None:
    """The decision recomputed from the revealed draws; the bond paid back, the pay per winning draw and what
    the wronged trainer is owed."""
    found = _appeal(b, e)
    if found is None:
        return
    task, rnd, appeal, at = found
    a = e.args
    index = int(a["index"])
    with b.item("appeals"):
        if b.appeal_params is None or appeal.decided:
            at.flag(Kind.APPEAL, "appeal decision", "one, of a deployment with a court", "another")
            return
        k = b.appeal_params[1]
        accept = sum(w for v, w in appeal.verdicts.values() if v == Verdict.ACCEPT)
        other = sum(w for v, w in appeal.verdicts.values() if v != Verdict.ACCEPT)
        opposite = other if appeal.original == Verdict.ACCEPT else accept
        quorum = not _no_quorum(b, appeal)
        overturned = quorum and 2 * opposite > accept + other
        winners = accept + other - opposite if quorum and not overturned else 0
        per_draw = appeal.bond // winners if winners else 0
        paid_back = appeal.bond - per_draw * winners
        burned = 0 if quorum else appeal.bond - appeal.bond * (accept + other) // k
        paid_back -= burned
        victim = 0
        if overturned and appeal.original != Verdict.ACCEPT and rnd.finalization is not None:
            victim = appeal_reward(
                int(rnd.finalization.expected["rate"]), rnd.submissions[index].work_units,
                int(task.params["rewardPerRound"]), int(task.params["validatorShareBps"]),
            )  # fmt: skip
        label = f"appeal of submission {index}"
        at.compare(Kind.APPEAL, f"{label}: overturned", overturned, bool(a["overturned"]))
        appeal.decided, appeal.overturned, appeal.per_draw, appeal.victim_owed = (
            True,
            overturned,
            per_draw,
            victim,
        )
        at.compare(Kind.APPEAL, f"{label}: final verdict", appeal.final, Verdict(int(a["finalVerdict"])))
        at.compare(Kind.APPEAL, f"{label}: bond paid back", paid_back, int(a["paidBack"]))
        at.compare(Kind.APPEAL, f"{label}: pay per winning draw", per_draw, int(a["perDraw"]))
        at.compare(Kind.APPEAL, f"{label}: owed to its trainer", victim, int(a["victimOwed"]))
        at.compare(Kind.APPEAL, f"{label}: bond burned (no quorum)", burned, int(a["burned"]))
    # The winning draws' shares stay in the court until each juror is settled (`juror_settled` moves them).
    b.court_bonds -= appeal.bond - per_draw * winners
    b.burned += int(a["burned"])
    if int(a["paidBack"]):
        b.court_owed[appeal.appellant] = b.court_owed.get(appeal.appellant, 0) + int(a["paidBack"])


def juror_settled(b: Books, e: ChainEvent) -> None:
    """A validator's part in one appeal: slashed `slashBps` on the losing side of an overturn, or
    `silenceBps` drawn and silent (once a round, and not below the task's minimum stake), of what the round's
    earlier slashes left of its allocation, split to the wronged trainer, the appellant and the burn; or
    paid its winning draws."""
    found = _appeal(b, e)
    if found is None:
        return
    task, rnd, appeal, at = found
    a = e.args
    validator, index = to_checksum_address(a["validator"]), int(a["index"])
    slashed, to_victim, to_appellant, paid = (
        int(a[k]) for k in ("slashed", "toVictim", "toAppellant", "paid")
    )
    key = (validator, task.id)
    so_far = b.juror_slashes.setdefault(key, [0, 0])
    with b.item("appeals"):
        if b.appeal_params is None or not appeal.decided:
            at.flag(Kind.APPEAL, f"juror settlement of {validator}", "a decided appeal", "undecided")
            return
        slash_bps, reward_bps = b.appeal_params[5], b.appeal_params[6]
        verdict, _ = appeal.verdicts.get(validator, (Verdict.NONE, 0))
        reveal = rnd.reveals.get(validator)
        original = (
            reveal.verdicts[index] if reveal is not None and index < len(reveal.verdicts) else Verdict.NONE
        )
        final_accept = appeal.final == Verdict.ACCEPT
        silent = appeal.draws(validator) > 0 and verdict == Verdict.NONE
        if appeal.seed is not None and validator not in appeal.commits:
            drawn = appeal_draws(task, rnd.number, index, appeal.seed, b.appeal_params[1]).get(validator, 0)
            silent = drawn > 0
        silent = silent or validator in appeal.silent_before
        lost = appeal.overturned and any(
            v != Verdict.NONE and (v == Verdict.ACCEPT) != final_accept for v in (original, verdict)
        )
        label = f"{validator} on the appeal of submission {index}"
        batch_start = b.account(validator).allocations.get(task.id, 0)  # the court reads it once a batch
        allocation = batch_start - so_far[0]
        exempt = _exempt(b, task, rnd.number, validator, batch_start)
        silence_due = (
            silent
            and not lost
            and not any(validator in x.silenced for x in rnd.appeals.values())
            and not exempt
        )
        if lost or silence_due:
            if not lost:
                appeal.silenced.add(validator)
            want = allocation * (slash_bps if lost else b.appeal_params[7]) // BPS
            want_victim = min(want, appeal.victim_owed) if appeal.overturned else 0
            want_appellant = (want - want_victim) * reward_bps // BPS if appeal.overturned else 0
            at.compare(Kind.SLASH, f"appeal slash of {label}", want, slashed)
            at.compare(Kind.APPEAL, f"to the wronged trainer from {label}", want_victim, to_victim)
            at.compare(Kind.APPEAL, f"to the appellant from {label}", want_appellant, to_appellant)
            appeal.victim_owed -= to_victim
            so_far[0] += slashed
            so_far[1] += to_victim + to_appellant
            if to_victim:
                trainer = rnd.submissions[index].trainer
                b.court_owed[trainer] = b.court_owed.get(trainer, 0) + to_victim
            if to_appellant:
                b.court_owed[appeal.appellant] = b.court_owed.get(appeal.appellant, 0) + to_appellant
        else:
            pays = (
                not appeal.overturned
                and verdict != Verdict.NONE
                and (verdict == Verdict.ACCEPT) == final_accept
            )
            want = appeal.draws(validator) * appeal.per_draw if pays else 0
            at.compare(Kind.APPEAL, f"pay of {label}", want, paid)
            if slashed:
                at.flag(Kind.SLASH, f"appeal slash of {label}", 0, slashed)
            b.court_owed[validator] = b.court_owed.get(validator, 0) + paid
            b.court_bonds -= paid


def _exempt(b: Books, task: TaskRecord, round_no: int, validator: str, batch_start: int) -> bool:
    """Whether `validator` was below the task's minimum stake at its first juror batch of the round
    (`batch_start`: its allocation at the batch being read), as the court records it then."""
    below = batch_start < int(task.params["minValidatorStake"])
    return b.juror_exempt.setdefault((validator, task.id, round_no), below)


def juror_round_settled(b: Books, e: ChainEvent) -> None:
    """A batch of the round's appeals settled for a validator: its slashes and what the court keeps are the
    sums of its JurorSettled events of the transaction (the one Slashed and Seized that follow must match)."""
    task = b.task_of(e, int(e.args["round"]))
    validator = to_checksum_address(e.args["validator"])
    at = b.at(e, task.id, int(e.args["round"]))
    _exempt(b, task, int(e.args["round"]), validator, b.account(validator).allocations.get(task.id, 0))
    with b.item("appeals"):
        slashed, kept = b.juror_slashes.get((validator, task.id), [0, 0])
        at.compare(Kind.SLASH, f"appeal slashes of {validator} in the round", slashed, int(e.args["slashed"]))
        at.compare(Kind.APPEAL, f"what the court keeps of {validator}'s slashes", kept, int(e.args["kept"]))


def seized(b: Books, e: ChainEvent) -> None:
    """The court's slash of a validator (the Slashed just before): the JurorRoundSettled sums; the part the
    court keeps is not burned."""
    task_id = int(e.args["taskId"])
    staker, kept = to_checksum_address(e.args["staker"]), int(e.args["amount"])
    at = b.at(e, task_id)
    with b.item("appeals"):
        pending = b.slashes.pop((staker, task_id), None)
        want = b.juror_slashes.pop((staker, task_id), [0, 0])
        at.compare(
            Kind.SLASH, f"appeal slash of {staker} (Slashed)", want[0], pending.amount if pending else 0
        )
        at.compare(Kind.APPEAL, f"seized from {staker} for the court", want[1], kept)
    b.burned -= kept


def court_claimed(b: Books, e: ChainEvent) -> None:
    """A withdrawal of the whole of what the court owes the account."""
    account, amount = to_checksum_address(e.args["account"]), int(e.args["amount"])
    at = b.at(e)
    b.scope(e, None, None)
    with b.item("appeals"):
        at.compare(
            Kind.CLAIM, f"court claim of {account} (its whole credit)", b.court_owed.get(account, 0), amount
        )
    b.court_owed[account] = b.court_owed.get(account, 0) - amount


HANDLERS: dict[str, Handler] = {
    "AppealFiled": appeal_filed,
    "AppealSeedArmed": appeal_seed_armed,
    "AppealDrawn": appeal_drawn,
    "AppealCommitted": appeal_committed,
    "AppealRevealed": appeal_revealed,
    "AppealDecided": appeal_decided,
    "JurorSettled": juror_settled,
    "JurorRoundSettled": juror_round_settled,
    "Seized": seized,
    "CourtClaimed": court_claimed,
}
