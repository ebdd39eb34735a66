"""Honeypots need a settlement grace: on a deployment whose grace is 0 a honeypot could not be revealed or
slashed once its task has ended (the window is `endedAt + settlementGrace`), so its HoneypotRegistry takes
no commitment (`NoSettlementGrace`); with a grace it does. TaskRules cannot check it: the grace is a
deployment constant of the escrow and a task's honeypots are private until their first commitment."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest
from chainworld import UNBONDING, World, reverts

from protocol.contracts import ProtocolClient, deploy_protocol

if TYPE_CHECKING:
    from protocol.chain import ChainClient

pytestmark = pytest.mark.chain


def test_a_deployment_without_grace_refuses_honeypot_commitments(
    chain: ChainClient, client_for: Callable[[int], ChainClient], world: World
) -> None:
    bait = world.trainers[2].address
    bare = deploy_protocol(
        chain, world.deployment.token.address, unbonding_period=UNBONDING, settlement_grace=0
    )
    assert chain.call(bare.task_escrow.functions.settlementGrace()) == 0
    initiator = ProtocolClient(client_for(0), bare)
    initiator.approve(bare.task_escrow.address, 2**256 - 1)
    task_id = initiator.create_task(world.params())
    reverts("NoSettlementGrace", taskId=task_id, round=0)(
        lambda: initiator.commit_honeypot(task_id, 0, bait, b"\x01" * 32)
    )

    # The module's deployment has a grace (the unbonding period): the same commitment is taken.
    assert chain.call(world.deployment.task_escrow.functions.settlementGrace()) == UNBONDING > 0
    task_id = world.create_task()
    world.initiator.commit_honeypot(task_id, 0, bait, b"\x01" * 32)
    assert world.initiator.honeypot_of(task_id, 0).commitment != bytes(32)
