"""The roles in-process against a real anvil (interval mining) and a real IPFS daemon: a full round with a
cheater, and restarts at every point where a crash could lose or repeat work.

A "crash" is an exception raised right after a transaction was mined and before (or right after) the
journal recorded it, after which the role object is thrown away and a new one starts from the same
journal and the chain, as a restarted process would.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest
from netharness import TRAINER_SLASH, Net, any_update_moves, drive, events, finished, joined

from protocol.contracts import Role, ValidatorOutcome, Verdict
from protocol.network import Submission, TaskView
from protocol.roles.base import Output, RoleNode
from protocol.roles.initiator import InitiatorNode
from protocol.roles.trainer import TrainerNode
from protocol.roles.validator import ValidatorNode

pytestmark = [pytest.mark.chain, pytest.mark.ipfs]


class CrashError(Exception):
    """Stands for the process of `role` dying at this point."""

    def __init__(self, role: RoleNode, where: str) -> None:
        super().__init__(f"{type(role).__name__} {role.me} died at {where}")
        self.role = role


def crash_after(role: RoleNode, action: str, *, before_journal: bool = False) -> None:
    """Make `role` die the first time it journals `action` as done (after the write, or instead of it)."""
    original = role.journal.done

    def done(act: str, key: str, **data: Any) -> None:
        if act == action:
            role.journal.done = original  # type: ignore[method-assign]
            if not before_journal:
                original(act, key, **data)
            raise CrashError(role, f"{action} {key}")
        original(act, key, **data)

    role.journal.done = done  # type: ignore[method-assign]


def settle_counts(net: Net, task_id: int) -> dict[str, Counter[Any]]:
    """How many times each on-chain action happened in the task, per actor."""
    d = net.deployment
    return {
        "submitted": Counter(
            e["trainer"] for e in events(net, d.task_escrow, "WorkSubmitted", taskId=task_id)
        ),
        "committed": Counter(
            e["validator"] for e in events(net, d.attestation_registry, "VerdictsCommitted", taskId=task_id)
        ),
        "revealed": Counter(
            e["validator"] for e in events(net, d.attestation_registry, "VerdictsRevealed", taskId=task_id)
        ),
        "voted": Counter(
            e["validator"] for e in events(net, d.attestation_registry, "ModelVoted", taskId=task_id)
        ),
        "settled": Counter(
            e["index"] for e in events(net, d.task_escrow, "SubmissionSettled", taskId=task_id)
        ),
        "credited": Counter(
            (e["account"], e["round"], e["reason"])
            for e in events(net, d.reward_distributor, "Credited", taskId=task_id)
        ),
    }


def decisions(net: Net, task_id: int) -> dict[str, tuple[Verdict, int, int]]:
    """trainer -> (decision, reward, slashed) from the SubmissionSettled events."""
    return {
        e["trainer"]: (Verdict(e["decision"]), int(e["reward"]), int(e["slashed"]))
        for e in events(net, net.deployment.task_escrow, "SubmissionSettled", taskId=task_id)
    }


def honest_subs(net: Net, task_id: int, cheater: TrainerNode) -> list[Submission]:
    """Round 0's submissions of everyone but `cheater`."""
    return [s for s in TaskView(net.session(1), task_id).submissions(0) if s.trainer != cheater.me]


def start(net: Net, task_id: int, roles: list[RoleNode]) -> None:
    """Let every role join, then move the clock to the task's start."""
    drive(roles, joined([r for r in roles if not isinstance(r, InitiatorNode)]), timeout=60)
    net.warp_to_start(task_id)


def test_round_pays_honest_trainers_and_slashes_a_cheater(net: Net) -> None:
    task_id = net.create_task(1, warm_start=True)
    honest = [TrainerNode(net.session(i), task_id, out=Output(f"trainer-{i}")) for i in (2, 3)]
    cheater = TrainerNode(net.session(4), task_id, out=Output("cheater"), cheat="forge-rewards")
    validators = [ValidatorNode(net.session(i), task_id, out=Output(f"validator-{i}")) for i in (5, 6)]
    roles: list[RoleNode] = [InitiatorNode(net.session(1), task_id), *honest, cheater, *validators]
    start(net, task_id, roles)
    drive(roles, finished(roles), timeout=120)

    outcome = decisions(net, task_id)
    for t in honest:
        verdict, reward, slashed = outcome[t.me]
        assert verdict == Verdict.ACCEPT
        assert reward > 0
        assert slashed == 0
    verdict, reward, slashed = outcome[cheater.me]
    assert verdict == Verdict.REJECT
    assert reward == 0
    assert slashed == TRAINER_SLASH
    reports = (validators[0].dir / "round-0").glob("verdict-*.json")
    reasons = [r for path in reports for r in json.loads(path.read_text())["reasons"]]
    assert any("reward" in r for r in reasons), reasons
    for e in events(net, net.deployment.task_escrow, "ValidatorSettled", taskId=task_id):
        assert ValidatorOutcome(e["outcome"]) == ValidatorOutcome.REWARDED
    # The agreed model is the aggregate of the two accepted updates: every validator voted the same hash.
    votes = events(net, net.deployment.attestation_registry, "ModelVoted", taskId=task_id)
    assert len({bytes(v["modelHash"]) for v in votes}) == 1
    agreed = events(net, net.deployment.attestation_registry, "ModelAgreed", taskId=task_id)
    assert len(agreed) == 1
    assert bytes(agreed[0]["modelHash"]) == bytes(votes[0]["modelHash"])
    view = TaskView(net.session(1), task_id)
    initial = view.created["initialModelHash"]
    # The model moved unless every accepted update is zero.
    moved = bytes(agreed[0]["modelHash"]) != bytes(initial)
    assert moved == any_update_moves(view, honest_subs(net, task_id, cheater))
    honest_indices = sorted(s.index for s in honest_subs(net, task_id, cheater))
    for v in validators:  # each aggregated exactly the accepted updates
        entry = v.journal.entry("aggregate", "0")
        assert entry is not None
        assert sorted(entry.data["accepted"]) == honest_indices
    proto = net.session(1).proto
    assert all(proto.credit_of(r.me) == 0 for r in roles)  # everyone claimed
    assert proto.funds_of(task_id) == (0, 0)


def test_restarts_lose_and_repeat_nothing(net: Net) -> None:
    task_id = net.create_task(7)
    t_a = TrainerNode(net.session(8), task_id, out=Output("trainer-a"))
    t_b = TrainerNode(net.session(9), task_id, out=Output("trainer-b"))
    v_a = ValidatorNode(net.session(10), task_id, out=Output("validator-a"))
    v_b = ValidatorNode(net.session(11), task_id, out=Output("validator-b"))
    keeper = InitiatorNode(net.session(7), task_id)
    start(net, task_id, [t_a, t_b, v_a, v_b])

    # Trainer A dies right after its artifacts are prepared (before submitting); B dies after its
    # submitWork was mined but before the journal recorded it; validator A dies after its commit was
    # mined and before the journal recorded it (between commit and reveal).
    crash_after(t_a, "prepare")
    crash_after(t_b, "submit", before_journal=True)
    crash_after(v_a, "commit", before_journal=True)
    roles: list[RoleNode] = [t_a, t_b, v_a, v_b, keeper]
    restarted: list[str] = []
    while not all(r.finished for r in roles):
        try:
            drive(roles, finished(roles), timeout=120)
        except CrashError as crash:
            restarted.append(str(crash))
            i = roles.index(crash.role)
            roles[i] = type(crash.role)(crash.role.session, task_id, out=crash.role.out)  # type: ignore[call-arg]
    assert len(restarted) == 3, restarted

    counts = settle_counts(net, task_id)
    assert set(counts["submitted"].values()) == {1}
    assert len(counts["submitted"]) == 2
    for kind in ("committed", "revealed", "voted"):
        assert set(counts[kind].values()) == {1}, (kind, counts[kind])
        assert len(counts[kind]) == 2, (kind, counts[kind])
    assert set(counts["settled"].values()) == {1}
    assert set(counts["credited"].values()) == {1}
    assert all(v[0] == Verdict.ACCEPT and v[2] == 0 for v in decisions(net, task_id).values())
    # The restarted trainer reused its prepared artifacts: trained once.
    assert sum(1 for e in roles[0].journal.entries("prepare")) == 1


def test_state_upload_after_a_restart_and_an_ipfs_restart(net: Net) -> None:
    task_id = net.create_task(12, commit_duration=180)  # the validators wait for IPFS, not judge it
    trainers = [TrainerNode(net.session(i), task_id, out=Output(f"trainer-{i}")) for i in (13, 14)]
    validators = [ValidatorNode(net.session(i), task_id, out=Output(f"validator-{i}")) for i in (15, 16)]
    roles: list[RoleNode] = [*trainers, *validators]
    start(net, task_id, roles)
    # Both trainers submit; then the IPFS daemon goes away before they can upload the picked states.
    drive(roles, lambda: all(t.journal.is_done("submit", "0") for t in trainers), timeout=60)
    net.ipfs.stop()
    errors: list[str] = []
    drive(roles, lambda: len(errors) >= 2, timeout=150, on_error=lambda r, e: errors.append(f"{e}"))
    assert any("IPFS daemon" in e or "not answering" in e for e in errors), errors
    assert not any(t.journal.is_done("states", "0") for t in trainers)
    # A trainer restarted meanwhile still uploads its states (from disk) once IPFS is back.
    trainers[0] = TrainerNode(trainers[0].session, task_id, out=trainers[0].out)
    roles = [*trainers, *validators, InitiatorNode(net.session(12), task_id)]
    net.ipfs.start()
    drive(roles, finished(roles), timeout=120)
    assert all(v[0] == Verdict.ACCEPT for v in decisions(net, task_id).values())
    assert all(t.journal.is_done("states", "0") for t in trainers)
    counts = settle_counts(net, task_id)
    assert set(counts["submitted"].values()) == {1}
    assert _role_of(net, task_id, trainers[0].me) == Role.TRAINER


def _role_of(net: Net, task_id: int, address: str) -> Role:
    proto = net.session(1).proto
    role, _ = proto.client.call(proto.escrow.functions.participantOf(task_id, address))
    return Role(role)
