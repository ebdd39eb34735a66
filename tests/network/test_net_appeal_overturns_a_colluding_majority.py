"""The colluding majority of test_net_colluding_majority.py, on a deployment with an AppealCourt (anvil,
js-ipfs, the role classes; the CLI for one appeal): two of three validators, one minimum stake each, accept a
cheater's forged work and reject an honest trainer's; the third validator holds ten minimum stakes. The
ballot counts seats, so the cartel decides; the appeals count stake. The victim appeals its rejection with
`trustrl appeal`, the honest validator the cheater's acceptance; the validators drawn re-check the one
submission with their own verification (the cartel keeps lying) and the stake-weighted majority overturns
both decisions. Then: the cheater is slashed by the escrow instead of paid, the victim is paid by the court
out of the cartel's slashes instead of slashed, the cartel is slashed on both appeals and forfeits its
shares, the honest validator is paid its share and the appellants get their bonds back with a reward;
every token is accounted for, and the audit (the court's events replayed, the work re-verified) is clean.
(Without a court the same cartel wins: test_net_colluding_majority.py.)"""

from __future__ import annotations

import json
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
from protocol.audit.runner import audit, open_target
from protocol.contracts import ValidatorOutcome, Verdict
from protocol.ipfs import ArtifactStore

pytestmark = [pytest.mark.chain, pytest.mark.ipfs, pytest.mark.slow]


@pytest.fixture
def appeal_net(net: Net, tmp_path: Path) -> Net:
    """A deployment of its own, with an AppealCourt, on the network tests' anvil and IPFS."""
    return net.own_deployment(tmp_path, appeals=COURT)


def test_appeals_overturn_a_colluding_majority_and_the_cartel_pays(appeal_net: Net) -> None:
    net = appeal_net
    d = net.deployment
    court = d.appeal_court
    assert court is not None
    task_id = net.create_task(1, commit_duration=120, reveal_duration=60, vote_duration=60)
    cast = ColludingMajority.cast(net, task_id, auto_appeal=False)  # the appeals here are filed by hand
    bystander, victim, cheater = cast.bystander, cast.victim, cast.cheater
    cartel, honest = cast.cartel, cast.honest
    min_stake = honest.view.config.min_validator_stake
    honest.view.proto.allocate(task_id, 10 * min_stake)  # weight 10 on the line; the cartel 1 each
    roles = cast.roles
    drive(roles, joined(roles[1:]), timeout=90)
    net.warp_to_start(task_id)
    drive(roles, lambda: bool(events(net, d.task_escrow, "RoundFinalized", taskId=task_id)), timeout=300)

    index = {e["trainer"]: e["index"] for e in events(net, d.task_escrow, "WorkSubmitted", taskId=task_id)}
    proto = honest.view.proto
    assert proto.decisions_of(task_id, 0)[index[victim.me]] == Verdict.REJECT  # the cartel decided
    assert proto.decisions_of(task_id, 0)[index[cheater.me]] == Verdict.ACCEPT
    victim_before = victim.view.proto.token_balance()
    filed = net.cli(
        "appeal", *net.account(3), "--task", str(task_id), "--round", "0", "--index", str(index[victim.me]),
        timeout=240,
    )  # fmt: skip
    assert filed.returncode == 0, filed.stdout + filed.stderr
    assert "appealed the REJECT decision" in filed.stdout
    again = net.cli(
        "appeal", *net.account(3), "--task", str(task_id), "--round", "0", "--index", str(index[victim.me]),
        timeout=240,
    )  # fmt: skip
    assert again.returncode != 0
    assert "already under appeal" in again.stdout + again.stderr
    proto.approve(court.address, COURT.bond)
    proto.appeal(task_id, 0, index[cheater.me])
    status = net.cli(
        "task", "status", str(task_id), "--network", str(net.network_file), "--json", timeout=240
    )
    assert status.returncode == 0, status.stdout + status.stderr
    shown = {(a["index"], a["original"], a["appellant"]) for a in json.loads(status.stdout)["appeals"]}
    assert shown == {(index[victim.me], "REJECT", victim.me), (index[cheater.me], "ACCEPT", honest.me)}

    def decided() -> bool:
        return len(events(net, court, "AppealDecided", taskId=task_id)) == 2

    drive(roles, decided, timeout=400)
    assert all(e["overturned"] for e in events(net, court, "AppealDecided", taskId=task_id))
    net.deployer.increase_time(COURT.window)  # the window is the only thing left to wait for
    drive(roles, finished(roles), timeout=300)

    settled = submissions_settled(net, task_id)
    assert settled[victim.me] == (Verdict.NONE, 0, 0)  # paid by the court, not slashed
    decision, reward, slashed = settled[cheater.me]
    assert (decision, reward) == (Verdict.REJECT, 0)
    assert slashed > 0
    assert settled[bystander.me][0] == Verdict.ACCEPT
    assert validators_settled(net, task_id) == {
        cartel[0].me: ValidatorOutcome.FORFEITED,
        cartel[1].me: ValidatorOutcome.FORFEITED,
        honest.me: ValidatorOutcome.REWARDED,
    }
    jurors = events(net, court, "JurorSettled", taskId=task_id)
    slashed_cartel = {e["validator"] for e in jurors if e["slashed"] > 0}
    assert slashed_cartel == {cartel[0].me, cartel[1].me}
    claims = {e["account"]: int(e["amount"]) for e in events(net, court, "CourtClaimed")}
    rate = proto.round_result_of(task_id, 0)[0]
    config = proto.task_config(task_id)
    work_units = proto.submission_of(task_id, 0, index[victim.me])[1]
    owed = appeal_reward(rate, work_units, config.reward_per_round, config.validator_share_bps)
    assert 0 < owed <= rate * work_units  # what it would have earned accepted, diluting the others
    assert sum(e["toVictim"] for e in jurors) == owed  # the cartel's slashes covered what it was owed
    assert claims[victim.me] > owed + COURT.bond  # its pay, its bond back and the appellant's reward
    assert victim.view.proto.token_balance() - victim_before > owed
    assert claims[honest.me] > COURT.bond  # its bond back and a reward
    assert proto.token_balance(court.address) == 0  # everything the court took, it paid out

    # The auditor replays the court's events too, re-verifies every submission from IPFS and agrees with the
    # decisions as the appeals left them: nothing to report.
    with ArtifactStore(net.ipfs.api_url, retries=1, find_timeout=1.0) as store:
        result = audit(
            open_target(net.anvil.rpc_url, d.addresses), task=task_id, store=store, gas=False, accuracy=False
        )
    assert [x.line() for x in result.discrepancies] == []
