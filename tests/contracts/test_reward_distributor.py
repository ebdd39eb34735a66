"""RewardDistributor: deposits and credits only from the escrow, totals, pull-payment claims."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from chainworld import World, logs, reverts

from protocol.contracts import CreditReason

if TYPE_CHECKING:
    from web3.contract import Contract

    from protocol.chain import ChainClient
    from protocol.compile import CompiledContract

pytestmark = pytest.mark.chain


@pytest.fixture
def vault(chain: ChainClient, compiled: dict[str, CompiledContract], world: World) -> Contract:
    """A RewardDistributor whose escrow is account 8 (a plain account), holding 1000 tokens for task 3."""
    escrow = world.people[8]
    distributor = chain.deploy(compiled["RewardDistributor"], world.deployment.token.address, escrow.address)
    escrow.client.transact(world.deployment.token.functions.transfer(distributor.address, 1_000))
    receipt = escrow.client.transact(distributor.functions.recordDeposit(3, world.people[0].address, 1_000))
    assert logs(distributor, "Deposited", receipt) == [
        {"taskId": 3, "from": world.people[0].address, "amount": 1_000}
    ]
    return distributor


def test_credit_then_claim(world: World, vault: Contract) -> None:
    escrow, alice = world.people[8], world.people[7]
    receipt = escrow.client.transact(
        vault.functions.credit(alice.address, 250, 3, 1, CreditReason.TRAINER_REWARD)
    )
    assert logs(vault, "Credited", receipt) == [
        {
            "account": alice.address,
            "taskId": 3,
            "round": 1,
            "amount": 250,
            "reason": CreditReason.TRAINER_REWARD,
        }
    ]
    escrow.client.transact(vault.functions.credit(alice.address, 50, 3, 2, CreditReason.VALIDATOR_REWARD))
    call = world.chain.call
    assert call(vault.functions.creditOf(alice.address)) == 300
    assert (call(vault.functions.totalEscrowed()), call(vault.functions.totalCredits())) == (700, 300)

    before = alice.token_balance()
    receipt = alice.client.transact(vault.functions.claim())
    assert logs(vault, "Claimed", receipt) == [{"account": alice.address, "amount": 300}]
    assert alice.token_balance() == before + 300
    assert call(vault.functions.creditOf(alice.address)) == 0
    assert (call(vault.functions.totalEscrowed()), call(vault.functions.totalCredits())) == (700, 0)
    assert alice.token_balance(vault.address) == 700
    reverts("NothingToClaim", account=alice.address)(lambda: alice.client.transact(vault.functions.claim()))


def test_credit_cannot_exceed_the_escrow(world: World, vault: Contract) -> None:
    escrow = world.people[8]
    reverts("CreditExceedsEscrow", amount=1_001, escrowed=1_000)(
        lambda: escrow.client.transact(
            vault.functions.credit(escrow.address, 1_001, 3, 0, CreditReason.REFUND)
        )
    )


def test_only_the_escrow_records_and_credits(world: World, vault: Contract) -> None:
    mallory = world.people[7]
    reverts("OnlyTaskEscrow", caller=mallory.address)(
        lambda: mallory.client.transact(vault.functions.recordDeposit(3, mallory.address, 1))
    )
    reverts("OnlyTaskEscrow", caller=mallory.address)(
        lambda: mallory.client.transact(vault.functions.credit(mallory.address, 1, 3, 0, CreditReason.REFUND))
    )


def test_deposit_total_must_fit_in_128_bits(world: World, vault: Contract) -> None:
    escrow = world.people[8]
    reverts("SafeCastOverflowedUintDowncast", bits=128)(
        lambda: escrow.client.transact(vault.functions.recordDeposit(4, escrow.address, 2**128 - 1_000))
    )


def test_views(world: World) -> None:
    distributor = world.deployment.reward_distributor
    assert world.chain.call(distributor.functions.token()) == world.deployment.token.address
    assert world.chain.call(distributor.functions.taskEscrow()) == world.deployment.task_escrow.address
    assert world.chain.call(distributor.functions.totalEscrowed()) == 0
    reverts("NothingToClaim")(world.initiator.claim)
