"""Re-verification on histories with real work (a real torch policy, real IPFS, real anvil), wrong on purpose:
colluding validators accept a poisoned update; validators finalise a checkpoint that is not the aggregate of
the accepted updates; an accepted submission's bundle disappears from IPFS. Each is caught with the right
discrepancy, and the honest task next to them audits clean."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest
from chainworld import STAKE, World
from protocol_history import A, Net, R, make_task, play_round, unpin_and_collect

from protocol.audit import Kind
from protocol.audit.runner import AuditResult, audit, open_target
from protocol.contracts import Verdict

if TYPE_CHECKING:
    from protocol.chain import ChainClient
    from protocol.compile import CompiledContract
    from protocol.ipfs import ArtifactStore
    from protocol.ipfs_daemon import IpfsDaemon

pytestmark = [pytest.mark.chain, pytest.mark.ipfs, pytest.mark.slow]


@dataclass
class Histories:
    """Three one-round tasks on one deployment."""

    colluded: Net
    wrong_aggregate: Net
    honest: Net
    target: Any
    store: ArtifactStore


@pytest.fixture(scope="module")
def histories(
    world: World, chain: ChainClient, compiled: dict[str, CompiledContract], artifact_store: ArtifactStore
) -> Histories:
    honest_trainer, cheater = world.trainers[0], world.trainers[1]
    pair = [honest_trainer, cheater]
    allocation = STAKE // 8
    colluded = make_task(world, artifact_store, pair, allocation=allocation)
    play_round(colluded, 0, {honest_trainer: False, cheater: True}, [A, A])
    wrong = make_task(world, artifact_store, pair, allocation=allocation)
    play_round(wrong, 0, {honest_trainer: False, cheater: False}, [A, A], vote="drop-one")
    honest = make_task(world, artifact_store, pair, allocation=allocation)
    play_round(honest, 0, {honest_trainer: False, cheater: True}, [A, R])
    target = open_target(chain.rpc_url, world.deployment.addresses, compiled=compiled)
    return Histories(colluded, wrong, honest, target, artifact_store)


def _audit(h: Histories, net: Net, **kwargs: Any) -> AuditResult:
    return audit(h.target, task=net.task_id, store=h.store, gas=False, **kwargs)


def _lines(result: AuditResult) -> str:
    return "\n".join(d.line() for d in result.discrepancies)


def test_honest_task_reverifies_clean(histories: Histories) -> None:
    result = _audit(histories, histories.honest)
    assert result.ok, _lines(result)
    assert result.reverify is not None
    checks = {c.index: (c.chain, c.auditor) for c in result.reverify.submissions}
    assert checks == {0: (Verdict.ACCEPT, Verdict.ACCEPT), 1: (Verdict.REJECT, Verdict.REJECT)}
    (agg,) = result.reverify.aggregates
    assert agg.status == "match"
    assert agg.accepted == [0]
    curve = result.reverify.accuracy[histories.honest.task_id]
    assert len(curve) == 2
    assert all(a is not None and 0.0 <= a <= 1.0 for a in curve)
    assert result.verified["verdicts"] == 2
    assert result.verified["aggregates"] == 1


def test_colluding_validators_accepting_a_poisoned_update_are_caught(histories: Histories) -> None:
    net = histories.colluded
    result = _audit(histories, net)
    (found,) = result.discrepancies
    cheater = net.rounds[0][1]
    assert (found.kind, found.task, found.round) == (Kind.VERDICT, net.task_id, 0)
    assert cheater.trainer.address in found.subject
    assert (found.expected, found.actual) == ("REJECT", "ACCEPT")
    assert "update" in found.detail  # the re-check that failed: the update is not base - theta_H
    chain = net.world.initiator.client.w3.eth.get_transaction_receipt(found.evidence)
    assert chain["status"] == 1  # the evidence is the submission's transaction
    # The aggregate is consistent with what the chain accepted (poison included): only the verdict is wrong.
    assert result.reverify is not None
    assert [a.status for a in result.reverify.aggregates] == ["match"]


def test_finalised_checkpoint_that_is_not_the_aggregate_is_caught(histories: Histories) -> None:
    net = histories.wrong_aggregate
    result = _audit(histories, net)
    found, *votes = result.discrepancies
    assert (found.kind, found.task, found.round) == (Kind.AGGREGATE, net.task_id, 0)
    # Each validator voted (and was paid for) a model that is not the aggregate: every vote is flagged.
    assert sorted(d.subject for d in votes) == sorted(
        f"model vote of {v.address}" for v in net.world.validators
    )
    assert {(d.kind, d.expected, d.actual) for d in votes} == {
        (Kind.MODEL_VOTE, found.expected, found.actual)
    }
    record = result.ledger.tasks[net.task_id].rounds[0]
    assert record.agreed is not None
    assert found.actual == "0x" + record.agreed[0].hex()
    assert found.evidence == record.agreed[1]  # the CID the validators finalised
    assert result.verified.get("verdicts") == 2  # the verdicts themselves were right


def test_missing_artifact_is_unverifiable_not_fine(histories: Histories, ipfs_daemon: IpfsDaemon) -> None:
    net, store = histories.honest, histories.store
    bundle = net.rounds[0][0].manifest.bundle
    data = store.get_bytes(bundle.cid, max_size=bundle.size)
    unpin_and_collect(ipfs_daemon.api_url, bundle.cid)
    try:
        assert not store.exists(bundle.cid, timeout=1.0)
        result = _audit(histories, net, accuracy=False)
    finally:
        assert store.put_bytes(data).cid == bundle.cid
    (found,) = result.discrepancies
    assert (found.kind, found.task, found.round, found.evidence) == (
        Kind.UNVERIFIABLE,
        net.task_id,
        0,
        bundle.cid,
    )
    assert "submission 0" in found.subject
    assert result.reverify is not None
    assert [c.auditor for c in result.reverify.submissions] == [Verdict.UNAVAILABLE, Verdict.REJECT]
    assert [a.status for a in result.reverify.aggregates] == ["match"]  # the update itself is still there


def test_sample_reverifies_only_what_the_auditor_picked(histories: Histories) -> None:
    result = _audit(histories, histories.honest, sample=1, reverify_seed=7, accuracy=False)
    assert result.ok, _lines(result)
    assert result.reverify is not None
    assert len(result.reverify.submissions) == 1
    again = _audit(histories, histories.honest, sample=1, reverify_seed=7, accuracy=False)
    assert again.reverify is not None
    assert [c.index for c in again.reverify.submissions] == [c.index for c in result.reverify.submissions]
