"""The reasoning_gym environment: reasoning-gym's basic_arithmetic as problems from seeds (deterministic,
filtered to the alphabet and lengths), rewards by its own scorer (partial credit), through the character
tokenizer; its pin; a clear error without the package."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import sys

import pytest

from trainer.derive import indexed_seed, prompt_seed
from trainer.envs import EnvPin, Problem, code_hash, env_pin, get_env
from trainer.errors import ConfigError, EnvironmentNotFoundError
from trainer.rollout import reward_of
from trainer.tokenizer import build_tokenizer, decode_prompt, encode_prompt

needs_rg = pytest.mark.skipif(
    importlib.util.find_spec("reasoning_gym") is None,
    reason="reasoning-gym is not installed (pip install 'trustrl[envs]'; scripts/setup.sh --test does)",
)
ARITHMETIC = {
    "dataset": "basic_arithmetic",
    "config": {
        "min_terms": 2,
        "max_terms": 2,
        "max_digits": 1,
        "operators": ["+", "-"],
        "allow_parentheses": False,
        "allow_negation": False,
    },
    "max_prompt_len": 24,
    "max_answer_len": 3,
}
ADDR = "0x" + "22" * 20


@needs_rg
def test_problems_are_deterministic_from_the_seed_and_fit() -> None:
    env = get_env("reasoning_gym", ARITHMETIC)
    seeds = [prompt_seed(3, 1, ADDR, 0, i) for i in range(40)]
    first = [env.problem(s) for s in seeds]
    assert first == [get_env("reasoning_gym", ARITHMETIC).problem(s) for s in seeds]
    assert len({p.prompt for p in first}) > 20
    for p in first:
        assert p.prompt.startswith("Calculate ")
        assert set(p.prompt + p.answer) <= set(env.alphabet)
        assert len(p.prompt) <= 24
        assert 1 <= len(p.answer) <= env.max_answer_len
        a, op, b = p.prompt.removeprefix("Calculate ").removesuffix(".").split(" ")
        assert p.answer == str(int(a) + int(b) if op == "+" else int(a) - int(b))
        assert env.solve(p.prompt) == p.answer
    assert env.problem(indexed_seed(b"\x00" * 32, 0)) == Problem("Calculate 0 - 10.", "-10")  # a fixed vector


@needs_rg
def test_rewards_are_the_datasets_scores_with_partial_credit() -> None:
    env = get_env("reasoning_gym", ARITHMETIC)
    p = env.problem(indexed_seed(b"\x00" * 32, 0))
    assert p.answer == "-10"
    assert env.reward(p, "-10") == 1.0
    assert env.reward(p, " -10 ") == 1.0  # surrounding spaces are not the answer
    assert env.reward(p, "1-10") == 0.75  # the answer inside a longer one: partial credit (its length share)
    for wrong in ("10", "-9", "", "Calculate"):
        assert env.reward(p, wrong) == 0.0
    tokenizer = build_tokenizer(env.alphabet)
    ids = encode_prompt(tokenizer, p.prompt)
    assert decode_prompt(tokenizer, ids) == p.prompt  # spaces and letters survive the tokenizer
    completion = [*tokenizer("-10", add_special_tokens=False)["input_ids"], tokenizer.eos_token_id]
    assert reward_of(env, tokenizer, ids, completion) == 1.0


@needs_rg
def test_bad_configurations_are_refused_early() -> None:
    cases = [
        ({"dataset": "no_such_dataset"}, "no_such_dataset"),
        ({"dataset": "basic_arithmetic", "config": {"min_terms": 0}}, "min_terms must be positive"),
        ({"dataset": "basic_arithmetic", "config": {"seed": 1}}, "config.seed is set by the environment"),
        ({"dataset": "basic_arithmetic", "colour": 1}, "Extra inputs are not permitted"),
    ]
    for params, message in cases:
        with pytest.raises(ConfigError, match=message):
            get_env("reasoning_gym", params)
    env = get_env("reasoning_gym", {**ARITHMETIC, "alphabet": "0123456789"})
    with pytest.raises(ConfigError, match="none of 64 entries fits the alphabet"):
        env.problem(indexed_seed(b"\x00" * 32, 0))
    with pytest.raises(ConfigError, match="is not a prompt this environment generated"):
        get_env("reasoning_gym", ARITHMETIC).solve("Calculate 1 + 1.")


@needs_rg
def test_the_pin_names_reasoning_gym_and_covers_the_adapter() -> None:
    pin = env_pin("reasoning_gym")
    expected = "0x" + code_hash(["trainer.envs", "reasoning_gym"]).hex()
    assert pin == EnvPin("reasoning-gym", importlib.metadata.version("reasoning-gym"), expected)
    assert pin.version == "0.1.25"
    assert pin.code_hash != env_pin("addition").code_hash


def test_without_the_package_the_error_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "reasoning_gym", None)  # `import reasoning_gym` raises ImportError
    with pytest.raises(
        EnvironmentNotFoundError, match=r"needs the reasoning-gym package: pip install 'trustrl\[envs\]'"
    ):
        get_env("reasoning_gym", ARITHMETIC)


@needs_rg
def test_the_example_task_file_parses_and_is_deterrent() -> None:
    from pathlib import Path

    from protocol.roles.initiator import load_task_file

    task = load_task_file(Path(__file__).resolve().parents[2] / "examples" / "task-reasoning-gym.yaml")
    assert task.env.pinned().package == "reasoning-gym"
    assert task.deterrence().ok
    env = task.env.environment()
    assert task.inner.max_new_tokens == env.max_answer_len + 1
