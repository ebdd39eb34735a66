"""With an AppealCourt, `slashLazy` slashes only when the honeypot's ballot decision AND the court-settled
decision are both REJECT: it waits while the round's appeal window is open or an appeal of the honeypot is
pending (the court's `AppealWindowOpen` / `AppealPending`), a REJECT the court overturned slashes nobody
(the review's proof of concept: an honest validator lost 20% of its allocation after the court had
overturned the cartel's REJECT), and an ACCEPT the court turned into a REJECT slashes nobody either (the
court's majority is > 1/2 of its draws, weaker than the ballot's 2/3)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest
from chainworld import COURT, STAKE, World, h, judge_appeal, make_world, reverts

from protocol.audit import Kind
from protocol.audit.runner import audit, open_target
from protocol.contracts import ProtocolClient, Verdict

if TYPE_CHECKING:
    from protocol.chain import ChainClient

pytestmark = pytest.mark.chain

A, R = Verdict.ACCEPT, Verdict.REJECT
PARAMS = COURT
MIN = STAKE // 10
MODEL = h("model", 1)
SALT = h("bait salt")
BAIT = 1
"""The bait's index: trainer 2 of 3 submits second."""


@pytest.fixture(scope="module")
def world(chain: ChainClient, client_for: Callable[[int], ChainClient]) -> World:
    """A deployment with an AppealCourt (overrides conftest's)."""
    return make_world(chain, client_for, appeals=PARAMS, approve_court=True)


def honeypot_round(world: World, rows: dict[int, list[Verdict]]) -> tuple[int, ProtocolClient]:
    """A two-round task whose round 0 holds a honeypot by trainer 2 (index 1, its own consenting bait):
    validators 4 and 5 allocate MIN, validator 6 ten times that (so it holds most of an appeal's draws);
    `rows` (person index -> verdicts) are revealed, the ballot closed, the round finalised: the appeal
    window is open. Returns the task and the bait."""
    task_id = world.create_task(num_rounds=2, quorum=2)
    v4, v5, v6 = world.validators
    bait = world.trainers[BAIT]
    world.join(task_id, world.trainers)
    world.join(task_id, validators=[v4, v5], allocation=MIN)
    world.join(task_id, validators=[v6], allocation=10 * MIN)
    world.initiator.commit_honeypot(task_id, 0, bait.address, SALT)
    world.start(task_id)
    world.submit_all(task_id, 0)
    world.draw(task_id)
    people = world.people
    world.ballot(task_id, 0, {people[i]: row for i, row in rows.items()}, {people[i]: MODEL for i in rows})
    world.close_ballot(task_id, 0)
    world.initiator.finalize_round(task_id)
    bait.reveal_honeypot(task_id, 0, BAIT, bait.address, SALT)
    return task_id, bait


def appeal_and_judge(world: World, task_id: int, verdict_of: Callable[[ProtocolClient], Verdict]) -> None:
    """Appeal the bait's decision, draw the jury, let each drawn juror vote `verdict_of(juror)`."""
    appellant = world.people[7]
    appellant.appeal(task_id, 0, BAIT)
    world.chain.mine(2)
    assert appellant.draw_appeal(task_id, 0, BAIT) is not None
    draws = {v: appellant.appeal_draws_of(task_id, 0, BAIT, v.address) for v in world.validators}
    assert draws[world.validators[2]] * 2 > PARAMS.draws, draws  # validator 6 decides the appeal
    judge_appeal(world, task_id, BAIT, {v: verdict_of(v) for v, d in draws.items() if d})


def lazy_flags(world: World, task_id: int) -> list[str]:
    """The auditor's `lazy_validator` flags of the task (their subjects)."""
    target = open_target(world.chain.rpc_url, world.deployment.addresses)
    result = audit(target, task=task_id, gas=False, accuracy=False)
    return [d.subject for d in result.discrepancies if d.kind == Kind.LAZY_VALIDATOR]


def test_a_rejection_the_court_overturned_slashes_nobody(world: World) -> None:
    # The cartel (4, 5) rejects the bait's good work, honest 6 accepts it; the court overturns the REJECT.
    task_id, _ = honeypot_round(world, {4: [A, R, A], 5: [A, R, A], 6: [A, A, A]})
    v4, v5, v6 = world.validators
    p = world.initiator
    assert p.decisions_of(task_id, 0)[BAIT] == R
    window_end = p.appeal_window_end(task_id, 0)
    reverts("AppealWindowOpen", closesAt=window_end)(
        lambda: world.outsider.slash_lazy(task_id, 0, v6.address)
    )
    appeal_and_judge(world, task_id, lambda v: R if v in (v4, v5) else A)
    world.warp_to(window_end)
    reverts("AppealPending", index=BAIT)(lambda: world.outsider.slash_lazy(task_id, 0, v6.address))
    world.people[7].settle_appeal(task_id, 0, BAIT)
    assert p.appeal_of(task_id, 0, BAIT).overturned
    before = p.allocation_of(task_id, v6.address)
    reverts("HoneypotNotRejected", decision=Verdict.NONE)(
        lambda: world.outsider.slash_lazy(task_id, 0, v6.address)
    )
    assert p.allocation_of(task_id, v6.address) == before
    assert not p.lazy_slashed(task_id, 0, v6.address)
    assert lazy_flags(world, task_id) == []  # nor does the auditor call the acceptor lazy


def test_an_acceptance_the_court_overturned_slashes_nobody(world: World) -> None:
    # 4 and 5 accept the bait, 6 rejects it: decided ACCEPT. 6 holds most of the appeal's draws and turns
    # the decision into REJECT; the ballot's ACCEPT still stands for the honeypot.
    task_id, _ = honeypot_round(world, {4: [A, A, A], 5: [A, A, A], 6: [A, R, A]})
    v4, v5, v6 = world.validators
    p = world.initiator
    assert p.decisions_of(task_id, 0)[BAIT] == A
    appeal_and_judge(world, task_id, lambda v: R if v is v6 else A)
    world.warp_to(p.appeal_window_end(task_id, 0))
    world.people[7].settle_appeal(task_id, 0, BAIT)
    assert p.appeal_of(task_id, 0, BAIT).overturned
    for v in (v4, v5):
        reverts("HoneypotNotRejected", decision=A)(
            lambda v=v: world.outsider.slash_lazy(task_id, 0, v.address)
        )
        assert p.allocation_of(task_id, v.address) == MIN


def test_a_rejection_that_stands_slashes_the_acceptor_once_the_window_closed(world: World) -> None:
    task_id, _ = honeypot_round(world, {4: [A, R, A], 5: [A, R, A], 6: [A, A, A]})
    v6 = world.validators[2]
    p = world.initiator
    window_end = p.appeal_window_end(task_id, 0)
    reverts("AppealWindowOpen", closesAt=window_end)(
        lambda: world.outsider.slash_lazy(task_id, 0, v6.address)
    )
    world.warp_to(window_end)  # nobody appealed: the REJECT is settled
    before = p.allocation_of(task_id, v6.address)
    slashed = world.outsider.slash_lazy(task_id, 0, v6.address)
    assert slashed == before * p.lazy_slash_bps() // 10_000 > 0
    assert p.allocation_of(task_id, v6.address) == before - slashed
    (flag,) = lazy_flags(world, task_id)
    assert v6.address in flag
