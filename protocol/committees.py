"""Stake-weighted committees drawn from a round's seed, exactly as the AttestationRegistry draws them.

A task with `committeeDraws` k > 0 lays its validators out on a line of weights, in registration order:
validator j holds the interval [offset_j, offset_j + weight_j), its weight being its allocation to the
task at the join in units of the task's minimum validator stake (`weight_for`). Registration order is
sorted by first round, so the validators active in round r are a prefix of the line, of total weight W_r.

For submission i of round r, draw d = 0 .. k-1 is the point

    x_d = (uint256(keccak256(abi.encode(seed, i, d // 4))) >> (64 * (d % 4))) & (2**64 - 1)) % W_r

(the 64-bit chunk d % 4 of one hash, the lowest first), and the validator whose interval holds x_d gets
the draw. Its multiplicity m_ij on submission i is the number of draws it got (draws are with
replacement: a validator's expected draws are proportional to its stake, and splitting stake over several
identities changes nothing). A validator judges exactly the submissions where m_ij > 0: its verdict
vector carries a verdict there and 0 elsewhere, each verdict counts m_ij, its model vote counts
sum_i m_ij, and it is paid that many shares of the round's validator pool. With k = 0 every active
validator judges every submission with multiplicity 1.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from eth_abi.abi import encode
from eth_utils.crypto import keccak

__all__ = [
    "MAX_WEIGHT",
    "Seat",
    "active_weight",
    "committee",
    "draw_points",
    "drawn_fields",
    "holder",
    "line_of",
    "multiplicities",
    "weight_for",
]

MAX_WEIGHT = 1 << 56
"""A validator's weight is capped so that 255 of them sum below 2^64 (AttestationRegistry._MAX_WEIGHT)."""

_CHUNK = (1 << 64) - 1


@dataclass(frozen=True)
class Seat:
    """A validator's place on a task's line of weights."""

    validator: str
    offset: int
    weight: int
    from_round: int


def weight_for(allocated: int, unit: int) -> int:
    """A validator's weight from its allocation at the join: `allocated // unit`, at least 1 and at most
    `MAX_WEIGHT` (1 when `unit` is 0)."""
    weight = 1 if unit == 0 else allocated // unit
    return min(max(weight, 1), MAX_WEIGHT)


def line_of(joins: Sequence[tuple[str, int, int]]) -> list[Seat]:
    """The line of weights of validators that joined in this order, as (validator, weight, first round)."""
    seats: list[Seat] = []
    offset = 0
    for validator, weight, from_round in joins:
        seats.append(Seat(validator, offset, weight, from_round))
        offset += weight
    return seats


def active_weight(seats: Sequence[Seat], round_: int) -> int:
    """W_r: the total weight of the validators active in `round_` (first round <= round_)."""
    return sum(s.weight for s in seats if s.from_round <= round_)


def draw_points(seed: bytes, index: int, draws: int, total: int) -> list[int]:
    """The k points of submission `index` on [0, total)."""
    if total <= 0:
        raise ValueError(f"a committee needs a positive active weight, got {total}")
    points: list[int] = []
    word = 0
    for d in range(draws):
        if d % 4 == 0:
            word = int.from_bytes(
                keccak(encode(["bytes32", "uint256", "uint256"], [seed, index, d // 4])), "big"
            )
        points.append(((word >> (64 * (d % 4))) & _CHUNK) % total)
    return points


def holder(seats: Sequence[Seat], point: int) -> Seat:
    """The seat whose interval holds `point` (seats in line order, contiguous from 0)."""
    lo, hi = 0, len(seats)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if seats[mid].offset <= point:
            lo = mid
        else:
            hi = mid
    seat = seats[lo]
    if not seat.offset <= point < seat.offset + seat.weight:
        raise ValueError(f"point {point} lies on no seat of the line")
    return seat


def committee(seats: Sequence[Seat], seed: bytes, index: int, draws: int, round_: int) -> dict[str, int]:
    """Submission `index`'s committee in `round_`: validator -> multiplicity (only those drawn)."""
    active = [s for s in seats if s.from_round <= round_]
    out: dict[str, int] = {}
    for point in draw_points(seed, index, draws, active_weight(active, round_)):
        validator = holder(active, point).validator
        out[validator] = out.get(validator, 0) + 1
    return out


def multiplicities(
    seed: bytes, submissions: int, draws: int, total: int, offset: int, weight: int
) -> list[int]:
    """One validator's m_i on every submission of a round: the membership test of the contract, O(k) per
    submission, no search."""
    return [
        sum(1 for x in draw_points(seed, i, draws, total) if offset <= x < offset + weight)
        for i in range(submissions)
    ]


def drawn_fields(mults: Sequence[int]) -> list[int]:
    """The indices of the submissions a validator judges (m_i > 0)."""
    return [i for i, m in enumerate(mults) if m > 0]
