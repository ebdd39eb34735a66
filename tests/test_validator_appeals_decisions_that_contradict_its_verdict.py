"""The watch's decision function (protocol.roles.watch): which decided decisions a validator appeals by
itself. Every (own verdict, decision) pair, the appeal window's edges, each standing at the court, the
attempts it already filed, and the last attempt it files (the second)."""

from __future__ import annotations

import itertools

import pytest

from protocol.contracts import ZERO_ADDRESS, Appeal, Verdict
from protocol.roles.watch import LAST_AUTO_ATTEMPT, Case, Standing, contradicts, standing_of, to_appeal

A, R, U, N = Verdict.ACCEPT, Verdict.REJECT, Verdict.UNAVAILABLE, Verdict.NONE

APPEALED = {(A, R), (A, U), (R, A)}
"""The (own verdict, decision) pairs the court can settle for this validator's side."""


@pytest.mark.parametrize(("mine", "decision"), list(itertools.product(Verdict, Verdict)))
def test_every_verdict_and_decision_pair(mine: Verdict, decision: Verdict) -> None:
    assert contradicts(mine, decision) == ((mine, decision) in APPEALED)
    case = Case(3, mine, decision, Standing.NONE, 0)
    due = to_appeal([case], finalised=True, now=100, window_end=101, tried=())
    assert due == ([case] if (mine, decision) in APPEALED else [])


def test_its_own_unavailable_or_no_verdict_is_never_appealed() -> None:
    for mine in (U, N):
        assert not any(contradicts(mine, d) for d in Verdict)


def test_a_reject_against_unavailable_is_not_appealed() -> None:
    # Both are the court's not-ACCEPT side: an appeal could only be upheld, and its bond lost.
    assert not contradicts(R, U)


def test_only_within_the_window_of_a_finalised_round() -> None:
    case = Case(0, A, R, Standing.NONE, 0)
    assert to_appeal([case], finalised=True, now=99, window_end=100, tried=()) == [case]
    assert to_appeal([case], finalised=True, now=100, window_end=100, tried=()) == []
    assert to_appeal([case], finalised=True, now=10**9, window_end=100, tried=()) == []
    assert to_appeal([case], finalised=False, now=0, window_end=100, tried=()) == []


@pytest.mark.parametrize(
    ("standing", "due"),
    [(Standing.NONE, True), (Standing.PENDING, False), (Standing.OVERTURNED, False), (Standing.STANDS, True)],
)
def test_a_decision_under_appeal_or_overturned_is_skipped(standing: Standing, due: bool) -> None:
    case = Case(1, R, A, standing, 0 if standing is Standing.NONE else 1)
    assert to_appeal([case], finalised=True, now=0, window_end=1, tried=()) == ([case] if due else [])


def test_an_attempt_already_tried_is_not_filed_again() -> None:
    first, again = Case(2, A, R, Standing.NONE, 0), Case(2, A, R, Standing.STANDS, 1)
    assert to_appeal([first], finalised=True, now=0, window_end=1, tried={"2:0"}) == []
    # After a decided appeal that did not overturn it, the next attempt is a new key: tried once (the court
    # takes it only when that appeal missed its quorum).
    assert to_appeal([again], finalised=True, now=0, window_end=1, tried={"2:0"}) == [again]
    assert to_appeal([again], finalised=True, now=0, window_end=1, tried={"2:0", "2:1"}) == []


@pytest.mark.parametrize("attempt", [2, 3, 36, 254, 255])
def test_no_attempt_after_the_second(attempt: int) -> None:
    # Each attempt goes before the same committee: a silent blocker that starved attempts 0 and 1 starves
    # every retry, each at more than half a bond; attempt 255 would overflow the court's uint8 count.
    assert LAST_AUTO_ATTEMPT == 1
    case = Case(2, A, R, Standing.STANDS, attempt)
    assert to_appeal([case], finalised=True, now=0, window_end=1, tried=()) == []


def test_a_second_attempt_after_someone_elses_first() -> None:
    # Attempt 0 was someone else's and missed its quorum: the watch files attempt 1, its only one.
    case = Case(2, R, A, Standing.STANDS, 1)
    assert to_appeal([case], finalised=True, now=0, window_end=1, tried=()) == [case]


def test_several_decisions_of_a_round_keep_their_order() -> None:
    pairs = [(A, R), (A, A), (R, A), (U, A), (A, U)]
    cases = [Case(i, m, d, Standing.NONE, 0) for i, (m, d) in enumerate(pairs)]
    due = to_appeal(cases, finalised=True, now=0, window_end=1, tried=())
    assert [c.index for c in due] == [0, 2, 4]


def _appeal(*, appellant: str = "0x" + "11" * 20, decided: bool = False, overturned: bool = False,
            attempt: int = 0) -> Appeal:  # fmt: skip
    return Appeal(appellant, 10, R, decided, overturned, attempt, bytes(32), *([0] * 9))


def test_standing_from_the_court() -> None:
    assert standing_of(_appeal(appellant=ZERO_ADDRESS)) == (Standing.NONE, 0)
    assert standing_of(_appeal()) == (Standing.PENDING, 0)
    assert standing_of(_appeal(decided=True, overturned=True)) == (Standing.OVERTURNED, 0)
    assert standing_of(_appeal(decided=True)) == (Standing.STANDS, 1)
    assert standing_of(_appeal(decided=True, attempt=2)) == (Standing.STANDS, 3)
