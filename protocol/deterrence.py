"""Why cheating does not pay, as arithmetic over a task's terms (docs/protocol.md, "Why cheating does not
pay").

A cheater alters k of the H training steps (or k of the n rollouts) of its submission. The round's seed,
drawn after it committed, picks s of the H steps to re-execute (m of the n rollouts to replay) without
replacement, so the cheat is caught with

    P(k of N items, s picked) = 1 - C(N - k, s) / C(N, s)            (= s / N for k = 1; 1 when s >= N)

Caught, it loses `slash = min_trainer_stake x trainer_slash_bps / 10000` (its allocation is the task's
minimum; REJECT and UNAVAILABLE slash alike, because a cheater whose altered step was picked would
otherwise withhold the states and take the smaller slash). Not caught, it is paid at most `pay`, the whole
trainer pool of a round:

    pay = reward_per_round x (10000 - validator_share_bps) / 10000

(assumptions: the cheater's share of the pool is at most all of it; no carry: a rejected submission's
share goes to the other accepted trainers of the same round, and the budget carries over only from a
round with no accepted work at all, i.e. a cheater alone in the task). The task deters the cheapest
single-item cheat (k = 1, of steps or rollouts, whichever is less likely caught) when

    P x slash >= 2 x (1 - P) x pay            margin = P x slash / (2 x (1 - P) x pay) >= 1

(the factor 2 is the safety margin of docs/protocol.md; margin = inf when P = 1). `deterrence(terms)`
computes all of it; `refusal` is the one line `trustrl task create` prints when a task falls short,
naming the parameter to raise and to what.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal
from fractions import Fraction

__all__ = ["BPS", "Deterrence", "Terms", "catch_probability", "deterrence", "expected_profit"]

BPS = 10_000
SAFETY = 2
"""P(caught) x slash must be at least SAFETY x P(not caught) x pay."""


@dataclass(frozen=True)
class Terms:
    """What the arithmetic needs from a task: its spec's sizes and its on-chain terms (amounts in tokens)."""

    steps: int
    """H, inner steps per round."""
    sample_steps: int
    """s, steps the seed picks for re-execution."""
    rollouts: int
    """n, rollouts per submission."""
    sample_rollouts: int
    """m, rollouts the seed picks for replay (>= n: all)."""
    reward_per_round: Decimal
    validator_share_bps: int
    min_trainer_stake: Decimal
    trainer_slash_bps: int


def catch_probability(items: int, picked: int, altered: int = 1) -> Fraction:
    """P(at least one of `altered` of `items` is among `picked` drawn without replacement), exactly."""
    if items <= 0 or altered <= 0:
        return Fraction(0)
    picked = min(picked, items)
    altered = min(altered, items)
    return 1 - Fraction(math.comb(items - altered, picked), math.comb(items, picked))


def expected_profit(p_caught: float | Fraction, pay: float | Decimal, slash: float | Decimal) -> float:
    """E[profit] per round = P(pass) x pay - P(caught) x slash (compute costs left out)."""
    p = float(p_caught)
    return (1 - p) * float(pay) - p * float(slash)


@dataclass(frozen=True)
class Deterrence:
    """The deterrence arithmetic of one task."""

    terms: Terms
    p_step: Fraction
    """P(one altered step is re-executed) = s / H."""
    p_rollout: Fraction
    """P(one altered rollout is replayed) = m / n (1 when every rollout is replayed)."""
    slash: Decimal
    pay: Decimal
    """Upper bound of a cheater's pay per round: the whole trainer pool."""

    @property
    def p_cheapest(self) -> Fraction:
        """P(caught) of the cheapest single-item cheat."""
        return min(self.p_step, self.p_rollout)

    @property
    def margin(self) -> float:
        """P x slash / (2 x (1 - P) x pay) for the cheapest cheat; inf when it is always caught."""
        p = self.p_cheapest
        if p >= 1:
            return math.inf
        if self.pay == 0:
            return math.inf
        return float(p * Fraction(self.slash)) / float(SAFETY * (1 - p) * Fraction(self.pay))

    @property
    def ok(self) -> bool:
        """Whether the task deters the cheapest single-item cheat."""
        return self.margin >= 1

    def required_slash(self) -> Decimal:
        """The smallest slash per caught submission that meets the condition."""
        p = self.p_cheapest
        if p >= 1:
            return Decimal(0)
        if p == 0:
            return Decimal("Infinity")
        need = SAFETY * (1 - p) / p * Fraction(self.pay)
        return Decimal(need.numerator) / Decimal(need.denominator)

    def lines(self) -> list[str]:
        """The arithmetic, for people."""
        t = self.terms
        kind = "step" if self.p_step <= self.p_rollout else "rollout"
        margin = "inf" if math.isinf(self.margin) else f"{self.margin:.2f}"
        p = self.p_cheapest
        risk, gain = float(p) * float(self.slash), float(SAFETY * (1 - p)) * float(self.pay)
        return [
            f"deterrence: one altered step is re-executed with P = {t.sample_steps}/{t.steps} = "
            f"{float(self.p_step):.3f}; one altered rollout is replayed with P = "
            f"{min(t.sample_rollouts, t.rollouts)}/{t.rollouts} = {float(self.p_rollout):.3f}",
            f"deterrence: caught -> slash {_fmt(self.slash)} tokens ({t.min_trainer_stake} x "
            f"{t.trainer_slash_bps}/{BPS}); not caught -> pay <= {_fmt(self.pay)} tokens (the trainer pool)",
            f"deterrence: cheapest cheat (one {kind}): P x slash = {risk:.2f} vs 2 x (1 - P) x pay = "
            f"{gain:.2f}: margin {margin} ({'OK' if self.ok else 'too weak'})",
        ]

    def refusal(self) -> str:
        """One line: which parameter to raise, and to what (empty when the task is deterrent)."""
        if self.ok:
            return ""
        t = self.terms
        need = self.required_slash()
        options = []
        if t.trainer_slash_bps > 0:
            stake = (need * BPS / t.trainer_slash_bps).to_integral_value(ROUND_CEILING)
            options.append(f"chain.min_trainer_stake to {stake}")
        if t.min_trainer_stake > 0:
            bps = int((need * BPS / t.min_trainer_stake).to_integral_value(ROUND_CEILING))
            if bps <= BPS:
                options.append(f"chain.trainer_slash_bps to {bps}")
        coverage = []
        if not self._deters(self.p_step):
            coverage.append(f"sample_steps to {_picks_needed(t.steps, t.sample_steps, self._deters)}")
        if not self._deters(self.p_rollout):
            m = _picks_needed(t.rollouts, t.sample_rollouts, self._deters)
            coverage.append("sample_rollouts to all" if m >= t.rollouts else f"sample_rollouts to {m}")
        if coverage:
            options.append(" and ".join(coverage))
        kind = "step" if self.p_step <= self.p_rollout else "rollout"
        return (
            f"the task does not deter cheating: one altered {kind} is caught with P = "
            f"{float(self.p_cheapest):.3f}, risking a slash of {_fmt(self.slash)} tokens to earn up to "
            f"{_fmt(self.pay)} (margin {self.margin:.2f} < 1); raise "
            + " or ".join(options)
            + " (docs/protocol.md, 'Why cheating does not pay')"
        )

    def _deters(self, p: Fraction) -> bool:
        return p >= 1 or p * Fraction(self.slash) >= SAFETY * (1 - p) * Fraction(self.pay)


def deterrence(terms: Terms) -> Deterrence:
    """The arithmetic of `terms` (see the module docstring)."""
    return Deterrence(
        terms=terms,
        p_step=catch_probability(terms.steps, terms.sample_steps),
        p_rollout=catch_probability(terms.rollouts, terms.sample_rollouts),
        slash=terms.min_trainer_stake * terms.trainer_slash_bps / BPS,
        pay=terms.reward_per_round * (BPS - terms.validator_share_bps) / BPS,
    )


def _picks_needed(items: int, picked: int, deters: Callable[[Fraction], bool]) -> int:
    """The smallest number of picks out of `items` whose catch probability deters (`items` at most)."""
    for count in range(picked + 1, items + 1):
        if deters(catch_probability(items, count)):
            return count
    return items


def _fmt(amount: Decimal) -> str:
    return f"{amount.normalize():f}" if amount == amount.to_integral_value() else f"{float(amount):.4g}"
