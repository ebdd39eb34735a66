"""Idle seats against the real roles: keepers cannot end a task's empty rounds before any trainer has
joined (the contract refuses it, and they do not try), and a trainer that takes a seat and never submits
is slashed for each round it missed and loses its seat, while the honest trainer's rounds go on and the
audit stays clean."""

from __future__ import annotations

import time

import pytest
from netharness import Net, drive, events, finished, joined

from protocol.contracts import Role, TaskStatus, Verdict, no_show_slash
from protocol.errors import ContractRevert
from protocol.journal import Journal
from protocol.network import TaskView
from protocol.roles.base import Output, RoleNode, ensure_joined
from protocol.roles.initiator import InitiatorNode
from protocol.roles.trainer import TrainerNode
from protocol.roles.validator import ValidatorNode

pytestmark = [pytest.mark.chain, pytest.mark.ipfs]


def test_keepers_do_not_end_a_task_before_its_trainers_join(net: Net) -> None:
    task_id = net.create_task(19, num_rounds=3, submit_duration=600, max_empty_rounds=2)
    initiator = InitiatorNode(net.session(19), task_id, out=Output("initiator"))
    net.warp_to_start(task_id)
    proto = net.session(19).proto
    started = time.monotonic()
    while time.monotonic() - started < 5:  # many keeper steps: nothing is due, nothing is sent
        initiator.step()
        time.sleep(0.1)
    assert proto.task_state(task_id).round == 0
    with pytest.raises(ContractRevert) as info:  # nor would the contract take it from anyone
        net.session(20).proto.finalize_round(task_id)
    assert info.value.error == "SubmitPhaseOpen"
    # A trainer joins (for round 1): the empty round 0 may end at once, and the keeper ends it.
    view = TaskView(net.session(20), task_id)
    assert ensure_joined(view, Role.TRAINER, Journal(net.home / "t20.jsonl"), Output("trainer")) == 1
    drive([initiator], lambda: proto.task_state(task_id).round == 1, timeout=30)
    state = proto.task_state(task_id)
    assert (state.status, state.trainers, state.empty_rounds) == (TaskStatus.ACTIVE, 1, 1)


def test_a_squatter_pays_for_each_missed_round_and_loses_its_seat(net: Net) -> None:
    task_id = net.create_task(
        21, num_rounds=2, submit_duration=25, max_no_shows=1, no_show_slash_bps=500, max_trainers=2
    )
    honest = TrainerNode(net.session(22), task_id, out=Output("trainer"))
    validators = [ValidatorNode(net.session(i), task_id, out=Output(f"validator-{i}")) for i in (16, 17)]
    initiator = InitiatorNode(net.session(21), task_id, out=Output("initiator"))
    squatter = net.session(23)
    roles: list[RoleNode] = [initiator, honest, *validators]
    drive([honest, *validators], joined([honest, *validators]), timeout=60)
    ensure_joined(
        TaskView(squatter, task_id), Role.TRAINER, Journal(net.home / "squat.jsonl"), Output("squat")
    )
    allocation = squatter.proto.allocation_of(task_id)
    net.warp_to_start(task_id)
    drive(roles, finished(roles), timeout=300)

    d = net.deployment
    (freed,) = events(net, d.task_escrow, "SeatFreed", taskId=task_id)
    assert (freed["trainer"], freed["round"], freed["missed"]) == (squatter.address, 1, 1)
    (settled,) = events(net, d.task_escrow, "NoShowsSettled", taskId=task_id)
    assert (settled["trainer"], settled["rounds"]) == (squatter.address, 1)
    assert settled["slashed"] == no_show_slash(allocation, 1, 500)
    assert squatter.proto.allocation_of(task_id) == allocation - settled["slashed"]
    # Round 1 no longer waited for the squatter: the honest trainer's submission closed it at once.
    assert net.session(21).proto.task_state(task_id).status == TaskStatus.COMPLETED
    results = {e["trainer"]: e for e in events(net, d.task_escrow, "SubmissionSettled", taskId=task_id)}
    assert set(results) == {honest.me}
    assert Verdict(results[honest.me]["decision"]) == Verdict.ACCEPT
    assert squatter.proto.no_shows_of(task_id).seated is False

    from protocol.audit.runner import audit, open_target
    from protocol.ipfs import ArtifactStore

    with ArtifactStore(net.ipfs.api_url, find_timeout=5.0) as store:
        result = audit(open_target(net.anvil.rpc_url, d.addresses), task=task_id, store=store, accuracy=False)
    assert result.ok, [str(x) for x in result.discrepancies]
    assert result.ledger.verified["seats"] == 1
    assert result.ledger.verified["no_shows"] == 1
