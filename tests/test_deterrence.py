"""The deterrence arithmetic (`protocol.deterrence`): exact catch probabilities, the condition
P x slash >= 2 x (1 - P) x pay for the cheapest single-item cheat, and a refusal that names what to raise
(raising it to the value named makes the task deterrent). Task files: examples/task.yaml, the demo's and the
network tests' tasks are deterrent; the defaults replay every rollout."""

from __future__ import annotations

import math
from decimal import Decimal
from fractions import Fraction
from itertools import combinations
from pathlib import Path

import pytest

from protocol.demo import DEMO_TASK
from protocol.deterrence import Terms, catch_probability, deterrence, expected_profit
from protocol.roles.initiator import TaskFile, load_task_file
from protocol.wire import bundle_size

REPO = Path(__file__).resolve().parents[1]


def _terms(**changes: object) -> Terms:
    base = {
        "steps": 32, "sample_steps": 8, "rollouts": 2048, "sample_rollouts": 2048,
        "reward_per_round": Decimal(100), "validator_share_bps": 2000,
        "min_trainer_stake": Decimal(600), "trainer_slash_bps": 10_000,
    }  # fmt: skip
    base.update(changes)
    return Terms(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(("n", "s", "k"), [(8, 1, 1), (8, 4, 1), (8, 4, 2), (10, 3, 4), (5, 5, 1), (6, 9, 2)])
def test_catch_probability_counts_every_pick(n: int, s: int, k: int) -> None:
    picks = list(combinations(range(n), min(s, n)))
    caught = sum(1 for p in picks if set(p) & set(range(k)))
    assert catch_probability(n, s, k) == Fraction(caught, len(picks))
    assert catch_probability(n, 1, 1) == Fraction(1, n)


def test_the_condition_and_its_margin() -> None:
    d = deterrence(_terms())
    assert d.p_step == Fraction(1, 4)
    assert d.p_rollout == 1
    assert d.slash == 600
    assert d.pay == 80
    assert d.margin == pytest.approx(0.25 * 600 / (2 * 0.75 * 80))
    assert d.ok
    assert d.refusal() == ""
    assert expected_profit(d.p_step, d.pay, d.slash) == pytest.approx(0.75 * 80 - 0.25 * 600)
    assert deterrence(_terms(sample_steps=32)).margin == math.inf


@pytest.mark.parametrize(
    "weak",
    [
        {"min_trainer_stake": Decimal(50), "trainer_slash_bps": 1000},
        {"sample_steps": 2},
        {"sample_rollouts": 16},
        {"sample_rollouts": 16, "sample_steps": 1, "min_trainer_stake": Decimal(10)},
    ],
)
def test_a_weak_task_is_refused_with_what_to_raise_and_the_advice_works(weak: dict[str, object]) -> None:
    terms = _terms(**weak)
    d = deterrence(terms)
    assert not d.ok
    line = d.refusal()
    assert "\n" not in line
    assert "raise" in line
    advice = line.split("raise ", 1)[1].split(" (docs", 1)[0]
    for option in advice.split(" or "):
        changes: dict[str, object] = {}
        for part in option.split(" and "):
            name, value = part.rsplit(" to ", 1)
            key = name.removeprefix("chain.")
            changes[key] = terms.rollouts if value == "all" else type(getattr(terms, key))(value)
        assert deterrence(_terms(**{**weak, **changes})).ok, option


def test_the_project_tasks_are_deterrent_and_replay_every_rollout() -> None:
    import sys

    sys.path.insert(0, str(REPO / "tests" / "network"))
    from netharness import TINY_TASK

    example = load_task_file(REPO / "examples" / "task.yaml")
    for task in (example, TaskFile.model_validate(DEMO_TASK), TaskFile.model_validate(TINY_TASK)):
        assert task.replayed_rollouts == bundle_size(task.inner)
        assert task.deterrence().ok, task.deterrence().lines()


def test_sample_rollouts_all_is_the_default_and_numbers_stay_bounded() -> None:
    file = {**DEMO_TASK}
    del file["sample_rollouts"]
    task = TaskFile.model_validate(file)
    assert task.sample_rollouts == "all"
    assert task.replayed_rollouts == bundle_size(task.inner) == 32 * 8 * 8
    with pytest.raises(ValueError, match="65535"):
        TaskFile.model_validate({**DEMO_TASK, "sample_rollouts": 70_000})
