"""Task creation deters the partial checker (docs/protocol.md, "The partial checker"): a validator that skips
the checks some bait defects need is caught on a share `catch` of the honeypots, so
`protocol.deterrence.laziness_refusal(..., catch=)` checks the rate h x catch, names h and the share, and
its suggestions (the rate h to set, at most 1; the committee draws; the stake) fix it for that validator.
`trustrl task create` (`protocol.roles.initiator.honeypot_refusal`) checks catch = 1 / len(ROTATION), the
validator that skips one expensive check class: it refuses terms under which that one profits over the task
even where the lazy one would lose, the stake it names fixes them, and whatever it accepts the lazy check
accepts too. The demo's terms pass it, and the bench's partial rows carry its verdict."""

from __future__ import annotations

import importlib.util
import math
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest

from protocol.baits import ROTATION
from protocol.contracts import DEFAULT_LAZY_SLASH_BPS
from protocol.demo import BAIT_PLAN, DEMO_TASK, HONEYPOT_RATE
from protocol.deterrence import LAZY_SHARES, laziness_refusal, lazy_task_profit
from protocol.roles.initiator import TaskFile, honeypot_refusal, honeypot_terms

REPO = Path(__file__).resolve().parents[1]
BAIT = "0x" + "ab" * 20
HALF = 1 / len(ROTATION)


def _refusal(
    *, draws: int = 63, rate: float = 0.9, stake: float = 10, rounds: int = 5, catch: float = 1.0
) -> str:
    return laziness_refusal(
        cut=20, draws=draws, honeypot_rate=rate, min_validator_stake=stake, lazy_slash_bps=2000,
        submissions=8, num_rounds=rounds, catch=catch,
    )  # fmt: skip


def _demo(**chain: object) -> TaskFile:
    return TaskFile.model_validate({**DEMO_TASK, "chain": {**DEMO_TASK["chain"], **chain}})


def _lazy_check(task: TaskFile, rate: float) -> str:
    """`laziness_refusal` for the lazy validator (catch 1, the default) under `task`'s terms."""
    c = task.chain
    return laziness_refusal(
        cut=float(c.reward_per_round * c.validator_share_bps / 10_000),
        draws=c.committee_draws,
        honeypot_rate=rate,
        min_validator_stake=float(c.min_validator_stake),
        lazy_slash_bps=DEFAULT_LAZY_SLASH_BPS,
        submissions=c.max_trainers,
        num_rounds=c.num_rounds,
    )


def _option(line: str, name: str) -> float | None:
    found = re.search(re.escape(name) + r" to ([\d.]+)", line)
    return None if found is None else float(found.group(1))


def test_rotation_is_two_expensive_classes() -> None:
    assert HALF == 0.5


def test_catch_one_is_the_lazy_check() -> None:
    for draws, rate, stake, rounds in (
        (63, 0.9, 10, 5),
        (4, 0.8, 10, 1),
        (0, 0.8, 10, 10),
        (16, 0.45, 50, 5),
    ):
        assert _refusal(draws=draws, rate=rate, stake=stake, rounds=rounds) == _lazy_check(
            _demo(
                committee_draws=draws,
                quorum=min(32, max(draws, 2)),
                min_validator_stake=stake,
                num_rounds=rounds,
            ),
            rate,
        )


def test_a_catch_share_is_the_rate_times_it() -> None:
    for draws in (0, 4, 16, 63):
        for rate in (0.5, 0.8, 0.9, 1.0):
            for stake in (10, 50, 200):
                partial = _refusal(draws=draws, rate=rate, stake=stake, catch=HALF) == ""
                assert partial == (_refusal(draws=draws, rate=rate * HALF, stake=stake) == "")


def test_the_line_names_the_rate_and_the_share() -> None:
    line = _refusal(catch=HALF)
    assert line.startswith("honeypots at rate 0.9 with committees of 63 draws do not deter laziness"), line
    assert "0.5 of them (rate 0.9 x 0.5 = 0.45)" in line, line
    assert "'The partial checker'" in line, line
    small = _refusal(draws=4, stake=50, catch=HALF)
    assert "s x (20 - 0.9 x 0.5 x 4 x 10) > 0" in small, small


def test_each_suggestion_deters_the_partial_checker() -> None:
    seen = set()
    for draws, rate, stake, rounds in (
        (63, 0.9, 10, 5),
        (63, 0.9, 50, 20),
        (4, 0.9, 50, 5),
        (16, 0.6, 10, 5),
        (0, 0.8, 10, 10),
        (32, 0.5, 20, 5),
        (63, 0.6, 50, 5),  # h >= 0.78 deters it
    ):
        line = _refusal(draws=draws, rate=rate, stake=stake, rounds=rounds, catch=HALF)
        assert line, (draws, rate, stake, rounds)
        k = _option(line, "chain.committee_draws")
        h = _option(line, "honeypots.rate")
        m = _option(line, "chain.min_validator_stake")
        assert (k, h, m) != (None, None, None), line
        if k is not None:
            seen.add("draws")
            assert _refusal(draws=int(k), rate=rate, stake=stake, rounds=rounds, catch=HALF) == ""
        if h is not None:
            seen.add("rate")
            assert h <= 1
            assert _refusal(draws=draws, rate=h, stake=stake, rounds=rounds, catch=HALF) == ""
        else:  # no rate up to 1 deters it
            assert _refusal(draws=draws, rate=1.0, stake=stake, rounds=rounds, catch=HALF) != ""
        if m is not None:
            seen.add("stake")
            assert _refusal(draws=draws, rate=rate, stake=m, rounds=rounds, catch=HALF) == ""
    assert seen == {"draws", "rate", "stake"}


def test_without_a_rate_that_works_only_stake_or_draws_are_named() -> None:
    line = _refusal(draws=0, rate=0.9, stake=10, rounds=10, catch=HALF)  # h/2 <= 1/2 never suffices
    assert _refusal(draws=0, rate=1.0, stake=10, rounds=10, catch=HALF) != ""
    assert "honeypots.rate" not in line, line
    stake = _option(line, "chain.min_validator_stake")
    assert stake is not None, line
    assert _refusal(draws=0, rate=0.9, stake=stake, rounds=10, catch=HALF) == ""


@pytest.mark.parametrize("catch", [0.0, -0.5, 1.5, math.nan, math.inf])
def test_a_catch_share_outside_0_1_is_refused(catch: float) -> None:
    with pytest.raises(ValueError, match="catch is a share of the honeypots"):
        _refusal(catch=catch)


def _create(task: TaskFile, rate: float = HONEYPOT_RATE) -> str:
    terms = honeypot_terms(task, rate=rate, trainer=BAIT, secret=Path(BAIT_PLAN))
    return honeypot_refusal(task, terms, lazy_slash_bps=DEFAULT_LAZY_SLASH_BPS, settlement_grace=120)


def _partial_task_profit(task: TaskFile, rate: float = HONEYPOT_RATE) -> float:
    """The partial checker's best expected profit over `task` at the weight shares task creation checks."""
    c = task.chain
    return max(
        lazy_task_profit(
            cut=float(c.reward_per_round * c.validator_share_bps / 10_000),
            share=s,
            draws=c.committee_draws,
            submissions=c.max_trainers,
            honeypot_rate=rate * HALF,
            allocation=float(c.min_validator_stake),
            lazy_slash_bps=DEFAULT_LAZY_SLASH_BPS,
            num_rounds=c.num_rounds,
        )
        for s in LAZY_SHARES
    )


def test_task_create_refuses_terms_where_the_partial_checker_profits_and_its_stake_fixes_them() -> None:
    old = _demo(min_validator_stake=10)
    assert _partial_task_profit(old) > 0  # +10.8 at a quarter of the weight over 5 rounds
    assert _lazy_check(old, HONEYPOT_RATE) == ""  # ... where the lazy one, caught on every honeypot, loses
    line = _create(old)
    assert "0.5 of them (rate 0.9 x 0.5 = 0.45)" in line, line
    stake = _option(line, "chain.min_validator_stake")
    assert stake is not None, line
    fixed = _demo(min_validator_stake=stake)
    assert _create(fixed) == ""
    assert _partial_task_profit(fixed) < 0


def test_task_create_accepts_the_demos_terms_for_up_to_ten_rounds() -> None:
    for rounds in range(1, 11):
        task = _demo(num_rounds=rounds)
        assert _create(task) == "", rounds
        assert _partial_task_profit(task) < 0
    assert _create(_demo(min_validator_stake=40, num_rounds=10)) != ""  # 50 is the smallest round stake


def test_what_task_create_accepts_deters_the_lazy_validator_too() -> None:
    accepted = 0
    for draws in (0, 4, 16, 63):
        for stake in (10, 50, 200):
            for rate in (0.2, 0.5, 0.9, 1.0):
                task = _demo(committee_draws=draws, quorum=min(32, max(draws, 2)), min_validator_stake=stake)
                if _create(task, rate) == "":
                    accepted += 1
                    assert _lazy_check(task, rate) == "", (draws, stake, rate)
    assert accepted >= 8


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_security", REPO / "scripts" / "bench_security.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("bench_security", module)
    spec.loader.exec_module(module)
    return module


def test_the_bench_rows_of_the_partial_checkers_under_the_demos_terms() -> None:
    from protocol.roles.initiator import load_task_file

    bench = _bench()
    rows, _, _ = bench._validators_and_keepers(_demo(), load_task_file(REPO / "examples" / "task.yaml"))
    named = {r["name"]: r for r in rows}
    for name in (bench.SEMI_LAZY_ROW, bench.PARTIAL_ROW):
        row = named[name]
        assert row["expected_profit"] < 0, row
        assert row["expected_task_profit"] < 0, row
        assert (row["deterred"], row["refused"]) == (True, ""), row
        assert name not in bench.OPEN
        assert name in bench.OPEN_TASK_YAML
    assert named[bench.PARTIAL_ROW]["p_caught_per_honeypot"] == HALF
    old_rows, _, _ = bench._validators_and_keepers(
        _demo(min_validator_stake=10), load_task_file(REPO / "examples" / "task.yaml")
    )
    partial = {r["name"]: r for r in old_rows}[bench.PARTIAL_ROW]
    assert partial["expected_task_profit"] > 0  # it would profit there, so task creation refuses the terms
    assert partial["refused"].startswith("honeypots at rate 0.9 with committees of 63 draws"), partial
    assert partial["deterred"] is True
