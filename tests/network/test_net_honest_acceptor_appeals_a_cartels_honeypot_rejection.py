"""The honeypot residual of docs/protocol.md ("A REJECT is a vote, not a proof"), on anvil, js-ipfs and the
role classes, with an AppealCourt and a settlement grace longer than an appeal: the initiator plants its
one-round task's honeypot on its own bait, which submits *good* work in that round (its consent to the
reveal signed as a bait's node signs it); a colluding majority (two of three validators, one minimum stake
each) rejects it, the honest validator (ten minimum stakes) accepted it. Its node appeals the REJECT by
itself (nobody files by hand), the court overturns it, and when the initiator's client reveals the
honeypot and tries to slash the acceptor, `slashLazy` refuses: nobody is slashed for accepting good work,
and the cartel is slashed at the court instead. (Without the appeal the REJECT stands and the acceptor
loses `lazySlashBps` of its allocation: tests/contracts/test_honeypots_wait_for_the_appeal_court.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest
from netharness import COURT, ColludingMajority, Net, drive, events, finished, joined

from protocol.baits import RoundScope, create_plan, load_plan, schedule, write_consent
from protocol.contracts import Verdict
from protocol.roles.base import Output
from protocol.roles.initiator import InitiatorNode

pytestmark = [pytest.mark.chain, pytest.mark.ipfs, pytest.mark.slow]

GRACE = 2 * (COURT.window + COURT.commit_duration + COURT.reveal_duration)
"""Longer than an appeal (`task create` refuses honeypots otherwise): the slash can wait for the court."""


@pytest.fixture
def appeal_net(net: Net, tmp_path: Path) -> Net:
    """A deployment of its own, with an AppealCourt and the grace, on the network tests' anvil and IPFS."""
    return net.own_deployment(tmp_path, appeals=COURT, settlement_grace=GRACE)


def plan_with_honeypot_in_round_0(directory: Path, scope: RoundScope, bait: str) -> Path:
    """A bait plan file (rate 1/2) whose one-round task holds a honeypot: fresh plans until one does."""
    for attempt in range(100):
        path = directory / f"plan-{attempt}.json"
        if schedule(create_plan(path, 0.5, [bait]), scope, 1) == {0: bait}:
            return path
    raise AssertionError("no plan with a honeypot in round 0 in 100 draws")


def test_the_acceptor_of_good_bait_work_appeals_the_cartel_and_is_not_slashed(
    appeal_net: Net, tmp_path: Path
) -> None:
    net = appeal_net
    d = net.deployment
    court = d.appeal_court
    assert court is not None
    task_id = net.create_task(1, commit_duration=120, reveal_duration=60, vote_duration=60)
    cast = ColludingMajority.cast(net, task_id)
    bait, cartel, honest = cast.victim, cast.cartel, cast.honest  # the cartel rejects the bait unchecked
    scope = RoundScope(bait.session.chain_id, d.addresses.task_escrow, task_id)
    plan = load_plan(plan_with_honeypot_in_round_0(tmp_path, scope, bait.me))
    # The bait trains honestly in its honeypot round; its consent is the signature a bait's node writes.
    write_consent(plan, scope, d.addresses.honeypot_registry, 0, bait.session.client.account)
    initiator = InitiatorNode(net.session(1), task_id, honeypots=plan, out=Output("initiator"))
    roles = [initiator, *cast.roles[1:]]
    honest.view.proto.allocate(task_id, 10 * honest.view.config.min_validator_stake)

    def committed() -> bool:
        return bool(events(net, d.honeypot_registry, "HoneypotCommitted", taskId=task_id))

    drive(roles, lambda: joined(roles[1:])() and committed(), timeout=90)
    net.warp_to_start(task_id)

    def appeals_decided() -> bool:
        return len(events(net, court, "AppealDecided", taskId=task_id)) == 2

    drive(roles, appeals_decided, timeout=500)
    index = {e["trainer"]: e["index"] for e in events(net, d.task_escrow, "WorkSubmitted", taskId=task_id)}
    proto = honest.view.proto
    assert proto.decisions_of(task_id, 0)[index[bait.me]] == Verdict.REJECT  # the cartel decided the bait
    filed = {(e["index"], e["appellant"]) for e in events(net, court, "AppealFiled", taskId=task_id)}
    assert (index[bait.me], honest.me) in filed  # by the honest node, unprompted
    assert proto.appeal_of(task_id, 0, index[bait.me]).overturned
    assert not events(net, d.honeypot_registry, "LazySlashed", taskId=task_id)
    net.deployer.increase_time(COURT.window)  # the window closes: the initiator may try its slash
    drive(roles, finished(roles), timeout=300)

    revealed = events(net, d.honeypot_registry, "HoneypotRevealed", taskId=task_id)
    assert [(e["round"], e["submitter"], Verdict(e["decision"])) for e in revealed] == [
        (0, bait.me, Verdict.REJECT)
    ]
    finished_ = initiator.journal.entry("honeypot-finished", "0")
    assert finished_ is not None
    assert finished_.data["decision"] == "overturned"  # it tried, and `slashLazy` refused
    assert not events(net, d.honeypot_registry, "LazySlashed", taskId=task_id)
    slashed = {e["staker"] for e in events(net, d.stake_manager, "Slashed", taskId=task_id)}
    assert honest.me not in slashed
    assert bait.me not in slashed  # its good work was paid by the court, not slashed
    assert {cartel[0].me, cartel[1].me} <= slashed
