"""The contracts against non-standard ERC20s: fee on transfer (refused), false instead of a revert,
no return value (accepted), and a token that re-enters during a transfer (blocked)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from chainworld import World, reverts

from protocol.contracts import Deployment, ProtocolClient, deploy_protocol

if TYPE_CHECKING:
    from web3.contract import Contract

    from protocol.chain import ChainClient
    from protocol.compile import CompiledContract

pytestmark = pytest.mark.chain

AMOUNT = 10**20


def deploy_with(
    chain: ChainClient, compiled: dict[str, CompiledContract], name: str, *args: object
) -> tuple[Contract, Deployment]:
    token = chain.deploy(compiled[name], *args)
    return token, deploy_protocol(chain, token.address, unbonding_period=60, compiled=compiled)


def funded(world: World, deployment: Deployment, token: Contract, index: int) -> ProtocolClient:
    person = ProtocolClient(world.people[index].client, deployment)
    person.client.transact(token.functions.mint(person.address, AMOUNT))
    return person


def test_fee_on_transfer_token_is_refused(
    world: World, chain: ChainClient, compiled: dict[str, CompiledContract]
) -> None:
    token, deployment = deploy_with(chain, compiled, "FeeToken", 100)  # 1 % fee
    staker = funded(world, deployment, token, 7)
    staker.approve(deployment.stake_manager.address, AMOUNT)
    reverts("TokenTransferShortfall", expected=1_000, received=990)(lambda: staker.stake(1_000))
    initiator = funded(world, deployment, token, 0)
    initiator.approve(deployment.task_escrow.address, AMOUNT)
    params = world.params(num_rounds=2, reward_per_round=5_000)
    reverts("TokenTransferShortfall", expected=10_000, received=9_900)(lambda: initiator.create_task(params))


def test_false_returning_token_fails_loudly(
    world: World, chain: ChainClient, compiled: dict[str, CompiledContract]
) -> None:
    token, deployment = deploy_with(chain, compiled, "FalseReturnToken")
    staker = funded(world, deployment, token, 7)
    # No allowance: the token returns false instead of reverting; SafeERC20 turns that into a revert.
    reverts("SafeERC20FailedOperation", token=token.address)(lambda: staker.stake(1_000))
    staker.approve(deployment.stake_manager.address, AMOUNT)
    staker.stake(1_000)
    staker.request_unstake(1_000)
    world.chain.increase_time(60)
    chain.transact(token.functions.setFailAll(True))
    reverts("SafeERC20FailedOperation", token=token.address)(staker.withdraw)
    assert staker.stake_of()[2] == 1_000  # the failed withdrawal changed nothing
    chain.transact(token.functions.setFailAll(False))
    before = staker.token_balance()
    assert staker.withdraw()["status"] == 1
    assert staker.token_balance() == before + 1_000


def test_token_without_return_values_works(
    world: World, chain: ChainClient, compiled: dict[str, CompiledContract]
) -> None:
    token, deployment = deploy_with(chain, compiled, "NoReturnToken")
    staker = funded(world, deployment, token, 7)
    staker.approve(deployment.stake_manager.address, AMOUNT)
    staker.stake(1_000)
    staker.request_unstake(400)
    initiator = funded(world, deployment, token, 0)
    initiator.approve(deployment.task_escrow.address, AMOUNT)
    task_id = initiator.create_task(world.params(num_rounds=2, reward_per_round=5_000))
    initiator.cancel_task(task_id)
    before = initiator.token_balance()
    assert initiator.claim() == 10_000
    assert initiator.token_balance() == before + 10_000
    world.chain.increase_time(60)
    staker.withdraw()
    assert staker.token_balance() == AMOUNT - 600
    assert staker.token_balance(deployment.stake_manager.address) == 600


def test_reentrant_token_is_blocked_by_the_guards(
    world: World, chain: ChainClient, compiled: dict[str, CompiledContract]
) -> None:
    token, deployment = deploy_with(chain, compiled, "ReentrantToken")
    staker = funded(world, deployment, token, 7)
    staker.approve(deployment.stake_manager.address, AMOUNT)
    stakes, distributor, escrow = (
        deployment.stake_manager,
        deployment.reward_distributor,
        deployment.task_escrow,
    )

    def arm(target: Contract, call: str, *args: object) -> None:
        chain.transact(token.functions.arm(target.address, target.encode_abi(call, args=list(args))))

    # stake() pulls the tokens; the token calls back into withdraw() in the middle of it.
    arm(stakes, "withdraw")
    reverts("ReentrancyGuardReentrantCall")(lambda: staker.stake(1_000))
    assert staker.stake_of()[0] == 0
    chain.transact(token.functions.arm("0x" + "00" * 20, b""))
    staker.stake(1_000)

    # createTask pushes the deposit; the token calls createTask again.
    initiator = funded(world, deployment, token, 0)
    initiator.approve(escrow.address, AMOUNT)
    params = world.params(num_rounds=1, reward_per_round=5_000)
    arm(escrow, "createTask", params.as_tuple())
    reverts("ReentrancyGuardReentrantCall")(lambda: initiator.create_task(params))
    chain.transact(token.functions.arm("0x" + "00" * 20, b""))
    task_id = initiator.create_task(params)
    initiator.cancel_task(task_id)

    # claim() pays out; the token calls claim() again for the same account.
    arm(distributor, "claim")
    reverts("ReentrancyGuardReentrantCall")(initiator.claim)
    assert initiator.credit_of() == 5_000
    chain.transact(token.functions.arm("0x" + "00" * 20, b""))
    assert initiator.claim() == 5_000
    assert initiator.credit_of() == 0
