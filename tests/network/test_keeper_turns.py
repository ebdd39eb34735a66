"""Keepers take their duties in turn: one of them sends each seed, finalisation and settlement (a round's,
in one `settleRound`), so a round's gas is not burnt by transactions that lose a race (every participant
used to send `drawSeed` and every validator `finalizeRound` into the same block); everyone is paid once,
in one `claimFor`."""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from netharness import Net, drive, joined

from protocol.roles.base import Output, RoleNode
from protocol.roles.initiator import InitiatorNode
from protocol.roles.settle import MAX_SLOT, MIN_SLOT, rotation
from protocol.roles.trainer import TrainerNode
from protocol.roles.validator import ValidatorNode

ADDRESSES = [f"0x{i:040x}" for i in range(1, 6)]


def test_rotation_is_a_permutation_every_keeper_computes_alike() -> None:
    order = rotation(3, 7, "finalize", ADDRESSES)
    assert sorted(order) == sorted(ADDRESSES)
    assert rotation(3, 7, "finalize", [*reversed(ADDRESSES), ADDRESSES[0]]) == order
    assert rotation(3, 7, "finalize", []) == []


def test_rotation_moves_the_first_place_from_round_to_round() -> None:
    firsts = Counter(rotation(1, r, "arm", ADDRESSES)[0] for r in range(200))
    assert set(firsts) == set(ADDRESSES)
    assert max(firsts.values()) < 70  # roughly fair: 40 each on average
    assert any(rotation(1, r, "arm", ADDRESSES) != rotation(1, r, "finalize", ADDRESSES) for r in range(10))


@pytest.mark.chain
@pytest.mark.ipfs
def test_a_round_sends_no_transaction_that_reverts(net: Net) -> None:
    """Each role's `run()` in its own thread, as separate processes would: the keepers of a duty see it due
    at the same time (without turns, several sent it into the same block)."""
    task_id = net.create_task(13)
    first = net.deployer.block_number()
    trainers = [TrainerNode(net.session(i), task_id, out=Output(f"trainer-{i}")) for i in (14, 15)]
    validators = [ValidatorNode(net.session(i), task_id, out=Output(f"validator-{i}")) for i in (16, 17, 18)]
    roles: list[RoleNode] = [InitiatorNode(net.session(13), task_id), *trainers, *validators]
    drive(roles, joined([*trainers, *validators]), timeout=60)
    net.warp_to_start(task_id)
    stop = threading.Event()
    errors: list[BaseException] = []

    def run(role: RoleNode) -> None:
        try:
            role.run(timeout=240, stop=stop)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(r,), daemon=True) for r in roles]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    stop.set()
    assert not errors, errors
    assert all(r.finished for r in roles)
    w3 = net.deployer.w3
    mine = {r.me.lower() for r in roles}
    sent = Counter[str]()
    calls = Counter[tuple[str, str]]()
    reverted = []
    escrow, distributor = net.deployment.task_escrow, net.deployment.reward_distributor
    for number in range(first, net.deployer.block_number() + 1):
        for tx in w3.eth.get_block(number, full_transactions=True)["transactions"]:
            if str(tx["from"]).lower() not in mine:
                continue
            sent[str(tx["from"])] += 1
            for contract in (escrow, distributor):
                if str(tx["to"]).lower() == contract.address.lower():
                    calls[(contract.decode_function_input(tx["input"])[0].fn_name, str(tx["from"]))] += 1
            if w3.eth.get_transaction_receipt(tx["hash"])["status"] != 1:
                reverted.append(tx["hash"].to_0x_hex())
    assert sum(sent.values()) > 15  # joins, submissions, the seed, the ballot, finalisation, settlements
    assert reverted == []
    # The one round is settled in one transaction, and everyone is paid once, after the task ended, in one
    # claimFor by the first keeper of the claim rotation.
    assert sum(n for (fn, _), n in calls.items() if fn.startswith("settle")) == 1
    assert sum(n for (fn, _), n in calls.items() if fn == "settleRound") == 1
    payers = {who: n for (fn, who), n in calls.items() if fn == "claimFor"}
    designated = rotation(task_id, 1, "claim", [r.me for r in roles])[0]
    assert payers == {designated: 1}
    assert not any(fn == "claim" for fn, _ in calls)
    credited = {str(e["args"]["account"]) for e in distributor.events.Credited().get_logs(from_block=first)}
    paid = [str(e["args"]["account"]) for e in distributor.events.Claimed().get_logs(from_block=first)]
    assert sorted(paid) == sorted(credited)
    assert all(net.session(13).proto.credit_of(r.me) == 0 for r in roles)


@pytest.mark.chain
@pytest.mark.ipfs
def test_a_warped_clock_does_not_stretch_the_fallback_keepers_wait(net: Net) -> None:
    """The slot is two *median* block intervals: one ten-minute gap among the last blocks (a warped test
    clock, an automining node left idle) must not make every fallback keeper wait minutes (a keeper
    whose turn came behind an absent initiator once waited past the round's margin)."""
    task_id = net.create_task(13)
    net.deployer.increase_time(600)
    net.deployer.mine(1)
    validator = ValidatorNode(net.session(16), task_id, out=Output("validator-16"))
    assert validator.keeper.slot <= MIN_SLOT + 2 * validator.session.poll_interval + 4
    assert validator.keeper.slot <= MAX_SLOT
