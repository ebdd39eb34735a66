"""A round whose validators fail to agree on the next model (real policy, real IPFS, real anvil): the auditor
reports it, with who voted what, who revealed but did not vote, and the model the accepted updates give;
and it reports each validator that did not vote that model: the one that voted another, the silent one."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

import pytest
from chainworld import STAKE, World, h
from protocol_history import A, aggregate_of, make_task, train

from protocol.audit import Kind
from protocol.audit.runner import audit, open_target

if TYPE_CHECKING:
    from protocol.chain import ChainClient
    from protocol.compile import CompiledContract
    from protocol.ipfs import ArtifactStore

pytestmark = [pytest.mark.chain, pytest.mark.ipfs, pytest.mark.slow]


def test_a_round_without_an_agreed_model_is_reported_with_why(
    world: World, chain: ChainClient, compiled: dict[str, CompiledContract], artifact_store: ArtifactStore
) -> None:
    trainer = world.trainers[0]
    net = make_task(world, artifact_store, [trainer], allocation=STAKE // 8)
    work = train(net, trainer, 0)
    world.draw(net.task_id)
    rows = {v: [A] for v in world.validators}
    world.commit(net.task_id, 0, rows)
    world.reveal(net.task_id, 0, rows)
    expected = hashlib.sha256(aggregate_of(net, [work])).digest()
    v0, v1, silent = world.validators
    world.vote(net.task_id, 0, {v0: expected, v1: h("another model")})
    world.close_ballot(net.task_id, 0)
    net.proto.finalize_round(net.task_id)

    target = open_target(chain.rpc_url, world.deployment.addresses, compiled=compiled)
    result = audit(target, task=net.task_id, store=artifact_store, gas=False, accuracy=False)
    found, *votes = result.discrepancies
    assert (found.kind, found.task, found.round) == (Kind.NO_AGREEMENT, net.task_id, 0)
    wrong = {d.subject: d.actual for d in votes if d.kind == Kind.MODEL_VOTE and d.round == 0}
    assert wrong == {
        f"model vote of {v1.address}": "0x" + h("another model").hex(),
        f"model vote of {silent.address}": "no vote",
    }
    assert len(votes) == 2, votes
    assert all(d.expected == "0x" + expected.hex() for d in votes)
    assert found.expected == "0x" + expected.hex()  # the aggregate of the accepted update
    assert found.actual == "none"
    assert "3 of 3 validators revealed" in found.detail
    assert f"0x{expected.hex()} x1" in found.detail
    assert f"0x{h('another model').hex()} x1" in found.detail
    assert silent.address in found.detail  # revealed but did not vote
    assert result.reverify is not None
    assert [a.status for a in result.reverify.aggregates] == ["no agreement"]
    assert result.verified["verdicts"] == 1  # the accepted update was right
