"""protocol.verification's margin of a verdict: `tolerance_margin`, the largest metric / limit over the
tolerance checks a submission report measured, and `exact_failure`, whether a check no tolerance excuses
failed. The watch appeals only on a clear margin
(tests/test_validator_watch_appeals_only_on_a_clear_margin.py). Pinned against `trainer.verify.decide`: a
report passes exactly when it has no exact failure and a margin of at most 1. Reports are built by hand: an
honest one, hardware edges, the baits' defects, NaN, proofs."""

from __future__ import annotations

import math

import pytest

from protocol.verification import MARGIN_CAP, exact_failure, limit_ratio, tolerance_margin
from trainer.config import VerifyThresholds
from trainer.quality import QualityCheck
from trainer.toploc import ChunkStats, ProofStats
from trainer.verify import (
    BundleCheck,
    ReplayStats,
    RolloutCheck,
    StateCheck,
    StepStats,
    SubmissionReport,
    UpdateCheck,
    decide,
)

T = VerifyThresholds()


def chunk(
    exp: int = 0, sign: int = 0, mean: float = 0.0, median: float = 0.0, points: int = 128
) -> ChunkStats:
    return ChunkStats(
        index=0,
        n_points=points,
        exp_mismatches=exp,
        sign_mismatches=sign,
        mant_err_mean=mean,
        mant_err_median=median,
    )


def proof(*chunks: ChunkStats, expected: int | None = None, finite: bool = True) -> ProofStats:
    n = len(chunks) if expected is None else expected
    return ProofStats(
        n_tokens=32 * n, expected_proofs=n, n_proofs=n, format_errors=(), hidden_finite=finite, chunks=chunks
    )


def replay(gap: float = -1.0, p: ProofStats | None = None, failures: tuple[str, ...] = ()) -> ReplayStats:
    return ReplayStats(
        key=(0, 0, 0),
        n_tokens=32,
        proof=proof(chunk()) if p is None else p,
        max_gap=gap,
        gap_positions=0,
        failures=failures,
    )


def step(rel: float = 0.0, lr: float = 0.0, moments: float = 0.0, ulps: float = 0.0) -> StepStats:
    return StepStats(
        step=0, exact=False, max_abs=0.0, rel_l2=rel, max_abs_lr=lr, moment_rel=moments, adam_ulps=ulps,
        failures=(),
    )  # fmt: skip


def report(
    *,
    replays: tuple[ReplayStats, ...] = (),
    steps: tuple[StepStats, ...] = (),
    update_abs: float = 0.0,
    rollout_failures: tuple[str, ...] = (),
    failures: tuple[str, ...] = (),
) -> SubmissionReport:
    return SubmissionReport(
        bundle=BundleCheck(n_rollouts=1, work_units=1, failures=()),
        rollouts=(RolloutCheck(key=(0, 0, 0), n_tokens=1, recomputed_reward=1.0, failures=rollout_failures),),
        replays=replays or (replay(),),
        steps=steps or (step(),),
        initial_state=StateCheck(exact=True, max_abs=0.0, failures=()),
        update=UpdateCheck(exact=update_abs == 0, max_abs=update_abs, rel_l2=0.0, failures=()),
        failures=failures,
    )


def quality(drop: float) -> QualityCheck:
    return QualityCheck(problems=8, base_score=-2.0, score=-2.0 - drop, drop=drop)


def passes(r: SubmissionReport) -> bool:
    return not decide(r, T).reasons


def test_limit_ratio_edges() -> None:
    assert limit_ratio(-3.0, 0.1) == 0.0
    assert limit_ratio(0.0, 0.0) == 0.0
    assert limit_ratio(0.05, 0.1) == pytest.approx(0.5)
    assert limit_ratio(1e-30, 0.0) == MARGIN_CAP  # any excess over a zero limit
    assert limit_ratio(math.nan, 1.0) == MARGIN_CAP
    assert limit_ratio(math.inf, 1.0) == MARGIN_CAP
    assert limit_ratio(1e300, 1e-300) == MARGIN_CAP


def test_honest_bit_exact_work_has_margin_zero() -> None:
    r = report()
    assert passes(r)
    assert tolerance_margin(r, T, quality(-0.02)) == 0.0
    assert not exact_failure(r)


@pytest.mark.parametrize(
    ("r", "q", "margin"),
    [
        (report(steps=(step(ulps=17.0),)), None, 17 / 16),  # one ulp over max_step_ulps: a hardware edge
        (report(steps=(step(ulps=15.0),)), None, 15 / 16),  # one under it: accepted, not clearly
        (report(), 0.31, 0.31 / 0.3),  # the quality gate's edge
        (report(), 0.095, 0.095 / 0.3),  # the honest worst measured: accepted, not clearly
        (report(replays=(replay(gap=0.12),)), None, 1.2),  # the sampling tolerance's edge
        (report(replays=(replay(p=proof(chunk(exp=5))),)), None, 5 / 4),  # TOPLOC exponent mismatches
        (report(replays=(replay(p=proof(chunk(exp=1, points=64))),)), None, 1 / 2),  # limit scaled to points
        (report(steps=(step(lr=1000.0, rel=15.8),)), None, 1580.0),  # the `every-step` bait's defect
        (report(replays=(replay(gap=7.22),)), None, 72.2),  # the `every-rollout` bait's defect
        (report(update_abs=9.1e-4), None, MARGIN_CAP),  # `poison`: byte equality (limit 0)
        (report(steps=(step(moments=math.nan),)), None, MARGIN_CAP),  # NaN is outside every limit
    ],
)
def test_the_margin_is_the_largest_ratio_to_a_limit(
    r: SubmissionReport, q: float | None, margin: float
) -> None:
    m = tolerance_margin(r, T, None if q is None else quality(q))
    assert m == pytest.approx(margin)
    assert not exact_failure(r)
    if q is None:  # the quality gate is outside `decide`
        assert passes(r) == (m <= 1)


@pytest.mark.parametrize(
    "r",
    [
        report(rollout_failures=("reward 1.0 != recomputed 0.0",)),
        report(failures=("training states withheld: [3]",)),
        report(replays=(replay(p=proof(chunk(), expected=2)),)),  # proof count
        report(replays=(replay(p=proof(chunk(), finite=False)),)),
        report(replays=(replay(gap=math.inf, failures=("the replayed logits are not finite",)),)),
    ],
)
def test_exact_failures_are_named_whatever_the_margin(r: SubmissionReport) -> None:
    assert exact_failure(r)
    assert not passes(r)
