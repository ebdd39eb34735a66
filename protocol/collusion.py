"""How much of the validator pool a cartel needs to decide a submission alone (docs/protocol.md, "Collusion").

A submission is decided by two thirds of the validators that judge it: a verdict `v` wins when
`3 x count(v) >= 2 x judges` (and at least `quorum` judged). A cartel decides a submission alone when it
holds at least `need(k) = ceil(2k / 3)` of the k votes, whatever the honest judges say.

Two ways of choosing the judges are compared:

* **The whole pool judges** (a task with `committeeDraws` = 0: every validator of the task judges every
  submission, one vote per seat). A cartel holding `c` of `V` seats decides alone iff `c >= need(V)`:
  probability 0 or 1. Seats, not stake, are counted, and a seat costs the task's minimum validator stake,
  so a cartel can split its stake over many minimum seats (up to `max_validators`): its seat share, not its
  stake share, is what matters (`sybil_seats`).
* **A committee of k drawn by stake** from the pool with the round's seed (a task with `committeeDraws` =
  k > 0, built: protocol.committees and the AttestationRegistry; each of the k draws lands on a validator
  with probability its weight share, with replacement: splitting stake over many identities changes
  nothing). A verdict counts its validator's draws on the submission and the decision is two thirds of the
  revealed draws, so with every draw revealed the cartel's votes are `Binomial(k, s)` for a stake share `s`,
  and

      P(decides) = sum_{j >= need(k)} C(k, j) s^j (1 - s)^(k - j).

  Without replacement over `V` equal seats it is the hypergeometric tail instead (`pool_draw_probability`).

`stake_share_needed(k, p)` inverts the binomial tail: the smallest stake share with which a cartel decides
a given submission with probability greater than `p` (bisection over s; the tail is increasing in s).

**Appeals** (the AppealCourt, built): an appeal draws K_a points by stake, with replacement, from the round's
validators, and its side that holds more than half of the revealed draws stands (at least ceil(K_a / 2)
revealed; a tie upholds). A cartel keeps its wrong decision against an honest appeal with half of the
draws, and carries a malicious appeal of a right one with more than half: `need_appeal(K_a) = ceil(K_a / 2)`
is the least with which it wins in one direction (odd K_a: both need (K_a + 1) / 2),
`P = sum_{j >= need_appeal} C(K_a, j) s^j (1-s)^(K_a-j)`
(`appeal_capture_probability`; silent honest draws help the cartel only below the reveal quorum, where the
original decision stands: counted here as every draw revealed). `appeal_stake_needed(K_a, p)` inverts it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from fractions import Fraction

__all__ = [
    "appeal_capture_probability",
    "appeal_rows",
    "appeal_stake_needed",
    "binomial_tail",
    "collusion_rows",
    "committee_capture_probability",
    "need",
    "pool_capture",
    "pool_draw_probability",
    "smallest_share_above",
    "stake_share_needed",
    "sybil_seats",
]


def need(judges: int) -> int:
    """Votes that decide among `judges`: the least j with 3j >= 2 x judges."""
    if judges < 1:
        raise ValueError(f"judges must be >= 1, got {judges}")
    return -(-2 * judges // 3)


def binomial_tail(draws: int, at_least: int, stake_share: float | Fraction) -> float:
    """P(at least `at_least` of `draws` independent draws land on a cartel with `stake_share` of the stake):
    sum_{j >= at_least} C(draws, j) s^j (1 - s)^(draws - j). Exact in rationals, returned as a float."""
    s = Fraction(stake_share)
    if not 0 <= s <= 1:
        raise ValueError(f"stake_share must be in [0, 1], got {stake_share}")
    tail = sum(
        (math.comb(draws, j) * s**j * (1 - s) ** (draws - j) for j in range(at_least, draws + 1)),
        start=Fraction(0),
    )
    return float(tail)


def smallest_share_above(capture: Callable[[float], float], p: float, tol: float) -> float:
    """The smallest stake share s in [0, 1] with capture(s) > p, for a `capture` increasing in s: bisection
    until the bracket is narrower than `tol`, returning its upper end."""
    if not 0 < p < 1:
        raise ValueError(f"p must be in (0, 1), got {p}")
    lo, hi = 0.0, 1.0
    while hi - lo > tol:
        mid = (lo + hi) / 2
        if capture(mid) > p:
            hi = mid
        else:
            lo = mid
    return hi


def committee_capture_probability(committee: int, stake_share: float | Fraction) -> float:
    """P(a cartel with `stake_share` of the pool's stake holds >= need(k) seats of a stake-drawn committee
    of k, drawn with replacement): the binomial tail."""
    return binomial_tail(committee, need(committee), stake_share)


def pool_draw_probability(pool: int, cartel_seats: int, committee: int) -> float:
    """P(a committee of k drawn without replacement from `pool` equal seats, `cartel_seats` of them the
    cartel's, holds >= need(k) cartel seats): the hypergeometric tail."""
    if not 0 <= cartel_seats <= pool or not 1 <= committee <= pool:
        raise ValueError(
            f"need 0 <= cartel_seats <= pool and 1 <= committee <= pool: {cartel_seats}, {pool}, {committee}"
        )
    total = math.comb(pool, committee)
    hits = sum(
        math.comb(cartel_seats, j) * math.comb(pool - cartel_seats, committee - j)
        for j in range(need(committee), min(committee, cartel_seats) + 1)
    )
    return float(Fraction(hits, total))


def pool_capture(pool: int, cartel_seats: int) -> bool:
    """Whether a cartel of `cartel_seats` of `pool` decides alone when the whole pool judges."""
    return cartel_seats >= need(pool)


def sybil_seats(cartel_stake: float, min_stake: float, honest_seats: int, max_validators: int) -> int:
    """The seats a cartel can hold by splitting `cartel_stake` over minimum-stake identities, when
    `honest_seats` are taken and the task admits `max_validators`."""
    if min_stake <= 0:
        raise ValueError(f"min_stake must be > 0, got {min_stake}")
    return max(0, min(int(cartel_stake // min_stake), max_validators - honest_seats))


def stake_share_needed(committee: int, p: float = 1e-6, *, tol: float = 1e-9) -> float:
    """The smallest stake share s with committee_capture_probability(committee, s) > p (bisection)."""
    return smallest_share_above(lambda s: committee_capture_probability(committee, s), p, tol)


def need_appeal(draws: int) -> int:
    """Draws with which a cartel decides an appeal of `draws` in its favour in at least one direction: half
    of them, rounded up (a tie upholds the original decision)."""
    if draws < 1:
        raise ValueError(f"draws must be >= 1, got {draws}")
    return (draws + 1) // 2


def appeal_capture_probability(draws: int, stake_share: float | Fraction) -> float:
    """P(a cartel with `stake_share` of the round's stake holds need_appeal(draws) of an appeal's `draws`
    stake-weighted draws, with replacement): the binomial tail."""
    return binomial_tail(draws, need_appeal(draws), stake_share)


def appeal_stake_needed(draws: int, p: float = 1e-6, *, tol: float = 1e-9) -> float:
    """The smallest stake share s with appeal_capture_probability(draws, s) > p (bisection)."""
    return smallest_share_above(lambda s: appeal_capture_probability(draws, s), p, tol)


def appeal_rows(
    draws: tuple[int, ...] = (11, 31, 51, 101, 201, 301, 501), share: float = 1 / 3
) -> list[dict[str, object]]:
    """For each appeal size K_a: the probability that a cartel with `share` of the stake decides an appeal
    (holds need_appeal(K_a) of its draws), and the stake share it needs for P > 1e-6."""
    return [
        {
            "appeal_draws": k,
            "cartel_stake_share": share,
            "p_captures_appeal": appeal_capture_probability(k, share),
            "stake_needed_1e-6": appeal_stake_needed(k),
        }
        for k in draws
    ]


def collusion_rows(
    pools: tuple[int, ...] = (3, 10, 100), share: float = 1 / 3, committees: tuple[int, ...] = (3, 10, 20, 50)
) -> list[dict[str, object]]:
    """For each pool: the probability that a cartel with `share` of the pool's stake decides a submission
    alone, when the whole pool judges (the contracts today: equal stakes, one vote per seat, the cartel
    holding floor(share x pool) seats) and when a committee of k is drawn by stake (`committeeDraws` = k: the
    binomial tail, for the committee sizes below the pool)."""
    rows: list[dict[str, object]] = []
    for pool in pools:
        seats = int(share * pool)
        rows.append(
            {
                "pool": pool,
                "committee": pool,
                "cartel_stake_share": share,
                "p_decides": 1.0 if pool_capture(pool, seats) else 0.0,
                "draw": "whole pool judges, one vote per seat (committeeDraws = 0)",
                "built": True,
            }
        )
        for k in committees:
            if k < pool:
                rows.append(
                    {
                        "pool": pool,
                        "committee": k,
                        "cartel_stake_share": share,
                        "p_decides": committee_capture_probability(k, share),
                        "draw": f"{k} draws by stake with the round's seed (committeeDraws = {k})",
                        "built": True,
                    }
                )
    return rows
