"""A validator's watch (protocol.roles.watch.Watch, the class its node runs) appeals by itself, on a real
anvil with an AppealCourt: every decided decision that contradicts the verdict it revealed and journalled
(with a clear margin), once, within the round's window, when its wallet holds the bond. The honeypot
residual of docs/protocol.md ("A REJECT is a vote, not a proof"): a cartel rejects the initiator's own bait
when it submits good work, the honest acceptor's watch appeals, the court overturns and `slashLazy` then
refuses to slash it. And the journal: a restart files an intent that never left once, and reconciles one
that did."""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from chainworld import COURT, STAKE, World, h, judge_appeal, make_world, reverts

from protocol.contracts import ProtocolClient, Verdict
from protocol.journal import Journal
from protocol.roles.base import Output
from protocol.roles.watch import Watch

if TYPE_CHECKING:
    from protocol.chain import ChainClient

pytestmark = pytest.mark.chain

A, R, U = Verdict.ACCEPT, Verdict.REJECT, Verdict.UNAVAILABLE
MIN = STAKE // 10
MODEL = h("model", 1)
BAIT = 1
"""The bait's index: trainer 2 of 3 submits second."""
CLEAR: dict[Verdict, dict[str, object]] = {
    A: {"margin": 0.0, "exact": False},
    R: {"margin": None, "exact": True},
    U: {"margin": None, "exact": False},
}
"""What a validator's check journals with a verdict clear of every tolerance's edge (`clear_margin`)."""


@pytest.fixture(scope="module")
def world(chain: ChainClient, client_for: Callable[[int], ChainClient]) -> World:
    """A deployment with an AppealCourt (overrides conftest's); nobody has approved the court."""
    return make_world(chain, client_for, appeals=COURT)


def decided_round(
    world: World,
    rows: Mapping[int, Sequence[Verdict]],
    *,
    trainers: Sequence[ProtocolClient] | None = None,
    honeypot: bool = False,
) -> int:
    """A two-round task whose round 0 (submitted by `trainers`, default the three) is revealed with `rows`
    (person index -> verdicts), voted, closed and finalised: its appeal window is open. Validators 4 and 5
    allocate MIN, validator 6 ten times that (most of an appeal's draws). With `honeypot`, round 0 holds
    trainer 2's consenting bait (index 1), revealed."""
    chosen = world.trainers if trainers is None else list(trainers)
    task_id = world.create_task(num_rounds=2, quorum=2)
    v4, v5, v6 = world.validators
    bait = world.trainers[BAIT]
    world.join(task_id, chosen)
    world.join(task_id, validators=[v4, v5], allocation=MIN)
    world.join(task_id, validators=[v6], allocation=10 * MIN)
    salt = h("bait salt", task_id)
    if honeypot:
        world.initiator.commit_honeypot(task_id, 0, bait.address, salt)
    world.start(task_id)
    world.submit_all(task_id, 0, chosen)
    world.draw(task_id)
    people = world.people
    world.ballot(task_id, 0, {people[i]: row for i, row in rows.items()}, {people[i]: MODEL for i in rows})
    world.close_ballot(task_id, 0)
    world.initiator.finalize_round(task_id)
    if honeypot:
        bait.reveal_honeypot(task_id, 0, BAIT, bait.address, salt)
    return task_id


def watch_of(
    p: ProtocolClient, task_id: int, journal: Path, verdicts: Sequence[Verdict] = (), **kwargs: object
) -> tuple[Watch, io.StringIO]:
    """`p`'s watch over `task_id` with the journal at `journal`, which holds `p`'s round-0 `verdicts` as its
    validator node journals them (`verdict` facts), each with a clear margin (an ACCEPT bit-exact on every
    tolerance, a REJECT on an exact check); and what it logs."""
    j = Journal(journal)
    for index, verdict in enumerate(verdicts):
        if j.entry("verdict", f"0:{index}") is None:
            j.fact("verdict", f"0:{index}", verdict=int(verdict), reasons=[], **CLEAR[verdict])
    log = io.StringIO()
    return Watch(p, task_id, j, Output("watch", stream=log), **kwargs), log  # type: ignore[arg-type]


def filed(world: World, task_id: int) -> list[tuple[int, str]]:
    """(index, appellant) of every AppealFiled of the task's round 0."""
    court = world.deployment.appeal_court
    assert court is not None
    logs = world.chain.get_logs(court, "AppealFiled", world.deployment.addresses.block, taskId=task_id)
    return [(int(e["args"]["index"]), str(e["args"]["appellant"])) for e in logs if e["args"]["round"] == 0]


def drawn_and_judged(
    world: World, task_id: int, index: int, verdict_of: Callable[[ProtocolClient], Verdict]
) -> None:
    """Draw the appeal's jury, let each drawn validator vote `verdict_of(it)`, decide it after the reveals."""
    p = world.initiator
    world.chain.mine(2)
    assert p.draw_appeal(task_id, 0, index) is not None
    draws = {v: p.appeal_draws_of(task_id, 0, index, v.address) for v in world.validators}
    assert draws[world.validators[2]] * 2 > COURT.draws, draws  # validator 6 decides the appeal
    judge_appeal(world, task_id, index, {v: verdict_of(v) for v, d in draws.items() if d})
    world.warp_to(p.appeal_of(task_id, 0, index).reveal_end)
    p.settle_appeal(task_id, 0, index)


def test_the_honest_acceptor_appeals_the_cartels_rejection_of_a_bait_and_is_not_slashed(
    world: World, tmp_path: Path
) -> None:
    # The cartel (4, 5) rejects the bait's good work, honest 6 accepted it: the ballot decides REJECT, and
    # without an appeal 6 would lose lazySlashBps of its allocation once the window closed.
    rows = {4: [A, R, A], 5: [A, R, A], 6: [A, A, A]}
    task_id = decided_round(world, rows, honeypot=True)
    v4, v5, v6 = world.validators
    p = world.initiator
    assert p.decisions_of(task_id, 0)[BAIT] == R
    cartel = [watch_of(v, task_id, tmp_path / f"{i}.jsonl", rows[i])[0] for i, v in ((4, v4), (5, v5))]
    assert [w.step() for w in cartel] == [False, False]  # their verdicts are the decisions
    watch, log = watch_of(v6, task_id, tmp_path / "6.jsonl", rows[6])
    balance = v6.token_balance()
    assert watch.step()  # approves the court for the bond and appeals, unprompted
    assert filed(world, task_id) == [(BAIT, v6.address)]
    assert "appealed the REJECT decision on submission 1 of round 0" in log.getvalue()
    assert v6.token_balance() == balance - COURT.bond
    assert not watch.step()  # pending: nothing more to do
    drawn_and_judged(world, task_id, BAIT, lambda v: R if v in (v4, v5) else A)
    assert p.appeal_of(task_id, 0, BAIT).overturned
    assert not watch.step()
    world.warp_to(p.appeal_window_end(task_id, 0))
    before = p.allocation_of(task_id, v6.address)
    reverts("HoneypotNotRejected", decision=Verdict.NONE)(
        lambda: world.outsider.slash_lazy(task_id, 0, v6.address)
    )
    assert p.allocation_of(task_id, v6.address) == before
    assert p.appeal_credit_of(v6.address) >= COURT.bond  # its bond back, and a share of the cartel's slash
    assert not watch.step()
    assert watch.journal.is_done(Watch.ROUND, "0")  # the window closed: the round leaves the watch


def test_every_contradiction_is_appealed_once_and_nothing_else(world: World, tmp_path: Path) -> None:
    # Decisions UNAVAILABLE, REJECT, ACCEPT, ACCEPT, REJECT; validator 6 revealed ACCEPT, ACCEPT, REJECT,
    # UNAVAILABLE (it did not see that work: never appealed) and REJECT (agrees).
    rows = {4: [U, R, A, A], 5: [U, R, A, A], 6: [A, A, R, U]}
    task_id = decided_round(world, rows, trainers=[*world.trainers, world.people[7]])
    v6 = world.validators[2]
    assert world.initiator.decisions_of(task_id, 0) == [U, R, A, A]
    watch, log = watch_of(v6, task_id, tmp_path / "6.jsonl", rows[6])
    while watch.step():
        pass
    assert sorted(filed(world, task_id)) == [(0, v6.address), (1, v6.address), (2, v6.address)]
    assert log.getvalue().count("appealed the") == 3
    # A restart of the node (a new watch on the same journal) files nothing more.
    again, _ = watch_of(v6, task_id, tmp_path / "6.jsonl")
    assert not again.step()
    assert len(filed(world, task_id)) == 3


ROWS = {4: [R, R, A], 5: [R, R, A], 6: [A, A, A]}
"""Two decided REJECTs that validator 6 accepted (indices 0 and 1)."""


def test_a_restart_sends_an_unsent_intent_once_and_reconciles_a_sent_one(
    world: World, tmp_path: Path
) -> None:
    task_id = decided_round(world, ROWS)
    v6 = world.validators[2]
    journal = Journal(tmp_path / "6.jsonl")
    # Crashed after journalling both intents: index 0's transaction never left, index 1's was mined.
    journal.intent(Watch.ACTION, "0:0:0", decision="REJECT", mine="ACCEPT")
    journal.intent(Watch.ACTION, "0:1:0", decision="REJECT", mine="ACCEPT")
    v6.approve(str(world.deployment.appeal_court.address), COURT.bond)  # type: ignore[union-attr]
    v6.appeal(task_id, 0, 1)
    watch, _ = watch_of(v6, task_id, tmp_path / "6.jsonl", ROWS[6])
    assert watch.step()
    assert not watch.step()
    assert sorted(filed(world, task_id)) == [(0, v6.address), (1, v6.address)]  # each once
    assert watch.journal.open_intents() == []
    assert watch.journal.entry(Watch.ACTION, "0:1:0").data["reconciled"]  # type: ignore[union-attr]


def test_a_decision_appealed_by_someone_else_is_skipped_and_a_refused_attempt_ends_it(
    world: World, tmp_path: Path
) -> None:
    task_id = decided_round(world, ROWS)
    v6 = world.validators[2]
    other = world.people[7]
    other.approve(str(world.deployment.appeal_court.address), 2 * COURT.bond)  # type: ignore[union-attr]
    other.appeal(task_id, 0, 0)
    watch, log = watch_of(v6, task_id, tmp_path / "6.jsonl", ROWS[6])
    assert watch.step()
    assert sorted(filed(world, task_id)) == [(0, other.address), (1, v6.address)]
    assert not watch.step()  # index 0 is under appeal by someone else
    # The court upholds index 0 with its quorum (every juror says REJECT): a new attempt is refused once
    # (`AlreadyAppealed`, done, not an error) and never tried again.
    drawn_and_judged(world, task_id, 0, lambda v: R)
    assert not world.initiator.appeal_of(task_id, 0, 0).overturned
    assert watch.step()
    assert "did not appeal the REJECT decision on submission 0 of round 0" in log.getvalue()
    assert watch.journal.entry(Watch.ACTION, "0:0:1").data["refused"] == "AlreadyAppealed"  # type: ignore[union-attr]
    assert not watch.step()
    assert len(filed(world, task_id)) == 2


def test_without_the_bond_it_says_so_and_appeals_once_it_has_it(world: World, tmp_path: Path) -> None:
    task_id = decided_round(world, {4: [A, R, A], 5: [A, R, A], 6: [A, A, A]})
    v6 = world.validators[2]
    keeper = world.people[8]
    token = world.deployment.token
    balance = v6.token_balance()
    v6.client.transact(token.functions.transfer(keeper.address, balance))
    watch, log = watch_of(v6, task_id, tmp_path / "6.jsonl", [A, A, A], tokens=lambda x: f"{x / 1e18:g}")
    assert not watch.step()
    assert not watch.step()
    assert log.getvalue().count("cannot appeal the REJECT decision on submission 1 of round 0") == 1
    assert "the bond is 1 tokens" in log.getvalue()
    assert filed(world, task_id) == []
    keeper.client.transact(token.functions.transfer(v6.address, COURT.bond))
    assert watch.step()
    assert filed(world, task_id) == [(1, v6.address)]


def test_after_the_window_or_switched_off_it_files_nothing(world: World, tmp_path: Path) -> None:
    task_id = decided_round(world, ROWS)
    v6 = world.validators[2]
    off, _ = watch_of(v6, task_id, tmp_path / "off.jsonl", ROWS[6], enabled=False)
    assert not off.step()
    world.warp_to(world.initiator.appeal_window_end(task_id, 0))
    watch, _ = watch_of(v6, task_id, tmp_path / "6.jsonl", ROWS[6])
    assert not watch.step()
    assert filed(world, task_id) == []
    assert watch.journal.is_done(Watch.ROUND, "0")
