"""Laziness under committees (`protocol.deterrence`, docs/protocol.md "Laziness under committees"): a lazy
validator is caught on a honeypot only when drawn on it with at most a third of its draws; the closed forms
agree with rounds drawn by the protocol's own committee rule; without committees they are the old formula;
task creation refuses the honeypot terms under which laziness pays (committees of 1 or 2, h k S <= cut, a
quarter of the weight in a small pool) or a deployment without settlement grace, names what to raise (and
raising it to that is accepted), and accepts the demo's terms."""

from __future__ import annotations

import hashlib
import math
import re
from pathlib import Path

import pytest

from protocol import committees
from protocol.contracts import DEFAULT_LAZY_SLASH_BPS
from protocol.demo import BAIT_PLAN, DEMO_TASK, HONEYPOT_RATE, VALIDATOR_WEIGHT, VALIDATORS
from protocol.deterrence import laziness_refusal, lazy_catch_probability, lazy_profit, lazy_task_profit
from protocol.errors import ConfigError
from protocol.roles.initiator import TaskFile, honeypot_refusal, honeypot_terms, load_task_file

REPO = Path(__file__).resolve().parents[1]
BAIT = "0x" + "ab" * 20


def _seed(i: int) -> bytes:
    return hashlib.sha256(f"committee round {i}".encode()).digest()


def _lazy_rounds(draws: int, weights: list[int], submissions: int, rounds: int) -> tuple[float, float]:
    """(fraction caught, mean profit per round with h = 1, cut 20, S = 2) of the lazy validator (the last
    weight) over `rounds` seeds, drawn with `protocol.committees` (submission 0 is the honeypot)."""
    total = sum(weights)
    offset, weight = total - weights[-1], weights[-1]
    caught, profit = 0, 0.0
    for i in range(rounds):
        mults = committees.multiplicities(_seed(i), submissions, draws, total, offset, weight)
        if 1 <= mults[0] <= draws // 3:
            caught += 1
            profit -= 2.0
        else:
            profit += 20 * sum(mults) / (submissions * draws)
    return caught / rounds, profit / rounds


@pytest.mark.parametrize(("draws", "weights"), [(3, [1, 1, 1, 1]), (12, [2, 2, 2, 1]), (16, [1, 1, 1, 1])])
def test_the_closed_forms_match_rounds_drawn_by_the_committee_rule(draws: int, weights: list[int]) -> None:
    rounds = 3_000
    share = weights[-1] / sum(weights)
    p = lazy_catch_probability(draws, share)
    seen, profit = _lazy_rounds(draws, weights, 5, rounds)
    assert seen == pytest.approx(p, abs=4 * (p * (1 - p) / rounds) ** 0.5)
    expected = lazy_profit(cut=20, share=share, draws=draws, submissions=5, honeypot_rate=1.0, lazy_slash=2)
    assert profit == pytest.approx(expected, abs=0.15)


def test_the_catch_probability() -> None:
    assert lazy_catch_probability(0, 0.25) == 1.0  # the whole pool judges every submission
    assert lazy_catch_probability(1, 0.25) == lazy_catch_probability(2, 0.25) == 0.0
    assert lazy_catch_probability(3, 0.25) == pytest.approx(3 * 0.25 * 0.75**2)  # exactly one of 3 draws
    assert lazy_catch_probability(63, 1 / 7) == pytest.approx(1 - 9.48e-5, abs=1e-6)  # the demo's


def test_without_committees_the_old_formula() -> None:
    for h, q in ((0.8, 0.0), (0.2, 0.5), (1.0, 0.0)):
        got = lazy_profit(
            cut=20, share=0.25, draws=0, submissions=5, honeypot_rate=h, lazy_slash=2, cheat_rate=q
        )
        assert got == pytest.approx((1 - h) * (1 - q) * 5 - h * 2)


def test_a_small_lazy_validator_earns_about_s_times_cut_minus_hks() -> None:
    # First order in s: paid C s, less h C s / N forfeited with the one draw it has on a caught honeypot,
    # less h k s S slashed; at most s (C - h k S), what task creation checks (any N).
    for draws in (4, 12, 20):
        s = 1e-4
        got = lazy_profit(cut=20, share=s, draws=draws, submissions=8, honeypot_rate=0.8, lazy_slash=2)
        assert got == pytest.approx(s * (20 * (1 - 0.8 / 8) - 0.8 * draws * 2), rel=0.01)
        assert got < s * (20 - 0.8 * draws * 2)


def _refusal(draws: int, rate: float = 0.8, stake: float = 10, rounds: int = 1) -> str:
    return laziness_refusal(
        cut=20, draws=draws, honeypot_rate=rate, min_validator_stake=stake, lazy_slash_bps=2000,
        submissions=5, num_rounds=rounds,
    )  # fmt: skip


def test_committees_that_let_laziness_pay_are_refused_with_what_to_raise() -> None:
    assert "committee_draws >= 3" in _refusal(1)
    assert "committee_draws >= 3" in _refusal(2)
    for draws in (
        3,
        4,
        12,
        16,
        32,
    ):  # the demo's terms: h k S <= 20 up to 12, a quarter of the weight up to 32
        line = _refusal(draws)
        assert line.startswith(
            f"honeypots at rate 0.8 with committees of {draws} draws do not deter laziness"
        )
        k = re.search(r"chain\.committee_draws to (\d+)", line)
        stake = re.search(r"chain\.min_validator_stake to ([\d.]+)", line)
        assert k is not None, line
        assert stake is not None, line
        assert _refusal(int(k.group(1))) == ""
        assert _refusal(draws, stake=float(stake.group(1))) == ""
        rate = re.search(r"honeypots\.rate to ([\d.]+)", line)
        if rate is not None:
            assert _refusal(draws, rate=float(rate.group(1))) == ""
    assert "s x (20 - 0.8 x 4 x 2) > 0" in _refusal(4)  # the large-pool term
    assert "holding 0.25 of the weight" in _refusal(16)  # the small pool's undecided honeypots
    for draws in (0, 48, 63):
        assert _refusal(draws) == ""
    assert _refusal(4, rate=0.0) == ""  # no honeypots, nothing to refuse here


def _demo(**chain: object) -> TaskFile:
    task = {**DEMO_TASK, "chain": {**DEMO_TASK["chain"], **chain}}
    return TaskFile.model_validate(task)


def test_task_creation_accepts_the_demos_honeypots_and_refuses_bad_ones() -> None:
    terms = honeypot_terms(_demo(), rate=HONEYPOT_RATE, trainer=BAIT, secret=Path(BAIT_PLAN))
    demo = _demo()
    assert demo.chain.committee_draws == 63
    assert VALIDATOR_WEIGHT * VALIDATORS == 6
    assert honeypot_refusal(demo, terms, lazy_slash_bps=DEFAULT_LAZY_SLASH_BPS, settlement_grace=120) == ""
    assert "settlement grace > 0" in honeypot_refusal(demo, terms, lazy_slash_bps=2000, settlement_grace=0)
    small = _demo(committee_draws=4, quorum=2)
    line = honeypot_refusal(small, terms, lazy_slash_bps=2000, settlement_grace=1)
    draws = re.search(r"chain\.committee_draws to (\d+)", line)
    assert draws is not None, line
    fixed = _demo(committee_draws=int(draws.group(1)), quorum=2)
    assert honeypot_refusal(fixed, terms, lazy_slash_bps=2000, settlement_grace=1) == ""
    off = honeypot_terms(small)  # no honeypots: no refusal
    assert honeypot_refusal(small, off, lazy_slash_bps=2000, settlement_grace=0) == ""
    # examples/task.yaml with honeypots at 0.2 would not deter laziness under any committee
    example = load_task_file(REPO / "examples" / "task.yaml")
    for draws in (4, 63):
        task = example.model_copy(
            update={"chain": example.chain.model_copy(update={"committee_draws": draws})}
        )
        assert honeypot_refusal(
            task, honeypot_terms(task, rate=0.2, trainer=BAIT, secret=Path("p")), lazy_slash_bps=2000,
            settlement_grace=1,
        ).startswith("honeypots at rate 0.2 with committees of")  # fmt: skip


def test_a_task_file_needs_a_vote_of_two_seconds(tmp_path: Path) -> None:
    import yaml

    path = tmp_path / "task.yaml"
    path.write_text(yaml.safe_dump({**DEMO_TASK, "chain": {**DEMO_TASK["chain"], "vote_duration": 1}}))
    with pytest.raises(
        ConfigError, match=r"chain\.vote_duration: Input should be greater than or equal to 2"
    ):
        load_task_file(path)
    path.write_text(yaml.safe_dump({**DEMO_TASK, "chain": {**DEMO_TASK["chain"], "vote_duration": 2}}))
    assert load_task_file(path).chain.vote_duration == 2


def test_the_bench_rows_of_the_lazy_validator() -> None:
    from protocol.incentives import RoundTerms, validator_and_keeper_rows

    def rows(**changes: object) -> dict[str, dict[str, object]]:
        base: dict[str, object] = {
            "reward_per_round": 100.0, "validator_share_bps": 2000, "validators": 4, "trainers": 4,
            "min_validator_stake": 10.0, "validator_slash_bps": 500, "min_trainer_stake": 200.0,
            "no_show_slash_bps": 500, "max_no_shows": 2, "honeypot_rate": 0.8, "lazy_slash_bps": 2000,
        }  # fmt: skip
        base.update(changes)
        return {r["name"]: r for r in validator_and_keeper_rows(RoundTerms(**base))}  # type: ignore[arg-type]

    whole_pool = rows()
    assert whole_pool["lazy validator"]["expected_profit"] == pytest.approx(0.2 * 5 - 0.8 * 2)
    demo = rows(committee_draws=63, lazy_share=1 / 7, submissions=5)
    lazy = demo["lazy validator"]
    assert lazy["expected_profit"] == pytest.approx(-1.028, abs=1e-3)
    assert (lazy["deterred"], lazy["refused"], lazy["role"]) == (True, "", "validator")
    large = demo["lazy validator, committees of 4 in a large pool"]
    assert float(large["expected_profit"]) > 0  # laziness pays there ...
    assert str(large["refused"]).startswith("honeypots at rate 0.8 with committees of 4 draws")  # ... refused
    assert large["deterred"] is True
    unplanted = rows(honeypot_rate=0.0)["lazy validator, committees of 4 in a large pool"]
    assert (unplanted["deterred"], unplanted["refused"]) == (False, "")  # no honeypots: open, not hidden


def test_over_the_task_the_slashes_compound_and_are_capped_by_the_allocation() -> None:
    # E_task = R x pay - A (1 - (1 - h p b)^R): the expectation over N ~ Bin(R, h p) caught honeypots of
    # A (1 - (1 - b)^N), what a bait's honeypots revealed together take from allocation A.
    cut, share, h, stake, bps = 20.0, 0.25, 0.8, 10.0, 2000
    b = bps / 10_000
    for rounds in (1, 4, 10, 40):
        got = lazy_task_profit(
            cut=cut, share=share, draws=0, submissions=5, honeypot_rate=h, allocation=stake,
            lazy_slash_bps=bps, num_rounds=rounds,
        )  # fmt: skip
        pay = (1 - h) * cut * share
        taken = sum(
            math.comb(rounds, n) * h**n * (1 - h) ** (rounds - n) * stake * (1 - (1 - b) ** n)
            for n in range(rounds + 1)
        )
        assert got == pytest.approx(rounds * pay - taken)
        assert taken <= stake
    per_round = lazy_profit(
        cut=cut, share=share, draws=0, submissions=5, honeypot_rate=h, lazy_slash=stake * b
    )
    assert per_round == pytest.approx(-0.6)  # the per-round model says laziness loses ...
    assert lazy_task_profit(
        cut=cut, share=share, draws=0, submissions=5, honeypot_rate=h, allocation=stake, lazy_slash_bps=bps,
        num_rounds=1,
    ) == pytest.approx(per_round)  # fmt: skip
    assert lazy_task_profit(
        cut=cut, share=share, draws=0, submissions=5, honeypot_rate=h, allocation=stake, lazy_slash_bps=bps,
        num_rounds=10,
    ) > 0  # fmt: skip  # ... but over 10 rounds the capped slashes lose to the linear pay


def test_without_committees_laziness_is_checked_too_and_over_the_task() -> None:
    # Before: k = 0 was never checked. examples/task.yaml's terms (cut 20, S = 10) with honeypots at 0.05.
    line = laziness_refusal(
        cut=20, draws=0, honeypot_rate=0.05, min_validator_stake=50, lazy_slash_bps=2000, submissions=16,
        num_rounds=8,
    )  # fmt: skip
    assert line.startswith("honeypots at rate 0.05 without committees do not deter laziness"), line
    assert _refusal(0, rounds=1) == ""  # (1 - 0.8) x 20 / 4 - 0.8 x 2 < 0 per round
    line = _refusal(0, rounds=10)
    assert "over the task's 10 rounds" in line, line
    for option in ("honeypots.rate", "chain.min_validator_stake"):
        found = re.search(option.replace(".", r"\.") + r" to ([\d.]+)", line)
        assert found is not None, line
        fixed = float(found.group(1))
        if option == "honeypots.rate":
            assert _refusal(0, rate=fixed, rounds=10) == ""
        else:
            assert _refusal(0, stake=fixed, rounds=10) == ""


def test_with_a_court_the_grace_must_outlast_an_appeal() -> None:
    # slashLazy waits for the court's settled decision: a grace within the appeal window + an appeal's
    # commit and reveal would let the last round's honeypot expire unslashed.
    terms = honeypot_terms(_demo(), rate=HONEYPOT_RATE, trainer=BAIT, secret=Path(BAIT_PLAN))
    span = 600 + 120 + 120
    for grace in (1, span):
        line = honeypot_refusal(
            _demo(), terms, lazy_slash_bps=DEFAULT_LAZY_SLASH_BPS, settlement_grace=grace, appeal_span=span
        )
        assert line.startswith("honeypots need a settlement grace longer than the AppealCourt's"), line
    assert (
        honeypot_refusal(
            _demo(), terms, lazy_slash_bps=DEFAULT_LAZY_SLASH_BPS, settlement_grace=span + 1, appeal_span=span
        )
        == ""
    )
