"""The colluding majority of test_net_appeal_overturns_a_colluding_majority.py (anvil, js-ipfs, the role
classes, a deployment with an AppealCourt), where nobody files an appeal by hand: two of three validators,
one minimum stake each, accept a cheater's forged work and reject an honest trainer's; the honest validator
(ten minimum stakes) revealed the opposite on both, and its node appeals both decisions by itself within the
round's window (protocol.roles.watch). The court overturns both: the victim is paid by the court instead of
slashed, the cheater slashed, the cartel slashed at the court and its shares forfeited, the honest validator
paid its share and its bonds back with a reward. A restarted node files nothing twice."""

from __future__ import annotations

from pathlib import Path

import pytest
from netharness import (
    COURT,
    ColludingMajority,
    Net,
    drive,
    events,
    finished,
    joined,
    submissions_settled,
    validators_settled,
)

from protocol.audit.books.appeals import appeal_reward
from protocol.contracts import ValidatorOutcome, Verdict
from protocol.roles.base import Output
from protocol.roles.validator import ValidatorNode
from protocol.roles.watch import Watch

pytestmark = [pytest.mark.chain, pytest.mark.ipfs, pytest.mark.slow]


@pytest.fixture
def appeal_net(net: Net, tmp_path: Path) -> Net:
    """A deployment of its own, with an AppealCourt, on the network tests' anvil and IPFS."""
    return net.own_deployment(tmp_path, appeals=COURT)


def test_the_honest_validator_appeals_the_cartels_decisions_by_itself(appeal_net: Net) -> None:
    net = appeal_net
    d = net.deployment
    court = d.appeal_court
    assert court is not None
    task_id = net.create_task(1, commit_duration=120, reveal_duration=60, vote_duration=60)
    cast = ColludingMajority.cast(net, task_id)
    victim, cheater, cartel, honest = cast.victim, cast.cheater, cast.cartel, cast.honest
    min_stake = honest.view.config.min_validator_stake
    honest.view.proto.allocate(task_id, 10 * min_stake)  # weight 10 on the line; the cartel 1 each
    roles = cast.roles
    drive(roles, joined(roles[1:]), timeout=90)
    net.warp_to_start(task_id)

    def both_filed() -> bool:
        return len(events(net, court, "AppealFiled", taskId=task_id)) == 2

    drive(roles, both_filed, timeout=500)
    index = {e["trainer"]: e["index"] for e in events(net, d.task_escrow, "WorkSubmitted", taskId=task_id)}
    proto = honest.view.proto
    assert proto.decisions_of(task_id, 0)[index[victim.me]] == Verdict.REJECT  # the cartel decided
    assert proto.decisions_of(task_id, 0)[index[cheater.me]] == Verdict.ACCEPT
    appeals = events(net, court, "AppealFiled", taskId=task_id)
    filed = {(e["index"], Verdict(e["original"]), e["appellant"]) for e in appeals}
    assert filed == {
        (index[victim.me], Verdict.REJECT, honest.me),
        (index[cheater.me], Verdict.ACCEPT, honest.me),
    }
    done = {e.key for e in honest.journal.entries(Watch.ACTION) if e.is_done}
    assert done == {f"0:{index[victim.me]}:0", f"0:{index[cheater.me]}:0"}

    # A restart of the honest node (its journal, a new process's state) files nothing again.
    restarted = ValidatorNode(net.session(7), task_id, out=Output("validator-7 again"))
    assert not restarted.watch.step()
    assert len(events(net, court, "AppealFiled", taskId=task_id)) == 2

    def decided() -> bool:
        return len(events(net, court, "AppealDecided", taskId=task_id)) == 2

    drive(roles, decided, timeout=400)
    assert all(e["overturned"] for e in events(net, court, "AppealDecided", taskId=task_id))
    net.deployer.increase_time(COURT.window)  # the window is the only thing left to wait for
    drive(roles, finished(roles), timeout=300)
    assert len(events(net, court, "AppealFiled", taskId=task_id)) == 2  # nothing more once overturned

    settled = submissions_settled(net, task_id)
    assert settled[victim.me] == (Verdict.NONE, 0, 0)  # paid by the court, not slashed
    decision, reward, slashed = settled[cheater.me]
    assert (decision, reward) == (Verdict.REJECT, 0)
    assert slashed > 0
    assert validators_settled(net, task_id) == {
        cartel[0].me: ValidatorOutcome.FORFEITED,
        cartel[1].me: ValidatorOutcome.FORFEITED,
        honest.me: ValidatorOutcome.REWARDED,
    }
    jurors = events(net, court, "JurorSettled", taskId=task_id)
    assert {e["validator"] for e in jurors if e["slashed"] > 0} == {cartel[0].me, cartel[1].me}
    claims = {e["account"]: int(e["amount"]) for e in events(net, court, "CourtClaimed")}
    rate = proto.round_result_of(task_id, 0)[0]
    config = proto.task_config(task_id)
    work_units = proto.submission_of(task_id, 0, index[victim.me])[1]
    owed = appeal_reward(rate, work_units, config.reward_per_round, config.validator_share_bps)
    assert 0 < owed <= rate * work_units
    assert sum(e["toVictim"] for e in jurors) == owed
    assert claims[victim.me] == owed  # the victim did nothing: the court paid it what it was owed
    assert claims[honest.me] > 2 * COURT.bond  # both bonds back and the appellant's rewards
    assert proto.token_balance(court.address) == 0
