"""The cartel arithmetic of docs/protocol.md ("Collusion"), checked against brute-force enumeration."""

from __future__ import annotations

import itertools
from fractions import Fraction

import pytest

from protocol.collusion import (
    committee_capture_probability,
    need,
    pool_capture,
    pool_draw_probability,
    stake_share_needed,
    sybil_seats,
)


@pytest.mark.parametrize(
    ("judges", "votes"), [(1, 1), (2, 2), (3, 2), (4, 3), (5, 4), (6, 4), (10, 7), (100, 67)]
)
def test_two_thirds_of_the_judges_decide(judges: int, votes: int) -> None:
    assert need(judges) == votes
    assert 3 * votes >= 2 * judges
    assert 3 * (votes - 1) < 2 * judges


@pytest.mark.parametrize("k", [1, 2, 3, 4, 5, 7])
@pytest.mark.parametrize("share", [Fraction(1, 3), Fraction(1, 2), Fraction(1, 10)])
def test_the_binomial_tail_equals_enumerating_every_committee(k: int, share: Fraction) -> None:
    total = Fraction(0)
    for draw in itertools.product((True, False), repeat=k):
        p = Fraction(1)
        for cartel in draw:
            p *= share if cartel else 1 - share
        if sum(draw) >= need(k):
            total += p
    assert committee_capture_probability(k, share) == pytest.approx(float(total), rel=1e-12)


@pytest.mark.parametrize(("pool", "cartel", "k"), [(6, 2, 3), (9, 3, 3), (10, 3, 5), (7, 4, 4)])
def test_the_hypergeometric_tail_equals_enumerating_every_committee(pool: int, cartel: int, k: int) -> None:
    seats = range(pool)
    committees = list(itertools.combinations(seats, k))
    hits = sum(1 for c in committees if sum(1 for s in c if s < cartel) >= need(k))
    assert pool_draw_probability(pool, cartel, k) == pytest.approx(hits / len(committees), rel=1e-12)


def test_a_third_of_the_seats_never_decides_when_the_whole_pool_judges() -> None:
    for pool in (3, 10, 100):
        assert not pool_capture(pool, pool // 3)
        assert pool_draw_probability(pool, pool // 3, pool) == 0.0
        assert pool_capture(pool, need(pool))


def test_the_stake_needed_is_where_the_tail_crosses_p() -> None:
    for k in (3, 10, 30):
        s = stake_share_needed(k, 1e-6)
        assert committee_capture_probability(k, s) > 1e-6
        assert committee_capture_probability(k, s - 1e-6) <= 1e-6
    assert stake_share_needed(10) < stake_share_needed(30) < stake_share_needed(100)


def test_splitting_stake_buys_seats_up_to_the_cap() -> None:
    assert sybil_seats(100, 10, honest_seats=3, max_validators=8) == 5
    assert sybil_seats(25, 10, honest_seats=3, max_validators=8) == 2
    assert sybil_seats(5, 10, honest_seats=3, max_validators=8) == 0


def test_nonsense_is_refused() -> None:
    with pytest.raises(ValueError):
        need(0)
    with pytest.raises(ValueError):
        committee_capture_probability(3, 1.5)
    with pytest.raises(ValueError):
        pool_draw_probability(3, 4, 3)
    with pytest.raises(ValueError):
        stake_share_needed(3, 0.0)
    with pytest.raises(ValueError):
        sybil_seats(1, 0, honest_seats=0, max_validators=1)
