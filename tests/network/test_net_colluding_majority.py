"""Two of three validators collude on a real network (anvil, js-ipfs, the role classes): they accept a
cheater's forged work and reject an honest trainer's. With the whole pool judging every submission (no
committees) two thirds of the seats decide alone, so the cartel wins on chain: the
cheater is paid, the honest victim slashed, the colluders paid and the one honest validator forfeits its
share. What answers it today is the audit, which re-verifies every submission and names both wrong
decisions with the evidence an appeal would carry (`scripts/bench_security.py` prints this row OPEN; the
docs' "Collusion" section says what committees change). This test pins that state: when an on-chain answer
lands, its expectations flip."""

from __future__ import annotations

import pytest
from netharness import (
    TRAINER_SLASH,
    ColludingMajority,
    Net,
    drive,
    events,
    finished,
    joined,
    submissions_settled,
    validators_settled,
)

from protocol.audit import Kind
from protocol.audit.runner import audit, open_target
from protocol.contracts import ValidatorOutcome, Verdict
from protocol.ipfs import ArtifactStore

pytestmark = [pytest.mark.chain, pytest.mark.ipfs, pytest.mark.slow]


def test_a_colluding_two_thirds_decides_on_chain_and_the_audit_names_it(net: Net) -> None:
    task_id = net.create_task(1, commit_duration=120, reveal_duration=60, vote_duration=60)
    cast = ColludingMajority.cast(net, task_id)
    bystander, victim, cheater = cast.bystander, cast.victim, cast.cheater
    cartel, honest = cast.cartel, cast.honest
    roles = cast.roles
    drive(roles, joined(roles[1:]), timeout=90)
    net.warp_to_start(task_id)
    drive(roles, finished(roles), timeout=300)

    d = net.deployment
    settled = submissions_settled(net, task_id)
    decision, reward, slashed = settled[cheater.me]
    assert (decision, slashed) == (Verdict.ACCEPT, 0)
    assert reward > 0
    assert settled[victim.me] == (Verdict.REJECT, 0, TRAINER_SLASH)
    assert settled[bystander.me][0] == Verdict.ACCEPT
    assert validators_settled(net, task_id) == {
        cartel[0].me: ValidatorOutcome.REWARDED,
        cartel[1].me: ValidatorOutcome.REWARDED,
        honest.me: ValidatorOutcome.FORFEITED,  # its verdicts were right; the decisions were not
    }

    with ArtifactStore(net.ipfs.api_url, retries=1, find_timeout=1.0) as store:
        result = audit(
            open_target(net.anvil.rpc_url, d.addresses), task=task_id, store=store, gas=False, accuracy=False
        )
    index = {e["trainer"]: e["index"] for e in events(net, d.task_escrow, "WorkSubmitted", taskId=task_id)}
    found = sorted((f.kind, f.round, f.subject, f.expected, f.actual) for f in result.discrepancies)
    assert found == sorted(
        [
            (Kind.VERDICT, 0, f"submission {index[victim.me]} ({victim.me})", "ACCEPT", "REJECT"),
            (Kind.VERDICT, 0, f"submission {index[cheater.me]} ({cheater.me})", "REJECT", "ACCEPT"),
        ]
    )
