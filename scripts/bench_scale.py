"""A whole network of N trainers and V validators on a real anvil: gas per round by call, failed
transactions, wall time per round, verify CPU per validator, memory per process.

    python scripts/bench_scale.py --trainers N --validators V --rounds R --json PATH [--mode driver|processes]
        [--committee-draws K]

Two modes, both on a fresh anvil with 1-second blocks (the driver: `--block-time`), every transaction real:

* `driver` (any size up to 128 x 255): one process holds every identity (a `ProtocolClient` each) and sends
  the protocol's transactions the way honest nodes would, without training: each trainer stakes, joins and
  submits (hashes and CIDs made up, well formed), the keeper whose turn it is
  (`protocol.roles.settle.rotation`) draws the seed and finalises, each validator commits, reveals and votes
  (every verdict ACCEPT on what it judges), then the first of the round's settlers in turn settles it in
  one `settleRound`; after the last round the first of the "claim" rotation pays everyone in one
  `claimFor` (the keepers' policy). Each phase's transactions are sent
  at once from a thread pool, so they share blocks as a real network's do. No training, no verification:
  `verify_cpu_s_per_validator_round` and `rss_mb_per_process` are null there (with the reason).
* `processes`: the real thing. An IPFS daemon, then one OS process per role through the real CLI (`trustrl
  task create --follow`, `trustrl train`, `trustrl validate`), on a light task with the demo's model
  (`BENCH_TASK`); the peak RSS (VmHWM) and CPU time of every process are sampled from /proc. At the end every
  balance is reconciled from events and the auditor replays the task (every submission re-verified from IPFS).

Gas comes from the receipts of every block of the run (a transaction is attributed to its contract function by
selector; status 0 = failed). `gas_per_round` counts the protocol's calls of the rounds (submit, seed,
verdicts, vote, finalise, settle, claim, claimFor), not the set-up (mint, approve, stake, createTask,
allocate, join) or the unbonding, each in the round it serves (its `round` argument; a claim: the last round
finalised before it, except the claims after the last finalisation, which are the task's `end_of_task`; a seed
or finalisation: the round in progress). Without committees every validator checks every submission, so the
verify CPU grows with N; with `--committee-draws K` (the task's `committeeDraws`) a validator checks the
submissions it is drawn for, about N x K / V (`submissions_checked_per_validator_round`, from the chain's
multiplicities). `meets_target`: every round's protocol gas plus its share (1 / rounds) of the end-of-task
claims is within 20M.

Prints a table and writes JSON; exits 1 when a check failed (the driver: any failed transaction; the
processes: reverted gas >= 1% of the run's, issue 13's bound for keeper races) or the audit disagrees.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from eth_utils.abi import abi_to_signature, function_signature_to_4byte_selector
from eth_utils.crypto import keccak
from web3.contract import Contract

from protocol.anvil import Anvil
from protocol.chain import ChainClient
from protocol.contracts import (
    Deployment,
    Phase,
    ProtocolClient,
    Role,
    TaskParams,
    TaskStatus,
    Verdict,
    WorkSubmission,
    deploy_protocol,
    pack_verdicts,
)

T = TypeVar("T")

L2_GAS_LIMIT = 30_000_000
"""Block gas limit of the L2 the per-round total is stated against."""
ROUND_GAS_TARGET = 20_000_000
"""Issue 13's target: the protocol's gas per round at 100 x 20."""
SETUP_CALLS = frozenset({"mint", "approve", "stake", "createTask", "allocate", "joinTask", "create"})
TEARDOWN_CALLS = frozenset({"deallocate", "requestUnstake", "withdraw"})
CLAIM_CALLS = frozenset({"claim", "claimFor"})
"""A claim pays one account (`claim`, its own) or a batch of them (`claimFor`, anyone's)."""
CID = "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"
TOKENS = 10**18
STAKE = 1_000 * TOKENS
MINT = 10_000 * TOKENS
KEYSTORE_SCRYPT_N = 1 << 10
SAMPLE_EVERY = 0.5
USS_EVERY = 10
SPARE_MB = 3_000
"""Memory the processes mode leaves to the rest of the machine."""
MB_PER_PROCESS = 380
"""Private memory of a role process on the demo's model, about (peak RSS ~420-470 MB, of which ~90 MB are
shared libraries; the processes mode measures both)."""

BENCH_TASK: dict[str, Any] = {
    "description": "bench_scale: the demo's model (0.08M parameters), a light inner loop",
    "env": {"name": "addition", "params": {"digits": 2}},
    "model": {
        "hidden_size": 64,
        "num_layers": 2,
        "num_heads": 4,
        "num_kv_heads": 4,
        "intermediate_size": 128,
        "max_position_embeddings": 32,
    },
    "inner": {"steps": 4, "rollout_every": 1, "num_prompts": 4, "group_size": 4, "max_new_tokens": 4},
    "sample_rollouts": "all",
    "sample_steps": 2,
    "heldout_size": 50,
    "initial": {"warmstart": {"lr": 1e-3, "max_steps": 60, "eval_size": 50, "eval_every": 20}},
    "chain": {
        "reward_per_round": 10,
        "validator_share_bps": 2000,
        "min_trainer_stake": 20,
        "trainer_slash_bps": 10_000,
        "min_validator_stake": 10,
        "seed_delay": 2,
        "max_empty_rounds": 0,
    },
}
"""The `processes` mode's task file (rounds, seats, quorum and durations are set per run)."""


# ---------------------------------------------------------------------------- gas from receipts


@dataclass
class Tx:
    """One mined transaction; `round` is its `round` argument where the function has one."""

    block: int
    call: str
    gas: int
    ok: bool
    round: int | None = None
    accounts: int = 1
    """Accounts a `claimFor` pays (its argument's length; 1 otherwise)."""


def selectors(deployment: Deployment) -> dict[bytes, tuple[str, Contract]]:
    """4-byte selector -> (function name, contract), over the deployment's contracts."""
    out: dict[bytes, tuple[str, Contract]] = {}
    for contract in deployment.contracts().values():
        for entry in contract.abi:
            if entry.get("type") == "function":
                function: Any = entry
                selector = function_signature_to_4byte_selector(abi_to_signature(function))
                out[selector] = (str(function["name"]), contract)
    return out


def mined(client: ChainClient, names: dict[bytes, tuple[str, Contract]], first: int, last: int) -> list[Tx]:
    """Every transaction of blocks `first`..`last`: function name, gas used, status, `round` argument."""
    out: list[Tx] = []
    for number in range(first, last + 1):
        block = client.w3.eth.get_block(number, full_transactions=True)
        if not block["transactions"]:
            continue
        receipts = {bytes(r["transactionHash"]): r for r in client.w3.eth.get_block_receipts(number)}
        tx: Any
        for tx in block["transactions"]:
            receipt = receipts[bytes(tx["hash"])]
            data = bytes(tx["input"])
            known = names.get(data[:4])
            name = known[0] if known else ("create" if tx.get("to") is None else "other")
            round_, accounts = None, 1
            if known is not None:
                _, args = known[1].decode_function_input(data)
                round_ = int(args["round"]) if "round" in args else None
                accounts = len(args["accounts"]) if "accounts" in args else 1
            out.append(
                Tx(number, name, int(receipt["gasUsed"]), int(receipt["status"]) == 1, round_, accounts)
            )
    return out


def round_of(t: Tx, round_ends: Sequence[int]) -> int:
    """The round a transaction serves: its `round` argument; else a claim serves the last round finalised
    before its block, and any other call (drawSeed, finalizeRound, settleNoShows) the round in progress."""
    last = len(round_ends) - 1
    if t.round is not None:
        return t.round
    if t.call in CLAIM_CALLS:
        return max([i for i, end in enumerate(round_ends) if end < t.block], default=0)
    return next((i for i, end in enumerate(round_ends) if t.block <= end), last)


def gas_summary(txs: Sequence[Tx], round_ends: Sequence[int]) -> dict[str, Any]:
    """Gas of the rounds' protocol calls (see the module docstring): per round (each transaction counted in
    the round it serves, `round_of`; `round_ends`: the block of each round's finalisation), by call, the
    largest block, failures and the reverted share. The claims after the last finalisation are the task's
    once-per-task claims (`end_of_task`), not any round's; the target is met when the largest round plus
    its share of them (1 / rounds) is within it."""
    rounds = len(round_ends)
    protocol = [t for t in txs if t.call not in SETUP_CALLS | TEARDOWN_CALLS]
    at_end = [t for t in protocol if t.call in CLAIM_CALLS and t.block > round_ends[-1]]
    in_rounds = [t for t in protocol if not (t.call in CLAIM_CALLS and t.block > round_ends[-1])]
    end_gas = sum(t.gas for t in at_end)
    per_round = [0] * rounds
    for t in in_rounds:
        per_round[min(round_of(t, round_ends), rounds - 1)] += t.gas
    blocks: dict[int, int] = {}
    for t in protocol:
        blocks[t.block] = blocks.get(t.block, 0) + t.gas
    by_call: dict[str, dict[str, Any]] = {}
    for name in sorted({t.call for t in in_rounds}):
        gases = [t.gas for t in in_rounds if t.call == name]
        by_call[name] = {
            "count_per_round": round(len(gases) / rounds, 2),
            "gas_per_round": round(sum(gases) / rounds),
            "mean": round(sum(gases) / len(gases)),
            "max": max(gases),
            "failed": sum(1 for t in in_rounds if t.call == name and not t.ok),
        }
    worst = max(per_round) + end_gas / rounds
    total = sum(t.gas for t in txs)
    reverted = sum(t.gas for t in txs if not t.ok)
    failed = [t for t in txs if not t.ok]
    return {
        "gas_per_round": {
            "mean": round(sum(per_round) / rounds),
            "max": max(per_round),
            "rounds": per_round,
            "by_call": by_call,
            "l2_gas_limit": L2_GAS_LIMIT,
            "share_of_l2_block": round(max(per_round) / L2_GAS_LIMIT, 4),
            "end_of_task": {
                "claims": len(at_end),
                "accounts_paid": sum(t.accounts for t in at_end if t.ok),
                "by_call": {
                    n: sum(1 for t in at_end if t.call == n) for n in sorted({t.call for t in at_end})
                },
                "gas": end_gas,
                "per_round": round(end_gas / rounds),
                "max": max((t.gas for t in at_end), default=0),
                "failed": sum(1 for t in at_end if not t.ok),
            },
            "rounds_with_end_share": [round(g + end_gas / rounds) for g in per_round],
            "max_with_end_share": round(worst),
            "target": ROUND_GAS_TARGET,
            "every_round_within_target": max(per_round) <= ROUND_GAS_TARGET,
            "meets_target": worst <= ROUND_GAS_TARGET,
            "meets_target_note": "every round's protocol gas plus its share (1 / rounds) of the once-a-task "
            "claims at the task's end is within the target",
            "largest_block": max(blocks.values(), default=0),
        },
        "max_gas_by_call": {
            **{name: row["max"] for name, row in by_call.items()},
            **{n: max(t.gas for t in protocol if t.call == n) for n in {t.call for t in at_end}},
        },
        "failed_transactions": len(failed),
        "failed_by_call": {
            n: sum(1 for t in failed if t.call == n) for n in sorted({t.call for t in failed})
        },
        "reverted_gas_share": reverted / total if total else 0.0,
        "total_gas": total,
        "transactions": len(txs),
    }


# ---------------------------------------------------------------------------- the driver


def say(message: str) -> None:
    """A progress line (stderr: the table goes to stdout)."""
    print(f"{time.strftime('%H:%M:%S')} {message}", file=sys.stderr, flush=True)


def _hash(*parts: object) -> bytes:
    return keccak(text=":".join(str(p) for p in parts))


def _parallel(pool: concurrent.futures.Executor, fn: Callable[[T], object], items: Iterable[T]) -> None:
    """Run `fn` on every item at once; re-raise the first error."""
    for future in [pool.submit(fn, item) for item in items]:
        future.result()


def _wait(what: str, until: Callable[[], bool], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not until():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout:.0f} s")
        time.sleep(0.2)


def quorum_for(validators: int, draws: int) -> int:
    """A majority of the validators; with committees of `draws`, at most `draws` (the contract's rule)."""
    majority = validators // 2 + 1
    return min(majority, draws) if draws else majority


def driver_params(start: int, trainers: int, validators: int, rounds: int, draws: int = 0) -> TaskParams:
    """The driver's task: `trainers` seats, a majority quorum (`quorum_for`), committees of `draws` (0: every
    validator judges everything), phases long enough never to expire (every phase closes early once
    everyone expected has acted)."""
    return TaskParams(
        spec_hash=_hash("spec"), spec_cid=CID, initial_model_hash=_hash("model", 0), initial_model_cid=CID,
        num_rounds=rounds, reward_per_round=100 * TOKENS, validator_share_bps=2_000,
        min_trainer_stake=STAKE // 2, min_validator_stake=STAKE // 2, quorum=quorum_for(validators, draws),
        max_trainers=trainers, max_validators=validators, submit_duration=3_600, commit_duration=3_600,
        reveal_duration=3_600, vote_duration=3_600, seed_delay=2, sample_rollouts=16, sample_steps=2,
        trainer_slash_bps=10_000, validator_slash_bps=500, max_empty_rounds=0, start_time=start,
        committee_draws=draws,
    )  # fmt: skip


def _settle(
    task: int,
    round_: int,
    indices: Sequence[tuple[ProtocolClient, int | None]],
    validators: Sequence[ProtocolClient],
    by_address: dict[str, ProtocolClient],
    initiator: str,
) -> None:
    """What the nodes' keepers do after a finalisation: the first of the round's settlers
    (`protocol.roles.settle.Keeper.settlers`: the initiator, the submitters, the validators) settles the
    whole round in `settleRound` transactions of at most `MAX_BATCH` items."""
    from protocol.roles.settle import MAX_BATCH, rotation

    subs = [index for _, index in indices if index is not None]
    owners = [p.address for p, _ in indices] + [v.address for v in validators]
    settler = by_address[rotation(task, round_, "settle", [initiator, *owners])[0]]
    items: list[tuple[int | None, str | None]] = [
        *((i, None) for i in subs),
        *((None, v.address) for v in validators),
    ]
    for first in range(0, len(items), MAX_BATCH):
        chunk = items[first : first + MAX_BATCH]
        settler.settle_round(
            task, round_, [i for i, _ in chunk if i is not None], [v for _, v in chunk if v is not None]
        )


def _pay_out(task: int, end: int, everyone: Sequence[ProtocolClient]) -> None:
    """What the nodes' keepers do once the task has ended and every round is settled
    (`protocol.roles.settle.Keeper.claims`): the first of the "claim" rotation pays everyone with credit in
    `claimFor` batches of at most `MAX_CLAIMS` accounts."""
    from protocol.roles.settle import MAX_CLAIMS, rotation

    by_address = {p.address: p for p in everyone}
    order = rotation(task, end, "claim", list(by_address))
    owed = [a for a in order if by_address[a].credit_of() > 0]
    payer = by_address[order[0]]
    for first in range(0, len(owed), MAX_CLAIMS):
        payer.client.transact(payer.distributor.functions.claimFor(owed[first : first + MAX_CLAIMS]))


def run_driver(
    trainers: int, validators: int, rounds: int, workers: int, block_time: float = 1.0, draws: int = 0
) -> dict[str, Any]:
    """The `driver` mode (module docstring); returns the JSON summary."""
    with Anvil(block_time=block_time, accounts=2 + trainers + validators) as node:
        keys = [key for _, key in node.accounts]
        deployer = ChainClient(node.rpc_url, keys[0])
        deployment = deploy_protocol(deployer, unbonding_period=60, settlement_grace=1)
        first_block = deployer.block_number()
        initiator = ProtocolClient(deployer.with_account(keys[1]), deployment)
        trainer_ps = [initiator.as_account(deployer.with_account(k)) for k in keys[2 : 2 + trainers]]
        validator_ps = [initiator.as_account(deployer.with_account(k)) for k in keys[2 + trainers :]]
        people = [*trainer_ps, *validator_ps]
        minted = [
            deployer.send(deployment.token.functions.mint(p.address, MINT)) for p in [initiator, *people]
        ]
        for tx in minted:
            deployer.wait(tx)
        params = driver_params(deployer.timestamp() + 3_600, trainers, validators, rounds, draws)
        started = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
            initiator.approve(deployment.task_escrow.address, params.deposit)
            task = initiator.create_task(params)

            def join(p: ProtocolClient) -> None:
                p.approve(deployment.stake_manager.address, STAKE)
                p.stake(STAKE)
                p.allocate(task, STAKE)
                p.join_task(task, Role.TRAINER if p in trainer_ps else Role.VALIDATOR)

            _parallel(pool, join, people)
            say(f"{trainers} trainers and {validators} validators staked and joined")
            deployer.increase_time(params.start_time - deployer.timestamp())
            round_ends: list[int] = []
            walls: list[float] = []
            candidates = [initiator.address, *(p.address for p in people)]
            by_address = {p.address: p for p in [initiator, *people]}
            for round_ in range(rounds):
                began = time.monotonic()
                indices, finalized = _driver_round(
                    pool, task, round_, trainer_ps, validator_ps, by_address, candidates
                )
                round_ends.append(finalized)
                _settle(task, round_, indices, validator_ps, by_address, initiator.address)
                walls.append(time.monotonic() - began)
                say(f"round {round_} finalised and settled in {walls[-1]:.1f} s")
            _pay_out(task, rounds, [initiator, *people])  # once, at the end (the initiator: the refund too)
            say("everyone paid out")
            state = initiator.task_state(task)
            decisions = [initiator.decisions_of(task, r) for r in range(rounds)]
            credits = sum(p.credit_of() for p in [initiator, *people])
            checked = [
                sum(
                    sum(1 for m in initiator.multiplicities_of(task, r, v.address) if m)
                    for r in range(rounds)
                )
                / rounds
                for v in validator_ps
            ]
        last_block = deployer.block_number()
        txs = mined(deployer, selectors(deployment), first_block, last_block)
        checks = {
            "task completed": state.status == TaskStatus.COMPLETED,
            "every submission accepted": all(
                len(d) == trainers and all(v == Verdict.ACCEPT for v in d) for d in decisions
            ),
            "every credit claimed": credits == 0,
            "no transaction failed": all(t.ok for t in txs),
        }
        audit = _audit(node.rpc_url, deployment, task, store_url=None)
    return {
        "mode": "driver",
        "trainers": trainers,
        "validators": validators,
        "rounds": rounds,
        **gas_summary(txs, round_ends),
        "wall_s_per_round": [round(w, 2) for w in walls],
        "wall_s": round(time.monotonic() - started, 1),
        "block_time_s": block_time,
        "wall_note": "the driver's round: submit, 2 seed blocks, commit, reveal, vote, "
        "finalise, then settle and claim (each phase one block or a few)",
        "committee_draws": draws,
        "submissions_checked_per_validator_round": _stats(checked),
        "expected_checked_per_validator_round": expected_checked(trainers, validators, draws),
        "verify_cpu_s_per_validator_round": None,
        "verify_cpu_note": "driver mode: no verification (verdicts are sent without checking anything)",
        "rss_mb_per_process": None,
        "rss_note": "driver mode: one process holds every identity; see the processes mode",
        "checks": checks,
        "audit": audit,
        "ok": all(checks.values()) and audit["ok"],
    }


def _driver_round(
    pool: concurrent.futures.Executor,
    task: int,
    round_: int,
    trainers: Sequence[ProtocolClient],
    validators: Sequence[ProtocolClient],
    by_address: dict[str, ProtocolClient],
    candidates: Sequence[str],
) -> tuple[list[tuple[ProtocolClient, int | None]], int]:
    """One round up to its finalisation; returns each trainer with its submission index, and the block of the
    finalisation."""
    from protocol.roles.settle import rotation

    anyone = trainers[0]

    indices: list[tuple[ProtocolClient, int | None]] = []

    def submit(item: tuple[int, ProtocolClient]) -> None:
        i, p = item
        tag = (round_, i)
        work = WorkSubmission(
            bundle_hash=_hash("bundle", tag), bundle_cid=CID, update_hash=_hash("update", tag),
            update_cid=CID, proof_root=_hash("proofs", tag), state_root=_hash("states", tag),
            work_units=40_000 + 1_000 * i,
        )  # fmt: skip
        indices.append((p, p.submit_work(task, round_, work)))

    _parallel(pool, submit, enumerate(trainers))
    seed_block = anyone.task_state(task).seed_block
    _wait("the seed block", lambda: anyone.client.block_number() > seed_block)
    keeper = rotation(task, round_, f"draw@{seed_block}", candidates)[0]
    by_address[keeper].draw_seed(task)
    words = {v.address: verdict_word(v, task, round_, len(trainers)) for v in validators}
    salts = {v.address: _hash("salt", round_, v.address) for v in validators}
    _parallel(pool, lambda v: v.commit_verdicts(task, round_, words[v.address], salts[v.address]), validators)
    _wait("the reveal phase", lambda: anyone.phase_of(task, round_) == Phase.REVEAL)
    _parallel(pool, lambda v: v.reveal_verdicts(task, round_, words[v.address], salts[v.address]), validators)
    model = _hash("model", round_ + 1)
    vote_salts = {v.address: _hash("vote salt", round_, v.address) for v in validators}
    _wait("the vote commit", lambda: anyone.phase_of(task, round_) == Phase.VOTE_COMMIT)
    _parallel(
        pool, lambda v: v.commit_model_vote(task, round_, model, CID, vote_salts[v.address]), validators
    )
    _wait("the vote reveal", lambda: anyone.phase_of(task, round_) == Phase.VOTE_REVEAL)
    _parallel(pool, lambda v: v.vote_model(task, round_, model, CID, vote_salts[v.address]), validators)
    _wait("the ballot's close", lambda: anyone.phase_of(task, round_) == Phase.CLOSED)
    finalizer = rotation(task, round_, "finalize", [candidates[0], *(v.address for v in validators)])[0]
    receipt = by_address[finalizer].finalize_round(task)
    return indices, int(receipt["blockNumber"])


def verdict_word(v: ProtocolClient, task: int, round_: int, submissions: int) -> int:
    """An honest validator's verdict vector: ACCEPT on every submission it judges (all of them without
    committees; with them, those it is drawn for, NONE elsewhere)."""
    drawn = v.drawn_multiplicities(task, round_)
    if drawn is None:
        return pack_verdicts([Verdict.ACCEPT] * submissions)
    return pack_verdicts([Verdict.ACCEPT if m else Verdict.NONE for m in drawn], allow_none=True)


# ---------------------------------------------------------------------------- the audit


def _audit(rpc_url: str, deployment: Deployment, task: int, store_url: str | None) -> dict[str, Any]:
    """Run the auditor on the chain (with `store_url`, every submission re-verified from IPFS)."""
    from protocol.audit.runner import audit, open_target
    from protocol.ipfs import ArtifactStore

    began = time.monotonic()
    target = open_target(rpc_url, deployment.addresses)
    if store_url is None:
        result = audit(target, task=task, accuracy=False)
    else:
        with ArtifactStore(store_url, retries=2, backoff=0.25, find_timeout=5.0) as store:
            result = audit(target, task=task, store=store, accuracy=False)
    found = [d.line() for d in result.discrepancies]
    return {
        "ok": not found,
        "discrepancies": len(found),
        "first_discrepancies": found[:10],
        "verified": result.verified,
        "reverified": store_url is not None,
        "wall_s": round(time.monotonic() - began, 1),
    }


# ---------------------------------------------------------------------------- real processes


def bench_task(trainers: int, validators: int, rounds: int, draws: int = 0) -> dict[str, Any]:
    """`BENCH_TASK` for a run: every seat, a majority quorum (`quorum_for`), committees of `draws`, phases
    long enough for 2 busy cores (each closes early once everyone expected has acted), and time for every
    process to join before round 0."""
    chain = {
        **BENCH_TASK["chain"],
        "num_rounds": rounds,
        "max_trainers": trainers,
        "max_validators": validators,
        "quorum": quorum_for(validators, draws),
        "committee_draws": draws,
        "submit_duration": 180 + 6 * trainers,
        "commit_duration": 180 + trainers * validators,
        "reveal_duration": 60 + 3 * validators,
        "vote_duration": 90 + 3 * validators,
        "start_delay": 30 + trainers + validators,
    }
    return {**BENCH_TASK, "chain": chain}


@dataclass
class Proc:
    """One role process and what was sampled of it."""

    name: str
    role: str
    address: str
    proc: subprocess.Popen[bytes]
    log: Path
    peak_rss_mb: float = 0.0
    peak_uss_mb: float = 0.0
    samples: int = 0
    cpu_s: float = 0.0
    cpu_at_open_s: float | None = None
    verify_cpu_s: float = 0.0
    verify_from: dict[int, float] = field(default_factory=dict)
    """CPU time when each round's seed was seen drawn (until this validator's commit is seen)."""


def _sample(p: Proc) -> None:
    """Read the process's peak RSS (VmHWM) and CPU time (utime + stime) from /proc, and every
    `USS_EVERY`-th time its unique memory (private pages, smaps_rollup): what one more process costs."""
    p.samples += 1
    try:
        status = Path(f"/proc/{p.proc.pid}/status").read_text()
        stat = Path(f"/proc/{p.proc.pid}/stat").read_text()
        rollup = Path(f"/proc/{p.proc.pid}/smaps_rollup").read_text() if p.samples % USS_EVERY == 1 else ""
    except OSError:
        return
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            p.peak_rss_mb = max(p.peak_rss_mb, int(line.split()[1]) / 1024)
    private = sum(int(line.split()[1]) for line in rollup.splitlines() if line.startswith("Private_"))
    p.peak_uss_mb = max(p.peak_uss_mb, private / 1024)
    fields = stat.rsplit(")", 1)[1].split()
    p.cpu_s = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Watch:
    """What the monitor saw: when each round ended (monotonic), when round 0 opened."""

    round_times: list[float] = field(default_factory=list)
    opened: float | None = None
    created: bool = False


def run_processes(
    trainers: int, validators: int, rounds: int, keep: bool, timeout: float, draws: int = 0
) -> dict[str, Any]:
    """The `processes` mode (module docstring); returns the JSON summary."""
    import yaml

    from protocol.chain import save_keystore_account
    from protocol.compile import compile_contracts
    from protocol.ipfs_daemon import IpfsDaemon
    from protocol.network import NetworkConfig
    from protocol.roles.initiator import TaskFile

    task_doc = bench_task(trainers, validators, rounds, draws)
    need = (1 + trainers + validators) * MB_PER_PROCESS
    available = _available_mb()
    if available is not None and need > available - SPARE_MB:
        raise SystemExit(
            f"{1 + trainers + validators} role processes need ~{need:,} MB ({MB_PER_PROCESS} MB each); "
            f"{available:,} MB are available and {SPARE_MB:,} MB are left to the rest of the machine: run "
            "fewer, or --mode driver"
        )
    TaskFile.model_validate(task_doc)  # a bad task fails here, not in the initiator's process
    work = Path(tempfile.mkdtemp(prefix="trustrl-scale-"))
    password = secrets.token_hex(16)
    procs: list[Proc] = []
    anvil = Anvil(block_time=1.0, accounts=2 + trainers + validators)
    ipfs = IpfsDaemon(work / "ipfs")
    started = time.monotonic()
    try:
        anvil.start()
        ipfs.start()
        compiled = compile_contracts()
        deployer = ChainClient(anvil.rpc_url, anvil.accounts[0][1], abis=[c.abi for c in compiled.values()])
        deployment = deploy_protocol(deployer, unbonding_period=60, settlement_grace=30, compiled=compiled)
        first_block = deployer.block_number()
        config = NetworkConfig(rpc_url=anvil.rpc_url, deployment=deployment.addresses, ipfs_api=ipfs.api_url)
        network = work / "network.json"
        network.write_text(config.model_dump_json(indent=2))
        roles = ["initiator"] + ["trainer"] * trainers + ["validator"] * validators
        people: list[tuple[str, str, str, str]] = []  # name, role, address, key
        for i, role in enumerate(roles, start=1):
            name = role if role == "initiator" else f"{role}-{sum(1 for r in roles[:i] if r == role)}"
            people.append((name, role, *anvil.accounts[i]))
        minted = [deployer.send(deployment.token.functions.mint(a, MINT)) for _, _, a, _ in people]
        for tx in minted:
            deployer.wait(tx)
        view = ProtocolClient(deployer, deployment)

        def stake(key: str) -> None:
            p = view.as_account(deployer.with_account(key))
            p.approve(deployment.stake_manager.address, STAKE)
            p.stake(STAKE)

        with concurrent.futures.ThreadPoolExecutor(max_workers=16) as pool:
            _parallel(pool, stake, [k for _, role, _, k in people if role != "initiator"])
        task_file = work / "task.yaml"
        task_file.write_text(yaml.safe_dump(task_doc, sort_keys=False))
        env = {k: v for k, v in os.environ.items() if not k.startswith("TRUSTRL_")}
        env.update({"TRUSTRL_PASSWORD": password, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
                    "TOKENIZERS_PARALLELISM": "false", "PYTHONUNBUFFERED": "1"})  # fmt: skip
        (work / "logs").mkdir()
        for name, role, address, key in people:
            keystore = work / "keys" / f"{name}.json"
            save_keystore_account(key, keystore, password, iterations=KEYSTORE_SCRYPT_N)
            home = work / f"home-{name}"
            common = ["--network", str(network), "--keystore", str(keystore), "--home", str(home),
                      "--threads", "1"]  # fmt: skip
            if role == "initiator":
                args = ["task", "create", str(task_file), "--follow", *common]
            else:
                args = ["train" if role == "trainer" else "validate", "--task", "1", "--wait", *common]
            log = work / "logs" / f"{name}.log"
            with open(log, "wb") as out:
                child = subprocess.Popen(
                    [sys.executable, "-m", "protocol.cli", "--log-every", "30", *args],
                    stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env,
                    start_new_session=True,
                )  # fmt: skip
            procs.append(Proc(name, role, address, child, log))
        watch = _monitor(view, procs, rounds, started + timeout)
        failed_procs = {p.name: p.proc.returncode for p in procs if p.proc.returncode != 0}
        for p in procs:
            if p.proc.returncode != 0:
                print(f"--- {p.name} exited {p.proc.returncode}:\n" + _tail(p.log), file=sys.stderr)
        last_block = deployer.block_number()
        ends = sorted(
            (int(e["args"]["round"]), int(e["blockNumber"]))
            for e in deployer.get_logs(deployment.task_escrow, "RoundFinalized", first_block)
        )
        txs = mined(deployer, selectors(deployment), first_block, last_block)
        reconciled = _reconcile(view, deployer, deployment, first_block, [(a, MINT) for _, _, a, _ in people])
        slashed = deployer.get_logs(deployment.stake_manager, "Slashed", first_block)
        decisions = [view.decisions_of(1, r) for r, _ in ends]
        judged = {
            a: [sum(1 for m in view.multiplicities_of(1, r, a) if m) for r, _ in ends]
            for _, role, a, _ in people
            if role == "validator"
        }
        credited = {str(e["args"]["account"]) for e in
                    deployer.get_logs(deployment.reward_distributor, "Credited", first_block)}  # fmt: skip
        summary = gas_summary(txs, [block for _, block in ends] or [last_block])
        checks = {
            "every process exited 0": not failed_procs,
            "task completed": view.task_state(1).status == TaskStatus.COMPLETED,
            f"all {rounds} rounds finalised": len(ends) == rounds,
            "every submission of every round accepted": all(
                len(d) == trainers and all(v == Verdict.ACCEPT for v in d) for d in decisions
            ),
            "nobody slashed": not slashed,
            "every trainer and every validator drawn in a round paid": all(
                a in credited for _, r, a, _ in people if r == "trainer" or any(judged.get(a, []))
            ),
            "every balance reconciles": all(reconciled.values()),
            "reverted gas < 1% of the run's": summary["reverted_gas_share"] < 0.01,
        }
        audit = _audit(anvil.rpc_url, deployment, 1, ipfs.api_url)
    finally:
        _stop(procs)
        ipfs.stop()
        anvil.stop()
        if keep:
            print(f"kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    walls = [
        b - a for a, b in zip([watch.opened or started, *watch.round_times], watch.round_times, strict=False)
    ]
    verify_cpu = [p.verify_cpu_s / rounds for p in procs if p.role == "validator"]
    checked = [sum(judged.get(p.address, [])) / rounds for p in procs if p.role == "validator"]

    def per_round(role: str) -> dict[str, float] | None:
        return _stats([(p.cpu_s - (p.cpu_at_open_s or 0.0)) / rounds for p in procs if p.role == role])

    return {
        "mode": "processes",
        "trainers": trainers,
        "validators": validators,
        "rounds": rounds,
        **summary,
        "wall_s_per_round": [round(w, 1) for w in walls],
        "wall_s": round(time.monotonic() - started, 1),
        "wall_note": "from round 0's opening (chain time) to each finalisation, seen by a 0.5 s poll; the "
        "machine's 2 cores run every process",
        "committee_draws": draws,
        "verify_cpu_s_per_validator_round": _stats(verify_cpu),
        "submissions_checked_per_validator_round": _stats(checked),
        "expected_checked_per_validator_round": expected_checked(trainers, validators, draws),
        "verify_cpu_note": "CPU-s of each validator process from the seed's draw to its commit (sampled "
        f"every {SAMPLE_EVERY} s), a round's mean: fetching and checking the submissions it judges (without "
        "committees all N; with committees of k those it is drawn for, from the chain's multiplicities)",
        "cpu_s_per_process_round": {role: per_round(role) for role in ("initiator", "trainer", "validator")},
        "cpu_note": "CPU-s of each process from round 0's opening to its exit, over the rounds: everything "
        "(training or checking, polling, uploads, aggregation, votes, settlement, claims)",
        "rss_mb_per_process": {
            "initiator": _stats([p.peak_rss_mb for p in procs if p.role == "initiator"]),
            "trainer": _stats([p.peak_rss_mb for p in procs if p.role == "trainer"]),
            "validator": _stats([p.peak_rss_mb for p in procs if p.role == "validator"]),
            "all_processes_mb": round(sum(p.peak_rss_mb for p in procs)),
        },
        "uss_mb_per_process": {
            role: _stats([p.peak_uss_mb for p in procs if p.role == role])
            for role in ("initiator", "trainer", "validator")
        },
        "rss_note": "peak RSS (VmHWM) of each `trustrl` process on the demo's model (0.08M parameters); USS: "
        f"its private pages (largest of samples every {USS_EVERY * SAMPLE_EVERY:.0f} s), what each more "
        "process adds (the rest is shared libraries)",
        "task": task_doc,
        "failed_processes": failed_procs,
        "checks": checks,
        "audit": audit,
        "ok": all(checks.values()) and audit["ok"],
    }


def expected_checked(trainers: int, validators: int, draws: int) -> float:
    """Submissions a validator of equal weight judges a round: N without committees; with k draws a
    submission, those where at least one of the k draws lands on it, N x (1 - (1 - 1/V)^k) (<= N x k / V)."""
    if not draws:
        return float(trainers)
    return round(trainers * (1 - (1 - 1 / validators) ** draws), 2)


def _available_mb() -> int | None:
    """MemAvailable of /proc/meminfo, in MB (None where there is none)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) // 1024
    except OSError:
        return None
    return None


def _stats(values: Sequence[float]) -> dict[str, float] | None:
    if not values:
        return None
    return {"mean": round(sum(values) / len(values), 2), "max": round(max(values), 2), "n": len(values)}


def _tail(log: Path, lines: int = 12) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:]) if log.exists() else "(no log)"


def _monitor(view: ProtocolClient, procs: Sequence[Proc], rounds: int, deadline: float) -> Watch:
    """Sample every process until all have exited (or one failed, or `deadline`); note when the task was
    created (the CPU counters then), when round 0 opened and when each round was finalised."""
    watch = Watch()
    while True:
        for p in procs:
            if p.proc.poll() is None:
                _sample(p)
        if not watch.created and view.task_config(1).reward_per_round > 0:
            watch.created = True
            say("task 1 created")
        if watch.created:
            state = view.task_state(1)
            if watch.opened is None and view.client.timestamp() >= state.round_start:
                watch.opened = time.monotonic()
                for p in procs:
                    p.cpu_at_open_s = p.cpu_s
            if state.status == TaskStatus.ACTIVE and state.seed_drawn:
                _verify_cpu(view, [p for p in procs if p.role == "validator"], state.round)
            finished = state.round if state.status == TaskStatus.ACTIVE else rounds
            while len(watch.round_times) < finished:
                watch.round_times.append(time.monotonic())
                say(f"round {len(watch.round_times) - 1} finalised")
        codes = [p.proc.poll() for p in procs]
        if all(c is not None for c in codes) or any(c not in (None, 0) for c in codes):
            return watch
        if time.monotonic() > deadline:
            print("timed out: stopping every process", file=sys.stderr)
            return watch
        time.sleep(SAMPLE_EVERY)


def _verify_cpu(view: ProtocolClient, validators: Sequence[Proc], round_: int) -> None:
    """Count each validator's CPU time between the round's seed (first seen here) and its commit."""
    for p in validators:
        if round_ not in p.verify_from:
            p.verify_from[round_] = p.cpu_s
        elif p.verify_from[round_] >= 0:
            word, _ = view.verdicts_of(1, round_, p.address)
            if word != 0:
                p.verify_cpu_s += p.cpu_s - p.verify_from[round_]
                p.verify_from[round_] = -1.0  # counted


def _stop(procs: Sequence[Proc]) -> None:
    """SIGTERM every process still running (by pid), then SIGKILL what is left after 15 s."""
    for p in procs:
        if p.proc.poll() is None:
            os.kill(p.proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + 15
    for p in procs:
        try:
            p.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.kill(p.proc.pid, signal.SIGKILL)
            p.proc.wait()


def _reconcile(
    view: ProtocolClient, client: ChainClient, d: Deployment, first: int, minted: Sequence[tuple[str, int]]
) -> dict[str, bool]:
    """Per account: wallet + stake + unbonding + unclaimed credit = minted + credits - slashes - deposits."""

    def per_account(contract: Any, event: str, key: str) -> dict[str, int]:
        out: dict[str, int] = {}
        for e in client.get_logs(contract, event, first):
            who = str(e["args"][key])
            out[who] = out.get(who, 0) + int(e["args"]["amount"])
        return out

    credits = per_account(d.reward_distributor, "Credited", "account")
    slashes = per_account(d.stake_manager, "Slashed", "staker")
    deposits = per_account(d.reward_distributor, "Deposited", "from")
    out: dict[str, bool] = {}
    for address, amount in minted:
        bonded, _, unbonding, _ = view.stake_of(address)
        have = view.token_balance(address) + bonded + unbonding + view.credit_of(address)
        want = amount + credits.get(address, 0) - slashes.get(address, 0) - deposits.get(address, 0)
        out[address] = have == want
    return out


# ---------------------------------------------------------------------------- the table


def print_table(result: dict[str, Any]) -> None:
    """The run's numbers, one call a row."""
    gas = result["gas_per_round"]
    print(f"{result['mode']}: {result['trainers']} trainers x {result['validators']} validators, "
          f"{result['rounds']} rounds")  # fmt: skip
    print(f"{'call':<20}{'txs/round':>10}{'gas/round':>13}{'mean':>10}{'max':>10}{'failed':>8}")
    for name, row in gas["by_call"].items():
        print(f"{name:<20}{row['count_per_round']:>10}{row['gas_per_round']:>13,}{row['mean']:>10,}"
              f"{row['max']:>10,}{row['failed']:>8}")  # fmt: skip
    end = gas["end_of_task"]
    print(f"{'claim (task end)':<20}{end['claims']:>10}{end['gas']:>13,}{'':>20}{end['failed']:>8}")
    print(f"gas per round: mean {gas['mean']:,}, max {gas['max']:,} "
          f"({100 * gas['share_of_l2_block']:.1f}% of a {L2_GAS_LIMIT:,}-gas L2 block); with its share of "
          f"the claims at the task's end {gas['max_with_end_share']:,} (target "
          f"{ROUND_GAS_TARGET:,}: {'met' if gas['meets_target'] else 'MISSED'})")  # fmt: skip
    print(f"failed transactions {result['failed_transactions']}; reverted gas "
          f"{100 * result['reverted_gas_share']:.2f}% of {result['total_gas']:,}")  # fmt: skip
    print("wall s per round: " + ", ".join(f"{w:.1f}" for w in result["wall_s_per_round"]))
    print(f"committee draws {result['committee_draws']}: submissions judged per validator-round "
          f"{result['submissions_checked_per_validator_round']} (expected "
          f"{result['expected_checked_per_validator_round']}); verify CPU-s per validator-round: "
          f"{result['verify_cpu_s_per_validator_round']}")  # fmt: skip
    print(f"peak RSS MB per process: {result['rss_mb_per_process']}")
    if "uss_mb_per_process" in result:
        print(f"peak USS MB per process: {result['uss_mb_per_process']}")
    for label, ok in result["checks"].items():
        print(f" {'ok ' if ok else 'NO '} {label}")
    audit = result["audit"]
    scope = "every submission re-verified" if audit["reverified"] else "events and balances"
    print(f" {'ok ' if audit['ok'] else 'NO '} audit: {audit['discrepancies']} discrepancies ({scope})")
    for line in audit["first_discrepancies"]:
        print(f"     {line}")


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print the table, write the JSON; 1 when anything failed."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--trainers", type=int, required=True, help="trainers (1..128)")
    parser.add_argument("--validators", type=int, required=True, help="validators (1..255)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--json", type=Path, help="write the summary here")
    parser.add_argument("--mode", choices=("driver", "processes"), default="driver")
    parser.add_argument("--workers", type=int, default=32, help="driver: threads sending at once")
    parser.add_argument("--block-time", type=float, default=1.0, help="driver: anvil's block interval (s)")
    parser.add_argument("--timeout", type=float, default=3_600.0, help="processes: give up after this")
    parser.add_argument("--keep", action="store_true", help="processes: keep the logs and homes")
    parser.add_argument(
        "--committee-draws",
        type=int,
        default=0,
        help="the task's committeeDraws k (0: every validator "
        "judges every submission; k > 0: stake-weighted committees of k draws, the quorum at most k)",
    )
    args = parser.parse_args(argv)
    if not 1 <= args.trainers <= 128 or not 1 <= args.validators <= 255 or args.rounds < 1:
        parser.error("--trainers must be in [1, 128], --validators in [1, 255], --rounds >= 1")
    if not 0 <= args.committee_draws <= 64:
        parser.error("--committee-draws must be in [0, 64]")
    k = args.committee_draws
    if args.mode == "driver":
        result = run_driver(args.trainers, args.validators, args.rounds, args.workers, args.block_time, k)
    else:
        result = run_processes(args.trainers, args.validators, args.rounds, args.keep, args.timeout, k)
    print_table(result)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
