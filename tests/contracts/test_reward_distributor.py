"""RewardDistributor: deposits and credits only from the escrow, totals, pull-payment claims (one's own,
or a batch paid to their owners by anyone), credit slots opened before the first credit."""

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


def test_claim_for_pays_each_account_its_credit_once(world: World, vault: Contract) -> None:
    escrow, alice, bob, carol, keeper = (world.people[i] for i in (8, 7, 6, 5, 4))
    escrow.client.transact(vault.functions.credit(alice.address, 120, 3, 0, CreditReason.TRAINER_REWARD))
    escrow.client.transact(vault.functions.credit(bob.address, 30, 3, 0, CreditReason.VALIDATOR_REWARD))
    before = {p.address: p.token_balance() for p in (alice, bob, carol, keeper)}
    # carol has no credit and alice is listed twice: both skipped, not a revert.
    accounts = [alice.address, carol.address, bob.address, alice.address]
    receipt = keeper.client.transact(vault.functions.claimFor(accounts))
    assert logs(vault, "Claimed", receipt) == [
        {"account": alice.address, "amount": 120},
        {"account": bob.address, "amount": 30},
    ]
    after = {p.address: p.token_balance() for p in (alice, bob, carol, keeper)}
    assert {a: after[a] - before[a] for a in after} == {
        alice.address: 120,
        bob.address: 30,
        carol.address: 0,
        keeper.address: 0,
    }
    call = world.chain.call
    assert [call(vault.functions.creditOf(p.address)) for p in (alice, bob)] == [0, 0]
    assert (call(vault.functions.totalEscrowed()), call(vault.functions.totalCredits())) == (850, 0)
    assert alice.token_balance(vault.address) == 850
    reverts("NothingToClaimFor", accounts=2)(
        lambda: keeper.client.transact(vault.functions.claimFor([alice.address, bob.address]))
    )
    reverts("NothingToClaimFor", accounts=0)(lambda: keeper.client.transact(vault.functions.claimFor([])))


def test_opened_slots_make_first_credits_cheaper(world: World, vault: Contract) -> None:
    """An opened account's credit slot stays written after a claim: its first credit of a task rewrites a
    nonzero slot (~17k gas less than filling an empty one)."""
    escrow, alice, bob = world.people[8], world.people[7], world.people[6]
    call = world.chain.call
    assert call(vault.functions.isOpen(world.people[0].address))  # the depositor, by recordDeposit
    assert not call(vault.functions.isOpen(alice.address))
    escrow.client.transact(vault.functions.open(alice.address))
    escrow.client.transact(vault.functions.open(alice.address))  # again: nothing changes
    assert call(vault.functions.isOpen(alice.address))

    def credit(who: str, round_: int) -> int:
        fn = vault.functions.credit(who, 10, 3, round_, CreditReason.TRAINER_REWARD)
        return int(escrow.client.transact(fn)["gasUsed"])

    opened, fresh = credit(alice.address, 0), credit(bob.address, 0)
    assert fresh - opened > 15_000
    alice.client.transact(vault.functions.claim())
    assert call(vault.functions.isOpen(alice.address))
    assert credit(alice.address, 0) == opened


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
    reverts("OnlyTaskEscrow", caller=mallory.address)(
        lambda: mallory.client.transact(vault.functions.open(mallory.address))
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
