"""protocol.committees, the Python mirror of the registry's draws (checked draw for draw against the contract
in tests/contracts/test_committees.py): the rule as docs/protocol.md "Committees" states it, and the
properties every committee has whatever the seed, the weights, k and the round size."""

from __future__ import annotations

import pytest
from eth_abi.abi import encode
from eth_utils.crypto import keccak
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol import committees

SEEDS = st.binary(min_size=32, max_size=32)
WEIGHTS = st.lists(st.integers(1, 10**6), min_size=1, max_size=8)


def test_a_draw_is_a_64_bit_chunk_of_one_hash_for_four_draws() -> None:
    seed, total = keccak(b"committee vector"), 1_000_003
    points = committees.draw_points(seed, 5, 7, total)
    for d, x in enumerate(points):
        word = int.from_bytes(keccak(encode(["bytes32", "uint256", "uint256"], [seed, 5, d // 4])), "big")
        assert x == ((word >> (64 * (d % 4))) & (2**64 - 1)) % total


@settings(max_examples=60, deadline=None)
@given(seed=SEEDS, weights=WEIGHTS, draws=st.integers(1, 64), n=st.integers(1, 12))
def test_every_draw_lands_on_exactly_one_validator(
    seed: bytes, weights: list[int], draws: int, n: int
) -> None:
    line = committees.line_of([(f"v{j}", w, 0) for j, w in enumerate(weights)])
    total = committees.active_weight(line, 0)
    mults = {s.validator: committees.multiplicities(seed, n, draws, total, s.offset, s.weight) for s in line}
    for i in range(n):
        assert sum(m[i] for m in mults.values()) == draws
        assert committees.committee(line, seed, i, draws, 0) == {v: m[i] for v, m in mults.items() if m[i]}


@settings(max_examples=30, deadline=None)
@given(seed=SEEDS, weights=WEIGHTS, later=WEIGHTS, draws=st.integers(1, 16))
def test_later_joiners_neither_draw_nor_move_the_active_line(
    seed: bytes, weights: list[int], later: list[int], draws: int
) -> None:
    joins = [(f"a{j}", w, 0) for j, w in enumerate(weights)] + [(f"b{j}", w, 1) for j, w in enumerate(later)]
    line = committees.line_of(joins)
    assert committees.active_weight(line, 0) == sum(weights)
    assert committees.active_weight(line, 1) == sum(weights) + sum(later)
    round0 = committees.committee(line, seed, 0, draws, 0)
    assert set(round0) <= {f"a{j}" for j in range(len(weights))}
    alone = committees.line_of(joins[: len(weights)])
    assert round0 == committees.committee(alone, seed, 0, draws, 0)


def test_weights_and_errors() -> None:
    assert committees.weight_for(25, 10) == 2
    assert committees.weight_for(9, 10) == 1  # at least 1
    assert committees.weight_for(2**100, 1) == committees.MAX_WEIGHT
    line = committees.line_of([("a", 2, 0), ("b", 3, 0)])
    assert [(s.offset, s.weight) for s in line] == [(0, 2), (2, 3)]
    assert committees.holder(line, 4).validator == "b"
    with pytest.raises(ValueError, match="no seat"):
        committees.holder(line, 5)
    with pytest.raises(ValueError, match="positive active weight"):
        committees.draw_points(bytes(32), 0, 1, 0)
    assert committees.drawn_fields([0, 2, 0, 1]) == [1, 3]
