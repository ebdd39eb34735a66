"""Validators that reveal (and commit and reveal model votes) in the same block all get through with the
client's plain gas limit (1.2 x an estimate made before any reveal was mined, + 10k): every reveal of a
round reads and writes the same slots and does the same arithmetic, so it costs the same in whichever
position it lands.

Its own anvil (automine off while the block fills) with 40 submissions, past the ~9 at which the old
registry's quorum reveal ran out of such a limit."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from chainworld import CID, h, logs, work

from protocol.contracts import ProtocolClient, Role, TaskParams, Verdict, pack_verdicts, vote_commitment

pytestmark = pytest.mark.chain

SUBMISSIONS = 40
VALIDATORS = 5
GAS = 1_000_000


@pytest.fixture(autouse=True)
def _isolated() -> None:
    """This module has its own node (the package's shared deployment is not used)."""


@pytest.fixture(scope="module")
def crowd() -> Iterator[tuple[Any, list[ProtocolClient]]]:
    from protocol.anvil import Anvil
    from protocol.chain import ChainClient
    from protocol.compile import compile_contracts
    from protocol.contracts import deploy_protocol

    with Anvil(accounts=SUBMISSIONS + VALIDATORS + 1) as node:
        compiled = compile_contracts()
        chain = ChainClient(node.rpc_url, node.accounts[0][1], abis=[c.abi for c in compiled.values()])
        d = deploy_protocol(chain, unbonding_period=60, compiled=compiled)
        people = [ProtocolClient(chain.with_account(key), d) for _, key in node.accounts]
        _wait_all([(chain, chain.send(d.token.functions.mint(p.address, 10**24), gas=GAS)) for p in people])
        people[0].approve(d.task_escrow.address, 2**256 - 1)
        _wait_all([(p.client, p.client.send(d.token.functions.approve(d.stake_manager.address, 2**256 - 1),
                                              gas=GAS)) for p in people[1:]])  # fmt: skip
        _wait_all(
            [(p.client, p.client.send(d.stake_manager.functions.stake(10**21), gas=GAS)) for p in people[1:]]
        )
        yield chain, people


def _wait_all(sent: list[tuple[Any, Any]]) -> None:
    for client, tx in sent:
        client.wait(tx)


def _one_block(chain: Any, send: list[Any]) -> list[Any]:
    """Send the transactions (callables returning a hash) with automine off, then mine them in one block."""
    chain._make_request("evm_setAutomine", [False])
    try:
        hashes = [s() for s in send]
        chain.mine(1)
    finally:
        chain._make_request("evm_setAutomine", [True])
    receipts = [chain.wait(tx, check=False) for tx in hashes]
    assert len({r["blockNumber"] for r in receipts}) == 1
    return receipts


def _reveals_in_one_block(
    chain: Any, validators: list[ProtocolClient], fns: list[Any], limits: list[int]
) -> list[Any]:
    """Each validator sends its call with its gas limit; all are mined in one block."""
    calls = zip(validators, fns, limits, strict=True)
    sends = [lambda v=v, fn=fn, g=g: v.client.send(fn, gas=g) for v, fn, g in calls]
    return _one_block(chain, sends)


def test_reveals_and_votes_in_one_block_all_succeed(crowd: tuple[Any, list[ProtocolClient]]) -> None:
    chain, people = crowd
    initiator, validators, trainers = people[0], people[1 : 1 + VALIDATORS], people[1 + VALIDATORS :]
    params = TaskParams(
        spec_hash=h("spec"),
        spec_cid=CID,
        initial_model_hash=h("model"),
        initial_model_cid=CID,
        num_rounds=1,
        reward_per_round=10**18,
        validator_share_bps=2_000,
        min_trainer_stake=10**18,
        min_validator_stake=10**18,
        quorum=2,
        max_trainers=SUBMISSIONS,
        max_validators=VALIDATORS,
        submit_duration=600,
        commit_duration=300,
        reveal_duration=300,
        vote_duration=300,
        seed_delay=1,
        sample_rollouts=1,
        sample_steps=1,
        trainer_slash_bps=1_000,
        validator_slash_bps=500,
        max_empty_rounds=0,
        start_time=chain.timestamp() + 1_000,
    )
    task = initiator.create_task(params)
    escrow, stakes = initiator.escrow.functions, initiator.stakes.functions
    _wait_all(
        [(p.client, p.client.send(stakes.allocate(task, 10**19), gas=GAS)) for p in [*validators, *trainers]]
    )
    for p in [*validators, *trainers]:
        p.client.transact(escrow.joinTask(task, Role.VALIDATOR if p in validators else Role.TRAINER))
    chain.increase_time(1_000)
    for i, p in enumerate(trainers):
        p.submit_work(task, 0, work((task, i), 1_000 + i))
    if initiator.task_state(task).seed_block == 0:
        initiator.draw_seed(task)
    chain.mine(2)
    assert initiator.draw_seed(task) is not None
    # Validators disagree on one submission, so the quorum reveal flips decisions and later ones flip back.
    words = [
        pack_verdicts([Verdict.ACCEPT] * (SUBMISSIONS - 1) + [Verdict.REJECT if v % 2 else Verdict.ACCEPT])
        for v in range(VALIDATORS)
    ]
    for v, word in zip(validators, words, strict=True):
        v.commit_verdicts(task, 0, word, h("salt", v.address))

    fns = [
        v.registry.functions.revealVerdicts(task, 0, word, h("salt", v.address))
        for v, word in zip(validators, words, strict=True)
    ]
    # Every estimate is made before any reveal is mined: each prices the first position.
    limits = [
        int(v.client.estimate_gas(fn) * v.client.gas_margin) + 10_000
        for v, fn in zip(validators, fns, strict=True)
    ]
    receipts = _reveals_in_one_block(chain, validators, fns, limits)
    assert [r["status"] for r in receipts] == [1] * VALIDATORS
    used = [int(r["gasUsed"]) for r in receipts]
    # The first reveal (whose estimate everyone made) costs what the others do, to a few hundred gas (the
    # last one also closes the phase); the quorum reveal, which decides every submission, costs no more.
    assert max(used) - min(used) < 500, used
    print("reveal gas in block order:", used)
    assert all(u <= g for u, g in zip(used, limits, strict=True))
    # 3 of 5 accept the last one: short of two thirds, undecided.
    assert initiator.decisions_of(task, 0) == [Verdict.ACCEPT] * (SUBMISSIONS - 1) + [Verdict.NONE]

    # The vote commits of the same block cost the same in every position (the last one also closes the
    # phase); the vote reveals of one block go through with the default limit (the one that reaches
    # agreement costs the most).
    ballot = initiator.ballot_of(task, 0)
    if chain.timestamp() < ballot.reveal_end and ballot.revealed < ballot.committed:
        chain.increase_time(ballot.reveal_end - chain.timestamp())
    model = h("next model")
    commitments = [vote_commitment(task, 0, v.address, model, CID, h("vote", v.address)) for v in validators]
    commits = _one_block(
        chain,
        [
            lambda v=v, c=c: v.client.send(v.registry.functions.commitModelVote(task, 0, c))
            for v, c in zip(validators, commitments, strict=True)
        ],
    )
    assert [r["status"] for r in commits] == [1] * VALIDATORS
    used = [int(r["gasUsed"]) for r in commits]
    assert max(used) - min(used) < 500, used
    votes = _one_block(
        chain,
        [
            lambda v=v: v.client.send(
                v.registry.functions.voteModel(task, 0, model, CID, h("vote", v.address))
            )
            for v in validators
        ],
    )
    assert [r["status"] for r in votes] == [1] * VALIDATORS
    # Finalisation sums the accepted work from the packed work units (five slots of eight).
    receipt = initiator.finalize_round(task)
    (finalized,) = logs(initiator.escrow, "RoundFinalized", receipt)
    assert finalized["acceptedWork"] == sum(1_000 + i for i in range(SUBMISSIONS - 1))


def test_committee_reveals_in_one_block_all_succeed(crowd: tuple[Any, list[ProtocolClient]]) -> None:
    """With committees of 4 each reveal recomputes its validator's draws (O(N x k)): the work depends on the
    validator (its draws), never on its place in the block, so the estimate made before any reveal holds."""
    chain, people = crowd
    initiator, validators, trainers = people[0], people[1 : 1 + VALIDATORS], people[1 + VALIDATORS :]
    params = TaskParams(
        spec_hash=h("spec committees"), spec_cid=CID, initial_model_hash=h("model"), initial_model_cid=CID,
        num_rounds=1, reward_per_round=10**18, validator_share_bps=2_000, min_trainer_stake=10**18,
        min_validator_stake=10**18, quorum=2, max_trainers=SUBMISSIONS, max_validators=VALIDATORS,
        submit_duration=600, commit_duration=300, reveal_duration=300, vote_duration=300, seed_delay=1,
        sample_rollouts=1, sample_steps=1, trainer_slash_bps=1_000, validator_slash_bps=500,
        max_empty_rounds=0, start_time=chain.timestamp() + 1_000, committee_draws=4,
    )  # fmt: skip
    task = initiator.create_task(params)
    escrow, stakes = initiator.escrow.functions, initiator.stakes.functions
    # Unequal stakes: weights 1 .. 5.
    allocations = [(v, (1 + i) * 10**18) for i, v in enumerate(validators)] + [(p, 10**19) for p in trainers]
    _wait_all([(p.client, p.client.send(stakes.allocate(task, a), gas=GAS)) for p, a in allocations])
    for p in [*validators, *trainers]:
        p.client.transact(escrow.joinTask(task, Role.VALIDATOR if p in validators else Role.TRAINER))
    chain.increase_time(1_000)
    for i, p in enumerate(trainers):
        p.submit_work(task, 0, work((task, "committees", i), 1_000 + i))
    if initiator.task_state(task).seed_block == 0:
        initiator.draw_seed(task)
    chain.mine(2)
    assert initiator.draw_seed(task) is not None
    words = []
    for v in validators:
        mine = initiator.multiplicities_of(task, 0, v.address)
        words.append(pack_verdicts([Verdict.ACCEPT if m else Verdict.NONE for m in mine], allow_none=True))
        v.commit_verdicts(task, 0, words[-1], h("salt", v.address))
    fns = [
        v.registry.functions.revealVerdicts(task, 0, word, h("salt", v.address))
        for v, word in zip(validators, words, strict=True)
    ]
    estimates = [v.client.estimate_gas(fn) for v, fn in zip(validators, fns, strict=True)]
    limits = [int(e * v.client.gas_margin) + 10_000 for v, e in zip(validators, estimates, strict=True)]
    receipts = _reveals_in_one_block(chain, validators, fns, limits)
    assert [r["status"] for r in receipts] == [1] * VALIDATORS
    used = [int(r["gasUsed"]) for r in receipts]
    print("committee reveal gas in block order:", used, "estimated first:", estimates)
    # Each reveal costs what it was estimated to cost in the first position (the last one also closes the
    # phase: a few hundred gas).
    assert all(abs(u - e) < 2_000 for u, e in zip(used, estimates, strict=True)), (used, estimates)
    assert initiator.ballot_of(task, 0).revealed_weight == SUBMISSIONS * 4
    assert initiator.decisions_of(task, 0) == [Verdict.ACCEPT] * SUBMISSIONS
