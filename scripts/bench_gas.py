"""Gas per operation of trustrl's contracts, measured from transaction receipts on a fresh anvil.

    python scripts/bench_gas.py [--json PATH] [--trainers 4] [--validators 3] [--draws K]

Deploys the protocol on its own anvil (started and stopped here) and runs a task of two full rounds:
every trainer submits (the last one closes the phase), the seed is drawn, every validator commits,
reveals, commits a model vote and reveals it; one trainer is rejected and one validator disagrees. The
second round is the last, so its finalisation also refunds the rest. Then everyone is settled (round 0
item by item, `settleSubmission` and `settleValidator`, and its credits paid in one `claimFor` to every
participant; round 1 in one `settleRound`), claims and unbonds.
A second task measures `settleNoShows`: a squatter's seat freed after a missed round; a third the
honeypot calls (`commitHoneypot`, `revealHoneypot`, `slashLazy`: O(1) each): the initiator's bait is rejected
by two validators and accepted by the third, which is slashed.
Prints the largest gasUsed per operation against the project's targets (contracts/gas-targets.json:
`targets` in this scenario; with more trainers, `at_128_submissions` for the calls that grow with the
round's submissions and `targets` for the others; `claimFor`: `per_account_targets`) and writes
`{"operation": gas, ...}`; exits 1 when an operation is over its target. `--trainers 128` measures the
largest round. Gas is deterministic for a given sequence of transactions, so the numbers are reproducible.
`--draws K` gives the main task stake-weighted committees of K draws per submission (the validators' stakes
are equal; each judges only its draws and commits NONE elsewhere; one with no draw commits an empty
vector): the reveal, the model vote and the validator's settlement then recompute the draws,
O(submissions x K).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from eth_utils.crypto import keccak
from web3.contract.contract import ContractFunction

from protocol.anvil import Anvil
from protocol.chain import ChainClient
from protocol.contracts import (
    AppealParams,
    Deployment,
    ProtocolClient,
    Role,
    TaskParams,
    Verdict,
    appeal_commitment,
    deploy_protocol,
    honeypot_commitment,
    index_mask,
    pack_verdicts,
    verdict_commitment,
    vote_commitment,
)
from protocol.roles.settle import juror_batches

# Hard targets (gas) of the project, kept in one file for this script, tests/contracts/test_gas.py and the
# forge gas snapshot; Prime Intellect's submitWork costs ~239k and claim ~87k.
TARGETS_FILE = Path(__file__).resolve().parent.parent / "contracts" / "gas-targets.json"
_TARGETS = json.loads(TARGETS_FILE.read_text())
TARGETS: dict[str, int] = _TARGETS["targets"]
"""In the default scenario (4 trainers, 3 validators)."""
GROWS_WITH_SUBMISSIONS: frozenset[str] = frozenset(_TARGETS["grows_with_submissions"])
"""Calls whose cost grows with the round's submissions N (the reveal updates every submission's tally and
decision, finalisation sums the accepted work): their default-scenario target does not hold beyond it."""
SCALE_TARGETS: dict[str, int] = _TARGETS["at_128_submissions"]
"""Targets at every size up to 128 submissions (the largest round)."""
PER_ACCOUNT_TARGETS: dict[str, dict[str, int]] = {
    k: v for k, v in _TARGETS["per_account_targets"].items() if k != "about"
}
"""Calls that pay a batch of accounts (`claimFor`): gas <= `base` + `per_account` x the batch's accounts."""
APPEAL_TARGETS: dict[str, int] = _TARGETS["appeal_targets"]
"""The AppealCourt's calls, in the appeal scenario (`_appeal`, a deployment of its own)."""
SCALE_APPEAL_TARGETS: dict[str, int] = _TARGETS["appeal_targets_at_128_appeals"]
"""The court's calls with 128 appeals in one round (`--appeals 128`): settleJuror per batch of the keeper's
(`juror_batches`), the others as in the one-appeal scenario."""
APPEAL_PARAMS = AppealParams(window=600, draws=201, bond=10**18, commit_duration=300, reveal_duration=300)


def batch_target(call: str, accounts: int) -> int:
    """The target of a `call` that pays a batch of `accounts` (PER_ACCOUNT_TARGETS)."""
    target = PER_ACCOUNT_TARGETS[call]
    return target["base"] + target["per_account"] * accounts


def targets_for(trainers: int, validators: int = 3) -> dict[str, int]:
    """The targets of a run with `trainers` trainers (one submission each per round) and `validators`
    validators (the scenario's `claimFor` pays all of them)."""
    base = {k: v for k, v in TARGETS.items() if trainers <= 4 or k not in GROWS_WITH_SUBMISSIONS}
    return {
        **base,
        **{k: min(v, base.get(k, v)) for k, v in SCALE_TARGETS.items()},
        "claimFor": batch_target("claimFor", trainers + validators),
        **APPEAL_TARGETS,
    }


UNBONDING = 3_600
SETUP_GAS = 1_000_000
TOKENS = 10**24
STAKE = 10**21
ROUNDS = 2
CID = "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"  # a CIDv1 (59 characters)


def _hash(*parts: object) -> bytes:
    return keccak(text=":".join(str(p) for p in parts))


class Bench:
    """Sends transactions and keeps every receipt's gasUsed by operation name."""

    def __init__(self, deployment: Deployment) -> None:
        self.d = deployment
        self.gas: dict[str, list[int]] = defaultdict(list)

    def send(self, name: str, who: ProtocolClient, fn: ContractFunction) -> Any:
        receipt = who.client.transact(fn)
        self.gas[name].append(int(receipt["gasUsed"]))
        return receipt

    def send_all(self, name: str, calls: Sequence[tuple[ProtocolClient, ContractFunction]]) -> None:
        """Send independent transactions (at most one per account, or in nonce order per account) without
        waiting for each, with a fixed gas limit (no estimate), then wait for them all: the set-up of
        many accounts in seconds. Every one must succeed."""
        sent = [(who, who.client.send(fn, gas=SETUP_GAS)) for who, fn in calls]
        for who, tx in sent:
            self.gas[name].append(int(who.client.wait(tx)["gasUsed"]))

    def largest(self) -> dict[str, int]:
        return {name: max(values) for name, values in self.gas.items()}


def _params(start: int, trainers: int, validators: int, draws: int = 0) -> TaskParams:
    return TaskParams(
        spec_hash=_hash("spec"), spec_cid=CID, initial_model_hash=_hash("model", 0), initial_model_cid=CID,
        num_rounds=ROUNDS, reward_per_round=10**20, validator_share_bps=2_000,
        min_trainer_stake=STAKE // 2, min_validator_stake=STAKE // 2,
        quorum=min(2, validators, draws or validators), committee_draws=draws,
        max_trainers=trainers, max_validators=validators, submit_duration=600, commit_duration=300,
        reveal_duration=300, vote_duration=300, seed_delay=2, sample_rollouts=4, sample_steps=2,
        trainer_slash_bps=1_000, validator_slash_bps=500, max_empty_rounds=3, start_time=start,
    )  # fmt: skip


def _round(bench: Bench, anyone: ProtocolClient, task_id: int, round_: int,
           trainers: Sequence[ProtocolClient], validators: Sequence[ProtocolClient]) -> None:  # fmt: skip
    escrow, registry = bench.d.task_escrow.functions, bench.d.attestation_registry.functions
    submissions = [
        (p, escrow.submitWork(task_id, round_, _hash("bundle", tag), CID, _hash("update", tag), CID,
                              _hash("proofs", tag), _hash("states", tag), 40_000 + 1_000 * tag[1]))
        for p, tag in ((p, (round_, i)) for i, p in enumerate(trainers))
    ]  # fmt: skip
    bench.send_all("submitWork", submissions[:-1])
    bench.send("submitWork", *submissions[-1])  # the last one closes the phase
    anyone.client.mine(3)
    bench.send("drawSeed", anyone, escrow.drawSeed(task_id))
    # Everyone rejects the last trainer; the first validator also rejects trainer 0 (and so disagrees).
    words = []
    for v in range(len(validators)):
        row = [Verdict.ACCEPT] * (len(trainers) - 1) + [Verdict.REJECT]
        if v == 0 and len(trainers) > 1:
            row[0] = Verdict.REJECT
        drawn = anyone.drawn_multiplicities(task_id, round_, validators[v].address)
        if drawn is not None:
            row = [verdict if m else Verdict.NONE for verdict, m in zip(row, drawn, strict=True)]
        words.append(pack_verdicts(row, allow_none=True))
    salts = [_hash("salt", round_, v) for v in range(len(validators))]
    for p, word, salt in zip(validators, words, salts, strict=True):
        commitment = verdict_commitment(task_id, round_, p.address, word, salt)
        bench.send("commitVerdicts", p, registry.commitVerdicts(task_id, round_, commitment))
    for p, word, salt in zip(validators, words, salts, strict=True):
        bench.send("revealVerdicts", p, registry.revealVerdicts(task_id, round_, word, salt))
    model = _hash("model", round_ + 1)
    vote_salts = [_hash("vote salt", round_, v) for v in range(len(validators))]
    for p, salt in zip(validators, vote_salts, strict=True):
        commitment = vote_commitment(task_id, round_, p.address, model, CID, salt)
        bench.send("commitModelVote", p, registry.commitModelVote(task_id, round_, commitment))
    for p, salt in zip(validators, vote_salts, strict=True):
        bench.send("voteModel", p, registry.voteModel(task_id, round_, model, CID, salt))
    bench.send("finalizeRound", anyone, escrow.finalizeRound(task_id))


def run(trainers: int, validators: int, draws: int = 0) -> dict[str, int]:
    """Run the scenario on a fresh anvil; returns the largest gasUsed per operation."""
    with Anvil(accounts=1 + trainers + validators) as node:
        keys = [key for _, key in node.accounts]
        deployer = ChainClient(node.rpc_url, keys[0])
        deployment = deploy_protocol(deployer, unbonding_period=UNBONDING)
        bench = Bench(deployment)
        initiator = ProtocolClient(deployer, deployment)
        people = [initiator.as_account(deployer.with_account(key)) for key in keys[1:]]
        trainer_ps, validator_ps = people[:trainers], people[trainers:]
        token, stakes = deployment.token.functions, deployment.stake_manager.functions
        escrow, distributor = deployment.task_escrow.functions, deployment.reward_distributor.functions

        bench.send_all("mint", [(initiator, token.mint(p.address, TOKENS)) for p in [initiator, *people]])
        bench.send_all(
            "approve", [(p, token.approve(deployment.stake_manager.address, STAKE)) for p in people]
        )
        bench.send("stake", people[0], stakes.stake(STAKE))  # the first staker pays for fresh totals
        bench.send_all("stake", [(p, stakes.stake(STAKE)) for p in people[1:]])
        params = _params(deployer.timestamp() + 600, trainers, validators, draws)
        bench.send("approve", initiator, token.approve(deployment.task_escrow.address, params.deposit))
        bench.send("createTask", initiator, escrow.createTask(params.as_tuple()))
        task_id = 1
        bench.send_all("allocate", [(p, stakes.allocate(task_id, STAKE)) for p in people])
        for p in people:  # in order: the validators' indices, and the largest join cost, are deterministic
            role = Role.TRAINER if p in trainer_ps else Role.VALIDATOR
            bench.send("joinTask", p, escrow.joinTask(task_id, role))
        deployer.increase_time(params.start_time - deployer.timestamp())

        for round_ in range(ROUNDS):
            _round(bench, initiator, task_id, round_, trainer_ps, validator_ps)
        bench.send_all(
            "settleSubmission",
            [(initiator, escrow.settleSubmission(task_id, 0, index)) for index in range(trainers)],
        )
        bench.send_all(
            "settleValidator",
            [(initiator, escrow.settleValidator(task_id, 0, p.address)) for p in validator_ps],
        )
        # Round 0's credits paid in one batch to every participant, as a keeper does (the accounts stay
        # open: the settlement and the claims below cost what they would without it).
        bench.send("claimFor", initiator, distributor.claimFor([p.address for p in people]))
        everyone = [p.address for p in validator_ps]
        bench.send("settleRound", initiator, escrow.settleRound(task_id, 1, list(range(trainers)), everyone))
        bench.send_all("claim", [(p, distributor.claim()) for p in [initiator, *people] if p.credit_of() > 0])

        deployer.increase_time(UNBONDING)  # the settlement grace after the task's end
        bench.send_all(
            "deallocate", [(p, stakes.deallocate(task_id, p.allocation_of(task_id))) for p in people]
        )
        bench.send_all("requestUnstake", [(p, stakes.requestUnstake(p.free_stake_of())) for p in people])
        deployer.increase_time(UNBONDING)
        bench.send_all("withdraw", [(p, stakes.withdraw()) for p in people])
        if trainers >= 2:
            _squatter(bench, initiator, trainer_ps[0], trainer_ps[1])
        if trainers >= 2 and validators >= 3:
            _honeypot(bench, initiator, trainer_ps[:2], validator_ps[:3])
            _appeal(bench, deployer, keys[1:3], keys[1 + trainers : 4 + trainers])
        return bench.largest()


def _squatter(
    bench: Bench, initiator: ProtocolClient, worker: ProtocolClient, squatter: ProtocolClient
) -> None:
    """A second task (no validators: its ballots close at once) where `squatter` takes a seat and never
    submits: after one round missed (maxNoShows 1) `settleNoShows` slashes it and frees its seat while
    `worker` has submitted, which also closes the submit phase (the costliest case). Only settleNoShows is
    recorded."""
    d = bench.d
    escrow, stakes = d.task_escrow.functions, d.stake_manager.functions
    for p in (worker, squatter):
        p.client.transact(d.token.functions.approve(d.stake_manager.address, STAKE))
        p.client.transact(stakes.stake(STAKE))
    params = _params(initiator.client.timestamp() + 60, 2, 1).model_copy(
        update={"num_rounds": 3, "no_show_slash_bps": 500, "max_no_shows": 1, "max_empty_rounds": 0}
    )
    initiator.client.transact(d.token.functions.approve(d.task_escrow.address, params.deposit))
    task_id = initiator.create_task(params)
    for p in (worker, squatter):
        p.client.transact(stakes.allocate(task_id, STAKE))
        p.client.transact(escrow.joinTask(task_id, Role.TRAINER))
    initiator.client.increase_time(params.start_time - initiator.client.timestamp())
    for round_ in range(2):
        tag = ("squat", round_)
        worker.client.transact(escrow.submitWork(task_id, round_, _hash("b", tag), CID, _hash("u", tag), CID,
                                                 _hash("p", tag), _hash("s", tag), 1_000))  # fmt: skip
        if round_ == 1:
            bench.send("settleNoShows", initiator, escrow.settleNoShows(task_id, squatter.address))
        else:
            initiator.client.increase_time(params.submit_duration)
            initiator.draw_seed(task_id)  # arms it after the deadline
        initiator.client.mine(3)
        initiator.draw_seed(task_id)
        initiator.finalize_round(task_id)


def _honeypot(
    bench: Bench,
    initiator: ProtocolClient,
    trainers: Sequence[ProtocolClient],
    validators: Sequence[ProtocolClient],
) -> None:
    """A one-round task whose initiator commits a honeypot that its bait (the second trainer) submits; the
    first two validators reject it, the third accepts everything: the honeypot is revealed after the ballot
    and the third validator slashed. Only the three honeypot calls are recorded."""
    d = bench.d
    escrow, stakes = d.task_escrow.functions, d.stake_manager.functions
    registry, honeypots = d.attestation_registry.functions, d.honeypot_registry.functions
    people = [*trainers, *validators]
    for p in people:
        p.client.transact(d.token.functions.approve(d.stake_manager.address, STAKE))
        p.client.transact(stakes.stake(STAKE))
    params = _params(initiator.client.timestamp() + 60, len(trainers), len(validators)).model_copy(
        update={"num_rounds": 1}
    )
    initiator.client.transact(d.token.functions.approve(d.task_escrow.address, params.deposit))
    task_id = initiator.create_task(params)
    for p in people:
        p.client.transact(stakes.allocate(task_id, STAKE))
        p.client.transact(escrow.joinTask(task_id, Role.TRAINER if p in trainers else Role.VALIDATOR))
    bait, salt = trainers[1], _hash("honeypot salt")
    commitment = honeypot_commitment(task_id, 0, bait.address, salt)
    bench.send("commitHoneypot", initiator, honeypots.commitHoneypot(task_id, 0, commitment))
    initiator.client.increase_time(params.start_time - initiator.client.timestamp())
    for i, p in enumerate(trainers):
        tag = ("honeypot", i)
        p.client.transact(escrow.submitWork(task_id, 0, _hash("b", tag), CID, _hash("u", tag), CID,
                                            _hash("p", tag), _hash("s", tag), 1_000))  # fmt: skip
    initiator.client.mine(3)
    initiator.draw_seed(task_id)
    rows = [[Verdict.ACCEPT, Verdict.REJECT]] * 2 + [[Verdict.ACCEPT, Verdict.ACCEPT]]
    for p, row in zip(validators, rows, strict=True):
        commitment = verdict_commitment(task_id, 0, p.address, pack_verdicts(row), salt)
        p.client.transact(registry.commitVerdicts(task_id, 0, commitment))
    for p, row in zip(validators, rows, strict=True):
        p.client.transact(registry.revealVerdicts(task_id, 0, pack_verdicts(row), salt))
    model = _hash("honeypot model")
    for p in validators:
        p.commit_model_vote(task_id, 0, model, CID, salt)
    for p in validators:
        p.vote_model(task_id, 0, model, CID, salt)
    bench.send("revealHoneypot", bait, honeypots.revealHoneypot(task_id, 0, 1, bait.address, salt))
    bench.send("slashLazy", initiator, honeypots.slashLazy(task_id, 0, validators[2].address))


def _appeal(
    bench: Bench,
    deployer: ChainClient,
    trainer_keys: Sequence[str],
    validator_keys: Sequence[str],
    appeals: int = 1,
) -> list[list[int]]:
    """A deployment with an AppealCourt (K_a = 201 draws): a one-round task whose first two validators
    (one minimum stake each) reject every trainer's honest work but the first's against the third (ten
    minimum stakes); the third appeals the last `appeals` submissions, every drawn validator commits and
    reveals (the third ACCEPT, the others REJECT), each appeal is decided (overturned, or upheld for the
    first submission), each validator's part settled in the batches the keeper sends
    (`protocol.roles.settle.juror_batches`), the round settled in one batch and the court's credits
    claimed. Records the court's calls and the settlement of a deployment with appeals
    (`settleRound+appeals`: the registry consults the court for every item); returns the batches."""
    d = deploy_protocol(deployer, unbonding_period=UNBONDING, appeals=APPEAL_PARAMS)
    initiator = ProtocolClient(deployer, d)
    trainers = [initiator.as_account(deployer.with_account(k)) for k in trainer_keys]
    validators = [initiator.as_account(deployer.with_account(k)) for k in validator_keys]
    court = d.appeal_court
    assert court is not None
    escrow, stakes, token = d.task_escrow.functions, d.stake_manager.functions, d.token.functions
    bench.send_all(
        "mint", [(initiator, token.mint(p.address, TOKENS)) for p in [initiator, *trainers, *validators]]
    )
    everyone_ = [*trainers, *validators]
    bench.send_all("approve", [(p, token.approve(d.stake_manager.address, 10 * STAKE)) for p in everyone_])
    bench.send_all("stake", [(p, stakes.stake(10 * STAKE)) for p in everyone_])
    bench.send_all(
        "approve", [(p, token.approve(court.address, appeals * APPEAL_PARAMS.bond)) for p in everyone_]
    )
    params = _params(deployer.timestamp() + 60, len(trainers), 3).model_copy(update={"num_rounds": 1})
    initiator.client.transact(token.approve(d.task_escrow.address, params.deposit))
    task_id = initiator.create_task(params)
    bench.send_all("allocate", [(p, stakes.allocate(task_id, STAKE)) for p in trainers])
    for p in trainers:
        p.client.transact(escrow.joinTask(task_id, Role.TRAINER))
    for p, units in zip(validators, (1, 1, 10), strict=True):
        p.client.transact(stakes.allocate(task_id, units * params.min_validator_stake))
        p.client.transact(escrow.joinTask(task_id, Role.VALIDATOR))
    deployer.increase_time(params.start_time - deployer.timestamp())
    for i, p in enumerate(trainers):
        tag = ("appeal", i)
        p.client.transact(escrow.submitWork(task_id, 0, _hash("b", tag), CID, _hash("u", tag), CID,
                                            _hash("p", tag), _hash("s", tag), 1_000))  # fmt: skip
    deployer.mine(3)
    initiator.draw_seed(task_id)
    n = len(trainers)
    accept, reject = [Verdict.ACCEPT] * n, [Verdict.ACCEPT] + [Verdict.REJECT] * (n - 1)
    rows = [reject, reject, accept]
    salt, model = _hash("appeal salt"), _hash("appeal model")
    for p, row in zip(validators, rows, strict=True):
        p.commit_verdicts(task_id, 0, pack_verdicts(row), salt)
    for p, row in zip(validators, rows, strict=True):
        p.reveal_verdicts(task_id, 0, pack_verdicts(row), salt)
    for p in validators:
        p.commit_model_vote(task_id, 0, model, CID, salt)
    for p in validators:
        p.vote_model(task_id, 0, model, CID, salt)
    initiator.finalize_round(task_id)
    appellant = validators[2]
    fn = court.functions
    indices = list(range(n))[-appeals:]
    for index in indices:  # each drawn within 256 blocks of its filing
        bench.send("appeal", appellant, fn.appeal(task_id, 0, index))
        deployer.mine(2)
        bench.send("drawAppeal", appellant, fn.drawAppeal(task_id, 0, index))
        jurors = [p for p in validators if initiator.appeal_draws_of(task_id, 0, index, p.address)]
        verdicts = {p.address: Verdict.ACCEPT if p is appellant else Verdict.REJECT for p in jurors}
        for p in jurors:
            commitment = appeal_commitment(task_id, 0, index, p.address, int(verdicts[p.address]), salt)
            bench.send("commitAppeal", p, fn.commitAppeal(task_id, 0, index, commitment))
        for p in jurors:
            bench.send("revealAppeal", p, fn.revealAppeal(task_id, 0, index, int(verdicts[p.address]), salt))
        bench.send("settleAppeal", initiator, fn.settleAppeal(task_id, 0, index))
    deployer.increase_time(APPEAL_PARAMS.window)  # jurors are settled once the round's window closed
    batches = juror_batches(indices, APPEAL_PARAMS.draws)
    for p in validators:
        for batch in batches:
            receipt = bench.send(
                "settleJuror", initiator, fn.settleJuror(task_id, 0, p.address, index_mask(batch))
            )
            bench.gas["settleJuror/index"].append(int(receipt["gasUsed"]) // len(batch))
    everyone = [p.address for p in validators]
    bench.send("settleRound+appeals", initiator, escrow.settleRound(task_id, 0, list(range(n)), everyone))
    for p in {*(trainers[i] for i in indices if i != 0), appellant}:
        if initiator.appeal_credit_of(p.address):
            bench.send("claimAppeal", p, fn.claim())
    return batches


def run_appeals(appeals: int) -> tuple[dict[str, int], list[list[int]]]:
    """The appeal scenario alone with `appeals` appeals of one round (max(2, appeals) trainers), on a fresh
    anvil; the largest gasUsed per operation (the appeal calls only) and the settleJuror batches."""
    trainers = max(2, appeals)
    with Anvil(accounts=1 + trainers + 3) as node:
        keys = [key for _, key in node.accounts]
        deployer = ChainClient(node.rpc_url, keys[0])
        bench = Bench(deploy_protocol(deployer, unbonding_period=UNBONDING))
        batches = _appeal(bench, deployer, keys[1 : 1 + trainers], keys[1 + trainers : 4 + trainers], appeals)
        names = {*APPEAL_TARGETS, *SCALE_APPEAL_TARGETS, "settleJuror/index"}
        return {k: v for k, v in bench.largest().items() if k in names}, batches


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print the table, write the JSON; 1 when a target is missed."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--json", type=Path, help="write {operation: gas} here")
    parser.add_argument("--trainers", type=int, default=4, help="trainers in the task (1..128)")
    parser.add_argument("--validators", type=int, default=3, help="validators in the task (1..255)")
    parser.add_argument(
        "--draws", type=int, default=0, help="committee draws per submission (0: none; 1..64)"
    )
    parser.add_argument(
        "--appeals",
        type=int,
        default=0,
        help="run only the appeal scenario, with this many appeals of one round (1..128; 0: the full run)",
    )
    args = parser.parse_args(argv)
    if not 0 <= args.appeals <= 128:
        parser.error("--appeals must be in [0, 128]")
    if args.appeals:
        return _report_appeals(args.appeals, args.json)
    if not 0 <= args.draws <= 64:
        parser.error("--draws must be in [0, 64]")
    if not 1 <= args.trainers <= 128 or not 1 <= args.validators <= 255:
        parser.error("--trainers must be in [1, 128] and --validators in [1, 255]")
    if args.trainers + args.validators > 200:
        parser.error("at most 200 accounts in all")
    results = run(args.trainers, args.validators, args.draws)
    committees = f", committees of {args.draws}" if args.draws else ""
    print(f"largest gas per operation ({args.trainers} trainers, {args.validators} validators{committees})")
    return _table(results, targets_for(args.trainers, args.validators), args.json)


def _report_appeals(appeals: int, json_path: Path | None) -> int:
    """The appeal scenario alone: its table against the appeal targets (at 128 appeals' for more than one)."""
    results, batches = run_appeals(appeals)
    targets = {**APPEAL_TARGETS, **(SCALE_APPEAL_TARGETS if appeals > 1 else {})}
    sizes = ", ".join(str(len(b)) for b in batches)
    print(f"largest gas per operation ({appeals} appeals of one round, K_a = {APPEAL_PARAMS.draws}; "
          f"settleJuror in batches of {sizes} indices, per validator)")  # fmt: skip
    return _table(results, targets, json_path)


def _table(results: dict[str, int], targets: dict[str, int], json_path: Path | None) -> int:
    """Print the table, write the JSON; 1 when a target is missed."""
    print(f"{'operation':<18}{'gas':>9}{'target':>9}")
    over = []
    for name in sorted(results):
        target = targets.get(name)
        mark = "" if target is None else ("  ok" if results[name] <= target else "  OVER")
        if mark == "  OVER":
            over.append(name)
        print(f"{name:<18}{results[name]:>9}{target or '':>9}{mark}")
    if json_path:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    if over:
        print("over target: " + ", ".join(over), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
