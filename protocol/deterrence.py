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

Laziness (docs/protocol.md, "Laziness does not pay" and "Laziness under committees"). A lazy validator
ACCEPTs every submission it judges without checking it. The initiator's honeypots (rate h) are rejected by
every honest verdict. Without committees (k = 0) every validator judges every submission, so a lazy one
is caught in every honeypot round (P = 1). With committees of k draws, a validator with a share s of the
round's weight holds M ~ Binomial(k, s) of the honeypot's draws, and the honeypot is decided REJECT (so
`slashLazy` applies) only while the lazy draws are at most a third of them (3 (k - M) >= 2k), so

    P(caught) = p(k, s) = P(1 <= M <= floor(k/3)) = sum_{m=1}^{floor(k/3)} C(k, m) s^m (1 - s)^(k - m)

(0 for k <= 2: a lazy draw on the honeypot is then more than a third of its draws). Caught, it loses the
lazy slash S and its pay of the round (it disagreed with a decided outcome). The round's validator cut C is
split per revealed draw, C / (N k) each for N submissions, and the validator holds ~N k s draws: C s
expected. So, per round (`lazy_profit`, exactly; q the chance of another rejected submission in the round,
which catches it the same way):

    E ~ (1 - h p)(1 - q p) x C s  -  h p S

For a validator of small share (p ~ k s, and caught it forfeits the one draw it has on the honeypot) this
is s x (C (1 - h/N) - h k S) <= s x (C - h k S) to first order: in a large pool laziness pays unless about
h x k x S > C, whatever the pool's size (`laziness_refusal`, which `trustrl task create` applies to a task
with honeypots, checks h k S > C: any N).

Over the whole task (R = num_rounds rounds) the slashes compound and are capped by the allocation A: each
takes a fraction b = lazy_slash_bps / 10000 of what is left, and a bait's honeypots are revealed together,
late, so a lazy validator keeps judging (and being paid) meanwhile. Caught on N ~ Bin(R, h p) honeypots it
loses A (1 - (1 - b)^N), in expectation A (1 - (1 - h p b)^R) <= R h p S, while its pay grows linearly:

    E_task = R x pay  -  A (1 - (1 - h p b)^R)          pay = E + h p S, the round's pay without the slash

(its shrinking allocation would also shrink its later pay: left out, in the lazy validator's favour). For
R = 1 this is E; for a long task the cap binds and laziness pays whenever pay > 0 unless A is large enough.
`laziness_refusal` requires E_task < 0 at every checked share (without committees, at the largest, a
quarter of the weight: its pay grows with its share and every honeypot catches it).

A partial checker skips the checks some bait defects need and is caught only on the other honeypots, a
share `catch` of them: it is the lazy validator above under the rate h x catch (`laziness_refusal(...,
catch=)`; `trustrl task create` checks catch = 1 / len(protocol.baits.ROTATION), the validator that skips
one expensive check class, which deters the lazy one too).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal
from fractions import Fraction

__all__ = [
    "BPS",
    "Deterrence",
    "Terms",
    "catch_probability",
    "deterrence",
    "expected_profit",
    "laziness_refusal",
    "lazy_catch_probability",
    "lazy_profit",
    "lazy_task_profit",
]

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


# --------------------------------------------------------------------------------------------- laziness


def lazy_catch_probability(draws: int, share: float) -> float:
    """P(a lazy validator with weight share `share` is slashed for one honeypot): 1 without committees
    (`draws` = 0: it judges every submission); with k draws, P(1 <= M <= floor(k/3)), M ~ Bin(k, share)."""
    if draws == 0:
        return 1.0
    return sum(_binomial(draws, share, m) for m in range(1, draws // 3 + 1))


def lazy_profit(
    *,
    cut: float,
    share: float,
    draws: int,
    submissions: int,
    honeypot_rate: float,
    lazy_slash: float,
    cheat_rate: float = 0.0,
) -> float:
    """A lazy validator's expected tokens per round (see the module docstring): `cut` the round's validator
    cut, `share` its weight share (with `draws` = 0, 1 / the validators), `submissions` N, `lazy_slash` S.

    Exactly: a round holds T rejected submissions (the honeypot with P = h, another with P = q,
    independently); caught on any of them, it is paid nothing. Its draws on each of the N - T others are
    k s in expectation and on a rejected one not caught E[M; M not in 1..floor(k/3)] = a, so it is paid
    C / (N k) x ((N - T) k s (1 - p)^T + T a (1 - p)^(T - 1)), and pays h p S."""
    p = lazy_catch_probability(draws, share)
    loss = honeypot_rate * p * lazy_slash
    if draws == 0:
        return (1 - honeypot_rate) * (1 - cheat_rate) * cut * share - loss
    n, k = max(submissions, 2), draws
    caught_draws = sum(m * _binomial(k, share, m) for m in range(1, k // 3 + 1))
    kept = k * share - caught_draws
    pay = 0.0
    for bait, p_bait in ((1, honeypot_rate), (0, 1 - honeypot_rate)):
        for cheat, p_cheat in ((1, cheat_rate), (0, 1 - cheat_rate)):
            t = bait + cheat
            draws_paid = (n - t) * k * share * (1 - p) ** t + (t * kept * (1 - p) ** (t - 1) if t else 0.0)
            pay += p_bait * p_cheat * cut / (n * k) * draws_paid
    return pay - loss


LAZY_SHARES = tuple(1 / n for n in range(4, 101)) + tuple(1 / n for n in (200, 500, 1_000, 10_000))
"""The weight shares `laziness_refusal` checks a minimum-stake lazy validator at: from a quarter of the
weight (one of four validators of equal stake) down; below, the first-order term s x (cut - h k S)."""
MAX_DRAWS = 64
"""TaskRules' bound on committee_draws."""


def lazy_task_profit(
    *,
    cut: float,
    share: float,
    draws: int,
    submissions: int,
    honeypot_rate: float,
    allocation: float,
    lazy_slash_bps: int,
    num_rounds: int,
) -> float:
    """A lazy validator's expected tokens over a task of `num_rounds` rounds, allocating `allocation` (see
    the module docstring): R x its round's pay, less A (1 - (1 - h p b)^R), the expected compounding slashes
    capped by the allocation."""
    b = lazy_slash_bps / BPS
    p = lazy_catch_probability(draws, share)
    h = honeypot_rate
    per_round = lazy_profit(
        cut=cut, share=share, draws=draws, submissions=submissions, honeypot_rate=h, lazy_slash=allocation * b
    )
    pay = per_round + h * p * allocation * b
    return num_rounds * pay - allocation * (1 - (1 - h * p * b) ** num_rounds)


def laziness_refusal(
    *,
    cut: float,
    draws: int,
    honeypot_rate: float,
    min_validator_stake: float,
    lazy_slash_bps: int,
    submissions: int,
    num_rounds: int,
    catch: float = 1.0,
) -> str:
    """One line when honeypots at `honeypot_rate` (with committees of `draws`, or none: 0) let laziness pay
    over a task of `num_rounds` rounds (empty otherwise, and without honeypots): a lazy validator that
    allocates the minimum (slashed `lazy_slash_bps` of what is left of it per honeypot it is caught on) must
    expect a loss over the task (`lazy_task_profit`, rounds of `submissions`) at every weight share of
    `LAZY_SHARES` and, for a small share s, ~ s x (cut - h k S) < 0. k <= 2 never slashes anyone. A
    validator holding more than a quarter of the weight is left out: under committees its draws on a
    honeypot are often more than a third of them (the two-thirds assumption at its edge, docs/protocol.md
    "Laziness under committees"); without committees it is the check's worst case, a quarter.

    `catch` is the share of the honeypots that catch the validator considered (1: the lazy one; a validator
    that skips the checks some bait defects need is caught on the others only, docs/protocol.md "The partial
    checker"): it meets honeypots at the rate h x catch, and the suggestions (the rate h to set, capped at 1,
    the committee draws, the stake) are for that validator. A validator caught on a smaller share gains at
    least as much, so deterring it deters every one caught more often."""
    if not 0 < catch <= 1:  # also refuses NaN
        raise ValueError(f"catch is a share of the honeypots in (0, 1], not {catch!r}")
    h, k = honeypot_rate, draws
    if h <= 0:
        return ""
    if 0 < k < 3:
        return (
            f"honeypots cannot catch a lazy validator with committee_draws = {k}: a lazy draw on a honeypot "
            "is more than a third of its draws, so it is never decided REJECT and nobody is slashed; use "
            "chain.committee_draws >= 3 (or 0) (docs/protocol.md, 'Laziness under committees')"
        )

    def worst(k: int, h: float, stake: float) -> tuple[float, float]:
        slash = stake * lazy_slash_bps / BPS
        if k > 0 and h * k * slash <= cut:
            return 0.0, cut - h * k * slash
        shares = LAZY_SHARES if k > 0 else LAZY_SHARES[:1]
        profits = (
            (
                lazy_task_profit(
                    cut=cut,
                    share=s,
                    draws=k,
                    submissions=submissions,
                    honeypot_rate=h,
                    allocation=stake,
                    lazy_slash_bps=lazy_slash_bps,
                    num_rounds=num_rounds,
                ),
                s,
            )
            for s in shares
        )
        profit, share = max(profits)
        return share, profit

    met = h * catch
    share, profit = worst(k, met, min_validator_stake)
    if profit < 0:
        return ""
    options = []
    fixed_k = next(
        (kk for kk in range(max(k + 1, 3), MAX_DRAWS + 1) if worst(kk, met, min_validator_stake)[1] < 0), None
    )
    if fixed_k is not None:
        options.append(f"chain.committee_draws to {fixed_k}")
    fixed_h = next(
        (
            r / 100
            for r in range(int(h * 100) + 1, 101)
            if worst(k, r / 100 * catch, min_validator_stake)[1] < 0
        ),
        None,
    )
    if fixed_h is not None:
        options.append(f"honeypots.rate to {fixed_h:g}")
    stake = next((m for m in _doublings(min_validator_stake) if worst(k, met, m)[1] < 0), None)
    if stake is not None:
        options.append(f"chain.min_validator_stake to {stake:g}")
    committees = f"with committees of {k} draws" if k else "without committees"
    rate = f"{h:g} x {catch:.3g}" if catch < 1 else f"{h:g}"
    where = (
        f"with a small share s of the weight it earns ~ s x (cut - rate x k x lazy slash) = s x ({cut:g} - "
        f"{rate} x {k} x {min_validator_stake * lazy_slash_bps / BPS:g}) > 0"
        if share == 0
        else f"holding {share:.3g} of the weight it expects {profit:+.3g} tokens over the task's "
        f"{num_rounds} rounds (caught on a honeypot with P = {lazy_catch_probability(k, share):.3f}; its "
        "slashes compound and take at most its allocation)"
    )
    who = (
        "a lazy validator allocating the minimum is caught only on a rejected honeypot it judged"
        if catch >= 1
        else f"a validator allocating the minimum that skips the checks some honeypots' defects need is "
        f"caught only on a rejected honeypot it judged whose defect it checks, {catch:.3g} of them (rate "
        f"{rate} = {met:.3g})"
    )
    section = "Laziness under committees" if catch >= 1 else "The partial checker"
    return (
        f"honeypots at rate {h:g} {committees} do not deter laziness: {who}, and {where}; raise "
        + (" or ".join(options) if options else "the rate, the committee or the validator stake")
        + f" (docs/protocol.md, '{section}')"
    )


def _doublings(start: float) -> list[float]:
    """`start` x 1.25^i for i = 1..40, rounded to 3 significant digits (a stake to name)."""
    return [float(f"{start * 1.25**i:.3g}") for i in range(1, 41)]


def _binomial(n: int, p: float, m: int) -> float:
    return math.comb(n, m) * p**m * (1 - p) ** (n - m)
