"""Environments: deterministic problems from seeds, exact-match rewards, the registry."""

from __future__ import annotations

import pytest

from trainer.derive import indexed_seed, prompt_seed
from trainer.envs import Problem, get_env, known_envs
from trainer.errors import ConfigError, EnvironmentNotFoundError, TrustrlError

ADDR = "0x" + "11" * 20
ENVS = [
    ("addition", {"digits": 2}),
    ("addition", {"digits": 5}),
    ("reverse", {"min_len": 3, "max_len": 6, "letters": "xyz"}),
    ("sort_digits", {"min_len": 1, "max_len": 7}),
]


@pytest.mark.parametrize(("name", "params"), ENVS)
def test_problems_are_deterministic_and_well_formed(name: str, params: dict[str, object]) -> None:
    env = get_env(name, params)
    seeds = [prompt_seed(1, 0, ADDR, 0, i) for i in range(50)]
    first = [env.problem(s) for s in seeds]
    again = [get_env(name, params).problem(s) for s in seeds]
    assert first == again
    assert len({p.prompt for p in first}) > 25  # seeds spread over the problem space
    for p in first:
        assert set(p.prompt + p.answer) <= set(env.alphabet)
        assert 1 <= len(p.answer) <= env.max_answer_len
        assert env.solve(p.prompt) == p.answer
        assert env.reward(p, p.answer) == 1.0


def test_addition_values_and_fixed_vector() -> None:
    env = get_env("addition", {"digits": 2})
    p = env.problem(indexed_seed(b"\x00" * 32, 0))
    a, b = (int(x) for x in p.prompt[:-1].split("+"))
    assert 0 <= a < 100
    assert 0 <= b < 100
    assert p.answer == str(a + b)
    assert env.problem(prompt_seed(7, 3, "0x" + "ab" * 20, 5, 2)) == Problem("81+44=", "125")


def test_reverse_and_sort_answers() -> None:
    assert get_env("reverse").solve("abcc>") == "ccba"
    assert get_env("sort_digits").solve("3142:") == "1234"


def test_reward_is_exact_match_only() -> None:
    env = get_env("addition")
    p = Problem("47+85=", "132")
    assert env.reward(p, "132") == 1.0
    for wrong in ("131", "1320", "13", " 132", "132 ", "", "\ufffd"):
        assert env.reward(p, wrong) == 0.0


def test_solve_rejects_foreign_prompts() -> None:
    with pytest.raises(ConfigError):
        get_env("addition").solve("abc>")
    with pytest.raises(ConfigError):
        get_env("reverse").solve("12+3=")
    with pytest.raises(ConfigError):
        get_env("sort_digits").solve(":")


def test_registry_errors() -> None:
    assert {"addition", "reasoning_gym", "reverse", "sort_digits"} <= set(known_envs())
    with pytest.raises(EnvironmentNotFoundError) as exc:
        get_env("chess", {})
    assert "addition" in str(exc.value)
    assert "chess" in str(exc.value)
    assert isinstance(exc.value, TrustrlError)
    cases: list[tuple[str, dict[str, object]]] = [
        ("addition", {"digits": 0}),
        ("addition", {"digits": 2, "carry": True}),
        ("reverse", {"min_len": 5, "max_len": 2}),
        ("reverse", {"letters": "aa"}),
        ("sort_digits", {"max_len": "many"}),
    ]
    for name, params in cases:
        with pytest.raises(ConfigError):
            get_env(name, params)


def test_spec_round_trips() -> None:
    env = get_env("reverse", {"letters": "pq"})
    spec = env.spec()
    assert spec["name"] == "reverse"
    assert get_env(spec["name"], spec["params"]).params == env.params
